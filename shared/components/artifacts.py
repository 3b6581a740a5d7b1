"""The env's model-artifact store: one S3 bucket where the services the catalog lets write (``artifacts: write``)
put trained models and the ones it lets read (``read``) load them.

In the compute layer, next to the other stores the services' tasks use (ECR repositories, log groups): the bucket's
readers and writers are compute's task roles, and nothing before compute needs the bucket itself. The network layer,
which deploys first, only needs its name for the S3 gateway endpoint's policy, and takes it from
:mod:`shared.artifact_names`, the one source of the name.

S3 server access logging (Security Hub S3.9) records every request made to the bucket into a second bucket of the
store, the log bucket: same account, Region and namespace (S3 delivers the logs nowhere else), private,
owner-enforced, SSE-S3, written by S3's logging service only, its logs expiring after the env's log retention.
The log bucket itself is not logged (a log of the log writes; S3 user guide, "Enabling Amazon S3 server access
logging": the target bucket should not have server access logging enabled).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.artifact_names import ARTIFACT_BUCKET_NAMESPACE, HANDOFF_DAYS, handoff_prefix
from shared.components.building_blocks import BUCKET_SETTINGS_OF_THEIR_OWN, customer_key
from shared.components.compute_iam import customer_key_policy, deny_insecure_transport, document
from shared.gateway_names import s3_bucket_arn

#: Days an overwritten (or deleted) object's earlier version stays recoverable before S3 expires it (lifecycle
#: NoncurrentVersionExpiration): long enough to notice a bad model and roll back to the one before.
NONCURRENT_VERSION_DAYS = 30
#: Days after which S3 aborts a multipart upload that was never completed (a training task stopped mid-upload),
#: whose parts would otherwise be stored, and billed, forever.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7
#: Where in the log bucket S3 writes the artifact bucket's server access logs (the key prefix of every log object).
ACCESS_LOG_PREFIX = "s3-access-logs/"
#: compute's output naming the services the artifact bucket has a handoff lifecycle rule for ([] without a bucket)
HANDOFF_WRITERS_OUTPUT = "handoff_writers"


def artifact_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """Nothing in the bucket is reachable over plain HTTP (S3 user guide, "Amazon S3 bucket policy examples":
    aws:SecureTransport). Access itself comes from the task roles' IAM grants: the bucket allows no one."""
    return document(deny_insecure_transport(bucket_arn))


def access_log_bucket_policy(*, log_bucket_arn: str, artifact_bucket_arn: str, account_id: str,
                             other_source_arns: tuple[str, ...] = ()) -> dict[str, Any]:
    """S3's logging service (``logging.s3.amazonaws.com``) may put objects under :data:`ACCESS_LOG_PREFIX`, for the
    artifact bucket of this account only (and ``other_source_arns``, the env's other buckets that log here: a public
    gateway's access-log buckets): the policy of the S3 user guide, "Enabling Amazon S3 server access logging",
    permissions for log delivery (a BucketOwnerEnforced target takes no ACL grant). And the TLS-only deny, kept: it
    names aws:SecureTransport false only, and AWS's own log buckets pair it with service log delivery (AWS Control
    Tower user guide, "Amazon S3 bucket policy in the audit account": AllowSSLRequestsOnly next to the services'
    PutObject grants); the S3 guide's log-delivery permissions name no exception for it."""
    return document(
        {"Sid": "S3ServerAccessLogsPolicy", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"{log_bucket_arn}/{ACCESS_LOG_PREFIX}*",
         "Condition": {"ArnLike": {"aws:SourceArn": [artifact_bucket_arn, *other_source_arns]
                                   if other_source_arns else artifact_bucket_arn},
                       "StringEquals": {"aws:SourceAccount": account_id}}},
        deny_insecure_transport(log_bucket_arn))


def artifact_lifecycle_rule() -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """Every object of the bucket (an empty filter: pulumi_aws s3.BucketLifecycleConfiguration): earlier versions
    expire NONCURRENT_VERSION_DAYS after they were replaced, stale multipart uploads are aborted, and a delete marker
    whose versions all expired, which marks nothing any more, is removed (botocore s3
    LifecycleExpiration.ExpiredObjectDeleteMarker, never with Days in the same expiration)."""
    s3 = aws.s3
    return s3.BucketLifecycleConfigurationRuleArgs(
        id="artifact-versions", status="Enabled", filter=s3.BucketLifecycleConfigurationRuleFilterArgs(),
        noncurrent_version_expiration=s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=NONCURRENT_VERSION_DAYS),
        abort_incomplete_multipart_upload=s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS),
        expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True))


def handoff_lifecycle_rule(writer: str) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """``writer``'s payloads handed over by reference (:func:`shared.artifact_names.handoff_prefix`) expire
    :data:`shared.artifact_names.HANDOFF_DAYS` after they were written: in this versioned bucket S3 then adds a delete
    marker and the payload is a noncurrent version, which :func:`artifact_lifecycle_rule` deletes after its own days (S3
    user guide, "Lifecycle configuration elements": Expiration on a versioning-enabled bucket). A filter is a literal
    key prefix (no wildcard), hence one rule per writer."""
    s3 = aws.s3
    return s3.BucketLifecycleConfigurationRuleArgs(
        id=f"handoff-{writer}", status="Enabled",
        filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=handoff_prefix(writer)),
        expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(days=HANDOFF_DAYS))


def former_writers(writers: tuple[str, ...], last_outputs: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The services the deployed bucket has a handoff rule for (compute's last ``handoff_writers`` output) that are
    not among ``writers`` now, sorted. A rule expires what its writer left under ``<service>/handoff/`` for good: an S3
    lifecycle filter is one literal key prefix (botocore s3 LifecycleRuleFilter / LifecycleRuleAndOperator: Prefix,
    Tag, object sizes; no wildcard), so no one rule covers every writer's handoff prefix, and a rule dropped with its
    writer left its payloads billed forever. None (or a stack from before the output): none known."""
    before = (last_outputs or {}).get(HANDOFF_WRITERS_OUTPUT) or []
    return tuple(sorted({str(writer) for writer in before} - set(writers)))


def handoff_writers(args: ArtifactStoreArgs) -> tuple[str, ...]:
    """Every service the bucket has a handoff rule for: the writers, in catalog order, then the former ones."""
    return (*args.writers, *args.former_writers)


@dataclass(frozen=True)
class ServerAccessLogTarget:
    """The env's server-access-log bucket as another bucket's BucketLogging target."""

    bucket: pulumi.Output[str]
    #: the key prefix the log bucket's policy and lifecycle cover; a source adds its own name under it
    prefix: str
    #: the log bucket's policy, which must let S3's logging service write before logging is turned on
    ready: pulumi.Resource


#: What the artifact and log buckets' updates ignore: the settings resources of their own write, and the namespace,
#: which only CreateBucket takes and no S3 call returns (botocore s3: BucketNamespace, header x-amz-bucket-namespace,
#: is a member of CreateBucketRequest alone). A state without it (an import, as Disaster recovery does, or a
#: refresh that reads it as unset) would otherwise make every later `up` plan to replace the bucket with all its
#: objects, refused where it is protected. The create still sends it.
BUCKET_IGNORED = [*BUCKET_SETTINGS_OF_THEIR_OWN, "bucketNamespace"]


@dataclass(frozen=True)
class ArtifactStoreArgs:
    env_name: str
    account_id: str
    region: str
    partition: str
    #: the env protects state (prod): no force_destroy, and (by the layer's type list) the bucket and key protected
    protect: bool
    #: the bucket's name (shared.components.compute_plan.ComputeSettings.artifact_bucket_name)
    bucket_name: str
    #: the bucket its server access logs go to (shared.artifact_names.artifact_log_bucket_name)
    log_bucket_name: str
    #: days S3 keeps the access logs (the env's compute.log_retention_days)
    log_retention_days: int
    #: the services that write (catalog ``artifacts: write``): S3 expires the payloads each hands over by reference
    writers: tuple[str, ...] = ()
    #: services whose handoff rule the bucket had and that write no more (removed from the catalog, or now ``read``):
    #: their rules stay, or their payloads under ``<service>/handoff/`` would never expire (:func:`handoff_writers`)
    former_writers: tuple[str, ...] = ()
    #: ARNs (or ARN patterns) of the env's other buckets whose server access logs go to the log bucket too: the public
    #: gateway's access-log buckets (shared.gateway_names)
    other_logged_bucket_arns: tuple[str, ...] = ()


class ArtifactStore(pulumi.ComponentResource):
    """A private, versioned bucket encrypted with a customer managed key of its own (SSE-KMS with an S3 Bucket
    Key), as every other store of the platform (ECR images, logs, secrets) is."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:ArtifactStore", name, None, opts)
        bucket_name = args.bucket_name
        policy = customer_key_policy(partition=args.partition, account_id=args.account_id, region=args.region)
        # The task roles use the key only through S3 (their grants carry kms:ViaService): the key policy only
        # delegates to IAM, like the ECR key's.
        self.key = customer_key(
            name, description=f"Model artifacts of the ML platform ({args.env_name})",
            alias=f"{args.env_name}/artifacts", policy=json.dumps(policy, sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self))
        self.bucket = aws.s3.Bucket(
            name, bucket=bucket_name,
            # Only this account can create a bucket with its account regional suffix (shared.artifact_names): the
            # name the tasks write to cannot belong to anyone else, not even after a destroy.
            bucket_namespace=ARTIFACT_BUCKET_NAMESPACE,
            # Where the env does not protect state (dev's nightly destroy), destroy deletes the bucket with every
            # object and version in it: S3 refuses to delete a bucket that holds any (BucketNotEmpty), which would
            # stop the destroy every night. Where it does (prod), destroy stops at the non-empty bucket instead.
            # The provider applies the flag only once an `up` has stored it (pulumi_aws s3.Bucket force_destroy).
            force_destroy=not args.protect,
            tags={"Name": bucket_name, "purpose": "model-artifacts"},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=BUCKET_IGNORED))
        # The bucket's settings are written one after the other, each after the one before (and deleted in the
        # reverse order): S3 answers a configuration call made while another one is in progress on the same bucket
        # with 409 OperationAborted ("A conflicting conditional operation is currently in progress"; seen with a
        # policy and ownership controls written together), which fails the `up` wherever the provider does not retry.
        def after(*previous: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self.bucket, depends_on=list(previous))

        # ACLs off: every object belongs to the bucket's account, whoever wrote it.
        self.ownership = aws.s3.BucketOwnershipControls(
            name, bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self.bucket))
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            name, bucket=self.bucket.id, block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
            restrict_public_buckets=True, opts=after(self.ownership))
        # A Bucket Key lets S3 ask KMS for a data key per bucket and period instead of per object (S3 user guide,
        # "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys"): fewer KMS calls for multi-part model uploads.
        by_default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=self.key.arn)
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            name, bucket=self.bucket.id, opts=after(self.public_access_block),
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=by_default, bucket_key_enabled=True)])
        # An overwritten or deleted model stays recoverable (its earlier versions) until the lifecycle expires them.
        self.versioning = aws.s3.BucketVersioning(
            name, bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=after(self.encryption))
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            name, bucket=self.bucket.id,
            rules=[artifact_lifecycle_rule(), *(handoff_lifecycle_rule(writer) for writer in handoff_writers(args))],
            # noncurrent-version rules act on a versioned bucket (the provider's versioning example orders them so)
            opts=after(self.versioning))
        self.policy = aws.s3.BucketPolicy(
            name, bucket=self.bucket.id,
            policy=json.dumps(artifact_bucket_policy(s3_bucket_arn(args.partition, bucket_name)),
                              sort_keys=True),
            # after the public access block too: with BlockPublicPolicy being written S3 refuses the policy (409)
            opts=after(self.public_access_block, self.lifecycle))
        #: what a service's first write relies on: an ECS service that reads or writes artifacts starts after these
        #: (an object written before the default encryption is in place would be SSE-S3, before versioning unversioned)
        self.ready: tuple[pulumi.Resource, ...] = (self.public_access_block, self.ownership, self.encryption,
                                                   self.versioning, self.policy)
        self._access_logs(name, args)
        # S3 server access logging (Security Hub S3.9), the bucket's last setting: after its policy (409 otherwise)
        # and after the log bucket's policy, which lets S3's logging service write there (pulumi_aws
        # s3.BucketLogging's own example orders the two so).
        self.logging = aws.s3.BucketLogging(
            name, bucket=self.bucket.id, target_bucket=self.log_bucket.bucket, target_prefix=ACCESS_LOG_PREFIX,
            opts=after(self.policy, self.log_policy))
        self.register_outputs({"bucket": self.bucket.bucket, "key_arn": self.key.arn,
                               "log_bucket": self.log_bucket.bucket})

    def server_access_logs(self) -> ServerAccessLogTarget:
        """Where another bucket of the env (ArtifactStoreArgs.other_logged_bucket_arns) sends its server access logs."""
        return ServerAccessLogTarget(bucket=self.log_bucket.bucket, prefix=ACCESS_LOG_PREFIX, ready=self.log_policy)

    def _access_logs(self, name: str, args: ArtifactStoreArgs) -> None:
        """The log bucket: created, configured and deleted as the artifact bucket is (namespace, force_destroy,
        settings one at a time, settings ignored on the bucket itself), but SSE-S3, the target default encryption S3's
        guide ("Enabling Amazon S3 server access logging") has always documented for log delivery (it long excluded
        SSE-KMS; with a KMS key the logging service would also need the key policy's grant), and unversioned: each
        log object is written once under a new key and expires with the lifecycle. S3 delivers logs late (best effort,
        up to hours), so a log object may land after a destroy emptied the bucket: the provider's force_destroy then
        meets BucketNotEmpty, empties the bucket again and retries the delete (pulumi_aws s3.Bucket, bridged from the
        Terraform AWS provider's bucket delete, which recurses until the bucket is empty)."""
        log_name = args.log_bucket_name
        self.log_bucket = aws.s3.Bucket(
            f"{name}-logs", bucket=log_name, bucket_namespace=ARTIFACT_BUCKET_NAMESPACE, force_destroy=not args.protect,
            tags={"Name": log_name, "purpose": "model-artifact-access-logs"},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=BUCKET_IGNORED))

        def after(*previous: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self.log_bucket, depends_on=list(previous))

        s3 = aws.s3
        ownership = s3.BucketOwnershipControls(
            f"{name}-logs", bucket=self.log_bucket.id,
            rule=s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self.log_bucket))
        block = s3.BucketPublicAccessBlock(
            f"{name}-logs", bucket=self.log_bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=after(ownership))
        encryption = s3.BucketServerSideEncryptionConfiguration(
            f"{name}-logs", bucket=self.log_bucket.id, opts=after(block),
            rules=[s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=(
                    s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256")))])
        lifecycle = s3.BucketLifecycleConfiguration(
            f"{name}-logs", bucket=self.log_bucket.id, opts=after(encryption),
            rules=[s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-access-logs", status="Enabled",
                filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=ACCESS_LOG_PREFIX),
                expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.log_retention_days))])
        self.log_policy = s3.BucketPolicy(
            f"{name}-logs", bucket=self.log_bucket.id,
            policy=json.dumps(access_log_bucket_policy(
                log_bucket_arn=s3_bucket_arn(args.partition, log_name),
                artifact_bucket_arn=s3_bucket_arn(args.partition, args.bucket_name), account_id=args.account_id,
                other_source_arns=args.other_logged_bucket_arns),
                sort_keys=True),
            opts=after(block, lifecycle))
