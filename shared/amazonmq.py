"""Which Amazon MQ for RabbitMQ broker an env may ask for: engine version x instance type x deployment
mode, as data, so the env loader refuses an impossible broker before any layer runs.

Sources (Amazon MQ developer guide):

* "Managing Amazon MQ for RabbitMQ engine versions": AWS recommends RabbitMQ 4.2 for all brokers;
  "RabbitMQ 4" and "RabbitMQ 4.3": Amazon MQ runs 4.3 and 4.2, both only on the ``mq.m7g`` instance types (all
  sizes), and upgrades in place from 3.13 to 4.2 and from 4.2 to 4.3 only; 3.13 runs on ``mq.t3``, ``mq.m5`` and
  ``mq.m7g`` (all sizes). A new broker names only major.minor (Amazon MQ applies the patches, which is
  why RabbitMQ 3.13+ brokers need ``AutoMinorVersionUpgrade``, botocore ``mq`` CreateBrokerRequest).
* "Amazon MQ for RabbitMQ sizing guidelines" and "Maximum resource limits": the sizes per family;
  ``mq.t3.micro`` appears only in the single-instance tables (evaluation only), ``mq.m5`` and
  ``mq.m7g`` sizes in both the single-instance and the cluster tables.
* "Best practices for broker setup": a cluster deployment is three RabbitMQ nodes distributed across
  three Availability Zones.
* "Default resource limits" and "Amazon MQ for RabbitMQ maximum resource limit": what a broker holds
  (connections, channels, queues, consumers per channel, vhosts) per engine major version, deployment mode
  and instance type; :mod:`shared.broker_capacity` holds an env's peak against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shared.catalog import CONSUMER_TIMEOUT_DEFAULT_MS, CONSUMER_TIMEOUT_MAX_MS, Catalog

DeploymentMode = Literal["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"]
_BOTH: tuple[DeploymentMode, ...] = ("SINGLE_INSTANCE", "CLUSTER_MULTI_AZ")

#: RabbitMQ instance type -> the deployment modes Amazon MQ offers it in.
RABBITMQ_INSTANCE_TYPES: dict[str, tuple[DeploymentMode, ...]] = {
    "mq.t3.micro": ("SINGLE_INSTANCE",),
    **{f"mq.m5.{size}": _BOTH for size in ("large", "xlarge", "2xlarge", "4xlarge")},
    **{f"mq.m7g.{size}": _BOTH
       for size in ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")},
}

#: RabbitMQ engine version (major.minor) -> the instance families it runs on.
RABBITMQ_ENGINE_FAMILIES: dict[str, tuple[str, ...]] = {
    "4.3": ("mq.m7g",),
    "4.2": ("mq.m7g",),
    "3.13": ("mq.t3", "mq.m5", "mq.m7g"),
}

#: What the platform asks for when an env names no version / instance type (AWS's recommendation).
DEFAULT_ENGINE_VERSION = "4.2"
DEFAULT_INSTANCE_TYPE = "mq.m7g.large"

#: How long `up` waits for the broker's create, update or delete to finish. The provider's own wait is 30 minutes
#: (terraform-provider-aws mq/broker.go, Timeouts), and "AmazonMQ RabbitMQ ... takes more than 30min for a create or
#: even a broker update when a cluster requires a full reboot" (terraform-provider-aws #27035, which made it settable):
#: past the wait, the broker layer's `up` failed midway with the broker still being created.
BROKER_WAIT_MINUTES = 60

#: A RabbitMQ cluster is three nodes spread over three AZs: the platform gives its endpoint a private subnet in each
#: (:func:`cluster_zones_problem` says why; Amazon MQ itself takes one).
CLUSTER_AZS = 3


@dataclass(frozen=True)
class BrokerLimits:
    """What Amazon MQ lets one RabbitMQ broker hold. ``connections`` and ``channels`` are per node (a cluster has
    :data:`CLUSTER_AZS` nodes); ``queues`` and ``vhosts`` per broker, a cluster's included (RabbitMQ "Limits"
    guide: ``cluster_queue_limit`` and ``vhost_max`` are cluster-wide, ``connection_max`` and
    ``channel_max_per_node`` per node); ``consumers_per_channel`` per channel. ``vhosts`` is None where AWS's
    table lists none."""

    connections: int
    channels: int
    queues: int
    consumers_per_channel: int
    vhosts: int | None


_S, _C = "SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"
_M7G = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_M5 = ("large", "xlarge", "2xlarge", "4xlarge")


def _table(mode: str, family: str, sizes: tuple[str, ...],
           rows: tuple[tuple[int, int, int, int, int | None], ...]) -> dict[tuple[str, str], BrokerLimits]:
    """(mode, instance type) -> limits, from one of AWS's tables: rows of (connections, channels, queues, consumers
    per channel, vhosts) in ``sizes`` order (``strict``: a row too many or too few is an error)."""
    return {(mode, f"{family}.{size}"): BrokerLimits(*row) for size, row in zip(sizes, rows, strict=True)}


#: The most a RabbitMQ broker of each deployment mode x instance type may be configured to hold: what RabbitMQ 3.x
#: brokers run with (Amazon MQ developer guide, "Default resource limits": "Amazon MQ for RabbitMQ 3 brokers, the
#: default is configured with the maximum resource limit" and cannot be overridden), and the bound of RabbitMQ 4's
#: configurable limits. Amazon MQ developer guide, "Amazon MQ for RabbitMQ maximum resource limit" (m7g and m5 tables;
#: an m5 cluster's connections and channels per node) and "Amazon MQ for RabbitMQ sizing guidelines" (t3.micro).
#: The m7g rows are that page's current tables (columns "Connections per Node", "Exchanges", "Message Size"), which
#: the sizing guidelines now link; an older version of the m7g tables, in the sizing guidelines themselves, gave
#: mq.m7g.medium 100 connections and 500 channels (a cluster 100 queues), the figures now RabbitMQ 4.2's defaults.
RABBITMQ_MAXIMUM_LIMITS: dict[tuple[str, str], BrokerLimits] = {
    **_table(_S, "mq.m7g", _M7G, (
        (300, 900, 2_500, 1_000, 10), (5_000, 15_000, 20_000, 1_000, 1_500), (10_000, 30_000, 30_000, 1_000, 1_500),
        (20_000, 60_000, 40_000, 1_000, 1_500), (40_000, 120_000, 60_000, 1_000, 1_500),
        (80_000, 240_000, 80_000, 1_000, 1_500), (120_000, 360_000, 100_000, 1_000, 1_500),
        (160_000, 480_000, 120_000, 1_000, 1_500))),
    **_table(_C, "mq.m7g", _M7G, (
        (300, 900, 500, 1_000, 10), (5_000, 15_000, 10_000, 1_000, 1_500), (10_000, 30_000, 15_000, 1_000, 1_500),
        (20_000, 60_000, 20_000, 1_000, 1_500), (40_000, 120_000, 30_000, 1_000, 1_500),
        (80_000, 240_000, 40_000, 1_000, 1_500), (120_000, 360_000, 50_000, 1_000, 1_500),
        (160_000, 480_000, 60_000, 1_000, 1_500))),
    **_table(_S, "mq.m5", _M5, (
        (5_000, 15_000, 30_000, 1_000, 1_500), (10_000, 30_000, 60_000, 1_000, 1_500),
        (20_000, 60_000, 120_000, 1_000, 1_500), (40_000, 120_000, 240_000, 1_000, 1_000))),
    **_table(_C, "mq.m5", _M5, (
        (5_000, 15_000, 10_000, 1_000, None), (10_000, 30_000, 15_000, 1_000, None),
        (20_000, 60_000, 20_000, 1_000, None), (40_000, 120_000, 30_000, 1_000, None))),
    **_table(_S, "mq.t3", ("micro",), ((500, 1_500, 2_500, 1_000, None),)),
}

#: What a RabbitMQ 4 broker of each deployment mode x instance type holds as created: Amazon MQ's default resource
#: limits, lower than the maximum, raised only by the broker's configuration (``connection_max``,
#: ``channel_max_per_node``, ``cluster_queue_limit``, ``consumer_max_per_channel``, ``vhost_max``; AWS: "Resource
#: Limit Configuration"), which the platform does not set (README, "Changing the broker": AWS sizes brokers on
#: these). Amazon MQ developer guide, "Default resource limits" (RabbitMQ 4.2, m7g single-instance and cluster).
RABBITMQ4_DEFAULT_LIMITS: dict[tuple[str, str], BrokerLimits] = {
    **_table(_S, "mq.m7g", _M7G, (
        (100, 500, 500, 10, 10), (1_500, 4_500, 1_000, 10, 50), (3_000, 9_000, 2_000, 10, 100),
        (6_000, 18_000, 4_000, 10, 150), (12_000, 36_000, 8_000, 10, 200), (24_000, 72_000, 16_000, 10, 250),
        (36_000, 108_000, 24_000, 10, 300), (48_000, 144_000, 32_000, 10, 350))),
    **_table(_C, "mq.m7g", _M7G, (
        (100, 300, 100, 10, 10), (500, 1_500, 1_000, 10, 50), (1_000, 3_000, 2_000, 10, 100),
        (2_000, 6_000, 4_000, 10, 150), (4_000, 12_000, 8_000, 10, 200), (8_000, 24_000, 16_000, 10, 250),
        (12_000, 36_000, 24_000, 10, 300), (16_000, 48_000, 32_000, 10, 350))),
}

#: RabbitMQ nodes per deployment mode ("Best practices for broker setup": a cluster is three nodes in three AZs).
BROKER_NODES: dict[str, int] = {_S: 1, _C: 3}


def broker_limits(engine_version: str, instance_type: str, deployment_mode: str) -> BrokerLimits | None:
    """The limits a broker of this engine version, type and mode runs with: RabbitMQ 4's defaults, 3.x's maximum
    (None: a combination Amazon MQ does not offer, which :func:`broker_problems` names)."""
    if broker_problems(engine_version, instance_type, deployment_mode):
        return None
    table = RABBITMQ4_DEFAULT_LIMITS if engine_at_least(engine_version, (4,)) else RABBITMQ_MAXIMUM_LIMITS
    return table.get((deployment_mode, instance_type))


#: The largest message a RabbitMQ broker accepts (``max_message_size``, bytes), by engine major version; a bigger
#: publish closes the channel ("PRECONDITION_FAILED - message size ... is larger than configured max size",
#: "maximum resource limit", error messages). RabbitMQ 4: Amazon MQ's default, 512 KiB on every m7g row of "Default
#: resource limits" (the platform does not raise it, as with the other limits); RabbitMQ 3: the maximum, 128 MiB
#: (the m7g rows of "maximum resource limit"). The image contract states it (README, "What a service's image must
#: provide").
RABBITMQ_MAX_MESSAGE_BYTES: dict[int, int] = {4: 524_288, 3: 134_217_728}


def max_message_bytes(engine_version: str) -> int:
    """The largest message a broker of ``engine_version`` accepts (:data:`RABBITMQ_MAX_MESSAGE_BYTES`)."""
    return RABBITMQ_MAX_MESSAGE_BYTES[4 if engine_at_least(engine_version, (4,)) else 3]


def family_of(instance_type: str) -> str:
    """``mq.m7g.large`` -> ``mq.m7g``."""
    return instance_type.rsplit(".", 1)[0]


def instance_types_for(engine_version: str, deployment_mode: str) -> list[str]:
    """Every instance type that runs ``engine_version`` in ``deployment_mode`` (table order)."""
    families = RABBITMQ_ENGINE_FAMILIES.get(engine_version, ())
    return [name for name, modes in RABBITMQ_INSTANCE_TYPES.items()
            if family_of(name) in families and deployment_mode in modes]


def broker_problems(engine_version: str, instance_type: str, deployment_mode: str) -> list[tuple[str, str]]:
    """``(key under messaging, reason)`` for each way the combination is not one Amazon MQ offers;
    each reason names the valid choices."""
    problems: list[tuple[str, str]] = []
    if engine_version not in RABBITMQ_ENGINE_FAMILIES:
        problems.append(("engine_version",
                         f"Amazon MQ for RabbitMQ offers engine versions {', '.join(RABBITMQ_ENGINE_FAMILIES)} "
                         f"(major.minor; AWS recommends {DEFAULT_ENGINE_VERSION}), not {engine_version!r}"))
    if instance_type not in RABBITMQ_INSTANCE_TYPES:
        problems.append(("instance_type",
                         f"{instance_type!r} is not an Amazon MQ for RabbitMQ instance type (one of "
                         f"{', '.join(RABBITMQ_INSTANCE_TYPES)})"))
    if problems:
        return problems
    families = RABBITMQ_ENGINE_FAMILIES[engine_version]
    if family_of(instance_type) not in families:
        valid = instance_types_for(engine_version, deployment_mode)
        engines = [v for v, runs_on in RABBITMQ_ENGINE_FAMILIES.items() if family_of(instance_type) in runs_on]
        problems.append(("instance_type",
                         f"RabbitMQ {engine_version} runs only on {', '.join(f + '.*' for f in families)}, not "
                         f"{instance_type} (valid with {deployment_mode}: {', '.join(valid)}; or keep "
                         f"{instance_type} with engine_version {' or '.join(engines)})"))
    elif deployment_mode not in RABBITMQ_INSTANCE_TYPES[instance_type]:
        valid = instance_types_for(engine_version, deployment_mode)
        problems.append(("deployment_mode",
                         f"{instance_type} is offered only as {', '.join(RABBITMQ_INSTANCE_TYPES[instance_type])}; "
                         f"a {deployment_mode} broker on RabbitMQ {engine_version} needs one of: {', '.join(valid)}"))
    return problems


def cluster_zones_problem(deployment_mode: str, zones: int, counted: str) -> str | None:
    """Why the platform does not place a broker of ``deployment_mode`` in ``zones`` availability zones, one private
    subnet each (None: it does); ``counted`` names what gave the number. One rule for the env loader
    (network.az_count) and the broker component (its private subnets).

    The platform's rule, not Amazon MQ's: a private cluster needs only one subnet (botocore mq CreateBrokerRequest
    SubnetIds: "Deployment without public accessibility requires at least one subnet"), but then its endpoint
    lives in fewer AZs than its three nodes, and a subnet added later replaces the broker (subnet_ids forces a new
    one: :func:`shared.components.broker.broker_subnets`). So a cluster gets an endpoint subnet in three AZs from
    its creation on."""
    if deployment_mode != "CLUSTER_MULTI_AZ" or zones >= CLUSTER_AZS:
        return None
    return (f"CLUSTER_MULTI_AZ runs three nodes in {CLUSTER_AZS} availability zones, and the platform gives its "
            f"endpoint a private subnet in each of them from the start (a subnet added later would replace the "
            f"broker and lose its queues), but {counted} is {zones} (raise it to {CLUSTER_AZS}, or use "
            "SINGLE_INSTANCE)")


def rabbitmq_conf(consumer_timeout_ms: int) -> str:
    """The broker configuration's data: rabbitmq.conf (Cuttlefish) lines, as Amazon MQ stores and returns them
    (the rehearsal's local node runs with the same lines).

    Only keys Amazon MQ lets a configuration set (Amazon MQ developer guide, "Configurable values for RabbitMQ on
    Amazon MQ": consumer_timeout, 0 to 2,147,483,647 ms, all versions). One ``key = value`` line ending in a
    newline: the form the provider's own RabbitMQ configuration test applies and reads back unchanged, so a
    second ``up`` finds no difference (a difference would make a new revision on every run)."""
    if not 1 <= consumer_timeout_ms <= CONSUMER_TIMEOUT_MAX_MS:
        raise ValueError(f"consumer_timeout {consumer_timeout_ms} ms is outside 1 to {CONSUMER_TIMEOUT_MAX_MS} ms")
    return f"consumer_timeout = {consumer_timeout_ms}\n"


#: Amazon MQ turns off changes to operator policies through the management API unless the broker's configuration
#: turns them back on (Amazon MQ developer guide, "Configurable values": management.restrictions.
#: operator_policy_changes.disabled, default true, all versions; "Configuring operator policies"). Left off, the
#: broker answers every /api/operator-policies request with 405 ("Broker settings disallow editing of operator
#: policies": rabbitmq_management rabbit_mgmt_wm_operator_policy), so the messaging layer's first `up` could not
#: create its length limits (the limits-* operator policies).
OPERATOR_POLICY_CHANGES = "management.restrictions.operator_policy_changes.disabled = false\n"


def amazon_mq_rabbitmq_conf(consumer_timeout_ms: int) -> str:
    """The Amazon MQ configuration's data: :func:`rabbitmq_conf` and :data:`OPERATOR_POLICY_CHANGES`. Not for the
    rehearsal's local node: upstream RabbitMQ allows the changes by default, and Debian's 3.10.8 has no such key
    (its management schema lacks it; an unknown key stops the node)."""
    return rabbitmq_conf(consumer_timeout_ms) + OPERATOR_POLICY_CHANGES


#: The first RabbitMQ release whose queues take a ``consumer-timeout`` policy key (and ``x-consumer-timeout``
#: argument): 3.12.0 (RabbitMQ 3.12.0 release notes, "Delivery acknowledgement timeout now can be configured per
#: queue (using a policy)"; no 3.11.x release has its policy validator -- rabbit_policies.erl up to v3.11.28 --
#: although RabbitMQ's "Consumers" guide says 3.11.15). An older node refuses the key ("... are not recognised
#: policy settings": Debian's 3.10 answers the management API's PUT so), and `up` fails on the messaging layer.
PER_QUEUE_CONSUMER_TIMEOUT_SINCE = (3, 12, 0)


def engine_tuple(engine_version: str) -> tuple[int, ...]:
    """``"4.2"`` -> ``(4, 2)``, ``"3.12.14"`` -> ``(3, 12, 14)``: the numbers of a version string."""
    return tuple(int(part) for part in re.findall(r"\d+", engine_version)[:3])


def engine_at_least(engine_version: str, since: tuple[int, ...]) -> bool:
    """Whether ``engine_version`` is ``since`` or later; a major.minor version stands for its oldest patch
    (``"3.13"`` is 3.13.0)."""
    return (*engine_tuple(engine_version), 0, 0, 0)[:3] >= (*since, 0, 0, 0)[:3]


def per_queue_consumer_timeout(engine_version: str) -> bool:
    """Whether a broker of ``engine_version`` applies a queue's ``consumer-timeout`` policy key. A major.minor
    version stands for its oldest patch; ``3.11.x`` says no (3.12.0 on has it); every Amazon MQ version
    (3.13, 4.2, 4.3) says yes. On those brokers the queue's value replaces the broker-wide ``consumer_timeout``, longer
    or shorter (rabbit_channel ``get_queue_consumer_timeout``: the queue's policy/argument, else the global)."""
    return engine_at_least(engine_version, PER_QUEUE_CONSUMER_TIMEOUT_SINCE)


def broker_consumer_timeout_ms(catalog: Catalog, engine_version: str) -> int:
    """The broker-wide ``consumer_timeout`` an env's broker needs: Amazon MQ's default (30 minutes), the bound of
    the short jobs, where each work queue carries its own timeout (:func:`per_queue_consumer_timeout`); the
    catalog's longest job where the engine cannot (then one value covers every service)."""
    if per_queue_consumer_timeout(engine_version):
        return CONSUMER_TIMEOUT_DEFAULT_MS
    return catalog.consumer_timeout_ms()
