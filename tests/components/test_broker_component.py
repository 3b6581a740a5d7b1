"""AmazonMqBroker alone, with its args and plain upstream ids (no broker layer program, no env file)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.components.broker import AmazonMqBroker, AmazonMqBrokerArgs
from tests.components.harness import ACCOUNT, REGION, of_type, root_of, run_component

SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]


def broker(mode: str = "SINGLE_INSTANCE", protect: bool = False) -> dict[str, Any]:
    args = AmazonMqBrokerArgs(env_name="unit", engine_version="3.13", instance_type="mq.m7g.medium",
                              deployment_mode=mode, protect=protect, region=REGION, account_id=ACCOUNT,
                              log_retention_days=30, kms_encrypted_logs=False)
    return run_component(lambda: AmazonMqBroker(
        "broker", args, vpc_id="vpc-unit", private_subnet_ids=SUBNETS, service_security_group_id="sg-services",
        runner_security_group_id="sg-runner"))


@pytest.mark.parametrize(("mode", "subnets"), [("SINGLE_INSTANCE", SUBNETS[:1]), ("CLUSTER_MULTI_AZ", SUBNETS)])
def test_a_private_broker_in_one_subnet_or_a_cluster_over_all_three(mode: str, subnets: list[str]) -> None:
    (resource,) = of_type(broker(mode), "aws:mq/broker:Broker")
    inputs = resource["inputs"]
    assert inputs["publiclyAccessible"] is False
    assert (inputs["engineType"], inputs["deploymentMode"], inputs["subnetIds"]) == ("RabbitMQ", mode, subnets)


def test_its_security_group_admits_the_services_on_amqps_and_the_runner_on_https_only() -> None:
    (group,) = of_type(broker(), "aws:ec2/securityGroup:SecurityGroup")
    rules = {(r["fromPort"], r["toPort"], tuple(r["securityGroups"])) for r in group["inputs"]["ingress"]}
    assert rules == {(5671, 5671, ("sg-services",)), (443, 443, ("sg-runner",))}
    assert not any(r.get("cidrBlocks") for r in group["inputs"]["ingress"])
    assert group["inputs"]["vpcId"] == "vpc-unit"


@pytest.mark.parametrize("protect", [False, True])
def test_the_broker_and_its_admin_secret_are_protected_when_asked(protect: bool) -> None:
    document = broker(protect=protect)
    for type_ in ("aws:mq/broker:Broker", "aws:secretsmanager/secret:Secret"):
        (resource,) = of_type(document, type_)
        assert resource["protect"] is protect
        assert root_of(document, resource)["type"] == "mlplatform:broker:AmazonMqBroker"


def rotating_broker(rotation_group: str | None) -> dict[str, Any]:
    args = AmazonMqBrokerArgs(env_name="unit", engine_version="3.13", instance_type="mq.m7g.medium",
                              deployment_mode="SINGLE_INSTANCE", protect=False, region=REGION, account_id=ACCOUNT,
                              log_retention_days=30, kms_encrypted_logs=False, admin_rotation_days=30)
    return run_component(lambda: AmazonMqBroker(
        "broker", args, vpc_id="vpc-unit", private_subnet_ids=SUBNETS, service_security_group_id="sg-services",
        runner_security_group_id="sg-runner", rotation_security_group_id=rotation_group))


def test_a_rotating_broker_admits_the_rotation_function_and_rotates_its_admin_secret() -> None:
    document = rotating_broker("sg-rotation")
    (group,) = of_type(document, "aws:ec2/securityGroup:SecurityGroup")
    rules = {(r["fromPort"], tuple(r["securityGroups"])) for r in group["inputs"]["ingress"]}
    assert rules == {(5671, ("sg-services",)), (443, ("sg-runner",)), (443, ("sg-rotation",))}
    (rotation,) = of_type(document, "aws:secretsmanager/secretRotation:SecretRotation")
    assert rotation["inputs"]["rotationRules"] == {"automaticallyAfterDays": 30}
    (function,) = of_type(document, "aws:lambda/function:Function")
    assert function["inputs"]["vpcConfig"] == {"subnetIds": SUBNETS, "securityGroupIds": ["sg-rotation"]}
    # no key for the function's logs where the env does not ask for encrypted logs
    (logs,) = [g for g in of_type(document, "aws:cloudwatch/logGroup:LogGroup") if "rotation" in g["name"]]
    assert "kmsKeyId" not in logs["inputs"]
    assert root_of(document, rotation)["type"] == "mlplatform:broker:AmazonMqBroker"


def test_a_rotating_broker_without_the_rotation_group_fails_naming_the_network_layer() -> None:
    with pytest.raises(Exception, match="broker_rotation_security_group_id"):
        rotating_broker(None)


def test_without_rotation_days_nothing_rotates() -> None:
    document = broker()
    assert of_type(document, "aws:secretsmanager/secretRotation:SecretRotation") == []
    assert of_type(document, "aws:lambda/function:Function") == []
