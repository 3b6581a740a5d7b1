"""IAM and KMS policy documents of the compute layer, as plain dicts.

Every statement names its actions one by one (no ``*`` or ``service:*``) and, where the API allows
it, the one resource it is for. The few ``"Resource": "*"`` statements are APIs that have no
resource-level permissions (``ecr:GetAuthorizationToken``, ``servicediscovery:DiscoverInstances``)
or key policies, where ``*`` means "this key".
"""

from __future__ import annotations

from typing import Any

from shared.mesh_names import VERSION_TAG

VERSION = "2012-10-17"

#: Account administration of a customer managed key, delegated to IAM (the AWS default key policy
#: grants ``kms:*``; listing the actions keeps the key policies free of wildcard actions, and the deploy role's
#: KMS grant is exactly these, on the keys of the env's account and region: shared.deploy_role).
KEY_ADMINISTRATION_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
    "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListGrants", "kms:ListKeyPolicies",
    "kms:ListKeyRotations", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ReEncryptFrom",
    "kms:ReEncryptTo", "kms:RetireGrant", "kms:RevokeGrant", "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
#: What CloudWatch Logs needs to encrypt and read back a log group's data with a customer key.
LOGS_KEY_ACTIONS = (
    "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
)
ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
#: What ``artifacts: read`` allows on the env's model-artifact bucket: any object and any earlier version of one
#: (GetObject with a versionId needs s3:GetObjectVersion: S3 API reference, GetObject, "Permissions").
ARTIFACT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
#: ``artifacts: write`` adds these, under the service's own prefix: PutObject also covers the multipart upload's
#: CreateMultipartUpload, UploadPart and CompleteMultipartUpload; AbortMultipartUpload is an action of its own (S3
#: user guide, "Multipart upload API and permissions"). No DeleteObject: versioning keeps what an overwrite replaced,
#: and only a person (not a task) removes a model.
ARTIFACT_WRITE_ACTIONS = ("s3:AbortMultipartUpload", "s3:PutObject")
#: On the bucket itself: a reader lists keys, and with it a GetObject of a missing key answers 404, not 403.
ARTIFACT_BUCKET_ACTIONS = ("s3:ListBucket",)


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    """The bucket-policy statement that refuses every request on the bucket and its objects made without TLS (S3
    user guide, "Amazon S3 bucket policy examples": aws:SecureTransport; policy rule s3-bucket-tls-only)."""
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def write_own_logs(log_group_arn: str, sid: str = "WriteOwnLogs") -> dict[str, Any]:
    """The statement that lets a role write its own log group's streams, and nothing else in CloudWatch Logs."""
    return {"Sid": sid, "Effect": "Allow", "Action": list(LOG_WRITE_ACTIONS),
            "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"]}


def service_trust_policy(service: str, *, source_account: str | None = None,
                         source_arn: str | None = None) -> dict[str, Any]:
    """Trust for the AWS service principal ``service`` (e.g. ``lambda.amazonaws.com``). With
    ``source_account`` and ``source_arn`` (an ARN pattern) the service may assume the role only when acting
    for those resources of that account: the confused-deputy guard (IAM user guide, "The confused deputy
    problem")."""
    if (source_account is None) != (source_arn is None):
        raise ValueError("the confused-deputy guard needs both source_account and source_arn")
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_arn is not None:
        statement["Condition"] = {
            "StringEquals": {"aws:SourceAccount": source_account},
            "ArnLike": {"aws:SourceArn": source_arn},
        }
    return document(statement)


def ecs_tasks_trust_policy(partition: str, region: str, account_id: str, *, source_conditions: bool) -> dict[str, Any]:
    """Trust for ECS tasks. ``source_conditions`` (for task roles, as the ECS task IAM role guide shows)
    limits it to tasks of this account and region, the confused-deputy guard. Execution roles are
    assumed by the ECS/Fargate agent, for which AWS documents no such keys, so they get the plain trust."""
    if not source_conditions:
        return service_trust_policy("ecs-tasks.amazonaws.com")
    return service_trust_policy("ecs-tasks.amazonaws.com", source_account=account_id,
                                source_arn=f"arn:{partition}:ecs:{region}:{account_id}:*")


def execution_role_policy(*, repository_arn: str, log_group_arn: str, secret_arns: list[str]) -> dict[str, Any]:
    """What ECS itself needs to start one service's task: pull its image, write its logs, read its
    own RabbitMQ credentials. Nothing the application code can use."""
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken has no resource-level permissions: it only returns a registry login,
        # and what can be pulled with it is limited by the next statement.
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullOwnImage", "Effect": "Allow", "Action": list(ECR_PULL_ACTIONS), "Resource": repository_arn},
        write_own_logs(log_group_arn),
    ]
    if secret_arns:
        statements.append({"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": sorted(set(secret_arns))})
        statements.append(secrets_key_statement(secret_arns))
    return document(*statements)


def via_secrets_manager(region: str) -> dict[str, str]:
    """The ``StringEquals`` condition that holds a KMS grant to the calls Secrets Manager makes in ``region`` for
    the principal (``kms:ViaService``; AWS KMS developer guide, "kms:ViaService")."""
    return {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}


def secret_encryption_context(secret_arns: str | list[str]) -> dict[str, str | list[str]]:
    """The ``StringEquals`` condition that holds a KMS grant to the data keys of these secrets' values: Secrets
    Manager names the secret in the encryption context of each KMS call it makes for it (``SecretARN``, its full
    ARN; Secrets Manager user guide, "Secrets Manager encryption context"). Several ARNs: any of them."""
    return {"kms:EncryptionContext:SecretARN": secret_arns}


def via_s3(region: str) -> dict[str, str]:
    """The ``StringEquals`` condition that holds a KMS grant to the calls S3 makes in ``region`` for the principal
    (``kms:ViaService``; S3 user guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)")."""
    return {"kms:ViaService": f"s3.{region}.amazonaws.com"}


def artifact_statements(access: str | None, *, bucket_arn: str, key_arn: str, region: str, prefix: str,
                        handoff_prefix: str | None = None,
                        handoff_source_prefixes: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A task role's grants on the env's model-artifact bucket (catalog ``artifacts``): ``read`` lists the bucket
    and gets any object or version; ``write`` also puts objects (and aborts its multipart uploads) under
    ``prefix`` only, so one writer cannot overwrite another's models. The bucket's key through S3 only: Decrypt to
    read, GenerateDataKey to write (a multipart upload needs both: S3 user guide, "Multipart upload API and
    permissions").

    Handoffs (a payload too large for a message, README "Model artifacts"), whatever ``access`` is: a publisher puts
    under its own ``handoff_prefix`` (``<service>/handoff/``) only, with the write actions; a consumer gets objects
    and versions under the ``handoff_source_prefixes`` of the publishers whose keys it consumes only (the message
    names the key and VersionId). No ListBucket for them: a missing handoff answers 403, not 404 (S3 API reference,
    GetObject, "Permissions")."""
    if access not in (None, "read", "write"):
        raise ValueError(f"artifact access is 'read' or 'write', not {access!r}")
    statements: list[dict[str, Any]] = []
    key_actions = ["kms:Decrypt"]
    if access:
        statements += [
            {"Sid": "ListArtifacts", "Effect": "Allow", "Action": list(ARTIFACT_BUCKET_ACTIONS),
             "Resource": bucket_arn},
            {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": list(ARTIFACT_READ_ACTIONS),
             "Resource": f"{bucket_arn}/*"},
        ]
    if access == "write":
        statements.append({"Sid": "WriteOwnArtifacts", "Effect": "Allow", "Action": list(ARTIFACT_WRITE_ACTIONS),
                           "Resource": f"{bucket_arn}/{prefix}*"})
    if handoff_prefix:
        # PutObject covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload; AbortMultipartUpload is its
        # own action (S3 user guide, "Multipart upload API and permissions"); no DeleteObject: S3 expires handoffs
        statements.append({"Sid": "WriteOwnHandoffs", "Effect": "Allow", "Action": list(ARTIFACT_WRITE_ACTIONS),
                           "Resource": f"{bucket_arn}/{handoff_prefix}*"})
    if handoff_source_prefixes:
        # GetObject with a versionId needs s3:GetObjectVersion too (S3 API reference, GetObject, "Permissions")
        statements.append({"Sid": "ReadConsumedHandoffs", "Effect": "Allow", "Action": list(ARTIFACT_READ_ACTIONS),
                           "Resource": [f"{bucket_arn}/{source}*" for source in sorted(set(handoff_source_prefixes))]})
    if not statements:
        return []
    if access == "write" or handoff_prefix:
        # SSE-KMS upload: GenerateDataKey; a multipart one Decrypt as well (S3 user guide, "Multipart upload API and
        # permissions": "kms:Decrypt and kms:GenerateDataKey")
        key_actions.append("kms:GenerateDataKey")
    statements.append({"Sid": "ArtifactKeyThroughS3", "Effect": "Allow", "Action": key_actions, "Resource": key_arn,
                       "Condition": {"StringEquals": via_s3(region)}})
    return statements


def secrets_key_statement(secret_arns: list[str]) -> dict[str, Any]:
    """``kms:Decrypt`` for the secrets' customer-managed key, usable only through Secrets Manager and only for
    these secrets' values.

    ECS needs it to inject a secret encrypted with a customer key (ECS developer guide, "Required IAM
    permissions for Amazon ECS secrets": kms:Decrypt "only if your key uses a custom KMS key"). The key
    lives in the messaging layer, whose contract does not name it, so the resource is any key of the
    secrets' own account and region; ``kms:ViaService`` keeps the grant to decryptions Secrets Manager
    makes for this role, and the encryption context to the data keys of these secrets: Secrets Manager
    sends each secret's ARN as ``SecretARN`` with every Decrypt and GenerateDataKey (Secrets Manager user
    guide, "Secrets Manager encryption context"). A later grant of another secret's GetSecretValue thus
    still decrypts nothing under another key.
    """
    places = sorted({tuple(arn.split(":")[1:5]) for arn in secret_arns})
    if len(places) != 1 or len(places[0]) != 4 or places[0][1] != "secretsmanager":
        raise ValueError(f"secret ARNs of one account and region expected, got {sorted(set(secret_arns))}")
    partition, _, region, account_id = places[0]
    return {"Sid": "DecryptOwnSecretsThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
            "Resource": f"arn:{partition}:kms:{region}:{account_id}:key/*",
            "Condition": {"StringEquals": {**via_secrets_manager(region),
                                           **secret_encryption_context(sorted(set(secret_arns)))}}}


def task_role_statements(
    *,
    discovery_namespaces: list[str],
    appmesh_virtual_node_arn: str | None,
    task_protection_tasks_arn: str | None = None,
    task_tags: dict[str, str] | None = None,
    artifacts: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """What the application (and its Envoy) may call: only what the service needs.

    ``discovery_namespaces`` is non-empty for services that call others: they may look instances up
    in the platform's Cloud Map namespaces (DiscoverInstances has no resource-level permissions, so
    the namespace is pinned with its condition key). In App Mesh envs Envoy fetches its own node's
    configuration and nothing else. A consumer (``task_protection_tasks_arn``) may set the scale-in
    protection of its own tasks (those tagged ``task_tags``, see :func:`task_protection_statement`).
    ``artifacts`` are its grants on the model-artifact bucket (:func:`artifact_statements`).
    """
    statements: list[dict[str, Any]] = []
    if discovery_namespaces:
        statements.append({
            "Sid": "DiscoverPlatformServices", "Effect": "Allow", "Action": "servicediscovery:DiscoverInstances",
            "Resource": "*",
            "Condition": {"StringEquals": {"servicediscovery:NamespaceName": sorted(set(discovery_namespaces))}},
        })
    if appmesh_virtual_node_arn:
        statements.append({"Sid": "EnvoyOwnVirtualNode", "Effect": "Allow",
                           "Action": "appmesh:StreamAggregatedResources", "Resource": appmesh_virtual_node_arn})
    if task_protection_tasks_arn:
        if not task_tags:
            raise ValueError("task protection is granted only on the tasks of one service: give task_tags")
        statements.append(task_protection_statement(task_protection_tasks_arn, task_tags))
    statements.extend(artifacts or ())
    return statements


def task_protection_statement(tasks_arn: str, task_tags: dict[str, str]) -> dict[str, Any]:
    """A consumer protects its own task from scale-in while it holds work: it PUTs
    ``$ECS_AGENT_URI/task-protection/v1/state`` and the ECS agent calls Get/UpdateTaskProtection with the task
    role (ECS guide, "Task scale-in protection": IAM permissions required).

    The actions take task ARNs (``arn:...:task/<cluster>/<task id>``), which do not name the service, and their
    only condition keys are ``aws:ResourceTag/${TagKey}`` and ``ecs:cluster`` (Service Authorization Reference,
    Amazon ECS: GetTaskProtection, UpdateTaskProtection). So the grant is held to the env's cluster by the ARN
    and to the service's own tasks by their tags: the ECS service propagates its tags (``service``, and
    ``version`` for a canary unit) to every task it starts (``propagate_tags="SERVICE"``). A unit without a
    ``version`` tag must find none on the task (``Null``), so a canary's role cannot protect the stable
    unit's tasks nor the other way round. The task roles have no ``ecs:TagResource``: no task can re-tag itself
    into another service's grant."""
    condition: dict[str, dict[str, str]] = {
        "StringEquals": {f"aws:ResourceTag/{key}": value for key, value in sorted(task_tags.items())}}
    if VERSION_TAG not in task_tags:
        condition["Null"] = {f"aws:ResourceTag/{VERSION_TAG}": "true"}
    return {"Sid": "ProtectOwnTaskFromScaleIn", "Effect": "Allow",
            "Action": ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"], "Resource": tasks_arn,
            "Condition": condition}


def customer_key_policy(
    *,
    partition: str,
    account_id: str,
    region: str,
    logs_arn_pattern: str | None = None,
) -> dict[str, Any]:
    """A customer managed key's policy: account administration through IAM, plus CloudWatch Logs
    (for ``logs_arn_pattern``'s log groups only) when the key encrypts logs.

    CloudWatch Logs calls KMS as the service principal, so IAM policies alone cannot allow it; the
    encryption-context condition keeps the key usable only for this layer's log groups.
    """
    statements: list[dict[str, Any]] = [{
        "Sid": "AccountAdministersThroughIam", "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": list(KEY_ADMINISTRATION_ACTIONS), "Resource": "*",
    }]
    if logs_arn_pattern:
        statements.append({
            "Sid": "CloudWatchLogsEncryptsThisLayersLogGroups", "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(LOGS_KEY_ACTIONS), "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_arn_pattern}},
        })
    return document(*statements)
