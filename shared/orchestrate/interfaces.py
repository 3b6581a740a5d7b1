"""A destroy of the network layer (and the `up` that drops an AZ) refused, before any layer runs, while the env's VPC
holds network interfaces, or security groups, that no layer of the platform deletes.

EC2 refuses to delete a subnet, a security group or the VPC while a network interface is in it, and the VPC while a
security group other than its ``default`` one is (DependencyViolation); the provider retries a subnet's delete for its
whole timeout before it fails. What someone else put into the env's VPC (an EC2 instance, another team's Lambda
function, VPC endpoint or security group, a transit gateway attachment, an interface made by hand) therefore stopped
``destroy`` at network's subnets or VPC: after every other layer, and network's routes, NAT gateways and endpoints,
were already deleted. So the orchestrator reads the VPC first and refuses, naming each, while nothing is deleted yet.

A security group is the platform's when it carries the env's default tags (``env``, ``managed-by``, ``layer``: every
group the stacks create), the VPC's ``default`` group aside (no platform resource uses it). An interface is the
platform's when it holds platform groups only, at least one, and no EC2 instance of the account holds it (the platform
runs none: Fargate tasks, Lambda, Amazon MQ, load balancers, CodeBuild builds and endpoints hold theirs without one of
the account's instances), and a Lambda interface only in one of the env's function groups (network's outputs
``broker_rotation_security_group_id``, ``queue_metrics_security_group_id``: another team's function in the tasks'
group is not the platform's); or when it is the interface of one of the env's NAT gateways. Those go with the layers
that created them. What GuardDuty Runtime Monitoring puts into the VPC (its ``guardduty-data`` endpoint and security
group, tagged ``GuardDutyManaged=true``) the provider removes when the subnet or the VPC is deleted (pulumi_aws ec2
``Subnet`` and ``Vpc`` docstrings: "only targets resources tagged with GuardDutyManaged=true";
:data:`shared.deploy_role.GUARDDUTY_CLEANUP_ACTIONS`), so it stops nothing either.

Not told apart: an interface of another party that holds platform groups only and no instance of the account (a
task of another team's in the tasks' group, an endpoint in the endpoints' group, an interface made by hand in a
platform group; an unattached one cannot count as foreign, CodeBuild's and Fargate's are briefly unattached too), and
what holds the VPC without a network interface or a security group (a gateway endpoint, a route table, a peering):
those still stop network's destroy where they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from shared.components.lambda_eni_drain import LAMBDA_DESCRIPTION
from shared.dag import LAYER_UPSTREAMS, order
from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError, PlatformError, UsageError
from shared.images import AwsAccessError, aws_error_code, aws_errors
from shared.orchestrate.model import Action, Operation
from shared.orchestrate.plan import Plan
from shared.orchestrate.report import failure_detail
from shared.zone_retirement import changed_zone_key

LAYER = "network"
#: the env's default tags that every resource of the stacks carries (:meth:`shared.envs.EnvConfig.common_tags`)
MANAGED_BY = "pulumi"
#: GuardDuty Runtime Monitoring's tag on what it puts into a VPC (hashicorp/terraform-provider-aws#46953)
GUARDDUTY_TAG = ("GuardDutyManaged", "true")
#: the VPC's own group, which every VPC has; the platform closes it and puts nothing in it
DEFAULT_GROUP = "default"
#: network's outputs naming the env's Lambda functions' groups (shared.contracts.NetworkContract)
FUNCTION_GROUP_OUTPUTS = ("broker_rotation_security_group_id", "queue_metrics_security_group_id")
#: EC2's answers to a request parameter it does not know
UNKNOWN_PARAMETER_CODES = ("UnknownParameter", "InvalidParameter")


class ForeignInterfacesError(PlatformError):
    """A destroy of network refused before any layer ran: an interface no layer deletes is in the VPC (exit 1, a
    gate, as a destroy refused at protected resources)."""

    exit_code = 1


@dataclass(frozen=True)
class ForeignInterface:
    """A network interface in the env's VPC that no layer of the platform deletes."""

    interface_id: str
    interface_type: str
    status: str
    subnet_id: str
    description: str
    groups: tuple[str, ...]
    """Its security groups, as ``sg-... (name)``."""
    instance_id: str | None = None

    def describe(self) -> str:
        held = f", attached to instance {self.instance_id}" if self.instance_id else ""
        groups = f", groups {', '.join(self.groups)}" if self.groups else ""
        said = f", '{self.description}'" if self.description else ""
        where = f"{self.interface_type}, {self.status}, subnet {self.subnet_id}"
        return f"{self.interface_id} ({where}{groups}{held}{said})"


@dataclass(frozen=True)
class VpcScope:
    """What to read of the env's VPC."""

    vpc_id: str
    zones: tuple[str, ...] | None = None
    """Only the interfaces in these AZs (an AZ drop deletes their subnets alone); None: the whole VPC."""
    function_groups: frozenset[str] | None = None
    """The env's Lambda functions' groups; None: unknown (a network stack deployed before they were outputs)."""

    @classmethod
    def of(cls, network: Mapping[str, Any], zones: Sequence[str] | None = None) -> VpcScope | None:
        """The scope of network's deployed outputs ``network`` (None: they name no VPC)."""
        if not network.get("vpc_id"):
            return None
        # both named, or unknown (an external broker's env has no function; a stack deployed before the outputs):
        # then a Lambda interface in any platform group is the platform's, never a false refusal
        functions = frozenset(str(network[key]) for key in FUNCTION_GROUP_OUTPUTS if network.get(key))
        known = len(functions) == len(FUNCTION_GROUP_OUTPUTS)
        return cls(str(network["vpc_id"]), None if zones is None else tuple(zones), functions if known else None)


@dataclass(frozen=True)
class ForeignResources:
    """What is in the env's VPC that no layer of the platform deletes."""

    interfaces: list[ForeignInterface] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    """Security groups, as ``sg-... (name)`` (read for the whole VPC only: an AZ drop deletes no group)."""

    def __bool__(self) -> bool:
        return bool(self.interfaces or self.groups)


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    """An EC2 item's ``Tags`` (``TagSet`` on a network interface) as a mapping."""
    listed = item.get("Tags") or item.get("TagSet") or []
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in listed}


def is_platform_tagged(env: EnvConfig, item: Mapping[str, Any]) -> bool:
    """Whether ``item`` carries the env's default tags (any layer of the platform)."""
    tags = _tags(item)
    return tags.get("env") == env.name and tags.get("managed-by") == MANAGED_BY and tags.get("layer") in order()


def foreign_resources(env: EnvConfig, interfaces: Iterable[Mapping[str, Any]], groups: Iterable[Mapping[str, Any]],
                      nat_gateways: Iterable[Mapping[str, Any]],
                      function_groups: frozenset[str] | None = None) -> ForeignResources:
    """What of ``interfaces`` (EC2 DescribeNetworkInterfaces ``NetworkInterfaces``) and ``groups``
    (DescribeSecurityGroups ``SecurityGroups`` of the VPC) no layer deletes, given the VPC's NAT gateways
    (DescribeNatGateways) and the env's Lambda functions' groups (None: unknown, any platform group then). The module
    docstring says which are the platform's."""
    groups = list(groups)
    guardduty = {str(group["GroupId"]) for group in groups if _tags(group).get(GUARDDUTY_TAG[0]) == GUARDDUTY_TAG[1]}
    platform = {str(group["GroupId"]) for group in groups
                if group.get("GroupName") != DEFAULT_GROUP and is_platform_tagged(env, group)}
    names = {str(group["GroupId"]): str(group.get("GroupName", "")) for group in groups}
    nat_interfaces = {str(address["NetworkInterfaceId"]) for gateway in nat_gateways if is_platform_tagged(env, gateway)
                      for address in gateway.get("NatGatewayAddresses") or [] if address.get("NetworkInterfaceId")}
    found = []
    for interface in interfaces:
        interface_id = str(interface["NetworkInterfaceId"])
        held = {str(group["GroupId"]) for group in interface.get("Groups") or []}
        attachment = interface.get("Attachment") or {}
        # an instance of the account's own; a service's interface is attached to none of them (CodeBuild's and
        # Fargate's report another owner, if any)
        instance = attachment.get("InstanceId") if attachment.get("InstanceOwnerId") == env.account_id else None
        lambda_made = interface.get("InterfaceType") == "lambda" or \
            str(interface.get("Description", "")).startswith(LAMBDA_DESCRIPTION)
        if held & guardduty or interface_id in nat_interfaces:
            continue
        ours = bool(held) and held <= platform and not instance and not (
            lambda_made and function_groups is not None and not held & function_groups)
        if ours:
            continue
        found.append(ForeignInterface(
            interface_id=interface_id, interface_type=str(interface.get("InterfaceType", "interface")),
            status=str(interface.get("Status", "?")), subnet_id=str(interface.get("SubnetId", "?")),
            description=str(interface.get("Description", "")),
            groups=tuple(f"{group} ({names[group]})" if names.get(group) else group for group in sorted(held)),
            instance_id=str(instance) if instance else None))
    foreign_groups = sorted(f"{group_id} ({name})" for group_id, name in names.items()
                            if name != DEFAULT_GROUP and group_id not in platform | guardduty)
    return ForeignResources(sorted(found, key=lambda interface: interface.interface_id), foreign_groups)


def read_foreign_resources(env: EnvConfig, ec2: Any, scope: VpcScope) -> ForeignResources:
    """:func:`foreign_resources` of ``scope``, read with the boto3 EC2 client ``ec2`` (every page). Managed resources
    are asked for too: an account whose managed-resource visibility is hidden leaves them out of a plain describe
    (botocore ec2 DescribeNetworkInterfacesRequest ``IncludeManagedResources``), and they hold a subnet as well."""
    in_vpc = [{"Name": "vpc-id", "Values": [scope.vpc_id]}]
    in_zones = [{"Name": "availability-zone", "Values": list(scope.zones)}] if scope.zones is not None else []

    def every(operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        pages = ec2.get_paginator(operation).paginate(**params)
        return [item for page in pages for item in page.get(key, [])]

    def interfaces() -> list[dict[str, Any]]:
        try:
            return every("describe_network_interfaces", "NetworkInterfaces", Filters=in_vpc + in_zones,
                         IncludeManagedResources=True)
        except aws_errors() as error:
            # a region or partition that does not know the parameter yet (an EC2 feature of 2026) answers so; there
            # no resource is hidden either
            if aws_error_code(error) not in UNKNOWN_PARAMETER_CODES:
                raise
            return every("describe_network_interfaces", "NetworkInterfaces", Filters=in_vpc + in_zones)

    found = foreign_resources(
        env, interfaces(),
        every("describe_security_groups", "SecurityGroups", Filters=in_vpc),
        every("describe_nat_gateways", "NatGateways", Filters=in_vpc), scope.function_groups)
    return found if scope.zones is None else ForeignResources(found.interfaces)


Reader = Callable[[EnvConfig, VpcScope], ForeignResources]
"""``(env, scope)`` -> what of the VPC no layer deletes
(:meth:`shared.orchestrate.account.AccountCheck.foreign_resources`)."""


def _listed(found: ForeignResources) -> str:
    lines = [f"  {interface.describe()}" for interface in found.interfaces]
    lines += [f"  {group} (a security group)" for group in found.groups]
    return "\n".join(lines)


def _removal(env: EnvConfig, found: ForeignResources) -> str:
    ways = []
    if found.interfaces:
        ways.append("terminate the instance, take the Lambda function or endpoint out of the VPC, delete the "
                    "attachment, or `aws ec2 delete-network-interface --network-interface-id <id> --region "
                    f"{env.region}` for an unattached one")
    if found.groups:
        ways.append("delete the security groups (`aws ec2 delete-security-group --group-id <id> --region "
                    f"{env.region}`, once nothing uses them)")
    return f"Remove them ({', and '.join(ways)})"


def _counted(found: ForeignResources) -> str:
    parts = [f"{len(found.interfaces)} network interface{'s' if len(found.interfaces) > 1 else ''}"
             if found.interfaces else "",
             f"{len(found.groups)} security group{'s' if len(found.groups) > 1 else ''}" if found.groups else ""]
    return " and ".join(part for part in parts if part)


def dropped_zone_refusal(env: EnvConfig, network_outputs: Mapping[str, Any] | None, read: Reader) -> ConfigError | None:
    """Why the `up` that drops retired AZs (the second step of shared.zone_retirement) must not run yet: their subnets,
    which network's `up` deletes, hold interfaces no layer of the platform deletes (None: none, or no AZ dropped).
    The platform's own layers left them in the first step (:func:`shared.zone_retirement.zone_drop_refusals`)."""
    network = network_outputs or {}
    retired = [zone for zone in network.get("retiring_availability_zones") or [] if zone not in env.availability_zones]
    scope = VpcScope.of(network, retired) if retired else None
    if scope is None:
        return None
    found = read(env, scope)
    if not found:
        return None
    zones = ", ".join(retired)
    return ConfigError(str(env_path(env.name)), changed_zone_key(env), (
        f"drops {zones}, whose subnets hold {_counted(found)} that no layer of the platform deletes: EC2 refuses to "
        "delete a subnet while one is in it (DependencyViolation, after the provider's wait), so network's `up` "
        f"would stop there after changing the rest.\n{_listed(found)}\n{_removal(env, found)}, then run again; until "
        f"then keep {zones} in network.retiring_availability_zones. Nothing was run"))


def check_network_destroy(plan: Plan, operation: Operation, env: EnvConfig,
                          read_outputs: Callable[[str, EnvConfig], Mapping[str, Any] | None], read: Reader,
                          out: TextIO) -> None:
    """ForeignInterfacesError, before any layer runs, when a destroy of network meets what no layer deletes in the
    env's VPC (network's deployed outputs, ``read_outputs``; no stack or no VPC: nothing to check), read by ``read``
    (:func:`read_foreign_resources`). A destroy's preview (``--preview-only``) is told in a note, also where EC2
    cannot be read."""
    if operation.action is not Action.DESTROY or LAYER not in plan.layers:
        return
    try:
        network_outputs = read_outputs(LAYER, env)
    except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is the reason, not a traceback
        raise UsageError(f"network's deployed VPC could not be read ({failure_detail(error)}); nothing was "
                         "run") from None
    scope = VpcScope.of(network_outputs or {})
    if scope is None:
        return
    try:
        found = read(env, scope)
    except AwsAccessError as error:
        if not operation.preview_only:
            raise
        out.write(f"note: {error}\n")
        return
    if not found:
        return
    above = ",".join(layer for layer in order() if LAYER in LAYER_UPSTREAMS[layer])
    refusal = ForeignInterfacesError(
        f"destroy {env.name}: nothing was deleted: the env's VPC {scope.vpc_id} holds {_counted(found)} that no layer "
        "of the platform deletes, and EC2 refuses to delete a subnet or the VPC while an interface is in it, and the "
        "VPC while such a group is (DependencyViolation): network's destroy would stop there after every other layer "
        f"was deleted.\n{_listed(found)}\n{_removal(env, found)}, or keep network: `nox -s destroy -- {env.name} "
        f"--layers {above}` destroys every other layer. See them with `aws ec2 describe-network-interfaces --region "
        f"{env.region} --filters Name=vpc-id,Values={scope.vpc_id}` (and `describe-security-groups`). Should one be "
        f"the platform's own, network alone can still be destroyed by hand: `pulumi destroy --stack "
        f"<org>/network/{env.name}` in stacks/network.")
    if operation.preview_only:
        out.write(f"note: destroy would be refused: {refusal}\n")
        return
    raise refusal
