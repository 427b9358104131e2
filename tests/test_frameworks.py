"""Every framework choice renders the same complete project: only the model module and its
dependency/config lines differ (issue 3).

The fast tier renders all four frameworks and diffs them. The slow tier installs and runs each
non-scikit-learn framework for both task types (scikit-learn renders are run by test_render.py):
lint, type-check, the render's own tests, ``make all`` on the demo data, a served prediction, a
reproducible re-training and a run on a real user CSV with missing values and a categorical column.

Set ``MLFOLIO_TIMINGS=/path/file.jsonl`` to collect training time, test-suite time and environment size
per render (``benchmarks/render.py --framework X`` times render -> first prediction).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    INSTALL,
    OWN_TESTS,
    STATIC_CHECKS,
    answers,
    assert_reviewers_report,
    http,
    megabytes,
    project_env,
    render,
    run,
    served,
    strict_json,
)
from tests.matrix import FRAMEWORK_FILES, FRAMEWORKS, project_files
from tests.matrix import FRAMEWORK_SHARED_MODULES as SHARED_MODULES


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("frameworks")
    return {framework: render(base / framework, {"framework": framework}) for framework in FRAMEWORKS}


# ---------------------------------------------------------------- fast: the renders themselves


def test_framework_changes_only_the_model_module_and_its_dependency_lines(renders: dict[str, Path]) -> None:
    files = {framework: project_files(project) for framework, project in renders.items()}
    reference = files["sklearn"]
    for framework in FRAMEWORKS[1:]:
        assert files[framework].keys() - reference.keys() <= FRAMEWORK_FILES, framework
        assert reference.keys() <= files[framework].keys(), framework
        if framework == "pytorch":  # one target more: distributed training with torchrun
            files[framework]["Makefile"] = without_target(files[framework]["Makefile"], "train-ddp")
        differing = {name for name in reference if files[framework][name] != reference[name]}
        assert differing - FRAMEWORK_FILES == set(), (
            f"{framework} changes {sorted(differing - FRAMEWORK_FILES)}"
        )
        assert "model.py" in differing
    for module in SHARED_MODULES:
        texts = {framework: files[framework][f"{module}.py"] for framework in FRAMEWORKS}
        assert len(set(texts.values())) == 1, f"{module}.py differs between frameworks"
    # One training loop per network framework, and one model half every network shares, in modules of
    # their own; the others fit in one call.
    for module in ("loop.py", "network.py"):
        having = {framework for framework in FRAMEWORKS if module in files[framework]}
        assert having == {"pytorch", "tensorflow"}, module


def without_target(makefile: str, target: str) -> str:
    """The Makefile with one target (its recipe, variables and .PHONY entry) taken out."""
    text = re.sub(rf"\n\n(?:[A-Z_]+ \?= .*\n)*{target}:.*\n(?:\t.*\n)*", "\n", makefile)
    return text.replace(f" {target}", "", 1)


def test_each_model_module_keeps_the_shared_surface(renders: dict[str, Path]) -> None:
    """The surface is a Protocol (``protocols.TrainableModel``) that train.py binds every framework's
    ``Model`` to, so the render's own mypy (run by the end-to-end tests) checks it; here: the module
    names the stages import, the binding, and no pickle anywhere."""
    for framework, project in renders.items():
        files = project_files(project)
        source = files["model.py"]
        for name in ("class Model", "def build_model(", "save_model", "load_model", "FRAMEWORK"):
            assert name in source, f"{framework}: {name}"
        assert "class TrainableModel(Protocol)" in files["protocols.py"]
        assert "MODEL_CONTRACT: type[TrainableModel] = Model" in files["train.py"], framework
        for module in ("model.py", "network.py"):
            assert not re.search(
                r"^\s*(import|from)\s+(c?pickle|joblib|cloudpickle|dill)\b", files.get(module, ""), re.M
            ), framework


def test_dependencies_follow_the_framework(renders: dict[str, Path]) -> None:
    def pyproject(framework: str) -> dict[str, Any]:
        return tomllib.loads((renders[framework] / "pyproject.toml").read_text())

    def requirements(framework: str) -> str:
        return "\n".join(pyproject(framework)["project"]["dependencies"])

    assert not re.search(r"xgboost|torch|tensorflow|keras", requirements("sklearn"))
    assert "tool" not in pyproject("sklearn") or "uv" not in pyproject("sklearn")["tool"]
    assert "xgboost-cpu>=" in requirements("xgboost")
    assert "torch" not in requirements("xgboost")
    assert "torch>=" in requirements("pytorch")
    assert "tensorflow-cpu>=" in requirements("tensorflow")
    assert "keras>=3" in requirements("tensorflow")
    # What a real Linux user needs: PyTorch's CPU wheel index, named so that tests can redirect it.
    uv = pyproject("pytorch")["tool"]["uv"]
    assert uv["sources"]["torch"] == [{"index": "pytorch-cpu", "marker": "sys_platform == 'linux'"}]
    assert uv["index"] == [
        {"name": "pytorch-cpu", "url": "https://download.pytorch.org/whl/cpu", "explicit": True}
    ]
    # TensorFlow has no wheels for the newest CPython; a universal lock needs the upper bound.
    assert pyproject("tensorflow")["project"]["requires-python"] == ">=3.11,<3.14"
    assert pyproject("pytorch")["project"]["requires-python"] == ">=3.11"


def test_config_params_and_readme_follow_the_framework(renders: dict[str, Path]) -> None:
    params = {
        framework: yaml.safe_load((project / "configs" / "config.yaml").read_text())["model"]["params"]
        for framework, project in renders.items()
    }
    assert "early_stopping_rounds" in params["xgboost"]
    assert params["pytorch"] == params["tensorflow"]
    assert {"hidden_units", "max_epochs", "patience"} <= params["pytorch"].keys()
    assert "n_estimators" in params["sklearn"]
    names = {
        "sklearn": "scikit-learn",
        "xgboost": "XGBoost",
        "pytorch": "PyTorch",
        "tensorflow": "TensorFlow/Keras",
    }
    for framework, project in renders.items():
        readme = (project / "README.md").read_text()
        assert f"Built with **{names[framework]}**" in readme
        assert "the device it trained on" in readme


# ---------------------------------------------------------------- slow: install and run each render

PENGUINS_TARGET = {"classification": "species", "regression": "body_mass_g"}


def penguins_config(project: Path, task: str) -> Path:
    """The project's own config pointed at a real CSV with missing values and a categorical column."""
    palmerpenguins = pytest.importorskip("palmerpenguins")
    csv = project / "data" / "raw" / "penguins.csv"
    shutil.copyfile(Path(palmerpenguins.__file__).parent / "data" / "penguins.csv", csv)
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    config["data"].update(
        {"source": "data/raw/penguins.csv", "target": PENGUINS_TARGET[task], "sha256": None}
    )
    config["evaluation"].update(
        {"slice_column": "island", "threshold": 0.8 if task == "classification" else 600}
    )
    path = project / "configs" / "penguins.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def timed(
    command: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = run(command, cwd=cwd, env=env)
    return time.perf_counter() - start, result


def record(entry: dict[str, Any]) -> None:
    print(json.dumps(entry))
    target = os.environ.get("MLFOLIO_TIMINGS")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def check_distributed_training(project: Path, env: dict[str, str], slug: str) -> None:
    """``make train-ddp``: two torchrun processes train one model (DDP over gloo), and only the first
    publishes it, as one candidate that evaluation then judges.

    In a network namespace of its own: torchrun's rendezvous store listens on every interface, and a
    test may open nothing beyond loopback.
    """
    isolate = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    before = set((project / "models" / "candidates").iterdir())
    run([*isolate, "sh", "-c", "ip link set lo up && exec make train-ddp NPROC=2"], cwd=project, env=env)
    (published,) = set((project / "models" / "candidates").iterdir()) - before
    metadata = json.loads((published / "metadata.json").read_text())
    assert metadata["params"]["processes"] == 2, metadata["params"]
    run(["uv", "run", "--frozen", "python", "-m", slug, "evaluate"], cwd=project, env=env, check=False)
    judged = json.loads((project / "reports" / "metrics.json").read_text())
    assert judged["model_version"] == metadata["model_version"], "evaluation judged the DDP model"
    assert judged["test"][judged["gate"]["metric"]] is not None


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("framework", ["xgboost", "pytorch", "tensorflow"])
def test_framework_project_runs_end_to_end(tmp_path: Path, framework: str, task: str) -> None:
    project = render(tmp_path / "p", {"framework": framework, "task_type": task})
    slug = answers(project)["project_slug"]
    env = project_env()
    for command in (INSTALL, *STATIC_CHECKS):
        run(command, cwd=project, env=env)
    if framework == "pytorch":
        lock = (project / "uv.lock").read_text()
        assert re.search(r'name = "torch"\nversion = "[^"]+\+cpu"', lock), "Linux must lock the CPU build"
        assert "nvidia" not in lock, "no CUDA libraries"
    suite_s, _ = timed(OWN_TESTS, project, env)
    _, pipeline = timed(["make", "all"], project, env)
    train_line = re.search(r"Train \((\d+(?:\.\d+)?)s\)", pipeline.stdout + pipeline.stderr)
    assert train_line, pipeline.stderr

    report = strict_json(project / "reports" / "metrics.json")
    assert report["framework"] == framework
    assert_reviewers_report(report)
    assert report["gate"]["passed"], report["gate"]
    metric, higher_is_better = report["gate"]["metric"], report["gate"]["higher_is_better"]
    assert (report["test"][metric] > report["baseline"][metric]) == higher_is_better, report["test"]
    figures = {Path(name).name for name in report["figures"]}
    assert ("feature_importance.png" if framework == "xgboost" else "learning_curve.png") in figures
    assert all((project / name).is_file() for name in report["figures"])
    metadata = json.loads((project / "models" / "model" / "metadata.json").read_text())
    assert metadata["device"] == "cpu"
    card = (project / "MODEL_CARD.md").read_text()
    assert f"trained with {framework} on cpu" in card
    assert metadata["architecture"] in card
    assert not list((project / "models" / "model").glob("*.pkl")), "no pickle files"

    with served(project, env) as base:
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200
        assert meta["framework"] == framework
        # Every framework's tabular model answers from its ONNX export (the network and its scaling).
        assert meta["runtime"]["name"] == "onnxruntime", meta["runtime"]
        assert metadata["onnx"]["equivalent"], metadata["onnx"]
        status, body = http("POST", f"{base}/predict", {"records": [meta["example"]]})
        assert status == 200, body
        assert len(body["predictions"]) == 1
        if task == "classification":
            assert body["predictions"][0] in meta["classes"]
            assert sum(body["probabilities"][0].values()) == pytest.approx(1.0, abs=1e-4)
        else:
            assert isinstance(body["predictions"][0], float)

    # Properties of the framework, not of the task: checked once, on the classification render.
    if task == "classification":
        # Seeded: training again on the same data gives the same model.
        run(["uv", "run", "--frozen", "python", "-m", slug, "train"], cwd=project, env=env)
        candidate = json.loads((project / "reports" / "candidate.json").read_text())  # a new candidate
        again = json.loads((project / candidate["directory"] / "metadata.json").read_text())
        assert again["model_version"] != metadata["model_version"]
        assert again["validation_metrics"] == metadata["validation_metrics"]
        if framework == "pytorch":
            check_distributed_training(project, env, slug)

    # A user's CSV: missing values, a categorical column, string labels (three classes) or a numeric target.
    config = penguins_config(project, task)
    run(["uv", "run", "--frozen", "python", "-m", slug, "all", "--config", str(config)], cwd=project, env=env)
    penguins = json.loads((project / "reports" / "metrics.json").read_text())
    assert penguins["gate"]["passed"], penguins["gate"]
    assert {row["slice"] for row in penguins["slices"]} >= {"island = Biscoe", "island = Dream"}
    if task == "classification":
        schema = json.loads((project / "data" / "processed" / "schema.json").read_text())
        assert sorted(schema["classes"]) == ["Adelie", "Chinstrap", "Gentoo"]

    venv_mb = megabytes(project / ".venv")
    record(
        {
            "framework": framework,
            "task": task,
            "train_s": float(train_line[1]),
            "project_tests_s": round(suite_s, 1),
            "venv_mb": venv_mb,
        }
    )
