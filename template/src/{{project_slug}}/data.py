"""Stage 1 — acquire, validate, clean and split the data.

Produces ``data/processed/{train,validation,test}.parquet``, the feature ``schema.json`` that the
model, the API and the drift monitor all share, and a ``manifest.json`` of row counts and hashes
that ties every trained model to the exact data it saw.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn import datasets
from sklearn.model_selection import train_test_split

from . import artifacts
from .config import Config

SPLITS = ("train", "validation", "test")
MIN_ROWS_PER_CLASS = 3


class DataValidationError(ValueError):
    """The data cannot be used as it is; the message lists every problem found."""


class Feature(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"]
    categories: list[str] | None = None


class Schema(BaseModel):
    """The contract between the data and everything downstream of it."""

    task: Literal["classification", "regression"]
    target: str
    features: list[Feature]
    classes: list[Any] | None = None
    example: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]


def normalise_name(name: object) -> str:
    """Column names become snake_case identifiers, so they are valid JSON keys and Python names."""
    text = re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()
    return f"c_{text}" if not text or text[0].isdigit() else text


# ---------------------------------------------------------------- acquire
def _load_bundled(name: str) -> pd.DataFrame:
    """scikit-learn's bundled data sets ship inside the package: no network needed."""
    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        frame = bunch.frame
        frame["target"] = np.asarray(bunch.target_names)[bunch.target]
        return frame
    if name == "diabetes":
        bunch = datasets.load_diabetes(as_frame=True, scaled=False)
        frame = bunch.frame
        frame["sex"] = frame["sex"].map({1.0: "group_1", 2.0: "group_2"})
        return frame
    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        frame = bunch.frame
        frame["target"] = np.asarray(bunch.target_names)[bunch.target]
        return frame
    raise DataValidationError(f"unknown bundled data set {name!r} (breast_cancer, diabetes, wine)")


def download(url: str, destination: Path, sha256: str | None) -> Path:
    """Fetch ``url`` to ``destination``; refuse it when it does not match the pinned SHA-256."""
    with urllib.request.urlopen(url, timeout=60) as response, artifacts.atomic_path(destination) as tmp:  # noqa: S310
        with tmp.open("wb") as handle:
            shutil.copyfileobj(response, handle)
        actual = artifacts.sha256_file(tmp)
        if sha256 and actual.lower() != sha256.lower():
            raise DataValidationError(f"sha256 mismatch for {url}: expected {sha256}, got {actual}")
    if not sha256:
        print(f"warning: {url} is not pinned; add `sha256: {actual}` to data: in the config")
    return destination


def acquire(config: Config) -> pd.DataFrame:
    """Read the configured source into a DataFrame, keeping a raw copy under ``data/raw``."""
    source = config.data.source
    if source.startswith("sklearn:"):
        frame = _load_bundled(source.removeprefix("sklearn:"))
        artifacts.write_text(
            config.raw_dir / f"{source.removeprefix('sklearn:')}.csv", frame.to_csv(index=False)
        )
        return frame
    scheme = urllib.parse.urlparse(source).scheme
    if scheme in {"http", "https", "file"}:
        name = Path(urllib.parse.urlparse(source).path).name or "download.csv"
        path = download(source, config.raw_dir / name, config.data.sha256)
    else:
        path = config.resolve(source)
        if not path.is_file():
            raise DataValidationError(f"data source not found: {path}")
    return pd.read_csv(path)


# ---------------------------------------------------------------- validate and clean
def validate(frame: pd.DataFrame, config: Config) -> dict[str, int]:
    """Check the raw table against what the pipeline needs; return missing-value counts per column."""
    target = normalise_name(config.data.target)
    problems: list[str] = []
    if target not in frame.columns:
        problems.append(
            f"target column {config.data.target!r} not found (columns: {', '.join(frame.columns)})"
        )
    if len(frame) < config.data.min_rows:
        problems.append(f"{len(frame)} rows, need at least {config.data.min_rows}")
    unsupported = [
        str(column)
        for column, dtype in frame.dtypes.items()
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
    ]
    if unsupported:
        problems.append(f"unsupported column types (derive numeric features instead): {unsupported}")
    if target in frame.columns:
        labels = frame[target].dropna()
        if labels.empty:
            problems.append(f"target column {target!r} has no values")
        elif config.is_classification:
            counts = labels.value_counts()
            rare = counts[counts < MIN_ROWS_PER_CLASS]
            if not rare.empty:
                problems.append(f"classes with fewer than {MIN_ROWS_PER_CLASS} rows: {rare.to_dict()}")
        elif not pd.api.types.is_numeric_dtype(labels):
            problems.append(f"regression target {target!r} must be numeric, got {labels.dtype}")
    if problems:
        raise DataValidationError("data validation failed:\n  - " + "\n  - ".join(problems))
    missing = frame.isna().sum()
    return {str(column): int(count) for column, count in missing.items() if count}


def clean(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Normalise names, drop unwanted columns, rows without a target and exact duplicates."""
    frame = frame.rename(columns=normalise_name)
    drop = [normalise_name(column) for column in config.data.drop_columns]
    frame = frame.drop(columns=[column for column in drop if column in frame.columns])
    target = normalise_name(config.data.target)
    frame = frame.dropna(subset=[target]).drop_duplicates().reset_index(drop=True)
    for column in frame.columns:
        if column != target and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("string").astype(object).where(frame[column].notna(), None)
        elif pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype(str)
    return frame


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def infer_schema(train: pd.DataFrame, config: Config) -> Schema:
    target = normalise_name(config.data.target)
    features = []
    for column in train.columns.drop(target):
        if pd.api.types.is_numeric_dtype(train[column]):
            features.append(Feature(name=column, kind="numeric"))
        else:
            categories = sorted(str(value) for value in train[column].dropna().unique())
            features.append(Feature(name=column, kind="categorical", categories=categories))
    if not features:
        raise DataValidationError("no feature columns left besides the target")
    classes = sorted(_json_value(v) for v in train[target].unique()) if config.is_classification else None
    example = {
        str(column): _json_value(value) for column, value in train.drop(columns=target).iloc[0].items()
    }
    return Schema(task=config.task, target=target, features=features, classes=classes, example=example)


# ---------------------------------------------------------------- split and write
def split(frame: pd.DataFrame, config: Config) -> dict[str, pd.DataFrame]:
    """Train/validation/test with a fixed seed, stratified on the label for classification."""
    target = normalise_name(config.data.target)
    stratify = frame[target] if config.is_classification else None
    rest, test = train_test_split(
        frame, test_size=config.data.test_size, random_state=config.seed, stratify=stratify
    )
    stratify = rest[target] if config.is_classification else None
    share = config.data.validation_size / (1 - config.data.test_size)
    train, validation = train_test_split(rest, test_size=share, random_state=config.seed, stratify=stratify)
    return {"train": train, "validation": validation, "test": test}


def write(
    splits: dict[str, pd.DataFrame], schema: Schema, config: Config, missing: dict[str, int]
) -> dict[str, Any]:
    """Write the splits as parquet, then the schema and the manifest that fingerprints them."""
    files = {}
    for name, frame in splits.items():
        path = config.processed_dir / f"{name}.parquet"
        with artifacts.atomic_path(path) as tmp:
            frame.reset_index(drop=True).to_parquet(tmp, index=False)
        files[path.name] = artifacts.sha256_file(path)
    artifacts.write_json(config.processed_dir / "schema.json", schema.model_dump(mode="json"))
    manifest = {
        "source": config.data.source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": {name: len(frame) for name, frame in splits.items()},
        "missing_values": missing,
        "files": files,
        "data_hash": hashlib.sha256("".join(sorted(files.values())).encode()).hexdigest(),
    }
    artifacts.write_json(config.processed_dir / "manifest.json", manifest)
    return manifest


def run(config: Config) -> dict[str, Any]:
    """The whole data stage; returns the manifest."""
    raw = acquire(config).rename(columns=normalise_name)
    missing = validate(raw, config)
    frame = clean(raw, config)
    splits = split(frame, config)
    schema = infer_schema(splits["train"], config)
    return write(splits, schema, config, missing)


# ---------------------------------------------------------------- read back (later stages)
def load_split(config: Config, name: str) -> pd.DataFrame:
    path = config.processed_dir / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the data stage first (make data)")
    return pd.read_parquet(path)


def load_schema(config: Config) -> Schema:
    path = config.processed_dir / "schema.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the data stage first (make data)")
    return Schema.model_validate(artifacts.read_json(path))


def load_manifest(config: Config) -> dict[str, Any]:
    return dict(artifacts.read_json(config.processed_dir / "manifest.json"))


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or parquet file, with normalised column names."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return frame.rename(columns=normalise_name)
