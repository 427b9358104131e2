"""``mlfolio new``: render the template, then make it a working repository.

Rendering happens in a staging folder beside DEST and is moved into place only when Copier
succeeded, so a bad answer or an interrupted render never leaves a half-written DEST behind.
An interrupt (Ctrl-C) during set-up (git init, uv sync, first commit, hooks) removes DEST when this
run created it; in a folder that existed before, the rendered files stay and a re-run with
``--force`` resumes: a repository without a first commit is finished, not skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import copier
import yaml
from copier.errors import CopierError

from mlfolio import _env, _git
from mlfolio._answers import read_answers, template_version
from mlfolio._console import QUIET, Steps, run_step
from mlfolio._errors import Interrupted, MlfolioError
from mlfolio._questions import load_questions
from mlfolio._template import is_remote, resolve_template


@dataclass
class NewResult:
    """What ``run_new`` produced, for the closing summary."""

    path: Path
    answers: dict[str, Any]
    template_version: str | None
    commit: str | None = None
    synced: bool = False
    hooks: bool = False
    replaced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_data_file(path: Path | None) -> dict[str, Any]:
    """Answers from a YAML file (a mapping of question name to answer)."""
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MlfolioError(f"--data-file {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise MlfolioError(f"--data-file {path} is not valid YAML: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise MlfolioError(f"--data-file {path} must be a mapping of question: answer")
    return {str(key): value for key, value in loaded.items()}


def check_destination(dest: Path, force: bool) -> None:
    """Refuse a DEST that is a file, lies under a file, or is a non-empty folder unless ``force``."""
    if dest.exists() and not dest.is_dir():
        raise MlfolioError(f"{dest} exists and is not a folder")
    parent = _nearest_existing(dest.parent)
    if not parent.is_dir():
        raise MlfolioError(f"cannot create {dest}: {parent} is a file, not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise MlfolioError(f"{dest} is not empty; choose another folder or pass --force to render into it")


def _check_known(answers: Mapping[str, Any], source: str) -> None:
    """Reject answers to questions the (local) template does not ask: usually a typo."""
    if is_remote(source):
        return
    known = load_questions(Path(source))
    unknown = sorted(set(answers) - set(known))
    if unknown:
        raise MlfolioError(f"unknown question(s): {', '.join(unknown)}; the template asks {', '.join(known)}")


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A scratch folder on DEST's file system (so the final move is a rename), always removed."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.mlfolio-", dir=_nearest_existing(dest.parent)))
    try:
        yield scratch / dest.name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _place(rendered: Path, dest: Path) -> list[str]:
    """Move the finished render to DEST; into an existing folder, merge and keep the user's files.

    Returns the user's files that the template replaced (same path in both).
    """
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        rendered.rename(dest)
        return []
    replaced = sorted(
        str(file.relative_to(rendered))
        for file in rendered.rglob("*")
        if file.is_file() and (dest / file.relative_to(rendered)).exists()
    )
    shutil.copytree(rendered, dest, dirs_exist_ok=True, symlinks=True)
    return replaced


def render(
    dest: Path,
    answers: Mapping[str, Any],
    *,
    template: str | None = None,
    vcs_ref: str | None = None,
    defaults: bool = False,
    force: bool = False,
) -> tuple[dict[str, Any], str | None, list[str]]:
    """Render the template into DEST; return (answers, template version, replaced user files)."""
    source, default_ref = resolve_template(template)
    _check_known(answers, source)
    check_destination(dest, force)
    try:
        return _render_staged(dest, source, answers, vcs_ref or default_ref, defaults)
    except OSError as error:  # a read-only folder, a full disk: one line naming the place
        where = error.filename or dest
        raise MlfolioError(f"cannot write {dest}: {error.strerror} ({where})") from None


def _render_staged(
    dest: Path, source: str, answers: Mapping[str, Any], vcs_ref: str | None, defaults: bool
) -> tuple[dict[str, Any], str | None, list[str]]:
    """Copier into a staging folder beside DEST, then the move into place."""
    with _staging(dest) as staged:
        try:
            copier.run_copy(
                source,
                staged,
                data=dict(answers),
                vcs_ref=vcs_ref,
                defaults=defaults,
                quiet=True,
                unsafe=False,
                overwrite=True,
            )
        except (CopierError, ValueError) as error:
            raise MlfolioError(str(error)) from error
        replaced = _place(staged, dest)
    recorded = read_answers(dest)
    return recorded, template_version(recorded), replaced


def run_new(
    dest: Path,
    data: Mapping[str, Any] | None = None,
    *,
    data_file: Path | None = None,
    defaults: bool = False,
    template: str | None = None,
    vcs_ref: str | None = None,
    git: bool = True,
    install: bool = True,
    force: bool = False,
    steps: Steps = QUIET,
) -> NewResult:
    """Render a new project into DEST, then (unless told not to) git init, uv sync, commit, hooks.

    Answers come from ``data_file`` overridden by ``data``; the rest are asked interactively, or
    take their defaults with ``defaults=True``. Raises MlfolioError with a message for the user.
    """
    # Absolute and without "..", for the messages and the answers file; symlinks stay as given.
    dest = Path(os.path.abspath(dest.expanduser()))
    created = not dest.exists()
    answers = {**load_data_file(data_file), **(data or {})}
    title = f"Render the template into {dest}"
    options: dict[str, Any] = {"template": template, "vcs_ref": vcs_ref, "defaults": defaults, "force": force}
    # Without --defaults Copier asks the remaining questions on the terminal: no spinner over them.
    recorded, version, replaced = run_step(
        steps, title, lambda: render(dest, answers, **options), spinner=defaults
    )
    result = NewResult(path=dest, answers=recorded, template_version=version, replaced=replaced)
    if replaced:
        steps.note(f"replaced {len(replaced)} existing file(s): {', '.join(replaced[:5])}")
    make_repo = git and not ((dest / ".git").exists() and _git.has_commits(dest))
    if git and not make_repo:
        result.notes.append(f"{dest} already is a Git repository: no init, no commit")
        steps.note(result.notes[-1])
    elif make_repo and (dest / ".git").exists():
        result.notes.append("resumed: the repository had no commit yet (an interrupted run?)")
        steps.note(result.notes[-1])
    try:
        _set_up(dest, result, recorded, version, make_repo=make_repo, install=install, steps=steps)
    except KeyboardInterrupt:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
            raise Interrupted(f"interrupted: removed {dest}, which this run had created") from None
        raise Interrupted(
            f"interrupted: the rendered files stay in {dest}; run the same command with --force to resume"
        ) from None
    except MlfolioError as error:
        raise MlfolioError(
            f"{error}\nThe project is rendered in {dest}; finish the step above by hand."
        ) from error
    return result


def _set_up(
    dest: Path,
    result: NewResult,
    recorded: Mapping[str, Any],
    version: str | None,
    *,
    make_repo: bool,
    install: bool,
    steps: Steps,
) -> None:
    """git init, uv sync, the first commit and the hooks, as asked."""
    if make_repo:
        with steps.step("git init"):
            _git.init(dest)
    if install:
        with steps.step("uv sync (create .venv and uv.lock)"):
            _env.uv_sync(dest)
        result.synced = True
    if make_repo:
        with steps.step("Initial commit"):
            result.commit = _git.commit_all(
                dest,
                f"chore: start from the mlfolio template {version or ''}".strip(),
                fallback_name=str(recorded.get("author_name", "mlfolio")),
                fallback_email=str(recorded.get("author_email", "mlfolio@localhost")),
            )
    if make_repo and install and (dest / ".pre-commit-config.yaml").is_file():
        custom_hooks = _git.hooks_path(dest)
        if custom_hooks:  # pre-commit refuses to install there, and Git would not run .git/hooks
            result.notes.append(
                f"hooks not installed: Git's core.hooksPath is set ({custom_hooks}); "
                "unset it, then run `uv run pre-commit install`"
            )
            steps.note(result.notes[-1])
        else:
            with steps.step("pre-commit install (pre-commit, commit-msg)"):
                result.hooks = _env.install_hooks(dest)
