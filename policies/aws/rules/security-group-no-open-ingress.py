"""No security group ingress from the whole internet (``0.0.0.0/0`` or ``::/0``).

Checks inline ``ingress`` of ``aws:ec2/securityGroup`` and ``aws:ec2/defaultSecurityGroup``, standalone
``aws:ec2/securityGroupRule`` of type ``ingress`` (``cidrBlocks``/``ipv6CidrBlocks``) and
``aws:vpc/securityGroupIngressRule`` (``cidrIpv4``/``cidrIpv6``). The one exception: TCP 80 and 443
(exactly those ports) on a resource tagged ``exposure=public`` -- a public load balancer. Tags count
with the provider's ``defaultTags``. An ``aws:ec2/securityGroupRule`` has no tags of its own and a
resource rule cannot see its security group's, so a world-open 80/443 must be declared inline on the
tagged SG or as a tagged ``aws.vpc.SecurityGroupIngressRule``.

Why: a port open to the world is scanned within minutes; only a public entry point should be, and only
for HTTP(S). Matches cdk-nag AwsSolutions-EC23 / checkov CKV_AWS_24, CKV_AWS_25, CKV_AWS_260.
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_int,
    as_list,
    contains_unknown,
    describe_ports,
    effective_tags,
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
VPC_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PUBLIC_PORTS = (80, 443)


def _web_only(protocol: Any, from_port: Any, to_port: Any) -> bool:
    low, high = as_int(from_port), as_int(to_port)
    return protocol_name(protocol) == "tcp" and low is not None and low == high and low in PUBLIC_PORTS


def _is_public(args: ResourceValidationArgs) -> bool:
    return str(effective_tags(args).get("exposure", "")).lower() == "public"


def _finding(args: ResourceValidationArgs, what: str, cidrs: list[str], ports: str, taggable: bool) -> str:
    fix = "restrict the source to known CIDRs or reference a security group"
    if taggable:
        fix += "; only tcp 80/443 may be world-open, on a resource tagged exposure=public"
    else:
        fix += "; a world-open tcp 80/443 belongs inline on an SG tagged exposure=public"
    return f"{what} '{args.name}' allows ingress from {', '.join(cidrs)} on {ports}; {fix}."


@applies_to(SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SECURITY_GROUP_RULE, VPC_INGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    if args.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for _index, entry, blocks in inline_rule_entries(args, "ingress"):
            cidrs = [c for c in blocks if is_world(c)]
            protocol, low, high = entry.get("protocol"), entry.get("fromPort"), entry.get("toPort")
            if cidrs and not (_is_public(args) and _web_only(protocol, low, high)):
                report_violation(_finding(args, "security group", cidrs, describe_ports(protocol, low, high), True))
        return

    if args.resource_type == SECURITY_GROUP_RULE:
        rule_type = props.get("type")
        if rule_type is UNKNOWN:
            undecidable(args, f"security group rule '{args.name}': type")
        if str(rule_type).lower() != "ingress":
            return
        cidr_props = ("cidrBlocks", "ipv6CidrBlocks")
        protocol_prop, taggable = "protocol", False
    else:
        cidr_props = ("cidrIpv4", "cidrIpv6")
        protocol_prop, taggable = "ipProtocol", True

    relevant = {key: props.get(key) for key in (*cidr_props, protocol_prop, "fromPort", "toPort")}
    cidrs = [c for key in cidr_props for c in as_list(relevant[key]) if is_world(c)]
    if not cidrs:
        unknown = [key for key in cidr_props if contains_unknown(relevant[key])]
        if unknown:
            undecidable(args, f"security group rule '{args.name}': {', '.join(unknown)}")
        return
    protocol, low, high = relevant[protocol_prop], relevant["fromPort"], relevant["toPort"]
    if contains_unknown([protocol, low, high]):
        undecidable(args, f"security group rule '{args.name}': ports")
    if taggable and _is_public(args) and _web_only(protocol, low, high):
        return
    report_violation(_finding(args, "security group rule", cidrs, describe_ports(protocol, low, high), taggable))


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
