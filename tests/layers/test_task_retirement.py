"""AWS's notice that it will stop Fargate tasks (a platform version revision retires) reaches the alarm topic.

Without it the notice goes to the account's Health dashboard and its root user's mail, and on the day a consumer's job
in flight is cut. Every env's broker layer has the rule `<env>-ml-fargate-task-retirement` on AWS Health's
AWS_ECS_TASK_PATCHING_RETIREMENT, its target on the topic and an alarm on the rule's failed deliveries.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from shared.components.alarms import TASK_RETIREMENT_EVENT, task_retirement_pattern
from tests.layers.compute_helpers import ENVS
from tests.synth_helpers import by_name, of_type, spec_document

RULE = "aws:cloudwatch/eventRule:EventRule"


def health_event(event_type: str, service: str = "ECS") -> Any:
    """An AWS Health event as EventBridge delivers it (EventBridge user guide, "Events from AWS Health")."""
    return {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "AWS Health Event",
            "source": "aws.health", "account": "333333333333", "time": "2026-12-07T09:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:ecs:eu-west-1:333333333333:task/prod-ml-platform/0123456789abcdef"],
            "detail": {"eventArn": f"arn:aws:health:eu-west-1::event/{service}/{event_type}/{event_type}_1",
                       "service": service, "eventTypeCode": event_type, "eventTypeCategory": "scheduledChange",
                       "startTime": "Mon, 14 Dec 2026 09:00:00 GMT",
                       "eventDescription": [{"language": "en_US", "latestDescription": "Tasks will be retired."}]}}


def test_the_pattern_takes_a_retirement_notice_and_nothing_else() -> None:
    pattern = EventPattern.load(json.dumps(task_retirement_pattern()))
    assert pattern.matches_event(health_event(TASK_RETIREMENT_EVENT))
    assert not pattern.matches_event(health_event("AWS_ECS_OPERATIONAL_ISSUE"))
    assert not pattern.matches_event(health_event(TASK_RETIREMENT_EVENT, service="EC2"))
    other_source = health_event(TASK_RETIREMENT_EVENT)
    other_source["source"] = "my.app"
    assert not pattern.matches_event(other_source)


@pytest.mark.parametrize("env", ENVS)
def test_every_env_sends_the_notice_to_its_alarm_topic_and_alarms_on_its_failed_delivery(env: str) -> None:
    broker = spec_document(env, "broker")
    rule = by_name(broker, RULE, f"{env}-ml-fargate-task-retirement")["inputs"]
    assert json.loads(rule["eventPattern"]) == task_retirement_pattern()
    (target,) = [t["inputs"] for t in of_type(broker, "aws:cloudwatch/eventTarget:EventTarget")
                 if t["inputs"]["rule"] == rule["name"]]
    assert target["arn"] == broker["outputs"]["alarm_topic_arn"]
    alarm = by_name(broker, "aws:cloudwatch/metricAlarm:MetricAlarm",
                    f"{env}-ml-event-delivery-fargate-task-retirement")["inputs"]
    assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
        "AWS/Events", "FailedInvocations", {"RuleName": rule["name"]})
