"""The optional MLOps tools (tracking=mlflow, tuning=optuna, pipeline=dvc), run for real, offline.

A covering set, not the cross product: every option is on in two renders that differ in modality
(image, tabular), framework (scikit-learn, XGBoost) and task (classification, regression), so every
option meets every value of each of those once. In each, the project's own tests
pass; ``dvc repro`` runs every stage and then has nothing to do; the MLflow run holds the test
metrics of ``reports/metrics.json``; the Optuna study grows when ``tune`` runs again; ``dvc push``
fills the local remote and ``dvc pull`` restores a deleted model. The default render, checked
without installing anything, carries none of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import answers, project_env, render, run, set_config

ALL_ON = {"tracking": "mlflow", "tuning": "optuna", "pipeline": "dvc"}
COVERING_SET = [
    pytest.param({"modality": "image", "framework": "sklearn"}, id="image-sklearn"),
    pytest.param({"framework": "xgboost", "task_type": "regression"}, id="xgboost-regression"),
]
STAGES = ("data", "tune", "train", "evaluate")

QUERY_MLFLOW = """
import json, sys
from mlflow.tracking import MlflowClient
from {slug} import tracking
from {slug}.config import load_config
config = load_config("configs/config.yaml")
client = MlflowClient(tracking.tracking_uri(config), registry_uri=tracking.tracking_uri(config))
run = client.get_run(sys.argv[1])
versions = client.search_model_versions(f"name='{{tracking.MODEL_NAME}}'")
print(json.dumps({{"metrics": run.data.metrics, "versions": [v.run_id for v in versions]}}))
"""

COUNT_TRIALS = """
import json, optuna
from {slug} import tune
from {slug}.config import load_config
summary = json.load(open("reports/tuning.json"))
study = optuna.load_study(study_name=summary["study"], storage=tune.storage_url(load_config()))
print(len(study.trials))
"""


def _git(project: Path, *args: str) -> None:
    run(["git", "-c", "user.name=mlfolio", "-c", "user.email=ci@example.com", *args], cwd=project)


@pytest.mark.slow
@pytest.mark.parametrize("variant", COVERING_SET)
def test_options_run_for_real(tmp_path: Path, variant: dict[str, str]) -> None:
    project = render(tmp_path / "project", {**variant, **ALL_ON})
    slug = answers(project)["project_slug"]
    env = project_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("OPTUNA_STORAGE", None)
    uv = ["uv", "run", "--frozen"]
    run(["uv", "sync"], cwd=project, env=env)
    run([*uv, "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env)

    # A short study keeps CI quick; the config is the user's file, editing it is what users do.
    set_config(project, n_trials=5)
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "Initial commit")

    first = run([*uv, "dvc", "repro"], cwd=project, env=env)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout, first.stdout
    second = run([*uv, "dvc", "repro"], cwd=project, env=env)
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout
    metrics = run([*uv, "dvc", "metrics", "show", "--json"], cwd=project, env=env)
    assert "reports/metrics.json" in metrics.stdout

    # MLflow: the evaluated model's run holds exactly the reported test metrics, and is registered.
    report = json.loads((project / "reports" / "metrics.json").read_text())
    run_id = report["tracking"]["run_id"]
    query = run([*uv, "python", "-c", QUERY_MLFLOW.format(slug=slug), run_id], cwd=project, env=env)
    logged = json.loads(query.stdout.strip().splitlines()[-1])
    logged_test = {name: logged["metrics"][f"test_{name}"] for name in report["test"]}
    assert logged_test == pytest.approx(report["test"])
    assert run_id in logged["versions"]
    card = (project / "MODEL_CARD.md").read_text()
    assert run_id in card
    assert "## Hyperparameter tuning" in card

    # Optuna: the study persisted in optuna.db resumes in a new process and grows.
    count = [*uv, "python", "-c", COUNT_TRIALS.format(slug=slug)]
    assert int(run(count, cwd=project, env=env).stdout.split()[-1]) == 5
    run([*uv, "python", "-m", slug, "tune", "--n-trials", "2"], cwd=project, env=env)
    assert int(run(count, cwd=project, env=env).stdout.split()[-1]) == 7
    assert json.loads((project / "reports" / "tuning.json").read_text())["trials"] == 7
    assert (project / "configs" / "best_params.yaml").is_file()

    # DVC remote: push fills the local remote, pull restores what was lost.
    run([*uv, "dvc", "push"], cwd=project, env=env)
    assert any(path.is_file() for path in (project / ".dvc-remote").rglob("*") if path.name != ".gitignore")
    model_metadata = (project / "models" / "model" / "metadata.json").read_bytes()
    run(["rm", "-rf", "models/model"], cwd=project)
    run([*uv, "dvc", "pull", "models/model"], cwd=project, env=env)
    assert (project / "models" / "model" / "metadata.json").read_bytes() == model_metadata
    status = run(["git", "status", "--porcelain", "--ignored", ".dvc-remote"], cwd=project, env=env)
    assert "?? .dvc-remote" not in status.stdout  # remote contents never show up for commit


def test_options_off_leave_no_trace(tmp_path: Path) -> None:
    """The default render has no option files, dependencies, targets or documentation."""
    project = render(tmp_path / "project")
    slug = answers(project)["project_slug"]
    package = project / "src" / slug
    for absent in ("dvc.yaml", ".dvc", ".dvcignore", ".dvc-remote", f"src/{slug}/tune.py"):
        assert not (project / absent).exists(), absent
    assert "return {}" in (package / "tracking.py").read_text()  # the no-op hooks
    for name in ("README.md", "Makefile", "pyproject.toml", "configs/config.yaml"):
        text = (project / name).read_text().lower()
        for word in ("mlflow", "optuna", "dvc", "tuning:"):
            assert word not in text, f"{word} in {name}"
    tests = {path.name for path in (project / "tests").iterdir()}
    assert not {"test_tracking.py", "test_tune.py"} & tests
