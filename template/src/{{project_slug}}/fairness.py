"""Is the model fair across groups: the target metric per group of the slice column with Fairlearn's
``MetricFrame``, their difference and ratio, and for two classes demographic parity and equalized
odds differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, demographic_parity_difference, equalized_odds_difference

from .config import Config
from .metrics import POSITIVE_CLASS_METRICS, TaskMetrics


def group_metrics(
    config: Config,
    y_true: pd.Series,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    groups: pd.Series,
    compute: TaskMetrics,
) -> dict[str, Any]:
    """The target metric per group with Fairlearn's MetricFrame: counts, between-group difference and
    ratio, and for two classes demographic parity and equalized odds differences."""
    metric, classes, positive = config.evaluation.metric, list(compute.classes), compute.positive
    binary = config.is_classification and len(classes) == 2
    column = classes.index(positive) if binary else None
    scores = proba[:, column] if binary and proba is not None and column is not None else None

    def target_metric(truth: Any, predicted: Any) -> float:
        rows = np.asarray(predicted, dtype=int)
        if binary and metric in POSITIVE_CLASS_METRICS and positive not in set(truth):
            return np.nan  # about the positive class, on a group that has none
        values = compute(y_true.to_numpy()[rows], y_pred[rows], None if proba is None else proba[rows])
        return float(values.get(metric, np.nan))

    # MetricFrame passes the rows of each group; the metric reads labels and scores by row index.
    frame = MetricFrame(
        metrics={metric: target_metric, "rows": lambda truth, predicted: len(truth)},
        y_true=y_true.to_numpy(),
        y_pred=np.arange(len(y_true)),
        sensitive_features=groups.astype(str).to_numpy(),
    )
    by_group = frame.by_group
    result: dict[str, Any] = {
        "groups": {
            str(name): {"rows": int(row["rows"]), metric: _finite(row[metric])}
            for name, row in by_group.iterrows()
        },
        "difference": _finite(frame.difference()[metric]),
        "ratio": _finite(frame.ratio()[metric]),
    }
    if binary and scores is not None:
        hits = np.asarray([value == positive for value in y_true.to_numpy()], dtype=int)
        decided = np.asarray([value == positive for value in y_pred], dtype=int)
        sensitive = groups.astype(str).to_numpy()
        result["demographic_parity_difference"] = _finite(
            demographic_parity_difference(hits, decided, sensitive_features=sensitive)
        )
        result["equalized_odds_difference"] = _finite(
            equalized_odds_difference(hits, decided, sensitive_features=sensitive)
        )
    return result


def _finite(value: Any) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None
