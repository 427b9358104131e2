"""Stage 3 — fit the model and save it atomically with everything needed to trust it later.

The saved bundle (``models/model/``) holds the model files and ``metadata.json``: version, params,
the data hash from the manifest, library versions, git commit, time, validation metrics and the
feature schema. Serving needs nothing else, so a Docker image only has to carry this folder.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import artifacts, data, export, processed, runtime, tracking
from .bundle import Bundle, decide, open_bundle
from .config import Config
from .features import split_xy, to_frame
from .metrics import (
    choose_threshold,
    classification_metrics,
    error_scale,
    positive_label,
    regression_metrics,
)
from .model import FRAMEWORK, Model, build_model, load_model, save_model
from .protocols import TrainableModel

# Every framework's model honours one contract: mypy fails the render whose Model does not.
MODEL_CONTRACT: type[TrainableModel] = Model

# The "-cpu" names are the CPU-only builds that Linux installs of XGBoost and TensorFlow use.
LIBRARIES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "skops",
    "xgboost",
    "xgboost-cpu",
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
)


@dataclass
class TrainedModel(Bundle):
    """A bundle with its native model loaded."""

    model: Model

    @property
    def native_model(self) -> Model:
        return self.model

    def predict(self, features: Any) -> np.ndarray:
        """Labels (with the trained decision threshold) or values: what every stage reports and serves."""
        return self.predictions(features)[0]

    def predictions(self, features: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """The decisions and (classification) the class probabilities they were made from, in one pass
        over ``features``: a text or image model's inputs cost more to transform than to score."""
        if self.metadata["task"] != "classification":
            return self.model.predict(features), None
        proba = np.asarray(self.model.predict_proba(features))
        return decide(proba, self.model.classes, self.threshold), proba

    def predict_proba(self, features: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(features))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(root: Path) -> str | None:
    """The commit the code was at, or None outside a Git repository."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def score(
    model: Model,
    frame: Any,
    schema: data.Schema,
    config: Config,
    positive: Any,
    threshold: dict[str, Any] | None = None,
    proba: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of ``model`` on one split, deciding labels with ``threshold`` when there is one
    (``proba``: the split's class probabilities, when the caller has them already)."""
    features, target = split_xy(frame, schema)
    if config.is_classification:
        proba = model.predict_proba(features) if proba is None else proba
        predictions = decide(proba, model.classes, threshold)
        return classification_metrics(target.tolist(), predictions.tolist(), proba, model.classes, positive)
    predicted = model.predict(features).tolist()
    return regression_metrics(target.tolist(), predicted, scale=error_scale(schema))


def decision_threshold(
    model: Model, proba_val: np.ndarray | None, y_val: Any, config: Config, positive: Any
) -> dict[str, Any] | None:
    """The cut-off the model decides with (binary classification only), chosen on the validation
    split's probabilities ``proba_val``."""
    setting = config.evaluation.decision_threshold
    if proba_val is None or len(model.classes) != 2 or setting == "argmax":
        return None
    if not isinstance(setting, str):
        return {"positive_class": positive, "value": float(setting), "rule": "set in the config"}
    scores = proba_val[:, model.classes.index(positive)]
    return choose_threshold(
        y_val.tolist(), scores, positive, config.evaluation.metric, config.evaluation.cost_ratio
    )


def is_primary_process() -> bool:
    """False in every process but the first when a launcher (torchrun) started several: ``RANK``."""
    return os.environ.get("RANK", "0") == "0"


def train(config: Config) -> TrainedModel:
    """Fit on the train split, score on validation, publish the bundle atomically as a candidate.

    Each run gets its own folder, ``models/candidates/<version>``: runs at the same time never share
    one. Nothing is served from there; evaluation promotes a candidate that passes its gate.
    """
    schema = data.load_schema(config)
    manifest = processed.load_manifest(config)
    train_frame = processed.load_split(config, "train")
    validation_frame = processed.load_split(config, "validation")
    x_train, y_train = split_xy(train_frame, schema)
    x_val, y_val = split_xy(validation_frame, schema)

    # Tuned values (configs/best_params.yaml, when the tune stage wrote one) override model.params.
    started = time.perf_counter()
    model = build_model(config.with_best_params(), schema).fit(x_train, y_train, x_val, y_val)
    # What one fit costs on how many rows: evaluation sizes its cross-validation by it.
    fit = {"seconds": round(time.perf_counter() - started, 3), "rows": len(x_train)}
    positive = (
        positive_label(model.classes, y_train.tolist(), config.evaluation.positive_class)
        if config.is_classification
        else None
    )
    # One pass over the validation inputs serves the threshold and the validation metrics.
    proba_val = np.asarray(model.predict_proba(x_val)) if config.is_classification else None
    threshold = decision_threshold(model, proba_val, y_val, config, positive)
    created = datetime.now(UTC)
    # Microseconds in the version: candidates are ordered by name, and two trainings can finish
    # within one second (a small XGBoost model does); the random tail only separates ties.
    version = f"{created:%Y%m%d%H%M%S%f}-{manifest['data_hash'][:8]}-{secrets.token_hex(2)}"
    metadata = {
        "model_version": version,
        "created": created.isoformat(timespec="seconds"),
        "task": config.task,
        **model.describe(),
        "target_metric": config.evaluation.metric,
        "positive_class": positive,
        "decision_threshold": threshold,
        "validation_metrics": score(model, validation_frame, schema, config, positive, threshold, proba_val),
        "data_hash": manifest["data_hash"],
        "rows": manifest["rows"],
        "fit": fit,
        "libraries": library_versions(),
        "git_commit": git_commit(config.root),
        "schema": schema.model_dump(mode="json"),
    }
    directory = config.candidates_dir / version
    if not is_primary_process():  # torchrun's other processes trained the same replica: one publishes
        return TrainedModel(metadata, directory, model)
    with artifacts.staged_dir(directory) as staging:
        save_model(model, staging)
        # The portable graph (model.onnx), checked against this model on the test split.
        metadata["onnx"] = export.export(model, schema, staging, config, threshold)
        # The hashes let every later load prove the files are the ones trained (metadata comes last).
        # The ONNX file's own hash is in its record: a bundle whose graph was removed still loads.
        metadata["files"] = {
            name: digest
            for name, digest in artifacts.file_hashes(staging).items()
            if name != runtime.ONNX_FILE
        }
        artifacts.write_json(staging / "metadata.json", metadata)
        tracking.log_training(config, metadata, staging)
    # Which candidate this run made (what DVC's train stage outputs; the folder itself moves on promotion).
    artifacts.write_json(
        config.reports_dir / "candidate.json",
        {"model_version": version, "directory": directory.relative_to(config.root).as_posix()},
    )
    return TrainedModel(metadata, directory, model)


def load_trained(config: Config, directory: Path | None = None) -> TrainedModel:
    """Load a bundle (the served one unless ``directory`` names another) and prove it is usable.

    On top of ``bundle.open_bundle``'s checks (this project's task and target, files as trained),
    the model must be this framework's and must predict the schema's example record: a bundle that
    would answer every request with an error is refused here, with one line naming it.
    """
    bundle = open_bundle(config, directory)
    framework = bundle.metadata.get("framework")
    if framework != FRAMEWORK:
        raise artifacts.ArtifactError(
            f"{bundle.directory} holds a {framework} model, this project uses {FRAMEWORK}"
        )
    try:
        trained = TrainedModel(bundle.metadata, bundle.directory, _loaded(bundle))
        trained.predict(to_frame([trained.schema.example], trained.schema))
    except Exception as error:  # any failure here means the bundle is unusable
        raise artifacts.ArtifactError(f"the model in {bundle.directory} cannot be used: {error}") from None
    return trained


# Models this process has loaded, by version and file hashes (``make all`` evaluates, promotes and
# monitors one model in one process; a text model took a second to parse each time). open_bundle
# verifies the files against those hashes on every load: only the parsing is reused, never a file
# that changed. Two entries: the served model and one candidate.
_LOADED: dict[tuple[str, str], Model] = {}
_LOADED_KEPT = 2


def _loaded(bundle: Bundle) -> Model:
    metadata = bundle.metadata
    key = (str(metadata.get("model_version")), json.dumps(metadata.get("files"), sort_keys=True))
    if key not in _LOADED:
        while len(_LOADED) >= _LOADED_KEPT:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_model(bundle.directory)
    return _LOADED[key]
