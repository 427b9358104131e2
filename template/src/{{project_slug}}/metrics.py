"""Metric definitions shared by training (validation split) and evaluation (test split)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from .config import ERRORS, Config
from .schema import Schema

CLASSIFICATION = ("f1", "accuracy", "precision", "recall", "roc_auc")
# Labels or values: lists, or NumPy arrays (what the bootstrap resamples).
Values = Sequence[Any] | np.ndarray
REGRESSION = ("rmse", "mae", "r2")
FORECASTING = ("mase", "smape")  # with an error scale: the forecasting projects' metrics


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
    y_true: Values,
    y_pred: Values,
    proba: np.ndarray | None,
    classes: Sequence[Any],
    positive: Any,
    only: str | None = None,
) -> dict[str, float]:
    """Accuracy, f1, precision, recall and ROC AUC (binary: of ``positive``; else macro / one-vs-rest).

    ``only`` computes that one metric (the bootstrap asks for thousands of them).
    """
    binary = len(classes) == 2
    result: dict[str, Any] = {}
    if only in (None, "accuracy"):
        result["accuracy"] = skm.accuracy_score(y_true, y_pred)
    if only in (None, "f1", "precision", "recall"):
        options: dict[str, Any] = (
            {"pos_label": positive, "average": "binary"} if binary else {"average": "macro"}
        )
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, zero_division=0, **options
        )
        result.update({"f1": f1, "precision": precision, "recall": recall})
    if only in (None, "roc_auc") and proba is not None and len(set(y_true)) == len(classes):
        if binary:
            column = list(classes).index(positive)
            positives = np.asarray(y_true) == positive
            result["roc_auc"] = skm.roc_auc_score(positives, proba[:, column])
        else:
            result["roc_auc"] = skm.roc_auc_score(y_true, proba, labels=list(classes), multi_class="ovr")
    return {name: round(float(value), 6) for name, value in result.items() if only in (None, name)}


def coded_classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    n_classes: int,
    positive: int,
    only: str | None = None,
) -> dict[str, float]:
    """``classification_metrics`` of integer class codes ``0 .. n_classes - 1`` (what the bootstrap
    resamples), the label metrics read off one confusion count.

    The values are scikit-learn's (a render test compares them): accuracy, and precision, recall and
    f1 with ``zero_division=0``, of ``positive`` for two classes, else averaged over the classes
    present in either array. scikit-learn's input checks cost more than the counting itself when the
    bootstrap asks thousands of times; ROC AUC, which needs the ranking, is still scikit-learn's.
    """
    result: dict[str, float] = {}
    if only != "roc_auc":
        result.update(_from_confusion(y_true, y_pred, n_classes, positive))
    if only in (None, "roc_auc"):
        ranked = classification_metrics(y_true, y_pred, proba, range(n_classes), positive, "roc_auc")
        result.update(ranked)
    return {name: value for name, value in result.items() if only in (None, name)}


def _from_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, positive: int
) -> dict[str, float]:
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    counts = counts.reshape(n_classes, n_classes)
    hits = np.diag(counts).astype(float)
    true_sum, pred_sum = counts.sum(axis=1), counts.sum(axis=0)
    precision = np.divide(hits, pred_sum, out=np.zeros(n_classes), where=pred_sum > 0)
    recall = np.divide(hits, true_sum, out=np.zeros(n_classes), where=true_sum > 0)
    both = true_sum + pred_sum
    f1 = np.divide(2 * hits, both, out=np.zeros(n_classes), where=both > 0)
    if n_classes == 2:
        chosen = [precision[positive], recall[positive], f1[positive]]
    else:
        present = both > 0
        chosen = [float(np.mean(values[present])) for values in (precision, recall, f1)]
    accuracy = hits.sum() / len(y_true)
    values = {"accuracy": accuracy, "precision": chosen[0], "recall": chosen[1], "f1": chosen[2]}
    return {name: round(float(value), 6) for name, value in values.items()}


def choose_threshold(
    y_true: Sequence[Any], scores: np.ndarray, positive: Any, metric: str, cost_ratio: float | None
) -> dict[str, Any]:
    """The probability cut-off for ``positive`` that serves the problem best on these (validation) rows.

    With a cost ratio, the cut-off that minimises false alarms + ratio x missed positives; for
    accuracy, the most accurate one; otherwise the best f1 (precision, recall and ROC AUC alone would
    be gamed by an extreme cut-off). Read off scikit-learn's ROC and precision-recall curves, whose
    cut-offs are the scores of single rows: the one kept lies halfway to the next lower score, so it
    makes the same decisions on these rows without resting on one row's score (and rounding cannot
    move it past that row). The validation value is measured again at the cut-off kept.
    """
    positives = np.asarray([value == positive for value in y_true])
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if cost_ratio is not None or metric == "accuracy":
        fpr, tpr, cuts = skm.roc_curve(positives, scores)
        fpr, tpr, cuts = fpr[1:], tpr[1:], cuts[1:]  # the first cut-off is +inf: nothing positive
        if cost_ratio is not None:
            values = -(fpr * n_neg + cost_ratio * (1 - tpr) * n_pos)
            rule, name = f"lowest cost (a missed positive costs {cost_ratio:g} false alarms)", "cost"
        else:
            values = (tpr * n_pos + (1 - fpr) * n_neg) / max(n_pos + n_neg, 1)
            rule, name = "highest accuracy on the validation split", "accuracy"
    else:
        precision, recall, cuts = skm.precision_recall_curve(positives, scores)
        precision, recall = precision[:-1], recall[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.nan_to_num(2 * precision * recall / (precision + recall))
        rule, name = "highest f1 on the validation split", "f1"
    cut = float(cuts[int(np.argmax(values))])
    lower = scores[scores < cut]
    threshold = round((cut + float(lower.max())) / 2 if lower.size else cut / 2, 6)
    decided = scores >= threshold
    if name == "cost":
        value = float(np.sum(decided & ~positives) + cost_ratio * np.sum(~decided & positives))
    elif name == "accuracy":
        value = float(skm.accuracy_score(positives, decided))
    else:
        value = float(skm.f1_score(positives, decided, zero_division=0))
    return {
        "positive_class": positive,
        "value": threshold,
        "rule": rule,
        f"validation_{name}": round(value, 6),
    }


def regression_metrics(
    y_true: Values, y_pred: Values, only: str | None = None, scale: float | None = None
) -> dict[str, float]:
    """RMSE, MAE and R² (``only``: that one); with an error ``scale`` (forecasting), also MASE and sMAPE.

    MASE is the MAE divided by ``scale``, the in-sample MAE of the seasonal-naive forecast on the
    training data: below 1 beats what "same as one season ago" did there. sMAPE is the mean of
    2|y - ŷ| / (|y| + |ŷ|), in [0, 2] (a pair of zeros counts as no error).
    """
    result = {
        "rmse": lambda: skm.root_mean_squared_error(y_true, y_pred),
        "mae": lambda: skm.mean_absolute_error(y_true, y_pred),
        "r2": lambda: skm.r2_score(y_true, y_pred) if len(y_true) > 1 else float("nan"),
    }
    if scale is not None:
        result["mase"] = lambda: skm.mean_absolute_error(y_true, y_pred) / scale
        result["smape"] = lambda: _smape(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    return {name: round(float(value()), 6) for name, value in result.items() if only in (None, name)}


def error_scale(schema: Schema) -> float | None:
    """MASE's scale when the data is time series (its schema carries one), else None."""
    return schema.error_scale


def _smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    size = np.abs(y_true) + np.abs(y_pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(size > 0, 2 * np.abs(y_true - y_pred) / size, 0.0)
    return float(np.mean(ratios))


def perfect(metric: str) -> float:
    """The best value a metric can take: 0 for an error, 1 for a score."""
    return 0.0 if metric in ERRORS else 1.0


def gate(
    metric: str, value: float, baseline: float, threshold: float | None, margin: float
) -> dict[str, Any]:
    """Pass when the threshold (if any) is met and the model closes ``margin`` of the gap between
    the best dummy baseline and a perfect score. A baseline that is already perfect cannot be beaten."""
    higher_is_better = metric not in ERRORS
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


# Metrics about the positive class mean nothing on a group without positive cases.
POSITIVE_CLASS_METRICS = frozenset({"f1", "precision", "recall", "roc_auc"})


@dataclass(frozen=True)
class TaskMetrics:
    """Every metric of the task for (y_true, y_pred, proba): the shared definitions in ``metrics``.

    ``only`` names the one metric a caller needs (a cheaper call). ``coded()`` gives the same metrics
    on integer class codes, with the function that encodes labels: the bootstrap uses it, so callers
    pass the classes once, here.
    """

    classification: bool
    classes: tuple[Any, ...] = ()
    positive: Any = None
    scale: float | None = None  # forecasting: MASE's error scale (adds MASE and sMAPE)
    on_codes: bool = False  # labels are the integer codes of ``classes``

    def __call__(
        self, y_true: Any, y_pred: Any, proba: np.ndarray | None = None, only: str | None = None
    ) -> dict[str, float]:
        if self.classification and self.on_codes:
            return coded_classification_metrics(
                np.asarray(y_true), np.asarray(y_pred), proba, len(self.classes), self.positive, only
            )
        if self.classification:
            return classification_metrics(
                np.asarray(y_true), np.asarray(y_pred), proba, list(self.classes), self.positive, only
            )
        return regression_metrics(np.asarray(y_true), np.asarray(y_pred), only, self.scale)

    def coded(self) -> tuple[TaskMetrics, Callable[[np.ndarray], np.ndarray]]:
        """These metrics on integer class codes, and the encoder (the identity for regression)."""
        if not self.classes:
            return self, lambda values: values
        code = {label: index for index, label in enumerate(self.classes)}

        def encode(labels: np.ndarray) -> np.ndarray:
            return np.fromiter((code[label] for label in labels), dtype=np.int64, count=len(labels))

        return TaskMetrics(True, tuple(range(len(self.classes))), code[self.positive], on_codes=True), encode


def all_metrics(
    config: Config, classes: Sequence[Any], positive: Any, scale: float | None = None
) -> TaskMetrics:
    """The metrics of this project's task (``classes`` and ``positive`` matter for classification,
    ``scale``, the schema's error scale, for forecasting)."""
    return TaskMetrics(config.is_classification, tuple(classes), positive, scale)
