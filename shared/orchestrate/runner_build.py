"""``nox -s runner -- ENV``: run the layers that need the VPC on the env's deploy runner, and follow the build.

An ``amazon-mq`` broker's management API answers only inside the env's VPC, so a first ``up`` from a laptop or a
hosted CI runner stops with exit 2 before messaging (:mod:`shared.orchestrate.reach`). This command is the way on
from the same terminal: it starts a build of the deploy runner (the CodeBuild project the broker layer creates in the
private subnets), which runs ``nox -s <command> -- ENV`` there as the deploy role, prints the build's log as it
comes, and exits 0 when the build succeeded, 1 when it did not (naming the phase that failed and why).

The build checks out one commit, by its full id (``--ref``, default ``HEAD``), not a branch: what runs in the VPC
is what was reviewed here, even when ``main`` moves on during the minutes the build queues and installs
(StartBuild ``sourceVersion`` takes a commit id for GitHub: botocore codebuild). The commit must be on GitHub.

Interrupted (Ctrl-C, or SIGTERM from a cancelled CI job), the command stops following and leaves the build running:
a ``pulumi up`` killed midway leaves its stack locked with operations pending, which only ``pulumi cancel`` and a
refresh clear, while the build left alone finishes and releases the lock. It says how to follow or stop it.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

from shared.envs import EnvConfig, env_path
from shared.errors import PlatformError, UsageError
from shared.orchestrate.model import Action

#: Seconds between two reads of the build's state and log (CodeBuild BatchGetBuilds, CloudWatch Logs GetLogEvents)
POLL_S = 10.0
#: Minutes of grace beyond the project's own queued and build timeouts before this command stops waiting for a build
#: CodeBuild should have ended by then
GRACE_MINUTES = 10
#: CodeBuild's default queued timeout (botocore codebuild Project ``queuedTimeoutInMinutes``: 5 to 480, default 480)
DEFAULT_QUEUED_MINUTES = 480
#: The commands the runner's buildspec runs (``PLATFORM_COMMAND``: shared.components.deploy_runner.BUILDSPEC)
COMMANDS = (Action.UP, Action.PREVIEW, Action.REFRESH, Action.DESTROY)
#: A destroy on the runner is of the layers that need the VPC: the runner cannot delete itself or its network
#: (shared.orchestrate.reach.check_destroy_from_runner)
DESTROY_LAYERS = "messaging"

Git = Callable[[Sequence[str]], str]
"""(git arguments) -> its standard output; raises :class:`RunnerError` when git fails."""


class RunnerError(PlatformError):
    """The build could not be started or followed (exit 2: nothing was started, or what was is named)."""

    exit_code = 2


def runner_variables(env: EnvConfig, action: Action, layers: str | None,
                     backend: str | None) -> list[tuple[str, str]]:
    """The build's plain variables, name and value: the command, its layers (a destroy: :data:`DESTROY_LAYERS` unless
    given), the state backend (CodeBuild knows none of the deploying machine's environment)."""
    variables = [("PLATFORM_COMMAND", action.value)]
    if action is Action.DESTROY and not layers:
        layers = DESTROY_LAYERS
    if layers:
        variables.append(("PLATFORM_LAYERS", layers))
    variables.append(("PULUMI_BACKEND_URL", backend or ""))
    return variables


def run_git(args: Sequence[str]) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except OSError as error:
        raise RunnerError(f"git {' '.join(args)}: {error}") from None
    if done.returncode != 0:
        raise RunnerError(f"git {' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout.strip()


_GITHUB_REMOTE = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                            r"(?P<path>[\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def source_repository(env: EnvConfig, given: str | None, git: Git) -> str:
    """The GitHub repository the build checks out: ``--repository``, else the env's
    ``messaging.deploy_runner.github_repository``, else this checkout's ``origin`` when it is on GitHub."""
    if given:
        if not _GITHUB_REMOTE.match(given):
            raise UsageError(f"nox -s runner: --repository {given!r}: not a GitHub repository URL "
                             "(https://github.com/<org>/<repo>)")
        return given
    named = env.messaging.deploy_runner.github_repository
    if named:
        return named
    try:
        origin = git(["remote", "get-url", "origin"])
    except RunnerError as error:
        origin, why = "", str(error)
    else:
        why = f"origin is {origin!r}, not GitHub"
    match = _GITHUB_REMOTE.match(origin)
    if match is None:
        raise UsageError(f"nox -s runner: which GitHub repository the build checks out is unknown ({why}): name it "
                         f"with --repository https://github.com/<org>/<repo>, or in {env_path(env.name)} "
                         "messaging.deploy_runner.github_repository")
    return f"https://github.com/{match['path']}"


def resolve_commit(ref: str, git: Git) -> str:
    """``ref``'s full commit id (CodeBuild checks out exactly that commit)."""
    try:
        return git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    except RunnerError:
        raise UsageError(f"nox -s runner: --ref {ref!r}: no such commit in this checkout") from None


@dataclass(frozen=True)
class RunnerBuild:
    """One build of ``env``'s deploy runner: what StartBuild is asked."""

    env: EnvConfig
    action: Action
    layers: str | None
    repository: str
    commit: str
    backend: str | None

    @property
    def project(self) -> str:
        from shared.broker_names import deploy_project_name

        return deploy_project_name(self.env.name)

    @property
    def service_role(self) -> str:
        from shared.deploy_role import deploy_runner_role_arn

        return deploy_runner_role_arn(self.env, self.env.name)

    def start_build_request(self, buildspec: str) -> dict[str, Any]:
        """StartBuild's arguments (botocore codebuild): the project's buildspec (a NO_SOURCE project's source is its
        buildspec alone, and an overridden source brings none), this repository at this commit, fully cloned (the
        older-commit gate reads main's history: shared.orchestrate.commits), as the runner role that may assume the
        deploy role (without the override a GitHub Actions runner's project builds as its jobs role, which may not)."""
        return {
            "projectName": self.project,
            "serviceRoleOverride": self.service_role,
            "sourceTypeOverride": "GITHUB",
            "sourceLocationOverride": self.repository,
            "sourceVersion": self.commit,
            "gitCloneDepthOverride": 0,
            "buildspecOverride": buildspec,
            "environmentVariablesOverride": [
                {"name": name, "value": value, "type": "PLAINTEXT"}
                for name, value in runner_variables(self.env, self.action, self.layers, self.backend) if value],
        }


@dataclass
class Follower:
    """Follows one build: its phases and its log lines, as they come."""

    codebuild: Any
    logs: Any
    out: TextIO
    prefix: str
    token: str | None = None
    phase: str | None = None

    def read(self, build_id: str) -> dict[str, Any]:
        builds = self.codebuild.batch_get_builds(ids=[build_id]).get("builds", [])
        if not builds:
            raise RunnerError(f"{self.prefix}: CodeBuild no longer knows build {build_id}")
        build: dict[str, Any] = builds[0]
        phase = build.get("currentPhase")
        if phase and phase != self.phase:
            self.out.write(f"{self.prefix}: {phase}\n")
            self.phase = phase
        self.drain(build)
        return build

    def drain(self, build: dict[str, Any]) -> None:
        """Every log line CloudWatch Logs holds beyond those printed (none before the build's stream exists)."""
        from shared.images import aws_error_code, aws_errors

        where = build.get("logs") or {}
        group, stream = where.get("groupName"), where.get("streamName")
        if not group or not stream:
            return
        while True:
            asked: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if self.token:
                asked["nextToken"] = self.token
            try:
                page = self.logs.get_log_events(**asked)
            except aws_errors() as error:
                if aws_error_code(error) == "ResourceNotFoundException":  # the stream comes with the build's start
                    return
                raise
            for event in page.get("events", []):
                self.out.write(f"{self.prefix} | {str(event.get('message', '')).rstrip()}\n")
            following = page.get("nextForwardToken")
            if not following or following == self.token:  # the same token again: the end of the stream for now
                return
            self.token = following


def _failure(build: dict[str, Any]) -> str:
    """The phases that did not succeed, each with CodeBuild's reason."""
    failed = []
    for phase in build.get("phases", []):
        status = phase.get("phaseStatus")
        if status and status != "SUCCEEDED":
            reasons = "; ".join(str(context.get("message", "")).strip() for context in phase.get("contexts", [])
                                if str(context.get("message", "")).strip())
            failed.append(f"{phase.get('phaseType')} {status}" + (f" ({reasons})" if reasons else ""))
    return ", ".join(failed) or "no phase failed"


class _Terminated(Exception):
    """SIGTERM (a cancelled CI job) while following the build."""


def run_on_runner(run: RunnerBuild, codebuild: Any, logs: Any, out: TextIO, *,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> int:
    """Start ``run``'s build, follow it to its end and return the exit code: 0 succeeded, 1 not; 130 interrupted
    (the build goes on)."""
    from shared.images import aws_errors

    env = run.env
    prefix = f"runner {env.name}"
    try:
        projects = codebuild.batch_get_projects(names=[run.project])
        found = projects.get("projects", [])
        if not found:
            raise RunnerError(
                f"{prefix}: account {env.account_id} ({env.region}) holds no CodeBuild project {run.project}: the "
                f"broker layer creates the deploy runner (`nox -s up -- {env.name}` from here creates network, "
                "discovery and broker, then stops before messaging). Nothing was started.")
        project = found[0]
        buildspec = str((project.get("source") or {}).get("buildspec") or "")
        if not buildspec:
            raise RunnerError(f"{prefix}: CodeBuild project {run.project} has no buildspec: run the broker layer's "
                              f"`up` from this commit (`nox -s up -- {env.name} --layers broker`). Nothing was "
                              "started.")
        started = codebuild.start_build(**run.start_build_request(buildspec))["build"]
    except aws_errors() as error:
        raise RunnerError(f"{prefix}: the build could not be started (CodeBuild: {error}); the deploy role may start "
                          f"it (`nox -s roles -- {env.name}`: codebuild:StartBuild on {run.project}, iam:PassRole of "
                          f"{run.service_role}). Nothing was started.") from None
    build_id = str(started["id"])
    link = str((started.get("logs") or {}).get("deepLink") or "")
    out.write(f"{prefix}: build {build_id} started: `nox -s {run.action.value}` of {run.commit} of {run.repository}"
              + (f" (log: {link})" if link else "") + "\n")
    timeouts = int(project.get("queuedTimeoutInMinutes") or DEFAULT_QUEUED_MINUTES) + \
        int(project.get("timeoutInMinutes") or 60) + GRACE_MINUTES
    deadline = clock() + timeouts * 60
    follower = Follower(codebuild, logs, out, prefix)
    region = env.region

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        while True:
            try:
                build = follower.read(build_id)
            except aws_errors() as error:  # one read that failed: the build goes on; read again next time
                out.write(f"{prefix}: reading the build failed ({error}); trying again\n")
                build = {}
            if build.get("buildComplete"):
                break
            if clock() > deadline:
                raise RunnerError(
                    f"{prefix}: build {build_id} is not done after {timeouts} minutes, its project's queued and build "
                    f"timeouts and {GRACE_MINUTES} more: stopped following it. Look at it: `aws codebuild "
                    f"batch-get-builds --ids {shlex.quote(build_id)} --region {region}`")
            sleep(POLL_S)
    except (KeyboardInterrupt, _Terminated):
        out.write(
            f"{prefix}: interrupted: stopped following build {build_id}, which goes on (a pulumi run stopped midway "
            "leaves its stack locked with operations pending). Follow it"
            + (f" at {link}" if link else "") + f", or stop it: `aws codebuild stop-build --id "
            f"{shlex.quote(build_id)} --region {region}`\n")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    status = str(build.get("buildStatus"))
    if status == "SUCCEEDED":
        out.write(f"{prefix}: build {build_id} succeeded\n")
        return 0
    out.write(f"{prefix}: build {build_id} ended {status}: {_failure(build)}"
              + (f"; its log: {link}" if link else "") + "\n")
    return 1


def main(argv: Sequence[str] | None = None, *, clients: Callable[[EnvConfig, str], Any] | None = None,
         git: Git = run_git, out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """``python -m shared.orchestrate.runner_build ENV [--command C] [--layers a,b] [--ref REV]
    [--repository URL]``."""
    import os

    from shared.cli import UsageParser
    from shared.envs import load_env
    from shared.images import SessionClients

    out = out or sys.stdout
    parser = UsageParser(prog="python -m shared.orchestrate.runner_build", label="nox -s runner",
                         description="Run a command of the env on its deploy runner, inside the VPC, and follow it.")
    parser.add_argument("env")
    parser.add_argument("--command", default=Action.UP.value, choices=[action.value for action in COMMANDS],
                        help="the nox session the build runs (default up; up, refresh and destroy with --yes)")
    parser.add_argument("--layers", help="comma-separated layers (--layers of that session; destroy: messaging)")
    parser.add_argument("--ref", default="HEAD", help="the commit the build checks out (default HEAD)")
    parser.add_argument("--repository", help="the GitHub repository (default: the env's, else origin's)")
    try:
        args = parser.parse_args(argv)
        env = load_env(args.env)
        if args.layers is not None and not re.fullmatch(r"[a-z]+(,[a-z]+)*", args.layers):
            raise UsageError(f"nox -s runner: --layers {args.layers!r}: comma-separated layer names")
        run = RunnerBuild(env=env, action=Action(args.command), layers=args.layers,
                          repository=source_repository(env, args.repository, git), commit=resolve_commit(args.ref, git),
                          backend=os.environ.get("PULUMI_BACKEND_URL") or env.state.backend_url)
        factory = clients if clients is not None else SessionClients()
        return run_on_runner(run, factory(env, "codebuild"), factory(env, "logs"), out, sleep=sleep)
    except PlatformError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
