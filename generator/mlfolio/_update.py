"""``mlfolio update``: pull template improvements into a project without losing a line.

Copier's update does the three-way merge (old render, new render, the user's tree); this module
adds what it leaves to the user: a clear refusal on a dirty tree, a pretend run that shows the
real outcome (conflicts included) from a throwaway clone, a list of files left with conflicts,
the config keys a release added merged into the user's own ``configs/config.yaml`` (which Copier
never touches), and re-syncing the environment when the dependencies changed.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import copier
from copier.errors import CopierError

from mlfolio import _env, _git
from mlfolio._answers import read_answers, template_version
from mlfolio._config import CONFIG, ConfigMerge, merge_config_file
from mlfolio._console import QUIET, Steps, run_step
from mlfolio._errors import MlfolioError

DEPENDENCY_FILES = ("pyproject.toml", "uv.lock")
_MARKER = re.compile(r"^(<{7}|>{7}) ", re.MULTILINE)

Conflict = Literal["inline", "rej"]


@dataclass
class UpdateResult:
    """What an update changed (or, with ``pretend``, would change)."""

    path: Path
    old_version: str | None
    new_version: str | None
    changed: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    synced: bool = False
    pretend: bool = False
    # Keys added to configs/config.yaml, keys it has that the template lacks, or why neither is known.
    config: ConfigMerge = field(default_factory=ConfigMerge)
    config_note: str | None = None


def parse_data(pairs: list[str]) -> dict[str, str]:
    """``["serving=fastapi"]`` -> ``{"serving": "fastapi"}``; Copier casts values to each question's type."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MlfolioError(f"--data {pair!r}: expected QUESTION=VALUE, e.g. --data serving=fastapi")
        data[key.strip()] = value
    return data


def check_clean(project: Path) -> None:
    """Refuse a project that is not a Git work tree or has uncommitted changes.

    The update is a merge into the working tree; starting clean means ``git diff`` shows exactly
    what the template changed and ``git checkout .`` undoes it.
    """
    if not _git.is_work_tree(project):
        raise MlfolioError(
            f"{project} is not a Git repository; updates need Git history (git init && git commit)"
        )
    dirty = _git.status(project)
    if dirty:
        listing = "\n".join(f"  {code} {name}" for code, name in dirty[:20])
        raise MlfolioError(
            f"{project} has uncommitted changes; commit or stash them, then update again:\n{listing}"
        )


def conflicts(project: Path, changed: list[tuple[str, str]]) -> list[str]:
    """Files the update left unresolved: unmerged in Git, holding conflict markers, or ``.rej`` files."""
    found: list[str] = []
    for code, name in changed:
        path = project / name
        if "U" in code or code == "AA" or name.endswith(".rej"):
            found.append(name)
            continue
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if _MARKER.search(text) and "\n=======" in text:
                found.append(name)
    return sorted(set(found))


def _copier_update(
    project: Path,
    data: Mapping[str, Any],
    vcs_ref: str | None,
    conflict: Conflict,
    defaults: bool,
) -> str | None:
    """Copier's own update, trust-free; returns the template version it updated to."""
    try:
        copier.run_update(
            project,
            data=dict(data),
            vcs_ref=vcs_ref,
            defaults=defaults,
            overwrite=True,
            conflict=conflict,
            quiet=True,
            unsafe=False,
        )
    except (CopierError, ValueError) as error:
        raise MlfolioError(str(error)) from error
    return template_version(read_answers(project))


def template_config(project: Path) -> str | None:
    """The template's ``configs/config.yaml`` at the project's (new) release, rendered with its
    answers in a scratch folder; None when the template has none."""
    recorded = read_answers(project)
    source = str(recorded.get("_src_path", ""))
    if source and not source.startswith(("http", "git@", "gh:", "gl:")) and not Path(source).is_absolute():
        source = str((project / source).resolve())
    answers = {key: value for key, value in recorded.items() if not key.startswith("_")}
    with tempfile.TemporaryDirectory(prefix="mlfolio-config-") as scratch:
        try:
            copier.run_copy(
                source, scratch, data=answers, vcs_ref=recorded.get("_commit"),
                defaults=True, overwrite=True, quiet=True, unsafe=False,
            )  # fmt: skip
        except (CopierError, ValueError) as error:
            raise MlfolioError(f"cannot render the template's config to compare: {error}") from error
        path = Path(scratch) / CONFIG
        return path.read_text(encoding="utf-8") if path.is_file() else None


def merge_config(project: Path, result: UpdateResult) -> None:
    """Bring the release's new config keys into the user's config; a failure is a note, not an error
    (the update itself is done)."""
    try:
        rendered = template_config(project)
        if rendered is not None:
            result.config = merge_config_file(project, rendered)
    except MlfolioError as error:
        result.config_note = f"{CONFIG}: new keys not added ({error})"


def run_update(
    path: Path = Path(),
    *,
    data: Mapping[str, Any] | None = None,
    vcs_ref: str | None = None,
    pretend: bool = False,
    conflict: Conflict = "inline",
    defaults: bool = False,
    sync: bool = True,
    steps: Steps = QUIET,
) -> UpdateResult:
    """Update the project at ``path`` to the template's latest release (or ``vcs_ref``).

    ``data`` re-answers questions (Copier's re-answer path). With ``pretend`` the update runs in a
    throwaway clone of the project, so the report (changes, conflicts) is the real one and the
    project itself is untouched. Raises MlfolioError for a dirty tree or a failed update.
    """
    project = path.expanduser().resolve()
    old = read_answers(project)
    check_clean(project)
    result = UpdateResult(path=project, old_version=old.get("_commit"), new_version=None, pretend=pretend)
    if pretend:
        with tempfile.TemporaryDirectory(prefix="mlfolio-pretend-") as scratch:
            clone = Path(scratch) / project.name
            _git.git("clone", "--quiet", str(project), str(clone), cwd=Path(scratch))
            result.new_version = run_step(
                steps, "Update a throwaway clone (pretend)",
                lambda: _copier_update(clone, data or {}, vcs_ref, conflict, defaults), spinner=defaults,
            )  # fmt: skip
            with steps.step(f"New keys for {CONFIG}"):
                merge_config(clone, result)
            result.changed = _git.status(clone)
            result.conflicts = conflicts(clone, result.changed)
        return result
    result.new_version = run_step(
        steps, f"copier update {old.get('_commit', '?')} -> {vcs_ref or 'latest'}",
        lambda: _copier_update(project, data or {}, vcs_ref, conflict, defaults), spinner=defaults,
    )  # fmt: skip
    with steps.step(f"New keys for {CONFIG}"):
        merge_config(project, result)
    result.changed = _git.status(project)
    result.conflicts = conflicts(project, result.changed)
    touched = {name for _, name in result.changed}
    if sync and touched & set(DEPENDENCY_FILES) and "pyproject.toml" not in result.conflicts:
        with steps.step("uv sync (dependencies changed)"):
            _env.uv_sync(project)
        result.synced = True
    return result
