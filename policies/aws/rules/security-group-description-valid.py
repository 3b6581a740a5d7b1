"""Security group and rule descriptions use only what EC2 accepts: it refuses the resource otherwise.

EC2 takes a security group's description and each rule's description only from ``a-z A-Z 0-9``, spaces
and ``._-:/()#,@[]+=&;{}!$*`` (no ``&`` in a rule that names a security group or a prefix list), at
most 255 characters (botocore's ec2 model: ``CreateSecurityGroupRequest.Description`` and the
``Description`` of ``IpRange``, ``Ipv6Range``, ``UserIdGroupPair``, ``PrefixListId``). An apostrophe
("the platform's services"), a quote, an accent or a newline makes ``CreateSecurityGroup`` or
``AuthorizeSecurityGroupIngress`` fail with ``InvalidParameterValue`` on the first ``up``, after a
preview that showed nothing wrong. Checks ``aws:ec2/securityGroup`` (itself and every inline entry),
``aws:ec2/securityGroupRule`` and ``aws:vpc/securityGroupIngressRule`` / ``EgressRule``.

Why: a preview cannot tell, and the deploy stops half-way. A group's description is also fixed at
creation (a change replaces the group), so it must be right the first time. The public rule sets
check only that a description exists (``security-group-described``), not that EC2 accepts it.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    VPC_EGRESS_RULE,
    VPC_INGRESS_RULE,
    GroupDescription,
    applies_to,
    rule_policy,
    security_group_descriptions,
    undecidable,
)
from shared.policy_typing import ReportViolation

MAX_LENGTH = 255
ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*")


def _problem(description: GroupDescription) -> str | None:
    """Why EC2 would refuse the description; None when it accepts it (or there is none)."""
    text = description.text
    if not isinstance(text, str) or not text:
        return None
    bad = sorted({char for char in text if char not in ALLOWED or (description.references and char == "&")})
    if bad:
        return f"has {', '.join(repr(char) for char in bad)}"
    if len(text) > MAX_LENGTH:
        return f"is {len(text)} characters long (at most {MAX_LENGTH})"
    return None


@applies_to(SECURITY_GROUP, SECURITY_GROUP_RULE, VPC_INGRESS_RULE, VPC_EGRESS_RULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    descriptions, unknown = security_group_descriptions(args)
    kind = "security group" if args.resource_type == SECURITY_GROUP else "security group rule"
    for description in descriptions:
        problem = _problem(description)
        if problem is None:
            continue
        where = "" if description.where == "description" else f" {description.where}"
        report_violation(
            f"{kind} '{args.name}'{where}: description {description.text!r} {problem}, which EC2 refuses "
            "(InvalidParameterValue on up); use only letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* (no '&' "
            "where the rule names a group or a prefix list), at most 255 characters (e.g. 'from the platform "
            "services', not \"platform's\").")
    if unknown:
        undecidable(args, f"{kind} '{args.name}': {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
