"""Getting the data, whatever it is: a pinned, atomic download, and the error every data stage raises.

Shared by every kind of project, so a URL source behaves alike: written to a temporary file and
moved into place only when complete, refused when its SHA-256 is not the pinned one, and any failure
is one line naming the URL.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

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
