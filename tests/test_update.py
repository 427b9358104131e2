"""Updating a project from a newer template release without losing a line (issue 5).

Real Git history, no mocks: each test session builds a throwaway Git copy of this template with
two tagged releases. v1.0.0 is the current template less one config key (``serving.concurrency``);
v2.0.0 changes a template-owned file (the README's title line), changes a user-owned one
(``configs/config.yaml``, in ``_skip_if_exists``: a trailing comment, and the key v1 lacked) and
adds a new file. Projects are rendered at v1.0.0, edited and committed like a user would,
then updated.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from mlfolio import MlfolioError, run_new, run_update
from mlfolio._config import merge_new_keys
from mlfolio._template import release_repo

from tests.helpers import (
    ROOT,
    USER_CONFIG_LINE,
    USER_README_SECTION,
    USER_SEED,
    answers,
    commit,
    copier_bin,
    edit_like_a_user,
    git,
    git_env,
    mlfolio,
    run,
)

V1, V2 = "v1.0.0", "v2.0.0"
TITLE_V1 = "# {{ project_name }}\n"
TITLE_V2 = "# {{ project_name }} — a portfolio project\n"
NEW_FILE = "docs/UPGRADING.md"
CONFIG_V2_LINE = "# v2: a line the template added to its default config\n"
# The config key v2 adds (v1 lacks it): ``mlfolio update`` brings it into the user's config.
NEW_KEY_BLOCK = (
    "  # Requests whose heavy work (decoding, cleaning, then the model, one call at a time) runs at once,\n"
    "  # each in a thread off the event loop; more wait their turn while /health keeps answering.\n"
    "  concurrency: 2\n"
)
RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
USER_LINE_ABOVE_RESULTS = "Read this first: the results below come from the demo data."


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Git copy of this template with releases v1.0.0 (as is) and v2.0.0 (three changes)."""
    repo = tmp_path_factory.mktemp("template-repo")
    shutil.copy2(ROOT / "copier.yml", repo / "copier.yml")
    shutil.copytree(ROOT / "template", repo / "template", ignore=shutil.ignore_patterns("__pycache__"))
    config = repo / "template" / "configs" / "config.yaml.jinja"
    current = config.read_text()
    assert NEW_KEY_BLOCK in current, "serving.concurrency changed: update NEW_KEY_BLOCK in this test"
    config.write_text(current.replace(NEW_KEY_BLOCK, ""))
    git(repo, "init", "--quiet")
    commit(repo, "feat: first release")
    git(repo, "tag", V1)
    config.write_text(current)

    readme = repo / "template" / "README.md.jinja"
    text = readme.read_text()
    assert text.startswith(TITLE_V1), "the README's first line changed: update TITLE_V1 in this test"
    readme.write_text(TITLE_V2 + text[len(TITLE_V1) :])
    config.write_text(config.read_text() + CONFIG_V2_LINE)
    (repo / "template" / NEW_FILE).parent.mkdir(parents=True, exist_ok=True)
    (repo / "template" / NEW_FILE).write_text(
        "# Upgrading\n\nRun `mlfolio update`, review `git diff`, commit.\n"
    )
    commit(repo, "feat: second release")
    git(repo, "tag", V2)
    return repo


def new_v1(template_repo: Path, dest: Path, *extra: str, install: bool = False) -> Path:
    """``mlfolio new`` at release v1.0.0: rendered, committed (and synced when ``install``)."""
    flags = [] if install else ["--no-install"]
    result = mlfolio(
        "new",
        str(dest),
        "--defaults",
        "--template",
        str(template_repo),
        "--vcs-ref",
        V1,
        *flags,
        *extra,
        cwd=dest.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert answers(dest)["_commit"] == V1
    assert git(dest, "status", "--porcelain") == ""
    return dest


def assert_updated_keeping_user_edits(project: Path, new_keys: bool = True) -> None:
    """``new_keys``: the update merged v2's config key (mlfolio does; plain Copier leaves the file)."""
    config = (project / "configs" / "config.yaml").read_text()
    assert USER_CONFIG_LINE in config, "the user's config edit was lost"
    assert USER_SEED in config, "the user's seed was lost"
    assert CONFIG_V2_LINE not in config, "a user-owned file was overwritten"
    loaded = yaml.safe_load(config)
    assert loaded["seed"] == 7
    if new_keys:
        assert NEW_KEY_BLOCK in config, "v2's config key did not arrive with its comment"
        assert loaded["serving"]["concurrency"] == 2
    else:
        assert "concurrency" not in config
    readme = (project / "README.md").read_text()
    assert readme.startswith(f"# {answers(project)['project_name']} — a portfolio project\n"), (
        "template change missing"
    )
    assert readme.endswith(USER_README_SECTION), "the user's README section was lost"
    assert (project / NEW_FILE).is_file(), "the new template file did not arrive"
    assert answers(project)["_commit"] == V2
    assert not re.search(r"^<{7} ", readme, re.MULTILINE), "conflict markers left"


def section_between_markers(readme: str) -> str:
    return readme[readme.index(RESULTS_START) : readme.index(RESULTS_END)]


# ---------------------------------------------------------------- fast


def test_plain_copier_update_keeps_user_edits(template_repo: Path, tmp_path: Path) -> None:
    """Scenario 1 through plain ``copier update --defaults``: no mlfolio, no --trust."""
    project = new_v1(template_repo, tmp_path / "p")
    edit_like_a_user(project)
    run([copier_bin(), "update", "--defaults", "--quiet"], cwd=project, env=git_env())
    assert_updated_keeping_user_edits(project, new_keys=False)


def test_pretend_shows_the_changes_and_changes_nothing(template_repo: Path, tmp_path: Path) -> None:
    project = new_v1(template_repo, tmp_path / "p")
    edit_like_a_user(project)
    head = git(project, "rev-parse", "HEAD")
    result = mlfolio("update", "--pretend", "--defaults", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("README.md", NEW_FILE, ".copier-answers.yml"):
        assert name in result.stdout, result.stdout
    assert "Would change" in result.stdout
    assert "new key(s) added" in result.stdout, result.stdout
    assert "serving.concurrency" in result.stdout, result.stdout
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-parse", "HEAD") == head
    assert answers(project)["_commit"] == V1
    assert not (project / NEW_FILE).exists()


@pytest.mark.parametrize("mode", ["inline", "rej"])
def test_colliding_change_is_reported_and_exits_non_zero(
    template_repo: Path, tmp_path: Path, mode: str
) -> None:
    """Scenario 2: the user retitled the README, v2 retitles it too: a conflict, nothing else lost."""
    project = new_v1(template_repo, tmp_path / "p")
    edit_like_a_user(project)
    readme = project / "README.md"
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text("# My own title\n" + "".join(lines[1:]))
    commit(project, "docs: my own title")

    result = mlfolio("update", "--defaults", "--conflict", mode, cwd=project)
    assert result.returncode != 0
    conflicted = "README.md" if mode == "inline" else "README.md.rej"
    assert conflicted in result.stderr, result.stdout + result.stderr
    assert "conflict" in result.stderr.lower()
    text = readme.read_text()
    if mode == "inline":
        assert re.search(r"^<{7} ", text, re.MULTILINE)
        assert "# My own title" in text
        assert "a portfolio project" in text
    else:
        # Copier replays the user's diff on the new render; the hunk that does not apply is kept aside.
        assert "# My own title" in (project / "README.md.rej").read_text()
        assert "a portfolio project" in text
    assert text.endswith(USER_README_SECTION)
    assert USER_CONFIG_LINE in (project / "configs" / "config.yaml").read_text()
    assert (project / NEW_FILE).is_file()
    assert answers(project)["_commit"] == V2


def test_dirty_tree_is_refused_with_no_file_changes(template_repo: Path, tmp_path: Path) -> None:
    project = new_v1(template_repo, tmp_path / "p")
    (project / "Makefile").write_text((project / "Makefile").read_text() + "\n# half-done edit\n")
    (project / "scratch.py").write_text("print('wip')\n")
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts}

    result = mlfolio("update", "--defaults", cwd=project)
    assert result.returncode != 0
    assert "uncommitted changes" in result.stderr
    assert "Makefile" in result.stderr
    assert "scratch.py" in result.stderr
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before
    assert answers(project)["_commit"] == V1


def test_bad_data_pair_is_refused(template_repo: Path, tmp_path: Path) -> None:
    project = new_v1(template_repo, tmp_path / "p")
    result = mlfolio("update", "--defaults", "--data", "serving", cwd=project)
    assert result.returncode != 0
    assert "QUESTION=VALUE" in result.stderr
    assert git(project, "status", "--porcelain") == ""


TEMPLATE_CONFIG = """\
# The project's config.
seed: 42

data:
  # Where the rows come from.
  source: demo
  # How dates are written.
  time_format: null
  min_rows: 50

serving:
  # Most records per request.
  max_batch: 1000

params: {a: 1}
nested:
  inner:
    # A knob.
    knob: 1

monitor:
  # Drift threshold.
  psi: 0.2
"""
USER_CONFIG = """\
# The project's config.
seed: 7   # mine

data:
  # Where the rows come from.
  source: data/raw/mine.csv
  min_rows: 20
  my_own: true

serving:
  # Most records per request.
  max_batch: 10

params: {}
nested:
  inner: {}
"""


def test_new_config_keys_arrive_with_their_comments_and_nothing_of_the_users_changes() -> None:
    merged, merge = merge_new_keys(USER_CONFIG, TEMPLATE_CONFIG)
    assert merge.added == ["data.time_format", "monitor"]
    assert merge.not_in_template == ["data.my_own"]
    expected = (
        USER_CONFIG.replace(
            "  source: data/raw/mine.csv\n",
            "  source: data/raw/mine.csv\n  # How dates are written.\n  time_format: null\n",
        )
        + "\nmonitor:\n  # Drift threshold.\n  psi: 0.2\n"
    )
    assert merged == expected  # byte for byte: the user's values, comments and order untouched
    assert merge_new_keys(merged, TEMPLATE_CONFIG)[1].added == []  # a second update adds nothing
    first_in_section = merge_new_keys(
        "serving:\n  # Mine.\n  max_batch: 10\n", "serving:\n  # New.\n  a: 1\n  # Mine.\n  max_batch: 1\n"
    )[0]
    assert first_in_section == "serving:\n  # New.\n  a: 1\n  # Mine.\n  max_batch: 10\n"
    with pytest.raises(MlfolioError, match="not valid YAML"):
        merge_new_keys("seed: [unclosed\n", TEMPLATE_CONFIG)


# ---------------------------------------------------------------- slow: the project still works


@pytest.mark.slow
def test_update_keeps_user_edits_and_the_project_still_passes(template_repo: Path, tmp_path: Path) -> None:
    """Scenario 1 through ``run_update``: edits survive, v2 arrives, the project's tests pass."""
    project = new_v1(template_repo, tmp_path / "p", install=True)
    edit_like_a_user(project)
    # The README's results section, filled by the project's own pipeline, with a user line above it.
    run(["make", "all"], cwd=project)
    run(["make", "report"], cwd=project)
    readme = project / "README.md"
    readme.write_text(
        readme.read_text().replace(RESULTS_START, f"{USER_LINE_ABOVE_RESULTS}\n{RESULTS_START}", 1)
    )
    commit(project, "docs: results of my first run")
    results = section_between_markers(readme.read_text())
    assert "Run `make all && make report`" not in results
    start = time.perf_counter()
    result = run_update(project, defaults=True)
    seconds = time.perf_counter() - start
    print(f"\nmlfolio update v1 -> v2 of a default project: {seconds:.1f} s")  # recorded in the note
    assert result.conflicts == []
    assert {name for _, name in result.changed} >= {"README.md", NEW_FILE, ".copier-answers.yml"}
    assert result.config.added == ["serving.concurrency"]
    assert result.config.not_in_template == []
    assert not result.synced, "no dependency changed, so no re-sync"
    assert_updated_keeping_user_edits(project)
    updated = readme.read_text()
    assert f"{USER_LINE_ABOVE_RESULTS}\n{RESULTS_START}" in updated, (
        "the user's line above the results was lost"
    )
    assert section_between_markers(updated) == results, "the update touched the filled results section"
    run(["make", "report"], cwd=project)
    assert readme.read_text() == updated, "make report after the update changed README.md"
    run(["uv", "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)


@pytest.mark.slow
def test_reanswering_serving_adds_the_service_and_its_tests(template_repo: Path, tmp_path: Path) -> None:
    """Scenario 3: ``--data serving=fastapi`` on update is Copier's re-answer path."""
    project = new_v1(template_repo, tmp_path / "p", "--serving", "none", install=True)
    slug = answers(project)["project_slug"]
    assert not (project / "src" / slug / "serve").exists()
    edit_like_a_user(project)

    result = mlfolio("update", "--defaults", "--data", "serving=fastapi", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "serving.concurrency" in result.stdout, result.stdout
    assert answers(project)["serving"] == "fastapi"
    assert (project / "src" / slug / "serve" / "app.py").is_file()
    assert (project / "tests" / "test_serve.py").is_file()
    assert "fastapi" in (project / "pyproject.toml").read_text()
    assert "re-synced" in result.stdout, "pyproject.toml changed, so the environment is re-synced"
    assert_updated_keeping_user_edits(project)
    assert "fastapi" in (project / "uv.lock").read_text(), "the lock file follows the new dependencies"
    run(["uv", "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)


def test_bundled_template_releases_accumulate_so_wheel_installs_can_update(tmp_path: Path) -> None:
    """A wheel's bundled template becomes tag v<version> in a local repo; an upgrade adds the next tag."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy2(ROOT / "copier.yml", bundle / "copier.yml")
    shutil.copytree(ROOT / "template", bundle / "template", ignore=shutil.ignore_patterns("__pycache__"))
    store = tmp_path / "store"
    repo, tag = release_repo(bundle, "1.0.0", store)
    assert tag == V1
    assert release_repo(bundle, "1.0.0", store) == (repo, V1), "same version: reused"
    project = run_new(tmp_path / "p", defaults=True, template=str(repo), vcs_ref=V1, install=False).path
    edit_like_a_user(project)

    (bundle / "template" / NEW_FILE).parent.mkdir(parents=True)
    (bundle / "template" / NEW_FILE).write_text("# Upgrading\n")  # what mlfolio 1.1.0 ships
    release_repo(bundle, "1.1.0", store)
    assert git(repo, "tag", "--list").split() == [V1, "v1.1.0"]
    result = run_update(project, defaults=True, sync=False)
    assert result.conflicts == []
    assert answers(project)["_commit"] == "v1.1.0"
    assert (project / NEW_FILE).is_file()
    assert USER_CONFIG_LINE in (project / "configs" / "config.yaml").read_text()
