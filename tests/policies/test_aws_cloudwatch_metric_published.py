"""``cloudwatch-alarm-metric-published`` through the real aws pack: the platform's alarms watch series AWS
publishes; an alarm on a metric AWS does not publish, spelled otherwise, under dimensions it is not
published with or keyed by an ARN or id is reported; unknown names are not applicable, unknown values
still decide the names."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.policies.resources import GOOD_TAGS, res, rule_ids
from tests.policies.test_aws_cloudwatch_alarms import ALARM, TOPIC, UNKNOWN_STRING, math_alarm, single_alarm

RULE = "cloudwatch-alarm-metric-published"
LB_SUFFIX = "app/prod-gateway-3f2a1b/50dc6c495c0c9188"
TG_SUFFIX = "targetgroup/prod-gateway-9c1d2e/73e2d6bc24d8a067"


def alarm(namespace: str, metric: str, dimensions: dict[str, str], **changes: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "name": "prod-ml-x", "comparisonOperator": "GreaterThanThreshold", "threshold": 0, "evaluationPeriods": 1,
        "namespace": namespace, "metricName": metric, "dimensions": dimensions, "statistic": "Sum", "period": 60,
        "treatMissingData": "notBreaching", "alarmActions": [TOPIC], "tags": GOOD_TAGS}
    inputs.update(changes)
    return res(ALARM, "alarm", inputs)


def findings_of(policy_findings: Any, resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in policy_findings([resource]) if f["rule"] == RULE]


@pytest.mark.parametrize("resource", [
    math_alarm(), single_alarm(),
    alarm("AWS/AmazonMQ", "RabbitMQMemUsed", {"Broker": "ml-prod"}),
    alarm("AWS/AmazonMQ", "RabbitMQDiskFree", {"Broker": "ml-prod", "Node": "rabbit@ip-10-0-0-230.ec2.internal"}),
    alarm("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": LB_SUFFIX}),
    alarm("AWS/ApplicationELB", "UnHealthyHostCount", {"LoadBalancer": LB_SUFFIX, "TargetGroup": TG_SUFFIX}),
    alarm("AWS/ECS", "CPUUtilization", {"ClusterName": "prod-ml-platform", "ServiceName": "inference"}),
    alarm("AWS/Lambda", "Errors", {"FunctionName": "ml-platform-prod-broker-admin-rotation"}),
    # Service Connect: the callee's side and the caller's
    alarm("AWS/ECS", "HTTPCode_Target_5XX_Count",
          {"ClusterName": "prod-ml-platform", "ServiceName": "inference", "DiscoveryName": "inference"}),
    alarm("AWS/ECS", "TargetResponseTime", {"TargetDiscoveryName": "inference"}),
    alarm("Platform/Custom", "AnythingAtAll", {"Whatever": "x"}),  # not AWS's: not judged
    # the platform's own queue metrics publisher (shared/rotation/queue_metrics.py): what it writes
    alarm("MLPlatform/RabbitMQ", "MessagesReady", {"VirtualHost": "ml-prod", "Queue": "inference.work"}),
    # the blank-name limit is RabbitMQ's (queue series carry VirtualHost), not an ActiveMQ destination's
    alarm("AWS/AmazonMQ", "QueueSize", {"Broker": "ml-prod-1", "Queue": "orders queue"}),
], ids=["container-insights-math", "queue-depth", "broker-memory", "node-disk", "alb-5xx", "alb-unhealthy",
        "ecs-cpu", "lambda-errors", "sc-callee", "sc-caller", "custom-namespace", "platform-queue-metric",
        "activemq-queue-with-blank"])
def test_series_aws_publishes_pass(policy_findings, resource):
    assert RULE not in rule_ids(policy_findings([resource]))


@pytest.mark.parametrize(("resource", "says"), [
    (alarm("AWS/ECS", "RunningTaskCount", {"ClusterName": "c", "ServiceName": "s"}),
     "'RunningTaskCount' is published in ECS/ContainerInsights, not in AWS/ECS"),
    (alarm("AWS/ApplicationELB", "UnhealthyHostCount", {"LoadBalancer": LB_SUFFIX, "TargetGroup": TG_SUFFIX}),
     "publishes 'UnHealthyHostCount', not 'UnhealthyHostCount'"),
    (alarm("AWS/ApplicationELB", "UnHealthyHostCount", {"LoadBalancer": LB_SUFFIX}),
     "{LoadBalancer} matches no series"),
    # a Service Connect metric by cluster and service alone: ECS publishes it with a discovery name only (an alarm on
    # it would never leave INSUFFICIENT_DATA)
    (alarm("AWS/ECS", "RequestCount", {"ClusterName": "prod-ml-platform", "ServiceName": "inference"}),
     "{ClusterName, ServiceName} matches no series"),
    (alarm("AWS/AmazonMQ", "RabbitMQMemUsed", {"Broker": "ml-prod", "VirtualHost": "ml-prod"}),
     "publishes RabbitMQMemUsed with {Broker} or {Broker, Node}"),
    (alarm("AWS/AmazonMQ", "MessageCount", {"Broker": "ml-prod", "Queue": "inference.work"}),
     "{Broker, Queue} matches no series"),
    (alarm("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count",
           {"LoadBalancer": f"arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/{LB_SUFFIX}"}),
     "is not app/<name>/<id>, the load balancer's arn_suffix"),
    (alarm("AWS/AmazonMQ", "MessageReadyCount", {"Broker": "b-1c779578-c5d5-cf98-2ec7-232b5f52ac7e"}),
     "is the broker's id"),
    (alarm("AWS/ECS", "MemoryUtilization", {"ClusterName": "arn:aws:ecs:eu-west-1:111111111111:cluster/c"}),
     "is an ARN"),
    (alarm("AWS/AmazonMQ", "MessageCount", {"Broker": "ml-prod", "VirtualHost": "ml-prod", "Queue": "infé rence"}),
     "holds a blank or non-ASCII character"),
    # the platform's publisher writes VirtualHost and Queue, no Broker; and its names, not Amazon MQ's
    (alarm("MLPlatform/RabbitMQ", "MessagesReady", {"Broker": "ml-prod", "Queue": "inference.work"}),
     "MLPlatform/RabbitMQ publishes MessagesReady with {Queue, VirtualHost}"),
    (alarm("MLPlatform/RabbitMQ", "MessageReadyCount", {"VirtualHost": "ml-prod", "Queue": "inference.work"}),
     "'MessageReadyCount' is published in AWS/AmazonMQ, not in MLPlatform/RabbitMQ"),
])
def test_series_aws_does_not_publish_are_reported(policy_findings, resource, says):
    mandatory = [f["message"] for f in findings_of(policy_findings, resource) if f["enforcement"] == "mandatory"]
    assert len(mandatory) == 1 and says in mandatory[0], mandatory
    assert mandatory[0].endswith("Use a metric and dimensions from the service's CloudWatch metrics page.")


def test_each_metric_of_a_metric_math_alarm_is_checked(policy_findings):
    queries = copy.deepcopy(math_alarm()["inputs"]["metricQueries"])
    queries[1]["metric"]["namespace"] = "AWS/ECS"
    [finding] = findings_of(policy_findings, math_alarm(metricQueries=queries))
    assert "metric query 'running'" in finding["message"] and "ECS/ContainerInsights" in finding["message"]


def test_unknown_values_still_decide_unknown_names_are_not_applicable(policy_findings, policy_not_applicable):
    # A dimension value computed at deploy time (an arn_suffix, a broker's name) leaves the names to judge.
    known_names = alarm("AWS/ApplicationELB", "UnHealthyHostCount", {"LoadBalancer": UNKNOWN_STRING})
    [finding] = findings_of(policy_findings, known_names)
    assert "{LoadBalancer} matches no series" in finding["message"]
    assert RULE not in rule_ids(policy_findings([alarm("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                                                       {"LoadBalancer": UNKNOWN_STRING})]))
    for unknown in (alarm("AWS/ECS", "RunningTaskCount", UNKNOWN_STRING),  # type: ignore[arg-type]
                    alarm("AWS/ECS", UNKNOWN_STRING, {"ClusterName": "c"})):
        assert RULE not in rule_ids(policy_findings([unknown]))
        assert any(na["rule"] == RULE and "unknown until deployment" in na["reason"]
                   for na in policy_not_applicable([unknown]))


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_synthesized_alarms_of_every_env_watch_published_series(policy_findings, policy_not_applicable, env):
    from shared.synth.engine import synth_env

    documents = synth_env(env, ["broker", "messaging", "compute"])
    alarms = [res(ALARM, r["name"], {**r["inputs"], "tags": GOOD_TAGS})
              for document in documents.values() for r in document["resources"] if r["type"] == ALARM]
    assert alarms
    assert RULE not in rule_ids(policy_findings(alarms))
    assert not [na for na in policy_not_applicable(alarms) if na["rule"] == RULE]


#: ECS developer guide, "Amazon ECS CloudWatch metrics": the Service Connect proxy's metrics in AWS/ECS and the four
#: dimension sets they come with (the callee's DiscoveryName or the caller's TargetDiscoveryName, alone or with
#: ClusterName and ServiceName), written out here rather than read from the table the rule uses.
SERVICE_CONNECT_METRICS = (
    "ActiveConnectionCount NewConnectionCount ProcessedBytes RequestCount GrpcRequestCount HTTPCode_Target_2XX_Count "
    "HTTPCode_Target_3XX_Count HTTPCode_Target_4XX_Count HTTPCode_Target_5XX_Count RequestCountPerTarget "
    "TargetProcessedBytes TargetResponseTime ClientTLSNegotiationErrorCount TargetTLSNegotiationErrorCount").split()
SERVICE_CONNECT_SETS = {frozenset({"DiscoveryName"}), frozenset({"ClusterName", "DiscoveryName", "ServiceName"}),
                        frozenset({"TargetDiscoveryName"}),
                        frozenset({"ClusterName", "ServiceName", "TargetDiscoveryName"})}


def test_every_service_connect_metric_is_known_with_each_of_its_four_dimension_sets() -> None:
    """A set or a metric missing from the table would have the rule refuse an alarm on a series ECS publishes."""
    from shared.cloudwatch_metrics import ECS

    for metric in SERVICE_CONNECT_METRICS:
        assert ECS.get(metric) == SERVICE_CONNECT_SETS, metric
