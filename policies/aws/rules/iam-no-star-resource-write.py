"""No IAM ``Allow`` statement grants write or sensitive actions on every resource (``Resource: "*"``).

Checks the permission policies of ``aws:iam/role`` (``inlinePolicies``), ``aws:iam/rolePolicy``,
``aws:iam/userPolicy``, ``aws:iam/groupPolicy`` and ``aws:iam/policy``. A statement is flagged when it
``Allow``s, on ``*``, an action that writes (its name starts with a write verb: ``Create``, ``Delete``,
``Put``, ``Update``, ``Attach``, ``Pass``...) or reads secrets (``secretsmanager:GetSecretValue``,
``kms:Decrypt``, ``ssm:GetParameter*``, ``s3:GetObject``...); a wildcard action (``s3:Put*``) counts
when it can match one (``iam:*Role`` can: any verb, ``PassRole`` too). Plain reads (``Describe*``, ``List*``) on
``*`` pass. Every resource is ``*``, an ARN of every resource of its type in any account
(``arn:aws:iam::*:role/*``) or of any S3 bucket (``arn:aws:s3:::*/*``), or an ``Allow`` with ``NotResource`` (every
resource but the listed ones); a named resource in any region or account, and an account-pinned ``type/*`` (a VPC
function's network interfaces), pass.

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

from shared.policy_support import allow_statements, as_list, every_resource, iam_document_rule, iam_wildcard

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
        # action names are case-insensitive (IAM user guide, "IAM JSON policy elements: Action")
        return lowered in SENSITIVE_READS or any(verb.lower().startswith(v.lower()) for v in WRITE_VERBS)
    # the verb's fixed start: "iam:*Role" has none (any verb, PassRole too), "s3:Put*Acl" has "put"
    prefix = re.split(r"[*?]", verb.lower(), maxsplit=1)[0]
    if any(v.lower().startswith(prefix) or prefix.startswith(v.lower()) for v in WRITE_VERBS):
        return True
    pattern = iam_wildcard(lowered)
    return any(pattern.fullmatch(read) for read in SENSITIVE_READS if read.startswith(service.lower() + ":"))


def _findings(document: Any) -> list[str]:
    findings: list[str] = []
    for label, statement in allow_statements(document):
        risky = [a for a in as_list(statement.get("Action")) if isinstance(a, str) and _risky(a)]
        if not risky:
            continue
        if statement.get("NotResource") is not None:
            # Allow with NotResource: every resource but the listed ones (IAM user guide, "NotResource")
            findings.append(f"{label} allows {', '.join(map(repr, risky))} on everything but its NotResource list")
            continue
        every = [r.strip() for r in as_list(statement.get("Resource")) if isinstance(r, str) and every_resource(r)]
        if every:
            findings.append(f"{label} allows {', '.join(map(repr, risky))} on {', '.join(map(repr, every))}")
    return findings


POLICY = iam_document_rule(
    __file__, _findings, fix="name the ARNs the workload writes (its own queue, log group, secret) in Resource.",
    invalid_json=None)  # invalid JSON is iam-no-wildcard-actions' finding
