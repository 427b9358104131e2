"""Text projects (issue 19): text classification on the shared contract.

The fast tier renders tabular and text projects and diffs them (only the modules whose job differs
may change; between text frameworks only the model module and its lines), checks the questions asked
only for text, and that a text column equal to the target is refused before a file is written. The
slow tier installs a text render per framework and runs its own commands (lint, type-check, its
tests, ``make all`` on 10,000 IMDB reviews), then the server: the example text, a batch, a 1 MB text
(422 naming the limit) and a number (422). The scikit-learn run also drives the demo page in
headless Chromium and takes a messy CSV: empty texts, a text under two labels, undecodable bytes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.browser import assert_loaded_offline, open_page
from tests.helpers import (
    PROJECT_COMMANDS,
    answers,
    assert_health_answers_while,
    copy_command,
    free_port,
    fuzz_api,
    http,
    project_env,
    render,
    run,
    serve_command,
    server_process,
    strict_json,
    with_config,
)
from tests.matrix import (
    DATE_FILES,
    FRAMEWORK_FILES,
    MODALITY_FILES,
    SAME_STORY,
    frameworks_for,
    project_files,
)
from tests.matrix import MODALITY_SHARED_MODULES as SHARED_MODULES


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("text")
    variants = {
        "tabular": {"framework": "sklearn"},
        "text": {"modality": "text", "framework": "sklearn"},
        "text-xgboost": {"modality": "text", "framework": "xgboost"},
        "csv": {
            "modality": "text",
            "dataset": "csv",
            "data_source": "data/raw/tickets.csv",
            "text_column": "body",
            "target_column": "queue",
            "slice_column": "channel",
        },
    }
    return {name: render(base / name, {**SAME_STORY, **answers}) for name, answers in variants.items()}


def test_the_modality_changes_only_the_modules_whose_job_differs(renders: dict[str, Path]) -> None:
    tabular, text = project_files(renders["tabular"]), project_files(renders["text"])
    assert set(text) == set(tabular) - DATE_FILES | {"texts.py"}  # reading and cleaning text
    differing = {name for name in set(text) & set(tabular) if tabular[name] != text[name]}
    unexpected = differing - MODALITY_FILES
    assert unexpected == set(), f"text changes {sorted(unexpected)}"
    assert {"data.py", "features.py", "contract.py", "model.py"} <= differing
    for module in SHARED_MODULES:
        assert tabular[f"{module}.py"] == text[f"{module}.py"], f"{module}.py differs between modalities"
    xgboost = project_files(renders["text-xgboost"])
    framework_changes = {name for name in text if text[name] != xgboost.get(name)}
    assert framework_changes <= FRAMEWORK_FILES, sorted(framework_changes - FRAMEWORK_FILES)
    # XGBoost reads the same TF-IDF matrix as a table's encoded columns: its model module is shared.
    assert (
        xgboost["model.py"]
        == project_files(render(renders["tabular"].parent / "x", {"framework": "xgboost"}))["model.py"]
    )


def test_text_projects_answer_in_their_own_terms(renders: dict[str, Path]) -> None:
    config = yaml.safe_load((renders["text"] / "configs" / "config.yaml").read_text())
    assert config["data"]["source"] == "mlba:imdb"
    assert (config["data"]["target"], config["text"]["column"]) == ("sentiment", "review")
    assert config["task"] == "classification"
    assert config["evaluation"]["metric"] == "accuracy"
    assert config["evaluation"]["threshold"] == 0.8
    assert config["model"]["params"]["char_ngrams"] == [4, 4]
    pyproject = (renders["text"] / "pyproject.toml").read_text()
    assert '"mlba' in pyproject
    assert '"mlba' not in (renders["tabular"] / "pyproject.toml").read_text()
    assert '"pillow' not in pyproject
    xgboost = yaml.safe_load((renders["text-xgboost"] / "configs" / "config.yaml").read_text())
    assert xgboost["text"]["max_features"] < config["text"]["max_features"]  # trees on fewer n-grams


def test_the_users_text_questions_reach_the_config(renders: dict[str, Path]) -> None:
    config = yaml.safe_load((renders["csv"] / "configs" / "config.yaml").read_text())
    assert config["text"]["column"] == "body"
    assert config["data"]["target"] == "queue"
    assert config["evaluation"]["slice_column"] == "channel"
    assert config["evaluation"]["threshold"] == 0.6
    assert '"mlba' not in (renders["csv"] / "pyproject.toml").read_text()  # demo data only


def test_a_text_column_equal_to_the_target_is_refused_before_a_file_is_written(tmp_path: Path) -> None:
    destination = tmp_path / "never"
    answers_ = {"modality": "text", "dataset": "csv", "text_column": "label", "target_column": "Label"}
    result = subprocess.run(copy_command(destination, answers_), capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "text_column must differ from target_column" in result.stdout + result.stderr
    assert not destination.exists() or not any(destination.iterdir())


# ---------------------------------------------------------------- slow: the renders run


def messy_csv(path: Path) -> Path:
    """Short reviews with what real exports hold: an empty text, one of only tags, the same text
    under both labels and a row with bytes that are not UTF-8."""
    good = ["a wonderful film", "great acting and a moving story", "I loved every minute", "brilliant"]
    bad = ["an awful film", "boring and far too long", "I hated every minute", "dreadful"]
    rows = [
        {"text": f"{words} ({number})", "label": label}
        for number in range(40)
        for words, label in ((good[number % 4], "pos"), (bad[number % 4], "neg"))
    ]
    rows += [{"text": "", "label": "pos"}, {"text": "<br /><br />", "label": "neg"}]
    rows += [{"text": "it was a film", "label": "pos"}, {"text": "it was a film", "label": "neg"}]
    raw = pd.DataFrame(rows).to_csv(index=False).encode()
    raw = raw.replace(b"brilliant (3)", b"brilliant \xff\xfe (3)")
    path.write_bytes(raw)
    return path


def check_demo_page(driver: Any, base: str, meta: dict[str, Any]) -> None:
    """The demo page in headless Chromium: the example text and one typed in each get a prediction
    with the classes as bars, and nothing is fetched from elsewhere."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    open_page(driver, f"{base}/")
    wait.until(ec.visibility_of_element_located((By.ID, "predict-form")))
    area = driver.find_element(By.ID, "text-input")
    assert area.get_attribute("value") == meta["example"]["text"]

    def predicted() -> str:
        driver.find_element(By.ID, "submit").click()
        wait.until(ec.visibility_of_element_located((By.ID, "result")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#probabilities tbody tr")
        assert len(rows) == len(meta["classes"])
        text = driver.find_element(By.ID, "prediction").text
        driver.execute_script("document.getElementById('result').hidden = true")
        return str(text)

    expected = http("POST", f"{base}/predict", {"texts": [meta["example"]["text"]]})[1]["predictions"][0]
    assert predicted() == f"{meta['target']}: {expected}"
    area.clear()
    area.send_keys("An awful, boring film. I hated it and want my money back.")
    assert predicted() == f"{meta['target']}: negative"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#example option")) == 1 + len(meta["examples"])
    assert_loaded_offline(driver, base)


@pytest.mark.slow
@pytest.mark.parametrize("framework", frameworks_for("text"))
def test_text_project_runs_end_to_end(tmp_path: Path, framework: str, request: pytest.FixtureRequest) -> None:
    project = render(tmp_path / "p", {"modality": "text", "framework": framework})
    slug = answers(project)["project_slug"]
    env = project_env()
    for command in PROJECT_COMMANDS:
        run(command, cwd=project, env=env)
    report = strict_json(project / "reports" / "metrics.json")
    assert report["gate"]["passed"], report["gate"]
    assert report["test"]["accuracy"] >= 0.8
    assert report["linear_baseline"]["model"] == "TF-IDF + logistic regression"
    assert report["linear_baseline"]["test"]["accuracy"] > 0.85
    assert {row["column"] for row in report["slices"]} == {"words"}  # length buckets, no slice column
    assert report["data_quality"]["duplicates"]["exact"]["count"] == 17  # the corpus' own repeats
    ngrams = report["indicative_ngrams"]
    assert set(ngrams) == {"negative", "positive"}
    negative = {"bad", "worst", "awful", "waste", "boring", "terrible", "poor", "horrible", "stupid"}
    positive = {"great", "excellent", "wonderful", "amazing", "brilliant", "perfect", "enjoyed", "best"}
    assert negative & {row["ngram"] for row in ngrams["negative"]}
    assert positive & {row["ngram"] for row in ngrams["positive"]}
    card = (project / "MODEL_CARD.md").read_text()
    assert "The start of each of those texts" in card
    assert "sway the model" in card
    drift = strict_json(project / "reports" / "drift.json")
    assert drift["retrain"] is False

    port = free_port()
    with server_process(serve_command(project, port), project, port, project / ".serve.log", env) as base:
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200
        assert meta["input"] == "text"
        example = meta["example"]["text"]
        status, body = http("POST", f"{base}/predict", {"texts": [example, "A great film."]})
        assert status == 200, body
        assert len(body["predictions"]) == 2
        assert set(body["probabilities"][0]) == {"negative", "positive"}
        status, body = http("POST", f"{base}/predict", {"texts": ["a" * 1_048_576]})
        assert status == 422, body
        assert body["detail"][0]["loc"] == ["body", "texts", 0], body
        assert "20000" in body["detail"][0]["msg"]
        status, body = http("POST", f"{base}/predict", {"texts": [42]})
        assert status == 422, body
        assert body["detail"][0]["loc"] == ["body", "texts", 0], body
        if framework == "sklearn":  # the page and the API are the same for every framework: run once
            check_demo_page(request.getfixturevalue("browser"), base, meta)
            operations, failures = fuzz_api(base, {}, max_examples=25)
            assert operations >= 5, "\n\n".join(failures)
            assert not failures, "\n\n".join(failures)
            # The largest request the contract takes: 100 texts of the longest allowed length.
            longest = ("A fine film, " * 2000)[: meta["max_chars"]]
            texts = [longest] * (2_000_000 // len(longest))

            def heavy() -> int:
                return http("POST", f"{base}/predict", {"texts": texts}, timeout=300)[0]

            assert_health_answers_while(
                base, heavy, f"{len(texts)} long texts", "largest_text_request_health_p99_s"
            )
    print(json.dumps({"framework": framework, "test": report["test"], "seconds": report["seconds"]}))

    if framework == "sklearn":  # the user's file: empty texts, a text under two labels, bad bytes
        csv = messy_csv(project / "data" / "raw" / "messy.csv")
        messy = with_config(
            project,
            "messy.yaml",
            {
                "data": {"source": str(csv.relative_to(project)), "target": "label", "min_rows": 50},
                "text": {"column": "text"},
            },
        )
        command = ["uv", "run", "--frozen", "python", "-m", slug, "data", "--config", str(messy)]
        done = run(command, cwd=project, env={**env, "COLUMNS": "200"})
        output = done.stdout + done.stderr
        for expected in (
            "1 rows left out, undecodable bytes: rows 8",
            "2 rows left out, empty or whitespace only",
            "2 copies of a text under different labels, all left out",
        ):
            assert expected in output, output
        manifest = strict_json(project / "data" / "processed" / "manifest.json")
        assert sum(manifest["rows"].values()) == 80 - 1
