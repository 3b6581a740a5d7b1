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

from shared.policy_support import allow_statements, as_list, iam_document_rule

#: every action, or every action of a service: a verb of wildcards only, with a '*' ("iam:*", "iam:?*": IAM's '?' is
#: one character, '*' any run; IAM user guide, "IAM JSON policy elements: Action")
WILDCARD = re.compile(r"^([*?]*\*[*?]*|[A-Za-z0-9*?-]+:[*?]*\*[*?]*)$")


def _findings(document: Any) -> list[str]:
    findings: list[str] = []
    for label, statement in allow_statements(document):
        wildcards = [a for a in as_list(statement.get("Action")) if isinstance(a, str) and WILDCARD.match(a.strip())]
        if wildcards:
            findings.append(f"{label} allows {', '.join(repr(w) for w in wildcards)}")
        if statement.get("NotAction") is not None:
            findings.append(f"{label} allows everything but its NotAction list")
    return findings


POLICY = iam_document_rule(
    __file__, _findings,
    fix="list the specific actions the workload calls (e.g. 'sqs:SendMessage') instead of wildcards.",
    invalid_json="fix the policy document.")
