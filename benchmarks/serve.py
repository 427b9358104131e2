"""Throughput and latency of the rendered API, answering from ONNX and from the native model, against
raw-ASGI floors; and the API's start-up time on each path.

Not a test: prints tables. Run from the repository root after ``uv sync``:

    uv run python benchmarks/serve.py [--framework sklearn] [--param n_estimators=20] [--project DIR]

Every server runs one uvicorn worker (uvloop, httptools) on 127.0.0.1 and loads the same
``models/model``. Two floors: a bare ASGI callable that parses the body with orjson and answers a
constant (no model at all: what the server and the client cost), and the same callable calling the
native model through ``serve.Predictor`` (no validation, routing, logging or metrics). The rendered
API runs exactly as ``make serve`` does, with its demo config (prediction log and JSON access log
on), once with ``serving.runtime: onnx`` (the exported graph, the default) and once with ``native``.
A fifth server is what a team would reach for instead: MLflow's ``mlflow models serve`` (one
worker, ``--env-manager local``) of the same bundle, wrapped as an MLflow pyfunc model that calls
the project's own native model (the project is rendered with ``tracking=mlflow``, which brings MLflow;
``--no-mlflow`` leaves it out). Ratios are to the model-free floor and, for the ONNX path, to the
native API and to MLflow.

Start-up is process start to the first ``/ready`` 200, the median of ``--starts`` starts per path,
with the project's own venv and with the slim one the API's Docker image takes: the ``serve``
dependency group and the package alone (no pandas, scikit-learn or framework), whose size is printed
beside the full runtime venv's (every dependency, no dev tools: the jobs image's).

The load is bounded: a fixed number of concurrent keep-alive connections (16 and 64), single-row
and 100-row bodies, and a fixed duration per cell (``wrk`` with one thread, when installed: it
costs the server far less CPU than a Python client) or a fixed number of requests with a time cap
(the ``httpx2`` fallback). The two servers are measured in alternation, ``--rounds`` times, and the
best round of each is kept, so a burst of unrelated load on a shared machine does not decide the
ratio. ``--param`` overrides ``model.params`` before training, e.g. a smaller forest to measure the
API layer against a model call of a millisecond or two rather than the demo forest's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import answers, free_port, http, project_env, render, run, serve_command, server_process

RAW_APP = '''\
"""Raw ASGI floor for benchmarks/serve.py: the same model call, nothing else."""
import sys

import orjson
import uvicorn

from {slug}.config import load_config
from {slug}.serve import Predictor
from {slug}.train import load_trained

MODEL_FREE = sys.argv[2:] == ["model-free"]
predictor = None if MODEL_FREE else Predictor(load_trained(load_config("configs/config.yaml")))
CONSTANT = b'{{"predictions":[0],"model_version":"none"}}'
HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/predict":
        records = orjson.loads(body)["records"]
        payload = CONSTANT if predictor is None else orjson.dumps(predictor(records))
    else:
        payload = b'{{"status":"ok"}}'
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": payload}})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning",
                loop="uvloop", http="httptools")
'''


MLFLOW_MODEL = '''\
"""Save the served bundle as an MLflow pyfunc model, for benchmarks/serve.py (``mlflow models serve``)."""
import sys
from pathlib import Path

import mlflow.pyfunc

CONFIG = str(Path("configs/config.yaml").resolve())


class Bundle(mlflow.pyfunc.PythonModel):
    """The project's native model behind MLflow's scoring server: DataFrame in, probabilities out."""

    def load_context(self, context):
        from {slug}.config import load_config
        from {slug}.train import load_trained

        self.trained = load_trained(load_config(CONFIG))

    def predict(self, context, model_input, params=None):
        if self.trained.metadata["task"] == "classification":
            return self.trained.predict_proba(model_input)
        return self.trained.predict(model_input)


mlflow.pyfunc.save_model(sys.argv[1], python_model=Bundle(), code_paths=["src/{slug}"])
'''

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local file = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = file:read("*a")
file:close()
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def wrk_load(url: str, body: bytes, seconds: float, concurrency: int, workdir: Path) -> dict[str, float]:
    """``wrk`` with one thread and ``concurrency`` connections for ``seconds``; its latency percentiles."""
    (workdir / "body.json").write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    env = {"BENCH_BODY": str(workdir / "body.json"), "PATH": "/usr/bin:/bin"}
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    subprocess.run([*command[:3], "-d1s", *command[4:]], env=env, capture_output=True, check=True)  # warm-up
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s*(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if len(percentiles) != 2:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "errors": (int(errors.group(1)) if errors else 0) + (1 if socket_errors else 0),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(percentiles["50"]),
        "p99": _ms(percentiles["99"]),
    }


async def load(url: str, body: bytes, requests: int, concurrency: int, cap: float) -> dict[str, float]:
    """``requests`` POSTs over ``concurrency`` connections, stopping early after ``cap`` seconds."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    headers = {"content-type": "application/json"}
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(min(50, requests)):  # warm-up: connections, caches, the model's first call
            await client.post(url, content=body, headers=headers)
        start = time.perf_counter()
        deadline = start + cap

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                sent = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - sent)
                errors += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50": 1000 * statistics.median(latencies),
        "p99": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def prepare(args: argparse.Namespace, workdir: Path) -> Path:
    """A rendered project with a trained model (rendered and trained here unless --project)."""
    if args.project:
        return Path(args.project).resolve()
    tracking = {} if args.no_mlflow else {"tracking": "mlflow"}
    project = render(workdir / "bench", {"framework": args.framework, **tracking})
    slug = answers(project)["project_slug"]
    env = project_env()
    if args.param:
        path = project / "configs" / "config.yaml"
        config = yaml.safe_load(path.read_text())
        for item in args.param:
            key, value = item.split("=", 1)
            config["model"]["params"][key] = yaml.safe_load(value)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    run(["uv", "sync", "--quiet"], project, env)
    for stage in ("data", "train", "evaluate"):
        run(["uv", "run", "--frozen", "python", "-m", slug, stage], project, env)
    return project


SERVERS = (
    "model-free ASGI",
    "raw ASGI + native model",
    "API, native model",
    "API, ONNX",
    "MLflow models serve",
)
MLFLOW = "MLflow models serve"


def mlflow_command(project: Path, workdir: Path, port: int) -> list[str] | None:
    """``mlflow models serve`` of the bundle saved as a pyfunc model; None when MLflow is not installed."""
    mlflow = project / ".venv" / "bin" / "mlflow"
    if not mlflow.exists():
        return None
    script, model = project / ".bench_mlflow_model.py", workdir / "mlflow-model"
    script.write_text(MLFLOW_MODEL.format(slug=answers(project)["project_slug"]))
    try:
        run(["uv", "run", "--frozen", "python", script.name, str(model)], project, project_env())
    finally:
        script.unlink()
    served = ["-m", str(model), "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local", "-w", "1"]
    return [str(mlflow), "models", "serve", *served]


def native_config(project: Path) -> Path:
    """The project's config with ``serving.runtime: native`` (a copy: the user's file is untouched)."""
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    config["serving"]["runtime"] = "native"
    path = project / "configs" / ".bench-native.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def runtime_venvs(project: Path, workdir: Path) -> dict[str, Path]:
    """The two venvs the Dockerfile builds, built the same way: ``serve`` (the API's) and ``full``."""
    venvs = {}
    for name, options in (("serve", ["--only-group", "serve"]), ("full", ["--no-dev"])):
        venv = workdir / f"venv-{name}"
        env = {**project_env(), "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
        run(["uv", "sync", "--frozen", "--quiet", *options, "--no-install-project"], project, env)
        run(["uv", "pip", "install", "--quiet", "--python", str(venv), "--no-deps", "."], project, env)
        venvs[name] = venv
    return venvs


def megabytes(folder: Path) -> float:
    files = [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()]
    return sum(path.stat().st_size for path in files) / 1e6


def start_seconds(command: list[str], project: Path, port: int, log: Path) -> float:
    """Seconds from process start to the first ``/ready`` 200."""
    with log.open("w") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=project, env=project_env(), stdout=output, stderr=output)
        # (the venv's own interpreter, no ``uv run`` in front: what a container's CMD starts)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if http("GET", f"http://127.0.0.1:{port}/ready", timeout=1)[0] == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="sklearn")
    parser.add_argument("--project", help="an already rendered and trained project to reuse")
    parser.add_argument("--requests", type=int, default=1500, help="requests per cell and round")
    parser.add_argument("--cap", type=float, default=15.0, help="seconds per cell and round at most")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="wrk: seconds per cell and round")
    parser.add_argument("--starts", type=int, default=5, help="server starts timed per path")
    parser.add_argument(
        "--client", choices=("wrk", "httpx2"), default="wrk" if shutil.which("wrk") else "httpx2"
    )
    parser.add_argument("--param", action="append", default=[], help="model.params override, KEY=VALUE")
    parser.add_argument("--no-mlflow", action="store_true", help="leave out MLflow's models serve")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlfolio-bench-serve-") as tmp:
        workdir = Path(tmp)
        project = prepare(args, workdir)
        slug = answers(project)["project_slug"]
        raw_script = project / ".bench_raw_asgi.py"
        raw_script.write_text(RAW_APP.format(slug=slug))
        native = native_config(project)
        ports = {name: free_port() for name in SERVERS}
        raw = ["uv", "run", "--frozen", "python", raw_script.name]
        commands = {
            "model-free ASGI": [*raw, str(ports["model-free ASGI"]), "model-free"],
            "raw ASGI + native model": [*raw, str(ports["raw ASGI + native model"])],
            "API, native model": [
                *serve_command(project, ports["API, native model"]),
                *("--config", str(native)),
            ],
            "API, ONNX": serve_command(project, ports["API, ONNX"]),
        }
        mlflow = mlflow_command(project, workdir, ports[MLFLOW])
        if mlflow:
            commands[MLFLOW] = mlflow
        results: dict[tuple[str, int, int], dict[str, float]] = {}
        venvs = runtime_venvs(project, workdir)
        sizes = {name: megabytes(venv) for name, venv in venvs.items()}
        served = serve_command(project, ports["API, ONNX"])[4:]  # after "uv run --frozen python"
        full, slim = (str(venvs[name] / "bin" / "python") for name in ("full", "serve"))
        start_commands = {
            "API, native model (full venv)": [full, *served, "--config", str(native)],
            "API, ONNX (full venv)": [full, *served],
            "API, ONNX (serve venv, the image's)": [slim, *served],
        }
        starts: dict[str, list[float]] = {name: [] for name in start_commands}
        try:
            for _ in range(args.starts):
                for name, command in start_commands.items():
                    log = workdir / "start.log"
                    starts[name].append(start_seconds(command, project, ports["API, ONNX"], log))
            with contextlib.ExitStack() as stack:
                # MLflow starts uvicorn by name: the venv's bin first on its PATH.
                bin_path = f"{project / '.venv' / 'bin'}:{os.environ['PATH']}"
                envs = {name: None for name in commands} | {MLFLOW: {**project_env(), "PATH": bin_path}}
                bases = {
                    name: stack.enter_context(
                        server_process(command, project, ports[name], workdir / f"{i}.log", envs[name], 120)
                    )
                    for i, (name, command) in enumerate(commands.items())
                }
                meta = http("GET", f"{bases['API, ONNX']}/metadata")[1]
                assert meta["runtime"]["name"] == "onnxruntime", meta["runtime"]
                assert http("GET", f"{bases['API, native model']}/metadata")[1]["runtime"]["name"] == "native"
                example = meta["example"]
                for concurrency in (16, 64):
                    for rows in (1, 100):
                        body = json.dumps({"records": [example] * rows}).encode()
                        # MLflow's scoring server takes a DataFrame's records at /invocations.
                        mlflow_body = json.dumps({"dataframe_records": [example] * rows}).encode()
                        for _ in range(args.rounds):
                            for name, base in bases.items():
                                url = f"{base}/invocations" if name == MLFLOW else f"{base}/predict"
                                payload = mlflow_body if name == MLFLOW else body
                                cell = (
                                    wrk_load(url, payload, args.seconds, concurrency, workdir)
                                    if args.client == "wrk"
                                    else asyncio.run(load(url, payload, args.requests, concurrency, args.cap))
                                )
                                key = (name, concurrency, rows)
                                if key not in results or cell["rps"] > results[key]["rps"]:
                                    results[key] = cell
        finally:
            raw_script.unlink(missing_ok=True)
            native.unlink(missing_ok=True)
        framework = args.framework if not args.project else answers(project)["framework"]
        print_table(results, framework, args)
        print("\n| path | start to /ready 200, median s | min s | max s |\n|---|---:|---:|---:|")
        for name, seconds in starts.items():
            print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | {max(seconds):.2f} |")
        print(
            f"\nruntime venv: API image (serve group) {sizes['serve']:.0f} MB, jobs image (every "
            f"dependency) {sizes['full']:.0f} MB, ratio {sizes['serve'] / sizes['full']:.2f}"
        )


def print_table(results: dict[tuple[str, int, int], dict[str, Any]], framework: str, args: Any) -> None:
    params = f" ({', '.join(args.param)})" if args.param else ""
    print(
        f"\nPOST /predict, one uvicorn worker each, {framework} model{params}, 127.0.0.1, "
        f"client {args.client}, best of {args.rounds} rounds\n"
    )
    print(
        "| server | concurrency | rows/request | requests | errors | req/s | rows/s | p50 ms | p99 ms "
        "| to model-free floor | ONNX to native API | ONNX to MLflow |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = {name: index for index, name in enumerate(SERVERS)}
    for (name, concurrency, rows), cell in sorted(
        results.items(), key=lambda kv: (kv[0][1], kv[0][2], order[kv[0][0]])
    ):
        floor = results[("model-free ASGI", concurrency, rows)]["rps"]
        native = results[("API, native model", concurrency, rows)]["rps"]
        ratio = f"{cell['rps'] / floor:.2f}" if floor else "n/a"
        onnx = name == "API, ONNX"
        speedup = f"{cell['rps'] / native:.1f}x" if onnx and native else ""
        mlflow = results.get((MLFLOW, concurrency, rows), {}).get("rps")
        versus_mlflow = f"{cell['rps'] / mlflow:.1f}x" if onnx and mlflow else ""
        print(
            f"| {name} | {concurrency} | {rows} | {cell['requests']} | {cell['errors']} | {cell['rps']:.0f} "
            f"| {cell['rps'] * rows:.0f} | {cell['p50']:.2f} | {cell['p99']:.2f} | {ratio} | {speedup} "
            f"| {versus_mlflow} |"
        )


if __name__ == "__main__":
    main()
