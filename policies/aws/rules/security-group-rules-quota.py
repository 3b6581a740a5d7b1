"""No security group of the stack carries more rules in one direction than EC2's default quota, 60 (stack rule).

EC2 counts a group's inbound and outbound rules separately, and IPv4 and IPv6 rules separately: each IPv4 address
range is one IPv4 rule, each IPv6 range one IPv6 rule, and a rule naming another security group (or the group
itself) or an AWS-managed prefix list counts once in both families, a customer-managed prefix list as its maximum
number of entries (Amazon VPC user guide, "Amazon VPC quotas" and "Security group size": inbound or outbound rules
per security group, 60, L-0EA8095F, adjustable only as long as it times security groups per network interface stays
at most 1,000). The rule adds up, per group and direction, the inline ``ingress``/``egress`` entries of
``aws:ec2/securityGroup`` (and ``DefaultSecurityGroup``) and the standalone ``aws:ec2/securityGroupRule`` and
``aws:vpc/securityGroupIngressRule`` / ``EgressRule`` resources of the stack, any prefix list as one rule (a
customer-managed list's size is not in the rule's inputs: a lower bound).
A rule on a group of another stack is counted against that group's id, as far as this stack's rules go.

Why: the platform adds a rule each way per range of consecutive called services' ports to the tasks' group, so the
group grows with the catalog (with called services on ports that leave gaps between them); the
AuthorizeSecurityGroupIngress/Egress past the quota fails with RulesPerSecurityGroupLimitExceeded half-way through
``up``, while every rule before it already exists. An account whose quota was raised suppresses this rule for the
group in the env's ``policy.suppressions``, naming the quota.

A group reference or an address list unknown at preview leaves the rule undecided for the stack, unless the known
rules already cross the quota.
"""

from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    SECURITY_GROUP_RULE,
    SECURITY_GROUPS,
    UNKNOWN,
    VPC_EGRESS_RULE,
    VPC_INGRESS_RULE,
    as_list,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

#: Amazon VPC quotas: "Inbound or outbound rules per security group", 60 by default (IPv4 and IPv6 counted apart).
DEFAULT_QUOTA = 60
DIRECTIONS = ("ingress", "egress")
#: (IPv4 range inputs, IPv6 range inputs, inputs naming a group or a prefix list) per rule shape
INLINE = (("cidrBlocks",), ("ipv6CidrBlocks",), ("securityGroups", "prefixListIds"))
EC2_RULE = (("cidrBlocks",), ("ipv6CidrBlocks",), ("sourceSecurityGroupId", "prefixListIds"))
VPC_RULE = (("cidrIpv4",), ("cidrIpv6",), ("referencedSecurityGroupId", "prefixListId"))


@dataclass
class Tally:
    """The rules of one group in one direction: IPv4 and IPv6 counts, and what is unknown yet."""

    label: str
    urn: str | None
    ipv4: int = 0
    ipv6: int = 0
    unknown: list[str] = field(default_factory=list)

    def add(self, entry: dict[str, Any], shape: tuple[tuple[str, ...], ...], where: str) -> None:
        v4_keys, v6_keys, reference_keys = shape
        counts = []
        for keys in (v4_keys, v6_keys, reference_keys):
            count = 0
            for key in keys:
                value = entry.get(key)
                if value is UNKNOWN or any(item is UNKNOWN for item in as_list(value)):
                    self.unknown.append(f"{where}.{key}")
                count += sum(1 for item in as_list(value) if item is not UNKNOWN and item not in ("", None))
            counts.append(count)
        references = counts[2] + (1 if entry.get("self") is True else 0)
        self.ipv4 += counts[0] + references
        self.ipv6 += counts[1] + references


def _group_label(group: PolicyResource) -> str:
    return f"security group '{group.name}'"


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    groups = stack_resources(args, *SECURITY_GROUPS)
    rules = stack_resources(args, SECURITY_GROUP_RULE, VPC_INGRESS_RULE, VPC_EGRESS_RULE)
    if not groups and not rules:
        args.not_applicable("the stack has no security group and no security group rule")
    tallies: dict[tuple[str, str], Tally] = {}
    undecided: list[str] = []

    def tally(key: str, direction: str, label: str, urn: str | None) -> Tally:
        return tallies.setdefault((key, direction), Tally(label, urn))

    for group in groups:
        for direction in DIRECTIONS:
            entries = resource_input(group, direction)
            target = tally(group.urn, direction, _group_label(group), group.urn)
            if entries is UNKNOWN:
                target.unknown.append(f"'{group.name}'.{direction}")
                continue
            for index, entry in enumerate(as_list(entries)):
                if isinstance(entry, dict):
                    target.add(entry, INLINE, f"'{group.name}'.{direction}[{index}]")
                else:
                    target.unknown.append(f"'{group.name}'.{direction}[{index}]")

    for rule in rules:
        if rule.resource_type == SECURITY_GROUP_RULE:
            direction = resource_input(rule, "type")
            shape = EC2_RULE
            if direction is UNKNOWN:
                undecided.append(f"'{rule.name}'.type")
                continue
        else:
            direction = "ingress" if rule.resource_type == VPC_INGRESS_RULE else "egress"
            shape = VPC_RULE
        targets = referenced_targets(rule, "securityGroupId", groups)
        if targets is None:
            undecided.append(f"'{rule.name}'.securityGroupId")
            continue
        if targets:
            group = targets[0]
            target = tally(group.urn, str(direction), _group_label(group), group.urn)
        else:  # a group of another stack: counted by its id, with this stack's rules only
            group_id = resource_input(rule, "securityGroupId")
            if not isinstance(group_id, str) or not group_id:
                undecided.append(f"'{rule.name}'.securityGroupId")
                continue
            target = tally(group_id, str(direction), f"security group {group_id} (of another stack)", None)
        entry = {key: resource_input(rule, key) for keys in shape for key in keys}
        entry["self"] = resource_input(rule, "self")
        target.add(entry, shape, f"'{rule.name}'")

    for (_, direction), found in tallies.items():
        over = [(family, count) for family, count in (("IPv4", found.ipv4), ("IPv6", found.ipv6))
                if count > DEFAULT_QUOTA]
        if over:
            counted = " and ".join(f"{count} {family}" for family, count in over)
            report_violation(
                f"{found.label} has {counted} {direction} rules (each address range, referenced group and prefix "
                f"list counts), more than the {DEFAULT_QUOTA} EC2 allows per direction by default: up fails with "
                "RulesPerSecurityGroupLimitExceeded once the group is full. Merge adjacent ports into port ranges, "
                "reference a group instead of listing ranges, split the group, or raise the quota 'Inbound or "
                "outbound rules per security group' (at most 1,000 divided by security groups per network interface) "
                "and suppress this rule for the group naming it.", found.urn)
        elif found.unknown:
            undecided.extend(found.unknown)
    if undecided:
        args.not_applicable(f"cannot count {', '.join(undecided)} before deployment")


POLICY = stack_rule_policy(__file__, _validate)
