"""Least privilege in the compute layer: each service's execution role pulls its own image, writes its own
log group and reads its own secret; its task role holds only what the service calls; no wildcard action
and no managed policy anywhere."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.components.compute_iam import ECR_PULL_ACTIONS, LOG_WRITE_ACTIONS
from shared.envs import load_env
from tests.iam_eval import allows
from tests.layers.compute_helpers import (
    ENVS,
    KEY,
    LOG_GROUP,
    REPOSITORY,
    ROLE,
    ROLE_POLICY,
    actions,
    as_list,
    fresh,
    platform,
    statements,
    task_policy,
    unit,
)
from tests.synth_helpers import by_name, of_type

SERVICES = load_catalog().names()
#: a task role's statements and actions on the model-artifact bucket and its key, per catalog `artifacts`
ARTIFACT_SIDS = {"read": {"ListArtifacts", "ReadArtifacts", "ArtifactKeyThroughS3"},
                 "write": {"ListArtifacts", "ReadArtifacts", "WriteOwnArtifacts", "ArtifactKeyThroughS3"}}
ARTIFACT_ACTIONS = {"read": {"s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"},
                    "write": {"s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject",
                              "s3:AbortMultipartUpload", "kms:Decrypt", "kms:GenerateDataKey"}}

#: ... and for a handoff (README, "Model artifacts"): a publisher puts under its own <service>/handoff/, a consumer gets
#: under those of the publishers whose keys it binds
HANDOFF_WRITE_SIDS = {"WriteOwnHandoffs", "ArtifactKeyThroughS3"}
HANDOFF_READ_SIDS = {"ReadConsumedHandoffs", "ArtifactKeyThroughS3"}
HANDOFF_WRITE_ACTIONS = {"s3:PutObject", "s3:AbortMultipartUpload", "kms:Decrypt", "kms:GenerateDataKey"}
HANDOFF_READ_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"}


def bucket_sids(spec: Any) -> set[str]:
    """The Sids of a service's grants on the artifact bucket: its catalog ``artifacts`` and its handoffs."""
    return (ARTIFACT_SIDS[spec.artifacts] if spec.artifacts else set()) | (
        HANDOFF_WRITE_SIDS if spec.publishes else set()) | (
        HANDOFF_READ_SIDS if load_catalog().handoff_sources(spec.name) else set())


def bucket_actions(spec: Any) -> set[str]:
    return (ARTIFACT_ACTIONS[spec.artifacts] if spec.artifacts else set()) | (
        HANDOFF_WRITE_ACTIONS if spec.publishes else set()) | (
        HANDOFF_READ_ACTIONS if load_catalog().handoff_sources(spec.name) else set())


def arn_of(doc: dict[str, Any], type_: str, physical: str) -> str:
    """The mocked ARN the engine hands the program for a resource (deterministic, see synth mocks)."""
    account = doc["outputs"]["cluster_arn"].split(":")[4]
    if type_ == REPOSITORY:
        return f"arn:aws:ecr:eu-west-1:{account}:repository/{physical}"
    assert type_ == LOG_GROUP
    return f"arn:aws:logs:eu-west-1:{account}:log-group:{physical}"


def every_policy_statement(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for resource in of_type(doc, ROLE_POLICY) + of_type(doc, KEY):
        found.extend(statements(resource))
    for role in of_type(doc, ROLE):
        found.extend(statements(role, "assumeRolePolicy"))
    return found


@pytest.mark.parametrize("env", ENVS)
def test_no_statement_allows_a_wildcard_action_and_no_managed_policy_is_attached(env: str) -> None:
    doc = platform(env)["compute"]
    for statement in every_policy_statement(doc):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*") and "*" not in action, statement
    assert not [r for r in doc["resources"] if r["type"] in (
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment",
        "aws:iam/policy:Policy")]
    assert all("managedPolicyArns" not in role["inputs"] for role in of_type(doc, ROLE))


@pytest.mark.parametrize("env", ENVS)
def test_execution_roles_reach_only_their_own_repository_and_log_group(env: str) -> None:
    doc = platform(env)["compute"]
    for service in SERVICES:
        resources = unit(doc, service)
        by_sid = {s["Sid"]: s for s in statements(resources["execution_policy"])}
        assert set(by_sid) == {"EcrLogin", "PullOwnImage", "WriteOwnLogs", "ReadOwnSecrets",
                               "DecryptOwnSecretsThroughSecretsManager"}
        # GetAuthorizationToken has no resource-level permission: "*" as resource, never as action.
        assert (by_sid["EcrLogin"]["Action"], by_sid["EcrLogin"]["Resource"]) == ("ecr:GetAuthorizationToken", "*")
        repo = by_name(doc, REPOSITORY, f"{service}-repo")["inputs"]["name"]
        assert sorted(by_sid["PullOwnImage"]["Action"]) == sorted(ECR_PULL_ACTIONS)
        assert by_sid["PullOwnImage"]["Resource"] == arn_of(doc, REPOSITORY, repo)
        log_arn = arn_of(doc, LOG_GROUP, resources["log_group"]["inputs"]["name"])
        assert sorted(by_sid["WriteOwnLogs"]["Action"]) == sorted(LOG_WRITE_ACTIONS)
        assert by_sid["WriteOwnLogs"]["Resource"] == [log_arn, f"{log_arn}:log-stream:*"]
        assert actions(resources["execution_policy"]) == {
            "ecr:GetAuthorizationToken", *ECR_PULL_ACTIONS, *LOG_WRITE_ACTIONS, "secretsmanager:GetSecretValue",
            "kms:Decrypt"}
        # kms:Decrypt only as Secrets Manager's caller, and only for the data keys of its own secret's values
        # (Secrets Manager sends the secret's ARN as the encryption context's SecretARN)
        own = by_sid["ReadOwnSecrets"]["Resource"]
        assert by_sid["DecryptOwnSecretsThroughSecretsManager"]["Condition"] == {
            "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                             "kms:EncryptionContext:SecretARN": own}}


@pytest.mark.parametrize("env", ENVS)
def test_an_execution_role_decrypts_its_own_secret_and_no_other_services(env: str) -> None:
    """Evaluated as IAM would: the Decrypt Secrets Manager makes while serving the role its own secret is allowed;
    one for another service's secret (were the role ever granted its GetSecretValue) or made directly is not."""
    doc = platform(env)["compute"]
    secrets = platform(env)["messaging"]["outputs"]["service_secret_arns"]
    config = load_env(env)
    key = f"arn:aws:kms:{config.region}:{config.account_id}:key/3aff743b-0000-0000-0000-000000000000"
    via = {"kms:ViaService": f"secretsmanager.{config.region}.amazonaws.com"}
    checked = 0
    for service in SERVICES:
        if service not in secrets:
            continue
        policy = statements(unit(doc, service)["execution_policy"])
        assert allows(policy, "kms:Decrypt", key, {**via, "kms:EncryptionContext:SecretARN": secrets[service]})
        assert not allows(policy, "kms:Decrypt", key, {"kms:EncryptionContext:SecretARN": secrets[service]})
        for other, arn in secrets.items():
            if other != service:
                assert not allows(policy, "kms:Decrypt", key, {**via, "kms:EncryptionContext:SecretARN": arn})
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("env", ENVS)
def test_task_roles_may_discover_services_only_where_the_service_calls_others(env: str) -> None:
    docs = platform(env)
    discovery = docs["discovery"]["outputs"]
    for spec in load_catalog():
        policy = task_policy(docs["compute"], spec.name)
        if not spec.calls and not spec.consumes and not bucket_sids(spec):
            # Service Connect needs no task permissions: nothing for a service that calls, consumes and stores
            # nothing.
            assert policy is None, spec.name
            continue
        assert policy is not None
        by_sid = {statement["Sid"]: statement for statement in statements(policy)}
        assert set(by_sid) == ({"DiscoverPlatformServices"} if spec.calls else set()) | (
            {"ProtectOwnTaskFromScaleIn"} if spec.consumes else set()) | (
            bucket_sids(spec)), spec.name
        if spec.calls:
            statement = by_sid["DiscoverPlatformServices"]
            assert statement["Action"] == "servicediscovery:DiscoverInstances"
            assert statement["Condition"] == {"StringEquals": {"servicediscovery:NamespaceName": sorted(
                [discovery["private_namespace_name"], discovery["http_namespace_name"]])}}


@pytest.mark.parametrize("env", ENVS)
def test_consumers_may_set_scale_in_protection_of_their_own_services_tasks_only(env: str) -> None:
    """The task ARN does not name the service, so the grant is held to the cluster by its ARN and to the
    service's own tasks by the tags the ECS service propagates to them (the actions' aws:ResourceTag key)."""
    docs = platform(env)
    cluster = docs["compute"]["outputs"]["cluster_name"]
    consumers = [spec for spec in load_catalog() if spec.consumes]
    assert "training" in {spec.name for spec in consumers}
    for spec in consumers:
        policy = task_policy(docs["compute"], spec.name)
        assert policy is not None
        (statement,) = [s for s in statements(policy) if s["Sid"] == "ProtectOwnTaskFromScaleIn"]
        # What the ECS agent calls with the task role when the app uses $ECS_AGENT_URI/task-protection/v1/state.
        assert statement["Action"] == ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
        assert statement["Effect"] == "Allow"
        assert re.fullmatch(rf"arn:aws:ecs:eu-west-1:\d{{12}}:task/{cluster}/\*", statement["Resource"])
        service = unit(docs["compute"], spec.name)["service"]["inputs"]
        # the tasks carry the service's tags, and the grant names exactly those of this (non-canary) unit
        assert service["propagateTags"] == "SERVICE"
        assert service["tags"] == {"service": spec.name}
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/service": spec.name},
                                          "Null": {"aws:ResourceTag/version": "true"}}


@pytest.mark.parametrize("env", ENVS)
def test_tasks_start_only_once_both_roles_hold_their_statements(env: str) -> None:
    """ECS starts a task with the execution role's permissions and the application calls AWS with the task
    role's from its first second: the task definition (hence the service) waits for both role policies."""
    doc = platform(env)["compute"]
    for spec in load_catalog():
        resources = unit(doc, spec.name)
        waits_for = set(resources["task"]["dependencies"])
        assert resources["execution_policy"]["urn"] in waits_for, spec.name
        policy = task_policy(doc, spec.name)
        assert policy is None or policy["urn"] in waits_for, spec.name
        assert resources["task"]["urn"] in resources["service"]["dependencies"], spec.name


def test_task_roles_trust_only_this_accounts_ecs_tasks() -> None:
    doc = platform("prod")["compute"]
    for service in SERVICES:
        (trust,) = statements(unit(doc, service)["task_role"], "assumeRolePolicy")
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "333333333333"},
                                      "ArnLike": {"aws:SourceArn": "arn:aws:ecs:eu-west-1:333333333333:*"}}


def test_appmesh_task_roles_add_only_their_envoy_node(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    doc = fresh("dev")["compute"]
    for spec in load_catalog():
        policy = task_policy(doc, spec.name)
        assert policy is not None
        expected = {"appmesh:StreamAggregatedResources"} | ({"servicediscovery:DiscoverInstances"} if spec.calls
                                                           else set()) | (
            {"ecs:GetTaskProtection", "ecs:UpdateTaskProtection"} if spec.consumes else set()) | (
            bucket_actions(spec))
        assert actions(policy) == expected


def test_key_policies_let_the_account_administer_through_iam_and_logs_use_only_the_logs_key() -> None:
    doc = platform("prod")["compute"]
    keys = {k["name"]: k for k in of_type(doc, KEY)}
    assert set(keys) == {"compute-ecr", "compute-logs", "compute-artifacts"}
    for key in keys.values():
        assert key["inputs"]["enableKeyRotation"] is True
        admin = statements(key)[0]
        assert admin["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"}
        assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"} <= set(admin["Action"])
    services = {s.get("Principal", {}).get("Service") for k in keys.values() for s in statements(k)}
    assert services == {None, "logs.eu-west-1.amazonaws.com"}
    assert len(statements(keys["compute-ecr"])) == len(statements(keys["compute-artifacts"])) == 1
