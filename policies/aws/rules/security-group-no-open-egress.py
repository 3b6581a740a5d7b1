"""No security group egress to the whole internet (``0.0.0.0/0`` or ``::/0``) on all ports.

Checks inline ``egress`` of ``aws:ec2/securityGroup`` and ``aws:ec2/defaultSecurityGroup``, standalone
``aws:ec2/securityGroupRule`` of type ``egress`` (``cidrBlocks``/``ipv6CidrBlocks``) and
``aws:vpc/securityGroupEgressRule`` (``cidrIpv4``/``cidrIpv6``). "All ports" is protocol ``-1`` (all
traffic) or TCP/UDP 0-65535; a world-open rule on named ports (e.g. tcp 443 to AWS APIs through a
NAT) passes. Ingress is ``security-group-no-open-ingress``'s.

Why: an "allow everything out" rule lets a compromised task reach any host on any port -- exfiltration
and command-and-control need nothing else. Egress names the ports the workload calls (443 to AWS
APIs and registries, 5671 to the broker). Matches checkov CKV_AWS_382; no cdk-nag equivalent.
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_int,
    as_list,
    contains_unknown,
    inline_rule_entries,
    is_world,
    plain,
    protocol_name,
    rule_description,
    rule_id,
    undecidable,
)
from shared.policy_typing import ReportViolation

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
FIX = "name the destination ports the workload calls (e.g. tcp 443) or the destination security group"


def _all_ports(protocol: Any, from_port: Any, to_port: Any) -> bool:
    name = protocol_name(protocol)
    if name == "-1":
        return True
    low, high = as_int(from_port), as_int(to_port)
    return name in ("tcp", "udp") and low is not None and high is not None and low <= 0 and high >= 65535


@applies_to(SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SECURITY_GROUP_RULE, VPC_EGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    if args.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for index, entry, blocks in inline_rule_entries(args, "egress"):
            cidrs = [c for c in blocks if is_world(c)]
            if cidrs and _all_ports(entry.get("protocol"), entry.get("fromPort"), entry.get("toPort")):
                report_violation(f"security group '{args.name}' allows egress to {', '.join(cidrs)} on all ports "
                                 f"(egress[{index}]); {FIX}.")
        return

    if args.resource_type == SECURITY_GROUP_RULE:
        rule_type = props.get("type")
        if rule_type is UNKNOWN:
            undecidable(args, f"security group rule '{args.name}': type")
        if str(rule_type).lower() != "egress":
            args.not_applicable(f"security group rule '{args.name}' is an ingress rule")
        cidr_props, protocol_prop = ("cidrBlocks", "ipv6CidrBlocks"), "protocol"
    else:
        cidr_props, protocol_prop = ("cidrIpv4", "cidrIpv6"), "ipProtocol"
    cidrs = [c for key in cidr_props for c in as_list(props.get(key)) if is_world(c)]
    if not cidrs:
        unknown = [key for key in cidr_props if contains_unknown(props.get(key))]
        if unknown:
            undecidable(args, f"security group rule '{args.name}': {', '.join(unknown)}")
        return
    protocol, low, high = props.get(protocol_prop), props.get("fromPort"), props.get("toPort")
    if contains_unknown([protocol, low, high]):
        undecidable(args, f"security group rule '{args.name}': ports")
    if _all_ports(protocol, low, high):
        report_violation(f"security group rule '{args.name}' allows egress to {', '.join(cidrs)} on all ports; {FIX}.")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
