"""The rendered project's own environment: ``uv sync`` and the pre-commit hooks.

Commands run with the caller's environment (their uv cache, index settings such as ``UV_INDEX``,
proxies), minus the variables that would point uv at *mlfolio's* virtual environment instead of
the project's own ``.venv``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mlfolio._errors import MlfolioError

# Set when mlfolio itself runs inside an activated or `uv run` environment; they are not the project's.
_FOREIGN = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME")


def project_env() -> dict[str, str]:
    """The caller's environment, without mlfolio's own virtual environment."""
    return {key: value for key, value in os.environ.items() if key not in _FOREIGN}


def _uv() -> str:
    binary = shutil.which("uv")
    if binary is None:
        raise MlfolioError(
            "uv is not installed (https://docs.astral.sh/uv/); install it or pass --no-install"
        )
    return binary


def run_in(project: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in ``project``; a failure raises MlfolioError with the end of its output."""
    result = subprocess.run(
        list(command), cwd=project, env=project_env(), capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-3000:]
        raise MlfolioError(f"`{' '.join(command)}` failed in {project} (exit {result.returncode}):\n{tail}")
    return result


def uv_sync(project: Path) -> None:
    """Create or update the project's ``.venv`` and ``uv.lock`` from its ``pyproject.toml``."""
    run_in(project, _uv(), "sync")


def install_hooks(project: Path) -> bool:
    """Install the project's pre-commit and commit-msg hooks, when it has a config and the tool.

    Returns whether hooks were installed. Runs the project's own locked pre-commit
    (``uv run --no-sync``), so the version is the one in ``uv.lock``.
    """
    if not (project / ".pre-commit-config.yaml").is_file() or shutil.which("uv") is None:
        return False
    if run_in(project, _uv(), "run", "--no-sync", "pre-commit", "--version", check=False).returncode != 0:
        return False
    run_in(
        project,
        _uv(),
        "run",
        "--no-sync",
        "pre-commit",
        "install",
        "--hook-type",
        "pre-commit",
        "--hook-type",
        "commit-msg",
    )
    return True
