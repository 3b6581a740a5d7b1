"""Policy rule ``stateful-no-force-destroy`` through the real pack process: each resource type's flag, unknown at
preview, the levels per baseline, and the shipped envs' buckets and repositories (the snapshots)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy.enforcement import enforcement_for
from tests.policies.resources import UNKNOWN_BOOL, res
from tests.policies.tokens import BUCKET, CLOUDMAP_SERVICE, REPO

RULE = "stateful-no-force-destroy"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"

#: Each resource type the rule checks, with its flag as sent and as the Python SDK names it.
FLAGS = [(BUCKET, "forceDestroy", "force_destroy"), (BUCKET_V2, "forceDestroy", "force_destroy"),
         (REPO, "forceDelete", "force_delete"), (CLOUDMAP_SERVICE, "forceDestroy", "force_destroy")]
TYPE_IDS = [type_.split(":")[1] for type_, _, _ in FLAGS]


def judged(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize(("type_", "setting", "python_name"), FLAGS, ids=TYPE_IDS)
@pytest.mark.parametrize("value", [None, False, "false"], ids=["unset", "false", "false-string"])
def test_a_delete_that_stops_at_the_data_passes(policy_findings: Any, type_: str, setting: str, python_name: str,
                                               value: Any) -> None:
    inputs = {} if value is None else {setting: value}
    assert judged(policy_findings([res(type_, "r", inputs)], env="prod")) == []


@pytest.mark.parametrize(("type_", "setting", "python_name"), FLAGS, ids=TYPE_IDS)
@pytest.mark.parametrize("value", [True, "true"], ids=["true", "true-string"])  # bridged providers accept both
def test_a_delete_that_takes_the_data_fails_in_prod(policy_findings: Any, type_: str, setting: str,
                                                   python_name: str, value: Any) -> None:
    [finding] = judged(policy_findings([res(type_, "r", {setting: value})], env="prod"))
    assert finding["enforcement"] == "mandatory"
    assert f"{python_name}=True" in finding["message"] and f"leave {python_name} unset" in finding["message"]


@pytest.mark.parametrize(("type_", "setting", "python_name"), FLAGS, ids=TYPE_IDS)
def test_an_unknown_flag_is_decided_at_up(policy_result: Any, type_: str, setting: str, python_name: str) -> None:
    result = policy_result([res(type_, "r", {setting: UNKNOWN_BOOL})], env="prod")
    assert not [f for f in result.findings if f.rule == RULE]
    reasons = [na.reason for na in result.not_applicable if na.rule == RULE]
    assert reasons and any(f"'r': {setting}" in reason for reason in reasons), reasons


def test_the_other_flag_name_does_not_count(policy_findings: Any) -> None:
    # a repository's flag is forceDelete, a bucket's forceDestroy: the other name is no input of the type
    resources = [res(REPO, "r", {"forceDestroy": True}), res(BUCKET, "b", {"forceDelete": True})]
    assert judged(policy_findings(resources, env="prod")) == []


def test_envs_that_destroy_their_data_on_purpose_are_not_held_to_it(policy_findings: Any) -> None:
    assert {env: enforcement_for(env).levels[RULE] for env in ("dev", "staging", "prod")} == {
        "dev": "disabled", "staging": "disabled", "prod": "mandatory"}
    assert judged(policy_findings([res(BUCKET, "r", {"forceDestroy": True})], env="dev")) == []


def test_the_shipped_prod_passes_and_dev_and_staging_force_their_destroy(policy_engine: Any) -> None:
    from shared.policy.engine import evaluate_documents_result

    def compute(env: str) -> dict[str, Any]:
        from tests.synth_helpers import spec_document

        return spec_document(env, "compute")

    prod = compute("prod")
    result = evaluate_documents_result([prod], env_name="prod", engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert [na.reason for na in result.not_applicable if na.rule == RULE
            and "is not a resource type this rule checks" not in na.reason] == []
    checked = [r for r in prod["resources"] if r["type"] in (BUCKET, REPO)]
    assert {r["type"] for r in checked} == {BUCKET, REPO}
    # dev and staging set the buckets' force_destroy (their destroy deletes the models and logs); the repositories
    # keep force_delete off everywhere (a destroy refuses while one holds images: shared.images)
    for env in ("dev", "staging"):
        buckets = [r for r in compute(env)["resources"] if r["type"] == BUCKET]
        assert buckets and all(r["inputs"].get("forceDestroy") is True for r in buckets), env
