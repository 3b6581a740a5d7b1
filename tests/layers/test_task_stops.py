"""A crash loop notifies: the compute layer routes the cluster's unexpected task stops (EventBridge ``ECS Task State
Change``) to a log group, counts them per ECS service with a metric filter, and alarms on three within the time three
failing tasks take. tasks-below-desired cannot see such a loop: ECS starts an unhealthy task's replacement first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern
from moto.events.utils import EventMessageType

from shared.catalog import container_health_timing, load_catalog
from shared.cloudwatch_metrics import metric_problems
from shared.components.alarms import TASK_STOPS_THRESHOLD, task_stops_window
from shared.envs import load_env
from tests import iam_eval
from tests.layers.resource_types import ALARM, ENVS, KMS_KEY, LOG_GROUP
from tests.synth_helpers import by_urn, of_type, synth_layers

RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
LOGS_POLICY = "aws:cloudwatch/logResourcePolicy:LogResourcePolicy"
FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"


def compute(env: str) -> dict[str, Any]:
    return synth_layers(env, "compute")["compute"]


def named(document: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in of_type(document, type_) if r["inputs"].get("name") == name]
    return found


def task_event(cluster_arn: str, *, group: str = "service:inference", last_status: str = "STOPPED",
               stop_code: str = "EssentialContainerExited",
               stopped_reason: str = "Essential container in task exited") -> EventMessageType:
    """An ``ECS Task State Change`` event as EventBridge delivers it (Amazon ECS developer guide, task state change
    events), reduced to the fields a pattern can read."""
    return {"version": "0", "id": "3317b2af-7005-947d-b652-f55e762e571a", "detail-type": "ECS Task State Change",
            "source": "aws.ecs", "account": "111111111111", "time": "2026-12-01T12:00:00Z", "region": "eu-west-1",
            "resources": [f"{cluster_arn.replace(':cluster/', ':task/')}/0123456789abcdef"],
            "detail": {"clusterArn": cluster_arn, "group": group, "lastStatus": last_status,
                       "desiredStatus": "STOPPED", "stopCode": stop_code, "stoppedReason": stopped_reason}}


@pytest.mark.parametrize("env", ENVS)
def test_the_clusters_unexpected_task_stops_reach_their_log_group(env: str) -> None:
    document, settings = compute(env), load_env(env)
    cluster_arn = document["outputs"]["cluster_arn"]
    group_name = f"/platform/{env}/compute/ecs/task-stops"
    group = named(document, LOG_GROUP, group_name)
    assert group["inputs"]["retentionInDays"] == settings.compute.log_retention_days
    (key,) = [k for k in of_type(document, KMS_KEY) if k["name"] == "compute-logs"]
    # the services' key, whose policy admits their groups
    assert group["inputs"]["kmsKeyId"] == named(document, LOG_GROUP, f"/platform/{env}/compute/inference")[
        "inputs"]["kmsKeyId"]
    assert key["urn"] in group["dependencies"]
    # CloudWatch Logs encrypts the group only where the key's policy lets logs.<region> use it for the group
    logs_statement = next(s for s in json.loads(key["inputs"]["policy"])["Statement"]
                          if s.get("Principal", {}).get("Service") == f"logs.{settings.region}.amazonaws.com")
    (pattern,) = logs_statement["Condition"]["ArnLike"].values()
    group_arn = f"arn:aws:logs:{settings.region}:{settings.account_id}:log-group:{group_name}"
    assert iam_eval.arn_like(pattern, group_arn)

    rule = named(document, RULE, f"{env}-ml-ecs-task-stops")
    (target,) = [t for t in of_type(document, TARGET) if t["inputs"]["rule"] == rule["inputs"]["name"]]
    assert target["inputs"]["arn"] == group_arn
    assert "roleArn" not in target["inputs"], "CloudWatch Logs targets take the resource policy, not a role"
    # EventBridge writes through the account's CloudWatch Logs resource policy: created before the target
    (policy,) = [p for p in of_type(document, LOGS_POLICY) if p["inputs"]["policyName"] == f"{env}-ml-ecs-task-stops"]
    statement, = json.loads(policy["inputs"]["policyDocument"])["Statement"]
    assert "events.amazonaws.com" in statement["Principal"]["Service"]
    assert set(statement["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert iam_eval.resource_matches(statement["Resource"], f"{group_arn}:log-stream:abc")
    assert policy["urn"] in target["dependencies"]
    assert json.loads(rule["inputs"]["eventPattern"])["detail"]["clusterArn"] == [cluster_arn]


@pytest.mark.parametrize(("what", "event", "counted"), [
    ("a crash (the essential container exited)", {}, True),
    ("an out-of-memory kill", {"stopped_reason": "Essential container in task exited (OutOfMemoryError)"}, True),
    ("a failed container health check", {"stop_code": "ServiceSchedulerInitiated",
                                         "stopped_reason": "Task failed container health checks"}, True),
    ("a failed load balancer health check", {"stop_code": "ServiceSchedulerInitiated", "stopped_reason":
                                             "Task failed ELB health checks in (target-group arn:aws:x)"}, True),
    ("an image that cannot be pulled", {"stop_code": "TaskFailedToStart",
                                        "stopped_reason": "CannotPullContainerError: not found"}, True),
    ("a deployment replacing the task", {"stop_code": "ServiceSchedulerInitiated", "stopped_reason":
                                         "Scaling activity initiated by (deployment ecs-svc/1234567890)"}, False),
    ("a scale-in", {"stop_code": "ServiceSchedulerInitiated",
                    "stopped_reason": "Scaling activity initiated by (service inference)"}, False),
    ("StopTask by an operator", {"stop_code": "UserInitiated", "stopped_reason": "Task stopped by user"}, False),
    ("a task that still runs", {"last_status": "RUNNING"}, False),
    # the events of a failing task's way down carry its stop code and reason already: only the last one counts
    ("a crashed task on its way down", {"last_status": "DEPROVISIONING"}, False),
    ("a failed health check's task on its way down", {"last_status": "STOPPING", "stop_code":
                                                       "ServiceSchedulerInitiated",
                                                       "stopped_reason": "Task failed container health checks"}, False),
    ("a one-off task, not a service's", {"group": "family:ml-dev-migrate"}, False),
    ("another cluster's task", {"cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/other"}, False),
])
def test_the_rule_takes_the_stops_of_a_crash_loop_and_no_planned_stop(what: str, event: dict[str, str],
                                                                      counted: bool) -> None:
    # moto's implementation of EventBridge pattern matching (prefix, $or), offline
    document = compute("dev")
    cluster_arn = document["outputs"]["cluster_arn"]
    rule = named(document, RULE, "dev-ml-ecs-task-stops")
    pattern = EventPattern.load(rule["inputs"]["eventPattern"])
    fields = {key: value for key, value in event.items() if key != "cluster"}
    assert pattern.matches_event(task_event(event.get("cluster", cluster_arn), **fields)) is counted, what


@pytest.mark.parametrize("env", ENVS)
def test_each_service_alarms_on_the_stops_the_metric_filter_counts(env: str) -> None:
    document = compute(env)
    (metric_filter,) = of_type(document, FILTER)
    assert metric_filter["inputs"]["logGroupName"] == f"/platform/{env}/compute/ecs/task-stops"
    transformation = metric_filter["inputs"]["metricTransformation"]
    assert transformation["value"] == "1" and transformation["dimensions"] == {"Group": "$.detail.group"}
    # every delivered event is a stop: the JSON filter selects it by the field the rule matched on
    assert metric_filter["inputs"]["pattern"] == '{ $.detail.lastStatus = "STOPPED" }'
    urns = by_urn(document)
    alarms = {a["inputs"]["name"]: a["inputs"] for a in of_type(document, ALARM)}
    services = document["outputs"]["services"]
    assert services
    for service, entry in services.items():
        alarm = alarms[f"{env}-ml-task-stops-{service}"]
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
            transformation["namespace"], transformation["name"], "Sum")
        assert alarm["dimensions"] == {"Group": f"service:{entry['ecs_service_name']}"}
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold",
                                                                     TASK_STOPS_THRESHOLD)
        assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 1
        spec = next(s for s in load_catalog() if s.name == service)
        assert alarm["period"] == task_stops_window(spec.health_check_timing)
        assert alarm["treatMissingData"] == "notBreaching", "the filter writes only when a task stops"
        assert metric_problems(alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == []
    assert metric_filter["urn"] in urns


@pytest.mark.parametrize("startup_seconds", [0, 60, 300, 900, 3000])
def test_the_window_holds_three_failing_tasks_lives(startup_seconds: int) -> None:
    start_period, interval, retries = timing = container_health_timing(startup_seconds)
    window = task_stops_window(timing)
    assert window % 60 == 0 and 900 <= window <= 86_400
    assert window >= TASK_STOPS_THRESHOLD * (start_period + interval * retries)


def test_a_series_the_filter_does_not_write_is_refused() -> None:
    assert metric_problems("MLPlatform/ECS", "UnexpectedTaskStops", {"ServiceName": "inference"})
    assert metric_problems("MLPlatform/ECS", "unexpectedTaskStops", {"Group": "service:inference"})
