"""Stage 7a — the README's Results section, written from the run's own reports.

``make report`` fills the part of ``README.md`` between two marker comments with the headline
result (against the target and the baselines), the gate, a table of metrics and the main figures.
Everything outside the markers belongs to the user and is never touched; the section holds nothing
that changes between two runs on the same artifacts (no clock), so a rerun changes nothing.
The figures it shows are copied to ``reports/results/`` (not git-ignored), so a committed README
shows them on a code host.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import artifacts
from .config import Config

START = "<!-- results:start -->"
END = "<!-- results:end -->"
NOTE = "<!-- Written by `make report` from reports/; edit outside the results markers, not inside. -->"
# The figures a reader sees first, in this order, when the run drew them.
MAIN_FIGURES = ("confusion_matrix.png", "roc_curve.png", "residuals.png", "permutation_importance.png")


@dataclass
class Results:
    """What one evaluation found: the report (``reports/metrics.json``) and where it came from."""

    report: dict[str, Any]
    config: Config

    @property
    def gate(self) -> dict[str, Any]:
        return dict(self.report["gate"])

    @property
    def metric(self) -> str:
        return str(self.gate["metric"])

    def interval(self, name: str) -> tuple[float, float] | None:
        found = (self.report.get("intervals") or {}).get("test", {}).get(name)
        return (found[0], found[1]) if found else None

    @property
    def level(self) -> int:
        return round(100 * (self.report.get("intervals") or {}).get("level", 0.95))

    @property
    def linear(self) -> tuple[str, dict[str, float]] | None:
        found = self.report.get("linear_baseline")
        return (found["model"], found["test"]) if found else None

    def figures(self, names: tuple[str, ...] = MAIN_FIGURES) -> list[Path]:
        """Figures of this run that exist, in ``names`` order."""
        drawn = {Path(path).name for path in self.report.get("figures", [])}
        return [self.config.figures_dir / name for name in names if name in drawn]


def load_results(config: Config) -> Results:
    """The latest evaluation's report; a clear error when there is none yet."""
    path = config.reports_dir / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the pipeline first (make all)")
    return Results(artifacts.read_json(path), config)


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def headline(results: Results) -> str:
    """One sentence: the result, how sure it is, against the target and the bar to clear."""
    gate, metric = results.gate, results.metric
    relation = "at least" if gate["higher_is_better"] else "at most"
    interval = results.interval(metric)
    sure = f" ({results.level}% interval {interval[0]:.4f} to {interval[1]:.4f})" if interval else ""
    target = "" if gate["threshold"] is None else f"a target of {relation} {gate['threshold']}, "
    linear = results.linear
    reference = ""
    if linear and linear[1].get(metric) is not None:
        reference = f"; {linear[0]} on the same features scores {linear[1][metric]:.4f}"
    return (
        f"**{metric} = {gate['point']:.4f}** on {results.report['test_rows']} held-out test rows{sure}, "
        f"against {target}the best dummy baseline's {gate['baseline']:.4f} ({gate['baseline_strategy']})"
        f"{reference}."
    )


def verdict(results: Results) -> str:
    """The gate and whether this model is the one the API serves."""
    passed = "passed" if results.gate["passed"] else "FAILED"
    served = "served" if results.report.get("served") else "not served"
    return (
        f"**Gate {passed}, {served}** (model `{results.report['model_version']}`): "
        f"{results.report.get('promotion', '')}."
    )


def metrics_table(results: Results) -> list[str]:
    """Every test metric beside its interval, the best dummy and the linear reference."""
    report, linear = results.report, results.linear
    head = f"| Metric | Model (test) | {results.level}% interval | Best dummy baseline |"
    rule = "|---|---|---|---|"
    if linear:
        head, rule = f"{head} {linear[0]} |", f"{rule}---|"
    lines = [head, rule]
    for name, value in report["test"].items():
        interval = results.interval(name)
        span = f"{interval[0]:.4f} to {interval[1]:.4f}" if interval else "—"
        dummy = report["baseline"].get(name)
        strategy = report.get("baseline_strategy", {}).get(name)
        row = f"| {name} | {number(value)} | {span} | {number(dummy)}{f' ({strategy})' if strategy else ''} |"
        if linear:
            row += f" {number(linear[1].get(name))} |"
        lines.append(row)
    return lines


def section(results: Results) -> str:
    """The Markdown between the markers (without them)."""
    lines = [NOTE, "## Results", "", headline(results), "", verdict(results), "", *metrics_table(results), ""]
    for figure in results.figures():
        lines.append(f"![{figure.stem.replace('_', ' ').capitalize()}](reports/results/{figure.name})")
    lines += [
        "",
        "More: the [model card](MODEL_CARD.md) (every number explained), the project site "
        "(`make site`, then open `build/site/index.html`)"
        + (f", published at {results.config.project.site_url}" if results.config.project.site_url else "")
        + (", and the demo page (`make serve`, then http://127.0.0.1:8000)." if has_service() else "."),
    ]
    return "\n".join(lines)


def has_service() -> bool:
    """Whether this project was rendered with the HTTP service (and so a demo page and an API).

    Asked of the package, not the config: the service is a module the project has or has not.
    """
    from importlib.util import find_spec

    return find_spec(f"{__package__}.serve") is not None


def replace_section(readme: str, body: str) -> str:
    """``readme`` with the text between the markers replaced; appended at the end when absent."""
    block = f"{START}\n{body}\n{END}"
    start, end = readme.find(START), readme.find(END)
    if start == -1 and end == -1:
        return f"{readme.rstrip()}\n\n{block}\n"
    if start == -1 or end < start:
        raise ValueError(f"README.md has a broken results section: {START} must come before {END}")
    return readme[:start] + block + readme[end + len(END) :]


def copy_figures(results: Results) -> list[Path]:
    """The README's figures under ``reports/results/``; identical files are left as they are."""
    folder = results.config.reports_dir / "results"
    copied = []
    for figure in results.figures():
        target = folder / figure.name
        if not target.is_file() or artifacts.sha256_file(target) != artifacts.sha256_file(figure):
            with artifacts.atomic_path(target) as tmp:
                shutil.copyfile(figure, tmp)
        copied.append(target)
    return copied


def write_report(config: Config) -> tuple[Path, bool]:
    """Fill the README's results section; returns the README and whether it changed."""
    results = load_results(config)
    readme = config.root / "README.md"
    old = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {config.project.name}\n"
    copy_figures(results)
    new = replace_section(old, section(results))
    if new != old:
        artifacts.write_text(readme, new)
    return readme, new != old
