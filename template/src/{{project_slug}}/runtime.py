"""The portable inference path: the model exported to ONNX, run by ONNX Runtime.

Training exports the whole inference path (preprocessing and model, one graph) next to the native
model and checks it against the native model on the test split (``export``). Serving runs that
graph on arrays built straight from validated records: no DataFrame, no scikit-learn or deep-learning
framework on the request path, and a single-row call in tens of microseconds instead of milliseconds.

This module needs only NumPy and ONNX Runtime, so the service it serves from can be that small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from . import artifacts

ONNX_FILE = "model.onnx"
# What each graph input holds, and the value that stands for a missing one.
INPUT_TYPES: dict[str, tuple[type, Any]] = {"double": (np.float64, np.nan), "string": (np.str_, "")}


class Unavailable(Exception):
    """No usable export for this model (none was made, or its file is gone): serve the native model."""


class OnnxModel:
    """One ONNX Runtime session over an exported bundle: records in, probabilities or values out."""

    def __init__(self, path: Path, export: dict[str, Any], threads: int = 1) -> None:
        options = ort.SessionOptions()
        # One request at a time per worker: threads beyond that only add hand-over latency.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # (record key, graph input, dtype, missing marker) per input, in the graph's order.
        self.inputs = [
            (spec["name"], spec.get("input", spec["name"]), *INPUT_TYPES[spec["type"]])
            for spec in export["inputs"]
        ]
        self.output = str(export["output"])
        # Classification: the classes of the probability columns, in order (None before this was kept).
        self.classes: list[Any] | None = export.get("classes")
        self.file = path.name

    def feed(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """One ``[rows, 1]`` array per graph input, a missing value (None) as the input type's marker."""
        return {
            port: np.array(
                [[missing if (value := record.get(name)) is None else value] for record in records],
                dtype=dtype,
            )
            for name, port, dtype, missing in self.inputs
        }

    def run(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Class probabilities (``[rows, classes]``, the classes in the native model's order) or values."""
        (result,) = self.session.run([self.output], self.feed(records))
        values = np.asarray(result, dtype=np.float64)
        return values if values.ndim == 2 and values.shape[1] > 1 else values.reshape(-1)


def load(directory: Path, metadata: dict[str, Any], threads: int = 1) -> OnnxModel:
    """The bundle's ONNX model, proven to be the file exported and checked at training.

    Raises ``Unavailable`` when there is nothing to serve from ONNX (the caller serves the native
    model and says why), and ``artifacts.ArtifactError`` when the file is there but is not the one
    exported: a corrupted or replaced graph is refused, never run.
    """
    export = metadata.get("onnx") or {}
    if not export.get("exported"):
        raise Unavailable(export.get("reason") or "the model was trained before ONNX export existed")
    if not export.get("equivalent"):
        raise Unavailable(f"its ONNX export failed the equivalence check ({export.get('reason')})")
    path = directory / ONNX_FILE
    if not path.is_file():
        raise Unavailable(f"{path} is missing")
    if artifacts.sha256_file(path) != export.get("sha256"):
        raise artifacts.ArtifactError(
            f"{path} differs from the graph exported at training (sha256 in metadata.json); retrain"
        )
    try:
        return OnnxModel(path, export, threads)
    except Exception as error:  # ONNX Runtime's own errors: an unreadable or unsupported graph
        raise artifacts.ArtifactError(f"{path} cannot be loaded by ONNX Runtime: {error}") from None
