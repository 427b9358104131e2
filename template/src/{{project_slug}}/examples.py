"""Rows worth a look, from the test set: the ones the model gets most wrong (for the card and the
report), and real rows for the demo page when the config asks for them.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .config import Config, too_sparse


def worst_predictions(
    config: Config,
    features: pd.DataFrame,
    y_true: pd.Series,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any],
) -> list[dict[str, Any]]:
    """The test rows the model gets most wrong: largest errors, or the most confident mistakes."""
    count = config.evaluation.worst_predictions
    truth = y_true.to_numpy()
    if config.is_classification and proba is not None:
        confidence = proba.max(axis=1)
        wrong = np.flatnonzero(~_hits(truth, y_pred))
        order = wrong[np.argsort(-confidence[wrong])][:count]
        detail = [{"confidence": round(float(confidence[i]), 6)} for i in order]
    else:
        errors = _absolute_errors(truth, y_pred)
        order = np.argsort(-errors)[:count]
        detail = [{"absolute_error": round(float(errors[i]), 6)} for i in order]
    return [
        {"actual": truth[i], "predicted": y_pred[i], **extra, "features": record}
        for i, extra, record in zip(order, detail, _records(features, order), strict=True)
    ]


def demo_examples(
    config: Config, features: pd.DataFrame, y_true: pd.Series, y_pred: np.ndarray
) -> list[dict[str, Any]]:
    """``serving.demo_examples`` real test rows for the demo page: rows the model gets right (one
    class after another, or the smallest errors) and the one it gets most wrong, so a visitor sees
    both. None unless the config asks: a user's rows may be people's records. Only rows the API
    answers are offered: one with more missing features than ``serving.max_missing_share`` would
    be refused (422) when the visitor picks it."""
    count = config.serving.demo_examples
    if not count:
        return []
    truth = y_true.to_numpy()
    share, width = config.serving.max_missing_share, features.shape[1]
    answered = np.array(
        [not too_sparse(int(n), width, share) for n in features.isna().sum(axis=1)], dtype=bool
    )
    if config.is_classification:
        right = _hits(truth, y_pred)
        by_class = [
            np.flatnonzero(answered & right & (truth == label)) for label in sorted(set(truth), key=str)
        ]
        chosen = [int(i) for row in itertools.zip_longest(*by_class) for i in row if i is not None]
        wrong = np.flatnonzero(answered & ~right)
    else:
        usable = np.flatnonzero(answered)
        order = usable[np.argsort(_absolute_errors(truth[usable], y_pred[usable]), kind="stable")]
        chosen, wrong = [int(i) for i in order[: len(order) // 2]], order[-1:]
    picks = chosen[: count - 1 if len(wrong) else count] + [int(i) for i in wrong[:1]]
    return [
        {"actual": truth[i], "predicted": y_pred[i], "correct": bool(i not in wrong), "features": record}
        for i, record in zip(picks, _records(features, picks), strict=True)
    ]


def _hits(truth: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Row by row, whether the label is right (compared as Python values: labels may mix types)."""
    return np.asarray([a == b for a, b in zip(truth, y_pred, strict=True)], dtype=bool)


def _absolute_errors(truth: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.abs(truth.astype(float) - np.asarray(y_pred, dtype=float))


def _records(features: pd.DataFrame, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
    """Those rows as JSON-ready dicts: a missing value is None, never NaN; bytes (an image) base64."""
    chosen = features.iloc[list(rows)].astype(object)
    records = chosen.where(chosen.notna(), None).to_dict(orient="records")
    return [{str(name): _json_ready(value) for name, value in record.items()} for record in records]


def _json_ready(value: Any) -> Any:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
