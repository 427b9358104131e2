"""The template's questions, read from ``copier.yml`` (names, choices, whether they are asked).

The CLI declares one flag per asked question; a test compares those flags with this list so a new
question in ``copier.yml`` cannot be forgotten by the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlfolio._errors import MlfolioError


@dataclass(frozen=True)
class Question:
    """One question of ``copier.yml``; ``asked`` is False for derived values (``when: false``)."""

    name: str
    help: str
    choices: tuple[str, ...]
    asked: bool

    @property
    def flag(self) -> str:
        """The command-line flag that answers it: ``task_type`` -> ``--task-type``."""
        return flag_for(self.name)


def flag_for(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choices(raw: Any) -> tuple[str, ...]:
    """Choice values; a templated (string) choice list depends on other answers, so it is left open.

    A choice may be a mapping with its own ``value`` and ``validator`` (Copier disables it in the
    menu when the validator says why, and refuses it as an answer)."""
    if isinstance(raw, dict):
        return tuple(str(value["value"] if isinstance(value, dict) else value) for value in raw.values())
    if isinstance(raw, list):
        return tuple(str(value) for value in raw)
    return ()


def load_questions(template_dir: Path) -> dict[str, Question]:
    """All questions of the template at ``template_dir``, in the order ``copier.yml`` asks them."""
    for name in ("copier.yml", "copier.yaml"):
        path = template_dir / name
        if path.is_file():
            break
    else:
        raise MlfolioError(f"no copier.yml in {template_dir}")
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    questions: dict[str, Question] = {}
    for key, spec in config.items():
        if key.startswith("_"):
            continue
        details = spec if isinstance(spec, dict) else {"default": spec}
        questions[key] = Question(
            name=key,
            help=str(details.get("help", key)),
            choices=_choices(details.get("choices")),
            asked=details.get("when", True) is not False,
        )
    return questions


def asked_questions(template_dir: Path) -> list[Question]:
    """The questions a user can answer (everything but the derived ``when: false`` values)."""
    return [question for question in load_questions(template_dir).values() if question.asked]
