"""The foundation: plain ``copier copy`` renders a project that installs, lints, tests, runs its
pipeline and answers HTTP predictions (issue 2, acceptance 2 and 3).

Fast tests check the render itself; the slow tier runs the rendered project's own commands.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    OWN_TESTS,
    PROJECT_COMMANDS,
    ROOT,
    answers,
    assert_reviewers_report,
    copy_command,
    http,
    project_env,
    render,
    run,
    served,
    strict_json,
)

# ---------------------------------------------------------------- fast: the render itself


def test_copier_yml_renders_from_the_template_subdirectory() -> None:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert config["_subdirectory"] == "template"
    assert "_jinja_extensions" not in config, "the default path must not need --trust"
    assert "_tasks" not in config, "the default path must not need --trust"


def test_default_render_has_the_recognisable_layout(tmp_path: Path) -> None:
    project = render(tmp_path / "p")
    slug = answers(project)["project_slug"]
    assert slug == "tumour_triage"
    for path in (
        "pyproject.toml",
        "Makefile",
        "README.md",
        ".gitignore",
        "configs/config.yaml",
        "data/raw",
        "data/interim",
        "data/processed",
        "models",
        "reports/figures",
        "notebooks",
        f"src/{slug}/data.py",
        f"src/{slug}/features.py",
        f"src/{slug}/model.py",
        f"src/{slug}/train.py",
        f"src/{slug}/evaluate.py",
        f"src/{slug}/serve/__init__.py",
        f"src/{slug}/serve/app.py",
        f"src/{slug}/monitor.py",
        f"src/{slug}/cli.py",
        "tests/conftest.py",
    ):
        assert (project / path).exists(), path
    leftovers = [p for p in project.rglob("*") if p.suffix == ".jinja" or "{{" in p.name or "{%" in p.name]
    assert leftovers == []
    notebook = json.loads(next((project / "notebooks").glob("*.ipynb")).read_text())
    assert any(f"from {slug}" in "".join(cell["source"]) for cell in notebook["cells"])


def test_answers_drive_the_config(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"task_type": "regression", "project_name": "Progress Forecast"})
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    assert config["task"] == "regression"
    assert config["data"]["source"] == "sklearn:diabetes"
    assert config["evaluation"]["metric"] == "rmse"
    assert config["evaluation"]["slice_column"] == "sex"
    assert answers(project)["project_slug"] == "progress_forecast"


def test_a_csv_project_is_never_described_with_the_demos_text(tmp_path: Path) -> None:
    answers_ = {
        "dataset": "csv",
        "task_type": "regression",
        "target_column": "price",
        "data_source": "x/houses.csv",
    }
    project = render(tmp_path / "p", answers_)
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    for text in (config["project"]["description"], config["problem_statement"]):
        assert "`price`" in text
        assert "diabetes" not in text
        assert "biops" not in text
    assert "houses.csv" in config["project"]["description"]
    # An error metric's scale is unknown on the user's data: the gate is the baseline margin alone.
    assert config["evaluation"]["threshold"] is None
    assert config["evaluation"]["baseline_margin"] == 0.1


def test_a_slice_column_equal_to_the_target_in_another_case_is_refused(tmp_path: Path) -> None:
    data = {"dataset": "csv", "target_column": "Species", "slice_column": "species"}
    result = subprocess.run(copy_command(tmp_path / "d", data, quiet=False), capture_output=True, text=True)
    assert result.returncode != 0
    assert "slice_column must differ from target_column" in result.stdout + result.stderr


def test_serving_none_leaves_no_server(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"serving": "none"})
    slug = answers(project)["project_slug"]
    assert not (project / "src" / slug / "serve").exists()
    assert not (project / "tests" / "test_serve.py").exists()
    assert "fastapi" not in (project / "pyproject.toml").read_text()
    assert "serve" not in (project / "Makefile").read_text().split(".PHONY")[1].splitlines()[0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("project_slug", "9 bad slug"),
        ("project_slug", "class"),
        ("project_slug", "json"),  # would shadow the standard library inside the project
        ("project_slug", "pandas"),  # or a dependency
        ("author_email", "not-an-email"),
        ("github_user", "bad user!"),
        ("target_threshold", "1.5"),
        ("problem_statement", "short"),
    ],
)
def test_invalid_answer_fails_before_any_file_is_written(tmp_path: Path, key: str, value: str) -> None:
    dest = tmp_path / "dest"
    result = subprocess.run(
        copy_command(dest, {key: value}, quiet=False),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert key in result.stdout + result.stderr
    assert not dest.exists() or not any(dest.iterdir())


# ---------------------------------------------------------------- slow: run what was rendered

PENGUINS = {
    "dataset": "csv",
    "target_column": "species",
    "slice_column": "island",
    "target_threshold": "0.8",
    "project_name": "Penguin Species",
}


def penguins_csv(project: Path) -> Path:
    """A real held-out CSV with missing values and categorical columns, from a PyPI package."""
    palmerpenguins = pytest.importorskip("palmerpenguins")
    source = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
    target = project / "data" / "raw" / "data.csv"
    shutil.copyfile(source, target)
    return target


def exercise(project: Path) -> dict[str, Any]:
    """Install, lint, type-check, test, run the pipeline, serve; return the metrics report."""
    env = project_env()
    for command in PROJECT_COMMANDS:
        run(command, cwd=project, env=env)
    report = strict_json(project / "reports" / "metrics.json")
    assert (project / "MODEL_CARD.md").read_text().startswith("# Model card")
    assert sorted(p.name for p in (project / "reports" / "figures").glob("*.png"))
    with served(project, env) as base:
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200
        # The exported graph answers: it passed its check against the native model at training.
        assert meta["runtime"]["name"] == "onnxruntime", meta["runtime"]
        assert (project / "models" / "model" / "model.onnx").is_file()
        example = meta["example"]
        status, body = http("POST", f"{base}/predict", {"records": [example]})
        assert status == 200, body
        assert len(body["predictions"]) == 1
        assert body["model_version"] == meta["model_version"]
        missing = dict(example)
        dropped = next(iter(missing))
        missing.pop(dropped)
        status, body = http("POST", f"{base}/predict", {"records": [missing]})
        assert status == 422
        assert dropped in json.dumps(body["detail"])
    return report


@pytest.mark.slow
def test_default_classification_project_runs_end_to_end(tmp_path: Path) -> None:
    project = render(tmp_path / "p")
    report = exercise(project)
    assert_reviewers_report(report)
    assert report["gate"]["passed"]
    assert report["gate"]["metric"] == "f1"
    assert report["test"]["f1"] > report["baseline"]["f1"]
    assert {"confusion_matrix.png", "roc_curve.png"} <= {Path(f).name for f in report["figures"]}
    assert report["slices"], "the demo runs a bias check"
    # A user's first edit is the seed: the tests that read the split (which rows land where, which
    # real rows the demo page offers) hold for other seeds too (1 and 123 once failed them).
    config = project / "configs" / "config.yaml"
    default = config.read_text()
    assert "\nseed: 42\n" in default
    for seed in (1, 123):
        config.write_text(default.replace("\nseed: 42\n", f"\nseed: {seed}\n"))
        run([*OWN_TESTS, "tests/test_data.py", "tests/test_serve.py"], cwd=project)
    config.write_text(default)


@pytest.mark.slow
def test_regression_project_runs_end_to_end(tmp_path: Path) -> None:
    report = exercise(render(tmp_path / "p", {"task_type": "regression"}))
    assert_reviewers_report(report)
    assert report["gate"]["metric"] == "rmse"
    assert report["test"]["rmse"] < report["baseline"]["rmse"]
    assert "residuals.png" in {Path(f).name for f in report["figures"]}
    assert {row["slice"] for row in report["slices"]} == {"sex = group_1", "sex = group_2"}


@pytest.mark.slow
def test_user_csv_with_missing_values_and_categories_runs_end_to_end(tmp_path: Path) -> None:
    project = render(tmp_path / "p", PENGUINS)
    penguins_csv(project)
    report = exercise(project)
    manifest = json.loads((project / "data" / "processed" / "manifest.json").read_text())
    assert manifest["missing_values"]["sex"] == 11
    schema = json.loads((project / "data" / "processed" / "schema.json").read_text())
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    assert kinds["island"] == "categorical"
    assert kinds["bill_length_mm"] == "numeric"
    assert sorted(schema["classes"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert {row["slice"] for row in report["slices"]} == {
        "island = Biscoe",
        "island = Dream",
        "island = Torgersen",
    }


@pytest.mark.slow
def test_evaluation_gate_fails_make_all_when_the_target_is_missed(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"target_threshold": "1.0"})
    env = project_env()
    run(["uv", "sync"], cwd=project, env=env)
    result = run(["make", "all"], cwd=project, env=env, check=False)
    assert result.returncode != 0
    assert "gate FAILED" in result.stdout + result.stderr


def messy_penguins(path: Path) -> None:
    """80 real rows made messy as users' files are: cp1252, accented and spaced headers, a near-unique
    name column, duplicate rows and rows without a target."""
    import pandas as pd

    palmerpenguins = pytest.importorskip("palmerpenguins")
    frame = pd.read_csv(Path(palmerpenguins.__file__).parent / "data" / "penguins.csv").sample(
        80, random_state=3
    )
    frame = frame.rename(columns={"island": "Île", "bill_length_mm": "Bill length (mm)"})
    frame["observer"] = [f"Observateur n°{i}" for i in range(len(frame))]
    frame = pd.concat([frame, frame.head(6)], ignore_index=True)  # two people can record alike
    frame.loc[frame.index[10:13], "species"] = None
    frame.to_csv(path, index=False, encoding="cp1252")


@pytest.mark.slow
def test_a_small_messy_real_file_runs_make_all_honestly(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {**PENGUINS, "slice_column": "Île"})
    messy_penguins(project / "data" / "raw" / "data.csv")
    env = project_env()
    run(["uv", "sync", "--quiet"], cwd=project, env=env)
    result = run(["make", "all"], cwd=project, env=env)  # no drift between its own splits, by construction
    output = result.stdout + result.stderr
    assert "3 without a target: dropped" in output
    assert "6 exact duplicates: kept" in output
    assert "'observer' (identifier-like" in output
    manifest = json.loads((project / "data" / "processed" / "manifest.json").read_text())
    assert manifest["quality"]["encoding"] == "cp1252"
    card = (project / "MODEL_CARD.md").read_text()
    assert "Rows without a target: 3 (dropped)" in card
    assert "Exact duplicate rows: 6 (kept)" in card
    drift = json.loads((project / "reports" / "drift.json").read_text())
    assert drift["retrain"] is False
    assert all("current_rows" in row for row in drift["features"])
    with served(project, env) as base:
        meta = http("GET", f"{base}/metadata")[1]
        example = meta["example"]
        assert {"Île", "Bill length (mm)"} <= set(example)  # the file's own header names
        assert meta["runtime"]["name"] == "onnxruntime"  # graph inputs are identifiers: mapped back
        assert http("POST", f"{base}/predict", {"records": [example]})[0] == 200
        status, body = http("POST", f"{base}/predict", {"records": [{**example, "Île": "Atlantis"}]})
        assert status == 422
        assert "Île" in json.dumps(body["detail"], ensure_ascii=False)
