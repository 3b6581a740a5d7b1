"""AmazonMqBroker alone, with its args and plain upstream ids (no broker layer program, no env file)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.components.alarms import AlarmTopic, AlarmTopicArgs
from shared.components.broker import AmazonMqBroker, AmazonMqBrokerArgs
from shared.envs import AlarmsConfig
from tests.components.harness import ACCOUNT, REGION, of_type, root_of, run_component

SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]


def broker(mode: str = "SINGLE_INSTANCE", protect: bool = False) -> dict[str, Any]:
    args = AmazonMqBrokerArgs(env_name="unit", engine_version="3.13", instance_type="mq.m7g.medium",
                              deployment_mode=mode, protect=protect, region=REGION, account_id=ACCOUNT,
                              log_retention_days=30, kms_encrypted_logs=False)
    return run_component(lambda: AmazonMqBroker(
        "broker", args, vpc_id="vpc-unit", private_subnet_ids=SUBNETS, service_security_group_id="sg-services",
        runner_security_group_id="sg-runner", queue_metrics_security_group_id="sg-queue-metrics"))


@pytest.mark.parametrize(("mode", "subnets"), [("SINGLE_INSTANCE", SUBNETS[:1]), ("CLUSTER_MULTI_AZ", SUBNETS)])
def test_a_private_broker_in_one_subnet_or_a_cluster_over_all_three(mode: str, subnets: list[str]) -> None:
    (resource,) = of_type(broker(mode), "aws:mq/broker:Broker")
    inputs = resource["inputs"]
    assert inputs["publiclyAccessible"] is False
    assert (inputs["engineType"], inputs["deploymentMode"], inputs["subnetIds"]) == ("RabbitMQ", mode, subnets)


def test_its_security_group_admits_the_services_on_amqps_and_the_runner_and_publisher_on_https_only() -> None:
    (group,) = of_type(broker(), "aws:ec2/securityGroup:SecurityGroup")
    rules = {(r["fromPort"], r["toPort"], tuple(r["securityGroups"])) for r in group["inputs"]["ingress"]}
    assert rules == {(5671, 5671, ("sg-services",)), (443, 443, ("sg-runner",)), (443, 443, ("sg-queue-metrics",))}
    assert not any(r.get("cidrBlocks") for r in group["inputs"]["ingress"])
    assert group["inputs"]["vpcId"] == "vpc-unit"


@pytest.mark.parametrize("protect", [False, True])
def test_the_broker_and_its_admin_secret_are_protected_when_asked(protect: bool) -> None:
    document = broker(protect=protect)
    for type_ in ("aws:mq/broker:Broker", "aws:secretsmanager/secret:Secret"):
        (resource,) = of_type(document, type_)
        assert resource["protect"] is protect
        assert root_of(document, resource)["type"] == "mlplatform:broker:AmazonMqBroker"


def rotating_broker(rotation_group: str | None, with_topic: bool = True) -> dict[str, Any]:
    args = AmazonMqBrokerArgs(env_name="unit", engine_version="3.13", instance_type="mq.m7g.medium",
                              deployment_mode="SINGLE_INSTANCE", protect=False, region=REGION, account_id=ACCOUNT,
                              log_retention_days=30, kms_encrypted_logs=False, admin_rotation_days=30)

    def build() -> AmazonMqBroker:
        topic = AlarmTopic("alarms", AlarmTopicArgs(env_name="unit", account_id=ACCOUNT, region=REGION,
                                                    settings=AlarmsConfig())) if with_topic else None
        return AmazonMqBroker(
            "broker", args, vpc_id="vpc-unit", private_subnet_ids=SUBNETS, service_security_group_id="sg-services",
            runner_security_group_id="sg-runner", rotation_security_group_id=rotation_group,
            queue_metrics_security_group_id="sg-queue-metrics", alarm_topic=topic)

    return run_component(build)


def test_a_rotating_broker_admits_the_rotation_function_and_rotates_its_admin_secret() -> None:
    document = rotating_broker("sg-rotation")
    (group,) = of_type(document, "aws:ec2/securityGroup:SecurityGroup")
    rules = {(r["fromPort"], tuple(r["securityGroups"])) for r in group["inputs"]["ingress"]}
    assert rules == {(5671, ("sg-services",)), (443, ("sg-runner",)), (443, ("sg-rotation",)),
                     (443, ("sg-queue-metrics",))}
    (rotation,) = of_type(document, "aws:secretsmanager/secretRotation:SecretRotation")
    assert rotation["inputs"]["rotationRules"] == {"automaticallyAfterDays": 30}
    (function,) = of_type(document, "aws:lambda/function:Function")
    assert function["inputs"]["vpcConfig"] == {"subnetIds": SUBNETS, "securityGroupIds": ["sg-rotation"]}
    # no key for the function's logs where the env does not ask for encrypted logs
    (logs,) = [g for g in of_type(document, "aws:cloudwatch/logGroup:LogGroup") if "rotation" in g["name"]]
    assert "kmsKeyId" not in logs["inputs"]
    assert root_of(document, rotation)["type"] == "mlplatform:broker:AmazonMqBroker"


def test_the_schedule_waits_for_the_rule_and_target_that_report_a_failed_test_of_it() -> None:
    # rotate_immediately off: configuring the schedule runs the function's testSecret step at once, reported (once,
    # TestRotationFailed) only to a rule that exists by then.
    document = rotating_broker("sg-rotation")
    (rotation,) = of_type(document, "aws:secretsmanager/secretRotation:SecretRotation")
    (rule,) = of_type(document, "aws:cloudwatch/eventRule:EventRule")
    (target,) = of_type(document, "aws:cloudwatch/eventTarget:EventTarget")
    assert {rule["urn"], target["urn"]} <= set(rotation["dependencies"])
    (notification,) = of_type(document, "mlplatform:alarms:EventNotification")
    # the rotation component's child, as before (the same URN: no replacement of the deployed rule and target)
    assert rule["parent"] == notification["urn"] and notification["parent"] == rotation["parent"]


def test_a_rotating_broker_without_an_alarm_topic_is_refused() -> None:
    with pytest.raises(Exception, match="rotates needs the alarm_topic"):
        rotating_broker("sg-rotation", with_topic=False)


def test_a_rotating_broker_without_the_rotation_group_fails_naming_the_network_layer() -> None:
    with pytest.raises(Exception, match="broker_rotation_security_group_id"):
        rotating_broker(None)


def test_a_broker_without_the_queue_metrics_group_fails_naming_the_network_layer() -> None:
    args = args_of()
    with pytest.raises(Exception, match="queue_metrics_security_group_id"):
        run_component(lambda: AmazonMqBroker(
            "broker", args, vpc_id="vpc-unit", private_subnet_ids=SUBNETS, service_security_group_id="sg-services",
            runner_security_group_id="sg-runner"))


def test_without_rotation_days_nothing_rotates() -> None:
    document = broker()
    assert of_type(document, "aws:secretsmanager/secretRotation:SecretRotation") == []
    assert of_type(document, "aws:lambda/function:Function") == []


def args_of(**changes: Any) -> AmazonMqBrokerArgs:
    settings: dict[str, Any] = {"env_name": "unit", "engine_version": "3.13", "instance_type": "mq.m7g.medium",
                                "deployment_mode": "SINGLE_INSTANCE", "protect": False, "region": REGION,
                                "account_id": ACCOUNT, "log_retention_days": 30,
                                "kms_encrypted_logs": False}
    return AmazonMqBrokerArgs(**{**settings, **changes})


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"engine_version": "3.13.7"}, "engine_version", "major.minor"),  # a pinned patch: Amazon MQ applies patches
    ({"engine_version": "3.12"}, "engine_version", "3.13"),  # before 3.13: not offered to a new broker
    ({"instance_type": "mq.m6.large"}, "instance_type", "mq.m7g.medium"),
    ({"instance_type": "mq.t3.micro", "deployment_mode": "CLUSTER_MULTI_AZ"}, "deployment_mode", "SINGLE_INSTANCE"),
])
def test_args_built_without_an_env_file_are_refused_by_the_loaders_rule(
        changes: dict[str, Any], key: str, words: str) -> None:
    # A component used alone gets no env loader in front of it: its args refuse what the loader refuses,
    # with the loader's own reason (shared.amazonmq.broker_problems), naming the argument.
    from shared.amazonmq import broker_problems

    bad = {"engine_version": "3.13", "instance_type": "mq.m7g.medium", "deployment_mode": "SINGLE_INSTANCE",
           **changes}
    reasons = dict(broker_problems(bad["engine_version"], bad["instance_type"], bad["deployment_mode"]))
    with pytest.raises(ValueError) as error:
        args_of(**changes)
    assert f"AmazonMqBrokerArgs.{key}: {reasons[key]}" in str(error.value) and words in reasons[key]


def test_a_cluster_given_fewer_than_three_private_subnets_is_refused() -> None:
    # CreateBroker would take the two (a private cluster needs one subnet), but the third AZ's subnet, added once
    # the env has it, would replace the broker (shared.amazonmq.cluster_zones_problem).
    args = args_of(instance_type="mq.m7g.large", deployment_mode="CLUSTER_MULTI_AZ")
    with pytest.raises(Exception, match=r"CLUSTER_MULTI_AZ runs three nodes in 3 availability zones.* the number "
                                        r"of private subnets is 2"):
        run_component(lambda: AmazonMqBroker(
            "broker", args, vpc_id="vpc-unit", private_subnet_ids=SUBNETS[:2],
            service_security_group_id="sg-services", runner_security_group_id="sg-runner",
            queue_metrics_security_group_id="sg-queue-metrics"))
