"""``mlfolio`` the command: flags for every question, refusals that write nothing, ``new`` end to end.

Fast tests render without installing (``--no-install``); the slow one is the full ``mlfolio new
--defaults`` a user runs first: one commit, a synced environment, a clean tree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from mlfolio import MlfolioError, __version__, run_new
from mlfolio._questions import asked_questions, load_questions
from mlfolio.cli import QUESTION_PARAMS, app

from tests.helpers import ROOT, answers, project_env, run


def mlfolio(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (exit code and output, never raising)."""
    binary = Path(sys.executable).parent / "mlfolio"
    return subprocess.run(
        [str(binary), *args], cwd=cwd, env=env or project_env(), capture_output=True, text=True, timeout=600
    )


def git_log(project: Path) -> list[str]:
    return run(["git", "log", "--format=%an <%ae> %s"], cwd=project).stdout.splitlines()


def git_status(project: Path) -> str:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project).stdout


# ---------------------------------------------------------------- the command's surface


def test_every_asked_question_has_a_flag() -> None:
    """A question added to copier.yml without a flag on ``mlfolio new`` fails here."""
    command = typer.main.get_command(app).commands["new"]  # type: ignore[attr-defined]
    flags = {opt for param in command.params for opt in param.opts}
    asked = asked_questions(ROOT)
    assert asked, "copier.yml has no questions?"
    missing = [question.flag for question in asked if question.flag not in flags]
    assert missing == [], f"mlfolio new lacks flags for {missing}"
    derived = {name for name, question in load_questions(ROOT).items() if not question.asked}
    assert {question.name for question in asked} >= QUESTION_PARAMS, "a flag answers no (asked) question"
    assert not QUESTION_PARAMS & derived


def test_version_and_help_on_every_command(tmp_path: Path) -> None:
    result = mlfolio("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert __version__ in result.stdout
    for command in ([], ["new"], ["update"]):
        result = mlfolio(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout
    new_help = mlfolio("new", "--help", cwd=tmp_path, env={**project_env(), "COLUMNS": "200"}).stdout
    for flag in (
        "--task-type",
        "--framework",
        "--defaults",
        "--data-file",
        "--template",
        "--vcs-ref",
        "--force",
    ):
        assert flag in new_help


# ---------------------------------------------------------------- bad input writes nothing


@pytest.mark.parametrize(
    ("flag", "value", "question"),
    [("--project-slug", "9 bad slug", "project_slug"), ("--author-email", "not-an-email", "author_email")],
)
def test_invalid_answer_exits_non_zero_and_creates_nothing(
    tmp_path: Path, flag: str, value: str, question: str
) -> None:
    dest = tmp_path / "nested" / "project"
    result = mlfolio("new", str(dest), "--defaults", "--no-install", flag, value, cwd=tmp_path)
    assert result.returncode != 0
    assert question in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "no folder, no staging leftovers"


def test_no_menu_question_leans_on_a_question_validator() -> None:
    """Copier runs no question-level validator on a menu (a select prompt), only on typed input:
    what other answers rule out must be a choice's own validator, which the menu and data obey."""
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    leaning = [
        name
        for name, spec in config.items()
        if isinstance(spec, dict) and spec.get("choices") and "validator" in spec
    ]
    assert leaning == []


def answer_menu_on_a_terminal(command: list[str], keys: bytes, cwd: Path) -> str:
    """Run ``command`` on a pseudo-terminal, press ``keys`` at the first menu, then Enter; its output."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, as on a user's terminal
        os.chdir(cwd)
        os.execvpe(command[0], command, {**project_env(), "TERM": "xterm"})  # noqa: S606 (no shell: a list)
    output = b""

    def read_until(done: bytes, seconds: float) -> None:
        nonlocal output
        end = time.monotonic() + seconds
        while time.monotonic() < end and done not in output:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    output += os.read(fd, 65536)
                except OSError:  # the command ended
                    return

    read_until(b"arrow keys", 120)
    os.write(fd, keys)
    time.sleep(0.5)
    os.write(fd, b"\r")
    read_until(b"\x00never", 120)  # read until the command closes the terminal
    os.waitpid(pid, 0)
    return output.decode(errors="replace")


def test_the_interactive_menu_offers_no_answer_the_others_rule_out(tmp_path: Path) -> None:
    """``mlfolio new`` asked on a terminal: for a text project, Ray is shown disabled with the reason
    and cannot be picked (the arrow key passes over it), so the project renders with compute local."""
    # Every other question answered (a text project's defaults): Copier asks only compute.
    recorded = run_new(tmp_path / "defaults", {"modality": "text"}, defaults=True, git=False, install=False)
    others = {k: v for k, v in recorded.answers.items() if not k.startswith("_") and k != "compute"}
    data_file = tmp_path / "answers.yml"
    data_file.write_text(yaml.safe_dump(others))
    binary = str(Path(sys.executable).parent / "mlfolio")
    dest = tmp_path / "p"
    output = answer_menu_on_a_terminal(
        [binary, "new", str(dest), "--no-install", "--no-git", "--data-file", str(data_file)],
        b"\x1b[B",
        tmp_path,
    )
    assert "compute ray is built for tabular projects so far" in output, output[-3000:]
    assert answers(dest)["compute"] == "local", output[-3000:]
    assert not (dest / "src" / others["project_slug"] / "distributed.py").exists()


def test_unknown_question_is_refused_before_rendering(tmp_path: Path) -> None:
    with pytest.raises(MlfolioError, match=r"unknown question.*servng"):
        run_new(tmp_path / "p", {"servng": "none"}, defaults=True, git=False, install=False)
    assert not (tmp_path / "p").exists()


def test_non_empty_destination_is_refused_without_force(tmp_path: Path) -> None:
    dest = tmp_path / "full"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep\n")
    result = mlfolio("new", str(dest), "--defaults", "--no-install", cwd=tmp_path)
    assert result.returncode != 0
    assert "not empty" in result.stderr
    assert "--force" in result.stderr
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]
    assert (dest / "mine.txt").read_text() == "keep\n"


def test_force_renders_beside_the_users_files(tmp_path: Path) -> None:
    dest = tmp_path / "full"
    (dest / "notes").mkdir(parents=True)
    (dest / "notes" / "ideas.md").write_text("mine\n")
    result = run_new(dest, defaults=True, force=True, git=False, install=False)
    assert (dest / "notes" / "ideas.md").read_text() == "mine\n"
    assert (dest / "pyproject.toml").is_file()
    assert result.replaced == []
    assert [p.name for p in tmp_path.iterdir()] == ["full"], "staging folder removed"


def test_flags_and_data_file_answer_questions(tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text(yaml.safe_dump({"task_type": "regression", "project_name": "From File"}))
    dest = tmp_path / "p"
    result = mlfolio(
        "new", str(dest), "--defaults", "--no-install", "--no-git", "--data-file", str(data_file),
        "--project-name", "Progress Forecast", "--serving", "none", "--target-threshold", "60",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    recorded = answers(dest)
    assert recorded["task_type"] == "regression"  # from the file
    assert recorded["project_name"] == "Progress Forecast"  # the flag wins over the file
    assert recorded["project_slug"] == "progress_forecast"
    assert recorded["target_threshold"] == 60.0
    assert not (dest / "src" / "progress_forecast" / "serve").exists()
    assert not (dest / ".git").exists()


def test_first_commit_works_without_git_identity_and_despite_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No user.name/email anywhere, and a global hook that rejects every commit: still one commit."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "commit-msg"):
        (hooks / hook).write_text("#!/bin/sh\necho rejected by a global hook >&2\nexit 1\n")
        (hooks / hook).chmod(0o755)
    global_config = tmp_path / "gitconfig"
    global_config.write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for variable in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ):
        monkeypatch.delenv(variable, raising=False)
    dest = tmp_path / "p"
    result = run_new(
        dest, {"author_name": "Ada Lovelace", "author_email": "ada@example.org"}, defaults=True, install=False
    )
    assert result.commit
    log = git_log(dest)
    assert len(log) == 1
    assert log[0].startswith("Ada Lovelace <ada@example.org> chore: ")
    assert git_status(dest) == ""


# ---------------------------------------------------------------- slow: what a user runs first


@pytest.mark.slow
def test_new_with_defaults_gives_one_commit_a_synced_env_and_a_clean_tree(tmp_path: Path) -> None:
    dest = tmp_path / "q"
    result = mlfolio("new", str(dest), "--defaults", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(git_log(dest)) == 1
    assert (dest / ".venv").is_dir()
    assert (dest / "uv.lock").is_file()
    assert git_status(dest) == "", "uv.lock and everything else committed; .venv ignored"
    assert "make all" in result.stdout, "closing summary names the next commands"
    if (dest / ".pre-commit-config.yaml").is_file():
        for hook in ("pre-commit", "commit-msg"):
            assert (dest / ".git" / "hooks" / hook).is_file(), f"{hook} hook not installed"
    run(["uv", "run", "--frozen", "python", "-c", f"import {answers(dest)['project_slug']}"], cwd=dest)


def test_interrupting_setup_removes_the_project_this_run_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlfolio import _env
    from mlfolio._errors import Interrupted
    from mlfolio._new import run_new

    def interrupted(dest: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_env, "uv_sync", interrupted)
    dest = tmp_path / "fresh"
    with pytest.raises(Interrupted, match="removed") as error:
        run_new(dest, {}, defaults=True, vcs_ref="HEAD")
    assert error.value.exit_code == 130
    assert not dest.exists()


def test_a_rerun_with_force_resumes_an_interrupted_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlfolio import _env, _git
    from mlfolio._errors import Interrupted
    from mlfolio._new import run_new

    dest = tmp_path / "existing"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")

    def interrupted(dest: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_env, "uv_sync", interrupted)
    with pytest.raises(Interrupted, match="--force to resume"):
        run_new(dest, {}, defaults=True, vcs_ref="HEAD", force=True)
    assert (dest / ".git").is_dir()
    assert not _git.has_commits(dest)  # the half-set-up state the resume must finish
    monkeypatch.setattr(_env, "uv_sync", lambda dest: None)
    monkeypatch.setattr(_env, "install_hooks", lambda dest: True)
    result = run_new(dest, {}, defaults=True, vcs_ref="HEAD", force=True)
    assert result.commit
    assert _git.has_commits(dest)
    assert (dest / "notes.txt").read_text() == "mine"
    assert any("resumed" in note for note in result.notes)


def test_a_destination_under_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = mlfolio("new", str(blocker / "project"), "--defaults", "--no-install", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{blocker} is a file, not a folder" in result.stderr


def test_a_read_only_place_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from mlfolio import _new

    def read_only(*args: object, dir: str, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", dir)

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(MlfolioError, match=r"cannot write .*: Permission denied \("):
        _new.render(tmp_path / "p", {}, defaults=True, vcs_ref="HEAD")
