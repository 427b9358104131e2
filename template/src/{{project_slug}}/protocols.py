"""What a modality's ``features`` module gives the shared stages: one Protocol, checked by mypy.

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
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .config import Config
from .schema import Schema

Split = tuple[np.ndarray, np.ndarray]  # (rows to fit on, rows to score), as positions


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
