"""Retraining that never makes the served model worse.

``retrain`` fits a candidate into ``models/model.candidate``, scores it and the served model on the
same held-out test split, and promotes the candidate only when it is strictly better on the target
metric: ``models/model`` becomes ``models/model.previous`` and the candidate takes its place (see
``artifacts.swap_in``). Otherwise the candidate is deleted and nothing served changes.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import artifacts, data
from .config import Config
from .train import TrainedModel, load_trained, score, train


@dataclass
class Decision:
    promoted: bool
    metric: str
    candidate_score: float
    current_score: float | None
    candidate_version: str
    current_version: str | None
    reason: str


def candidate_dir(config: Config) -> Path:
    return config.model_dir.with_name(config.model_dir.name + ".candidate")


def held_out_score(config: Config, trained: TrainedModel) -> float:
    """The target metric of ``trained`` on the current test split."""
    schema = data.load_schema(config)
    metrics = score(
        trained.model, data.load_split(config, "test"), schema, config, trained.metadata.get("positive_class")
    )
    return float(metrics[config.evaluation.metric])


def _current(config: Config) -> tuple[TrainedModel | None, float | None, str]:
    """The served model and its score, or why it cannot be compared (then any candidate wins)."""
    try:
        current = load_trained(config)
    except FileNotFoundError:
        return None, None, "no model was served yet"
    try:
        return current, held_out_score(config, current), ""
    except (KeyError, ValueError) as error:
        return current, None, f"the served model cannot score the current data ({error})"


def retrain(config: Config) -> Decision:
    """Train a candidate; promote it only if it beats the served model on the test split."""
    directory = candidate_dir(config)
    shutil.rmtree(directory, ignore_errors=True)
    candidate = train(config, directory)
    candidate_score = held_out_score(config, candidate)
    current, current_score, reason = _current(config)
    metric = config.evaluation.metric
    if current_score is not None:
        better = (
            candidate_score > current_score
            if config.evaluation.higher_is_better
            else candidate_score < current_score
        )
        verb = "beats" if better else "does not beat"
        reason = f"candidate {metric} {candidate_score:.4f} {verb} served {current_score:.4f}"
    else:
        better = True
    if better:
        artifacts.swap_in(directory, config.model_dir)
    else:
        shutil.rmtree(directory, ignore_errors=True)
    decision = Decision(
        promoted=better,
        metric=metric,
        candidate_score=round(candidate_score, 6),
        current_score=None if current_score is None else round(current_score, 6),
        candidate_version=candidate.version,
        current_version=current.version if current else None,
        reason=reason,
    )
    artifacts.write_json(
        config.reports_dir / "promotion.json",
        {**asdict(decision), "time": datetime.now(UTC).isoformat(timespec="seconds")},
    )
    return decision
