"""No IAM ``Allow`` statement grants write or sensitive actions on every resource (``Resource: "*"``).

Checks the permission policies of ``aws:iam/role`` (``inlinePolicies``), ``aws:iam/rolePolicy``,
``aws:iam/userPolicy``, ``aws:iam/groupPolicy`` and ``aws:iam/policy``. A statement is flagged when it
``Allow``s, on ``*``, an action that writes (its name starts with a write verb: ``Create``, ``Delete``,
``Put``, ``Update``, ``Attach``, ``Pass``...) or reads secrets (``secretsmanager:GetSecretValue``,
``kms:Decrypt``, ``ssm:GetParameter*``, ``s3:GetObject``...); a wildcard action (``s3:Put*``) counts
when it can match one. Plain reads (``Describe*``, ``List*``) on ``*`` pass.

Some actions support no resource but ``*`` (the Service Authorization Reference lists no resource
type for them): ``ecr:GetAuthorizationToken``, ``cloudwatch:PutMetricData``, ``xray:PutTraceSegments``,
the ``ssmmessages:`` channel actions of ECS Exec, ``logs:CreateLogDelivery``... They are in
:data:`STAR_ONLY` and pass: naming a resource for them is impossible.

Why: ``Resource: "*"`` on a write action lets the workload change every resource of that type in the
account, not the one it owns. Matches cdk-nag AwsSolutions-IAM5 (resource part), checkov
CKV_AWS_355 (restrictable actions on ``*``) and CKV_AWS_290 (write access without constraints).
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

WRITE_VERBS = (
    "Create", "Delete", "Put", "Update", "Modify", "Attach", "Detach", "Associate", "Disassociate", "Set", "Add",
    "Remove", "Tag", "Untag", "Start", "Stop", "Run", "Terminate", "Reboot", "Send", "Publish", "Invoke", "Pass",
    "Assume", "Register", "Deregister", "Enable", "Disable", "Restore", "Replace", "Reset", "Revoke", "Authorize",
    "Import", "Export", "Upload", "Copy", "Rotate", "Schedule", "Cancel", "Change", "Write", "Execute",
    "Complete", "Initiate", "Encrypt", "ReEncrypt", "Generate", "Sign", "Purge", "Restart", "Submit", "Upgrade",
)  # fmt: skip
SENSITIVE_READS = frozenset({
    "secretsmanager:getsecretvalue", "kms:decrypt", "ssm:getparameter", "ssm:getparameters",
    "ssm:getparametersbypath", "s3:getobject", "s3:getobjectversion", "sts:getsessiontoken",
    "sts:getfederationtoken", "ecr:batchgetimage", "ecr:getdownloadurlforlayer", "dynamodb:getitem",
    "dynamodb:scan", "dynamodb:query", "sqs:receivemessage", "lambda:getfunction",
})
# Actions whose only resource is "*" (Service Authorization Reference: no resource type listed).
STAR_ONLY = frozenset({
    "ecr:getauthorizationtoken", "cloudwatch:putmetricdata", "xray:puttracesegments", "xray:puttelemetryrecords",
    "xray:getsamplingrules", "xray:getsamplingtargets", "ssmmessages:createcontrolchannel",
    "ssmmessages:createdatachannel", "ssmmessages:opencontrolchannel", "ssmmessages:opendatachannel",
    "logs:createlogdelivery", "logs:updatelogdelivery", "logs:deletelogdelivery", "logs:putresourcepolicy",
    "logs:deleteresourcepolicy", "servicediscovery:discoverinstances", "servicediscovery:discoverinstancesrevision",
    "sts:getcalleridentity", "kms:createkey", "kms:generaterandom", "secretsmanager:getrandompassword",
    "ecs:registertaskdefinition", "ecs:deregistertaskdefinition",
})


def _pattern(action: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(action.lower()).replace(r"\*", ".*").replace(r"\?", ".") + "$")


def _risky(action: str) -> bool:
    """Whether ``action`` (possibly a wildcard) can name a write or sensitive action that takes a resource."""
    text = action.strip()
    if ":" not in text:
        return text.startswith("*")  # '*' alone: every action
    service, verb = text.split(":", 1)
    lowered = text.lower()
    if "*" not in text and "?" not in text:
        if lowered in STAR_ONLY:
            return False
        return lowered in SENSITIVE_READS or any(verb.startswith(v) for v in WRITE_VERBS)
    pattern = _pattern(text)
    samples = [f"{service}:{v}Resource".lower() for v in WRITE_VERBS]
    samples += [s for s in SENSITIVE_READS if s.startswith(service.lower() + ":")]
    return any(pattern.match(sample) and sample not in STAR_ONLY for sample in samples)


def _findings(document: Any) -> list[str]:
    findings: list[str] = []
    for index, statement in enumerate(policy_statements(document)):
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        resources = [r.strip() for r in as_list(statement.get("Resource")) if isinstance(r, str)]
        if "*" not in resources:
            continue
        risky = [a for a in as_list(statement.get("Action")) if isinstance(a, str) and _risky(a)]
        if risky:
            findings.append(f"statement {statement.get('Sid') or index} allows {', '.join(map(repr, risky))} on '*'")
    return findings


@applies_to(IAM_ROLE, *IAM_POLICY_DOCUMENT_TYPES)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for subject, raw in known_iam_documents(args):
        try:
            findings = _findings(parse_json(raw))
        except ValueError:
            continue  # invalid JSON is iam-no-wildcard-actions' finding
        if findings:
            report_violation(f"{subject} {'; '.join(findings)}; name the ARNs the workload writes (its own "
                             "queue, log group, secret) in Resource.")


POLICY = rule_policy(__file__, _validate)
