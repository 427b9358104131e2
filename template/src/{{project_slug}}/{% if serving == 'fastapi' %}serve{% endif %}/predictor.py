"""The model call: validated records in, labels (and class probabilities) out."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from .. import runtime
from ..bundle import Bundle, decide
from ..contract import ModelInputs

Label = str | int | float | bool


class PredictResponse(BaseModel):
    predictions: list[Label]
    model_version: str
    probabilities: list[dict[str, float]] | None = None
    # Only with serving.unknown_categories: accept — values the model never saw, per feature.
    unknown_categories: dict[str, int] | None = None
    # False when the prediction log could not take these rows (full disk): counted in /metrics.
    logged: bool | None = None


class Predictor:
    """Validated records in, labels (and class probabilities) out: the whole model call.

    With an ONNX export (``onnx``), the graph runs on arrays built straight from the records and
    the native model is never loaded; otherwise ``bundle`` is a ``TrainedModel`` and the request
    contract (``contract``) turns the records into the native model's input. Classifiers are
    called once: the labels come from the probabilities, with the decision threshold chosen at
    training (``TrainedModel.predict`` decides the same way).
    """

    def __init__(self, bundle: Bundle, onnx: runtime.OnnxModel | None = None) -> None:
        self.model: Any = bundle.native_model
        if onnx is None and self.model is None:
            raise ValueError("no model to answer with: pass an ONNX model or a TrainedModel")
        self.onnx = onnx
        self.version = bundle.version
        self.threshold = bundle.threshold  # binary classification: the cut-off chosen at training
        schema = bundle.schema
        self.inputs = ModelInputs(schema)
        self.classes: list[Any] | None = None
        if schema.task == "classification":
            # The order of the probability columns: the graph's (recorded at export) or the model's.
            classes = onnx.classes if onnx is not None else self.model.classes
            self.classes = list(classes or schema.classes or [])
        self.class_names = [str(c) for c in self.classes] if self.classes is not None else None

    def __call__(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        if self.classes is None or self.class_names is None:
            return {"predictions": self._run(records).tolist(), "model_version": self.version}
        proba = self._run(records)
        labels = decide(proba, self.classes, self.threshold).tolist()
        names = self.class_names
        probabilities = [dict(zip(names, row, strict=True)) for row in proba.tolist()]
        return {"predictions": labels, "model_version": self.version, "probabilities": probabilities}

    def _run(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Class probabilities or values: from the ONNX graph when there is one, else the native model."""
        if self.onnx is not None:
            return _finite(self.onnx.run(records))
        frame = self.inputs.frame(records)
        return _finite(self.model.predict(frame) if self.classes is None else self.model.predict_proba(frame))


class UnusableInput(ValueError):
    """Valid records the model still cannot turn into a finite prediction (answered with 422)."""


def _finite(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise UnusableInput("the model gives no finite prediction for these values")
    return values
