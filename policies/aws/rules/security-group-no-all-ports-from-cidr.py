"""No security group ingress of every port (or every protocol) from an address range.

Checks inline ``ingress`` of ``aws:ec2/securityGroup`` and ``aws:ec2/defaultSecurityGroup``, standalone
``aws:ec2/securityGroupRule`` of type ``ingress`` (``cidrBlocks``/``ipv6CidrBlocks``) and
``aws:vpc/securityGroupIngressRule`` (``cidrIpv4``/``cidrIpv6``). A violation is an entry that admits
all traffic (protocol ``-1``) or a TCP/UDP range from port 0 or 1 to 65535, from an IPv4 range wider
than a /24 or an IPv6 range wider than a /64. A source that is a security group or a prefix list is not
an address range and is not checked; neither are single hosts and small ranges (/24 and narrower).

Why: "everything from the VPC CIDR" admits every subnet of the VPC, public ones included, on every
port: one compromised host anywhere in the range reaches every listener. Name the ports and, inside
a VPC, reference the peer's security group. Complements ``security-group-no-open-ingress`` (which
covers the whole internet on any port); the common scanners' port checks (CIS AWS Foundations, cdk-nag
AwsSolutions-EC23) look only at ``0.0.0.0/0`` and ``::/0``, not at internal ranges.
"""

import ipaddress
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    SECURITY_GROUP_RULE,
    SECURITY_GROUPS,
    VPC_INGRESS_RULE,
    applies_to,
    contains_unknown,
    describe_ports,
    inline_rule_entries,
    opens_all_ports,
    plain,
    rule_policy,
    standalone_rule,
    undecidable,
)
from shared.policy_typing import ReportViolation

#: the widest ranges a rule may open every port to: a /24 (IPv4), a /64 (IPv6)
NARROWEST_ALLOWED = {4: 24, 6: 64}


def _wide(cidr: Any) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return False
    return network.prefixlen < NARROWEST_ALLOWED[network.version]


def _finding(what: str, name: str, cidrs: list[str], ports: str) -> str:
    return (f"{what} '{name}' admits {ports} from {', '.join(cidrs)}; name the ports the peers need and, inside a "
            "VPC, reference the peer's security group (referenced_security_group_id) instead of an address range.")


@applies_to(*SECURITY_GROUPS, SECURITY_GROUP_RULE, VPC_INGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in SECURITY_GROUPS:
        props = plain(args.props)
        # any unknown in the list, even in one entry, leaves the whole group undecided
        if contains_unknown(props.get("ingress")):
            undecidable(args, f"security group '{args.name}': ingress")
        for _index, entry, blocks in inline_rule_entries(args, "ingress", props):
            protocol, low, high = entry.get("protocol"), entry.get("fromPort"), entry.get("toPort")
            cidrs = [c for c in blocks if _wide(c)]
            if cidrs and opens_all_ports(protocol, low, high, lowest=1):
                report_violation(_finding("security group", args.name, cidrs, describe_ports(protocol, low, high)))
        return

    rule = standalone_rule(args, "ingress")
    if rule is None:
        return
    protocol, low, high = rule.ports(args)
    if not opens_all_ports(protocol, low, high, lowest=1):
        return
    rule.require_known_cidrs(args)
    cidrs = rule.cidrs(_wide)
    if cidrs:
        report_violation(_finding("security group rule", args.name, cidrs, describe_ports(protocol, low, high)))


POLICY = rule_policy(__file__, _validate)
