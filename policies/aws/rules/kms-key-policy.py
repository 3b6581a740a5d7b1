"""KMS keys have an explicit key policy, and no statement of it lets anyone (``*``) in unconditionally.

Checks ``aws:kms/key:Key``, ``aws:kms/replicaKey:ReplicaKey`` (a multi-Region replica) and
``aws:kms/externalKey:ExternalKey`` (imported key material), each with a ``policy`` of its own, and
``aws:kms/keyPolicy:KeyPolicy`` (``policy``) as a stack rule:
a key without ``policy`` passes only if an ``aws.kms.KeyPolicy`` of the same stack sets its policy
(found through ``keyId``'s property dependencies, its value or the dependencies). A statement is
public when it ``Allow``s ``Principal: "*"`` / ``{"AWS": "*"}`` (or uses ``NotPrincipal``) unless its
``Condition`` names the callers with fixed values: ``kms:CallerAccount``, ``aws:PrincipalOrgID``,
``aws:SourceAccount``... under a matching operator, without wildcards or policy variables
(:func:`shared.policy_support.is_public_statement`; AWS Config's kms-key-policy-no-public-access, behind
Security Hub KMS.5, counts fixed values only). ``kms:ViaService`` alone names a service any account may call
through, not a caller.

Why: without a policy AWS applies its default key policy, which nobody reviewed in the program; a
wildcard principal without such a condition lets any AWS account use (or administer) the key. Matches
Security Hub KMS.5, checkov CKV2_AWS_64 (policy defined) and CKV_AWS_33 (no wildcard principal); no cdk-nag
equivalent.
"""

from typing import Any

from pulumi_policy import StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    contains_unknown,
    parse_json,
    public_statement_labels,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

#: every KMS key resource with a key policy of its own (pulumi_aws kms.Key, kms.ReplicaKey, kms.ExternalKey)
KEYS = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey", "aws:kms/externalKey:ExternalKey")
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"


def _public_statements(raw: Any) -> list[str] | None:
    """Labels of the public statements; ``None`` when the document is unknown or not JSON."""
    if contains_unknown(raw):
        return None
    try:
        document = parse_json(raw)
    except ValueError:
        return ["the policy is not valid JSON"]
    return public_statement_labels(document)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    keys, key_policies = stack_resources(args, *KEYS), stack_resources(args, KEY_POLICY)
    if not keys and not key_policies:
        args.not_applicable("the stack has no KMS key or key policy")
    undecided: list[str] = []
    covered: set[str] = set()
    coverage_unknown = False
    for key_policy in key_policies:
        targets = referenced_targets(key_policy, "keyId", keys, identity_keys=("id", "arn", "keyId"))
        if targets is None:
            undecided.append(f"key policy '{key_policy.name}': keyId")
            coverage_unknown = True
        else:
            covered.update(t.urn for t in targets)
        found = _public_statements(resource_input(key_policy, "policy"))
        if found is None:
            undecided.append(f"key policy '{key_policy.name}': policy")
        elif found:
            report_violation(f"key policy '{key_policy.name}': {', '.join(found)} allows any principal without a "
                             "condition naming fixed callers; name the account's principals or add a condition (e.g. "
                             "kms:CallerAccount with the account's ID).",
                             key_policy.urn)
    for key in keys:
        raw = resource_input(key, "policy")
        if raw is UNKNOWN:
            undecided.append(f"KMS key '{key.name}': policy")
            continue
        if raw is None or raw == "":
            if coverage_unknown:
                undecided.append(f"KMS key '{key.name}': whether a key policy covers it")
            elif key.urn not in covered:
                report_violation(f"KMS key '{key.name}' has no key policy (AWS applies its default one); set policy= "
                                 "to a reviewed document that names the key's administrators and users.", key.urn)
            continue
        found = _public_statements(raw)
        if found is None:
            undecided.append(f"KMS key '{key.name}': policy")
        elif found:
            report_violation(f"KMS key '{key.name}': {', '.join(found)} allows any principal without a condition "
                             "naming fixed callers; name the account's principals or add a condition (e.g. "
                             "kms:CallerAccount with the account's ID).", key.urn)
    if undecided:
        undecidable(args, ", ".join(undecided))


POLICY = stack_rule_policy(__file__, _validate)
