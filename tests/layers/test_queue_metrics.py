"""Given an env, the synthesized network, broker and messaging layers publish each queue's backlog to CloudWatch:
a function in the private subnets, run every minute by EventBridge once its RabbitMQ user, permissions and secret
exist, signing in as a read-only user, reaching the broker's management API (admitted by the broker's group) and
Secrets Manager and CloudWatch (by endpoint or NAT), allowed to write its own namespace only, watched by alarms."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator

from shared.components.network import endpoint_policy
from shared.components.queue_metrics import (
    METRICS_NAMESPACE,
    MONITOR_PERMISSIONS,
    QUEUES_DIGEST_VAR,
    QUEUES_FILE,
    monitor_user_name,
    publisher_source,
    queues_digest,
    queues_document,
)
from shared.envs import load_env
from shared.rotation.queue_metrics import DIMENSIONS, IDLE_CONSUMERS, METRICS, PUBLISHED_METRICS
from shared.synth.engine import synth_env
from tests.layers.resource_types import ALARM, EGRESS, ENVS, FUNCTION, LOG_GROUP, PERMISSION, ROLE_POLICY, SECRET, SG
from tests.layers.test_alarms import input_shape
from tests.layers.test_messaging import external_program
from tests.synth_helpers import by_name, by_urn, of_type

EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
USER = "rabbitmq:index/user:User"
PERMISSIONS = "rabbitmq:index/permissions:Permissions"


@cache
def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_env(env, ["messaging"])


def function(env: str) -> dict[str, Any]:
    return by_name(layers(env)["messaging"], FUNCTION, "queue-metrics-function")


@pytest.mark.parametrize("env", ENVS)
def test_the_function_reads_every_work_queue_and_dlq_of_the_vhost_from_the_brokers_own_endpoint(env: str) -> None:
    messaging, broker = layers(env)["messaging"], layers(env)["broker"]["outputs"]
    network = layers(env)["network"]["outputs"]
    inputs = function(env)["inputs"]
    queues = sorted(q["inputs"]["name"] for q in of_type(messaging, "rabbitmq:index/queue:Queue"))
    variables = dict(inputs["environment"]["variables"])
    assert variables.pop("SECRET_ARN").startswith(
        f"arn:aws:secretsmanager:{load_env(env).region}:{load_env(env).account_id}:secret:"
        f"platform/{env}/messaging-monitor/queue-metrics-")
    assert variables == {"MANAGEMENT_ENDPOINT": broker["management_endpoint"], "NAMESPACE": METRICS_NAMESPACE,
                         QUEUES_DIGEST_VAR: queues_digest(tuple(queues)), "VHOST": messaging["outputs"]["vhost"]}
    assert any(queue.endswith(".dlq") for queue in queues) and any(queue.endswith(".work") for queue in queues)
    assert inputs["vpcConfig"] == {"subnetIds": network["private_subnet_ids"],
                                   "securityGroupIds": [network["queue_metrics_security_group_id"]]}
    assert inputs["handler"] == "queue_metrics.handler" and inputs["timeout"] <= 60
    assert "reservedConcurrentExecutions" not in inputs, "a fresh account keeps all of its 10 unreserved"


def test_the_function_reads_its_queues_from_its_package_not_its_environment(tmp_path: Path) -> None:
    """Lambda holds a function's environment to 4 KB (not adjustable): the queues are in the package, beside the
    module, and the environment holds their digest, so the function loaded from a folder laid out as its package
    publishes exactly the layer's queues, and a list of other queues (a package left from another catalog) fails."""
    import importlib.util
    import sys

    messaging = layers("dev")["messaging"]
    queues = tuple(sorted(q["inputs"]["name"] for q in of_type(messaging, "rabbitmq:index/queue:Queue")))
    (tmp_path / "queue_metrics.py").write_text(publisher_source(), encoding="utf-8")
    (tmp_path / QUEUES_FILE).write_text(queues_document(queues), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("queue_metrics", tmp_path / "queue_metrics.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["queue_metrics"] = module
    try:
        spec.loader.exec_module(module)
        variables = function("dev")["inputs"]["environment"]["variables"]
        assert module.Settings.from_environment(dict(variables)).queues == queues
        (tmp_path / QUEUES_FILE).write_text(queues_document(queues[1:]), encoding="utf-8")
        with pytest.raises(module.PublishError, match="not the list the messaging layer planned"):
            module.Settings.from_environment(dict(variables))
        (tmp_path / QUEUES_FILE).unlink()
        with pytest.raises(module.PublishError, match=r"no queue list queues\.json"):
            module.Settings.from_environment(dict(variables))
    finally:
        del sys.modules["queue_metrics"]


@pytest.mark.parametrize("env", ENVS)
def test_it_signs_in_as_a_read_only_user_whose_secret_is_on_the_layers_key(env: str) -> None:
    messaging = layers(env)["messaging"]
    user = by_name(messaging, USER, "queue-metrics-user")
    assert user["inputs"]["name"] == monitor_user_name(env) == f"ml-{env}.queue-metrics"
    assert user["inputs"]["tags"] == ["management"], "lists its vhosts' queues; not monitoring, never administrator"
    (permissions,) = [p for p in of_type(messaging, PERMISSIONS) if p["inputs"]["user"] == user["inputs"]["name"]]
    assert permissions["inputs"]["permissions"] == MONITOR_PERMISSIONS
    assert permissions["inputs"]["vhost"] == messaging["outputs"]["vhost"]
    secret = by_name(messaging, SECRET, "queue-metrics-secret")
    service_secret = next(s for s in of_type(messaging, SECRET) if "service" in s["inputs"]["tags"])
    assert secret["inputs"]["kmsKeyId"] == service_secret["inputs"]["kmsKeyId"]
    # rotated with the services' credentials (policy secretsmanager-rotation reads these tags)
    assert secret["inputs"]["tags"] == {k: v for k, v in service_secret["inputs"]["tags"].items() if k != "service"}


@pytest.mark.parametrize("env", ENVS)
def test_the_schedule_invokes_it_every_minute_only_once_it_can_sign_in_and_reach_the_broker(env: str) -> None:
    messaging = layers(env)["messaging"]
    resources = by_urn(messaging)
    rule = by_name(messaging, EVENT_RULE, "queue-metrics-schedule")
    assert rule["inputs"]["scheduleExpression"] == "rate(1 minute)"
    target = by_name(messaging, EVENT_TARGET, "queue-metrics-schedule")
    assert target["inputs"]["arn"] == (f"arn:aws:lambda:{load_env(env).region}:{load_env(env).account_id}:"
                                       f"function:{function(env)['inputs']['name']}")
    assert target["inputs"]["rule"] == rule["inputs"]["name"]
    before = {resources[urn]["type"] for urn in target["dependencies"]}
    assert {PERMISSIONS, "aws:secretsmanager/secretVersion:SecretVersion", EGRESS, PERMISSION,
            "rabbitmq:index/queue:Queue"} <= before
    permission = by_name(messaging, PERMISSION, "queue-metrics-invoke")["inputs"]
    # only this rule may invoke it (confused deputy: Lambda's resource policy names the rule's ARN)
    assert (permission["principal"], permission["sourceArn"]) == (
        "events.amazonaws.com",
        f"arn:aws:events:{load_env(env).region}:{load_env(env).account_id}:rule/{rule['inputs']['name']}")


@pytest.mark.parametrize("env", ENVS)
def test_a_failed_or_throttled_run_is_left_to_the_next_minute_not_retried(env: str) -> None:
    messaging = layers(env)["messaging"]
    target = by_name(messaging, EVENT_TARGET, "queue-metrics-schedule")
    # EventBridge's RetryPolicy and Lambda's event invoke config: 0 retries, and 60 s, the least age either takes
    events = input_shape("events", "PutTargets")
    retry = events.members["Targets"].member.members["RetryPolicy"]
    assert retry.members["MaximumEventAgeInSeconds"].metadata["min"] == 60
    assert target["inputs"]["retryPolicy"] == {"maximumRetryAttempts": 0, "maximumEventAgeInSeconds": 60}
    config = by_name(messaging, INVOKE_CONFIG, "queue-metrics-async")
    assert config["inputs"]["functionName"] == function(env)["inputs"]["name"]
    assert (config["inputs"]["maximumRetryAttempts"], config["inputs"]["maximumEventAgeInSeconds"]) == (0, 60)
    params = {"FunctionName": config["inputs"]["functionName"],
              "MaximumRetryAttempts": config["inputs"]["maximumRetryAttempts"],
              "MaximumEventAgeInSeconds": config["inputs"]["maximumEventAgeInSeconds"]}
    report = ParamValidator().validate(params, input_shape("lambda", "PutFunctionEventInvokeConfig"))
    assert not report.has_errors(), report.generate_report()
    # in force before the schedule's first run
    assert config["urn"] in target["dependencies"]


@pytest.mark.parametrize("env", ENVS)
def test_its_role_writes_only_its_namespace_and_reads_only_its_secret(env: str) -> None:
    messaging = layers(env)["messaging"]
    policy = json.loads(by_name(messaging, ROLE_POLICY, "queue-metrics-role-policy")["inputs"]["policy"])
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    # PutMetricData supports only "*"; the namespace condition holds it to the platform's namespace
    assert by_sid["PublishQueueMetrics"] == {
        "Sid": "PublishQueueMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}}
    assert by_sid["ReadTheMonitorSecret"]["Resource"] == function(env)["inputs"]["environment"]["variables"][
        "SECRET_ARN"]
    assert by_sid["ReadTheMonitorSecret"]["Action"] == "secretsmanager:GetSecretValue"
    # the key only through Secrets Manager, and only for the data keys of its own secret's values (Secrets Manager
    # names the secret in the encryption context of each KMS call)
    assert by_sid["UseTheSecretsKeyThroughSecretsManager"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{load_env(env).region}.amazonaws.com",
                         "kms:EncryptionContext:SecretARN": by_sid["ReadTheMonitorSecret"]["Resource"]}}
    logs = by_name(messaging, LOG_GROUP, "queue-metrics-logs")["inputs"]
    assert logs["name"] == f"/aws/lambda/ml-platform-{env}-queue-metrics"
    assert logs["retentionInDays"] == load_env(env).messaging.broker_log_retention_days
    assert "kmsKeyId" in logs, "every shipped env encrypts its logs (policy logs-kms-encryption)"
    assert function(env)["inputs"]["loggingConfig"]["logGroup"] == logs["name"]


@pytest.mark.parametrize("env", ENVS)
def test_the_network_path_reaches_the_broker_and_the_apis_by_endpoint_or_nat(env: str) -> None:
    network, broker = layers(env)["network"], layers(env)["broker"]
    group_id = network["outputs"]["queue_metrics_security_group_id"]
    rules = [r["inputs"] for r in of_type(network, EGRESS) + of_type(layers(env)["messaging"], EGRESS)
             if r["inputs"]["securityGroupId"] == group_id]
    broker_group = broker["outputs"]["broker_security_group_id"]
    peers = {(r.get("referencedSecurityGroupId") or r.get("cidrIpv4"), r["fromPort"], r["toPort"]) for r in rules}
    endpoints = load_env(env).network.endpoints
    expected = {(broker_group, 443, 443)}
    if "secretsmanager" in endpoints:
        # the endpoints' group: the one the services' rule to the interface endpoints names too
        (services_rule,) = [r["inputs"] for r in of_type(network, EGRESS)
                            if r["name"] == "network-services-out-endpoints"]
        expected.add((services_rule["referencedSecurityGroupId"], 443, 443))
    # no shipped env has a monitoring endpoint: CloudWatch through the NAT
    expected.add(("0.0.0.0/0", 443, 443))
    assert peers == expected
    ingress = by_name(broker, SG, "broker-sg")["inputs"]["ingress"]
    assert {"description": "RabbitMQ management API (HTTPS) from the queue metrics publisher (Lambda)",
            "fromPort": 443, "protocol": "tcp", "securityGroups": [group_id], "toPort": 443} in ingress


def test_with_secrets_manager_and_cloudwatch_endpoints_nothing_leaves_through_the_nat(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["network"].update(
        endpoints=["s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring"]))
    network = synth_env("prod", ["network"])["network"]
    group_id = network["outputs"]["queue_metrics_security_group_id"]
    rules = [r["inputs"] for r in of_type(network, EGRESS) if r["inputs"]["securityGroupId"] == group_id]
    assert [r.get("cidrIpv4") for r in rules] == [None], rules
    (endpoint,) = [e for e in of_type(network, "aws:ec2/vpcEndpoint:VpcEndpoint")
                   if e["inputs"]["serviceName"] == "com.amazonaws.eu-west-1.monitoring"]
    assert endpoint["inputs"]["privateDnsEnabled"] is True
    # CloudWatch's API actions are cloudwatch:*, not monitoring:* (an endpoint policy on "monitoring:*" blocks all)
    assert json.loads(endpoint["inputs"]["policy"])["Statement"][0]["Action"] == "cloudwatch:*"


def test_the_monitoring_endpoint_policy_admits_cloudwatch_actions_of_the_account() -> None:
    policy = endpoint_policy("monitoring", partition="aws", region="eu-west-1", account_id="333333333333")
    statements: list[dict[str, Any]] = policy["Statement"]  # type: ignore[assignment]
    (statement,) = statements
    assert statement["Action"] == "cloudwatch:*"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": "333333333333"}}


@pytest.mark.parametrize("env", ENVS)
def test_a_failing_or_silent_publisher_notifies(env: str) -> None:
    messaging = layers(env)["messaging"]
    alarms = {a["inputs"]["name"]: a["inputs"] for a in of_type(messaging, ALARM)}
    name = function(env)["inputs"]["name"]
    errors = alarms[f"{env}-ml-queue-metrics-errors-publisher"]
    silent = alarms[f"{env}-ml-queue-metrics-silent-publisher"]
    assert (errors["namespace"], errors["metricName"], errors["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert (silent["metricName"], silent["comparisonOperator"], silent["threshold"]) == (
        "Invocations", "LessThanThreshold", 1)
    assert silent["treatMissingData"] == "breaching", "Lambda publishes no Invocations for a function never run"
    assert errors["dimensions"] == silent["dimensions"] == {"FunctionName": name}
    topic = layers(env)["broker"]["outputs"]["alarm_topic_arn"]
    assert errors["alarmActions"] == silent["alarmActions"] == [topic]


def test_the_policy_table_knows_exactly_what_the_publisher_writes() -> None:
    from shared.cloudwatch_metrics import PUBLISHED, QUEUE_METRICS_NAMESPACE

    assert QUEUE_METRICS_NAMESPACE == METRICS_NAMESPACE
    assert PUBLISHED[METRICS_NAMESPACE] == {metric: frozenset({frozenset(DIMENSIONS)})
                                            for metric in PUBLISHED_METRICS}
    assert set(PUBLISHED_METRICS) == {*METRICS, IDLE_CONSUMERS}
    source = publisher_source()
    assert all(f'"{metric}"' in source for metric in PUBLISHED_METRICS)


def test_the_alarms_and_backlog_scaling_name_the_series_the_publisher_writes_from_ready_and_all_messages() -> None:
    from shared.cloudwatch_metrics import QUEUE_MESSAGES_METRIC, QUEUE_READY_METRIC

    assert (METRICS[QUEUE_READY_METRIC], METRICS[QUEUE_MESSAGES_METRIC]) == ("messages_ready", "messages")


def test_an_external_broker_gets_no_publisher(tmp_path: Path, edit_env: Any) -> None:
    document = external_program(tmp_path, edit_env, None)
    assert of_type(document, FUNCTION) == [] and of_type(document, EVENT_RULE) == []
    assert [u for u in of_type(document, USER) if "queue-metrics" in u["inputs"]["name"]] == []
