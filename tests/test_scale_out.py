"""Scale-out on Ray, run for real: a ``compute=ray`` render trains on a two-node Ray cluster started by
its own ``make cluster-up``, survives a worker killed mid-training by resuming from a checkpoint,
tunes with Ray Tune two trials at a time, scores a file with Ray Data and serves under Ray Serve
with two replicas.

XGBoost, Keras and scikit-learn renders train with ``make train`` on a two-node cluster too
(XGBoost's collective; Keras under MultiWorkerMirroredStrategy; scikit-learn's joblib on Ray's
backend), pass their gates, then run their own Ray tests on it. Those three share one prepared
environment (the Keras render's, plus XGBoost's packages): ``UV_PROJECT_ENVIRONMENT`` with
``UV_NO_SYNC`` makes each project's ``uv run`` use it as it is, and ``PYTHONPATH`` puts that project's
package first, for its commands and for the Ray nodes it starts (their workers inherit it).

Everything Ray starts lives in a network namespace of its own with only loopback up (Ray's nodes
listen on the machine's address, and a test may open nothing beyond 127.0.0.1); commands and HTTP
requests join it with ``nsenter``. The cluster tests share this file so that one xdist worker runs
them one after the other: ``make cluster-down`` (``ray stop``) stops every Ray process on the machine,
namespaces notwithstanding, and the lost-worker check finds Ray Train's workers by process name.
A ``compute=local`` render has no trace of Ray.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    OWN_TESTS,
    ROOT,
    Namespace,
    answers,
    copy_command,
    loopback_namespace,
    project_env,
    render,
    run,
    set_config,
    two_node_ray_cluster,
    wait_for,
)
from tests.matrix import FRAMEWORKS

# What an XGBoost render needs beyond a Keras render's environment (its pyproject's dependency lines).
XGBOOST_PACKAGES = ["xgboost-cpu>=2.1", "onnxmltools>=1.12"]
# The render's own Ray tests, on the cluster, less its training test: make train has just trained there.
RAY_TESTS = [
    *("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_distributed.py"),
    "--deselect=tests/test_distributed.py::test_workers_publish_one_candidate_that_evaluation_judges",
]
RAY_WORD = re.compile(r"\bray\b", re.IGNORECASE)
# One HTTP request from inside the namespace: prints the status and the decoded body as JSON.
REQUEST = """
import json, sys, urllib.error, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3] or None
request = urllib.request.Request(url, data=body and body.encode(), method=method,
                                 headers={"content-type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        status, payload = response.status, response.read()
except urllib.error.HTTPError as error:
    status, payload = error.code, error.read()
print(json.dumps({"status": status, "body": json.loads(payload or b"null")}))
"""


def train_worker_pids() -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::RayTrainWorker" in line]


def test_a_local_render_has_no_trace_of_ray(tmp_path: Path) -> None:
    project = render(tmp_path / "local", {"framework": "pytorch"})
    mentions = [
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.parts and RAY_WORD.search(path.read_text(errors="replace"))
    ]
    assert mentions == [], f"compute=local mentions Ray in {mentions}"
    ray = render(tmp_path / "ray", {"framework": "pytorch", "compute": "ray"})
    assert (ray / "src" / answers(ray)["project_slug"] / "distributed.py").is_file()
    assert re.search(r'"ray\[[a-z,]+\]>=', (ray / "pyproject.toml").read_text())


def test_ray_is_offered_for_every_framework_and_refused_for_other_modalities(tmp_path: Path) -> None:
    for framework in FRAMEWORKS:
        project = render(tmp_path / framework, {"framework": framework, "compute": "ray"})
        assert (project / "src" / answers(project)["project_slug"] / "distributed.py").is_file()
    image = copy_command(tmp_path / "image", {"modality": "image", "compute": "ray"})
    refused = run(image, ROOT, check=False)
    assert refused.returncode != 0
    assert "compute ray is built for tabular projects so far" in refused.stdout + refused.stderr
    assert not (tmp_path / "image" / "src").exists(), "nothing rendered"


@pytest.mark.slow
def test_pytorch_on_a_two_node_ray_cluster_resumes_scores_and_serves(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"framework": "pytorch", "compute": "ray", "tuning": "optuna"})
    slug = answers(project)["project_slug"]
    # Ray's session files in a folder of this test's own (short: Ray's socket paths have a limit).
    env = {**project_env(), "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp"), "COLUMNS": "200"}
    for command in (["uv", "sync", "--quiet"], ["uv", "run", "--frozen", "ruff", "check", "."]):
        run(command, cwd=project, env=env)
    run(["uv", "run", "--frozen", "mypy"], cwd=project, env=env)
    cli = ["uv", "run", "--frozen", "python", "-m", slug]
    with loopback_namespace() as namespace:
        # The render's own tests of its manifests (the rest of its suite is a PyTorch render's, which
        # test_frameworks runs; its Ray tests run for the other frameworks below), then its commands.
        namespace.run([*OWN_TESTS, "tests/test_kubernetes.py"], project, env)
        early = namespace.run([*cli, "train"], project, env, check=False)
        assert early.returncode == 1, early.stdout[-2000:]
        assert "run the data stage first" in early.stderr, early.stderr
        assert "Traceback" not in early.stderr, early.stderr
        namespace.run(["make", "data"], project, env)
        # The lost worker and the resume are under test, not the fit: a dozen epochs at most (a
        # checkpoint, the kill and the resumed group's epochs fit in them; the gate still passes).
        set_config(project, max_epochs=12, patience=4)
        with two_node_ray_cluster(namespace, project, env):
            check_training_survives_a_lost_worker(namespace, project, env)
            namespace.run([*cli, "evaluate"], project, env)
            tuned = namespace.run([*cli, "tune", "--n-trials", "2"], project, env)
            assert "at most 2 trials ran at once" in tuned.stdout + tuned.stderr, tuned.stderr[-2000:]
            check_batch_scoring(namespace, project, env, cli)
            check_ray_serve(namespace, project, env, cli)


def check_training_survives_a_lost_worker(namespace: Namespace, project: Path, env: dict[str, str]) -> None:
    """``make train`` on the cluster; one worker is killed once Ray holds a checkpoint: the group is
    replaced and resumes from it, and the first worker still publishes one candidate."""
    log = project / ".train.log"
    training = namespace.popen(["make", "train"], project, env, log)
    snapshots = project / "models" / "ray"
    wait_for(lambda: list(snapshots.glob("train-*/checkpoint_manager_snapshot.json")), 600, "a checkpoint")
    workers = train_worker_pids()
    assert len(workers) == 2, workers
    os.kill(workers[-1], signal.SIGKILL)
    assert training.wait(timeout=900) == 0, log.read_text()[-4000:]
    output = log.read_text()
    assert "Ray cluster: 2 node(s), 2 CPUs" in output, output[-3000:]
    assert "training on 2 Ray worker(s)" in output
    assert "resuming from checkpoint" in output, "the replaced group resumed"
    params = json.loads((project / "models" / "model" / "metadata.json").read_text())["params"]
    assert params["processes"] == 2, params
    assert params["resumed_after_epoch"] >= 1, params
    assert (project / "models" / "model" / "metadata.json").is_file(), "the run ended with its gate, passed"
    assert re.search(r"training resumed after epoch \d+", output)


def check_batch_scoring(namespace: Namespace, project: Path, env: dict[str, str], cli: list[str]) -> None:
    """A file ten times the demo data, scored by Ray Data; every row comes back, peak memory printed."""
    build = (
        "import pandas as pd; frame = pd.concat([pd.read_parquet(f'data/processed/{s}.parquet') "
        "for s in ('train', 'validation', 'test')] * 10, ignore_index=True); "
        "frame.to_parquet('big.parquet', row_group_size=500); print(len(frame))"
    )
    rows = int(run(["uv", "run", "--frozen", "python", "-c", build], project, env).stdout.split()[-1])
    scored = namespace.run([*cli, "predict-batch", "big.parquet", "scored"], project, env)
    output = scored.stdout + scored.stderr
    assert f"{rows:,} rows scored" in output, output[-2000:]
    peaks = r"peak memory of this process (\d+) MB, of the (\d+) scoring process\(es\) at most (\d+) MB"
    peak = re.search(peaks, output)
    assert peak, output[-2000:]
    driver, processes, scoring = peak.groups()
    print(f"\npredict-batch: {rows} rows; peak MB: driver {driver}, {processes} scorer(s) {scoring}")
    count = "import pandas as pd; print(len(pd.read_parquet('scored')))"
    assert int(run(["uv", "run", "--frozen", "python", "-c", count], project, env).stdout.split()[-1]) == rows


def check_ray_serve(namespace: Namespace, project: Path, env: dict[str, str], cli: list[str]) -> None:
    """``serve-ray``: the same API with two replicas behind Ray Serve's proxy answers /predict."""
    port = "8765"
    log = project / ".serve-ray.log"
    server = namespace.popen([*cli, "serve-ray", "--port", port], project, env, log)
    base = f"http://127.0.0.1:{port}"
    request = ["uv", "run", "--frozen", "python", "-c", REQUEST]

    def call(method: str, path: str, body: object = None) -> dict[str, Any]:
        text = "" if body is None else json.dumps(body)
        answer = namespace.run([*request, method, f"{base}{path}", text], project, env, check=False)
        lines = answer.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {"status": None}

    try:
        healthy = lambda: server.poll() is not None or call("GET", "/health")["status"] == 200  # noqa: E731
        wait_for(healthy, 300, "Ray Serve")
        assert server.poll() is None, log.read_text()[-3000:]
        example = call("GET", "/metadata")["body"]["example"]
        answered = call("POST", "/predict", {"records": [example, example]})
        assert answered["status"] == 200, answered
        assert len(answered["body"]["predictions"]) == 2
        refused = call("POST", "/predict", {"records": [{"no such field": 1}]})
        assert refused["status"] == 422, refused
        assert "2 Ray Serve replicas" in log.read_text()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_xgboost_keras_and_scikit_learn_train_on_two_ray_nodes_in_one_environment(tmp_path: Path) -> None:
    keras = render(tmp_path / "keras", {"framework": "tensorflow", "compute": "ray"})
    set_config(keras, max_epochs=12, patience=4)  # training on two nodes is under test, not the fit
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
    with two_node_ray_cluster(namespace, project, env):
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
