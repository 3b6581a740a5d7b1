"""Whether a change of ``messaging.engine_version`` / ``messaging.instance_type`` is a move Amazon MQ applies to the
deployed broker, in place.

The env loader sees only the env file, where 4.2 back to 3.13, or ``mq.m5`` + 3.13 to ``mq.m7g`` + 4.2 at once, are
valid. Applied to a deployed broker, the broker layer's `up` would first replace the broker's configuration (one per
engine version: :func:`shared.components.broker.configuration_name`) and only then fail at ``UpdateBroker``. So the
broker stack exports the engine version and instance type it asked for (:data:`ENGINE_OUTPUT`,
:data:`INSTANCE_OUTPUT`), and both the layer program (through a reference to its own stack) and the orchestrator
(before any layer runs) compare the env with them here. The rules (Amazon MQ developer guide):

* "Upgrading an Amazon MQ broker engine version": a broker is upgraded "to the next supported major or minor
  version"; there is no downgrade, and no skipping a version (RabbitMQ "only allows incremental version updates");
* "Amazon MQ for RabbitMQ sizing guidelines": "You cannot downgrade a broker from an mq.m5 or mq.m7g instance type
  to an mq.t3.micro instance type" (the env loader accepts mq.t3.micro with 3.13, so only the deployed type tells);
* "In-place upgrade from RabbitMQ 3 to 4": step 1 moves a broker not on ``mq.m7g`` to it and applies it (a reboot
  or the maintenance window), and only then is the engine version set to 4.2; so a move of the instance family and
  the engine version take two `up`\\ s, never one (a broker already on ``mq.m7g`` may change its size with them).

One way back is AWS's own ("Broker not upgradeable to version 4", an action-required code of the troubleshooting
guide): a broker Amazon MQ does not upgrade from RabbitMQ 3 to 4 (classic queues, the Khepri metadata store feature
flag) stays available on 3.13 in the state CRITICAL_ACTION_REQUIRED with DescribeBroker ``ActionsRequired[]`` holding
``ActionRequiredCode`` :data:`NOT_UPGRADEABLE_TO_V4`, and "You can clear the CRITICAL_ACTION_REQUIRED state by
updating the broker engine version back to 3.13 using the UpdateBroker API operation". So an env's
``engine_version`` set back to the version the broker runs is accepted while the broker reports that code, or once
that UpdateBroker was made and cleared it (:func:`going_back`); the orchestrator reads both (its preflight's
DescribeBroker) and hands them to the broker program (:data:`ACTIONS_VARIABLE`,
:data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE`). A 3 -> 4 upgrade also blocks every connection to the
broker while it runs ("Upgrading Amazon MQ for RabbitMQ 3 broker to 4"): :func:`major_upgrade_note`.

Standard library and the env schema only (the orchestrator imports it without Pulumi).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from shared.amazonmq import RABBITMQ_ENGINE_FAMILIES, engine_tuple, family_of
from shared.deployed import refuse_while_deployed
from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError

#: the broker stack's outputs naming what its broker was last asked to run (None for an external broker)
ENGINE_OUTPUT = "engine_version"
INSTANCE_OUTPUT = "instance_type"
MODE_OUTPUT = "deployment_mode"
ENGINE_KEY = "messaging.engine_version"
INSTANCE_KEY = "messaging.instance_type"
#: instance family -> the families a broker never moves back to it from ("sizing guidelines", above)
NO_MOVE_BACK: dict[str, tuple[str, ...]] = {"mq.t3": ("mq.m5", "mq.m7g")}
#: DescribeBroker ``ActionsRequired[].ActionRequiredCode`` (botocore mq ``ActionRequired``) of a broker Amazon MQ did
#: not upgrade from RabbitMQ 3 to 4; the broker is CRITICAL_ACTION_REQUIRED, still runs 3.13, and AWS's way out is
#: UpdateBroker back to 3.13 (Amazon MQ developer guide, "Broker not upgradeable to version 4")
NOT_UPGRADEABLE_TO_V4 = "RABBITMQ_BROKER_NOT_UPGRADEABLE_TO_V4"
#: The environment variable through which the orchestrator hands the broker program the action-required codes its
#: preflight's DescribeBroker read (``ActionsRequired[].ActionRequiredCode``, comma-separated; set only where the broker
#: reports one), next to :data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE` (what the broker runs)
ACTIONS_VARIABLE = "PLATFORM_BROKER_ACTIONS_REQUIRED"
_ACTION_CODE = re.compile(r"[A-Z0-9_]+")


def actions_required_value(codes: Iterable[str]) -> str:
    """:data:`ACTIONS_VARIABLE`'s value for ``codes`` (sorted, each once)."""
    return ",".join(sorted(set(codes)))


def actions_required(environ: Mapping[str, str]) -> frozenset[str] | None:
    """The action-required codes of :data:`ACTIONS_VARIABLE`; None: none handed over (a ``pulumi up`` without the
    orchestrator, a broker not read, or one that reports none: the orchestrator then judges the env itself, before
    the program runs). A code of another form (upper-case letters, digits, ``_``: botocore mq ``ActionRequiredCode``,
    as RABBITMQ_MEMORY_ALARM) is a :class:`~shared.errors.ConfigError` naming the variable."""
    value = environ.get(ACTIONS_VARIABLE, "").strip()
    if not value:
        return None
    codes = frozenset(code.strip() for code in value.split(",") if code.strip())
    wrong = sorted(code for code in codes if not _ACTION_CODE.fullmatch(code))
    if wrong:
        raise ConfigError(ACTIONS_VARIABLE, "(environment variable)",
                          f"{', '.join(map(repr, wrong))}: not an Amazon MQ action-required code (as "
                          f"{NOT_UPGRADEABLE_TO_V4}: DescribeBroker ActionsRequired, comma-separated, which "
                          "`nox -s up` and `preview` hand the broker program); unset it")
    return codes


def going_back(wanted: str, running_engine: str | None, actions: Collection[str] | None,
               pending_engine: str | None = None) -> bool:
    """Whether ``messaging.engine_version`` ``wanted``, back across a major version from what the broker stack last
    asked for, is AWS's way out of a refused upgrade to RabbitMQ 4. The broker runs ``wanted`` (``running_engine``:
    DescribeBroker ``EngineVersion``, major.minor or with its patch; None: not read, so never) and either reports
    :data:`NOT_UPGRADEABLE_TO_V4` (``actions``: DescribeBroker's codes, None: not read), or reports it no more with
    no engine version pending (``pending_engine``: ``PendingEngineVersion``): the way back's UpdateBroker was made,
    which clears the code, and the `up` that made it did not finish (a later resource failed, the run was stopped),
    so the stack's export, written at the program's end, still names the version the broker left. Its broker
    resource's state already holds ``wanted``: the next `up` changes nothing of the broker. A broker that runs
    ``wanted`` with the upgrade still pending is refused (the upgrade is applied in its window, or refused with the
    code), as is one restarting (the orchestrator passes the stack's version as pending then: the restart may be the
    upgrade). The broker program is handed what runs, what is pending and the codes from the orchestrator's
    DescribeBroker (:data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE`, :data:`ACTIONS_VARIABLE`), not the
    restart: the orchestrator refuses that before any layer runs."""
    if running_engine is None or _major_minor(running_engine) != _major_minor(wanted):
        return False
    if actions is not None and NOT_UPGRADEABLE_TO_V4 in actions:
        return True
    return pending_engine is None or _major_minor(pending_engine) == _major_minor(wanted)


def _across_major(wanted: str, deployed: str) -> bool:
    return engine_tuple(wanted)[:1] < engine_tuple(deployed)[:1]


def deployed_engine(env: EnvConfig, outputs: Mapping[str, Any] | None) -> str | None:
    """The engine version the broker stack's last `up` set on the broker this env's `up` keeps (its ``outputs``):
    None for an external broker, no broker deployed yet, or one of another deployment mode (the `up` creates a new
    broker on the env's version: nothing is upgraded)."""
    messaging = env.messaging
    if messaging.broker != "amazon-mq" or not outputs or outputs.get("broker_mode") != "amazon-mq":
        return None
    deployed = outputs.get(ENGINE_OUTPUT)
    if deployed is None or outputs.get(MODE_OUTPUT) not in (None, messaging.deployment_mode):
        return None
    return str(deployed)


def judged_with_the_broker(env: EnvConfig, outputs: Mapping[str, Any] | None) -> bool:
    """Whether the env sets ``engine_version`` back across a major version from what the broker stack last asked for
    (4.2 to 3.13): refused, unless it is :func:`going_back`, which only DescribeBroker tells. The orchestrator's check
    before any layer leaves it to the one after its preflight read the broker."""
    deployed = deployed_engine(env, outputs)
    return deployed is not None and _across_major(env.messaging.engine_version, deployed)


def _way_out(env: EnvConfig, wanted: str, deployed: str, running_engine: str | None,
             actions: Collection[str] | None, pending_engine: str | None, broker_id: str) -> str:
    """What the downgrade refusal says of AWS's way out of a refused upgrade to RabbitMQ 4, where the move is back
    across a major version (empty elsewhere: Amazon MQ has no way back from 4.3 to 4.2)."""
    if not _across_major(wanted, deployed):
        return ""
    query = f"`aws mq describe-broker --broker-id {broker_id} --region {env.region} --query ActionsRequired`"
    rule = (f" The one way back is AWS's own: a broker Amazon MQ refused to upgrade to RabbitMQ 4 (classic queues, "
            f"the Khepri feature flag) stays on the version it ran, CRITICAL_ACTION_REQUIRED with the "
            f"action-required code {NOT_UPGRADEABLE_TO_V4} ({query}), and `{ENGINE_KEY}` set back to the version it "
            "runs is what clears it (Amazon MQ developer guide, \"Broker not upgradeable to version 4\"); `up` "
            "accepts that while the broker reports the code, or runs that version with nothing pending once the code "
            "is cleared (README \"Changing the broker\")")
    if actions is None:
        return (f"{rule}. Whether this broker reports it was not read here (`nox -s up` reads it with DescribeBroker "
                "before any layer; where that failed, its notes say why)")
    if NOT_UPGRADEABLE_TO_V4 not in actions:
        if pending_engine is not None and running_engine is not None:
            return (f"{rule}; this broker reports no such code: it runs {running_engine} with {pending_engine} "
                    "pending, which Amazon MQ applies in its maintenance window or at a reboot (or refuses, with the "
                    "code)")
        return f"{rule}; this broker reports no such code"
    if running_engine is None:
        return f"{rule}; this broker reports it, but what it runs was not read: run `nox -s up`, which reads it"
    return f"{rule}; this broker reports it and runs {running_engine}: set `{ENGINE_KEY}: \"{running_engine}\"`"


def major_upgrade_note(env: EnvConfig, outputs: Mapping[str, Any] | None) -> str | None:
    """A note for an `up` / `preview` of the broker layer that asks Amazon MQ for a new engine *major* version
    (3.13 to 4.2) than the broker stack last asked for: Amazon MQ applies it in the broker's maintenance window or at
    a reboot, and "During the upgrade, Amazon MQ blocks all connections to the broker ... The downtime depends on
    queue depth" (Amazon MQ developer guide, "Upgrading Amazon MQ for RabbitMQ 3 broker to 4"): a full outage, a
    cluster's too, not the node-by-node restart of other maintenance. None: no major upgrade asked for (or one the
    checks refuse: :func:`engine_move_refusal` says why), an external broker, or no broker deployed yet."""
    messaging = env.messaging
    deployed = deployed_engine(env, outputs)
    wanted = messaging.engine_version
    if (outputs is None or deployed is None or not _across_major(deployed, wanted)
            or engine_move_refusal(env, outputs) is not None):
        return None
    window = " ".join(messaging.maintenance_window.spec())
    cluster = (f", on a {messaging.deployment_mode} broker too (not one node at a time)"
               if messaging.deployment_mode != "SINGLE_INSTANCE" else "")
    reboot = f"aws mq reboot-broker --broker-id {outputs.get('broker_id', '<broker id>')} --region {env.region}"
    return (f"{ENGINE_KEY}: {deployed} to {wanted} is a major version upgrade: Amazon MQ applies it in the broker's "
            f"next maintenance window (messaging.maintenance_window {window}) or at a reboot, and blocks all "
            f"connections to the broker for the whole upgrade{cluster}: every publisher and consumer of the env is "
            "cut off, for longer the more messages the queues hold (Amazon MQ developer guide, \"Upgrading Amazon "
            "MQ for RabbitMQ 3 broker to 4\"). Drain the queues first, and let it run in a quiet window or at a time "
            f"you choose (`{reboot}`, which applies it at once; README \"Changing the broker\")")


#: the version from which a quorum queue enforces its consumer timeout itself: it cancels the consumer (``basic.cancel``
#: to a client that advertises ``consumer_cancel_notify``) rather than closing its channel, and the delivery it takes
#: back does not count towards the delivery limit (RabbitMQ 4.3.0 release notes; rabbitmq-server discussion #18226)
QUEUE_CONSUMER_TIMEOUT_SINCE = (4, 3)


def consumer_timeout_note(env: EnvConfig, outputs: Mapping[str, Any] | None) -> str | None:
    """A note for an `up` / `preview` of the broker layer that moves a deployed broker to RabbitMQ 4.3 or later from
    an earlier version: a consumer written for 4.2's consumer timeout (its channel closed, the delivery counted) no
    longer meets it there. None: no such move (a new broker, an external one, a refused move)."""
    deployed = deployed_engine(env, outputs)
    wanted = env.messaging.engine_version
    if deployed is None or not (_major_minor(deployed) < QUEUE_CONSUMER_TIMEOUT_SINCE <= _major_minor(wanted)):
        return None
    if engine_move_refusal(env, outputs) is not None:
        return None
    return (f"{ENGINE_KEY}: {deployed} to {wanted}: from RabbitMQ 4.3 a work queue's consumer timeout "
            "(max_job_seconds, else 30 minutes) cancels the consumer (basic.cancel, to clients that support consumer "
            "cancel notifications: pika, the Java client, amqp091-go) instead of closing its channel, so a consumer "
            "that only reconnects on a closed channel stays connected and consumes nothing more; and the delivery it "
            "takes back no longer counts towards messaging.delivery_limit, so a job that always overruns is "
            "delivered again without end, never dead-lettered. Check each consumer first: it consumes again (or "
            "exits) on a broker's basic.cancel, and stops a job at its own deadline with basic.reject and requeue, "
            "which counts (README \"What a service's image must provide\")")


def _major_minor(version: str) -> tuple[int, ...]:
    return engine_tuple(version)[:2]


def _set_to(asked: str, running: str | None, same: bool) -> str:
    """What the broker does with ``asked``, the value the broker stack's last `up` set (its output): it may run it or
    only have it pending (DescribeBroker ``EngineVersion`` / ``HostInstanceType`` next to ``PendingEngineVersion`` /
    ``PendingHostInstanceType``: Amazon MQ applies a move at a reboot or in the maintenance window). ``running``: what
    the broker runs (:func:`shared.broker_capacity.running_broker`), ``same`` whether that is ``asked``; None: not
    read (the orchestrator's check, before DescribeBroker), so both cases are named."""
    if running is None:
        return (f"the broker was last set to {asked} (it runs it, or has it pending until a reboot or its maintenance "
                "window)")
    return f"the broker runs {asked}" if same else f"the broker runs {running} and has {asked} pending"


def engine_move_refusal(env: EnvConfig, outputs: Mapping[str, Any] | None,
                        running: tuple[str, str] | None = None,
                        actions: Collection[str] | None = None,
                        pending_engine: str | None = None) -> ConfigError | None:
    """Why the env's broker settings are not a move Amazon MQ applies to the broker the broker stack's ``outputs``
    describe (None: they are, or nothing is deployed to compare with). ``running``: (instance type, engine
    major.minor) the broker runs, where known (:func:`shared.broker_capacity.running_broker`), for the wording;
    ``actions``: its DescribeBroker action-required codes (None: not read), which accept the version it runs back
    from a refused upgrade to RabbitMQ 4 (:func:`going_back`), as does no code with nothing pending
    (``pending_engine``: DescribeBroker ``PendingEngineVersion``, None: none or not read)."""
    messaging = env.messaging
    if messaging.broker != "amazon-mq" or not outputs or outputs.get("broker_mode") != "amazon-mq":
        return None  # not the platform's broker, or no broker of the platform deployed yet (a first `up`)
    deployed_engine, deployed_type = outputs.get(ENGINE_OUTPUT), outputs.get(INSTANCE_OUTPUT)
    if deployed_engine is None or deployed_type is None:
        return None  # a stack deployed before it exported them: its next `up` records them
    if outputs.get(MODE_OUTPUT) not in (None, messaging.deployment_mode):
        # a new deployment mode replaces the broker (README, env key table: messaging.deployment_mode), and
        # CreateBroker takes any version and type the env loader accepts
        return None
    file = str(env_path(env.name))
    unchanged = "nothing was changed"
    wanted_type, deployed_type = messaging.instance_type, str(deployed_type)
    running_type, running_engine = running if running is not None else (None, None)
    type_set = _set_to(deployed_type, running_type, running_type == deployed_type)
    engine_set = _set_to(str(deployed_engine), running_engine, running_engine is not None
                         and _major_minor(running_engine) == _major_minor(str(deployed_engine)))
    if family_of(deployed_type) in NO_MOVE_BACK.get(family_of(wanted_type), ()):
        return ConfigError(file, INSTANCE_KEY, (
            f"is {wanted_type}, but {type_set}: a broker on {family_of(deployed_type)} never "
            f"moves back to {wanted_type} (Amazon MQ sizing guidelines: no downgrade from mq.m5 or mq.m7g to "
            f"mq.t3.micro), so UpdateBroker would refuse it after the capacity alarms had moved to its limits; "
            f"{unchanged}. Keep `{INSTANCE_KEY}: {deployed_type}` (the smallest RabbitMQ 3.13 type besides "
            "mq.t3.micro is mq.m7g.medium; an mq.t3.micro needs a new broker: README \"Changing the broker\")"))
    wanted = messaging.engine_version
    if _major_minor(wanted) == _major_minor(str(deployed_engine)):
        return None
    if _major_minor(wanted) < _major_minor(str(deployed_engine)):
        if _across_major(wanted, str(deployed_engine)) and going_back(wanted, running_engine, actions,
                                                                          pending_engine):
            return None  # AWS's way out of a refused upgrade to RabbitMQ 4: UpdateBroker back to what the broker runs
        way_out = _way_out(env, wanted, str(deployed_engine), running_engine, actions, pending_engine,
                           str(outputs.get("broker_id") or "<broker id>"))
        return ConfigError(file, ENGINE_KEY, (
            f"is {wanted}, but {engine_set}: Amazon MQ only upgrades a broker's engine (to the "
            f"next supported version; there is no downgrade), so UpdateBroker would refuse it after the broker's "
            f"configuration for {wanted} was made; {unchanged}. Set `{ENGINE_KEY}: \"{deployed_engine}\"` again (an "
            f"older engine needs a new broker: another env, README \"Changing the broker\").{way_out}"))
    offered = sorted(RABBITMQ_ENGINE_FAMILIES, key=engine_tuple)
    following = [v for v in offered if _major_minor(v) > _major_minor(str(deployed_engine))]
    if following and following[0] != wanted:
        return ConfigError(file, ENGINE_KEY, (
            f"is {wanted}, but {engine_set}: Amazon MQ upgrades one version at a time, and the "
            f"next one is {following[0]}; {unchanged}. Set `{ENGINE_KEY}: \"{following[0]}\"` first"))
    # Only a family the new engine does not run on needs AWS's step 1 first ("In-place upgrade from RabbitMQ 3 to 4":
    # "If your broker is already running on an mq.m7g instance type, move to Step 2"); a size change within the family
    # rides along (refusing it would cost a maintenance window more).
    if family_of(str(deployed_type)) not in RABBITMQ_ENGINE_FAMILIES.get(wanted, ()):
        return ConfigError(file, ENGINE_KEY, (
            f"is {wanted} ({engine_set}) and {INSTANCE_KEY} moves from {deployed_type} to "
            f"{messaging.instance_type} in the same `up`: {wanted} does not run on {deployed_type}, and Amazon MQ's "
            f"upgrade changes the instance type first, applied "
            f"at a reboot or the maintenance window, and the engine version after; {unchanged}. Run `up` with "
            f"first `{INSTANCE_KEY}: {messaging.instance_type}` and `{ENGINE_KEY}: \"{deployed_engine}\"`, let it "
            f"apply (README \"Changing the broker\"), then set `{ENGINE_KEY}: \"{wanted}\"`"))
    return None


def check_engine_move(env: EnvConfig, outputs: Mapping[str, Any] | None,
                      running: tuple[str, str] | None = None, actions: Collection[str] | None = None,
                      pending_engine: str | None = None) -> None:
    """Raise :func:`engine_move_refusal`'s error, if any."""
    refusal = engine_move_refusal(env, outputs, running, actions, pending_engine)
    if refusal is not None:
        raise refusal


def pending_move_refusal(env: EnvConfig, outputs: Mapping[str, Any] | None,
                         pending: Mapping[str, str]) -> ConfigError | None:
    """Why the env's engine version cannot be asked for yet: the deployed broker (the broker stack's ``outputs``) has
    a move Amazon MQ has not applied (``pending``: DescribeBroker's ``PendingHostInstanceType`` as
    ``instance_type``, ``PendingEngineVersion`` as ``engine_version``). It applies them at a reboot or in the
    maintenance window; until then UpdateBroker judges a new engine version against the instance type and version
    the broker runs ("In-place upgrade from RabbitMQ 3 to 4": apply step 1 before step 2). None: nothing waits, or
    the env asks for no engine move."""
    pending = {key: value for key, value in pending.items() if key in ("engine_version", "instance_type")}
    if env.messaging.broker != "amazon-mq" or not outputs or not pending:
        return None
    deployed = outputs.get(ENGINE_OUTPUT)
    wanted = env.messaging.engine_version
    if deployed is None or _major_minor(wanted) <= _major_minor(str(deployed)):
        return None  # no engine upgrade asked for: a pending change is applied as Amazon MQ schedules it
    pending_engine = pending.get("engine_version")
    if pending_engine is not None and _major_minor(pending_engine) == _major_minor(wanted):
        return None  # the move asked for is the one already waiting
    waiting = ", ".join(f"{key} {value}" for key, value in sorted(pending.items()))
    broker_id = outputs.get("broker_id", "<broker id>")
    return ConfigError(str(env_path(env.name)), ENGINE_KEY, (
        f"is {wanted}, but the broker ({deployed}) has not applied what the last `up` asked for yet ({waiting}): "
        "Amazon MQ applies it at a reboot or in the maintenance window, and judges a new engine version against what "
        f"the broker runs until then, so UpdateBroker would refuse it after the configuration for {wanted} was made; "
        f"nothing was changed. Wait for the window, or reboot the broker (`aws mq reboot-broker --broker-id "
        f"{broker_id} --region {env.region}`; a single-instance broker is offline while it restarts), then run again"))


#: the layers whose security group rules name the Amazon MQ broker's group (compute's tasks, messaging's queue metrics
#: function: ``compute-tasks-to-broker``, ``queue-metrics-to-broker``)
BROKER_GROUP_REFERRERS = ("messaging", "compute")


def external_move_refusal(env: EnvConfig, read: Callable[[str], Mapping[str, Any] | None]) -> list[ConfigError]:
    """Why the env's `up` must not move a deployed Amazon MQ broker to ``messaging.broker: external`` in one run.

    The broker layer runs first: it deletes the broker, then its security group, which the rules of the later layers
    still name (EC2 DeleteSecurityGroup: a group another group's rule references fails with DependencyViolation, which
    the provider retries until its timeout). The broker layer fails with the broker gone, messaging and compute are
    skipped with their secrets and tasks on a deleted broker, and every later `up` fails the same way. Running them
    first would not help: they take the external broker's endpoints from the broker layer's outputs.
    """
    if env.messaging.broker != "external":
        return []
    broker = read("broker") or {}
    group = broker.get("broker_security_group_id")
    if not group:
        return []
    name = broker.get("broker_name") or broker.get("broker_id")
    return refuse_while_deployed(env, "messaging.broker", BROKER_GROUP_REFERRERS, read, lambda them: (
        f"is external, but the env runs an Amazon MQ broker ({name}), whose security group {group} the rules of "
        f"{them} name: the broker layer would delete the broker and then fail on its group (DependencyViolation), "
        f"leaving {them} on a deleted broker, and every later up failing alike. Move in steps: drain the queues "
        f"(README, \"Changing the broker\"), destroy {them} (`nox -s destroy -- {env.name} --layers messaging`, as "
        "README \"Where a destroy runs\" says), then up; or deploy a new env. Nothing was run"))

