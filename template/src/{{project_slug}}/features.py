"""Stage 2 — the feature transform, built from the schema.

The preprocessing is fitted inside the model pipeline, never separately, so training, evaluation and
serving apply exactly the same transform and the test data never leaks into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .data import Schema


def build_preprocessor(schema: Schema) -> ColumnTransformer:
    """Impute and scale numeric columns; impute and one-hot encode categorical ones."""
    numeric = [f.name for f in schema.features if f.kind == "numeric"]
    categorical = [f.name for f in schema.features if f.kind == "categorical"]
    categories = [f.categories or [] for f in schema.features if f.kind == "categorical"]
    numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        verbose_feature_names_out=False,
    )


def split_xy(frame: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, pd.Series]:
    """Features in schema order, and the target."""
    return to_frame(frame[schema.names], schema), frame[schema.target]


def to_frame(records: pd.DataFrame | Iterable[Mapping[str, Any]], schema: Schema) -> pd.DataFrame:
    """Records (a DataFrame or dicts from the API) as a frame with the dtypes the pipeline expects."""
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(list(records))
    frame = frame.reindex(columns=schema.names)
    for feature in schema.features:
        column = frame[feature.name]
        if feature.kind == "numeric":
            frame[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            frame[feature.name] = (
                column.astype(object)
                .where(column.notna(), np.nan)
                .map(lambda value: value if isinstance(value, float) else str(value))
            )
    return frame
