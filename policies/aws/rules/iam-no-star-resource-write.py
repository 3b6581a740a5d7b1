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

import functools
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
    pattern = iam_wildcard(lowered)
    known = [f"{service.lower()}:{name}" for name in api_operations(service)]
    known += [name for name in (*STAR_ONLY, *SENSITIVE_READS) if name.startswith(service.lower() + ":")]
    matched = [name for name in known if pattern.fullmatch(name)]
    if matched:  # the service's API operations the pattern matches (botocore's model), and the names listed here
        return any(_risky(name) for name in matched)
    # a service botocore does not know by this prefix, or only IAM-only actions: the verb's fixed start decides
    # ("iam:*Role" has none: any verb; "s3:Put*Acl" has "put")
    prefix = re.split(r"[*?]", verb.lower(), maxsplit=1)[0]
    return any(v.lower().startswith(prefix) or prefix.startswith(v.lower()) for v in WRITE_VERBS)


@functools.cache
def api_operations(service: str) -> tuple[str, ...]:
    """The lower-case API operation names of the AWS service whose IAM prefix is ``service``, from botocore's model
    where its service name is the same (most are: s3, iam, ecs, logs, kms...), else none. IAM's actions are mostly
    these operations (Service Authorization Reference); IAM-only ones (iam:PassRole) are in no model."""
    import botocore.session
    from botocore.exceptions import UnknownServiceError

    try:
        model = botocore.session.get_session().get_service_model(service.lower())
    except (UnknownServiceError, ValueError):
        return ()
    return tuple(name.lower() for name in model.operation_names)


def _findings(document: Any) -> list[str]:
    findings: list[str] = []
    for label, statement in allow_statements(document):
        # Allow with NotResource: every resource but the listed ones (IAM user guide, "NotResource")
        but = statement.get("NotResource") is not None
        every = [r.strip() for r in as_list(statement.get("Resource")) if isinstance(r, str) and every_resource(r)]
        if not (but or every):
            continue
        risky = [a for a in as_list(statement.get("Action")) if isinstance(a, str) and _risky(a)]
        if risky:
            where = "everything but its NotResource list" if but else ", ".join(map(repr, every))
            findings.append(f"{label} allows {', '.join(map(repr, risky))} on {where}")
    return findings


POLICY = iam_document_rule(
    __file__, _findings, fix="name the ARNs the workload writes (its own queue, log group, secret) in Resource.",
    invalid_json=None)  # invalid JSON is iam-no-wildcard-actions' finding
