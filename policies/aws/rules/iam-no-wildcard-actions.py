"""No IAM ``Allow`` statement grants every action (``*``) or every action of a service (``s3:*``).

Checks the permission policies of ``aws:iam/role`` (``inlinePolicies``), ``aws:iam/rolePolicy``,
``aws:iam/userPolicy``, ``aws:iam/groupPolicy`` and ``aws:iam/policy`` (managed policies). An ``Allow``
with ``NotAction`` is flagged as well: it grants everything except the listed actions. Prefix
wildcards such as ``s3:Get*`` are allowed. Trust policies (``assumeRolePolicy``) are not permission
grants and are not checked.

Why: ``service:*`` includes the destructive and the permission-changing actions of that service
(``iam:*`` is account takeover); least privilege means naming the actions the workload calls.
Matches cdk-nag AwsSolutions-IAM5 / checkov CKV_AWS_63 (and CKV_AWS_49 for policy documents).
"""

import re
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    IAM_POLICY_DOCUMENT_TYPES,
    IAM_ROLE,
    applies_to,
    as_list,
    known_iam_documents,
    parse_json,
    policy_statements,
    rule_policy,
)
from shared.policy_typing import ReportViolation

WILDCARD = re.compile(r"^(\*+|[A-Za-z0-9*-]+:\*+)$")


def _findings(document: Any) -> list[str]:
    findings: list[str] = []
    for index, statement in enumerate(policy_statements(document)):
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        label = f"statement {statement.get('Sid') or index}"
        wildcards = [a for a in as_list(statement.get("Action")) if isinstance(a, str) and WILDCARD.match(a.strip())]
        if wildcards:
            findings.append(f"{label} allows {', '.join(repr(w) for w in wildcards)}")
        if statement.get("NotAction") is not None:
            findings.append(f"{label} allows everything but its NotAction list")
    return findings


@applies_to(IAM_ROLE, *IAM_POLICY_DOCUMENT_TYPES)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for subject, raw in known_iam_documents(args):
        try:
            document = parse_json(raw)
        except ValueError:
            report_violation(f"{subject} is not valid JSON; fix the policy document.")
            continue
        findings = _findings(document)
        if findings:
            report_violation(
                f"{subject} {'; '.join(findings)}; list the specific actions the workload calls "
                "(e.g. 'sqs:SendMessage') instead of wildcards."
            )


POLICY = rule_policy(__file__, _validate)
