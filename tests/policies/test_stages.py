"""What the offline engine sends the packs in each stage of a real run (shared.policy.stages), and that the shipped
envs are judged alike in all of them."""

from __future__ import annotations

from typing import Any

import pytest

from shared.envs import env_names
from shared.errors import ConfigError
from shared.policy.engine import PolicyEngine, evaluate_envs, validate_document
from shared.policy.stages import STAGES, deployed_outputs, first_preview, stage_properties, unknown_like
from shared.policy_support import is_unknown
from tests.policies.resources import document, res, snapshot_document
from tests.policies.stages import stage_differences
from tests.spec_envs import USER_ENV_DIR, user_envs

VPC_URN = "urn:pulumi:dev::network::mlplatform:network:VpcNetwork$aws:ec2/vpc:Vpc::network-vpc"
FLOW_LOG_URN = "urn:pulumi:dev::network::aws:ec2/vpc:Vpc$aws:ec2/flowLog:FlowLog::network-flow-log"


def test_deployed_outputs_hold_the_ids_and_arns_the_synth_gave_the_dependent_resources() -> None:
    network = snapshot_document("dev", "network")
    outputs = deployed_outputs(network)
    flow_log = next(r for r in network["resources"] if r["urn"] == FLOW_LOG_URN)
    assert flow_log["inputs"]["vpcId"] == outputs[VPC_URN]["id"]
    role = flow_log["property_dependencies"]["iamRoleArn"][0]
    assert flow_log["inputs"]["iamRoleArn"] == outputs[role]["arn"]
    assert outputs[VPC_URN]["cidrBlock"] == "10.10.0.0/16"  # the inputs are echoed
    assert outputs[VPC_URN]["tagsAll"] == {"Name": "dev-vpc"}


def test_an_up_sends_analyze_the_inputs_and_analyze_stack_the_outputs() -> None:
    network = snapshot_document("dev", "network")
    analyzed, stacked = stage_properties(network, "up")
    vpc = next(r for r in network["resources"] if r["urn"] == VPC_URN)
    assert analyzed[VPC_URN] == vpc["inputs"]
    assert "id" in stacked[VPC_URN] and "defaultSecurityGroupId" in stacked[VPC_URN]
    offline = stage_properties(network, "offline")
    assert offline[0] == offline[1] == {r["urn"]: r["inputs"] for r in network["resources"]}


def test_a_first_preview_leaves_what_aws_computes_unknown_and_every_input_built_from_it() -> None:
    network = snapshot_document("dev", "network")
    analyzed, stacked = stage_properties(network, "first-preview")
    assert is_unknown(stacked[VPC_URN]["id"]) and is_unknown(stacked[VPC_URN]["arn"])
    assert stacked[VPC_URN]["cidrBlock"] == "10.10.0.0/16"
    for key in ("vpcId", "iamRoleArn", "logDestination"):  # a VPC's id, a role's and a log group's ARNs
        assert is_unknown(analyzed[FLOW_LOG_URN][key]) and is_unknown(stacked[FLOW_LOG_URN][key]), key
    assert analyzed[FLOW_LOG_URN]["trafficType"] == "ALL"


def test_an_autoname_stays_known_in_a_first_preview_and_so_does_an_input_built_from_a_known_output() -> None:
    user = res("rabbitmq:index/user:User", "svc", {"name": "svc", "password": "x" * 20, "tags": []})
    doc = document([user])
    user_urn = doc["resources"][0]["urn"]
    permissions = res("rabbitmq:index/permissions:Permissions", "svc-perms",
                      {"user": "svc", "vhost": "ml", "permissions": {"read": ".*", "write": "", "configure": ""}},
                      property_dependencies={"user": [user]})
    bucket = res("aws:s3/bucketV2:BucketV2", "data", {})
    doc = document([user, permissions, bucket])
    analyzed, stacked = first_preview(doc, deployed_outputs(doc))
    by_name = {r["name"]: r["urn"] for r in doc["resources"]}
    assert analyzed[by_name["svc-perms"]]["user"] == "svc"  # the user's id is its name, which is known
    assert not is_unknown(stacked[by_name["data"]]["bucket"])  # the provider's Check picks the autoname
    assert is_unknown(stacked[by_name["data"]]["arn"])
    assert user_urn in stacked


def test_tags_built_from_an_unknown_make_tags_all_unknown_in_a_first_preview() -> None:
    """The plan merges the provider's default tags into the resource's own: tagsAll is known only where tags is."""
    role = res("aws:iam/role:Role", "task", {"assumeRolePolicy": "{}"})
    arn = deployed_outputs(document([role]))[document([role])["resources"][0]["urn"]]["arn"]
    tagged = res("aws:s3/bucketV2:BucketV2", "data", {"tags": {"owner": arn}}, property_dependencies={"tags": [role]})
    plain = res("aws:s3/bucketV2:BucketV2", "logs", {"tags": {"owner": "ml"}})
    doc = document([role, tagged, plain])
    analyzed, stacked = first_preview(doc, deployed_outputs(doc))
    by_name = {r["name"]: r["urn"] for r in doc["resources"]}
    assert is_unknown(analyzed[by_name["data"]]["tags"]) and is_unknown(stacked[by_name["data"]]["tagsAll"])
    assert stacked[by_name["logs"]]["tagsAll"] == {"owner": "ml"}


@pytest.mark.parametrize(("value", "kind"), [("a", "04da6b54"), (1, "3eeb2bf0"), (True, "1c4a061d"),
                                             ([1], "6a19a0b0"), ({"a": 1}, "dd056dcd")])
def test_an_unknown_has_the_sentinel_of_its_kind(value: Any, kind: str) -> None:
    assert unknown_like(value).startswith(kind)


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="one of offline, up, first-preview"):
        stage_properties(document([]), "apply")
    assert STAGES == ("offline", "up", "first-preview")


def test_two_resources_of_one_urn_are_refused_as_no_engine_would_take_them() -> None:
    doc = document([res("aws:s3/bucketV2:BucketV2", "data", {}), res("aws:s3/bucketV2:BucketV2", "data", {})])
    with pytest.raises(ConfigError, match=r"resources\.1\.urn: .* is also resources\.0's"):
        validate_document(doc)


def test_the_shipped_envs_are_judged_alike_offline_in_an_up_and_in_a_first_preview(
        policy_engine: PolicyEngine) -> None:
    envs = env_names(USER_ENV_DIR)  # the env files that deploy (CI's `nox -s policy` judges them offline only)
    with user_envs():
        offline = evaluate_envs(envs, engine=policy_engine)
        for stage in ("up", "first-preview"):
            staged = evaluate_envs(envs, engine=policy_engine, stage=stage)
            assert stage_differences(offline, staged, stage) == [], stage
    assert offline.documents == staged.documents == 6 * len(envs)
