"""The served project holds up against a real browser, a fuzzer, bad clients and drift (issue 6).

One scikit-learn and one PyTorch render are installed and trained once each (``make all``) and
served once each by their own ``serve`` command (uvicorn, ``API_KEY`` set), then driven over real
HTTP: the demo page and ``/docs`` in headless Chromium with every other host unresolvable,
Schemathesis against the live OpenAPI, a table of bad requests, the prediction log feeding
``monitor``, and ``retrain`` promoting only a better model. The render's own tests already prove the
same rules through the in-process TestClient; this module proves them through the server a user runs.

The browser is Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). When they
are missing the browser tests fail rather than skip, so CI cannot pass without running them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.browser import assert_loaded_offline, open_page
from tests.helpers import ROOT, answers, free_port, fuzz_api, http, project_env, render, run, served

pytestmark = pytest.mark.slow

FRAMEWORKS = ("sklearn", "pytorch")
API_KEY = "test-key-0123456789"
KEY = {"X-API-Key": API_KEY}
EXIT_DRIFT = 3


@dataclass
class Live:
    """A rendered, trained project and the base URL of its running server."""

    framework: str
    project: Path
    env: dict[str, str]
    base: str
    meta: dict[str, Any]

    @property
    def slug(self) -> str:
        return str(answers(self.project)["project_slug"])

    def cli(self, *args: str, check: bool = True) -> Any:
        """The render's own command line (what its Makefile aliases call)."""
        return run(
            ["uv", "run", "--frozen", "python", "-m", self.slug, *args], self.project, self.env, check=check
        )

    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        status, body = http("POST", f"{self.base}/predict", {"records": records}, headers=KEY)
        assert status == 200, body
        return dict(body)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    framework = request.param
    base = tmp_path_factory.mktemp(f"serving-{framework}")
    project = render(base / "project", {"framework": framework})
    env = project_env()
    run(["uv", "sync", "--quiet"], project, env)
    run(["make", "all"], project, env)
    with served(project, {**env, "API_KEY": API_KEY}) as url:
        assert http("GET", f"{url}/metadata")[0] == 401  # the key protects the model description too
        status, meta = http("GET", f"{url}/metadata", headers=KEY)
        assert status == 200, meta
        assert meta["api_key_required"] is True
        yield Live(framework, project, env, url, meta)


def numeric_names(live: Live) -> list[str]:
    return [f["name"] for f in live.meta["features"] if f["kind"] == "numeric"]


def categorical_names(live: Live) -> list[str]:
    return [f["name"] for f in live.meta["features"] if f["kind"] == "categorical"]


def test_demo_page_predicts_in_a_real_browser(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    open_page(browser, f"{live.base}/")
    # The API has a key, so the page asks for it before it can describe the model.
    wait.until(ec.visibility_of_element_located((By.ID, "key-form")))
    assert not browser.find_element(By.ID, "predict-form").is_displayed()
    browser.find_element(By.ID, "api-key").send_keys(API_KEY)
    browser.find_element(By.ID, "unlock").click()
    wait.until(ec.visibility_of_element_located((By.ID, "predict-form")))
    assert_loaded_offline(browser, live.base)
    # The form starts from the example; edit one number, as a visitor would.
    record = dict(live.meta["example"])
    name = numeric_names(live)[0]
    record[name] = round((record[name] or 1.0) * 1.5, 3)
    field = browser.find_element(By.ID, f"feature-{name}")
    field.clear()
    field.send_keys(str(record[name]))
    browser.find_element(By.ID, "submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    expected = live.predict([record])
    assert (
        browser.find_element(By.ID, "prediction").text
        == f"{live.meta['target']}: {expected['predictions'][0]}"
    )
    assert browser.find_element(By.ID, "model-version").text == live.meta["model_version"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#probabilities tbody tr")) == len(live.meta["classes"])
    # A wrong key is refused, and the page says so instead of showing a stale prediction.
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys("wrong")
    browser.find_element(By.ID, "submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "error")))
    assert browser.find_element(By.ID, "error").text.startswith("401")
    assert not browser.find_element(By.ID, "result").is_displayed()


def test_demo_page_reads_well_at_phone_and_desktop_widths(live: Live, browser: Any) -> None:
    """Title and problem from the project, the headline result, labelled inputs, real test examples
    (one the model gets wrong), bars for the answer, the keyboard alone enough, no sideways scroll."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    SHOTS.mkdir(exist_ok=True)
    project = live.meta["project"]
    examples = live.meta["examples"]
    assert examples, "the demo render offers real test examples"
    assert not examples[-1]["correct"], "one example is a mistake of the model"
    for width in (390, 1280):
        browser.set_window_size(width, 1000)
        wait = WebDriverWait(browser, 20)
        open_page(browser, f"{live.base}/")
        wait.until(ec.visibility_of_element_located((By.ID, "key-form")))
        browser.find_element(By.ID, "api-key").send_keys(API_KEY + Keys.ENTER)  # Enter submits
        wait.until(ec.visibility_of_element_located((By.ID, "predict-form")))
        assert browser.find_element(By.ID, "title").text == project["name"]
        assert browser.title.startswith(project["name"])
        assert browser.find_element(By.ID, "problem").text == project["problem_statement"]
        gate = live.meta["gate"]["gate"]
        assert f"{gate['metric']} {gate['point']:.4f}" in browser.find_element(By.ID, "headline").text
        unlabelled = browser.execute_script(
            "return [...document.querySelectorAll('#predict-form input, #predict-form select')]"
            ".filter(e => e.labels.length === 0).map(e => e.id)"
        )
        assert not unlabelled, unlabelled
        picker = Select(browser.find_element(By.ID, "example"))
        assert len(picker.options) == len(examples) + 1
        picker.select_by_index(len(examples))  # the mistake
        wrong = examples[-1]
        name = numeric_names(live)[0]
        assert float(browser.find_element(By.ID, f"feature-{name}").get_attribute("value")) == pytest.approx(
            wrong["features"][name]
        )
        browser.find_element(By.ID, f"feature-{name}").send_keys(Keys.ENTER)  # keyboard only
        wait.until(ec.visibility_of_element_located((By.ID, "result")))
        expected = live.predict([wrong["features"]])["predictions"][0]
        assert expected != wrong["actual"], "the example the page calls wrong is wrong"
        assert browser.find_element(By.ID, "prediction").text == f"{live.meta['target']}: {expected}"
        bars = browser.find_elements(By.CSS_SELECTOR, "#probabilities progress")
        assert len(bars) == len(live.meta["classes"])
        values = [float(bar.get_attribute("value")) for bar in bars]
        assert values == sorted(values, reverse=True)
        assert sum(values) == pytest.approx(1, abs=1e-3)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
        assert_loaded_offline(browser, live.base)
        browser.save_screenshot(str(SHOTS / f"demo-{live.framework}-{width}px.png"))


def test_docs_render_offline(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, f"{live.base}/docs")
    # Operations appear only once Swagger UI's script ran and fetched /openapi.json.
    WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock-summary-path"))
    )
    paths = {e.text.strip() for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/predict", "/metadata", "/health"} <= paths
    assert_loaded_offline(browser, live.base)


# ---------------------------------------------------------------- the project site

SHOTS = ROOT / ".test-output"  # screenshots a person can look at after the run (git-ignored)


@contextlib.contextmanager
def static_server(folder: Path, log_path: Path) -> Iterator[str]:
    """A plain static file server on a loopback port (what GitHub or GitLab Pages does with the site)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(folder),
            ],
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if http("GET", f"{base}/index.html", timeout=2)[0] == 200:
                    break
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_report_fills_the_readme_once(live: Live) -> None:
    readme = live.project / "README.md"
    readme.write_text("A line of my own.\n\n" + readme.read_text())
    run(["make", "report"], live.project, live.env)
    first = readme.read_text()
    assert first.startswith("A line of my own.\n"), "the user's line above the markers is kept"
    section = first[first.index("<!-- results:start -->") : first.index("<!-- results:end -->")]
    metrics = json.loads((live.project / "reports" / "metrics.json").read_text())
    assert f"{metrics['gate']['metric']} = {metrics['gate']['point']:.4f}" in section
    assert "baseline" in section
    assert "Run `make all && make report`" not in section, "the placeholder was replaced"
    run(["make", "report"], live.project, live.env)
    assert readme.read_text() == first, "a second make report changed README.md"


def test_site_is_offline_complete_and_searchable(live: Live, browser: Any) -> None:
    """``make site`` (strict), served as static files: every page loads only its own files, every
    internal link and image resolves, no page is empty, and search answers from the static index."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    start = time.perf_counter()
    run(["make", "site"], live.project, live.env)
    print(f"\nmake site ({live.framework}): {time.perf_counter() - start:.1f} s")
    folder = live.project / "build" / "site"
    pages = sorted(path.name for path in folder.glob("*.html") if path.name != "404.html")
    assert {"index.html", "data.html", "model.html", "evaluation.html", "monitoring.html", "api.html",
            "reproduce.html"} <= set(pages), pages  # fmt: skip
    SHOTS.mkdir(exist_ok=True)
    browser.set_window_size(1280, 1600)
    with static_server(folder, live.project / ".site-server.log") as base:
        links: set[str] = set()
        for page in pages:
            open_page(browser, f"{base}/{page}")
            assert_loaded_offline(browser, base)
            failed = browser.execute_script(
                "return performance.getEntriesByType('resource')"
                ".filter(e => e.responseStatus && e.responseStatus >= 400).map(e => e.name)"
            )
            assert not failed, f"{page}: failed requests {failed}"
            broken = browser.execute_script(
                "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
            )
            assert not broken, f"{page}: images that do not load {broken}"
            text = browser.find_element(By.CSS_SELECTOR, "article").text
            assert len(text) > 200, f"{page} is (nearly) empty: {text!r}"
            links |= set(
                browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
            )
            if page in {"index.html", "evaluation.html"}:
                browser.save_screenshot(
                    str(SHOTS / f"site-{live.framework}-{page.removesuffix('.html')}.png")
                )
        internal = {link.split("#")[0] for link in links if link.startswith(base + "/")}
        dead = [link for link in sorted(internal) if http("GET", link)[0] != 200]
        assert not dead, f"internal links that do not resolve: {dead}"

        open_page(browser, f"{base}/index.html")
        browser.find_element(By.TAG_NAME, "body").send_keys("/")  # the theme's search shortcut
        query = browser.switch_to.active_element
        assert "md-search__input" in query.get_attribute("class").split(), "the shortcut did not focus search"
        query.send_keys("baseline")
        WebDriverWait(browser, 20).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, ".md-search-result__item"))
        )
        assert_loaded_offline(browser, base)


# ---------------------------------------------------------------- fuzzing


def test_fuzzed_requests_get_no_5xx_and_match_the_schema(live: Live) -> None:
    """Schemathesis, positive and negative cases per operation, seeded so a failure reproduces."""
    operations, failures = fuzz_api(live.base, KEY, max_examples=50)
    assert operations >= 5
    assert not failures, "\n\n".join(failures)


# ---------------------------------------------------------------- bad clients


def bad_requests(live: Live) -> list[tuple[str, bytes, dict[str, str], int, str]]:
    """(case, body, headers, expected status, text the answer must contain)."""
    example = live.meta["example"]
    number = numeric_names(live)[0]

    def body(**change: Any) -> bytes:
        record = {k: v for k, v in {**example, **change}.items() if v is not _DROP}
        return json.dumps({"records": [record]}).encode()

    cases = [
        ("number as text", body(**{number: "abc"}), KEY, 422, number),
        ("missing feature", body(**{number: _DROP}), KEY, 422, number),
        ("unknown feature", body(unknown_feature=1), KEY, 422, "unknown_feature"),
        ("NaN", body(**{number: math.nan}), KEY, 422, number),
        ("Infinity", body(**{number: -math.inf}), KEY, 422, number),
        (
            "batch over the cap",
            json.dumps({"records": [example] * (live.meta["max_batch"] + 1)}).encode(),
            KEY,
            422,
            str(live.meta["max_batch"]),
        ),
        ("malformed JSON", b'{"records": [', KEY, 422, "json"),
        ("not JSON", b"a,b\n1,2\n", {**KEY, "content-type": "text/csv"}, 415, "JSON"),
        ("no API key", body(), {}, 401, "API key"),
        ("wrong API key", body(), {"X-API-Key": "wrong"}, 401, "API key"),
        ("no key, malformed body", b'{"records": [', {}, 401, "API key"),  # the key is checked first
        ("every feature null", body(**dict.fromkeys(example)), KEY, 422, "null"),
    ]
    if categorical_names(live):
        category = categorical_names(live)[0]
        cases.append(("category as number", body(**{category: 3}), KEY, 422, category))
        cases.append(("category never seen", body(**{category: "never-seen"}), KEY, 422, category))
    return cases


_DROP = object()


def test_bad_requests_get_a_4xx_that_says_why(live: Live) -> None:
    wrong = []
    for case, data, headers, expected, text in bad_requests(live):
        status, answer = http("POST", f"{live.base}/predict", data=data, headers=headers)
        if status != expected or text.lower() not in json.dumps(answer).lower() or "Traceback" in str(answer):
            wrong.append(f"{case}: expected {expected} naming {text!r}, got {status} {str(answer)[:300]}")
    assert http("GET", f"{live.base}/metrics")[0] == 401
    assert not wrong, "\n".join(wrong)


def test_an_oversized_body_is_refused_before_it_is_sent(live: Live) -> None:
    """413 on the announced length alone: the client gets its answer without uploading the body."""
    host, port = live.base.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", "/predict")
        headers = {**KEY, "content-type": "application/json", "content-length": "1000000000"}
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert "larger than" in json.loads(response.read())["detail"]
    finally:
        connection.close()


def test_access_log_is_json_and_metrics_count_statuses(live: Live) -> None:
    live.predict([live.meta["example"]])
    http("POST", f"{live.base}/predict", data=b"x", headers={**KEY, "content-type": "text/plain"})
    status, text = http("GET", f"{live.base}/metrics", headers=KEY)
    assert status == 200
    assert 'http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'http_requests_total{method="POST",route="/predict",status="415"}' in text
    assert "predicted_rows_total" in text
    lines = (live.project / ".serve.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    access = [e for e in entries if e["logger"].endswith(".access")]
    assert {200, 415} <= {e["status"] for e in access}, lines[-20:]
    assert all({"time", "method", "path", "duration_ms"} <= e.keys() for e in access)


# ---------------------------------------------------------------- the drift loop


def held_out_records(live: Live) -> list[dict[str, Any]]:
    """Held-out records as the API takes them (features only, missing values as null)."""
    names = [f["name"] for f in live.meta["features"]]
    out = live.project / ".test_split.json"
    code = (
        "import pandas as pd, sys; "
        "pd.read_parquet('data/processed/test.parquet')[sys.argv[2:]].to_json(sys.argv[1], orient='records')"
    )
    run(["uv", "run", "--frozen", "python", "-c", code, str(out), *names], live.project, live.env)
    return list(json.loads(out.read_text()))


def shifted(records: list[dict[str, Any]], live: Live) -> list[dict[str, Any]]:
    """Every numeric feature scaled and moved, every categorical one stuck on a single value."""
    categories = {f["name"]: f.get("categories") or ["other"] for f in live.meta["features"]}
    out = []
    for record in records:
        moved = {k: None if v is None else v * 3 + 5 for k, v in record.items() if k in numeric_names(live)}
        stuck = {k: categories[k][-1] for k in categorical_names(live)}
        out.append({**record, **moved, **stuck})
    return out


def log_and_monitor(live: Live, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Start a fresh prediction log, send ``records`` through the API, run ``monitor`` on what it logged."""
    log = live.project / "data" / "predictions" / "predictions.jsonl"
    log.write_bytes(b"")  # truncate: the server appends (O_APPEND) to the same file
    for start in range(0, len(records), 50):
        live.predict(records[start : start + 50])
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(logged) == len(records)
    assert {"time", "model_version", "inputs", "prediction"} <= logged[0].keys()
    result = live.cli("monitor", check=False)
    report = json.loads((live.project / "reports" / "drift.json").read_text())
    assert report["source"].endswith("predictions"), report
    assert report["current_rows"] == len(records)
    return result.returncode, report


def test_logged_predictions_drive_the_monitor(live: Live) -> None:
    records = held_out_records(live)
    records = records * math.ceil(100 / len(records))  # monitor.min_logged_rows
    code, report = log_and_monitor(live, records)
    assert code == 0, report
    code, report = log_and_monitor(live, shifted(records, live))
    assert code == EXIT_DRIFT, report
    assert report["retrain"] is True
    markdown = (live.project / "reports" / "drift.md").read_text()
    assert "Drift detected" in markdown
    assert "figures/drift.png" in markdown
    assert (live.project / "reports" / "figures" / "drift.png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------- retraining


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def crippled_params(params: dict[str, Any]) -> dict[str, Any]:
    """Model settings that cannot learn much: one tiny tree, or one epoch at a negligible rate."""
    worse = {"n_estimators": 1, "min_samples_leaf": 100_000, "max_epochs": 1, "learning_rate": 1e-7}
    return {key: worse.get(key, value) for key, value in params.items()}


def test_retrain_promotes_only_a_better_model(live: Live) -> None:
    config = yaml.safe_load((live.project / "configs" / "config.yaml").read_text())
    config["model"]["params"] = crippled_params(config["model"]["params"])
    (live.project / "configs" / "worse.yaml").write_text(yaml.safe_dump(config))
    models = live.project / "models"
    live.cli("train", "--config", "configs/worse.yaml")
    # A poor model misses its gate, so only the explicit override serves it.
    assert live.cli("evaluate", "--config", "configs/worse.yaml", check=False).returncode == 1
    live.cli("promote", "--force", "--config", "configs/worse.yaml")
    poor = tree_hash(models / "model")

    live.cli("retrain")
    decision = json.loads((live.project / "reports" / "promotion.json").read_text())
    assert decision["promoted"] is True, decision
    assert tree_hash(models / "model.previous") == poor  # the old model is kept beside the new one
    good = tree_hash(models / "model")
    assert good != poor

    live.cli("retrain")  # same data, same seed: the candidate only ties, so nothing changes
    decision = json.loads((live.project / "reports" / "promotion.json").read_text())
    assert decision["promoted"] is False, decision
    assert decision["candidate_score"] == decision["current_score"]
    assert tree_hash(models / "model") == good
    assert tree_hash(models / "model.previous") == poor
    assert not [p for p in (models / "candidates").iterdir() if p.name.endswith(".staging")]
