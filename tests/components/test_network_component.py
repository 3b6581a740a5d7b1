"""VpcNetwork alone, with args chosen here (not an env file)."""

from __future__ import annotations

import ipaddress

import pytest

from shared.components.network import NatStrategy, VpcNetwork, VpcNetworkArgs
from tests.components.harness import ACCOUNT, REGION, of_type, root_of, run_component


def args(nat: NatStrategy = "single", azs: int = 2, kms: bool = False,
         endpoints: tuple[str, ...] = ()) -> VpcNetworkArgs:
    return VpcNetworkArgs(
        env_name="unit", region=REGION, cidr=ipaddress.IPv4Network("10.42.0.0/16"),
        availability_zones=[f"{REGION}{letter}" for letter in "abc"[:azs]], nat=nat, endpoints=endpoints,
        flow_log_retention_days=30, account_id=ACCOUNT, service_ports={"inference": 8080},
        kms_encrypted_logs=kms)


@pytest.mark.parametrize(("nat", "azs", "gateways"), [("none", 2, 0), ("single", 3, 1), ("per-az", 3, 3)])
def test_one_public_and_one_private_subnet_per_az_and_nat_per_strategy(nat: NatStrategy, azs: int,
                                                                      gateways: int) -> None:
    document = run_component(lambda: VpcNetwork("network", args(nat, azs)))
    subnets = of_type(document, "aws:ec2/subnet:Subnet")
    assert len(subnets) == 2 * azs
    assert sorted(s["inputs"]["availabilityZone"] for s in subnets) == sorted(args(nat, azs).availability_zones * 2)
    for subnet in subnets:
        assert ipaddress.IPv4Network(subnet["inputs"]["cidrBlock"]).subnet_of(ipaddress.IPv4Network("10.42.0.0/16"))
    assert len(of_type(document, "aws:ec2/natGateway:NatGateway")) == gateways


def test_every_resource_belongs_to_the_component() -> None:
    document = run_component(lambda: VpcNetwork("network", args()))
    for resource in document["resources"]:
        if resource["type"].startswith("aws:"):
            assert root_of(document, resource)["type"] == "mlplatform:network:VpcNetwork", resource["name"]


@pytest.mark.parametrize("kms", [False, True])
def test_the_flow_log_group_is_kms_encrypted_only_when_asked(kms: bool) -> None:
    document = run_component(lambda: VpcNetwork("network", args(kms=kms)))
    (group,) = of_type(document, "aws:cloudwatch/logGroup:LogGroup")
    assert ("kmsKeyId" in group["inputs"]) is kms
    assert len(of_type(document, "aws:kms/key:Key")) == int(kms)


def test_without_a_nat_private_subnets_have_no_default_route_and_services_no_internet_egress() -> None:
    """The component supports ``nat='none'`` (endpoint-only subnets); the env loader refuses it for the
    platform's own envs because the deploy runner needs internet egress."""
    everything = ("s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager")
    document = run_component(lambda: VpcNetwork("network", args("none", endpoints=everything)))
    assert of_type(document, "aws:ec2/natGateway:NatGateway") == []
    assert [r for r in of_type(document, "aws:ec2/route:Route") if "natGatewayId" in r["inputs"]] == []
    egress = [r["inputs"] for r in of_type(document, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if r["parent"].endswith("::network-services")]
    assert egress and not any("cidrIpv4" in rule or "cidrIpv6" in rule for rule in egress)
    assert sorted(rule["fromPort"] for rule in egress if rule.get("prefixListId")) == [443]
