"""`nox -s runner -- ENV`: the layers that need the VPC run on the env's deploy runner, started and followed from
outside it (shared/orchestrate/runner_build.py), against a CodeBuild and CloudWatch Logs that answer as botocore's
models say."""

from __future__ import annotations

import io
import os
import re
import signal
from collections.abc import Sequence
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from shared import deploy_role
from shared.components.deploy_runner import BUILDSPEC
from shared.envs import load_env
from shared.orchestrate import runner_build
from shared.orchestrate.model import Action
from shared.orchestrate.runner_build import LostBuildError, RunnerBuild, RunnerError, main, run_on_runner
from tests import iam_eval
from tests.deploy_role_helpers import statements_of

COMMIT = "0123456789abcdef0123456789abcdef01234567"
BUILD_ID = "ml-platform-dev-deploy:7f1c2c1e-0000-4000-8000-000000000001"
STREAM = "7f1c2c1e-0000-4000-8000-000000000001"
GROUP = "/aws/codebuild/ml-platform-dev-deploy"


@pytest.fixture(autouse=True)
def cloud_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deploying machine's backend, as a CI job sets it: Pulumi Cloud."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")


def _phase(kind: str, status: str | None = None, message: str = "") -> dict[str, Any]:
    phase: dict[str, Any] = {"phaseType": kind}
    if status:
        phase["phaseStatus"] = status
        phase["contexts"] = [{"statusCode": status, "message": message}]
    return phase


class FakeCodeBuild:
    """CodeBuild with the runner's project, whose build goes through ``states`` (one per BatchGetBuilds)."""

    def __init__(self, states: Sequence[dict[str, Any]], *, project: bool = True,
                 secrets: Sequence[str] = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN")) -> None:
        self.states = list(states)
        self.project = project
        self.secrets = secrets
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.model = botocore.session.get_session().get_service_model("codebuild")

    def batch_get_projects(self, names: list[str]) -> dict[str, Any]:
        if not self.project:
            return {"projects": [], "projectsNotFound": names}
        variables = [{"name": "PLATFORM_ENV", "value": "dev", "type": "PLAINTEXT"}] + [
            {"name": f"{secret}_SECRET_ARN", "value": f"arn:aws:secretsmanager:eu-west-1:111111111111:secret:{secret}",
             "type": "PLAINTEXT"} for secret in self.secrets]
        return {"projects": [{"name": names[0], "source": {"type": "NO_SOURCE", "buildspec": BUILDSPEC},
                              "environment": {"environmentVariables": variables},
                              "timeoutInMinutes": 225, "queuedTimeoutInMinutes": 480}]}

    def start_build(self, **request: Any) -> dict[str, Any]:
        # the request as botocore itself validates it before sending (ParamValidationError on a wrong one)
        report = validate_parameters(request, self.model.operation_model("StartBuild").input_shape)
        assert not report, report
        self.started.append(request)
        # as StartBuild answers: the stream does not exist yet, so its link opens nothing (botocore LogsLocation)
        return {"build": {"id": BUILD_ID, "buildStatus": "IN_PROGRESS", "currentPhase": "SUBMITTED",
                          "logs": {"deepLink": "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
                                               "#logEvent:group=null;stream=null"}}}

    def batch_get_builds(self, ids: list[str]) -> dict[str, Any]:
        assert ids == [BUILD_ID]
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"builds": [{"id": BUILD_ID, **state}]}

    def stop_build(self, id: str) -> dict[str, Any]:
        self.stopped.append(id)
        return {}


class FakeLogs:
    """CloudWatch Logs holding the build's stream, whose lines arrive over time (``arrivals``: lines added on each
    read that starts from the end); GetLogEvents answers pages of two and the same token again at the end."""

    def __init__(self, arrivals: Sequence[Sequence[str]]) -> None:
        self.arrivals = [list(batch) for batch in arrivals]
        self.lines: list[str] = []

    def get_log_events(self, logGroupName: str, logStreamName: str, startFromHead: bool,
                       nextToken: str | None = None) -> dict[str, Any]:
        assert (logGroupName, logStreamName, startFromHead) == (GROUP, STREAM, True)
        start = int(nextToken.split("/")[1]) if nextToken else 0
        if start >= len(self.lines) and self.arrivals:
            self.lines.extend(self.arrivals.pop(0))
        page = self.lines[start:start + 2]
        return {"events": [{"message": line + "\n"} for line in page],
                "nextForwardToken": f"f/{start + len(page)}", "nextBackwardToken": "b/0"}


def _running(phase: str) -> dict[str, Any]:
    return {"buildStatus": "IN_PROGRESS", "currentPhase": phase, "buildComplete": False,
            "logs": {"groupName": GROUP, "streamName": STREAM}}


def _ended(status: str, phases: list[dict[str, Any]]) -> dict[str, Any]:
    return {"buildStatus": status, "currentPhase": "COMPLETED", "buildComplete": True, "phases": phases,
            "logs": {"groupName": GROUP, "streamName": STREAM}}


def _git(origin: str = "git@github.com:acme/ml-platform.git", pushed: bool = True, edited: str = "",
         remotes: str = "  origin/HEAD -> origin/main\n  origin/main") -> Any:
    def git(args: Sequence[str]) -> str:
        if list(args) == ["remote", "get-url", "origin"]:
            return origin
        if list(args) == ["branch", "--remotes"]:
            return remotes
        if list(args) == ["branch", "--remotes", "--contains", COMMIT]:
            return "  origin/main" if pushed else ""
        if list(args) == ["status", "--porcelain"]:
            return edited
        if args[0] == "rev-parse":
            if args[-1] in ("HEAD^{commit}", f"{COMMIT}^{{commit}}"):
                return COMMIT
            raise RunnerError("git rev-parse: fatal: Needed a single revision")
        raise AssertionError(args)
    return git


def _run(argv: list[str], codebuild: FakeCodeBuild, logs: FakeLogs, git: Any = None,
         sleep: Any = None) -> tuple[int, str]:
    out = io.StringIO()
    clients = {"codebuild": codebuild, "logs": logs}
    code = main(argv, clients=lambda env, service: clients[service], git=git or _git(), out=out,
                sleep=sleep or (lambda seconds: None))
    return code, out.getvalue()


def test_the_build_checks_out_this_commit_as_the_runner_role_with_the_projects_buildspec(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What runs in the VPC is the commit here, by its full id (main may move on while the build queues), from the
    repository's origin on GitHub, fully cloned, as the role that may assume the deploy role."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state?region=eu-west-1")
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, out = _run(["dev"], codebuild, FakeLogs([]))
    assert code == 0, out
    (request,) = codebuild.started
    env = load_env("dev")
    assert request == {
        "projectName": "ml-platform-dev-deploy",
        "serviceRoleOverride": f"arn:aws:iam::{env.account_id}:role/ml-platform-dev-deploy-runner",
        "sourceTypeOverride": "GITHUB", "sourceLocationOverride": "https://github.com/acme/ml-platform",
        "sourceVersion": COMMIT, "gitCloneDepthOverride": 0, "buildspecOverride": BUILDSPEC,
        "environmentVariablesOverride": [
            {"name": "PLATFORM_COMMAND", "value": "up", "type": "PLAINTEXT"},
            {"name": "PULUMI_BACKEND_URL", "value": "s3://acme-pulumi-state?region=eu-west-1", "type": "PLAINTEXT"}]}
    assert f"runner dev: build {BUILD_ID} started: `nox -s up` of {COMMIT}" in out, out
    assert f"runner dev: build {BUILD_ID} succeeded" in out, out


def test_a_destroy_on_the_runner_is_of_the_layers_that_need_the_vpc(
        monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    edit_env("dev", lambda data: data.update(state={"backend_url": "https://api.pulumi.com"}))
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, out = _run(["dev", "--command", "destroy"], codebuild, FakeLogs([]))
    assert code == 0, out
    variables = {v["name"]: v["value"] for v in codebuild.started[0]["environmentVariablesOverride"]}
    assert variables == {"PLATFORM_COMMAND": "destroy", "PLATFORM_LAYERS": "messaging",
                         "PULUMI_BACKEND_URL": "https://api.pulumi.com"}
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    _run(["dev", "--command", "preview", "--layers", "messaging,compute", "--ref", COMMIT], codebuild, FakeLogs([]))
    variables = {v["name"]: v["value"] for v in codebuild.started[0]["environmentVariablesOverride"]}
    assert variables == {"PLATFORM_COMMAND": "preview", "PLATFORM_LAYERS": "messaging,compute",
                         "PULUMI_BACKEND_URL": "https://api.pulumi.com"}


def test_the_builds_phases_and_log_lines_are_printed_once_each_as_they_come() -> None:
    codebuild = FakeCodeBuild([
        {"buildStatus": "IN_PROGRESS", "currentPhase": "QUEUED", "buildComplete": False},  # no log stream yet
        _running("PROVISIONING"), _running("INSTALL"), _running("BUILD"), _running("BUILD"),
        _ended("SUCCEEDED", [_phase("INSTALL", "SUCCEEDED"), _phase("BUILD", "SUCCEEDED")])])
    logs = FakeLogs([["Waiting for agent ping"], ["Running command bash .ci/install-pulumi 3.272.0", "pulumi ok",
                                                  "Running command python3 -m nox -s up -- dev --yes"],
                     ["[messaging] up dev: started", "[messaging] succeeded", "up dev: 2 succeeded"]])
    code, out = _run(["dev"], codebuild, logs)
    assert code == 0, out
    lines = [line.removeprefix("runner dev | ") for line in out.splitlines() if line.startswith("runner dev | ")]
    assert lines == ["Waiting for agent ping", "Running command bash .ci/install-pulumi 3.272.0", "pulumi ok",
                     "Running command python3 -m nox -s up -- dev --yes", "[messaging] up dev: started",
                     "[messaging] succeeded", "up dev: 2 succeeded"]
    phases = [line.split(": ", 1)[1] for line in out.splitlines() if re.fullmatch(r"runner dev: [A-Z_]+", line)]
    assert phases == ["QUEUED", "PROVISIONING", "INSTALL", "BUILD", "COMPLETED"], out


def test_a_failed_build_exits_1_naming_the_phase_and_codebuilds_reason() -> None:
    codebuild = FakeCodeBuild([_running("BUILD"), _ended("FAILED", [
        _phase("DOWNLOAD_SOURCE", "SUCCEEDED"), _phase("INSTALL", "SUCCEEDED"),
        _phase("BUILD", "FAILED", "Error while executing command: python3 -m nox -s up -- dev --yes. "
                                  "Reason: exit status 2"),
        _phase("POST_BUILD", "SUCCEEDED"), _phase("COMPLETED")])])
    code, out = _run(["dev"], codebuild, FakeLogs([["error: refused"]]))
    assert code == 1, out
    assert (f"runner dev: build {BUILD_ID} ended FAILED: BUILD FAILED (Error while executing command: python3 -m nox "
            "-s up -- dev --yes. Reason: exit status 2)") in out, out
    assert "runner dev | error: refused" in out, out


def test_a_commit_codebuild_cannot_fetch_fails_at_download_source() -> None:
    """The commit must be on GitHub: a note before the build where no remote branch here holds it, and the way out
    when CodeBuild could not check it out."""
    codebuild = FakeCodeBuild([_ended("FAILED", [
        _phase("SUBMITTED", "SUCCEEDED"), _phase("DOWNLOAD_SOURCE", "CLIENT_ERROR",
                                                 "reference not found for primary source and source version "
                                                 + COMMIT)])])
    code, out = _run(["dev"], codebuild, FakeLogs([]), git=_git(pushed=False))
    assert code == 1 and "DOWNLOAD_SOURCE CLIENT_ERROR (reference not found" in out, out
    assert f"note: no remote branch of this checkout holds {COMMIT}" in out, out
    assert f"CodeBuild could not check out {COMMIT} of https://github.com/acme/ml-platform: push it" in out, out
    code, out = _run(["dev"], FakeCodeBuild([_ended("SUCCEEDED", [])]), FakeLogs([]))
    assert code == 0 and "no remote branch" not in out and "could not check out" not in out, out


@pytest.mark.parametrize(("backend", "secrets", "says"), [
    (None, (), "its checkout's .pulumi-state, which `up` refuses: name the backend in"),
    ("file:///home/me/state", (), "is a folder of this machine, which the build cannot reach"),
    ("https://api.pulumi.com", ("PULUMI_CONFIG_PASSPHRASE",),
     "names no secret holding a Pulumi access token for https://api.pulumi.com (PULUMI_ACCESS_TOKEN_SECRET_ARN)"),
    ("s3://acme-state", ("PULUMI_ACCESS_TOKEN",),
     "the passphrase of the stacks' secrets on s3://acme-state (PULUMI_CONFIG_PASSPHRASE_SECRET_ARN)"),
])
def test_a_build_that_could_not_reach_the_stacks_is_not_started(
        backend: str | None, secrets: tuple[str, ...], says: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Judged before the build spends its minutes installing: a backend it cannot reach, or a login the project gives
    it no secret for (its first pulumi call would stop with the CLI's message, naming no env key)."""
    if backend is None:
        monkeypatch.delenv("PULUMI_BACKEND_URL")
    else:
        monkeypatch.setenv("PULUMI_BACKEND_URL", backend)
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])], secrets=secrets)
    code, _ = _run(["dev"], codebuild, FakeLogs([]))
    err = capsys.readouterr().err
    assert code == 2 and codebuild.started == [] and says in err and "Nothing was started" in err, err
    if secrets:
        assert "messaging.deploy_runner." in err and "--layers broker --exact" in err, err


def test_a_kms_secrets_provider_needs_no_passphrase(monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-state")
    edit_env("dev", lambda data: data.update(state={"secrets_provider": "awskms://alias/pulumi"}))
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])], secrets=())
    code, out = _run(["dev"], codebuild, FakeLogs([]))
    assert code == 0 and len(codebuild.started) == 1, out


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sighup"])
def test_an_interrupt_stops_following_and_leaves_the_build_running(how: str) -> None:
    """A pulumi up killed midway leaves its stack locked with operations pending; the build left alone finishes and
    releases the lock. So Ctrl-C, SIGTERM or SIGHUP stops only the following, and says how to stop the build."""
    codebuild = FakeCodeBuild([_running("BUILD")])
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}

    def interrupt(seconds: float) -> None:
        if how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM if how == "sigterm" else signal.SIGHUP)

    code, out = _run(["dev"], codebuild, FakeLogs([["building"]]), sleep=interrupt)
    assert code == 130 and codebuild.stopped == [], out
    assert f"stopped following build {BUILD_ID}, which goes on" in out
    assert f"aws codebuild stop-build --id {BUILD_ID} --region eu-west-1" in out
    # the handlers are this command's only while it runs
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_a_build_that_never_ends_is_given_up_after_the_projects_timeouts() -> None:
    codebuild = FakeCodeBuild([_running("BUILD")])
    run = RunnerBuild(env=load_env("dev"), action=Action.UP, layers=None,
                      repository="https://github.com/acme/ml-platform", commit=COMMIT, backend="https://api.pulumi.com")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(LostBuildError, match=r"is not done after 715 minutes"):
        run_on_runner(run, codebuild, FakeLogs([]), io.StringIO(), sleep=sleep, clock=lambda: now[0])
    assert now[0] >= (480 + 225) * 60


def test_no_runner_project_yet_starts_nothing_and_names_the_broker_layer(capsys: pytest.CaptureFixture[str]) -> None:
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])], project=False)
    code, _ = _run(["dev"], codebuild, FakeLogs([]))
    assert code == 2 and codebuild.started == []
    err = capsys.readouterr().err
    assert "holds no CodeBuild project ml-platform-dev-deploy" in err and "Nothing was started" in err, err


@pytest.mark.parametrize(("code", "says"), [
    ("AccessDeniedException", "iam:PassRole of arn:aws:iam::111111111111:role/ml-platform-dev-deploy-runner"),
    # a new account's concurrent-build quota may be 0 or 1 (botocore codebuild StartBuild AccountLimitExceeded)
    ("AccountLimitExceededException", "the project runs one at a time"),
])
def test_a_start_aws_refuses_is_exit_2_naming_what_to_do(code: str, says: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    class Refusing(FakeCodeBuild):
        def start_build(self, **request: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "StartBuild")

    exit_code, _ = _run(["dev"], Refusing([_ended("SUCCEEDED", [])]), FakeLogs([]))
    err = capsys.readouterr().err
    assert exit_code == 2 and "could not be started" in err and says in err, err
    assert code in {error.name for error in botocore.session.get_session().get_service_model("codebuild")
                    .operation_model("StartBuild").error_shapes} | {"AccessDeniedException"}


@pytest.mark.parametrize(("origin", "expected"), [
    ("git@github.com:acme/ml-platform.git", "https://github.com/acme/ml-platform"),
    ("https://github.com/acme/ml-platform.git", "https://github.com/acme/ml-platform"),
    ("https://github.com/acme/ml-platform", "https://github.com/acme/ml-platform"),
    ("ssh://git@github.com/acme/ml.platform.git", "https://github.com/acme/ml.platform"),
    # a checkout cloned with a token: the token goes neither to CodeBuild nor to the output
    ("https://x-access-token:ghs_SECRET@github.com/acme/ml-platform.git", "https://github.com/acme/ml-platform"),
])
def test_the_repository_is_origins_on_github(origin: str, expected: str) -> None:
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, out = _run(["dev"], codebuild, FakeLogs([]), git=_git(origin))
    assert code == 0 and codebuild.started[0]["sourceLocationOverride"] == expected, out
    assert "ghs_SECRET" not in out
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, out = _run(["dev", "--repository", origin], codebuild, FakeLogs([]), git=_git("https://gitlab.example/x"))
    assert code == 0 and codebuild.started[0]["sourceLocationOverride"] == expected, out


def test_the_envs_runner_repository_wins_and_another_origin_needs_repository(
        edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, out = _run(["dev"], codebuild, FakeLogs([]), git=_git("https://gitlab.example/acme/ml.git"))
    err = capsys.readouterr().err
    assert code == 2 and codebuild.started == [], out
    assert "not GitHub" in err and "--repository https://github.com/<org>/<repo>" in err, err
    code, out = _run(["dev", "--repository", "https://github.com/acme/fork"], codebuild, FakeLogs([]),
                     git=_git("https://gitlab.example/acme/ml.git"))
    assert code == 0 and codebuild.started[-1]["sourceLocationOverride"] == "https://github.com/acme/fork", out
    edit_env("dev", lambda data: data["messaging"].update(
        deploy_runner={"github_repository": "https://github.com/acme/platform"}))
    code, out = _run(["dev"], codebuild, FakeLogs([]), git=_git("https://gitlab.example/acme/ml.git"))
    assert code == 0 and codebuild.started[-1]["sourceLocationOverride"] == "https://github.com/acme/platform", out


@pytest.mark.parametrize(("argv", "says"), [
    (["dev", "--ref", "no-such-branch"], "--ref 'no-such-branch': no such commit"),
    (["dev", "--command", "rehearse"], "nox -s runner: argument --command: invalid choice"),
    (["dev", "--layers", "messaging;rm"], "--layers: unknown layer(s) messaging;rm"),
    (["dev", "--repository", "https://gitlab.example/acme/ml"], "not a GitHub repository URL"),
    (["nosuchenv"], "nosuchenv"),
])
def test_bad_arguments_start_nothing(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, _ = _run(argv, codebuild, FakeLogs([]))
    err = capsys.readouterr().err
    assert code == 2 and codebuild.started == [] and says in err, err


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_the_deploy_role_may_start_and_follow_the_runners_build(name: str) -> None:
    env = load_env(name)
    statements = statements_of(deploy_role.deploy_policies(name, environ={}))
    project = f"arn:aws:codebuild:{env.region}:{env.account_id}:project/ml-platform-{name}-deploy"
    for action in ("codebuild:BatchGetProjects", "codebuild:StartBuild", "codebuild:BatchGetBuilds"):
        assert iam_eval.allows(statements, action, project), action
    runner_role = f"arn:aws:iam::{env.account_id}:role/ml-platform-{name}-deploy-runner"
    assert iam_eval.allows(statements, "iam:PassRole", runner_role, {"iam:PassedToService": "codebuild.amazonaws.com"})
    stream = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:/aws/codebuild/ml-platform-{name}-deploy:" \
             f"log-stream:{STREAM}"
    assert iam_eval.allows(statements, "logs:GetLogEvents", stream)


def test_the_reach_refusal_names_the_runner_command() -> None:
    from shared.orchestrate.model import Operation
    from shared.orchestrate.reach import ways_in

    env = load_env("dev")
    assert "`nox -s runner -- dev` starts this checkout's commit there" in ways_in(env, Operation(Action.UP))
    assert "`nox -s runner -- dev --command destroy`" in ways_in(env, Operation(Action.DESTROY))
    assert runner_build.COMMANDS == (Action.UP, Action.PREVIEW, Action.REFRESH, Action.DESTROY)


class FlakyLogs(FakeLogs):
    """CloudWatch Logs answering ``code`` to every read while ``failing``."""

    def __init__(self, arrivals: Sequence[Sequence[str]], code: str, failing: int) -> None:
        super().__init__(arrivals)
        self.code, self.failing = code, failing

    def get_log_events(self, logGroupName: str, logStreamName: str, startFromHead: bool,
                       nextToken: str | None = None) -> dict[str, Any]:
        if self.failing:
            self.failing -= 1
            raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "GetLogEvents")
        return super().get_log_events(logGroupName, logStreamName, startFromHead, nextToken)


@pytest.mark.parametrize(("code", "says"), [
    ("AccessDeniedException", "its log cannot be read from here"),
    ("ThrottlingException", "reading its log failed"),
])
def test_a_log_that_cannot_be_read_never_hides_the_builds_result(code: str, says: str) -> None:
    """The result is the build's: a log read refused (a role without logs:GetLogEvents) or failing for a while is
    said once, and the build's state is read on to its end."""
    codebuild = FakeCodeBuild([_running("BUILD")] * 5 + [_ended("SUCCEEDED", [])])
    code_, out = _run(["dev"], codebuild, FlakyLogs([["line one"], ["line two"]], code, failing=3))
    assert code_ == 0 and f"build {BUILD_ID} succeeded" in out, out
    assert out.count(says) == 1, out
    if code == "ThrottlingException":  # read again once it answers: every line, once
        assert out.count("runner dev | line one") == 1 and out.count("runner dev | line two") == 1, out


def test_a_build_read_failing_for_a_while_is_said_once_and_one_refused_stops_following(
        capsys: pytest.CaptureFixture[str]) -> None:
    class Flaky(FakeCodeBuild):
        failing = 3

        def batch_get_builds(self, ids: list[str]) -> dict[str, Any]:
            if self.failing:
                self.failing -= 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "BatchGetBuilds")
            return super().batch_get_builds(ids)

    code, out = _run(["dev"], Flaky([_running("BUILD"), _ended("SUCCEEDED", [])]), FakeLogs([]))
    assert code == 0 and out.count("reading the build failed") == 1, out

    class Expired(FakeCodeBuild):
        def batch_get_builds(self, ids: list[str]) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "expired"}}, "BatchGetBuilds")

    code, out = _run(["dev"], Expired([_running("BUILD")]), FakeLogs([]))
    err = capsys.readouterr().err
    assert code == 1 and f"build {BUILD_ID} can no longer be read" in err and "it goes on" in err, err


def test_the_log_link_is_the_polled_builds_and_the_last_lines_are_read_after_the_end() -> None:
    """StartBuild answers before the log stream exists (its link opens nothing); CloudWatch Logs may receive the
    last lines, those that say why a run failed, after CodeBuild reports the build done."""
    link = "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logEvent:group=x;stream=y"
    with_link = dict(_running("BUILD"), logs={"groupName": GROUP, "streamName": STREAM, "deepLink": link})
    ended = dict(_ended("FAILED", [_phase("BUILD", "FAILED", "exit status 1")]),
                 logs={"groupName": GROUP, "streamName": STREAM, "deepLink": link})
    codebuild = FakeCodeBuild([_running("QUEUED") | {"logs": {}}, with_link, ended])
    logs = FakeLogs([["building"], [], [], ["error: the last line"]])
    code, out = _run(["dev"], codebuild, logs)
    assert code == 1 and "runner dev | error: the last line" in out, out
    assert f"ended FAILED: BUILD FAILED (exit status 1) (its log: {link})" in out, out
    assert "group=null" not in out


@pytest.mark.parametrize("status", ["STOPPED", "TIMED_OUT"])
def test_a_build_stopped_or_timed_out_names_the_stacks_it_may_have_left_locked(status: str) -> None:
    codebuild = FakeCodeBuild([_ended(status, [_phase("BUILD", status, "stopped")])])
    code, out = _run(["dev"], codebuild, FakeLogs([]))
    assert code == 1 and "An update killed mid-way" in out and "nox -s up -- dev` names such a stack" in out, out


def test_uncommitted_changes_are_noted_as_not_in_the_build() -> None:
    for ref in ("HEAD", COMMIT):  # the commit checked out here, however named
        code, out = _run(["dev", "--ref", ref], FakeCodeBuild([_ended("SUCCEEDED", [])]), FakeLogs([]),
                         git=_git(edited="?? services/new_handler.py"))
        assert code == 0 and "this checkout has uncommitted changes, which the build does not have" in out, out


def test_a_checkout_without_remote_branches_says_nothing_of_pushing() -> None:
    """A CI checkout (one commit fetched by its id) knows no remote branch: no false alarm."""
    code, out = _run(["dev"], FakeCodeBuild([_ended("SUCCEEDED", [])]), FakeLogs([]),
                     git=_git(pushed=False, remotes=""))
    assert code == 0 and "no remote branch" not in out, out


@pytest.mark.parametrize(("argv", "says"), [
    (["dev", "--layers", "mesaging"], "--layers: unknown layer(s) mesaging"),
    # the runner cannot destroy itself or its network: refused here, not after the build queued and installed
    (["dev", "--command", "destroy", "--layers", "broker"], "would destroy broker"),
])
def test_layers_the_build_would_refuse_start_nothing(argv: list[str], says: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])])
    code, _ = _run(argv, codebuild, FakeLogs([]))
    err = capsys.readouterr().err
    assert code == 2 and codebuild.started == [] and says in err, err


def test_a_pulumi_cloud_backend_with_passphrase_secrets_needs_both_secrets(
        edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    edit_env("dev", lambda data: data.update(state={"secrets_provider": "passphrase"}))
    codebuild = FakeCodeBuild([_ended("SUCCEEDED", [])], secrets=("PULUMI_ACCESS_TOKEN",))
    code, _ = _run(["dev"], codebuild, FakeLogs([]))
    err = capsys.readouterr().err
    assert code == 2 and "PULUMI_CONFIG_PASSPHRASE_SECRET_ARN" in err and codebuild.started == [], err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_pair_to_the_process_group_is_one_interrupt(signum: int) -> None:
    """nox passes on what it gets, so one SIGTERM (or SIGHUP) to the process group arrives twice: the second, while
    the first is being handled, must not end the command with a traceback."""
    codebuild = FakeCodeBuild([_running("BUILD")])

    class SecondSignal(io.StringIO):
        sent = False

        def write(self, text: str) -> int:
            if "interrupted" in text and not self.sent:  # while the first is handled
                self.sent = True
                os.kill(os.getpid(), signum)
            return super().write(text)

    out = SecondSignal()
    clients = {"codebuild": codebuild, "logs": FakeLogs([])}
    code = main(["dev"], clients=lambda env, service: clients[service], git=_git(), out=out,
                sleep=lambda seconds: os.kill(os.getpid(), signum))
    assert out.sent and code == 130 and out.getvalue().count("stopped following build") == 1, out.getvalue()
    assert codebuild.stopped == []


def test_ctrl_c_while_the_build_is_asked_for_names_where_to_find_it(capsys: pytest.CaptureFixture[str]) -> None:
    class Slow(FakeCodeBuild):
        def start_build(self, **request: Any) -> dict[str, Any]:
            raise KeyboardInterrupt

    code, _ = _run(["dev"], Slow([_ended("SUCCEEDED", [])]), FakeLogs([]))
    err = capsys.readouterr().err
    assert code == 130 and "list-builds-for-project --project-name ml-platform-dev-deploy" in err, err


def test_the_runner_project_runs_one_build_at_a_time_unless_it_is_a_github_actions_runner(edit_env: Any) -> None:
    """Only start-build (this command) starts a build of a project without a webhook: a second is refused while one
    runs, so two deploys never interleave their layers in the VPC. With a webhook each GitHub Actions job is a build,
    and the workflows' concurrency groups order the deploys."""
    from shared.synth.engine import synth_env
    from tests.synth_helpers import of_type

    def limit() -> Any:
        (project,) = of_type(synth_env("dev", ["broker"])["broker"], "aws:codebuild/project:Project")
        return project["inputs"].get("concurrentBuildLimit")

    assert limit() == 1
    edit_env("dev", lambda data: data["messaging"].update(
        deploy_runner={"github_repository": "https://github.com/acme/ml-platform"}))
    assert limit() is None


def test_an_interrupt_while_the_last_log_lines_are_read_still_reports_the_builds_result() -> None:
    """The build is over by then: its result is what the command owes, not 'it goes on'."""
    from shared.orchestrate.runner_build import FINAL_READ_S

    def sleep(seconds: float) -> None:
        if seconds == FINAL_READ_S:
            raise KeyboardInterrupt

    code, out = _run(["dev"], FakeCodeBuild([_ended("FAILED", [_phase("BUILD", "FAILED", "exit status 2")])]),
                     FakeLogs([["error: refused"]]), sleep=sleep)
    assert code == 1 and "ended FAILED: BUILD FAILED (exit status 2)" in out and "goes on" not in out, out
