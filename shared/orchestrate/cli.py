"""``python -m shared.orchestrate preview|up|destroy|refresh ENV [--layers a,b [--exact]] [--parallel N] [--yes]
[--preview-only] [--local-state] [--allow-replace URN ...] [--image-ready SERVICE ...]`` (each option for the actions
its help names; another is refused, exit 2)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from shared import REPO_ROOT, lifecycle
from shared.amazonmq import BROKER_WAIT_MINUTES, engine_tuple
from shared.broker_capacity import RUNNING_BROKER_VARIABLE, capacity_notes, running_broker, running_broker_value
from shared.broker_upgrade import ENGINE_KEY
from shared.catalog import load_catalog
from shared.cli import UsageParser
from shared.dag import NEEDS_VPC_REACH, downstream_closure
from shared.envs import EnvConfig, env_path, load_env, spot_job_notes
from shared.errors import ConfigError, PlatformError, UsageError, display_path
from shared.images import AwsAccessError
from shared.orchestrate.account import (
    AccountCheck,
    AccountError,
    AccountReport,
    AwsAccountCheck,
    RunningBroker,
    lost_broker_refusal,
    named_roles_refusal,
    print_report,
)
from shared.orchestrate.automation import deletion_protection_off_command
from shared.orchestrate.identity import stackless_refusal
from shared.orchestrate.images import AwsImageChecks, ImageChecks, ImageGatedRunner
from shared.orchestrate.interfaces import Reader, check_network_destroy, dropped_zone_refusal
from shared.orchestrate.model import (
    Action,
    LayerResult,
    LayerRunner,
    Operation,
    RunInterrupted,
    Status,
    env_file_digest,
)
from shared.orchestrate.pending import env_prefix
from shared.orchestrate.plan import Plan, make_plan, requested_layers
from shared.orchestrate.reach import (
    BrokersReader,
    Probe,
    ReachCheck,
    ReachError,
    UrnsReader,
    check_destroy_from_runner,
    tcp_probe,
)
from shared.orchestrate.replacements import check_allowed
from shared.orchestrate.report import failure_detail, print_summary
from shared.orchestrate.scheduler import Interruption, Progress, execute
from shared.orchestrate.settled import converging, unsettled_annotations

DEFAULT_PARALLEL = 4


def build_parser() -> UsageParser:
    parser = UsageParser(prog="python -m shared.orchestrate",
                     description="Real Pulumi runs of every layer of an environment, in DAG order.")
    parser.add_argument("action", choices=[action.value for action in Action])
    parser.add_argument("env", help="environment name (environments/<env>.yaml; also the stack name)")
    parser.add_argument("--layers", help="comma-separated layers; expanded with what they need "
                                         "(or, for destroy, with what needs them)")
    parser.add_argument("--exact", action="store_true",
                        help="run exactly --layers, without what they read (or what reads them); their "
                             "upstream stacks must already exist (CI runs one job per layer in DAG order)")
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL,
                        help=f"layers of one level run at the same time (default {DEFAULT_PARALLEL})")
    parser.add_argument("--yes", action="store_true",
                        help="up/destroy/refresh: do not ask before changing infrastructure")
    parser.add_argument("--preview-only", action="store_true",
                        help="refresh: report drift per layer; destroy: show what would be deleted")
    parser.add_argument("--local-state", action="store_true",
                        help="up/destroy/refresh: accept the local file state backend (never for staging/prod)")
    parser.add_argument("--allow-replace", action="append", default=[], metavar="URN",
                        help="up: accept that this stateful resource (its URN, as the refusal names it) is replaced "
                             "or deleted; repeatable. Without it, such an up is refused (exit 1), also with --yes")
    parser.add_argument("--expect-no-changes", action="store_true",
                        help="preview: a layer whose preview proposes any change fails (exit 1), naming each resource "
                             "and property; right after an up such a change is one every up repeats, or drift")
    parser.add_argument("--image-ready", action="append", default=[], metavar="SERVICE",
                        help="up/preview: confirm that the image this env runs of SERVICE is ready for its catalog "
                             "change (a removed publishes key or callee, narrowed artifacts, protects_jobs turned "
                             "on); repeatable. Without it, such an up is refused (exit 2)")
    return parser


def _operation(args: argparse.Namespace) -> Operation:
    action = Action(args.action)
    if args.preview_only and action not in (Action.REFRESH, Action.DESTROY):
        hint = "preview already changes nothing" if action is Action.PREVIEW else "use `preview` instead"
        raise UsageError(f"--preview-only applies to refresh and destroy only ({hint})")
    if args.parallel < 1:
        raise UsageError(f"--parallel: must be at least 1, not {args.parallel}")
    if action is Action.PREVIEW and args.yes:
        raise UsageError("--yes applies to up, destroy and refresh only (a preview changes nothing, so it asks "
                         "nothing)")
    if action is Action.PREVIEW and args.local_state:
        raise UsageError("--local-state applies to up, destroy and refresh only (a preview writes no state: it runs "
                         "on the local file backend without it)")
    if args.allow_replace and action is not Action.UP:
        raise UsageError("--allow-replace applies to up only (the only action that replaces resources)")
    if args.expect_no_changes and action is not Action.PREVIEW:
        raise UsageError("--expect-no-changes applies to preview only (run it right after an up: a layer whose "
                         "preview proposes a change then fails)")
    if args.image_ready and action not in (Action.UP, Action.PREVIEW):
        raise UsageError("--image-ready applies to up and preview only (the runs checked for catalog changes the "
                         "running image must be ready for)")
    return Operation(action, preview_only=args.preview_only, local_state=args.local_state,
                     allow_replace=tuple(dict.fromkeys(args.allow_replace)), expect_no_changes=args.expect_no_changes)


def _describe_plan(plan: Plan, operation: Operation, env_name: str, out: TextIO) -> None:
    if plan.added:
        requested = ",".join(plan.requested)
        verb = "everything that reads them" if operation.reverse else "everything they read"
        out.write(f"--layers {requested}: added {verb}:\n")
        for layer, reason in plan.added:
            out.write(f"  + {layer}: {reason}\n")
    order = " -> ".join(" + ".join(level) for level in plan.levels)
    out.write(f"{operation.label} {env_name}: {order}\n")
    out.flush()


def _ask_on_terminal(prompt: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt.rstrip('? ')}: there is no terminal to confirm on; pass --yes to proceed")
    return input(f"{prompt} [y/N] ").strip().lower() in ("y", "yes")


_SIGNALS_INSTALLED = False  # signals_interrupt's handlers stand (main thread only)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP sent to this process interrupt the run like Ctrl-C, as :class:`RunInterrupted`; the runner
    relays the interrupt to the ``pulumi`` processes, which run in process groups of their own
    (automation.pulumi_shim). Only the first interrupt of any kind raises from a SIGTERM/SIGHUP: one sent to the whole
    process group arrives twice (nox passes on what it gets, shared.forwarding), the second while the first is being
    handled, where an exception would stop the runner from ever being told. Every Ctrl-C raises (a second is the
    operator's "stop now"). A cancelled GitHub job signals the step's shell, which does not pass it on: an update killed
    mid-way (README). Only in the main thread (where Python delivers signals)."""
    global _SIGNALS_INSTALLED
    if threading.current_thread() is not threading.main_thread() or _SIGNALS_INSTALLED:
        yield  # nested (the run's, around execute, inside main's): the outer handlers and their `seen` stand
        return
    seen = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal seen
        if seen:
            return
        seen = True
        raise RunInterrupted(signal.Signals(signum).name)

    def ctrl_c(signum: int, frame: object) -> None:
        nonlocal seen
        seen = True
        raise KeyboardInterrupt

    # A signal ignored at start stays ignored (`nohup nox -s up ...`: the run outlives the session on purpose; a job
    # started in the background by a non-interactive shell ignores Ctrl-C).
    handlers = {signal.SIGTERM: interrupt, signal.SIGHUP: interrupt, signal.SIGINT: ctrl_c}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()
                if signal.getsignal(signum) is not signal.SIG_IGN}
    _SIGNALS_INSTALLED = True
    try:
        yield
    finally:
        _SIGNALS_INSTALLED = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def default_account_check() -> AccountCheck:
    """The real account preflight (boto3); the test suite replaces it (conftest.py) so no test reaches AWS."""
    return AwsAccountCheck()


def default_image_checks() -> ImageChecks:
    """compute's real image checks (boto3: ECR, ECS); the test suite replaces them (conftest.py) so no test reaches
    AWS."""
    return AwsImageChecks()


def _stack_name(env: EnvConfig, layer: str) -> str:
    from shared.contracts import stack_reference_name

    return stack_reference_name(env.pulumi_org, layer, env.name)


def _stack_found(env: EnvConfig, layer: str, operation: Operation, out: TextIO,
                 stack_exists: Callable[[str], bool], account_holds: str) -> bool:
    """Whether ``layer``'s stack exists, asked because the account ``account_holds`` what it would create. A
    backend that cannot answer stops ``up`` (AccountError, nothing run) and is a note for ``preview``, which then
    goes on as if the stack existed."""
    try:
        return stack_exists(layer)
    except PlatformError:
        raise
    except Exception as error:  # noqa: BLE001 - a failed `pulumi stack select` is the reason, not a traceback
        unknown = (f"whether the stack {_stack_name(env, layer)} exists could not be read "
                   f"({failure_detail(error)}), while the account {account_holds}")
        if operation.action is Action.UP:
            raise AccountError(f"{display_path(str(env_path(env.name)))}: {unknown}; nothing was run. Check that "
                               "the state backend answers, and run again.") from None
        out.write(f"note: {unknown}\n")
        return True


def check_program_secrets(check: AccountCheck, env: EnvConfig, operation: Operation, layers: list[str],
                          out: TextIO) -> None:
    """``refresh`` and ``destroy`` run the layers' programs too (``--run-program``): a secret a program reads that no
    layer creates (an ``external`` broker's admin) must be there, or that layer fails after the ones before it ran
    (a destroy: compute gone, messaging's vhost, users and queues left). Refused before any layer (AccountError,
    exit 2); with ``--preview-only`` a note. ``up`` and ``preview`` ask the same in their account preflight."""
    if operation.action not in (Action.REFRESH, Action.DESTROY):
        return
    _refuse_before_any_layer(check.program_secrets(env, layers), operation, out)


def check_destroy_blockers(check: AccountCheck, env: EnvConfig, operation: Operation, layers: list[str],
                           out: TextIO, state_log_groups: Callable[[str, EnvConfig], Sequence[str] | None]) -> None:
    """A ``destroy``'s refusal before any layer of what AWS would refuse to delete midway (a log group its state holds
    with CloudWatch Logs deletion protection on: :meth:`AccountCheck.destroy_blockers`); with ``--preview-only`` a
    note."""
    if operation.action is not Action.DESTROY:
        return
    held = {layer: state_log_groups(layer, env) for layer in layers}
    _refuse_before_any_layer(check.destroy_blockers(env, layers, held), operation, out)


def state_drop_commands(stack: str, env_name: str, backend_url: str | None) -> str:
    """The commands, run from the repository root, that take messaging's RabbitMQ objects out of ``stack``'s state on
    ``backend_url``: export, :mod:`shared.orchestrate.state_drop`, import (``-C``: as if started in stacks/messaging,
    where the stack's settings are; the file's path absolute, as ``-C`` moves the CLI's own)."""
    state = shlex.quote(str(REPO_ROOT / "build" / f"messaging-{env_name}.state.json"))
    backend = env_prefix(backend_url)
    return "\n".join(f"  {line}" for line in (
        "mkdir -p build",
        f"{backend}pulumi -C stacks/messaging stack export --stack {stack} --file {state}",
        f".venv/bin/python -m shared.orchestrate.state_drop rabbitmq {state}",
        f"{backend}pulumi -C stacks/messaging stack import --stack {stack} --file {state}"))


def check_lost_broker_teardown(plan: Plan, operation: Operation, env: EnvConfig, check: AccountCheck,
                               deployed: OutputsReader, rabbitmq: UrnsReader | None, backend_url: str | None,
                               out: TextIO) -> None:
    """A ``refresh`` or ``destroy`` of messaging whose broker was deleted outside Pulumi, refused before any layer
    (AccountError, exit 2): messaging's state still holds the RabbitMQ objects that were on it, and its run would call
    the deleted broker's management API for each (the reach probe would send the user to a deploy runner or tunnel,
    which reach nothing either). The objects went with the broker: what this prints takes them out of the state on
    ``backend_url`` (export, :mod:`shared.orchestrate.state_drop`, import; nothing changes in AWS), after which the run
    calls AWS alone (:meth:`shared.orchestrate.reach.ReachCheck.preflight` probes no stack without RabbitMQ objects).
    Refused with ``--preview-only`` too, whose preview would call the deleted broker as well. ``up`` and ``preview``
    refuse the lost broker in their account preflight (:func:`_find_lost_broker`)."""
    if (operation.action not in (Action.REFRESH, Action.DESTROY) or "messaging" not in plan.layers
            or env.messaging.broker != "amazon-mq" or env.messaging.management.endpoint or rabbitmq is None):
        return
    urns = rabbitmq("messaging", env)
    if not urns:
        return
    try:
        recorded = (deployed("broker", env) or {}).get("broker_id")
    except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is a note, not a traceback
        out.write(f"note: whether {env.name}'s broker still exists is unknown ({failure_detail(error)})\n")
        return
    if not isinstance(recorded, str) or not recorded:
        return
    try:
        report = check.brokers(env)
    except AwsAccessError as error:
        out.write(f"note: whether {env.name}'s broker still exists is unknown ({error})\n")
        return
    if report.brokers is None or (recorded in report.brokers and recorded not in report.deleting_brokers):
        _refuse_before_any_layer(report, operation, out)  # its notes
        return
    stack = _stack_name(env, "messaging")
    report.refusals.append(
        f"{env_path(env.name)}: the broker layer's stack {_stack_name(env, 'broker')} records the Amazon MQ broker "
        f"{recorded}, which account {env.account_id} ({env.region}) no longer holds or is deleting (deleted "
        "outside Pulumi), and "
        f"messaging's stack {stack} still holds {len(urns)} RabbitMQ objects that were on it: its {operation.label} "
        "would call the deleted broker for each and fail (no deploy runner or tunnel reaches a broker that is gone). "
        "They went with the broker; take them out of messaging's state, which changes nothing in AWS (`pulumi state "
        "delete` cannot, one by one: messaging's AWS resources depend on them), from the repository root:\n"
        f"{state_drop_commands(stack, env.name, backend_url)}\nthen run this again: messaging's {operation.label} "
        f"then calls AWS alone. To bring the env back instead: `nox -s refresh -- {env.name} --layers broker "
        "--exact`, then `up`, which creates a new broker and the topology on it (README, \"Disaster recovery\"). "
        "Nothing was run")
    for note in report.notes:
        out.write(f"note: {note}\n")
    # refused with --preview-only too: its preview would call the deleted broker as well
    raise AccountError("\n".join(report.refusals))


def _refuse_before_any_layer(report: AccountReport, operation: Operation, out: TextIO) -> None:
    """``report``'s notes printed, and its refusals an AccountError (exit 2, before any layer runs); with
    ``--preview-only``, notes that say what would be refused."""
    for note in report.notes:
        out.write(f"note: {note}\n")
    if not report.refusals:
        return
    if operation.preview_only:
        for refusal in report.refusals:
            out.write(f"note: {operation.action.value} would be refused: {refusal}\n")
        return
    raise AccountError("\n".join(report.refusals))


#: A preview's note for a refusal of the EC2 DryRun probes (:attr:`AccountReport.caller_judged`): EC2 answers for the
#: caller, and a pull request's preview runs with the read-only role, to which ReadOnlyAccess grants no create
DRY_RUN_JUDGES_THE_CALLER = "EC2 DryRun judged these credentials, not the deploy role's"


def _account_preflight(check: AccountCheck, env: EnvConfig, operation: Operation, layers: list[str],
                       out: TextIO, stack_exists: Callable[[str], bool],
                       read_outputs: OutputsReader | None = None,
                       state_brokers: BrokersReader | None = None) -> AccountReport:
    """The account preflight of ``up`` and ``preview`` (:mod:`shared.orchestrate.account`): read-only here.
    ``up`` refuses a quota the env certainly exceeds, credentials of another account, and a network stack that
    does not exist where the account holds the env's deployed VPC (exit 2); ``preview`` reports them."""
    if operation.action not in (Action.UP, Action.PREVIEW) or operation.preview_only:
        return AccountReport()
    try:
        report = check.check(env, layers)
    except AwsAccessError as error:
        if operation.action is Action.UP:
            raise
        out.write(f"note: account not checked: {error}\n")
        return AccountReport()
    if report.deployed_vpcs and "network" in layers:
        # another pulumi_org or state backend than the one that deployed the env (shared.orchestrate.identity)
        if not _stack_found(env, "network", operation, out, stack_exists,
                            f"already holds {env.name}'s network (VPC {', '.join(report.deployed_vpcs)})"):
            report.refusals.append(stackless_refusal(env, _stack_name(env, "network"), report.deployed_vpcs))
    for layer in dict.fromkeys(role.layer for role in report.existing_roles):
        # IAM names are account-wide: the role of an env of this name elsewhere (shared.orchestrate.account)
        if not _stack_found(env, layer, operation, out, stack_exists,
                            f"holds IAM roles {layer} names after {env.name}"):
            report.refusals.append(named_roles_refusal(
                env, layer, _stack_name(env, layer), [role for role in report.existing_roles if role.layer == layer]))
    if (report.brokers is not None and read_outputs is not None and env.messaging.broker == "amazon-mq"
            and {"broker", "messaging"} & set(layers)):  # compute reads the account's brokers for the type alone
        # an external broker is its operator's: no broker stack read
        _find_lost_broker(env, report, read_outputs, state_brokers)
    rebooting = rebooting_broker_refusal(env, layers, report.broker_running)
    if rebooting is not None:
        # a cluster keeps two of its three nodes running while one restarts ("Scheduling the maintenance window"):
        # its management API still answers, so a note; not during a 3 -> 4 upgrade, which blocks every connection
        (report.notes if _answers_while_rebooting(env, report.broker_running) else report.refusals).append(rebooting)
    unapplied = unapplied_type_refusal(env, layers, report.broker_running, report.broker_pending)
    if unapplied is not None:
        report.refusals.append(unapplied)
    for refusal in (unusable_broker_refusal(env, layers, report.broker_running),
                    withdrawn_type_refusal(env, layers, report.broker_running, report.broker_pending)):
        if refusal is not None:
            report.refusals.append(refusal)
    print_report(report, env, out)
    if operation.action is Action.PREVIEW:
        for refusal in report.refusals:
            if refusal in report.caller_judged:
                out.write(f"note: {DRY_RUN_JUDGES_THE_CALLER}: up is refused only where its deploy role is denied "
                          f"this too: {refusal}\n")
            else:
                out.write(f"note: up would be refused: {refusal}\n")
        for role in report.missing:
            out.write(f"note: up creates the service-linked role {role.role_name} first (`{role.command}`)\n")
        # nothing to create or refuse, but what the broker runs: the preview's capacity alarms are up's
        # (program_environment)
        return AccountReport(broker_running=report.broker_running, broker_pending=report.broker_pending)
    if report.refusals:
        raise AccountError("\n".join(report.refusals))
    for role in report.missing:
        out.write(f"account {env.name}: {role.role_name} is created before the first layer ({role.why})\n")
    return report


def unreachable_public_note(env: EnvConfig) -> str | None:
    """A note where the env releases a service the catalog makes ``public`` but has ``compute.public_gateway`` off
    (no shipped env turns it on: it needs an ACM certificate of the user's, ``compute.certificate_arn``). No load
    balancer is created, and the network opens a service's port only to its callers (the catalog's ``calls``), so
    nothing outside the VPC, and nothing inside that does not call it, reaches it over HTTP; its queue consumer
    works. None: no such service released, or the gateway on."""
    if env.compute.public_gateway:
        return None
    public = sorted(name for name, spec in load_catalog().services.items()
                    if spec.public and name in env.release.images)
    if not public:
        return None
    return (f"compute.public_gateway is off, so {', '.join(public)} (`public` in the catalog) gets no load "
            "balancer: nothing outside the VPC reaches its HTTP port. To serve it, "
            "set compute.public_gateway: true and compute.certificate_arn (an ACM certificate issued in the env's "
            "account and region; README, \"Environments\")")


def broker_state_command(env: EnvConfig, broker_id: str) -> str:
    """The AWS CLI command (in backticks) a refusal names to watch the broker's DescribeBroker ``BrokerState``."""
    return f"`aws mq describe-broker --broker-id {broker_id} --region {env.region} --query BrokerState`"


def rebooting_broker_refusal(env: EnvConfig, layers: Sequence[str], broker: RunningBroker | None) -> str | None:
    """Why the run's layers that talk to the broker's management API (:data:`shared.dag.NEEDS_VPC_REACH`: the
    messaging layer's RabbitMQ provider) should wait: the env's broker is restarting (DescribeBroker BrokerState
    REBOOT_IN_PROGRESS: its maintenance window, up to two hours from its start, a pending change applied there, or an
    `aws mq reboot-broker`). A single instance answers nothing meanwhile ("Version upgrades": "Single instance
    brokers will be offline while being rebooted"): the reach probe would blame the network and point at ways into
    the VPC, or, passed just before the restart, the provider would fail half-way through the topology. None: the
    broker is not restarting, or no such layer runs."""
    reaching = [layer for layer in layers if layer in NEEDS_VPC_REACH]
    if broker is None or broker.state != "REBOOT_IN_PROGRESS" or not reaching:
        return None
    broker_id = broker.broker_id
    window = " ".join(env.messaging.maintenance_window.spec())
    restarting = (f"{display_path(str(env_path(env.name)))}: the broker {broker_id} is restarting "
                  f"(REBOOT_IN_PROGRESS: its maintenance window, messaging.maintenance_window {window}, lasts up to "
                  f"two hours, or a reboot), and {', '.join(reaching)} talks to its RabbitMQ management API")
    state = broker_state_command(env, broker_id)
    if _answers_while_rebooting(env, broker):
        return (f"{restarting}: a cluster restarts one node at a time with two running, so it still answers; should "
                f"{reaching[0]} fail on a connection, run again once {state} says RUNNING")
    if env.messaging.deployment_mode != "SINGLE_INSTANCE":
        return (f"{restarting}; it runs RabbitMQ {broker.engine_version} and {ENGINE_KEY} asks for "
                f"{env.messaging.engine_version}: a 3 -> 4 upgrade, which Amazon MQ applies with every connection to "
                "the broker blocked, a cluster's too, until it is done (Amazon MQ developer guide, \"Upgrading Amazon "
                f"MQ for RabbitMQ 3 broker to 4\"). Nothing was run. Wait until {state} says RUNNING, then run again")
    return (f"{restarting}, which a single-instance broker does not answer until it runs again. Nothing was run. "
            f"Wait until {state} says RUNNING, then run again")


def _answers_while_rebooting(env: EnvConfig, broker: RunningBroker | None) -> bool:
    """Whether the env's broker answers while it restarts: a cluster does, one node at a time with two running
    ("Scheduling the maintenance window"), but not while the restart may be applying a 3 -> 4 upgrade (it runs
    RabbitMQ 3, the env asks for 4: "During the upgrade, Amazon MQ blocks all connections to the broker",
    "Upgrading Amazon MQ for RabbitMQ 3 broker to 4"); a single instance never does."""
    if env.messaging.deployment_mode == "SINGLE_INSTANCE":
        return False
    running = engine_tuple(broker.engine_version) if broker is not None and broker.engine_version else ()
    return not (running[:1] == (3,) and engine_tuple(env.messaging.engine_version)[:1] >= (4,))


#: DescribeBroker ``BrokerState`` values (botocore mq ``BrokerState``) of a broker that does not run and will not by
#: itself run for this env -> what it is and what to do, given (broker id, region, the ``describe-broker`` command)
BROKER_NOT_RUNNING: dict[str, Callable[[str, str, str], str]] = {
    # the provider waits for RUNNING up to the broker's create timeout (terraform-provider-aws mq/broker.go:
    # waitBrokerCreated; shared.components.broker sets it)
    "CREATION_IN_PROGRESS": lambda broker_id, region, state: (
        f"is still being created (CREATION_IN_PROGRESS: a create that outlasted up's {BROKER_WAIT_MINUTES}-minute "
        "wait, or one of a run that was stopped), and has no endpoint to answer on yet. Nothing was run. Wait until "
        f"{state} says RUNNING, then run again"),
    # waitBrokerCreated stops on any state but CREATION_IN_PROGRESS, REBOOT_IN_PROGRESS and RUNNING; a broker that
    # failed is never re-created by the provider (its Read finds it, so `up` leaves it as recorded)
    "CREATION_FAILED": lambda broker_id, region, state: (
        "failed to be created (CREATION_FAILED; Amazon MQ says why nowhere in DescribeBroker: see the account's AWS "
        "Health events and CloudTrail's CreateBroker) and never runs; up would leave it as the state records it. "
        f"Nothing was run. Delete it (`aws mq delete-broker --broker-id {broker_id} --region {region}`); once "
        f"{state} answers NotFoundException, run again: up then names the refresh that drops it from the broker "
        "stack's state, and the up after it creates a new broker"),
    "DELETION_IN_PROGRESS": lambda broker_id, region, state: (
        "is being deleted (DELETION_IN_PROGRESS: outside Pulumi, or by a destroy or replacement that did not finish), "
        "with its queues and their messages, and a refresh would still find it until it is gone. Nothing was run. "
        f"Wait until {state} answers NotFoundException, then run again: up then names the refresh that drops it from "
        "the broker stack's state, and the up after it creates a new broker (README, \"Disaster recovery\")"),
}


def program_environment(env: EnvConfig, broker: RunningBroker | None) -> dict[str, str]:
    """What the layer programs of the run are handed from the preflight: the type and engine the env's broker runs
    and the engine it has pending (:data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE`), which its capacity
    alarms keep to until Amazon MQ applies the env's (:func:`shared.components.alarms.capacity_alarms`), and the
    action-required codes it reports (:data:`shared.broker_upgrade.ACTIONS_VARIABLE`, where it reports any): with
    them, the broker program accepts AWS's way back from a refused upgrade to RabbitMQ 4; nothing where the broker
    was not read, or runs in another deployment mode (the run's broker layer replaces it: CreateBroker runs the env's
    type at once)."""
    if (broker is None or broker.instance_type is None or broker.engine_version is None
            or broker.deployment_mode not in (None, env.messaging.deployment_mode)):
        return {}
    handed = {RUNNING_BROKER_VARIABLE: running_broker_value(broker.instance_type, broker.engine_version,
                                                           broker.pending_engine_version)}
    try:
        running_broker(handed)
    except ConfigError:  # an answer of a form the broker program would refuse: it takes the env's figures
        return {}
    from shared.broker_upgrade import ACTIONS_VARIABLE, actions_required, actions_required_value

    codes = {ACTIONS_VARIABLE: actions_required_value(broker.actions_required)}
    try:
        if actions_required(codes) is not None:  # what AWS requires of it: its way back from a refused upgrade
            handed.update(codes)
    except ConfigError:  # a code of another form: not handed (the program's way-back check then refuses)
        pass
    return handed


def unusable_broker_refusal(env: EnvConfig, layers: Sequence[str], broker: RunningBroker | None) -> str | None:
    """Why a run with the broker layer or a layer that talks to the broker's management API
    (:data:`shared.dag.NEEDS_VPC_REACH`) stops: the env's broker does not run and will not by itself
    (:data:`BROKER_NOT_RUNNING`). Messaging's reach probe would find nothing answering and blame the network (pointing
    at ways into the VPC), or, on the endpoint of a broker being deleted, its provider would fail half-way through
    the topology; the broker layer's `up` reads no AWS state, so it changes nothing about such a broker. ListBrokers
    lists it all the while, so :func:`shared.orchestrate.account.lost_broker_refusal` does not see it. None: the
    broker runs (or restarts: :func:`rebooting_broker_refusal`), or no such layer runs."""
    users = [layer for layer in layers if layer == "broker" or layer in NEEDS_VPC_REACH]
    if broker is None or broker.state not in BROKER_NOT_RUNNING or not users:
        return None
    state = broker_state_command(env, broker.broker_id)
    return (f"{display_path(str(env_path(env.name)))}: {', '.join(users)} needs the env's broker, but "
            f"{broker.broker_id} {BROKER_NOT_RUNNING[broker.state](broker.broker_id, env.region, state)}")


def withdrawn_type_refusal(env: EnvConfig, layers: Sequence[str], broker: RunningBroker | None,
                           pending: Mapping[str, str]) -> str | None:
    """Why a run with the broker layer stops where ``messaging.instance_type`` was set back to the type the broker runs
    (DescribeBroker ``HostInstanceType``) while an earlier `up`'s other type is still pending
    (``PendingHostInstanceType``): Amazon MQ applies the pending one at the next reboot or maintenance window, and
    `up` does not withdraw it. The AWS provider sends UpdateBroker only where the env differs from the type the broker
    stack's state records: the one the earlier `up` asked for (its update reads nothing back), so it sends the running
    type, for which Amazon MQ documents no withdrawal of a pending one ("Upgrading an Amazon MQ broker instance
    type"), or, once a refresh read the broker (terraform-provider-aws mq/broker.go: ``host_instance_type`` is
    ``HostInstanceType``, the type running), the running type and nothing to send. The broker would move to the
    pending type in the window while the env file, the capacity checks and the alarms say otherwise. None: nothing
    is pending, or the env asks for the pending type or a third one (which UpdateBroker then asks for), or the run
    has no broker layer."""
    wanted = pending.get("instance_type")
    if (broker is None or wanted is None or "broker" not in layers or env.messaging.broker != "amazon-mq"
            or broker.instance_type is None or env.messaging.instance_type != broker.instance_type
            or wanted == broker.instance_type):
        return None
    running, where = broker.instance_type, f"--broker-id {broker.broker_id} --region {env.region}"
    window = " ".join(env.messaging.maintenance_window.spec())
    return (f"{display_path(str(env_path(env.name)))}: messaging.instance_type is {running}, the type the broker "
            f"{broker.broker_id} runs, but an earlier up asked Amazon MQ for {wanted}, which it still has pending "
            f"(PendingHostInstanceType) and applies at the next reboot or maintenance window (messaging."
            f"maintenance_window {window}). up does not withdraw it: the provider asks UpdateBroker for {running} "
            "only where the broker stack's state still records the pending type, and Amazon MQ documents no "
            "withdrawal; after a refresh it sends nothing. Nothing was run. Either set messaging.instance_type: "
            f"{wanted} again (applied in the window, or now with `aws mq reboot-broker {where}`) and change it in a "
            f"later up, or try to withdraw it yourself (Amazon MQ documents no withdrawal, so check that it took), "
            f"`aws mq update-broker {where} --host-instance-type {running}`, and run again once `aws mq "
            f"describe-broker {where} --query PendingHostInstanceType` names no type but {running}; while it still "
            f"names {wanted}, the first way is the one left")


def unapplied_type_refusal(env: EnvConfig, layers: Sequence[str], broker: RunningBroker | None,
                           pending: Mapping[str, str] | None = None) -> str | None:
    """Why compute must not scale the services to their ``max_count`` yet: the env loader sized the broker's limits
    on ``messaging.instance_type`` (:mod:`shared.broker_capacity`), but ``broker`` runs its ``instance_type``
    (DescribeBroker ``HostInstanceType``) until Amazon MQ applies the new type at a reboot or in the maintenance
    window ("Upgrading an Amazon MQ broker instance type"), and that type holds fewer connections, channels or queues
    than the peak: the tasks compute starts past them would have their connections refused for up to a week. None:
    the broker runs the env's type, or one that holds the peak too, or the run has no compute layer.

    The limits are those of the broker running (its deployment mode and engine version): a 3.13 broker holds its
    type's maximum until a pending 4.2 applies with the type. Where the run's broker layer replaces it (another
    deployment mode: a new broker), CreateBroker gives compute the env's type at once.

    ``pending``: what else the broker has pending (DescribeBroker ``PendingEngineVersion`` as ``engine_version``), which
    the reboot the refusal suggests applies too ("Upgrading an Amazon MQ broker engine version": at the next
    maintenance window or reboot), so it is named: an engine upgrade applied has no way back, and one from RabbitMQ 3
    to 4 blocks all connections while it runs."""
    messaging = env.messaging
    running = broker.instance_type if broker is not None else None
    if (broker is None or running is None or running == messaging.instance_type or messaging.broker != "amazon-mq"
            or "compute" not in layers):
        return None
    from shared.broker_capacity import capacity_problems

    mode = broker.deployment_mode or messaging.deployment_mode
    if mode != messaging.deployment_mode and "broker" in layers:
        return None
    engine = broker.engine_version
    now = env.model_copy(update={"messaging": messaging.model_copy(update={
        "instance_type": running, "deployment_mode": mode,
        # DescribeBroker names the patch (3.13.7); the limits are per major.minor
        "engine_version": ".".join(map(str, engine_tuple(engine)[:2])) if engine else messaging.engine_version})})
    problems = capacity_problems(now, load_catalog())
    if not problems:
        return None
    window = " ".join(messaging.maintenance_window.spec())
    short = problems[0][1].split("; choose")[0]  # the limit and the need, without the loader's advice
    reboot = f"aws mq reboot-broker --broker-id {broker.broker_id} --region {env.region}"
    engine_pending = (pending or {}).get("engine_version")
    # a 3 -> 4 upgrade blocks every connection while it runs ("Upgrading Amazon MQ for RabbitMQ 3 broker to 4")
    outage = ("; from RabbitMQ 3 to 4 it blocks all connections to the broker until it is done, longer the more "
              "messages the queues hold: drain them first"
              if engine_pending and engine and engine_tuple(engine_pending)[:1] > engine_tuple(engine)[:1] else "")
    also = (f" (which also upgrades the engine to its pending {engine_pending}, PendingEngineVersion: no way back "
            f"once applied{outage})" if engine_pending else "")
    head = (f"{display_path(str(env_path(env.name)))}: messaging.instance_type {messaging.instance_type} is not "
            f"applied yet: the broker runs {running} until a reboot or its maintenance window "
            f"(messaging.maintenance_window {window}), and until then {short}. Nothing was run.")
    if broker.state == "CRITICAL_ACTION_REQUIRED":
        # "Broker Reboot": "You can reboot only a broker with the RUNNING status"; "High memory alarm": Amazon MQ
        # "will not restart a broker experiencing a high memory alarm" (RebootBroker returns an exception)
        actions = (f"aws mq describe-broker --broker-id {broker.broker_id} --region {env.region} "
                   "--query ActionsRequired")
        return (f"{head} The broker is CRITICAL_ACTION_REQUIRED (`{actions}`): Amazon MQ reboots only a RUNNING "
                "broker, and restarts none that raises a high memory alarm (RABBITMQ_MEMORY_ALARM), so neither a "
                "reboot nor the window applies the type until that is resolved (Amazon MQ developer guide, "
                "\"Troubleshooting: Amazon MQ action required codes\"). Keep the services' max_count at what the "
                f"broker holds (fewer connections also relieve its memory), then run `{reboot}`{also} once it is "
                "RUNNING")
    return (f"{head} Apply the instance "
            f"type first: `nox -s up -- {env.name} --layers broker --exact` (if it has not run yet), then "
            f"`{reboot}`{also} "
            "(a single-instance broker is offline while it restarts) or wait for the window, then run again; or keep "
            "the services' max_count until then (README, \"Changing the broker\")")


def _find_lost_broker(env: EnvConfig, report: AccountReport, read_outputs: OutputsReader,
                      state_brokers: BrokersReader | None = None) -> None:
    """A refusal in ``report`` where the broker layer's stack records a broker (its ``broker_id`` output) that the
    account's brokers (``report.brokers``) do not include; a note where the stack's outputs cannot be read.

    Where the broker stack's state was read (``state_brokers``: the ids of the brokers it holds), only a broker the
    state still holds is lost: the broker layer's ``up`` would leave it be. The ``broker_id`` output outlives the
    broker in two ways the next ``up`` mends by creating one: the refresh this refusal asks for drops the broker from
    the state but leaves the stack's outputs as they were (a refresh never changes a component, the stack included:
    pulumi/pulumi pkg/resource/deploy/step.go RefreshStep.Apply), and a replacement (delete before replace) that
    failed or was killed after the delete keeps the outputs of the last update that finished (a failed update
    registers none; the stack's same step keeps the old ones). Refused on the output alone, either run again forever."""
    held = state_brokers("broker", env) if state_brokers is not None else None
    if held is not None and report.brokers is not None:
        lost = [broker_id for broker_id in held if broker_id not in report.brokers]
        if lost:
            report.refusals.append(lost_broker_refusal(env, _stack_name(env, "broker"), lost[0]))
            return
    try:
        outputs = read_outputs("broker", env) or {}
    except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is the reason, not a traceback
        report.notes.append(f"whether the broker {_stack_name(env, 'broker')} records still exists is unknown "
                            f"({failure_detail(error)})")
        return
    recorded = outputs.get("broker_id")
    if outputs.get("broker_mode", "amazon-mq") != "amazon-mq" or not isinstance(recorded, str) or not recorded:
        return
    if report.brokers is not None and recorded not in report.brokers:
        if held is None:  # the state unread: by the output alone
            report.refusals.append(lost_broker_refusal(env, _stack_name(env, "broker"), recorded))
        return
    from shared.broker_upgrade import pending_move_refusal

    waiting = pending_move_refusal(env, outputs, report.broker_pending)
    if waiting is not None:
        report.refusals.append(str(waiting))


def check_exact_destroy(plan: Plan, operation: Operation, env: EnvConfig, exact: bool,
                        read_outputs: Callable[[str, EnvConfig], object]) -> None:
    """UsageError (exit 2) when ``destroy --exact`` would destroy a layer that a layer left out of the run still
    reads while deployed (its stack has outputs): that reader's program then finds no outputs to read, and
    messaging's stored provider calls the deleted broker, so the reader could be neither updated, refreshed nor
    destroyed. Without ``--exact`` the plan destroys the readers first; a preview deletes nothing."""
    if not exact or operation.action is not Action.DESTROY or operation.preview_only:
        return
    readers = [layer for layer in downstream_closure(plan.layers) if layer not in plan.layers]
    deployed = []
    for reader in readers:
        try:
            outputs = read_outputs(reader, env)
        except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is the reason, not a traceback
            raise UsageError(f"--exact: whether {reader}, which reads {', '.join(plan.layers)}, is still deployed "
                             f"could not be read ({failure_detail(error)}); nothing was run") from None
        if outputs:
            deployed.append(reader)
    if deployed:
        stale = " (messaging's provider would call a deleted broker)" if "messaging" in deployed else ""
        raise UsageError(
            f"--exact: destroying {', '.join(plan.layers)} alone would leave {', '.join(deployed)} deployed, reading "
            f"the outputs of a destroyed stack: {'their programs' if len(deployed) > 1 else 'its program'} could not "
            f"run any more{stale}, so {', '.join(deployed)} could be "
            f"neither updated, refreshed nor destroyed. Destroy them in the same run (drop --exact: `nox -s destroy "
            f"-- {env.name} --layers {','.join(plan.layers)}` destroys what reads them first); nothing was run")


OutputsReader = Callable[[str, EnvConfig], Mapping[str, Any] | None]


def _read_once(read: OutputsReader) -> OutputsReader:
    """``read`` remembered per layer for the preflights of one run (each read is a `pulumi stack output` call);
    a read that fails is not remembered."""
    seen: dict[str, Mapping[str, Any] | None] = {}

    def read_once(layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        if layer not in seen:
            seen[layer] = read(layer, env)
        return seen[layer]

    return read_once


def _check_deployed_layer(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader, layer: str,
                          what: str, check: Callable[[Mapping[str, Any] | None], None]) -> None:
    """``check`` of ``layer``'s deployed outputs before any layer of an ``up``/``preview`` that runs ``layer`` (the
    layer program checks them too, but only when its turn comes, after the layers before it ran); ``what`` names what
    the outputs hold, for a read that fails."""
    if operation.action not in (Action.UP, Action.PREVIEW) or layer not in plan.layers:
        return
    try:
        outputs = read_outputs(layer, env)
    except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is the reason, not a traceback
        raise UsageError(f"{what} could not be read ({failure_detail(error)}); nothing was run") from None
    check(outputs)


def check_rotation_continuity(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                              out: TextIO) -> None:
    """ConfigError (exit 2) before any layer runs when messaging's ``up``/``preview`` would delete the users of the
    epoch its deployed secrets name; and before an ``up`` (a preview notes it) of a rotation while compute's tasks
    still hold an older epoch's secret, whose users it would delete (shared.rotation_continuity)."""
    from shared.rotation_continuity import check_rotation, rollout_refusal

    rotation = env.messaging.credentials_rotation
    messaging: list[Mapping[str, Any] | None] = []

    def check(outputs: Mapping[str, Any] | None) -> None:
        check_rotation(env.name, rotation, outputs)
        messaging.append(outputs)

    _check_deployed_layer(plan, operation, env, read_outputs, "messaging", "messaging's deployed credentials epoch",
                          check)
    if not messaging:
        return
    read = _layer_reader(env, read_outputs, "which secret versions compute's tasks hold")

    def behind() -> list[ConfigError]:
        refusal = rollout_refusal(env.name, rotation, messaging[0], lambda: read("compute"))
        return [refusal] if refusal else []

    _refuse_found(behind, operation, out)


def check_broker_engine_move(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                             out: TextIO | None = None) -> None:
    """ConfigError (exit 2) before any layer runs when the broker's ``up``/``preview`` asks Amazon MQ for an engine
    version / instance type move it does not apply to the deployed broker (shared.broker_upgrade), and a note on
    ``out`` when it asks for a new engine major version, which blocks every connection to the broker while Amazon
    MQ applies it (:func:`shared.broker_upgrade.major_upgrade_note`), or a move to RabbitMQ 4.3, whose consumer
    timeout its consumers meet differently (:func:`shared.broker_upgrade.consumer_timeout_note`). A version set back
    across a major version is judged after the account preflight read the broker (:func:`check_broker_way_back`):
    only DescribeBroker tells AWS's way out of a refused upgrade to RabbitMQ 4 from a downgrade."""
    from shared.broker_upgrade import (
        check_engine_move,
        consumer_timeout_note,
        judged_with_the_broker,
        major_upgrade_note,
    )

    if env.messaging.broker != "amazon-mq":
        return  # an external broker is its operator's to upgrade: no broker stack is read

    def check(outputs: Mapping[str, Any] | None) -> None:
        if judged_with_the_broker(env, outputs):
            return
        check_engine_move(env, outputs)
        for note in (major_upgrade_note(env, outputs), consumer_timeout_note(env, outputs)):
            if note is not None and out is not None:
                out.write(f"note: {display_path(str(env_path(env.name)))}: {note}\n")

    _check_deployed_layer(plan, operation, env, read_outputs, "broker", "the broker's deployed engine version", check)


def check_broker_way_back(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                          broker: RunningBroker | None) -> None:
    """ConfigError (exit 2) before any layer runs when the broker's ``up``/``preview`` sets ``engine_version`` back
    across a major version (4.2 to 3.13), unless it is AWS's way out of a refused upgrade to RabbitMQ 4: ``broker``
    (the account preflight's DescribeBroker; None: not read) runs that version and reports
    RABBITMQ_BROKER_NOT_UPGRADEABLE_TO_V4, or no longer does with no engine version pending (the way back made by an
    `up` that did not finish: :func:`shared.broker_upgrade.going_back`)."""
    from shared.broker_capacity import major_minor
    from shared.broker_upgrade import ENGINE_OUTPUT, check_engine_move, judged_with_the_broker

    if env.messaging.broker != "amazon-mq":
        return
    running = None
    if (broker is not None and broker.instance_type is not None and broker.engine_version is not None
            and broker.deployment_mode in (None, env.messaging.deployment_mode)):
        # DescribeBroker names the patch (3.13.7); the env and the rule major.minor
        running = (broker.instance_type, major_minor(broker.engine_version))
    actions = broker.actions_required if broker is not None else None
    pending = broker.pending_engine_version if broker is not None else None
    restarting = broker is not None and broker.state == "REBOOT_IN_PROGRESS"

    def check(outputs: Mapping[str, Any] | None) -> None:
        if judged_with_the_broker(env, outputs):
            # a restart may be applying what the last `up` asked for (the upgrade itself), so that is still pending
            unapplied = pending or (str((outputs or {}).get(ENGINE_OUTPUT)) if restarting else None)
            check_engine_move(env, outputs, running, actions, unapplied)

    _check_deployed_layer(plan, operation, env, read_outputs, "broker", "the broker's deployed engine version", check)


def _layer_reader(env: EnvConfig, read_outputs: OutputsReader, what: str,
                  then: str = "; nothing was run") -> Callable[[str], Mapping[str, Any] | None]:
    """``read_outputs`` for one env, a failed read a UsageError saying ``what`` could not be read, ``then`` after."""
    def read(layer: str) -> Mapping[str, Any] | None:
        try:
            return read_outputs(layer, env)
        except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is the reason, not a traceback
            raise UsageError(f"{what} could not be read ({layer}'s outputs: {failure_detail(error)}){then}") from None

    return read


def _refuse(refusals: Sequence[ConfigError], operation: Operation, out: TextIO) -> None:
    """Raise ``refusals`` for an ``up``; a preview only notes them (it changes nothing)."""
    from shared.errors import ConfigErrors

    if not refusals:
        return
    if operation.action is Action.PREVIEW:
        for refusal in refusals:
            out.write(f"note: up would be refused: {refusal}\n")
        return
    raise refusals[0] if len(refusals) == 1 else ConfigErrors(list(refusals))


def _refuse_found(find: Callable[[], list[ConfigError]], operation: Operation, out: TextIO) -> None:
    """:func:`_refuse` what ``find`` finds from the deployed outputs. A read of them that fails stops an ``up``; a
    preview notes it and goes on (its credentials may not read every stack's outputs)."""
    try:
        found = find()
    except UsageError as error:
        if operation.action is Action.UP:
            raise
        out.write(f"note: {error}\n")
        return
    _refuse(found, operation, out)


def check_ready_names(ready: Sequence[str]) -> None:
    """UsageError (exit 2) for a service ``--image-ready`` names that the catalog does not have, before anything else
    is checked (a typo would otherwise show as another check's refusal, or as the readiness refusal it meant to
    confirm)."""
    from shared.image_readiness import IMAGE_READY_FLAG

    catalog = load_catalog()
    unknown = [service for service in ready if service not in catalog.names()]
    if unknown:
        raise UsageError(f"{IMAGE_READY_FLAG}: {', '.join(unknown)}: no service of the catalog (services: "
                         f"{', '.join(catalog.names())})")


def check_image_readiness(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                          out: TextIO, ready: Sequence[str]) -> None:
    """ConfigError (exit 2) before any layer of an ``up`` runs when a catalog change takes away what the running image
    of a service compute runs may use, or changes how its tasks are scaled in (shared.image_readiness), and ``ready``
    does not confirm the image; a note for a preview (``ready``'s names are checked first, :func:`check_ready_names`).
    """
    from shared.image_readiness import readiness_refusals

    if operation.action not in (Action.UP, Action.PREVIEW):
        return
    catalog = load_catalog()
    read = _layer_reader(env, read_outputs, f"what {env.name}'s running services were granted")
    _refuse_found(lambda: readiness_refusals(catalog, env, plan.layers, read, set(ready)), operation, out)


def check_service_removal(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                          out: TextIO) -> None:
    """ConfigError (exit 2) before any layer of an ``up`` runs when a layer before compute would delete what a service
    removed from the catalog still uses while compute's stack runs its ECS service (shared.service_removal); a note for
    a preview."""
    from shared.catalog import catalog_path
    from shared.service_removal import check_consumers, check_removals

    if operation.action not in (Action.UP, Action.PREVIEW):
        return
    read = _layer_reader(env, read_outputs, f"whether a service removed from the catalog still runs in {env.name}")

    def find() -> list[ConfigError]:
        catalog = load_catalog()
        refusals = check_removals(env, catalog.names(), str(catalog_path()), plan.layers,
                                  _stack_name(env, "compute"), read)
        # a service that stays but stops consuming, or stops using the broker: the same order within messaging
        stopped, notes = check_consumers(
            env, {name: (catalog[name].queue is not None, catalog[name].uses_messaging) for name in catalog.names()},
            str(catalog_path()), plan.layers, _stack_name(env, "compute"), read)
        for note in notes:
            out.write(f"note: {note}\n")
        return refusals + stopped

    _refuse_found(find, operation, out)


def _check_network_step(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader, out: TextIO,
                        what: str, missed: str,
                        refusals: Callable[[Callable[[str], Mapping[str, Any] | None]], list[ConfigError]],
                        applies: bool | None = None) -> None:
    """``refusals`` (of the deployed outputs) raised before any layer of an ``up`` runs where it ``applies`` (by
    default: with the network layer), noted for a preview. Outputs that cannot be read (credentials that may run the
    stacks but not decrypt their outputs) are noted, saying what is ``missed``, and the run goes on: README tells the
    two steps these checks hold."""
    if operation.action not in (Action.UP, Action.PREVIEW) \
            or not ("network" in plan.layers if applies is None else applies):
        return
    try:
        found = refusals(_layer_reader(env, read_outputs, what, then=""))
    except UsageError as error:
        out.write(f"note: {error}; {missed}\n")
        return
    _refuse(found, operation, out)


def check_zone_drop(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                    out: TextIO) -> None:
    """ConfigError (exit 2) before any layer of an ``up`` runs when the network layer would delete the subnets of an
    AZ the env drops while a later layer may still have network interfaces there (shared.zone_retirement); a note for
    a preview."""
    from shared.zone_retirement import zone_drop_refusals

    _check_network_step(plan, operation, env, read_outputs, out, f"which subnets {env.name}'s layers use",
                        "an AZ dropped without being retired first is not caught (README, \"Dropping an AZ takes two "
                        "`up`s\")", lambda read: zone_drop_refusals(env, read))


def check_cidr_change(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                      out: TextIO) -> None:
    """ConfigError (exit 2) before any layer of an ``up`` runs when the network layer would replace the VPC (a new
    ``network.cidr``) under deployed later layers (shared.zone_retirement.cidr_change_refusals); a note for a
    preview."""
    from shared.zone_retirement import cidr_change_refusals

    _check_network_step(plan, operation, env, read_outputs, out, f"which CIDR {env.name}'s network was deployed with",
                        "a changed network.cidr under deployed layers is not caught (README, table of env keys)",
                        lambda read: cidr_change_refusals(env, read))


def check_external_move(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                        out: TextIO) -> None:
    """ConfigError (exit 2) before any layer of an ``up`` that runs the broker layer when it would delete a deployed
    Amazon MQ broker's security group under the rules of messaging and compute (shared.broker_upgrade
    .external_move_refusal); a note for a preview."""
    from shared.broker_upgrade import external_move_refusal

    _check_network_step(plan, operation, env, read_outputs, out, f"which broker {env.name}'s layers use",
                        "a move to an external broker in one up is not caught (README, table of env keys)",
                        lambda read: external_move_refusal(env, read), applies="broker" in plan.layers)


def check_dropped_zone_interfaces(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                                  interfaces: Reader, out: TextIO) -> None:
    """ConfigError (exit 2) before any layer of the `up` that drops retired AZs runs while their subnets hold network
    interfaces no layer deletes (:func:`shared.orchestrate.interfaces.dropped_zone_refusal`); a note for a preview,
    whose credentials may also be unable to read them."""

    def refusals(read: Callable[[str], Mapping[str, Any] | None]) -> list[ConfigError]:
        try:
            refusal = dropped_zone_refusal(env, read("network"), interfaces)
        except AwsAccessError:
            if operation.action is Action.UP:
                raise
            out.write(f"note: whether the subnets of the AZs {env.name} drops hold interfaces no layer deletes was "
                      "not read\n")
            return []
        return [refusal] if refusal is not None else []

    _check_network_step(plan, operation, env, read_outputs, out, f"which AZs {env.name}'s network retired",
                        "an interface another party left in a dropped AZ's subnets is not caught (README, \"Dropping "
                        "an AZ takes two `up`s\")", refusals)


def check_port_drop(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                    out: TextIO) -> None:
    """ConfigError (exit 2) before any layer of an ``up`` runs when the network layer would stop admitting a port it
    kept for the tasks of an earlier catalog while compute's tasks may still call it (shared.port_retirement); a note
    for a preview."""
    from shared.port_retirement import port_drop_refusals

    _check_network_step(plan, operation, env, read_outputs, out, f"which ports {env.name}'s tasks call",
                        "a port dropped while compute's tasks still call it is not caught (README, \"A called "
                        "service's port leaves the tasks' security group one `up` after the catalog\")",
                        lambda read: port_drop_refusals(load_catalog(), env.name, read))


def check_port_admission(plan: Plan, operation: Operation, env: EnvConfig, read_outputs: OutputsReader,
                         out: TextIO) -> None:
    """ConfigError (exit 2) before an ``up`` of compute without network runs when the catalog moves the tasks to a
    port the network layer's last `up` does not admit (shared.port_retirement); a note for a preview."""
    from shared.port_retirement import port_admission_refusals

    _check_network_step(plan, operation, env, read_outputs, out, f"which ports {env.name}'s network admits",
                        "a called service's port the network does not admit yet is not caught",
                        lambda read: port_admission_refusals(load_catalog(), env.name, read),
                        applies="compute" in plan.layers and "network" not in plan.layers)


def check_ended_app_mesh(plan: Plan, operation: Operation, env: EnvConfig,
                         app_mesh: Callable[[str, EnvConfig], Sequence[str] | None] | None, out: TextIO,
                         backend_url: str | None = None) -> None:
    """ConfigError (exit 2) before any layer runs when the mesh layer's state still holds App Mesh resources after
    AWS ended App Mesh (shared.lifecycle): an ``up`` that moved the env to service-connect, a ``destroy`` or a
    ``refresh`` would call the App Mesh API for them (delete, read), which AWS no longer serves ("AWS App Mesh end of
    support": "you will no longer be able to access ... AWS App Mesh resources"), and fail at the mesh layer after the
    layers before it ran (discovery has deleted the Cloud Map services by then). What it prints drops them from the
    state only, which changes nothing in AWS. A preview (or ``--preview-only``) is told, and runs."""
    item = lifecycle.LIFECYCLES[(lifecycle.APP_MESH, "appmesh")]
    if app_mesh is None or "mesh" not in plan.layers or item.blocks_update is None \
            or lifecycle.today() <= item.blocks_update:
        return
    urns = app_mesh("mesh", env)
    if not urns:
        return
    stack = _stack_name(env, "mesh")
    # in app_mesh_urns's order: none is left with a child or dependent in the state (which `pulumi state delete`
    # refuses)
    # on the env's backend, with the secrets provider its state records (shared.orchestrate.pending.env_words): the
    # CLI's own login would miss the stack or act on a same-named one
    backend = env_prefix(backend_url)
    commands = "\n".join(f"  {backend}pulumi state delete --stack {stack} '{urn}' --yes" for urn in urns)
    reason = (f"the mesh stack {stack} still holds {len(urns)} App Mesh resources, whose API AWS stopped serving on "
              f"{item.blocks_update} ({item.source}): {operation.label} would fail at the mesh layer calling it, after "
              "the layers before it ran. Drop them from the state first (AWS keeps nothing to delete for you; the "
              f"commands change only the state), in stacks/mesh:\n{commands}\nthen run again. Nothing was run")
    refusal = ConfigError(str(env_path(env.name)), "mesh.provider", reason)
    if operation.action is Action.PREVIEW or operation.preview_only:
        out.write(f"note: {operation.action.value} would be refused: {refusal}\n")
        return
    raise refusal


class ProtectedStateError(PlatformError):
    """A destroy whose layers' states mark resources ``protect``: refused before any layer runs (exit 1, a gate)."""

    exit_code = 1


def check_destroy_protect(plan: Plan, operation: Operation, env: EnvConfig,
                          protected: Callable[[str, EnvConfig], Sequence[str] | None] | None) -> None:
    """ProtectedStateError when a layer of a destroy holds resources its state marks ``protect`` (prod's stateful
    ones), before any layer runs. Each layer's own destroy stops at its preview with nothing of it deleted, but the
    run goes layer by layer: a layer without protected resources that runs before (compute, once its repositories
    were released) or beside (mesh beside messaging) a protected one was destroyed, and the run stopped half-way.
    The protect marks come from the states the identity check exported (:meth:`AutomationRunner.protected_urns`)."""
    if operation.action is not Action.DESTROY or operation.preview_only or protected is None:
        return
    held = {layer: list(urns) for layer in plan.layers if (urns := protected(layer, env))}
    if not held:
        return
    lines = []
    for layer, urns in held.items():
        stack = _stack_name(env, layer)
        shown = ", ".join(f"'{urn}'" for urn in urns[:3]) + (f" and {len(urns) - 3} more" if len(urns) > 3 else "")
        lines.append(f"  {layer}: {len(urns)} protected ({shown}); release them: `pulumi state unprotect --stack "
                     f"{stack} --all --yes` in stacks/{layer} (or one: `pulumi state unprotect --stack {stack} "
                     f"'{urns[0]}'`)")
    # Released, a protected env's S3 buckets still have no force_destroy (shared.components.gateway, .artifacts): the
    # destroy then stops before compute's first delete while one holds objects (ImageGatedRunner._bucket_refusal).
    extra = (" compute's S3 buckets (the ALB's access logs, the models) have no force_destroy there: once released, "
             "the destroy still stops before deleting anything while one holds objects, until they are emptied."
             if "compute" in held else "")
    if "compute" in held and env.compute.public_gateway:
        # enable_deletion_protection=protect (shared.components.gateway): AWS's own flag, which no state release lifts;
        # the provider's delete only calls DeleteLoadBalancer, which refuses while it is on (OperationNotPermitted)
        extra += (" The public gateway's load balancer has AWS deletion protection there: turn it off "
                  f"({deletion_protection_off_command()}), or the destroy stops at it after deleting the services.")
    raise ProtectedStateError(
        f"destroy {env.name}: nothing was deleted: the state of {', '.join(held)} marks resources protect (the "
        f"stateful ones, deployed while protect_stateful was on), and a destroy stopped there would already have "
        f"deleted the layers that run before or beside it.{extra} To destroy them on purpose, release them first, "
        "then run the destroy again:\n" + "\n".join(lines))


def main(argv: Sequence[str] | None = None, *, runner: LayerRunner | None = None, out: TextIO | None = None,
         confirm: Callable[[str], bool] = _ask_on_terminal, clock: Callable[[], float] = time.monotonic,
         probe: Probe = tcp_probe, images: ImageChecks | None = None, account: AccountCheck | None = None) -> int:
    """Exit code: 0 all layers succeeded, 1 a layer failed or the user declined, 2 bad input or setup
    (including a layer whose endpoint inside the VPC does not answer from here, a service quota the env
    certainly exceeds, a service-linked role that cannot be created, an env file whose region or account is not the
    one its deployed stacks were created with: :mod:`shared.orchestrate.identity`, another run of the env under way:
    :mod:`shared.orchestrate.run_lease`).

    ``images`` answers compute's image questions (default: AWS, :class:`~shared.orchestrate.images.AwsImageChecks`);
    ``account`` is the account preflight (default: AWS, :class:`~shared.orchestrate.account.AwsAccountCheck`).
    """
    # the runner's finish (its run lease released) however the run ends: a SIGTERM or SIGHUP before the first layer
    # (a closed terminal at the prompt) interrupts as Ctrl-C does instead of killing the process
    with signals_interrupt(), contextlib.ExitStack() as run_over:  # released while the handlers still stand
        try:
            return _main(argv, runner=runner, out=out, confirm=confirm, clock=clock, probe=probe, images=images,
                         account=account, run_over=run_over)
        except KeyboardInterrupt:  # after the summary (a signal sent twice to the process group arrives late)
            sys.stderr.write("interrupted\n")
            return 130


def _finish(runner: ImageGatedRunner) -> None:
    """The runner's finish (its run lease released); an interrupt during it (a second Ctrl-C) does not leave the lease
    behind: one more try, then the lease goes stale on its own."""
    try:
        runner.finish()
    except KeyboardInterrupt:
        with contextlib.suppress(Exception, KeyboardInterrupt):
            runner.finish()


def _main(argv: Sequence[str] | None, *, runner: LayerRunner | None, out: TextIO | None,
          confirm: Callable[[str], bool], clock: Callable[[], float], probe: Probe, images: ImageChecks | None,
          account: AccountCheck | None, run_over: contextlib.ExitStack) -> int:
    out = out or sys.stdout
    try:
        parser = build_parser()
        if argv and argv[0] in {action.value for action in Action}:
            parser.label = f"nox -s {argv[0]}"  # what the user typed (noxfile: python -m shared.orchestrate ACTION)
        args = parser.parse_args(argv)
        operation = _operation(args)
        env = load_env(args.env)  # a bad env file stops everything before any CLI is looked for
        judged = env_file_digest(env_path(env.name))  # the file every check below judges
        check_ready_names(args.image_ready)
        if operation.action in (Action.UP, Action.PREVIEW):  # a peak close to the broker's limits (not refused)
            for note in [*capacity_notes(env, load_catalog()), *spot_job_notes(env, load_catalog())]:
                out.write(f"note: {env_path(env.name)}: {note}\n")
            # a runtime, engine or image AWS no longer creates (refused), or soon (noted): shared.lifecycle
            for note in lifecycle.check_lifecycle(env, lifecycle.today()):
                out.write(f"note: {env.name}: {note}\n")
            rotation = lifecycle.rotation_note(env, lifecycle.today())  # nothing else tells when it is due
            if rotation:
                out.write(f"note: {env_path(env.name)}: {rotation}\n")
        if args.exact and args.layers is None:
            raise UsageError("--exact needs --layers (the layers to run, alone)")
        plan = make_plan(operation, requested_layers(args.layers), exact=args.exact)
        unreachable = unreachable_public_note(env) if "compute" in plan.layers else None
        if unreachable is not None and operation.action in (Action.UP, Action.PREVIEW):
            out.write(f"note: {display_path(str(env_path(env.name)))}: {unreachable}\n")
        if "compute" in plan.layers and operation.action in (Action.UP, Action.PREVIEW):
            # the env files compute's program and preflights read too (its image replication): a bad one stops the
            # run here, as a bad env file does, not after the backend's and the account's checks
            from shared.components.image_replication import related_envs

            related_envs(env)
        check_allowed(operation.allow_replace, env.name, plan.layers)
        _describe_plan(plan, operation, env.name, out)
        check_destroy_from_runner(env, operation, plan, os.environ)
        if runner is None:
            from shared.orchestrate.automation import AutomationRunner

            runner = AutomationRunner()
        if (judge := getattr(runner, "judge_env_file", None)) is not None:
            judge(judged)  # its programs compare the file they read with this one
        # compute's `up` in two steps when its images are not in the registry yet (shared.orchestrate.images)
        runner = ImageGatedRunner(runner, images if images is not None else default_image_checks())
        run_over.callback(_finish, runner)
        for note in runner.prepare(env, plan.layers, operation) or ():
            out.write(f"note: {note}\n")
        deployed = _read_once(runner.stack_outputs)  # the preflights below read the broker stack's twice
        check_exact_destroy(plan, operation, env, args.exact, deployed)
        check_rotation_continuity(plan, operation, env, deployed, out)
        check_broker_engine_move(plan, operation, env, deployed, out)
        check_service_removal(plan, operation, env, deployed, out)
        check_image_readiness(plan, operation, env, deployed, out, args.image_ready)
        check_zone_drop(plan, operation, env, deployed, out)
        check_cidr_change(plan, operation, env, deployed, out)
        check_external_move(plan, operation, env, deployed, out)
        check_port_drop(plan, operation, env, deployed, out)
        check_port_admission(plan, operation, env, deployed, out)
        check_destroy_protect(plan, operation, env, runner.protected_urns)
        check_ended_app_mesh(plan, operation, env, runner.app_mesh_urns, out, runner.state_backend_url("mesh", env))
        account_check = account if account is not None else default_account_check()
        # an interface no layer deletes stops network's subnets, after every other layer (shared.orchestrate.interfaces)
        check_network_destroy(plan, operation, env, deployed, account_check.foreign_resources, out)
        check_dropped_zone_interfaces(plan, operation, env, deployed, account_check.foreign_resources, out)
        found = _account_preflight(account_check, env, operation, plan.layers, out,
                                   lambda layer: runner.stack_exists(layer, env), deployed, runner.state_broker_ids)
        check_program_secrets(account_check, env, operation, plan.layers, out)
        check_destroy_blockers(account_check, env, operation, plan.layers, out, runner.state_log_groups)
        check_lost_broker_teardown(plan, operation, env, account_check, deployed, runner.rabbitmq_urns,
                                   runner.state_backend_url("messaging", env), out)
        check_broker_way_back(plan, operation, env, deployed, found.broker_running)
        runner.program_environment(program_environment(env, found.broker_running))
        if operation.expect_no_changes:  # what a settle check notes instead of failing for (shared.orchestrate.settled)
            runner.expect_converging(env.name, converging(
                plan.layers, deployed("network", env) if "network" in plan.layers else None, found.broker_pending))
        reach = ReachCheck(env, operation, plan, runner.stack_outputs, probe=probe, out=out,
                           holds=runner.holds_resources, brokers=runner.state_broker_ids,
                           rabbitmq=runner.rabbitmq_urns)
        reach.preflight()
        if operation.changes_infrastructure and not args.yes:
            with runner.awaiting_user():
                answer = confirm(f"{operation.label} changes real infrastructure of {env.name} "
                                 f"({', '.join(plan.layers)}); continue?")
            if not answer:
                out.write("declined; nothing was run\n")
                return 1
        try:
            for line in account_check.create(env, found.missing):  # account-wide, idempotent; after the confirmation
                out.write(f"account {env.name}: {line}\n")
        except KeyboardInterrupt:
            sys.stderr.write(f"interrupted: {operation.label} {env.name} stopped before its first layer (a service-"
                             "linked role already created stays: it is the account's, and the next run finds it)\n")
            return 130
    except PlatformError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:  # Ctrl-C during the checks before any layer: they read, nothing was changed
        sys.stderr.write("interrupted before any layer ran: nothing was changed\n")
        return 130
    progress = Progress(out, plan.layers)
    interruption = Interruption(runner, progress)
    with signals_interrupt():
        try:
            results = execute(plan, env, operation, runner, progress, parallel=args.parallel,
                              clock=clock, gate=reach.before_level, interruption=interruption)
        except KeyboardInterrupt as error:  # between levels, before anything of the next one started
            interruption.record(error, [])
            results = [interruption.results.get(layer) or
                       LayerResult(layer, Status.NOT_RUN, detail="not started: the run was interrupted")
                       for layer in plan.layers]
    print_summary(results, operation, env.name, out)
    if os.environ.get("GITHUB_ACTIONS") == "true":  # on the run's page too (a settle step may not fail its job)
        for line in unsettled_annotations(results, env.name):
            out.write(line + "\n")
    if interruption.interrupted:
        sys.stderr.write(f"interrupted: {operation.label} {env.name} stopped; see the table for what ran\n")
        return 130
    if reach.refusals:
        for refusal in reach.refusals:
            sys.stderr.write(f"error: {refusal}\n")
        return ReachError.exit_code
    return 1 if any(result.status is not Status.SUCCEEDED for result in results) else 0
