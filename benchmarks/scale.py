"""Training on Ray against training in one process: what the engine costs on this machine.

Not a test: prints a table. Run from the repository root after ``uv sync``:

    uv run python benchmarks/scale.py [--project DIR] [--rounds 2]

A PyTorch ``compute=ray`` render on its demo data, trained the same way each time (same config,
same seed, early stopping on the validation loss), timed from the command's start to its end:

- ``local``: ``python -m <slug> train --local``, one process, no Ray;
- ``ray, 1 worker`` and ``ray, 2 workers``: ``python -m <slug> train`` on a two-node cluster started
  beforehand with ``make cluster-up`` (``distributed.workers`` set to 1, then 2), so the cluster's
  start-up is not in these figures;
- ``ray, embedded``: ``train`` with no cluster running, so the command starts (and stops) its own
  Ray instance, as a user's first ``make train`` does;
- ``cluster-up``: ``make cluster-up`` itself, two nodes.

Each row is the best of ``--rounds`` runs (less noise from a shared machine) with the epochs
trained, and the ratio to the local run. Everything runs in a network namespace with loopback only,
like the tests: Ray's nodes would otherwise listen on the machine's address.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import answers, project_env, render, run
from tests.test_scale_out import Namespace, loopback_namespace


def prepare(args: argparse.Namespace, workdir: Path) -> Path:
    if args.project:
        return Path(args.project).resolve()
    project = render(workdir / "p", {"framework": "pytorch", "compute": "ray"})
    run(["uv", "sync", "--quiet"], cwd=project, env=project_env())
    return project


def set_workers(project: Path, workers: int) -> None:
    path = project / "configs" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["distributed"]["workers"] = workers
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def timed(namespace: Namespace, command: list[str], project: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds the command took, and the epochs the model it published trained."""
    start = time.perf_counter()
    namespace.run(command, project, env)
    seconds = time.perf_counter() - start
    receipt = json.loads((project / "reports" / "candidate.json").read_text())
    metadata = json.loads((project / receipt["directory"] / "metadata.json").read_text())
    return seconds, int(metadata["params"].get("epochs_trained", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="an already rendered compute=ray PyTorch project to reuse")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mlfolio-scale-"))
    project = prepare(args, workdir)
    slug = answers(project)["project_slug"]
    env = {**project_env(), "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray", dir="/tmp"), "COLUMNS": "200"}
    train = ["uv", "run", "--frozen", "python", "-m", slug, "train"]
    rows: dict[str, list[tuple[float, int]]] = {}
    with loopback_namespace() as namespace:
        namespace.run(["make", "data"], project, env)
        for _ in range(args.rounds):
            local = timed(namespace, [*train, "--local"], project, env)
            rows.setdefault("local (one process)", []).append(local)
            set_workers(project, 2)
            rows.setdefault("ray, embedded, 2 workers", []).append(timed(namespace, train, project, env))
        for _ in range(args.rounds):
            start = time.perf_counter()
            up = namespace.run(["make", "cluster-up"], project, env)
            rows.setdefault("cluster-up (2 nodes)", []).append((time.perf_counter() - start, 0))
            assert re.search(r"Active:\s*\n\s*1 node_\w+\s*\n\s*1 node_\w+", up.stdout), up.stdout[-1000:]
            try:
                for workers in (1, 2):
                    set_workers(project, workers)
                    label = f"ray, 2-node cluster, {workers} worker{'s' if workers > 1 else ''}"
                    rows.setdefault(label, []).append(timed(namespace, train, project, env))
            finally:
                namespace.run(["make", "cluster-down"], project, env, check=False)
    fastest_local = min(rows["local (one process)"])[0]
    print(f"\nPyTorch demo training, best of {args.rounds} (seconds; ratio to the local run)\n")
    print(f"{'run':<36} {'seconds':>8} {'epochs':>7} {'x local':>8}")
    for label, results in rows.items():
        seconds, epochs = min(results)
        ratio = "" if label.startswith("cluster-up") else f"{seconds / fastest_local:.1f}"
        print(f"{label:<36} {seconds:>8.1f} {epochs or '':>7} {ratio:>8}")


if __name__ == "__main__":
    main()
