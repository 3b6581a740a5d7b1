"""CloudWatch alarms of an env and the one SNS topic they notify.

:class:`AlarmTopic` is the env's notification topic (KMS-encrypted with its own key, subscriptions
from ``alarms`` in the env file). The alarm specs are pure functions of names and thresholds
(:func:`queue_alarms`, :func:`broker_alarms`, :func:`rotation_alarms`, :func:`service_alarms`,
:func:`gateway_alarms`, :func:`certificate_alarms`), and
:class:`MetricAlarms` turns specs into ``aws.cloudwatch.MetricAlarm`` resources. Each layer builds
the alarms of the resources it owns, next to them, so alarms move with their resources.

Alarm names are deterministic, ``<env>-ml-<what>-<subject>`` (unique per region, as CloudWatch
requires), and every alarm notifies the topic on ALARM and on OK. Constraints from CloudWatch's
PutMetricAlarm (botocore ``cloudwatch`` service-2.json): a period is 10, 20, 30 or a multiple of 60; a
metric-math alarm names no metric itself and exactly one of its queries has ``ReturnData`` (query
ids start with a lower-case letter); at most 5 actions per state; names 1-255 characters.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws

from shared.amazonmq import BROKER_NODES, engine_at_least
from shared.broker_capacity import NOTE_PERCENT, alarm_thresholds, usable_nodes
from shared.cloudwatch_metrics import (
    AMAZON_MQ_NAMESPACE,
    APPLICATION_ELB_NAMESPACE,
    BACKLOG_OUT_PERIODS,
    BROKER_LOGS_NAMESPACE,
    CERTIFICATE_MANAGER_NAMESPACE,
    CONTAINER_INSIGHTS_NAMESPACE,
    DAYS_TO_EXPIRY_METRIC,
    EVENTS_NAMESPACE,
    FAILED_INVOCATIONS_METRIC,
    LAMBDA_NAMESPACE,
    NOTIFICATIONS_FAILED_METRIC,
    QUEUE_CONSUMERS_METRIC,
    QUEUE_READY_METRIC,
    RESOURCE_ALARMS_METRIC,
    SNS_NAMESPACE,
    TASK_GROUP_DIMENSION,
    TASK_STOPS_METRIC,
    TASK_STOPS_NAMESPACE,
)
from shared.components.building_blocks import customer_key
from shared.components.compute_containers import InRegion
from shared.components.compute_iam import customer_key_policy
from shared.components.compute_plan import serve_gated
from shared.components.task_stops import task_group
from shared.envs import DEPLOY_OVERHEAD_SECONDS, AlarmsConfig, AlarmSubscription, EnvConfig
from shared.mesh_names import unit_name
from shared.synth.mocks import ResourceMock, register_mock

if TYPE_CHECKING:
    from shared.catalog import Catalog
    from shared.components.compute import ComputePlatform


_QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
_ALARM_NAME = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric series: its namespace and name, the statistic taken of it, and its dimensions."""

    namespace: str
    name: str
    statistic: str = "Maximum"
    dimensions: dict[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """One query of a metric-math alarm: a metric (``metric`` set) or an expression over other ids."""

    id: str
    label: str
    metric: Metric | None = None
    expression: str | None = None
    return_data: bool = False


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    description: str
    comparison: str
    threshold: float
    treat_missing_data: str
    """Chosen per alarm: what silence from the metric means for that resource (see each builder)."""
    period: int
    evaluation_periods: int
    metric: Metric | None = None
    """The one metric the alarm watches; None: ``queries``, metric math."""
    queries: tuple[Query, ...] = ()

    def __post_init__(self) -> None:
        if not _ALARM_NAME.match(self.name):
            raise ValueError(f"alarm name {self.name!r} must be 1-255 characters of [A-Za-z0-9._-]")
        if self.treat_missing_data not in ("breaching", "notBreaching", "ignore", "missing"):
            raise ValueError(f"{self.name}: treat_missing_data {self.treat_missing_data!r}")
        if self.period not in (10, 20, 30) and self.period % 60:
            raise ValueError(f"{self.name}: period {self.period} is not 10, 20, 30 or a multiple of 60")
        window = self.period * self.evaluation_periods
        if window > 604_800 or (self.period < 3600 and window > 86_400):
            raise ValueError(f"{self.name}: period x evaluation periods = {window} s is longer than CloudWatch allows "
                             "(one day below a one-hour period, seven days at most)")
        if bool(self.queries) == bool(self.metric):
            raise ValueError(f"{self.name}: either one metric or metric-math queries, not both or neither")
        if self.queries:
            if sum(query.return_data for query in self.queries) != 1:
                raise ValueError(f"{self.name}: exactly one query must return data")
            ids = [query.id for query in self.queries]
            if len(set(ids)) != len(ids) or not all(_QUERY_ID.match(i) for i in ids):
                raise ValueError(f"{self.name}: query ids must be unique and match {_QUERY_ID.pattern}")


def metric_query(query_id: str, namespace: str, name: str, dimensions: dict[str, pulumi.Input[str]],
                 stat: str) -> Query:
    """A metric-math query of one metric, labelled with the metric's name."""
    return Query(id=query_id, label=name, metric=Metric(namespace, name, stat, dimensions))


def name_prefix(env_name: str) -> str:
    """``<env>-ml-``: every alarm's and EventBridge rule's name of the env begins so (the topic policy's
    ``aws:SourceArn`` conditions and the deploy role's EventBridge grant match on it)."""
    return f"{env_name}-ml-"


def alarm_name(env_name: str, what: str, subject: str) -> str:
    return f"{name_prefix(env_name)}{what}-{subject}".replace("/", "-")


def occurrence_alarm(name: str, description: str, settings: AlarmsConfig, metric: Metric) -> AlarmSpec:
    """An alarm on a metric of things that should not happen at all (a failed delivery, a function error, an event
    kept undelivered): the first one in a period notifies; a metric published only when something happened is
    missing otherwise, which is notBreaching."""
    return AlarmSpec(name=name, description=description, comparison="GreaterThanOrEqualToThreshold", threshold=1,
                     treat_missing_data="notBreaching", period=settings.period_seconds, evaluation_periods=1,
                     metric=metric)


# -- the alarms, resource by resource ------------------------------------------------------------------
def amazon_mq_vends_queue_metrics(engine_version: str) -> bool:
    """Whether Amazon MQ itself publishes per-queue CloudWatch metrics (``AWS/AmazonMQ``) for a broker of
    ``engine_version``: RabbitMQ 3.x only, "Amazon MQ will not vend RabbitMQ queue metrics for RabbitMQ 4 brokers
    through AWS CloudWatch" (Amazon MQ developer guide, "Amazon MQ for RabbitMQ 4"); it recommends Prometheus for
    per-node and per-queue metrics there. Not whether the env runs the platform's own publisher
    (shared.envs.publishes_queue_metrics)."""
    return not engine_at_least(engine_version, (4,))


def queue_alarms(env_name: str, settings: AlarmsConfig, broker_name: pulumi.Input[str], vhost: str,
                 queues: dict[str, tuple[str, str]], engine_version: str = "3.13",
                 published_namespace: str | None = None,
                 starts_from_zero: Mapping[str, int] | None = None) -> list[AlarmSpec]:
    """Depth of each work queue and of its DLQ (``queues``: service -> (work queue, DLQ)), and each work queue
    holding messages with no consumer (:func:`no_consumer_alarm`; ``starts_from_zero``: service -> its
    ``startup_seconds``, for the services whose ``min_count`` is 0).

    Where the env runs the queue metrics publisher (``published_namespace``: every ``amazon-mq`` env), from its
    ``MessagesReady`` (dimensions VirtualHost, Queue), whatever the engine: messages waiting for a consumer in a
    work queue, dead letters in a DLQ. Missing data is ``missing``: a gap (the publisher down, which its own
    alarms report) shows as one, never as a quiet OK. Without it, Amazon MQ's own per-queue metric on RabbitMQ
    3.x, and on RabbitMQ 4, which publishes none, the broker's ready messages (one alarm, ``backlog``).

    Amazon MQ's RabbitMQ queue metrics: ``AWS/AmazonMQ`` ``MessageCount`` (ready + unacknowledged)
    with dimensions Broker, VirtualHost, Queue (Amazon MQ developer guide, "Available CloudWatch
    metrics for Amazon MQ for RabbitMQ brokers"). Missing data is notBreaching: no data point means
    no backlog was reported, and a silent broker is the broker alarms' business.
    """
    cold = dict(starts_from_zero or {})
    if published_namespace is not None:
        return [spec for service, (work, dead_letter) in sorted(queues.items()) for spec in (
            no_consumer_alarm(env_name, settings, service, work, published_namespace, QUEUE_READY_METRIC,
                              QUEUE_CONSUMERS_METRIC, {"VirtualHost": vhost, "Queue": work}, cold.get(service)),
            AlarmSpec(name=alarm_name(env_name, "queue-depth", service),
                      description=f"{work} has {settings.queue_depth}+ messages waiting: {service} is not keeping up "
                                  "(or not consuming: see its tasks and its backlog scaling); "
                                  + runbook("<env>-ml-queue-depth-<svc>"),
                      comparison="GreaterThanOrEqualToThreshold", threshold=settings.queue_depth,
                      treat_missing_data="missing", period=settings.period_seconds,
                      evaluation_periods=settings.evaluation_periods,
                      metric=Metric(published_namespace, QUEUE_READY_METRIC, "Maximum",
                                    {"VirtualHost": vhost, "Queue": work})),
            AlarmSpec(name=alarm_name(env_name, "dlq-depth", service),
                      description=f"{dead_letter} holds {settings.dead_letter_depth}+ dead letters: messages {service} "
                                  "rejected, that expired or exceeded the delivery limit; inspect and replay or drop "
                                  "them; " + runbook("<env>-ml-dlq-depth-<svc>"),
                      comparison="GreaterThanOrEqualToThreshold", threshold=settings.dead_letter_depth,
                      treat_missing_data="missing", period=settings.period_seconds,
                      evaluation_periods=settings.evaluation_periods,
                      metric=Metric(published_namespace, QUEUE_READY_METRIC, "Maximum",
                                    {"VirtualHost": vhost, "Queue": dead_letter})))]
    if not amazon_mq_vends_queue_metrics(engine_version):
        # A per-queue alarm would never get a data point and stay OK forever. The broker-level count is
        # published (Broker dimension); missing data is "missing" so a gap shows instead of a green alarm.
        # Dead letters of one queue cannot be told apart here: README, Alarms.
        return [AlarmSpec(
            name=alarm_name(env_name, "backlog", "broker"),
            description=f"{settings.queue_depth}+ messages are ready but not consumed across the broker's queues "
                        "(RabbitMQ 4 publishes no per-queue metric: look at the queues in the management API); "
                        + runbook("<env>-ml-backlog-broker"),
            comparison="GreaterThanOrEqualToThreshold", threshold=settings.queue_depth, treat_missing_data="missing",
            period=settings.period_seconds, evaluation_periods=settings.evaluation_periods,
            metric=Metric(AMAZON_MQ_NAMESPACE, "MessageReadyCount", "Maximum", {"Broker": broker_name}))]
    specs = []
    for service, (work, dead_letter) in sorted(queues.items()):
        specs.append(no_consumer_alarm(env_name, settings, service, work, AMAZON_MQ_NAMESPACE, "MessageReadyCount",
                                       "ConsumerCount", {"Broker": broker_name, "VirtualHost": vhost, "Queue": work},
                                       cold.get(service)))
        for queue, what, threshold, description in (
            (work, "queue-depth", settings.queue_depth,
             f"{work} holds {settings.queue_depth}+ messages: {service} is not keeping up (or not consuming); "
             + runbook("<env>-ml-queue-depth-<svc>")),
            (dead_letter, "dlq-depth", settings.dead_letter_depth,
             f"{dead_letter} holds {settings.dead_letter_depth}+ dead letters: messages {service} rejected, "
             "that expired or exceeded the delivery limit; inspect and replay or drop them; "
             + runbook("<env>-ml-dlq-depth-<svc>")),
        ):
            specs.append(AlarmSpec(
                name=alarm_name(env_name, what, service), description=description,
                comparison="GreaterThanOrEqualToThreshold", threshold=threshold, treat_missing_data="notBreaching",
                period=settings.period_seconds, evaluation_periods=settings.evaluation_periods,
                metric=Metric(AMAZON_MQ_NAMESPACE, "MessageCount", "Maximum",
                              {"Broker": broker_name, "VirtualHost": vhost, "Queue": queue})))
    return specs


#: Periods a consumer at ``min_count`` 0 needs beyond its ``startup_seconds`` before it attaches to its queue: one for
#: its backlog scale-out alarm (:data:`BACKLOG_OUT_PERIODS`, ``shared.components.compute_service``), one to place the
#: task and pull its image.
COLD_START_EXTRA_PERIODS = BACKLOG_OUT_PERIODS + 1


def no_consumer_alarm(env_name: str, settings: AlarmsConfig, service: str, queue: str, namespace: str,
                      ready_metric: str, consumers_metric: str, dimensions: dict[str, pulumi.Input[str]],
                      startup_seconds: int | None = None) -> AlarmSpec:
    """``queue`` holds messages ready for a consumer and has none, over every evaluation period: nobody will take
    them (the service's tasks all run yet none consumes: its AMQP connection lost and not re-opened, a refused
    sign-in, a consumer crashed inside a healthy process; or no task at all). The queue depth alarm waits for
    ``queue_depth`` (1000) messages, which a queue of a few jobs an hour never reaches; an idle queue (nothing
    ready) never fires this one, whatever its consumers.

    Metric math over the two series of one queue: ``IF(ready >= 1 AND consumers == 0, 1, 0)`` ≥ 1 (CloudWatch user
    guide, "Metric math syntax and functions": IF with comparison and logical operators). The queue metrics
    publisher writes ``MessagesReady`` and ``Consumers`` in one PutMetricData call, so their points share a
    minute; Amazon MQ's RabbitMQ 3.x queue series are ``MessageReadyCount`` and ``ConsumerCount`` (Broker,
    VirtualHost, Queue). Missing data is ``missing``, as for the depth alarms. A service at ``min_count`` 0
    (``startup_seconds`` given) has no consumer until its backlog starts a task, so its window is longer by its
    start-up and :data:`COLD_START_EXTRA_PERIODS`, within CloudWatch's one-day window below a one-hour period.
    """
    periods = settings.evaluation_periods
    if startup_seconds is not None:
        periods += math.ceil(startup_seconds / settings.period_seconds) + COLD_START_EXTRA_PERIODS
        if settings.period_seconds < 3600:
            periods = min(periods, 86_400 // settings.period_seconds)
    return AlarmSpec(
        name=alarm_name(env_name, "no-consumer", service),
        description=f"{queue} has held messages with no consumer for {periods * settings.period_seconds // 60} "
                    f"minutes: no {service} task takes them (its tasks, their logs, its AMQP connections); "
                    + runbook("<env>-ml-no-consumer-<svc>"),
        comparison="GreaterThanOrEqualToThreshold", threshold=1, treat_missing_data="missing",
        period=settings.period_seconds, evaluation_periods=periods,
        queries=(
            metric_query("ready", namespace, ready_metric, dimensions, "Maximum"),
            metric_query("consumers", namespace, consumers_metric, dimensions, "Maximum"),
            Query(id="waiting", label="messages ready, no consumer",
                  expression="IF(ready >= 1 AND consumers == 0, 1, 0)", return_data=True),
        ))


def starts_from_zero(env: EnvConfig, catalog: Catalog, queues: Mapping[str, object]) -> dict[str, int]:
    """The consumers of ``queues`` (service -> ...) that may run no task (``min_count`` 0) -> their start-up."""
    return {service: catalog.services[service].startup_seconds for service in sorted(queues)
            if env.service_settings(service).min_count == 0 and service in catalog.services}


def broker_alarms(env_name: str, settings: AlarmsConfig, broker_name: pulumi.Input[str]) -> list[AlarmSpec]:
    """Broker memory and disk against the limits at which RabbitMQ blocks every publisher.

    ``RabbitMQMemUsed`` / ``RabbitMQMemLimit`` and ``RabbitMQDiskFree`` / ``RabbitMQDiskFreeLimit``
    (bytes) with dimension Broker; for a cluster each is the sum over its nodes (Amazon MQ developer
    guide, RabbitMQ broker metrics; the high-memory and disk-limit alarms of its troubleshooting guide).
    Ratios by metric math. Missing data is breaching: a broker that stops reporting its own memory
    and disk is down or unreachable, which is worth a notification too. On a cluster the sums can hide
    one node past its limit behind the others' headroom; the per-node series (dimensions Broker, Node)
    are named after hosts known only once the broker runs, so no alarm can name them here.
    """
    period, periods = settings.period_seconds, settings.evaluation_periods

    def metric(query_id: str, name: str) -> Query:
        return metric_query(query_id, AMAZON_MQ_NAMESPACE, name, {"Broker": broker_name}, "Maximum")

    def against_limit(resource: str, description: str, comparison: str, threshold: float, measured: Query,
                      limit_metric: str, result: tuple[str, str, str]) -> AlarmSpec:
        """The alarm on ``result`` (id, label, expression), metric math over the ``measured`` metric and the
        broker's ``limit_metric`` for it; ``description`` ends with its runbook entry."""
        result_id, label, expression = result
        return AlarmSpec(
            name=alarm_name(env_name, "broker", resource),
            description=description + runbook(f"<env>-ml-broker-{resource}"), comparison=comparison,
            threshold=threshold, treat_missing_data="breaching", period=period, evaluation_periods=periods,
            queries=(measured, metric("limit", limit_metric),
                     Query(id=result_id, label=label, expression=expression, return_data=True)))

    return [
        against_limit("memory", f"the {env_name} RabbitMQ broker uses {settings.broker_memory_percent}%+ of its "
                      "memory limit (or reports nothing); at 100% it blocks every publisher; ",
                      "GreaterThanOrEqualToThreshold", settings.broker_memory_percent,
                      metric("used", "RabbitMQMemUsed"), "RabbitMQMemLimit",
                      ("percent", "memory used (% of limit)", "100 * used / limit")),
        against_limit("disk", f"the {env_name} RabbitMQ broker has less than {settings.broker_disk_free_ratio}x "
                      "its disk limit free (or reports nothing); below the limit it blocks every publisher; ",
                      "LessThanThreshold", settings.broker_disk_free_ratio,
                      metric("free", "RabbitMQDiskFree"), "RabbitMQDiskFreeLimit",
                      ("headroom", "free disk / disk limit", "free / limit")),
    ]


#: What each capacity alarm counts: the ``AWS/AmazonMQ`` broker metric -> the alarm's name part and the noun.
CAPACITY_METRICS: dict[str, tuple[str, str]] = {
    "ConnectionCount": ("connections", "AMQP connections"),
    "ChannelCount": ("channels", "AMQP channels"),
    "QueueCount": ("queues", "queues"),
}


def capacity_alarms(env_name: str, settings: AlarmsConfig, broker_name: pulumi.Input[str], engine_version: str,
                    instance_type: str, deployment_mode: str,
                    running: tuple[str, str] | None = None) -> list[AlarmSpec]:
    """The broker's connections, channels and queues approaching what it holds (shared.broker_capacity): past its
    limits it closes new connections and channels and refuses new queues.

    ``ConnectionCount``, ``ChannelCount`` and ``QueueCount`` (Maximum) with dimension Broker, for a cluster the sum
    over its nodes (Amazon MQ developer guide, "Available CloudWatch metrics for Amazon MQ for RabbitMQ brokers"),
    against :func:`shared.broker_capacity.alarm_thresholds`: ``NOTE_PERCENT`` (80) % of the limits the broker runs
    with (RabbitMQ 4's defaults, 3.x's maximum), connections and channels per node times the nodes a cluster keeps
    with one down. One node of a cluster can still pass its own limit first where clients spread unevenly; its
    per-node series (Broker, Node) are named after hosts known only once the broker runs. Missing data is
    notBreaching: a broker that stops reporting is the memory and disk alarms' business (breaching there), and
    silence is no sign of clients piling up.

    ``running``: (instance type, engine major.minor) the broker runs now, where that is not yet the env's
    (DescribeBroker ``HostInstanceType``/``EngineVersion``, handed over by the orchestrator:
    :data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE`). Amazon MQ applies a new type or engine at a reboot or in
    the maintenance window, up to a week after the `up` that asked for it ("Upgrading an Amazon MQ broker instance
    type"), so each alarm takes the lower of the two figures: it never fires late on the smaller broker still
    running, nor after the window that applies a smaller one (4.2's defaults are below 3.13's maximum). The first
    `up` after the broker runs the env's type and engine moves them once, and they stay.
    """
    asked = alarm_thresholds(engine_version, instance_type, deployment_mode)
    now = alarm_thresholds(running[1], running[0], deployment_mode) if running is not None else {}
    counted = " with one node down" if usable_nodes(deployment_mode) < BROKER_NODES[deployment_mode] else ""
    specs = []
    for metric, threshold in asked.items():
        what, noun = CAPACITY_METRICS[metric]
        held = f"{instance_type} {deployment_mode} on RabbitMQ {engine_version} holds{counted}"
        if running is not None and now.get(metric, threshold) < threshold:
            threshold = now[metric]
            held = (f"{running[0]} {deployment_mode} on RabbitMQ {running[1]}, which the broker runs until "
                    f"{instance_type} on {engine_version} is applied, holds{counted}")
        specs.append(AlarmSpec(
            name=alarm_name(env_name, "broker-capacity", what),
            description=f"the {env_name} RabbitMQ broker has {threshold}+ {noun}, {NOTE_PERCENT}% of what "
                        f"{held}; past the limit it refuses new ones (a bigger instance type, or lower max_count); "
                        + runbook(f"<env>-ml-broker-capacity-{what}"),
            comparison="GreaterThanOrEqualToThreshold", threshold=threshold, treat_missing_data="notBreaching",
            period=settings.period_seconds, evaluation_periods=settings.evaluation_periods,
            metric=Metric(AMAZON_MQ_NAMESPACE, metric, "Maximum", {"Broker": broker_name})))
    return specs


def rotation_alarms(env_name: str, settings: AlarmsConfig, function_name: pulumi.Input[str]) -> list[AlarmSpec]:
    """The broker admin's rotation function failing a step (the password then stays as it was, and the
    secret's ``max_age_days`` promise is broken without anyone hearing of it).

    ``AWS/Lambda`` ``Errors`` (Sum) with dimension FunctionName: invocations that ended in a function
    error, timeouts included (Lambda developer guide, "Types of metrics for Lambda functions"). Secrets
    Manager invokes the function only while it rotates (each step, and again when it retries a failed
    rotation), so the metric is silent in between: missing data is notBreaching, and one error in one
    period notifies.
    """
    return [occurrence_alarm(
        alarm_name(env_name, "admin-rotation-errors", "broker"),
        f"the {env_name} broker admin's rotation function failed: its log group names the step and "
        "why; " + runbook("<env>-ml-admin-rotation-errors-broker"),
        settings, Metric(LAMBDA_NAMESPACE, "Errors", "Sum", {"FunctionName": function_name}))]


def publisher_alarms(env_name: str, settings: AlarmsConfig, function_name: pulumi.Input[str]) -> list[AlarmSpec]:
    """The queue metrics publisher failing, or not running (shared.components.queue_metrics): consumers then
    stop scaling on their backlog and the queue alarms go silent, so either notifies.

    ``AWS/Lambda`` ``Errors`` (Sum, FunctionName) in every evaluation period: one failed run (a broker restart,
    a password rotating between the user and the secret) does not page, a publisher that keeps failing does.
    ``Invocations`` (Sum) below 1 in every evaluation period: EventBridge invokes it every minute, and Lambda
    publishes Invocations only for a function that ran, so missing data is breaching here (a deleted schedule,
    a throttled account). The alarms are created after the schedule's target (``MetricAlarms`` ``after``); the silent
    one may still send one ALARM, then OK, on the first ``up``: it can be evaluated before the first run's data point.
    """
    minutes = settings.period_seconds * settings.evaluation_periods // 60

    def on(what: str, metric: str, comparison: str, missing: str, description: str) -> AlarmSpec:
        return AlarmSpec(name=alarm_name(env_name, what, "publisher"), description=description, comparison=comparison,
                         threshold=1, treat_missing_data=missing, period=settings.period_seconds,
                         evaluation_periods=settings.evaluation_periods,
                         metric=Metric(LAMBDA_NAMESPACE, metric, "Sum", {"FunctionName": function_name}))

    return [
        on("queue-metrics-errors", "Errors", "GreaterThanOrEqualToThreshold", "notBreaching",
           f"the {env_name} queue metrics publisher failed every run for {minutes} minutes: consumers no longer "
           "scale on their backlog; its log group says why; " + runbook("<env>-ml-queue-metrics-errors-publisher")),
        on("queue-metrics-silent", "Invocations", "LessThanThreshold", "breaching",
           f"the {env_name} queue metrics publisher has not run for {minutes} minutes (its EventBridge rule is gone "
           "or disabled, or Lambda throttles it): consumers no longer scale on their backlog; "
           + runbook("<env>-ml-queue-metrics-silent-publisher")),
    ]


def below_desired_periods(settings: AlarmsConfig, pending_seconds: int = 0) -> int:
    """The tasks-below-desired alarm's evaluation periods: the env's, and more where a healthy new task stays short of
    RUNNING for up to ``pending_seconds``: minutes it is not RUNNING breach (desired - running > 0), the one it starts
    in and the one it turns RUNNING in included, so the alarm waits one period longer than all of those."""
    return max(settings.evaluation_periods, math.ceil(pending_seconds / settings.period_seconds) + 2)


def service_alarms(env_name: str, settings: AlarmsConfig, cluster_name: pulumi.Input[str],
                   services: dict[str, pulumi.Input[str]], container_insights: bool = True,
                   may_run_none: frozenset[str] = frozenset(),
                   pending_seconds: Mapping[str, int] | None = None) -> list[AlarmSpec]:
    """Each ECS service running fewer tasks than it wants (``services``: alarm subject -> ECS service name).

    Container Insights publishes ``ECS/ContainerInsights`` ``RunningTaskCount`` and
    ``DesiredTaskCount`` per ClusterName + ServiceName (the platform turns Container Insights on:
    rule ``ecs-cluster-container-insights``). ``desired - running > 0`` over every evaluation period,
    so a rolling deployment does not page. Missing data is breaching: Container Insights reports a
    running service every minute, so silence means the service (or its metrics) is gone. Where the
    env turns Container Insights off there are no such metrics: the alarm stays INSUFFICIENT_DATA
    (``missing``) instead of firing for ever.

    Container Insights builds these metrics from its performance events, and a service with no task
    emits none, so its silence cannot be told apart from a service that scaled to zero on purpose. A
    subject in ``may_run_none`` (its ``min_count`` is 0) therefore treats missing data as not
    breaching; otherwise a service idle at zero tasks would page for ever. ``running`` is filled with
    0 so that minutes with a desired count but no running task still count as tasks missing.

    What it does not see: tasks that run for minutes and are replaced again and again (a health check failing
    after its start period) leave the service short only between a stop and the replacement's start, and the
    scheduler starts an unhealthy task's replacement first where ``maximumPercent`` allows (botocore ecs
    ``DeploymentConfiguration.maximumPercent``; the platform's 200), so no minute need be short at all:
    :func:`task_stop_alarms` counts such a loop's stops, and the description says so.

    ``pending_seconds``: per subject whose new tasks turn RUNNING only once the app is healthy (the serve gate,
    compute_containers.SERVE_GATE_CONTAINER), the longest a healthy one takes to (placement, image pull, the app's
    start-up): its alarm waits longer than that (:func:`below_desired_periods`), so a scale-out does not page.
    """
    specs = []
    for subject, service_name in sorted(services.items()):
        dimensions = {"ClusterName": cluster_name, "ServiceName": service_name}
        periods = below_desired_periods(settings, (pending_seconds or {}).get(subject, 0))
        specs.append(AlarmSpec(
            name=alarm_name(env_name, "tasks-below-desired", subject),
            description=f"ECS service {subject} runs fewer tasks than desired for "
                        f"{periods * settings.period_seconds // 60} minutes: its tasks do not "
                        "get to run (image pull errors, an exit at start, no capacity); a crash loop of tasks that "
                        f"run for minutes each is {alarm_name(env_name, 'task-stops', subject)}'s; "
                        + runbook("<env>-ml-tasks-below-desired-<svc>"),
            comparison="GreaterThanThreshold", threshold=0,
            treat_missing_data=("missing" if not container_insights else
                                "notBreaching" if subject in may_run_none else "breaching"),
            period=settings.period_seconds, evaluation_periods=periods,
            queries=(
                metric_query("desired", CONTAINER_INSIGHTS_NAMESPACE, "DesiredTaskCount", dimensions, "Average"),
                metric_query("running", CONTAINER_INSIGHTS_NAMESPACE, "RunningTaskCount", dimensions, "Average"),
                Query(id="missing", label="tasks missing", expression="desired - FILL(running, 0)",
                      return_data=True),
            )))
    return specs


def gateway_alarms(env_name: str, settings: AlarmsConfig, service: str,
                   load_balancer: pulumi.Input[str]) -> list[AlarmSpec]:
    """5xx at the gateway's load balancer: from the targets and from the load balancer itself.

    ``AWS/ApplicationELB`` ``HTTPCode_Target_5XX_Count`` and ``HTTPCode_ELB_5XX_Count`` (Sum) with
    dimension LoadBalancer (the ARN suffix ``app/<name>/<id>``). The load balancer reports these only
    when there are such responses, so missing data is notBreaching and each missing point counts 0
    (``FILL``) in the sum.
    """
    dimensions = {"LoadBalancer": load_balancer}
    return [AlarmSpec(
        name=alarm_name(env_name, "gateway-5xx", service),
        description=f"the {service} load balancer answered {settings.gateway_5xx}+ 5xx responses in "
                    f"{settings.period_seconds} s (targets' 5xx plus the load balancer's own, e.g. no healthy target); "
                    + runbook("<env>-ml-gateway-5xx-<svc>"),
        comparison="GreaterThanOrEqualToThreshold", threshold=settings.gateway_5xx, treat_missing_data="notBreaching",
        period=settings.period_seconds, evaluation_periods=1,
        queries=(
            metric_query("target", APPLICATION_ELB_NAMESPACE, "HTTPCode_Target_5XX_Count", dimensions, "Sum"),
            metric_query("elb", APPLICATION_ELB_NAMESPACE, "HTTPCode_ELB_5XX_Count", dimensions, "Sum"),
            Query(id="errors", label="5xx responses", expression="FILL(target, 0) + FILL(elb, 0)", return_data=True),
        ))]


#: Days before its expiry that the gateways' certificate alarms. ACM renews a certificate it issued well before this
#: (ACM user guide, "Managed certificate renewal"); one it did not renew (DNS validation record gone) or one imported
#: (ACM never renews those) leaves a month to act before the load balancer serves an expired certificate.
CERTIFICATE_EXPIRY_DAYS = 30
#: ACM publishes DaysToExpiry once a day.
CERTIFICATE_PERIOD_SECONDS = 86_400


def certificate_alarms(env_name: str, certificate_arn: str) -> list[AlarmSpec]:
    """The public gateways' certificate (``compute.certificate_arn``, one per env) close to its expiry.

    ``AWS/CertificateManager`` ``DaysToExpiry`` (Minimum over a day) with dimension CertificateArn. ACM stops
    publishing it once the certificate has expired (so the AWS CDK's ``metricDaysToExpiry`` advises missing data as
    breaching): missing data is breaching, so an expired or deleted certificate stays in ALARM."""
    return [AlarmSpec(
        name=alarm_name(env_name, "certificate-expiry", "gateway"),
        description=f"the public gateways' certificate {certificate_arn} expires within {CERTIFICATE_EXPIRY_DAYS} "
                    "days, or has expired: ACM did not renew it (an imported certificate never renews): re-import "
                    "or renew it under the same ARN, or name a new one in compute.certificate_arn; "
                    + runbook("<env>-ml-certificate-expiry-gateway"),
        comparison="LessThanOrEqualToThreshold", threshold=CERTIFICATE_EXPIRY_DAYS, treat_missing_data="breaching",
        period=CERTIFICATE_PERIOD_SECONDS, evaluation_periods=1,
        metric=Metric(CERTIFICATE_MANAGER_NAMESPACE, DAYS_TO_EXPIRY_METRIC, "Minimum",
                      {"CertificateArn": certificate_arn}))]


#: Unexpected stops (shared.components.task_stops) of one service's tasks that make a crash loop: one stop is a
#: crash ECS replaced, three within the time three of its tasks take to start and fail their health check are a loop.
TASK_STOPS_THRESHOLD = 3
#: Seconds, beyond its health check's start period and failed checks, a failing task takes to be replaced: the
#: scheduler's reaction, placing the replacement and pulling its image (the same allowance as a cold start).
TASK_REPLACEMENT_SECONDS = 120
#: The shortest window counted: a loop of tasks that exit at once is the tasks-below-desired alarm's too.
TASK_STOPS_MIN_WINDOW_SECONDS = 900


def task_stops_window(health_check_timing: tuple[int, int, int]) -> int:
    """Seconds in which :data:`TASK_STOPS_THRESHOLD` tasks of a crash loop stop: each lives at least its health
    check's start period plus ``retries`` failed checks ``interval`` apart, then is replaced; whole minutes, at
    least :data:`TASK_STOPS_MIN_WINDOW_SECONDS`, at most a day (a PutMetricAlarm period)."""
    start_period, interval, retries = health_check_timing
    cycle = start_period + interval * retries + TASK_REPLACEMENT_SECONDS
    window = -(-(TASK_STOPS_THRESHOLD * cycle) // 60) * 60
    return min(max(window, TASK_STOPS_MIN_WINDOW_SECONDS), 86_400)


def task_stop_alarms(env_name: str, services: dict[str, pulumi.Input[str]],
                     health_check_timing: dict[str, tuple[int, int, int]]) -> list[AlarmSpec]:
    """Each ECS service whose tasks keep stopping unasked (``services``: subject -> ECS service name): a crash loop.

    ``MLPlatform/ECS`` ``UnexpectedTaskStops`` (Sum) with dimension Group ``service:<ECS service name>``, which the
    metric filter of shared.components.task_stops writes for every task of the service that stopped by itself,
    failed its health check or failed to start, over one period of :func:`task_stops_window`. The filter writes
    only when a task stops, so missing data is notBreaching. tasks-below-desired cannot see such a loop: the
    scheduler starts an unhealthy task's replacement first (botocore ecs ``DeploymentConfiguration.maximumPercent``).
    """
    specs = []
    for subject, service_name in sorted(services.items()):
        window = task_stops_window(health_check_timing[subject])
        specs.append(AlarmSpec(
            name=alarm_name(env_name, "task-stops", subject),
            description=f"{TASK_STOPS_THRESHOLD}+ tasks of ECS service {subject} stopped unasked within "
                        f"{window // 60} minutes (crashed, failed a health check or failed to start): a crash "
                        "loop; each stop's reason is in the compute layer's task-stops log group; "
                        + runbook("<env>-ml-task-stops-<svc>"),
            comparison="GreaterThanOrEqualToThreshold", threshold=TASK_STOPS_THRESHOLD,
            treat_missing_data="notBreaching", period=window, evaluation_periods=1,
            metric=Metric(TASK_STOPS_NAMESPACE, TASK_STOPS_METRIC, "Sum",
                          {TASK_GROUP_DIMENSION: pulumi.Output.from_input(service_name).apply(task_group)})))
    return specs


def event_delivery_alarms(env_name: str, settings: AlarmsConfig,
                          rules: dict[str, pulumi.Input[str]]) -> list[AlarmSpec]:
    """EventBridge failing to deliver a rule's events (``rules``: subject -> the name of the default bus's rule
    ``<env>-ml-<subject>``, whose alarm is ``<env>-ml-event-delivery-<subject>``): the events
    go to the layer's dead-letter queue (shared.components.undelivered_events) instead, and what they feed goes quiet
    (the task-stops log group, and with it the crash-loop alarms, whose missing data is notBreaching; an event
    notification to the topic).

    ``AWS/Events`` ``FailedInvocations`` (Sum) with dimension RuleName: deliveries that failed for good, a refused one
    (a resource policy, a key policy) at once (EventBridge user guide, "Monitoring Amazon EventBridge"). EventBridge
    publishes it only when it is not zero: missing data is notBreaching, and one failure in one period notifies. The
    notification reaches the topic through CloudWatch's own grants, even when EventBridge's are what broke."""
    return [occurrence_alarm(
        alarm_name(env_name, "event-delivery", subject),
        f"EventBridge could not deliver the events of its rule {name_prefix(env_name)}{subject} (a "
        "resource or key policy refuses it): they wait in its layer's undelivered-events queue; "
        + runbook("<env>-ml-event-delivery-<rule>"),
        settings, Metric(EVENTS_NAMESPACE, FAILED_INVOCATIONS_METRIC, "Sum", {"RuleName": rule}))
        for subject, rule in sorted(rules.items())]


def broker_resource_alarms(env_name: str, settings: AlarmsConfig) -> list[AlarmSpec]:
    """A broker node set a memory or disk alarm (``<env>-ml-broker-resource-alarm``): RabbitMQ blocks every publisher of
    the cluster until it clears, while the broker-wide memory and disk alarms read Amazon MQ's sums over the nodes,
    which one node at its limit may keep under their thresholds. ``MLPlatform/Broker`` ``ResourceAlarmsSet`` (Sum), the
    broker log's metric filter (shared.components.broker): one notification per period with an alarm set; missing
    data (no such line) is notBreaching."""
    return [occurrence_alarm(
        alarm_name(env_name, "broker", "resource-alarm"),
        "A broker node set a memory or disk resource alarm: RabbitMQ blocks every publisher of the "
        "cluster until it clears (the broker's general log names the node and whether it cleared); "
        + runbook("<env>-ml-broker-resource-alarm"),
        settings, Metric(BROKER_LOGS_NAMESPACE, RESOURCE_ALARMS_METRIC, "Sum", {}))]


def notification_delivery_alarms(env_name: str, settings: AlarmsConfig,
                                 topic: pulumi.Input[str]) -> list[AlarmSpec]:
    """SNS failing to deliver the alarm topic's notifications to a subscription (``<env>-ml-notification-delivery``):
    a subscriber whose policy or key refuses SNS (an SQS queue, another account's function), an https endpoint that
    fails, an SMS spend limit reached. The subscription is accepted and looks fine, and every alarm reaches nobody
    there. ``AWS/SNS`` ``NumberOfNotificationsFailed`` (Sum) with dimension TopicName (Amazon SNS developer guide,
    "Monitoring Amazon SNS topics using CloudWatch": counted when SNS stops trying; for https each failed attempt).
    Published only when something was sent: missing data is notBreaching. It notifies the same topic, whose other
    subscriptions still get it (and the console shows it), as a broken topic could reach no one anyway."""
    return [occurrence_alarm(
        alarm_name(env_name, "notification", "delivery"),
        "SNS could not deliver the alarm topic's notifications to a subscription (its policy or key "
        "refuses SNS, an https endpoint fails, an SMS spend limit is reached): alarms reach nobody "
        "there; " + runbook("<env>-ml-notification-delivery"),
        settings, Metric(SNS_NAMESPACE, NOTIFICATIONS_FAILED_METRIC, "Sum", {"TopicName": topic}))]


def compute_alarms(env: EnvConfig, compute: ComputePlatform) -> list[AlarmSpec]:
    """The compute layer's alarms: every ECS service (each canary version its own), each public gateway, and the
    gateways' certificate."""
    services: dict[str, pulumi.Input[str]] = {}
    may_run_none: set[str] = set()
    pending: dict[str, int] = {}
    for service, units in compute.services.items():
        plan = compute.plans[service]
        versions: tuple[str | None, ...] = tuple(plan.versions) or (None,)
        for version, unit in zip(versions, units, strict=True):
            services[unit_name(service, version)] = unit.service.name
            if plan.min_count == 0:
                may_run_none.add(unit_name(service, version))
            if serve_gated(plan, env.mesh.provider):
                # RUNNING once the app is HEALTHY, not once it answers (ServiceSpec.healthy_seconds)
                pending[unit_name(service, version)] = plan.spec.healthy_seconds + DEPLOY_OVERHEAD_SECONDS
    specs = service_alarms(env.name, env.alarms, compute.cluster.name, services, env.compute.container_insights,
                           frozenset(may_run_none), pending)
    specs += task_stop_alarms(env.name, services, {
        unit_name(service, version): compute.plans[service].spec.health_check_timing
        for service in compute.services for version in (tuple(compute.plans[service].versions) or (None,))})
    for service, gateway in sorted(compute.gateways.items()):
        specs += gateway_alarms(env.name, env.alarms, service, gateway.load_balancer.arn_suffix)
    if compute.gateways and env.compute.certificate_arn:  # the env loader requires it with public_gateway
        specs += certificate_alarms(env.name, env.compute.certificate_arn)
    return specs


# -- resources ---------------------------------------------------------------------------------------
def topic_key_policy(partition: str, account_id: str, region: str, env_name: str) -> dict[str, Any]:
    """The platform's customer key policy (account administration through IAM) plus CloudWatch -- this
    account's ``<env>-ml-*`` alarms only -- publishing to the encrypted topic: "Enable compatibility
    between event sources from AWS services and encrypted topics" (Amazon SNS developer guide); the
    AWS managed ``aws/sns`` key cannot grant that, so the topic has a key of its own."""
    policy = customer_key_policy(partition=partition, account_id=account_id, region=region)
    policy["Statement"].append({
        "Sid": "CloudWatchAlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
        "Condition": alarm_source_condition(partition, account_id, region, env_name)})
    # EventBridge rules (:class:`EventNotification`) publish through the same key. No aws:Source* condition here: the
    # KMS request EventBridge's delivery makes carries none of those keys, so such a condition would drop every event
    # silently (AWS MDAA grantCloudWatchAlarmsTopicAccess note; SNS developer guide, "Enable compatibility between
    # event sources from AWS services and encrypted topics"); the topic policy holds EventBridge to this env's rules.
    policy["Statement"].append({
        "Sid": "EventBridgeRulesPublish", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"})
    # AWS Budgets publishes the cost budget's notifications (:func:`cost_budget`) through the same key. No aws:Source*
    # condition, on purpose: AWS documents only the topic statement for Budgets ("Creating an Amazon SNS topic for
    # budget notifications"), not which keys its KMS request carries, and a condition it lacks would drop every
    # notification silently, as for EventBridge; the topic policy holds it to this account's budgets
    policy["Statement"].append({
        "Sid": "BudgetsPublish", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"})
    return policy


def alarm_source_condition(partition: str, account_id: str, region: str, env_name: str) -> dict[str, Any]:
    """Only this account's alarms named ``<env>-ml-*`` (confused-deputy guard for the service principal)."""
    return {"StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn":
                        f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{name_prefix(env_name)}*"}}


def topic_policy(topic_arn: str, args: AlarmTopicArgs) -> dict[str, Any]:
    """The account manages the topic; CloudWatch publishes for this env's alarms only."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountManagesTheTopic", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{args.partition}:iam::{args.account_id}:root"},
         "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:Publish",
                    "sns:ListSubscriptionsByTopic", "sns:DeleteTopic"], "Resource": topic_arn},
        {"Sid": "CloudWatchAlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": alarm_source_condition(args.partition, args.account_id, args.region, args.env_name)},
        {"Sid": "EventBridgeRulesPublish", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": event_rule_source_condition(args.partition, args.account_id, args.region, args.env_name)},
        # AWS Cost Management user guide, "Creating an Amazon SNS topic for budget notifications": the budgets of this
        # account (a budget's ARN has no region)
        {"Sid": "BudgetsPublish", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id},
                       "ArnLike": {"aws:SourceArn": f"arn:{args.partition}:budgets::{args.account_id}:*"}}},
    ]}


def cost_budget_name(env_name: str) -> str:
    """The env's AWS Budgets budget (unique in the account; a budget's ARN ``arn:<partition>:budgets::<account>:budget/
    <name>``)."""
    return f"{name_prefix(env_name)}cost"


#: (notification type, percent of the budget): the forecast passing the budget, the actual cost passing 80 % and 100 %
COST_NOTIFICATIONS = (("FORECASTED", 100), ("ACTUAL", 80), ("ACTUAL", 100))


def event_rule_source_condition(partition: str, account_id: str, region: str, env_name: str) -> dict[str, Any]:
    """Only this account's EventBridge rules named ``<env>-ml-*`` on the default bus (EventBridge user guide,
    "Cross-service confused deputy prevention in Amazon EventBridge": for a rule's target ``aws:SourceArn`` is the
    rule's ARN; an older copy of its "Amazon SNS permissions" section said a topic policy for EventBridge takes no
    Condition: where `<env>-ml-event-delivery-*` fires for a rule on the topic, suspect this condition first)."""
    return {"StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:events:{region}:{account_id}:rule/{name_prefix(env_name)}*"}}


def topic_name(env_name: str) -> str:
    return f"{env_name}-ml-alarms"


def lambda_in(function_arn: str, account_id: str, region: str) -> bool:
    """Whether ``function_arn`` (``arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]``) is a
    function of this account and region: the only ones whose resource policy the env's stack can add to."""
    parts = function_arn.split(":")
    return len(parts) >= 7 and parts[2] == "lambda" and parts[3] == region and parts[4] == account_id


#: Offline answers for the synth: a budget's ARN has no region (``arn:<partition>:budgets::<account>:budget/<name>``)
register_mock("aws:budgets/budget:Budget", ResourceMock(arn="budget/{name}", regional=False))


def cost_budget(name: str, args: AlarmTopicArgs, topic_arn: pulumi.Input[str], parent: pulumi.Resource,
                after: pulumi.Resource) -> aws.budgets.Budget:
    """The env's monthly cost budget (``alarms.monthly_cost_usd``) on the costs of its region (a ``Region`` cost
    filter: another env of the account, in another region, has its own), notifying the alarm topic. After the topic
    policy that lets AWS Budgets publish to it. A fixed name (one budget of a name per account: botocore budgets
    CreateBudget, DuplicateRecordException), so replaced delete first; its amount, filter and notifications change in
    place (UpdateBudget, Create/UpdateNotification)."""
    amount = args.settings.monthly_cost_usd
    return aws.budgets.Budget(
        f"{name}-cost-budget", name=cost_budget_name(args.env_name), budget_type="COST", time_unit="MONTHLY",
        limit_amount=str(amount), limit_unit="USD",
        # CostFilters, which botocore marks deprecated for FilterExpression: the provider's filter_expression (it needs
        # `metrics` too) makes a budget AWS cannot chart (terraform-provider-aws #46866, open).
        cost_filters=[aws.budgets.BudgetCostFilterArgs(name="Region", values=[args.region])],
        notifications=[aws.budgets.BudgetNotificationArgs(
            notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
            threshold_type="PERCENTAGE", subscriber_sns_topic_arns=[topic_arn])
            for kind, percent in COST_NOTIFICATIONS],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[after], delete_before_replace=True))


#: the layer whose program creates the alarm topic (stacks/broker; messaging and compute read its ARN)
TOPIC_LAYER = "broker"


@dataclass(frozen=True)
class AlarmTopicArgs(InRegion):
    env_name: str
    account_id: str
    region: str
    settings: AlarmsConfig
    protect: bool = False

    @classmethod
    def from_env(cls, env: EnvConfig) -> AlarmTopicArgs:
        return cls(env_name=env.name, account_id=env.account_id, region=env.region, settings=env.alarms,
                   protect=env.protect)


def _subscription_name(topic: str, protocol: str, endpoint: str) -> str:
    """A subscription's resource name before https endpoints were named by :func:`subscription_name`: the topic's, the
    protocol, and the endpoint's first 60 letters and digits (still every other protocol's name)."""
    return f"{topic}-{protocol}-" + re.sub(r"[^A-Za-z0-9]+", "-", endpoint).strip("-").lower()[:60]


#: hex digits of the endpoint's sha256 in an https subscription's name: 40 bits. Two endpoints of one host on the
#: topic get the same name with a chance of about k^2 / 2^41 for k of them (under 1e-10 for 10), and a clash is the
#: engine's duplicate-URN error, not a silent one; 40 of a 128-bit integration key's bits leave 2^88 keys per digest.
SUBSCRIPTION_DIGEST_CHARS = 10


def subscription_name(topic: str, subscription: AlarmSubscription) -> str:
    """A subscription's resource name. An https one: ``<topic>-https-<host>-<digest>``, the digest a prefix of the
    sha256 of the endpoint without its ``user:password@``. Its path may hold a key (PagerDuty's
    ``/integration/<key>/enqueue``) and its name is in the URN, never encrypted, printed by every preview and up. The
    digest leaves the basic-auth password out so that a name is no oracle to check a guessed (weak) password
    against; endpoints told apart only by their credentials would get one name (the env loader refuses them)."""
    if subscription.protocol != "https":
        return _subscription_name(topic, subscription.protocol, subscription.endpoint)
    without = subscription.without_credentials
    try:
        host = urlsplit(without).hostname or ""
    except ValueError:
        host = ""
    digest = hashlib.sha256(without.encode()).hexdigest()[:SUBSCRIPTION_DIGEST_CHARS]
    return _subscription_name(topic, "https", f"{host[:60]}-{digest}")


def subscription_aliases(topic: str, subscription: AlarmSubscription,
                         others: list[AlarmSubscription]) -> list[str]:
    """The names ``subscription`` had that differ from its name now, oldest first: with ``user:password@`` (every
    release before), without it (https only). A name that was another subscription's of ``others`` stays that one's
    (two resources may not claim one alias: the engine's "Duplicate resource alias" error)."""
    theirs = {_subscription_name(topic, other.protocol, other.endpoint) for other in others if other != subscription}
    before = [_subscription_name(topic, subscription.protocol, subscription.endpoint)]
    if subscription.protocol == "https":
        before.append(_subscription_name(topic, "https", subscription.without_credentials))
    now = subscription_name(topic, subscription)
    return [name for index, name in enumerate(dict.fromkeys(before))
            if name != now and (index == 0 or name not in theirs)]


class AlarmTopic(pulumi.ComponentResource):
    """The env's alarm notification topic, its KMS key, its policy and its subscriptions."""

    def __init__(self, name: str, args: AlarmTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:alarms:AlarmTopic", name, None, opts)
        self.key = customer_key(
            f"{name}-key", description=f"Alarm notifications of the ML platform ({args.env_name})",
            alias=f"{args.env_name}/alarms",
            policy=json.dumps(topic_key_policy(args.partition, args.account_id, args.region, args.env_name),
                              sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        # A fixed name, and CreateTopic is idempotent (botocore sns CreateTopic: "if the requester already owns a topic
        # with the specified name, that topic's ARN is returned"): replaced create-first (a change of a ForceNew input,
        # name or fifo_topic: terraform-provider-aws sns/topic.go; or `pulumi up --replace`), the "new" topic would be
        # the old one, which the old resource's delete then deletes with every subscription. Delete first: the
        # replacement is a new topic of the same name and ARN, its policy and subscriptions made again after it.
        self.topic = aws.sns.Topic(f"{name}-topic", name=topic_name(args.env_name), kms_master_key_id=self.key.arn,
                                   opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        self.policy = aws.sns.TopicPolicy(
            f"{name}-topic", arn=self.topic.arn,
            policy=self.topic.arn.apply(lambda arn: json.dumps(topic_policy(arn, args), sort_keys=True)),
            opts=pulumi.ResourceOptions(parent=self.topic))
        if args.settings.monthly_cost_usd is not None:
            self.budget = cost_budget(name, args, self.topic.arn, parent=self, after=self.policy)
        from shared.components.undelivered_events import UndeliveredEvents, UndeliveredEventsArgs  # imports this module

        # what the event notifications (EventNotification) could not deliver to the topic, in the topic's layer
        self.undelivered = UndeliveredEvents(f"{name}-undelivered-events", UndeliveredEventsArgs(
            env_name=args.env_name, layer=TOPIC_LAYER, partition=args.partition, account_id=args.account_id,
            region=args.region), opts=pulumi.ResourceOptions(parent=self))
        # Email (and https) subscriptions stay "pending confirmation" until the recipient confirms.
        subscriptions = args.settings.all_subscriptions()
        for subscription in subscriptions:
            # An https one is named without the credentials in its endpoint, which a URN would show.
            resource_name = subscription_name(name, subscription)
            # The names it had are aliases (same parent): a new resource's Subscribe of the same topic, protocol and
            # endpoint gets the existing subscription's ARN (go-to-k/cdkd #1967), which the old one's delete would
            # unsubscribe. The engine writes no alias to the state (pulumi/pulumi #14042).
            aliases = [pulumi.Alias(name=before) for before in subscription_aliases(name, subscription, subscriptions)]
            permission = None
            if subscription.protocol == "lambda" and lambda_in(subscription.endpoint, args.account_id, args.region):
                # SNS invokes the function as sns.amazonaws.com: without a statement in the function's resource
                # policy every delivery is refused and the subscription looks fine (Lambda developer guide,
                # "Invoking Lambda functions with Amazon SNS notifications": add-permission, source ARN the topic).
                permission = aws.lambda_.Permission(
                    resource_name, action="lambda:InvokeFunction", function=subscription.endpoint,
                    principal="sns.amazonaws.com", source_arn=self.topic.arn,
                    opts=pulumi.ResourceOptions(parent=self.topic))
            # An https endpoint carries a credential (basic auth, or a key in its path): a Pulumi secret, so the state
            # encrypts it (marking an input secret changes no value: no update, no replacement).
            endpoint: pulumi.Input[str] = (pulumi.Output.secret(subscription.endpoint) if subscription.is_secret
                                           else subscription.endpoint)
            aws.sns.TopicSubscription(
                resource_name, topic=self.topic.arn, protocol=subscription.protocol,
                endpoint=endpoint,
                opts=pulumi.ResourceOptions(parent=self.topic, depends_on=[permission] if permission else None,
                                            aliases=aliases or None))
        self.arn: pulumi.Output[str] = self.topic.arn
        self.register_outputs({"topic_arn": self.topic.arn})


class MetricAlarms(pulumi.ComponentResource):
    """One ``aws.cloudwatch.MetricAlarm`` per spec, notifying ``topic_arn`` on ALARM and OK."""

    def __init__(self, name: str, specs: list[AlarmSpec], topic_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None, *,
                 after: Sequence[pulumi.Resource] = ()) -> None:
        """``after``: what starts the alarms' series (created first, so a missing-is-breaching alarm does not page
        before its source could publish)."""
        super().__init__("mlplatform:alarms:MetricAlarms", name, None, opts)
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate alarm names in {name}: {sorted(n for n in names if names.count(n) > 1)}")
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in specs:
            single = spec.metric  # None: metric math (queries)
            self.alarms[spec.name] = aws.cloudwatch.MetricAlarm(
                spec.name, name=spec.name, alarm_description=spec.description,
                comparison_operator=spec.comparison, threshold=spec.threshold,
                evaluation_periods=spec.evaluation_periods, datapoints_to_alarm=spec.evaluation_periods,
                treat_missing_data=spec.treat_missing_data,
                namespace=single.namespace if single else None, metric_name=single.name if single else None,
                statistic=single.statistic if single else None,
                dimensions=(single.dimensions or None) if single else None, period=spec.period if single else None,
                metric_queries=[alarm_query(query, spec.period) for query in spec.queries] or None,
                alarm_actions=[topic_arn], ok_actions=[topic_arn],
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)))
        self.register_outputs({"alarms": sorted(self.alarms)})


#: The README chapter whose entries the notifications point to (``README.md#<anchor>``, one entry per alarm and event).
RUNBOOK_ANCHOR = "on-call-what-each-notification-asks"


def runbook(entry: str) -> str:
    """The pointer a description ends with: the README's on-call chapter and the entry (an alarm's or rule's name
    pattern as the chapter lists it, or the name itself)."""
    return f"runbook: README.md#{RUNBOOK_ANCHOR}, {entry}"


#: Secrets Manager's CloudTrail service events of a rotation that did not complete: a rotation (scheduled or
#: ``rotate-secret``) or the test of a new rotation configuration failed (Secrets Manager user guide, "AWS CloudTrail
#: entries for Secrets Manager", log entries for rotation).
ROTATION_FAILED_EVENTS = ("RotationFailed", "TestRotationFailed")


def rotation_failed_pattern(secret_arn: str) -> dict[str, Any]:
    """Secrets Manager's rotation of ``secret_arn`` failed. These reach the default bus as ``AWS Service Event via
    CloudTrail`` (EventBridge user guide, "AWS service events delivered via AWS CloudTrail": unlike ``AWS API Call via
    CloudTrail`` they need no trail), with the secret's ARN in ``detail.additionalEventData.SecretId``. A failure
    shows here whatever its cause, including those the rotation function's Errors alarm cannot see: an invocation
    Lambda refused (a VPC function idle for weeks is Inactive and fails its next invocation, Lambda developer guide,
    "Lambda function states"; the admin's rotation runs every ``max_age_days``), throttling, a missing permission."""
    return {"source": ["aws.secretsmanager"], "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {"eventSource": ["secretsmanager.amazonaws.com"], "eventName": list(ROTATION_FAILED_EVENTS),
                       "additionalEventData": {"SecretId": [secret_arn]}}}


def notification_template(summary: str) -> str:
    """The target's input: a JSON object whose ``summary`` says what happened and what to do (with the runbook
    pointer) and whose ``event`` is the whole event (``<aws.events.event.json>``, EventBridge user guide, "Amazon
    EventBridge input transformation": predefined variables, only as a JSON field's value). EventBridge reads every
    ``<name>`` of the template as a variable, inside a JSON string too, so the summary may hold none (its runbook entry
    is the rule's own name, not the README's ``<env>-ml-...`` pattern)."""
    if re.search(r"<[^<>]*>", summary):
        raise ValueError(f"the summary {summary!r} holds a <...>, which EventBridge would read as a variable")
    return '{"summary": ' + json.dumps(summary) + ', "event": <aws.events.event.json>}'


def event_rule_name(env_name: str, what: str) -> str:
    """``<env>-ml-<what>``: the names the topic policy lets EventBridge publish for
    (:func:`event_rule_source_condition`); EventBridge takes 1-64 characters of ``[.-_A-Za-z0-9]`` (botocore events
    ``RuleName``)."""
    name = f"{name_prefix(env_name)}{what}"
    if not re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", name):
        raise ValueError(f"EventBridge rule name {name!r} must be 1-64 characters of [.-_A-Za-z0-9]")
    return name


class EventNotification(pulumi.ComponentResource):
    """An AWS event no metric shows, sent to the env's alarm topic as it happens: an EventBridge rule on the default
    bus and its target, the topic (whose policy and key policy let this env's rules publish: :func:`topic_policy`,
    :func:`topic_key_policy`), with :func:`notification_template` as its input. The target is created after the
    topic policy, so the first event is delivered; an event the topic refuses is left in the layer's dead-letter queue
    (:mod:`shared.components.undelivered_events`)."""

    def __init__(self, name: str, rule_name: str, summary: str, event_pattern: pulumi.Input[str],
                 topic: AlarmTopic, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:alarms:EventNotification", name, None, opts)
        if len(summary) > 512:  # botocore events RuleDescription: at most 512 characters
            raise ValueError(f"{rule_name}: the summary is {len(summary)} characters, the rule's description takes 512")
        self.rule = aws.cloudwatch.EventRule(
            name, name=rule_name, description=summary, event_pattern=event_pattern,
            opts=pulumi.ResourceOptions(parent=self))
        self.target = aws.cloudwatch.EventTarget(
            name, rule=self.rule.name, arn=topic.arn,
            input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                input_template=notification_template(summary)),
            dead_letter_config=topic.undelivered.dead_letter_config,
            opts=pulumi.ResourceOptions(parent=self.rule, depends_on=[topic.policy, topic.undelivered.policy]))
        self.register_outputs({"rule": rule_name})


def rotation_failed_notification(env_name: str, secret_arn: pulumi.Input[str], topic: AlarmTopic,
                                 opts: pulumi.ResourceOptions | None = None) -> EventNotification:
    """The broker admin secret's rotation failed (:func:`rotation_failed_pattern`), to the topic."""
    from shared.broker_names import rotation_function_name
    from shared.components.broker import admin_secret_name  # imports this module

    rule_name = event_rule_name(env_name, "admin-rotation-failed")
    summary = (f"Secrets Manager could not rotate the {env_name} broker admin's secret "
               f"{admin_secret_name(env_name)}: the password stays as it was. The function's log group "
               f"/aws/lambda/{rotation_function_name(env_name)} names the failing step, or has no run where "
               f"Lambda refused the invocation; {runbook(rule_name)}")
    return EventNotification(
        rule_name, rule_name, summary,
        pulumi.Output.from_input(secret_arn).apply(
            lambda arn: json.dumps(rotation_failed_pattern(arn), sort_keys=True)),
        topic, opts=opts)


#: AWS Health's event type of a Fargate task retirement notice (EventBridge ``source`` ``aws.health``, ``detail-type``
#: ``AWS Health Event``, ``detail.service`` ``ECS``; ECS developer guide, "Task retirement and maintenance for AWS
#: Fargate on Amazon ECS"): the tasks still on a platform version revision AWS retires are stopped after the account's
#: ``fargateTaskRetirementWaitPeriod`` (7 days by default).
TASK_RETIREMENT_EVENT = "AWS_ECS_TASK_PATCHING_RETIREMENT"


def task_retirement_pattern() -> dict[str, Any]:
    """The EventBridge pattern of a Fargate task retirement notice in the env's account and region. It names no
    cluster: AWS Health lists the tasks (or services) in ``resources`` in forms AWS does not document, and one env
    runs in an account and region (shared.envs)."""
    return {"source": ["aws.health"], "detail-type": ["AWS Health Event"],
            "detail": {"service": ["ECS"], "eventTypeCode": [TASK_RETIREMENT_EVENT]}}


def task_retirement_notification(env_name: str, topic: AlarmTopic,
                                 opts: pulumi.ResourceOptions | None = None) -> EventNotification:
    """AWS's notice that it will stop Fargate tasks of the account on a set date (:func:`task_retirement_pattern`), to
    the topic: otherwise it reaches only the account's Health dashboard and its root user's mail, and a consumer's job
    in flight is cut when the day comes. Its rule is in the broker layer, beside the topic, though compute runs the
    tasks: an AWS Health event is the account's, and the topic policy lets this layer's rules publish before any
    task exists."""
    rule_name = event_rule_name(env_name, "fargate-task-retirement")
    summary = (f"AWS will stop Fargate tasks in {env_name}'s account and region (a platform version revision "
               "retires); the event lists them and the date. ECS replaces a service's tasks, but a consumer's job in "
               f"flight is cut: replace them yourself between jobs before then; {runbook(rule_name)}")
    return EventNotification(rule_name, rule_name, summary, json.dumps(task_retirement_pattern(), sort_keys=True),
                             topic, opts=opts)


def alarm_query(query: Query, period: int) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """``query`` as a metric-math alarm takes it, each metric over ``period`` seconds."""
    if query.expression is not None:
        return aws.cloudwatch.MetricAlarmMetricQueryArgs(id=query.id, label=query.label, expression=query.expression,
                                                         return_data=query.return_data)
    assert query.metric is not None
    metric = query.metric
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query.id, label=query.label, return_data=query.return_data,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=metric.namespace, metric_name=metric.name, dimensions=metric.dimensions, stat=metric.statistic,
            period=period))
