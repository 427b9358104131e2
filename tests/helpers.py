"""Render the template and run what it produced: the helpers every generator test shares.

Renders come from the working tree of this checkout (a clean clone in CI), with plain Copier and
no ``--trust``. Commands run in the rendered project with its own environment, never ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TORCH_WHEELS = Path("/opt/wheels")


# A render's own commands, in the order a developer runs them: install, lint, type-check, test, pipeline.
INSTALL = ["uv", "sync"]
STATIC_CHECKS = [
    ["uv", "run", "--frozen", "ruff", "check", "."],
    ["uv", "run", "--frozen", "ruff", "format", "--check", "."],
    ["uv", "run", "--frozen", "mypy"],
]
OWN_TESTS = ["uv", "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"]
PROJECT_COMMANDS = [INSTALL, *STATIC_CHECKS, OWN_TESTS, ["make", "all"]]


def copier_bin() -> str:
    """The copier console script installed beside the running interpreter."""
    candidate = Path(sys.executable).parent / "copier"
    return str(candidate) if candidate.exists() else "copier"


def torch_index(base: Path) -> str | None:
    """A one-package PEP 503 index holding the CPU torch wheel on this disk, if there is one.

    Rendered PyTorch projects name a ``pytorch-cpu`` uv index (what a real user's CI wants);
    tests redirect that name here instead of downloading anything.
    """
    wheels = sorted(TORCH_WHEELS.glob("torch-*.whl"))
    if not wheels:
        return None
    folder = base / "torch"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / wheels[0].name
    with contextlib.suppress(FileExistsError):  # tests run in parallel may share the folder
        link.symlink_to(wheels[0])
    page = folder / "index.html"
    if not page.exists():
        staged = folder / f".index-{os.getpid()}.html"
        staged.write_text(f'<a href="{wheels[0].name}">{wheels[0].name}</a>\n')
        staged.replace(page)  # atomic: a concurrent reader sees the whole page or none
    return f"pytorch-cpu={base.as_uri()}"


# One place for the redirect, shared by every test: uv caches a wheel per index URL, so an index in
# each test's own folder unpacked torch (700 MB) again for every PyTorch render.
TORCH_INDEX = Path(tempfile.gettempdir()) / "mlfolio-torch-index"
MYPY_CACHE = Path(tempfile.gettempdir()) / "mlfolio-mypy-cache"


def project_env() -> dict[str, str]:
    """Environment for commands inside a render: its own venv, the shared uv cache, torch redirect.

    Python writes its bytecode cache there, as on a user's machine: a CI machine that sets
    ``PYTHONDONTWRITEBYTECODE`` made every command compile scikit-learn, pandas or TensorFlow from
    source again (4 of a retrain's 9 s).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}
    }
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env["UV_NO_PROGRESS"] = "1"
    # One mypy cache for every render: entries are checked against each file's hash, so a render
    # reuses what another found in the same stubs and libraries (10 s of a cold run) and rechecks
    # the rest.
    env["MYPY_CACHE_DIR"] = str(MYPY_CACHE)
    index = torch_index(TORCH_INDEX)
    if index:
        env["UV_INDEX"] = index
    return env


def run(
    command: list[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure the assertion shows its output. With ``MLFOLIO_COMMAND_TIMES`` set
    to a file, each command's seconds are appended to it: where a slow test spends its time."""
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=dict(env or project_env()), capture_output=True, text=True, timeout=timeout
    )
    log_seconds(command, cwd, time.perf_counter() - started)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(command)} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def log_seconds(command: list[str], cwd: Path, seconds: float) -> None:
    target = os.environ.get("MLFOLIO_COMMAND_TIMES")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(f"{seconds:8.1f} s  {cwd.name}  {shlex.join(command)[:160]}\n")


def copy_command(
    dest: Path, data: Mapping[str, Any] | None = None, src: Path = ROOT, quiet: bool = True, ref: str = "HEAD"
) -> list[str]:
    """Plain ``copier copy --defaults`` (no --trust) of ``src`` at ``ref`` into ``dest``.

    By default at ``HEAD`` with the uncommitted changes: without ``--vcs-ref`` Copier renders the
    newest release tag, not the template under test.
    """
    command = [copier_bin(), "copy", "--defaults", "--vcs-ref", ref, *(["--quiet"] if quiet else [])]
    for key, value in (data or {}).items():
        command += ["--data", f"{key}={value}"]
    return [*command, str(src), str(dest)]


def render(dest: Path, data: Mapping[str, Any] | None = None, src: Path = ROOT) -> Path:
    """Render this checkout into ``dest`` with plain Copier; fails the caller if Copier fails."""
    run(copy_command(dest, data, src), cwd=src)
    return dest


def megabytes(folder: Path) -> int:
    """Disk use of a folder (``du -sm``), e.g. a render's installed environment."""
    return int(subprocess.run(["du", "-sm", str(folder)], capture_output=True, text=True).stdout.split()[0])


def answers(project: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((project / ".copier-answers.yml").read_text()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = 30,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, Any]:
    """One request; returns (status, decoded body) for any status.

    ``body`` is sent as JSON; ``data`` as raw bytes (for bodies JSON cannot express). Headers
    default to a JSON content type. A body that is not JSON comes back as text.
    """
    if data is None and body is not None:
        data = json.dumps(body).encode()
    sent = {"content-type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decode(error.read())


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload or b"null")
    except ValueError:
        return payload.decode(errors="replace")


@contextlib.contextmanager
def server_process(
    command: list[str],
    project: Path,
    port: int,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 90,
) -> Iterator[str]:
    """Start a server process in ``project``, wait until ``/health`` answers 200, yield its base URL.

    Its output goes to ``log_path``, whose tail is in the error when it exits or never gets healthy.
    """
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        environment = dict(env or project_env())
        process = subprocess.Popen(command, cwd=project, env=environment, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if http("GET", f"{base}/health", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                tail = log_path.read_text()[-3000:]
                raise RuntimeError(f"server not healthy in {startup_timeout} s:\n{tail}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def serve_command(project: Path, port: int) -> list[str]:
    """The render's own ``serve`` command on a loopback port."""
    slug = answers(project)["project_slug"]
    return [
        *("uv", "run", "--frozen", "python", "-m", slug, "serve"),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]


@contextlib.contextmanager
def served(project: Path, env: Mapping[str, str] | None = None, startup_timeout: float = 90) -> Iterator[str]:
    """Start the render's own ``serve`` command on a free loopback port; yield its base URL."""
    port = free_port()
    with server_process(
        serve_command(project, port), project, port, project / ".serve.log", env, startup_timeout
    ) as base:
        yield base


def uv_available() -> bool:
    return shutil.which("uv") is not None


def strict_json(path: Path) -> Any:
    """A JSON artifact, refusing ``NaN``/``Infinity`` (Python's reader would accept them silently)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds a bare {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def assert_reviewers_report(report: Mapping[str, Any]) -> None:
    """What every framework's default render reports (issue 15): intervals, cross-validation, the
    best dummy and a linear reference, and for classification the Brier score, calibration data and
    the decision threshold chosen on validation data."""
    metric = report["gate"]["metric"]
    low, high = report["intervals"]["test"][metric]
    assert low <= high
    assert set(report["intervals"][f"{metric}_difference"]) >= {report["linear_baseline"]["model"]}
    assert report["cross_validation"]["metrics"][metric]["std"] is not None
    assert report["baseline"][metric] is not None
    assert report["linear_baseline"]["test"][metric] is not None
    if report["task"] == "classification":
        assert 0 <= report["calibration"]["brier"] <= 1
        assert report["calibration"]["curve"]["mean_predicted"]
        assert 0 < report["decision_threshold"]["value"] < 1


class Namespace:
    """A network namespace with loopback only, held open by a sleeping process."""

    def __init__(self, holder: subprocess.Popen[bytes]) -> None:
        self.holder = holder
        user = [] if os.geteuid() == 0 else ["--user", "--preserve-credentials"]
        self.enter = ["nsenter", f"--target={holder.pid}", "--net", *user]

    def run(
        self, command: list[str], cwd: Path, env: dict[str, str], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.enter, *command], cwd=cwd, env=env, timeout=900, check=check)

    def popen(self, command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("w") as handle:
            return subprocess.Popen([*self.enter, *command], cwd=cwd, env=env, stdout=handle, stderr=handle)


@contextlib.contextmanager
def two_node_ray_cluster(namespace: Namespace, project: Path, env: dict[str, str]) -> Iterator[None]:
    """``make cluster-up`` in ``project`` (two active Ray nodes, or the test fails), then
    ``make cluster-down`` whatever happens inside."""
    up = namespace.run(["make", "cluster-up"], project, env)
    assert re.search(r"Active:\s*\n\s*1 node_\w+\s*\n\s*1 node_\w+", up.stdout), up.stdout[-2000:]
    try:
        yield
    finally:
        namespace.run(["make", "cluster-down"], project, env, check=False)


@contextlib.contextmanager
def loopback_namespace() -> Iterator[Namespace]:
    isolate = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    holder = subprocess.Popen([*isolate, "sh", "-c", "ip link set lo up && exec sleep 3600"])
    try:
        time.sleep(0.5)
        yield Namespace(holder)
    finally:
        holder.kill()
        holder.wait()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


# ---------------------------------------------------------------- a served API under test


def fuzz_api(base: str, headers: Mapping[str, str], max_examples: int) -> tuple[int, list[str]]:
    """Schemathesis against a running API: positive and negative cases for every operation, seeded
    so a failure reproduces. Returns how many operations it drove and what failed (no 5xx, answers
    that match the schema, documented statuses and content types)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in schemathesis.GenerationMode:

            @settings(
                max_examples=max_examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                case.call_and_validate(headers=dict(headers), checks=checks)

            try:
                fuzz()
            except Unsatisfiable:
                # A route without parameters or body has nothing to make invalid; a POST route has.
                if mode is schemathesis.GenerationMode.POSITIVE or operation.method.upper() == "POST":
                    failures.append(f"{operation.label} ({mode.value}): no case generated")
            except Exception as error:  # collect every operation's failure
                failures.append(f"{operation.label} ({mode.value}): {str(error)[:1500]}")
    return operations, failures


def health_while(base: str, heavy: Callable[[], int]) -> tuple[int, list[float], float]:
    """Call ``heavy`` (a request that returns its status) in a thread and time ``GET /health`` every
    20 ms while it runs: the heavy request's status, every /health time and the heavy request's own
    time, in seconds."""
    import threading

    outcome: dict[str, int] = {}
    started = time.perf_counter()
    worker = threading.Thread(target=lambda: outcome.update(status=heavy()))
    worker.start()
    times: list[float] = []
    while worker.is_alive():
        start = time.perf_counter()
        status, _ = http("GET", f"{base}/health")
        times.append(time.perf_counter() - start)
        assert status == 200
        time.sleep(0.02)
    worker.join()
    return outcome["status"], times, time.perf_counter() - started


def health_bound(heavy_seconds: float) -> float:
    """The slowest /health that still proves the event loop kept answering while a heavy request ran:
    a tenth of that request's time (a loop blocked by it answers only once it is done), never under
    100 ms, so a busy machine's scheduling hiccup is not mistaken for a blocked loop."""
    return max(0.1, heavy_seconds / 10)


def assert_health_answers_while(base: str, heavy: Callable[[], int], what: str, figure: str) -> None:
    """``heavy`` (the largest request, ``what`` in words) succeeds while /health keeps answering within
    ``health_bound`` of its time; prints ``figure`` (the p99), the polls and the request's seconds."""
    status, health, seconds = health_while(base, heavy)
    assert status == 200, (status, len(health))
    assert len(health) >= 3, (status, len(health))
    assert p99(health) < health_bound(seconds), (
        f"/health p99 {p99(health):.3f} s while {what} ran for {seconds:.1f} s"
    )
    print(json.dumps({figure: round(p99(health), 4), "polls": len(health), "request_s": round(seconds, 2)}))


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def git_env() -> dict[str, str]:
    """Commits made 'by the user' in tests, independent of any global Git identity."""
    env = project_env()
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"] = "Test User"
        env[f"GIT_{role}_EMAIL"] = "test@example.org"
    return env


def git(project: Path, *args: str) -> str:
    return run(["git", *args], cwd=project, env=git_env()).stdout


def commit(project: Path, message: str) -> None:
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-verify", "-m", message)


def mlfolio(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``mlfolio`` console script beside this interpreter, run as that user."""
    binary = Path(sys.executable).parent / "mlfolio"
    return subprocess.run(
        [str(binary), *args], cwd=cwd, env=git_env(), capture_output=True, text=True, timeout=600
    )


# A user's first edits: the updates must keep them.
USER_SEED = "seed: 7  # my seed\n"
USER_CONFIG_LINE = "# tuned by me: keep this\n"
USER_README_SECTION = "\n## My findings\n\nThe model misses small masses; see notebooks/.\n"


def set_config(project: Path, **settings: object) -> None:
    """Set keys of the render's ``configs/config.yaml`` in place, the way a user edits it (its comments
    stay); each key must occur exactly once."""
    path = project / "configs" / "config.yaml"
    text = path.read_text()
    for key, value in settings.items():
        text, found = re.subn(rf"(?m)^( +){key}: .*$", rf"\g<1>{key}: {value}", text)
        assert found == 1, f"{key} occurs {found} times in {path}"
    path.write_text(text)


def edit_like_a_user(project: Path) -> None:
    """A tuned config (user-owned: a comment, a changed seed) and a README section (template-owned,
    at its end), committed with whatever else the caller changed."""
    config = project / "configs" / "config.yaml"
    text = config.read_text()
    assert "seed: 42\n" in text
    config.write_text(text.replace("seed: 42\n", USER_SEED) + USER_CONFIG_LINE)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + USER_README_SECTION)
    commit(project, "docs: my findings and my settings")


def with_config(project: Path, name: str, change: dict[str, dict[str, Any]]) -> Path:
    """A second config file beside the render's own, with ``change`` merged into its sections."""
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    for section, values in change.items():
        config[section].update(values)
    path = project / "configs" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
