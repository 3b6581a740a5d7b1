"""A VPC Lambda function's role is deleted only once Lambda has deleted the function's network interfaces, which it
does with that role (boto3 flows on moto, and the synth of every shipped env)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.components import lambda_eni_drain
from shared.components.lambda_eni_drain import DRAIN_TIMEOUT_SECONDS, LambdaEniDrainProvider, wait_until_released
from shared.dag import order
from tests.aws_helpers import patched_client
from tests.layers.test_service_connect_drain import DYNAMIC, REGION, Clock
from tests.synth_helpers import of_type, spec_document

FUNCTION = "ml-platform-dev-queue-metrics"


@pytest.fixture
def ec2(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    return patched_client(lambda_eni_drain, "ec2", monkeypatch, REGION)


def _network(ec2: Any) -> tuple[str, str]:
    """A subnet and the function's own security group."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="queue-metrics", Description="fn", VpcId=vpc)["GroupId"]
    return subnet, group


def _interface(ec2: Any, subnet: str, group: str, description: str) -> str:
    made = ec2.create_network_interface(SubnetId=subnet, Groups=[group], Description=description)
    return str(made["NetworkInterface"]["NetworkInterfaceId"])


def props(group: str) -> dict[str, Any]:
    return {"security_group_id": group, "region": REGION, "function_name": FUNCTION}


def test_the_delete_waits_until_lambda_deleted_the_functions_interfaces(ec2: Any) -> None:
    subnet, group = _network(ec2)
    lambdas = [_interface(ec2, subnet, group, f"AWS Lambda VPC ENI-{FUNCTION}-{i}") for i in range(2)]
    other = _interface(ec2, subnet, group, "an interface someone else made")

    def lambda_cleans_up(polls: int) -> None:  # Lambda deletes one interface, then the other, minutes apart
        if polls in (3, 7):
            ec2.delete_network_interface(NetworkInterfaceId=lambdas.pop())

    clock = Clock(lambda_cleans_up)
    wait_until_released(props(group), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == 7 and not lambdas
    interfaces = ec2.describe_network_interfaces()["NetworkInterfaces"]
    assert [i["NetworkInterfaceId"] for i in interfaces] == [other], "it waits for Lambda's only, deletes nothing"


def test_interfaces_lambda_never_deletes_fail_naming_them(ec2: Any) -> None:
    subnet, group = _network(ec2)
    stuck = _interface(ec2, subnet, group, f"AWS Lambda VPC ENI-{FUNCTION}-0")
    clock = Clock()
    with pytest.raises(RuntimeError) as raised:
        wait_until_released(props(group), sleep=clock.sleep, clock=clock)
    message = str(raised.value)
    assert stuck in message and FUNCTION in message and group in message
    assert f"--filters Name=group-id,Values={group}" in message
    assert clock.now >= DRAIN_TIMEOUT_SECONDS


def test_the_provider_creates_nothing_and_waits_on_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = LambdaEniDrainProvider()
    created = provider.create(props("sg-1"))
    assert created.outs == props("sg-1")
    assert provider.diff("id", props("sg-1"), props("sg-1")).changes is False
    assert provider.diff("id", props("sg-1"), props("sg-2")).replaces == []  # the next delete reads the new group
    waited: list[dict[str, Any]] = []
    monkeypatch.setattr(lambda_eni_drain, "wait_until_released", waited.append)
    provider.delete("id", props("sg-1"))
    assert waited == [props("sg-1")]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_vpc_function_is_deleted_before_its_drain_and_the_drain_before_its_role(env: str) -> None:
    """Pulumi deletes a resource before the resources it depends on: function, then drain, then role and policy."""
    documents = {layer: spec_document(env, layer) for layer in order()}
    functions = [(layer, function) for layer, document in documents.items()
                 for function in of_type(document, "aws:lambda/function:Function")
                 if (function["inputs"].get("vpcConfig") or {}).get("subnetIds")]
    assert functions, "the shipped envs run VPC functions (the rotation, the queue metrics publisher)"
    for layer, function in functions:
        resources = {resource["urn"]: resource for resource in documents[layer]["resources"]}
        (drain,) = [resources[urn] for urn in function["dependencies"]
                    if resources.get(urn, {}).get("type") == DYNAMIC and "function_name" in resources[urn]["inputs"]]
        assert drain["inputs"]["function_name"] == function["inputs"]["name"]
        assert [drain["inputs"]["security_group_id"]] == function["inputs"]["vpcConfig"]["securityGroupIds"]
        kept = [resources[urn] for urn in drain["dependencies"]]
        (role,) = [resource for resource in kept if resource["type"] == "aws:iam/role:Role"]
        assert role["inputs"]["name"] == function["inputs"]["name"]  # the function's execution role (same name)
        (policy,) = [resource for resource in kept if resource["type"] == "aws:iam/rolePolicy:RolePolicy"]
        assert "ec2:DeleteNetworkInterface" in policy["inputs"]["policy"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_vpc_functions_security_group_is_its_own(env: str) -> None:
    """The drain waits for every Lambda interface in the function's security group: a group another function (or
    anything else with interfaces) shared would keep them there, and the wait would fail after 45 minutes."""
    documents = {layer: spec_document(env, layer) for layer in order()}
    users: dict[str, list[str]] = {}
    for document in documents.values():
        for resource in document["resources"]:
            inputs = resource["inputs"]
            groups = [*((inputs.get("vpcConfig") or {}).get("securityGroupIds") or []),  # Lambda, CodeBuild
                      *((inputs.get("networkConfiguration") or {}).get("securityGroups") or []),  # ECS services
                      *(inputs.get("securityGroups") or []),  # load balancers, Amazon MQ brokers
                      *(inputs.get("securityGroupIds") or [])]  # interface endpoints
            for group in groups:
                users.setdefault(group, []).append(f"{resource['type']} {resource['name']}")
    functions = [drain["inputs"]["security_group_id"] for document in documents.values()
                 for drain in of_type(document, DYNAMIC) if "function_name" in drain["inputs"]]
    assert functions
    for group in functions:
        assert len(users[group]) == 1 and users[group][0].startswith("aws:lambda/function:Function"), users[group]
