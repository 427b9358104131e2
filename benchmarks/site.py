"""What presenting a project costs: ``make site`` and ``make report`` after ``make all``.

Not a test: prints a table. Run from the repository root after ``uv sync``:

    uv run python benchmarks/site.py [--framework sklearn] [--repeat 3]

One default render is installed and run (``make all``) once; then ``make site`` (pages written from
the artifacts + a strict MkDocs Material build) and ``make report`` (the README's results section)
run ``--repeat`` times each, through the Makefile as a user runs them, so the figures include
``uv run`` and the package's start-up. The build's own share is the step time the command prints.
Target (issue 17): ``make site`` under 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import megabytes, project_env, render, run

STEP_SECONDS = re.compile(r"Site: pages from the artifacts, strict build \((\d+\.\d+)s\)")


def timed(command: list[str], project: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = run(command, project, env)
    return time.perf_counter() - start, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="sklearn")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlfolio-site-") as tmp:
        workdir = Path(tmp)
        env = project_env()
        project = render(workdir / "project", {"framework": args.framework})
        run(["uv", "sync", "--quiet"], project, env)
        all_s, _ = timed(["make", "all"], project, env)
        site, build, report = [], [], []
        for _ in range(args.repeat):
            seconds, output = timed(["make", "site"], project, env)
            site.append(seconds)
            found = STEP_SECONDS.search(output)
            build.append(float(found.group(1)) if found else float("nan"))
            report.append(timed(["make", "report"], project, env)[0])
        pages = len(list((project / "build" / "site").glob("*.html")))
        size = megabytes(project / "build" / "site")
    print(f"\n{args.framework}, default render, 2-core figures, median of {args.repeat}")
    print(f"| step | seconds | note |\n|---|---:|---|\n| make all | {all_s:.1f} | once, before |")
    print(f"| make site | {statistics.median(site):.1f} | {pages} pages, {size} MB; target < 15 s |")
    print(f"| of which pages + strict build | {statistics.median(build):.1f} | inside the command |")
    print(f"| make report | {statistics.median(report):.1f} | README results section |")


if __name__ == "__main__":
    main()
