"""``s3-bucket-acls-disabled`` through the real pack: every S3 bucket of the stack has ownership controls with
``BucketOwnerEnforced`` (Security Hub S3.12) -- compliant, non-compliant and unknown at preview (the platform's buckets
in every env: test_aws_s3_tls_only)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import BUCKET
from tests.policies.tokens import OWNERSHIP_CONTROLS as CONTROLS

RULE = "s3-bucket-acls-disabled"


def bucket(name: str) -> dict[str, Any]:
    return res(BUCKET, name, {"bucket": name})


def controls(target: dict[str, Any], ownership: Any, name: str | None = None) -> dict[str, Any]:
    return res(CONTROLS, name or target["name"], {"bucket": target["inputs"]["bucket"],
                                                   "rule": {"objectOwnership": ownership}},
               dependencies=[target], property_dependencies={"bucket": [target]})


def findings_of(policy_findings: Any, resources: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in policy_findings(resources) if f["rule"] == RULE]


def test_buckets_owner_enforced_pass(policy_findings: Any) -> None:
    models, logs = bucket("models"), bucket("logs")
    assert findings_of(policy_findings, [models, controls(models, "BucketOwnerEnforced"), logs,
                                         controls(logs, "BucketOwnerEnforced")]) == []


@pytest.mark.parametrize(("ownership", "expected"), [
    (None, "S3 bucket 'models' keeps ACLs: no ownership controls"),
    ("BucketOwnerPreferred", "S3 bucket 'models' keeps ACLs: object ownership BucketOwnerPreferred"),
    ("ObjectWriter", "S3 bucket 'models' keeps ACLs: object ownership ObjectWriter"),
], ids=["none", "preferred", "object-writer"])
def test_a_bucket_that_keeps_acls_fails(policy_findings: Any, ownership: str | None, expected: str) -> None:
    models = bucket("models")
    resources = [models] + ([controls(models, ownership)] if ownership else [])
    (message,) = findings_of(policy_findings, resources)
    assert message.startswith(expected) and "BucketOwnerEnforced" in message


def test_an_ownership_unknown_at_preview_leaves_that_bucket_undecided(policy_findings: Any,
                                                                       policy_not_applicable: Any) -> None:
    models, logs = bucket("models"), bucket("logs")
    unknown = [models, controls(models, UNKNOWN_STRING)]
    assert findings_of(policy_findings, unknown) == []
    assert [na["reason"] for na in policy_not_applicable(unknown) if na["rule"] == RULE] == [
        "every S3 bucket's object ownership is unknown until deployment"]
    # another bucket's missing controls are still found
    (message,) = findings_of(policy_findings, [*unknown, logs])
    assert message.startswith("S3 bucket 'logs' keeps ACLs")


def test_an_ownership_known_to_keep_acls_fails_whatever_an_unknown_one_will_be(policy_findings: Any) -> None:
    """Two ownership controls of one bucket overwrite each other in S3; as for the public access block, one known
    to keep ACLs decides at preview."""
    models = bucket("models")
    resources = [models, controls(models, UNKNOWN_STRING), controls(models, "ObjectWriter", name="models-2")]
    (message,) = findings_of(policy_findings, resources)
    assert message.startswith("S3 bucket 'models' keeps ACLs: object ownership ObjectWriter")
