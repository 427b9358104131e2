"""What the evaluation's costliest analysis may spend, decided from what training measured.

Cross-validation retrains the model once per fold: for a CNN, or a text model reading 100,000
n-grams, that is most of ``make all``, while a forest on 500 rows retrains in a blink. Training
records how long its fit took on how many rows; the plan keeps the configured folds and sample when
their estimated cost fits ``evaluation.cv_seconds`` and otherwise samples fewer rows (not under
``MIN_ROWS``), then drops folds (not under two). The report states the choice and its reason
("3 folds on 3,000 rows, about 3 s of the 20 s evaluation.cv_seconds allows: one fit on 5,989 rows
took 3.1 s"), so the rigor is visible and a user with time to spare raises the budget. The folds'
real cost is checked as they run: past the budget, no further fold starts (never under two).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import EvaluationConfig

# Under this many rows the folds' spread says little about the model trained on all of them: past
# it, the plan keeps the rows and drops folds instead.
MIN_ROWS = 300


@dataclass(frozen=True)
class CrossValidationPlan:
    folds: int
    rows: int  # rows cross-validated (a sample of k-fold's; all of a backtest's)
    seconds: float | None  # the estimated cost; None when training recorded no time
    reason: str


def cross_validation(
    evaluation: EvaluationConfig, fit: dict[str, Any] | None, available: int, by_time: bool = False
) -> CrossValidationPlan:
    """The folds and rows to cross-validate ``available`` rows with, given the training fit's cost.

    k-fold fits k times on (k-1)/k of the rows; a backtest fits k times on (nearly) all of them.
    Cost is taken as proportional to rows, from the seconds and rows training measured.
    """
    folds = evaluation.cv_folds
    rows = available if by_time else min(available, evaluation.analysis_rows)
    if not fit or not fit.get("rows") or fit.get("seconds") is None:
        return CrossValidationPlan(folds, rows, None, f"{folds} folds: training recorded no fit time")
    per_row = float(fit["seconds"]) / int(fit["rows"])
    measured = f"one fit on {int(fit['rows']):,} rows took {float(fit['seconds']):.1f} s"

    def cost(k: int, r: int) -> float:
        return per_row * r * (k if by_time else k - 1)

    budget = evaluation.cv_seconds
    chosen = (folds, rows) if budget is None else _within(budget, folds, rows, by_time, cost)
    estimate = cost(*chosen)
    limit = "" if budget is None else f" of the {budget:g} s evaluation.cv_seconds allows"
    if chosen != (folds, rows):
        limit += f"; {folds} folds on {rows:,} rows would take about {cost(folds, rows):.0f} s"
    reason = f"{chosen[0]} folds on {chosen[1]:,} rows, about {estimate:.0f} s{limit}: {measured}"
    return CrossValidationPlan(chosen[0], chosen[1], round(estimate, 1), reason)


def _within(
    budget: float, folds: int, rows: int, by_time: bool, cost: Callable[[int, int], float]
) -> tuple[int, int]:
    """The most folds, then the most rows (at least ``MIN_ROWS``), whose cost fits ``budget``."""
    floor = min(rows, MIN_ROWS)
    for k in range(folds, 1, -1):
        if by_time:
            if cost(k, rows) <= budget:
                return k, rows
            continue
        affordable = int(budget / cost(k, 1)) if cost(k, 1) > 0 else rows
        if affordable >= floor:
            return k, min(rows, affordable)
    return 2, rows if by_time else floor


def another_fold(evaluation: EvaluationConfig, done: int, spent: float) -> bool:
    """Whether one more fold fits ``evaluation.cv_seconds``, judged by the folds already run.

    The plan's estimate scales the training fit by rows, but a network that stops early trains more
    epochs on fewer rows: its folds can cost what the whole fit did. So the budget is also checked
    as the folds run, from what they really took; two folds always run (a spread needs two).
    """
    budget = evaluation.cv_seconds
    if budget is None or done < 2:
        return True
    return spent + spent / done <= budget
