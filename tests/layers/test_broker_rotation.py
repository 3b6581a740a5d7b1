"""Given an env, the synthesized broker and network layers rotate the broker admin's secret: a SecretRotation
every ``messaging.credentials_rotation.max_age_days`` through a rotation function in the private subnets,
with its own security group (admitted by the broker on 443 and, where the env has one, by the Secrets
Manager endpoint; HTTPS out through the NAT otherwise), a least-privilege role, its own encrypted log group
and Secrets Manager's permission to invoke it."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import pytest
from google.protobuf import json_format

from shared.components.broker_rotation import rotation_source
from shared.envs import load_env
from shared.errors import ConfigErrors
from shared.synth import engine
from shared.synth.engine import synth_env
from tests.layers.resource_types import (
    EGRESS,
    ENVS,
    FUNCTION,
    KMS_KEY,
    LOG_GROUP,
    PERMISSION,
    ROLE_POLICY,
    ROTATION,
    SG,
)
from tests.synth_helpers import by_name, by_urn, of_type


@cache
def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_env(env, ["broker"])


def function(env: str) -> dict[str, Any]:
    return by_name(layers(env)["broker"], FUNCTION, "broker-admin-rotation-function")


def lambda_runtimes() -> list[str]:
    model = Path(botocore.__file__).parent / "data" / "lambda" / "2015-03-31" / "service-2.json.gz"
    return list(json.loads(gzip.decompress(model.read_bytes()))["shapes"]["Runtime"]["enum"])


@pytest.mark.parametrize("env", ENVS)
def test_the_admin_secret_rotates_every_max_age_days_through_the_function(env: str) -> None:
    document = layers(env)["broker"]
    resources = by_urn(document)
    (rotation,) = of_type(document, ROTATION)
    inputs = rotation["inputs"]
    assert inputs["secretId"] == document["outputs"]["admin_secret_arn"]
    days = load_env(env).messaging.credentials_rotation.max_age_days  # type: ignore[union-attr]
    assert inputs["rotationRules"] == {"automaticallyAfterDays": days}
    assert inputs["rotationLambdaArn"].endswith(f":function:ml-platform-{env}-broker-admin-rotation")
    # Not at creation: the first password is new, and messaging's first `up` reads AWSCURRENT right after.
    assert inputs["rotateImmediately"] is False
    after = {resources[urn]["type"] for urn in rotation["dependencies"]}
    assert {"aws:mq/broker:Broker", "aws:secretsmanager/secretVersion:SecretVersion", PERMISSION, EGRESS,
            FUNCTION} <= after, "the broker, the secret's first version and the network path come first"


@pytest.mark.parametrize("env", ENVS)
def test_the_function_is_python_in_the_private_subnets_of_every_az_pointed_at_the_broker(env: str) -> None:
    document = layers(env)["broker"]
    network = layers(env)["network"]["outputs"]
    fn = function(env)
    inputs = fn["inputs"]
    assert inputs["runtime"] in lambda_runtimes() and inputs["runtime"] in ("python3.12", "python3.13")
    assert inputs["handler"] == "broker_admin.handler" and inputs["code"] == {"archive": "<assets>"}
    assert inputs["vpcConfig"] == {"subnetIds": network["private_subnet_ids"],
                                   "securityGroupIds": [network["broker_rotation_security_group_id"]]}
    assert len(set(load_env(env).availability_zones)) >= 2, "Security Hub Lambda.5: subnets in 2+ AZs"
    # The broker's own console URL over https, never a tunnel, never the tests' plain-http switch.
    assert inputs["environment"] == {"variables": {"MANAGEMENT_ENDPOINT": document["outputs"]["management_endpoint"]}}
    assert document["outputs"]["management_endpoint"].startswith("https://")
    logs = by_name(document, LOG_GROUP, "broker-admin-rotation-logs")
    assert inputs["loggingConfig"]["logGroup"] == logs["inputs"]["name"] == f"/aws/lambda/{inputs['name']}"
    resources = by_urn(document)
    assert {resources[urn]["type"] for urn in fn["dependencies"]} >= {ROLE_POLICY, LOG_GROUP}


def test_the_function_ships_the_rotation_module_as_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped: dict[str, Any] = {}
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        if request.type == FUNCTION:
            shipped.update(json_format.MessageToDict(request.object)["code"])
        return original(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", recording)
    synth_env("dev", ["broker"])
    assert shipped[engine.SIG_KEY] == engine.ARCHIVE_SIG
    (name, asset), = shipped["assets"].items()
    assert name == "broker_admin.py" and asset["text"] == rotation_source()


@pytest.mark.parametrize("env", ENVS)
def test_only_secrets_manager_in_this_account_may_invoke_it(env: str) -> None:
    (permission,) = of_type(layers(env)["broker"], PERMISSION)
    assert permission["inputs"] == {"action": "lambda:InvokeFunction", "function": function(env)["inputs"]["name"],
                                    "principal": "secretsmanager.amazonaws.com",
                                    "sourceAccount": load_env(env).account_id,
                                    "sourceArn": layers(env)["broker"]["outputs"]["admin_secret_arn"]}


@pytest.mark.parametrize("env", ENVS)
def test_the_role_names_the_secret_its_key_its_logs_and_its_network_interfaces(env: str) -> None:
    document = layers(env)["broker"]
    network = layers(env)["network"]["outputs"]
    config = load_env(env)
    policy = json.loads(by_name(document, ROLE_POLICY, "broker-admin-rotation-role-policy")["inputs"]["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert statements["RotateTheBrokerAdminSecret"]["Action"] == [
        "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage"]
    assert statements["RotateTheBrokerAdminSecret"]["Resource"] == document["outputs"]["admin_secret_arn"]
    assert statements["GeneratePasswords"]["Action"] == "secretsmanager:GetRandomPassword"
    key = by_name(document, KMS_KEY, "broker-secrets")
    secret = by_name(document, "aws:secretsmanager/secret:Secret", "broker-admin")
    use = statements["UseTheSecretsKeyThroughSecretsManager"]
    assert use["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and use["Resource"] == secret["inputs"]["kmsKeyId"]
    assert key["urn"] in secret["dependencies"]
    # only through Secrets Manager, and only for the admin secret's data keys (its ARN is their encryption context)
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{config.region}.amazonaws.com",
                                                 "kms:EncryptionContext:SecretARN": document["outputs"][
                                                     "admin_secret_arn"]}}
    log_arn = (f"arn:aws:logs:{config.region}:{config.account_id}:log-group:"
               f"/aws/lambda/ml-platform-{env}-broker-admin-rotation")
    assert statements["WriteOwnLogs"]["Resource"] == [log_arn, f"{log_arn}:log-stream:*"]
    create = statements["CreateOwnNetworkInterfaces"]["Resource"]
    assert sorted(r.rsplit("/", 1)[1] for r in create if ":subnet/" in r) == sorted(network["private_subnet_ids"])
    assert [r.rsplit("/", 1)[1] for r in create if ":security-group/" in r] == [
        network["broker_rotation_security_group_id"]]
    # "*" only where the action takes no resource (GetRandomPassword, EC2 Describe calls)
    starred = {a for s in statements.values() if s["Resource"] == "*"
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert starred == {"secretsmanager:GetRandomPassword", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}
    assert set(statements) == {"RotateTheBrokerAdminSecret", "GeneratePasswords",
                               "UseTheSecretsKeyThroughSecretsManager", "WriteOwnLogs", "DescribeNetworkInterfaces",
                               "CreateOwnNetworkInterfaces", "ManageOwnNetworkInterfaces"}


@pytest.mark.parametrize("env", ENVS)
def test_its_log_group_keeps_the_broker_log_retention_on_its_own_key(env: str) -> None:
    document = layers(env)["broker"]
    group = by_name(document, LOG_GROUP, "broker-admin-rotation-logs")
    logs = group["inputs"]
    assert logs["retentionInDays"] == load_env(env).messaging.broker_log_retention_days
    key = by_name(document, KMS_KEY, "broker-admin-rotation-logs")
    assert logs["kmsKeyId"].startswith("arn:aws:kms:") and key["urn"] in group["property_dependencies"]["kmsKeyId"]
    assert key["inputs"]["enableKeyRotation"] is True and key["inputs"]["deletionWindowInDays"] == 30
    context = json.loads(key["inputs"]["policy"])["Statement"][1]["Condition"]["ArnLike"]
    assert context["kms:EncryptionContext:aws:logs:arn"].endswith(f":log-group:{logs['name']}")


@pytest.mark.parametrize(("env", "through"), [("dev", "nat"), ("staging", "endpoint"), ("prod", "endpoint")])
def test_the_functions_group_reaches_the_broker_and_secrets_manager_only(env: str, through: str) -> None:
    network_doc, broker_doc = layers(env)["network"], layers(env)["broker"]
    group_id = network_doc["outputs"]["broker_rotation_security_group_id"]
    group = by_name(network_doc, SG, "network-broker-rotation")["inputs"]
    assert "ingress" not in group and "egress" not in group, "rules are separate resources; nothing comes in"
    egress = [r["inputs"] for doc in (network_doc, broker_doc) for r in of_type(doc, EGRESS)
              if r["inputs"]["securityGroupId"] == group_id]
    peers = sorted((r.get("referencedSecurityGroupId") or r.get("cidrIpv4"), r["ipProtocol"], r["fromPort"],
                    r["toPort"]) for r in egress)
    broker_group = broker_doc["outputs"]["broker_security_group_id"]
    endpoints = [g["inputs"] for g in of_type(network_doc, SG) if g["name"] == "network-endpoints"]
    if through == "nat":
        assert peers == sorted([(broker_group, "tcp", 443, 443), ("0.0.0.0/0", "tcp", 443, 443)])
        assert endpoints == []
    else:
        (endpoint_sg,) = [g for g in of_type(network_doc, SG) if g["name"] == "network-endpoints"]
        endpoint_id = next(r["inputs"]["securityGroupIds"][0]
                           for r in of_type(network_doc, "aws:ec2/vpcEndpoint:VpcEndpoint")
                           if r["inputs"]["serviceName"].endswith(".secretsmanager"))
        assert peers == sorted([(broker_group, "tcp", 443, 443), (endpoint_id, "tcp", 443, 443)])
        admitted = [r for r in endpoint_sg["inputs"]["ingress"] if r["securityGroups"] == [group_id]]
        assert [(r["protocol"], r["fromPort"], r["toPort"]) for r in admitted] == [("tcp", 443, 443)]


def test_without_credentials_rotation_nothing_of_the_rotation_exists(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].pop("credentials_rotation"))
    documents = synth_env("dev", ["broker"])
    assert not [r for r in documents["broker"]["resources"] if "rotation" in r["name"]]
    group = by_name(documents["broker"], SG, "broker-sg")["inputs"]
    assert len(group["ingress"]) == 3  # services (AMQPS), deploy runner and queue metrics publisher (443)


def test_an_external_broker_has_no_rotation_of_the_platforms_own(edit_env: Any) -> None:
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data["messaging"].update(broker="external", external=external))
    documents = synth_env("dev", ["broker"])
    assert not [r for r in documents["broker"]["resources"] if "rotation" in r["name"]]


@pytest.mark.parametrize("change", ["no-rotation", "external-broker"])
def test_the_network_keeps_the_rotation_group_whether_or_not_a_function_uses_it(edit_env: Any, change: str) -> None:
    """network deploys before broker: a group that vanished with the rotation would be deleted while the
    broker's group and the function's network interfaces still use it (EC2: DependencyViolation)."""
    before = {r["urn"] for r in layers("dev")["network"]["resources"]}
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data["messaging"].pop("credentials_rotation") if change == "no-rotation"
             else data["messaging"].update(broker="external", external=external))
    network = synth_env("dev", ["network"])["network"]
    assert {r["urn"] for r in network["resources"]} == before
    assert network["outputs"]["broker_rotation_security_group_id"].startswith("sg-")
    (group,) = [r for r in of_type(network, SG) if r["name"] == "network-broker-rotation"]
    assert group["custom_timeouts"] == {"delete": "45m"}  # Lambda's network interfaces linger after a delete


def test_an_env_with_no_way_to_secrets_manager_is_refused(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["network"].update(nat="none", endpoints=["s3"]))
    with pytest.raises(ConfigErrors) as error:
        load_env("dev")
    assert any(problem.key == "network.endpoints" and "secretsmanager" in problem.reason
               for problem in error.value.problems)


def test_with_a_secrets_manager_endpoint_the_function_uses_it_not_the_nat() -> None:
    network_doc = synth_env("staging", ["network"])["network"]
    group_id = network_doc["outputs"]["broker_rotation_security_group_id"]
    egress = [r["inputs"] for r in of_type(network_doc, EGRESS) if r["inputs"]["securityGroupId"] == group_id]
    assert [r.get("cidrIpv4") for r in egress] == [None] and egress[0]["referencedSecurityGroupId"].startswith("sg-")


def test_a_replaced_broker_gets_the_first_password_back_in_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new broker starts with the generated password (its `users`), not the rotated one: the secret's
    first version is replaced with the broker (so AWSCURRENT is what the new broker accepts) and written
    only once the broker exists; otherwise it is never written back (ignore_changes)."""
    seen: dict[tuple[str, str], Any] = {}
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        seen[(request.type, request.name)] = request
        return original(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", recording)
    synth_env("dev", ["broker"])
    version = seen[("aws:secretsmanager/secretVersion:SecretVersion", "broker-admin")]
    document = layers("dev")["broker"]
    broker_urn = next(r["urn"] for r in document["resources"] if r["name"] == "broker-broker")
    # and a broker created again after it was deleted outside Pulumi (a create, not a replacement): its new id is
    # the keeper of the generation marker, whose replacement replaces the version too
    marker = next(r for r in document["resources"] if r["name"] == "broker-broker-generation")
    assert marker["type"] == "random:index/randomId:RandomId"
    assert marker["inputs"]["keepers"] == {"broker_id": document["outputs"]["broker_id"]}
    assert list(version.replace_with) == [broker_urn, marker["urn"]] and broker_urn in version.dependencies
    # the replaced version is left to Secrets Manager (the provider's delete would try to take labels off it
    # that a rotation has moved on); neither its value nor its labels are ever written back
    assert version.retainOnDelete is True
    assert sorted(version.ignoreChanges) == ["secretString", "versionStages"]


def test_the_first_version_keeps_a_label_of_its_own() -> None:
    """Secrets Manager removes unlabelled versions beyond the 100 most recent; the provider then drops the
    version from its state and the next `up` would write the first password back as AWSCURRENT."""
    (version,) = of_type(layers("dev")["broker"], "aws:secretsmanager/secretVersion:SecretVersion")
    assert version["inputs"]["versionStages"] == ["AWSCURRENT", "platform-initial"]
