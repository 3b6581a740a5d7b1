"""Where EventBridge leaves the events it could not deliver: one dead-letter queue per layer with event rules.

Why: a target whose resource or key policy refuses EventBridge (the alarm topic's, the task-stops log group's) fails
the delivery at once, without retries, and with no dead-letter queue the event is dropped (EventBridge user guide,
"Using dead-letter queues to process undelivered events": "for errors that result from missing permissions to a
target ... EventBridge sends these events directly to the target DLQ, if you have specified one"). The
``<env>-ml-event-delivery-*`` alarms say that it happened; this queue keeps what was lost, the event whole (a Fargate
retirement notice names the tasks and the date, a task stop its reason, a rotation failure the secret), with the
``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE`` and ``ERROR_MESSAGE`` message attributes, for 14 days, to read once the
policy is mended. Its own alarm (:func:`undelivered_events_alarms`) notifies while it holds any.

The queue is encrypted with SQS's own key (SSE-SQS), which needs no key policy for EventBridge to send to it (a
customer managed key would need one granting events.amazonaws.com, the same grant whose loss it is there to catch).
Its policy lets EventBridge send only from this account's ``<env>-ml-*`` rules (the rule ARNs of the topic's
condition, :func:`shared.components.alarms.event_rule_source_condition`). The name is fixed: after a destroy, SQS
refuses the same name for 60 seconds (botocore sqs DeleteQueue), which the provider's create waits out
(terraform-provider-aws #3113).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.cloudwatch_metrics import SQS_NAMESPACE, SQS_VISIBLE_METRIC
from shared.components.alarms import (
    AlarmSpec,
    Metric,
    alarm_name,
    event_rule_source_condition,
    name_prefix,
    occurrence_alarm,
    runbook,
)
from shared.envs import AlarmsConfig

#: SQS keeps a message at most 14 days (botocore sqs SetQueueAttributes, MessageRetentionPeriod: 60 to 1,209,600 s)
UNDELIVERED_RETENTION_SECONDS = 1_209_600


def undelivered_queue_name(env_name: str, layer: str) -> str:
    """``<env>-ml-<layer>-undelivered-events`` (an SQS queue name: 1-80 characters of [A-Za-z0-9_-])."""
    return f"{name_prefix(env_name)}{layer}-undelivered-events"


def queue_policy(queue_arn: str, partition: str, account_id: str, region: str, env_name: str) -> dict[str, Any]:
    """EventBridge may send to the queue from this account's ``<env>-ml-*`` rules only, named by aws:SourceArn alone
    (EventBridge user guide, "Granting permissions to the dead-letter queue" and "Amazon SQS permissions": their
    examples condition sqs:SendMessage for events.amazonaws.com on the rule's ARN and nothing else; the ARN names the
    account, so a rule of another account does not match)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "EventBridgeLeavesUndeliveredEvents", "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnLike": event_rule_source_condition(partition, account_id, region, env_name)["ArnLike"]},
    }]}


@dataclass(frozen=True)
class UndeliveredEventsArgs:
    env_name: str
    layer: str
    partition: str
    account_id: str
    region: str

    @property
    def queue_name(self) -> str:
        return undelivered_queue_name(self.env_name, self.layer)


class UndeliveredEvents(pulumi.ComponentResource):
    """The queue and its policy; :attr:`dead_letter_config` for each event target of the layer, which depends on
    :attr:`policy` (created after it, so the first refused event is kept)."""

    def __init__(self, name: str, args: UndeliveredEventsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:alarms:UndeliveredEvents", name, None, opts)
        self.queue = aws.sqs.Queue(
            name, name=args.queue_name, message_retention_seconds=UNDELIVERED_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True, opts=pulumi.ResourceOptions(parent=self))
        self.policy = aws.sqs.QueuePolicy(
            name, queue_url=self.queue.url,
            policy=self.queue.arn.apply(lambda arn: json.dumps(
                queue_policy(arn, args.partition, args.account_id, args.region, args.env_name), sort_keys=True)),
            # the policy is an attribute of the queue: replaced create-first, the old one's delete would clear the new
            # one (SetQueueAttributes Policy="", pulumi/pulumi-aws #1923) and EventBridge could send nothing here
            opts=pulumi.ResourceOptions(parent=self.queue, delete_before_replace=True))
        self.dead_letter_config = aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.queue.arn)
        self.register_outputs({"queue": args.queue_name})


def undelivered_events_alarms(env_name: str, settings: AlarmsConfig, layer: str) -> list[AlarmSpec]:
    """``<env>-ml-undelivered-events-<layer>``: the layer's dead-letter queue holds an event EventBridge could not
    deliver. ``AWS/SQS`` ``ApproximateNumberOfMessagesVisible`` (Maximum) with dimension QueueName, published every
    minute while the queue is active (Amazon SQS developer guide, "Available CloudWatch metrics for Amazon SQS": a
    queue holding messages is); missing data is notBreaching (an empty queue idle for six hours publishes none)."""
    return [occurrence_alarm(
        alarm_name(env_name, "undelivered-events", layer),
        f"EventBridge left events it could not deliver in {undelivered_queue_name(env_name, layer)} "
        "(a resource or key policy refuses it): they are kept 14 days to read; "
        + runbook("<env>-ml-undelivered-events-<layer>"),
        settings, Metric(SQS_NAMESPACE, SQS_VISIBLE_METRIC, "Maximum",
                      {"QueueName": undelivered_queue_name(env_name, layer)}))]
