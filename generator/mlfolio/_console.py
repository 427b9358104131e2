"""Progress reporting, kept out of the logic so tests can call it without a terminal.

The plain functions (``run_new``, ``run_update``) take a :class:`Steps` object; the CLI passes a
Rich one that shows a spinner and a tick per step, tests use the silent default.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from rich.console import Console


class Steps(Protocol):
    """Reports the named steps of a long operation."""

    def step(self, title: str) -> contextlib.AbstractContextManager[None]:
        """Context manager around one step."""

    def done(self, title: str) -> None:
        """A step that ran without a spinner (it talked to the user itself) and succeeded."""

    def note(self, message: str) -> None:
        """A side remark (a skipped step, a warning) that is not an error."""


T = TypeVar("T")


def run_step(steps: Steps, title: str, action: Callable[[], T], *, spinner: bool) -> T:
    """Run ``action`` as the step ``title``.

    ``spinner=False`` for a step that may prompt on the terminal (Copier asking its questions): a
    spinner would draw over the prompts, so the step is only ticked once it is done.
    """
    if spinner:
        with steps.step(title):
            return action()
    value = action()
    steps.done(title)
    return value


class QuietSteps:
    """Reports nothing: what tests and library callers get by default."""

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        yield

    def done(self, title: str) -> None:
        return None

    def note(self, message: str) -> None:
        return None


class RichSteps:
    """A spinner while a step runs, then a tick (or a cross) with its duration."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with self.console.status(f"{title}…"):
                yield
        except BaseException:
            self.console.print(f"[red]✗[/red] {title}")
            raise
        self.console.print(f"[green]✓[/green] {title} [dim]({time.perf_counter() - start:.1f} s)[/dim]")

    def done(self, title: str) -> None:
        self.console.print(f"[green]✓[/green] {title}")

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]•[/yellow] {message}")


QUIET = QuietSteps()
