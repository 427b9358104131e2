"""Git conventions, CI, pre-commit and Docker: in every render, and in mlfolio itself.

Fast tests render without installing and run the validators this repository locks
(check-jsonschema, zizmor, hadolint); each validator is also shown failing on a broken input, so a
pass means something. The slow ones install a render of each framework and run its own hooks, and
rehearse the Docker image: no OCI builder can pull a base image here (registries other than the
package indexes are unreachable), so the Dockerfile's own instructions are followed on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, answers, free_port, http, project_env, render, run, server_process
from tests.matrix import FRAMEWORKS

BIN = Path(sys.executable).parent
# The Apache License 2.0 as published (LICENSE-2.0.txt).
APACHE_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
CI_FILES = (".github", ".gitlab", ".gitlab-ci.yml")


def tool(name: str) -> str:
    """A console script of this repository's locked dev environment."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def check_jsonschema(schema: str, *files: Path, check: bool = True) -> int:
    command = [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)]
    return run(command, cwd=ROOT, check=check).returncode


def zizmor(*paths: Path, check: bool = True) -> str:
    result = run([tool("zizmor"), "--offline", "--no-progress", *map(str, paths)], cwd=ROOT, check=check)
    return result.stdout + result.stderr


def hadolint(dockerfile: Path, check: bool = True) -> int:
    return run([tool("hadolint"), str(dockerfile)], cwd=ROOT, check=check).returncode


def assert_hardened_workflow(path: Path) -> dict[str, object]:
    """Least permissions, every action pinned to a commit SHA, no persisted checkout credentials."""
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {"contents": "read"}, path
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = [step for step in steps if "uses" in step]
    assert uses, f"{path} uses no action?"
    for step in uses:
        assert PINNED.match(step["uses"]), f"{path}: {step['uses']} is not pinned to a full commit SHA"
        if step["uses"].startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, path
    return dict(workflow)


# ---------------------------------------------------------------- renders without installing


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four renders covering every CI provider, every license and both serving choices."""
    base = tmp_path_factory.mktemp("conventions")
    variants = {
        "github": {},  # the defaults: GitHub, MIT, FastAPI
        "gitlab": {"ci_provider": "gitlab", "license": "Apache-2.0"},
        "none": {"ci_provider": "none", "license": "BSD-3-Clause", "serving": "none"},
        "proprietary": {"license": "Proprietary", "python_version": "3.12", "dataset": "csv"},
    }
    return {name: render(base / name, data) for name, data in variants.items()}


def test_github_workflows_validate_and_pass_zizmor(renders: dict[str, Path]) -> None:
    workflows = renders["github"] / ".github" / "workflows"
    files = sorted(workflows.glob("*.yml"))
    assert [file.name for file in files] == ["ci.yml", "pages.yml", "retrain.yml"]
    check_jsonschema("vendor.github-workflows", *files)
    zizmor(workflows)

    ci = assert_hardened_workflow(workflows / "ci.yml")
    assert set(ci[True]) == {"push", "pull_request"}  # type: ignore[call-overload]  # YAML 1.1: on = True
    assert ci["concurrency"]["cancel-in-progress"] is True  # type: ignore[index]
    text = (workflows / "ci.yml").read_text()
    for command in ("make lint", "make typecheck", "make test", "make data train evaluate", "docker build"):
        assert command in text, command
    assert "enable-cache: true" in text

    retrain = assert_hardened_workflow(workflows / "retrain.yml")
    assert set(retrain[True]) == {"schedule", "workflow_dispatch"}  # type: ignore[call-overload]
    steps = retrain["jobs"]["retrain"]["steps"]  # type: ignore[index]
    runs = [step.get("run") for step in steps]
    assert runs.index("make data") < runs.index("make train") < runs.index("make evaluate")
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert {"reports/", "MODEL_CARD.md"} <= set(upload["with"]["path"].split())

    github = renders["github"] / ".github"
    for name in ("pull_request_template.md", "CODEOWNERS", "ISSUE_TEMPLATE/bug_report.md",
                 "ISSUE_TEMPLATE/feature_request.md", "ISSUE_TEMPLATE/data_problem.md"):  # fmt: skip
        assert (github / name).is_file(), name
    assert (github / "CODEOWNERS").read_text().split()[-2:] == ["*", "@janedoe"]


def test_pages_workflow_gives_pages_rights_to_the_deploy_job_only(renders: dict[str, Path]) -> None:
    """The site is built from a pipeline run by a read-only job; only deploying may write to Pages."""
    path = renders["github"] / ".github" / "workflows" / "pages.yml"
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {}, "nothing granted to every job"
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["deploy"]["needs"] == "build"
    assert jobs["deploy"]["environment"]["name"] == "github-pages"
    runs = [step.get("run") for step in jobs["build"]["steps"]]
    assert runs.index("make data train evaluate") < runs.index("make site")
    for step in [step for job in jobs.values() for step in job["steps"] if "uses" in step]:
        assert PINNED.match(step["uses"]), step["uses"]
        if step["uses"].startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    upload = next(s for s in jobs["build"]["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "build/site"
    # The easy mistake, Pages rights granted to the whole workflow (so to the build too): zizmor fails it.
    wide = path.read_text().replace(
        "permissions: {}", "permissions:\n  contents: read\n  pages: write\n  id-token: write", 1
    )
    wide = wide.replace("    permissions:\n      contents: read\n", "", 1)
    assert "pages" in yaml.safe_load(wide)["permissions"]
    (bad := renders["github"].parent / "wide" / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (bad / "pages.yml").write_text(wide)
    findings = run([tool("zizmor"), "--offline", str(bad)], cwd=ROOT, check=False)
    assert findings.returncode != 0
    assert "excessive-permissions" in findings.stdout, findings.stdout


def test_the_workflow_checks_can_fail(renders: dict[str, Path], tmp_path: Path) -> None:
    """An unpinned action with persisted credentials and an injectable expression: both tools object."""
    bad = tmp_path / ".github" / "workflows" / "ci.yml"
    bad.parent.mkdir(parents=True)
    text = (renders["github"] / ".github" / "workflows" / "ci.yml").read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@main", text)
    text = text.replace("persist-credentials: false", "persist-credentials: true")
    text = text.replace("run: make test", 'run: echo "${{ github.event.pull_request.title }}"')
    bad.write_text(text)
    findings = run([tool("zizmor"), "--offline", str(bad.parent)], cwd=ROOT, check=False)
    assert findings.returncode != 0
    assert "template-injection" in findings.stdout, findings.stdout
    assert "unpinned-uses" in findings.stdout, findings.stdout
    bad.write_text(text.replace("runs-on:", "runs_on:", 1))
    assert check_jsonschema("vendor.github-workflows", bad, check=False) != 0


def test_ci_without_reachable_data_runs_the_checks_only(renders: dict[str, Path]) -> None:
    """A local CSV lives under the git-ignored data/raw/: CI cannot run the pipeline or retrain."""
    workflows = renders["proprietary"] / ".github" / "workflows"
    assert [file.name for file in workflows.glob("*.yml")] == ["ci.yml"]
    check_jsonschema("vendor.github-workflows", workflows / "ci.yml")
    assert list(yaml.safe_load((workflows / "ci.yml").read_text())["jobs"]) == ["checks"]


def test_gitlab_ci_validates_and_has_no_github_files(renders: dict[str, Path]) -> None:
    project = renders["gitlab"]
    check_jsonschema("vendor.gitlab-ci", project / ".gitlab-ci.yml")
    pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert {"lint", "typecheck", "test", "pipeline", "docker", "pages"} <= set(pipeline)
    assert pipeline["pipeline"]["artifacts"]["when"] == "always"
    assert "make site" in pipeline["pipeline"]["script"]
    assert "build/site/" in pipeline["pipeline"]["artifacts"]["paths"]
    pages = pipeline["pages"]  # GitLab publishes a job named pages whose artifact is public/
    assert pages["needs"] == ["pipeline"]
    assert pages["artifacts"]["paths"] == ["public"]
    assert pages["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    for name in ("merge_request_templates/Default.md", "issue_templates/Bug.md",
                 "issue_templates/Feature.md", "issue_templates/Data_problem.md", "CODEOWNERS"):  # fmt: skip
        assert (project / ".gitlab" / name).is_file(), name
    assert not (project / ".github").exists()
    assert "merge request" in (project / "CONTRIBUTING.md").read_text()


def test_no_ci_provider_renders_no_ci_files(renders: dict[str, Path]) -> None:
    assert [name for name in CI_FILES if (renders["none"] / name).exists()] == []
    assert (renders["none"] / ".pre-commit-config.yaml").is_file(), "hooks do not depend on the CI"
    for doc in ("README.md", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md"):
        assert not re.search(r"\bCI\b", (renders["none"] / doc).read_text()), f"{doc} promises a CI"
    for name in CI_FILES[1:]:
        assert not (renders["github"] / name).exists(), name


def test_dockerfile_passes_hadolint_and_is_minimal(renders: dict[str, Path], tmp_path: Path) -> None:
    for name in ("github", "proprietary"):
        project = renders[name]
        dockerfile = project / "Dockerfile"
        hadolint(dockerfile)
        text = dockerfile.read_text()
        version = yaml.safe_load((project / ".copier-answers.yml").read_text())["python_version"]
        # Two venvs built (every dependency; the `serve` group alone), one final stage.
        assert len(re.findall(rf"^FROM python:{re.escape(version)}-slim", text, re.M)) == 3, text
        assert "uv sync --frozen --no-dev" in text
        assert "uv sync --frozen --only-group serve" in text
        assert re.search(r"^USER \d+:\d+$", text, re.M), "runs as an unprivileged user"
        assert re.search(r"^HEALTHCHECK .*\n.*/health", text, re.M)
        runtime = text.split(" AS runtime", 1)[1]
        copied = re.findall(r"^COPY (?:--from=\S+ )?(\S+)", runtime, re.M)
        assert copied == ["/app/.venv", "configs", "models/model"], copied
        ignored = [line for line in (project / ".dockerignore").read_text().splitlines() if line[:1] != "#"]
        assert ignored[:2] == ["*", "!pyproject.toml"], "everything out unless named"
        assert "!models/model/" in ignored
    # The same uv in the image and in CI.
    uv_image = re.search(r"ghcr.io/astral-sh/uv:(\S+)", (renders["github"] / "Dockerfile").read_text())
    assert uv_image
    assert f'version: "{uv_image[1]}"' in (renders["github"] / ".github/workflows/ci.yml").read_text()
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python serve.py\n")
    assert hadolint(bad, check=False) != 0
    assert not (renders["none"] / "Dockerfile").exists(), "no API, no image"
    assert not (renders["none"] / ".dockerignore").exists()
    assert not (renders["none"] / "deploy").exists(), "no image, nothing to deploy"
    assert "kubectl" not in (renders["none"] / "pyproject.toml").read_text()


def test_each_license_choice_renders_its_text(renders: dict[str, Path]) -> None:
    def license_of(name: str) -> str:
        return (renders[name] / "LICENSE").read_text()

    assert license_of("github").startswith("MIT License\n\nCopyright (c) Jane Doe\n")
    assert "Permission is hereby granted, free of charge" in license_of("github")
    assert hashlib.sha256(license_of("gitlab").encode()).hexdigest() == APACHE_SHA256
    assert license_of("none").startswith("BSD 3-Clause License\n\nCopyright (c) Jane Doe\n")
    assert "3. Neither the name of the copyright holder" in license_of("none")
    assert "All rights reserved" in license_of("proprietary")
    assert "Permission is hereby granted" not in license_of("proprietary")
    for name, spdx in (("github", "MIT"), ("gitlab", "Apache-2.0"), ("none", "BSD-3-Clause"),
                       ("proprietary", "LicenseRef-Proprietary")):  # fmt: skip
        assert f'license = "{spdx}"' in (renders[name] / "pyproject.toml").read_text()


def test_git_conventions_files(renders: dict[str, Path]) -> None:
    project = renders["github"]
    for name in (".gitattributes", ".editorconfig", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md"):
        assert (project / name).is_file(), name
    assert "## [Unreleased]" in (project / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in (project / "CHANGELOG.md").read_text()
    contributing = (project / "CONTRIBUTING.md").read_text()
    for topic in ("## Branches", "Conventional Commits", "pull request flow", "make check"):
        assert topic.lower() in contributing.lower(), topic
    assert "jane.doe@example.com" in (project / "SECURITY.md").read_text()
    run(["git", "init", "--quiet"], cwd=project)
    paths = ["data/raw/x.csv", "models/model/m.skops", "mlruns/1", "a.pt", "src/m.pt", ".env", "uv.lock"]
    ignored = run(["git", "check-ignore", "--no-index", *paths], cwd=project, check=False).stdout.split()
    assert ignored == paths[:-1], "data, models, runs and weights ignored; uv.lock committed"
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    ids = {hook["id"] for repo in hooks["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "mypy", "nbstripout", "check-added-large-files",
            "detect-private-key", "conventional-commit"} <= ids  # fmt: skip
    assert all(repo["repo"] == "local" for repo in hooks["repos"]), "nothing to download"
    assert all(hook["entry"].startswith("uv run --frozen ") for hook in hooks["repos"][0]["hooks"])


def test_mlfolio_own_workflow_validates_and_passes_zizmor() -> None:
    workflows = ROOT / ".github" / "workflows"
    files = sorted(workflows.glob("*.yml"))
    assert files, "mlfolio has no workflow"
    check_jsonschema("vendor.github-workflows", *files)
    zizmor(workflows)
    for file in files:
        assert_hardened_workflow(file)
    assert "bash .ci/run" in (workflows / "ci.yml").read_text()


# ---------------------------------------------------------------- slow: the hooks for real


# One render per framework; the other answers vary so every CI provider and license file meets the hooks.
HOOK_RENDERS = {
    "sklearn": {},
    "xgboost": {"ci_provider": "gitlab", "license": "Apache-2.0"},
    "pytorch": {"ci_provider": "none", "serving": "none", "license": "Proprietary"},
    "tensorflow": {"license": "BSD-3-Clause"},
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_hooks_pass_on_a_fresh_render_and_enforce_conventional_commits(
    framework: str, tmp_path: Path
) -> None:
    project = render(tmp_path / framework, {"framework": framework, **HOOK_RENDERS[framework]})
    env = project_env()
    env.update(GIT_AUTHOR_NAME="T", GIT_AUTHOR_EMAIL="t@example.org")
    env.update(GIT_COMMITTER_NAME="T", GIT_COMMITTER_EMAIL="t@example.org")
    run(["git", "init", "--quiet"], cwd=project, env=env)
    run(["uv", "sync", "--quiet"], cwd=project, env=env)
    run(["git", "add", "--all"], cwd=project, env=env)
    run(["uv", "run", "--frozen", "pre-commit", "run", "--all-files"], cwd=project, env=env, timeout=900)
    run(["git", "diff", "--exit-code", "--stat"], cwd=project, env=env)  # the hooks changed nothing

    run(["uv", "run", "--frozen", "pre-commit", "install"], cwd=project, env=env)
    assert (project / ".git" / "hooks" / "commit-msg").is_file(), "default_install_hook_types"
    rejected = run(["git", "commit", "--quiet", "-m", "bad message"], cwd=project, env=env, check=False)
    assert rejected.returncode != 0
    assert "Conventional Commits" in rejected.stdout + rejected.stderr
    run(["git", "commit", "--quiet", "-m", "feat: add model"], cwd=project, env=env)
    assert run(["git", "log", "--format=%s"], cwd=project, env=env).stdout.split("\n")[0] == "feat: add model"
    assert run(["git", "status", "--porcelain"], cwd=project, env=env).stdout == ""
    shutil.rmtree(project / ".venv", ignore_errors=True)


@pytest.mark.slow
def test_new_leaves_a_custom_hooks_path_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With core.hooksPath set, pre-commit cannot install: the project is still made, with a note."""
    from mlfolio import run_new

    global_config = tmp_path / "gitconfig"
    global_config.write_text(
        f"[core]\n\thooksPath = {tmp_path / 'hooks'}\n[user]\n\tname = T\n\temail = t@example.org\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in project_env().items():
        monkeypatch.setenv(key, value)
    result = run_new(tmp_path / "p", defaults=True)
    assert result.commit
    assert result.synced
    assert not result.hooks
    assert any("core.hooksPath" in note for note in result.notes), result.notes
    assert not (tmp_path / "p" / ".git" / "hooks" / "commit-msg").exists()


# ---------------------------------------------------------------- the image, without an engine


def dockerfile_stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions, continuation lines joined: ``{stage name: [(INSTRUCTION, args)]}``."""
    text = re.sub(r"\\\n\s*", "", dockerfile.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            current = stages.setdefault(args.split(" AS ")[-1].strip(), [])
        current.append((instruction.upper(), args.strip()))
    return stages


def dockerfile_args(dockerfile: Path) -> dict[str, str]:
    """The build arguments declared before the first ``FROM``, with their defaults."""
    args = {}
    for line in dockerfile.read_text().splitlines():
        if line.startswith("FROM "):
            break
        if line.startswith("ARG "):
            name, _, default = line.removeprefix("ARG ").partition("=")
            args[name.strip()] = default.strip()
    return args


def rehearse_stage(
    instructions: list[tuple[str, str]],
    root: Path,
    context: Path,
    stages: dict[str, Path],
    env: dict[str, str],
) -> tuple[Path, dict[str, str]]:
    """Follow one stage's instructions with ``root`` standing for ``/``; return its workdir and env.

    The host's Python and uv stand in for the base images; ``COPY --from`` reads a stage already
    rehearsed; ``RUN`` runs verbatim, with user management and ``chown`` as no-ops (no root here).
    """
    shims = root / ".shims"
    shims.mkdir(parents=True)
    for name in ("groupadd", "useradd", "chown"):
        (shims / name).write_text("#!/bin/sh\nexit 0\n")
        (shims / name).chmod(0o755)
    env = {**env, "PATH": f"{shims}:{env['PATH']}"}
    workdir = root

    def inside(path: str) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else workdir / path

    for instruction, args in instructions:
        if instruction == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value.replace("/app", str(root / "app")).replace("$PATH", env["PATH"])
        elif instruction == "WORKDIR":
            workdir = inside(args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            *sources, target = shlex.split(args)
            source_root = context
            if sources[0].startswith("--from="):
                stage = sources.pop(0).removeprefix("--from=")
                if stage not in stages:  # an image (uv's): the host's uv stands in for it
                    continue
                source_root = stages[stage]
            for source in sources:  # Docker's rules: a folder's contents, a file into a folder/
                origin, destination = source_root / source.lstrip("/"), inside(target)
                if origin.is_dir():
                    shutil.copytree(origin, destination, symlinks=True, dirs_exist_ok=True)
                elif target.endswith("/"):
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination / origin.name)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination)
        elif instruction == "RUN":
            run(["bash", "-euo", "pipefail", "-c", args], cwd=workdir, env=env, timeout=900)
    return workdir, env


@pytest.mark.slow
def as_image_user(workdir: Path, command: list[str], user: str) -> tuple[Path, list[str]]:
    """Serve as the image's USER (not the user who trained), as the container would, where root can.

    The files keep the training user as owner, as ``COPY`` without ``--chown`` leaves them: only
    what the Dockerfile ``chown``s (``data/predictions``) becomes the image user's. The folder moves
    out of pytest's private temporary tree, which other users cannot enter.
    """
    # What the image user needs of the model whoever trained it: every file readable, every folder open.
    for path in [workdir / "models", *(workdir / "models").rglob("*")]:
        needed = 0o005 if path.is_dir() else 0o004
        assert path.stat().st_mode & needed == needed, f"{path} is not readable by the image's user"
    setpriv = shutil.which("setpriv")
    interpreter = (workdir / ".venv" / "bin" / "python").resolve()
    reachable = all(parent.stat().st_mode & 0o001 for parent in interpreter.parents)
    if os.geteuid() != 0 or setpriv is None or not reachable:
        return workdir, command  # here the venv's interpreter lives where only its owner may go
    uid, gid = (int(part) for part in user.split(":"))
    public = Path(tempfile.mkdtemp(prefix="mlfolio-image-"))
    public.chmod(0o755)
    moved = public / "app"
    shutil.move(workdir, moved)
    os.chown(moved / "data" / "predictions", uid, gid)
    return moved, [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]


def test_docker_image_is_rehearsed_and_serves(tmp_path: Path) -> None:
    """No OCI builder can pull base images here, so the Dockerfile's own steps are followed instead.

    What the image build would prove and a lint cannot: ``.dockerignore`` lets through what the
    build needs (Docker's own matching, from docker-py); the API's image (the default build) holds
    only the ``serve`` dependency group and the package: no pandas, scikit-learn or framework, and
    its files alone (the venv, ``configs/``, ``models/model``; no ``src/``, no dev tools) serve a
    prediction from the ONNX graph through the image's ``CMD`` and pass its ``HEALTHCHECK``. The
    jobs image (``--build-arg VENV=full``, ``uv sync --frozen --no-dev --no-editable``) holds every
    runtime dependency and runs the nightly monitor-and-retrain job.
    """
    from docker.utils.build import exclude_paths

    project = render(tmp_path / "project")
    slug = answers(project)["project_slug"]
    env = project_env()
    run(["uv", "sync", "--quiet"], cwd=project, env=env)
    for stage in ("data", "train", "evaluate"):  # evaluate promotes the model that passes its gate
        run(["uv", "run", "--frozen", "python", "-m", slug, stage], cwd=project, env=env)

    context = tmp_path / "context"
    patterns = [p for p in (project / ".dockerignore").read_text().splitlines() if p and p[0] != "#"]
    for name in exclude_paths(str(project), patterns):
        source = project / name
        if source.is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    sent = {path.relative_to(context).parts[0] for path in context.rglob("*")}
    # Docker always sends its own two files along; nothing else leaves the project unless named.
    wanted = {"pyproject.toml", "uv.lock", "README.md", "src", "configs", "models"}
    assert sent == wanted | {"Dockerfile", ".dockerignore"}, sent
    assert not list(context.rglob("__pycache__"))

    stages = dockerfile_stages(project / "Dockerfile")
    assert list(stages) == ["uv", "full", "serve", "venv", "runtime"]
    assert dockerfile_args(project / "Dockerfile") == {"VENV": "serve"}
    assert stages["venv"] == [("FROM", "${VENV} AS venv")]  # the final stage's venv: a build argument
    build_env = {k: v for k, v in env.items() if not k.startswith("UV_PROJECT")}
    built = {name: tmp_path / name for name in ("full", "serve")}
    for name, root in built.items():
        rehearse_stage(stages[name], root, context, {}, build_env)
    images, envs = {}, {}
    for venv, image in (("serve", "runtime"), ("full", "jobs")):
        images[venv], envs[venv] = rehearse_stage(
            stages["runtime"], tmp_path / image, context, {"venv": built[venv]}, build_env
        )
    runtime_env = envs["serve"]
    for root in built.values():
        shutil.rmtree(root)  # as in the image: nothing of the builder stages is left but their copies

    workdir = images["serve"]
    assert sorted(p.name for p in workdir.iterdir()) == [".venv", "configs", "data", "models"]
    assert not (workdir / "src").exists()
    venv_python = workdir / ".venv" / "bin" / "python"
    installed = run([str(venv_python), "-m", "pip", "--version"], cwd=workdir, env=runtime_env, check=False)
    assert installed.returncode != 0, "pip is not in the image's venv (uv installs without it)"
    for dev_tool in ("pytest", "ruff", "mypy"):
        assert not (workdir / ".venv" / "bin" / dev_tool).exists(), f"{dev_tool} in the image"
    sizes = {venv: venv_megabytes(root / ".venv") for venv, root in images.items()}
    print(f"image venvs: API (serve group) {sizes['serve']:.0f} MB, jobs (full) {sizes['full']:.0f} MB")
    (site,) = (workdir / ".venv" / "lib").glob("python*/site-packages")
    for heavy in ("sklearn", "pandas", "scipy", "xgboost", "torch", "tensorflow", "keras", "matplotlib"):
        assert not (site / heavy).exists(), f"{heavy} is in the API image's venv"
    (full_site,) = (images["full"] / ".venv" / "lib").glob("python*/site-packages")
    assert (full_site / "sklearn").is_dir(), "the jobs image has everything (so the check can fail)"

    port = free_port()
    image_command = [loopback(part, port) for part in json.loads(dict(stages["runtime"])["CMD"])]
    workdir, command = as_image_user(workdir, image_command, dict(stages["runtime"])["USER"])
    as_user = command[: len(command) - len(image_command)]
    with server_process(command, workdir, port, tmp_path / "image.log", runtime_env) as base:
        healthcheck = dict(stages["runtime"])["HEALTHCHECK"].split(" CMD ", 1)[1]
        probe = [part.replace(":8000/", f":{port}/") for part in json.loads(healthcheck)]
        run(probe, cwd=workdir, env=runtime_env)
        metadata = http("GET", f"{base}/metadata")[1]
        assert metadata["runtime"]["name"] == "onnxruntime", metadata["runtime"]  # it has no native model
        example = metadata["example"]
        status, body = http("POST", f"{base}/predict", {"records": [example]})
        assert status == 200, body
        assert len(body["predictions"]) == 1
    assert (workdir / "data" / "predictions" / "predictions.jsonl").is_file(), "the writable place is used"
    jobs, _ = as_image_user(images["full"], image_command, dict(stages["runtime"])["USER"])
    rehearse_kubernetes(project, (workdir, runtime_env), (jobs, envs["full"]), as_user)
    for image in (workdir, jobs):
        if image.parent.name.startswith("mlfolio-image-"):
            shutil.rmtree(image.parent)


def venv_megabytes(venv: Path) -> float:
    """What a venv takes on disk (files only, as an image layer stores them)."""
    files = [path for path in venv.rglob("*") if path.is_file() and not path.is_symlink()]
    return sum(path.stat().st_size for path in files) / 1e6


def loopback(part: str, port: int) -> str:
    """A command's argument with the container's address and port swapped for a loopback test port."""
    return {"0.0.0.0": "127.0.0.1", "8000": str(port)}.get(part, part)  # noqa: S104 - replaced, not bound


def rehearse_kubernetes(
    project: Path,
    api_image: tuple[Path, dict[str, str]],
    jobs_image: tuple[Path, dict[str, str]],
    as_user: list[str],
) -> None:
    """The prod overlay's pod commands, run in the rehearsed images: the API's init container seeds the
    shared state, the API serves from it and logs there (``image``), and the nightly job's script runs
    its stages on it (``jobs``, the full image). The images' own files stay as they were, as a
    read-only root filesystem demands."""
    (image, env), (jobs, jobs_env) = api_image, jobs_image
    kubectl = project / ".venv" / "bin" / "kubectl"
    built = run([str(kubectl), "kustomize", "deploy/k8s/overlays/prod"], cwd=project).stdout
    objects = {doc["kind"]: doc for doc in yaml.safe_load_all(built) if doc}
    state, scratch = image.parent / "state", image.parent / "scratch"
    for folder in (state, scratch):
        folder.mkdir()
        ids = [int(arg.split("=", 1)[1]) for arg in as_user if arg.startswith(("--reuid=", "--regid="))]
        if ids:  # the pod's user owns its volumes (fsGroup)
            os.chown(folder, *ids)

    def on_host(text: str, app: Path = image) -> str:
        mapped = {"/app": app, "/work": state, "/tmp": scratch}  # noqa: S108 - the pod's own /tmp
        return re.sub(r"(?<![\w.-])/(app|work|tmp)\b", lambda m: str(mapped[m[0]]), text)

    def files(root: Path) -> list[str]:
        return sorted(str(path.relative_to(root)) for path in root.rglob("*"))

    before = {root: files(root) for root in (image, jobs)}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    env = {**env, "HOSTNAME": "api-0", "HOME": str(scratch)}
    (seed,) = pod["initContainers"]
    run([*as_user, *map(on_host, seed["command"])], cwd=image, env=env)
    assert (state / "configs" / "config.yaml").is_file()
    assert (state / "models" / "model" / "metadata.json").is_file(), "the image's model seeds the state"

    (api,) = pod["containers"]
    port = free_port()
    command = [*as_user, *(loopback(on_host(part), port) for part in api["args"])]
    with server_process(command, image, port, scratch / "api.log", env) as base:
        assert http("GET", base + api["readinessProbe"]["httpGet"]["path"])[0] == 200
        example = http("GET", f"{base}/metadata")[1]["example"]
        assert http("POST", f"{base}/predict", {"records": [example]})[0] == 200
    assert (state / "data" / "predictions" / "predictions.jsonl").is_file(), "the API logs into the state"

    job = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (nightly,) = job["containers"]
    job_env = {**jobs_env, "HOSTNAME": "job-0", "HOME": str(scratch)}
    job_env.update({item["name"]: on_host(item["value"], jobs) for item in nightly["env"]})
    command = [on_host(part, jobs) for part in nightly["command"]]
    run([*as_user, *command], cwd=jobs, env=job_env, timeout=600)
    assert (state / "reports" / "drift.json").is_file(), "the nightly job monitored the state"
    assert (state / "data" / "processed" / "train.parquet").is_file()
    assert {root: files(root) for root in (image, jobs)} == before, "the pods wrote into the images' files"
