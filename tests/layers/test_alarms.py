"""Given an env, the synthesized layers alarm on queue and DLQ depth, broker memory and disk, ECS services
running fewer tasks than desired and the gateway's 5xx, and notify one KMS-encrypted SNS topic per env."""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import pytest
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

from shared.catalog import DEFAULT_STARTUP_SECONDS, HEALTH_INTERVAL, HEALTH_TIMEOUT, load_catalog
from shared.components.alarms import (
    AlarmSpec,
    Metric,
    Query,
    amazon_mq_vends_queue_metrics,
    below_desired_periods,
    queue_alarms,
    service_alarms,
    subscription_aliases,
)
from shared.dag import LAYERS
from shared.envs import DEPLOY_OVERHEAD_SECONDS, AlarmSubscription, load_env
from shared.errors import ConfigError
from shared.synth.engine import dumps, synth_env
from tests import iam_eval
from tests.layers.resource_types import (
    ALARM,
    ENVS,
    EVENT_RULE,
    EVENT_TARGET,
    KMS_KEY,
    LOAD_BALANCER,
    ROTATION,
    SUBSCRIPTION,
    TOPIC,
    TOPIC_POLICY,
)
from tests.synth_helpers import of_type, synth_layers


def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_layers(env, "broker", "messaging", "compute")


def alarms(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The notifying alarms (the ones that run a scaling policy instead: tests/layers/test_autoscaling.py)."""
    return {a["inputs"]["name"]: a["inputs"] for a in of_type(document, ALARM) if not scales(a["inputs"])}


def scales(inputs: dict[str, Any]) -> bool:
    return any(":scalingPolicy:" in action for action in inputs.get("alarmActions", []))


def all_alarms(env: str) -> dict[str, dict[str, Any]]:
    return {name: inputs for layer in ("broker", "messaging", "compute")
            for name, inputs in alarms(layers(env)[layer]).items()}


@cache
def input_shape(service: str, operation: str) -> Any:
    """The request shape of ``operation`` in botocore's newest model of ``service``."""
    directory = Path(botocore.__file__).parent / "data" / service
    (path,) = sorted(directory.glob("*/service-2.json.gz"))[-1:]
    with gzip.open(path) as handle:
        return ServiceModel(json.load(handle)).operation_model(operation).input_shape


def put_metric_alarm_shape() -> Any:
    return input_shape("cloudwatch", "PutMetricAlarm")


def put_metric_alarm_params(inputs: dict[str, Any]) -> dict[str, Any]:
    """The PutMetricAlarm request the provider makes from these inputs (engine names -> API names)."""
    params: dict[str, Any] = {
        "AlarmName": inputs["name"], "AlarmDescription": inputs["alarmDescription"],
        "ComparisonOperator": inputs["comparisonOperator"], "Threshold": float(inputs["threshold"]),
        "EvaluationPeriods": inputs["evaluationPeriods"], "DatapointsToAlarm": inputs["datapointsToAlarm"],
        "TreatMissingData": inputs["treatMissingData"], "AlarmActions": inputs["alarmActions"],
        "OKActions": inputs.get("okActions", []),
    }
    if "metricName" in inputs:
        params.update(MetricName=inputs["metricName"], Namespace=inputs["namespace"], Statistic=inputs["statistic"],
                      Period=inputs["period"],
                      Dimensions=[{"Name": k, "Value": v}
                                  for k, v in sorted((inputs.get("dimensions") or {}).items())])
    for query in inputs.get("metricQueries", []):
        entry: dict[str, Any] = {"Id": query["id"], "Label": query["label"], "ReturnData": query["returnData"]}
        if "expression" in query:
            entry["Expression"] = query["expression"]
        else:
            metric = query["metric"]
            entry["MetricStat"] = {"Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"],
                                              "Dimensions": [{"Name": k, "Value": v}
                                                             for k, v in sorted(metric["dimensions"].items())]},
                                   "Period": metric["period"], "Stat": metric["stat"]}
        params.setdefault("Metrics", []).append(entry)
    return params


# -- what exists --------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_every_env_alarms_on_every_service_queue_dlq_and_the_broker(env: str) -> None:
    names = set(all_alarms(env))
    released = [spec.name for spec in load_catalog() if spec.name in load_env(env).release.images]
    assert released
    for service in released:
        assert f"{env}-ml-tasks-below-desired-{service}" in names, service
    # RabbitMQ 4 (every shipped env): Amazon MQ publishes no per-queue metric; the queue metrics publisher does,
    # so each work queue and DLQ has its alarm, and no broker-wide stand-in is left.
    assert load_env(env).messaging.engine_version == "4.2"
    for spec in load_catalog():
        if spec.consumes:
            assert {f"{env}-ml-queue-depth-{spec.name}", f"{env}-ml-dlq-depth-{spec.name}"} <= names
    assert f"{env}-ml-backlog-broker" not in names
    assert {f"{env}-ml-broker-memory", f"{env}-ml-broker-disk"} <= names
    assert all(name.startswith(f"{env}-ml-") for name in names), "deterministic <env>-ml-<what>-<subject> names"


@pytest.mark.parametrize("env", ENVS)
def test_each_alarm_is_a_valid_put_metric_alarm_request(env: str) -> None:
    validator = ParamValidator()
    for name, inputs in all_alarms(env).items():
        report = validator.validate(put_metric_alarm_params(inputs), put_metric_alarm_shape())
        assert not report.has_errors(), f"{name}: {report.generate_report()}"
        queries = inputs.get("metricQueries", [])
        if queries:
            # PutMetricAlarm: a metric-math alarm names no metric itself, and exactly one query returns data.
            assert not {"metricName", "namespace", "statistic", "period", "dimensions"} & set(inputs), name
            assert sum(q["returnData"] is True for q in queries) == 1, name
            assert all(q["metric"]["period"] % 60 == 0 for q in queries if "metric" in q), name
        else:
            assert inputs["period"] % 60 == 0
        assert inputs["datapointsToAlarm"] <= inputs["evaluationPeriods"]


@pytest.mark.parametrize("env", ENVS)
def test_metrics_and_dimensions_are_the_documented_ones(env: str) -> None:
    found = all_alarms(env)
    messaging = layers(env)["messaging"]
    vhost = messaging["outputs"]["vhost"]
    broker = next(r for r in layers(env)["broker"]["resources"]
                  if r["type"] == "aws:mq/broker:Broker")["inputs"]["brokerName"]
    assert layers(env)["broker"]["outputs"]["broker_name"] == broker
    for spec in load_catalog():
        if spec.queue:
            depth, dlq = found[f"{env}-ml-queue-depth-{spec.name}"], found[f"{env}-ml-dlq-depth-{spec.name}"]
            for alarm, queue in ((depth, spec.queue), (dlq, spec.dead_letter_queue)):
                assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
                    "MLPlatform/RabbitMQ", "MessagesReady", "Maximum")
                assert alarm["dimensions"] == {"VirtualHost": vhost, "Queue": queue}
    memory = {q["id"]: q for q in found[f"{env}-ml-broker-memory"]["metricQueries"]}
    assert {q["metric"]["metricName"] for q in memory.values() if "metric" in q} == {"RabbitMQMemUsed",
                                                                                    "RabbitMQMemLimit"}
    disk = {q["id"]: q for q in found[f"{env}-ml-broker-disk"]["metricQueries"]}
    assert {q["metric"]["metricName"] for q in disk.values() if "metric" in q} == {"RabbitMQDiskFree",
                                                                                  "RabbitMQDiskFreeLimit"}
    assert all(q["metric"]["dimensions"] == {"Broker": broker} for q in [*memory.values(), *disk.values()]
               if "metric" in q)
    tasks = found[f"{env}-ml-tasks-below-desired-inference"]["metricQueries"]
    cluster = layers(env)["compute"]["outputs"]["cluster_name"]
    ecs_name = layers(env)["compute"]["outputs"]["services"]["inference"]["ecs_service_name"]
    assert {q["metric"]["metricName"] for q in tasks if "metric" in q} == {"RunningTaskCount", "DesiredTaskCount"}
    assert {q["metric"]["namespace"] for q in tasks if "metric" in q} == {"ECS/ContainerInsights"}
    assert all(q["metric"]["dimensions"] == {"ClusterName": cluster, "ServiceName": ecs_name}
               for q in tasks if "metric" in q)


@pytest.mark.parametrize("env", ENVS)
def test_missing_data_is_chosen_per_alarm(env: str) -> None:
    by_kind: dict[str, set[str]] = {}
    for name, inputs in all_alarms(env).items():
        kind = name.removeprefix(f"{env}-ml-").rsplit("-", 1)[0]
        kind = "event-delivery" if kind.startswith("event-delivery-") else kind
        by_kind.setdefault(kind, set()).add(inputs["treatMissingData"])
    assert by_kind == {"queue-depth": {"missing"}, "dlq-depth": {"missing"}, "no-consumer": {"missing"},
                       "broker": {"breaching"},
                       "broker-capacity": {"notBreaching"}, "broker-resource": {"notBreaching"},
                       "tasks-below-desired": {"breaching"},
                       "task-stops": {"notBreaching"},
                       "admin-rotation-errors": {"notBreaching"}, "queue-metrics-errors": {"notBreaching"},
                       "queue-metrics-silent": {"breaching"}, "event-delivery": {"notBreaching"},
                       "undelivered-events": {"notBreaching"}, "notification": {"notBreaching"}}


@pytest.mark.parametrize("env", ENVS)
def test_the_publishers_alarms_depend_on_the_schedule_that_starts_their_series(env: str) -> None:
    # Lambda publishes Invocations only for a run, and the silent alarm treats missing data as breaching: it is created
    # after the schedule's target (it may still be evaluated once before the first run: README, Alarms)
    messaging = layers(env)["messaging"]
    (target,) = [r["urn"] for r in of_type(messaging, "aws:cloudwatch/eventTarget:EventTarget")
                 if r["name"] == "queue-metrics-schedule"]
    publisher = [r for r in of_type(messaging, "aws:cloudwatch/metricAlarm:MetricAlarm")
                 if r["inputs"].get("namespace") == "AWS/Lambda"]
    assert {r["inputs"]["treatMissingData"] for r in publisher} == {"breaching", "notBreaching"}
    assert all(target in r["dependencies"] for r in publisher), [r["name"] for r in publisher]


@pytest.mark.parametrize("env", ENVS)
def test_an_event_rule_whose_deliveries_are_refused_notifies(env: str) -> None:
    """The task-stops rule feeds the crash-loop alarms (missing data notBreaching): a log group resource policy or key
    that refuses EventBridge would leave them quietly OK. EventBridge counts such deliveries as FailedInvocations of
    the rule (RuleName, default bus), published only when not zero."""
    from shared.cloudwatch_metrics import metric_problems

    for layer, subject in (("compute", "ecs-task-stops"), ("broker", "admin-rotation-failed")):
        document = layers(env)[layer]
        rule_name = f"{env}-ml-{subject}"
        assert rule_name in {r["inputs"]["name"] for r in of_type(document, EVENT_RULE)}
        alarm = alarms(document)[f"{env}-ml-event-delivery-{subject}"]
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("AWS/Events", "FailedInvocations",
                                                                                  "Sum")
        assert alarm["dimensions"] == {"RuleName": rule_name}
        assert metric_problems(alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == []
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 1
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["alarmActions"] == [layers(env)["broker"]["outputs"]["alarm_topic_arn"]]
    # the table judges AWS/Events now: a dimension EventBridge does not publish, or a name in another case, is refused
    assert metric_problems("AWS/Events", "FailedInvocations", {"Rule": "x"})
    assert metric_problems("AWS/Events", "failedInvocations", {"RuleName": "x"})


def _evaluate(expression: str, values: dict[str, float]) -> float:
    """A CloudWatch metric math ``IF(<condition>, a, b)`` over one minute's values (comparisons, AND, OR)."""
    match = re.fullmatch(r"IF\((.+), (\S+), (\S+)\)", expression)
    assert match, expression
    condition = match.group(1).replace(" AND ", " and ").replace(" OR ", " or ")
    term = r"[a-z_]+ (>=|<=|==|!=|<|>) \d+"
    assert re.fullmatch(rf"{term}( (and|or) {term})*", condition), condition
    chosen = match.group(2) if eval(condition, {}, dict(values)) else match.group(3)  # the condition is checked above
    return float(chosen)


def _fires_on(alarm: dict[str, Any], minute: dict[str, float]) -> bool:
    """Whether one minute of ``minute`` (metric name -> value) breaches the metric-math ``alarm``."""
    ids = {q["metric"]["metricName"]: q["id"] for q in alarm["metricQueries"] if "metric" in q}
    (result,) = [q for q in alarm["metricQueries"] if q["returnData"]]
    value = _evaluate(result["expression"], {ids[name]: value for name, value in minute.items()})
    comparisons = {"GreaterThanOrEqualToThreshold": float.__ge__, "GreaterThanThreshold": float.__gt__}
    return bool(comparisons[alarm["comparisonOperator"]](value, float(alarm["threshold"])))


@pytest.mark.parametrize("env", ENVS)
def test_a_work_queue_with_messages_and_no_consumer_notifies(env: str) -> None:
    # The depth alarm waits for queue_depth (1000) messages: a consumer that lost its AMQP connection inside a
    # running, healthy task leaves a queue of a few jobs an hour waiting for ever without it.
    found = all_alarms(env)
    vhost = layers(env)["messaging"]["outputs"]["vhost"]
    consuming = [spec for spec in load_catalog() if spec.queue]
    assert consuming
    for spec in consuming:
        alarm = found[f"{env}-ml-no-consumer-{spec.name}"]
        metrics = {q["id"]: q["metric"] for q in alarm["metricQueries"] if "metric" in q}
        assert {(m["namespace"], m["metricName"], m["stat"]) for m in metrics.values()} == {
            ("MLPlatform/RabbitMQ", "MessagesReady", "Maximum"), ("MLPlatform/RabbitMQ", "Consumers", "Maximum")}
        assert all(m["dimensions"] == {"VirtualHost": vhost, "Queue": spec.queue} for m in metrics.values())
        assert _fires_on(alarm, {"MessagesReady": 3, "Consumers": 0}), "messages waiting, nobody consuming"
        assert not _fires_on(alarm, {"MessagesReady": 0, "Consumers": 0}), "an idle queue (a quiet dev env)"
        assert not _fires_on(alarm, {"MessagesReady": 40, "Consumers": 2}), "a backlog being worked off"
        assert not _fires_on(alarm, {"MessagesReady": 0, "Consumers": 1})
        assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == load_env(env).alarms.evaluation_periods
        assert alarm["treatMissingData"] == "missing"


def test_a_consumer_that_starts_from_zero_gets_its_start_up_before_the_no_consumer_alarm() -> None:
    from shared.components.alarms import COLD_START_EXTRA_PERIODS, starts_from_zero

    env, catalog = load_env("dev"), load_catalog()
    pairs = {"training": ("training.work", "training.dlq"), "inference": ("inference.work", "inference.dlq")}
    assert starts_from_zero(env, catalog, pairs) == {}
    cold = env.model_copy(update={"services": {**env.services, "training": env.service_settings("training")
                                               .model_copy(update={"min_count": 0, "desired_count": 0})}})
    startup = catalog.services["training"].startup_seconds
    assert starts_from_zero(cold, catalog, pairs) == {"training": startup}
    specs = {spec.name: spec for spec in queue_alarms("dev", env.alarms, "ml-dev", "ml-dev", pairs, "4.2",
                                                      "MLPlatform/RabbitMQ", starts_from_zero(cold, catalog, pairs))}
    periods = env.alarms.evaluation_periods
    assert specs["dev-ml-no-consumer-inference"].evaluation_periods == periods
    assert specs["dev-ml-no-consumer-training"].evaluation_periods == (
        periods + -(-startup // env.alarms.period_seconds) + COLD_START_EXTRA_PERIODS)
    # never past CloudWatch's one-day window below a one-hour period
    wide = env.alarms.model_copy(update={"period_seconds": 1800, "evaluation_periods": 48})
    (spec,) = [s for s in queue_alarms("dev", wide, "ml-dev", "ml-dev", pairs, "4.2", "MLPlatform/RabbitMQ",
                                       {"training": 3000}) if s.name == "dev-ml-no-consumer-training"]
    assert spec.period * spec.evaluation_periods == 86_400


def test_without_the_publisher_rabbitmq_3_watches_consumers_on_amazon_mqs_queue_series() -> None:
    settings = load_env("prod").alarms
    pairs = {"inference": ("inference.work", "inference.dlq")}
    three = {spec.name: spec for spec in queue_alarms("prod", settings, "ml-prod", "ml-prod", pairs, "3.13")}
    spec = three["prod-ml-no-consumer-inference"]
    assert {(q.metric.namespace, q.metric.name) for q in spec.queries if q.metric} == {
        ("AWS/AmazonMQ", "MessageReadyCount"), ("AWS/AmazonMQ", "ConsumerCount")}
    assert all(q.metric.dimensions == {"Broker": "ml-prod", "VirtualHost": "ml-prod", "Queue": "inference.work"}
               for q in spec.queries if q.metric)


def test_a_service_allowed_to_run_no_task_does_not_page_while_it_runs_none() -> None:
    # Container Insights emits no RunningTaskCount/DesiredTaskCount for a service with no task (they are
    # built from its tasks' performance events), so "breaching" would page for ever on a service idle at 0.
    # (The env loader admits min_count 0 only where a metric can wake the service: tests/test_envs.py.)
    services = {"idle": "dev-idle", "busy": "dev-busy"}
    specs = {spec.name.removeprefix("dev-ml-tasks-below-desired-"): spec for spec in service_alarms(
        "dev", load_env("dev").alarms, "dev-ml-platform", dict(services), may_run_none=frozenset({"idle"}))}
    assert {subject: spec.treat_missing_data for subject, spec in specs.items()} == {
        "idle": "notBreaching", "busy": "breaching"}
    # It sees tasks that never get to run, not a crash loop of tasks that run for minutes (a service short of a
    # task only between a stop and its replacement's start): its description must not promise one.
    for spec in specs.values():
        assert "crash loop" not in spec.description.split(";")[0], spec.description
        assert "image pull errors" in spec.description
    # A minute with a desired count but no running-task datapoint counts as every task missing.
    for spec in specs.values():
        (result,) = [query for query in spec.queries if query.return_data]
        assert result.expression == "desired - FILL(running, 0)"


@pytest.mark.parametrize("env", ENVS)
def test_a_failing_broker_admin_rotation_notifies(env: str) -> None:
    # Secrets Manager reports a failed rotation nowhere by itself: the function's Lambda Errors metric
    # (FunctionName = the function's name) is the signal, silent between rotations.
    broker = layers(env)["broker"]
    (function,) = [r for r in broker["resources"] if r["type"] == "aws:lambda/function:Function"]
    alarm = alarms(broker)[f"{env}-ml-admin-rotation-errors-broker"]
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["dimensions"] == {"FunctionName": function["inputs"]["name"]}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 1
    assert alarm["treatMissingData"] == "notBreaching"


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge's matching of the exact-value patterns used here: every key of the pattern is in the event, a list
    of values matches an event value equal to one of them (EventBridge user guide, "Event patterns")."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(key in event and matches(value, event[key])
                                               for key, value in pattern.items())
    assert isinstance(pattern, list) and all(isinstance(value, str) for value in pattern), pattern
    return event in pattern


def rotation_failed_event(env: str, secret_arn: str, event_name: str = "RotationFailed") -> dict[str, Any]:
    """A Secrets Manager rotation failure as CloudTrail delivers it to the default bus (Secrets Manager user guide,
    "Match Secrets Manager events with EventBridge"; EventBridge user guide, "AWS service events delivered via AWS
    CloudTrail")."""
    settings = load_env(env)
    return {"version": "0", "source": "aws.secretsmanager", "detail-type": "AWS Service Event via CloudTrail",
            "account": settings.account_id, "region": settings.region,
            "detail": {"eventSource": "secretsmanager.amazonaws.com", "eventName": event_name,
                       "eventType": "AwsServiceEvent", "additionalEventData": {"SecretId": secret_arn}}}


@pytest.mark.parametrize("env", ENVS)
def test_the_rotation_schedule_is_created_after_the_rule_and_target_that_report_its_test(env: str) -> None:
    """Configuring the schedule with rotate_immediately off makes Secrets Manager run the function's testSecret step
    at once (botocore secretsmanager RotateSecretRequest.RotateImmediately); a failure is reported once, as
    TestRotationFailed. The rule must match it and its target deliver it by then: the schedule depends on both."""
    broker = layers(env)["broker"]
    (rule,) = [r for r in of_type(broker, EVENT_RULE) if r["inputs"]["name"] == f"{env}-ml-admin-rotation-failed"]
    (target,) = [t for t in of_type(broker, EVENT_TARGET) if t["inputs"]["rule"] == rule["inputs"]["name"]]
    (schedule,) = of_type(broker, ROTATION)
    assert {rule["urn"], target["urn"]} <= set(schedule["dependencies"]), schedule["dependencies"]


@pytest.mark.parametrize("env", ENVS)
def test_a_failed_admin_rotation_reaches_the_topic_through_its_policy_and_key(env: str) -> None:
    """A rotation Lambda never ran (an Inactive VPC function, throttling) sets no Errors data point: Secrets Manager's
    RotationFailed event is the signal, sent to the alarm topic, whose topic policy and key policy must both let
    EventBridge publish (a CMK-encrypted topic drops what the key refuses, silently)."""
    broker = layers(env)["broker"]
    settings = load_env(env)
    secret_arn = broker["outputs"]["admin_secret_arn"]
    topic_arn = broker["outputs"]["alarm_topic_arn"]
    rules = {r["inputs"]["name"]: r for r in of_type(broker, EVENT_RULE)}
    rule = rules[f"{env}-ml-admin-rotation-failed"]
    pattern = json.loads(rule["inputs"]["eventPattern"])
    assert matches(pattern, rotation_failed_event(env, secret_arn))
    assert matches(pattern, rotation_failed_event(env, secret_arn, "TestRotationFailed"))
    assert not matches(pattern, rotation_failed_event(env, secret_arn, "RotationSucceeded"))
    assert not matches(pattern, rotation_failed_event(env, secret_arn.replace("admin", "other")))
    (target,) = [t for t in of_type(broker, EVENT_TARGET) if t["inputs"]["rule"] == rule["inputs"]["name"]]
    assert target["inputs"]["arn"] == topic_arn
    template = target["inputs"]["inputTransformer"]["inputTemplate"]
    # EventBridge reads every <name> as a variable, in a JSON string too: only its predefined ones, no paths defined
    assert "inputPaths" not in target["inputs"]["inputTransformer"]
    assert re.findall(r"<[^<>]*>", template) == ["<aws.events.event.json>"]
    message = json.loads(template.replace("<aws.events.event.json>", "{}"))
    assert env in message["summary"] and "README.md#" in message["summary"]
    (topic_policy,) = of_type(broker, TOPIC_POLICY)
    assert topic_policy["urn"] in target["dependencies"], "the target after the policy that lets it publish"

    rule_arn = f"arn:aws:events:{settings.region}:{settings.account_id}:rule/{rule['inputs']['name']}"
    (topic,) = of_type(broker, TOPIC)
    (key,) = [k for k in of_type(broker, KMS_KEY) if k["urn"] in topic["property_dependencies"]["kmsMasterKeyId"]]

    def of_events(policy: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in s.items() if k != "Principal"} for s in json.loads(policy)["Statement"]
                if s.get("Principal") == {"Service": "events.amazonaws.com"}]

    context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": settings.account_id}
    assert iam_eval.allows(of_events(topic_policy["inputs"]["policy"]), "sns:Publish", topic_arn, context)
    other_account = {"aws:SourceArn": rule_arn.replace(settings.account_id, "999999999999"),
                     "aws:SourceAccount": "999999999999"}
    assert not iam_eval.allows(of_events(topic_policy["inputs"]["policy"]), "sns:Publish", topic_arn, other_account)
    # KMS sees no aws:Source* key in the call EventBridge's delivery makes: the key must allow it with none.
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert iam_eval.allows(of_events(key["inputs"]["policy"]), action, "*", {}), action


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_notifies_the_envs_topic_on_alarm_and_ok(env: str) -> None:
    topic_arn = layers(env)["broker"]["outputs"]["alarm_topic_arn"]
    (topic,) = of_type(layers(env)["broker"], TOPIC)
    assert of_type(layers(env)["messaging"], TOPIC) == of_type(layers(env)["compute"], TOPIC) == []
    assert topic["inputs"]["name"] == f"{env}-ml-alarms"
    for name, inputs in all_alarms(env).items():
        assert inputs["alarmActions"] == [topic_arn] and inputs["okActions"] == [topic_arn], name


@pytest.mark.parametrize("env", ENVS)
def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use_for_these_alarms_only(env: str) -> None:
    messaging = layers(env)["broker"]
    (topic,) = of_type(messaging, TOPIC)
    assert topic["inputs"]["kmsMasterKeyId"].startswith("arn:aws:kms:"), "a customer managed key, not aws/sns"
    (key_urn,) = topic["property_dependencies"]["kmsMasterKeyId"]
    (key,) = [k for k in of_type(messaging, KMS_KEY) if k["urn"] == key_urn]
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["protect"] is load_env(env).protect
    settings = load_env(env)
    (topic_policy,) = of_type(messaging, TOPIC_POLICY)
    policies = [json.loads(key["inputs"]["policy"]), json.loads(topic_policy["inputs"]["policy"])]
    for policy in policies:
        (statement,) = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": settings.account_id}
        pattern = statement["Condition"]["ArnLike"]["aws:SourceArn"]
        alarm_arn = f"arn:aws:cloudwatch:{settings.region}:{settings.account_id}:alarm:"
        for name in all_alarms(env):
            assert iam_eval.arn_like(pattern, f"{alarm_arn}{name}"), name
    key_statement = json.loads(key["inputs"]["policy"])["Statement"][-1]
    assert set(key_statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


# -- from the env file --------------------------------------------------------------------------------
def test_subscriptions_and_thresholds_come_from_the_env_file(edit_env: Any) -> None:
    edit_env("dev", lambda data: data.update(alarms={
        "email": ["oncall@example.com"],
        "subscriptions": [{"protocol": "https", "endpoint": "https://events.pagerduty.example/integration/x"}],
        "queue_depth": 250, "dead_letter_depth": 5, "broker_memory_percent": 70, "evaluation_periods": 3}))
    documents = synth_env("dev", ["broker", "messaging", "compute"])
    subscriptions = {(s["inputs"]["protocol"], s["inputs"]["endpoint"])
                     for s in of_type(documents["broker"], SUBSCRIPTION)}
    assert subscriptions == {("email", "oncall@example.com"),
                             ("https", "https://events.pagerduty.example/integration/x")}
    found = {**alarms(documents["broker"]), **alarms(documents["messaging"]), **alarms(documents["compute"])}
    assert (found["dev-ml-queue-depth-training"]["threshold"], found["dev-ml-dlq-depth-training"]["threshold"]) == (
        250, 5)
    assert found["dev-ml-broker-memory"]["threshold"] == 70
    # the gateway's 5xx and a failed rotation are events: one period is enough for them; task stops are counted
    # over one window of their own (tests/layers/test_task_stops.py)
    # a called service's tasks-below-desired waits out its gated start-up too (tests/layers/test_serve_gate.py)
    catalog = load_catalog()  # preprocess and inference of the shipped four, and any called service a user adds
    gated = {f"dev-ml-tasks-below-desired-{spec.name}" for spec in catalog if catalog.callers(spec.name)}
    # delivery failures (events, notifications) alarm on the first: each is a lost message (or a kept one, undelivered)
    assert {a["evaluationPeriods"] for name, a in found.items() if "5xx" not in name and "rotation" not in name
            and "task-stops" not in name and "delivery" not in name and "resource-alarm" not in name
            and "undelivered" not in name
            and name not in gated} == {3}
    # 60 s start-up, then the next check 30 s on and its 5 s timeout, 120 s to place and pull: 215 s, 4 minutes + 2
    shipped_gated = ("dev-ml-tasks-below-desired-preprocess", "dev-ml-tasks-below-desired-inference")
    assert {found[name]["evaluationPeriods"] for name in shipped_gated} == {
        below_desired_periods(load_env("dev").alarms, DEFAULT_STARTUP_SECONDS + HEALTH_INTERVAL + HEALTH_TIMEOUT
                              + DEPLOY_OVERHEAD_SECONDS)} == {6}


def test_an_https_endpoint_is_a_secret_and_its_basic_auth_password_in_no_name(edit_env: Any) -> None:
    """SNS sends an https endpoint's user:password@ as basic auth (SNS developer guide, "Fanout Amazon SNS
    notifications to HTTPS endpoints"): the endpoint is then a secret in the state, and the resource's name -- in
    its URN, never encrypted, printed by every preview and up -- is made without it. An endpoint without credentials
    keeps the name it always had (no replacement of existing subscriptions); every https endpoint is a secret (an
    integration URL carries its key in its path)."""
    hook, plain_hook = "https://alarms:Hunter2Secret@hooks.example.com/sns", "https://events.pagerduty.example/x"
    edit_env("dev", lambda data: data.update(alarms={"subscriptions": [
        {"protocol": "https", "endpoint": hook}, {"protocol": "https", "endpoint": plain_hook}]}))
    broker = synth_env("dev", ["broker"])["broker"]
    by_endpoint = {s["inputs"]["endpoint"]: s for s in of_type(broker, SUBSCRIPTION)}
    assert by_endpoint[hook]["secret_inputs"] == ["endpoint"]
    assert re.fullmatch(r"alarms-https-hooks-example-com-[0-9a-f]{10}", by_endpoint[hook]["name"])
    assert by_endpoint[plain_hook]["secret_inputs"] == ["endpoint"]  # a key in its path is a credential too
    assert re.fullmatch(r"alarms-https-events-pagerduty-example-[0-9a-f]{10}", by_endpoint[plain_hook]["name"])
    names = [value for resource in broker["resources"] for value in (resource["urn"], resource["name"])]
    assert not [name for name in names if "hunter2secret" in name.lower()]


def test_an_https_endpoint_renamed_without_its_password_keeps_its_subscription(edit_env: Any) -> None:
    """The subscription of an endpoint with user:password@ had a name with them: renamed without, the engine would
    create the new resource and then delete the old one, and SNS answers a Subscribe of the same topic, protocol and
    endpoint with the existing subscription's ARN (go-to-k/cdkd #1967, measured; terraform-provider-aws #10930), so the
    old one's Unsubscribe would end the subscription the new resource holds: notifications reach nobody, silently.
    The old name is an alias (the engine no longer writes aliases to the state: pulumi/pulumi #14042)."""
    hook, plain_hook = "https://alarms:Hunter2Secret@hooks.example.com/sns", "https://events.pagerduty.example/x"
    edit_env("dev", lambda data: data.update(alarms={"subscriptions": [
        {"protocol": "https", "endpoint": hook}, {"protocol": "https", "endpoint": plain_hook}]}))
    broker = synth_env("dev", ["broker"])["broker"]
    by_endpoint = {s["inputs"]["endpoint"]: s for s in of_type(broker, SUBSCRIPTION)}
    renamed, plain = by_endpoint[hook], by_endpoint[plain_hook]
    parent = renamed["urn"].removesuffix(renamed["name"])
    assert renamed.get("aliases") == [parent + "alarms-https-https-alarms-hunter2secret-hooks-example-com-sns",
                                      parent + "alarms-https-https-hooks-example-com-sns"]
    assert plain.get("aliases") == [parent + "alarms-https-https-events-pagerduty-example-x"]  # one name before


def test_an_https_subscription_is_named_by_its_host_and_a_digest_not_by_the_key_in_its_path(edit_env: Any) -> None:
    """An integration URL carries its key in the path (PagerDuty's /integration/<key>/enqueue): a name made of the
    endpoint's first 60 letters and digits held 21 characters of the key, in a URN that is never encrypted and that
    every preview and up prints. The name is the host and a digest of the whole endpoint; the names it had (with and
    without user:password@) are its aliases, so the subscription is renamed in place; other protocols keep theirs."""
    key = "0123456789abcdef0123456789abcdef"[::-1]
    pager = f"https://events.pagerduty.com/integration/{key}/enqueue"
    hook = "https://alarms:Hunter2Secret@hooks.example.com/sns"
    edit_env("dev", lambda data: data.update(alarms={"email": ["oncall@example.com"], "subscriptions": [
        {"protocol": "https", "endpoint": pager}, {"protocol": "https", "endpoint": hook},
        {"protocol": "sms", "endpoint": "+15555550100"}]}))
    broker = synth_env("dev", ["broker"])["broker"]
    by_endpoint = {s["inputs"]["endpoint"]: s for s in of_type(broker, SUBSCRIPTION)}
    printed = [value for resource in broker["resources"] for value in (resource["urn"], resource["name"])]
    runs = {key[i:i + 8] for i in range(len(key) - 7)}
    assert not [name for name in printed if any(run in name.lower() for run in runs)]
    assert not [name for name in printed if "hunter2secret" in name.lower()]
    assert re.fullmatch(r"alarms-https-events-pagerduty-com-[0-9a-f]{10}", by_endpoint[pager]["name"])
    assert re.fullmatch(r"alarms-https-hooks-example-com-[0-9a-f]{10}", by_endpoint[hook]["name"])
    assert by_endpoint[pager]["name"] != by_endpoint[hook]["name"]

    def urn_named(subscription: dict[str, Any], name: str) -> str:
        return subscription["urn"].removesuffix(subscription["name"]) + name

    assert by_endpoint[pager]["aliases"] == [urn_named(by_endpoint[pager], "alarms-https-https-events-pagerduty-com-"
                                                                           f"integration-{key[:21]}")]
    assert by_endpoint[hook]["aliases"] == [
        urn_named(by_endpoint[hook], "alarms-https-https-alarms-hunter2secret-hooks-example-com-sns"),
        urn_named(by_endpoint[hook], "alarms-https-https-hooks-example-com-sns")]
    # the names of other protocols' subscriptions are as they always were, no alias
    assert by_endpoint["oncall@example.com"]["name"] == "alarms-email-oncall-example-com"
    assert by_endpoint["+15555550100"]["name"] == "alarms-sms-15555550100"
    assert "aliases" not in by_endpoint["oncall@example.com"] and "aliases" not in by_endpoint["+15555550100"]


def test_a_name_another_subscription_had_is_no_alias_of_this_one() -> None:
    """https://u:p@h/x and https://h/x both had the name alarms-https-https-h-x once the credentials were left out
    (only the second before): it stays the second's alias. Two resources claiming one alias is the engine's
    "Duplicate resource alias" error (pulumi/pulumi pkg/diag/errors.go, 2008)."""
    with_password = AlarmSubscription(protocol="https", endpoint="https://u:p@hooks.example.com/x")
    plain = AlarmSubscription(protocol="https", endpoint="https://hooks.example.com/x")
    both = [with_password, plain]
    assert subscription_aliases("alarms", with_password, both) == ["alarms-https-https-u-p-hooks-example-com-x"]
    assert subscription_aliases("alarms", with_password, [with_password]) == [
        "alarms-https-https-u-p-hooks-example-com-x", "alarms-https-https-hooks-example-com-x"]
    assert subscription_aliases("alarms", plain, both) == ["alarms-https-https-hooks-example-com-x"]
    email = AlarmSubscription(protocol="email", endpoint="a@example.com")
    assert subscription_aliases("alarms", email, [email]) == []


def test_a_lambda_subscription_of_the_envs_account_may_be_invoked_by_sns_for_this_topic(edit_env: Any) -> None:
    """SNS delivers to a Lambda subscription as sns.amazonaws.com: the function's resource policy must allow it
    (for this topic only), or every notification is refused while the subscription looks confirmed."""
    account, region = load_env("dev").account_id, load_env("dev").region
    own = f"arn:aws:lambda:{region}:{account}:function:pager"
    elsewhere = f"arn:aws:lambda:{region}:999999999999:function:pager"
    edit_env("dev", lambda data: data.update(alarms={"subscriptions": [
        {"protocol": "lambda", "endpoint": own}, {"protocol": "lambda", "endpoint": elsewhere}]}))
    broker = synth_env("dev", ["broker"])["broker"]
    (topic,) = of_type(broker, TOPIC)
    # the broker admin rotation's permission (Secrets Manager) aside, one for SNS, on the env account's function
    (permission,) = [p for p in of_type(broker, "aws:lambda/permission:Permission")
                     if p["inputs"]["principal"] == "sns.amazonaws.com"]
    assert (permission["inputs"]["function"], permission["inputs"]["action"]) == (own, "lambda:InvokeFunction")
    assert permission["property_dependencies"]["sourceArn"] == [topic["urn"]]
    subscriptions = {s["inputs"]["endpoint"]: s for s in of_type(broker, SUBSCRIPTION)}
    assert set(subscriptions) == {own, elsewhere}
    assert permission["urn"] in subscriptions[own]["dependencies"]


def test_no_subscription_by_default() -> None:
    assert of_type(layers("dev")["broker"], SUBSCRIPTION) == []


@pytest.mark.parametrize(("alarms_section", "key"), [
    ({"email": ["not-an-address"]}, "alarms.email"),
    ({"subscriptions": [{"protocol": "https", "endpoint": "http://plain.example"}]}, "alarms.subscriptions.0"),
    ({"subscriptions": [{"protocol": "https", "endpoint": "https://a:b@hooks.example/k"},
                        {"protocol": "https", "endpoint": "https://a:c@hooks.example/k"}]}, "alarms"),
    ({"period_seconds": 90}, "alarms.period_seconds"),
    ({"period_seconds": 1800, "evaluation_periods": 60}, "alarms"),
    ({"broker_memory_percent": 120}, "alarms.broker_memory_percent"),
    ({"pager": "x"}, "alarms.pager"),
])
def test_bad_alarm_settings_are_bad_input_naming_the_key(edit_env: Any, alarms_section: dict[str, Any],
                                                         key: str) -> None:
    edit_env("dev", lambda data: data.update(alarms=alarms_section))
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert error.value.key == key and error.value.exit_code == 2
    assert "a:b@" not in str(error.value) and "a:c@" not in str(error.value)  # a password is never printed


def test_a_public_gateway_gets_a_5xx_alarm_on_its_load_balancer(edit_env: Any) -> None:
    edit_env("dev", lambda data: data.setdefault("compute", {}).update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/abc"))
    compute = synth_env("dev", ["compute"])["compute"]
    found = alarms(compute)
    gateways = [s.name for s in load_catalog() if s.public]
    assert gateways and {f"dev-ml-gateway-5xx-{g}" for g in gateways} == {n for n in found if "5xx" in n}
    (load_balancer,) = of_type(compute, LOAD_BALANCER)
    queries = {q["id"]: q for q in found[f"dev-ml-gateway-5xx-{gateways[0]}"]["metricQueries"]}
    assert {q["metric"]["metricName"] for q in queries.values() if "metric" in q} == {
        "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"}
    assert {q["metric"]["namespace"] for q in queries.values() if "metric" in q} == {"AWS/ApplicationELB"}
    suffixes = {q["metric"]["dimensions"]["LoadBalancer"] for q in queries.values() if "metric" in q}
    # The load balancer's arnSuffix (app/<name>/<id>), the dimension its metrics carry.
    assert len(suffixes) == 1 and suffixes.pop().startswith("app/")
    (alarm,) = [a for a in of_type(compute, ALARM) if "5xx" in a["name"]]
    assert load_balancer["urn"] in alarm["property_dependencies"]["metricQueries"]
    assert found[f"dev-ml-gateway-5xx-{gateways[0]}"]["treatMissingData"] == "notBreaching"
    assert "FILL(" in next(q["expression"] for q in queries.values() if q.get("returnData"))


def test_a_public_gateways_certificate_alarms_before_it_expires(edit_env: Any) -> None:
    """An imported certificate never renews, and ACM cannot renew one whose DNS validation is gone: without an alarm
    the gateway serves an expired certificate one day, with no change to the repo."""
    certificate = "arn:aws:acm:eu-west-1:111111111111:certificate/abc"
    edit_env("dev", lambda data: data.setdefault("compute", {}).update(public_gateway=True,
                                                                       certificate_arn=certificate))
    found = alarms(synth_env("dev", ["compute"])["compute"])
    alarm = found["dev-ml-certificate-expiry-gateway"]
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
        "AWS/CertificateManager", "DaysToExpiry", "Minimum")
    assert alarm["dimensions"] == {"CertificateArn": certificate}
    assert (alarm["comparisonOperator"], alarm["threshold"], alarm["period"]) == (
        "LessThanOrEqualToThreshold", 30, 86_400)
    # ACM stops publishing the metric once the certificate has expired: silence must stay an alarm
    assert alarm["treatMissingData"] == "breaching"
    assert not [n for n in alarms(layers("dev")["compute"]) if "certificate" in n]  # no gateway, no alarm


def test_without_a_public_gateway_there_is_no_5xx_alarm() -> None:
    assert not [n for n in alarms(layers("dev")["compute"]) if "5xx" in n]


def test_an_external_broker_has_no_amazon_mq_alarms_but_the_topic_stays(tmp_path: Path, edit_env: Any) -> None:
    from tests.layers.test_messaging import external_program

    document = external_program(tmp_path, edit_env, None)
    assert alarms(document) == {}, "no queue alarms without Amazon MQ metrics"
    broker = synth_env("dev", ["broker"])["broker"]  # the env file is the external one now
    # no Amazon MQ alarm; the topic's own delivery alarm stays with the topic, as does AWS's notice of Fargate tasks it
    # will stop (an account's event, whatever the broker) with its delivery alarm
    assert list(alarms(broker)) == ["dev-ml-event-delivery-fargate-task-retirement", "dev-ml-notification-delivery",
                                    "dev-ml-undelivered-events-broker"]
    assert len(of_type(broker, TOPIC)) == 1
    assert [rule["inputs"]["name"] for rule in of_type(broker, "aws:cloudwatch/eventRule:EventRule")] == [
        "dev-ml-fargate-task-retirement"]
    assert broker["outputs"]["alarm_topic_arn"] and broker["outputs"].get("broker_name") is None


@pytest.mark.parametrize("env", ENVS)
def test_a_subscription_sns_cannot_deliver_to_notifies(env: str) -> None:
    """A subscriber whose policy or key refuses SNS, a failing https endpoint, an SMS spend limit: the subscription is
    accepted and looks fine while every alarm reaches nobody there. AWS/SNS NumberOfNotificationsFailed of the topic
    (published only when something was sent: missing is notBreaching) alarms on the first failure."""
    broker = layers(env)["broker"]
    (topic,) = of_type(broker, TOPIC)
    alarm = alarms(broker)[f"{env}-ml-notification-delivery"]
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("AWS/SNS", "NumberOfNotificationsFailed",
                                                                             "Sum")
    assert alarm["dimensions"] == {"TopicName": topic["inputs"]["name"]} == {"TopicName": f"{env}-ml-alarms"}
    assert (alarm["threshold"], alarm["evaluationPeriods"], alarm["treatMissingData"]) == (1, 1, "notBreaching")
    assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize("env", ENVS)
def test_a_node_blocking_the_clusters_publishers_notifies(env: str) -> None:
    """One node at its memory or disk limit blocks every publisher of the cluster, while the broker-wide alarms read
    sums over the nodes. RabbitMQ logs each alarm it sets ("<source> resource limit alarm set on node <node>.",
    rabbit_alarm.erl): a metric filter on the broker's general log counts them, and an alarm on the first."""
    from shared.components.broker import RESOURCE_ALARM_PATTERN

    broker = layers(env)["broker"]
    (flt,) = [r["inputs"] for r in of_type(broker, "aws:cloudwatch/logMetricFilter:LogMetricFilter")]
    assert flt["pattern"] == RESOURCE_ALARM_PATTERN == '"resource limit alarm set on node"'
    assert flt["name"] == f"{env}-ml-broker-resource-alarms"
    transformation = flt["metricTransformation"]
    alarm = alarms(broker)[f"{env}-ml-broker-resource-alarm"]
    assert (transformation["namespace"], transformation["name"], transformation["value"]) == (
        alarm["namespace"], alarm["metricName"], "1") == ("MLPlatform/Broker", "ResourceAlarmsSet", "1")
    assert "dimensions" not in transformation and "dimensions" not in alarm
    assert (alarm["statistic"], alarm["threshold"], alarm["evaluationPeriods"], alarm["treatMissingData"]) == (
        "Sum", 1, 1, "notBreaching")
    for line in ("2026-12-06 04:00:00.000 [warning] <0.456.0> memory resource limit alarm set on node "
                 "rabbit@ip-10-30-1-5.",
                 "disk resource limit alarm set on node 'rabbit@ip-10-30-2-7'."):
        assert RESOURCE_ALARM_PATTERN.strip('"') in line


def test_alarm_synth_is_deterministic() -> None:
    again = synth_env("dev", ["broker", "messaging", "compute"])
    for layer in ("broker", "messaging", "compute"):
        assert dumps(again[layer]) == dumps(layers("dev")[layer])


# -- the spec's own guards (what PutMetricAlarm would refuse) -------------------------------------------
def _spec(**changes: Any) -> AlarmSpec:
    base: dict[str, Any] = dict(
        name="dev-ml-x-y", description="d", comparison="GreaterThanThreshold", threshold=0,
        treat_missing_data="missing", period=60, evaluation_periods=1,
        queries=(Query(id="a", label="a", metric=Metric("N", "M")), Query(id="e", label="e", expression="a",
                                                                             return_data=True)))
    base.update(changes)
    return AlarmSpec(**base)


@pytest.mark.parametrize(("changes", "message"), [
    ({"queries": (Query(id="a", label="a", metric=Metric("N", "M"), return_data=True),
                  Query(id="e", label="e", expression="a", return_data=True))}, "exactly one"),
    ({"queries": (Query(id="a", label="a", metric=Metric("N", "M")),)}, "exactly one"),
    ({"queries": (Query(id="A", label="a", metric=Metric("N", "M"), return_data=True),)}, "query ids"),
    ({"period": 90}, "period"),
    ({"treat_missing_data": "zero"}, "treat_missing_data"),
    ({"name": "has space"}, "alarm name"),
    ({"period": 600, "evaluation_periods": 145}, "longer than CloudWatch allows"),
    ({"metric": Metric("N", "M")}, "not both"),
])
def test_invalid_alarm_specs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**changes)


def test_rabbitmq_3_alarms_on_the_same_published_series(edit_env: Any) -> None:
    """On 3.x Amazon MQ publishes its own per-queue MessageCount, but the publisher runs for every amazon-mq env:
    the alarms read the one series autoscaling reads, whatever the engine."""
    edit_env("dev", lambda data: (data["messaging"].update(engine_version="3.13"),
                                  data.update(alarms={"queue_depth": 250, "dead_letter_depth": 5})))
    documents = synth_env("dev", ["broker", "messaging"])
    found = alarms(documents["messaging"])
    vhost = documents["messaging"]["outputs"]["vhost"]
    for spec in load_catalog():
        if spec.queue:
            depth, dlq = found[f"dev-ml-queue-depth-{spec.name}"], found[f"dev-ml-dlq-depth-{spec.name}"]
            assert (depth["namespace"], depth["metricName"]) == ("MLPlatform/RabbitMQ", "MessagesReady")
            assert depth["dimensions"] == {"VirtualHost": vhost, "Queue": spec.queue}
            assert dlq["dimensions"]["Queue"] == spec.dead_letter_queue
            assert (depth["threshold"], dlq["threshold"]) == (250, 5)
    assert "dev-ml-backlog-broker" not in found


def test_without_the_publisher_rabbitmq_3_alarms_on_amazon_mqs_queue_series_and_4_on_the_broker() -> None:
    settings = load_env("prod").alarms
    pairs = {"inference": ("inference.work", "inference.dlq")}
    three = {spec.name: spec for spec in queue_alarms("prod", settings, "ml-prod", "ml-prod", pairs, "3.13")}
    depth = three["prod-ml-queue-depth-inference"]
    assert depth.metric == Metric("AWS/AmazonMQ", "MessageCount", "Maximum",
                                  {"Broker": "ml-prod", "VirtualHost": "ml-prod", "Queue": "inference.work"})
    (backlog,) = queue_alarms("prod", settings, "ml-prod", "ml-prod", pairs, "4.2")
    assert (backlog.name, backlog.metric) == (
        "prod-ml-backlog-broker", Metric("AWS/AmazonMQ", "MessageReadyCount", "Maximum", {"Broker": "ml-prod"}))


@pytest.mark.parametrize(("engine_version", "vends"), [("3.11", True), ("3.13", True), ("3.13.7", True),
                                                       ("4", False), ("4.2", False), ("4.2.1", False)])
def test_amazon_mq_vends_queue_metrics_for_rabbitmq_3_only(engine_version: str, vends: bool) -> None:
    assert amazon_mq_vends_queue_metrics(engine_version) is vends


@pytest.mark.parametrize(("engine_version", "published"), [("3.13", None), ("4.2", None),
                                                          ("4.2", "MLPlatform/RabbitMQ")])
def test_every_alarm_builder_watches_a_series_aws_publishes(engine_version: str, published: str | None) -> None:
    # Each metric every builder emits, against the table of published series (shared/cloudwatch_metrics.py):
    # a name or dimension set AWS does not publish would deploy and never receive a data point.
    from shared.cloudwatch_metrics import metric_problems
    from shared.components.alarms import (
        broker_alarms,
        certificate_alarms,
        gateway_alarms,
        queue_alarms,
        rotation_alarms,
        service_alarms,
    )

    settings = load_env("prod").alarms
    specs = [*queue_alarms("prod", settings, "ml-prod", "ml-prod", {"inference": ("inference.work", "inference.dlq")},
                           engine_version, published),
             *broker_alarms("prod", settings, "ml-prod"),
             *rotation_alarms("prod", settings, "ml-platform-prod-broker-admin-rotation"),
             *service_alarms("prod", settings, "prod-ml-platform", {"inference": "inference"}),
             *gateway_alarms("prod", settings, "gateway", "app/prod-gateway-3f2a1b/50dc6c495c0c9188"),
             *certificate_alarms("prod", "arn:aws:acm:eu-west-1:111111111111:certificate/abc")]
    metrics = [s.metric for s in specs if s.metric] + [q.metric for s in specs for q in s.queries if q.metric]
    assert len(metrics) >= 10
    for metric in metrics:
        assert metric_problems(metric.namespace, metric.name, metric.dimensions) == [], metric


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_broker_layer_alarms_at_80_percent_of_what_the_broker_holds(name: str) -> None:
    from shared.amazonmq import broker_limits
    from shared.broker_capacity import NOTE_PERCENT, alarm_thresholds
    from shared.cloudwatch_metrics import metric_problems

    env = load_env(name)
    messaging = env.messaging
    limits = broker_limits(messaging.engine_version, messaging.instance_type, messaging.deployment_mode)
    assert limits is not None
    found = alarms(layers(name)["broker"])
    broker = layers(name)["broker"]["outputs"]["broker_name"]
    nodes = {"SINGLE_INSTANCE": 1, "CLUSTER_MULTI_AZ": 2}[messaging.deployment_mode]  # a cluster less one node
    for what, metric, limit in (("connections", "ConnectionCount", limits.connections * nodes),
                                ("channels", "ChannelCount", limits.channels * nodes),
                                ("queues", "QueueCount", limits.queues)):
        alarm = found[f"{name}-ml-broker-capacity-{what}"]
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("AWS/AmazonMQ", metric, "Maximum")
        assert alarm["dimensions"] == {"Broker": broker}
        assert metric_problems(alarm["namespace"], metric, alarm["dimensions"]) == []
        assert alarm["threshold"] == limit * NOTE_PERCENT // 100
        assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["treatMissingData"] == "notBreaching"
    assert alarm_thresholds("4.2", "mq.m5.large", "SINGLE_INSTANCE") == {}, "no alarm on a broker AWS does not offer"


def test_a_new_instance_type_moves_the_capacity_thresholds_in_place() -> None:
    """The names do not depend on the broker's size, so a change of messaging.instance_type updates each alarm's
    threshold in place (PutMetricAlarm on the same name) instead of replacing it."""
    from shared.components.alarms import capacity_alarms

    settings = load_env("prod").alarms
    large = capacity_alarms("prod", settings, "ml-prod", "4.2", "mq.m7g.large", "CLUSTER_MULTI_AZ")
    xlarge = capacity_alarms("prod", settings, "ml-prod", "4.2", "mq.m7g.xlarge", "CLUSTER_MULTI_AZ")
    assert [spec.name for spec in large] == [spec.name for spec in xlarge]
    assert all(small.threshold < big.threshold for small, big in zip(large, xlarge, strict=True))


def test_the_capacity_alarms_keep_to_the_smaller_broker_until_amazon_mq_applies_the_env_s() -> None:
    """Amazon MQ applies a new instance type or engine at a reboot or in the maintenance window, up to a week after
    the `up` that asked for it: alarms at the new type's limits would fire only past what the broker still running
    holds (80 % of mq.m7g.xlarge's connections is more than mq.m7g.large holds). Each takes the lower figure of the
    two, whichever is applied when; once the broker runs the env's type, the env's."""
    from shared.broker_capacity import alarm_thresholds
    from shared.components.alarms import capacity_alarms

    settings = load_env("prod").alarms
    mode = "CLUSTER_MULTI_AZ"

    def thresholds(engine: str, instance_type: str, running: tuple[str, str] | None) -> dict[str, float]:
        return {spec.metric.name if spec.metric else "": spec.threshold for spec in capacity_alarms(
            "prod", settings, "ml-prod", engine, instance_type, mode, running)}

    large, xlarge = alarm_thresholds("4.2", "mq.m7g.large", mode), alarm_thresholds("4.2", "mq.m7g.xlarge", mode)
    assert thresholds("4.2", "mq.m7g.xlarge", ("mq.m7g.large", "4.2")) == large  # the bigger type pending
    assert thresholds("4.2", "mq.m7g.large", ("mq.m7g.xlarge", "4.2")) == large  # the smaller one pending
    assert thresholds("4.2", "mq.m7g.xlarge", ("mq.m7g.xlarge", "4.2")) == xlarge  # applied
    assert thresholds("4.2", "mq.m7g.xlarge", None) == xlarge  # not read: the env's
    # 3.13 runs with its type's maximum, 4.2 with Amazon MQ's lower defaults: a pending 4.2 counts from now on
    assert thresholds("4.2", "mq.m7g.large", ("mq.m7g.large", "3.13")) == large
    described = capacity_alarms("prod", settings, "ml-prod", "4.2", "mq.m7g.xlarge", mode, ("mq.m7g.large", "4.2"))
    assert all("mq.m7g.large CLUSTER_MULTI_AZ on RabbitMQ 4.2, which the broker runs until mq.m7g.xlarge on 4.2 is "
               "applied" in spec.description for spec in described)


def test_the_broker_program_takes_the_running_broker_the_orchestrator_hands_over(
        edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE, alarm_thresholds

    edit_env("dev", lambda data: data["messaging"].update(instance_type="mq.m7g.large"))
    handed = {RUNNING_BROKER_VARIABLE: "mq.m7g.medium 4.2"}
    found = alarms(synth_env("dev", ["network", "broker"], program_environment=handed)["broker"])
    medium = alarm_thresholds("4.2", "mq.m7g.medium", "SINGLE_INSTANCE")
    for what, metric in (("connections", "ConnectionCount"), ("channels", "ChannelCount"), ("queues", "QueueCount")):
        assert found[f"dev-ml-broker-capacity-{what}"]["threshold"] == medium[metric]


def test_the_env_s_synth_is_the_env_file_s_whatever_the_shell_exports(
        edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synth, its snapshots, `nox -s diff` and `policy` are the env file's plan: a PLATFORM_BROKER_RUNNING left
    in the shell (set for a `pulumi up` by hand in stacks/broker) changes none of them."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE, alarm_thresholds

    edit_env("dev", lambda data: data["messaging"].update(instance_type="mq.m7g.large"))
    monkeypatch.setenv(RUNNING_BROKER_VARIABLE, "mq.m7g.medium 4.2")
    found = alarms(synth_env("dev", ["network", "broker"])["broker"])
    large = alarm_thresholds("4.2", "mq.m7g.large", "SINGLE_INSTANCE")
    assert large != alarm_thresholds("4.2", "mq.m7g.medium", "SINGLE_INSTANCE")
    for what, metric in (("connections", "ConnectionCount"), ("channels", "ChannelCount"), ("queues", "QueueCount")):
        assert found[f"dev-ml-broker-capacity-{what}"]["threshold"] == large[metric]


@pytest.mark.parametrize("value", ["mq.m7g.medium", "mq.m7g.medium 4.2 extra", "4.2 mq.m7g.medium", "medium 4.2",
                                   "mq.m7g.medium four", "mq.m7g.medium 4"])
def test_a_malformed_running_broker_is_refused_by_name(value: str) -> None:
    """The variable is the orchestrator's (or set by hand for a `pulumi up` in stacks/broker): a value not of its form
    is an error naming it and the form, not silently the env's figures (or a broker's limits misread)."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE, running_broker

    with pytest.raises(ConfigError) as raised:
        running_broker({RUNNING_BROKER_VARIABLE: value})
    assert RUNNING_BROKER_VARIABLE in str(raised.value) and repr(value) in str(raised.value)
    assert "<instance type> <engine major.minor>" in str(raised.value)
    # absent or empty: not handed over (the env's figures); well-formed: taken, even a type no table knows
    assert running_broker({}) is None and running_broker({RUNNING_BROKER_VARIABLE: ""}) is None
    assert running_broker({RUNNING_BROKER_VARIABLE: "mq.m7g.medium 4.2"}) == ("mq.m7g.medium", "4.2")
    assert running_broker({RUNNING_BROKER_VARIABLE: " mq.m9x.huge 3.13.7 "}) == ("mq.m9x.huge", "3.13")
    # what the broker has pending follows (shared.broker_upgrade.going_back): none named is nothing pending
    from shared.broker_capacity import pending_engine

    handed = {RUNNING_BROKER_VARIABLE: "mq.m7g.large 3.13.7 pending 4.2.1"}
    assert running_broker(handed) == ("mq.m7g.large", "3.13") and pending_engine(handed) == "4.2"
    assert pending_engine({RUNNING_BROKER_VARIABLE: "mq.m7g.large 3.13"}) is None and pending_engine({}) is None
    with pytest.raises(ConfigError):
        pending_engine({RUNNING_BROKER_VARIABLE: "mq.m7g.large 3.13 pending"})


# -- what the pager reads -----------------------------------------------------------------------------
README = Path(__file__).resolve().parents[2] / "README.md"
RUNBOOK_POINTER = re.compile(r"runbook: README\.md#([a-z0-9-]+), (\S+)$")


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces -> ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def readme_sections() -> dict[str, str]:
    """Each README heading's anchor -> the section's text up to the next heading."""
    sections: dict[str, str] = {}
    anchor = ""
    for line in README.read_text().splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading:
            anchor = github_anchor(heading.group(1))
            sections[anchor] = ""
        elif anchor:
            sections[anchor] += line + "\n"
    return sections


def runbook_entries(section: str) -> set[str]:
    """The names each bullet of a runbook section starts with (``- `a`, `b`: ...``)."""
    entries: set[str] = set()
    for line in section.splitlines():
        head = re.match(r"- ((?:`[^`]+`(?:, )?)+)[: (]", line)
        if head:
            entries |= set(re.findall(r"`([^`]+)`", head.group(1)))
    return entries


def resolves(env: str, name: str, text: str) -> str | None:
    """Why ``text`` (an alarm's description, an event's summary) does not point to the README runbook entry of the
    alarm or rule ``name``, or None: its pointer's anchor is a README heading, whose section has a bullet for the entry,
    and the entry's pattern (``<env>`` the env, ``<svc>`` any subject) is the name."""
    pointer = RUNBOOK_POINTER.search(text)
    if pointer is None:
        return "no 'runbook: README.md#<anchor>, <entry>' at its end"
    anchor, entry = pointer.groups()
    sections = readme_sections()
    if anchor not in sections:
        return f"#{anchor} is no README heading"

    def pattern(listed: str) -> str:
        escaped = re.escape(listed).replace(re.escape("<env>"), re.escape(env))
        return (escaped.replace(re.escape("<svc>"), ".+").replace(re.escape("<rule>"), ".+")
                .replace(re.escape("<layer>"), "(?:" + "|".join(LAYERS) + ")"))

    listed = runbook_entries(sections[anchor])
    # the entry as listed, or a concrete name one listed entry stands for (an event's summary names its rule)
    if entry not in listed and not any(re.fullmatch(pattern(each), entry) for each in listed):
        return f"#{anchor} has no entry {entry}"
    if not (re.fullmatch(pattern(entry), name) if entry in listed else entry == name):
        return f"entry {entry} is not {name}'s"
    return None


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_and_event_notification_points_to_its_runbook_entry(env: str) -> None:
    """The pager gets the alarm's description (or the event's summary): it must say where the README tells what to
    do, and that place must exist and be about this alarm."""
    notifications = {name: inputs["alarmDescription"] for name, inputs in all_alarms(env).items()}
    for layer in ("broker", "messaging", "compute"):
        rules = {r["inputs"]["name"] for r in of_type(layers(env)[layer], EVENT_RULE)}
        for target in of_type(layers(env)[layer], EVENT_TARGET):
            if target["inputs"]["arn"] == layers(env)["broker"]["outputs"]["alarm_topic_arn"]:
                assert target["inputs"]["rule"] in rules
                template = target["inputs"]["inputTransformer"]["inputTemplate"]
                summary = json.loads(template.replace("<aws.events.event.json>", "{}"))["summary"]
                notifications[target["inputs"]["rule"]] = summary
    assert f"{env}-ml-admin-rotation-failed" in notifications
    for name, text in notifications.items():
        assert len(text) <= 1024, name  # PutMetricAlarm's AlarmDescription (EventNotification checks its 512)
        assert resolves(env, name, text) is None, f"{name}: {resolves(env, name, text)}"


def test_every_alarm_builder_points_to_its_runbook_entry() -> None:
    """The builders' alarms no shipped env deploys (Amazon MQ's own queue series, RabbitMQ 4's broker backlog)
    point to their entries too."""
    from shared.components.alarms import capacity_alarms, certificate_alarms, gateway_alarms, queue_alarms

    settings = load_env("prod").alarms
    specs = [*queue_alarms("prod", settings, "ml-prod", "ml-prod", {"inference": ("inference.work", "inference.dlq")},
                           "3.13"),
             *queue_alarms("prod", settings, "ml-prod", "ml-prod", {"inference": ("inference.work", "inference.dlq")},
                           "4.2"),
             *capacity_alarms("prod", settings, "ml-prod", "4.2", "mq.m7g.large", "CLUSTER_MULTI_AZ"),
             *gateway_alarms("prod", settings, "gateway", "app/prod-gateway-3f2a1b/50dc6c495c0c9188"),
             *certificate_alarms("prod", "arn:aws:acm:eu-west-1:111111111111:certificate/abc")]
    assert {"prod-ml-backlog-broker", "prod-ml-queue-depth-inference", "prod-ml-broker-capacity-channels"} <= {
        spec.name for spec in specs}
    for spec in specs:
        problem = resolves("prod", spec.name, spec.description)
        assert problem is None, f"{spec.name}: {problem}"


def test_a_pointer_to_a_missing_heading_or_entry_does_not_resolve() -> None:
    assert resolves("dev", "dev-ml-task-stops-x", "...; runbook: README.md#no-such-heading, <env>-ml-task-stops-<svc>")
    assert resolves("dev", "dev-ml-task-stops-x",
                    "...; runbook: README.md#on-call-what-each-notification-asks, <env>-ml-nothing-<svc>")
    assert resolves("dev", "dev-ml-task-stops-x",
                    "...; runbook: README.md#on-call-what-each-notification-asks, <env>-ml-gateway-5xx-<svc>")
    assert resolves("dev", "dev-ml-task-stops-x", "no pointer")
    assert resolves("dev", "dev-ml-task-stops-x",
                    "...; runbook: README.md#on-call-what-each-notification-asks, dev-ml-task-stops-x") is None
    assert resolves("dev", "dev-ml-task-stops-x",
                    "...; runbook: README.md#on-call-what-each-notification-asks, dev-ml-task-stops-y")
    assert resolves("dev", "dev-ml-task-stops-x",
                    "...; runbook: README.md#on-call-what-each-notification-asks, <env>-ml-task-stops-<svc>") is None
