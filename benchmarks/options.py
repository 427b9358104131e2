"""What each optional MLOps tool costs: installed size and pipeline wall time against the default.

Not a test: prints a table. Run from the repository root after ``uv sync``:

    uv run python benchmarks/options.py [--framework sklearn]

Four renders of the same answers: the default (no option) and one option turned on at a time
(``tracking=mlflow``, ``tuning=optuna``, ``pipeline=dvc``). The package cache is warmed first by
one untimed install of a render with every option on, so ``uv sync`` times are what a user sees
once the packages are downloaded. The pipeline is what takes raw data to an evaluated model with
the option on: the ``data``, ``train`` and ``evaluate`` stages (tracking logs inside the last two),
with ``tune`` before ``train`` (tuning), or ``dvc repro`` of the same stages (DVC, in a fresh Git
repository).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import answers, megabytes, project_env, render, run

OPTIONS = {
    "default": {},
    "tracking=mlflow": {"tracking": "mlflow"},
    "tuning=optuna": {"tuning": "optuna"},
    "pipeline=dvc": {"pipeline": "dvc"},
}
STAGES = ("data", "train", "evaluate")


def pipeline_commands(project: Path, option: str) -> list[list[str]]:
    """The commands the option has a user run to go from raw data to an evaluated model."""
    if option == "pipeline=dvc":
        return [["uv", "run", "--frozen", "dvc", "repro"]]
    slug = answers(project)["project_slug"]
    stages = ("data", "tune", "train", "evaluate") if option == "tuning=optuna" else STAGES
    return [["uv", "run", "--frozen", "python", "-m", slug, stage] for stage in stages]


def measure(workdir: Path, option: str, data: dict[str, str], framework: str) -> dict[str, float]:
    env = project_env()
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded local store, as a new user gets it
    project = render(workdir / option.replace("=", "-"), {"framework": framework, **data})
    start = time.perf_counter()
    run(["uv", "sync", "--quiet"], project, env)
    sync_s = time.perf_counter() - start
    if option == "pipeline=dvc":  # DVC tracks the pipeline in Git
        run(["git", "init", "--quiet"], project, env)
    start = time.perf_counter()
    for command in pipeline_commands(project, option):
        run(command, project, env)
    pipeline_s = time.perf_counter() - start
    return {"venv_mb": megabytes(project / ".venv"), "sync_s": sync_s, "pipeline_s": pipeline_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="sklearn")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mlfolio-bench-options-"))
    try:
        every = {"tracking": "mlflow", "tuning": "optuna", "pipeline": "dvc"}
        warm = render(workdir / "warm", {"framework": args.framework, **every})
        run(["uv", "sync", "--quiet"], warm, project_env())  # untimed: fills the uv cache
        rows = {option: measure(workdir, option, data, args.framework) for option, data in OPTIONS.items()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = rows["default"]
    print(f"Cost of each option ({args.framework}, demo data, warm package cache):")
    print(f"  {'option':<16} {'.venv MB':>9} {'+MB':>6} {'uv sync s':>10} {'pipeline s':>11} {'+s':>6}")
    for option, row in rows.items():
        added_mb, added_s = row["venv_mb"] - base["venv_mb"], row["pipeline_s"] - base["pipeline_s"]
        print(
            f"  {option:<16} {row['venv_mb']:>9.0f} {added_mb:>+6.0f}"
            f" {row['sync_s']:>10.1f} {row['pipeline_s']:>11.1f} {added_s:>+6.1f}"
        )


if __name__ == "__main__":
    main()
