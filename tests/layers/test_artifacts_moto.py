"""The synthesized artifact store against moto, with moto's IAM evaluation on: the bucket's settings as real S3
requests (botocore validates each against the S3 model first), then each service's synthesized task-role policy as
the only thing that lets it act. Proves what the grants mean: training writes under training/ (multipart uploads
included) and reads any version, inference only reads, nobody deletes, and an overwritten model stays readable."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import enable_iam_authentication

from shared.artifact_names import HANDOFF_DAYS
from shared.envs import load_env
from tests.aws_helpers import MotoAccounts
from tests.layers.compute_helpers import platform, task_policy
from tests.synth_helpers import by_name

ENV = "dev"
STORE = "compute-artifacts"
LOGS = "compute-artifacts-logs"
#: the synth's input names that are not the S3 API's member name with its first letter upper-cased
API_NAMES = {"id": "ID", "kmsMasterKeyId": "KMSMasterKeyID", "sseAlgorithm": "SSEAlgorithm"}


def api_shape(value: Any) -> Any:
    """Synth inputs (the engine's camelCase) as the S3 API's members, mechanically: botocore's validator refuses
    any member the S3 model does not have, so a setting the API would not take fails here."""
    if isinstance(value, dict):
        return {API_NAMES.get(k, k[:1].upper() + k[1:]): api_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [api_shape(v) for v in value]
    return value


def inputs(type_: str, name: str = STORE) -> dict[str, Any]:
    """A copy of a resource's inputs: the synth documents are cached for the whole test run, never edited."""
    return copy.deepcopy(by_name(platform(ENV)["compute"], f"aws:s3/{type_}", name)["inputs"])


@pytest.fixture
def store(moto_aws: None) -> Iterator[dict[str, Any]]:
    """The bucket as compute creates it, in the dev account, and an S3 client per service role."""
    env = load_env(ENV)
    region = env.region
    s3 = MotoAccounts.client(env.account_id, region, "s3")
    kms = MotoAccounts.client(env.account_id, region, "kms")
    iam = MotoAccounts.client(env.account_id, region, "iam")
    key_arn = kms.create_key(Description="artifacts")["KeyMetadata"]["Arn"]
    created = inputs("bucket:Bucket")
    bucket = created["bucket"]
    # in the namespace the synth asks for: moto, like S3, refuses an account-regional name whose suffix is not
    # -<this account>-<this region>-an (InvalidNamespaceHeader)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region},
                     BucketNamespace=created["bucketNamespace"])
    encryption = inputs("bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    synth_key = encryption["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    encryption["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = key_arn
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": api_shape(encryption["rules"])})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=api_shape(
        inputs("bucketVersioning:BucketVersioning")["versioningConfiguration"]))
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
        "Rules": api_shape(inputs("bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"])})
    block = inputs("bucketPublicAccessBlock:BucketPublicAccessBlock")
    block.pop("bucket")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=api_shape(block))
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [api_shape(
        inputs("bucketOwnershipControls:BucketOwnershipControls")["rule"])]})
    s3.put_bucket_policy(Bucket=bucket, Policy=inputs("bucketPolicy:BucketPolicy")["policy"])
    # moto knows no aws:SecureTransport and answers a bucket-policy statement whose condition it cannot match with
    # Deny, so the TLS-only policy would deny every request here; its meaning is checked on the synth (test_artifacts).
    s3.delete_bucket_policy(Bucket=bucket)
    clients = {}
    sts = MotoAccounts.client(env.account_id, region, "sts")
    for service in ("training", "inference", "gateway", "preprocess"):
        role = iam.create_role(RoleName=f"{service}-task", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": f"arn:aws:iam::{env.account_id}:root"}}]}))
        policy = task_policy(platform(ENV)["compute"], service)
        if policy is not None:
            iam.put_role_policy(RoleName=f"{service}-task", PolicyName="task",
                                PolicyDocument=policy["inputs"]["policy"].replace(synth_key, key_arn))
        credentials = sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName=service)["Credentials"]
        clients[service] = boto3.client("s3", region_name=region, aws_access_key_id=credentials["AccessKeyId"],
                                        aws_secret_access_key=credentials["SecretAccessKey"],
                                        aws_session_token=credentials["SessionToken"])
    yield {"bucket": bucket, "admin": s3, **clients}


def denied(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"] == "AccessDenied"
    return False


def test_the_synthesized_settings_are_requests_s3_takes(store: dict[str, Any]) -> None:
    admin, bucket = store["admin"], store["bucket"]  # the fixture applied every setting; read them back
    assert admin.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = admin.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"]
    rules = {rule["ID"]: rule for rule in admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    lifecycle = rules.pop("artifact-versions")
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    # and, overlapping it, the expiry of each publisher's (and writer's) payloads handed over by reference
    assert [(rule["Filter"]["Prefix"], rule["Expiration"]["Days"]) for rule in rules.values()] == [
        (f"{service}/handoff/", HANDOFF_DAYS) for service in ("gateway", "preprocess", "inference", "training")]


@enable_iam_authentication()
def test_training_writes_models_under_its_prefix_and_an_overwrite_stays_readable(store: dict[str, Any]) -> None:
    training, bucket = store["training"], store["bucket"]
    key = "training/churn/model.tar"
    first = training.put_object(Bucket=bucket, Key=key, Body=b"model v1")["VersionId"]
    training.put_object(Bucket=bucket, Key=key, Body=b"model v2")
    assert training.get_object(Bucket=bucket, Key=key)["Body"].read() == b"model v2"
    # the version named in model.trained still reads as it was (s3:GetObjectVersion)
    assert training.get_object(Bucket=bucket, Key=key, VersionId=first)["Body"].read() == b"model v1"
    # a large model: a multipart upload, and one it gives up
    upload = training.create_multipart_upload(Bucket=bucket, Key="training/big/model.tar")["UploadId"]
    part = training.upload_part(Bucket=bucket, Key="training/big/model.tar", UploadId=upload, PartNumber=1,
                                Body=b"x" * 1024)
    training.complete_multipart_upload(Bucket=bucket, Key="training/big/model.tar", UploadId=upload,
                                       MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    stale = training.create_multipart_upload(Bucket=bucket, Key="training/stale/model.tar")["UploadId"]
    training.abort_multipart_upload(Bucket=bucket, Key="training/stale/model.tar", UploadId=stale)
    # nowhere else, and never a delete
    assert denied(training.put_object, Bucket=bucket, Key="inference/model.tar", Body=b"x")
    assert denied(training.put_object, Bucket=bucket, Key="model.tar", Body=b"x")
    assert denied(training.delete_object, Bucket=bucket, Key=key)
    assert denied(training.delete_object, Bucket=bucket, Key=key, VersionId=first)


@enable_iam_authentication()
def test_inference_reads_any_version_and_writes_nothing_and_gateway_nothing_at_all(store: dict[str, Any]) -> None:
    bucket = store["bucket"]
    key = "training/churn/model.tar"
    first = store["training"].put_object(Bucket=bucket, Key=key, Body=b"model v1")["VersionId"]
    store["training"].put_object(Bucket=bucket, Key=key, Body=b"model v2")
    inference = store["inference"]
    assert [o["Key"] for o in inference.list_objects_v2(Bucket=bucket, Prefix="training/")["Contents"]] == [key]
    assert inference.get_object(Bucket=bucket, Key=key, VersionId=first)["Body"].read() == b"model v1"
    assert inference.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(b"model v2")
    assert denied(inference.put_object, Bucket=bucket, Key="inference/cache.bin", Body=b"x")
    assert denied(inference.put_object, Bucket=bucket, Key=key, Body=b"poisoned")
    assert denied(inference.delete_object, Bucket=bucket, Key=key)
    gateway = store["gateway"]
    assert denied(gateway.get_object, Bucket=bucket, Key=key)
    assert denied(gateway.list_objects_v2, Bucket=bucket)


@enable_iam_authentication()
def test_a_publisher_hands_off_under_its_own_prefix_and_the_consumers_of_its_keys_get_it(
        store: dict[str, Any]) -> None:
    """The image contract's way for a message over the broker's cap (README, "Model artifacts"): preprocess (publishes
    inference.request, no `artifacts`) puts the payload under preprocess/handoff/, inference (bound to that key) gets
    exactly that version; gateway -> preprocess likewise. Nobody puts under another's prefix, or outside handoff/."""
    bucket, preprocess, gateway = store["bucket"], store["preprocess"], store["gateway"]
    key = "preprocess/handoff/request-0001"
    version = preprocess.put_object(Bucket=bucket, Key=key, Body=b"features")["VersionId"]
    assert store["inference"].get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == b"features"
    # a multipart upload (a large payload): PutObject covers create/upload/complete, AbortMultipartUpload its own
    upload = preprocess.create_multipart_upload(Bucket=bucket, Key="preprocess/handoff/request-0002")["UploadId"]
    preprocess.abort_multipart_upload(Bucket=bucket, Key="preprocess/handoff/request-0002", UploadId=upload)
    assert denied(preprocess.put_object, Bucket=bucket, Key="preprocess/model.tar", Body=b"x")
    assert denied(preprocess.put_object, Bucket=bucket, Key="gateway/handoff/forged", Body=b"x")
    assert denied(preprocess.delete_object, Bucket=bucket, Key=key)
    assert denied(gateway.get_object, Bucket=bucket, Key=key)  # gateway consumes nothing preprocess publishes
    assert denied(gateway.put_object, Bucket=bucket, Key=key, Body=b"poisoned")
    request = "gateway/handoff/request-0003"
    sent = gateway.put_object(Bucket=bucket, Key=request, Body=b"raw input")["VersionId"]
    assert preprocess.get_object(Bucket=bucket, Key=request, VersionId=sent)["Body"].read() == b"raw input"
    assert store["training"].get_object(Bucket=bucket, Key=request)["Body"].read() == b"raw input"
    assert denied(preprocess.list_objects_v2, Bucket=bucket)  # no listing for a handoff reader


def test_logging_needs_the_log_buckets_policy_first_and_then_s3_takes_it(moto_aws: None) -> None:
    """The first `up` in an empty account, as S3 requests in the synth's order: the log bucket and each of its
    settings, then PutBucketLogging on the store. S3 (and moto) refuses logging into a bucket whose policy does not
    yet let logging.s3.amazonaws.com put objects under the prefix (InvalidTargetBucketForLogging): the policy must
    come first, as BucketLogging's dependencies say (test_artifacts)."""
    env = load_env(ENV)
    s3 = MotoAccounts.client(env.account_id, env.region, "s3")
    for name in (STORE, LOGS):
        created = inputs("bucket:Bucket", name)
        s3.create_bucket(Bucket=created["bucket"], CreateBucketConfiguration={"LocationConstraint": env.region},
                         BucketNamespace=created["bucketNamespace"])
    logging = inputs("bucketLogging:BucketLogging")
    status = {"LoggingEnabled": {"TargetBucket": logging["targetBucket"], "TargetPrefix": logging["targetPrefix"]}}
    log_bucket = inputs("bucket:Bucket", LOGS)["bucket"]
    s3.put_bucket_ownership_controls(Bucket=log_bucket, OwnershipControls={"Rules": [api_shape(
        inputs("bucketOwnershipControls:BucketOwnershipControls", LOGS)["rule"])]})
    block = inputs("bucketPublicAccessBlock:BucketPublicAccessBlock", LOGS)
    block.pop("bucket")
    s3.put_public_access_block(Bucket=log_bucket, PublicAccessBlockConfiguration=api_shape(block))
    s3.put_bucket_encryption(Bucket=log_bucket, ServerSideEncryptionConfiguration={"Rules": api_shape(
        inputs("bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", LOGS)["rules"])})
    s3.put_bucket_lifecycle_configuration(Bucket=log_bucket, LifecycleConfiguration={"Rules": api_shape(
        inputs("bucketLifecycleConfiguration:BucketLifecycleConfiguration", LOGS)["rules"])})
    with pytest.raises(ClientError, match="InvalidTargetBucketForLogging"):
        s3.put_bucket_logging(Bucket=logging["bucket"], BucketLoggingStatus=status)
    s3.put_bucket_policy(Bucket=log_bucket, Policy=inputs("bucketPolicy:BucketPolicy", LOGS)["policy"])
    s3.put_bucket_logging(Bucket=logging["bucket"], BucketLoggingStatus=status)
    assert s3.get_bucket_logging(Bucket=logging["bucket"])["LoggingEnabled"] == status["LoggingEnabled"]
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=log_bucket)["Rules"]
    assert rule["Expiration"] == {"Days": env.compute.log_retention_days}
    (sse,) = s3.get_bucket_encryption(Bucket=log_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
