"""IAM roles and policies stay within IAM's size and count limits (stack rule).

IAM user guide, "IAM and AWS STS quotas", counting policy sizes without white space: a role's inline policies
together at most 10,240 characters; a managed policy at most 6,144 (not adjustable); a role's trust policy at most
2,048 by default (L-C07B4B0D, adjustable); at most 10 managed policies attached to a role by default (L-0DA4ABF3);
a role name at most 64 characters (``namePrefix`` at most 38, the provider adding 26), a path at most 512. Checks
``aws:iam/role`` (``assumeRolePolicy``, ``inlinePolicies``, ``managedPolicyArns``, ``name``, ``path``),
``aws:iam/rolePolicy`` (added to its role's inline total), ``aws:iam/rolePolicyAttachment`` (added to its role's
managed policies) and ``aws:iam/policy``.

Why: a policy that grows with the platform -- one statement or resource per service, per queue, per bucket --
synthesizes and passes every other rule, and ``up`` stops half-way at the PutRolePolicy or CreatePolicyVersion
past the limit (LimitExceeded / MalformedPolicyDocument: "Maximum policy size ... exceeded"). An account whose
adjustable quota was raised suppresses the rule for that role in the env's ``policy.suppressions``, naming it.

A document unknown at preview is not counted (the rule then decides on the known ones; undecided while nothing
known crosses a limit).
"""

import re
from dataclasses import dataclass, field

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    as_list,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY = "aws:iam/policy:Policy"
#: IAM and AWS STS quotas (characters without white space; counts)
ROLE_INLINE_TOTAL = 10_240
MANAGED_POLICY_SIZE = 6_144
TRUST_POLICY_SIZE = 2_048
MANAGED_POLICIES_PER_ROLE = 10
ROLE_NAME = 64
ROLE_NAME_PREFIX = 38
PATH = 512


def policy_size(document: object) -> int:
    """The characters IAM counts of a policy document: all but white space."""
    return len(re.sub(r"\s", "", document)) if isinstance(document, str) else 0


@dataclass
class RoleTally:
    label: str
    urn: str | None
    inline: list[tuple[str, int]] = field(default_factory=list)
    managed: int = 0


def _check_size(resource: PolicyResource, key: str, limit: int, undecided: list[str], report: ReportViolation,
                message: str) -> None:
    """Report ``message`` (its ``{size}`` filled in) when policy document input ``key`` is over ``limit``; name it
    in ``undecided`` while it is unknown."""
    document = resource_input(resource, key)
    if document is UNKNOWN:
        undecided.append(f"'{resource.name}'.{key}")
    elif policy_size(document) > limit:
        report(message.format(size=policy_size(document)), resource.urn)


def _role_of(resource: PolicyResource, roles: list[PolicyResource], tallies: dict[str, RoleTally],
             undecided: list[str]) -> RoleTally | None:
    """The tally of the role a role policy or attachment belongs to (a role of another stack: by its name)."""
    targets = referenced_targets(resource, "role", roles, identity_keys=("name", "id"))
    if targets:
        return tallies[targets[0].urn]
    role = resource_input(resource, "role")
    if targets is None or not isinstance(role, str) or not role:
        undecided.append(f"'{resource.name}'.role")
        return None
    return tallies.setdefault(f"name:{role}", RoleTally(f"role '{role}' (of another stack)", None))


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    roles = stack_resources(args, ROLE)
    others = stack_resources(args, ROLE_POLICY, ATTACHMENT, MANAGED_POLICY)
    if not roles and not others:
        args.not_applicable("the stack has no IAM role or policy")
    undecided: list[str] = []
    tallies = {role.urn: RoleTally(f"role '{role.name}'", role.urn) for role in roles}

    for role in roles:
        tally = tallies[role.urn]
        _check_size(role, "assumeRolePolicy", TRUST_POLICY_SIZE, undecided, report_violation,
                    f"role '{role.name}': its trust policy has {{size}} characters without white space, more than "
                    f"IAM's {TRUST_POLICY_SIZE} by default ('Role trust policy length'); trust fewer principals per "
                    "role, or raise the quota (up to 8,192) and suppress this rule naming it.")
        for key, limit in (("name", ROLE_NAME), ("namePrefix", ROLE_NAME_PREFIX), ("path", PATH)):
            value = resource_input(role, key)
            if isinstance(value, str) and len(value) > limit:
                report_violation(f"role '{role.name}': its {key} {value!r} has {len(value)} characters; IAM takes at "
                                 f"most {limit}.", role.urn)
        inline = resource_input(role, "inlinePolicies")
        if inline is UNKNOWN:
            undecided.append(f"'{role.name}'.inlinePolicies")
        for index, entry in enumerate(as_list(inline)):
            document = entry.get("policy") if isinstance(entry, dict) else UNKNOWN
            if document is UNKNOWN:
                undecided.append(f"'{role.name}'.inlinePolicies[{index}]")
            else:
                tally.inline.append((f"inline_policies[{index}]", policy_size(document)))
        arns = resource_input(role, "managedPolicyArns")
        tally.managed += len(as_list(arns)) if arns is not UNKNOWN else 0

    for resource in others:
        if resource.resource_type == MANAGED_POLICY:
            _check_size(resource, "policy", MANAGED_POLICY_SIZE, undecided, report_violation,
                        f"managed policy '{resource.name}' has {{size}} characters without white space; IAM takes at "
                        f"most {MANAGED_POLICY_SIZE} per managed policy (not adjustable): split it, or grant by tag or "
                        "prefix instead of listing resources.")
            continue
        owner = _role_of(resource, roles, tallies, undecided)
        if owner is None:
            continue
        if resource.resource_type == ATTACHMENT:
            owner.managed += 1
            continue
        document = resource_input(resource, "policy")
        if document is UNKNOWN:
            undecided.append(f"'{resource.name}'.policy")
        else:
            owner.inline.append((f"role policy '{resource.name}'", policy_size(document)))

    for tally in tallies.values():
        total = sum(size for _, size in tally.inline)
        if total > ROLE_INLINE_TOTAL:
            parts = ", ".join(f"{what} {size}" for what, size in tally.inline)
            report_violation(
                f"{tally.label}: its inline policies have {total} characters without white space together ({parts}); "
                f"IAM takes at most {ROLE_INLINE_TOTAL} per role, whatever the number of policies (PutRolePolicy fails "
                "with LimitExceeded): grant by tag or prefix instead of listing resources, or move statements into "
                "managed policies.", tally.urn)
        if tally.managed > MANAGED_POLICIES_PER_ROLE:
            report_violation(
                f"{tally.label} has {tally.managed} managed policies attached; IAM takes at most "
                f"{MANAGED_POLICIES_PER_ROLE} per role by default: merge them, or raise the quota 'Managed policies "
                "per role' and suppress this rule naming it.", tally.urn)
    if undecided:
        args.not_applicable(f"cannot measure {', '.join(undecided)} before deployment")


POLICY = stack_rule_policy(__file__, _validate)
