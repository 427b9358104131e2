"""Promotion: which trained model is served, decided one run at a time.

Training leaves each model in its own folder under ``models/candidates/``. Evaluation then asks
``promote`` to serve it: a candidate that misses its gate is never served (it stays a candidate,
with its report, unless ``--force`` overrides the gate by name), and a retraining candidate must
also beat the served model on the same held-out test split. The decision and the swap happen under
the model store's lock, after finishing or rolling back any swap a crash interrupted, so two runs at
once take turns and ``models/model`` always holds a complete bundle (the old one stays as
``models/model.previous``).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import artifacts, data, processed
from .bundle import EVALUATION_FILE
from .config import Config
from .train import TrainedModel, load_trained, score

KEEP_CANDIDATES = 5  # unpromoted candidates kept for inspection, newest first


@dataclass
class Decision:
    promoted: bool
    metric: str
    candidate_score: float
    current_score: float | None
    candidate_version: str
    current_version: str | None
    reason: str
    gate_passed: bool
    forced: bool = False


def candidates(config: Config) -> list[Path]:
    """Complete candidate bundles, oldest first (versions start with the training time)."""
    folder = config.candidates_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and artifacts.is_complete(p))


def newest_candidate(config: Config) -> Path | None:
    """The newest candidate trained after the served model, if any: what evaluation judges next."""
    found = candidates(config)
    if not found:
        return None
    served = config.model_dir / "metadata.json"
    if served.is_file() and artifacts.read_json(served)["model_version"] >= found[-1].name:
        return None
    return found[-1]


def held_out_score(config: Config, trained: TrainedModel) -> float:
    """The target metric of ``trained`` on the current test split."""
    schema = data.load_schema(config)
    positive = trained.metadata.get("positive_class")
    metrics = score(
        trained.model, processed.load_split(config, "test"), schema, config, positive, trained.threshold
    )
    return float(metrics[config.evaluation.metric])


def _current(config: Config) -> tuple[TrainedModel | None, float | None, str]:
    """The served model and its score, or why it cannot be compared (then the candidate wins)."""
    try:
        current = load_trained(config, config.model_dir)
    except FileNotFoundError:
        return None, None, "no model was served yet"
    except ValueError as error:
        return None, None, f"the served model cannot be loaded ({error})"
    try:
        return current, held_out_score(config, current), ""
    except (KeyError, ValueError) as error:
        return current, None, f"the served model cannot score the current data ({error})"


def _better(config: Config, candidate: float, current: float) -> bool:
    return candidate > current if config.evaluation.higher_is_better else candidate < current


def promote(
    config: Config, candidate: TrainedModel, report: dict[str, Any], require_better: bool, force: bool = False
) -> Decision:
    """Serve ``candidate`` if its gate passed (or ``force``) and, when required, it beats the served one."""
    metric = config.evaluation.metric
    value = float(report["gate"]["value"])
    gate_passed = bool(report["gate"]["passed"])
    with artifacts.store_lock(config.model_dir):
        artifacts.recover(config.model_dir)
        current, current_score, reason = _current(config)
        if not gate_passed and not force:
            promote_it = False
            reason = f"the gate failed: kept as a candidate in {candidate.directory}, not served"
        elif require_better and current_score is not None:
            promote_it = _better(config, value, current_score)
            verb = "beats" if promote_it else "does not beat"
            reason = f"candidate {metric} {value:.4f} {verb} served {current_score:.4f}"
        else:
            promote_it = True
            reason = f"promoted ({reason})" if reason else "promoted"
            if not gate_passed:
                reason = f"served although its gate failed (--force); {reason}"
        artifacts.write_json(
            candidate.directory / EVALUATION_FILE,
            {
                "gate": report["gate"],
                "forced": force and not gate_passed,
                # What the demo page shows: the test metrics and real examples (when configured).
                "test": report.get("test"),
                "examples": report.get("demo_examples", []),
            },
        )
        if promote_it:
            artifacts.swap_in(candidate.directory, config.model_dir)
        elif require_better and gate_passed:
            shutil.rmtree(
                candidate.directory, ignore_errors=True
            )  # a passing model that lost: nothing to keep
        _prune(config)
        decision = Decision(
            promoted=promote_it,
            metric=metric,
            candidate_score=round(value, 6),
            current_score=None if current_score is None else round(current_score, 6),
            candidate_version=candidate.version,
            current_version=current.version if current else None,
            reason=reason,
            gate_passed=gate_passed,
            forced=force and not gate_passed and promote_it,
        )
        artifacts.write_json(
            config.reports_dir / "promotion.json",
            {**asdict(decision), "time": datetime.now(UTC).isoformat(timespec="seconds")},
        )
    return decision


def _prune(config: Config) -> None:
    """Keep the newest few unpromoted candidates; older ones only fill the disk."""
    for old in candidates(config)[:-KEEP_CANDIDATES]:
        shutil.rmtree(old, ignore_errors=True)
