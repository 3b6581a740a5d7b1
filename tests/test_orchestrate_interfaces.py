"""A destroy of network is refused before any layer runs while the env's VPC holds a network interface no layer of the
platform deletes: EC2 refuses a subnet's (and the VPC's) delete while one is in it, so network's destroy would stop
there after every other layer was deleted (shared/orchestrate/interfaces.py)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import botocore
import pytest

from shared.envs import EnvConfig, load_env
from shared.orchestrate.account import AwsAccountCheck
from shared.orchestrate.cli import main
from shared.orchestrate.interfaces import (
    ForeignInterface,
    ForeignResources,
    VpcScope,
    foreign_resources,
    read_foreign_resources,
)
from tests.aws_helpers import AccountReady, ReleasedEverywhere
from tests.test_deploy_role import _readme_preflight_actions
from tests.test_orchestrate import RecordingRunner, management_api  # noqa: F401 - its endpoint answers (autouse)

VPC = "vpc-0a1b2c3d4e5f60718"


def _tags(env: EnvConfig, layer: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in env.common_tags(layer).items()]


def _group(group_id: str, name: str, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"GroupId": group_id, "GroupName": name, "Tags": tags or []}


def _interface(interface_id: str, *groups: str, interface_type: str = "interface", instance: str | None = None,
               owner: str = "111111111111", description: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"NetworkInterfaceId": interface_id, "InterfaceType": interface_type, "Status": "in-use",
                             "SubnetId": "subnet-0aa", "Description": description,
                             "Groups": [{"GroupId": group} for group in groups]}
    if instance:
        found["Attachment"] = {"InstanceId": instance, "InstanceOwnerId": owner}
    return found


# -- what is the platform's ----------------------------------------------------------------------------------------


def test_interfaces_in_platform_groups_go_with_their_layers_and_every_other_one_is_foreign() -> None:
    env = load_env("dev")
    groups = [_group("sg-task", "services", _tags(env, "network")),
              _group("sg-ep", "endpoints", _tags(env, "network")),
              _group("sg-fn", "dev-queue-metrics", _tags(env, "network")),
              _group("sg-default", "default", _tags(env, "network")), _group("sg-team", "team-b-lambda"),
              _group("sg-other-env", "services", _tags(load_env("staging"), "network")),
              _group("sg-gd", "GuardDutyManagedSecurityGroup-vpc-0a1b", [{"Key": "GuardDutyManaged", "Value": "true"}])]
    interfaces = [
        _interface("eni-task", "sg-task", description="arn:aws:ecs:eu-west-1:111111111111:attachment/1"),
        # Fargate's and CodeBuild's interfaces: attached, if at all, to what another account owns
        _interface("eni-build", "sg-task", instance="i-0aws", owner="amazon-aws"),
        _interface("eni-lambda", "sg-fn", interface_type="lambda", description="AWS Lambda VPC ENI-ml-platform-dev"),
        _interface("eni-endpoint", "sg-ep", interface_type="vpc_endpoint"),
        _interface("eni-guardduty", "sg-gd", interface_type="vpc_endpoint"),
        _interface("eni-nat", interface_type="nat_gateway"),
        _interface("eni-default", "sg-default", description="made by hand"),
        _interface("eni-team", "sg-team", interface_type="lambda"),
        _interface("eni-team-in-ours", "sg-task", interface_type="lambda", description="AWS Lambda VPC ENI-team-b"),
        _interface("eni-both", "sg-task", "sg-team"),
        _interface("eni-other-env", "sg-other-env"),
        _interface("eni-instance", "sg-task", instance="i-0abc", description="Primary network interface"),
        _interface("eni-tgw", interface_type="transit_gateway"),
        _interface("eni-foreign-nat", interface_type="nat_gateway"),
    ]
    nat_gateways = [{"NatGatewayId": "nat-1", "Tags": _tags(env, "network"),
                     "NatGatewayAddresses": [{"NetworkInterfaceId": "eni-nat"}]},
                    {"NatGatewayId": "nat-2", "Tags": [],
                     "NatGatewayAddresses": [{"NetworkInterfaceId": "eni-foreign-nat"}]}]

    found = foreign_resources(env, interfaces, groups, nat_gateways, frozenset({"sg-fn"}))

    assert [interface.interface_id for interface in found.interfaces] == [
        "eni-both", "eni-default", "eni-foreign-nat", "eni-instance", "eni-other-env", "eni-team", "eni-team-in-ours",
        "eni-tgw"]
    assert found.groups == ["sg-other-env (services)", "sg-team (team-b-lambda)"]
    by_id = {interface.interface_id: interface for interface in found.interfaces}
    assert by_id["eni-instance"].describe() == (
        "eni-instance (interface, in-use, subnet subnet-0aa, groups sg-task (services), attached to instance "
        "i-0abc, 'Primary network interface')")
    assert by_id["eni-tgw"].describe() == "eni-tgw (transit_gateway, in-use, subnet subnet-0aa)"
    # a network stack deployed before it named its functions' groups: a Lambda interface in any platform group
    unknown = foreign_resources(env, interfaces, groups, nat_gateways, None)
    assert "eni-team-in-ours" not in {interface.interface_id for interface in unknown.interfaces}


def test_a_group_missing_one_of_the_envs_default_tags_is_not_the_platforms() -> None:
    env = load_env("dev")
    for dropped in ("env", "managed-by", "layer"):
        tags = [tag for tag in _tags(env, "compute") if tag["Key"] != dropped]
        found = foreign_resources(env, [_interface("eni-1", "sg-1")], [_group("sg-1", "g", tags)], [])
        assert [i.interface_id for i in found.interfaces] == ["eni-1"] and found.groups == ["sg-1 (g)"], dropped
    tags = [tag if tag["Key"] != "layer" else {"Key": "layer", "Value": "someone-elses"}
            for tag in _tags(env, "compute")]
    assert foreign_resources(env, [_interface("eni-1", "sg-1")], [_group("sg-1", "g", tags)], [])


def test_the_scope_comes_from_networks_outputs() -> None:
    outputs = {"vpc_id": VPC, "broker_rotation_security_group_id": "sg-r", "queue_metrics_security_group_id": "sg-q"}
    assert VpcScope.of(outputs) == VpcScope(VPC, None, frozenset({"sg-r", "sg-q"}))
    # a group unnamed (None, or an output a stack predates): any platform group, never a false refusal
    assert VpcScope.of({**outputs, "broker_rotation_security_group_id": None}) == VpcScope(VPC, None, None)
    assert VpcScope.of({"vpc_id": VPC}, ["eu-west-1c"]) == VpcScope(VPC, ("eu-west-1c",), None)
    assert VpcScope.of({}) is None


def test_the_vpc_is_read_from_ec2_on_every_page(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    env = load_env("dev")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", env.account_id)  # the env's account runs the instance
    ec2 = boto3.client("ec2", region_name=env.region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]

    def group(name: str, layer: str | None) -> str:
        tagging = [{"ResourceType": "security-group", "Tags": _tags(env, layer)}] if layer else []
        return str(ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                             TagSpecifications=tagging)["GroupId"])

    platform, team = group("inference", "compute"), group("team-b", None)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation, TagSpecifications=[
        {"ResourceType": "natgateway", "Tags": _tags(env, "network")}])
    ours = [ec2.create_network_interface(SubnetId=subnet, Groups=[platform])["NetworkInterface"]["NetworkInterfaceId"]
            for _ in range(3)]
    theirs = ec2.create_network_interface(SubnetId=subnet, Groups=[team], Description="team b")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet,
                                 SecurityGroupIds=[platform])["Instances"][0]["InstanceId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    other_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_network_interface(SubnetId=other_subnet)

    found = AwsAccountCheck(lambda env, service: boto3.client(service, region_name=env.region)).foreign_resources(
        env, VpcScope(vpc))

    assert not {interface.interface_id for interface in found.interfaces} & set(ours)
    assert found.groups == [f"{team} (team-b)"]
    assert {interface.interface_id for interface in found.interfaces} == {
        theirs["NetworkInterface"]["NetworkInterfaceId"],
        *(i["NetworkInterfaceId"] for i in ec2.describe_network_interfaces(Filters=[
            {"Name": "attachment.instance-id", "Values": [instance]}])["NetworkInterfaces"])}
    assert any(interface.instance_id == instance for interface in found.interfaces)


class _Recording:
    """An EC2 client that answers nothing and records which operations were asked for, with what; ``unknown``: it
    answers a parameter of that name as a region that does not know it does."""

    def __init__(self, unknown: str | None = None) -> None:
        self.asked: list[str] = []
        self.params: list[dict[str, Any]] = []
        self.unknown = unknown

    def get_paginator(self, operation: str) -> Any:
        self.asked.append(operation)
        client = self

        class Pages:
            def paginate(self, **params: Any) -> list[dict[str, Any]]:
                client.params.append(params)
                if client.unknown in params:
                    raise botocore.exceptions.ClientError(
                        {"Error": {"Code": "UnknownParameter", "Message": f"The parameter {client.unknown} is not "
                                   "recognized"}}, "DescribeNetworkInterfaces")
                return [{}]

        return Pages()


def test_managed_interfaces_are_asked_for_where_ec2_knows_the_parameter() -> None:
    client = _Recording()
    read_foreign_resources(load_env("dev"), client, VpcScope(VPC, ("eu-west-1c",)))
    assert client.params[0] == {"Filters": [{"Name": "vpc-id", "Values": [VPC]},
                                            {"Name": "availability-zone", "Values": ["eu-west-1c"]}],
                                "IncludeManagedResources": True}
    older = _Recording(unknown="IncludeManagedResources")
    assert not read_foreign_resources(load_env("dev"), older, VpcScope(VPC))
    assert older.asked[:2] == ["describe_network_interfaces"] * 2
    assert "IncludeManagedResources" not in older.params[1]


def test_every_read_is_one_the_readme_lists_and_the_deploy_role_grants() -> None:
    client = _Recording()
    assert not read_foreign_resources(load_env("dev"), client, VpcScope(VPC))
    model = botocore.session.get_session().get_service_model("ec2")
    operations = {botocore.xform_name(name): name for name in model.operation_names}
    actions = {f"ec2:{operations[asked]}" for asked in client.asked}
    assert actions == {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeNatGateways"}
    assert actions <= _readme_preflight_actions()  # test_the_preflight_reads_the_readme_lists_are_granted: granted


def test_ec2_that_cannot_be_read_refuses_the_destroy_with_nothing_run() -> None:
    from shared.images import AwsAccessError

    class Denied:
        def get_paginator(self, operation: str) -> Any:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "DescribeNetworkInterfaces")

    with pytest.raises(AwsAccessError, match=rf"dev: nothing was run: what is in the env's VPC {VPC} could not be "
                                             r"read .*UnauthorizedOperation"):
        AwsAccountCheck(lambda env, service: Denied()).foreign_resources(load_env("dev"), VpcScope(VPC))


# -- the orchestrator --------------------------------------------------------------------------------------------


class NetworkRunner(RecordingRunner):
    """A RecordingRunner whose network stack outputs the env's VPC (``None``: no network stack; ``unreadable``: its
    backend does not answer)."""

    def __init__(self, vpc_id: str | None = VPC, unreadable: bool = False, retired: Sequence[str] = ()) -> None:
        super().__init__()
        self.vpc_id = vpc_id
        self.unreadable = unreadable
        self.retired = list(retired)
        """AZs network's last `up` retired (``network.retiring_availability_zones``); every layer has moved off."""

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        if layer == "network" and self.unreadable:
            raise RuntimeError("the backend did not answer")
        if layer == "network":
            return None if self.vpc_id is None else {
                "vpc_id": self.vpc_id, "availability_zones": ["eu-west-1a", "eu-west-1b"],
                "retiring_availability_zones": self.retired, "private_subnet_ids": ["subnet-0a", "subnet-0b"],
                "public_subnet_ids": ["subnet-1a", "subnet-1b"], "broker_rotation_security_group_id": "sg-0rotation",
                "queue_metrics_security_group_id": "sg-0metrics"}
        return {**(super().stack_outputs(layer, env) or {}), "subnet_ids": ["subnet-0a", "subnet-0b"]}


class Holding(AccountReady):
    """An account whose VPC holds ``found`` (the interfaces no layer deletes, ``groups`` the security groups); records
    the scopes it was asked about. ``denied``: EC2 answers no."""

    def __init__(self, found: Sequence[ForeignInterface], groups: Sequence[str] = (), denied: bool = False) -> None:
        self.found = ForeignResources(list(found), list(groups))
        self.denied = denied
        self.asked: list[tuple[str, list[str] | None]] = []
        self.scopes: list[VpcScope] = []

    def foreign_resources(self, env: EnvConfig, scope: VpcScope) -> ForeignResources:
        from shared.images import AwsAccessError

        self.asked.append((scope.vpc_id, None if scope.zones is None else list(scope.zones)))
        self.scopes.append(scope)
        if self.denied:
            raise AwsAccessError("dev: nothing was run: what is in the env's VPC could not be read (denied)")
        return self.found


TUNNEL = ForeignInterface("eni-0tunnel", "interface", "in-use", "subnet-0priv", "Primary network interface",
                          ("sg-0ssm (tunnel)",), "i-0tunnel")


def _run(argv: list[str], runner: RecordingRunner, account: AccountReady) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, runner=runner, out=out, confirm=lambda prompt: True, images=ReleasedEverywhere(),
                account=account)
    return code, out.getvalue()


def test_a_destroy_of_network_with_a_foreign_interface_in_the_vpc_deletes_nothing_at_all(
        capsys: pytest.CaptureFixture[str]) -> None:
    runner, account = NetworkRunner(), Holding([TUNNEL])
    code, _ = _run(["destroy", "dev", "--yes"], runner, account)
    assert code == 1
    assert runner.started() == [] and account.asked == [(VPC, None)]
    assert account.scopes[0].function_groups == {"sg-0rotation", "sg-0metrics"}  # network's outputs, as deployed
    err = capsys.readouterr().err
    assert (f"destroy dev: nothing was deleted: the env's VPC {VPC} holds 1 network interface that no layer of the "
            "platform deletes") in err
    assert ("eni-0tunnel (interface, in-use, subnet subnet-0priv, groups sg-0ssm (tunnel), attached to instance "
            "i-0tunnel, 'Primary network interface')") in err
    assert "`nox -s destroy -- dev --layers discovery,broker,messaging,compute` destroys every other layer" in err
    assert f"aws ec2 describe-network-interfaces --region eu-west-1 --filters Name=vpc-id,Values={VPC}" in err


def test_a_security_group_left_in_the_vpc_refuses_the_destroy_too(capsys: pytest.CaptureFixture[str]) -> None:
    runner, account = NetworkRunner(), Holding([], groups=["sg-0team (team-b-tunnel)"])
    code, _ = _run(["destroy", "dev", "--yes"], runner, account)
    assert code == 1 and runner.started() == []
    err = capsys.readouterr().err
    assert f"the env's VPC {VPC} holds 1 security group that no layer of the platform deletes" in err
    assert "  sg-0team (team-b-tunnel) (a security group)" in err
    assert "Remove them (delete the security groups (`aws ec2 delete-security-group --group-id <id>" in err
    assert "`pulumi destroy --stack <org>/network/dev` in stacks/network" in err


def test_a_destroys_preview_notes_an_ec2_it_cannot_read_and_runs() -> None:
    runner, account = NetworkRunner(), Holding([], denied=True)
    code, output = _run(["destroy", "dev", "--preview-only"], runner, account)
    assert code == 0, output
    assert "note: dev: nothing was run: what is in the env's VPC could not be read (denied)" in output
    runner, account = NetworkRunner(), Holding([], denied=True)
    assert _run(["destroy", "dev", "--yes"], runner, account)[0] == 2 and runner.started() == []


def test_the_layers_above_network_are_destroyed_as_the_refusal_says(capsys: pytest.CaptureFixture[str]) -> None:
    runner, account = NetworkRunner(), Holding([TUNNEL])
    code, output = _run(["destroy", "dev", "--yes", "--layers", "discovery,broker,messaging,compute"], runner, account)
    assert code == 0, output + capsys.readouterr().err
    assert sorted(runner.started()) == ["broker", "compute", "discovery", "mesh", "messaging"]
    assert account.asked == []


def test_a_vpc_holding_only_the_platforms_interfaces_is_destroyed() -> None:
    runner, account = NetworkRunner(), Holding([])
    code, output = _run(["destroy", "dev", "--yes"], runner, account)
    assert code == 0, output
    assert runner.started()[-1] == "network" and account.asked == [(VPC, None)]


def test_a_destroys_preview_says_it_would_be_refused_and_runs() -> None:
    runner, account = NetworkRunner(), Holding([TUNNEL])
    code, output = _run(["destroy", "dev", "--preview-only"], runner, account)
    assert code == 0, output
    assert "note: destroy would be refused: destroy dev: nothing was deleted" in output
    assert "network" in runner.started()


def test_nothing_is_read_for_an_up_or_without_a_network_stack() -> None:
    for argv, runner in ((["up", "dev", "--yes"], NetworkRunner()), (["preview", "dev"], NetworkRunner()),
                         (["destroy", "dev", "--yes"], NetworkRunner(vpc_id=None))):
        account = Holding([TUNNEL])
        code, output = _run(argv, runner, account)
        assert code == 0, (argv, output)
        assert account.asked == [], argv


def test_a_network_stack_that_cannot_be_read_stops_the_destroy_before_any_layer(
        capsys: pytest.CaptureFixture[str]) -> None:
    runner = NetworkRunner(unreadable=True)
    code, _ = _run(["destroy", "dev", "--yes"], runner, Holding([]))
    assert code == 2 and runner.started() == []
    assert "network's deployed VPC could not be read (RuntimeError: the backend did not answer); nothing was run" in \
        capsys.readouterr().err


# -- the `up` that drops retired AZs ---------------------------------------------------------------------------------


def test_the_up_that_drops_a_retired_az_is_refused_while_its_subnets_hold_a_foreign_interface(
        capsys: pytest.CaptureFixture[str]) -> None:
    runner, account = NetworkRunner(retired=["eu-west-1c"]), Holding([TUNNEL])
    code, _ = _run(["up", "dev", "--yes"], runner, account)
    assert code == 2 and runner.started() == []
    assert account.asked == [(VPC, ["eu-west-1c"])]
    err = capsys.readouterr().err
    assert ("tests/fixtures/environments/dev.yaml: network.az_count: drops eu-west-1c, whose subnets hold 1 network "
            "interface that no layer of the platform deletes") in err
    assert "eni-0tunnel (interface, in-use" in err and "keep eu-west-1c in network.retiring_availability_zones" in err


def test_the_drop_runs_once_the_subnets_hold_nothing_foreign_and_a_preview_notes_it() -> None:
    runner, account = NetworkRunner(retired=["eu-west-1c"]), Holding([])
    code, output = _run(["up", "dev", "--yes"], runner, account)
    assert code == 0, output
    assert runner.started()[0] == "network" and account.asked == [(VPC, ["eu-west-1c"])]
    runner, account = NetworkRunner(retired=["eu-west-1c"]), Holding([TUNNEL])
    code, output = _run(["preview", "dev"], runner, account)
    assert code == 0, output
    assert ("note: up would be refused: tests/fixtures/environments/dev.yaml: network.az_count: drops "
            "eu-west-1c") in output
    assert "network" in runner.started()


def test_a_zone_the_env_still_lists_or_an_up_without_network_reads_nothing() -> None:
    runner, account = NetworkRunner(retired=["eu-west-1b"]), Holding([TUNNEL])  # retiring, not dropped yet
    assert _run(["up", "dev", "--yes"], runner, account)[0] == 0 and account.asked == []
    runner, account = NetworkRunner(retired=["eu-west-1c"]), Holding([TUNNEL])
    assert _run(["up", "dev", "--yes", "--layers", "compute", "--exact"], runner, account)[0] == 0
    assert account.asked == []


def test_only_the_interfaces_of_the_dropped_zones_are_read(moto_aws: None) -> None:
    env = load_env("dev")
    ec2 = boto3.client("ec2", region_name=env.region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    kept = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    dropped = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24",
                                AvailabilityZone="eu-west-1c")["Subnet"]["SubnetId"]
    ec2.create_network_interface(SubnetId=kept, Description="in a kept AZ")
    there = ec2.create_network_interface(SubnetId=dropped, Description="in the dropped AZ")["NetworkInterface"]

    found = AwsAccountCheck(lambda env, service: boto3.client(service, region_name=env.region)).foreign_resources(
        env, VpcScope(vpc, ("eu-west-1c",)))

    assert [interface.interface_id for interface in found.interfaces] == [there["NetworkInterfaceId"]]
    assert found.groups == []  # an AZ drop deletes no security group
