"""XGBoost, Keras and scikit-learn on a two-node Ray cluster: each ``compute=ray`` render trains with
``make train`` on two Ray workers (XGBoost's collective; Keras under MultiWorkerMirroredStrategy;
scikit-learn's joblib on Ray's backend) and passes its gate, then runs its own Ray tests on that
cluster.

The three renders share one prepared environment (the Keras render's, plus XGBoost's packages):
``UV_PROJECT_ENVIRONMENT`` with ``UV_NO_SYNC`` makes each project's ``uv run`` use it as it is, and
``PYTHONPATH`` puts that project's package first, for its commands and for the Ray nodes it starts
(their workers inherit it). PyTorch, with a lost worker, tuning and serving, is tests/test_scale_out.py.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from tests.helpers import Namespace, loopback_namespace, project_env, render, run

# What an XGBoost render needs beyond a Keras render's environment (its pyproject's dependency lines).
XGBOOST_PACKAGES = ["xgboost-cpu>=2.1", "onnxmltools>=1.12"]
# The render's own Ray tests, on the cluster, less its training test: make train has just trained there.
RAY_TESTS = [
    *("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_distributed.py"),
    "--deselect=tests/test_distributed.py::test_workers_publish_one_candidate_that_evaluation_judges",
]


@pytest.mark.slow
def test_xgboost_keras_and_scikit_learn_train_on_two_ray_nodes_in_one_environment(tmp_path: Path) -> None:
    keras = render(tmp_path / "keras", {"framework": "tensorflow", "compute": "ray"})
    run(["uv", "sync", "--quiet"], cwd=keras, env=project_env())
    venv = keras / ".venv"
    install = ["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    run([*install, *XGBOOST_PACKAGES], keras, env=project_env())
    xgboost = render(tmp_path / "xgboost", {"framework": "xgboost", "compute": "ray"})
    sklearn = render(tmp_path / "sklearn", {"framework": "sklearn", "compute": "ray"})
    with loopback_namespace() as namespace:
        for project in (xgboost, keras, sklearn):
            check_make_train_on_two_nodes(namespace, project, shared_env(project, venv))


def shared_env(project: Path, venv: Path) -> dict[str, str]:
    """``project``'s commands in the shared environment, its own package first on the path."""
    return {
        **project_env(),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_NO_SYNC": "1",
        "PATH": f"{venv / 'bin'}:{project_env()['PATH']}",
        "PYTHONPATH": str(project / "src"),
        # Ray's session files in a folder of this cluster's own (short: Ray's socket paths have a limit).
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp"),
        "COLUMNS": "200",
    }


def check_make_train_on_two_nodes(namespace: Namespace, project: Path, env: dict[str, str]) -> None:
    """``make cluster-up``, ``make train`` (two workers, one candidate, then the gate), the render's own
    Ray tests on that cluster (tuning, batch scoring), ``make cluster-down``."""
    namespace.run(["make", "data"], project, env)
    up = namespace.run(["make", "cluster-up"], project, env)
    assert re.search(r"Active:\s*\n\s*1 node_\w+\s*\n\s*1 node_\w+", up.stdout), up.stdout[-2000:]
    try:
        trained = namespace.run(["make", "train"], project, env, check=False)
        output = trained.stdout + trained.stderr
        assert trained.returncode == 0, output[-4000:]
        assert "Ray cluster: 2 node(s), 2 CPUs" in output, output[-3000:]
        assert "training on 2 Ray worker(s)" in output, output[-3000:]
        assert "gate PASSED" in output, output[-3000:]
        metadata = json.loads((project / "models" / "model" / "metadata.json").read_text())
        promotion = json.loads((project / "reports" / "promotion.json").read_text())
        assert promotion["promoted"], promotion
        assert promotion["candidate_version"] == metadata["model_version"], promotion
        left = list((project / "models" / "candidates").iterdir())
        assert not left, f"one candidate, however many workers; also published: {left}"
        if metadata["framework"] != "scikit-learn":  # Ray Train's workers (scikit-learn: joblib's Ray actors)
            assert metadata["params"]["processes"] == 2, metadata["params"]
            assert list((project / "models" / "ray").glob("train-*/checkpoint_*")), "checkpoints were kept"
        result = namespace.run(RAY_TESTS, project, {**env, "TEST_RAY_ADDRESS": "auto"})
        assert re.search(r"\d+ passed, 1 deselected", result.stdout), result.stdout[-2000:]
    finally:
        namespace.run(["make", "cluster-down"], project, env, check=False)
