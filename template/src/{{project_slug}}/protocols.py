"""The contracts the shared stages call by name, checked by mypy: what a modality's ``features``
module gives them (``ModalityFeatures``) and what every framework's model does (``TrainableModel``).

Diagnostics, evaluation, export, monitoring and tuning are the same text for every modality; what a
modality does its own way is read from its ``features`` module under these names. A member set to
None takes the shared way: a seeded stratified holdout, shuffled k-fold splits, the dummy
baselines, a linear model on the features, the prediction shift as the monitor's verdict, no ONNX
graph, no explanation of the inputs. Every modality's module names every member, and each stage
that reads them assigns the module to ``ModalityFeatures``: a misspelt or missing name, or a
function of another shape, fails the type check instead of quietly falling back to the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .config import Config
from .schema import Schema

if TYPE_CHECKING:  # annotations only: the ONNX service reads these contracts and never imports pandas
    import pandas as pd

Split = tuple[np.ndarray, np.ndarray]  # (rows to fit on, rows to score), as positions


@dataclass(frozen=True)
class TestPredictions:
    """The test rows, their truth and what the model said of them: what a modality's own figures read."""

    frame: pd.DataFrame
    truth: pd.Series
    predicted: np.ndarray
    proba: np.ndarray | None
    classes: list[Any]  # the columns of ``proba`` (none without probabilities)


@runtime_checkable
class ModalityFeatures(Protocol):
    """Read-only members, so a module's own narrower types (a one-name tuple) still satisfy them."""

    @property
    def PERMUTABLE(self) -> bool:
        """Shuffling one input column measures that column (not so for a forecast's lags)."""

    @property
    def LOGGED_INPUTS(self) -> bool:
        """The prediction log holds inputs the drift monitor can compare (a forecast logs requests)."""

    @property
    def SLICE_COLUMNS(self) -> tuple[str, ...]:
        """Columns every report slices by, besides ``evaluation.slice_column`` (texts: their length)."""

    @property
    def holdout(self) -> Callable[[Config, pd.DataFrame, pd.Series], list[Any]] | None:
        """(x_fit, x_stop, y_fit, y_stop): the rows kept aside to stop training early on."""

    @property
    def folds(self) -> Callable[[Config, pd.DataFrame, pd.Series, int], list[Split]] | None:
        """Cross-validation and tuning splits (forecasting: a rolling-origin backtest)."""

    @property
    def baselines(self) -> Callable[[Config, Schema], Mapping[str, Any]] | None:
        """Models that ignore the features, by name: the bar any real model must clear."""

    @property
    def linear_reference(self) -> Callable[[Config, Schema], tuple[str, Any]] | None:
        """A simple, strong model on the same inputs, with its name."""

    @property
    def realised_error(self) -> Callable[[Config, Any, pd.DataFrame, Schema], dict[str, Any]] | None:
        """What happened against what the served model predicted for it, for the monitor."""

    @property
    def for_onnx(self) -> Callable[[Any, Schema], tuple[Any, Any]] | None:
        """The fitted preprocessing as an ONNX-convertible pipeline, and the graph's inputs."""

    @property
    def explain(self) -> Callable[..., dict[str, Any]] | None:
        """What only the inputs can show in the report (texts: the n-grams that sway the model)."""

    @property
    def input_figures(self) -> Callable[[TestPredictions, Mapping[str, Any]], list[tuple[str, Any]]]:
        """Figures of the inputs themselves, by file name (images: the most confidently wrong ones)."""


class ModelDefaults:
    """What a model answers for the behaviour it does not have, stated once instead of probed for: no
    scikit-learn pipeline on the raw features (partial dependence reads one), no figures of its own,
    nothing to assess beyond the shared metrics (a forecaster adds its intervals' coverage)."""

    pipeline: Any = None

    def figures(self) -> list[tuple[str, Any]]:
        return []

    def assess(self, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, Any]:
        return {}


@runtime_checkable
class TrainableModel(Protocol):
    """What every model module's ``Model`` gives the shared stages, whatever the framework: train.py
    binds its ``Model`` to this, so mypy checks each framework's model against one contract. A
    network's ``Model`` gets most of it from ``learning.EpochModel`` and its framework's
    ``network.NetworkModel``; what a model does not do, it answers from ``ModelDefaults``."""

    @property
    def device(self) -> str:
        """Where it trains and predicts ("cpu", "cuda", ...)."""

    def fit(self, x_train: pd.DataFrame, y_train: pd.Series, x_val: pd.DataFrame, y_val: pd.Series) -> Any:
        """Train on the training rows; the validation rows may stop it early, never train it."""

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Labels or values, one per row."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in ``classes`` order."""

    @property
    def classes(self) -> list[Any]:
        """The training classes (none for regression and forecasts)."""

    def describe(self) -> dict[str, Any]:
        """Framework, architecture, parameters and device: what the metadata and model card say."""

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn Pipeline on the raw features when the model is one, else None."""

    def figures(self) -> list[tuple[str, Any]]:
        """The model's own figures by file name (a learning curve, feature importance)."""

    def assess(self, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, Any]:
        """What only this model can measure on the test rows, for the report (else nothing)."""


class ModelModule(Protocol):
    """What a framework's model module names beside its ``Model``, for the stages that read it by
    name: its framework, and its half of the ONNX graph (None: no graph of this model yet)."""

    @property
    def FRAMEWORK(self) -> str: ...

    @property
    def onnx_parts(self) -> Callable[[Any, str], tuple[Any, Any, str]] | None: ...


class ServingContract(Protocol):
    """What a modality's ``contract`` module gives the service (``serve``), by name: its route and
    media types, how a request body becomes records (``reader``), what is logged and refused, what
    ``/metadata`` adds, and, for a modality that answers its own way (a forecast), its own
    ``Predictor`` and ``RESPONSE`` (None: records in, labels out, the shared response)."""

    @property
    def ROUTE(self) -> str: ...

    @property
    def MEDIA_TYPES(self) -> frozenset[str]: ...

    @property
    def reader(self) -> Callable[..., Any]: ...

    @property
    def openapi_body(self) -> Callable[[Config], dict[str, Any] | None]: ...

    @property
    def loggable(self) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]: ...

    @property
    def too_many_missing(self) -> Callable[[list[dict[str, Any]], float], list[dict[str, Any]]]: ...

    @property
    def metadata(self) -> Callable[[Any], dict[str, Any]]: ...

    @property
    def Predictor(self) -> Callable[[Any], Any] | None: ...

    @property
    def RESPONSE(self) -> type[Any] | None: ...
