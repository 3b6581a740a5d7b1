"""``s3-versioned-bucket-lifecycle`` through the real pack: a versioned S3 bucket expires its noncurrent versions and
aborts incomplete multipart uploads (Security Hub S3.10, stricter) -- compliant, non-compliant, unknown at preview, and
the platform's buckets in every env."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_STRING, res, snapshot_document
from tests.policies.tokens import BUCKET
from tests.policies.tokens import BUCKET_LIFECYCLE as LIFECYCLE
from tests.policies.tokens import BUCKET_VERSIONING as VERSIONING

RULE = "s3-versioned-bucket-lifecycle"
BOUNDED = {"id": "versions", "status": "Enabled", "filter": {}, "noncurrentVersionExpiration": {"noncurrentDays": 30},
           "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}


def bucket(name: str = "models", **inputs: Any) -> dict[str, Any]:
    return res(BUCKET, name, {"bucket": name, **inputs})


def companion(type_: str, target: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    return res(type_, target["name"], {"bucket": target["inputs"]["bucket"], **inputs}, dependencies=[target],
               property_dependencies={"bucket": [target]})


def versioning(target: dict[str, Any], status: str = "Enabled") -> dict[str, Any]:
    return companion(VERSIONING, target, versioningConfiguration={"status": status})


def lifecycle(target: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    return companion(LIFECYCLE, target, rules=list(rules))


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_a_versioned_bucket_with_both_bounds_passes_and_an_unversioned_one_needs_none(policy_findings: Any) -> None:
    models, logs = bucket(), bucket("logs")
    assert messages(policy_findings([models, versioning(models), lifecycle(models, BOUNDED), logs])) == []


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_a_versioned_bucket_without_a_lifecycle_fails(policy_findings: Any, status: str) -> None:
    # a suspended bucket still holds the versions it made while enabled
    models = bucket()
    (message,) = messages(policy_findings([models, versioning(models, status)]))
    assert message.startswith("S3 bucket 'models' keeps object versions")
    assert "noncurrent_version_expiration or abort_incomplete_multipart_upload" in message


@pytest.mark.parametrize(("rule", "named"), [
    ({**BOUNDED, "noncurrentVersionExpiration": None}, "sets noncurrent_version_expiration:"),
    ({**BOUNDED, "abortIncompleteMultipartUpload": None}, "sets abort_incomplete_multipart_upload:"),
    ({**BOUNDED, "status": "Disabled"}, "noncurrent_version_expiration or abort_incomplete_multipart_upload"),
    ({**BOUNDED, "filter": {"prefix": "training/"}}, "noncurrent_version_expiration or abort_incomplete"),
], ids=["no-noncurrent-expiration", "no-abort", "disabled", "prefix-only"])
def test_a_lifecycle_that_misses_a_bound_fails_naming_it(policy_findings: Any, rule: dict[str, Any],
                                                          named: str) -> None:
    models = bucket()
    (message,) = messages(policy_findings([models, versioning(models), lifecycle(models, rule)]))
    assert named in message


def test_the_bounds_may_come_from_two_rules_or_the_buckets_own_inline_settings(policy_findings: Any) -> None:
    models = bucket()
    versions = {**BOUNDED, "abortIncompleteMultipartUpload": None}
    uploads = {**BOUNDED, "id": "uploads", "noncurrentVersionExpiration": None}
    assert messages(policy_findings([models, versioning(models), lifecycle(models, versions, uploads)])) == []
    inline = bucket("inline", versioning={"enabled": True}, lifecycleRules=[
        {"enabled": True, "noncurrentVersionExpiration": {"days": 30}, "abortIncompleteMultipartUploadDays": 7}])
    assert messages(policy_findings([inline])) == []
    inline["inputs"]["lifecycleRules"][0]["enabled"] = False
    assert messages(policy_findings([inline]))


def test_an_unknown_status_or_rule_leaves_the_bucket_undecided(policy_findings: Any,
                                                                policy_not_applicable: Any) -> None:
    models = bucket()
    resources = [models, versioning(models, UNKNOWN_STRING)]
    assert messages(policy_findings(resources)) == []
    [record] = [na for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "unknown until deployment" in record["reason"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_platforms_artifact_bucket_passes_and_fails_without_its_version_expiry(rule_outcome: Any,
                                                                                   env: str) -> None:
    doc = snapshot_document(env, "compute")
    assert rule_outcome(RULE, env, doc) == ([], [])
    versioned = {r["inputs"]["bucket"] for r in doc["resources"] if r["type"] == VERSIONING}
    assert versioned
    for resource in doc["resources"]:
        if resource["type"] == LIFECYCLE and resource["inputs"]["bucket"] in versioned:
            for rule in resource["inputs"]["rules"]:
                rule.pop("noncurrentVersionExpiration", None)
    findings, _ = rule_outcome(RULE, env, doc)
    assert [f["rule"] for f in findings] == [RULE] * len(versioned)


def test_the_deprecated_v2_types_count_too(policy_findings: Any) -> None:
    """pulumi_aws still ships BucketV2's companions BucketVersioningV2 and BucketLifecycleConfigurationV2 (deprecated,
    tokens of their own; pulumi_aws/s3/bucket_versioning_v2.py): a program on them is versioned and bounded as well,
    not unversioned (a missed finding) or unbounded (a false one that stops a staging/prod up)."""
    models = res("aws:s3/bucketV2:BucketV2", "models", {"bucket": "models"})
    versioned_v2 = companion("aws:s3/bucketVersioningV2:BucketVersioningV2", models,
                             versioningConfiguration={"status": "Enabled"})
    assert messages(policy_findings([models, versioned_v2]))
    bounded_v2 = companion("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", models,
                           rules=[BOUNDED])
    assert messages(policy_findings([models, versioned_v2, bounded_v2])) == []
    assert messages(policy_findings([models, versioning(models), bounded_v2])) == []
