"""``cloudwatch-alarm-valid`` through the real aws pack: alarms as the platform writes them pass, each
request PutMetricAlarm would refuse is reported, unknown structure is not applicable."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.policies.resources import GOOD_TAGS, UNKNOWN_STRING, res, rule_ids
from tests.policies.tokens import ALARM

RULE = "cloudwatch-alarm-valid"
TOPIC = "arn:aws:sns:eu-west-1:111111111111:dev-ml-alarms"


def math_alarm(**changes: Any) -> dict[str, Any]:
    dims = {"ClusterName": "dev-ml-platform", "ServiceName": "inference"}
    inputs: dict[str, Any] = {
        "name": "dev-ml-tasks-below-desired-inference", "comparisonOperator": "GreaterThanThreshold",
        "threshold": 0, "evaluationPeriods": 5, "datapointsToAlarm": 5, "treatMissingData": "breaching",
        "alarmActions": [TOPIC], "okActions": [TOPIC], "tags": GOOD_TAGS,
        "metricQueries": [
            {"id": "desired", "returnData": False, "metric": {"namespace": "ECS/ContainerInsights",
                                                               "metricName": "DesiredTaskCount", "dimensions": dims,
                                                               "period": 60, "stat": "Average"}},
            {"id": "running", "returnData": False, "metric": {"namespace": "ECS/ContainerInsights",
                                                               "metricName": "RunningTaskCount", "dimensions": dims,
                                                               "period": 60, "stat": "Average"}},
            {"id": "missing", "expression": "desired - running", "returnData": True},
        ],
    }
    inputs.update(changes)
    return res(ALARM, "alarm", inputs)


def single_alarm(**changes: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "name": "dev-ml-queue-depth-inference", "comparisonOperator": "GreaterThanOrEqualToThreshold",
        "threshold": 1000, "evaluationPeriods": 5, "treatMissingData": "notBreaching", "namespace": "AWS/AmazonMQ",
        "metricName": "MessageCount", "statistic": "Maximum", "period": 60, "tags": GOOD_TAGS,
        "dimensions": {"Broker": "ml-dev", "VirtualHost": "ml-dev", "Queue": "inference.work"},
        "alarmActions": [TOPIC], "okActions": [TOPIC]}
    inputs.update(changes)
    return res(ALARM, "alarm", inputs)


def findings_of(policy_findings: Any, alarm: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in policy_findings([alarm]) if f["rule"] == RULE]


@pytest.mark.parametrize("alarm", [math_alarm(), single_alarm()], ids=["metric-math", "single-metric"])
def test_alarms_as_the_platform_writes_them_pass(policy_findings, alarm):
    assert RULE not in rule_ids(policy_findings([alarm]))


def _queries(*return_data: bool) -> list[dict[str, Any]]:
    queries = copy.deepcopy(math_alarm()["inputs"]["metricQueries"])
    for query, flag in zip(queries, return_data, strict=True):
        query["returnData"] = flag
    return queries


@pytest.mark.parametrize(("alarm", "says"), [
    (math_alarm(metricQueries=_queries(False, False, False)), "exactly one metric query must have return_data"),
    (math_alarm(metricQueries=_queries(True, False, True)), "not 2"),
    (math_alarm(namespace="AWS/ECS", period=60), "cannot also set namespace, period"),
    (math_alarm(metricQueries=[{"id": "Desired", "expression": "1", "returnData": True}]), "ids must be unique"),
    (math_alarm(metricQueries=[{"id": "e", "returnData": True}]), "exactly one of metric and expression"),
    (math_alarm(datapointsToAlarm=6), "datapoints_to_alarm=6 is above evaluation_periods=5"),
    (math_alarm(treatMissingData="zero"), "treat_missing_data='zero'"),
    (math_alarm(alarmActions=[TOPIC] * 6), "alarmActions has more than 5 actions"),
    (single_alarm(period=90), "period 90 is not 10, 20, 30 or a multiple of 60"),
    (single_alarm(period=3000, evaluationPeriods=30), "period x evaluation_periods = 90000 s"),
])
def test_requests_put_metric_alarm_refuses_are_reported(policy_findings, alarm, says):
    [finding] = findings_of(policy_findings, alarm)
    assert finding["enforcement"] == "mandatory"
    assert says in finding["message"] and "up` would fail" in finding["message"]


def test_a_metric_query_period_is_checked_too(policy_findings):
    queries = copy.deepcopy(math_alarm()["inputs"]["metricQueries"])
    queries[0]["metric"]["period"] = 45
    [finding] = findings_of(policy_findings, math_alarm(metricQueries=queries))
    assert "metric query 'desired' period 45" in finding["message"]


def test_unknown_dimensions_still_decide_unknown_structure_is_not_applicable(policy_findings, policy_not_applicable):
    queries = copy.deepcopy(math_alarm()["inputs"]["metricQueries"])
    queries[0]["metric"]["dimensions"]["ServiceName"] = UNKNOWN_STRING
    assert RULE not in rule_ids(policy_findings([math_alarm(metricQueries=queries)]))
    unknown = math_alarm(treatMissingData=UNKNOWN_STRING)
    assert RULE not in rule_ids(policy_findings([unknown]))
    assert any(na["rule"] == RULE and "treatMissingData" in na["reason"] for na in policy_not_applicable([unknown]))


def test_the_synthesized_alarms_of_every_layer_are_decided_and_pass(policy_findings, policy_not_applicable):
    from shared.synth.engine import synth_env

    documents = synth_env("staging", ["broker", "messaging", "compute"])
    alarms = [res(ALARM, r["name"], {**r["inputs"], "tags": GOOD_TAGS})
              for document in documents.values() for r in document["resources"] if r["type"] == ALARM]
    assert len(alarms) >= 7  # per ECS service, broker memory and disk, the broker backlog
    assert RULE not in rule_ids(policy_findings(alarms))
    assert not [na for na in policy_not_applicable(alarms) if na["rule"] == RULE]


def anomaly_alarm(band_returns: bool = True, metric_returns: bool = True, **changes: Any) -> dict[str, Any]:
    """An anomaly-detection alarm as the provider's own acceptance test writes it: the band expression and
    the metric it models both return data, ``threshold_metric_id`` names the band."""
    inputs: dict[str, Any] = {
        "comparisonOperator": "GreaterThanUpperThreshold", "evaluationPeriods": 2, "thresholdMetricId": "e1",
        "alarmActions": [TOPIC], "tags": GOOD_TAGS,
        "metricQueries": [
            {"id": "e1", "expression": "ANOMALY_DETECTION_BAND(m1)", "returnData": band_returns},
            {"id": "m1", "returnData": metric_returns,
             "metric": {"namespace": "AWS/EC2", "metricName": "CPUUtilization", "period": 120, "stat": "Average"}},
        ],
    }
    inputs.update(changes)
    return res(ALARM, "alarm", inputs)


def test_an_anomaly_detection_alarm_returns_two_queries(policy_findings):
    # PutMetricAlarm with a ThresholdMetricId: "Exactly two elements of the metrics list should return data"
    # (the band and the metric it models; terraform-provider-aws's anomaly-detection acceptance test)
    assert RULE not in rule_ids(policy_findings([anomaly_alarm()]))
    [finding] = findings_of(policy_findings, anomaly_alarm(metric_returns=False))
    assert "exactly two metric queries" in finding["message"] and "not 1" in finding["message"]
    [finding] = findings_of(policy_findings, anomaly_alarm(band_returns=False))
    assert "threshold_metric_id 'e1'" in finding["message"]
    [finding] = findings_of(policy_findings, anomaly_alarm(thresholdMetricId="band"))
    assert "threshold_metric_id 'band'" in finding["message"]
