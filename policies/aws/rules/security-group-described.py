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
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    VPC_EGRESS_RULE,
    VPC_INGRESS_RULE,
    applies_to,
    rule_policy,
    security_group_descriptions,
    undecidable,
)
from shared.policy_typing import ReportViolation

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


@applies_to(SECURITY_GROUP, SECURITY_GROUP_RULE, VPC_INGRESS_RULE, VPC_EGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    descriptions, unknown = security_group_descriptions(args)
    if args.resource_type != SECURITY_GROUP:
        (description,) = (d.text for d in descriptions)
        if not _is_real(description):
            shown = f"description {description!r}" if description else "no description"
            report_violation(
                f"security group rule '{args.name}' has {shown}; set description to who needs this access and why "
                "(e.g. 'HTTPS from the public ALB')."
            )
        return
    own = [d.text for d in descriptions if d.where == "description"]
    if own and not _is_real(own[0]):
        shown = repr(own[0]) if own[0] else "the provider default 'Managed by Pulumi'"
        report_violation(
            f"security group '{args.name}' has description {shown}; set description to what the group "
            "protects (e.g. 'inference tasks: traffic from the gateway only')."
        )
    vague = [d.where for d in descriptions if d.where != "description" and not _is_real(d.text)]
    if vague:
        report_violation(
            f"security group '{args.name}' has rules without a real description ({', '.join(vague)}); "
            "give every ingress/egress entry a description of who needs it and why."
        )
    if unknown:
        undecidable(args, f"security group '{args.name}': {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
