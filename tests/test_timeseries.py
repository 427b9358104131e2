"""Time-series projects (issue 14): forecasting on the shared contract.

The fast tier renders tabular and forecasting projects and diffs them (only the modules whose job
differs may change), checks the questions asked only for time series, and that impossible answers
are refused before a file is written. The slow tier installs each of the four frameworks' render
and runs its own commands (lint, type-check, its tests, ``make all`` on the Mauna Loa CO2 series),
then the server: ``/forecast`` from the stored history and from a client's, and every bad request a
422 naming the problem. The scikit-learn run also drives the demo page in headless Chromium, and
takes a messy multi-series CSV and one whose time column does not parse.
"""

from __future__ import annotations

import json
import re
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
from tests.matrix import DATE_FILES, MODALITY_FILES, SAME_STORY, frameworks_for, project_files
from tests.matrix import MODALITY_SHARED_MODULES as SHARED_MODULES

# What a forecasting render may change besides the image modality's files: its leakage test.
# A forecast's own files: the proof that no feature reads the future, and the forecaster itself.
FORECASTING_FILES = {*MODALITY_FILES, "tests/test_features.py", "forecaster.py"}


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("forecasting")
    variants = {
        "tabular": {"framework": "sklearn"},
        "timeseries": {"modality": "timeseries", "framework": "sklearn"},
        "timeseries-xgboost": {"modality": "timeseries", "framework": "xgboost"},
        "csv": {
            "modality": "timeseries",
            "dataset": "csv",
            "data_source": "data/raw/sales.csv",
            "target_column": "units",
            "time_column": "week",
            "time_format": "%d/%m/%Y",
            "series_id_column": "store",
            "frequency": "W-SUN",
            "horizon": 8,
            "target_metric": "smape",
        },
    }
    return {name: render(base / name, {**SAME_STORY, **answers}) for name, answers in variants.items()}


def test_the_modality_changes_only_the_modules_whose_job_differs(renders: dict[str, Path]) -> None:
    tabular, forecasting = project_files(renders["tabular"]), project_files(renders["timeseries"])
    assert set(forecasting) - set(tabular) == {"tests/test_features.py", "forecaster.py"}
    assert set(tabular) - set(forecasting) == set()
    for module in DATE_FILES:  # one reading of dates for a table's columns and a series' time
        assert tabular[module] == forecasting[module], f"{module} differs between tabular and time series"
    differing = {name for name in tabular if tabular[name] != forecasting[name]}
    differing |= {"tests/test_features.py", "forecaster.py"}
    unexpected = differing - FORECASTING_FILES
    assert unexpected == set(), f"time series changes {sorted(unexpected)}"
    assert {"data.py", "features.py", "contract.py", "model.py"} <= differing
    for module in SHARED_MODULES:
        same = tabular[f"{module}.py"] == forecasting[f"{module}.py"]
        assert same, f"{module}.py differs between modalities"
    # The forecasting itself lives in forecaster.py: the model modules only choose and save a regressor.
    xgboost = project_files(renders["timeseries-xgboost"])
    for module in ("forecaster.py", "features.py"):
        assert xgboost[module] == forecasting[module], module
    assert len(xgboost["model.py"].splitlines()) < 60
    assert len(forecasting["model.py"].splitlines()) < 60


def test_forecasting_projects_answer_in_their_own_terms(renders: dict[str, Path]) -> None:
    config = yaml.safe_load((renders["timeseries"] / "configs" / "config.yaml").read_text())
    assert config["data"]["source"] == "statsmodels:co2"
    assert config["data"]["target"] == "co2"
    assert config["task"] == "regression"
    assert config["evaluation"]["metric"] == "mase"
    assert config["evaluation"]["threshold"] == 1.0  # MASE below 1: better than seasonal naive in sample
    assert config["timeseries"]["time_column"] == "month"
    assert config["timeseries"]["horizon"] == 12
    pyproject = (renders["timeseries"] / "pyproject.toml").read_text()
    assert '"mlforecast' in pyproject
    assert '"statsmodels' in pyproject
    assert '"mlforecast' not in (renders["tabular"] / "pyproject.toml").read_text()
    assert "POST /forecast" in (renders["timeseries"] / "README.md").read_text()


def test_the_users_series_questions_reach_the_config(renders: dict[str, Path]) -> None:
    config = yaml.safe_load((renders["csv"] / "configs" / "config.yaml").read_text())
    settings = config["timeseries"]
    assert (settings["time_column"], settings["series_column"]) == ("week", "store")
    assert (settings["frequency"], settings["horizon"]) == ("W-SUN", 8)
    assert config["data"]["target"] == "units"
    assert config["data"]["time_format"] == "%d/%m/%Y"
    demo = yaml.safe_load((renders["timeseries"] / "configs" / "config.yaml").read_text())
    assert demo["data"]["time_format"] is None  # decided from the whole column
    assert config["evaluation"]["metric"] == "smape"
    assert config["evaluation"]["slice_column"] == "store"  # per-series metrics are the slice check
    assert '"statsmodels' not in (renders["csv"] / "pyproject.toml").read_text()  # demo data only


@pytest.mark.parametrize(
    ("answers_", "message"),
    [
        ({"horizon": 0}, "horizon must be between 1 and 1000"),
        ({"frequency": "every month"}, "pandas offset alias"),
        ({"dataset": "csv", "time_format": "dd/mm/yyyy"}, "time_format must be a strftime format"),
    ],
)
def test_impossible_answers_are_refused_before_a_file_is_written(
    tmp_path: Path, answers_: dict[str, Any], message: str
) -> None:
    destination = tmp_path / "never"
    result = subprocess.run(
        copy_command(destination, {"modality": "timeseries", **answers_}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr, result.stdout + result.stderr
    assert not destination.exists() or not any(destination.iterdir())


# ---------------------------------------------------------------- slow: the renders run


def messy_csv(path: Path) -> Path:
    """Three monthly series in one file: a repeated month, a missing one, shuffled rows, and a third
    series too short for the horizon."""
    months = pd.date_range("2005-01-01", periods=96, freq="MS")
    frames = []
    for number, store in enumerate(("north", "south")):
        season = [((m % 12) - 6) ** 2 / 4 for m in range(96)]
        values = [100 * (number + 1) + 0.4 * step + season[step] for step in range(96)]
        frames.append(pd.DataFrame({"store": store, "month": months.strftime("%Y-%m-%d"), "co2": values}))
    frames.append(frames[0].iloc[:15].assign(store="east"))
    frame = pd.concat(frames, ignore_index=True)
    frame = pd.concat([frame.drop(index=40), frame.iloc[[10]]], ignore_index=True)
    frame.sample(frac=1.0, random_state=3).to_csv(path, index=False)
    return path


def refused(base: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = http("POST", f"{base}/forecast", body)
    assert status == 422, (status, answer)
    return dict(answer["detail"][0])


def check_bad_requests(base: str, example: dict[str, Any]) -> None:
    """Each way a forecast request can be wrong gets a 422 that names it, never a 500."""
    history = example["history"]
    swapped = [*history[:3], history[4], history[3], *history[5:]]
    assert refused(base, {**example, "history": swapped})["loc"] == ["body", "history", 4, "time"]
    gap = refused(base, {**example, "history": history[:5] + history[6:]})
    assert gap["loc"] == ["body", "history", 5, "time"]
    assert "MS" in gap["msg"]
    short = refused(base, {**example, "history": history[-2:]})
    assert short["loc"] == ["body", "history"]
    assert "at least" in short["msg"]
    assert refused(base, {**example, "series_id": "elsewhere"})["loc"] == ["body", "series_id"]
    assert refused(base, {**example, "horizon": example["horizon"] + 1})["loc"] == ["body", "horizon"]
    # Dates pandas cannot hold (years 1 and 193, a forecast past 2262) and a history off the grid.
    for start in (1, 193, 2262 - len(history) // 12):
        monthly = [
            {"time": f"{start + i // 12:04d}-{i % 12 + 1:02d}-01T00:00:00", "value": point["value"]}
            for i, point in enumerate(history)
        ]
        beyond = refused(base, {**example, "history": monthly})
        assert beyond["loc"][:2] == ["body", "history"], beyond
        assert beyond["loc"][-1] == "time", beyond
    mid_month = [{**point, "time": point["time"][:8] + "15" + point["time"][10:]} for point in history]
    off_grid = refused(base, {**example, "history": mid_month})
    assert off_grid["loc"] == ["body", "history", 0, "time"], off_grid
    assert "grid" in off_grid["msg"], off_grid


def check_demo_page(driver: Any, base: str, meta: dict[str, Any]) -> None:
    """The demo page in headless Chromium draws the history, the forecast and its band for a chosen
    horizon, lists every step, and fetches nothing from elsewhere."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    open_page(driver, f"{base}/")
    wait.until(ec.visibility_of_element_located((By.ID, "predict-form")))
    horizon = driver.find_element(By.ID, "horizon")
    horizon.clear()
    horizon.send_keys("5")
    driver.find_element(By.ID, "submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "chart")))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#forecast-table tbody tr")) == 5
    for shape in ("polygon.band", "polyline.history", "polyline.forecast"):
        points = driver.find_element(By.CSS_SELECTOR, f"#chart {shape}").get_attribute("points")
        assert points, shape
        assert "NaN" not in points, shape
    assert driver.find_element(By.ID, "prediction").text.startswith(f"{meta['target']} in 5 steps: ")
    assert_loaded_offline(driver, base)


@pytest.mark.slow
@pytest.mark.parametrize("framework", frameworks_for("timeseries"))
def test_forecasting_project_runs_end_to_end(
    tmp_path: Path, framework: str, request: pytest.FixtureRequest
) -> None:
    project = render(tmp_path / "p", {"modality": "timeseries", "framework": framework})
    slug = answers(project)["project_slug"]
    env = project_env()
    for command in PROJECT_COMMANDS:
        run(command, cwd=project, env=env)
    report = strict_json(project / "reports" / "metrics.json")
    assert report["gate"]["passed"], report["gate"]
    assert report["baseline_strategy"]["mase"] == "seasonal naive"
    assert report["test"]["mase"] < 1.0
    assert report["test"]["mase"] < report["baseline"]["mase"]
    backtest = report["cross_validation"]["metrics"]["mase"]
    # The configured three folds, unless a busy machine made them pass evaluation.cv_seconds:
    # the plan drops the third up front when one timed fit says so, or the folds stop after
    # two when their own time says so; either way the plan names the three it did not run.
    folds = report["cross_validation"]["folds"]
    plan = report["cross_validation"]["plan"]
    assert folds in (2, 3), report["cross_validation"]
    assert len(backtest["folds"]) == folds
    assert plan.startswith(f"{folds} folds on "), plan
    assert folds == 3 or re.search(r"stopped after 2 of 3 folds|3 folds on \d+ rows would take", plan)
    assert backtest["mean"] < 1.0
    interval = report["forecast"]["interval"]
    assert interval["level"] == 0.9
    assert 0 <= interval["coverage"] <= 1
    figures = {Path(name).name for name in report["figures"]}
    assert {"forecast.png", "error_by_step.png"} <= figures
    card = (project / "MODEL_CARD.md").read_text()
    assert "measured coverage on the test steps" in card
    assert "seasonal naive" in card
    drift = strict_json(project / "reports" / "drift.json")
    assert drift["realised_error"]["values"] == 12
    assert drift["retrain"] is False

    port = free_port()
    with server_process(serve_command(project, port), project, port, project / ".serve.log", env) as base:
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200
        assert meta["route"] == "/forecast"
        example = meta["example"]
        status, body = http("POST", f"{base}/forecast", example)
        assert status == 200, body
        points = body["forecast"]
        assert len(points) == example["horizon"] == 12
        assert all(p["lower"] <= p["value"] <= p["upper"] for p in points)
        assert points[0]["time"] > example["history"][-1]["time"]
        status, stored = http("POST", f"{base}/forecast", {"horizon": 3})
        assert status == 200, stored
        assert len(stored["forecast"]) == 3, stored
        check_bad_requests(base, example)
        if framework == "sklearn":  # the page and the API are the same for every framework: run once
            check_demo_page(request.getfixturevalue("browser"), base, meta)
            operations, failures = fuzz_api(base, {}, max_examples=25)
            assert operations >= 5, "\n\n".join(failures)
            assert not failures, "\n\n".join(failures)
    print(json.dumps({"framework": framework, "test": report["test"], "backtest_mase": backtest["mean"]}))

    if framework == "sklearn":  # the user's file: several series, a duplicate, a gap, a short series
        csv = messy_csv(project / "data" / "raw" / "stores.csv")
        messy = with_config(
            project,
            "messy.yaml",
            {"data": {"source": str(csv.relative_to(project))}, "timeseries": {"series_column": "store"}},
        )
        command = ["uv", "run", "--frozen", "python", "-m", slug, "data", "--config", str(messy)]
        wide = {**env, "COLUMNS": "200"}  # one report line per line of output
        done = run(command, cwd=project, env=wide)
        output = done.stdout + done.stderr
        for expected in ("Duplicate (series, time) pairs: 1", "Missing steps: 1", "`east` (15 steps)"):
            assert expected in output, output
        bad = project / "data" / "raw" / "bad.csv"
        frame = pd.read_csv(csv)
        frame.loc[7, "month"] = "soon"
        frame.to_csv(bad, index=False)
        broken = with_config(project, "bad.yaml", {"data": {"source": str(bad.relative_to(project))}})
        command = ["uv", "run", "--frozen", "python", "-m", slug, "data", "--config", str(broken)]
        result = run(command, cwd=project, env=wide, check=False)
        assert result.returncode != 0
        message = (result.stdout + result.stderr).strip()
        assert "'month'" in message, message
        assert "'soon'" in message, message
        assert "Traceback" not in message, message
