"""Given an env (every committed env runs ECS Service Connect), the synthesized compute layer has an ECR
repo, two roles, a task definition, an ECS service and autoscaling per catalog service, wired with the
values the upstream layers' synthesized stacks export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.catalog import load_catalog
from shared.components.compute import plan_service
from shared.components.compute_wiring import AMQP_SECRET_KEYS
from shared.components.ecr import RELEASE_IMAGES_KEPT, SOURCE_RELEASE_IMAGES_KEPT, UNTAGGED_EXPIRY_DAYS
from shared.contracts import ComputeContract
from shared.envs import load_env
from shared.errors import ConfigError, ContractError
from shared.synth.engine import synth_program
from tests.catalog_helpers import stop_consuming
from tests.layers.compute_helpers import (
    CLUSTER,
    ENVS,
    KEY,
    LIFECYCLE,
    LOG_GROUP,
    REPOSITORY,
    SCALING_POLICY,
    SERVICE,
    container,
    environment,
    fresh,
    platform,
    statements,
    unit,
)
from tests.synth_helpers import by_name, by_urn, of_type

SERVICES = load_catalog().names()


def compute(env: str) -> dict[str, Any]:
    return platform(env)["compute"]


def outputs(env: str, layer: str) -> dict[str, Any]:
    return platform(env)[layer]["outputs"]


@pytest.mark.parametrize("env", ENVS)
def test_compute_reads_its_five_upstream_layers_and_its_own_last_outputs_of_its_env(env: str) -> None:
    """The broker for the tasks' AMQPS egress to its security group; the rest for wiring; its own stack for the
    handoff writers its last up kept rules for (a writer that left the catalog keeps its expiry rule)."""
    assert compute(env)["stack_references"] == [
        f"organization/{layer}/{env}" for layer in ("broker", "compute", "discovery", "mesh", "messaging", "network")]


@pytest.mark.parametrize("env", ENVS)
def test_the_exports_are_exactly_the_compute_contract_for_every_catalog_service(env: str) -> None:
    contract = ComputeContract.model_validate(compute(env)["outputs"])
    release = load_env(env).release.images
    assert set(contract.services) == set(SERVICES) == set(contract.repository_urls)
    assert contract.cluster_name == f"{env}-ml-platform"
    assert contract.cluster_arn.endswith(f":cluster/{env}-ml-platform")
    for service, exported in contract.services.items():
        # Promotion compares these digests with the release it is about to copy onwards.
        assert exported.image_digest == release[service]
        assert exported.image == f"{exported.repository_url}@{release[service]}"
        assert exported.repository_url == contract.repository_urls[service]
        assert exported.repository_url.endswith(f".dkr.ecr.eu-west-1.amazonaws.com/ml-platform/{service}")
        assert exported.ecs_service_name == service
        assert exported.ecs_service_arn.endswith(f":service/{env}-ml-platform/{service}")
        # What the orchestrator compares with the task definition ECS runs after compute's up: a circuit-breaker
        # rollback of a change that kept the image runs the previous revision (shared.images.rollout_mismatches).
        assert exported.task_definition_arn == unit(compute(env), service)["service"]["inputs"]["taskDefinition"]
        assert str(exported.task_definition_arn).endswith(f":task-definition/{env}-{service}:1")


@pytest.mark.parametrize("env", ENVS)
def test_every_service_has_a_scanned_immutable_kms_encrypted_repository_with_a_lifecycle(env: str) -> None:
    doc = compute(env)
    keep_last = load_env(env).compute.ecr_keep_last_images
    (ecr_key,) = [k for k in of_type(doc, KEY) if k["name"] == "compute-ecr"]
    for service in SERVICES:
        repo = by_name(doc, REPOSITORY, f"{service}-repo")
        inputs = repo["inputs"]
        assert inputs["name"] == f"ml-platform/{service}"
        assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert inputs["imageTagMutability"] == "IMMUTABLE"
        (encryption,) = inputs["encryptionConfigurations"]
        assert encryption["encryptionType"] == "KMS"
        assert encryption["kmsKey"].startswith("arn:aws:kms:eu-west-1:") and ecr_key["urn"] in repo["dependencies"]
        assert inputs["forceDelete"] is False
        assert repo["protect"] is load_env(env).protect
        lifecycle = by_name(doc, LIFECYCLE, f"{service}-repo")
        assert lifecycle["inputs"]["repository"] == inputs["name"]
        rules = json.loads(lifecycle["inputs"]["policy"])["rules"]
        # the env's releases, those of before the env was in the tag, where it receives images its source's newest
        # releases (promotion candidates), untagged images, the rest
        source = [("tagged", "imageCountMoreThan", SOURCE_RELEASE_IMAGES_KEPT)] if load_env(env).compute.image_source \
            else []
        assert [(r["selection"]["tagStatus"], r["selection"]["countType"], r["selection"]["countNumber"])
                for r in sorted(rules, key=lambda r: r["rulePriority"])] == [
            ("tagged", "imageCountMoreThan", RELEASE_IMAGES_KEPT),
            ("tagged", "imageCountMoreThan", RELEASE_IMAGES_KEPT),
            *source, ("untagged", "sinceImagePushed", UNTAGGED_EXPIRY_DAYS), ("any", "imageCountMoreThan", keep_last)]


def test_repositories_keys_and_log_groups_are_protected_in_prod_only() -> None:
    for env in ENVS:
        doc = compute(env)
        protected = {(r["type"], r["name"]) for r in doc["resources"] if r["protect"]}
        # Lifecycle policies, aliases, roles, task definitions and services are re-created without loss.
        expected = ({(REPOSITORY, f"{s}-repo") for s in SERVICES} | {(KEY, "compute-ecr"), (KEY, "compute-logs")}
                    | {(LOG_GROUP, r["name"]) for r in of_type(doc, LOG_GROUP)}
                    # the model-artifact bucket, its key and its access-log bucket (not the buckets' settings:
                    # re-created without loss)
                    | {(KEY, "compute-artifacts"), ("aws:s3/bucket:Bucket", "compute-artifacts"),
                       ("aws:s3/bucket:Bucket", "compute-artifacts-logs")})
        assert protected == (expected if env == "prod" else set()), env


@pytest.mark.parametrize("env", ENVS)
def test_cluster_has_container_insights_and_defaults_to_the_service_connect_namespace(env: str) -> None:
    (cluster,) = of_type(compute(env), CLUSTER)
    assert {"name": "containerInsights", "value": "enabled"} in cluster["inputs"]["settings"]
    assert cluster["inputs"]["serviceConnectDefaults"]["namespace"] == \
        outputs(env, "mesh")["service_connect_namespace_arn"] == outputs(env, "discovery")["http_namespace_arn"]


@pytest.mark.parametrize("env", ENVS)
def test_each_service_has_its_log_group_with_the_env_retention_and_kms_in_prod(env: str) -> None:
    doc = compute(env)
    config = load_env(env).compute
    keys = {k["name"]: k for k in of_type(doc, KEY)}
    assert ("compute-logs" in keys) is config.kms_encrypted_logs is True  # every env file encrypts its logs
    for service in SERVICES:
        log_group = unit(doc, service)["log_group"]["inputs"]
        assert log_group["name"] == f"/platform/{env}/compute/{service}"
        assert log_group["retentionInDays"] == config.log_retention_days
        assert ("kmsKeyId" in log_group) is config.kms_encrypted_logs
    if config.kms_encrypted_logs:
        # CloudWatch Logs encrypts as its service principal: the key policy must let it, for this
        # layer's log groups only.
        (logs_statement,) = [s for s in statements(keys["compute-logs"])
                             if s.get("Principal", {}).get("Service") == "logs.eu-west-1.amazonaws.com"]
        assert logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == \
            f"arn:aws:logs:eu-west-1:{load_env(env).account_id}:log-group:/platform/{env}/compute/*"
        assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"} <= set(logs_statement["Action"])


@pytest.mark.parametrize("env", ENVS)
def test_services_run_in_the_network_layers_private_subnets_with_its_service_sg_and_no_public_ip(env: str) -> None:
    network = outputs(env, "network")
    for service in SERVICES:
        inputs = unit(compute(env), service)["service"]["inputs"]
        assert inputs["networkConfiguration"] == {
            "subnets": network["private_subnet_ids"],
            "securityGroups": [network["service_security_group_id"]],
            "assignPublicIp": False,
        }
        assert not set(network["public_subnet_ids"]) & set(inputs["networkConfiguration"]["subnets"])
        # on-demand Fargate through a capacity provider strategy (env `capacity`), not a launch type
        assert "launchType" not in inputs
        assert inputs["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
        assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert inputs["waitForSteadyState"] is True  # up fails when a service does not settle
        assert inputs["enableExecuteCommand"] is False


@pytest.mark.parametrize("env", ENVS)
def test_services_join_the_mesh_layers_service_connect_namespace_under_its_names(env: str) -> None:
    mesh = outputs(env, "mesh")
    for spec in load_catalog():
        resources = unit(compute(env), spec.name)
        wiring = mesh["services"][spec.name]
        connect = resources["service"]["inputs"]["serviceConnectConfiguration"]
        assert connect["enabled"] is True
        assert connect["namespace"] == mesh["service_connect_namespace_arn"]
        assert connect["services"] == [{
            "portName": wiring["port_name"], "discoveryName": wiring["discovery_name"],
            "clientAlias": [{"dnsName": wiring["client_alias_dns"], "port": spec.port}],
            "timeout": {"perRequestTimeoutSeconds": spec.request_timeout_seconds,
                        "idleTimeoutSeconds": max(300, spec.request_timeout_seconds + 60)},
        }]
        assert connect["logConfiguration"]["options"]["awslogs-group"] == f"/platform/{env}/compute/{spec.name}"
        # Each request the proxy serves, a JSON line into that log (ECS needs the logConfiguration for it); query
        # strings may carry tokens, so they stay out, and DISABLED is sent so a refresh reads back what was sent.
        assert connect["accessLogConfiguration"] == {"format": "JSON", "includeQueryParameters": "DISABLED"}
        # The port Service Connect serves is the container's port mapping of that name.
        app = container(resources["task"], spec.name)
        assert app["portMappings"] == [{"name": wiring["port_name"], "containerPort": spec.port, "protocol": "tcp",
                                        "appProtocol": "http"}]
        assert "serviceRegistries" not in resources["service"]["inputs"]


@pytest.mark.parametrize("env", ENVS)
def test_every_callers_ecs_service_is_created_after_its_callees(env: str) -> None:
    # A Service Connect client resolves only the endpoints that existed when its task started.
    doc = compute(env)
    edges = [(spec.name, callee) for spec in load_catalog() for callee in spec.calls]
    assert edges
    for caller, callee in edges:
        caller_service, callee_service = unit(doc, caller)["service"], unit(doc, callee)["service"]
        assert callee_service["urn"] in caller_service["dependencies"], (caller, callee)
    # ... and nothing else: a service that calls nobody waits for no other service.
    services = {r["urn"] for r in of_type(doc, SERVICE)}
    for spec in load_catalog():
        waits_for = set(unit(doc, spec.name)["service"]["dependencies"]) & services
        assert waits_for == {unit(doc, callee)["service"]["urn"] for callee in spec.calls}, spec.name


@pytest.mark.parametrize("env", ENVS)
def test_task_definitions_are_fargate_awsvpc_with_the_catalog_size_overridden_by_the_env(env: str) -> None:
    config = load_env(env)
    for spec in load_catalog():
        task = unit(compute(env), spec.name)["task"]["inputs"]
        settings = config.service_settings(spec.name)
        assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
        assert (task["cpu"], task["memory"]) == (str(settings.cpu or spec.cpu), str(settings.memory or spec.memory))
        assert task["family"] == f"{env}-{spec.name}"
        assert "proxyConfiguration" not in task
    # prod gives inference more than the catalog does: the override is what runs.
    assert unit(compute("prod"), "inference")["task"]["inputs"]["cpu"] == "2048"


@pytest.mark.parametrize("env", ENVS)
def test_the_app_container_is_locked_down_pinned_and_logs_to_its_group(env: str) -> None:
    release = load_env(env).release.images
    urls = compute(env)["outputs"]["repository_urls"]
    for spec in load_catalog():
        task = unit(compute(env), spec.name)["task"]
        app = container(task, spec.name)
        assert app["image"] == f"{urls[spec.name]}@{release[spec.name]}"
        assert app["readonlyRootFilesystem"] is True
        assert {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False} in app["mountPoints"]
        assert {"name": "tmp"} in task["inputs"]["volumes"]
        assert app["user"] == "10001:10001" and app["privileged"] is False
        assert app["linuxParameters"]["capabilities"] == {"add": [], "drop": ["ALL"]}
        assert app["logConfiguration"] == {"logDriver": "awslogs", "options": {
            "awslogs-group": f"/platform/{env}/compute/{spec.name}", "awslogs-region": "eu-west-1",
            "awslogs-stream-prefix": spec.name, "mode": "non-blocking", "max-buffer-size": "25m"}}
        assert app["healthCheck"]["command"] == [
            "CMD-SHELL",
            f"curl -fsS --max-time 4 -o /dev/null http://127.0.0.1:{spec.port}{spec.health_path} || exit 1"]
        # Only the scratch init container besides the app in Service Connect envs (ECS adds its proxy), and the serve
        # gate for a service others call (test_serve_gate).
        gate = ["serve-gate"] if load_catalog().callers(spec.name) else []
        assert [c["name"] for c in json.loads(task["inputs"]["containerDefinitions"])] == [
            spec.name, "scratch-init", *gate]


@pytest.mark.parametrize("env", ENVS)
def test_every_awslogs_configuration_names_its_delivery_mode_and_the_services_own_group(env: str) -> None:
    # Without ``mode`` ECS takes the account's defaultLogDriverMode, which may be ``blocking``: a container
    # then hangs on stdout while CloudWatch Logs is out of reach. Every container and the Service Connect
    # proxy say non-blocking with a stated buffer, and log to the pre-created group (never create one).
    seen = 0
    for spec in load_catalog():
        resources = unit(compute(env), spec.name)
        definitions = json.loads(resources["task"]["inputs"]["containerDefinitions"])
        configurations = [c["logConfiguration"] for c in definitions]
        configurations.append(resources["service"]["inputs"]["serviceConnectConfiguration"]["logConfiguration"])
        for configuration in configurations:
            seen += 1
            options = configuration["options"]
            assert configuration["logDriver"] == "awslogs"
            assert (options["mode"], options["max-buffer-size"]) == ("non-blocking", "25m"), options
            assert options["awslogs-group"] == f"/platform/{env}/compute/{spec.name}"
            assert "awslogs-create-group" not in options
    # app, scratch-init and proxy each, plus the serve gate of each service others call
    assert seen == 3 * len(SERVICES) + sum(1 for spec in load_catalog() if load_catalog().callers(spec.name))


@pytest.mark.parametrize("env", ENVS)
def test_rabbitmq_credentials_come_from_the_messaging_layers_secret_never_from_environment(env: str) -> None:
    secret_arns = outputs(env, "messaging")["service_secret_arns"]
    versions = outputs(env, "messaging")["service_secret_versions"]
    for service in SERVICES:
        resources = unit(compute(env), service)
        app = container(resources["task"], service)
        # <arn>:<json key>:<version stage, empty>:<version id>: pinned to the version messaging last wrote
        assert {s["name"]: s["valueFrom"] for s in app["secrets"]} == {
            var: f"{secret_arns[service]}:{key}::{versions[service]}" for var, key in AMQP_SECRET_KEYS.items()}
        plain = environment(app)
        assert not {"AMQP_URL", "AMQP_USERNAME", "AMQP_PASSWORD"} & set(plain)
        assert not any(other_arn in json.dumps(app) for other, other_arn in secret_arns.items() if other != service)
        # ... and the execution role may read that one secret, nothing else in Secrets Manager.
        (read,) = [s for s in statements(resources["execution_policy"]) if s["Sid"] == "ReadOwnSecrets"]
        assert read["Resource"] == [secret_arns[service]]
        # The secret is on the messaging layer's customer-managed key: ECS needs kms:Decrypt, only
        # through Secrets Manager, on keys of the secret's own account and region, for that secret's data keys.
        (decrypt,) = [s for s in statements(resources["execution_policy"]) if s["Action"] == "kms:Decrypt"]
        config = load_env(env)
        assert decrypt["Resource"] == f"arn:aws:kms:{config.region}:{config.account_id}:key/*"
        via = f"secretsmanager.{config.region}.amazonaws.com"
        assert decrypt["Condition"] == {"StringEquals": {
            "kms:ViaService": via, "kms:EncryptionContext:SecretARN": [secret_arns[service]]}}


def test_the_secret_keys_compute_selects_are_the_ones_the_messaging_layer_writes() -> None:
    from shared.components.messaging import connection_secret

    written = json.loads(connection_secret("svc", "pw", "amqps://broker.example:5671", "ml-dev"))
    assert set(AMQP_SECRET_KEYS.values()) <= set(written)


@pytest.mark.parametrize("env", ENVS)
def test_discovery_names_and_broker_objects_are_plain_environment(env: str) -> None:
    mesh, messaging = outputs(env, "mesh"), outputs(env, "messaging")
    for spec in load_catalog():
        plain = environment(container(unit(compute(env), spec.name)["task"], spec.name))
        expected_urls = {f"{callee.upper()}_URL": f"http://{mesh['services'][callee]['client_alias_dns']}:"
                                                  f"{load_catalog()[callee].port}" for callee in spec.calls}
        assert {k: v for k, v in plain.items() if k.endswith("_URL")} == expected_urls
        assert plain["DISCOVERY_NAMESPACE"] == outputs(env, "discovery")["private_namespace_name"]
        assert plain["AMQP_ENDPOINT"] == messaging["amqps_endpoint"] and "@" not in plain["AMQP_ENDPOINT"]
        assert plain["AMQP_VHOST"] == messaging["vhost"]
        assert (plain["AMQP_REQUESTS_EXCHANGE"], plain["AMQP_EVENTS_EXCHANGE"]) == \
            (messaging["requests_exchange"], messaging["events_exchange"])
        assert plain.get("AMQP_QUEUE") == messaging["queues"].get(spec.name)
        assert (plain["SERVICE_NAME"], plain["PLATFORM_ENV"], plain["PORT"]) == (spec.name, env, str(spec.port))


@pytest.mark.parametrize("env", ENVS)
def test_execution_and_task_roles_are_separate_and_wired_into_the_task_definition(env: str) -> None:
    doc = compute(env)
    for service in SERVICES:
        resources = unit(doc, service)
        task = resources["task"]["inputs"]
        execution_name = resources["execution_policy"]["inputs"]["role"]
        assert task["executionRoleArn"].endswith(f":role/{execution_name}")
        assert task["taskRoleArn"] != task["executionRoleArn"] and task["taskRoleArn"].startswith("arn:aws:iam::")
        for role in (resources["execution_role"], resources["task_role"]):
            (trust,) = statements(role, "assumeRolePolicy")
            assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
            assert "managedPolicyArns" not in role["inputs"]


@pytest.mark.parametrize("env", ENVS)
def test_desired_count_and_cpu_autoscaling_follow_the_env(env: str) -> None:
    config = load_env(env)
    for service in SERVICES:
        settings = config.service_settings(service)
        resources = unit(compute(env), service)
        assert resources["service"]["inputs"]["desiredCount"] == settings.desired_count
        target = resources["scaling_target"]["inputs"]
        assert target == {"maxCapacity": settings.max_count, "minCapacity": settings.min_count,
                          "resourceId": f"service/{env}-ml-platform/{service}",
                          "scalableDimension": "ecs:service:DesiredCount", "serviceNamespace": "ecs"}
        cpu = [p for p in of_type(compute(env), SCALING_POLICY) if p["name"] == f"{service}-cpu"]
        if plan_service(config, load_catalog(), service).wakes_on_backlog:  # its queue alone scales it
            assert cpu == []
            continue
        (policy,) = cpu
        scaling = policy["inputs"]
        assert scaling["policyType"] == "TargetTrackingScaling"
        tracking = scaling["targetTrackingScalingPolicyConfiguration"]
        assert tracking["predefinedMetricSpecification"] == {"predefinedMetricType": "ECSServiceAverageCPUUtilization"}
        assert tracking["targetValue"] == settings.cpu_target_percent


def test_every_resource_belongs_to_the_compute_component_and_uses_the_layers_aws_provider() -> None:
    doc = compute("dev")
    resources = by_urn(doc)
    (provider,) = [r for r in doc["resources"] if r["type"] == "pulumi:providers:aws"]
    for resource in doc["resources"]:
        if resource["type"].startswith("aws:"):
            assert resource["provider"] == provider["urn"], resource["name"]
            top = resource
            while top["parent"] in resources:
                top = resources[top["parent"]]
            assert top["type"] == "mlplatform:compute:ComputePlatform", resource["name"]


def upstream_outputs() -> dict[str, dict[str, Any]]:
    """A copy (for a test to edit) of dev's upstream stacks' outputs, keyed by stack reference."""
    return {f"organization/{layer}/dev": json.loads(json.dumps(platform("dev")[layer]["outputs"]))
            for layer in ("network", "discovery", "mesh", "broker", "messaging")}


def synth_compute(stack_outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Dev's compute layer synthesized against ``stack_outputs``."""
    return synth_program(REPO_ROOT / "stacks/compute", stack="dev", layer="compute", env="dev",
                         account_id="111111111111", region="eu-west-1", stack_outputs=stack_outputs)


def test_a_service_missing_from_an_upstream_contract_is_refused_naming_it() -> None:
    # e.g. a catalog entry added, compute re-run before messaging: the credentials do not exist yet.
    stack_outputs = upstream_outputs()
    del stack_outputs["organization/messaging/dev"]["service_secret_arns"]["inference"]
    with pytest.raises(ContractError, match=r"messaging\.service_secret_arns\['inference'\]"):
        synth_compute(stack_outputs)


def test_compute_before_messaging_rolls_a_service_off_the_queue_it_stops_consuming(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run that stops a consumer safely is compute's before messaging's (shared.service_removal.check_consumers):
    messaging's deployed stack still holds the queue then, and the new task definition must not name it."""
    stack_outputs = upstream_outputs()
    assert stack_outputs["organization/messaging/dev"]["queues"]["gateway"] == "gateway.work"
    stop_consuming(tmp_path, monkeypatch, "gateway")
    doc = synth_compute(stack_outputs)
    plain = environment(container(unit(doc, "gateway")["task"], "gateway"))
    assert "AMQP_QUEUE" not in plain and plain["AMQP_ENDPOINT"]  # it still publishes
    exported = doc["outputs"]["services"]
    assert (exported["gateway"]["amqp_queue"], exported["gateway"]["amqp_credentials"]) == ("", True)
    assert exported["inference"]["amqp_queue"] == "inference.work"


def _secrets_and_policies(docs: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """service -> its app container's ``secrets``, its whole container definitions, its execution policy."""
    doc = docs["compute"]
    secrets, definitions, policies = {}, {}, {}
    for service in SERVICES:
        resources = unit(doc, service)
        secrets[service] = json.dumps(container(resources["task"], service)["secrets"])
        definitions[service] = resources["task"]["inputs"]["containerDefinitions"]
        policies[service] = resources["execution_policy"]["inputs"]["policy"]
    return secrets, definitions, policies


def test_an_env_that_turns_access_logs_off_changes_only_each_services_service_connect_configuration(
        edit_env: Any) -> None:
    """`mesh.service_connect_access_logs: false`: the proxies stop logging each request; nothing else moves (an
    UpdateService in place: the task definitions, and so the containers, stay as they are)."""
    before = compute("dev")
    edit_env("dev", lambda data: data["mesh"].update(service_connect_access_logs=False))
    after = fresh("dev")["compute"]
    for name in SERVICES:
        old, new = unit(before, name), unit(after, name)
        connect = new["service"]["inputs"]["serviceConnectConfiguration"]
        assert "accessLogConfiguration" not in connect
        was = old["service"]["inputs"]["serviceConnectConfiguration"]
        assert connect["logConfiguration"] == was["logConfiguration"]
        assert new["task"]["inputs"] == old["task"]["inputs"], name
    changed = {r["urn"] for r in before["resources"]} ^ {r["urn"] for r in after["resources"]}
    assert not changed


def test_an_appmesh_env_may_not_set_service_connect_access_logs(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True,
                                                       service_connect_access_logs=True))
    with pytest.raises(ConfigError) as refused:
        load_env("prod")
    assert refused.value.key == "mesh.service_connect_access_logs"
    assert "for provider service-connect only" in str(refused.value)


def test_a_new_rotation_epoch_changes_the_task_definitions_so_ecs_rolls_the_tasks(edit_env: Any) -> None:
    """ECS reads a secret only at task start: the rotated password reaches the services only through new
    tasks, which a changed task definition makes the ECS service start (in the same `up`)."""
    before_secrets, before_definitions, before_policies = _secrets_and_policies(platform("dev"))
    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation={"epoch": "2027-01-15",
                                                                                "max_age_days": 180}))
    docs = fresh("dev")
    after_secrets, after_definitions, after_policies = _secrets_and_policies(docs)
    versions = docs["messaging"]["outputs"]["service_secret_versions"]
    old_versions = outputs("dev", "messaging")["service_secret_versions"]
    for service in SERVICES:
        assert versions[service] != old_versions[service], service
        assert after_secrets[service] != before_secrets[service], service
        # only the version id changed in the container definitions ...
        assert after_definitions[service] == before_definitions[service].replace(
            old_versions[service], versions[service]), service
        # ... and the execution role still reads the secret by its ARN (GetSecretValue of any of its versions)
        assert after_policies[service] == before_policies[service], service


def test_without_a_new_epoch_the_task_definitions_stay_byte_identical(edit_env: Any) -> None:
    # A change that concerns no password (the rotation's max age) writes no new secret version.
    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation={"epoch": "2026-11-01",
                                                                                "max_age_days": 30}))
    docs = fresh("dev")
    assert docs["messaging"]["outputs"]["service_secret_versions"] == \
        outputs("dev", "messaging")["service_secret_versions"]
    assert _secrets_and_policies(docs) == _secrets_and_policies(platform("dev"))


def test_a_messaging_stack_older_than_secret_versions_falls_back_to_the_current_version_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    # A stack deployed before the output existed: compute keeps working unpinned (what it did before)
    # and says to run up of messaging, whose next up exports the versions.
    stack_outputs = upstream_outputs()
    del stack_outputs["organization/messaging/dev"]["service_secret_versions"]
    secret_arns = stack_outputs["organization/messaging/dev"]["service_secret_arns"]
    with caplog.at_level("WARNING"):
        doc = synth_compute(stack_outputs)
    for service in SERVICES:
        app = container(unit(doc, service)["task"], service)
        assert {s["name"]: s["valueFrom"] for s in app["secrets"]} == {
            var: f"{secret_arns[service]}:{key}::" for var, key in AMQP_SECRET_KEYS.items()}
    warnings = [r.getMessage() for r in caplog.records if "service_secret_versions" in r.getMessage()]
    assert len(warnings) == 1 and "Run up of messaging first" in warnings[0]


def test_a_service_missing_from_the_secret_versions_is_refused_naming_it() -> None:
    stack_outputs = upstream_outputs()
    del stack_outputs["organization/messaging/dev"]["service_secret_versions"]["inference"]
    with pytest.raises(ContractError, match=r"messaging\.service_secret_versions\['inference'\]"):
        synth_compute(stack_outputs)


@pytest.mark.parametrize("env", ENVS)
def test_tasks_reach_the_amazon_mq_broker_by_its_security_group_on_amqps_only(env: str) -> None:
    docs = platform(env)
    rules = [r for r in of_type(docs["compute"], "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
             if r["name"] == "compute-tasks-to-broker"]
    assert len(rules) == 1
    rule = rules[0]["inputs"]
    assert rule["securityGroupId"] == docs["network"]["outputs"]["service_security_group_id"]
    assert rule["referencedSecurityGroupId"] == docs["broker"]["outputs"]["broker_security_group_id"]
    assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 5671, 5671)
    assert "cidrIpv4" not in rule


@pytest.mark.parametrize(("endpoint", "cidr", "port"), [
    ("amqps://rabbit.example.org:5671", "0.0.0.0/0", 5671),
    ("amqps://10.99.0.7:15671", "10.99.0.7/32", 15671),
])
def test_an_external_brokers_amqps_egress_is_its_port_and_known_address(
        edit_env: Any, endpoint: str, cidr: str, port: int) -> None:
    from shared.components.broker_egress import BrokerTarget

    external = {"amqps_endpoint": endpoint, "management_endpoint": "https://rabbit.example.org"}
    edit_env("dev", lambda data: data.update(messaging={"broker": "external", "external": external}))
    target = BrokerTarget.from_env(load_env("dev"))
    assert (target.mode, target.cidr_ipv4, target.port) == ("external", cidr, port)
    assert BrokerTarget.from_env(load_env("prod")) == BrokerTarget(mode="amazon-mq", port=5671, cidr_ipv4=None)


def test_compute_refuses_a_service_that_could_never_scale_out_of_zero_tasks() -> None:
    # The loader refuses it first (tests/test_envs.py); compute repeats the reason should it be bypassed.
    from shared.components.compute import plan_service
    from shared.envs import ServiceSettings
    from shared.errors import ConfigError

    env = load_env("dev")
    idle = ServiceSettings.model_construct(cpu=None, memory=None, desired_count=0, min_count=0, max_count=2,
                                           cpu_target_percent=60)
    bypassed = env.model_copy(update={"services": {**env.services, "inference": idle}})
    with pytest.raises(ConfigError, match="insufficient data") as error:
        plan_service(bypassed, load_catalog(), "inference")
    assert error.value.key == "services.inference.min_count" and error.value.file.endswith("dev.yaml")
    # a consumer no request reaches wakes on its published backlog
    rests = env.model_copy(update={"services": {**env.services, "training": idle}})
    assert plan_service(rests, load_catalog(), "training").wakes_on_backlog
