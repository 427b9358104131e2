"""Time-series projects (issue 14): ``make all`` per framework, backtest MASE against the
seasonal-naive forecast, and ``/forecast`` latency, side by side.

Not a test: prints a table. Run from the repository root after ``uv sync``:

    uv run python benchmarks/timeseries.py [--frameworks sklearn,xgboost] [--requests 400]

Each framework's Mauna Loa CO2 render is installed and ``make all`` is timed (data, train with its
conformal calibration, evaluate with the rolling-origin backtest, monitor). The MASE figures come
from the run's own ``reports/metrics.json``: the backtest (3 folds of 12 months, refitted each time),
the held-out last year, and the seasonal-naive forecast on that year. Then the render's own
``serve`` command answers ``--requests`` single forecasts one after another on one keep-alive
connection (p50, p99), from the stored history and from a history sent in the request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import free_port, http, project_env, render, run, serve_command, server_process


def latencies(base: str, body: dict[str, Any], count: int, route: str = "/forecast") -> dict[str, float]:
    """One request at a time on one keep-alive connection: what a single caller waits."""
    times = []
    with httpx2.Client(timeout=30) as client:
        for _ in range(20):  # warm-up
            client.post(f"{base}{route}", json=body)
        for _ in range(count):
            start = time.perf_counter()
            response = client.post(f"{base}{route}", json=body)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times), "p99_ms": 1000 * times[int(0.99 * (len(times) - 1))]}


def measure(workdir: Path, framework: str, count: int) -> dict[str, Any]:
    project = render(workdir / framework, {"modality": "timeseries", "framework": framework})
    env = project_env()
    run(["uv", "sync", "--quiet"], project, env)
    start = time.perf_counter()
    run(["make", "all"], project, env)
    result: dict[str, Any] = {"make_all_s": time.perf_counter() - start}
    report = json.loads((project / "reports" / "metrics.json").read_text())
    result["backtest_mase"] = report["cross_validation"]["metrics"]["mase"]["mean"]
    result["test_mase"] = report["test"]["mase"]
    result["naive_mase"] = report["baseline"]["mase"]
    result["coverage"] = report["forecast"]["interval"]["coverage"]
    port = free_port()
    with server_process(serve_command(project, port), project, port, project / ".serve.log", env) as base:
        example = http("GET", f"{base}/metadata")[1]["example"]
        for name, body in (("stored", {"horizon": example["horizon"]}), ("history", example)):
            for key, value in latencies(base, body, count).items():
                result[f"{name}_{key}"] = value
    return result


ROWS = [
    ("make all (s)", "make_all_s", "{:.1f}"),
    ("backtest MASE (3 folds)", "backtest_mase", "{:.3f}"),
    ("test MASE (last 12 months)", "test_mase", "{:.3f}"),
    ("seasonal naive MASE (test)", "naive_mase", "{:.3f}"),
    ("90% interval coverage (test)", "coverage", "{:.0%}"),
    ("/forecast p50, stored history (ms)", "stored_p50_ms", "{:.2f}"),
    ("/forecast p99, stored history (ms)", "stored_p99_ms", "{:.2f}"),
    ("/forecast p50, history sent (ms)", "history_p50_ms", "{:.2f}"),
    ("/forecast p99, history sent (ms)", "history_p99_ms", "{:.2f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="sklearn,xgboost")
    parser.add_argument("--requests", type=int, default=400, help="requests per measure")
    args = parser.parse_args()
    frameworks = args.frameworks.split(",")
    with tempfile.TemporaryDirectory() as folder:
        results = {framework: measure(Path(folder), framework, args.requests) for framework in frameworks}
    print("\nTime-series projects, Mauna Loa CO2 monthly means (statsmodels), horizon 12\n")
    print("| measure | " + " | ".join(frameworks) + " |")
    print("|---|" + "---:|" * len(frameworks))
    for title, key, form in ROWS:
        print(f"| {title} | " + " | ".join(form.format(results[f][key]) for f in frameworks) + " |")
    for framework in frameworks:
        ratio = results[framework]["test_mase"] / results[framework]["naive_mase"]
        print(
            f"{framework}: test MASE is {ratio:.2f} x the seasonal-naive forecast's (target: MASE below 1.0)"
        )


if __name__ == "__main__":
    main()
