"""A trained bundle as the service reads it: metadata, schema, and proof its files are the ones trained.

Everything here is light (NumPy and pydantic; no pandas, scikit-learn or deep-learning framework):
a service that answers from the ONNX graph opens the bundle with ``open_bundle`` and never loads
the native model, so it starts fast and its image can leave the frameworks out.
``train.load_trained`` builds on the same checks and loads the native model as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import artifacts
from .config import Config
from .schema import Schema

METADATA_FILE = "metadata.json"
# The gate result a bundle was promoted with, written beside it by ``promote``.
EVALUATION_FILE = "evaluation.json"


@dataclass
class Bundle:
    """A model folder whose files were checked against the hashes recorded at training."""

    metadata: dict[str, Any]
    directory: Path

    @property
    def schema(self) -> Schema:
        return Schema.model_validate(self.metadata["schema"])

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def threshold(self) -> dict[str, Any] | None:
        """The cut-off chosen at training (binary classification), or None: the most probable class."""
        return self.metadata.get("decision_threshold")

    @property
    def native_model(self) -> Any:
        """The framework's model when it is loaded (``train.TrainedModel``); None for a bundle opened
        for its ONNX graph, which never imports the framework."""
        return None


def open_bundle(config: Config, directory: Path | None = None) -> Bundle:
    """The served bundle (or the one in ``directory``), refused with one line when it cannot be trusted.

    It must be this project's (task and target) and every file must match the hash recorded at
    training. Opening the served folder first finishes or rolls back a promotion a crash interrupted.
    """
    if directory is None:
        directory = config.model_dir
        with artifacts.store_lock(directory):
            artifacts.recover(directory)
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(_no_model(config, directory))
    metadata = artifacts.read_json(meta_path)
    _check(config, directory, metadata)
    return Bundle(metadata, directory)


def _no_model(config: Config, directory: Path) -> str:
    """Why there is no model to load, and what to do about it."""
    if directory != config.model_dir:
        return f"no trained model in {directory}; run the training stage first (make train)"
    waiting = sorted(config.candidates_dir.glob("*/metadata.json")) if config.candidates_dir.is_dir() else []
    if not waiting:
        return f"no model is served from {directory}; run `make all` (a model passing its gate is served)"
    return (
        f"no model is served from {directory}: {len(waiting)} candidate(s) in {config.candidates_dir} "
        "missed their gate; improve the model, or serve the newest anyway with `make promote` (--force)"
    )


def _check(config: Config, directory: Path, metadata: dict[str, Any]) -> None:
    schema = metadata.get("schema") or {}
    if (metadata.get("task"), schema.get("target")) != (config.task, config.data.target):
        raise artifacts.ArtifactError(
            f"{directory} predicts {schema.get('target')!r} ({metadata.get('task')}); this project "
            f"predicts {config.data.target!r} ({config.task}): it is another project's model"
        )
    for name, expected in (metadata.get("files") or {}).items():
        path = directory / name
        if not path.is_file() or artifacts.sha256_file(path) != expected:
            raise artifacts.ArtifactError(
                f"{path} is missing or differs from the file trained (sha256 in metadata.json); retrain"
            )


def gate_status(directory: Path) -> dict[str, Any] | None:
    """The gate result a bundle was promoted with (None for a bundle from before gates were kept)."""
    path = directory / EVALUATION_FILE
    return dict(artifacts.read_json(path)) if path.is_file() else None


def decide(proba: np.ndarray, classes: Sequence[Any], threshold: dict[str, Any] | None) -> np.ndarray:
    """Labels from class probabilities: the tuned cut-off for the positive class when there is one
    (binary classification), else the most probable class. Training, evaluation and the API all
    decide here, so a served label is the one evaluated."""
    labels = np.empty(len(classes), dtype=object)
    labels[:] = list(classes)
    if threshold is None or len(classes) != 2:
        return labels[np.argmax(proba, axis=1)]
    column = list(classes).index(threshold["positive_class"])
    return np.where(proba[:, column] >= threshold["value"], labels[column], labels[1 - column])
