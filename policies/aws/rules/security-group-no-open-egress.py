"""No security group egress to the whole internet (``0.0.0.0/0`` or ``::/0``) on all ports.

Checks inline ``egress`` of ``aws:ec2/securityGroup`` and ``aws:ec2/defaultSecurityGroup``, standalone
``aws:ec2/securityGroupRule`` of type ``egress`` (``cidrBlocks``/``ipv6CidrBlocks``) and
``aws:vpc/securityGroupEgressRule`` (``cidrIpv4``/``cidrIpv6``). "All ports" is protocol ``-1`` (all
traffic) or TCP/UDP from port 0 or 1 (0 is reserved) to 65535, as ``security-group-no-all-ports-from-cidr``
counts; a world-open rule on named ports (e.g. tcp 443 to AWS APIs through a NAT) passes. Ingress is
``security-group-no-open-ingress``'s.

Why: an "allow everything out" rule lets a compromised task reach any host on any port -- exfiltration
and command-and-control need nothing else. Egress names the ports the workload calls (443 to AWS
APIs and registries, 5671 to the broker). Matches checkov CKV_AWS_382; no cdk-nag equivalent.
"""


from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    SECURITY_GROUP_RULE,
    SECURITY_GROUPS,
    VPC_EGRESS_RULE,
    applies_to,
    inline_rule_entries,
    is_world,
    not_applicable,
    opens_all_ports,
    rule_policy,
    standalone_rule,
    world_open,
)
from shared.policy_typing import ReportViolation

FIX = "name the destination ports the workload calls (e.g. tcp 443) or the destination security group"


@applies_to(*SECURITY_GROUPS, SECURITY_GROUP_RULE, VPC_EGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in SECURITY_GROUPS:
        for index, entry, blocks in inline_rule_entries(args, "egress"):
            cidrs = [c for c in blocks if is_world(c)]
            if cidrs and opens_all_ports(entry.get("protocol"), entry.get("fromPort"), entry.get("toPort"), lowest=1):
                report_violation(f"security group '{args.name}' allows egress to {', '.join(cidrs)} on all ports "
                                 f"(egress[{index}]); {FIX}.")
        return

    rule = standalone_rule(args, "egress")
    if rule is None:
        not_applicable(args, f"security group rule '{args.name}' is an ingress rule")
    opened = world_open(args, rule)
    if opened is not None and opens_all_ports(*opened[1], lowest=1):
        report_violation(f"security group rule '{args.name}' allows egress to {', '.join(opened[0])} on all ports; "
                         f"{FIX}.")


POLICY = rule_policy(__file__, _validate)
