"""Where the template comes from: bundled, the source checkout, a path or a Git URL.

A wheel carries ``copier.yml`` and ``template/`` under ``mlfolio/_template`` (see pyproject's
force-include), so ``mlfolio new`` works offline. Copier can only *update* from a Git template, so
the bundle is committed and tagged ``v<mlfolio version>`` in a local release repository (one commit
per installed version, kept across upgrades): a project made with mlfolio 0.1 updates to the
template of mlfolio 0.2 once that is installed. An editable install uses the checkout two levels
above the package instead, which is a Git repository already, at ``HEAD`` (with any uncommitted
changes): Copier's own default would be the newest release tag, not the template being worked on.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from mlfolio import __version__
from mlfolio._errors import MlfolioError
from mlfolio._git import git

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED = PACKAGE_DIR / "_template"
CHECKOUT = PACKAGE_DIR.parents[1]

# Forms Copier/Git understand as remote: scheme URLs, scp-like "user@host:path", gh:/gl: shortcuts.
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:|gh:|gl:)", re.IGNORECASE)


def data_dir() -> Path:
    """Where mlfolio keeps its release repository: $MLFOLIO_DATA_DIR, else the XDG data folder."""
    explicit = os.environ.get("MLFOLIO_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mlfolio"


def release_repo(bundle: Path, version: str, store: Path) -> tuple[Path, str]:
    """The Git repository under ``store`` holding ``bundle`` as tag ``v<version>``; (path, tag).

    Idempotent: an existing tag is reused as is, a new version becomes a new commit on top of the
    previous ones, so Copier sees the whole release history when it updates a project.
    """
    repo, tag = store / "template", f"v{version}"
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", cwd=repo)
    if git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", cwd=repo, check=False).returncode == 0:
        return repo, tag
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for child in bundle.iterdir():
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            shutil.copytree(child, repo / child.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(child, repo / child.name)
    env = dict(os.environ)
    for role in ("AUTHOR", "COMMITTER"):  # the repository is mlfolio's, not the user's
        env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = "mlfolio", "mlfolio@localhost"
    git("add", "--all", cwd=repo)
    message = f"mlfolio template {tag}"
    git(
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-q",
        "--no-verify",
        "--allow-empty",
        "-m",
        message,
        cwd=repo,
        env=env,
    )
    git("-c", "tag.gpgsign=false", "tag", tag, cwd=repo)
    return repo, tag


def default_template() -> tuple[Path, str | None]:
    """The template shipped with this installation, and the ref to render it at (None: Copier's default)."""
    if (BUNDLED / "copier.yml").is_file():
        return release_repo(BUNDLED, __version__, data_dir())
    if (CHECKOUT / "copier.yml").is_file():
        return CHECKOUT, "HEAD"
    raise MlfolioError(
        "No bundled template found: this mlfolio installation is incomplete. "
        "Reinstall it, or pass --template PATH_OR_GIT_URL."
    )


def is_remote(source: str) -> bool:
    """Whether ``source`` names a remote Git repository rather than a local folder."""
    return bool(_REMOTE.match(source))


def resolve_template(source: str | None) -> tuple[str, str | None]:
    """The template source to hand to Copier (an absolute local path or the URL as given) and its
    default ref.

    Local paths are made absolute because Copier records ``_src_path`` verbatim in the answers
    file, and a relative one would break ``update`` from any other working directory.
    """
    if source is None:
        path, ref = default_template()
        return str(path), ref
    if is_remote(source):
        return source, None
    path = Path(source).expanduser().resolve()
    if not (path / "copier.yml").is_file() and not (path / "copier.yaml").is_file():
        raise MlfolioError(f"--template {source}: no copier.yml in {path}")
    return str(path), None
