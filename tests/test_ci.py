"""CI: the GitHub Actions workflows (generated from the DAG, pinned, OIDC, per-env concurrency, linted)
and the first-run .venv logic (uv, stamp written last, broken venvs rebuilt, Python versions)."""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT, dag, pulumi_login, venvcheck, workflows
from shared.envs import ENV_DIR_VAR
from shared.errors import ConfigError, UsageError
from shared.orchestrate.cli import main as orchestrate_main
from shared.published import PUBLISHED_VARIABLE
from tests.aws_helpers import ReleasedEverywhere
from tests.conftest import SHIPPED_ENVS
from tests.spec_envs import SPEC_ENV_DIR, user_envs
from tests.synth_helpers import write_spec_baseline
from tests.test_orchestrate import RecordingRunner

WORKFLOW_FILES = sorted(workflows.WORKFLOW_DIR.glob("*.yml"))
ACTION_FILES = sorted((REPO_ROOT / ".github" / "actions").glob("*/action.yml"))
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


# -- the deploy workflow follows the DAG ---------------------------------------------------------------


def test_deploy_workflow_has_one_job_per_layer_whose_needs_are_the_layers_it_reads() -> None:
    jobs = load(workflows.WORKFLOW_DIR / workflows.DEPLOY_DEV)["jobs"]
    layer_jobs = {job_id.removeprefix("up-"): job for job_id, job in jobs.items() if job_id.startswith("up-")}
    assert set(layer_jobs) == set(dag.LAYERS)
    for layer, job in layer_jobs.items():
        needs = job.get("needs", [])
        assert sorted(needs) == sorted(f"up-{upstream}" for upstream in dag.LAYER_UPSTREAMS[layer]), layer
        run = [step["run"] for step in steps_of(job) if "nox -s up" in step.get("run", "")]
        assert run == [f"python3 -m nox -s up -- dev --layers {layer} --exact --yes"]
        if layer in dag.NEEDS_VPC_REACH:
            assert "codebuild-{0}-{1}-{2}" in job["runs-on"] and "VPC_RUNNER_PROJECT_DEV" in job["runs-on"]
            assert "github.run_id, github.run_attempt" in job["runs-on"]
        else:
            assert job["runs-on"] == "ubuntu-latest"


def test_dev_deploys_on_every_push_to_main_except_docs_and_files_of_envs_taking_no_images_from_it() -> None:
    # rendered from the example envs (committed, the file follows environments/: an env added there that takes no
    # images from dev is ignored, README "Add an environment")
    push = yaml.safe_load(workflows.render_deploy_dev())[True]["push"]  # YAML 1.1 reads `on` as True
    assert push["branches"] == ["main"]
    assert "**.md" in push["paths-ignore"]
    # staging and prod name dev as compute.image_source: their account_id, region and image_source are the
    # destinations of dev's replication configuration, so a change of their files must deploy dev
    assert not [path for path in push["paths-ignore"] if path.startswith("environments/")]


def test_only_the_file_of_an_env_that_takes_no_images_from_dev_is_ignored(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["compute"].pop("image_source"))
    ignored = yaml.safe_load(workflows.render_deploy_dev())[True]["push"]["paths-ignore"]
    assert "environments/prod.yaml" in ignored and "environments/staging.yaml" not in ignored
    assert "environments/dev.yaml" not in ignored


def test_committed_generated_workflows_equal_what_the_generator_writes() -> None:
    with user_envs():  # the workflows deploy the env files of environments/
        generated = workflows.generated()
    for path, text in generated.items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name}: run `nox -s workflows`"


def test_the_generator_follows_a_changed_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    upstreams = {**dag.LAYER_UPSTREAMS, "broker": ("network",),
                 "compute": (*dag.LAYER_UPSTREAMS["compute"], "broker")}
    monkeypatch.setattr(dag, "LAYER_UPSTREAMS", upstreams)
    monkeypatch.setattr(dag, "LAYERS", tuple(upstreams))
    monkeypatch.setattr(dag, "NEEDS_VPC_REACH", frozenset({"messaging", "broker"}))
    jobs = yaml.safe_load(workflows.render_deploy_dev())["jobs"]
    assert jobs["up-broker"]["needs"] == ["up-network"]
    assert "up-broker" in jobs["up-compute"]["needs"]
    assert "codebuild-" in jobs["up-broker"]["runs-on"]
    assert list(jobs).index("up-broker") < list(jobs).index("up-compute")


def test_every_job_that_deploys_an_env_waits_for_its_opt_in() -> None:
    """A team pushes the repository before its first `up` (README, "A fresh account, in order", step 8 checks out the
    pushed commit): a deploy job that ran then would fail on a backend or role not there yet (a red first commit),
    create the GitHub environment without its deployment-branch rule, or race the first `up` on the same stacks.
    Every job with an `environment:` in the generated deploy workflows runs only where DEPLOY_ENABLED_<ENV> is true,
    and the README tells when to set it."""
    guarded = 0
    for path in (workflows.WORKFLOW_DIR / workflows.DEPLOY_DEV, workflows.WORKFLOW_DIR / workflows.DEPLOY_PROMOTED):
        for name, job in load(path)["jobs"].items():
            env = job.get("environment")
            if env is None:
                continue
            guarded += 1
            condition = str(job.get("if", ""))
            assert f"vars.DEPLOY_ENABLED_{env.upper()} == 'true'" in condition, (path.name, name, condition)
    assert guarded >= len(dag.order()) + 2  # dev's layers and settle, staging, prod
    jobs = load(workflows.WORKFLOW_DIR / workflows.DEPLOY_PROMOTED)["jobs"]
    for env in ("staging", "prod"):  # its tried gate too: nothing is asked of a reviewer before the opt-in
        assert f"vars.DEPLOY_ENABLED_{env.upper()} == 'true'" in str(jobs[f"tried-{env}"]["if"])
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "`DEPLOY_ENABLED_<ENV>=true` once the env's first full `up` is done" in readme


def test_a_dependabot_pull_request_is_neither_previewed_nor_uploads_findings() -> None:
    """GitHub runs a Dependabot pull request as a fork's (read-only token, no OIDC, no Actions secrets) but from this
    repository and with its variables: a guard on the head repository alone would let it reach the preview (no
    credentials: the required `previews` check red) and the SARIF upload (read-only token: `policy` red)."""
    jobs = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]
    guard = "github.event.pull_request.user.login != 'dependabot[bot]'"
    assert guard in " ".join(str(jobs["changed"]["if"]).split())
    (upload,) = [step for job in jobs.values() for step in steps_of(job)
                 if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif")]
    condition = " ".join(str(upload["if"]).split())
    assert guard in condition and "github.event.pull_request.head.repo.full_name == github.repository" in condition


def test_the_check_command_fails_on_a_stale_workflow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(workflows, "WORKFLOW_DIR", tmp_path)
    assert workflows.main(["generate"]) == 0
    assert workflows.main(["check"]) == 0
    stale = tmp_path / workflows.DEPLOY_DEV
    stale.write_text(stale.read_text().replace("needs: [up-network]", "needs: []", 1))
    assert workflows.main(["check"]) == 1
    assert "deploy-dev.yml differs" in capsys.readouterr().err


def test_generate_says_which_workflows_it_wrote_and_leaves_the_others_alone(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(workflows, "WORKFLOW_DIR", tmp_path)
    assert workflows.main(["generate"]) == 0
    names = [path.name for path in workflows.generated()]
    assert capsys.readouterr().out.count("wrote ") == len(names)
    stale = tmp_path / workflows.DEPLOY_DEV
    stale.write_text(stale.read_text().replace("needs: [up-network]", "needs: []", 1))
    others = {path: path.stat().st_mtime_ns for path in tmp_path.iterdir() if path != stale}
    assert workflows.main(["generate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("wrote ")] == [f"wrote {stale}"]
    assert len([line for line in lines if line.startswith("unchanged ")]) == len(names) - 1
    assert {path: path.stat().st_mtime_ns for path in others} == others
    assert workflows.main(["check"]) == 0


# -- hygiene of every workflow ------------------------------------------------------------------------------


def all_uses() -> list[tuple[Path, str]]:
    found = []
    for path in [*WORKFLOW_FILES, *ACTION_FILES]:
        for match in re.finditer(r"^\s*(?:-\s+)?uses:\s*(.+)$", path.read_text(encoding="utf-8"), re.M):
            found.append((path, match.group(1).strip()))
    return found


def test_every_action_is_pinned_to_a_release_commit_named_in_a_comment() -> None:
    uses = all_uses()
    assert uses
    for path, value in uses:
        if value.startswith("$/"):
            continue  # this repository's own action, at the workflow's commit
        match = re.fullmatch(r"([\w.-]+/[\w.-]+)(/[\w./-]+)?@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)", value)
        assert match, f"{path.name}: {value!r} is not pinned to a commit with a `# vX.Y.Z` comment"
        assert workflows.ACTIONS[match.group(1)] == (match.group(3), match.group(4)), f"{path.name}: {value}"


def test_credentials_only_through_oidc_and_id_token_only_where_a_role_is_assumed() -> None:
    for path in WORKFLOW_FILES:
        text = path.read_text(encoding="utf-8")
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name
        data = load(path)
        assert data["permissions"] == {}, f"{path.name}: top-level permissions must be empty"
        for job_id, job in data["jobs"].items():
            assumes = [step for step in steps_of(job)
                       if "aws-actions/configure-aws-credentials" in step.get("uses", "")]
            permissions = job.get("permissions", {})
            assert isinstance(permissions, dict), f"{path.name}:{job_id}: permissions must be listed"
            assert (permissions.get("id-token") == "write") == bool(assumes), f"{path.name}:{job_id}"
            for step in assumes:
                assert step["with"]["role-to-assume"].startswith("${{")
                assert "allowed-account-ids" in step["with"]
            assert "write-all" not in str(permissions)


def test_every_deploy_ends_with_a_preview_of_the_env_that_must_propose_no_change_and_gates_nothing() -> None:
    """A change proposed right after an up is one every later up repeats (what AWS reads back differs from what the
    program sends), which no offline check can see. dev: a last job previews the env with --expect-no-changes once
    every layer's job is up, on the in-VPC runner (messaging), with the deploy role; nothing needs it, so a layer
    that does not settle skips no up and is no failed deploy for the promotion's tried gate. staging and prod: the
    last step of the env's one job, which may not fail it (the tried gate reads that job): an annotation says it."""
    dev = load(workflows.WORKFLOW_DIR / workflows.DEPLOY_DEV)["jobs"]
    settled = dev[workflows.SETTLED_JOB]
    assert sorted(settled["needs"]) == sorted(f"up-{layer}" for layer in dag.LAYERS)
    assert not any(workflows.SETTLED_JOB in job.get("needs", []) for job in dev.values())
    assert settled["runs-on"] == dev["up-messaging"]["runs-on"] and settled["environment"] == "dev"
    assert workflows.SETTLED_JOB not in {job_id for job_id, job in dev.items()
                                         if job["name"] in workflows.deploy_job_names("dev")}
    settle = steps_of(settled)[-1]
    assert settle["run"] == "python3 -m nox -s preview -- dev --expect-no-changes"
    assert settle["env"] == steps_of(dev["up-messaging"])[-1]["env"] and "continue-on-error" not in settle
    assert not any("--expect-no-changes" in step.get("run", "") for layer in dag.LAYERS
                   for step in steps_of(dev[f"up-{layer}"]))
    promoted = load(workflows.WORKFLOW_DIR / workflows.DEPLOY_PROMOTED)["jobs"]
    for env in ("staging", "prod"):
        up, settle = steps_of(promoted[f"deploy-{env}"])[-2:]
        assert up["run"] == f"python3 -m nox -s up -- {env} --yes"
        assert settle["run"] == f"python3 -m nox -s preview -- {env} --expect-no-changes"
        assert settle["env"] == up["env"] and settle["continue-on-error"] is True
        assert settle["timeout-minutes"] == workflows.SETTLE_STEP_MINUTES  # a hung preview fails the step alone


def test_deploys_run_one_at_a_time_per_env_and_are_never_cancelled() -> None:
    dev = load(workflows.WORKFLOW_DIR / workflows.DEPLOY_DEV)
    assert dev["concurrency"] == {"group": "deploy-dev", "cancel-in-progress": False}
    promoted = load(workflows.WORKFLOW_DIR / workflows.DEPLOY_PROMOTED)
    for env in ("staging", "prod"):
        job = promoted["jobs"][f"deploy-{env}"]
        assert job["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
        assert job["environment"] == env


def test_pull_requests_upload_the_policy_findings_as_sarif() -> None:
    job = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]["policy"]
    runs = [step.get("run", "") for step in steps_of(job)]
    assert "python3 -m nox -s policy -- --sarif build/policy.sarif" in runs
    upload = [step for step in steps_of(job) if "codeql-action/upload-sarif" in step.get("uses", "")]
    assert upload and upload[0]["with"]["sarif_file"] == "build/policy.sarif"
    assert job["permissions"]["security-events"] == "write"
    # a private repository without GitHub Code Security refuses the upload, which would fail this required check on
    # every pull request: only where the repository says it has code scanning (README, CI/CD step 5)
    assert "vars.CODE_SCANNING_ENABLED == 'true'" in upload[0]["if"]
    assert "`CODE_SCANNING_ENABLED=true` where the repository has code scanning" in " ".join(
        (REPO_ROOT / "README.md").read_text(encoding="utf-8").split())


def test_every_step_that_runs_pulumi_can_log_in_to_pulumi_cloud() -> None:
    """With a Pulumi Cloud backend the Automation API's first `pulumi stack select --non-interactive`
    fails with "PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions" unless the
    token is in the step's environment (a secret is never one by itself); a self-managed backend ignores it."""
    steps = [(path.name, step) for path in WORKFLOW_FILES for job in load(path)["jobs"].values()
             for step in steps_of(job) if re.search(r"nox -s (up|preview|destroy|refresh)\b", step.get("run", ""))]
    assert len(steps) >= len(dag.LAYERS) + 3  # deploy-dev's layers, staging, prod, the pull-request preview
    for name, step in steps:
        # a pull request's preview logs in with the read-only token of its own name (below), or by OIDC
        preview = name == "pull-request.yml"
        secret = "PULUMI_PREVIEW_ACCESS_TOKEN" if preview else "PULUMI_ACCESS_TOKEN"
        variable = pulumi_login.PREVIEW_VARIABLE if preview else pulumi_login.DEPLOY_VARIABLE
        assert step["env"]["PULUMI_ACCESS_TOKEN"] == f"${{{{ !vars.{variable} && secrets.{secret} || '' }}}}", \
            (name, step["run"])
        assert "PULUMI_BACKEND_URL" in step["env"], (name, step["run"])


def test_every_job_that_runs_pulumi_logs_in_by_oidc_first_for_as_long_as_the_job_may_run() -> None:
    """Where the variable names a Pulumi token (shared.pulumi_login), the job exchanges its OIDC token for one before
    its first pulumi step: the deploys with their GitHub environment's PULUMI_OIDC_SCOPE, the previews with the
    repository's PULUMI_OIDC_PREVIEW_SCOPE. The token is asked to outlive the job's timeout, as the AWS role's
    session is (a token that expired mid-`up` would leave the stack locked with an operation half done)."""
    jobs = [(path.name, job) for path in WORKFLOW_FILES for job in load(path)["jobs"].values()
            if any(PULUMI_SESSION.search(step.get("run", "")) for step in steps_of(job))]
    assert len(jobs) == len(dag.LAYERS) + 4  # deploy-dev's layer jobs and settle job, staging's and prod's, previews
    for name, job in jobs:
        runs = [step.get("run", "") for step in steps_of(job)]
        logins = [index for index, run in enumerate(runs) if "workflows -- pulumi-login" in run]
        first_pulumi = min(index for index, run in enumerate(runs) if PULUMI_SESSION.search(run))
        assert len(logins) == 1 and logins[0] < first_pulumi, name
        login = steps_of(job)[logins[0]]
        variable = pulumi_login.PREVIEW_VARIABLE if name == "pull-request.yml" else pulumi_login.DEPLOY_VARIABLE
        assert f"--variable {variable}" in login["run"], name
        assert login["env"][variable] == f"${{{{ vars.{variable} }}}}", name
        assert login["env"]["PULUMI_BACKEND_URL"] == "${{ steps.target.outputs.backend_url }}", name
        assert f"--minutes {job['timeout-minutes']} " in login["run"] + " ", name
        assert job["permissions"]["id-token"] == "write", name
        assert not any("secrets." in str(value) for value in login["env"].values()), name


PULUMI_SESSION = re.compile(r"nox -s (up|preview|destroy|refresh)\b")


def test_only_jobs_and_steps_that_run_pulumi_get_its_cli_and_its_secrets() -> None:
    """The passphrase decrypts every stack secret of a self-managed backend and the token opens the Pulumi Cloud
    org: a step that runs no `pulumi` (promotion's gates read ECS and ECR with boto3 and run the packs offline)
    gets neither, and a job without such a step installs no CLI."""
    for path in WORKFLOW_FILES:
        for job_id, job in load(path)["jobs"].items():
            runs_pulumi = [step for step in steps_of(job) if PULUMI_SESSION.search(step.get("run", ""))]
            installs = [step for step in steps_of(job) if ".ci/install-pulumi" in step.get("run", "")]
            assert not installs or runs_pulumi, f"{path.name}:{job_id} installs the Pulumi CLI and runs no pulumi"
            for step in steps_of(job):
                pulumi_secrets = [name for name, value in (step.get("env") or {}).items()
                                  if "secrets.PULUMI_" in str(value)]
                assert not pulumi_secrets or step in runs_pulumi, \
                    f"{path.name}:{job_id}: step {step.get('name') or step.get('run')!r} gets {pulumi_secrets}"


def test_only_jobs_in_a_github_environment_get_the_passphrase() -> None:
    """The passphrase decrypts every secret of every passphrase-encrypted stack, for good (nothing logs its use).
    GitHub hands a repository secret to a workflow of any branch, which may print it; an environment's secret only to
    jobs of that environment, whose deployment branches are `main` (README, CI/CD). So the pull request's preview gets
    none (its stacks' secrets use a KMS key the read role may only decrypt with)."""
    given = [(path.name, job_id, job) for path in WORKFLOW_FILES for job_id, job in load(path)["jobs"].items()
             if "secrets.PULUMI_CONFIG_PASSPHRASE" in json.dumps(job)]
    assert len(given) == len(dag.LAYERS) + 3  # deploy-dev's layer jobs and settle job, staging's and prod's deploys
    for name, job_id, job in given:
        assert job.get("environment") in ("dev", "staging", "prod"), f"{name}:{job_id} is in no GitHub environment"
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" not in (workflows.WORKFLOW_DIR / "pull-request.yml").read_text()


def test_only_jobs_in_a_github_environment_get_the_deploy_token_and_previews_get_their_own() -> None:
    """On Pulumi Cloud the deploys' PULUMI_ACCESS_TOKEN writes every stack and the service decrypts every stack secret
    for it: like the passphrase, it is an environment secret (dev, staging, prod, deployment branches `main`), which
    no branch's workflow is handed. A pull request's preview logs in with PULUMI_PREVIEW_ACCESS_TOKEN, the repository
    secret any branch can read, so README asks for a team token with read on the previewed stacks only."""
    given = [(path.name, job_id, job) for path in WORKFLOW_FILES for job_id, job in load(path)["jobs"].items()
             if "secrets.PULUMI_ACCESS_TOKEN" in json.dumps(job)]
    assert len(given) == len(dag.LAYERS) + 3  # deploy-dev's layer jobs and settle job, staging's and prod's deploys
    for name, job_id, job in given:
        assert job.get("environment") in ("dev", "staging", "prod"), f"{name}:{job_id} is in no GitHub environment"
    previews = [(path.name, job_id) for path in WORKFLOW_FILES for job_id, job in load(path)["jobs"].items()
                if "secrets.PULUMI_PREVIEW_ACCESS_TOKEN" in json.dumps(job)]
    assert previews == [("pull-request.yml", "preview")]


def test_the_pulumi_cli_of_every_workflow_is_the_pinned_sdk_version_checked_against_its_sha256() -> None:
    """Every job that runs pulumi installs it with .ci/install-pulumi (the release's sha256 checked), at the pin;
    no job takes it from an action that checks nothing (pulumi/actions v7 downloads the tarball unverified)."""
    versions = set()
    for path in WORKFLOW_FILES:
        text = path.read_text(encoding="utf-8")
        assert "pulumi/actions" not in text and "pulumi-version:" not in text, path.name
        for job in load(path)["jobs"].values():
            if any(PULUMI_SESSION.search(step.get("run", "")) for step in steps_of(job)):
                installs = [step["run"] for step in steps_of(job) if ".ci/install-pulumi" in step.get("run", "")]
                assert len(installs) == 1, path.name
                versions.update(re.findall(r"\.ci/install-pulumi (\S+)", installs[0]))
    assert versions == {workflows.pulumi_version()}


# -- what the workflows call -------------------------------------------------------------------------------


ENVS = ["dev", "prod", "staging"]


@pytest.mark.parametrize("files, env_files_only, expected", [
    (["environments/prod.yaml"], False, ["prod"]),
    (["environments/prod.yaml", "README.md"], False, ["prod"]),
    (["shared/dag.py"], False, ENVS),
    (["stacks/compute/__main__.py"], True, []),
    (["environments/staging.yaml", "shared/envs.py"], True, ["staging"]),
    (["docs/x.md", "environments/qa.yaml"], False, []),
])
def test_changed_envs(files: list[str], env_files_only: bool, expected: list[str]) -> None:
    assert workflows.envs_touched(files, ENVS, env_files_only) == expected


@pytest.mark.parametrize(("argv", "message"), [
    (["--all", "--only", "dev"], "not allowed with argument"),
    (["--base", "HEAD", "--only", "dev"], "not allowed with argument"),
    (["--only", ""], "unknown environment ''"),  # "$DISPATCHED_ENV" empty: not "give --base SHA"
    (["--all", "--env-files-only"], "--env-files-only applies with --base"),
])
def test_changed_envs_refuses_conflicting_or_empty_choices(argv: list[str], message: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=message):
        workflows.main(["changed-envs", *argv])
    assert capsys.readouterr().out == "", "no matrix written"


def test_a_pull_request_previews_no_layer_that_reads_a_state_holding_the_broker_admin_password() -> None:
    """The read role, which a pull request's job of any branch assumes, may not read the broker's and messaging's
    states (the broker admin password): their previews are not run, with or without an in-VPC runner, and the job's
    summary says which and why; compute, which reads both, is previewed from their published contracts (a
    StackReference would read the referenced stack's state), the mode the preview step sets explicitly."""
    entries = workflows.matrix(["dev", "prod"], {"AWS_READ_ROLE_ARN_DEV": "arn:aws:iam::111111111111:role/r",
                                                  "VPC_RUNNER_PROJECT_PROD": "prod-runner"})
    assert entries[0]["read_role"] == "arn:aws:iam::111111111111:role/r" and entries[1]["read_role"] == ""
    for entry in entries:
        previewed = entry["layers"].split(",")
        assert previewed and set(previewed) <= set(dag.LAYERS)
        for layer in previewed:
            read_states = set(dag.LAYER_UPSTREAMS[layer]) - dag.PUBLISHED_LAYERS
            assert not ({layer} | read_states) & dag.SECRET_STATE_LAYERS, layer
        assert not set(previewed) & dag.NEEDS_VPC_REACH, "no in-VPC runner is needed"
    assert {"broker", "messaging"}.isdisjoint(entries[1]["layers"].split(","))
    assert "compute" in entries[1]["layers"].split(",")
    job = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]["preview"]
    assert job["runs-on"] == "ubuntu-latest"
    (run,) = [step["run"] for step in steps_of(job) if "nox -s preview" in step.get("run", "")]
    assert 'nox -s preview -- "$ENV_NAME" --layers "$LAYERS" --exact' in run
    (step,) = [step for step in steps_of(job) if "nox -s preview" in step.get("run", "")]
    assert step["env"][PUBLISHED_VARIABLE] == "1"
    (why,) = [line for line in run.splitlines() if "Not previewed" in line]
    for layer in set(dag.LAYERS) - set(dag.pull_request_layers()):
        assert layer in why, layer


def test_changed_envs_from_git(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "base")
    base = git("rev-parse", "HEAD").strip()
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text("x: 1\n")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "prod")
    assert workflows.changed_files(base, repo=tmp_path) == ["environments/prod.yaml"]
    for bad in ("0" * 40, "--output=x", ""):  # a push that created the branch has an all-zero `before`
        with pytest.raises(UsageError):
            workflows.changed_files(bad, repo=tmp_path)
    # a force push's old head is in no clone: deploy-promoted cannot pass --all, so the message names the manual run
    for missing in ("0" * 40, "1234567890abcdef1234567890abcdef12345678"):
        with pytest.raises(UsageError, match=r"is no commit of this clone|is not a commit") as error:
            workflows.changed_files(missing, repo=tmp_path)
        assert workflows.DEPLOY_PROMOTED in str(error.value) and "input env" in str(error.value)


def test_target_refuses_a_backend_a_thrown_away_runner_would_lose() -> None:
    with pytest.raises(ConfigError, match="PULUMI_BACKEND_URL"):
        workflows.target("dev", "deploy", {})
    # a file:// backend is refused naming where it came from, not as unset
    with pytest.raises(ConfigError, match=re.escape("PULUMI_BACKEND_URL: is file:///tmp/state, a folder on the")):
        workflows.target("dev", "deploy", {"PULUMI_BACKEND_URL": "file:///tmp/state"})
    outputs = workflows.target("dev", "deploy", {"PULUMI_BACKEND_URL": "s3://state-bucket"})
    assert outputs["backend_url"] == "s3://state-bucket" and re.fullmatch(r"\d{12}", outputs["account_id"])
    with pytest.raises(ConfigError, match="AWS_READ_ROLE_ARN_DEV"):
        workflows.target("dev", "read", {"PULUMI_BACKEND_URL": "s3://b", "VARS_JSON": "{}"})
    read = workflows.target("dev", "read", {"PULUMI_BACKEND_URL": "s3://b",
                                            "VARS_JSON": json.dumps({"AWS_READ_ROLE_ARN_DEV": "arn:x"})})
    assert read["role"] == "arn:x"


@pytest.mark.parametrize(("role_arn", "refused"), [
    ("", False),  # unset: configure-aws-credentials stops the job itself
    ("arn:aws:iam::{account}:role/ml-platform-deployer", False),
    ("arn:aws:iam::{account}:role/github-deploy", True),  # another role: the S3 endpoint denies its bucket calls
    ("arn:aws:iam::{account}:role/ci/ml-platform-deployer", True),  # a path: aws:PrincipalArn is another ARN
])
def test_a_deploy_job_assumes_the_envs_deploy_role(role_arn: str, refused: bool) -> None:
    from shared.envs import load_env

    environ = {"PULUMI_BACKEND_URL": "s3://state-bucket",
               "AWS_ROLE_ARN": role_arn.format(account=load_env("staging").account_id)}
    if not refused:
        assert workflows.target("staging", "deploy", environ)["account_id"] == load_env("staging").account_id
        return
    with pytest.raises(ConfigError) as error:
        workflows.target("staging", "deploy", environ)
    assert error.value.key == "messaging.deploy_runner.deploy_role_name" and error.value.exit_code == 2
    assert "AWS_ROLE_ARN" in str(error.value)


def test_every_deploy_jobs_target_step_gets_the_role_it_assumes() -> None:
    for path, text in workflows.generated().items():
        for job in yaml.safe_load(text)["jobs"].values():
            steps = job.get("steps", [])
            targets = [step for step in steps if "--role deploy" in step.get("run", "")]
            assumes = [step["with"]["role-to-assume"] for step in steps
                       if "configure-aws-credentials" in step.get("uses", "")]
            for step in targets:
                assert step["env"]["AWS_ROLE_ARN"] in assumes, (path.name, step["name"])


# -- the orchestrator runs exactly one layer per CI job ---------------------------------------------------


def test_exact_runs_only_the_named_layers_in_dag_order() -> None:
    runner = RecordingRunner()
    out = io.StringIO()
    code = orchestrate_main(["up", "dev", "--yes", "--layers", "compute,network", "--exact"], runner=runner,
                            out=out, confirm=lambda prompt: True, images=ReleasedEverywhere())
    assert code == 0
    assert runner.started() == ["network", "compute"]
    assert "added" not in out.getvalue()


def test_exact_without_layers_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    runner = RecordingRunner()
    assert orchestrate_main(["up", "dev", "--yes", "--exact"], runner=runner, out=io.StringIO()) == 2
    assert "--exact needs --layers" in capsys.readouterr().err
    assert runner.prepared is None


# -- actionlint and zizmor run, and catch what they are there for -------------------------------------------


def run_tool(tool: str, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


BAD_WORKFLOW = """\
name: bad
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    needs: [nowhere]
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
"""


def test_actionlint_passes_the_workflows_and_fails_a_broken_one(tmp_path: Path) -> None:
    result = run_tool("actionlint")
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "bad.yml").write_text(BAD_WORKFLOW)
    bad = run_tool("actionlint", str(tmp_path / "bad.yml"), cwd=tmp_path)
    assert bad.returncode == 1 and "nowhere" in bad.stdout


def test_zizmor_passes_the_workflows_and_fails_an_unpinned_injectable_one(tmp_path: Path) -> None:
    result = run_tool("zizmor", "--offline", "--min-severity", "low", ".github")
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "bad.yml").write_text(BAD_WORKFLOW.replace("    needs: [nowhere]\n", ""))
    bad = run_tool("zizmor", "--offline", str(tmp_path / "bad.yml"))
    assert bad.returncode != 0
    assert "unpinned-uses" in bad.stdout and "template-injection" in bad.stdout


# -- .venv: supported Pythons, detection and repair ----------------------------------------------------------


def test_supported_pythons_are_those_of_requires_python() -> None:
    spec = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    lower, upper = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec).groups()  # type: ignore[union-attr]
    assert [minor for _, minor in venvcheck.SUPPORTED] == list(range(int(lower), int(upper)))


@pytest.mark.parametrize("version, ok", [((3, 10), False), ((3, 11), True), ((3, 12), True), ((3, 13), True),
                                         ((3, 14), False)])
def test_unsupported_pythons_are_refused_naming_the_supported_ones(version: tuple[int, int], ok: bool) -> None:
    message = venvcheck.check_python(version)
    assert (message is None) == ok
    if message:
        assert "3.11, 3.12, 3.13" in message and f"{version[0]}.{version[1]}" in message
        # What it says to run works where python3 is externally managed (Homebrew's, Debian's, Ubuntu's: PEP 668
        # refuses a pip install outside a virtualenv), hash-checked, as the README's Quick start does.
        pips = re.findall(r"`([^`]*pip install[^`]*)`", message)
        assert pips and all(re.search(r"-m venv (?:--\S+ )*(\S+) && \1/bin/python -m pip install --require-hashes -r "
                                      r"\.ci/bootstrap-requirements\.txt", pip) for pip in pips), message


#: What the noxfile runs before its refusal of an unsupported Python: these modules' top level. Python 3.10 and older
#: (Ubuntu 22.04's python3) must get that far; "import tomllib" (3.11+) at the top of venvcheck crashed them instead.
BEFORE_THE_REFUSAL = ("noxfile.py", "shared/__init__.py", "shared/venvcheck.py", "shared/forwarding.py")
#: Modules these may import at their top level: each in the standard library since Python 3.8 (or nox, shared).
OLD_PYTHON_IMPORTS = {"__future__", "collections.abc", "dataclasses", "hashlib", "importlib.util", "json", "nox", "os",
                      "pathlib", "re", "shared", "shutil", "signal", "subprocess", "sys", "sysconfig", "typing"}


def _top_level_imports(tree: ast.Module) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of every import a module runs when imported (not those inside its functions)."""
    found: list[tuple[str, tuple[str, ...]]] = []
    nodes: list[ast.AST] = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, tuple(alias.name for alias in node.names)))
        nodes += [child for child in ast.iter_child_nodes(node)
                  if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)]
    return found


@pytest.mark.parametrize("path", BEFORE_THE_REFUSAL)
def test_what_runs_before_the_refusal_of_an_old_python_runs_on_one(path: str) -> None:
    """Parsed as Python 3.8 (no newer syntax), annotations postponed (``X | None`` is evaluated on 3.9 otherwise), and
    importing only modules 3.8 has, nothing newer by name (``datetime.UTC``, ``typing.Self``, ``enum.StrEnum``)."""
    source = (REPO_ROOT / path).read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 8))
    imports = _top_level_imports(tree)
    if path != "shared/__init__.py":
        assert ("__future__", ("annotations",)) in imports, path
    newer = {"datetime": {"UTC"}, "typing": {"Self", "TypeAlias", "ParamSpec", "Concatenate", "TypeGuard", "Never",
                                             "LiteralString", "assert_never", "reveal_type", "Required", "NotRequired"},
             "enum": {"StrEnum"}, "dataclasses": {"KW_ONLY"}}
    for module, names in imports:
        assert module in OLD_PYTHON_IMPORTS, f"{path} imports {module} before the noxfile refuses an old Python"
        assert not set(names) & newer.get(module, set()), f"{path}: {module} {names}"
    # dataclass(slots=..., kw_only=...) are 3.10+ keywords, evaluated at import
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dataclass":
            assert not {k.arg for k in node.keywords} & {"slots", "kw_only", "match_args"}, path


def test_a_free_threaded_build_is_refused_though_its_version_is_supported() -> None:
    """python3.13t installs cp313t wheels only; the lock has none (grpcio, pydantic-core, PyYAML ship the standard
    build's), so .venv's install would compile every such package: refused before .venv is touched."""
    grpcio = [line for line in (REPO_ROOT / ".ci" / "lock-wheels.txt").read_text().splitlines() if " grpcio-" in line]
    assert grpcio and not any(re.search(r"-cp31[1-3]t-", line) for line in grpcio)
    message = venvcheck.check_python((3, 13), gil_disabled=True)
    assert message and "free-threaded" in message and "3.11, 3.12, 3.13" in message
    assert venvcheck.check_python((3, 13), gil_disabled=False) is None


def test_the_refusal_s_venv_command_replaces_a_venv_of_the_unsupported_python(tmp_path: Path) -> None:
    """The refusal usually comes from the nox venv itself, made with an unsupported `python3` (Homebrew's newest):
    `python3.12 -m venv` over an existing venv keeps its bin/python (venv's setup_python links only names that do
    not exist), so the command the refusal names left nox on the refused Python and the next run was refused again.
    Its venv command, run with this (supported) interpreter over such a venv, must leave bin/python this one."""
    message = venvcheck.check_python((3, 14))
    assert message
    command = re.search(r"`python3\.\d+ -m venv ((?:--\S+ )*)(\S+) &&", message)
    assert command and command.group(2) == "~/.venvs/ml-platform-nox", message
    venv = tmp_path / "ml-platform-nox"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    other = tmp_path / "python3.14"
    other.write_text("#!/bin/sh\necho 3.14\n")
    other.chmod(0o755)
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(other)  # the venv as the unsupported Python made it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", *command.group(1).split(), str(venv)], check=True)
    answer = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
                            capture_output=True, text=True, check=False).stdout.strip()
    assert answer == f"{HERE[0]}.{HERE[1]}", f"bin/python is still the refused Python ({answer}) after: {message}"


HERE = (sys.version_info[0], sys.version_info[1])


@pytest.fixture
def real_venv(tmp_path: Path) -> Path:
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


def test_a_finished_venv_is_ready_and_a_missing_stamp_means_an_interrupted_install(real_venv: Path) -> None:
    assert venvcheck.inspect_venv(real_venv, "abc", HERE).action == "sync"
    venvcheck.write_stamp(real_venv, "abc", HERE)
    assert venvcheck.inspect_venv(real_venv, "abc", HERE).action == "ready"
    assert venvcheck.inspect_venv(real_venv, "changed", HERE).action == "sync"
    (real_venv / venvcheck.STAMP_NAME).unlink()
    (real_venv / venvcheck.LEGACY_STAMP_NAME).write_text("abc")
    assert venvcheck.inspect_venv(real_venv, "abc", HERE).action == "ready"


def test_a_venv_of_another_python_or_without_a_working_python_is_rebuilt(real_venv: Path, tmp_path: Path) -> None:
    venvcheck.write_stamp(real_venv, "abc", HERE)
    other = (HERE[0], HERE[1] + 1)
    verdict = venvcheck.inspect_venv(real_venv, "abc", other)
    assert verdict.action == "rebuild" and f"made with Python {HERE[0]}.{HERE[1]}" in verdict.reason
    for name in ("python", "python3", f"python{HERE[0]}.{HERE[1]}"):
        (real_venv / "bin" / name).unlink(missing_ok=True)
    verdict = venvcheck.inspect_venv(real_venv, "abc", HERE)
    assert verdict.action == "rebuild" and "missing or does not run" in verdict.reason
    half = tmp_path / "half"
    (half / "bin").mkdir(parents=True)  # interrupted before pyvenv.cfg was written
    assert venvcheck.inspect_venv(half, "abc", HERE).action == "rebuild"
    assert venvcheck.inspect_venv(tmp_path / "none", "abc", HERE).reason == "there is no .venv yet"


def test_a_stamp_of_another_python_rebuilds(real_venv: Path) -> None:
    (real_venv / venvcheck.STAMP_NAME).write_text(json.dumps({"python": "3.9", "pyproject_sha256": "abc"}))
    assert venvcheck.inspect_venv(real_venv, "abc", HERE).action == "rebuild"


def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['pulumi==3.272.0']\n")
    (root / venvcheck.LOCK_NAME).write_text("pulumi==3.272.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    return root


class FakeInstaller:
    """Records the commands; a venv command makes the folder, the install fails as told."""

    def __init__(self, fail_installs: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.fail_installs = fail_installs

    def __call__(self, command: list[str]) -> int:
        self.commands.append(command)
        if "venv" in command:
            Path(command[-1], "bin").mkdir(parents=True)
            return 0
        if self.fail_installs:
            self.fail_installs -= 1
            return 1
        return 0


def test_make_venv_uses_uv_and_writes_the_stamp_last(tmp_path: Path) -> None:
    root = project(tmp_path)
    venv = root / ".venv"
    installer = FakeInstaller()
    venvcheck.make_venv(venv, root, venvcheck.Verdict("rebuild", "there is no .venv yet"), python="/py",
                        version=HERE, uv=["uv"], run=installer, log=lambda line: None)
    # no --seed: uv would fetch pip, setuptools and wheel as PyPI's newest, unhashed; pip comes from the lock
    assert installer.commands[0] == ["uv", "venv", "--python", "/py", str(venv)]
    assert installer.commands[1][:3] == ["uv", "pip", "install"]
    assert installer.commands[1][-3:] == ["--require-hashes", "-r", str(root / venvcheck.LOCK_NAME)]
    pth = venv / "lib" / f"python{HERE[0]}.{HERE[1]}" / "site-packages" / venvcheck.REPO_PTH
    assert pth.read_text() == f"{root}\n"
    stamp = json.loads((venv / venvcheck.STAMP_NAME).read_text())
    assert stamp == {"python": f"{HERE[0]}.{HERE[1]}", "pyproject_sha256": venvcheck.requirements_digest(root)}


def test_the_repo_pth_makes_the_repo_importable_from_anywhere(real_venv: Path, tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "pkgx").mkdir()
    (root / "pkgx" / "__init__.py").write_text("WHERE = 'repo'\n")
    python = str(venvcheck.venv_python(real_venv))
    probe = [python, "-c", "import pkgx; print(pkgx.WHERE)"]
    assert subprocess.run(probe, cwd=tmp_path, capture_output=True, text=True).returncode != 0
    venvcheck.link_repo(real_venv, root, HERE)
    assert subprocess.run(probe, cwd=tmp_path, capture_output=True, text=True).stdout.strip() == "repo"


def test_make_venv_falls_back_to_pip_without_uv(tmp_path: Path) -> None:
    root = project(tmp_path)
    installer = FakeInstaller()
    venvcheck.make_venv(root / ".venv", root, venvcheck.Verdict("rebuild", "new"), python="/py", version=HERE,
                        uv=None, run=installer, log=lambda line: None)
    assert installer.commands[0] == ["/py", "-m", "venv", str(root / ".venv")]
    assert installer.commands[1][1:4] == ["-m", "pip", "install"] and "--progress-bar" in installer.commands[1]
    # the lock with its hashes, not an editable build of the project resolving its dependencies on the day
    assert installer.commands[1][-3:] == ["--require-hashes", "-r", str(root / venvcheck.LOCK_NAME)]
    assert (root / ".venv" / "lib" / f"python{HERE[0]}.{HERE[1]}" / "site-packages" / venvcheck.REPO_PTH).is_file()


def test_no_doc_tells_of_an_editable_install_that_no_path_makes() -> None:
    """uv and pip alike link the repo into .venv with a .pth (link_repo); neither builds it with ``pip install -e .``
    (an unpinned setuptools build), so the README and the dynamic resources' docs name the .pth."""
    docs = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "shared").rglob("*.py"))]
    assert [path.name for path in docs if "pip install -e" in path.read_text(encoding="utf-8")] == []


def test_the_lock_holds_every_pin_of_pyproject_at_its_version_and_every_package_with_hashes() -> None:
    """A deploy installs requirements.lock: all of .venv's packages, transitive ones too, each with its hashes, so prod
    runs the set dev and the tests ran (pyproject.toml's pins name the direct packages only)."""
    assert venvcheck.lock_problems(REPO_ROOT) == []
    locked = venvcheck.locked_versions(REPO_ROOT / venvcheck.LOCK_NAME)
    # the dependencies of the pins are locked too, not only the pins (pulumi's, boto3's, pydantic's)
    for dependency in ("dill", "semver", "s3transfer", "urllib3", "pydantic-core", "typing-extensions"):
        assert dependency in locked, dependency
    bootstrap = (REPO_ROOT / ".ci" / "bootstrap-requirements.txt").read_text()
    assert "--hash=sha256:" in bootstrap and {"nox", "uv", "virtualenv"} <= set(
        venvcheck.locked_versions(REPO_ROOT / ".ci" / "bootstrap-requirements.txt"))


def test_the_pip_pulumi_runs_in_venv_is_locked_with_its_hashes() -> None:
    """Pulumi's Python language host (``toolchain: pip``) runs ``.venv/bin/python -m pip list -v --format json`` on
    every preview and up to find the provider plugins (pulumi/pulumi sdk/python/toolchain/pip.go, ListPackages), in
    the process that holds the deploy role's credentials: .venv's pip is code a deploy runs, so it comes from the lock
    at a pinned version with its hashes, not from ``uv venv --seed`` (PyPI's newest pip, setuptools and wheel on the
    day, no hash)."""
    pins = {name.lower(): version for name, _, version in (
        requirement.partition("==") for requirement in
        tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])}
    locked = venvcheck.locked_versions(REPO_ROOT / venvcheck.LOCK_NAME)
    assert "pip" in pins and locked.get("pip") == pins["pip"]
    assert "setuptools" in locked  # pulumi-policy requires it; with no seed only the lock brings it


@pytest.mark.parametrize("change, message", [
    (lambda root: (root / venvcheck.LOCK_NAME).unlink(), "is missing"),
    (lambda root: (root / "pyproject.toml").write_text(
        "[project]\nname = 'x'\ndependencies = ['pulumi==3.300.0']\n"), "pins pulumi==3.300.0, requirements.lock has "
     "pulumi==3.272.0"),
    (lambda root: (root / venvcheck.LOCK_NAME).write_text("pulumi==3.272.0\n"), "no hash for pulumi"),
])
def test_a_lock_behind_pyproject_or_without_hashes_is_refused_before_venv_is_touched(
        tmp_path: Path, change: Any, message: str) -> None:
    root = project(tmp_path)
    change(root)
    installer = FakeInstaller()
    with pytest.raises(venvcheck.VenvError, match="nox -s lock") as raised:
        venvcheck.make_venv(root / ".venv", root, venvcheck.Verdict("rebuild", "new"), python="/py", version=HERE,
                            uv=["uv"], run=installer, log=lambda line: None)
    assert message in str(raised.value)
    assert installer.commands == [] and not (root / ".venv").exists()


def test_a_changed_lock_resyncs_the_venv(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = venvcheck.requirements_digest(root)
    (root / venvcheck.LOCK_NAME).write_text((root / venvcheck.LOCK_NAME).read_text() + "# relocked\n")
    assert venvcheck.requirements_digest(root) != before


def test_a_failed_sync_rebuilds_once_and_a_failed_rebuild_leaves_no_stamp(tmp_path: Path) -> None:
    root = project(tmp_path)
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    venvcheck.write_stamp(venv, "old", HERE)
    installer = FakeInstaller(fail_installs=1)
    venvcheck.make_venv(venv, root, venvcheck.Verdict("sync", "changed"), python="/py", version=HERE, uv=["uv"],
                        run=installer, log=lambda line: None)
    assert [command[1] for command in installer.commands] == ["pip", "venv", "pip"]
    assert (venv / venvcheck.STAMP_NAME).is_file()
    broken = FakeInstaller(fail_installs=5)
    with pytest.raises(venvcheck.VenvError, match="nothing is stamped"):
        venvcheck.make_venv(venv, root, venvcheck.Verdict("rebuild", "x"), python="/py", version=HERE, uv=["uv"],
                            run=broken, log=lambda line: None)
    assert not (venv / venvcheck.STAMP_NAME).exists()


def test_a_shared_venv_behind_a_symlink_is_never_deleted(tmp_path: Path) -> None:
    root = project(tmp_path)
    target = tmp_path / "shared-venv"
    (target / "bin").mkdir(parents=True)
    os.symlink(target, root / ".venv")
    with pytest.raises(venvcheck.VenvError, match="symlink"):
        venvcheck.make_venv(root / ".venv", root, venvcheck.Verdict("rebuild", "other python"), python="/py",
                            version=HERE, uv=["uv"], run=FakeInstaller(), log=lambda line: None)
    assert (target / "bin").is_dir()


def test_ci_tests_the_oldest_and_newest_supported_python() -> None:
    tests = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]["tests"]
    matrix = tests["strategy"]["matrix"]["python"]
    pythons = [tuple(int(part) for part in str(version).split(".")) for version in matrix]
    assert pythons == [venvcheck.SUPPORTED[0], venvcheck.SUPPORTED[-1]]
    action = load(REPO_ROOT / ".github" / "actions" / "setup-platform" / "action.yml")
    default = tuple(int(part) for part in action["inputs"]["python-version"]["default"].split("."))
    assert default in venvcheck.SUPPORTED


def test_the_promotion_reads_each_env_with_its_own_role() -> None:
    """The deployed gate reads FROM's ECS, the images gate TO's ECR: one session per env, another
    account's credentials are refused, so the workflow assumes both read roles and names TO's profile."""
    job = load(workflows.WORKFLOW_DIR / "promote.yml")["jobs"]["promote"]
    assumed = [step["with"]["role-to-assume"] for step in steps_of(job)
               if "aws-actions/configure-aws-credentials" in step.get("uses", "")]
    assert assumed == ["${{ steps.to.outputs.role }}", "${{ steps.target.outputs.role }}"], \
        "TO's role first (kept as a profile), FROM's last (the default chain)"
    gates = next(step for step in steps_of(job) if step.get("name") == "gates")
    assert 'PLATFORM_AWS_PROFILE_${TO_ENV^^}=promote-target' in gates["run"]


@pytest.mark.parametrize("rollback_to, expected", [
    ("", ["-m", "nox", "-s", "promote", "--", "staging", "prod"]),
    ("HEAD~1", ["-m", "nox", "-s", "promote", "--", "prod@HEAD~1", "prod"]),
])
def test_the_promotion_workflow_runs_a_rollback_as_to_at_revision(rollback_to: str, expected: list[str],
                                                                  tmp_path: Path) -> None:
    """promote.yml's `rollback-to` input: the gates step runs `nox -s promote -- TO@REV TO` (run here with bash as
    GitHub runs a step, `python3` replaced by a recorder), and the checkout has main's whole history to read TO's file
    at REV."""
    job = load(workflows.WORKFLOW_DIR / "promote.yml")["jobs"]["promote"]
    inputs = load(workflows.WORKFLOW_DIR / "promote.yml")[True]["workflow_dispatch"]["inputs"]  # YAML 1.1: on -> True
    assert inputs["rollback-to"]["type"] == "string" and inputs["rollback-to"]["default"] == ""
    checkout = next(step for step in steps_of(job) if "actions/checkout" in step.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0
    gates = next(step for step in steps_of(job) if step.get("name") == "gates")
    assert gates["env"]["ROLLBACK_TO"] == "${{ inputs.rollback-to }}"
    stub = tmp_path / "bin"
    stub.mkdir()
    recorder = stub / "python3"
    recorder.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'argv'}\necho gate log\n")
    recorder.chmod(0o755)
    # a checkout whose prod.yaml the gates leave as it is (nothing to promote)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text("release: {}\n")
    for git in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                                                  "c"]):
        subprocess.run(["git", *git], cwd=tmp_path, check=True, capture_output=True)
    environ = {"PATH": f"{stub}:{os.environ['PATH']}", "FROM_ENV": "staging", "TO_ENV": "prod", "ALLOW_SKIP": "false",
               "ROLLBACK_TO": rollback_to, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
               "GITHUB_OUTPUT": str(tmp_path / "output")}
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", gates["run"]], cwd=tmp_path,
                   env=environ, check=True, capture_output=True)
    assert (tmp_path / "argv").read_text().splitlines() == expected
    body = (tmp_path / "build" / "promotion-body.md").read_text()
    assert ("Rollback of `prod` to its release at `HEAD~1`" if rollback_to else
            "Promotion of the release of `staging` to `prod`") in body
    assert (tmp_path / "output").read_text() == "changed=false\n", "nothing to promote: no pull request"
    (tmp_path / "output").unlink()
    assert "nothing to promote: `prod` already has that release; no pull request." in body
    # the gates rewrote prod.yaml: the pull-request job gets the file and the summary
    prod = tmp_path / "environments" / "prod.yaml"
    recorder.write_text(f"#!/bin/sh\necho 'release: {{images: {{a: b}}}}' > {prod}\n")
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", gates["run"]], cwd=tmp_path,
                   env=environ, check=True, capture_output=True)
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines())
    assert outputs["changed"] == "true"
    assert base64.b64decode(outputs["env-file"]).decode() == "release: {images: {a: b}}\n"
    assert "Merging this deploys `prod`" in base64.b64decode(outputs["body"]).decode()


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_the_promotion_forecasts_the_deploy_s_tried_gate_in_its_pull_request(outcome: str, tmp_path: Path) -> None:
    """review-rollback B3: the deploy of TO after the merge passes `tried-TO` only where the env before TO deployed this
    commit's platform code; a rollback merged at 3 a.m. learnt it only then. The gates job runs the same gate first, as
    a forecast that never fails the promotion (`continue-on-error`, GitHub's token with `actions: read`), and the pull
    request's body says what it found and what to do."""
    job = load(workflows.WORKFLOW_DIR / "promote.yml")["jobs"]["promote"]
    assert job["permissions"]["actions"] == "read"
    forecast = next(step for step in steps_of(job) if step.get("id") == "tried")
    assert forecast["continue-on-error"] is True
    assert 'python3 -m nox -s workflows -- tried "$TO_ENV" --commit "$GITHUB_SHA"' in forecast["run"]
    assert forecast["env"] == {"GITHUB_TOKEN": "${{ github.token }}", "TO_ENV": "${{ inputs.to }}"}
    names = [step.get("name") for step in steps_of(job)]
    assert names.index(forecast["name"]) < names.index("gates")
    gates = next(step for step in steps_of(job) if step.get("name") == "gates")
    assert gates["env"]["TRIED_OUTCOME"] == "${{ steps.tried.outcome }}"
    # a gate that holds says why on stderr (shared.tried raises, run_main prints it) and exits non-zero: the log the
    # pull request's body quotes has it, or the body leaves the forecast out exactly when it matters
    holding = tmp_path / "holding"
    (holding / "bin").mkdir(parents=True)
    (holding / "bin" / "python3").write_text("#!/bin/sh\necho 'staging has not deployed it' >&2\nexit 2\n")
    (holding / "bin" / "python3").chmod(0o755)
    holds = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", forecast["run"]], cwd=holding,
                          env={"PATH": f"{holding / 'bin'}:{os.environ['PATH']}", "TO_ENV": "prod",
                               "GITHUB_SHA": "abc"}, capture_output=True, text=True)
    assert holds.returncode == 2
    assert (holding / "build" / "tried.log").read_text() == "staging has not deployed it\n"
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "python3").write_text("#!/bin/sh\necho gate log\n")
    (stub / "python3").chmod(0o755)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text("release: {}\n")
    for git in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                                                  "c"]):
        subprocess.run(["git", *git], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "tried.log").write_text("staging has not deployed the platform code of commit abc\n")
    environ = {"PATH": f"{stub}:{os.environ['PATH']}", "FROM_ENV": "staging", "TO_ENV": "prod", "ALLOW_SKIP": "false",
               "ROLLBACK_TO": "previous", "TRIED_OUTCOME": outcome, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
               "GITHUB_OUTPUT": str(tmp_path / "output")}
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", gates["run"]], cwd=tmp_path,
                   env=environ, check=True, capture_output=True)
    body = (tmp_path / "build" / "promotion-body.md").read_text()
    assert "staging has not deployed the platform code of commit abc" in body
    held = "it would hold the deploy after the merge" in body and "`deploy_untried_reason`" in body
    assert held == (outcome == "failure"), body
    assert ("`tried-prod` gate for this commit's platform code: it passes." in body) == (outcome == "success")


def test_the_promotion_pull_request_token_is_an_environment_secret_of_a_job_without_aws() -> None:
    """PROMOTION_PR_TOKEN (a GitHub App's or a fine-grained token of another identity) could approve a pull request:
    a repository secret reaches a workflow of any branch, an environment's only jobs of that environment (deployment
    branches: main). Its job assumes no AWS role (the read roles trust the gates job's OIDC subject, the branch's) and
    writes what the gates job wrote, nothing else."""
    workflow = load(workflows.WORKFLOW_DIR / "promote.yml")
    given = [job_id for job_id, job in workflow["jobs"].items() if "secrets.PROMOTION_PR_TOKEN" in json.dumps(job)]
    assert given == ["pull-request"]
    job = workflow["jobs"]["pull-request"]
    assert job["environment"] == "promotion" and "id-token" not in job["permissions"]
    assert job["needs"] == "promote" and job["if"] == "${{ needs.promote.outputs.changed == 'true' }}"
    gates = workflow["jobs"]["promote"]
    assert gates.get("environment") is None and gates["permissions"] == {"contents": "read", "id-token": "write",
                                                                         "actions": "read"}


def test_ci_runs_the_readme_s_test_command() -> None:
    """The README says `nox -s tests` is what .ci/run (after `lint`) and the pull requests' `tests` job run: both run
    that session, no other arguments (a `-m 'not broker'` or a file list there would leave CI short of what the README
    promises)."""
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert ("`tests`: the whole test suite (`.ci/run`, the clean-clone check, runs `lint` and then exactly this on a "
            "fresh machine; the pull requests' `tests` job runs it too)") in readme
    lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert "python3 -m nox -s tests" in lines, lines
    assert lines.index("python3 -m nox -s lint") < lines.index("python3 -m nox -s tests"), lines
    job = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]["tests"]
    assert "python3 -m nox -s tests" in [step.get("run", "").strip() for step in steps_of(job)]


def test_every_place_that_says_to_set_the_runner_variable_names_what_makes_the_project_a_runner() -> None:
    """A CodeBuild project is a GitHub Actions runner only with the webhook the broker layer creates where the env
    file sets ``messaging.deploy_runner.github_repository``: a ``VPC_RUNNER_PROJECT_<ENV>`` set without it leaves the
    VPC jobs waiting for a runner none starts (24 hours, the env's later deploys queued behind them)."""
    text = (REPO_ROOT / "README.md").read_text()
    paragraphs = [p for p in re.split(r"\n\s*\n|\n(?=\s*\d+\. )", text) if "VPC_RUNNER_PROJECT_" in p]
    assert len(paragraphs) >= 3, paragraphs
    for paragraph in paragraphs:
        assert "messaging.deploy_runner.github_repository" in paragraph, paragraph


def test_the_pull_request_job_that_runs_the_tests_has_the_history_the_upgrade_notes_test_reads() -> None:
    """tests/test_readme_upgrade.py compares with the snapshots of the release the notes name (``git show
    <commit>:...``) and skips in a clone without that commit: a shallow checkout would pass it without running it."""
    jobs = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]
    testing = [job for job in jobs.values()
               if any("nox -s tests" in str(step.get("run", "")) for step in steps_of(job))]
    assert testing, "no pull-request job runs nox -s tests"
    for job in testing:
        checkout = next(step for step in steps_of(job) if "actions/checkout" in step.get("uses", ""))
        assert checkout["with"].get("fetch-depth") == 0, checkout


def test_every_deploy_job_has_the_history_that_tells_an_older_commit() -> None:
    """An up refuses a checkout that lacks the commit a stack was last updated from (shared.orchestrate.commits): in a
    shallow clone of a re-run's older commit the newer deployed commit is unknown, which is only a note."""
    deploying = 0
    for name in ("deploy-dev.yml", "deploy-promoted.yml"):
        for job in load(workflows.WORKFLOW_DIR / name)["jobs"].values():
            if not any("nox -s up --" in str(step.get("run", "")) for step in steps_of(job)):
                continue
            deploying += 1
            checkout = next(step for step in steps_of(job) if "actions/checkout" in step.get("uses", ""))
            assert checkout["with"].get("fetch-depth") == 0, (name, checkout)
    assert deploying >= 7  # dev's six layers, and every promoted env's job


def _plan_diff_script() -> str:
    job = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]["plan-diff"]
    assert "environment" not in job and set(job["permissions"]) == {"contents"}  # offline: no AWS, no secret
    (step,) = [step for step in steps_of(job) if "nox -s diff" in step.get("run", "")]
    assert step["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    return str(step["run"]).replace("python3 -m nox -s diff --", f"{sys.executable} -m shared.plan_diff")


def _run_plan_diff(clone: Path, base: str, tmp_path: Path) -> tuple[int, str]:
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir(exist_ok=True)
    summary = tmp_path / "summary.md"
    summary.write_text("")
    result = subprocess.run(["bash", "-e", "-c", _plan_diff_script()], cwd=clone, capture_output=True, text=True,
                            check=False, env={**os.environ, "BASE_SHA": base, "RUNNER_TEMP": str(runner_temp),
                                              "GITHUB_STEP_SUMMARY": str(summary), "PYTHONPATH": str(clone),
                                              ENV_DIR_VAR: str(clone / "environments")})  # the clone's, as in CI
    return result.returncode, summary.read_text()


def test_a_pull_request_shows_the_plan_diff_against_the_base_commit_and_fails_on_a_protected_replacement(
        tmp_path: Path) -> None:
    """The job runs the offline plan diff of every env against the snapshots of the commit the pull request merges
    into: a clean change passes; one that moves a protected prod subnet's URN (a delete and an add for Pulumi) fails,
    naming it in the job summary; an env the base has no snapshots of is named, not compared."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=clone, check=True,
                              capture_output=True, text=True).stdout.strip()

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO_ROOT), str(clone)], check=True)
    for path in ("shared", "stacks", "policies"):  # the tree under test
        shutil.rmtree(clone / path)
        shutil.copytree(REPO_ROOT / path, clone / path, ignore=shutil.ignore_patterns("__pycache__"))
    # the example envs (tests/spec_envs.py) and their synth as the accepted snapshots
    shutil.rmtree(clone / "environments")
    shutil.copytree(SPEC_ENV_DIR, clone / "environments")
    shutil.rmtree(clone / "tests/snapshots")
    write_spec_baseline(clone / "tests/snapshots", *SHIPPED_ENVS)
    git("add", "-A")
    git("commit", "-q", "--allow-empty", "-m", "the tree under test")
    status, summary = _run_plan_diff(clone, git("rev-parse", "HEAD"), tmp_path)
    assert status == 0, summary
    assert "OK: no protected resource" in summary and "plan diff of prod" in summary

    # the base named the subnet otherwise: this change "renames" it, which deletes the protected one
    snapshot = clone / "tests/snapshots/prod/network.json"
    text = snapshot.read_text()
    snapshot.write_text(text.replace("::network-private-a\"", "::network-private-1\""))
    shutil.rmtree(clone / "tests/snapshots/staging")  # staging is new on this base
    git("commit", "-qam", "a base with another subnet name and no staging")
    base = git("rev-parse", "HEAD")
    git("checkout", "-q", "HEAD~1")
    status, summary = _run_plan_diff(clone, base, tmp_path)
    assert status == 1, summary
    assert "network-private-1" in summary and "FAIL" in summary
    assert "New envs, every resource an add (no snapshots on the base): staging" in summary


def _externally_managed_python() -> str | None:
    """A system python3 marked EXTERNALLY-MANAGED (PEP 668: Debian's /usr/bin/python3), with its venv module."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(candidate):
            continue
        probe = subprocess.run([candidate, "-c", "import os, sys, sysconfig, venv, ensurepip\n"
                                "sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path('stdlib'), "
                                "'EXTERNALLY-MANAGED')) else 1)"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def test_ci_bootstraps_nox_in_a_virtualenv_where_the_system_python_refuses_installs(tmp_path: Path) -> None:
    """`.ci/run` on a machine whose python3 is a PEP 668 system Python (pip refuses: externally-managed-environment)
    installs nox and uv into a virtualenv of its own, first on PATH, so the README's `python3 -m nox -s tests` runs."""
    system = _externally_managed_python()
    if system is None:
        pytest.skip("no EXTERNALLY-MANAGED python3 with venv on this machine")
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO_ROOT / ".ci" / "bootstrap-requirements.txt", tmp_path / ".ci")
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert "python3 -m nox -s lint\npython3 -m nox -s tests\n" in script
    (tmp_path / ".ci" / "run").write_text(script.replace("python3 -m nox -s lint\npython3 -m nox -s tests\n",
                                                         "python3 -m nox --version\n"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(system)
    result = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, check=False,
                            env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin:/usr/sbin:/sbin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "build" / "ci-bootstrap" / "bin" / "nox").exists()
