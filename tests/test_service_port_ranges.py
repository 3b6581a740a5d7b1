"""The tasks' security group admits the called services' ports as ranges of consecutive ports, a rule each way per
range (shared.components.network.port_ranges), and a change of the catalog moves a deployed group from one set of
rules to the next without refusing a port still in use and without a rule EC2 refuses as a duplicate: played on
moto's EC2 in the order Pulumi runs the steps (an alias renames a rule; creates and updates follow the rules'
dependencies, highest range first; rules no longer in the program are deleted last)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shared.components.network import PortRangeRule, port_ranges

#: the rules of the earlier design: one per called service's port, named after the service
PER_PORT = {"inference": 8080, "preprocess": 8081, "training": 8082, "gateway": 8090}


@pytest.mark.parametrize(("ports", "ranges"), [
    ({}, ()),
    (PER_PORT, (PortRangeRule(8080, 8082, "inference"), PortRangeRule(8090, 8090, "gateway"))),
    ({"b": 8001, "a": 8000, "c": 8003}, (PortRangeRule(8000, 8001, "a"), PortRangeRule(8003, 8003, "c"))),
    # a port twice (the catalog refuses it, the rules would admit it once)
    ({"b": 8000, "a": 8000}, (PortRangeRule(8000, 8000, "a"),)),
    ({f"svc{i:03d}": 8000 + i for i in range(1, 200)}, (PortRangeRule(8001, 8199, "svc001"),)),
], ids=["none", "shipped-shape", "gap", "same-port", "bench-200"])
def test_consecutive_ports_make_one_range(ports: dict[str, int], ranges: tuple[PortRangeRule, ...]) -> None:
    assert port_ranges(ports) == ranges
    admitted = {port for rule in ranges for port in range(rule.from_port, rule.to_port + 1)}
    assert admitted == set(ports.values()), "a range admits the called ports and nothing else"


class Group:
    """The tasks' group on moto's EC2 and the ingress rules Pulumi's state knows, by resource name."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.id = self.ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
        self.state: dict[str, str] = {}  # resource name -> security group rule id

    def _permission(self, from_port: int, to_port: int) -> dict[str, Any]:
        return {"IpProtocol": "tcp", "FromPort": from_port, "ToPort": to_port,
                "UserIdGroupPairs": [{"GroupId": self.id}]}

    def create(self, name: str, from_port: int, to_port: int) -> None:
        made = self.ec2.authorize_security_group_ingress(GroupId=self.id,
                                                         IpPermissions=[self._permission(from_port, to_port)])
        self.state[name] = made["SecurityGroupRules"][0]["SecurityGroupRuleId"]

    def admitted(self) -> set[int]:
        rules = self.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [self.id]}])
        return {port for rule in rules["SecurityGroupRules"] if not rule["IsEgress"]
                for port in range(rule["FromPort"], rule["ToPort"] + 1)}

    def apply(self, ports: dict[str, int], in_use: set[int], retiring: Iterable[int] = ()) -> None:
        """One `up` of the network layer with the called services ``ports`` (and the ``retiring`` ports it still
        admits: shared.port_retirement); ``in_use``: the ports called during it, checked after every step."""
        planned = set()
        for rule in reversed(port_ranges(ports, retiring)):  # each rule depends on the one above it
            name, alias = f"in-{rule.from_port}", f"in-{rule.first_service}"
            planned.add(name)
            if name not in self.state and alias in self.state:
                self.state[name] = self.state.pop(alias)
            if name in self.state:  # only security_group_id forces a new rule: ports are modified in place
                self.ec2.modify_security_group_rules(GroupId=self.id, SecurityGroupRules=[{
                    "SecurityGroupRuleId": self.state[name], "SecurityGroupRule": {
                        "IpProtocol": "tcp", "FromPort": rule.from_port, "ToPort": rule.to_port,
                        "ReferencedGroupId": self.id}}])
            else:
                self.create(name, rule.from_port, rule.to_port)
            assert in_use <= self.admitted(), f"{sorted(in_use - self.admitted())} refused after {name}"
        for name in sorted(set(self.state) - planned):
            self.ec2.revoke_security_group_ingress(GroupId=self.id, SecurityGroupRuleIds=[self.state.pop(name)])
            assert in_use <= self.admitted(), f"{sorted(in_use - self.admitted())} refused after deleting {name}"
        assert self.admitted() == {*ports.values(), *retiring}


#: the catalogs an env goes through, one `up` each
CHANGES: list[tuple[str, dict[str, int]]] = [
    ("the same catalog again", PER_PORT),
    ("a service in the middle leaves: the range splits", {"inference": 8080, "training": 8082, "gateway": 8090}),
    ("it comes back with a neighbour: the ranges merge", {**PER_PORT, "ranker": 8083, "scorer": 8089}),
    ("a service below the lowest: a range starting lower", {**PER_PORT, "ranker": 8083, "scorer": 8089,
                                                            "embedder": 8079}),
    ("the lowest is renamed on its port", {"embedder2": 8079, "inference": 8080, "preprocess": 8081,
                                           "training": 8082, "gateway": 8090}),
    ("a lone port's service is replaced on its port", {"embedder2": 8079, "inference": 8080, "preprocess": 8081,
                                                       "training": 8082, "router": 8090}),
]


def test_a_deployed_group_moves_from_per_port_rules_to_ranges_and_through_catalog_changes(moto_aws: None) -> None:
    group = Group()
    for service, port in PER_PORT.items():  # the earlier design's rules, deployed
        group.create(f"in-{service}", port, port)
    before = PER_PORT
    group.apply(PER_PORT, set(PER_PORT.values()))
    assert sorted(group.state) == ["in-8080", "in-8090"]
    for change, ports in CHANGES:
        in_use = {port for service, port in ports.items() if before.get(service) == port}
        try:
            group.apply(ports, in_use)
        except ClientError as error:
            raise AssertionError(f"{change}: {error}") from None
        before = ports


def test_ec2_refuses_a_rule_equal_to_one_present(moto_aws: None) -> None:
    """What the naming avoids: a new rule (a new resource name) with the ports of one still present."""
    group = Group()
    group.create("in-inference", 8080, 8080)
    with pytest.raises(ClientError, match=r"InvalidPermission\.Duplicate"):
        group.create("in-8080", 8080, 8080)
    group.create("in-8080-range", 8080, 8081)  # overlapping is not equal: EC2 keeps both
    assert group.admitted() == {8080, 8081}


def test_the_component_makes_a_rule_each_way_per_range_each_after_the_one_above() -> None:
    """Named after its first port, aliased to the per-port rule of its first service (which it takes over): the
    alias as the synth records it, the former URN the engine carries the rule's state over from."""
    import dataclasses

    from shared.components.network import VpcNetwork
    from tests.components.harness import of_type, run_component
    from tests.components.test_network_component import args

    component_args = dataclasses.replace(args(), service_ports=PER_PORT)
    document = run_component(lambda: VpcNetwork("network", component_args))
    for kind, direction in (("securityGroupIngressRule:SecurityGroupIngressRule", "in"),
                            ("securityGroupEgressRule:SecurityGroupEgressRule", "out")):
        rules = {r["name"]: r for r in of_type(document, f"aws:vpc/{kind}")
                 if r["name"].startswith(f"network-services-{direction}-80")}
        assert {name: (r["inputs"]["fromPort"], r["inputs"]["toPort"]) for name, r in rules.items()} == {
            f"network-services-{direction}-8080": (8080, 8082), f"network-services-{direction}-8090": (8090, 8090)}
        for name, first_service in ((f"network-services-{direction}-8080", "inference"),
                                    (f"network-services-{direction}-8090", "gateway")):
            urn = rules[name]["urn"]
            assert rules[name]["aliases"] == [f"{urn.rsplit('::', 1)[0]}::network-services-{direction}-{first_service}"]
        upper = rules[f"network-services-{direction}-8090"]["urn"]
        assert upper in rules[f"network-services-{direction}-8080"]["dependencies"]
