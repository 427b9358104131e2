"""Resumable training: where a model's fit keeps its state between epochs, so a lost worker costs an
epoch, not the run.

A local run has no store: ``save`` does nothing and ``latest`` finds nothing. A launcher that replaces
lost workers (a cluster engine's trainer, or anything else that restarts the fit) installs a store
with ``use``; a model that trains in epochs saves its state after each one through ``save`` and,
started again, continues from ``latest`` instead of from scratch. Engine-neutral on purpose: the
model module never learns who launched it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


class Store(Protocol):
    """Where checkpoints go: one folder per save, the newest one handed back after a restart."""

    def save(self, write: Callable[[Path], None], progress: dict[str, float]) -> None:
        """Keep what ``write`` puts into a fresh folder, with how far training got (epoch, loss)."""

    def latest(self) -> Path | None:
        """A local folder holding the newest checkpoint, or None before the first one."""


_store: Store | None = None


@contextmanager
def use(store: Store) -> Iterator[None]:
    """Install ``store`` for the fits run inside the block."""
    global _store
    previous, _store = _store, store
    try:
        yield
    finally:
        _store = previous


def save(write: Callable[[Path], None], progress: dict[str, float]) -> None:
    """Checkpoint through the installed store (every process calls it; the store decides who writes)."""
    if _store is not None:
        _store.save(write, progress)


def latest() -> Path | None:
    """The checkpoint to resume from, or None: no store, or nothing saved yet."""
    return _store.latest() if _store is not None else None
