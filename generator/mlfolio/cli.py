"""The ``mlfolio`` command: parsing and Rich output only; the work is in ``run_new``/``run_update``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console

from mlfolio import __version__
from mlfolio._console import RichSteps
from mlfolio._errors import MlfolioError
from mlfolio._new import NewResult, run_new
from mlfolio._update import Conflict, UpdateResult, parse_data, run_update

app = typer.Typer(
    name="mlfolio",
    help="Generate complete, working machine-learning portfolio projects, and keep them up to date.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()
errors = Console(stderr=True)

QUESTIONS = "Template questions (the rest are asked, or take their defaults with --defaults)"
Answer = Annotated[str | None, typer.Option(rich_help_panel=QUESTIONS, show_default=False)]


def _fail(error: MlfolioError) -> typer.Exit:
    errors.print(f"[bold red]Error:[/bold red] {error}", highlight=False, soft_wrap=True)
    return typer.Exit(code=getattr(error, "exit_code", 1))


def _version(value: bool) -> None:
    if value:
        console.print(f"mlfolio {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Generate complete, working machine-learning portfolio projects, and keep them up to date."""


def _summary_new(result: NewResult) -> None:
    slug = result.answers.get("project_slug", "<slug>")
    console.print(
        f"\n[bold green]Ready:[/bold green] {result.path} (template {result.template_version or '?'})"
    )
    if result.commit:
        console.print(f"  first commit {result.commit}{', hooks installed' if result.hooks else ''}")
    console.print("\nNext:")
    lines = [f"cd {result.path}"]
    if not result.synced:
        lines.append("uv sync                 # create the environment")
    lines += [
        "make all                # data -> train -> evaluate -> monitor",
        "make test               # the project's tests",
    ]
    if result.answers.get("serving") == "fastapi":
        lines.append("make serve              # http://127.0.0.1:8000/docs")
    lines.append(f"uv run python -m {slug} --help")
    lines.append("mlfolio update          # later: pull template improvements")
    for line in lines:
        console.print(f"  [cyan]{line}[/cyan]", highlight=False)


@app.command()
def new(
    dest: Annotated[
        Path, typer.Argument(help="Folder to create (must be empty or missing, unless --force).")
    ],
    modality: Answer = None,
    project_name: Answer = None,
    project_slug: Answer = None,
    description: Answer = None,
    author_name: Answer = None,
    author_email: Answer = None,
    github_user: Answer = None,
    license: Answer = None,
    python_version: Answer = None,
    problem_statement: Answer = None,
    task_type: Answer = None,
    dataset: Answer = None,
    data_source: Answer = None,
    data_sha256: Answer = None,
    target_column: Answer = None,
    text_column: Answer = None,
    time_column: Answer = None,
    series_id_column: Answer = None,
    time_format: Answer = None,
    frequency: Answer = None,
    horizon: Answer = None,
    slice_column: Answer = None,
    target_metric: Answer = None,
    target_threshold: Answer = None,
    framework: Answer = None,
    serving: Answer = None,
    ci_provider: Answer = None,
    tracking: Answer = None,
    tuning: Answer = None,
    compute: Answer = None,
    pipeline: Answer = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", "-d", help="Any other answer as QUESTION=VALUE (repeatable).", show_default=False
        ),
    ] = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Use defaults for every unanswered question.")
    ] = False,
    data_file: Annotated[
        Path | None, typer.Option("--data-file", help="YAML file of answers (flags win).", show_default=False)
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", help="Template path or Git URL (default: the one bundled).", show_default=False
        ),
    ] = None,
    vcs_ref: Annotated[
        str | None,
        typer.Option("--vcs-ref", help="Template Git ref (tag, branch, commit).", show_default=False),
    ] = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="No git init, no first commit, no hooks.")] = False,
    no_install: Annotated[bool, typer.Option("--no-install", help="Do not run uv sync.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Render into a non-empty folder (keeps other files).")
    ] = False,
) -> None:
    """Create a new project in DEST: render the template, git init, uv sync, first commit, hooks."""
    given: dict[str, Any] = {
        key: value for key, value in locals().items() if key in QUESTION_PARAMS and value is not None
    }
    try:
        answers = {**parse_data(data or []), **given}
        result = run_new(
            dest,
            answers,
            data_file=data_file,
            defaults=defaults,
            template=template,
            vcs_ref=vcs_ref,
            git=not no_git,
            install=not no_install,
            force=force,
            steps=RichSteps(errors),
        )
    except MlfolioError as error:
        raise _fail(error) from None
    _summary_new(result)


# The parameters typed ``Answer`` are the template's questions; everything else is an option.
QUESTION_PARAMS = frozenset(
    name for name, hint in get_type_hints(new, include_extras=True).items() if hint == Answer
)


def _summary_update(result: UpdateResult) -> None:
    verb = "Would change" if result.pretend else "Changed"
    console.print(f"\n{result.old_version or '?'} -> {result.new_version or '?'}")
    if not result.changed:
        console.print("Nothing to change: the project is up to date.")
    else:
        console.print(f"{verb} {len(result.changed)} file(s):")
        for code, name in result.changed:
            mark = " [red](conflict)[/red]" if name in result.conflicts else ""
            console.print(f"  {code} {name}{mark}", highlight=False)
    if result.config.added:
        console.print(
            f"configs/config.yaml: {len(result.config.added)} new key(s) added with their defaults and "
            f"comments: {', '.join(result.config.added)}",
            highlight=False,
        )
    if result.config.not_in_template:
        console.print(
            "configs/config.yaml: key(s) the template does not have (kept; remove them if unused): "
            + ", ".join(result.config.not_in_template),
            highlight=False,
        )
    if result.config_note:
        errors.print(result.config_note, highlight=False)
    if result.synced:
        console.print("Dependencies changed: environment re-synced (uv sync).")
    if result.conflicts and not result.pretend:
        errors.print(
            f"[bold red]{len(result.conflicts)} file(s) with conflicts:[/bold red] "
            + ", ".join(result.conflicts)
            + "\nResolve the markers (or .rej files), then commit.",
            highlight=False,
        )
    elif result.changed and not result.pretend:
        console.print("Review with `git diff`, run the tests, then commit.")


@app.command()
def update(
    path: Annotated[Path, typer.Argument(help="The project to update (default: here).")] = Path(),
    vcs_ref: Annotated[
        str | None, typer.Option("--vcs-ref", help="Template ref to update to (default: latest release).")
    ] = None,
    pretend: Annotated[
        bool, typer.Option("--pretend", help="Show what would change; change nothing.")
    ] = False,
    conflict: Annotated[
        Conflict, typer.Option("--conflict", help="How to leave conflicts: inline markers or .rej files.")
    ] = "inline",
    defaults: Annotated[bool, typer.Option("--defaults", help="Keep previous answers; ask nothing.")] = False,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", "-d", help="Change an answer: QUESTION=VALUE (repeatable).", show_default=False
        ),
    ] = None,
) -> None:
    """Pull template improvements into a project; your edits are merged, never dropped."""
    try:
        result = run_update(
            path,
            data=parse_data(data or []),
            vcs_ref=vcs_ref,
            pretend=pretend,
            conflict=conflict,
            defaults=defaults,
            steps=RichSteps(errors),
        )
    except MlfolioError as error:
        raise _fail(error) from None
    _summary_update(result)
    if result.conflicts:
        raise typer.Exit(code=1)
