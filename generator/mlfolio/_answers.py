"""The answers file Copier writes into every project: the record of what it was rendered from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlfolio._errors import MlfolioError

ANSWERS_FILE = ".copier-answers.yml"


def read_answers(project: Path) -> dict[str, Any]:
    """The recorded answers (with Copier's ``_commit`` and ``_src_path``) of a rendered project."""
    path = project / ANSWERS_FILE
    if not path.is_file():
        raise MlfolioError(f"{project} has no {ANSWERS_FILE}: it was not generated from a Copier template")
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def template_version(answers: dict[str, Any]) -> str | None:
    """The template release (Git tag or describe string) the answers were recorded at, if any."""
    version = answers.get("_commit")
    return str(version) if version else None
