"""Writing files so that a crash never leaves a half-written one behind.

Every artifact is written to a temporary sibling first and renamed into place: a rename within one
folder is atomic, so readers see either the old file or the new one, never a torn write. JSON is
strict (a non-finite number becomes ``null``, never a bare ``NaN``), and files and folders are made
readable by other users, so the unprivileged user of the container image can load what training wrote.

Promoting a model swaps two folders with two renames. A journal written before the first rename lets
``recover`` finish or roll back a swap that a crash interrupted, and one file lock per model store
makes promotions take turns: the served model always resolves to a complete bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

FILE_MODE = 0o644
DIR_MODE = 0o755
# How long a promotion waits for another one to finish before giving up with a clear message.
LOCK_TIMEOUT_SECONDS = 600.0


class ArtifactError(ValueError):
    """An artifact on disk cannot be used as it is; the message names the file."""


def dump_skops(estimator: Any, path: Path) -> None:
    """Save a fitted scikit-learn object with skops, compressed.

    skops stores every NumPy scalar as a file of its own: a text vectoriser's vocabulary (150,000
    n-grams mapped to NumPy integers) took six minutes and 160 MB. Its values are made plain
    integers first (the vectoriser reads them the same), which takes seconds and 3 MB.
    """
    import skops.io as sio

    for part in _parts(estimator):
        vocabulary = getattr(part, "vocabulary_", None)
        if isinstance(vocabulary, dict):
            part.vocabulary_ = {term: int(index) for term, index in vocabulary.items()}
    sio.dump(estimator, path, compression=zipfile.ZIP_DEFLATED, compresslevel=6)


def load_skops(path: Path, trusted: set[str]) -> Any:
    """Load a skops file that holds nothing but scikit-learn's own types and ``trusted``; anything
    else is refused, so a tampered model cannot smuggle in code.

    One pass over the file: skops checks the types as it loads (asking for them first walked a text
    vectoriser's 100,000 entries twice, a second of every load).
    """
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path, trusted=sorted(trusted))
    except UntrustedTypesFoundException as exc:
        found = str(exc).splitlines()[0].removeprefix("Untrusted types found in the file: ").rstrip(".")
        raise ArtifactError(f"refusing to load {path}: it contains untrusted types {found}") from None


def _parts(estimator: Any) -> Iterator[Any]:
    """The estimator and every fitted estimator inside it (pipelines and column transformers)."""
    yield estimator
    children = [step for _, step in getattr(estimator, "steps", [])]
    children += [step for _, step, _ in getattr(estimator, "transformers_", [])]
    for child in children:
        if not isinstance(child, str):  # "drop" and "passthrough"
            yield from _parts(child)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)  # mkstemp makes 0600: other users (the image's) could not read it
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars made Python ones and non-finite floats made ``None``."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Any) -> str:
    """Strict JSON: ``allow_nan=False`` proves that no ``NaN`` or ``Infinity`` slipped through."""
    return json.dumps(plain(data), indent=2, allow_nan=False, default=str) + "\n"


def write_json(target: Path, data: Any) -> Path:
    return write_text(target, to_json(data))


def read_json(path: Path) -> Any:
    """A JSON file, or an ``ArtifactError`` naming the file when it is unreadable or corrupt."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{path} cannot be read as JSON ({error}); regenerate it") from None


# ---------------------------------------------------------------- bundles (model folders)
@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder that becomes ``target`` (which must not exist) on success.

    A failure inside the block removes the staging folder: nothing half-written is left behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        yield staging
        make_readable(staging)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_readable(folder: Path) -> None:
    """Folders 0755 and files 0644, whatever created them (``mkdtemp`` makes 0700)."""
    os.chmod(folder, DIR_MODE)
    for path in folder.rglob("*"):
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in a bundle, by relative path: recorded at training, checked at load."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def is_complete(folder: Path) -> bool:
    """A bundle is complete once its metadata exists: it is written last, inside the staging folder."""
    return (folder / "metadata.json").is_file()


def previous_of(target: Path) -> Path:
    return target.with_name(target.name + ".previous")


def _journal(target: Path) -> Path:
    return target.with_name(f".{target.name}.swap.json")


@contextmanager
def store_lock(target: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the lock of the model store around ``target`` (one promotion or recovery at a time).

    Where the store is read-only (a container image), nothing can change it, so nothing is locked.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(target.with_name(f".{target.name}.lock"), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise ArtifactError(
            f"another run has held {lock.lock_file} for {timeout:.0f} s (a promotion in progress); "
            "try again when it has finished"
        ) from None
    except OSError:
        yield  # read-only store: no promotion can run here either
        return
    try:
        yield
    finally:
        lock.release()


def swap_in(source: Path, target: Path) -> None:
    """Move the folder ``source`` to ``target``, keeping the old ``target`` as ``*.previous``.

    Two renames within one folder. The journal written first names the incoming folder, so a crash
    between them is finished or rolled back by ``recover``. Call it under ``store_lock``.
    """
    if not is_complete(source):
        raise ArtifactError(f"{source} is not a complete model bundle (no metadata.json)")
    journal = _journal(target)
    write_json(journal, {"incoming": str(source), "target": str(target)})
    previous = previous_of(target)
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
    os.replace(source, target)
    journal.unlink()


def recover(target: Path) -> str | None:
    """Finish or roll back a swap into ``target`` that a crash interrupted; say which, or None.

    Call it under ``store_lock``. After it, ``target`` is a complete bundle whenever any was there.
    """
    journal = _journal(target)
    if not journal.is_file():
        return None
    try:
        incoming = Path(read_json(journal)["incoming"])
    except (ArtifactError, KeyError, TypeError):
        incoming = Path()  # a journal cut short by the crash itself: the swap had not started
    action = "nothing to do"
    if target.exists():
        action = "swap had completed" if not incoming.exists() else "swap had not started"
    elif incoming != Path() and is_complete(incoming):
        os.replace(incoming, target)
        action = f"finished the swap of {incoming.name}"
    elif previous_of(target).exists():
        os.replace(previous_of(target), target)
        action = "rolled back to the previous model"
    with contextlib.suppress(FileNotFoundError):
        journal.unlink()
    return action
