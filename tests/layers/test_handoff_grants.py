"""A message larger than the broker takes goes by reference (catalog image contract, README "Model artifacts"): its
publisher puts the payload under its own ``<service>/handoff/`` in the env's artifact bucket and the message names
the key; each consumer bound to that key gets the object. Derived from the catalog's ``publishes`` and the bindings
messaging makes from ``consumes`` (task-lifecycle review F1), so it stays right as services are added.

Judged with the repo's IAM evaluator (tests/iam_eval.py) on the synthesized task-role policies, and through the
permission boundary every task role carries and the S3 gateway endpoint every task's request passes."""

from __future__ import annotations

from typing import Any

import pytest

from shared.catalog import Catalog, load_catalog
from shared.envs import load_env
from shared.role_boundary import boundary_document
from shared.synth.engine import synth_env
from tests import iam_eval
from tests.layers.compute_helpers import (
    ENVS,
    TASK,
    CatalogEditor,
    container,
    environment,
    platform,
    statements,
    task_policy,
)
from tests.synth_helpers import by_name, of_type

PUT = ("s3:PutObject", "s3:AbortMultipartUpload")
GET = ("s3:GetObject", "s3:GetObjectVersion")
VIA_S3 = {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}


def edges(catalog: Catalog) -> set[tuple[str, str]]:
    """(publisher, consumer): the consumer's work queue is bound to a key the publisher publishes."""
    return {(spec.name, consumer.name) for spec in catalog for exchange, key in spec.publishes.items()
            for consumer in catalog.consumers_of(exchange, key)}


def role_statements(compute: dict[str, Any], service: str) -> list[dict[str, Any]]:
    policy = task_policy(compute, service)
    return statements(policy) if policy is not None else []


def handoff_object(bucket: str, publisher: str) -> str:
    return f"arn:aws:s3:::{bucket}/{publisher}/handoff/0f1e2d3c-request-id"


def bucket_and_key(compute: dict[str, Any]) -> tuple[str, str]:
    bucket = by_name(compute, "aws:s3/bucket:Bucket", "compute-artifacts")["inputs"]["bucket"]
    (rule,) = by_name(compute, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                      "compute-artifacts")["inputs"]["rules"]
    return bucket, rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]


def check_handoffs(compute: dict[str, Any], catalog: Catalog) -> int:
    """Every publisher may put (and abort a multipart upload) under its own handoff prefix and nobody else may; every
    consumer bound to its keys may get there (an object and a version), and nobody else may but a reader of every
    model (catalog ``artifacts``, which gets any object by design). Returns the number of edges checked."""
    bucket, key = bucket_and_key(compute)
    pairs = edges(catalog)
    publishers = {spec.name for spec in catalog if spec.publishes}
    assert publishers == set(catalog.handoff_publishers())
    for service in catalog.names():
        own = role_statements(compute, service)
        for publisher in publishers:
            target = handoff_object(bucket, publisher)
            for action in PUT:
                assert iam_eval.allows(own, action, target) is (service == publisher), (service, action, publisher)
            for action in GET:
                reads = (publisher, service) in pairs or catalog[service].artifacts is not None
                assert iam_eval.allows(own, action, target) is reads, (service, action, publisher)
        # SSE-KMS with the bucket's key, through S3 only: a publisher generates data keys (and decrypts, for a
        # multipart upload), a consumer decrypts
        if service in publishers:
            assert iam_eval.allows(own, "kms:GenerateDataKey", key, VIA_S3), service
            assert not iam_eval.allows(own, "kms:GenerateDataKey", key, {"kms:ViaService": "ec2.amazonaws.com"})
        if service in publishers or any(consumer == service for _, consumer in pairs):
            assert iam_eval.allows(own, "kms:Decrypt", key, VIA_S3), service
        # never the bucket as a whole for a handoff: no delete, no write outside its own prefix
        assert not iam_eval.allows(own, "s3:DeleteObject", handoff_object(bucket, service)), service
        assert not iam_eval.allows(own, "s3:PutObject", f"arn:aws:s3:::{bucket}/{service}-other/x"), service
    return len(pairs)


@pytest.mark.parametrize("env", ENVS)
def test_every_publisher_hands_off_to_exactly_the_consumers_bound_to_its_keys(env: str) -> None:
    catalog = load_catalog()
    assert check_handoffs(platform(env)["compute"], catalog) == len(edges(catalog)) >= 6
    # the review's table: gateway and preprocess publish and had no S3 grant at all
    assert ("gateway", "preprocess") in edges(catalog) and ("preprocess", "inference") in edges(catalog)


@pytest.mark.parametrize("env", ENVS)
def test_the_boundary_and_the_s3_endpoint_let_every_handoff_grant_through(env: str) -> None:
    """A task role's grants hold only within its permission boundary, and its S3 requests pass the gateway endpoint."""
    config = load_env(env)
    docs = platform(env)
    compute = docs["compute"]
    bucket, key = bucket_and_key(compute)
    boundary = boundary_document(config)["Statement"]
    (endpoint,) = [e for e in of_type(docs["network"], "aws:ec2/vpcEndpoint:VpcEndpoint")
                   if e["inputs"]["serviceName"].endswith(".s3")]
    context = {"aws:PrincipalAccount": config.account_id, "aws:ResourceAccount": config.account_id}
    for publisher in load_catalog().handoff_publishers():
        target = handoff_object(bucket, publisher)
        for action in (*PUT, *GET):
            assert iam_eval.allows(boundary, action, target), (action, target)
            assert iam_eval.allows(statements(endpoint), action, target, context), (action, target)
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert iam_eval.allows(boundary, action, key, VIA_S3), action
    task_roles = [role for role in of_type(compute, "aws:iam/role:Role") if role["name"].endswith("-task")]
    assert len(task_roles) == len(load_catalog().names())
    assert all(role["inputs"]["permissionsBoundary"] for role in task_roles)


@pytest.mark.parametrize("env", ENVS)
def test_every_service_with_a_handoff_grant_knows_the_bucket_and_a_publisher_its_prefix(env: str) -> None:
    compute = platform(env)["compute"]
    bucket, _ = bucket_and_key(compute)
    catalog = load_catalog()
    readers = {consumer for _, consumer in edges(catalog)}
    for spec in catalog:
        variables = environment(container(by_name(compute, TASK, spec.name), spec.name))
        assert (variables.get("ARTIFACTS_BUCKET") == bucket) is bool(
            spec.publishes or spec.name in readers or spec.artifacts), spec.name
        assert variables.get("ARTIFACTS_HANDOFF_PREFIX") == (f"{spec.name}/handoff/" if spec.publishes else None)




def test_a_new_binding_brings_its_consumer_the_publishers_handoffs(
        edit_catalog: CatalogEditor) -> None:
    """gateway now also consumes preprocess's data.preprocessed: it may get preprocess's handoffs, still nobody else's
    new, and preprocess still puts under its own prefix only."""
    catalog = edit_catalog(lambda data: data["services"]["gateway"]["consumes"]["events"].append("data.preprocessed"))
    assert ("preprocess", "gateway") in edges(catalog)
    compute = synth_env("dev", ["compute"])["compute"]
    assert check_handoffs(compute, catalog) == len(edges(catalog))
    bucket, _ = bucket_and_key(compute)
    assert iam_eval.allows(role_statements(compute, "gateway"), "s3:GetObject", handoff_object(bucket, "preprocess"))


def test_a_service_that_publishes_nothing_gets_no_handoff_write(
        edit_catalog: CatalogEditor) -> None:
    """inference stops publishing inference.completed: it loses its handoff write (and gateway its read of inference's
    handoffs); the expiry rule of what it handed over stays (tests/test_handoff_expiry.py)."""
    catalog = edit_catalog(lambda data: data["services"]["inference"].pop("publishes"))
    compute = synth_env("dev", ["compute"])["compute"]
    assert check_handoffs(compute, catalog) == len(edges(catalog))
    bucket, _ = bucket_and_key(compute)
    own = role_statements(compute, "inference")
    assert not iam_eval.allows(own, "s3:PutObject", handoff_object(bucket, "inference"))
    assert not iam_eval.allows(role_statements(compute, "gateway"), "s3:GetObject", handoff_object(bucket, "inference"))
    assert "ARTIFACTS_HANDOFF_PREFIX" not in environment(container(by_name(compute, TASK, "inference"), "inference"))
