"""Stage 7b — the project site: static pages (MkDocs Material) built from the run's own artifacts.

Nothing on the site is typed by hand: each page is written from the reports, the manifest, the
schema, the model's metadata and the drift report of the latest run, so the site stays correct as
the model is retrained. Pages that do not apply (no API without the service, no monitoring page
before ``monitor`` ran) are left out, not left empty. The theme makes no request beyond the site's
own files (no web fonts, no CDN, no analytics) and search runs from the static index.

The pages are written to ``build/site-docs/`` and the HTML to ``build/site/`` (``mkdocs.yml``);
the build is strict, so a broken link or a missing image fails it.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from . import artifacts, data, datacard, processed
from .config import Config
from .report import Results, has_service, headline, load_results, metrics_table, number, verdict

MKDOCS_FILE = "mkdocs.yml"
# The theme's script falls back to unpkg.com for two things this site never uses (a ResizeObserver
# polyfill for old browsers, mermaid for pages with diagrams). The built site reaches no other host:
# those addresses are pointed at the site's own folder (where nothing is: a 404, never a request
# elsewhere), and source maps, read only by a debugger, are left out.
CDN = "https://unpkg.com/"
LOCAL_INSTEAD = "assets/external/"
TOP_IMPORTANCES = 10


@dataclass
class Page:
    title: str
    file: str
    text: str


# ---------------------------------------------------------------- the pages
def overview(results: Results, config: Config, pages: list[str]) -> Page:
    gate = results.gate
    relation = ">=" if gate["higher_is_better"] else "<="
    target = "" if gate["threshold"] is None else f" {relation} **{gate['threshold']}**, and"
    lines = [
        f"# {config.project.name}",
        "",
        config.project.description,
        "",
        f'!!! question "Problem"\n    {config.problem_statement}',
        "",
        f"**Success criterion.** Test **{gate['metric']}**{target} closing at least "
        f"{gate['baseline_margin']:.0%} of the gap between the best dummy baseline and a perfect score. "
        "Only a model that passes this gate is served.",
        "",
        "## Result",
        "",
        headline(results),
        "",
        verdict(results),
        "",
        *[f"![{caption(path)}](figures/{path.name})" for path in results.figures()[:1]],
        "",
        "## On this site",
        "",
        *[f"- {page}" for page in pages],
    ]
    return Page("Overview", "index.md", "\n".join(lines))


def class_counts(config: Config, target: str) -> pd.DataFrame | None:
    """Rows per class in each split (classification), read from the split files themselves."""
    if not config.is_classification:
        return None
    counts = {
        name: processed.load_split(config, name)[target].astype(str).value_counts() for name in data.SPLITS
    }
    return pd.DataFrame(counts).fillna(0).astype(int)


def data_page(config: Config) -> Page:
    manifest = processed.load_manifest(config)
    schema = data.load_schema(config)
    quality = manifest.get("quality", {})
    rows = manifest["rows"]
    lines = [
        "# Data",
        "",
        f"- Source: `{manifest['source']}`",
        f"- Rows: train {rows['train']}, validation {rows['validation']}, test {rows['test']} "
        f"(seeded split{', stratified by class' if config.is_classification else ''})",
        f"- Target: `{schema.target}`",
    ]
    counts = class_counts(config, schema.target)
    if counts is not None:
        lines += ["", "## Classes", "", "| Class | Train | Validation | Test |", "|---|---|---|---|"]
        lines += [f"| {label} | {' | '.join(str(v) for v in row)} |" for label, row in counts.iterrows()]
    lines += ["", "## Features", "", *datacard.feature_table(schema, manifest)]
    lines += ["", "## What the data stage did, counted", ""]
    lines += [f"- {line}" for line in datacard.quality_lines(quality)]
    lines += ["", "## Fingerprints", "", "| File | SHA-256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in manifest["files"].items()]
    lines += ["", f"Data hash (every model records it): `{manifest['data_hash']}`"]
    return Page("Data", "data.md", "\n".join(lines))


def model_page(config: Config) -> Page:
    """The model card as ``evaluate`` wrote it, with its figures pointing into the site."""
    card = config.model_card_path
    if not card.is_file():
        raise FileNotFoundError(f"{card} not found; run the pipeline first (make all)")
    text = card.read_text(encoding="utf-8").replace("](reports/figures/", "](figures/")
    return Page("Model card", "model.md", text)


CAPTIONS = {
    "roc_curve": "ROC curve",
    "precision_recall": "Precision-recall curve",
    "calibration": "Calibration curve",
    "slices": "Metric per slice",
    "partial_dependence": "Partial dependence",
}


def caption(path: Path) -> str:
    return CAPTIONS.get(path.stem, path.stem.replace("_", " ").capitalize())


def evaluation_page(results: Results) -> Page:
    report = results.report
    lines = ["# Evaluation", "", headline(results), "", verdict(results), "", *metrics_table(results)]
    cv = report.get("cross_validation")
    if cv:
        spread = ", ".join(
            f"{name} {number(found['mean'])} ± {number(found['std'])}"
            for name, found in cv["metrics"].items()
            if found.get("mean") is not None
        )
        lines += ["", f"**Cross-validation** ({cv['folds']} folds of {cv['on']}): {spread}."]
    threshold = report.get("decision_threshold")
    if threshold:
        lines += [
            "",
            f"**Decision threshold.** `{threshold['positive_class']}` when its probability is at least "
            f"{threshold['value']} ({threshold['rule']}); the API uses the same cut-off.",
        ]
    calibration = report.get("calibration")
    if calibration:
        lines += ["", f"**Calibration.** Brier score {number(calibration['brier'])} (0 is perfect)."]
    if report.get("slices"):
        metric = results.metric
        lines += [
            "",
            "## Slices",
            "",
            f"| Slice | Rows | {metric} | Flagged | Note |",
            "|---|---|---|---|---|",
        ]
        for row in report["slices"]:
            flagged = "**yes**" if row.get("flagged") else "no"
            note = row.get("note") or ""
            lines.append(
                f"| {row['slice']} | {row['rows']} | {number(row.get(metric))} | {flagged} | {note} |"
            )
        fairness = report.get("fairness") or {}
        if fairness.get("difference") is not None:
            lines += [
                "",
                f"Between slices: {metric} differs by {number(fairness['difference'])} (ratio "
                f"{number(fairness.get('ratio'))}).",
            ]
    importances = report.get("permutation_importance") or []
    if importances:
        lines += [
            "",
            "## What drives the predictions",
            "",
            "| Feature | Importance (mean ± sd) |",
            "|---|---|",
        ]
        lines += [
            f"| `{row['feature']}` | {number(row['mean'])} ± {number(row['std'])} |"
            for row in importances[:TOP_IMPORTANCES]
        ]
    figures = [path for path in map(Path, report.get("figures", [])) if path.name != "drift.png"]
    if figures:
        lines += ["", "## Figures", ""]
        for path in figures:
            lines += [f"### {caption(path)}", "", f"![{caption(path)}](figures/{path.name})", ""]
    return Page("Evaluation", "evaluation.md", "\n".join(lines))


def monitoring_page(config: Config) -> Page | None:
    report = config.reports_dir / "drift.md"
    if not report.is_file():
        return None
    text = report.read_text(encoding="utf-8").replace("](reports/figures/", "](figures/")
    return Page("Monitoring", "monitoring.md", text)


def api_page(config: Config) -> tuple[Page, dict[str, Any]] | None:
    """Every endpoint with an example ``curl``, and the OpenAPI schema rendered as tables."""
    if not has_service():
        return None
    serve = importlib.import_module(f"{__package__}.serve")  # by name: not every project has it
    from .train import load_trained

    trained = load_trained(config)
    schema = serve.create_app(config, trained, api_key="", log_predictions=False).openapi()
    contract = importlib.import_module(f"{__package__}.contract")
    example = contract.example_body(trained.schema)
    base = "http://127.0.0.1:8000"
    lines = [
        "# API",
        "",
        f"`make serve` answers on {base} (the demo page is `/`, interactive docs `/docs`). With `API_KEY` "
        f"set, `{contract.ROUTE}`, `/metadata` and `/metrics` need it in the `X-API-Key` header.",
        "",
        "## Endpoints",
        "",
        "| Method | Path | What it does | Answers |",
        "|---|---|---|---|",
    ]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = ", ".join(sorted(operation.get("responses", {})))
            lines.append(f"| {method.upper()} | `{path}` | {operation.get('summary', '')} | {codes} |")
    body = json.dumps(example).replace("'", "'\\''")
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += ["", f"### {method.upper()} `{path}`", "", operation.get("description", "").strip()]
            command = f"curl -s {base}{path}"
            if method == "post":
                json_header = "-H 'content-type: application/json'"
                command = f"curl -s -X POST {base}{path} {json_header} \\\n     -d '{body}'"
            lines += ["", "```bash", command, "```"]
    lines += ["", "## Request and response schemas"]
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        properties = component.get("properties") or {}
        if not properties:
            continue
        required = set(component.get("required", []))
        lines += ["", f"### Schema `{name}`", "", "| Field | Type | Required |", "|---|---|---|"]
        for field, spec in properties.items():
            lines.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} |")
    lines += ["", "The whole schema: [openapi.json](openapi.json)."]
    return Page("API", "api.md", "\n".join(lines)), schema


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return f"`{spec['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in spec:
        return " or ".join(_type(option) for option in spec["anyOf"])
    if spec.get("type") == "array":
        return f"list of {_type(spec.get('items', {}))}"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{value}`" for value in spec["enum"][:6])
    return str(spec.get("type", "any"))


def reproduce_page(config: Config, results: Results) -> Page:
    meta = _model_metadata(config, results.report["model_version"])
    answers = config.root / ".copier-answers.yml"
    template = yaml.safe_load(answers.read_text(encoding="utf-8")) if answers.is_file() else {}
    lines = [
        "# Reproduce",
        "",
        "```bash",
        "uv sync       # the locked environment (uv.lock)",
        "make all      # data -> train -> evaluate -> monitor",
        "make site     # this site, from the run's own artifacts",
        "```",
        "",
        f"- Model version: `{results.report['model_version']}`",
        f"- Data hash: `{meta.get('data_hash', '—')}`",
        f"- Code commit: `{meta.get('git_commit') or 'not a git repository'}`",
        f"- Template: mlfolio `{template.get('_commit', '—')}`",
        "",
        "| Library | Version |",
        "|---|---|",
        *[f"| {name} | {version} |" for name, version in (meta.get("libraries") or {}).items()],
    ]
    return Page("Reproduce", "reproduce.md", "\n".join(lines))


def _model_metadata(config: Config, version: str) -> dict[str, Any]:
    """The metadata of the evaluated model, wherever it is now (served, previous or candidate)."""
    for folder in (
        config.model_dir,
        config.candidates_dir / version,
        config.root / "models" / "model.previous",
    ):
        path = folder / "metadata.json"
        if path.is_file():
            found = artifacts.read_json(path)
            if found.get("model_version") == version:
                return dict(found)
    return {}


# ---------------------------------------------------------------- build
def write_pages(config: Config, docs: Path) -> list[Page]:
    """Every page that applies, written to ``docs`` with the figures they show."""
    results = load_results(config)
    shutil.rmtree(docs, ignore_errors=True)
    (docs / "figures").mkdir(parents=True)
    for figure in sorted(config.figures_dir.glob("*.png")):
        shutil.copyfile(figure, docs / "figures" / figure.name)
    pages: list[Page] = [data_page(config), model_page(config), evaluation_page(results)]
    monitoring = monitoring_page(config)
    if monitoring:
        pages.append(monitoring)
    api = api_page(config)
    if api:
        pages.append(api[0])
        artifacts.write_json(docs / "openapi.json", api[1])
    pages.append(reproduce_page(config, results))
    links = [f"[{page.title}]({page.file})" for page in pages]
    pages.insert(0, overview(results, config, links))
    for page in pages:
        (docs / page.file).write_text(page.text.rstrip() + "\n", encoding="utf-8")
    return pages


def build_site(config: Config) -> Path:
    """Write the pages and build the HTML (strict: any warning fails); returns the site folder."""
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # MkDocs' banner about its future, not ours
    from mkdocs.commands.build import build
    from mkdocs.config import load_config as load_mkdocs
    from mkdocs.utils.yaml import yaml_load

    config_file = config.root / MKDOCS_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found (the site's settings)")
    logger = logging.getLogger("mkdocs")
    if not logger.handlers:  # warnings are what strict mode fails on: show them
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)
    with config_file.open(encoding="utf-8") as handle:
        settings = yaml_load(handle) or {}  # MkDocs' own loader: it knows the !!python tags themes use
    pages = write_pages(config, config.root / settings.get("docs_dir", "docs"))
    site = load_mkdocs(str(config_file), nav=[{page.title: page.file} for page in pages], strict=True)
    build(site)
    return seal(Path(site["site_dir"]))


def seal(folder: Path) -> Path:
    """The built site without a single address of another host in its scripts (see ``CDN``)."""
    for source_map in folder.rglob("*.map"):
        source_map.unlink()
    for script in folder.rglob("*.js"):
        text = script.read_text(encoding="utf-8")
        if CDN in text:
            script.write_text(text.replace(CDN, LOCAL_INSTEAD), encoding="utf-8")
    return folder
