"""The modality x framework matrix and what each choice may change in a render: one source for every
generator test and benchmark.

The values come from ``copier.yml`` itself. A choice the template refuses for some answers (XGBoost
for images) carries its own validator there; ``offered`` renders it as Copier does, so a test
parametrised from here covers exactly the pairs a user can render, and a new modality or framework
reaches every test that iterates over them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from tests.helpers import ROOT, answers


@cache
def _questions() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    return loaded


def _choices(question: str) -> dict[str, str]:
    """Each value of ``question`` with its validator ("" when the value is always offered)."""
    found = {}
    for choice in _questions()[question]["choices"].values():
        if isinstance(choice, dict):
            found[str(choice["value"])] = str(choice.get("validator", ""))
        else:
            found[str(choice)] = ""
    return found


def offered(question: str, value: str, **answered: str) -> bool:
    """Whether the template offers ``value`` for ``question`` given the other answers."""
    validator = _choices(question)[value]
    return not jinja2.Template(validator).render(**answered).strip()


def default(question: str, **answered: str) -> str:
    """The template's default answer to ``question`` given the others, rendered as Copier does (the
    default framework depends on the modality)."""
    return jinja2.Template(str(_questions()[question]["default"])).render(**answered)


MODALITIES = tuple(_choices("modality"))
FRAMEWORKS = tuple(_choices("framework"))


def frameworks_for(modality: str) -> tuple[str, ...]:
    """The frameworks a ``modality`` project can be rendered with, in copier.yml's order."""
    return tuple(framework for framework in FRAMEWORKS if offered("framework", framework, modality=modality))


PAIRS = tuple((modality, framework) for modality in MODALITIES for framework in frameworks_for(modality))

# The modules that must be the same text whatever the framework.
FRAMEWORK_SHARED_MODULES = (
    "data",
    "datacard",
    "features",
    "train",
    "evaluate",
    "plots",
    "examples",
    "fairness",
    *(f"serve/{name}" for name in ("__init__", "app", "bodies", "guard", "logs", "predictor")),
    "monitor",
    "drift",
    "metrics",
    "config",
    "artifacts",
    "export",
    "runtime",
    "bundle",
    "protocols",
    "learning",
    "processed",
)
# What the framework may change: its model module, its one training loop and the model half every
# network shares (a network framework's own modules, absent for the others), the dependency lines and
# what documents them.
FRAMEWORK_FILES = {
    "model.py",
    "loop.py",
    "network.py",
    "pyproject.toml",
    "configs/config.yaml",
    "README.md",
    ".copier-answers.yml",
}

# Modules whose text must not depend on the modality: those shared across frameworks, less the data
# and features modules (their job differs), and the reports, promotion and sources besides.
MODALITY_SHARED_MODULES = (
    *(name for name in FRAMEWORK_SHARED_MODULES if name not in {"data", "datacard", "features"}),
    "promote",
    "report",
    "site",
    "diagnostics",
    "sources",
    "tracking",
)
# Rendered only for the modalities whose files hold dates (tabular date columns, a time column), and
# the same module in both.
DATE_FILES = {"dates.py"}
# What the modality may change: the modules whose job differs, the deep models, and their tests.
MODALITY_FILES = {
    "data.py",
    "datacard.py",
    "imaging.py",
    "texts.py",
    "schema.py",
    "features.py",
    "contract.py",
    "model.py",
    "pyproject.toml",
    "Dockerfile",  # the venv the API's image takes by default: the slim one where models export to ONNX
    "configs/config.yaml",
    "README.md",
    ".copier-answers.yml",
    "tests/conftest.py",
    "tests/test_data.py",
    "tests/test_serve.py",
    "tests/test_monitor.py",
    "tests/test_evaluate.py",
    "tests/test_train.py",
    "tests/test_export.py",
}
# The same identity in every render: the demo's name and story otherwise follow the modality.
SAME_STORY = {
    "project_name": "Portfolio Project",
    "description": "A model from problem to service.",
    "problem_statement": "A team needs decisions made for it, the unclear ones sent to a person.",
}


def project_files(project: Path) -> dict[str, str]:
    """Every file of a render by its path, the package's own files by their name alone, so two
    renders with different slugs compare file by file."""
    slug = answers(project)["project_slug"]
    files = {}
    for path in sorted(project.rglob("*")):
        if path.is_file() and ".git" not in path.parts:
            relative = path.relative_to(project).as_posix()
            files[relative.replace(f"src/{slug}/", "")] = path.read_text(encoding="utf-8", errors="replace")
    return files
