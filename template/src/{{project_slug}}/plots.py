"""The evaluation's figures, drawn from what it measured: confusion matrix, ROC and
precision-recall curves, calibration or residuals, the metric per slice, permutation importance,
partial dependence, and what the framework (learning curves, importances) and the modality (the
most confidently wrong images) add. Saved under ``reports/figures/``, each atomically.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.inspection import PartialDependenceDisplay
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    PredictionErrorDisplay,
    RocCurveDisplay,
)

from . import artifacts, features
from .config import Config
from .protocols import TestPredictions
from .train import TrainedModel


def _save(figure: Any, config: Config, name: str) -> str:
    path = config.figures_dir / name
    with artifacts.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return str(path.relative_to(config.root))


def draw(
    trained: TrainedModel,
    config: Config,
    y_true: pd.Series,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    report: dict[str, Any],
    x_test: pd.DataFrame,
) -> list[str]:
    """Every figure of the report, saved under ``reports/figures/``; returns their paths."""
    if config.is_classification and proba is not None:
        drawn = [
            ("confusion_matrix.png", _confusion(trained, y_true, y_pred)),
            ("roc_curve.png", _curves(trained, y_true, proba, RocCurveDisplay, "ROC curve")),
            (
                "precision_recall.png",
                _curves(trained, y_true, proba, PrecisionRecallDisplay, "Precision-recall"),
            ),
            ("calibration.png", _calibration(report["calibration"])),
        ]
    else:
        drawn = [("residuals.png", _residuals(y_true, y_pred))]
    if report["slices"]:
        drawn.append(("slices.png", _slices(config, report["slices"])))
    if report["permutation_importance"]:
        drawn.append(("permutation_importance.png", _importance(config, report["permutation_importance"])))
    # scikit-learn's own estimator, when there is one, and numeric features to move (not pixels or text)
    pipeline = trained.model.pipeline
    if pipeline is not None and any(feature.kind == "numeric" for feature in trained.schema.features):
        drawn.append(("partial_dependence.png", _partial_dependence(trained, pipeline, x_test, report)))
    # The model's own figures (feature importance, learning curves; none for most).
    drawn += list(trained.model.figures())
    # Modality-specific figures of the inputs themselves (images: the most confidently wrong ones).
    classes = trained.model.classes if proba is not None else []
    drawn += features.input_figures(TestPredictions(x_test, y_true, y_pred, proba, classes), report)
    return [_save(figure, config, name) for name, figure in drawn]


def _confusion(trained: TrainedModel, y_true: pd.Series, y_pred: np.ndarray) -> Any:
    classes = trained.model.classes
    size = max(5.0, 0.9 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(size, size * 0.8))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=classes, ax=axis, colorbar=False, xticks_rotation=45 if len(classes) > 3 else 0
    )
    axis.set_title("Confusion matrix (test)")
    return figure


def _curves(trained: TrainedModel, y_true: pd.Series, proba: np.ndarray, display: Any, title: str) -> Any:
    """ROC or precision-recall: the positive class for two classes, one class against the rest else."""
    classes = trained.model.classes
    shown = [trained.metadata["positive_class"]] if len(classes) == 2 else classes
    figure, axis = plt.subplots(figsize=(5, 4))
    for label in shown:
        display.from_predictions(
            (y_true == label).to_numpy(),
            proba[:, classes.index(label)],
            pos_label=True,
            name=f"{label}" if len(classes) == 2 else f"{label} vs rest",
            ax=axis,
        )
    positive = f" (positive class: {shown[0]})" if len(shown) == 1 else ""
    if display is RocCurveDisplay:
        axis.set_xlabel("False positive rate")
        axis.set_ylabel(f"True positive rate{positive}")
    else:
        axis.set_xlabel(f"Recall{positive}")
        axis.set_ylabel("Precision")
    axis.set_title(f"{title} (test)")
    return figure


def _calibration(calibration: dict[str, Any]) -> Any:
    curve = calibration["curve"]
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axis.plot(curve["mean_predicted"], curve["fraction_positive"], marker="o", label="model")
    axis.set_xlabel(f"Predicted probability ({calibration['of']})")
    axis.set_ylabel("Observed frequency")
    axis.set_title(f"Calibration (test), Brier score {calibration['brier']:.3f}")
    axis.legend(loc="upper left")
    return figure


def _residuals(y_true: pd.Series, y_pred: np.ndarray) -> Any:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    PredictionErrorDisplay.from_predictions(y_true, y_pred, kind="actual_vs_predicted", ax=axes[0])
    PredictionErrorDisplay.from_predictions(y_true, y_pred, kind="residual_vs_predicted", ax=axes[1])
    axes[0].set_title("Actual vs predicted (test)")
    axes[1].set_title("Residuals (test)")
    return figure


def _slices(config: Config, slices: list[dict[str, Any]]) -> Any:
    metric = config.evaluation.metric
    figure, axis = plt.subplots(figsize=(6, 0.5 + 0.4 * len(slices)))
    labels = [f"{row['slice']} (n={row['rows']})" for row in slices]
    values = [row[metric] if row[metric] is not None else 0.0 for row in slices]
    colours = ["tab:red" if row["flagged"] else "tab:blue" for row in slices]
    axis.barh(labels, values, color=colours)
    for position, row in enumerate(slices):
        if row["note"]:  # undefined, or too few rows: said in words rather than drawn as a bar
            axis.text(0, position, f" {row['note']}", va="center", fontsize=8)
    axis.invert_yaxis()  # the first slice on top: low to high, as in the report
    axis.set_xlabel(f"{metric} (test)")
    axis.set_title("Bias check: metric per slice")
    return figure


def _importance(config: Config, rows: list[dict[str, Any]]) -> Any:
    shown = rows[:15][::-1]
    figure, axis = plt.subplots(figsize=(6, 0.6 + 0.3 * len(shown)))
    axis.barh([r["feature"] for r in shown], [r["mean"] for r in shown], xerr=[r["std"] for r in shown])
    change = "Drop" if config.evaluation.higher_is_better else "Rise"
    axis.set_xlabel(f"{change} in test {config.evaluation.metric} when the feature is shuffled")
    axis.set_title("Permutation importance (test)")
    return figure


def _partial_dependence(
    trained: TrainedModel, pipeline: Any, x_test: pd.DataFrame, report: dict[str, Any]
) -> Any:
    """How the prediction moves with the most important numeric features, the others held as they are."""
    numeric = {f.name for f in trained.schema.features if f.kind == "numeric"}
    top = [row["feature"] for row in report["permutation_importance"] if row["feature"] in numeric][:3]
    figure, axes = plt.subplots(1, max(len(top), 1), figsize=(4 * max(len(top), 1), 3.5), squeeze=False)
    if not top:
        axes[0][0].text(0.5, 0.5, "no numeric feature", ha="center")
        return figure
    rows = x_test.sample(min(len(x_test), 1000), random_state=0)  # an average curve needs no more
    target = trained.metadata.get("positive_class") if trained.schema.task == "classification" else None
    PartialDependenceDisplay.from_estimator(
        pipeline, rows, top, target=target, ax=axes[0], grid_resolution=20
    )
    of = f", probability of {target}" if target is not None else ""
    figure.suptitle(f"Partial dependence (test){of}")
    return figure
