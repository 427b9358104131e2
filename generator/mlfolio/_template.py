"""Where the template comes from: bundled, the source checkout, a path or a Git URL.

A wheel carries ``copier.yml`` and ``template/`` under ``mlfolio/_template`` (see pyproject's
force-include), so ``mlfolio new`` works offline. An editable install finds the checkout two
levels above the package instead, which is also a Git repository that ``mlfolio update`` can use.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlfolio._errors import MlfolioError

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED = PACKAGE_DIR / "_template"
CHECKOUT = PACKAGE_DIR.parents[1]

# Forms Copier/Git understand as remote: scheme URLs, scp-like "user@host:path", gh:/gl: shortcuts.
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:|gh:|gl:)", re.IGNORECASE)


def default_template() -> Path:
    """The template shipped with this installation of mlfolio."""
    for candidate in (BUNDLED, CHECKOUT):
        if (candidate / "copier.yml").is_file():
            return candidate
    raise MlfolioError(
        "No bundled template found: this mlfolio installation is incomplete. "
        "Reinstall it, or pass --template PATH_OR_GIT_URL."
    )


def is_remote(source: str) -> bool:
    """Whether ``source`` names a remote Git repository rather than a local folder."""
    return bool(_REMOTE.match(source))


def resolve_template(source: str | None) -> str:
    """The template source to hand to Copier: an absolute local path or the URL as given.

    Local paths are made absolute because Copier records ``_src_path`` verbatim in the answers
    file, and a relative one would break ``update`` from any other working directory.
    """
    if source is None:
        return str(default_template())
    if is_remote(source):
        return source
    path = Path(source).expanduser().resolve()
    if not (path / "copier.yml").is_file() and not (path / "copier.yaml").is_file():
        raise MlfolioError(f"--template {source}: no copier.yml in {path}")
    return str(path)
