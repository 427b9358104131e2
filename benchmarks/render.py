"""Render time (mlfolio vs plain copier) and time from render to first served prediction.

Not a test: prints figures. Run from the repository root after ``uv sync``:

    uv run python benchmarks/render.py [--repeats 5] [--framework sklearn]

The package cache is warmed by one untimed install first, so the "first prediction" figure is what
a user sees on their second project, not the one-off download of scikit-learn.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import ROOT, copy_command, http, project_env, render, run, served


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def render_times(workdir: Path, repeats: int, framework: str) -> dict[str, list[float]]:
    mlfolio = str(Path(sys.executable).parent / "mlfolio")
    times: dict[str, list[float]] = {"copier copy": [], "mlfolio new --no-git --no-install": []}
    for index in range(repeats):
        copier_dest, mlfolio_dest = workdir / f"copier-{index}", workdir / f"mlfolio-{index}"
        copier_cmd = copy_command(copier_dest, {"framework": framework})
        times["copier copy"].append(timed(copier_cmd, ROOT))
        mlfolio_cmd = [
            mlfolio,
            "new",
            str(mlfolio_dest),
            "--defaults",
            "--no-git",
            "--no-install",
            "--framework",
            framework,
        ]
        times["mlfolio new --no-git --no-install"].append(timed(mlfolio_cmd, ROOT))
    return times


def first_prediction(workdir: Path, framework: str) -> dict[str, float]:
    """Seconds for each step from an empty folder to one answered POST /predict."""
    steps: dict[str, float] = {}
    warm = render(workdir / "warm", {"framework": framework})
    env = project_env()
    run(["uv", "sync"], cwd=warm, env=env)  # untimed: fills the uv cache
    start = time.perf_counter()
    project = render(workdir / "timed", {"framework": framework})
    steps["render"] = time.perf_counter() - start
    for name, command in (
        ("uv sync", ["uv", "sync"]),
        # data -> train -> evaluate: a candidate is served only once it passes its gate.
        ("make all", ["make", "all"]),
    ):
        mark = time.perf_counter()
        run(command, cwd=project, env=env)
        steps[name] = time.perf_counter() - mark
    mark = time.perf_counter()
    with served(project, env) as base:
        steps["server start"] = time.perf_counter() - mark
        mark = time.perf_counter()
        example = http("GET", f"{base}/metadata")[1]["example"]
        status, body = http("POST", f"{base}/predict", {"records": [example]})
        assert status == 200, body
        steps["first request"] = time.perf_counter() - mark
    steps["total"] = time.perf_counter() - start
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--framework", default="sklearn")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mlfolio-bench-"))
    try:
        times = render_times(workdir, args.repeats, args.framework)
        print(f"Render time, {args.repeats} runs each ({args.framework}):")
        print(f"  {'command':<36} {'median s':>9} {'min s':>7} {'max s':>7}")
        for name, values in times.items():
            print(f"  {name:<36} {statistics.median(values):>9.2f} {min(values):>7.2f} {max(values):>7.2f}")
        ratio = statistics.median(times["mlfolio new --no-git --no-install"]) / statistics.median(
            times["copier copy"]
        )
        print(f"  ratio mlfolio / copier: {ratio:.2f}")
        print(f"\nRender -> first successful prediction ({args.framework}, warm package cache):")
        for name, seconds in first_prediction(workdir, args.framework).items():
            print(f"  {name:<16} {seconds:>7.2f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
