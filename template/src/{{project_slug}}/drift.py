"""The statistics of drift, one column or the predictions at a time: a Population Stability Index
(PSI) against the training reference, with a two-sample test (Kolmogorov-Smirnov for numbers,
chi-square for categories) that must agree before a change counts, on enough rows
(``monitor.min_rows``). ``monitor`` decides what to compare; this module measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .config import Config

SMOOTHING = 0.5  # pseudo-count per bin, so an empty bin does not dominate the index
ROWS_PER_BIN = 20  # fewer rows per bin and PSI measures sampling noise, not drift
MAX_BINS = 10


@dataclass(frozen=True)
class Quantity:
    """Something the monitor compares that is not a feature of the schema: the model's output."""

    name: str
    kind: str
    categories: list[str] | None = None


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population Stability Index of two histograms over the same bins."""
    expected = (reference_counts + SMOOTHING) / (reference_counts.sum() + SMOOTHING * len(reference_counts))
    actual = (current_counts + SMOOTHING) / (current_counts.sum() + SMOOTHING * len(current_counts))
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI over quantile bins of the reference; missing values form a bin of their own.

    The number of bins follows the size of the current sample: PSI's expected value under no drift
    grows with bins/rows, so a fixed 10 bins would flag small samples that have not drifted.
    """
    bins = int(np.clip(len(current) // ROWS_PER_BIN, 2, MAX_BINS))
    quantiles = np.unique(np.quantile(reference.dropna(), np.linspace(0, 1, bins + 1)))
    # Right-closed bins between the inner quantiles. A reference with one or two distinct values
    # (a constant, a 0/1 flag) still gets a cut at its lowest value: with none, a shift away from a
    # constant would land in the same single bin and never count as drift.
    inner = quantiles[1:-1] if len(quantiles) > 2 else quantiles[:1]

    def counts(values: pd.Series) -> np.ndarray:
        found = np.bincount(
            np.searchsorted(inner, values.dropna().to_numpy(dtype=float)), minlength=len(inner) + 1
        )
        return np.append(found, values.isna().sum()).astype(float)

    return psi(counts(reference), counts(current))


def categorical_psi(reference: pd.Series, current: pd.Series) -> float:
    labels = [*sorted(set(reference.dropna().astype(str)) | set(current.dropna().astype(str))), "<missing>"]

    def counts(values: pd.Series) -> np.ndarray:
        named = values.astype(object).where(values.notna(), "<missing>").astype(str)
        return named.value_counts().reindex(labels, fill_value=0).to_numpy(dtype=float)

    return psi(counts(reference), counts(current))


def categorical_pvalue(reference: pd.Series, current: pd.Series) -> float | None:
    """Chi-square test that both samples come from one distribution of categories (missing included)."""
    ref = reference.astype(object).where(reference.notna(), "<missing>").astype(str).value_counts()
    cur = current.astype(object).where(current.notna(), "<missing>").astype(str).value_counts()
    table = pd.concat([ref, cur], axis=1).fillna(0).to_numpy()
    if table.shape[0] < 2:
        return None  # one category on both sides: nothing to test
    return float(stats.chi2_contingency(table).pvalue)


def feature_drift(feature: Any, reference: pd.Series, current: pd.Series, config: Config) -> dict[str, Any]:
    """PSI, the two-sample test's p-value and the sample sizes; drifted only when both agree."""
    monitor_config = config.monitor
    row: dict[str, Any] = {
        "feature": feature.name,
        "kind": feature.kind,
        "reference_rows": len(reference),
        "current_rows": len(current),
    }
    if feature.kind == "numeric":
        row["psi"] = round(numeric_psi(reference.astype(float), current.astype(float)), 6)
        ks = stats.ks_2samp(reference.dropna(), current.dropna()) if current.notna().any() else None
        row["pvalue"] = None if ks is None else round(float(ks.pvalue), 6)
        row["test"] = "KS"
    else:
        row["psi"] = round(categorical_psi(reference, current), 6)
        pvalue = categorical_pvalue(reference, current)
        row["pvalue"] = None if pvalue is None else round(pvalue, 6)
        row["test"] = "chi-square"
        if feature.categories is not None:
            seen = set(feature.categories)
            present = current.dropna().astype(str)
            row["unseen_share"] = round(float((~present.isin(seen)).mean()), 6) if len(present) else 0.0
    enough = len(current) >= monitor_config.min_rows
    significant = row["pvalue"] is not None and row["pvalue"] < monitor_config.p_value
    row["drifted"] = bool(enough and significant and row["psi"] > monitor_config.psi_threshold)
    return row


def prediction_drift(
    reference: pd.Series, current: pd.Series, classification: bool, config: Config
) -> dict[str, Any]:
    """Shift of the model's outputs: labels as categories, regression values as numbers."""
    target = Quantity("prediction", "categorical" if classification else "numeric")
    if classification:
        reference, current = reference.astype(str), current.astype(str)
    row = feature_drift(target, reference, current, config)
    if classification:
        row["reference_share"] = reference.value_counts(normalize=True).round(4).to_dict()
        row["current_share"] = current.value_counts(normalize=True).round(4).to_dict()
    else:
        row["reference_mean"] = round(float(reference.mean()), 6)
        row["current_mean"] = round(float(current.mean()), 6)
    return row
