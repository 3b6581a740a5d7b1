"""``s3-bucket-access-logging`` through the real pack: every S3 bucket of the stack has server access logging unless
another bucket's logging writes to it (Security Hub S3.9) -- compliant, non-compliant and unknown at preview (the
platform's buckets in every env, and a public gateway's access-log bucket: tests/layers/test_artifacts.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import BUCKET
from tests.policies.tokens import BUCKET_LOGGING as LOGGING
from tests.synth_helpers import gateway_certificate

RULE = "s3-bucket-access-logging"


def bucket(name: str, **inputs: Any) -> dict[str, Any]:
    return res(BUCKET, name, {"bucket": name, **inputs})


def logging(source: dict[str, Any], target: dict[str, Any] | str) -> dict[str, Any]:
    """``source``'s BucketLogging into ``target`` (a bucket of the stack, or a name of another stack's bucket)."""
    target_name = target if isinstance(target, str) else target["inputs"]["bucket"]
    dependencies = [source] if isinstance(target, str) else [source, target]
    property_dependencies: dict[str, list[dict[str, Any]]] = {"bucket": [source]}
    if not isinstance(target, str):
        property_dependencies["targetBucket"] = [target]
    return res(LOGGING, source["name"], {"bucket": source["inputs"]["bucket"], "targetBucket": target_name,
                                         "targetPrefix": "s3-access-logs/"},
               dependencies=dependencies, property_dependencies=property_dependencies)


def findings_of(policy_findings: Any, resources: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in policy_findings(resources) if f["rule"] == RULE]


def test_a_logged_bucket_and_its_log_target_pass(policy_findings: Any) -> None:
    models, logs, alb = bucket("models"), bucket("logs"), bucket("alb-logs")
    assert findings_of(policy_findings, [models, logs, alb, logging(models, logs), logging(alb, logs)]) == []
    # logging into another stack's bucket, or declared on the bucket itself
    inline = bucket("inline", logging={"targetBucket": "central-logs", "targetPrefix": "inline/"})
    assert findings_of(policy_findings, [models, logging(models, "central-logs"), inline]) == []


@pytest.mark.parametrize("resources", [
    lambda: [bucket("alb-logs")],
    lambda: [bucket("alb-logs"), bucket("logs"), logging(bucket("logs"), "central-logs")],
], ids=["alone", "next-to-a-logged-bucket"])
def test_a_bucket_without_logging_that_no_logging_targets_fails(policy_findings: Any, resources: Any) -> None:
    (message,) = findings_of(policy_findings, resources())
    assert message.startswith("S3 bucket 'alb-logs' has no server access logging") and "BucketLogging" in message


def test_a_logging_unknown_at_preview_leaves_the_bucket_undecided(policy_findings: Any,
                                                                  policy_not_applicable: Any) -> None:
    inline = [bucket("models", logging={"targetBucket": UNKNOWN_STRING})]
    assert findings_of(policy_findings, inline) == []
    assert [na["reason"] for na in policy_not_applicable(inline) if na["rule"] == RULE] == [
        "every S3 bucket's logging is unknown until deployment"]
    # a logging whose target cannot be told may be the other bucket's: undecided, not failed
    models, logs = bucket("models"), bucket("logs")
    unknown_target = res(LOGGING, "models", {"bucket": "models", "targetBucket": UNKNOWN_STRING},
                         property_dependencies={"bucket": [models]})
    assert findings_of(policy_findings, [models, logs, unknown_target]) == []


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_platforms_buckets_pass_with_and_without_a_public_gateway(rule_outcome: Any, edit_env: Any,
                                                                      env: str) -> None:
    from shared.synth.engine import synth_env
    from tests.policies.resources import snapshot_document

    assert rule_outcome(RULE, env, snapshot_document(env, "compute")) == ([], [])
    edit_env(env, lambda data: data["compute"].update(
        public_gateway=True, certificate_arn=gateway_certificate(env, "gateway")))
    assert rule_outcome(RULE, env, synth_env(env, ["compute"])["compute"]) == ([], [])


def test_a_public_gateway_without_an_artifact_store_is_flagged(rule_outcome: Any, edit_env: Any,
                                                              tmp_path: Any, monkeypatch: Any) -> None:
    import yaml

    from shared.catalog import CATALOG_ENV_VAR
    from shared.synth.engine import synth_env
    from tests.spec_envs import SPEC_CATALOG

    data = yaml.safe_load(SPEC_CATALOG.read_text())
    for spec in data["services"].values():  # no artifacts and no publisher (whose handoffs keep the store)
        for key in ("artifacts", "publishes", "consumes", "max_job_seconds"):
            spec.pop(key, None)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(tmp_path / "catalog.yaml"))
    edit_env("dev", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/gateway"))
    findings, _ = rule_outcome(RULE, "dev", synth_env("dev", ["compute"])["compute"])
    assert [f["message"].split(":")[0] for f in findings] == [
        "S3 bucket 'gateway-alb-logs' has no server access logging"]


def test_a_bucket_v2_with_inline_loggings_passes(policy_findings: Any) -> None:
    # aws.s3.BucketV2 declares its logging as a list, ``loggings`` (pulumi_aws s3/bucket_v2.py), not ``logging``
    v2 = res("aws:s3/bucketV2:BucketV2", "v2", {"bucket": "v2", "loggings": [
        {"targetBucket": "central-logs", "targetPrefix": "v2/"}]})
    assert findings_of(policy_findings, [v2]) == []
    (message,) = findings_of(policy_findings, [res("aws:s3/bucketV2:BucketV2", "v2", {"bucket": "v2"})])
    assert message.startswith("S3 bucket 'v2' has no server access logging")


def test_the_target_of_a_buckets_inline_logging_is_exempt(policy_findings: Any) -> None:
    # as the target of a BucketLogging is: a log target does not log its own log writes
    logs = bucket("logs")
    models = bucket("models", logging={"targetBucket": "logs", "targetPrefix": "models/"})
    assert findings_of(policy_findings, [models, logs]) == []
    # while that target is unknown (a new bucket's id at preview), the unlogged bucket may be it: undecided
    models = bucket("models", logging={"targetBucket": UNKNOWN_STRING, "targetPrefix": "models/"})
    assert findings_of(policy_findings, [models, logs]) == []
