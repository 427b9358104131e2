"""Projects rendered from earlier releases update to this template and still work (issue 29).

Real history, no stand-ins: a clone of this repository tags the commit of the first release (v0.1.0,
the one the CHANGELOG records) and the first commit that offered each of time series, image and
text; the template under test (``HEAD`` with any uncommitted changes) is committed on top as the
next release. A project rendered at each old commit is edited like a user would (a new seed, a note
in the config, a README section, a file of their own) and updated with ``mlfolio update``. It must
then be, file for file, a fresh render of this template with the same answers plus the user's
edits (so every config key added since arrived), and its own tests and ``make all`` must pass under
the user's seed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    OWN_TESTS,
    ROOT,
    USER_CONFIG_LINE,
    USER_README_SECTION,
    USER_SEED,
    answers,
    copy_command,
    git,
    mlfolio,
    run,
)
from tests.helpers import edit_like_a_user as edit_config_and_readme

# tag to give the commit: (commit, the modality it first offered). Hashes from `git log`; the
# release's is the one the CHANGELOG's v0.1.0 entry was committed with.
HISTORY = {
    "v0.1.0": ("92096fe784d967756f0e39dc5a6794ce0c7bfacd", "tabular"),  # chore: release v0.1.0
    "v0.1.1": ("4ac56caa4b693f57bf508d174fd1269d229ed3ed", "timeseries"),  # issue 14
    "v0.1.2": ("db8cef5006a604bb217945593393fafa8978f8aa", "image"),  # issue 13
    "v0.1.3": ("c96dcde70e5bd49738127740126d894787d5431c", "text"),  # issue 19
}
UNDER_TEST = "v1.0.0"
USER_FILE = "notes/ideas.md"
# Files the update may hold beyond a fresh render: the user's own, and the lock ``uv sync`` wrote.
NOT_RENDERED = {USER_FILE, "uv.lock"}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository with the old commits tagged and the template under test on top."""
    repo = tmp_path_factory.mktemp("history") / "template"
    run(["git", "clone", "--quiet", str(ROOT), str(repo)], cwd=ROOT)
    missing = [
        sha
        for sha, _ in HISTORY.values()
        if run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, check=False).returncode
    ]
    assert not missing, (
        f"{ROOT} lacks the commits {missing}: this test needs the repository's whole history "
        "(a shallow clone: git fetch --unshallow)"
    )
    for tag, (sha, _) in HISTORY.items():
        git(repo, "tag", tag, sha)
    shutil.rmtree(repo / "template")
    shutil.copytree(ROOT / "template", repo / "template", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "copier.yml", repo / "copier.yml")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "feat: the template under test")
    git(repo, "tag", UNDER_TEST)
    return repo


def edit_like_a_user(project: Path) -> None:
    """The user's config and README edits, and a file of their own."""
    (project / USER_FILE).parent.mkdir()
    (project / USER_FILE).write_text("# Ideas\n\n- try class weights\n")
    edit_config_and_readme(project)


def added_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of ``new`` that ``old`` lacks; a whole new section is one key."""
    found = []
    for key, value in new.items():
        if key not in old:
            found.append(f"{prefix}{key}")
        elif isinstance(value, dict) and isinstance(old[key], dict):
            found += added_keys(old[key], value, f"{prefix}{key}.")
    return found


def kept_or_added(old: Any, fresh: Any) -> Any:
    """The config an update leaves (the user owns it): the user's value for every key they had, even
    where the template's default changed since; the template's default for every key it added; and
    the user's keys the template no longer reads (named by ``mlfolio update``, never deleted)."""
    if not (isinstance(old, dict) and isinstance(fresh, dict)):
        return old
    merged = {key: kept_or_added(old[key], value) if key in old else value for key, value in fresh.items()}
    return {**{key: value for key, value in old.items() if key not in fresh}, **merged}


def fresh_render(history: Path, project: Path, dest: Path) -> Path:
    """This template rendered anew with the updated project's answers."""
    data = {key: value for key, value in answers(project).items() if not key.startswith("_")}
    run(copy_command(dest, data, src=history, ref=UNDER_TEST), cwd=dest.parent)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("tag", list(HISTORY))
def test_a_project_from_an_earlier_release_updates_keeping_edits_and_still_passes(
    history: Path, tag: str, tmp_path: Path
) -> None:
    modality = HISTORY[tag][1]
    project = tmp_path / "project"
    flags = [] if modality == "tabular" else ["--modality", modality]
    at_tag = ["--template", str(history), "--vcs-ref", tag]
    made = mlfolio("new", str(project), "--defaults", *at_tag, "--no-install", *flags, cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert answers(project)["_commit"] == tag
    assert answers(project).get("modality", "tabular") == modality
    edit_like_a_user(project)
    old_config = yaml.safe_load((project / "configs" / "config.yaml").read_text())

    updated = mlfolio("update", "--defaults", cwd=project)

    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert answers(project)["_commit"] == UNDER_TEST
    fresh = fresh_render(history, project, tmp_path / "fresh")
    rendered = {str(path.relative_to(fresh)) for path in fresh.rglob("*") if path.is_file()}
    git(project, "add", "--all")
    held = set(git(project, "ls-files").split())
    assert held - rendered <= NOT_RENDERED, f"left behind by the update: {held - rendered - NOT_RENDERED}"
    assert rendered <= held, f"missing after the update: {rendered - held}"
    differ = {name for name in rendered if (project / name).read_bytes() != (fresh / name).read_bytes()}
    assert differ == {"README.md", "configs/config.yaml"}, "only the user's edits may differ"
    assert (project / "README.md").read_text() == (fresh / "README.md").read_text() + USER_README_SECTION
    assert (project / USER_FILE).read_text().startswith("# Ideas")

    config_text = (project / "configs" / "config.yaml").read_text()
    assert USER_SEED in config_text, "the user's seed was lost"
    assert USER_CONFIG_LINE in config_text, "the user's config comment was lost"
    config = yaml.safe_load(config_text)
    expected = yaml.safe_load((fresh / "configs" / "config.yaml").read_text())
    assert old_config["seed"] == 7
    assert config == kept_or_added(old_config, expected), "every key of this template, the user's values kept"
    new_keys = added_keys(old_config, expected)
    if tag == "v0.1.0":
        assert len(new_keys) > 10, new_keys  # the first release lacked most of today's settings
    assert new_keys, "every old release lacks a key the template has now"
    printed = " ".join(updated.stdout.split())
    assert all(key in printed for key in new_keys), f"mlfolio update must list {new_keys}:\n{printed}"
    retired = added_keys(expected, old_config)  # what the user has that this template no longer reads
    assert all(key in printed for key in retired), f"mlfolio update must name {retired}:\n{printed}"

    run(OWN_TESTS, cwd=project)
    run(["make", "all"], cwd=project)
