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

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    SECURITY_GROUP_RULE,
    SECURITY_GROUPS,
    VPC_INGRESS_RULE,
    applies_to,
    as_int,
    describe_ports,
    effective_tags,
    inline_rule_entries,
    is_world,
    protocol_name,
    rule_policy,
    standalone_rule,
    world_open,
)
from shared.policy_typing import ReportViolation

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


@applies_to(*SECURITY_GROUPS, SECURITY_GROUP_RULE, VPC_INGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in SECURITY_GROUPS:
        for _index, entry, blocks in inline_rule_entries(args, "ingress"):
            cidrs = [c for c in blocks if is_world(c)]
            protocol, low, high = entry.get("protocol"), entry.get("fromPort"), entry.get("toPort")
            if cidrs and not (_is_public(args) and _web_only(protocol, low, high)):
                report_violation(_finding(args, "security group", cidrs, describe_ports(protocol, low, high), True))
        return

    rule = standalone_rule(args, "ingress")
    opened = world_open(args, rule) if rule is not None else None
    if opened is None:
        return
    cidrs, (protocol, low, high) = opened
    # an aws:ec2/securityGroupRule has no tags: only an aws:vpc rule can be the tagged exception
    taggable = args.resource_type == VPC_INGRESS_RULE
    if taggable and _is_public(args) and _web_only(protocol, low, high):
        return
    report_violation(_finding(args, "security group rule", cidrs, describe_ports(protocol, low, high), taggable))


POLICY = rule_policy(__file__, _validate)
