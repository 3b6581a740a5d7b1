"""The AWS credentials of a deploy job last as long as the job may: configure-aws-credentials exports static keys,
which neither the Pulumi AWS provider nor the CLI's S3 backend renews, so a session that ends before the `up` does
fails it midway with ExpiredToken, resources half made and the checkpoint unwritten (pulumi/pulumi#19452)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import workflows
from shared.errors import ConfigError
from tests.readme_helpers import readme_section

ACTION = "aws-actions/configure-aws-credentials"


def credential_sessions(rendered: str) -> list[tuple[str, int, int]]:
    """(job, timeout-minutes, session seconds) of each configure-aws-credentials step; the action's default where the
    step sets no role-duration-seconds."""
    found = []
    for job_id, job in yaml.safe_load(rendered)["jobs"].items():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith(ACTION + "@"):
                seconds = (step.get("with") or {}).get("role-duration-seconds",
                                                       workflows.ACTION_DEFAULT_SESSION_SECONDS)
                found.append((job_id, int(job["timeout-minutes"]), int(seconds)))
    return found


def test_the_actions_default_is_the_one_hour_its_readme_gives() -> None:
    # configure-aws-credentials v6.2.3 README, inputs: "Defaults to 1 hour (3600 seconds)"
    assert workflows.ACTIONS[ACTION][1] == "v6.2.3"
    assert workflows.ACTION_DEFAULT_SESSION_SECONDS == 3600


@pytest.mark.parametrize("path", sorted((workflows.WORKFLOW_DIR).glob("*.yml")), ids=lambda path: path.name)
def test_every_committed_jobs_aws_session_outlasts_the_job(path: Path) -> None:
    """The compute job of deploy-dev (120 minutes) and each promoted env's job (210) held a one-hour session."""
    for job, minutes, seconds in credential_sessions(path.read_text(encoding="utf-8")):
        assert minutes * 60 <= seconds <= workflows.MAX_SESSION_SECONDS, (path.name, job)


def test_a_longer_ecs_wait_lengthens_the_session_with_the_job(edit_env: Any, env_dir: Path) -> None:
    edit_env("dev", lambda data: data["compute"].update(steady_state_timeout_minutes=100))
    edit_env("prod", lambda data: data["compute"].update(steady_state_timeout_minutes=150))
    sessions = credential_sessions(workflows.render_deploy_dev()) + credential_sessions(
        workflows.render_deploy_promoted())
    assert {job for job, _, _ in sessions} >= {"up-compute", "deploy-prod"}
    for job, minutes, seconds in sessions:
        assert minutes * 60 <= seconds <= workflows.MAX_SESSION_SECONDS, job


def test_a_job_longer_than_any_sts_session_is_refused_naming_the_key(edit_env: Any, env_dir: Path) -> None:
    """An env job of 240 x 3 + 30 + 90 minutes: no role session lasts 14 hours (STS DurationSeconds <= 43200)."""
    edit_env("prod", lambda data: data["compute"].update(steady_state_timeout_minutes=240))
    with pytest.raises(ConfigError) as raised:
        workflows.render_deploy_promoted()
    assert "compute.steady_state_timeout_minutes" in str(raised.value)
    assert "43200" in str(raised.value)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_deploy_roles_max_session_covers_every_deploy_job_of_its_env(env: str) -> None:
    """STS refuses a DurationSeconds above the role's MaxSessionDuration (default 3600; botocore sts
    AssumeRoleWithWebIdentity DurationSeconds, iam roleMaxSessionDurationType 3600-43200)."""
    from shared.catalog import load_catalog
    from shared.envs import load_env

    needed = workflows.deploy_session_seconds(load_env(env), load_catalog())
    assert 3600 <= needed <= workflows.MAX_SESSION_SECONDS
    jobs = [session for rendered in workflows.generated().values() for session in credential_sessions(rendered)
            if session[0] in (f"deploy-{env}",) or (env == "dev" and session[0].startswith("up-"))]
    assert jobs
    assert all(seconds <= needed for _, _, seconds in jobs)


def test_nox_roles_prints_the_max_session_duration_the_workflows_need(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from shared import deploy_role
    from shared.catalog import load_catalog
    from shared.envs import load_env

    monkeypatch.setattr(deploy_role, "deploy_policies", lambda *args, **kwargs: [])
    assert deploy_role.main(["prod"]) == 0
    env = load_env("prod")
    needed = workflows.deploy_session_seconds(env, load_catalog())
    assert (f"aws iam update-role --role-name {env.messaging.deploy_runner.deploy_role_name} "
            f"--max-session-duration {needed}") in capsys.readouterr().out
    # the read-only role's previews fit the default hour: nothing to print for it
    assert deploy_role.main(["prod", "--read-only", "--role", "reader"]) == 0
    assert "--max-session-duration" not in capsys.readouterr().out


# What `pulumi up` printed when the job's session ended midway: the provider's call (aws-sdk-go-v2's error form),
# and the S3 backend's checkpoint write (pulumi/pulumi#19452).
PROVIDER_EXPIRED = (
    "Updating (organization/compute/prod)\n\nDiagnostics:\n  aws:ecs:Service (api):\n    error: sdk-v2/provider2.go:"
    "572: sdk.helper_schema: creating ECS Service (ml-prod-api): operation error ECS: CreateService, https response "
    "error StatusCode: 400, RequestID: 3f1c2a9e-0b7d-4e55-9a61-2c8d5e4f7a10, api error ExpiredTokenException: The "
    "security token included in the request is expired: provider=aws@7.12.0\n\n  pulumi:pulumi:Stack "
    "(compute-prod):\n    error: update failed\n")
CHECKPOINT_EXPIRED = (
    "error: post-step event returned an error: failed to save snapshot: An IO error occurred while writing the new "
    "snapshot file: blob (key \".pulumi/stacks/compute/prod.json\") (code=Unknown): ExpiredToken: The provided token "
    "has expired.\n\tstatus code: 400, request id: Y45095KT8PN4FZ82\n")


@pytest.mark.parametrize(("stdout", "stderr"), [(PROVIDER_EXPIRED, ""), ("", CHECKPOINT_EXPIRED)])
def test_a_layer_failed_by_expired_credentials_says_so_and_what_to_do(stdout: str, stderr: str) -> None:
    """The provider's line is longer than the summary keeps: the cause (ExpiredTokenException) was cut off its end."""
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    from shared.orchestrate.report import DETAIL_LIMIT, failure_detail

    detail = failure_detail(auto_errors.create_command_error(CommandResult(stdout=stdout, stderr=stderr, code=255)))
    assert len(detail) <= DETAIL_LIMIT and not detail.endswith("\u2026")  # whole, not cut
    assert "AWS credentials expired" in detail
    assert "role-duration-seconds" in detail and "MaxSessionDuration" in detail
    assert "run again" in detail


def test_other_failures_are_not_taken_for_expired_credentials() -> None:
    from shared.orchestrate.report import failure_detail

    assert "expired" not in failure_detail(RuntimeError("error: creating ECR repository: RepositoryAlreadyExists"))


# AWS error codes that hold a secret-looking word, each with the start of the message AWS sends with it (aws-sdk-go-v2's
# "api error <Code>: <Message>", aws-sdk-go's "<Code>: <Message>"): the JSON/query APIs (STS, ECS, ...), S3, a wrong
# endpoint.
AWS_ERRORS = [
    "api error InvalidClientTokenId: The security token included in the request is invalid.",
    "InvalidToken: The provided token is malformed or otherwise invalid.",
    "api error MissingAuthenticationToken: Missing Authentication Token",
]


@pytest.mark.parametrize("aws_error", AWS_ERRORS)
def test_an_aws_error_code_naming_a_token_keeps_its_message_in_the_summary(aws_error: str) -> None:
    """The word after "<Code>:" is the first word of AWS's message, not a secret: "InvalidClientTokenId: [redacted]
    security token ..." hid which credentials were refused."""
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    from shared.orchestrate.report import failure_detail

    stderr = f"error: creating ECS Service (ml-prod-api): operation error ECS: CreateService, {aws_error}\n"
    detail = failure_detail(auto_errors.create_command_error(CommandResult(stdout="", stderr=stderr, code=255)),
                            environ={})
    assert aws_error in detail and "[redacted]" not in detail


@pytest.mark.parametrize(("said", "kept"), [
    ("password: Hunter2 was refused", "password: [redacted] was refused"),
    ("ClientToken: abc123def456 was refused", "ClientToken: [redacted] was refused"),
    ("apiToken: Summer holidays", "apiToken: [redacted] holidays"),
    ("SessionToken: IQoJb3JpZ2luX2VjEHca sent", "SessionToken: [redacted] sent"),
    ("ClientSecret: Abc/def+ghi sent", "ClientSecret: [redacted] sent"),
    ("PULUMI_ACCESS_TOKEN=pul-0a1b2c3d was refused", "PULUMI_ACCESS_TOKEN=[redacted] was refused"),
])
def test_secret_assignments_stay_redacted_beside_aws_error_codes(said: str, kept: str) -> None:
    from shared.orchestrate.report import redact

    assert redact(said, {}) == kept


# A read before any layer ran: `pulumi stack output` of a layer on an S3 backend, with exported keys already expired.
READ_EXPIRED = (
    "error: could not get stack outputs: failed to load checkpoint: blob (key \".pulumi/stacks/messaging/prod.json\") "
    "(code=Unknown): ExpiredToken: The provided token has expired.\n\tstatus code: 400, request id: Y45095KT8PN4FZ82\n")


def _command_error(stdout: str, stderr: str) -> Exception:
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    return auto_errors.create_command_error(CommandResult(stdout=stdout, stderr=stderr, code=255))


def test_a_read_before_anything_ran_is_not_said_to_have_left_work_half_made() -> None:
    """The reads before a layer runs (its readers' outputs, its state, the broker endpoint) end in "nothing was run":
    expired credentials there left nothing half made and no state unsaved."""
    from shared.orchestrate.report import DETAIL_LIMIT, failure_detail

    detail = failure_detail(_command_error("", READ_EXPIRED))
    assert "AWS credentials expired" in detail and "run again" in detail and len(detail) <= DETAIL_LIMIT
    assert "half made" not in detail and "unsaved" not in detail and "midway" not in detail


def test_a_layer_whose_own_run_they_ended_says_what_it_may_have_left() -> None:
    """The scheduler's row of a layer whose `up` failed: the run may have changed resources and not saved them."""
    import io

    from shared.envs import load_env
    from shared.orchestrate.model import Action, LayerResult, Operation, Status
    from shared.orchestrate.report import DETAIL_LIMIT
    from shared.orchestrate.scheduler import Progress, _run_one

    class ExpiringRunner:
        def run(self, layer: str, env: Any, operation: Operation, on_output: Any) -> LayerResult:
            raise _command_error(PROVIDER_EXPIRED, "")

    result = _run_one(ExpiringRunner(), "compute", load_env("prod"), Operation(Action.UP),  # type: ignore[arg-type]
                      Progress(io.StringIO(), ["compute"]), lambda: 0.0)
    assert result.status is Status.FAILED
    assert "AWS credentials expired" in result.detail and "half made" in result.detail
    assert "state unsaved" in result.detail and "pending create" in result.detail
    assert len(result.detail) <= DETAIL_LIMIT and not result.detail.endswith("\u2026")


def test_a_read_failure_said_in_its_own_words_keeps_them_in_the_layers_row() -> None:
    """A layer stopped by a failed read before its run (the broker endpoint: "Nothing was run in messaging") keeps
    its own words and is not said to be cut midway."""
    from shared.orchestrate.report import failure_detail

    inner = failure_detail(_command_error("", READ_EXPIRED))
    wrapped = RuntimeError(f"messaging needs the RabbitMQ management API, and reading its endpoint failed: {inner}. "
                           "Nothing was run in messaging.")
    detail = failure_detail(wrapped, midway=True)
    assert detail.startswith("RuntimeError: messaging needs the RabbitMQ management API, and reading its endpoint")
    assert "half made" not in detail and "midway" not in detail


#: STS's refusal of a DurationSeconds above the role's MaxSessionDuration (AssumeRoleWithWebIdentity, ValidationError;
#: as quoted in kreuzwerker/awsu#27 and cevoaustralia/aws-google-auth#209), which configure-aws-credentials prints.
STS_DURATION_REFUSAL = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role"


def _readme_section(title: str) -> str:
    """The README's section ``title`` (up to the next ``## ``), its whitespace as Markdown renders it."""
    return " ".join(readme_section(f"## {title}").split())  # as rendered: a wrapped line is one


def test_the_readme_names_the_credential_steps_refusal_where_ci_is_set_up() -> None:
    """A deploy role left at one hour stops every deploy job at its credential step with STS's words: the user must
    find them in the README's CI set-up, next to the command that fixes it."""
    section = _readme_section("CI/CD (GitHub Actions)")
    assert STS_DURATION_REFUSAL in section and "--max-session-duration" in section


def test_upgrading_tells_an_existing_deploy_role_to_take_the_longer_session_first() -> None:
    """A deploy role made before the workflows asked for role-duration-seconds has IAM's default hour: every deploy
    job after the upgrade fails at its credential step until its MaxSessionDuration is raised."""
    section = _readme_section("Upgrading an existing deployment")
    assert "--max-session-duration" in section and "role-duration-seconds" in section
    assert STS_DURATION_REFUSAL in section


def test_nox_roles_json_carries_the_max_session_duration_too(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--json is the form a script sets the role up from: without the duration its deploy role kept IAM's default hour
    and every deploy job failed at its credential step."""
    import json

    from shared import deploy_role
    from shared.catalog import load_catalog
    from shared.envs import load_env

    monkeypatch.setattr(deploy_role, "deploy_policies", lambda *args, **kwargs: [])
    assert deploy_role.main(["prod", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["max_session_duration"] == workflows.deploy_session_seconds(load_env("prod"), load_catalog())
    assert deploy_role.main(["prod", "--read-only", "--role", "reader", "--json"]) == 0
    assert "max_session_duration" not in json.loads(capsys.readouterr().out)
