"""Stage 4 — judge the trained model on data it has never seen, then decide whether it is served.

Test-set metrics beside the best of several dummy baselines (majority class, random by class
prior, always-positive; mean and median), the same metrics per slice of a chosen column (a bias
check), figures, ``reports/metrics.json`` and ``MODEL_CARD.md``. The gate fails when the target
metric misses its threshold or the model does not clearly beat the baselines, so a weak model cannot
slip through ``make all`` or CI; only a model that passes is promoted to ``models/model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import ConfusionMatrixDisplay, PredictionErrorDisplay, RocCurveDisplay

from . import artifacts, data, tracking
from .config import Config
from .features import split_xy
from .metrics import classification_metrics, gate, regression_metrics
from .promote import Decision, newest_candidate, promote
from .train import TrainedModel, load_trained

MIN_SLICE_ROWS = 5
# Metrics about the positive class mean nothing on a slice without positive cases.
POSITIVE_CLASS_METRICS = {"f1", "precision", "recall", "roc_auc"}


@dataclass
class Evaluation:
    report: dict[str, Any]
    decision: Decision | None = None

    @property
    def passed(self) -> bool:
        return bool(self.report["gate"]["passed"])

    @property
    def summary(self) -> str:
        gate = self.report["gate"]
        verdict = "PASSED" if gate["passed"] else "FAILED"
        relation = ">=" if gate["higher_is_better"] else "<="
        target = "" if gate["threshold"] is None else f"target {relation} {gate['threshold']}, "
        return (
            f"gate {verdict}: test {gate['metric']} = {gate['value']:.4f} ({target}best baseline "
            f"{gate['baseline']:.4f}, closes {gate['gain_over_baseline']:.0%} of the gap to perfect, "
            f"needs {gate['baseline_margin']:.0%})"
        )


def _metrics(
    trained: TrainedModel, config: Config, y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray | None
) -> dict[str, float]:
    if config.is_classification:
        positive = trained.metadata["positive_class"]
        return classification_metrics(
            y_true.tolist(), y_pred.tolist(), proba, trained.model.classes, positive
        )
    return regression_metrics(y_true.tolist(), y_pred.tolist())


def _dummies(config: Config, classes: list[Any], positive: Any) -> dict[str, Any]:
    """Models that ignore the features: the bar any real model must clear."""
    if not config.is_classification:
        return {"mean": DummyRegressor(strategy="mean"), "median": DummyRegressor(strategy="median")}
    dummies: dict[str, Any] = {
        "majority class": DummyClassifier(strategy="most_frequent"),
        "random by class prior": DummyClassifier(strategy="stratified", random_state=config.seed),
    }
    if len(classes) == 2:
        dummies[f"always {positive!r}"] = DummyClassifier(strategy="constant", constant=positive)
    return dummies


def baseline_metrics(
    trained: TrainedModel, config: Config, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, float], dict[str, str]]:
    """The best dummy value of every metric, and which dummy scored it.

    One dummy is not enough: the majority class scores f1 = 0 on an imbalanced set, which says
    nothing; always predicting the positive class or guessing by the class prior is a real bar.
    """
    schema = trained.schema
    x_train, y_train = split_xy(train, schema)
    x_test, y_test = split_xy(test, schema)
    classes = trained.model.classes if config.is_classification else []
    best: dict[str, float] = {}
    strategy: dict[str, str] = {}
    for name, dummy in _dummies(config, classes, trained.metadata.get("positive_class")).items():
        dummy.fit(x_train, y_train)
        proba = None
        if config.is_classification:
            raw = dummy.predict_proba(x_test)
            known = list(dummy.classes_)
            proba = np.column_stack(
                [raw[:, known.index(c)] if c in known else np.zeros(len(raw)) for c in classes]
            )
        for metric, value in _metrics(trained, config, y_test, dummy.predict(x_test), proba).items():
            better = metric not in best or (
                value > best[metric] if metric not in {"rmse", "mae"} else value < best[metric]
            )
            if better:
                best[metric], strategy[metric] = value, name
    return best, strategy


def slice_groups(column: pd.Series, bins: int) -> pd.Series:
    """Group labels as an ordered categorical: categories sorted, numeric columns cut into
    quantile bins kept in numeric order (so reports read low to high, not "10" before "9")."""
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > bins:
        intervals = pd.qcut(column, q=bins, duplicates="drop")
        # Right-closed bins; the first one starts at the smallest value itself (pandas lowers it a bit).
        lowest = column.min()
        return intervals.cat.rename_categories(
            lambda bin_: (
                f"[{lowest:.4g}, {bin_.right:.4g}]"
                if bin_ == intervals.cat.categories[0]
                else f"({bin_.left:.4g}, {bin_.right:.4g}]"
            )
        )
    labels = column.astype(object).where(column.notna(), "<missing>").astype(str)
    return labels.astype(pd.CategoricalDtype(sorted(labels.unique()), ordered=True))


def slice_metrics(
    trained: TrainedModel,
    config: Config,
    test: pd.DataFrame,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    overall: float,
) -> list[dict[str, Any]]:
    """The target metric per slice, flagging slices that do markedly worse than overall."""
    column_name = config.evaluation.slice_column
    if not column_name:
        return []
    column = column_name
    if column not in test.columns:
        raise ValueError(f"evaluation.slice_column {column_name!r} is not a column of the data (make data)")
    metric, tolerance = config.evaluation.metric, config.evaluation.slice_tolerance
    groups = slice_groups(test[column], config.evaluation.slice_bins)
    y_true = test[trained.schema.target]
    rows = []
    for group in groups.cat.categories:
        mask = (groups == group).to_numpy()
        if not mask.any():
            continue
        values = _metrics(trained, config, y_true[mask], y_pred[mask], None if proba is None else proba[mask])
        value = values.get(metric)
        binary = config.is_classification and len(trained.model.classes) == 2
        positive = trained.metadata.get("positive_class")
        if binary and metric in POSITIVE_CLASS_METRICS and positive not in set(y_true[mask]):
            value = None  # about the positive class, on a slice that has none
        if value is None or not np.isfinite(value):
            gap = None
        elif config.evaluation.higher_is_better:
            gap = overall - value  # absolute drop of a 0..1 score
        else:
            gap = (value - overall) / overall if overall else 0.0  # relative rise of an error
        rows.append(
            {
                "slice": f"{column} = {group}",
                "rows": int(mask.sum()),
                metric: value,
                "gap": None if gap is None else round(gap, 6),
                "flagged": bool(gap is not None and gap > tolerance and mask.sum() >= MIN_SLICE_ROWS),
            }
        )
    return rows


# ---------------------------------------------------------------- figures
def _save(figure: Any, config: Config, name: str) -> str:
    path = config.figures_dir / name
    with artifacts.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return str(path.relative_to(config.root))


def plot_figures(
    trained: TrainedModel,
    config: Config,
    y_true: pd.Series,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    slices: list[dict[str, Any]],
) -> list[str]:
    figures = []
    if config.is_classification:
        classes = trained.model.classes
        size = max(5.0, 0.9 * len(classes) + 2)
        figure, axis = plt.subplots(figsize=(size, size * 0.8))
        ConfusionMatrixDisplay.from_predictions(
            y_true,
            y_pred,
            labels=classes,
            ax=axis,
            colorbar=False,
            xticks_rotation=45 if len(classes) > 3 else 0,
        )
        axis.set_title("Confusion matrix (test)")
        figures.append(_save(figure, config, "confusion_matrix.png"))
        if proba is not None:
            figure, axis = plt.subplots(figsize=(5, 4))
            classes = trained.model.classes
            shown = [trained.metadata["positive_class"]] if len(classes) == 2 else classes
            for label in shown:
                RocCurveDisplay.from_predictions(
                    (y_true == label).to_numpy(),
                    proba[:, classes.index(label)],
                    pos_label=True,
                    name=f"{label}" if len(classes) == 2 else f"{label} vs rest",
                    ax=axis,
                )
            axis.set_xlabel("False positive rate")
            axis.set_ylabel(
                f"True positive rate (positive class: {shown[0]})"
                if len(shown) == 1
                else "True positive rate"
            )
            axis.set_title("ROC curve (test)")
            figures.append(_save(figure, config, "roc_curve.png"))
    else:
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        PredictionErrorDisplay.from_predictions(y_true, y_pred, kind="actual_vs_predicted", ax=axes[0])
        PredictionErrorDisplay.from_predictions(y_true, y_pred, kind="residual_vs_predicted", ax=axes[1])
        axes[0].set_title("Actual vs predicted (test)")
        axes[1].set_title("Residuals (test)")
        figures.append(_save(figure, config, "residuals.png"))
    if slices:
        metric = config.evaluation.metric
        figure, axis = plt.subplots(figsize=(6, 0.5 + 0.4 * len(slices)))
        labels = [f"{row['slice']} (n={row['rows']})" for row in slices]
        values = [row[metric] if row[metric] is not None else 0.0 for row in slices]
        colours = ["tab:red" if row["flagged"] else "tab:blue" for row in slices]
        axis.barh(labels, values, color=colours)
        for position, row in enumerate(slices):
            if row[metric] is None:  # undefined on this slice: say so rather than draw a zero
                axis.text(0, position, " n/a (undefined on this slice)", va="center", fontsize=8)
        axis.set_xlabel(f"{metric} (test)")
        axis.set_title("Bias check: metric per slice")
        figures.append(_save(figure, config, "slices.png"))
    # Framework-specific figures (feature importance, learning curves): Model.figures() is optional.
    for name, figure in getattr(trained.model, "figures", list)():
        figures.append(_save(figure, config, name))
    return figures


# ---------------------------------------------------------------- report and card
def write_model_card(report: dict[str, Any], trained: TrainedModel, config: Config) -> None:
    template_text = resources.files(__package__).joinpath("model_card.md.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(
        # Markdown, not HTML: nothing to escape. Only an .html template would be.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    text = environment.from_string(template_text).render(report=report, meta=trained.metadata, config=config)
    artifacts.write_text(config.model_card_path, text)


def evaluate(config: Config, require_better: bool = False, force: bool = False) -> Evaluation:
    """Judge the newest candidate (else the served model) on the test split; promote a candidate
    that passes its gate (and, with ``require_better``, beats the served model)."""
    directory = newest_candidate(config)
    trained = load_trained(config, directory)
    schema = trained.schema
    train, test = data.load_split(config, "train"), data.load_split(config, "test")
    x_test, y_test = split_xy(test, schema)
    y_pred = trained.model.predict(x_test)
    proba = trained.model.predict_proba(x_test) if config.is_classification else None

    test_metrics = _metrics(trained, config, y_test, y_pred, proba)
    baseline, strategy = baseline_metrics(trained, config, train, test)
    metric = config.evaluation.metric
    if test_metrics.get(metric) is None:
        raise ValueError(f"metric {metric!r} cannot be computed on this test set")
    slices = slice_metrics(trained, config, test, y_pred, proba, test_metrics[metric])
    report: dict[str, Any] = {
        "model_version": trained.version,
        "framework": trained.metadata["framework"],
        "task": config.task,
        "test_rows": len(test),
        "test": test_metrics,
        "baseline": baseline,
        "baseline_strategy": strategy,
        "validation": trained.metadata["validation_metrics"],
        "gate": {
            **gate(
                metric,
                test_metrics[metric],
                baseline[metric],
                config.evaluation.threshold,
                config.evaluation.baseline_margin,
            ),
            "baseline_strategy": strategy[metric],
        },
        "slices": slices,
        "flagged_slices": [row["slice"] for row in slices if row["flagged"]],
        "data_quality": data.load_manifest(config).get("quality", {}),
    }
    report["figures"] = plot_figures(trained, config, y_test, y_pred, proba, slices)
    tuning = config.reports_dir / "tuning.json"
    if tuning.is_file():  # written by the tune stage, in projects that have one
        report["tuning"] = artifacts.read_json(tuning)
    report.update(tracking.log_evaluation(config, report, trained.directory))
    decision = promote(config, trained, report, require_better, force) if directory is not None else None
    report["served"] = decision.promoted if decision else True
    report["promotion"] = decision.reason if decision else "already the served model"
    artifacts.write_json(config.reports_dir / "metrics.json", report)
    write_model_card(report, trained, config)
    return Evaluation(report, decision)
