"""The model-artifact store: one bucket per env (compute layer), the task roles' grants per catalog `artifacts`,
the S3 gateway endpoint that lets exactly those requests through (network layer), and the services' environment."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import botocore
import pytest

from shared.artifact_names import HANDOFF_DAYS, artifact_bucket_name, artifact_log_bucket_name
from shared.catalog import load_catalog
from shared.envs import load_env
from shared.regions import REGION_AZS
from shared.synth.engine import synth_env
from tests import iam_eval
from tests.layers.compute_helpers import (
    ENVS,
    KEY,
    TASK,
    CatalogEditor,
    as_list,
    container,
    environment,
    platform,
    statements,
    task_policy,
)
from tests.readme_helpers import readme_section
from tests.synth_helpers import by_name, gateway_certificate, of_type, reachable

BUCKET = "aws:s3/bucket:Bucket"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
STORE = "compute-artifacts"
LOGS = "compute-artifacts-logs"


def bucket_of(env: str) -> dict[str, Any]:
    return by_name(platform(env)["compute"], BUCKET, STORE)


def setting(env: str, type_: str, bucket: str = STORE) -> dict[str, Any]:
    return by_name(platform(env)["compute"], f"aws:s3/{type_[0].lower()}{type_[1:]}:{type_}", bucket)


def without_artifacts(data: dict[str, Any]) -> None:
    for spec in data["services"].values():
        spec.pop("artifacts", None)


def without_artifacts_or_publishers(data: dict[str, Any]) -> None:
    """No service reads or writes artifacts and none publishes (so none hands a payload over): no bucket at all."""
    without_artifacts(data)
    for spec in data["services"].values():
        spec.pop("publishes", None)
        spec.pop("consumes", None)
        spec.pop("max_job_seconds", None)


def handoff_writers() -> list[str]:
    """Who may put under its own ``<service>/handoff/``: every ``artifacts: write`` service and every publisher."""
    catalog = load_catalog()
    return sorted({spec.name for spec in catalog if spec.artifacts == "write"} | set(catalog.handoff_publishers()))


def s3_endpoint_statements(network: dict[str, Any]) -> list[dict[str, Any]]:
    (endpoint,) = [e for e in of_type(network, ENDPOINT) if e["inputs"]["serviceName"].endswith(".s3")]
    return statements(endpoint)


@pytest.mark.parametrize("env", ENVS)
def test_each_env_has_one_artifact_bucket_in_its_account_regional_namespace(env: str) -> None:
    config = load_env(env)
    (bucket,) = [b for b in of_type(platform(env)["compute"], BUCKET) if b["name"] == STORE]
    name = bucket["inputs"]["bucket"]
    # Only the account can create names with its own suffix (S3 "account regional namespace"): nobody can take the
    # deterministic name while it does not exist (before the first up, after a destroy).
    assert name == f"ml-artifacts-{env}-{config.account_id}-{config.region}-an"
    assert bucket["inputs"]["bucketNamespace"] == "account-regional"
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name)


@pytest.mark.parametrize("env", ENVS)
def test_the_bucket_is_private_owner_enforced_kms_encrypted_versioned_and_tls_only(env: str) -> None:
    compute = platform(env)["compute"]
    name = bucket_of(env)["inputs"]["bucket"]
    block = setting(env, "BucketPublicAccessBlock")["inputs"]
    assert block == {"bucket": name, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
                     "restrictPublicBuckets": True}
    assert setting(env, "BucketOwnershipControls")["inputs"]["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (rule,) = setting(env, "BucketServerSideEncryptionConfiguration")["inputs"]["rules"]
    key = by_name(compute, KEY, STORE)
    # SSE-KMS with the store's own customer managed key (rotated), and an S3 Bucket Key
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert re.fullmatch(rf"arn:aws:kms:eu-west-1:{load_env(env).account_id}:key/.+",
                        rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"])
    assert rule["bucketKeyEnabled"] is True
    assert key["inputs"]["enableKeyRotation"] is True and key["inputs"]["deletionWindowInDays"] == 30
    assert setting(env, "BucketVersioning")["inputs"] == {"bucket": name,
                                                          "versioningConfiguration": {"status": "Enabled"}}
    (policy,) = statements(setting(env, "BucketPolicy"))
    assert policy == {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                      "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                      "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    # S3 refuses a bucket policy while the public access block is being written
    assert setting(env, "BucketPublicAccessBlock")["urn"] in setting(env, "BucketPolicy")["dependencies"]


@pytest.mark.parametrize("env", ENVS)
def test_old_versions_expire_after_30_days_and_stale_uploads_after_7(env: str) -> None:
    lifecycle = setting(env, "BucketLifecycleConfiguration")
    (rule,) = [rule for rule in lifecycle["inputs"]["rules"] if rule["id"] == "artifact-versions"]
    assert rule == {"id": "artifact-versions", "status": "Enabled", "filter": {},
                    "noncurrentVersionExpiration": {"noncurrentDays": 30},
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
                    # never with Days in one expiration (botocore s3 LifecycleExpiration)
                    "expiration": {"expiredObjectDeleteMarker": True}}
    assert setting(env, "BucketVersioning")["urn"] in lifecycle["dependencies"]


@pytest.mark.parametrize("env", ENVS)
def test_each_writers_handoff_payloads_expire_and_its_models_do_not(env: str) -> None:
    """A message larger than the broker takes goes by reference: its publisher (any service that publishes) puts the
    payload under ``<service>/handoff/`` (README, "Model artifacts"); a writer may too. No service may delete, so
    without an expiry every request's payload would stay, and be billed, for good: S3 expires them (the current
    version becomes noncurrent, recoverable for the noncurrent window like any overwritten model, then deleted), and
    nothing else."""
    rules = setting(env, "BucketLifecycleConfiguration")["inputs"]["rules"]
    writers = handoff_writers()
    assert writers == ["gateway", "inference", "preprocess", "training"], "every shipped service publishes"
    handoff = {rule["filter"]["prefix"]: rule for rule in rules if rule["id"].startswith("handoff-")}
    assert sorted(handoff) == [f"{writer}/handoff/" for writer in writers]
    for writer in writers:
        assert handoff[f"{writer}/handoff/"] == {"id": f"handoff-{writer}", "status": "Enabled",
                                                 "filter": {"prefix": f"{writer}/handoff/"},
                                                 "expiration": {"days": HANDOFF_DAYS}}
    # the models themselves (any other key) never expire while current
    assert all(rule["id"] in {"artifact-versions", *(f"handoff-{w}" for w in writers)} for rule in rules)
    # what the README tells the publisher and the operator
    section = " ".join(readme_section("### Model artifacts").split())
    assert "`$ARTIFACTS_HANDOFF_PREFIX`" in section and f"S3 expires those objects {HANDOFF_DAYS} days" in section


def test_a_new_writer_gets_its_own_handoff_expiry(edit_catalog: CatalogEditor) -> None:
    def preprocess_writes_and_publishes_nothing(data: dict[str, Any]) -> None:
        data["services"]["preprocess"].update(artifacts="write")
        data["services"]["preprocess"].pop("publishes")

    edit_catalog(preprocess_writes_and_publishes_nothing)
    compute = synth_env("dev", ["compute"])["compute"]
    lifecycle = by_name(compute, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", STORE)
    prefixes = sorted(rule["filter"].get("prefix", "") for rule in lifecycle["inputs"]["rules"])
    assert prefixes == ["", "gateway/handoff/", "inference/handoff/", "preprocess/handoff/", "training/handoff/"]


def test_a_new_publisher_gets_its_own_handoff_expiry(edit_catalog: CatalogEditor) -> None:
    edit_catalog(lambda data: data["services"]["training"].pop("publishes"))
    compute = synth_env("dev", ["compute"])["compute"]
    lifecycle = by_name(compute, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", STORE)
    prefixes = sorted(rule["filter"].get("prefix", "") for rule in lifecycle["inputs"]["rules"])
    # training still writes (its rule stays), and each of the three publishers has its own
    assert prefixes == ["", "gateway/handoff/", "inference/handoff/", "preprocess/handoff/", "training/handoff/"]


@pytest.mark.parametrize("env", ENVS)
def test_prod_protects_the_bucket_and_key_and_only_unprotected_envs_force_destroy(env: str) -> None:
    """dev's destroy deletes the models with the bucket (S3 refuses a non-empty bucket, which would stop every
    destroy); prod's bucket and key are protected and its destroy stops at a non-empty bucket."""
    compute = platform(env)["compute"]
    protects = load_env(env).protect
    assert protects is (env == "prod")
    assert bucket_of(env)["inputs"]["forceDestroy"] is (not protects)
    assert bucket_of(env)["protect"] is protects and by_name(compute, KEY, STORE)["protect"] is protects
    for type_ in ("BucketPublicAccessBlock", "BucketOwnershipControls", "BucketServerSideEncryptionConfiguration",
                  "BucketVersioning", "BucketLifecycleConfiguration", "BucketPolicy"):
        assert setting(env, type_)["protect"] is False, type_


def artifact_statements(doc: dict[str, Any], service: str) -> dict[str, dict[str, Any]]:
    policy = task_policy(doc, service)
    found = statements(policy) if policy is not None else []
    return {s["Sid"]: s for s in found if any(a.startswith(("s3:", "kms:")) for a in as_list(s["Action"]))}


@pytest.mark.parametrize("env", ENVS)
def test_task_roles_get_the_bucket_as_their_catalog_key_says(env: str) -> None:
    compute = platform(env)["compute"]
    name = bucket_of(env)["inputs"]["bucket"]
    arn = f"arn:aws:s3:::{name}"
    (sse,) = setting(env, "BucketServerSideEncryptionConfiguration")["inputs"]["rules"]
    key_arn = sse["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    via_s3 = {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    read = {
        "ListArtifacts": {"Sid": "ListArtifacts", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": arn},
        "ReadArtifacts": {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                          "Resource": f"{arn}/*"},
    }
    catalog = load_catalog()
    for spec in catalog:
        found = artifact_statements(compute, spec.name)
        # every publisher puts its handoffs under its own <service>/handoff/ only, and a consumer gets those of the
        # publishers whose keys it consumes only (README, "Model artifacts")
        handoffs: dict[str, dict[str, Any]] = {}
        if spec.publishes:
            handoffs["WriteOwnHandoffs"] = {
                "Sid": "WriteOwnHandoffs", "Effect": "Allow", "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
                "Resource": f"{arn}/{spec.name}/handoff/*"}
        sources = catalog.handoff_sources(spec.name)
        if sources:
            handoffs["ReadConsumedHandoffs"] = {
                "Sid": "ReadConsumedHandoffs", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": sorted(f"{arn}/{source}/handoff/*" for source in sources)}
        writes = spec.artifacts == "write" or bool(spec.publishes)
        key = {"ArtifactKeyThroughS3": {
            "Sid": "ArtifactKeyThroughS3", "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if writes else ["kms:Decrypt"], "Resource": key_arn,
            "Condition": via_s3}}
        if spec.artifacts is None:
            assert found == ({**handoffs, **key} if handoffs else {}), spec.name
        elif spec.artifacts == "read":
            assert found == {**read, **handoffs, **key}, spec.name
        else:
            # writes only under its own prefix, and deletes nothing (versioning keeps what an overwrite replaced)
            assert found == {**read, "WriteOwnArtifacts": {
                "Sid": "WriteOwnArtifacts", "Effect": "Allow", "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
                "Resource": f"{arn}/{spec.name}/*"}, **handoffs, **key}, spec.name
    assert {spec.name for spec in catalog if spec.artifacts} == {"inference", "training"}


def _endpoint_allows(endpoint: list[dict[str, Any]], action: str, resource: str, account: str) -> bool:
    """Whether the endpoint policy passes ``action`` on ``resource``, a bucket of ``account``, for a task role of
    ``account`` (tests/iam_eval.py)."""
    context = {"aws:PrincipalAccount": account, "aws:ResourceAccount": account,
               "aws:PrincipalArn": f"arn:aws:iam::{account}:role/inference-task-0a1b2c3"}
    return iam_eval.allows(endpoint, action, resource, context)


@pytest.mark.parametrize("env", ENVS)
def test_the_s3_endpoint_passes_every_request_the_task_roles_may_make_on_the_bucket(env: str) -> None:
    """The tasks' S3 requests leave the private subnets through the gateway endpoint: whatever a task role is
    granted on the bucket must pass its policy too (GetObject of a version, AbortMultipartUpload: the account's
    own-bucket statement carries neither), or the request is denied at the endpoint."""
    docs = platform(env)
    account = load_env(env).account_id
    endpoint = s3_endpoint_statements(docs["network"])
    name = bucket_of(env)["inputs"]["bucket"]
    checked = 0
    for spec in load_catalog():
        for statement in artifact_statements(docs["compute"], spec.name).values():
            for action in as_list(statement["Action"]):
                if action.startswith("s3:"):
                    for pattern in as_list(statement["Resource"]):
                        resource = pattern.replace("*", "models/model.tar")
                        assert _endpoint_allows(endpoint, action, resource, account), (spec.name, action, resource)
                        checked += 1
    assert checked >= 7 + 2 * 4 + 2 * 4  # + each publisher's handoff put, each consumer's handoff gets
    # ...and nothing else: the bucket's own statement, not S3 at large
    (artifacts,) = [s for s in endpoint if s["Sid"] == "ModelArtifacts"]
    assert artifacts["Resource"] == [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    assert artifacts["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account}}
    assert not _endpoint_allows(endpoint, "s3:GetObjectVersion", "arn:aws:s3:::someone-elses-bucket/x", account)
    assert not _endpoint_allows(endpoint, "s3:DeleteObjectVersion", f"arn:aws:s3:::{name}/training/x", account)


def s3_egress_description(network: dict[str, Any]) -> str:
    rule = by_name(network, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "network-services-out-s3")
    return str(rule["inputs"]["description"])


@pytest.mark.parametrize("env", ENVS)
def test_the_tasks_s3_egress_rule_says_it_carries_model_artifacts(env: str) -> None:
    assert s3_egress_description(platform(env)["network"]) == \
        "HTTPS to S3 through the gateway endpoint (ECR image layers, model artifacts)"


@pytest.mark.parametrize("env", ENVS)
def test_services_are_told_the_bucket_and_a_writer_its_prefix(env: str) -> None:
    compute = platform(env)["compute"]
    name = bucket_of(env)["inputs"]["bucket"]
    for spec in load_catalog():
        variables = environment(container(by_name(compute, TASK, spec.name), spec.name))
        artifacts = {k: v for k, v in variables.items() if k.startswith("ARTIFACTS_")}
        uses_bucket = bool(spec.artifacts or spec.publishes or load_catalog().handoff_sources(spec.name))
        expected = ({"ARTIFACTS_BUCKET": name} if uses_bucket else {}) | (
            {"ARTIFACTS_PREFIX": f"{spec.name}/"} if spec.artifacts == "write" else {}) | (
            {"ARTIFACTS_HANDOFF_PREFIX": f"{spec.name}/handoff/"} if spec.publishes else {})
        assert artifacts == expected, spec.name


def test_a_catalog_without_artifacts_or_publishers_has_no_bucket_no_grants_and_no_endpoint_statement(
        edit_catalog: CatalogEditor) -> None:
    edit_catalog(without_artifacts_or_publishers)
    docs = synth_env("dev", ["network", "compute"])
    assert not [r for r in docs["compute"]["resources"] if r["type"].startswith("aws:s3/")]
    assert {k["name"] for k in of_type(docs["compute"], KEY)} == {"compute-ecr", "compute-logs"}
    assert "ModelArtifacts" not in {s["Sid"] for s in s3_endpoint_statements(docs["network"])}
    assert s3_egress_description(docs["network"]) == "HTTPS to S3 through the gateway endpoint (ECR image layers)"
    for spec in load_catalog():
        assert artifact_statements(docs["compute"], spec.name) == {}, spec.name


def test_a_catalog_without_artifacts_keeps_the_bucket_for_its_publishers_handoffs(
        edit_catalog: CatalogEditor) -> None:
    """Where a service publishes, a payload too large for a message needs the bucket (README, "Model artifacts"): it
    stays, with its expiry per publisher and the endpoint's statement, and the task roles hold the handoff grants
    only (no model listed, read or written)."""
    edit_catalog(without_artifacts)
    docs = synth_env("dev", ["network", "compute"])
    assert sorted(b["name"] for b in of_type(docs["compute"], BUCKET)) == [STORE, LOGS]
    assert "ModelArtifacts" in {s["Sid"] for s in s3_endpoint_statements(docs["network"])}
    lifecycle = by_name(docs["compute"], "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", STORE)
    assert sorted(rule["filter"].get("prefix", "") for rule in lifecycle["inputs"]["rules"]) == [
        "", "gateway/handoff/", "inference/handoff/", "preprocess/handoff/", "training/handoff/"]
    for spec in load_catalog():
        sids = set(artifact_statements(docs["compute"], spec.name))
        assert sids <= {"WriteOwnHandoffs", "ReadConsumedHandoffs", "ArtifactKeyThroughS3"}, spec.name
        assert "WriteOwnHandoffs" in sids, spec.name  # every shipped service publishes


def test_a_writer_writes_under_its_own_prefix_only(edit_catalog: CatalogEditor) -> None:
    edit_catalog(lambda data: data["services"]["preprocess"].update(artifacts="write"))  # features next to models
    compute = synth_env("dev", ["compute"])["compute"]
    prefixes = {service: artifact_statements(compute, service)["WriteOwnArtifacts"]["Resource"].split(":::", 1)[1]
                for service in ("preprocess", "training")}
    bucket = artifact_bucket_name("dev", "111111111111", "eu-west-1")
    assert prefixes == {"preprocess": f"{bucket}/preprocess/*", "training": f"{bucket}/training/*"}
    assert sorted(b["name"] for b in of_type(compute, BUCKET)) == [STORE, LOGS]  # still one store for the env


@pytest.mark.parametrize("region", sorted(REGION_AZS))
def test_the_name_fits_s3_for_the_longest_env_name_in_every_region(region: str) -> None:
    suffix = f"-123456789012-{region}-an"
    longest = artifact_bucket_name("customer-analytics-sandbox-eu1", "123456789012", region)  # 30 characters
    assert len(longest) <= 63 and longest.endswith(suffix) and longest.startswith("ml-artifacts-customer")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", longest) and "--" not in longest.removesuffix(suffix)
    assert artifact_bucket_name("dev", "123456789012", region) == f"ml-artifacts-dev{suffix}"
    logs = artifact_log_bucket_name("customer-analytics-sandbox-eu1", "123456789012", region)
    assert len(logs) <= 63 and logs.endswith(suffix) and logs.startswith("ml-artifact-logs-customer")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", logs) and "--" not in logs.removesuffix(suffix)
    assert artifact_log_bucket_name("dev", "123456789012", region) == f"ml-artifact-logs-dev{suffix}"


def test_the_network_and_compute_layers_name_the_same_bucket() -> None:
    """Network deploys first and cannot read compute's outputs: both derive the name from the env alone."""
    docs = platform("prod")
    (artifacts,) = [s for s in s3_endpoint_statements(docs["network"]) if s["Sid"] == "ModelArtifacts"]
    assert artifacts["Resource"][0] == f"arn:aws:s3:::{bucket_of('prod')['inputs']['bucket']}"
    assert not [u for u in docs["network"]["stack_references"] if "compute" in u]
    assert json.dumps(artifacts).count("ml-artifacts-prod-") == 2


@pytest.mark.parametrize("env", ENVS)
def test_the_compute_layer_takes_the_bucket_name_from_its_settings(env: str) -> None:
    """The store's name and the tasks' grants and ARTIFACTS_BUCKET read ComputeSettings.artifact_bucket_name."""
    from shared.components.compute import ComputeArgs

    config = load_env(env)
    args = ComputeArgs.from_env(config, load_catalog())
    assert args.artifacts is not None
    assert args.artifacts.bucket_name == args.settings.artifact_bucket_name == artifact_bucket_name(
        config.name, config.account_id, config.region)


@pytest.mark.parametrize("env", ENVS)
def test_a_service_using_artifacts_starts_only_once_the_bucket_is_encrypted_versioned_and_tls_only(env: str) -> None:
    """On the first `up` the bucket is created in the same run as the services' new revisions: a model written
    before the default encryption (or versioning) is in place would be SSE-S3 (or unversioned)."""
    compute = platform(env)["compute"]
    ready = {setting(env, t)["urn"] for t in ("BucketServerSideEncryptionConfiguration", "BucketVersioning",
                                              "BucketPolicy", "BucketPublicAccessBlock", "BucketOwnershipControls")}
    catalog = load_catalog()
    for spec in catalog:
        waits_for = set(by_name(compute, "aws:ecs/service:Service", spec.name)["dependencies"])
        # a reader or writer, and a publisher (its handoffs) or a consumer of one (README, "Model artifacts")
        uses_bucket = spec.artifacts is not None or bool(spec.publishes or catalog.handoff_sources(spec.name))
        assert (ready <= waits_for) is uses_bucket, spec.name


def deploy_statement(network: dict[str, Any]) -> dict[str, Any]:
    (statement,) = [s for s in s3_endpoint_statements(network) if s["Sid"] == "DeployRoleManagesPlatformBuckets"]
    return statement


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_role_manages_the_bucket_through_the_s3_endpoint_and_no_task_can(env: str) -> None:
    """staging's and prod's `up` runs on the in-VPC runner, whose S3 calls pass the gateway endpoint: the AWS
    provider's bucket calls (CreateBucket, PutBucketPolicy, GetBucketAcl...) must pass it for the deploy role."""
    account = load_env(env).account_id
    arn = f"arn:aws:s3:::{bucket_of(env)['inputs']['bucket']}"
    # ...and its access-log bucket, created and deleted with it on the same runner
    logs = f"arn:aws:s3:::{by_name(platform(env)['compute'], BUCKET, LOGS)['inputs']['bucket']}"
    # ...and every public gateway access-log bucket of the env, by pattern (tests/layers/test_network.py)
    gateway_logs = f"arn:aws:s3:::ml-{env}-*-alb-logs-{account}"
    assert deploy_statement(platform(env)["network"]) == {
        "Sid": "DeployRoleManagesPlatformBuckets", "Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": sorted([arn, f"{arn}/*", logs, f"{logs}/*", gateway_logs, f"{gateway_logs}/*"]),
        "Condition": {"StringEquals": {"aws:PrincipalAccount": account,
                                       "aws:PrincipalArn": f"arn:aws:iam::{account}:role/ml-platform-deployer"}}}
    endpoint = s3_endpoint_statements(platform(env)["network"])
    # any other principal of the account (a task role): objects only, never the bucket's configuration
    for action in ("s3:CreateBucket", "s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutLifecycleConfiguration"):
        assert not _endpoint_allows(endpoint, action, arn, account), action
        assert not _endpoint_allows(endpoint, action, logs, account), action


def test_the_deploy_roles_statement_follows_its_name_and_the_access_log_buckets(edit_env: Any) -> None:
    def public_gateway(data: dict[str, Any]) -> None:
        data["compute"].update(public_gateway=True, certificate_arn=(
            "arn:aws:acm:eu-west-1:222222222222:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"))
        data["messaging"]["deploy_runner"] = {"deploy_role_name": "ci-deployer"}

    edit_env("staging", public_gateway)
    statement = deploy_statement(synth_env("staging", ["network"])["network"])
    artifacts = f"arn:aws:s3:::{artifact_bucket_name('staging', '222222222222', 'eu-west-1')}"
    artifact_logs = f"arn:aws:s3:::{artifact_log_bucket_name('staging', '222222222222', 'eu-west-1')}"
    logs = "arn:aws:s3:::ml-staging-*-alb-logs-222222222222"  # the gateway's ml-staging-gateway-alb-logs-...
    assert statement["Resource"] == sorted([artifacts, f"{artifacts}/*", artifact_logs, f"{artifact_logs}/*", logs,
                                            f"{logs}/*"])
    assert statement["Condition"]["StringEquals"]["aws:PrincipalArn"] == "arn:aws:iam::222222222222:role/ci-deployer"


def test_the_deploy_role_may_still_delete_the_bucket_once_no_service_uses_artifacts(
        edit_catalog: CatalogEditor) -> None:
    """The `up` that removes the last `artifacts` key (and the last publisher, whose handoffs keep the bucket) runs
    network (the endpoint policy) before compute, which then deletes the bucket (with --allow-replace; force_destroy's
    version deletes, DeleteBucket). On staging's in-VPC runner those calls pass the S3 gateway endpoint: its
    deploy-role statement must still name the bucket, or they are denied there (the own-bucket statement carries no
    version deletes and no bucket calls)."""
    edit_catalog(without_artifacts_or_publishers)
    account = load_env("staging").account_id
    endpoint = s3_endpoint_statements(synth_env("staging", ["network"])["network"])
    arn = f"arn:aws:s3:::{artifact_bucket_name('staging', account, 'eu-west-1')}"
    logs = f"arn:aws:s3:::{artifact_log_bucket_name('staging', account, 'eu-west-1')}"
    (deploy,) = [s for s in endpoint if s["Sid"] == "DeployRoleManagesPlatformBuckets"]
    assert {arn, f"{arn}/*", logs, f"{logs}/*"} <= set(deploy["Resource"])
    role = f"arn:aws:iam::{account}:role/ml-platform-deployer"
    assert deploy["Condition"]["StringEquals"]["aws:PrincipalArn"] == role
    # the tasks' statement goes with the last reader or writer
    assert "ModelArtifacts" not in {s["Sid"] for s in endpoint}


@pytest.mark.parametrize("env", ENVS)
def test_the_buckets_settings_are_written_one_at_a_time(env: str) -> None:
    """S3 answers a configuration call made while another is in progress on the same bucket with 409
    OperationAborted ("A conflicting conditional operation is currently in progress"; e.g. a bucket policy written
    with the ownership controls): every two settings of the bucket are ordered, on create and (reversed) on delete."""
    types = ("BucketOwnershipControls", "BucketPublicAccessBlock", "BucketServerSideEncryptionConfiguration",
             "BucketVersioning", "BucketLifecycleConfiguration", "BucketPolicy", "BucketLogging")
    settings = {setting(env, t)["urn"]: set(setting(env, t)["dependencies"]) for t in types}
    log_types = ("BucketOwnershipControls", "BucketPublicAccessBlock", "BucketServerSideEncryptionConfiguration",
                 "BucketLifecycleConfiguration", "BucketPolicy")
    log_settings = {setting(env, t, LOGS)["urn"]: set(setting(env, t, LOGS)["dependencies"]) for t in log_types}
    all_settings = {**settings, **log_settings}

    def before(urn: str) -> set[str]:
        return reachable(all_settings, urn)

    for group in (settings, log_settings):
        for first in group:
            for second in group:
                if first != second:
                    assert first in before(second) or second in before(first), (first, second)
    # the policy still comes after the public access block (BlockPublicPolicy being written: 409)
    for bucket in (STORE, LOGS):
        assert setting(env, "BucketPublicAccessBlock", bucket)["urn"] in before(
            setting(env, "BucketPolicy", bucket)["urn"]), bucket


#: The bucket property each separate S3 setting resource writes: what `pulumi refresh` reads back into the bucket.
SETTING_PROPERTY = {
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "lifecycleRules",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "serverSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning": "versioning",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "grants",
    "aws:s3/bucketAcl:BucketAcl": "grants",
    "aws:s3/bucketLogging:BucketLogging": "logging",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "replicationConfiguration",
}


def test_a_refresh_then_up_never_takes_a_buckets_settings_away(edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket ignores every property a separate setting resource of it writes. Otherwise `pulumi refresh`
    reads e.g. the lifecycle rules into the bucket's state, and the next `up` sends the bucket without them:
    the rules are deleted in AWS."""
    from shared.synth import engine

    ignored: dict[str, list[str]] = {}
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        if request.type == BUCKET:
            ignored[request.name] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", recording)
    edit_env("prod", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:333333333333:certificate/gateway"))
    compute = synth_env("prod", ["compute"])["compute"]
    buckets = {resource["urn"]: resource["name"] for resource in of_type(compute, BUCKET)}
    assert sorted(buckets.values()) == ["compute-artifacts", "compute-artifacts-logs", "gateway-alb-logs"]
    owned: dict[str, set[str]] = {name: set() for name in buckets.values()}
    for resource in compute["resources"]:
        prop = SETTING_PROPERTY.get(resource["type"])
        parent = buckets.get(resource.get("parent", ""))
        if resource["type"].startswith("aws:s3/") and resource["type"] != BUCKET:
            assert prop is not None or "PublicAccessBlock" in resource["type"], \
                f"{resource['type']}: which bucket property does it write?"
        if prop and parent:
            owned[parent].add(prop)
    assert owned["compute-artifacts"] >= {"lifecycleRules", "serverSideEncryptionConfiguration", "versioning",
                                          "policy", "grants", "logging"}
    assert owned["compute-artifacts-logs"] >= {"lifecycleRules", "serverSideEncryptionConfiguration", "policy",
                                               "grants"}
    for name, props in owned.items():
        assert props <= set(ignored[name]), f"{name} would lose {sorted(props - set(ignored[name]))} on refresh + up"


@pytest.mark.parametrize("env", ENVS)
def test_a_bucket_created_in_a_namespace_is_never_planned_for_replacement_by_it(env: str) -> None:
    """Only CreateBucket takes a bucket's namespace, and no S3 call returns it (botocore s3: BucketNamespace is a
    member of CreateBucketRequest alone): a state without it (an import, a refresh that reads it as unset) must not
    make the next `up` replace the bucket, objects and all. The create still sends it."""
    model = Path(botocore.__file__).parent / "data" / "s3"
    (service,) = model.glob("*/service-2.json*")
    opened = gzip.open(service) if service.suffix == ".gz" else service.open("rb")
    with opened as handle:
        shapes = json.load(handle)["shapes"]
    carriers = sorted(name for name, shape in shapes.items() if "BucketNamespace" in (shape.get("members") or {}))
    assert carriers == ["CreateBucketRequest"], carriers
    compute = platform(env)["compute"]
    for name in ("compute-artifacts", LOGS):
        bucket = by_name(compute, BUCKET, name)
        assert bucket["inputs"]["bucketNamespace"] == "account-regional"
        assert "bucketNamespace" in bucket["ignore_changes"], name


def log_bucket_of(env: str) -> dict[str, Any]:
    return by_name(platform(env)["compute"], BUCKET, LOGS)


@pytest.mark.parametrize("env", ENVS)
def test_the_bucket_logs_its_requests_to_a_private_sse_s3_log_bucket_of_the_env(env: str) -> None:
    """Security Hub S3.9: S3 server access logging, delivered to a bucket of the same account and Region (S3 delivers
    nowhere else), in the account regional namespace like the store, SSE-S3 (the target's default encryption S3 server
    access logging takes), owner-enforced (no ACL grant: the bucket policy lets the logging service write)."""
    config = load_env(env)
    bucket = log_bucket_of(env)
    name = bucket["inputs"]["bucket"]
    assert name == f"ml-artifact-logs-{env}-{config.account_id}-{config.region}-an"
    assert bucket["inputs"]["bucketNamespace"] == "account-regional"
    assert setting(env, "BucketPublicAccessBlock", LOGS)["inputs"] == {
        "bucket": name, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
        "restrictPublicBuckets": True}
    assert setting(env, "BucketOwnershipControls", LOGS)["inputs"]["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert setting(env, "BucketServerSideEncryptionConfiguration", LOGS)["inputs"]["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    # the logs expire after the env's log retention
    assert setting(env, "BucketLifecycleConfiguration", LOGS)["inputs"]["rules"] == [
        {"id": "expire-access-logs", "status": "Enabled", "filter": {"prefix": "s3-access-logs/"},
         "expiration": {"days": config.compute.log_retention_days}}]
    # destroyed like the store: force_destroy where the env does not protect state, protected where it does
    assert bucket["inputs"]["forceDestroy"] is (not config.protect)
    assert bucket["protect"] is config.protect
    for type_ in ("BucketPublicAccessBlock", "BucketOwnershipControls", "BucketServerSideEncryptionConfiguration",
                  "BucketLifecycleConfiguration", "BucketPolicy"):
        assert setting(env, type_, LOGS)["protect"] is False, type_
    # the log bucket itself is not logged (S3 user guide: a target bucket should not have server access logging)
    assert [r["inputs"]["bucket"] for r in of_type(platform(env)["compute"], "aws:s3/bucketLogging:BucketLogging")] \
        == [bucket_of(env)["inputs"]["bucket"]]


@pytest.mark.parametrize("env", ENVS)
def test_only_s3s_logging_service_writes_the_logs_and_only_for_the_env_store(env: str) -> None:
    """The S3 user guide's policy for log delivery (aws:SourceArn the source bucket, aws:SourceAccount its account),
    next to the TLS-only deny, which names aws:SecureTransport false alone and so does not stop the (TLS) delivery."""
    account = load_env(env).account_id
    name = log_bucket_of(env)["inputs"]["bucket"]
    allow, deny = statements(setting(env, "BucketPolicy", LOGS))
    assert allow == {
        "Sid": "S3ServerAccessLogsPolicy", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{name}/s3-access-logs/*",
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket_of(env)['inputs']['bucket']}"},
                      "StringEquals": {"aws:SourceAccount": account}}}
    assert deny == {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


@pytest.mark.parametrize("env", ENVS)
def test_logging_is_turned_on_only_once_the_log_bucket_lets_s3_write(env: str) -> None:
    """First `up` in an empty account: the log bucket and its policy exist before PutBucketLogging names it, and the
    store's own settings are not written at the same time (409 OperationAborted)."""
    logging = setting(env, "BucketLogging")
    assert logging["inputs"] == {"bucket": bucket_of(env)["inputs"]["bucket"],
                                 "targetBucket": log_bucket_of(env)["inputs"]["bucket"],
                                 "targetPrefix": "s3-access-logs/"}
    assert logging["parent"] == bucket_of(env)["urn"]
    assert {setting(env, "BucketPolicy", LOGS)["urn"], setting(env, "BucketPolicy")["urn"],
            log_bucket_of(env)["urn"]} <= set(logging["dependencies"])


def test_a_change_of_log_retention_moves_the_log_expiry(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(log_retention_days=30))
    compute = synth_env("dev", ["compute"])["compute"]
    (rule,) = by_name(compute, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", LOGS)["inputs"][
        "rules"]
    assert rule["expiration"] == {"days": 30}


GATEWAY_LOGS = "gateway-alb-logs"


@pytest.mark.parametrize("env", ENVS)
def test_a_public_gateways_access_log_bucket_logs_its_own_requests_into_the_envs_log_bucket(
        edit_env: Any, env: str) -> None:
    """Security Hub S3.9 on the ALB's access-log bucket: who read or deleted the ALB's logs is recorded, in the env's
    server-access-log bucket under a prefix of its own (inside the log bucket's policy and lifecycle prefix), whose
    policy lets S3's logging service write for that bucket too. First `up`: logging is turned on after the log
    bucket's policy and after the access-log bucket's other settings (409 OperationAborted otherwise)."""
    edit_env(env, lambda data: data["compute"].update(
        public_gateway=True, certificate_arn=gateway_certificate(env, "gateway")))
    compute = synth_env(env, ["compute"])["compute"]
    account = load_env(env).account_id
    gateway_bucket = by_name(compute, BUCKET, GATEWAY_LOGS)
    name = gateway_bucket["inputs"]["bucket"]
    log_bucket = by_name(compute, BUCKET, LOGS)["inputs"]["bucket"]
    logging = by_name(compute, "aws:s3/bucketLogging:BucketLogging", GATEWAY_LOGS)
    assert logging["inputs"] == {"bucket": name, "targetBucket": log_bucket, "targetPrefix": f"s3-access-logs/{name}/"}
    assert logging["parent"] == gateway_bucket["urn"]
    log_policy = by_name(compute, "aws:s3/bucketPolicy:BucketPolicy", LOGS)
    settings = [r["urn"] for r in compute["resources"] if r["name"] == GATEWAY_LOGS and r["type"].startswith("aws:s3/")
                and r["type"] not in (BUCKET, "aws:s3/bucketLogging:BucketLogging")]
    assert len(settings) == 5 and {log_policy["urn"], *settings} <= set(logging["dependencies"])
    allow = statements(log_policy)[0]
    store = f"arn:aws:s3:::{artifact_bucket_name(env, account, load_env(env).region)}"
    assert allow["Condition"] == {"ArnLike": {"aws:SourceArn": [store, f"arn:aws:s3:::{name}"]},
                                  "StringEquals": {"aws:SourceAccount": account}}
    assert allow["Resource"] == f"arn:aws:s3:::{log_bucket}/s3-access-logs/*"


def test_without_an_artifact_store_the_gateways_access_log_bucket_logs_nothing(
        edit_env: Any, edit_catalog: CatalogEditor) -> None:
    # The env's server-access-log bucket is the artifact store's (README, Security Hub: S3.9 stays open there).
    edit_catalog(without_artifacts_or_publishers)
    edit_env("dev", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/gateway"))
    compute = synth_env("dev", ["compute"])["compute"]
    assert by_name(compute, BUCKET, GATEWAY_LOGS)
    assert not of_type(compute, "aws:s3/bucketLogging:BucketLogging")
