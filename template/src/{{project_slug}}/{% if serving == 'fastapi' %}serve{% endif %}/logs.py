"""What the service writes down: the prediction log the monitor reads, and JSON log lines."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

# The project's package: the loggers are named after it, wherever in it they are made.
PACKAGE = __name__.split(".")[0]
access_log = logging.getLogger(f"{PACKAGE}.access")
error_log = logging.getLogger(f"{PACKAGE}.serve")


class PredictionLog:
    """Append-only JSON Lines, one line per record, under ``data/predictions/``; rotated by size.

    Each request is one write under an exclusive ``flock``, so workers appending to the same file
    never interleave and rotation never cuts a line. When the disk refuses the rows (full, or a
    short write), the file is cut back to where it was: no torn line is left, the prediction is
    still answered, and the rows are counted as dropped (``logged`` false, ``/metrics``).
    """

    def __init__(self, directory: Path, max_bytes: int, keep: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "predictions.jsonl"
        self.max_bytes = max_bytes
        self.keep = keep
        self.fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @staticmethod
    def lines(records: list[dict[str, Any]], result: dict[str, Any]) -> bytes:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        version = result["model_version"]
        probabilities = result.get("probabilities") or [None] * len(records)
        # A forecast answers its request as a whole: one line, with the whole answer beside it.
        predictions = result["predictions"] if "predictions" in result else [result["forecast"]]
        return b"".join(
            orjson.dumps(
                {
                    "time": stamp,
                    "model_version": version,
                    "inputs": record,
                    "prediction": prediction,
                    "probabilities": proba,
                }
            )
            + b"\n"
            for record, prediction, proba in zip(records, predictions, probabilities, strict=True)
        )

    def write(self, records: list[dict[str, Any]], result: dict[str, Any]) -> bool:
        """Append the rows whole or not at all; True when they are on disk."""
        return self._append(self.lines(records, result))

    def refusal(self, status: int, version: str) -> bool:
        """One line for a request refused for its content (an unreadable image, an invalid record):
        the monitor reports their share, which rises when clients start sending what the model
        cannot read."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        return self._append(
            orjson.dumps({"time": stamp, "model_version": version, "refused": status}) + b"\n"
        )

    def _append(self, payload: bytes) -> bool:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            self._rotate_if_needed()
            start = os.fstat(self.fd).st_size
            try:
                written = os.write(self.fd, payload)
                if written == len(payload):
                    return True
            except OSError as error:
                if error.errno not in {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}:
                    raise
            os.ftruncate(self.fd, start)  # never leave a torn line
            return False
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _rotate_if_needed(self) -> None:
        """Past ``max_bytes`` the file becomes ``predictions.1.jsonl`` (older ones shift up, the
        oldest beyond ``keep`` goes). Called under the lock; follows a rotation another worker did."""
        if not self._is_current():
            self._reopen()
        if os.fstat(self.fd).st_size < self.max_bytes:
            return
        for index in range(self.keep, 0, -1):
            older = self.path.with_name(f"predictions.{index}.jsonl")
            if older.exists():
                if index == self.keep:
                    older.unlink()
                else:
                    os.replace(older, self.path.with_name(f"predictions.{index + 1}.jsonl"))
        os.replace(self.path, self.path.with_name("predictions.1.jsonl"))
        self._reopen()

    def _is_current(self) -> bool:
        try:
            return os.path.samestat(os.fstat(self.fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def _reopen(self) -> None:
        old = self.fd
        self.fd = self._open()
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.close(old)  # releases the lock held on the old file


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without a custom pattern."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_config() -> dict[str, Any]:
    """Logging for uvicorn and the app: JSON lines on stderr; uvicorn's own access log is off."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            PACKAGE: {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
