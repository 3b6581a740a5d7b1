"""Given an env, the synthesized broker layer has a private Amazon MQ broker that only the services
(AMQPS) and the deploy runner (management API) reach, a generated admin kept in Secrets Manager, and a
least-privilege CodeBuild deploy runner in the private subnets. It holds no RabbitMQ provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.amazonmq import (
    OPERATOR_POLICY_CHANGES,
    broker_consumer_timeout_ms,
    per_queue_consumer_timeout,
    rabbitmq_conf,
)
from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.components.broker import (
    CONFIGURATION_TYPE,
    AmazonMqBrokerArgs,
    auto_minor_version_upgrade,
    broker_subnets,
    check_admin_password,
    check_admin_username,
)
from shared.components.deploy_runner import BUILDSPEC, VPC_ACTIONS
from shared.contracts import BrokerContract, StackContractError
from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors
from shared.patch_guard import pinned_versions
from shared.plan_diff import LayerDiff, diff_layers
from shared.synth import engine
from shared.synth.engine import dumps, synth_env
from tests.layers.resource_types import (
    BROKER,
    ENVS,
    KMS_KEY,
    LOG_GROUP,
    PASSWORD,
    PROJECT,
    ROLE,
    ROLE_POLICY,
    SECRET,
    SECRET_VERSION,
    SG,
    WEBHOOK,
)
from tests.spec_envs import SPEC_CATALOG
from tests.synth_helpers import by_urn, of_type, synth_layers


def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_layers(env, "broker")


def broker_layer(env: str) -> dict[str, Any]:
    return layers(env)["broker"]


def one(document: dict[str, Any], type_: str, name: str | None = None) -> dict[str, Any]:
    resources = [r for r in of_type(document, type_) if name is None or r["name"] == name]
    assert len(resources) == 1, f"expected one {type_} {name or ''}, found {len(resources)}"
    return resources[0]


# -- the broker ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("env", "mode", "subnets"), [("dev", "SINGLE_INSTANCE", 1), ("staging", "SINGLE_INSTANCE", 1),
                                                      ("prod", "CLUSTER_MULTI_AZ", 3)])
def test_the_broker_is_private_rabbitmq_in_the_private_subnets(env: str, mode: str, subnets: int) -> None:
    broker = one(broker_layer(env), BROKER)["inputs"]
    network = layers(env)["network"]["outputs"]
    settings = load_env(env).messaging
    assert broker["engineType"] == "RabbitMQ"
    assert (broker["engineVersion"], broker["hostInstanceType"]) == (settings.engine_version, settings.instance_type)
    assert broker["autoMinorVersionUpgrade"] is True
    assert broker["deploymentMode"] == mode
    assert broker["publiclyAccessible"] is False
    assert broker["logs"] == {"general": True}
    assert broker["subnetIds"] == network["private_subnet_ids"][:subnets]


@pytest.mark.parametrize("env", ENVS)
def test_the_broker_admits_amqps_from_the_services_and_management_from_the_runner_and_functions_only(env: str) -> None:
    document = broker_layer(env)
    outputs = document["outputs"]
    group = one(document, SG, "broker-sg")["inputs"]
    network = layers(env)["network"]["outputs"]
    rules = {(r["protocol"], r["fromPort"], r["toPort"], tuple(r["securityGroups"])) for r in group["ingress"]}
    assert rules == {("tcp", 5671, 5671, (network["service_security_group_id"],)),
                     ("tcp", 443, 443, (outputs["deploy_runner_security_group_id"],)),
                     ("tcp", 443, 443, (network["broker_rotation_security_group_id"],)),
                     ("tcp", 443, 443, (network["queue_metrics_security_group_id"],))}
    assert all(not r.get("cidrBlocks") for r in group["ingress"]), "security-group references, never CIDRs"
    assert all(r["description"] for r in group["ingress"]) and group["egress"] == []
    assert one(document, BROKER)["inputs"]["securityGroups"] == [outputs["broker_security_group_id"]]


@pytest.mark.parametrize("env", ENVS)
def test_the_admin_is_generated_and_kept_in_secrets_manager(env: str) -> None:
    document = broker_layer(env)
    broker = one(document, BROKER)
    assert "users" in broker["secret_inputs"]
    (admin,) = broker["inputs"]["users"]
    generated = one(document, PASSWORD, "broker-admin-password")
    # Amazon MQ's rules (botocore mq model, User): letters/digits only, 12+ characters, 4+ distinct.
    assert generated["inputs"]["special"] is False and generated["inputs"]["length"] >= 12
    assert check_admin_password(admin["password"]) and check_admin_username(admin["username"])
    assert generated["urn"] in broker["dependencies"]
    secret = one(document, SECRET, "broker-admin")
    assert secret["inputs"]["name"] == f"platform/{env}/broker/admin"
    # on the layer's own customer-managed key, not aws/secretsmanager
    key = one(document, KMS_KEY, "broker-secrets")
    assert key["inputs"]["enableKeyRotation"] is True and key["protect"] is load_env(env).protect
    assert secret["inputs"]["kmsKeyId"].startswith("arn:aws:kms:") and key["urn"] in secret["dependencies"]
    (version,) = [v for v in of_type(document, SECRET_VERSION) if v["parent"] == secret["urn"]]
    assert version["secret_inputs"] == ["secretString"]
    assert json.loads(version["inputs"]["secretString"]) == {"username": admin["username"],
                                                             "password": admin["password"]}
    outputs = document["outputs"]
    assert outputs["admin_secret_arn"].startswith(
        f"arn:aws:secretsmanager:eu-west-1:{load_env(env).account_id}:secret:platform/{env}/broker/admin-")
    assert outputs["admin_username"] == admin["username"]
    assert document["secret_outputs"] == [], "the contract names the secret, it never carries the password"


def test_the_broker_ignores_later_changes_to_users(monkeypatch: pytest.MonkeyPatch) -> None:
    # A change to a RabbitMQ broker's `users` would recreate it (queues lost): the broker ignores it, and
    # the admin secret's first version is never written back over a rotated one.
    seen: dict[tuple[str, str], list[str]] = {}
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        seen[(request.type, request.name)] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", recording)
    synth_env("dev", ["broker"])
    assert seen[(BROKER, "broker-broker")] == ["users"]
    assert seen[(SECRET_VERSION, "broker-admin")] == ["secretString", "versionStages"]


def test_the_admin_username_and_password_rules_of_amazon_mq() -> None:
    for bad in ("guest", "a", "has~tilde", "has space", "x" * 101):
        with pytest.raises(ValueError):
            check_admin_username(bad)
    for bad in ("short1A", "aaaaaaaaaaaaaaaa", "has,comma12345", "has:colon12345", "has=equal12345"):
        with pytest.raises(ValueError):
            check_admin_password(bad)
    assert check_admin_password("Abcd1234efgh") == "Abcd1234efgh"


def test_engine_versions_are_major_minor_with_automatic_patches(edit_env: Any) -> None:
    assert auto_minor_version_upgrade("3.13") and auto_minor_version_upgrade("4.2")
    assert not auto_minor_version_upgrade("3.12.14") and not auto_minor_version_upgrade("3.11.20")
    edit_env("dev", lambda data: data["messaging"].update(engine_version="3.13.7"))
    with pytest.raises(ConfigError) as error:
        synth_env("dev", ["broker"])
    assert error.value.key == "messaging.engine_version" and "major.minor" in error.value.reason


@pytest.mark.parametrize("engine", ["4.2", "4.3"])
def test_rabbitmq_4_on_m7g_is_synthesized_as_given_with_its_own_configuration(engine: str, edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(engine_version=engine, instance_type="mq.m7g.medium"))
    docs = synth_env("dev", ["broker"])["broker"]
    broker = one(docs, BROKER)["inputs"]
    assert (broker["engineVersion"], broker["hostInstanceType"], broker["autoMinorVersionUpgrade"]) == (
        engine, "mq.m7g.medium", True)
    configuration = one(docs, CONFIGURATION_TYPE)["inputs"]
    assert (configuration["engineVersion"], configuration["name"]) == (engine, f"ml-dev-rabbitmq-{engine}")


def test_cluster_multi_az_needs_more_than_one_availability_zone(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["network"].update(az_count=1, nat="single"))
    with pytest.raises(ConfigError) as error:
        synth_env("prod", ["broker"])
    # (prod's baseline also refuses one AZ for the whole env: network.az_count is a second problem)
    problems = error.value.problems if isinstance(error.value, ConfigErrors) else [error.value]
    (reason,) = [problem.reason for problem in problems if problem.key == "messaging.deployment_mode"]
    assert "az_count" in reason
    # The platform's reason, not a requirement of Amazon MQ's, which takes a single subnet for a private cluster
    # (botocore mq CreateBrokerRequest.SubnetIds): a subnet added later would replace the broker.
    assert "needs a private subnet in each" not in reason
    assert "replace the broker" in reason


def test_the_broker_args_refuse_an_unloaded_env_with_the_loaders_reason(edit_env: Any) -> None:
    # One rule: an env that skipped the loader (built in a program) is refused by the component for the reason
    # the loader gives, not by a second copy of the rule with its own wording.
    from shared.envs import EnvConfig

    env = load_env("dev")
    edit_env("dev", lambda data: data["messaging"].update(engine_version="3.13.7"))
    with pytest.raises(ConfigError) as loaded:
        synth_env("dev", ["broker"])
    unchecked = EnvConfig.model_construct(**{**dict(env), "messaging": env.messaging.model_copy(
        update={"engine_version": "3.13.7"})})
    with pytest.raises(ValueError) as error:
        AmazonMqBrokerArgs.from_env(unchecked)
    assert loaded.value.key == "messaging.engine_version"
    assert str(error.value) == f"AmazonMqBrokerArgs.engine_version: {loaded.value.reason}"


def test_broker_subnets_single_instance_takes_the_first_cluster_the_first_three() -> None:
    """A cluster has three nodes in three AZs; with more AZs (network.az_count 4 in us-east-1) it keeps the first
    three, since a change of a broker's subnets replaces it, queues and messages with it."""
    assert broker_subnets("SINGLE_INSTANCE", ["a", "b", "c"]) == ["a"]
    assert broker_subnets("CLUSTER_MULTI_AZ", ["a", "b", "c"]) == ["a", "b", "c"]
    assert broker_subnets("CLUSTER_MULTI_AZ", ["a", "b", "c", "d"]) == ["a", "b", "c"]
    assert broker_subnets("SINGLE_INSTANCE", ["a", "b", "c", "d"]) == ["a"]
    with pytest.raises(StackContractError, match="'network' exports none"):
        broker_subnets("SINGLE_INSTANCE", [])


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_broker_and_admin_secret_are_protected_where_the_env_protects_state(env: str, protected: bool) -> None:
    document = broker_layer(env)
    assert one(document, BROKER)["protect"] is protected
    assert one(document, SECRET, "broker-admin")["protect"] is protected
    assert one(document, SECRET, "broker-admin")["inputs"]["recoveryWindowInDays"] == (30 if protected else 0)


# -- the deploy runner -----------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_the_runner_is_a_codebuild_project_in_the_private_subnets_with_its_own_group(env: str) -> None:
    document = broker_layer(env)
    network = layers(env)["network"]["outputs"]
    project = one(document, PROJECT)["inputs"]
    vpc = project["vpcConfig"]
    assert vpc["vpcId"] == network["vpc_id"]
    assert vpc["subnets"] == network["private_subnet_ids"] and len(vpc["subnets"]) <= 16  # botocore VpcConfig
    # The runner's group is the network layer's (the interface endpoints admit it there).
    runner_sg = one(layers(env)["network"], SG, "network-deploy-runner")
    assert vpc["securityGroupIds"] == [document["outputs"]["deploy_runner_security_group_id"]] \
        == [network["deploy_runner_security_group_id"]]
    assert runner_sg["inputs"]["ingress"] == []
    assert [(r["protocol"], r["fromPort"], r["toPort"]) for r in runner_sg["inputs"]["egress"]] == [("tcp", 443, 443)]
    assert project["name"] == document["outputs"]["deploy_runner_project_name"] == f"ml-platform-{env}-deploy"
    assert project["source"]["type"] == "NO_SOURCE" and project["source"]["buildspec"] == BUILDSPEC
    # Ubuntu: a CodeBuild-hosted GitHub Actions job on it runs actions/setup-python, which has no builds
    # for Amazon Linux; the CLI at the pinned SDK version; a Python the platform supports.
    assert project["environment"]["image"] == "aws/codebuild/standard:8.0"
    spec = yaml.safe_load(BUILDSPEC)
    assert spec["phases"]["install"]["runtime-versions"]["python"] in ("3.11", "3.12", "3.13")
    pulumi_pin = pinned_versions()["pulumi"]
    install = spec["phases"]["install"]["commands"]
    assert f"bash .ci/install-pulumi {pulumi_pin}" in install[0]  # sha256-checked, no downloaded script run
    assert not any("| sh" in command or "| bash" in command for command in install)
    assert 5 <= project["buildTimeout"] <= 2160
    variables = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    assert variables == {"PLATFORM_ENV": env,
                         "DEPLOY_ROLE_ARN": f"arn:aws:iam::{load_env(env).account_id}:role/ml-platform-deployer"}
    logs = one(document, LOG_GROUP, "deploy-runner-logs")
    assert project["logsConfig"]["cloudwatchLogs"] == {"status": "ENABLED", "groupName": logs["inputs"]["name"]}
    assert logs["inputs"]["retentionInDays"] == load_env(env).messaging.deploy_runner.log_retention_days


@pytest.mark.parametrize(("platform_command", "layers", "expected"), [
    ("destroy", None, ["-m", "nox", "-s", "destroy", "--", "dev", "--yes"]),
    ("destroy", "messaging", ["-m", "nox", "-s", "destroy", "--", "dev", "--yes", "--layers", "messaging"]),
    ("destroy", "compute,messaging",
     ["-m", "nox", "-s", "destroy", "--", "dev", "--yes", "--layers", "compute,messaging"]),
    # a preview refuses --yes (exit 2): the orchestrator's own "ways in" print this build for a messaging preview
    ("preview", "messaging", ["-m", "nox", "-s", "preview", "--", "dev", "--layers", "messaging"]),
    (None, None, ["-m", "nox", "-s", "up", "--", "dev", "--yes"]),
])
def test_the_runner_build_passes_platform_layers_on(tmp_path: Path, platform_command: str | None,
                                                     layers: str | None, expected: list[str]) -> None:
    """A destroy on the runner must be limited to the layers that need the VPC (`--layers messaging`: the
    orchestrator refuses one that would delete the runner), and start-build can only set variables: the build's
    command, run by bash as CodeBuild does (`env: shell: bash`), with a python3 that prints its arguments."""
    import os
    import subprocess

    spec = yaml.safe_load(BUILDSPEC)
    assert spec["env"]["shell"] == "bash"
    (command,) = [c for c in spec["phases"]["build"]["commands"] if "nox" in c]
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n")
    fake.chmod(0o755)
    environ = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "PLATFORM_ENV": "dev"}
    if platform_command is not None:
        environ["PLATFORM_COMMAND"] = platform_command
    if layers is not None:
        environ["PLATFORM_LAYERS"] = layers
    printed = subprocess.run(["bash", "-c", command], env=environ, capture_output=True, text=True, check=True)
    assert printed.stdout.splitlines() == expected


@pytest.mark.parametrize("env", ENVS)
def test_the_runner_role_is_least_privilege(env: str) -> None:
    document = broker_layer(env)
    resources = by_urn(document)
    role = one(document, ROLE, "deploy-runner-role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":project/ml-platform-{env}-deploy")
    policy = json.loads(one(document, ROLE_POLICY, "deploy-runner-role-policy")["inputs"]["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"WriteOwnBuildLogs", "BuildNetworkInterface", "ManageBuildNetworkInterface",
                               "BuildNetworkInterfaceInPrivateSubnets", "AssumeDeployRole"}
    log_group_arn = one(document, LOG_GROUP, "deploy-runner-logs")["inputs"]["name"]
    assert all(log_group_arn in resource for resource in statements["WriteOwnBuildLogs"]["Resource"])
    assert set(statements["BuildNetworkInterface"]["Action"] + statements["ManageBuildNetworkInterface"]["Action"]) \
        == set(VPC_ACTIONS)
    assert statements["BuildNetworkInterface"]["Action"] == [a for a in VPC_ACTIONS if ":Describe" in a], \
        "only Describe calls, which support no resource-level permission, on *"
    eni_resources = statements["ManageBuildNetworkInterface"]["Resource"]
    assert "*" not in eni_resources and any(r.endswith(":network-interface/*") for r in eni_resources)
    condition = statements["BuildNetworkInterfaceInPrivateSubnets"]["Condition"]["StringEquals"]
    assert condition["ec2:AuthorizedService"] == "codebuild.amazonaws.com"
    assert sorted(s.rsplit("/", 1)[1] for s in condition["ec2:Subnet"]) == sorted(
        layers(env)["network"]["outputs"]["private_subnet_ids"])
    assert statements["AssumeDeployRole"]["Resource"].endswith(":role/ml-platform-deployer")
    project = one(document, PROJECT)
    role_policy = one(document, ROLE_POLICY, "deploy-runner-role-policy")
    assert role_policy["urn"] in project["dependencies"], "the role can act before CodeBuild checks it"
    assert resources[project["parent"]]["type"] == "mlplatform:broker:DeployRunner"


@pytest.mark.parametrize(("env", "encrypted"), [("dev", True), ("staging", True), ("prod", True)])  # every env file
def test_runner_logs_use_a_key_where_the_env_asks_for_encrypted_logs(env: str, encrypted: bool) -> None:
    document = broker_layer(env)
    logs = one(document, LOG_GROUP, "deploy-runner-logs")["inputs"]
    assert ("kmsKeyId" in logs) is encrypted
    if encrypted:
        key = one(document, KMS_KEY, "deploy-runner-logs")
        assert logs["kmsKeyId"].startswith("arn:aws:kms:") and key["inputs"]["enableKeyRotation"] is True
        statement = json.loads(key["inputs"]["policy"])["Statement"][1]
        assert statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].endswith(logs["name"])


def test_a_github_repository_makes_the_runner_a_github_actions_runner(edit_env: Any) -> None:
    repository = "https://github.com/acme/ml-platform"
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={"github_repository": repository}))
    document = synth_env("dev", ["broker"])["broker"]
    source = one(document, PROJECT)["inputs"]["source"]
    assert (source["type"], source["location"]) == ("GITHUB", repository)
    # a full clone: the older-commit gate judges the build's commit against main's history (orchestrate.commits)
    assert source["gitCloneDepth"] == 0
    webhook = one(document, WEBHOOK)["inputs"]
    assert webhook["filterGroups"] == [{"filters": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]}]


def test_a_github_actions_runner_s_jobs_cannot_assume_the_deploy_role(edit_env: Any) -> None:
    """Any job of the repository that names the runner in runs-on (a pull request's, any branch's own workflow
    file) runs as the project's service role, which no GitHub environment and no OIDC subject guards: that role may
    not assume the deploy role. start-build keeps a role that may (--service-role-override), unchanged."""
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={
        "github_repository": "https://github.com/acme/ml-platform",
        "passphrase_secret": "ml-platform/dev/pulumi-passphrase"}))
    document = synth_env("dev", ["broker"])["broker"]
    project = one(document, PROJECT)
    assert project["inputs"]["serviceRole"].endswith(":role/ml-platform-dev-runner-jobs")
    jobs_policy = one(document, ROLE_POLICY, "deploy-runner-jobs-role-policy")
    assert jobs_policy["urn"] in project["dependencies"], "the role can act before CodeBuild checks it"
    jobs = json.loads(jobs_policy["inputs"]["policy"])["Statement"]
    assert not [s for s in jobs if "sts:" in json.dumps(s["Action"])], "a job of any branch would deploy"
    assert {"WriteOwnBuildLogs", "ManageBuildNetworkInterface"} <= {s["Sid"] for s in jobs}
    jobs_role = one(document, ROLE, "deploy-runner-jobs-role")["inputs"]
    start_build_role = one(document, ROLE, "deploy-runner-role")["inputs"]
    assert jobs_role["permissionsBoundary"] == start_build_role["permissionsBoundary"]
    assert json.loads(jobs_role["assumeRolePolicy"])["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] \
        .endswith(":project/ml-platform-dev-deploy")
    start_build = json.loads(one(document, ROLE_POLICY, "deploy-runner-role-policy")["inputs"]["policy"])["Statement"]
    assert {s["Sid"]: s for s in start_build}["AssumeDeployRole"]["Resource"].endswith(":role/ml-platform-deployer")


def test_without_a_github_repository_the_runner_has_one_role(edit_env: Any) -> None:
    document = broker_layer("dev")
    assert one(document, PROJECT)["inputs"]["serviceRole"].endswith(":role/ml-platform-dev-deploy-runner")
    assert [r["name"] for r in of_type(document, ROLE) if r["name"].startswith("deploy-runner")] \
        == ["deploy-runner-role"]


# the last: a hyphen and six characters, what Secrets Manager appends to a name in its ARN (CreateSecret: not so)
@pytest.mark.parametrize("key", ["passphrase_secret", "access_token_secret"])
@pytest.mark.parametrize("name", ["", "pulumi passphrase", "a" * 513, "arn:aws:secretsmanager:x", "dev/pulumi-secret"])
def test_a_pulumi_secret_that_is_no_secret_name_is_bad_input(edit_env: Any, key: str, name: str) -> None:
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={key: name}))
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert error.value.key == f"messaging.deploy_runner.{key}" and error.value.exit_code == 2


@pytest.mark.parametrize("service", ["codeconnections", "codestar-connections"])
def test_a_github_app_connection_checks_the_repository_out_with_the_runner_role(edit_env: Any, service: str) -> None:
    """CodeBuild fetches the connection's GitHub token with the project's service role (CodeBuild user guide,
    "GitHub App connections", step 2), so that role may get that one connection's token."""
    account = load_env("dev").account_id
    connection = f"arn:aws:{service}:eu-west-1:{account}:connection/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={
        "github_repository": "https://github.com/acme/ml-platform", "github_connection_arn": connection}))
    document = synth_env("dev", ["broker"])["broker"]
    source = one(document, PROJECT)["inputs"]["source"]
    assert source["auth"] == {"type": "CODECONNECTIONS", "resource": connection}
    policy = json.loads(one(document, ROLE_POLICY, "deploy-runner-role-policy")["inputs"]["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["UseGitHubConnection"]["Action"] == [f"{service}:GetConnection", f"{service}:GetConnectionToken"]
    assert statements["UseGitHubConnection"]["Resource"] == connection


def test_a_github_app_connection_serves_start_build_overrides_without_a_repository(edit_env: Any) -> None:
    """Without github_repository builds take GitHub as a start-build source override, which CodeBuild checks out
    with the account's default credential or ``--source-auth-override``: the role may use the connection."""
    connection = f"arn:aws:codeconnections:eu-west-1:{load_env('dev').account_id}:connection/" \
                 "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={"github_connection_arn": connection}))
    document = synth_env("dev", ["broker"])["broker"]
    assert one(document, PROJECT)["inputs"]["source"]["type"] == "NO_SOURCE"
    assert "auth" not in one(document, PROJECT)["inputs"]["source"]
    policy = json.loads(one(document, ROLE_POLICY, "deploy-runner-role-policy")["inputs"]["policy"])
    assert {s["Sid"]: s["Resource"] for s in policy["Statement"]}["UseGitHubConnection"] == connection


@pytest.mark.parametrize("arn", ["arn:aws:secretsmanager:eu-west-1:111111111111:secret:github-token",
                                 "arn:aws:codeconnections:eu-west-1:111111111111:host/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b"])
def test_a_github_connection_that_is_no_connection_is_bad_input(edit_env: Any, arn: str) -> None:
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={"github_connection_arn": arn}))
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert error.value.key == "messaging.deploy_runner.github_connection_arn" and error.value.exit_code == 2


# -- contract, external brokers ----------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_the_layer_exports_exactly_its_contract_and_holds_no_rabbitmq_provider(env: str) -> None:
    document = broker_layer(env)
    contract = BrokerContract.model_validate(document["outputs"])
    assert contract.broker_mode == "amazon-mq" and contract.amqps_endpoint.endswith(":5671")
    assert contract.broker_log_group_name == f"/aws/amazonmq/broker/{contract.broker_id}/general"
    assert not [r for r in document["resources"] if r["type"].startswith(("rabbitmq:", "pulumi:providers:rabbitmq"))]


def test_an_external_broker_exports_its_endpoints_so_messaging_reads_one_shape(edit_env: Any) -> None:
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data.update(messaging={"broker": "external", "external": external}))
    document = synth_env("dev", ["broker"])["broker"]
    assert of_type(document, BROKER) == [] and of_type(document, SECRET) == []
    outputs = document["outputs"]
    assert (outputs["broker_mode"], outputs["amqps_endpoint"], outputs["management_endpoint"]) == (
        "external", external["amqps_endpoint"], external["management_endpoint"])
    assert "admin_secret_arn" not in outputs and outputs["deploy_runner_project_name"] == "ml-platform-dev-deploy"


def test_synth_is_deterministic() -> None:
    assert dumps(synth_env("dev", ["broker"])["broker"]) == dumps(broker_layer("dev"))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_broker_replacement_deletes_the_old_one_first(env: str) -> None:
    """Create-before-delete can never succeed: the broker's name must be unique in the account (botocore
    mq CreateBroker, BrokerName), and a subnet, mode or name change forces a new broker."""
    broker = one(broker_layer(env), "aws:mq/broker:Broker")
    assert broker.get("delete_before_replace") is True
    assert broker["protect"] is (env == "prod"), "prod refuses the replacement outright (its queues would go)"


@pytest.mark.parametrize("env", ENVS)
def test_the_names_the_env_loader_checks_are_the_names_the_layer_gives(env: str) -> None:
    """shared.broker_names is both what the env loader holds to AWS's limits and what the components use:
    every name it lists is on the resource it describes (the broker layer's, and the network layer's flow-log role),
    so the check cannot drift from the program."""
    from shared.broker_names import NAME_LIMITS

    documents = layers(env)

    def name_of(type_: str, resource: str | None = None, key: str = "name", layer: str = "broker") -> str:
        return str(one(documents[layer], type_, resource)["inputs"][key])

    given = {
        "Amazon MQ broker name": name_of(BROKER, key="brokerName"),
        "Lambda function name of the broker admin rotation": name_of("aws:lambda/function:Function"),
        "IAM role name of the broker admin rotation": name_of(ROLE, "broker-admin-rotation-role"),
        "IAM role name of the deploy runner": name_of(ROLE, "deploy-runner-role"),
        "CodeBuild project name of the deploy runner": name_of(PROJECT),
        "IAM role name of the VPC flow logs": name_of(ROLE, "network-flow-logs", layer="network"),
    }
    assert given == {limit.what: limit.name(env) for limit in NAME_LIMITS}
    assert all(len(given[limit.what]) <= limit.max_length for limit in NAME_LIMITS)


# -- the consumer timeout: how long a consumer may hold a delivery ------------------------------------
MQ_CONFIGURATION = "aws:mq/configuration:Configuration"


@pytest.mark.parametrize("env", ENVS)
def test_the_broker_wide_consumer_timeout_bounds_the_short_jobs_and_the_long_ones_are_per_queue(env: str) -> None:
    """Every shipped env runs RabbitMQ 4.2, which applies a queue's own consumer-timeout (its policy) instead of the
    broker-wide one: the broker keeps Amazon MQ's 30 minutes, so a hung inference consumer no longer holds its
    delivery for the 6 hours a training job may take (the training queue's policy says 6 hours: messaging tests)."""
    document = broker_layer(env)
    configuration = one(document, MQ_CONFIGURATION)
    engine_version = load_env(env).messaging.engine_version
    assert configuration["inputs"]["data"] == "consumer_timeout = 1800000\n" + OPERATOR_POLICY_CHANGES
    assert "queues without their own consumer-timeout" in configuration["inputs"]["description"]
    assert (configuration["inputs"]["engineType"], configuration["inputs"]["engineVersion"]) == (
        "RabbitMQ", engine_version)
    assert configuration["inputs"]["name"] == f"ml-{env}-rabbitmq-{engine_version}"
    broker = one(document, BROKER)
    # The configuration's id, and the revision the provider wrote `data` as (revision 1 is Amazon MQ's
    # defaults): the broker runs that one.
    assert broker["property_dependencies"]["configuration"] == [configuration["urn"]]
    assert broker["inputs"]["configuration"]["id"].startswith("c-")
    assert broker["inputs"]["configuration"]["revision"] == 2
    # No reboot during `up`: a new revision waits for the maintenance window (README, "Changing the broker").
    assert "applyImmediately" not in broker["inputs"]


def test_per_queue_consumer_timeouts_exist_from_rabbitmq_3_12() -> None:
    catalog = load_catalog()
    assert per_queue_consumer_timeout("4.2") and per_queue_consumer_timeout("3.13")
    assert per_queue_consumer_timeout("3.12") and per_queue_consumer_timeout("3.12.0")
    assert not per_queue_consumer_timeout("3.11") and not per_queue_consumer_timeout("3.10")
    # No 3.11 release knows the policy key (RabbitMQ 3.12.0 release notes; rabbit_policies.erl of v3.11.15 to
    # v3.11.28 has no consumer-timeout validator), so a 3.11.x broker gets the broker-wide value instead.
    assert not per_queue_consumer_timeout("3.11.15") and not per_queue_consumer_timeout("3.11.28")
    assert broker_consumer_timeout_ms(catalog, "3.11.28") == 21_600_000
    # A broker without them needs one broker-wide value that covers the longest job.
    assert broker_consumer_timeout_ms(catalog, "3.10") == catalog.consumer_timeout_ms() == 21_600_000
    assert broker_consumer_timeout_ms(catalog, "4.2") == 1_800_000


def test_a_replaced_configuration_is_left_to_the_broker_that_still_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A new engine version replaces the configuration; the old one stays the broker's current configuration
    # until its next reboot, so it is never deleted under it (retain_on_delete).
    seen: dict[tuple[str, str], bool] = {}
    original = engine.RecordingMonitor.RegisterResource

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        seen[(request.type, request.name)] = request.retainOnDelete
        return original(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", recording)
    synth_env("dev", ["broker"])
    assert seen[(MQ_CONFIGURATION, "broker-config")] is True
    assert seen[(BROKER, "broker-broker")] is False


def _broker_diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> LayerDiff:
    """What `up` would do to the broker layer (replacements carried to what reads them)."""
    old: dict[str, dict[str, Any] | None] = dict(before)
    new: dict[str, dict[str, Any] | None] = dict(after)
    (diff,) = [d for d in diff_layers(old, new, list(before)) if d.layer == "broker"]
    return diff


def _catalog_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **jobs: int | None) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text(encoding="utf-8"))
    for service, seconds in jobs.items():
        if seconds is None:
            data["services"][service].pop("max_job_seconds", None)
        else:
            data["services"][service]["max_job_seconds"] = seconds
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))


@pytest.mark.parametrize("env", ENVS)
def test_the_amazon_mq_broker_lets_the_messaging_layer_create_its_operator_policies(env: str) -> None:
    """Amazon MQ refuses operator-policy changes through the management API by default
    (management.restrictions.operator_policy_changes.disabled, default true: "Configurable values"); RabbitMQ then
    answers every /api/operator-policies request with 405, and the messaging layer creates its length limits as
    operator policies. The configuration turns the changes on, as the line Amazon MQ documents."""
    data = one(broker_layer(env), MQ_CONFIGURATION)["inputs"]["data"]
    assert "management.restrictions.operator_policy_changes.disabled = false\n" in data.splitlines(keepends=True)
    operator_policies = [r for r in synth_env(env, ["messaging"])["messaging"]["resources"]
                         if r["type"] == "rabbitmq:index/operatorPolicy:OperatorPolicy"]
    assert operator_policies, "the reason for the line: messaging creates operator policies"


def test_a_catalog_without_long_jobs_keeps_amazon_mqs_default_explicitly(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _catalog_with(tmp_path, monkeypatch, training=None)
    configuration = one(synth_env("dev", ["broker"])["broker"], MQ_CONFIGURATION)
    assert configuration["inputs"]["data"] == "consumer_timeout = 1800000\n" + OPERATOR_POLICY_CHANGES


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_longer_job_leaves_the_broker_alone(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             edit_env: Any) -> None:
    """A new max_job_seconds is its queue's policy (updated in place by the messaging layer, at once): the broker's
    configuration, whose revisions wait for a reboot, does not change."""
    before = synth_env(env, ["broker"])
    # six deliveries of a 12-hour job need a longer TTL (the loader's rule); the broker layer reads neither
    edit_env(env, lambda data: data["messaging"].update(message_ttl_ms=6 * 43200 * 1000))
    _catalog_with(tmp_path, monkeypatch, training=43200)
    after = synth_env(env, ["broker"])
    assert one(after["broker"], MQ_CONFIGURATION)["inputs"]["data"] == (
        "consumer_timeout = 1800000\n" + OPERATOR_POLICY_CHANGES)
    assert _broker_diff(before, after).changes == []


def test_a_broker_without_per_queue_timeouts_would_cover_the_longest_job() -> None:
    # No Amazon MQ version lacks them (3.13, 4.2, 4.3); the args keep the rule for any other version they are given.
    args = AmazonMqBrokerArgs.from_env(load_env("dev"))
    assert args.consumer_timeout_ms == 1_800_000
    assert rabbitmq_conf(broker_consumer_timeout_ms(load_catalog(), "3.10")) == "consumer_timeout = 21600000\n"


def test_a_new_engine_version_replaces_the_configuration_and_moves_the_broker_in_place(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["messaging"].update(engine_version="3.13", instance_type="mq.m5.large"))
    before = synth_env("prod", ["broker"])
    edit_env("prod", lambda data: data["messaging"].update(engine_version="4.2", instance_type="mq.m7g.large"))
    after = synth_env("prod", ["broker"])
    assert one(before["broker"], MQ_CONFIGURATION)["inputs"]["name"] == "ml-prod-rabbitmq-3.13"
    assert one(after["broker"], MQ_CONFIGURATION)["inputs"]["engineVersion"] == "4.2"
    diff = _broker_diff(before, after)
    actions = {(c.type, c.action) for c in diff.changes if c.type in (MQ_CONFIGURATION, BROKER)}
    assert actions == {(MQ_CONFIGURATION, "replace"), (BROKER, "update")}
    assert not [c for c in diff.changes if c.blocked]


def test_an_external_broker_is_its_operators_to_configure_and_the_layer_says_so(
        edit_env: Any, caplog: pytest.LogCaptureFixture) -> None:
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data.update(messaging={"broker": "external", "external": external}))
    with caplog.at_level("WARNING"):
        document = synth_env("dev", ["broker"])["broker"]
    assert of_type(document, MQ_CONFIGURATION) == []
    warnings = [r.getMessage() for r in caplog.records if "consumer_timeout" in r.getMessage()]
    # Its work queues carry their own timeouts (RabbitMQ 3.12+): the operator runs a recent enough broker.
    assert len(warnings) == 1 and "up to 21600000 ms" in warnings[0] and "external" in warnings[0]
    assert "RabbitMQ 4.2 (messaging.engine_version) or later" in warnings[0]


def test_an_external_broker_without_per_queue_timeouts_must_cover_the_longest_job(
        edit_env: Any, caplog: pytest.LogCaptureFixture) -> None:
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data.update(messaging={"broker": "external", "external": external,
                                                        "engine_version": "3.10"}))
    with caplog.at_level("WARNING"):
        synth_env("dev", ["broker"])
    warnings = [r.getMessage() for r in caplog.records if "consumer_timeout" in r.getMessage()]
    assert len(warnings) == 1 and "at least 21600000 ms" in warnings[0] and "RabbitMQ 3.10" in warnings[0]
