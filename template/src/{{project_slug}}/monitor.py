"""Stage 6 — watch for drift between the training data and what the model sees now.

Each feature gets a Population Stability Index (PSI) against the training reference, plus a
Kolmogorov-Smirnov test for numeric features; the model's predictions get the same treatment
against its predictions on the validation split (a shift there is what users notice). When the
share of drifted features crosses the configured level, or the predictions shift, the stage says
so with exit code 3: time to retrain.

Drift is a claim about populations, so it needs evidence: a feature counts as drifted only when its
PSI passes the threshold *and* the two-sample test (KS for numbers, chi-square for categories) is
significant, on at least ``monitor.min_rows`` current rows. Every row of the report carries its
sample sizes; a handful of rows is reported, never called drift. Categories the model never saw are
reported as a share of the current rows.

What it watches: the predictions the API logged under ``data/predictions/`` once they hold
``monitor.min_logged_rows`` rows, else ``monitor.current`` (or any CSV/parquet given to it).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from . import artifacts, data, features, processed
from .config import Config
from .drift import feature_drift, prediction_drift
from .features import split_xy, to_frame
from .protocols import ModalityFeatures
from .train import TrainedModel, load_trained

modality: ModalityFeatures = features  # this modality's module, held to the contract by mypy

EXIT_DRIFT = 3
PREDICTION = "__prediction__"  # column of logged outputs; cannot clash with a normalised feature name


def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, schema: data.Schema, config: Config
) -> dict[str, Any]:
    if current.empty:
        raise ValueError("current data has no rows")
    threshold = config.monitor.psi_threshold
    # What is compared: the features themselves, or what stands for them (an image's statistics).
    (reference, watched), (current, _) = (
        features.watched(reference, schema),
        features.watched(current, schema),
    )
    rows = [feature_drift(f, reference[f.name], current[f.name], config) for f in watched]
    share = sum(row["drifted"] for row in rows) / len(rows)
    return {
        "reference_rows": len(reference),
        "current_rows": len(current),
        "enough_rows": len(current) >= config.monitor.min_rows,
        "min_rows": config.monitor.min_rows,
        "p_value": config.monitor.p_value,
        "psi_threshold": threshold,
        "drift_share": round(share, 4),
        "drift_share_threshold": config.monitor.drift_share,
        "retrain": share >= config.monitor.drift_share,
        "features": sorted(rows, key=lambda row: -row["psi"]),
    }


def _refused_lines(refused: dict[str, Any] | None) -> list[str]:
    if refused is None:
        return []
    verdict = (
        "**above the alert level: check what clients send.**"
        if refused["alert"]
        else "below the alert level."
    )
    return [
        f"Refused requests in the prediction log: {refused['refused']} against {refused['predicted']} "
        f"predicted rows ({refused['share']:.1%}; alert above {refused['max_share']:.0%}), {verdict}",
        "",
    ]


def _realised_line(realised: dict[str, Any] | None) -> str:
    """The forecasts' realised error against the backtest's, in words."""
    if realised is None:
        return "Forecast errors: not compared (no model is served)."
    verdict = (
        f" — **more than {realised['max_ratio']:g} times what the backtest measured: retrain.**"
        if realised["drifted"]
        else ("." if realised["enough_rows"] else " (too few values to call it drift).")
    )
    return (
        f"Forecast errors on {realised['values']} realised values: MAE {realised['realised_mae']:.4g} "
        f"against {realised['expected_mae']:.4g} expected from the backtest at the same steps ahead{verdict}"
    )


def _markdown(report: dict[str, Any], source: str) -> str:
    verdict = "**Drift detected — retrain recommended.**" if report["retrain"] else "No significant drift."
    shift = report.get("prediction")
    prediction_line = (
        "Predictions: not compared (no trained model)."
        if shift is None
        else f"Predictions against the validation split: PSI {shift['psi']:.4f}"
        + (" — **shifted**." if shift["drifted"] else ", no significant shift.")
    )
    if "realised_error" in report:
        prediction_line = _realised_line(report["realised_error"])
    lines = [
        "# Drift report",
        "",
        f"Current data: `{source}` ({report['current_rows']} rows) against the training reference "
        f"({report['reference_rows']} rows).",
        "",
        f"{verdict} {report['drift_share']:.0%} of features drifted "
        f"(PSI > {report['psi_threshold']} and p < {report['p_value']}; "
        f"retrain at {report['drift_share_threshold']:.0%}).",
        "",
        *(
            []
            if report["enough_rows"]
            else [
                f"Only {report['current_rows']} current rows (fewer than {report['min_rows']}): "
                "the statistics are shown, but nothing is called drift on so few rows.",
                "",
            ]
        ),
        prediction_line,
        "",
        *_refused_lines(report.get("refused_requests")),
        "| Feature | Kind | Rows (ref / current) | PSI | Test | p-value | Unseen categories | Drifted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["features"]:
        pvalue = "—" if row.get("pvalue") is None else f"{row['pvalue']:.4f}"
        unseen = "—" if row.get("unseen_share") is None else f"{row['unseen_share']:.1%}"
        drifted = "yes" if row["drifted"] else "no"
        lines.append(
            f"| {row['feature']} | {row['kind']} | {row['reference_rows']} / {row['current_rows']} | "
            f"{row['psi']:.4f} | {row['test']} | {pvalue} | {unseen} | {drifted} |"
        )
    lines += ["", "![PSI per feature](figures/drift.png)", ""]
    return "\n".join(lines)


def _plot(report: dict[str, Any], path: Path) -> None:
    rows = report["features"][:20]
    if report.get("prediction"):
        rows = [*rows, {**report["prediction"], "feature": "(prediction)"}]
    figure, axis = plt.subplots(figsize=(6, 0.6 + 0.3 * len(rows)))
    axis.barh(
        [r["feature"] for r in rows][::-1],
        [r["psi"] for r in rows][::-1],
        color=["tab:red" if r["drifted"] else "tab:blue" for r in rows][::-1],
    )
    axis.axvline(report["psi_threshold"], color="black", linestyle="--", linewidth=1)
    axis.set_xlabel("PSI against training data")
    axis.set_title("Feature drift")
    with artifacts.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


@dataclass
class DriftResult:
    report: dict[str, Any]

    @property
    def retrain(self) -> bool:
        return bool(self.report["retrain"])

    @property
    def exit_code(self) -> int:
        return EXIT_DRIFT if self.retrain else 0


def log_files(config: Config) -> list[Path]:
    """The prediction log, oldest first: rotated ``predictions.<n>.jsonl`` (higher n is older), then
    the live file."""
    folder = config.predictions_dir

    def age(path: Path) -> int:
        middle = path.name.removeprefix("predictions.").removesuffix("jsonl").strip(".")
        return int(middle) if middle.isdigit() else 0

    return sorted(folder.glob("predictions*.jsonl"), key=age, reverse=True)


def refused_share(config: Config) -> dict[str, Any] | None:
    """Requests the API refused for their content (unreadable images, invalid records) against the
    rows it predicted, over the whole log; None without a log. A rising share means clients send
    what the model cannot read: retraining does not fix that, so it is an alert, not drift."""
    refused = predicted = 0
    for path in log_files(config):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if isinstance(entry, dict) and "refused" in entry:
                    refused += 1
                elif isinstance(entry, dict) and "inputs" in entry:
                    predicted += 1
    if refused + predicted == 0:
        return None
    share = refused / (refused + predicted)
    limit = config.monitor.max_refused_share
    return {
        "refused": refused,
        "predicted": predicted,
        "share": round(share, 6),
        "max_share": limit,
        "alert": refused + predicted >= config.monitor.min_rows and share > limit,
    }


def load_logged(config: Config) -> pd.DataFrame | None:
    """The newest ``monitor.max_logged_rows`` records the API logged, with a ``prediction`` column;
    None below ``min_logged_rows``. Streamed line by line, so memory stays bounded however large the
    log. A line that does not parse (a write cut short by a crash) is skipped, not fatal.
    """
    rows: deque[dict[str, Any]] = deque(maxlen=config.monitor.max_logged_rows)
    for path in log_files(config):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    rows.append({**entry["inputs"], PREDICTION: entry["prediction"]})
                except (ValueError, KeyError, TypeError):
                    continue
    if len(rows) < config.monitor.min_logged_rows:
        return None
    return pd.DataFrame.from_records(list(rows))


def _served(config: Config, check: Callable[[TrainedModel], dict[str, Any]]) -> dict[str, Any] | None:
    """``check`` of the served model; None when no model is served yet."""
    try:
        trained = load_trained(config)
    except FileNotFoundError:
        return None
    return check(trained)


def _prediction_shift(config: Config, current: pd.DataFrame, schema: data.Schema) -> dict[str, Any] | None:
    """Predictions on ``current`` (logged ones when present) against those on the validation split."""
    return _served(config, lambda trained: _output_shift(config, trained, current, schema))


def _output_shift(
    config: Config, trained: TrainedModel, current: pd.DataFrame, schema: data.Schema
) -> dict[str, Any]:
    features, _ = split_xy(processed.load_split(config, "validation"), schema)
    reference = pd.Series(trained.predict(features))
    if PREDICTION in current.columns:
        predicted = current[PREDICTION]
    else:
        predicted = pd.Series(trained.predict(to_frame(current[schema.names], schema)))
    return prediction_drift(reference, predicted, config.is_classification, config)


def monitor(config: Config, current_path: Path | None = None) -> DriftResult:
    """Compare ``current_path`` (default: the logged predictions, else ``monitor.current``) with training."""
    # The log holds inputs to compare, unless the modality logs requests (a forecast's) instead.
    reads_log = current_path is None and modality.LOGGED_INPUTS
    logged = load_logged(config) if reads_log else None
    if logged is not None:
        source, current = str(config.predictions_dir), logged
    else:
        path = current_path or config.resolve(config.monitor.current)
        if not path.is_file():
            raise FileNotFoundError(f"no data to monitor at {path}")
        source, current = str(path), data.read_current(path, config)
    schema = data.load_schema(config)
    report = detect_drift(processed.load_split(config, "train"), current, schema, config)
    realised = modality.realised_error
    if realised is None:
        report["prediction"] = _prediction_shift(config, current, schema)
    else:  # forecasting: what happened, against what the served model forecast for it
        report["prediction"] = None
        report["realised_error"] = _served(config, lambda trained: realised(config, trained, current, schema))
    if any((report.get(check) or {}).get("drifted") for check in ("prediction", "realised_error")):
        report["retrain"] = True
    report["source"] = source
    report["refused_requests"] = refused_share(config)
    artifacts.write_json(config.reports_dir / "drift.json", report)
    artifacts.write_text(config.reports_dir / "drift.md", _markdown(report, source))
    _plot(report, config.figures_dir / "drift.png")
    return DriftResult(report)
