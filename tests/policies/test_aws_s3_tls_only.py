"""``s3-bucket-tls-only`` through the real pack: every S3 bucket of the stack has a bucket policy that denies requests
without TLS -- compliant, non-compliant, unknown at preview, and the platform's buckets in every env."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import ENVS, fresh
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import BUCKET, BUCKET_POLICY
from tests.synth_helpers import gateway_certificate

RULE = "s3-bucket-tls-only"
CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def deny_plain_http(name: str = "models", **changes: Any) -> dict[str, Any]:
    statement = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    return {**statement, **changes}


def bucket(name: str = "models", **inputs: Any) -> dict[str, Any]:
    return res(BUCKET, name, {"bucket": name, **inputs})


def bucket_policy(target: dict[str, Any], *statements: dict[str, Any], policy: Any = None) -> dict[str, Any]:
    document = policy if policy is not None else json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return res(BUCKET_POLICY, target["name"], {"bucket": target["inputs"]["bucket"], "policy": document},
               dependencies=[target], property_dependencies={"bucket": [target]})


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_a_bucket_whose_policy_denies_plain_http_passes(policy_findings: Any) -> None:
    models, logs = bucket(), bucket("logs")
    assert messages(policy_findings([
        models, bucket_policy(models, deny_plain_http()),
        # also: the deprecated inline policy, a bucket-wide wildcard, the boolean and list spellings
        logs, bucket_policy(logs, deny_plain_http("logs", Resource="arn:aws:s3:::logs*",
                                                  Condition={"Bool": {"aws:SecureTransport": [False]}})),
        bucket("inline", policy=json.dumps({"Statement": [deny_plain_http("inline", Action=["*"])]})),
    ])) == []


def test_a_bucket_without_a_policy_fails(policy_findings: Any) -> None:
    (message,) = messages(policy_findings([bucket()]))
    assert message.startswith("S3 bucket 'models' accepts requests without TLS")
    assert "aws:SecureTransport" in message


@pytest.mark.parametrize("statement", [
    deny_plain_http(Resource="arn:aws:s3:::models"),  # objects still reachable over HTTP
    deny_plain_http(Resource="arn:aws:s3:::models/training/*"),  # only some objects, not the bucket
    deny_plain_http(Action="s3:GetObject"),  # PutObject over HTTP still allowed
    deny_plain_http(Principal={"AWS": "arn:aws:iam::111111111111:root"}),  # only some callers
    deny_plain_http(Condition={"Bool": {"aws:SecureTransport": "false"},
                               "StringEquals": {"aws:PrincipalAccount": "111111111111"}}),
    deny_plain_http(Effect="Allow"),
    deny_plain_http("other"),  # another bucket's ARN
    deny_plain_http(Condition={"Bool": {"aws:SecureTransport": "true"}}),  # denies TLS, leaves plain HTTP
], ids=["bucket-only", "one-prefix", "one-action", "one-principal", "narrowed", "allow", "other-bucket",
        "denies-tls"])
def test_a_policy_that_leaves_some_plain_http_request_through_fails(policy_findings: Any,
                                                                   statement: dict[str, Any]) -> None:
    models = bucket()
    assert len(messages(policy_findings([models, bucket_policy(models, statement)]))) == 1


def test_a_policy_unknown_at_preview_leaves_the_rule_undecided(policy_findings: Any,
                                                               policy_not_applicable: Any) -> None:
    models = bucket()
    resources = [models, bucket_policy(models, policy=UNKNOWN_STRING)]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "unknown until deployment" in reason
    # two buckets and a policy whose bucket cannot be told yet
    other = bucket("other")
    unknown_target = res(BUCKET_POLICY, "p", {"bucket": UNKNOWN_STRING, "policy": json.dumps(
        {"Statement": [deny_plain_http()]})}, dependencies=[models, other])
    (reason,) = [na["reason"] for na in policy_not_applicable([models, other, unknown_target]) if na["rule"] == RULE]
    assert "bucket policy 'p': bucket unknown until deployment" in reason


def test_a_stack_without_buckets_is_not_applicable(policy_not_applicable: Any) -> None:
    resources = [res("aws:sns/topic:Topic", "alarms", {"name": "alarms"})]
    assert any(na["rule"] == RULE and "no S3 bucket" in na["reason"] for na in policy_not_applicable(resources))


@pytest.mark.parametrize("rule", ["s3-bucket-tls-only", "s3-bucket-public-access-block", "s3-bucket-acls-disabled"])
@pytest.mark.parametrize("env", ENVS)
def test_the_platforms_buckets_pass_in_every_env(edit_env: Any, policy_engine: PolicyEngine, env: str,
                                                 rule: str) -> None:
    """The model-artifact bucket and its server-access-log bucket, and the public gateway's access-log bucket where
    an env turns it on, pass the stack rules on S3 buckets (each decides: none is left not applicable)."""
    edit_env(env, lambda data: data["compute"].update(public_gateway=True, certificate_arn=gateway_certificate(env)))
    doc = fresh(env)["compute"]
    assert {r["name"] for r in doc["resources"] if r["type"] == BUCKET} == {
        "compute-artifacts", "compute-artifacts-logs", "gateway-alb-logs"}
    result = evaluate_documents_result([doc], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == rule] == []
    assert not [na for na in result.not_applicable if na.rule == rule]
