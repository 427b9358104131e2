"""Team scale by configuration alone, with real servers: a PostgreSQL database that several `tune`
processes share as one Optuna study.

PostgreSQL comes from Debian's package (``.ci/run`` installs it): ``initdb`` in a temporary folder,
listening on 127.0.0.1 only, run as an unprivileged user when the tests run as root (PostgreSQL
refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import answers, free_port, project_env, render, run

SHARED_STUDY = """
import json, optuna
from {slug} import tune
from {slug}.config import load_config
summaries = optuna.get_all_study_summaries(tune.storage_url(load_config()))
study = optuna.load_study(study_name=summaries[0].study_name, storage=tune.storage_url(load_config()))
trials = [
    {{"number": t.number, "state": t.state.name, "params": t.params}}
    for t in study.trials
]
print(json.dumps({{"studies": len(summaries), "trials": trials}}))
"""


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is missing: .ci/run installs Debian's postgresql package"
    return Path(found[-1]).parent


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields its SQLAlchemy URL for psycopg 3."""
    binaries = postgres_bin()
    home = Path(tempfile.mkdtemp(prefix="mlfolio-pg-"))
    home.chmod(0o755)  # PostgreSQL's user must reach the folder
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres" if _has_user("postgres") else "nobody")
        os.chown(home, account.pw_uid, account.pw_gid)
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run PostgreSQL as a user"
        as_user = [setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
    port = free_port()
    data = home / "data"
    subprocess.run(
        [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "optuna", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        cwd=home,
    )
    server = f"-c listen_addresses=127.0.0.1 -p {port} -k {home}"
    start = [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-o", server, "-l", str(home / "log")]
    subprocess.run([*start, "-w", "start"], check=True, capture_output=True, cwd=home)
    try:
        yield f"postgresql+psycopg://optuna@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*start, "-m", "fast", "-w", "stop"], check=False, capture_output=True, cwd=home)
        shutil.rmtree(home, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.slow
def test_two_tune_processes_share_one_study_in_postgresql(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"tuning": "optuna"})
    slug = answers(project)["project_slug"]
    env = project_env()
    run(["uv", "sync", "--quiet"], cwd=project, env=env)
    run(["uv", "run", "--frozen", "python", "-m", slug, "data"], cwd=project, env=env)
    with postgres() as url:
        shared = {**env, "OPTUNA_STORAGE": url}
        tune = ["uv", "run", "--frozen", "python", "-m", slug, "tune", "--n-trials", "3"]
        processes = [
            subprocess.Popen(tune, cwd=project, env=shared, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=600)[0].decode() for process in processes]
        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output
        query = ["uv", "run", "--frozen", "python", "-c", SHARED_STUDY.format(slug=slug)]
        answer = run(query, project, shared)
    study = json.loads(answer.stdout.strip().splitlines()[-1])
    assert study["studies"] == 1, "both processes worked on the same study"
    numbers = [trial["number"] for trial in study["trials"]]
    assert sorted(numbers) == list(range(6)), numbers  # 3 + 3 trials, no number twice
    assert all(trial["state"] in {"COMPLETE", "PRUNED"} for trial in study["trials"])
    drawn = [json.dumps(trial["params"], sort_keys=True) for trial in study["trials"]]
    assert len(set(drawn)) == len(drawn), "each process draws its own parameters"
    assert not (project / "optuna.db").exists(), "nothing went to the local SQLite store"
    report = json.loads((project / "reports" / "tuning.json").read_text())
    assert report["trials"] == 6, report
    assert "127.0.0.1" in report["storage"]
    assert "optuna.db" not in report["storage"]
