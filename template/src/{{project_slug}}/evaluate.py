"""Stage 4 — judge the trained model on data it has never seen, then decide whether it is served.

Test-set metrics beside the best of several dummy baselines (majority class, random by class
prior, always-positive; mean and median), the same metrics per slice of a chosen column (a bias
check), figures, ``reports/metrics.json`` and ``MODEL_CARD.md``. The gate fails when the target
metric misses its threshold or the model does not clearly beat the baselines, so a weak model cannot
slip through ``make all`` or CI; only a model that passes is promoted to ``models/model``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import precision_recall_fscore_support

from . import artifacts, data, datacard, diagnostics, examples, fairness, features, plots, processed, tracking
from .bundle import decide
from .config import ERRORS, Config
from .features import split_xy
from .metrics import all_metrics, classification_metrics, error_scale, gate, regression_metrics
from .promote import Decision, newest_candidate, promote
from .protocols import ModalityFeatures
from .train import TrainedModel, load_trained

modality: ModalityFeatures = features  # this modality's module, held to the contract by mypy

MIN_SLICE_ROWS = 5  # fewer rows and a slice's metric is noise: reported, never flagged


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
    return regression_metrics(y_true.tolist(), y_pred.tolist(), scale=error_scale(trained.schema))


def _dummies(config: Config, schema: data.Schema, classes: list[Any], positive: Any) -> dict[str, Any]:
    """Models that ignore the features: the bar any real model must clear. A modality may bring its
    own (forecasting: the naive and seasonal-naive forecasts)."""
    if modality.baselines is not None:
        return dict(modality.baselines(config, schema))
    if not config.is_classification:
        return {"mean": DummyRegressor(strategy="mean"), "median": DummyRegressor(strategy="median")}
    dummies: dict[str, Any] = {
        "majority class": DummyClassifier(strategy="most_frequent"),
        "random by class prior": DummyClassifier(strategy="stratified", random_state=config.seed),
    }
    if len(classes) == 2:
        dummies[f"always {positive!r}"] = DummyClassifier(strategy="constant", constant=positive)
    return dummies


Predictions = tuple[np.ndarray, np.ndarray | None]  # labels or values, and class probabilities


def reference_predictions(
    trained: TrainedModel, config: Config, seen: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, Predictions], tuple[str, Predictions]]:
    """Test predictions of the dummies (features ignored) and of a regularised linear model (same
    features), all fitted on ``seen``, the train and validation splits the model learnt from: the
    bars the model is measured against (a forecast baseline starts where the model's forecast does)."""
    schema = trained.schema
    x_train, y_train = split_xy(seen, schema)
    x_test, _ = split_xy(test, schema)
    classes = trained.model.classes if config.is_classification else []

    def predictions(estimator: Any, most_probable: bool = False) -> Predictions:
        """``most_probable``: the labels are the most probable classes (a linear model's decision), read
        off the probabilities instead of a second pass over the test inputs."""
        estimator.fit(x_train, y_train)
        if not config.is_classification:
            return np.asarray(estimator.predict(x_test)), None
        raw, known = estimator.predict_proba(x_test), list(estimator.classes_)
        absent = np.zeros(len(raw))
        proba = np.column_stack([raw[:, known.index(c)] if c in known else absent for c in classes])
        labels = decide(raw, known, None) if most_probable else estimator.predict(x_test)
        return np.asarray(labels, dtype=object), proba

    dummies = {
        name: predictions(dummy)
        for name, dummy in _dummies(config, schema, classes, trained.metadata.get("positive_class")).items()
    }
    name, linear = diagnostics.linear_reference(config, schema)
    return dummies, (name, predictions(linear, most_probable=True))


def best_baseline(
    trained: TrainedModel, config: Config, y_test: pd.Series, dummies: dict[str, Predictions]
) -> tuple[dict[str, float], dict[str, str]]:
    """The best dummy value of every metric, and which dummy scored it.

    One dummy is not enough: the majority class scores f1 = 0 on an imbalanced set, which says
    nothing; always predicting the positive class or guessing by the class prior is a real bar.
    """
    best: dict[str, float] = {}
    strategy: dict[str, str] = {}
    for name, (y_pred, proba) in dummies.items():
        for metric, value in _metrics(trained, config, y_test, y_pred, proba).items():
            better = metric not in best or (
                value > best[metric] if metric not in ERRORS else value < best[metric]
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
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The target metric per slice (Fairlearn's MetricFrame), flagging slices markedly worse than
    overall; and the between-group summary (difference, ratio, parity and equalized odds) of the
    configured column. A modality may slice by its own columns too (texts: by length)."""
    column = config.evaluation.slice_column
    columns = [name for name in (column, *modality.SLICE_COLUMNS) if name]
    missing = [name for name in columns if name not in test.columns]
    if missing:
        raise ValueError(f"evaluation.slice_column {missing[0]!r} is not a column of the data (make data)")
    rows: list[dict[str, Any]] = []
    summary = None
    for name in columns:
        found, by_group = _slices_of(trained, config, test, name, y_pred, proba, overall)
        rows += found
        if name == column:
            summary = {"column": column, **{key: value for key, value in by_group.items() if key != "groups"}}
    return rows, summary


def _slices_of(
    trained: TrainedModel,
    config: Config,
    test: pd.DataFrame,
    column: str,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    overall: float,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of one column's slices, and Fairlearn's summary of them."""
    metric, tolerance = config.evaluation.metric, config.evaluation.slice_tolerance
    groups = slice_groups(test[column], config.evaluation.slice_bins)
    classes = trained.model.classes if config.is_classification else []
    positive = trained.metadata.get("positive_class")
    y_true = test[trained.schema.target]
    compute = all_metrics(config, classes, positive, error_scale(trained.schema))
    by_group = fairness.group_metrics(config, y_true, y_pred, proba, groups, compute)
    rows = []
    for group in groups.cat.categories:  # low to high, as the groups are ordered
        found = by_group["groups"].get(str(group))
        if found is None:
            continue
        value, count = found[metric], found["rows"]
        if value is None:
            gap = None
        elif config.evaluation.higher_is_better:
            gap = overall - value  # absolute drop of a 0..1 score
        else:
            gap = (value - overall) / overall if overall else 0.0  # relative rise of an error
        note = None
        if value is None:
            note = f"{metric} is undefined on this slice"
        elif count < MIN_SLICE_ROWS:
            note = f"too few rows ({count}) to judge"
        rows.append(
            {
                "slice": f"{column} = {group}",
                "column": column,
                "rows": count,
                metric: value,
                "gap": None if gap is None else round(gap, 6),
                "flagged": bool(gap is not None and gap > tolerance and count >= MIN_SLICE_ROWS),
                "note": note,
            }
        )
    return rows, by_group


def per_class_metrics(y_true: pd.Series, y_pred: np.ndarray) -> list[dict[str, Any]]:
    """Precision, recall and F1 of every class on the test set: a class the model neglects shows
    here even when the averages look fine."""
    labels = sorted(set(y_true.astype(str)) | {str(label) for label in y_pred})
    truth, predicted = y_true.astype(str).to_numpy(), np.asarray(y_pred).astype(str)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return [
        {
            "class": label,
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(n),
        }
        for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
    ]


# ---------------------------------------------------------------- report and card
def write_model_card(report: dict[str, Any], trained: TrainedModel, config: Config) -> None:
    template_text = resources.files(__package__).joinpath("model_card.md.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(
        # Markdown, not HTML: nothing to escape. Only an .html template would be.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    text = environment.from_string(template_text).render(
        report=report,
        meta=trained.metadata,
        config=config,
        quality_lines=datacard.quality_lines(report.get("data_quality", {})),
    )
    artifacts.write_text(config.model_card_path, text)


def evaluate(config: Config, require_better: bool = False, force: bool = False) -> Evaluation:
    """Judge the newest candidate (else the served model) on the test split; promote a candidate
    that passes its gate (and, with ``require_better``, beats the served model)."""
    directory = newest_candidate(config)
    trained = load_trained(config, directory)
    train, test = processed.load_split(config, "train"), processed.load_split(config, "test")
    report = judge(trained, config, train, test)
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


def judge(trained: TrainedModel, config: Config, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """The whole evaluation report of ``trained``: metrics with intervals, references, variance,
    calibration, explanations, errors, slices and the gate; figures are written as it goes.

    ``seconds`` in the report says what each analysis cost, so its price is visible in every run.
    """
    schema, evaluation = trained.schema, config.evaluation
    x_test, y_test = split_xy(test, schema)
    y_pred, proba = trained.predictions(x_test)
    classes = trained.model.classes if config.is_classification else []
    positive = trained.metadata.get("positive_class")
    compute = all_metrics(config, classes, positive, error_scale(schema))
    test_metrics = _metrics(trained, config, y_test, y_pred, proba)
    metric = evaluation.metric
    if test_metrics.get(metric) is None:
        raise ValueError(f"metric {metric!r} cannot be computed on this test set")
    seconds: dict[str, float] = {}
    clock = _Clock(seconds)

    validation = processed.load_split(config, "validation")
    seen = pd.concat([train, validation], ignore_index=True)
    with clock("references"):
        dummies, (linear_name, linear) = reference_predictions(trained, config, seen, test)
        baseline, strategy = best_baseline(trained, config, y_test, dummies)
    references = {strategy[metric]: dummies[strategy[metric]], linear_name: linear}
    with clock("intervals"):
        truth = y_test.to_numpy()
        intervals = diagnostics.bootstrap_intervals(config, truth, (y_pred, proba), references, compute)
    with clock("slices"):
        slices, fair = slice_metrics(trained, config, test, y_pred, proba, test_metrics[metric])
    with clock("cross_validation"):
        x_seen, y_seen = split_xy(seen, schema)
        fit = trained.metadata.get("fit")
        cross_validation = diagnostics.cross_validation(config, schema, x_seen, y_seen, compute, fit)
    with clock("permutation_importance"):
        importance = diagnostics.importances(config, trained, x_test, y_test, compute)
    report: dict[str, Any] = {
        "model_version": trained.version,
        "framework": trained.metadata["framework"],
        "task": config.task,
        "test_rows": len(test),
        "test": test_metrics,
        "intervals": intervals,
        "baseline": baseline,
        "baseline_strategy": strategy,
        "linear_baseline": {"model": linear_name, "test": _metrics(trained, config, y_test, *linear)},
        "validation": trained.metadata["validation_metrics"],
        "cross_validation": cross_validation,
        "gate": _gate(config, test_metrics[metric], intervals["test"][metric], baseline[metric], strategy),
        "per_class": per_class_metrics(y_test, y_pred) if config.is_classification else [],
        "slices": slices,
        "flagged_slices": [row["slice"] for row in slices if row["flagged"]],
        "fairness": fair,
        "permutation_importance": importance,
        "worst_predictions": examples.worst_predictions(config, x_test, y_test, y_pred, proba, classes),
        "demo_examples": examples.demo_examples(config, x_test, y_test, y_pred),
        "data_quality": processed.load_manifest(config).get("quality", {}),
    }
    # What only the model can measure (a forecaster: its intervals' coverage, the error by step).
    report.update(trained.model.assess(x_test, y_test))
    # What only the inputs can show (texts: the n-grams that sway the model, its surest mistakes).
    if modality.explain is not None:
        report.update(modality.explain(trained, x_test, y_test, y_pred, proba))
    if config.is_classification and proba is not None:
        report["positive_class"] = positive  # what f1, precision, recall and the curves are about
        report["decision_threshold"] = trained.threshold
        report["calibration"] = diagnostics.calibration(y_test, proba, y_pred, classes, positive)
    with clock("figures"):
        report["figures"] = plots.draw(trained, config, y_test, y_pred, proba, report, x_test)
    report["seconds"] = seconds
    return report


class _Clock:
    """``with clock(name):`` adds the block's wall time to ``seconds[name]``."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def _gate(
    config: Config, value: float, interval: list[float] | None, baseline: float, strategy: dict[str, str]
) -> dict[str, Any]:
    """The gate on the point estimate, or (``gate_on: interval``) on the interval's pessimistic end."""
    evaluation = config.evaluation
    judged = value
    if evaluation.gate_on == "interval" and interval is not None:
        judged = interval[0] if evaluation.higher_is_better else interval[1]
    verdict = gate(evaluation.metric, judged, baseline, evaluation.threshold, evaluation.baseline_margin)
    return {
        **verdict,
        "point": value,
        "judged_on": "point estimate" if judged == value else "pessimistic end of the interval",
        "baseline_strategy": strategy[evaluation.metric],
    }
