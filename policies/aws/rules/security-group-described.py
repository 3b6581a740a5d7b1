"""Security groups and their rules carry a real description.

A description is "real" when it says something: not empty, not a provider default such as
``Managed by Pulumi`` (what an SG gets when ``description`` is left unset), not a placeholder
(``todo``, ``sg``, ``test``...), and at least two words. Checks ``aws:ec2/securityGroup`` (itself and
every inline ingress/egress entry), ``aws:ec2/securityGroupRule`` and ``aws:vpc/securityGroupIngressRule``
/ ``EgressRule``.

Why: during an incident or an audit, "why is this port open, and for whom?" must be answerable from the
rule itself; the description is the only place AWS keeps that. ``description`` of an SG forces a
replacement when changed, so it is worth getting right at creation.
Matches cdk-nag AwsSolutions-EC27 / checkov CKV_AWS_23.
"""

import re
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_list,
    contains_unknown,
    known_input,
    plain,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
RULES = (
    "aws:ec2/securityGroupRule:SecurityGroupRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
)
PLACEHOLDERS = {
    "managed by pulumi",
    "managed by terraform",
    "security group",
    "security group rule",
    "default",
    "default security group",
    "sg",
    "todo",
    "tbd",
    "test",
    "n/a",
    "na",
    "none",
    "description",
    "allow",
    "allow all",
    "ingress",
    "egress",
}


def _is_real(description: Any) -> bool:
    if not isinstance(description, str):
        return False
    text = " ".join(description.split()).lower()
    return text not in PLACEHOLDERS and len(re.findall(r"[a-z0-9]+", text)) >= 2


@applies_to(SECURITY_GROUP, *RULES)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    if args.resource_type in RULES:
        description = known_input(args, "security group rule", "description", props)
        if not _is_real(description):
            shown = f"description {description!r}" if description else "no description"
            report_violation(
                f"security group rule '{args.name}' has {shown}; set description to who needs this access and why "
                "(e.g. 'HTTPS from the public ALB')."
            )
        return

    unknown: list[str] = []
    description = props.get("description")
    if description is UNKNOWN:
        unknown.append("description")
    elif not _is_real(description):
        shown = repr(description) if description else "the provider default 'Managed by Pulumi'"
        report_violation(
            f"security group '{args.name}' has description {shown}; set description to what the group "
            "protects (e.g. 'inference tasks: traffic from the gateway only')."
        )
    vague: list[str] = []
    for direction in ("ingress", "egress"):
        entries = props.get(direction)
        if entries is UNKNOWN:
            unknown.append(direction)
            continue
        for index, entry in enumerate(as_list(entries)):
            entry_description = entry.get("description") if isinstance(entry, dict) else entry
            if contains_unknown(entry_description):
                unknown.append(f"{direction}[{index}].description")
            elif not _is_real(entry_description):
                vague.append(f"{direction}[{index}]")
    if vague:
        report_violation(
            f"security group '{args.name}' has rules without a real description ({', '.join(vague)}); "
            "give every ingress/egress entry a description of who needs it and why."
        )
    if unknown:
        undecidable(args, f"security group '{args.name}': {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
