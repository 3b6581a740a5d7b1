"""``nox -s runner -- ENV``: run the layers that need the VPC on the env's deploy runner, and follow the build.

An ``amazon-mq`` broker's management API answers only inside the env's VPC, so a first ``up`` from a laptop or a
hosted CI runner stops with exit 2 before messaging (:mod:`shared.orchestrate.reach`). This command is the way on
from the same terminal: it starts a build of the deploy runner (the CodeBuild project the broker layer creates in the
private subnets), which runs ``nox -s <command> -- ENV`` there as the deploy role, prints the build's log as it
comes, and exits 0 when the build succeeded, 1 when it did not (naming the phase that failed and why).

The build checks out one commit, by its full id (``--ref``, default ``HEAD``), not a branch: what runs in the VPC
is what was reviewed here, even when ``main`` moves on during the minutes the build queues and installs
(StartBuild ``sourceVersion`` takes a commit id for GitHub: botocore codebuild). The commit must be on GitHub.

Interrupted (Ctrl-C, SIGTERM or SIGHUP, taken as ``up`` takes them: shared.orchestrate.cli.signals_interrupt), the
command stops following and leaves the build running, exit 130: a ``pulumi up`` killed midway leaves its stack locked
with operations pending, which only ``pulumi cancel`` and a refresh clear, while the build left alone finishes and
releases the lock. It says how to follow or stop it. The project runs one build at a time (without a webhook:
shared.components.deploy_runner), so a second start while one runs is refused, naming the running one.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from shared.envs import EnvConfig, env_path, without_userinfo
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


def runner_variables(action: Action, layers: str | None, backend: str | None) -> list[tuple[str, str]]:
    """The build's plain variables, name and value: the command, its layers (a destroy: :data:`DESTROY_LAYERS` unless
    given), the state backend where one is named (CodeBuild knows none of the deploying machine's environment)."""
    variables = [("PLATFORM_COMMAND", action.value)]
    if action is Action.DESTROY and not layers:
        layers = DESTROY_LAYERS
    if layers:
        variables.append(("PLATFORM_LAYERS", layers))
    if backend:
        variables.append(("PULUMI_BACKEND_URL", backend))
    return variables


def run_git(args: Sequence[str]) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except OSError as error:
        raise RunnerError(f"git {' '.join(args)}: {error}") from None
    if done.returncode != 0:
        raise RunnerError(f"git {' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout.strip()


_GITHUB_REMOTE = re.compile(r"^(?:https://(?:[^@/\s]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
                            r"(?P<path>[\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def source_repository(env: EnvConfig, given: str | None, git: Git) -> str:
    """The GitHub repository the build checks out, as the https URL CodeBuild clones (StartBuild
    ``sourceLocationOverride``): ``--repository``, else the env's ``messaging.deploy_runner.github_repository``, else
    this checkout's ``origin`` when it is on GitHub (its ssh form, or an https one carrying a token, taken as the
    repository's https URL: no credential goes to CodeBuild or the output)."""
    if given:
        match = _GITHUB_REMOTE.match(given)
        if match is None:
            raise UsageError(f"nox -s runner: --repository {without_userinfo(given)!r}: not a GitHub repository "
                             "URL (https://github.com/<org>/<repo>)")
        return f"https://github.com/{match['path']}"
    named = env.messaging.deploy_runner.github_repository
    if named:
        return named.removesuffix(".git")
    try:
        origin = git(["remote", "get-url", "origin"])
    except RunnerError as error:
        origin, why = "", str(error)
    else:
        why = f"origin is {without_userinfo(origin)!r}, not GitHub"
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
                for name, value in runner_variables(self.action, self.layers, self.backend)],
        }


#: Error codes of a read that will fail the same way again (IAM, the session's credentials): following stops
GIVE_UP_CODES = frozenset({"AccessDeniedException", "AccessDenied", "ExpiredTokenException", "ExpiredToken",
                           "UnrecognizedClientException", "InvalidClientTokenId"})
#: Empty log reads after the build completed before the log is taken as whole: CloudWatch Logs may receive the last
#: lines after CodeBuild reports the build done (aws-actions/aws-codebuild-run-build reads on the same way)
FINAL_EMPTY_READS = 2
#: Seconds between those final reads
FINAL_READ_S = 3.0


class StartInterrupted(PlatformError):
    """Interrupted while StartBuild was on its way: a build may have started (exit 130, as any interrupt)."""

    exit_code = 130


class LostBuildError(PlatformError):
    """Following stopped while the build may still run (exit 1: not known to have succeeded)."""

    exit_code = 1


@dataclass
class Follower:
    """Follows one build: its phases and its log lines, as they come, each line written at once."""

    codebuild: Any
    logs: Any
    out: TextIO
    prefix: str
    token: str | None = None
    phase: str | None = None
    link: str = ""
    logs_failing: bool = False
    logs_denied: bool = False
    build_failing: bool = False

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()  # through a pipe (a CI log) too, as the build goes

    def read(self, build_id: str) -> dict[str, Any] | None:
        """The build as CodeBuild reports it now (None: this read failed, read again next time), its new log lines
        printed before its new phase."""
        from shared.images import aws_error_code, aws_errors

        try:
            builds = self.codebuild.batch_get_builds(ids=[build_id]).get("builds", [])
        except aws_errors() as error:
            if aws_error_code(error) in GIVE_UP_CODES:
                raise LostBuildError(f"{self.prefix}: build {build_id} can no longer be read ({error}): stopped "
                                     f"following it; it goes on{self.see_log()}") from None
            if not self.build_failing:
                self.say(f"{self.prefix}: reading the build failed ({error}); trying again")
            self.build_failing = True
            return None
        self.build_failing = False
        if not builds:
            raise LostBuildError(f"{self.prefix}: CodeBuild no longer knows build {build_id}")
        build: dict[str, Any] = builds[0]
        # the stream, and so a link that opens, exists from the PROVISIONING phase (botocore codebuild LogsLocation)
        where = build.get("logs") or {}
        if where.get("streamName") and where.get("deepLink"):
            self.link = str(where["deepLink"])
        self.drain(build)
        phase = build.get("currentPhase")
        if phase and phase != self.phase:
            self.say(f"{self.prefix}: {phase}")
            self.phase = phase
        return build

    def see_log(self) -> str:
        return f" (its log: {self.link})" if self.link else ""

    def drain(self, build: dict[str, Any]) -> int:
        """Print every log line CloudWatch Logs holds beyond those printed (none before the build's stream exists);
        the number printed. A read that fails is said once and tried again at the next poll, the build's state being
        read on: the log is what explains a failure, but the result is the build's."""
        from shared.images import aws_error_code, aws_errors

        where = build.get("logs") or {}
        group, stream = where.get("groupName"), where.get("streamName")
        if not group or not stream or self.logs_denied:
            return 0
        printed = 0
        while True:
            asked: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if self.token:
                asked["nextToken"] = self.token
            try:
                page = self.logs.get_log_events(**asked)
            except aws_errors() as error:
                code = aws_error_code(error)
                if code == "ResourceNotFoundException":  # the stream comes with the build's PROVISIONING
                    return printed
                if code in GIVE_UP_CODES:
                    self.logs_denied = True
                    self.say(f"{self.prefix}: its log cannot be read from here ({error}); following the build's "
                             f"state only{self.see_log()}")
                elif not self.logs_failing:
                    self.say(f"{self.prefix}: reading its log failed ({error}); trying again")
                self.logs_failing = True
                return printed
            self.logs_failing = False
            for event in page.get("events", []):
                self.say(f"{self.prefix} | {str(event.get('message', '')).rstrip()}")
                printed += 1
            following = page.get("nextForwardToken")
            if not following or following == self.token:  # the same token again: the end of the stream for now
                return printed
            self.token = following

    def finish(self, build: dict[str, Any], sleep: Callable[[float], None]) -> None:
        """The log's last lines, which may reach CloudWatch Logs after the build completed."""
        empty = 0
        while empty < FINAL_EMPTY_READS and not self.logs_denied:
            sleep(FINAL_READ_S)
            empty = 0 if self.drain(build) else empty + 1


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


def state_access_problem(run: RunnerBuild, project: dict[str, Any]) -> str | None:
    """Why the build could not reach the env's stacks, judged before it spends its minutes installing: no state
    backend it can reach, or a login the project gives it no secret for (the variables broker's ``up`` made from
    ``messaging.deploy_runner``: shared.components.deploy_runner.SECRET_VARIABLES); None when nothing is missing."""
    from shared.components.deploy_runner import SECRET_NAME_SUFFIX
    from shared.orchestrate.automation import backend_encrypts_secrets, uses_passphrase

    env, url = run.env, run.backend
    if not url:
        return (f"the build would keep its stacks in its checkout's .pulumi-state, which `up` refuses: name the "
                f"backend in {env_path(env.name)} state.backend_url, or set PULUMI_BACKEND_URL here")
    if url.startswith("file://"):
        return (f"the state backend {url} is a folder of this machine, which the build cannot reach: move the "
                "stacks to the env's durable backend (README, Real runs) and name it in state.backend_url")
    variables = {str(variable.get("name")) for variable in
                 (project.get("environment") or {}).get("environmentVariables", [])}
    needed = []
    if backend_encrypts_secrets(url):
        needed.append(("PULUMI_ACCESS_TOKEN", "access_token_secret", f"a Pulumi access token for {url}"))
    if uses_passphrase(url, env.state.secrets_provider):
        needed.append(("PULUMI_CONFIG_PASSPHRASE", "passphrase_secret",
                       f"the passphrase of the stacks' secrets on {url}"))
    for variable, key, what in needed:
        if variable + SECRET_NAME_SUFFIX not in variables:
            return (f"the build would log in to no backend: CodeBuild project {run.project} names no secret holding "
                    f"{what} ({variable}{SECRET_NAME_SUFFIX}), so its first `pulumi` call stops. Keep it in a Secrets "
                    f"Manager secret of account {env.account_id} ({env.region}), name it in {env_path(env.name)} "
                    f"messaging.deploy_runner.{key}, update the deploy role's policies (`nox -s roles -- {env.name}`) "
                    f"and run broker's `up` from here (`nox -s up -- {env.name} --layers broker --exact`), which "
                    "puts it in the project")
    return None


def _start_hint(run: RunnerBuild, error: BaseException) -> str:
    """What to do about StartBuild's refusal, by its error code."""
    from shared.images import aws_error_code

    code = aws_error_code(error)
    if code == "AccountLimitExceededException":
        # CodeBuild's concurrent builds are a quota of the account and region, which a new account may have at 0 or 1
        return (f"another build of {run.project} is running (the project runs one at a time: look at it with `aws "
                f"codebuild list-builds-for-project --project-name {run.project} --region {run.env.region}` and wait "
                f"for it), or account {run.env.account_id} ({run.env.region}) may run no more CodeBuild builds (its "
                "concurrent-build quota, which a new account may have at 0 or 1: ask for more in Service Quotas, "
                "AWS CodeBuild, concurrently running builds of the project's compute type)")
    if code in ("AccessDeniedException", "AccessDenied"):
        return (f"use the deploy role, whose policies from `nox -s roles -- {run.env.name}` allow "
                f"codebuild:StartBuild on {run.project} and iam:PassRole of {run.service_role}")
    return "see CodeBuild's reason"


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
        problem = state_access_problem(run, project)
        if problem:
            raise RunnerError(f"{prefix}: {problem}. Nothing was started.")
        try:
            started = codebuild.start_build(**run.start_build_request(buildspec))["build"]
        except KeyboardInterrupt:
            raise StartInterrupted(f"{prefix}: interrupted while CodeBuild was asked to start the build, which may "
                                   f"have started: `aws codebuild list-builds-for-project --project-name {run.project} "
                                   f"--region {env.region}` lists it first") from None
    except aws_errors() as error:
        raise RunnerError(f"{prefix}: the build could not be started (CodeBuild: {error}); {_start_hint(run, error)}. "
                          "Nothing was started.") from None
    build_id = str(started["id"])
    follower = Follower(codebuild, logs, out, prefix)
    # StartBuild's answer has no log link yet: the stream comes with PROVISIONING (botocore codebuild LogsLocation)
    follower.say(f"{prefix}: build {build_id} started: `nox -s {run.action.value}` of {run.commit} of "
                 f"{run.repository}")
    timeouts = int(project.get("queuedTimeoutInMinutes") or DEFAULT_QUEUED_MINUTES) + \
        int(project.get("timeoutInMinutes") or 60) + GRACE_MINUTES
    deadline = clock() + timeouts * 60
    region = env.region
    look = f"`aws codebuild batch-get-builds --ids {shlex.quote(build_id)} --region {region}`"

    try:
        while True:
            build = follower.read(build_id)
            if build is not None and build.get("buildComplete"):
                break
            if clock() > deadline:
                raise LostBuildError(
                    f"{prefix}: build {build_id} is not done after {timeouts} minutes, its project's queued and build "
                    f"timeouts and {GRACE_MINUTES} more: stopped following it{follower.see_log()}. Look at it: {look}")
            sleep(POLL_S)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP as signals_interrupt raises them (RunInterrupted)
        follower.say(
            f"{prefix}: interrupted: stopped following build {build_id}, which goes on (a pulumi run stopped midway "
            f"leaves its stack locked with operations pending). Follow it{follower.see_log()}: {look}; or stop it: "
            f"`aws codebuild stop-build --id {shlex.quote(build_id)} --region {region}`")
        return 130
    try:
        follower.finish(build, sleep)
    except KeyboardInterrupt:  # the build is over: its result is said without the log's last lines
        pass
    status = str(build.get("buildStatus"))
    if status == "SUCCEEDED":
        follower.say(f"{prefix}: build {build_id} succeeded")
        return 0
    follower.say(f"{prefix}: build {build_id} ended {status}: {_failure(build)}{follower.see_log()}")
    if any(phase.get("phaseType") == "DOWNLOAD_SOURCE" and phase.get("phaseStatus") not in (None, "SUCCEEDED")
           for phase in build.get("phases", [])):
        follower.say(f"{prefix}: CodeBuild could not check out {run.commit} of {run.repository}: push it to GitHub "
                     "(a private repository also needs CodeBuild's GitHub credential of the account: README, Ways "
                     "into the VPC), then run again")
    elif status in ("STOPPED", "TIMED_OUT"):
        # a pulumi run stopped from outside may leave a stack locked, with operations pending (README, "An update
        # killed mid-way")
        follower.say(f"{prefix}: a build that ended {status} may have stopped a pulumi run midway: its "
                     "stack may be locked or record operations that never finished (README, Real runs, An update "
                     f"killed mid-way): the next `nox -s up -- {env.name}` names such a stack before any change")
    return 1


def runner_backend(env: EnvConfig) -> str | None:
    """The state backend a build of the runner is given: this machine's ``PULUMI_BACKEND_URL``, else the env file's
    ``state.backend_url`` (which the build's checkout reads itself); None: neither."""
    import os

    return os.environ.get("PULUMI_BACKEND_URL") or env.state.backend_url


def _notes(run: RunnerBuild, head: bool, git: Git, out: TextIO) -> None:
    """What this checkout has that the build will not: uncommitted changes (of the commit checked out here), a commit
    no remote branch holds (where this checkout knows its remote branches at all: a CI checkout often has none)."""
    prefix = f"runner {run.env.name}: note"
    try:
        edited = head and bool(git(["status", "--porcelain"]))
    except RunnerError:
        edited = False
    if edited:
        out.write(f"{prefix}: this checkout has uncommitted changes, which the build does not have: it runs "
                  f"{run.commit} as committed\n")
    try:
        known = bool(git(["branch", "--remotes"]))
        pushed = not known or bool(git(["branch", "--remotes", "--contains", run.commit]))
    except RunnerError:
        pushed = True  # unknown here: CodeBuild will say
    if not pushed:
        out.write(f"{prefix}: no remote branch of this checkout holds {run.commit}: unless it is on GitHub, the build "
                  "fails at its DOWNLOAD_SOURCE phase (push it first)\n")


def _layers(env: EnvConfig, action: Action, layers: str | None) -> str | None:
    """``--layers`` checked as the build's ``nox`` session will (known layer names), and a destroy's as the runner
    allows (the layers that need the VPC, not the runner's own: shared.orchestrate.reach.check_destroy_from_runner),
    before a build queues and installs for minutes to refuse them."""
    from shared.broker_names import deploy_project_name
    from shared.orchestrate.model import Operation
    from shared.orchestrate.plan import make_plan, requested_layers
    from shared.orchestrate.reach import CODEBUILD_BUILD_ID, check_destroy_from_runner

    requested = requested_layers(layers)
    if action is Action.DESTROY:
        requested = requested or [DESTROY_LAYERS]
    plan = make_plan(Operation(action), requested)
    check_destroy_from_runner(env, Operation(action), plan, {CODEBUILD_BUILD_ID: f"{deploy_project_name(env.name)}:"})
    return ",".join(requested) if requested else None


def _main(argv: list[str], *, clients: Callable[[EnvConfig, str], Any] | None, git: Git, out: TextIO,
          sleep: Callable[[float], None]) -> int:
    from shared.cli import UsageParser
    from shared.envs import load_env
    from shared.images import SessionClients
    from shared.orchestrate.cli import signals_interrupt

    parser = UsageParser(prog="python -m shared.orchestrate.runner_build", label="nox -s runner",
                         description="Run a command of the env on its deploy runner, inside the VPC, and follow it.")
    parser.add_argument("env")
    parser.add_argument("--command", default=Action.UP.value, choices=[action.value for action in COMMANDS],
                        help="the nox session the build runs (default up; up, refresh and destroy with --yes)")
    parser.add_argument("--layers", help="comma-separated layers (--layers of that session; destroy: messaging)")
    parser.add_argument("--ref", default="HEAD", help="the commit the build checks out (default HEAD)")
    parser.add_argument("--repository", help="the GitHub repository (default: the env's, else origin's)")
    # SIGTERM and SIGHUP as Ctrl-C, the second of a pair sent to the process group ignored (as `up` takes them)
    with signals_interrupt():
        args = parser.parse_args(argv)
        env = load_env(args.env)
        action = Action(args.command)
        commit = resolve_commit(args.ref, git)
        run = RunnerBuild(env=env, action=action, layers=_layers(env, action, args.layers),
                          repository=source_repository(env, args.repository, git), commit=commit,
                          backend=runner_backend(env))
        _notes(run, commit == resolve_commit("HEAD", git), git, out)
        factory = clients if clients is not None else SessionClients()
        return run_on_runner(run, factory(env, "codebuild"), factory(env, "logs"), out, sleep=sleep)


def main(argv: Sequence[str] | None = None, *, clients: Callable[[EnvConfig, str], Any] | None = None,
         git: Git = run_git, out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """``python -m shared.orchestrate.runner_build ENV [--command C] [--layers a,b] [--ref REV] [--repository URL]``:
    exit 0 the build succeeded, 1 it did not (or was lost track of), 2 none was started, 130 interrupted."""
    from shared.cli import run_main

    return run_main(lambda args: _main(args, clients=clients, git=git, out=out or sys.stdout, sleep=sleep),
                    None if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
