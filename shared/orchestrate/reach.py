"""Reach into the VPC: probe the broker's management API before a layer that needs it runs.

The layers in :data:`shared.dag.NEEDS_VPC_REACH` configure a provider (``pulumi_rabbitmq``) against
the RabbitMQ management API, which an Amazon MQ broker without public accessibility only answers
inside its VPC. Run from outside (a laptop, a hosted CI runner), such a layer would wait for the
provider's HTTP timeouts on its first resource, after every earlier layer was deployed. So before the
layer runs, the orchestrator opens a TCP connection to the endpoint (a few seconds) and, when
nothing answers, stops with exit 2 naming the layer, the endpoint and the ways in, before the layer
creates anything.

Which endpoint, first match wins:

1. ``messaging.management.endpoint`` in the env file (an operator's tunnel, e.g. SSM port forwarding);
2. ``messaging.external.management_endpoint`` for an ``external`` broker;
3. the ``management_endpoint`` output of the stack of the layer that declares it in its contract (the
   broker layer, ``<org>/broker/<env>``), read through the Automation API.

The URL probed is the one the messaging layer's provider calls, built by the same function
(:func:`shared.management_api.management_url`): with ``messaging.management.tls_server_name`` set, that
name (on the endpoint's port, or the broker's own port without an endpoint), which the operator maps to
the tunnel in ``/etc/hosts``; so a missing mapping fails here, not in the provider.

With ``messaging.management.proxy`` set, the provider connects through the proxy, so the proxy is
what is probed (and the output says so). When the endpoint is unknown because the broker layer runs
earlier in the same run (the first ``up`` of an env), the probe happens once that level is done,
before the next level starts.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit

from shared.contracts import CONTRACTS, stack_reference_name
from shared.dag import LAYERS, NEEDS_VPC_REACH, upstream_closure
from shared.envs import EnvConfig, env_path
from shared.errors import PlatformError
from shared.management_api import management_url
from shared.orchestrate.model import Action, Operation
from shared.orchestrate.plan import Plan
from shared.orchestrate.report import failure_detail

ENDPOINT_OUTPUT = "management_endpoint"
PROBE_TIMEOUT_S = 5.0
DEFAULT_PORTS = {"https": 443, "http": 80, "socks5": 1080, "socks5h": 1080}

Probe = Callable[[str, int, float], str | None]
"""(host, port, timeout in seconds) -> None when a TCP connection opens, else why it did not."""

OutputsReader = Callable[[str, EnvConfig], Mapping[str, Any] | None]
"""(layer, env) -> that layer's stack outputs, None when the stack does not exist."""

HoldsReader = Callable[[str, EnvConfig], bool | None]
"""(layer, env) -> whether that layer's stack holds resources (False: none, or no stack), None when unknown."""

BrokersReader = Callable[[str, EnvConfig], "Sequence[str] | None"]
"""(layer, env) -> the ids of the Amazon MQ brokers that layer's state holds (none: no stack), None when unknown."""
UrnsReader = Callable[[str, EnvConfig], "Sequence[str] | None"]
"""(layer, env) -> the URNs of resources of a kind that layer's state holds (none: no stack), None when unknown."""


class ReachError(PlatformError):
    """A layer's provider cannot reach its endpoint from here (exit 2: that layer did not run)."""

    exit_code = 2


def tcp_probe(host: str, port: int, timeout_s: float) -> str | None:
    """Open (and close) a TCP connection; None on success, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"no answer within {timeout_s:g}s"
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    return parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme, 443)


def endpoint_layer(layer: str) -> str:
    """The layer whose stack output names ``layer``'s management endpoint: the nearest upstream whose
    contract declares ``management_endpoint`` (the broker layer), else ``layer`` itself."""
    upstreams = [up for up in reversed(upstream_closure([layer])) if up != layer]
    for upstream in upstreams:
        if ENDPOINT_OUTPUT in CONTRACTS[upstream].model_fields:
            return upstream
    return layer


@dataclass(frozen=True)
class Target:
    endpoint: str
    source: str
    proxy: str | None = None

    @property
    def probed(self) -> str:
        return self.proxy or self.endpoint


def _this_commit() -> str:
    """The commit this checkout is at (``main`` where git cannot say: not a checkout, no git)."""
    from shared.errors import UsageError
    from shared.orchestrate.runner_build import RunnerError, resolve_commit, run_git

    try:
        return resolve_commit("HEAD", run_git)
    except (RunnerError, UsageError):
        return "main"


def runner_build_command(env: EnvConfig, operation: Operation | None = None) -> str:
    """The ``aws codebuild start-build`` that runs ``operation`` (default ``up``) of ``env`` on its deploy runner, as
    README "Ways into the VPC" gives it, each value quoted for a POSIX shell (a backend URL's ``?`` and ``&``): as
    the runner's role that may assume the deploy role (``--service-role-override``: without it a runner that is a
    GitHub Actions runner builds as its jobs role, which may not), with the project's buildspec and this repository
    as the source."""
    from shared.broker_names import deploy_project_name
    from shared.deploy_role import deploy_runner_role_arn
    from shared.orchestrate.runner_build import runner_backend, runner_variables

    project, runner_role = deploy_project_name(env.name), deploy_runner_role_arn(env, env.name)
    action = operation.action if operation is not None else Action.UP
    repository = env.messaging.deploy_runner.github_repository
    backend = runner_backend(env)
    variables = [f"name={name},value={value},type=PLAINTEXT"
                 for name, value in runner_variables(action, None, backend or "<the state backend URL>")]
    buildspec = (f"$(aws codebuild batch-get-projects --region {env.region} --names {project} "
                 "--query 'projects[0].source.buildspec' --output text)")
    command = " ".join([
        "aws codebuild start-build", "--region", env.region, "--project-name", project,
        "--service-role-override", runner_role, "--source-type-override GITHUB",
        "--source-location-override", shlex.quote(repository or "https://github.com/<org>/<repo>"),
        # this checkout's commit, by its id: main may move on before the build checks it out. A full clone
        # (StartBuild gitCloneDepthOverride, minimum 0): the older-commit gate reads main's history
        "--source-version", _this_commit(), "--git-clone-depth-override 0", "--buildspec-override", f'"{buildspec}"',
        "--environment-variables-override", *map(shlex.quote, variables)])
    # sourceAuthOverride applies only where the project's own source is GitHub (botocore codebuild StartBuild), so
    # the runner made without github_repository (NO_SOURCE) checks a private repository out with the account's
    # GitHub credential
    private = ("" if repository else "; replace <org>/<repo> (a private repository needs CodeBuild's GitHub credential "
               "of the account: `aws codebuild import-source-credentials`)")
    unknown = "" if backend else "; replace <the state backend URL>"
    return (f"`{command}` (the deploy role's trust must name {runner_role}: README, "
            f"\"A fresh account, in order\", step 4; a first `up` from outside the VPC stops here by design, step 8"
            f"{private}{unknown})")


def ways_in(env: EnvConfig, operation: Operation | None = None) -> str:
    destroy = (f" (a destroy: only `nox -s destroy -- {env.name} --layers messaging` there, then the rest from here: "
               "the runner's build cannot delete the runner and the network it runs in)"
               if operation is not None and operation.action is Action.DESTROY else "")
    runner_args = f" --command {operation.action.value}" if operation is not None and \
        operation.action is not Action.UP else ""
    # What a preview can run from outside the VPC (pull requests run fewer: shared.dag.pull_request_layers).
    others = ",".join(layer for layer in LAYERS if layer not in NEEDS_VPC_REACH)
    preview = (f". The layers that need no reach can be previewed from here: `nox -s preview -- {env.name} --layers "
               f"{others} --exact`" if operation is not None and operation.action is Action.PREVIEW else "")
    return (
        "Ways in: run the deploy from the platform's deploy runner inside the env's VPC (README, section "
        f"\"Reaching the broker's management API\"){destroy}: `nox -s runner -- {env.name}{runner_args}` starts "
        "this checkout's commit there and follows the build to its end (the commit must be on GitHub), or by "
        f"hand: {runner_build_command(env, operation)}; "
        "or open an SSM port-forwarding tunnel to the broker's "
        f"management host on 443 and set messaging.management in {env_path(env.name)} (endpoint: "
        "https://localhost:<local port>, tls_server_name: the broker's host name, so TLS is still verified; or "
        f"proxy: the proxy that reaches the VPC){preview}")


#: The variable CodeBuild sets in every build: ``<project name>:<build uuid>`` (CodeBuild user guide, "Environment
#: variables in build environments", CODEBUILD_BUILD_ID).
CODEBUILD_BUILD_ID = "CODEBUILD_BUILD_ID"
#: The layer that holds the deploy runner (its CodeBuild project, service role and log group).
RUNNER_LAYER = "broker"


def check_destroy_from_runner(env: EnvConfig, operation: Operation, plan: Plan, environ: Mapping[str, str]) -> None:
    """ReachError (exit 2, nothing run) for a destroy run inside ``env``'s own deploy runner that would delete the
    runner (the broker layer: the build's project, the service role its credentials come from, its log group) or
    the network it runs in (its security group and subnets, which the build's network interface holds: EC2 refuses
    to delete either while an interface uses it, DependencyViolation). Such a run cannot finish: once the broker
    layer is gone the build can no longer assume the deploy role (its role's policy is deleted), and network's
    deletes wait on the build's own interface. The layers that need the VPC (messaging, and compute, which reads
    it) are destroyed from the runner; the rest from outside, where messaging's emptied stack needs no reach."""
    from shared.broker_names import deploy_project_name

    if operation.action is not Action.DESTROY or operation.preview_only:
        return
    project = str(environ.get(CODEBUILD_BUILD_ID, "")).partition(":")[0]
    if project != deploy_project_name(env.name):
        return
    runner_layers = [layer for layer in upstream_closure([RUNNER_LAYER]) if layer in plan.layers]
    if not runner_layers:
        return
    raise ReachError(
        f"destroy {env.name} runs inside {env.name}'s deploy runner (CodeBuild project {project}), and would destroy "
        f"{' and '.join(runner_layers)}: the runner itself (its project, the role this build assumes the deploy role "
        f"with, its log group) and the network it runs in (its security group and subnets, held by this build's "
        f"network interface), so it could not finish. Nothing was run. Here, destroy the layers that need the VPC: "
        f"`nox -s destroy -- {env.name} --layers messaging` (compute and messaging; a build started with "
        f"PLATFORM_COMMAND=destroy gets it with PLATFORM_LAYERS=messaging); then, from outside the VPC, "
        f"`nox -s destroy -- {env.name}` (messaging's emptied stack needs no reach)")


@dataclass(eq=False)
class ReachCheck:
    """The probes of one run: :meth:`preflight` before anything runs, :meth:`before_level` between levels."""

    env: EnvConfig
    operation: Operation
    plan: Plan
    read_outputs: OutputsReader
    _: KW_ONLY
    probe: Probe = tcp_probe
    timeout_s: float = PROBE_TIMEOUT_S
    out: TextIO | None = None
    endpoint_layer_of: Callable[[str], str] = endpoint_layer
    needs_reach: InitVar[frozenset[str]] = NEEDS_VPC_REACH
    holds: HoldsReader | None = None
    brokers: BrokersReader | None = None
    rabbitmq: UrnsReader | None = None
    """The URNs of the RabbitMQ objects a layer's state holds (None: unread)."""
    layers: list[str] = field(init=False)
    """The plan's layers whose providers need to reach into the VPC (``needs_reach``)."""
    pending: dict[str, str] = field(init=False, default_factory=dict)
    """layer -> the earlier layer of this run after whose level its endpoint is known and probed."""
    refusals: list[str] = field(init=False, default_factory=list)

    def __post_init__(self, needs_reach: frozenset[str]) -> None:
        self.layers = [layer for layer in self.plan.layers if layer in needs_reach]

    def _say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def resolve(self, layer: str) -> Target | None:
        """Where ``layer``'s provider connects, or None when no one knows yet; ReachError if unreadable."""
        try:
            return self._resolve(layer)
        except PlatformError:
            raise
        except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is reported, not a traceback
            source_layer = self.endpoint_layer_of(layer)
            name = stack_reference_name(self.env.pulumi_org, source_layer, self.env.name)
            raise ReachError(f"{layer} needs the RabbitMQ management API, and reading its endpoint (output "
                             f"{ENDPOINT_OUTPUT} of stack {name}) failed: {failure_detail(error)}. Nothing was run "
                             f"in {layer}.") from None

    def _resolve(self, layer: str) -> Target | None:
        # The URL is management_url's, the function the messaging layer builds its provider's endpoint with,
        # so the probe dials what the provider then calls (e.g. tls_server_name on the broker's own port).
        env = self.env
        messaging = env.messaging
        proxy = messaging.management.proxy
        named = " (host: messaging.management.tls_server_name)" if messaging.management.tls_server_name else ""
        if messaging.management.endpoint:
            url = management_url(env, None)
            source = f"messaging.management.endpoint in {env_path(env.name)}"
            return Target(url, source + named, proxy) if url else None
        if messaging.broker == "external" and messaging.external is not None:
            own = messaging.external.management_endpoint
            source = f"messaging.external.management_endpoint in {env_path(env.name)}"
        else:
            source_layer = self.endpoint_layer_of(layer)
            value = (self.read_outputs(source_layer, env) or {}).get(ENDPOINT_OUTPUT)
            if not isinstance(value, str) or not value:
                return None
            own = value
            source = f"output {ENDPOINT_OUTPUT} of stack {stack_reference_name(env.pulumi_org, source_layer, env.name)}"
        return Target(management_url(env, own) or own, source + named, proxy)

    def _runs_before(self, upstream: str, layer: str) -> bool:
        """Whether ``upstream`` runs in an earlier level of this run than ``layer``."""
        index = {name: i for i, level in enumerate(self.plan.levels) for name in level}
        return upstream in index and layer in index and index[upstream] < index[layer]

    def _check(self, layer: str, target: Target) -> str | None:
        """Probe ``target``; the refusal message when it does not answer."""
        try:
            host, port = host_port(target.probed)
        except ValueError as error:
            return (f"{layer} needs the RabbitMQ management API, and its endpoint {target.endpoint!r} (from "
                    f"{target.source}) is not a URL with a host ({error}). Nothing was run in {layer}.")
        started = time.monotonic()
        why = self.probe(host, port, self.timeout_s)
        what = f"the proxy {target.proxy} (the provider connects through it)" if target.proxy else target.endpoint
        if why is None:
            self._say(f"reach {layer}: {what} answers on {host}:{port} "
                      f"({time.monotonic() - started:.2f}s; endpoint from {target.source})")
            return None
        return (f"{layer} cannot run from here: its provider talks to the RabbitMQ management API at "
                f"{target.endpoint} (from {target.source}), and a TCP connection to {what} at {host}:{port} failed "
                f"({why}). An Amazon MQ broker that is not publicly accessible answers only inside the env's VPC. "
                f"{ways_in(self.env, self.operation)}. Nothing was created in {layer}.")

    def _stale_endpoint(self, source_layer: str) -> bool:
        """Whether the endpoint output of ``source_layer`` is of a broker its state no longer holds (none, or another
        than its ``broker_id`` output), which that layer's ``up`` creates, or records, and exports anew: dropped by
        the refresh after a broker was deleted outside Pulumi (a refresh leaves the stack's outputs as they were),
        deleted by a replacement (delete before replace) that failed or was killed before the new one was made (a
        failed update keeps the last finished one's outputs), or the new one imported after such a kill
        (``pulumi import``). Probing the gone broker's endpoint up front would refuse the very run that
        makes the new one its output."""
        messaging = self.env.messaging
        if self.brokers is None or messaging.management.endpoint or messaging.broker != "amazon-mq":
            return False
        held = self.brokers(source_layer, self.env)
        if held is None:
            return False
        recorded = (self.read_outputs(source_layer, self.env) or {}).get("broker_id")
        return not held or (isinstance(recorded, str) and recorded not in held)

    def _acts_on_nothing(self, layer: str) -> bool:
        """A refresh or destroy of a stack that holds no resources (emptied by a destroy, or never created) calls
        no provider operation, so it needs no reach: after a destroy that deleted the broker but failed before its
        stack was emptied, that stack still names the deleted broker's endpoint, and probing it would refuse the
        destroy that finishes the job."""
        return (self.operation.action in (Action.REFRESH, Action.DESTROY) and self.holds is not None
                and self.holds(layer, self.env) is False)

    def _calls_aws_alone(self, layer: str) -> bool:
        """A refresh or destroy of a stack that holds no RabbitMQ object (its objects dropped from the state after
        the broker was deleted outside Pulumi: :func:`shared.orchestrate.cli.check_lost_broker_teardown`) reads or
        deletes AWS resources alone; its program builds the RabbitMQ provider, which dials nothing until a resource
        calls it."""
        return (self.operation.action in (Action.REFRESH, Action.DESTROY) and self.rabbitmq is not None
                and self.rabbitmq(layer, self.env) == [])

    def preflight(self) -> None:
        """Probe every endpoint known now; ReachError (exit 2) when one does not answer."""
        for layer in self.layers:
            if self._acts_on_nothing(layer):
                self._say(f"reach {layer}: not probed, its stack holds no resources (its {self.operation.label} "
                          "calls no provider)")
                continue
            if self._calls_aws_alone(layer):
                self._say(f"reach {layer}: not probed, its stack holds no RabbitMQ object (its "
                          f"{self.operation.label} calls AWS alone)")
                continue
            target = self.resolve(layer)
            source_layer = self.endpoint_layer_of(layer)
            later = (source_layer != layer and not self.operation.reverse
                     and self._runs_before(source_layer, layer))
            if target is not None and later and self._stale_endpoint(source_layer):
                self._say(f"reach {layer}: not probed yet, {source_layer}'s {ENDPOINT_OUTPUT} output is of a broker "
                          f"its state no longer holds, so {source_layer} creates or records its broker first; probed "
                          f"once {source_layer} is done")
                target = None
            if target is not None:
                refusal = self._check(layer, target)
                if refusal:
                    raise ReachError(refusal)
            if later:
                # The broker layer runs first in this run and may create or replace the broker: probe
                # (again) with what its stack says once its level is done.
                self.pending[layer] = source_layer
                if target is None:
                    self._say(f"reach {layer}: the management endpoint is not known yet ({source_layer} has no "
                              f"{ENDPOINT_OUTPUT} output); probed once {source_layer} is done")
            elif target is None:
                self._say(f"reach {layer}: not probed, the management endpoint is unknown ({source_layer} has no "
                          f"{ENDPOINT_OUTPUT} output and does not run before it)")

    def before_level(self, layers: list[str]) -> dict[str, str]:
        """For the layers about to start: layer -> why it must not run (its endpoint does not answer)."""
        refused: dict[str, str] = {}
        for layer in layers:
            source_layer = self.pending.pop(layer, None)
            if source_layer is None:
                continue
            try:
                target = self.resolve(layer)
            except ReachError as error:
                refused[layer] = str(error)
                continue
            if target is None:
                if self.operation.action is Action.UP:
                    name = stack_reference_name(self.env.pulumi_org, source_layer, self.env.name)
                    refused[layer] = (
                        f"{layer} cannot run: {source_layer} finished, but its stack {name} has no "
                        f"{ENDPOINT_OUTPUT} output, so the management API {layer} talks to is unknown. Nothing "
                        f"was created in {layer}.")
                else:
                    # preview: the broker was only previewed, so it has no endpoint yet; the layer's
                    # preview reads it the same way and reports that itself.
                    self._say(f"reach {layer}: not probed, {source_layer} has no {ENDPOINT_OUTPUT} output yet")
                continue
            refusal = self._check(layer, target)
            if refusal:
                refused[layer] = refusal
        self.refusals.extend(refused.values())
        return refused

