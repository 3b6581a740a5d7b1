"""``s3-bucket-public-access-block`` through the real pack: every S3 bucket of the stack has a bucket-level public
access block with all four settings on (Security Hub S3.8) -- compliant, non-compliant, unknown at preview, and the
platform's buckets in every env (test_aws_s3_tls_only runs both S3 stack rules over the platform's buckets)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_BOOL, UNKNOWN_STRING, res
from tests.policies.tokens import BUCKET
from tests.policies.tokens import PUBLIC_ACCESS_BLOCK as BLOCK

RULE = "s3-bucket-public-access-block"
ALL_ON = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


def bucket(name: str = "models", **inputs: Any) -> dict[str, Any]:
    return res(BUCKET, name, {"bucket": name, **inputs})


def block(target: dict[str, Any], name: str | None = None, **settings: Any) -> dict[str, Any]:
    inputs = {"bucket": target["inputs"]["bucket"],
              **{key: value for key, value in {**ALL_ON, **settings}.items() if value is not None}}
    return res(BLOCK, name or target["name"], inputs, dependencies=[target],
               property_dependencies={"bucket": [target]})


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_buckets_with_every_setting_on_pass(policy_findings: Any) -> None:
    models, logs = bucket(), bucket("logs")
    # the block found by its bucket's name too (no property dependency), as the real CLI may report it
    by_value = res(BLOCK, "logs", {"bucket": "logs", **ALL_ON})
    assert messages(policy_findings([models, block(models), logs, by_value])) == []


def test_a_bucket_without_a_block_fails(policy_findings: Any) -> None:
    models, logs = bucket(), bucket("logs")
    (message,) = messages(policy_findings([models, block(models), logs]))
    assert message.startswith("S3 bucket 'logs' has no bucket-level public access block")
    assert "restrict_public_buckets=True" in message


@pytest.mark.parametrize("settings, named", [
    ({"restrictPublicBuckets": False}, "restrict_public_buckets"),
    ({"ignorePublicAcls": None}, "ignore_public_acls"),  # unset: the provider sends false
    ({"blockPublicAcls": False, "blockPublicPolicy": False}, "block_public_acls, block_public_policy"),
], ids=["one-false", "one-unset", "two-false"])
def test_a_block_that_leaves_a_setting_off_fails_naming_it(policy_findings: Any, settings: dict[str, Any],
                                                          named: str) -> None:
    models = bucket()
    (message,) = messages(policy_findings([models, block(models, **settings)]))
    assert f"leaves {named} off" in message


def test_a_second_block_of_the_same_bucket_must_hold_every_setting_too(policy_findings: Any) -> None:
    models = bucket()
    (message,) = messages(policy_findings([models, block(models), block(models, "other", blockPublicPolicy=False)]))
    assert "leaves block_public_policy off" in message


def test_settings_or_a_bucket_unknown_at_preview_leave_the_rule_undecided(policy_findings: Any,
                                                                          policy_not_applicable: Any) -> None:
    def reasons(resources: list[dict[str, Any]]) -> list[str]:
        assert messages(policy_findings(resources)) == []
        return [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]

    models, other = bucket(), bucket("other")
    assert reasons([models, block(models, blockPublicPolicy=UNKNOWN_BOOL)]) == [
        "every S3 bucket's public access block settings are unknown until deployment"]
    # two buckets and a block whose bucket cannot be told yet
    assert reasons([models, other, res(BLOCK, "b", {"bucket": UNKNOWN_STRING, **ALL_ON}, dependencies=[models, other])
                    ]) == ["aws.s3.BucketPublicAccessBlock 'b': bucket unknown until deployment; the rule decides once "
                           "it is known"]


def test_a_setting_known_off_fails_at_preview_whatever_the_unknown_ones_will_be(policy_findings: Any) -> None:
    models = bucket()
    (message,) = messages(policy_findings([models, block(models, blockPublicPolicy=False,
                                                         ignorePublicAcls=UNKNOWN_BOOL)]))
    assert "leaves block_public_policy off" in message


def test_an_unknown_bucket_is_still_judged_while_another_is_decided(policy_findings: Any) -> None:
    """One bucket's unknown settings do not hide another bucket's missing block."""
    models, logs = bucket(), bucket("logs")
    (message,) = messages(policy_findings([models, block(models, ignorePublicAcls=UNKNOWN_BOOL), logs]))
    assert message.startswith("S3 bucket 'logs' has no bucket-level public access block")


def test_a_stack_without_buckets_is_not_applicable(policy_not_applicable: Any) -> None:
    resources = [res("aws:sns/topic:Topic", "alarms", {"name": "alarms"})]
    assert any(na["rule"] == RULE and "no S3 bucket" in na["reason"] for na in policy_not_applicable(resources))
