"""The env's ECS tasks that stop on their own (a crash, a failed health check, a failed start), counted per service.

Why: a crash loop of tasks that run for minutes each never leaves a service short of tasks for every evaluation
period, since the scheduler starts an unhealthy task's replacement before it stops it where ``maximumPercent``
allows (botocore ecs ``DeploymentConfiguration.maximumPercent``), so ``tasks-below-desired``
(shared.components.alarms.service_alarms) stays OK through it. What does show it is the task's own stop: ECS
sends an EventBridge ``ECS Task State Change`` event for every task that reaches ``STOPPED``, with its
``group`` (``service:<ECS service name>``), ``stopCode`` and ``stoppedReason`` (Amazon ECS developer guide,
"Amazon ECS task state change events", and ``Task`` in botocore's ecs model).

:class:`TaskStops` routes the cluster's unexpected stops of service tasks (:func:`event_pattern`) to a log group
of its own, ``/platform/<env>/compute/ecs/task-stops`` (the services' retention and key: the compute logs key's
policy covers ``/platform/<env>/compute/*``; a catalog service cannot be named ``ecs/...``), where they stay
readable after ECS forgets the task (it lists a stopped task for about an hour), and a metric filter counts them as
``MLPlatform/ECS`` ``UnexpectedTaskStops`` with dimension ``Group``, which the alarms
(shared.components.alarms.task_stop_alarms) read. EventBridge writes to CloudWatch Logs through the account's
CloudWatch Logs resource policy, not a role (EventBridge user guide, "CloudWatch Logs permissions"): a policy of
its own per env, for this group only (an account holds at most 10 per region: CloudWatch Logs quotas). The rule's
target is created after that policy, so the first stop is delivered; a stop the group refuses is left in compute's
dead-letter queue (shared.components.undelivered_events).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.cloudwatch_metrics import TASK_GROUP_DIMENSION, TASK_STOPS_METRIC, TASK_STOPS_NAMESPACE
from shared.components.building_blocks import log_group_arn
from shared.components.compute_containers import partition_of
from shared.envs import EnvConfig

#: The namespace, metric and dimension the metric filter writes and the alarms read (shared.cloudwatch_metrics).
GROUP_DIMENSION = TASK_GROUP_DIMENSION
#: Stops no one asked for: the essential container exited by itself, or the task never started (Amazon ECS
#: developer guide, "Amazon ECS stopped task error codes"; botocore ecs ``TaskStopCode``). A task the scheduler stops
#: for a failed container or load balancer health check carries a ``stoppedReason`` beginning "Task failed" (the
#: same guide) whatever its code; deployments, scale-in and ``StopTask`` stop tasks with other codes and reasons.
UNEXPECTED_STOP_CODES = ("EssentialContainerExited", "TaskFailedToStart")
FAILED_CHECK_REASON_PREFIX = "Task failed"


def group_name(env_name: str) -> str:
    return f"/platform/{env_name}/compute/ecs/task-stops"


def resource_policy_name(env_name: str) -> str:
    """The env's account-scoped CloudWatch Logs resource policy, one of at most
    :data:`LOG_RESOURCE_POLICIES_PER_REGION` (the account preflight counts them before compute's ``up``)."""
    return f"{env_name}-ml-ecs-task-stops"


#: Account-scoped CloudWatch Logs resource policies per account and region (botocore logs ``PutResourcePolicy``:
#: "a maximum of 10 policies without resourceARN"; CloudWatch Logs quotas: it cannot be raised).
LOG_RESOURCE_POLICIES_PER_REGION = 10


def task_group(ecs_service_name: str) -> str:
    """The ``group`` of the tasks an ECS service starts, ``service:<name>`` (the task state change events' examples
    in the Amazon ECS developer guide; a task RunTask starts has its family's name instead)."""
    return f"service:{ecs_service_name}"


def event_pattern(cluster_arn: str) -> dict[str, Any]:
    """The cluster's service tasks that stopped unasked (EventBridge event patterns: prefix and ``$or`` matching)."""
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": ["STOPPED"],
            "group": [{"prefix": "service:"}],
            "$or": [
                {"stopCode": list(UNEXPECTED_STOP_CODES)},
                {"stoppedReason": [{"prefix": FAILED_CHECK_REASON_PREFIX}]},
            ],
        },
    }


#: CloudWatch Logs metric filter pattern: every event the rule delivers is one stop (JSON filter syntax). A task has
#: one event with ``lastStatus`` STOPPED, but ECS may send an event twice (Amazon ECS developer guide, "Amazon ECS
#: events": duplicates share ``detail.version``), which a metric filter cannot tell from two stops.
FILTER_PATTERN = '{ $.detail.lastStatus = "STOPPED" }'


def resource_policy(group_arn: str) -> dict[str, Any]:
    """EventBridge may create streams in and write to this group only (EventBridge user guide, "CloudWatch Logs
    permissions": the principals events.amazonaws.com and delivery.logs.amazonaws.com)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "EventBridgeWritesTaskStops", "Effect": "Allow",
        "Principal": {"Service": ["delivery.logs.amazonaws.com", "events.amazonaws.com"]},
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"{group_arn}:*",
    }]}


@dataclass(frozen=True)
class TaskStopsArgs:
    env_name: str
    partition: str
    region: str
    account_id: str
    retention_days: int
    kms_key_arn: pulumi.Input[str] | None = None

    @classmethod
    def from_env(cls, env: EnvConfig, kms_key_arn: pulumi.Input[str] | None) -> TaskStopsArgs:
        """The services' retention (``compute.log_retention_days``) and key (the compute logs key, where
        ``compute.kms_encrypted_logs``)."""
        return cls(env_name=env.name, partition=partition_of(env.region), region=env.region,
                   account_id=env.account_id, retention_days=env.compute.log_retention_days, kms_key_arn=kms_key_arn)

    @property
    def group_name(self) -> str:
        return group_name(self.env_name)

    @property
    def group_arn(self) -> str:
        return log_group_arn(self.partition, self.region, self.account_id, self.group_name)


class TaskStops(pulumi.ComponentResource):
    """The rule, the log group it writes to, its resource policy and the metric filter counting the stops."""

    def __init__(self, name: str, args: TaskStopsArgs, cluster_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:TaskStops", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            name, name=args.group_name, retention_in_days=args.retention_days, kms_key_id=args.kms_key_arn,
            opts=child)
        # after the group it names, deleted before it (nothing writes to a group that is gone)
        policy = aws.cloudwatch.LogResourcePolicy(
            name, policy_name=resource_policy_name(args.env_name),
            policy_document=json.dumps(resource_policy(args.group_arn), sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group]))
        self.rule = aws.cloudwatch.EventRule(
            name, name=f"{args.env_name}-ml-ecs-task-stops",
            description=f"ECS tasks of the {args.env_name} services that stopped unasked (crash, failed health check)",
            event_pattern=pulumi.Output.from_input(cluster_arn).apply(
                lambda arn: json.dumps(event_pattern(arn), sort_keys=True)),
            opts=child)
        # a stop the group's policy or key refuses is kept there to read (its module imports alarms, which imports this)
        from shared.components.undelivered_events import UndeliveredEvents, UndeliveredEventsArgs

        self.undelivered = UndeliveredEvents(f"{name}-undelivered-events", UndeliveredEventsArgs(
            env_name=args.env_name, layer="compute", partition=args.partition, account_id=args.account_id,
            region=args.region), opts=child)
        aws.cloudwatch.EventTarget(
            name, rule=self.rule.name, arn=args.group_arn, dead_letter_config=self.undelivered.dead_letter_config,
            opts=pulumi.ResourceOptions(parent=self.rule,
                                        depends_on=[policy, self.log_group, self.undelivered.policy]))
        aws.cloudwatch.LogMetricFilter(
            name, name=f"{args.env_name}-ml-unexpected-task-stops", log_group_name=self.log_group.name,
            pattern=FILTER_PATTERN,
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=TASK_STOPS_METRIC, namespace=TASK_STOPS_NAMESPACE, value="1", unit="Count",
                dimensions={GROUP_DIMENSION: "$.detail.group"}),
            opts=pulumi.ResourceOptions(parent=self.log_group))
        self.register_outputs({"log_group": args.group_name})
