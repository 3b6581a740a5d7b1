"""No IAM policy is given to a user directly: users get permissions through groups (or roles).

Checks ``aws:iam/userPolicy:UserPolicy`` (an inline policy of a user), ``aws:iam/userPolicyAttachment``,
``aws:iam/userPolicyAttachmentsExclusive`` with ``policyArns`` (it attaches them) and the ``users`` of
``aws:iam/policyAttachment``. Policies on groups and roles pass.

Why: permissions pinned to individual users drift apart, outlive the person's role and are missed in
reviews; a platform's workloads use roles, and humans belong to groups. Matches Security Hub IAM.2,
cdk-nag IAMUserNoPolicies (NIST/HIPAA packs), checkov CKV_AWS_40.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_list,
    known_input,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

USER_POLICY = "aws:iam/userPolicy:UserPolicy"
USER_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
USER_EXCLUSIVE = "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive"


@applies_to(USER_POLICY, USER_ATTACHMENT, POLICY_ATTACHMENT, USER_EXCLUSIVE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    fix = "put the policy on a group the user belongs to (aws.iam.GroupPolicy / GroupPolicyAttachment)"
    if args.resource_type == USER_POLICY:
        report_violation(f"UserPolicy '{args.name}' gives a user an inline policy; {fix}.")
        return
    if args.resource_type == USER_ATTACHMENT:
        report_violation(f"UserPolicyAttachment '{args.name}' attaches a policy to a user; {fix}.")
        return
    if args.resource_type == USER_EXCLUSIVE:
        arns = known_input(args, "UserPolicyAttachmentsExclusive", "policyArns")
        if as_list(arns):  # attaches what it lists; an empty list only detaches
            report_violation(f"UserPolicyAttachmentsExclusive '{args.name}' attaches policies to a user; {fix}.")
        return
    users = known_input(args, "PolicyAttachment", "users")
    named = [u for u in as_list(users) if u is not UNKNOWN and u]
    if named:
        report_violation(f"PolicyAttachment '{args.name}' attaches a policy to user(s) "
                         f"{', '.join(map(str, named))}; {fix}.")
    elif UNKNOWN in as_list(users):
        undecidable(args, f"PolicyAttachment '{args.name}': an entry of users")


POLICY = rule_policy(__file__, _validate)
