"""Metric definitions shared by training (validation split) and evaluation (test split)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

CLASSIFICATION = ("f1", "accuracy", "precision", "recall", "roc_auc")
REGRESSION = ("rmse", "mae", "r2")


def positive_label(classes: Sequence[Any], y_train: Sequence[Any], configured: Any = None) -> Any:
    """The class that f1/precision/recall count as positive: configured, else the rarest one."""
    if configured is not None:
        matches = [c for c in classes if str(c) == str(configured)]
        if not matches:
            raise ValueError(f"evaluation.positive_class {configured!r} is not one of {list(classes)}")
        return matches[0]
    values, counts = np.unique(np.asarray(y_train, dtype=object).astype(str), return_counts=True)
    rarest = values[np.argmin(counts)]
    return next(c for c in classes if str(c) == rarest)


def classification_metrics(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    proba: np.ndarray | None,
    classes: Sequence[Any],
    positive: Any,
) -> dict[str, float]:
    binary = len(classes) == 2
    options: dict[str, Any] = {"pos_label": positive, "average": "binary"} if binary else {"average": "macro"}
    result = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0, **options),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0, **options),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0, **options),
    }
    if proba is not None and len(set(y_true)) == len(classes):
        if binary:
            column = list(classes).index(positive)
            positives = np.asarray([value == positive for value in y_true])
            result["roc_auc"] = skm.roc_auc_score(positives, proba[:, column])
        else:
            result["roc_auc"] = skm.roc_auc_score(y_true, proba, labels=list(classes), multi_class="ovr")
    return {name: round(float(value), 6) for name, value in result.items()}


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    result = {
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "r2": skm.r2_score(y_true, y_pred) if len(y_true) > 1 else float("nan"),
    }
    return {name: round(float(value), 6) for name, value in result.items()}


def perfect(metric: str) -> float:
    """The best value a metric can take: 0 for an error, 1 for a score."""
    return 0.0 if metric in {"rmse", "mae"} else 1.0


def gate(
    metric: str, value: float, baseline: float, threshold: float | None, margin: float
) -> dict[str, Any]:
    """Pass when the threshold (if any) is met and the model closes ``margin`` of the gap between
    the best dummy baseline and a perfect score. A baseline that is already perfect cannot be beaten."""
    higher_is_better = metric not in {"rmse", "mae"}
    gap = perfect(metric) - baseline
    gain = (value - baseline) / gap if gap else 0.0
    meets_threshold = threshold is None or (value >= threshold if higher_is_better else value <= threshold)
    return {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "baseline": baseline,
        "baseline_margin": margin,
        "gain_over_baseline": round(gain, 6),
        "higher_is_better": higher_is_better,
        "passed": bool(meets_threshold and gain >= margin and (gap or margin == 0)),
    }
