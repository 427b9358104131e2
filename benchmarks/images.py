"""Image projects (issue 13): ``make all`` per framework, then single-image ``/predict`` latency and
throughput for multipart uploads and base64 JSON, and the server's memory, side by side.

Not a test: prints a table. Run from the repository root after ``uv sync``:

    uv run python benchmarks/images.py [--frameworks sklearn,pytorch,tensorflow] [--requests 400]

Each framework's digits render is installed, ``make all`` is timed (data, train, evaluate with its
analyses, monitor), and the render's own ``serve`` command is started on 127.0.0.1. The client sends
``--requests`` single-image requests one after another on one keep-alive connection (latency: p50,
p99) and the same number from 8 concurrent connections (throughput), for each body type. The
server's resident memory (VmRSS of the serving process, not its ``uv run`` parent) is read after
loading, after the load and after a 20,000 x 20,000 PNG bomb (refused with 413 before decoding).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import answers, free_port, http, project_env, render, run, serve_command, server_process
from tests.test_images import bomb_png, server_rss_mb


def request_kwargs(kind: str, png: bytes) -> dict[str, Any]:
    if kind == "multipart":
        return {"files": [("images", ("digit.png", png, "image/png"))]}
    return {"json": {"images": [base64.b64encode(png).decode()]}}


def latencies(base: str, kind: str, png: bytes, count: int) -> dict[str, float]:
    """One request at a time on one keep-alive connection: what a single caller waits."""
    times = []
    with httpx2.Client(timeout=30) as client:
        for _ in range(20):  # warm-up
            client.post(f"{base}/predict", **request_kwargs(kind, png))
        for _ in range(count):
            start = time.perf_counter()
            response = client.post(f"{base}/predict", **request_kwargs(kind, png))
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times), "p99_ms": 1000 * times[int(0.99 * (len(times) - 1))]}


async def _throughput(base: str, kind: str, png: bytes, count: int, concurrency: int) -> float:
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                response = await client.post(f"{base}/predict", **request_kwargs(kind, png))
                assert response.status_code == 200, response.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - start)


def measure(workdir: Path, framework: str, count: int) -> dict[str, Any]:
    project = render(workdir / framework, {"modality": "image", "framework": framework})
    env = project_env()
    run(["uv", "sync", "--quiet"], project, env)
    start = time.perf_counter()
    run(["make", "all"], project, env)
    result: dict[str, Any] = {"make_all_s": time.perf_counter() - start}
    port = free_port()
    with server_process(serve_command(project, port), project, port, project / ".serve.log", env) as base:
        meta = http("GET", f"{base}/metadata")[1]
        png = base64.b64decode(meta["example"]["image"])
        result["rss_loaded_mb"] = server_rss_mb(port)
        for kind in ("multipart", "base64"):
            for key, value in latencies(base, kind, png, count).items():
                result[f"{kind}_{key}"] = value
            result[f"{kind}_rps"] = asyncio.run(_throughput(base, kind, png, count, 8))
        result["rss_after_load_mb"] = server_rss_mb(port)
        bomb = bomb_png()
        with httpx2.Client(timeout=60) as client:
            status = client.post(f"{base}/predict", **request_kwargs("multipart", bomb)).status_code
        assert status == 413, status
        result["rss_after_bomb_mb"] = server_rss_mb(port)
        result["bomb_kb"] = len(bomb) / 1024
    slug = answers(project)["project_slug"]
    result["slug"] = slug
    return result


ROWS = [
    ("make all (s)", "make_all_s", "{:.1f}"),
    ("multipart p50 (ms)", "multipart_p50_ms", "{:.2f}"),
    ("multipart p99 (ms)", "multipart_p99_ms", "{:.2f}"),
    ("multipart req/s (8 conns)", "multipart_rps", "{:.0f}"),
    ("base64 p50 (ms)", "base64_p50_ms", "{:.2f}"),
    ("base64 p99 (ms)", "base64_p99_ms", "{:.2f}"),
    ("base64 req/s (8 conns)", "base64_rps", "{:.0f}"),
    ("RSS loaded (MB)", "rss_loaded_mb", "{:.0f}"),
    ("RSS after load (MB)", "rss_after_load_mb", "{:.0f}"),
    ("RSS after bomb (MB)", "rss_after_bomb_mb", "{:.0f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="sklearn,pytorch,tensorflow")
    parser.add_argument("--requests", type=int, default=400, help="requests per body type and measure")
    args = parser.parse_args()
    frameworks = args.frameworks.split(",")
    with tempfile.TemporaryDirectory() as folder:
        results = {framework: measure(Path(folder), framework, args.requests) for framework in frameworks}
    bomb_kb = next(iter(results.values()))["bomb_kb"]
    print(f"\nImage projects, digits demo; the bomb is a {bomb_kb:.0f} KB PNG of 20,000 x 20,000 pixels\n")
    print("| measure | " + " | ".join(frameworks) + " |")
    print("|---|" + "---:|" * len(frameworks))
    for title, key, form in ROWS:
        print(f"| {title} | " + " | ".join(form.format(results[f][key]) for f in frameworks) + " |")
    for framework in frameworks:
        growth = results[framework]["rss_after_bomb_mb"] - results[framework]["rss_after_load_mb"]
        print(f"{framework}: the bomb changed RSS by {growth:+.0f} MB (target: under +200 MB)")


if __name__ == "__main__":
    main()
