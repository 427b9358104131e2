"""What the data stage hands on, for every modality: the splits as parquet, ``schema.json`` and
``manifest.json``, written once and read back by every later stage.

The modality's ``data`` module decides what the splits hold, builds its schema and counts what its
checks found (``quality``); this module splits independent rows (``split``: seeded, stratified for
classes; a series splits by time in its own module) and writes them the same way everywhere: each
file atomically, then the manifest that fingerprints them (a SHA-256 per file and one over all of them, the
``data_hash`` every model's metadata records), so a model always names the exact data it saw.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sklearn.model_selection import train_test_split

from . import artifacts
from .config import Config

SCHEMA_FILE = "schema.json"
MANIFEST_FILE = "manifest.json"


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


def write(
    config: Config,
    splits: dict[str, pd.DataFrame],
    schema: BaseModel,
    quality: dict[str, Any],
    **counts: Any,
) -> dict[str, Any]:
    """Write the splits, the schema and the manifest; ``counts`` are the modality's own figures
    (per class, words per text, missing values), recorded beside the row counts."""
    files = {}
    for name, frame in splits.items():
        path = config.processed_dir / f"{name}.parquet"
        with artifacts.atomic_path(path) as tmp:
            frame.reset_index(drop=True).to_parquet(tmp, index=False)
        files[path.name] = artifacts.sha256_file(path)
    artifacts.write_json(config.processed_dir / SCHEMA_FILE, schema.model_dump(mode="json"))
    manifest = {
        "source": config.data.source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": {name: len(frame) for name, frame in splits.items()},
        **counts,
        "quality": quality,
        "files": files,
        "data_hash": hashlib.sha256("".join(sorted(files.values())).encode()).hexdigest(),
    }
    artifacts.write_json(config.processed_dir / MANIFEST_FILE, manifest)
    return manifest


def per_class(splits: dict[str, pd.DataFrame], target: str) -> dict[str, dict[str, int]]:
    """Rows per class in each split, classes in sorted order."""
    return {
        name: {str(k): int(v) for k, v in frame[target].value_counts().sort_index().items()}
        for name, frame in splits.items()
    }


def load_split(config: Config, name: str) -> pd.DataFrame:
    path = config.processed_dir / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the data stage first (make data)")
    return pd.read_parquet(path)


def read_schema(config: Config) -> dict[str, Any]:
    """The schema as written, for the modality's ``Schema`` to validate."""
    path = config.processed_dir / SCHEMA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the data stage first (make data)")
    return dict(artifacts.read_json(path))


def load_manifest(config: Config) -> dict[str, Any]:
    return dict(artifacts.read_json(config.processed_dir / MANIFEST_FILE))
