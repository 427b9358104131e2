"""The few Git operations mlfolio needs, as plain subprocess calls with readable failures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mlfolio._errors import MlfolioError


def _git_binary() -> str:
    binary = shutil.which("git")
    if binary is None:
        raise MlfolioError("git is not installed; install it or pass --no-git")
    return binary


def git(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd``; a failure raises MlfolioError with git's own message."""
    result = subprocess.run(
        [_git_binary(), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise MlfolioError(
            f"git {' '.join(args)} failed in {cwd}:\n{(result.stderr or result.stdout).strip()}"
        )
    return result


def is_work_tree(path: Path) -> bool:
    """Whether ``path`` lies inside a Git working tree."""
    result = git("rev-parse", "--is-inside-work-tree", cwd=path, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def status(path: Path) -> list[tuple[str, str]]:
    """``git status --porcelain`` as (two-letter code, path) pairs, untracked files included."""
    output = git("status", "--porcelain", "--untracked-files=all", "-z", cwd=path).stdout
    entries: list[tuple[str, str]] = []
    parts = iter(output.split("\0"))
    for part in parts:
        if not part:
            continue
        code, name = part[:2], part[3:]
        if code[0] in "RC":  # renames carry the old name as the next entry
            next(parts, None)
        entries.append((code, name))
    return entries


def init(path: Path) -> None:
    git("init", "--quiet", cwd=path)


def has_commits(path: Path) -> bool:
    """Whether the repository at ``path`` has a first commit (an interrupted ``new`` leaves none)."""
    return git("rev-parse", "--verify", "--quiet", "HEAD", cwd=path, check=False).returncode == 0


def hooks_path(path: Path) -> str | None:
    """``core.hooksPath`` when set at any config level: Git then ignores ``.git/hooks``."""
    return git("config", "--get", "core.hooksPath", cwd=path, check=False).stdout.strip() or None


def has_identity(path: Path) -> bool:
    """Whether Git knows who commits here (user.name and user.email from any config level)."""
    return all(
        git("config", "--get", key, cwd=path, check=False).stdout.strip()
        for key in ("user.name", "user.email")
    )


def commit_all(path: Path, message: str, fallback_name: str, fallback_email: str) -> str:
    """Stage everything and commit; return the new commit's hash.

    Hooks are skipped (``--no-verify``): this is the template's own output, and hooks that exist
    already (a global template dir, hooks installed later by us) must not block the first commit.
    When Git has no identity configured, the author answers are used for this one commit only.
    """
    env = dict(os.environ)
    if not has_identity(path):
        for role in ("AUTHOR", "COMMITTER"):
            env[f"GIT_{role}_NAME"] = fallback_name
            env[f"GIT_{role}_EMAIL"] = fallback_email
    git("add", "--all", cwd=path)
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=path, env=env)
    return git("rev-parse", "--short", "HEAD", cwd=path).stdout.strip()
