"""The broker's log group gets the env's retention (and KMS) whichever side of the race created it:
Amazon MQ while creating the broker, or the platform (boto3 flows on moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.components import broker_logs
from shared.components.broker_logs import BrokerLogGroupProvider, ensure_log_group
from shared.envs import load_env
from shared.policy_support import arn_like
from shared.synth.engine import synth_env
from tests.synth_helpers import of_type

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
NAME = "/aws/amazonmq/broker/b-1234a5b6-78cd-901e-2fgh-3i45j6k178l9/general"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
DYNAMIC = "pulumi-python:dynamic:Resource"


class KmsRecordingLogs:
    """moto's CloudWatch Logs client, plus the KMS association calls moto does not implement."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.associated: list[tuple[str, str]] = []
        self.disassociated: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def associate_kms_key(self, *, logGroupName: str, kmsKeyId: str) -> None:
        self.associated.append((logGroupName, kmsKeyId))

    def disassociate_kms_key(self, *, logGroupName: str) -> None:
        self.disassociated.append(logGroupName)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[KmsRecordingLogs]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        logs = KmsRecordingLogs(boto3.client("logs", region_name=REGION))
        sts = boto3.client("sts", region_name=REGION)
        monkeypatch.setattr(broker_logs, "_client", lambda service, region: logs if service == "logs" else sts)
        yield logs


def log_group_resources(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The broker layer's dynamic resources that manage a log group (beside it: the rotation function's ENI drain)."""
    return [resource for resource in of_type(document, DYNAMIC) if "log_group_name" in resource["inputs"]]


def props(**overrides: Any) -> dict[str, Any]:
    return {"log_group_name": NAME, "region": REGION, "account_id": ACCOUNT, "retention_in_days": 30,
            "kms_key_arn": None, **overrides}


def group(logs: KmsRecordingLogs) -> dict[str, Any]:
    (found,) = logs.describe_log_groups(logGroupNamePrefix=NAME)["logGroups"]
    return dict(found)


def test_amazon_mq_created_the_group_first_it_is_adopted_and_gets_retention_and_kms(aws: KmsRecordingLogs) -> None:
    aws.create_log_group(logGroupName=NAME)  # what Amazon MQ does while it creates the broker
    assert "retentionInDays" not in group(aws)
    outs = ensure_log_group(props(kms_key_arn=KEY))
    assert outs["adopted"] is True and outs["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{NAME}"
    assert group(aws)["retentionInDays"] == 30
    assert aws.associated == [(NAME, KEY)]


def test_the_platform_first_creates_the_group_with_retention_and_kms(aws: KmsRecordingLogs) -> None:
    outs = ensure_log_group(props(kms_key_arn=KEY, retention_in_days=365))
    assert outs["adopted"] is False
    found = group(aws)
    assert found["retentionInDays"] == 365 and found.get("kmsKeyId") == KEY
    assert aws.associated == [], "created with the key, nothing to associate"


def test_another_accounts_credentials_touch_nothing(aws: KmsRecordingLogs) -> None:
    with pytest.raises(RuntimeError, match="111111111111"):
        ensure_log_group(props(account_id="111111111111"))
    assert aws.describe_log_groups(logGroupNamePrefix=NAME)["logGroups"] == []


def test_a_second_up_with_no_change_changes_nothing_and_a_retention_change_updates_in_place(
        aws: KmsRecordingLogs) -> None:
    provider = BrokerLogGroupProvider()
    created = provider.create(props())
    assert created.id == NAME
    same = provider.diff(NAME, dict(created.outs or {}), props())
    assert same.changes is False and same.replaces == []
    changed = provider.diff(NAME, dict(created.outs or {}), props(retention_in_days=90))
    assert changed.changes is True and changed.replaces == []
    provider.update(NAME, dict(created.outs or {}), props(retention_in_days=90))
    assert group(aws)["retentionInDays"] == 90
    moved = provider.diff(NAME, dict(created.outs or {}), props(log_group_name=NAME.replace("b-1", "b-2")))
    assert moved.replaces == ["log_group_name"], "a new broker (new id) gets its own group"
    provider.delete(NAME, dict(created.outs or {}))
    assert group(aws)["retentionInDays"] == 90, "kept on delete: retention expires it"


@pytest.mark.parametrize(("env", "encrypted"), [("dev", True), ("prod", True)])  # every env file encrypts logs
def test_the_broker_layer_manages_the_brokers_own_log_group(env: str, encrypted: bool) -> None:
    document = synth_env(env, ["broker"])["broker"]
    (resource,) = log_group_resources(document)
    (broker,) = of_type(document, "aws:mq/broker:Broker")
    inputs = resource["inputs"]
    assert inputs["log_group_name"] == f"/aws/amazonmq/broker/{document['outputs']['broker_id']}/general"
    assert inputs["log_group_name"] == document["outputs"]["broker_log_group_name"]
    assert inputs["retention_in_days"] == load_env(env).messaging.broker_log_retention_days
    assert broker["urn"] in resource["dependencies"]
    # Never protected: its delete keeps the group (retention expires it), so no data goes with it; and
    # protect follows the resource type alone (shared.protect), which is a dynamic resource here.
    assert resource["protect"] is False
    assert ("kms_key_arn" in inputs) is encrypted
    if encrypted:
        (key,) = [k for k in of_type(document, "aws:kms/key:Key") if k["name"] == "broker-logs"]
        condition = json.loads(key["inputs"]["policy"])["Statement"][1]["Condition"]["ArnLike"]
        group_arn = f"arn:aws:logs:{REGION}:{load_env(env).account_id}:log-group:{inputs['log_group_name']}"
        assert arn_like(condition["kms:EncryptionContext:aws:logs:arn"], group_arn)
        assert key["protect"] is load_env(env).protect


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_broker_logs_key_still_serves_the_group_of_a_replaced_broker(env: str) -> None:
    """A new broker (messaging.deployment_mode or engine_type changed, or a lost broker re-created) has a new id,
    so a new group; the old group is kept with the events it holds, encrypted with the same key. CloudWatch Logs
    needs the key for every read of them (pulumi_aws LogGroup kms_key_id: "AWS CloudWatch Logs requires
    permissions for the CMK whenever the encrypted data is requested"), so the key's policy may not name one
    broker's group only: rewritten for the new broker, the old broker's last logs would be unreadable."""
    document = synth_env(env, ["broker"])["broker"]
    (key,) = [k for k in of_type(document, "aws:kms/key:Key") if k["name"] == "broker-logs"]
    (broker,) = of_type(document, "aws:mq/broker:Broker")
    statements = [s for s in json.loads(key["inputs"]["policy"])["Statement"]
                  if s.get("Principal") == {"Service": f"logs.{REGION}.amazonaws.com"}]
    (pattern,) = [s["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] for s in statements]
    account = load_env(env).account_id
    current = f"arn:aws:logs:{REGION}:{account}:log-group:{document['outputs']['broker_log_group_name']}"
    replaced = f"arn:aws:logs:{REGION}:{account}:log-group:{NAME}"
    assert arn_like(pattern, current) and arn_like(pattern, replaced)
    for other in (f"arn:aws:logs:{REGION}:{account}:log-group:/platform/{env}/compute/training",
                  f"arn:aws:logs:{REGION}:999999999999:log-group:{NAME}"):
        assert not arn_like(pattern, other), f"{pattern} is for this account's broker groups only, not {other}"
    # and so the key no longer waits for the broker on the first up, nor changes when it is replaced
    assert broker["urn"] not in key["dependencies"]


# -- tags: the provider's default tags never reach a dynamic resource ------------------------------------------------

TAGS = {"env": "dev", "layer": "broker", "team": "ml-platform", "cost-center": "cc-1", "managed-by": "pulumi"}


def tags_of(logs: KmsRecordingLogs) -> dict[str, str]:
    return dict(logs.list_tags_for_resource(resourceArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{NAME}")["tags"])


def test_the_platform_creates_the_group_with_the_envs_tags(aws: KmsRecordingLogs) -> None:
    """An organisation SCP or tag policy that requires the env's tags on logs:CreateLogGroup (aws:RequestTag), and the
    cost allocation by team and cost-center, see only the tags sent with the create (botocore logs
    CreateLogGroupRequest.tags; the AWS provider's default_tags reach the provider's own resources only)."""
    ensure_log_group(props(tags=TAGS))
    assert tags_of(aws) == TAGS


def test_a_group_amazon_mq_created_is_tagged_when_adopted(aws: KmsRecordingLogs) -> None:
    aws.create_log_group(logGroupName=NAME)  # Amazon MQ's create carries no tag
    ensure_log_group(props(tags=TAGS))
    assert tags_of(aws) == TAGS


def test_a_tag_change_retags_the_group_in_place(aws: KmsRecordingLogs) -> None:
    """A later `up` after a change of the env's `tags`: the keys added or changed are tagged, the keys gone are
    untagged, and the group is never replaced (its logs stay)."""
    provider = BrokerLogGroupProvider()
    created = provider.create(props(tags={**TAGS, "owner": "alice"}))
    changed = {**TAGS, "team": "ml-infra"}
    diff = provider.diff(NAME, dict(created.outs or {}), props(tags=changed))
    assert diff.changes is True and diff.replaces == []
    provider.update(NAME, dict(created.outs or {}), props(tags=changed))
    assert tags_of(aws) == changed
    # a group of before this change (its state holds no tags) is tagged by the next up, in place
    old = {key: value for key, value in (created.outs or {}).items() if key != "tags"}
    diff = provider.diff(NAME, old, props(tags=TAGS))
    assert diff.changes is True and diff.replaces == []


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_broker_layers_log_group_carries_the_layers_default_tags(env: str) -> None:
    document = synth_env(env, ["broker"])["broker"]
    (resource,) = log_group_resources(document)
    (provider,) = of_type(document, "pulumi:providers:aws")
    default = provider["inputs"]["defaultTags"]
    assert resource["inputs"]["tags"] == (json.loads(default) if isinstance(default, str) else default)["tags"]
