"""Would the env's Amazon MQ for RabbitMQ broker hold what the env runs at its peak?

The broker refuses what is past its limits (:class:`shared.amazonmq.BrokerLimits`): a connection past
``connection_max`` is closed ("node connection limit (N) is reached"), a channel past ``channel_max_per_node``
closes its connection, a queue past ``cluster_queue_limit`` is not declared (Amazon MQ developer guide, "Amazon MQ
for RabbitMQ maximum resource limit", error messages). A service that scales out past them loses its new tasks'
connections while ECS believes it scaled. So the env loader holds the env's need against the limits of its broker
(:func:`capacity_problems`, exit 2) and says so when the peak comes close (:func:`capacity_notes`); the broker
layer alarms when the broker's own counts approach them (shared.components.alarms ``capacity_alarms``).

**The need.** Every released service that publishes or consumes at its ``max_count`` (each App Mesh canary version
is an ECS service of its own, with its own ``max_count``), times what one task opens by the platform's image
contract (README, "What a service's image must provide"): one AMQP connection to publish when it publishes and one
to consume when it consumes (RabbitMQ's "Connections" and "Alarms" guides: publishers and consumers on separate
connections, since flow control blocks a publishing connection and would stall the deliveries on it), at most
:data:`CHANNELS_PER_CONNECTION` channels on each, one consumer per channel (its own work queue). The platform's own
clients open none: the RabbitMQ provider (during ``up`` of messaging), the queue metrics publisher and the broker
admin's rotation function all speak the management HTTP API, which RabbitMQ does not count as client connections
(RabbitMQ "Limits" guide: ``connection_max`` counts client connections, only ``ranch_connection_max`` counts HTTP
API ones, and that one is not among the limits of Amazon MQ's "Resource Limit Configuration"). Queues: each
consuming service's work queue and DLQ (the messaging layer declares no other; services declare none, their
configure permission is ``^$``), whether released or not. Vhosts: the env's own and Amazon MQ's default ``/``.

**A cluster.** Connections and channels are limited per node, and clients reach a node through the broker's one
endpoint, which does not promise an even spread (Amazon MQ's maximum-limits guide: "the exact limit values for a
cluster broker may be lower than the indicated value depending on the number of available nodes and how RabbitMQ
distributes resources"). Certain, and refused: a need above the limit times all three nodes, which no spread can
hold. Conservative, and noted: the need against the limit times two nodes, what remains while one node is down
(a failure, or a node restarted in maintenance), whose clients reconnect to the other two.

**RabbitMQ 4.2** brokers run Amazon MQ's default limits, lower than the maximum ("Default resource limits"). The
platform holds the need against those and does not raise them in the broker's configuration, although the keys
exist (``connection_max``, ``channel_max_per_node``, ``cluster_queue_limit``, ...; "Resource Limit Configuration";
a value above the maximum fails CreateBroker / UpdateBroker): AWS sizes RabbitMQ 4 brokers on the defaults
("sizing guidelines": "Always use the default resource limits on RabbitMQ 4 broker to determine the appropriate
instance size ... we strongly recommend you test the broker performance with the increased values"), and on a
running broker a raised limit is a new configuration revision, pending until the broker's next reboot (README,
"Changing the broker"), so the check would have to tell the limits the broker runs from those it will run. The
resolution is a bigger instance type (the defaults scale with it) or smaller ``max_count``s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.amazonmq import BROKER_NODES, BrokerLimits, broker_limits, engine_tuple
from shared.aws_limits import task_units
from shared.catalog import Catalog
from shared.envs import EnvConfig
from shared.errors import ConfigError
from shared.fargate import DEPLOYMENT_MAXIMUM_PERCENT  # the old tasks keep their connections until they stop

#: The image contract: channels one AMQP connection of a task opens at most (README, "What a service's image must
#: provide"): one to publish (with confirms) and one spare, or the one its consumer consumes on.
CHANNELS_PER_CONNECTION = 2
#: The image contract: consumers a task opens on one channel (its own work queue, once).
CONSUMERS_PER_CHANNEL = 1
#: The vhosts of an env's broker: the platform's (shared.components.messaging.vhost_name) and Amazon MQ's ``/``.
VHOSTS = 2
#: A peak above this share of what the broker holds is noted (and the broker layer's capacity alarms fire at it).
NOTE_PERCENT = 80


@dataclass(frozen=True)
class ServiceNeed:
    """One service's AMQP clients with every ECS service of it at ``max_count``."""

    service: str
    tasks: int
    connections_per_task: int

    @property
    def connections(self) -> int:
        return self.tasks * self.connections_per_task

    @property
    def channels(self) -> int:
        return self.connections * CHANNELS_PER_CONNECTION


@dataclass(frozen=True)
class BrokerNeed:
    services: tuple[ServiceNeed, ...]
    queues: int
    vhosts: int = VHOSTS

    @property
    def connections(self) -> int:
        return sum(need.connections for need in self.services)

    @property
    def channels(self) -> int:
        return sum(need.channels for need in self.services)

    def breakdown(self, what: str) -> str:
        """``gateway 9 tasks x 2, ...`` for ``connections`` or ``channels``, largest first."""
        per_task = {"connections": 1, "channels": CHANNELS_PER_CONNECTION}[what]
        ranked = sorted(self.services, key=lambda need: (-getattr(need, what), need.service))
        return ", ".join(f"{need.service} {need.tasks} tasks x {need.connections_per_task * per_task}"
                         for need in ranked)


def task_connections(publishes: bool, consumes: bool) -> int:
    """AMQP connections one task opens by the image contract: one to publish, one to consume."""
    return int(publishes) + int(consumes)


def broker_need(env: EnvConfig, catalog: Catalog) -> BrokerNeed:
    """What the env asks of its broker with every released service at ``max_count``."""
    services = []
    for spec in catalog:
        if not spec.uses_messaging or spec.name not in env.release.images:
            continue  # an unreleased service runs no task (compute creates its repository only)
        tasks = env.service_settings(spec.name).max_count * task_units(env, spec.name)
        services.append(ServiceNeed(spec.name, tasks, task_connections(bool(spec.publishes), bool(spec.consumes))))
    queues = sum(2 for spec in catalog if spec.queue)  # its work queue and its DLQ
    return BrokerNeed(services=tuple(services), queues=queues)


def usable_nodes(deployment_mode: str) -> int:
    """The nodes the conservative sizing counts on: all of a single instance, a cluster less one node."""
    nodes = BROKER_NODES[deployment_mode]
    return max(1, nodes - 1)


def _limits(env: EnvConfig) -> BrokerLimits | None:
    messaging = env.messaging
    if messaging.broker != "amazon-mq":
        return None  # an external broker's limits are its operator's
    return broker_limits(messaging.engine_version, messaging.instance_type, messaging.deployment_mode)


def _what(env: EnvConfig) -> str:
    messaging = env.messaging
    return f"{messaging.instance_type} {messaging.deployment_mode} on RabbitMQ {messaging.engine_version}"


#: What resolves a peak past (or close to) the broker's connections or channels.
_FIX = ("choose a bigger messaging.instance_type (its limits grow with its size) or lower the services' "
        "max_count (README, \"Changing the broker\")")


def capacity_problems(env: EnvConfig, catalog: Catalog) -> list[tuple[str, str]]:
    """``(key, reason)`` for each limit of the env's broker its need certainly exceeds (empty: none, or an
    external broker, or a broker Amazon MQ does not offer, which :func:`shared.amazonmq.broker_problems` names)."""
    limits = _limits(env)
    return [] if limits is None else _problems(env, limits, broker_need(env, catalog))


def _problems(env: EnvConfig, limits: BrokerLimits, need: BrokerNeed) -> list[tuple[str, str]]:
    nodes = BROKER_NODES[env.messaging.deployment_mode]
    per_node = f" per node x {nodes} nodes" if nodes > 1 else ""
    problems: list[tuple[str, str]] = []
    for what, needed, limit in (("connections", need.connections, limits.connections),
                                ("channels", need.channels, limits.channels)):
        if needed > limit * nodes:
            problems.append(("messaging.instance_type", (
                f"{_what(env)} holds {limit} AMQP {what}{per_node}, but the services at max_count open {needed} "
                f"({need.breakdown(what)}; the image contract: one connection to publish and one to consume per "
                f"task, {CHANNELS_PER_CONNECTION} channels each); {_FIX}")))
    if need.queues > limits.queues:
        problems.append(("messaging.instance_type", (
            f"{_what(env)} holds {limits.queues} queues, but the catalog's consumers need {need.queues} (a work "
            f"queue and a DLQ each); choose a bigger messaging.instance_type")))
    if CONSUMERS_PER_CHANNEL > limits.consumers_per_channel:
        problems.append(("messaging.instance_type", (
            f"{_what(env)} allows {limits.consumers_per_channel} consumers per channel, but a task opens "
            f"{CONSUMERS_PER_CHANNEL}")))
    if limits.vhosts is not None and need.vhosts > limits.vhosts:
        problems.append(("messaging.instance_type", (
            f"{_what(env)} holds {limits.vhosts} vhosts, but the env needs {need.vhosts} (its own and /)")))
    return problems


def capacity_notes(env: EnvConfig, catalog: Catalog) -> list[str]:
    """What is close to the broker's limits without certainly exceeding them: a peak above :data:`NOTE_PERCENT`
    of what the broker holds (a cluster counted with one node down), or a rolling deployment of every service at
    ``max_count`` (:data:`DEPLOYMENT_MAXIMUM_PERCENT`) above it."""
    limits = _limits(env)
    if limits is None:
        return []
    need = broker_need(env, catalog)
    if _problems(env, limits, need):
        return []
    usable = usable_nodes(env.messaging.deployment_mode)
    counted = f" ({usable} of {BROKER_NODES[env.messaging.deployment_mode]} nodes: one may be down)" if (
        usable > 1) else ""
    notes = []
    for what, needed, limit in (("connections", need.connections, limits.connections),
                                ("channels", need.channels, limits.channels)):
        holds = limit * usable
        deploying = math.ceil(needed * DEPLOYMENT_MAXIMUM_PERCENT / 100)
        if needed * 100 > holds * NOTE_PERCENT:
            notes.append(f"messaging.instance_type: the services at max_count open {needed} AMQP {what}, "
                         f"{needed * 100 // holds}% of the {holds} {_what(env)} holds{counted}; {_FIX}")
        elif deploying > holds:
            notes.append(f"messaging.instance_type: a rolling deployment with the services at max_count opens up to "
                         f"{deploying} AMQP {what} ({DEPLOYMENT_MAXIMUM_PERCENT}% of the tasks), above the {holds} "
                         f"{_what(env)} holds{counted}; {_FIX}")
    if need.queues * 100 > limits.queues * NOTE_PERCENT:
        notes.append(f"messaging.instance_type: the catalog's consumers need {need.queues} queues, "
                     f"{need.queues * 100 // limits.queues}% of the {limits.queues} {_what(env)} holds")
    return notes


def alarm_thresholds(engine_version: str, instance_type: str, deployment_mode: str) -> dict[str, int]:
    """The broker-level count (``AWS/AmazonMQ`` metric, for a cluster the sum over its nodes) at which the broker
    layer's capacity alarms fire: :data:`NOTE_PERCENT` of what the broker holds, a cluster counted with one node
    down (empty: no limits known)."""
    limits = broker_limits(engine_version, instance_type, deployment_mode)
    if limits is None:
        return {}
    usable = usable_nodes(deployment_mode)
    return {"ConnectionCount": limits.connections * usable * NOTE_PERCENT // 100,
            "ChannelCount": limits.channels * usable * NOTE_PERCENT // 100,
            "QueueCount": limits.queues * NOTE_PERCENT // 100}


#: The environment variable through which the orchestrator hands the broker program what the env's broker runs now
#: (DescribeBroker ``HostInstanceType`` and ``EngineVersion``, read by its preflight): ``"<instance type> <engine>"``,
#: followed by ``" pending <engine>"`` where the broker has an engine version it has not applied yet
#: (``PendingEngineVersion``; none named: nothing pending, for the same DescribeBroker told both).
RUNNING_BROKER_VARIABLE = "PLATFORM_BROKER_RUNNING"


def running_broker_value(instance_type: str, engine_version: str, pending_engine: str | None = None) -> str:
    """:data:`RUNNING_BROKER_VARIABLE`'s value: the engines as major.minor (DescribeBroker names the patch, 3.13.7;
    the limits are per major.minor)."""
    value = f"{instance_type} {major_minor(engine_version)}"
    return f"{value} pending {major_minor(pending_engine)}" if pending_engine else value


def major_minor(version: str) -> str:
    """``version`` as major.minor (3.13.7 -> 3.13)."""
    return ".".join(map(str, engine_tuple(version)[:2]))


#: :data:`RUNNING_BROKER_VARIABLE`'s form: an Amazon MQ instance type (botocore mq ``HostInstanceType``, mq.m7g.large)
#: and an engine version, of which its major.minor counts, then maybe the engine version pending
_RUNNING_BROKER = re.compile(r"(mq\.[a-z0-9]+\.[a-z0-9]+) (\d+\.\d+)(?:\.\d+)?(?: pending (\d+\.\d+)(?:\.\d+)?)?")


def _running_broker_match(environ: Mapping[str, str]) -> re.Match[str] | None:
    value = environ.get(RUNNING_BROKER_VARIABLE, "").strip()
    if not value:
        return None
    found = _RUNNING_BROKER.fullmatch(value)
    if found is None:
        raise ConfigError(RUNNING_BROKER_VARIABLE, "(environment variable)",
                          f"{value!r} is not '<instance type> <engine major.minor>' (as 'mq.m7g.large 4.2', or "
                          "'mq.m7g.large 3.13 pending 4.2': what the broker runs, DescribeBroker HostInstanceType and "
                          "EngineVersion, and PendingEngineVersion, which `nox -s up` and `preview` hand the broker "
                          "program); unset it and the capacity alarms take the env's messaging.instance_type and "
                          "engine_version")
    return found


def running_broker(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(instance type, engine major.minor) the broker runs, from :data:`RUNNING_BROKER_VARIABLE`; None: not handed
    over (a ``pulumi up`` run without the orchestrator, a broker not read or not created yet). A value of another
    form is a :class:`~shared.errors.ConfigError` naming the variable (set by hand: the alarms would silently take
    the env's figures, or a broker's limits misread)."""
    found = _running_broker_match(environ)
    return None if found is None else (found.group(1), found.group(2))


def pending_engine(environ: Mapping[str, str]) -> str | None:
    """The engine major.minor the broker has pending, from :data:`RUNNING_BROKER_VARIABLE`; None: nothing pending,
    or nothing handed over (then :func:`running_broker` is None too)."""
    found = _running_broker_match(environ)
    return None if found is None else found.group(3)
