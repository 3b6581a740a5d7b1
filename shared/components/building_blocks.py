"""What several components make the same way: customer managed KMS keys, the log groups they pre-create
(with a key of their own where the env encrypts logs), service roles with one inline policy, and the
generated RabbitMQ passwords.

Every key is rotated (yearly, KMS's default period), has a 30-day deletion window (a key scheduled for
deletion by mistake can be recovered for that long) and an alias ``alias/ml-platform/<env>/<purpose>``,
a child of the key. Its policy is the caller's (``customer_key_policy`` or its own).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from shared.components.compute_iam import customer_key_policy

if TYPE_CHECKING:
    from shared.components.broker_rotation import BrokerAdminRotationArgs
    from shared.components.deploy_runner import DeployRunnerArgs
    from shared.components.queue_metrics import QueueMetricsArgs

KEY_DELETION_WINDOW_DAYS = 30

#: Every role of the stacks is deleted with what is attached to it: a managed policy attached by hand or by a tool
#: (a security team's, AWS Config remediation's) is detached and an inline one deleted first. Without it IAM refuses
#: DeleteRole while one is there (DeleteConflict), and a destroy, or an ``up`` replacing the role, stops at the role
#: after deleting what came before it (terraform-provider-aws iam ``deleteRole`` lists and removes them only with
#: ``force_detach_policies`` or a role's own ``managed_policy_arns``/``inline_policy``).
FORCE_DETACH_POLICIES = True


#: The settings of an ``aws.s3.Bucket`` that resources of their own write, ignored on the bucket itself: those the
#: platform writes so (lifecycle, encryption, versioning, policy, ownership controls -> ``acl``/``grants``) and
#: logging and replication, should a bucket get a ``BucketLogging``/``BucketReplicationConfig``. A ``pulumi
#: refresh`` reads them into the bucket's state and the next ``up`` would send the bucket without them, deleting
#: e.g. its lifecycle rules in AWS (pulumi/pulumi-aws#6244; the same for other separate settings: #2577).
BUCKET_SETTINGS_OF_THEIR_OWN = ("acl", "grants", "lifecycleRules", "logging", "policy", "replicationConfiguration",
                                "serverSideEncryptionConfiguration", "versioning")


#: Every key alias of the stacks is ``alias/ml-platform/<env>/<purpose>``: the deploy role manages aliases only there
ALIAS_ROOT = "alias/ml-platform/"


def alias_prefix(env_name: str) -> str:
    """``alias/ml-platform/<env>/``: the prefix of the env's key aliases."""
    return f"{ALIAS_ROOT}{env_name}/"


def customer_key(name: str, *, description: str, alias: str, policy: pulumi.Input[str],
                 opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """The key ``name`` and its alias ``alias/ml-platform/<alias>`` (same resource name, parented to the key)."""
    key = aws.kms.Key(name, description=description, enable_key_rotation=True,
                      deletion_window_in_days=KEY_DELETION_WINDOW_DAYS, policy=policy, opts=opts)
    aws.kms.Alias(name, name=f"{ALIAS_ROOT}{alias}", target_key_id=key.key_id,
                  opts=pulumi.ResourceOptions(parent=key))
    return key


def log_group_arn(partition: str, region: str, account_id: str, group_name: str) -> str:
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{group_name}"


def log_group_with_key(name: str, *, group_name: str, retention_days: int, encrypted: bool, key_description: str,
                       key_alias: str, partition: str, region: str, account_id: str,
                       opts: pulumi.ResourceOptions) -> tuple[aws.kms.Key | None, aws.cloudwatch.LogGroup]:
    """The log group ``group_name`` with its retention, encrypted (where ``encrypted``) with a key of its own.

    Pre-created by the component so retention (and KMS) apply from the first event; the service would
    otherwise create the group on first use, with no retention. CloudWatch Logs calls KMS as
    logs.<region>.amazonaws.com, so the key's policy lets it use the key, pinned by encryption context to
    this one group (CloudWatch Logs guide, "Encrypt log data in CloudWatch Logs using AWS KMS"). The key,
    its alias and the group are all named ``name``; the key and the group take ``opts``.
    """
    key: aws.kms.Key | None = None
    if encrypted:
        policy = customer_key_policy(partition=partition, account_id=account_id, region=region,
                                     logs_arn_pattern=log_group_arn(partition, region, account_id, group_name))
        key = customer_key(name, description=key_description, alias=key_alias,
                           policy=json.dumps(policy, sort_keys=True), opts=opts)
    group = aws.cloudwatch.LogGroup(name, name=group_name, retention_in_days=retention_days,
                                    kms_key_id=key.arn if key else None, opts=opts)
    return key, group


def own_log_group(component: pulumi.ComponentResource, name: str,
                  args: BrokerAdminRotationArgs | DeployRunnerArgs | QueueMetricsArgs,
                  *, group_name: str, key_description: str,
                  key_alias: str) -> tuple[aws.kms.Key | None, aws.cloudwatch.LogGroup]:
    """:func:`log_group_with_key` as the args of a component with a log group of its own ask (retention,
    encryption, account), the key and the group children of ``component``, protected where the env
    protects state."""
    return log_group_with_key(
        name, group_name=group_name, retention_days=args.log_retention_days, encrypted=args.kms_encrypted_logs,
        key_description=key_description, key_alias=key_alias, partition=args.partition, region=args.region,
        account_id=args.account_id, opts=pulumi.ResourceOptions(parent=component, protect=args.protect))


def role_with_policy(name: str, *, assume_role_policy: str, policy: pulumi.Input[str], description: str,
                     permissions_boundary: str, opts: pulumi.ResourceOptions, role_name: str | None = None,
                     policy_resource_name: str | None = None) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """The role ``name`` (IAM name ``role_name``, else generated) that its trust policy lets a service assume,
    capped by ``permissions_boundary`` (the env's, :mod:`shared.role_boundary`), and its one inline policy (resource
    ``policy_resource_name``, default ``<name>-policy``), a child of the role. Callers that need the permissions in
    place before use depend on the returned policy."""
    role = aws.iam.Role(name, name=role_name, description=description, assume_role_policy=assume_role_policy,
                        permissions_boundary=permissions_boundary, force_detach_policies=FORCE_DETACH_POLICIES,
                        opts=opts)
    role_policy = aws.iam.RolePolicy(policy_resource_name or f"{name}-policy", role=role.id, policy=policy,
                                     opts=pulumi.ResourceOptions(parent=role))
    return role, role_policy


def generated_password(name: str, *, opts: pulumi.ResourceOptions,
                       keepers: pulumi.Input[dict[str, str]] | None = None) -> pulumi.Output[str]:
    """A generated RabbitMQ password (resource ``name``), as a secret: 32 letters and digits. Letters and
    digits only satisfy Amazon MQ's password rule (no ',:=') and never need escaping in a URL; min_* guarantee
    three character classes, 32 characters make 4+ distinct ones certain in practice. A change of ``keepers``
    generates a new one."""
    generated = random.RandomPassword(name, length=32, special=False, min_lower=4, min_upper=4, min_numeric=4,
                                      keepers=keepers, opts=opts)
    return pulumi.Output.secret(generated.result)
