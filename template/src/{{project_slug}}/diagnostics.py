"""The evidence behind the evaluation: how sure the numbers are and why the model decides as it does.

Each function answers one question a reviewer asks, with a maintained library doing the work:
how wide is the uncertainty (``scipy.stats.bootstrap`` over test rows), how much does the training
procedure vary (scikit-learn's k-fold splitters, within a time budget), does a simple model do as
well (a regularised linear model on the same features), are the probabilities calibrated
(``calibration_curve``, Brier score), what drives the predictions (``permutation_importance``),
and what does the model learn from each feature (partial dependence, in ``plots``). Where it fails
(the worst test predictions) is in ``examples``, whether it is fair across groups in ``fairness``.

``ProjectEstimator`` puts the project's model, whatever its framework, behind scikit-learn's estimator
interface, so scikit-learn's tools run on every framework alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from . import budget, features
from .bundle import decide
from .config import Config
from .data import Schema
from .metrics import CLASSIFICATION, FORECASTING, REGRESSION, TaskMetrics
from .model import build_model
from .protocols import ModalityFeatures

modality: ModalityFeatures = features  # this modality's module, held to the contract by mypy


class ProjectEstimator(BaseEstimator):
    """The project's model as a scikit-learn estimator: ``fit`` trains it as ``train`` does (early
    stopping on a validation share of what it is given), ``predict`` decides as the API does."""

    def __init__(self, config: Config | None = None, schema: Schema | None = None) -> None:
        self.config = config
        self.schema = schema

    @classmethod
    def fitted(cls, predictor: Any) -> ProjectEstimator:
        """An already trained model (anything with ``predict``/``predict_proba``) to inspect."""
        estimator = cls()
        estimator.fitted_ = predictor
        return estimator

    def fit(self, features: pd.DataFrame, target: pd.Series) -> ProjectEstimator:
        if self.config is None or self.schema is None:
            raise ValueError("ProjectEstimator needs the config and the schema to fit")
        x_fit, x_stop, y_fit, y_stop = holdout(self.config, features, target)
        self.fitted_ = build_model(self.config, self.schema).fit(x_fit, y_fit, x_stop, y_stop)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fitted_.predict(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fitted_.predict_proba(features))

    def most_probable(self, proba: np.ndarray) -> np.ndarray:
        """The labels ``predict`` gives, read off probabilities already computed."""
        return decide(proba, self.fitted_.classes, None)


def holdout(config: Config, features: pd.DataFrame, target: pd.Series) -> list[Any]:
    """A fifth of the rows kept aside to stop training early on: a seeded, stratified draw, or the
    modality's own choice (forecasting keeps each series' latest steps: time never runs backwards)."""
    if modality.holdout is not None:
        return list(modality.holdout(config, features, target))
    stratify = target if config.is_classification else None
    return list(
        train_test_split(features, target, test_size=0.2, random_state=config.seed, stratify=stratify)
    )


# ---------------------------------------------------------------- uncertainty
def bootstrap_intervals(
    config: Config,
    y_true: np.ndarray,
    model: tuple[np.ndarray, np.ndarray | None],
    references: dict[str, tuple[np.ndarray, np.ndarray | None]],
    metrics: TaskMetrics,
) -> dict[str, Any]:
    """Percentile intervals for every test metric of the model, and for the model-minus-reference
    difference of the target metric (the same resampled rows for both, so the pairing is kept).

    Labels are resampled as integer codes: the same metrics, without sorting thousands of label
    strings in every one of the resamples.
    """
    compute, encode = metrics.coded()
    y_true, (y_pred, proba) = encode(y_true), (encode(model[0]), model[1])
    references = {name: (encode(labels), chosen) for name, (labels, chosen) in references.items()}
    evaluation = config.evaluation
    names = list(compute(y_true, y_pred, proba))
    metric = evaluation.metric

    def statistic(rows: np.ndarray) -> np.ndarray:
        values = compute(y_true[rows], y_pred[rows], None if proba is None else proba[rows])
        own = [values.get(name, np.nan) for name in names]
        gaps = []
        for ref_pred, ref_proba in references.values():
            chosen = None if ref_proba is None else ref_proba[rows]
            reference = compute(y_true[rows], ref_pred[rows], chosen, only=metric)
            gaps.append(values.get(metric, np.nan) - reference.get(metric, np.nan))
        return np.asarray(own + gaps, dtype=float)

    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        result = stats.bootstrap(
            (np.arange(len(y_true)),),
            statistic,
            vectorized=False,
            n_resamples=evaluation.bootstrap_resamples,
            confidence_level=evaluation.confidence_level,
            method="percentile",
            rng=np.random.default_rng(config.seed),
        )
    low, high = result.confidence_interval.low, result.confidence_interval.high
    point = compute(y_true, y_pred, proba)
    differences = {}
    for offset, (name, (ref_pred, ref_proba)) in enumerate(references.items(), start=len(names)):
        reference = compute(y_true, ref_pred, ref_proba).get(metric)
        differences[name] = {
            "value": None if reference is None else round(point[metric] - reference, 6),
            "interval": _pair(low[offset], high[offset]),
        }
    return {
        "level": evaluation.confidence_level,
        "resamples": evaluation.bootstrap_resamples,
        "method": "percentile bootstrap over test rows",
        "test": {name: _pair(low[i], high[i]) for i, name in enumerate(names)},
        f"{metric}_difference": differences,
    }


def _pair(low: float, high: float) -> list[float] | None:
    """An interval, or None when some resamples left it undefined (say, a class missing)."""
    return [round(float(low), 6), round(float(high), 6)] if np.isfinite([low, high]).all() else None


# ---------------------------------------------------------------- references and variance
def linear_reference(config: Config, schema: Schema) -> tuple[str, Any]:
    """A simple, strong model on the same features: the bar a complex one must clear to earn its keep
    (a modality may define its own: forecasting fits a ridge regression on the lags)."""
    if modality.linear_reference is not None:
        return modality.linear_reference(config, schema)
    if config.is_classification:
        estimator: Any = LogisticRegression(C=1.0, max_iter=2000)
        name = "Logistic regression (L2)"
    else:
        estimator, name = Ridge(alpha=1.0), "Ridge regression"
    preprocessor = features.build_preprocessor(schema)  # type: ignore[attr-defined,unused-ignore]
    return name, Pipeline([("preprocess", preprocessor), ("estimator", estimator)])


def cross_validation(
    config: Config,
    schema: Schema,
    features: pd.DataFrame,
    target: pd.Series,
    compute: TaskMetrics,
    fit: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Mean and spread of every metric over k folds of train + validation (``evaluation.cv_folds``),
    as many folds and rows as the training ``fit``'s measured cost lets ``evaluation.cv_seconds`` pay."""
    if config.evaluation.cv_folds == 0:
        return None
    by_time = modality.folds  # forecasting: a rolling-origin backtest, never shuffled
    plan = budget.cross_validation(config.evaluation, fit, len(target), by_time=by_time is not None)
    folds = plan.folds
    names = list(CLASSIFICATION if config.is_classification else REGRESSION)
    if compute.scale is not None:
        names += FORECASTING

    def score(estimator: ProjectEstimator, x: pd.DataFrame, y: pd.Series) -> dict[str, float]:
        """Every metric from one pass of the model over the fold (a text model's features cost more
        to compute than the model itself)."""
        if config.is_classification:
            proba = estimator.predict_proba(x)
            found = compute(y, estimator.most_probable(proba), proba)
        else:
            found = compute(y, estimator.predict(x), None)
        return {name: float(found.get(name, np.nan)) for name in names}

    splits: Sequence[tuple[np.ndarray, np.ndarray]]
    if by_time is not None:
        splits, sampled = by_time(config, features, target, folds), False
    else:
        features, target, sampled = sample(config, features, target, plan.rows)
        splitter = (
            StratifiedKFold(folds, shuffle=True, random_state=config.seed)
            if config.is_classification
            else KFold(folds, shuffle=True, random_state=config.seed)
        )
        splits = list(splitter.split(features, target))
    scores: list[dict[str, float]] = []
    started = time.perf_counter()
    for fit_rows, test_rows in splits:
        if not budget.another_fold(config.evaluation, len(scores), time.perf_counter() - started):
            break
        estimator = ProjectEstimator(config, schema).fit(features.iloc[fit_rows], target.iloc[fit_rows])
        scores.append(score(estimator, features.iloc[test_rows], target.iloc[test_rows]))
    spent = time.perf_counter() - started
    reason = plan.reason
    if len(scores) < folds:
        reason += (
            f"; stopped after {len(scores)} of {folds} folds: they took {spent:.0f} s, one more "
            f"would pass the {config.evaluation.cv_seconds:g} s evaluation.cv_seconds"
        )
    return {
        "folds": len(scores),
        "plan": reason,
        "on": f"train + validation ({'a seeded sample of ' if sampled else ''}{len(target)} rows)",
        "decision": "most probable class" if config.is_classification else "predicted value",
        "metrics": {
            name: {
                "mean": round(float(np.nanmean([fold[name] for fold in scores])), 6),
                "std": round(float(np.nanstd([fold[name] for fold in scores])), 6),
                "folds": [round(fold[name], 6) for fold in scores],
            }
            for name in names
        },
    }


def sample(
    config: Config, features: pd.DataFrame, target: pd.Series, limit: int | None = None
) -> tuple[pd.DataFrame, pd.Series, bool]:
    """At most ``limit`` rows (``evaluation.analysis_rows`` by default; seeded, stratified for
    classification)."""
    limit = config.evaluation.analysis_rows if limit is None else limit
    if len(features) <= limit:
        return features, target, False
    stratify = target if config.is_classification else None
    kept_x, _, kept_y, _ = train_test_split(
        features, target, train_size=limit, random_state=config.seed, stratify=stratify
    )
    return kept_x, kept_y, True


# ---------------------------------------------------------------- probabilities
def calibration(
    y_true: pd.Series, proba: np.ndarray, y_pred: np.ndarray, classes: list[Any], positive: Any
) -> dict[str, Any]:
    """Brier score and a reliability curve: of the positive class's probability for two classes,
    of the predicted class's probability (top-label) for more."""
    truth = y_true.to_numpy()
    if len(classes) == 2:
        scores = proba[:, classes.index(positive)]
        hits = np.asarray([value == positive for value in truth])
        brier, of = brier_score_loss(hits, scores), f"{positive}"
    else:
        scores = proba.max(axis=1)
        hits = np.asarray([a == b for a, b in zip(truth, y_pred, strict=True)])
        # float32 networks' softmax rows sum to 1 only within rounding: renormalised, not warned about
        rows = proba / proba.sum(axis=1, keepdims=True)
        brier, of = brier_score_loss(truth, rows, labels=classes), "the predicted class"
    observed, predicted = calibration_curve(hits, scores, n_bins=10, strategy="quantile")
    return {
        "brier": round(float(brier), 6),
        "of": of,
        "curve": {
            "mean_predicted": [round(float(v), 6) for v in predicted],
            "fraction_positive": [round(float(v), 6) for v in observed],
        },
    }


# ---------------------------------------------------------------- explanations and errors
def importances(
    config: Config, predictor: Any, features: pd.DataFrame, target: pd.Series, compute: Callable[..., Any]
) -> list[dict[str, Any]]:
    """Permutation importance of every feature on the test set: how much the target metric drops
    when that feature's values are shuffled (model-agnostic, so every framework gets it). None where
    the rows are not independent records (a forecast's inputs are the series' own past)."""
    if not modality.PERMUTABLE:
        return []
    metric, sign = config.evaluation.metric, 1.0 if config.evaluation.higher_is_better else -1.0

    def score(estimator: ProjectEstimator, x: pd.DataFrame, y: pd.Series) -> float:
        # One pass of the model per shuffle: labels are decided from the probabilities, as the API does.
        if config.is_classification:
            proba = estimator.predict_proba(x)
            predicted = decide(proba, predictor.model.classes, predictor.threshold)
        else:
            proba, predicted = None, estimator.predict(x)
        return sign * float(compute(y, predicted, proba, only=metric).get(metric, np.nan))

    result = permutation_importance(
        ProjectEstimator.fitted(predictor),
        features,
        target,
        scoring=score,
        n_repeats=config.evaluation.permutation_repeats,
        random_state=config.seed,
        max_samples=min(len(features), config.evaluation.analysis_rows),
    )
    means, spreads = result.importances_mean, result.importances_std
    rows = [
        {"feature": name, "mean": round(float(mean), 6), "std": round(float(std), 6)}
        for name, mean, std in zip(features.columns, means, spreads, strict=True)
    ]
    return sorted(rows, key=lambda row: -row["mean"])
