"""Stage 1 — acquire, validate, clean and split the data.

Produces ``data/processed/{train,validation,test}.parquet``, the feature ``schema.json`` that the
model, the API and the drift monitor all share, and a ``manifest.json`` of row counts, hashes and a
data-quality report that ties every trained model to the exact data it saw.

Real files are messy, so nothing happens silently: the user's column names are the contract (never
renamed), rows without a target are dropped and counted, duplicate rows are kept (and counted, with
the ones that land in both train and test reported as leakage), identifier-like columns are left out
of the features and named. Whatever makes the data unusable stops the stage with a message that
names the file and column, before anything is written.
"""

from __future__ import annotations

import hashlib
import math
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from charset_normalizer import from_bytes
from pydantic import BaseModel
from sklearn import datasets
from sklearn.model_selection import train_test_split

from . import artifacts
from .config import Config
from .sources import DataValidationError, download

SPLITS = ("train", "validation", "test")
# A text column with more distinct values than this share of its rows names things (people, ids):
# one-hot encoding it learns nothing, and its drift is noise.
IDENTIFIER_SHARE = 0.5
IDENTIFIER_MIN_VALUES = 10
# A numeric classification target with more distinct values than this is probably a quantity.
MAX_NUMERIC_CLASSES = 30
SHOWN = 8  # values or columns quoted in a message, at most


class Feature(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"]
    categories: list[str] | None = None


class Schema(BaseModel):
    """The contract between the data and everything downstream of it (the file's own column names)."""

    task: Literal["classification", "regression"]
    target: str
    features: list[Feature]
    classes: list[Any] | None = None
    example: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]


def _quote(values: Any, limit: int = SHOWN) -> str:
    values = [repr(value) for value in values]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


# ---------------------------------------------------------------- read (every stage reads files here)
def detect_encoding(path: Path, configured: str | None) -> str:
    """The text encoding of a CSV: the configured one, else the first common one that decodes it.

    UTF-8 (with or without a BOM), UTF-16 with a BOM, then Windows-1252 (what spreadsheet programs
    write in Western Europe and the Americas); only when none decodes does charset-normalizer guess.
    The encoding used is reported in the output, the manifest and the model card, so a wrong guess is
    visible; ``data.encoding`` pins the right one.
    """
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return configured or "utf-16"
    if not raw.strip():
        raise DataValidationError(f"{path} is empty")
    if b"\x00" in raw[:65536]:
        raise DataValidationError(f"{path} looks like a binary file, not a CSV")
    if configured:
        return configured
    for encoding in ("utf-8", "cp1252"):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return "utf-8-sig" if encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf") else encoding
    best = from_bytes(raw).best()
    if best is None:
        raise DataValidationError(
            f"{path} is not text in any common encoding; set data.encoding in the config"
        )
    return str(best.encoding)


def _check_header(path: Path, encoding: str, columns: list[str]) -> None:
    """Refuse headers that name two columns alike: pandas would rename one of them silently."""
    header = pd.read_csv(path, header=None, nrows=1, encoding=encoding, dtype=str).iloc[0].tolist()
    names = [str(name) for name in header if isinstance(name, str)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataValidationError(
            f"{path}: column names used more than once: {_quote(repeated)}; rename them in the file"
        )
    if len(header) != len(columns):
        raise DataValidationError(f"{path}: the header has {len(header)} names for {len(columns)} columns")


def read_table(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """A CSV or parquet file with its own column names, and the encoding it was read with."""
    if not path.is_file():
        raise DataValidationError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path), "parquet"
        except (OSError, ValueError) as error:
            raise DataValidationError(f"{path} cannot be read as parquet ({error})") from None
    used = detect_encoding(path, encoding)
    try:
        frame = pd.read_csv(path, encoding=used, encoding_errors="strict", low_memory=False)
    except UnicodeDecodeError as error:
        raise DataValidationError(f"{path} is not valid {used} ({error.reason}); set data.encoding") from None
    except LookupError:
        raise DataValidationError(f"data.encoding {used!r} is not an encoding Python knows") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataValidationError(f"{path} cannot be parsed as CSV: {str(error).strip()}") from None
    _check_header(path, used, [str(column) for column in frame.columns])
    return frame, used


# ---------------------------------------------------------------- acquire
def _load_bundled(name: str) -> pd.DataFrame:
    """scikit-learn's bundled data sets ship inside the package: no network needed."""
    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": lambda **kw: datasets.load_diabetes(**kw, scaled=False),
        "wine": datasets.load_wine,
    }
    if name not in loaders:
        raise DataValidationError(f"unknown bundled data set {name!r} ({', '.join(loaders)})")
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame
    if name == "diabetes":
        frame["sex"] = frame["sex"].map({1.0: "group_1", 2.0: "group_2"})
    else:
        frame["target"] = [bunch.target_names[code] for code in bunch.target]
    return frame


def acquire(config: Config) -> tuple[pd.DataFrame, str]:
    """Read the configured source, keeping a raw copy under ``data/raw``; also the encoding used."""
    source = config.data.source
    if source.startswith("sklearn:"):
        name = source.removeprefix("sklearn:")
        frame = _load_bundled(name)
        artifacts.write_text(config.raw_dir / f"{name}.csv", frame.to_csv(index=False))
        return frame, "bundled"
    scheme = urllib.parse.urlparse(source).scheme
    if scheme in {"http", "https", "file"}:
        name = Path(urllib.parse.urlparse(source).path).name or "download.csv"
        path = download(source, config.raw_dir / name, config.data.sha256)
    else:
        path = config.resolve(source)
        if not path.is_file():
            raise DataValidationError(f"data source not found: {path}")
    return read_table(path, config.data.encoding)


# ---------------------------------------------------------------- validate
def _missing_column(name: str, role: str, columns: list[str]) -> str:
    alike = [column for column in columns if column.casefold() == name.casefold()]
    hint = f"; did you mean {_quote(alike)}?" if alike else f" (columns: {_quote(columns, 20)})"
    return f"{role} {name!r} is not a column of the data{hint}"


def check_columns(frame: pd.DataFrame, config: Config) -> None:
    """Every column the config names exists, and the roles do not collide (before any work)."""
    columns = [str(column) for column in frame.columns]
    target, slice_column = config.data.target, config.evaluation.slice_column
    problems = [
        _missing_column(name, role, columns)
        for role, names in (
            ("data.target", [target]),
            ("evaluation.slice_column", [slice_column] if slice_column else []),
            ("data.drop_columns entry", config.data.drop_columns),
            ("data.keep_columns entry", config.data.keep_columns),
        )
        for name in names
        if name not in columns
    ]
    if len(frame) < config.data.min_rows:
        problems.append(f"{len(frame)} rows, need at least {config.data.min_rows}")
    if slice_column and slice_column.casefold() == target.casefold():
        problems.append(f"evaluation.slice_column {slice_column!r} is the target {target!r}")
    if slice_column in config.data.drop_columns:
        problems.append(f"evaluation.slice_column {slice_column!r} is listed in data.drop_columns")
    if problems:
        raise DataValidationError("data validation failed:\n  - " + "\n  - ".join(problems))


def check_target(frame: pd.DataFrame, config: Config) -> None:
    """The target can be learned and split: enough rows, two classes or more, each big enough."""
    target, problems = config.data.target, []
    labels = frame[target]
    if len(frame) < config.data.min_rows:
        problems.append(f"{len(frame)} rows with a target, need at least {config.data.min_rows}")
    if labels.empty:
        problems.append(f"target column {target!r} has no values")
    elif config.is_classification:
        problems += _class_problems(labels, config)
    elif not pd.api.types.is_numeric_dtype(labels):
        sample = _quote(labels.drop_duplicates().head(3).tolist())
        problems.append(
            f"regression target {target!r} is not numeric (e.g. {sample}); "
            "set task: classification if these are classes"
        )
    if problems:
        raise DataValidationError("data validation failed:\n  - " + "\n  - ".join(problems))


def _class_problems(labels: pd.Series, config: Config) -> list[str]:
    target, counts = config.data.target, labels.value_counts()
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    if numeric and (len(counts) > MAX_NUMERIC_CLASSES or (labels != labels.round()).any()):
        return [
            f"target column {target!r} has {len(counts)} distinct numeric values (e.g. "
            f"{_quote(counts.index[:3].tolist())}): this looks like a regression target; "
            "set task: regression, or bin it into classes"
        ]
    if len(counts) < 2:
        return [
            f"target column {target!r} has one class ({counts.index[0]!r}: {counts.iloc[0]} rows); "
            "classification needs at least two"
        ]
    # Stratified splitting puts a share of every class in each split: each must get one row or more.
    smallest_share = min(config.data.test_size, config.data.validation_size)
    need = max(3, math.ceil(round(1 / smallest_share, 9)))
    small = counts[counts < need]
    if small.empty:
        return []
    listed = ", ".join(f"{label!r}: {count}" for label, count in small.head(SHOWN).items())
    return [
        f"target column {target!r}: classes with fewer than {need} rows, too few to appear in "
        f"train, validation and test ({listed}{' ...' if len(small) > SHOWN else ''}); "
        "merge or drop them"
    ]


# ---------------------------------------------------------------- clean
def identifier_columns(frame: pd.DataFrame, config: Config) -> list[str]:
    """Near-unique text columns (names, ids): flagged and left out unless data.keep_columns keeps them."""
    protected = {config.data.target, config.evaluation.slice_column, *config.data.keep_columns}
    found = []
    for column in frame.columns:
        values = frame[column].dropna()
        if column in protected or pd.api.types.is_numeric_dtype(values) or values.empty:
            continue
        distinct = values.nunique()
        if distinct >= IDENTIFIER_MIN_VALUES and distinct > IDENTIFIER_SHARE * len(values):
            found.append(str(column))
    return found


def clean(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop what the config and the data say to drop; return the table and what was done, counted."""
    target = config.data.target
    quality: dict[str, Any] = {"rows_read": len(frame)}
    unnamed = [str(c) for c in frame.columns if str(c).startswith("Unnamed: ")]
    if unnamed:
        quality["unnamed_columns"] = unnamed
    empty = [str(c) for c in frame.columns if c != target and frame[c].isna().all()]
    identifiers = identifier_columns(frame.drop(columns=empty), config)
    quality["columns_left_out"] = {
        **{name: "listed in data.drop_columns" for name in config.data.drop_columns},
        **{name: "no values" for name in empty},
        **{name: "identifier-like: near-unique text; data.keep_columns keeps it" for name in identifiers},
    }
    frame = frame.drop(columns=list(quality["columns_left_out"]))
    without_target = frame[target].isna()
    quality["rows_without_target"] = {"count": int(without_target.sum()), "action": "dropped"}
    frame = frame[~without_target]
    duplicated = frame.duplicated()
    quality["duplicate_rows"] = {
        "count": int(duplicated.sum()),
        "action": "dropped (data.drop_duplicates)" if config.data.drop_duplicates else "kept",
    }
    if config.data.drop_duplicates:
        frame = frame[~duplicated]
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if column != target and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("string").astype(object).where(frame[column].notna(), None)
        elif pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype(str)
    missing = frame.drop(columns=target).isna().sum()
    quality["missing_values"] = {str(column): int(count) for column, count in missing.items() if count}
    return frame, quality


# ---------------------------------------------------------------- schema
def infer_schema(train: pd.DataFrame, config: Config) -> Schema:
    target = config.data.target
    features = []
    for column in train.columns.drop(target):
        if pd.api.types.is_numeric_dtype(train[column]):
            features.append(Feature(name=str(column), kind="numeric"))
        else:
            categories = sorted(str(value) for value in train[column].dropna().unique())
            features.append(Feature(name=str(column), kind="categorical", categories=categories))
    if not features:
        raise DataValidationError("no feature columns left besides the target")
    classes = sorted(artifacts.plain(v) for v in train[target].unique()) if config.is_classification else None
    return Schema(
        task=config.task,
        target=target,
        features=features,
        classes=classes,
        example=typical_record(train, features),
    )


def typical_record(train: pd.DataFrame, features: list[Feature]) -> dict[str, Any]:
    """A record of medians and most frequent values: a valid example that is nobody's real row."""
    example: dict[str, Any] = {}
    for feature in features:
        values = train[feature.name].dropna()
        if values.empty:
            example[feature.name] = None
        elif feature.kind == "numeric":
            median = float(values.median())
            example[feature.name] = round(median, 6)
        else:
            example[feature.name] = str(values.astype(str).mode().iloc[0])
    return example


# ---------------------------------------------------------------- split and write
def split(frame: pd.DataFrame, config: Config) -> dict[str, pd.DataFrame]:
    """Train/validation/test with a fixed seed, stratified on the label for classification."""
    target = config.data.target
    stratify = frame[target] if config.is_classification else None
    rest, test = train_test_split(
        frame, test_size=config.data.test_size, random_state=config.seed, stratify=stratify
    )
    stratify = rest[target] if config.is_classification else None
    share = config.data.validation_size / (1 - config.data.test_size)
    train, validation = train_test_split(rest, test_size=share, random_state=config.seed, stratify=stratify)
    return {"train": train, "validation": validation, "test": test}


def leakage(splits: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows of validation and test that also stand, identical, in train: scored as if unseen."""
    seen = set(pd.util.hash_pandas_object(splits["train"], index=False))
    return {
        f"{name}_rows_also_in_train": int(
            pd.util.hash_pandas_object(splits[name], index=False).isin(seen).sum()
        )
        for name in ("validation", "test")
    }


def write(
    splits: dict[str, pd.DataFrame], schema: Schema, config: Config, quality: dict[str, Any]
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
        "missing_values": quality["missing_values"],
        "quality": quality,
        "files": files,
        "data_hash": hashlib.sha256("".join(sorted(files.values())).encode()).hexdigest(),
    }
    artifacts.write_json(config.processed_dir / "manifest.json", manifest)
    return manifest


def run(config: Config) -> dict[str, Any]:
    """The whole data stage; returns the manifest. Every check runs before the first file is written."""
    raw, encoding = acquire(config)
    raw.columns = [str(column) for column in raw.columns]
    check_columns(raw, config)
    frame, quality = clean(raw, config)
    quality["encoding"] = encoding
    check_target(frame, config)
    splits = split(frame, config)
    quality["leakage"] = leakage(splits)
    schema = infer_schema(splits["train"], config)
    return write(splits, schema, config, quality)


def quality_lines(quality: dict[str, Any]) -> list[str]:
    """What the stage did, counted, as Markdown list items: the model card's and the site's section
    (none for a manifest written before the stage counted)."""
    if not quality:
        return []
    lines = [
        f"Rows read: {quality['rows_read']}"
        + (f" (read as {quality['encoding']})" if quality.get("encoding") else ""),
        "Rows without a target: {count} ({action})".format(**quality["rows_without_target"]),
        f"Exact duplicate rows: {quality['duplicate_rows']['count']} ({quality['duplicate_rows']['action']})",
    ]
    leakage = quality.get("leakage")
    if leakage:
        lines.append(
            f"Leakage: {leakage['test_rows_also_in_train']} test and "
            f"{leakage['validation_rows_also_in_train']} validation rows also stand, identical, in train"
        )
    missing = ", ".join(f"`{name}` {count}" for name, count in quality["missing_values"].items())
    lines.append(f"Missing feature values (imputed in the model pipeline): {missing or 'none'}")
    left_out = ", ".join(f"`{name}` ({why})" for name, why in quality["columns_left_out"].items())
    lines.append(f"Columns left out of the features: {left_out or 'none'}")
    if quality.get("unnamed_columns"):
        lines.append(f"Columns without a header (named by pandas): {', '.join(quality['unnamed_columns'])}")
    return lines


def summary(manifest: dict[str, Any]) -> list[tuple[bool, str]]:
    """What the stage did, as console lines: (needs the user's attention, text)."""
    rows, quality = manifest["rows"], manifest["quality"]
    lines = [
        (False, f"rows: train {rows['train']}, validation {rows['validation']}, test {rows['test']}"),
        (
            False,
            f"read {quality['rows_read']} rows ({quality['encoding']}); "
            f"{quality['rows_without_target']['count']} without a target: dropped; "
            f"{quality['duplicate_rows']['count']} exact duplicates: {quality['duplicate_rows']['action']}",
        ),
    ]
    leaked = quality["leakage"]
    if any(leaked.values()):
        lines.append(
            (
                True,
                f"leakage: {leaked['test_rows_also_in_train']} test and "
                f"{leaked['validation_rows_also_in_train']} validation rows also stand in train",
            )
        )
    if quality["missing_values"]:
        lines.append(
            (False, f"missing feature values (imputed in the model pipeline): {quality['missing_values']}")
        )
    lines += [
        (False, f"left out of the features: {name!r} ({why})")
        for name, why in quality["columns_left_out"].items()
    ]
    return lines


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
