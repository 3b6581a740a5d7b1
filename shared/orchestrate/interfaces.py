"""A destroy of the network layer refused, before any layer runs, while the env's VPC holds network interfaces that
no layer of the platform deletes.

EC2 refuses to delete a subnet, a security group or the VPC while a network interface is in it (DependencyViolation),
and the provider retries a subnet's delete for its whole timeout before it fails. An interface someone else put into
the env's subnets (an EC2 instance, another team's Lambda function or VPC endpoint, a transit gateway attachment, an
interface made by hand) therefore stopped ``destroy`` at network's subnets: after every other layer, and network's
routes, NAT gateways and endpoints, were already deleted. So the orchestrator reads the VPC's interfaces first and
refuses the destroy, naming each foreign one, while nothing is deleted yet.

An interface is the platform's when one of its security groups is a platform group (the env's default tags ``env``,
``managed-by``, ``layer``: every group the stacks create; not the VPC's ``default`` group, which no platform resource
uses) and no EC2 instance holds it (the platform runs none: Fargate tasks, Lambda, Amazon MQ, load balancers, CodeBuild
and endpoints hold theirs without one), or when it is the interface of one of the env's NAT gateways. Those go with
the layers that created them. GuardDuty Runtime Monitoring's own endpoint (its security group tagged
``GuardDutyManaged=true``) is removed by the provider when the subnet or the VPC is deleted
(:data:`shared.deploy_role.GUARDDUTY_CLEANUP_ACTIONS`), so it stops nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from shared.dag import LAYER_UPSTREAMS, order
from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError, PlatformError, UsageError
from shared.orchestrate.model import Action, Operation
from shared.orchestrate.plan import Plan
from shared.orchestrate.report import failure_detail

LAYER = "network"
#: the env's default tags that every resource of the stacks carries (:meth:`shared.envs.EnvConfig.common_tags`)
MANAGED_BY = "pulumi"
#: GuardDuty Runtime Monitoring's tag on what it puts into a VPC (hashicorp/terraform-provider-aws#46953)
GUARDDUTY_TAG = ("GuardDutyManaged", "true")
#: the VPC's own group, which every VPC has; the platform closes it and puts nothing in it
DEFAULT_GROUP = "default"


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


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    """An EC2 item's ``Tags`` (``TagSet`` on a network interface) as a mapping."""
    listed = item.get("Tags") or item.get("TagSet") or []
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in listed}


def is_platform_tagged(env: EnvConfig, item: Mapping[str, Any]) -> bool:
    """Whether ``item`` carries the env's default tags (any layer of the platform)."""
    tags = _tags(item)
    return tags.get("env") == env.name and tags.get("managed-by") == MANAGED_BY and tags.get("layer") in order()


def foreign_interfaces(env: EnvConfig, interfaces: Iterable[Mapping[str, Any]],
                       groups: Iterable[Mapping[str, Any]],
                       nat_gateways: Iterable[Mapping[str, Any]]) -> list[ForeignInterface]:
    """The interfaces of ``interfaces`` (EC2 DescribeNetworkInterfaces ``NetworkInterfaces`` of the VPC) that no layer
    deletes, given the VPC's security groups (DescribeSecurityGroups) and NAT gateways (DescribeNatGateways)."""
    groups = list(groups)
    platform_groups = {str(group["GroupId"]) for group in groups
                       if group.get("GroupName") != DEFAULT_GROUP and is_platform_tagged(env, group)}
    guardduty_groups = {str(group["GroupId"]) for group in groups
                        if _tags(group).get(GUARDDUTY_TAG[0]) == GUARDDUTY_TAG[1]}
    names = {str(group["GroupId"]): str(group.get("GroupName", "")) for group in groups}
    platform_nat_interfaces = {str(address["NetworkInterfaceId"]) for gateway in nat_gateways
                               if is_platform_tagged(env, gateway)
                               for address in gateway.get("NatGatewayAddresses") or []
                               if address.get("NetworkInterfaceId")}
    found = []
    for interface in interfaces:
        interface_id = str(interface["NetworkInterfaceId"])
        held = {str(group["GroupId"]) for group in interface.get("Groups") or []}
        instance = (interface.get("Attachment") or {}).get("InstanceId")
        if held & guardduty_groups or interface_id in platform_nat_interfaces:
            continue
        if held & platform_groups and not instance:
            continue
        found.append(ForeignInterface(
            interface_id=interface_id, interface_type=str(interface.get("InterfaceType", "interface")),
            status=str(interface.get("Status", "?")), subnet_id=str(interface.get("SubnetId", "?")),
            description=str(interface.get("Description", "")),
            groups=tuple(f"{group} ({names[group]})" if names.get(group) else group for group in sorted(held)),
            instance_id=str(instance) if instance else None))
    return sorted(found, key=lambda interface: interface.interface_id)


def read_foreign_interfaces(env: EnvConfig, ec2: Any, vpc_id: str,
                            zones: Sequence[str] | None = None) -> list[ForeignInterface]:
    """:func:`foreign_interfaces` of the VPC ``vpc_id`` (only those in the AZs ``zones``, when given), read with the
    boto3 EC2 client ``ec2`` (every page)."""
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    in_zones = [{"Name": "availability-zone", "Values": list(zones)}] if zones is not None else []

    def every(operation: str, key: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pages = ec2.get_paginator(operation).paginate(Filters=filters)
        return [item for page in pages for item in page.get(key, [])]

    return foreign_interfaces(env, every("describe_network_interfaces", "NetworkInterfaces", in_vpc + in_zones),
                              every("describe_security_groups", "SecurityGroups", in_vpc),
                              every("describe_nat_gateways", "NatGateways", in_vpc))


def _listed(found: Sequence[ForeignInterface]) -> str:
    return "\n".join(f"  {interface.describe()}" for interface in found)


def _removal(env: EnvConfig) -> str:
    return ("Remove them (terminate the instance, take the Lambda function or endpoint out of the VPC, delete the "
            "attachment, or `aws ec2 delete-network-interface --network-interface-id <id> --region "
            f"{env.region}` for an unattached one)")


def dropped_zone_refusal(env: EnvConfig, network_outputs: Mapping[str, Any] | None,
                         read: Callable[[EnvConfig, str, Sequence[str] | None], Sequence[ForeignInterface]]
                         ) -> ConfigError | None:
    """Why the `up` that drops retired AZs (the second step of shared.zone_retirement) must not run yet: their subnets,
    which network's `up` deletes, hold interfaces no layer of the platform deletes (None: none, or no AZ dropped).
    The platform's own layers left them in the first step (:func:`shared.zone_retirement.zone_drop_refusals`)."""
    network = network_outputs or {}
    vpc_id = network.get("vpc_id")
    retired = [zone for zone in network.get("retiring_availability_zones") or [] if zone not in env.availability_zones]
    if not vpc_id or not retired:
        return None
    found = read(env, str(vpc_id), retired)
    if not found:
        return None
    key = "network.availability_zones" if env.network.availability_zones is not None else "network.az_count"
    zones = ", ".join(retired)
    return ConfigError(str(env_path(env.name)), key, (
        f"drops {zones}, whose subnets hold {len(found)} network interface{'s' if len(found) > 1 else ''} that no "
        "layer of the platform deletes: EC2 refuses to delete a subnet while one is in it (DependencyViolation, "
        "after the provider's wait), so network's `up` would stop there after changing the rest.\n"
        f"{_listed(found)}\n{_removal(env)}, then run again; until then keep {zones} in "
        f"network.retiring_availability_zones. Nothing was run"))


def check_network_destroy(plan: Plan, operation: Operation, env: EnvConfig,
                          read_outputs: Callable[[str, EnvConfig], Mapping[str, Any] | None],
                          read: Callable[[EnvConfig, str, Sequence[str] | None], Sequence[ForeignInterface]],
                          out: TextIO) -> None:
    """ForeignInterfacesError, before any layer runs, when a destroy of network meets interfaces no layer deletes in
    the env's VPC (the ``vpc_id`` of network's deployed outputs, ``read_outputs``; no stack or no VPC: nothing to
    check). ``read(env, vpc_id, None)`` answers :func:`read_foreign_interfaces`. A destroy's preview
    (``--preview-only``) is told in a note."""
    if operation.action is not Action.DESTROY or LAYER not in plan.layers:
        return
    try:
        network_outputs = read_outputs(LAYER, env)
    except Exception as error:  # noqa: BLE001 - a failed `pulumi stack output` is the reason, not a traceback
        raise UsageError(f"network's deployed VPC could not be read ({failure_detail(error)}); nothing was "
                         "run") from None
    vpc_id = (network_outputs or {}).get("vpc_id")
    if not vpc_id:
        return
    found = read(env, str(vpc_id), None)
    if not found:
        return
    above = ",".join(layer for layer in order() if LAYER in LAYER_UPSTREAMS[layer])
    refusal = ForeignInterfacesError(
        f"destroy {env.name}: nothing was deleted: the env's VPC {vpc_id} holds {len(found)} network interface"
        f"{'s' if len(found) > 1 else ''} that no layer of the platform deletes, and EC2 refuses to delete a subnet "
        "or the VPC while one is in it (DependencyViolation): network's destroy would stop there after every other "
        f"layer was deleted.\n{_listed(found)}\n{_removal(env)}, or keep network: `nox -s destroy -- {env.name} "
        f"--layers {above}` destroys every other layer. See them with `aws ec2 describe-network-interfaces --region "
        f"{env.region} --filters Name=vpc-id,Values={vpc_id}`.")
    if operation.preview_only:
        out.write(f"note: destroy would be refused: {refusal}\n")
        return
    raise refusal
