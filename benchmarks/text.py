"""Text projects (issue 19): ``make all`` per framework, accuracy against the TF-IDF + logistic
regression reference, and single-text ``/predict`` latency, side by side.

Not a test: prints a table. Run from the repository root after ``uv sync``:

    uv run python benchmarks/text.py [--frameworks sklearn,xgboost] [--requests 400]

Each framework's render of the demo corpus (10,000 IMDB reviews from the ``mlba`` package) is
installed and ``make all`` is timed (data, train, evaluate with 3-fold cross-validation, monitor);
targets: under 60 s on two cores. Accuracy figures come from the run's own ``reports/metrics.json``.
Then the render's own ``serve`` command answers ``--requests`` single-text predictions one after
another on one keep-alive connection (p50, p99; target p50 under 10 ms), and one 100-text batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timeseries import latencies
from tests.helpers import (
    free_port,
    http,
    project_env,
    render,
    run,
    serve_command,
    server_process,
    torch_index,
)


def measure(workdir: Path, framework: str, count: int) -> dict[str, Any]:
    project = render(workdir / framework, {"modality": "text", "framework": framework})
    env = project_env()
    index = torch_index(workdir)
    if index:
        env["UV_INDEX"] = f"pytorch-cpu={index}"
    run(["uv", "sync", "--quiet"], project, env)
    start = time.perf_counter()
    run(["make", "all"], project, env)
    result: dict[str, Any] = {"make_all_s": time.perf_counter() - start}
    report = json.loads((project / "reports" / "metrics.json").read_text())
    result["accuracy"] = report["test"]["accuracy"]
    result["reference"] = report["linear_baseline"]["test"]["accuracy"]
    result["cross_validated"] = report["cross_validation"]["metrics"]["accuracy"]["mean"]
    result["seconds"] = report["seconds"]
    port = free_port()
    with server_process(serve_command(project, port), project, port, project / ".serve.log", env) as base:
        example = http("GET", f"{base}/metadata")[1]["example"]["text"]
        result.update(latencies(base, {"texts": [example]}, count, "/predict"))
        batch = latencies(base, {"texts": [example] * 100}, max(count // 10, 20), "/predict")
        result["batch_p50_ms"] = batch["p50_ms"]
    return result


ROWS = [
    ("make all (s)", "make_all_s", "{:.1f}"),
    ("test accuracy", "accuracy", "{:.4f}"),
    ("TF-IDF + logistic regression (test)", "reference", "{:.4f}"),
    ("cross-validated accuracy (3 folds)", "cross_validated", "{:.4f}"),
    ("/predict p50, one text (ms)", "p50_ms", "{:.2f}"),
    ("/predict p99, one text (ms)", "p99_ms", "{:.2f}"),
    ("/predict p50, 100 texts (ms)", "batch_p50_ms", "{:.1f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="sklearn,xgboost")
    parser.add_argument("--requests", type=int, default=400, help="requests per measure")
    args = parser.parse_args()
    frameworks = args.frameworks.split(",")
    with tempfile.TemporaryDirectory() as folder:
        results = {framework: measure(Path(folder), framework, args.requests) for framework in frameworks}
    print("\nText projects, 10,000 IMDB reviews (mlba), two classes\n")
    print("| measure | " + " | ".join(frameworks) + " |")
    print("|---|" + "---:|" * len(frameworks))
    for title, key, form in ROWS:
        print(f"| {title} | " + " | ".join(form.format(results[f][key]) for f in frameworks) + " |")
    for framework in frameworks:
        result = results[framework]
        print(
            f"{framework}: make all {result['make_all_s'] / 60:.2f} x the 60 s target; /predict p50 "
            f"{result['p50_ms'] / 10:.2f} x the 10 ms target; evaluate's analyses {result['seconds']}"
        )


if __name__ == "__main__":
    main()
