"""Image projects (issue 13): the modality changes only the modules whose job differs, and every
image framework's default render runs from pixels to a served, monitored model.

The fast tier renders tabular and image projects and diffs them, and checks that xgboost with images
is refused before a file is written. The slow tier installs each image framework's render and runs
its own commands: lint, type-check, its tests, ``make all`` on the digits, then the server, with a
multipart upload, a base64 body, a text file posted as an image and a decompression bomb (the
server's memory is read from /proc before and after).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import uuid
import zlib
from pathlib import Path
from typing import Any

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
)
from tests.matrix import DATE_FILES, MODALITY_FILES, SAME_STORY, frameworks_for, project_files
from tests.matrix import MODALITY_SHARED_MODULES as SHARED_MODULES


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("modalities")
    variants = {
        "tabular": {"framework": "pytorch"},
        "image": {"modality": "image", "framework": "pytorch"},
        "image-sklearn": {"modality": "image", "framework": "sklearn"},
        "tabular-sklearn": {"framework": "sklearn"},
    }
    return {name: render(base / name, {**SAME_STORY, **answers}) for name, answers in variants.items()}


def test_the_modality_changes_only_the_modules_whose_job_differs(renders: dict[str, Path]) -> None:
    files = {name: project_files(project) for name, project in renders.items()}
    tabular, image = files["tabular"], files["image"]
    assert tabular.keys() - image.keys() == DATE_FILES
    assert image.keys() - tabular.keys() == {"imaging.py"}  # opening any image, for data and service
    differing = {name for name in image.keys() & tabular.keys() if tabular[name] != image[name]}
    assert differing - MODALITY_FILES == set(), f"image changes {sorted(differing - MODALITY_FILES)}"
    assert {"data.py", "features.py", "contract.py", "model.py"} <= differing
    for module in SHARED_MODULES:
        texts = {files[name][f"{module}.py"] for name in files}
        assert len(texts) == 1, f"{module}.py differs between modalities"
    # PyTorch's one training loop trains the tabular and the image network alike, and one model half
    # predicts, describes and saves both.
    for module in ("loop.py", "network.py"):
        assert files["tabular"][module] == files["image"][module], module
    # The scikit-learn model module reads tabular features and pixels alike.
    assert files["image-sklearn"]["model.py"] == files["tabular-sklearn"]["model.py"]


def test_image_projects_answer_in_their_own_terms(renders: dict[str, Path]) -> None:
    project = renders["image"]
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    assert config["data"]["source"] == "sklearn:digits"
    assert config["data"]["target"] == "label"
    assert config["image"]["size"] == [8, 8]
    assert config["evaluation"]["metric"] == "accuracy"
    assert answers(project)["modality"] == "image"
    pyproject = (project / "pyproject.toml").read_text()
    assert '"python-multipart' in pyproject
    assert '"pillow' in pyproject
    assert '"python-multipart' not in (renders["tabular"] / "pyproject.toml").read_text()


def test_xgboost_with_images_is_refused_before_a_file_is_written(tmp_path: Path) -> None:
    destination = tmp_path / "never"
    result = subprocess.run(
        copy_command(destination, {"modality": "image", "framework": "xgboost"}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "pytorch, tensorflow or sklearn" in message, message
    assert not destination.exists() or not any(destination.iterdir())


# ---------------------------------------------------------------- slow: the renders run


def bomb_png(side: int = 20_000) -> bytes:
    """A ``side`` x ``side`` grey PNG: a few hundred KB on the wire, 400 MB once decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes(side)
    compressor = zlib.compressobj(9)
    stream = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def check_health_under_the_largest_request(base: str) -> None:
    """The largest request the API takes (images of 6000x6000 grey pixels, as many as the default
    pixel budget holds) is answered while /health keeps answering within 100 ms; one more is 413."""
    side, budget = 6000, 100_000_000  # image.max_pixels is 40M each, serving.max_request_pixels 100M
    image = base64.b64encode(bomb_png(side)).decode()
    most = budget // (side * side)
    status, _ = http("POST", f"{base}/predict", {"images": [image] * (most + 1)}, timeout=300)
    assert status == 413
    assert_health_answers_while(
        base,
        lambda: http("POST", f"{base}/predict", {"images": [image] * most}, timeout=300)[0],
        f"{most} images of {side}x{side}",
        "largest_image_request_health_p99_s",
    )


def upload(url: str, files: list[tuple[str, bytes, str]]) -> tuple[int, dict]:
    """POST ``files`` as multipart/form-data in the field ``images``, as a browser form does."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="{name}"\r\n'
        f"Content-Type: {kind}\r\n\r\n".encode()
        + payload
        + b"\r\n"
        for name, payload, kind in files
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return http("POST", url, data=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})


def server_rss_mb(port: int) -> float:
    """Resident memory of the process serving ``port`` (the uvicorn process), from /proc."""
    needle = f"--port\x00{port}".encode()
    sizes = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes() and b"serve" in cmdline.read_bytes():
                status = (cmdline.parent / "status").read_text()
                sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024)  # type: ignore[index]
        except (OSError, TypeError):
            continue
    assert sizes, f"no process serves port {port}"
    return max(sizes)


def check_demo_page(driver: Any, base: str, meta: dict[str, Any], example: bytes, tmp_path: Path) -> None:
    """The demo page in headless Chromium: the test example, an uploaded file and a drawing each get
    a prediction with the classes as bars, and nothing is fetched from elsewhere."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    open_page(driver, f"{base}/")
    wait.until(ec.visibility_of_element_located((By.ID, "predict-form")))
    assert driver.find_element(By.ID, "picture-preview").is_displayed()  # the test example
    assert_loaded_offline(driver, base)

    def predicted() -> str:
        driver.find_element(By.ID, "submit").click()
        wait.until(ec.visibility_of_element_located((By.ID, "result")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#probabilities tbody tr")
        assert len(rows) == len(meta["classes"])
        text = driver.find_element(By.ID, "prediction").text
        driver.execute_script("document.getElementById('result').hidden = true")
        return str(text)

    expected = http("POST", f"{base}/predict", {"images": [meta["example"]["image"]]})[1]["predictions"][0]
    assert predicted() == f"{meta['target']}: {expected}"
    picture = tmp_path / "upload.png"
    picture.write_bytes(example)
    driver.find_element(By.ID, "picture-file").send_keys(str(picture))
    assert predicted() == f"{meta['target']}: {expected}"
    canvas = driver.find_element(By.ID, "sketch")
    ActionChains(driver).move_to_element_with_offset(canvas, -20, -50).click_and_hold().move_by_offset(
        0, 100
    ).release().perform()
    assert predicted().startswith(f"{meta['target']}: ")
    assert_loaded_offline(driver, base)


def messy_folder(project: Path) -> Path:
    """The digits as class folders, plus a truncated PNG, a text file and one scan copied under
    another class: the three faults a real image folder has."""
    digits = project / "data" / "raw" / "digits"
    folder = project / "data" / "raw" / "messy"
    for path in sorted(digits.rglob("*.png")):
        target = folder / path.relative_to(digits)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    first = sorted((folder / "3").glob("*.png"))[0]
    (folder / "3" / "cut-short.png").write_bytes(first.read_bytes()[: len(first.read_bytes()) // 2])
    (folder / "5" / "readme.txt").write_text("not an image\n")
    (folder / "8" / "copied.png").write_bytes(first.read_bytes())
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("framework", frameworks_for("image"))
def test_image_project_runs_end_to_end(
    tmp_path: Path, framework: str, request: pytest.FixtureRequest
) -> None:
    project = render(tmp_path / "p", {"modality": "image", "framework": framework})
    slug = answers(project)["project_slug"]
    env = project_env()
    for command in PROJECT_COMMANDS:
        run(command, cwd=project, env=env)
    report = strict_json(project / "reports" / "metrics.json")
    assert report["gate"]["passed"], report["gate"]
    assert report["test"]["accuracy"] > 0.9 > report["baseline"]["accuracy"]
    assert len(report["per_class"]) == 10
    figures = {Path(name).name for name in report["figures"]}
    assert {"confusion_matrix.png", "confidently_wrong.png"} <= figures
    assert "Per class on the test set" in (project / "MODEL_CARD.md").read_text()
    drift = strict_json(project / "reports" / "drift.json")
    assert {"brightness", "contrast"} <= {row["feature"] for row in drift["features"]}

    port = free_port()
    with server_process(serve_command(project, port), project, port, project / ".serve.log", env) as base:
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200
        assert meta["features"][0]["kind"] == "image"
        example = base64.b64decode(meta["example"]["image"])
        status, body = http("POST", f"{base}/predict", {"images": [meta["example"]["image"]]})
        assert status == 200, body
        assert body["predictions"][0] in meta["classes"], body
        status, uploaded = upload(f"{base}/predict", [("digit.png", example, "image/png")])
        assert status == 200, uploaded
        assert uploaded["predictions"] == body["predictions"], uploaded
        status, refused = upload(f"{base}/predict", [("notes.png", b"just some text\n", "image/png")])
        assert status in {415, 422}, refused
        assert "images[0]" in refused["detail"], refused
        before = server_rss_mb(port)
        bomb = bomb_png()
        status, refused = upload(f"{base}/predict", [("bomb.png", bomb, "image/png")])
        assert status == 413, refused
        after = server_rss_mb(port)
        assert after - before < 200, f"RSS grew {after - before:.0f} MB on a {len(bomb) // 1024} KB bomb"
        status, _ = http("GET", f"{base}/ready")
        assert status == 200
        if framework == "sklearn":  # the page and the API are the same for every framework: run once
            check_demo_page(request.getfixturevalue("browser"), base, meta, example, tmp_path)
            operations, failures = fuzz_api(base, {}, max_examples=25)
            assert operations >= 5, "\n\n".join(failures)
            assert not failures, "\n\n".join(failures)
            for nested in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000):
                status, refused = http("POST", f"{base}/predict", data=nested)
                assert status == 422, (status, refused)
                assert "JSON" in json.dumps(refused), (status, refused)
            check_health_under_the_largest_request(base)
    print(
        json.dumps(
            {
                "framework": framework,
                "bomb_kb": len(bomb) // 1024,
                "rss_before_mb": round(before),
                "rss_after_mb": round(after),
            }
        )
    )

    if framework == "sklearn":  # the user's folder, with a corrupt file, a non-image and a cross-class copy
        folder = messy_folder(project)
        config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
        config["data"]["source"] = str(folder.relative_to(project))
        path = project / "configs" / "messy.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        command = ["uv", "run", "--frozen", "python", "-m", slug, "all", "--config", str(path)]
        result = run(command, cwd=project, env=env)
        card = (project / "MODEL_CARD.md").read_text()
        for name in ("cut-short.png", "readme.txt", "copied.png"):
            assert name in card, name
            assert name in result.stdout + result.stderr or name in card
