"""Faults lose nothing (issue 12): two real ``retrain`` processes at once, round after round.

Each round starts two retrains of one render 0 to 1 s apart; both train their own candidate and
then take turns at the model store's lock. After every round the served model must load (files,
hashes and a smoke prediction) and name a version that one of the runs made or that was served.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import answers, project_env, render, run, set_config

ROUNDS = 20
LOAD = (
    "import json, sys; from {slug}.config import load_config; from {slug}.train import load_trained; "
    "print(json.dumps(load_trained(load_config('configs/config.yaml')).version))"
)


@pytest.mark.slow
def test_twenty_rounds_of_two_concurrent_retrains_always_leave_a_served_model(tmp_path: Path) -> None:
    project = render(tmp_path / "p")
    slug = answers(project)["project_slug"]
    env = project_env()
    run(["uv", "sync", "--quiet"], project, env)
    # What is under test is the promotion, not the model, its export or its evaluation: a smaller
    # forest, no ONNX graph and a lighter evaluation, as a user may set.
    set_config(
        project, bootstrap_resamples=100, cv_folds=0, permutation_repeats=1, n_estimators=10, onnx="false"
    )
    run(["make", "all"], project, env)
    python = str(project / ".venv" / "bin" / "python")
    rng = random.Random(12)  # noqa: S311 - start offsets, not secrets
    served = []

    def retrain() -> subprocess.Popen[str]:
        command = [python, "-m", slug, "retrain"]
        return subprocess.Popen(
            command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    for _ in range(ROUNDS):
        first = retrain()
        time.sleep(rng.uniform(0, 1))
        second = retrain()
        outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outputs
        version = json.loads(
            run([python, "-c", LOAD.format(slug=slug)], project, env).stdout.splitlines()[-1]
        )
        served.append(version)
        models = project / "models"
        assert (models / "model" / "metadata.json").is_file()
        assert not list(models.glob(".*.swap.json")), "no swap left half-done"
        assert not list((models / "candidates").glob(".*.staging"))
    print(f"{ROUNDS} rounds of two concurrent retrains; served model loaded after each: {len(served)}")
