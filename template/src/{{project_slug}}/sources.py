"""Getting the data, whatever it is: a pinned, atomic download, a CSV read as it was written, and
the error every data stage raises.

Shared by every kind of project, so sources behave alike: a URL is written to a temporary file and
moved into place only when complete, refused when its SHA-256 is not the pinned one, and any failure
is one line naming the URL; a CSV is read in the encoding it was written in (reported, never guessed
silently) with its own column names.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
from charset_normalizer import from_bytes

from . import artifacts


class DataValidationError(ValueError):
    """The data cannot be used as it is; the message names the file or column and what is wrong."""


def download(url: str, destination: Path, sha256: str | None) -> Path:
    """Fetch ``url`` to ``destination``; refuse it when it does not match the pinned SHA-256."""
    try:
        with (
            urllib.request.urlopen(url, timeout=60) as response,  # noqa: S310 - http(s)/file only
            artifacts.atomic_path(destination) as tmp,
        ):
            with tmp.open("wb") as handle:
                shutil.copyfileobj(response, handle)
            actual = artifacts.sha256_file(tmp)
            if sha256 and actual.lower() != sha256.lower():
                raise DataValidationError(f"sha256 mismatch for {url}: expected {sha256}, got {actual}")
    except urllib.error.HTTPError as error:
        raise DataValidationError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DataValidationError(f"cannot download {url}: {error.reason}") from None
    except (TimeoutError, ConnectionError) as error:
        raise DataValidationError(f"cannot download {url}: {error or type(error).__name__}") from None
    if not sha256:
        print(f"warning: {url} is not pinned; add `sha256: {actual}` to data: in the config")
    return destination


def detect_encoding(path: Path, configured: str | None) -> str:
    """The text encoding of a CSV: the configured one, else the first common one that decodes it.

    UTF-8 (with or without a BOM), UTF-16 with a BOM, then Windows-1252 (what spreadsheet programs
    write in Western Europe and the Americas); only when none decodes does charset-normalizer guess.
    The encoding used is reported in the output, the manifest and the model card, so a wrong guess is
    visible; ``data.encoding`` pins the right one.
    """
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return configured or "utf-16"
    if not raw.strip():
        raise DataValidationError(f"{path} is empty")
    if b"\x00" in raw[:65536]:
        raise DataValidationError(f"{path} looks like a binary file, not a CSV")
    if configured:
        return configured
    for encoding in ("utf-8", "cp1252"):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return "utf-8-sig" if encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf") else encoding
    best = from_bytes(raw).best()
    if best is None:
        raise DataValidationError(
            f"{path} is not text in any common encoding; set data.encoding in the config"
        )
    return str(best.encoding)


def _check_header(path: Path, encoding: str, columns: list[str]) -> None:
    """Refuse headers that name two columns alike: pandas would rename one of them silently."""
    header = pd.read_csv(path, header=None, nrows=1, encoding=encoding, dtype=str).iloc[0].tolist()
    names = [str(name) for name in header if isinstance(name, str)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataValidationError(
            f"{path}: column names used more than once: {', '.join(map(repr, repeated))}; "
            "rename them in the file"
        )
    if len(header) != len(columns):
        raise DataValidationError(f"{path}: the header has {len(header)} names for {len(columns)} columns")


def read_table(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """A CSV or parquet file with its own column names, and the encoding it was read with."""
    if not path.is_file():
        raise DataValidationError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path), "parquet"
        except (OSError, ValueError) as error:
            raise DataValidationError(f"{path} cannot be read as parquet ({error})") from None
    used = detect_encoding(path, encoding)
    try:
        frame = pd.read_csv(path, encoding=used, encoding_errors="strict", low_memory=False)
    except UnicodeDecodeError as error:
        raise DataValidationError(f"{path} is not valid {used} ({error.reason}); set data.encoding") from None
    except LookupError:
        raise DataValidationError(f"data.encoding {used!r} is not an encoding Python knows") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataValidationError(f"{path} cannot be parsed as CSV: {str(error).strip()}") from None
    _check_header(path, used, [str(column) for column in frame.columns])
    return frame, used
