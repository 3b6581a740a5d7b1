"""What the layers send to AWS is what AWS's own API model admits (:mod:`shared.api_model`), in every env and
layer and in the shapes the shipped envs do not take; the checker catches each kind of refusal; and the env keys
that feed an API member directly admit no value the model refuses (the loader stops it with exit 2 naming file
and key)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Annotated, Any, get_args

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared import REPO_ROOT, catalog, envs, gateway_names, mesh_names, workflows
from shared.api_model import (
    CALLS,
    DOCUMENTED,
    attribute_range,
    document_problems,
    documented_fargate_sizes,
    documented_limits,
    member_problems,
    resource_problems,
    service_model,
    uncovered_types,
)
from shared.components import queue_metrics
from shared.envs import ENV_DIR_VAR, env_names, load_env
from shared.errors import ConfigError
from shared.synth.engine import synth_env
from tests.conftest import SHIPPED_ENVS
from tests.spec_envs import SPEC_ENV_DIR, USER_ENV_DIR
from tests.synth_helpers import synth_layers
from tests.test_provider_schema import VARIANTS

#: AWS resource types the layers create that :data:`shared.api_model.CALLS` does not map, and why. A type a layer
#: starts to create fails :func:`test_every_created_type_is_mapped_or_listed` until it is mapped or listed here.
UNCOVERED: dict[str, str] = {
    # no create call: the provider adopts the VPC's default group and revokes its rules (policy
    # vpc-default-security-group-closed checks they are empty)
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "adopted, not created",
}
LAYERS = ("network", "discovery", "mesh", "broker", "messaging", "compute")


@pytest.mark.parametrize("env", env_names())
@pytest.mark.parametrize("layer", LAYERS)
def test_what_each_layer_sends_is_what_the_api_model_admits(env: str, layer: str) -> None:
    document = synth_layers(env)[layer]
    assert document_problems(document) == []


@pytest.mark.parametrize("env", env_names(USER_ENV_DIR))
def test_what_the_env_files_that_deploy_send_is_what_the_api_model_admits(env: str) -> None:
    """environments/ (a fork's own accounts, regions and sizes) through its accepted snapshots, which test_synth.py
    holds equal to its synth."""
    for layer in LAYERS:
        path = REPO_ROOT / "tests" / "snapshots" / env / f"{layer}.json"
        assert path.is_file(), f"{path} is missing: UPDATE_SNAPSHOTS=1 nox -s tests -- tests/test_synth.py"
        assert document_problems(json.loads(path.read_text(encoding="utf-8"))) == [], path


@pytest.fixture(scope="module")
def variant_documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Each variant of tests/test_provider_schema.py, synthesized once for this module: layer -> document."""
    found: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as patch:
        for variant, (env, change) in sorted(VARIANTS.items()):
            target = tmp_path_factory.mktemp("environments")
            for name in SHIPPED_ENVS:
                shutil.copy2(SPEC_ENV_DIR / f"{name}.yaml", target)
            path = target / f"{env}.yaml"
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            for section, values in change.items():
                data.setdefault(section, {}).update(values)
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            patch.setenv(ENV_DIR_VAR, str(target))
            for layer, document in synth_env(env).items():
                found[f"{variant}/{layer}"] = document
    yield found


def test_what_the_other_shapes_send_is_what_the_api_model_admits(
        variant_documents: dict[str, dict[str, Any]]) -> None:
    """App Mesh's Cloud Map services, the public gateway's load balancer, target groups and listener, an external
    broker's messaging."""
    problems = [problem for document in variant_documents.values() for problem in document_problems(document)]
    assert problems == []
    created = {resource["type"] for document in variant_documents.values() for resource in document["resources"]}
    assert {"aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener",
            "aws:servicediscovery/service:Service"} <= created


def test_every_created_type_is_mapped_or_listed(variant_documents: dict[str, dict[str, Any]]) -> None:
    documents = [*variant_documents.values(), *(d for env in env_names() for d in synth_layers(env).values())]
    uncovered = set().union(*(uncovered_types(document) for document in documents))
    assert uncovered <= set(UNCOVERED), f"map {sorted(uncovered - set(UNCOVERED))} in shared.api_model.CALLS"
    assert set(UNCOVERED) <= uncovered, f"{sorted(set(UNCOVERED) - uncovered)} are no longer created: unlist them"
    assert not set(UNCOVERED) & set(CALLS)


@pytest.mark.parametrize("token", sorted(CALLS))
def test_each_call_names_a_real_operation_and_members(token: str) -> None:
    """The table's operations exist in the installed botocore, and each renamed member path leads to a member."""
    from shared.api_model import _descend  # the walk's own resolver

    call = CALLS[token]
    model = service_model(call.service)
    assert call.operation in model.operation_names
    for pulumi_path, target in call.members.items():
        if isinstance(target, tuple):
            assert target[0] in model.operation_names, (pulumi_path, target)
            shape = model.operation_model(target[0]).input_shape
            assert shape is not None and not isinstance(_descend(shape, target[1]), str), (pulumi_path, target)
    for shape_name, key in call.attributes.values():
        assert attribute_range(call.service, shape_name, key)  # the documentation still gives the key its range


@pytest.mark.parametrize("entry", DOCUMENTED, ids=lambda e: f"{e.service}.{e.shape}.{e.member}")
def test_each_documented_limit_is_still_in_the_model(entry: Any) -> None:
    """A limit read from a member's documentation still reads (a model that rewords it fails here, not silently)."""
    limits = documented_limits()[(entry.service, entry.shape, entry.member)]
    assert limits.values or limits.high is not None or limits.low is not None


# -- the checker catches each kind of refusal, on real botocore shapes ------------------------------------------

TASK = "aws:ecs/taskDefinition:TaskDefinition"


def _containers(**extra: Any) -> str:
    return json.dumps([{"name": "app", "image": "x", "essential": True, **extra}])


def _lifecycle(selection: dict[str, Any]) -> str:
    rule = {"rulePriority": 1, "description": "a rule long enough for the model's 100 characters at the least",
            "selection": selection, "action": {"type": "expire"}}
    return json.dumps({"rules": [rule]})


@pytest.mark.parametrize(("token", "name", "inputs", "expected"), [
    # an enum value not in the model
    ("aws:lambda/function:Function", "fn", {"runtime": "python3.99", "role": "arn:aws:iam::111111111111:role/r"},
     "inputs.runtime: 'python3.99' is not one of Runtime's values"),
    ("aws:mq/broker:Broker", "b", {"brokerName": "b", "deploymentMode": "MULTI_AZ"},
     "inputs.deploymentMode: 'MULTI_AZ' is not one of DeploymentMode's values"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {"comparisonOperator": "Above"},
     "inputs.comparisonOperator: 'Above' is not one of ComparisonOperator's values"),
    # a value the model lists only in its documentation (CloudWatch Logs' retention)
    ("aws:cloudwatch/logGroup:LogGroup", "g", {"name": "/g", "retentionInDays": 2},
     "inputs.retentionInDays: 2 is not one of the values Days admits"),
    # a number out of range: the model's min/max, and the documented ones
    ("aws:lambda/function:Function", "fn", {"memorySize": 64}, "inputs.memorySize: 64 is below"),
    ("aws:lambda/function:Function", "fn", {"timeout": 901}, "inputs.timeout: 901 is above"),
    ("aws:iam/role:Role", "r", {"maxSessionDuration": 60},
     "inputs.maxSessionDuration: 60 is below CreateRoleRequest.MaxSessionDuration minimum 3600"),
    ("aws:kms/key:Key", "k", {"deletionWindowInDays": 5},
     "inputs.deletionWindowInDays: 5 is below ScheduleKeyDeletionRequest.PendingWindowInDays minimum 7"),
    ("aws:secretsmanager/secret:Secret", "s", {"recoveryWindowInDays": 31}, "inputs.recoveryWindowInDays: 31 is above"),
    ("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "c", {"maximumRetryAttempts": 3},
     "inputs.maximumRetryAttempts: 3 is above"),
    # a too-long name: set, and filled by auto-naming (the logical name, a hyphen and 7 hex digits)
    ("aws:iam/role:Role", "r", {"name": "r" * 65}, "inputs.name: 65 characters, the model's maximum is 64"),
    ("aws:iam/role:Role", "r" * 57, {}, "inputs.name: 65 characters, the model's maximum is 64"),
    ("aws:lb/targetGroup:TargetGroup", "t", {"name": "t" * 33}, "inputs.name: 33 characters"),
    # a pattern the model gives
    ("aws:iam/role:Role", "r", {"name": "has space"}, "inputs.name: 'has space' does not match roleNameType"),
    # a bad nested field: an unknown member, a nested enum, a nested number, a list too long
    ("aws:ecs/service:Service", "s", {"serviceConnectConfiguration": {"enabled": True, "services": [
        {"portName": "p", "timeout": {"idleTimeoutSecs": 5}}]}},
     "inputs.serviceConnectConfiguration.services[0].timeout.idleTimeoutSecs: not sent as any member"),
    ("aws:appautoscaling/policy:Policy", "p", {"stepScalingPolicyConfiguration": {"adjustmentType": "Add"}},
     "inputs.stepScalingPolicyConfiguration.adjustmentType: 'Add' is not one of AdjustmentType's values"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "l", {"bucket": "b", "rules": [
        {"id": "r", "status": "Maybe"}]}, "inputs.rules[0].status: 'Maybe' is not one of ExpirationStatus's values"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {"alarmActions": [f"arn:aws:sns:::t{i}" for i in range(6)]},
     "inputs.alarmActions: 6 items, the model's maximum is 5"),
    # a map in Pulumi that is a list of name/value structures in the API (dimensions, tags)
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {"dimensions": {"": "x"}},
     "inputs.dimensions[0].Name: 0 characters, the model's minimum is 1"),
    # App Mesh's nested specs (the appmesh variant): a listener's health check interval
    ("aws:appmesh/virtualNode:VirtualNode", "n", {"meshName": "m", "name": "n", "spec": {"listeners": [
        {"portMapping": {"port": 8080, "protocol": "http"}, "healthCheck": {
            "healthyThreshold": 2, "intervalMillis": 1000, "protocol": "http", "timeoutMillis": 2000,
            "unhealthyThreshold": 3}}]}},
     "inputs.spec.listeners[0].healthCheck.intervalMillis: 1000 is below HealthCheckPolicy.intervalMillis minimum"),
    # a nested structure without a member the model requires
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {"metricQueries": [
        {"id": "m", "metric": {"metricName": "x", "namespace": "AWS/ECS", "period": 60}}]},
     "inputs.metricQueries[0].metric: no Stat (MetricStat requires it)"),
    # JSON text that is an API structure: the task definition's containers
    (TASK, "t", {"family": "t", "containerDefinitions": _containers(healthCheck={"command": ["x"], "interval": 301})},
     "inputs.containerDefinitions[0].healthCheck.interval: 301 is above HealthCheck.interval maximum 300"),
    (TASK, "t", {"family": "t", "containerDefinitions": _containers(portMappings=[{"containerPort": 1,
                                                                                   "protocol": "http"}])},
     "inputs.containerDefinitions[0].portMappings[0].protocol: 'http' is not one of TransportProtocol's values"),
    (TASK, "t", {"family": "t", "containerDefinitions": _containers(stopTimout=30)},
     "inputs.containerDefinitions[0].stopTimout: not sent as any member (ContainerDefinition has no member"),
    (TASK, "t", {"family": "t", "containerDefinitions": "[{"}, "inputs.containerDefinitions: not JSON"),
    # IAM JSON policy documents (text in the model): the policy grammar
    ("aws:iam/role:Role", "r", {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
         "Resource": "*"}]})}, "inputs.assumeRolePolicy: Statement[0]: a trust policy has no Resource"),
    ("aws:iam/rolePolicy:RolePolicy", "p", {"role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}]})},
     "inputs.policy: Statement[0]: Effect 'Permit' is not Allow or Deny"),
    ("aws:iam/rolePolicy:RolePolicy", "p", {"role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "read-objects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})},
     "inputs.policy: Statement[0]: Sid 'read-objects' is not alphanumeric"),
    ("aws:s3/bucketPolicy:BucketPolicy", "p", {"bucket": "b", "policy": json.dumps({"Version": "2012-10-17",
                                                                                  "Statement": [
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]})},
     "inputs.policy: Statement[0]: a resource policy needs Principal or NotPrincipal"),
    ("aws:kms/key:Key", "k", {"policy": json.dumps({"Version": "2012-10-18", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Principal": {"AWS": "*"}, "Resource": "*"}]})},
     "inputs.policy: Version '2012-10-18' is not one of 2012-10-17, 2008-10-17"),
    # an ECR lifecycle policy's text (ECR user guide, "Lifecycle policy properties in Amazon ECR")
    ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "l", {"repository": "r", "policy": _lifecycle(
        {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 5})},
     "inputs.policy: rules[0]: a tagged rule needs tagPrefixList or tagPatternList"),
    ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "l", {"repository": "r", "policy": _lifecycle(
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 3})},
     "inputs.policy: rules[0]: countUnit is \"days\" exactly for a since* countType"),
    ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "l", {"repository": "r", "policy": _lifecycle(
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0})},
     "inputs.policy: rules[0]: countNumber 0 is not a positive integer"),
    # Amazon MQ's documented lengths (a user's password: at least 12 characters)
    ("aws:mq/broker:Broker", "b", {"brokerName": "b", "users": [{"username": "u1", "password": "short"}]},
     "inputs.users[0].password: 5 characters, the model's minimum is 12"),
    ("aws:mq/broker:Broker", "b", {"brokerName": "b" * 51}, "inputs.brokerName: 51 characters"),
    # a key-value attribute's documented range (ModifyTargetGroupAttributes)
    ("aws:lb/targetGroup:TargetGroup", "t", {"deregistrationDelay": 3601},
     "inputs.deregistrationDelay: 3601 is not within 0-3600, the range of TargetGroupAttribute "
     "deregistration_delay.timeout_seconds"),
    ("aws:lb/loadBalancer:LoadBalancer", "l", {"idleTimeout": 4001}, "inputs.idleTimeout: 4001 is not within 1-4000"),
    # a tag value with a character IAM's tags refuse (a Java \\p{L} pattern, made Python's)
    ("aws:iam/role:Role", "r", {"tags": {"team": "ML & AI"}},
     "inputs.tags[0].Value: 'ML & AI' does not match tagValueType's pattern"),
    # a top-level input the table does not send anywhere
    ("aws:sns/topic:Topic", "t", {"deliveryPolicyX": "{}"}, "inputs.deliveryPolicyX: not sent as any member"),
])
def test_the_checker_names_what_aws_refuses(token: str, name: str, inputs: dict[str, Any], expected: str) -> None:
    problems = resource_problems(token, name, inputs)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(("token", "name", "inputs"), [
    # Amazon MQ takes the engine in any case; the provider passes "RabbitMQ" on
    ("aws:mq/broker:Broker", "b", {"brokerName": "b", "engineType": "RabbitMQ"}),
    # recovery window 0: the provider's ForceDeleteWithoutRecovery, not RecoveryWindowInDays
    ("aws:secretsmanager/secret:Secret", "s", {"name": "s", "recoveryWindowInDays": 0}),
    # a Pulumi block of one where the API has a list (the ECR encryption, the S3 ownership rule)
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "o",
     {"bucket": "b", "rule": {"objectOwnership": "BucketOwnerEnforced"}}),
    ("aws:iam/role:Role", "r" * 56, {}),  # 64 characters with the auto-name suffix
    ("aws:lb/targetGroup:TargetGroup", "t", {"slowStart": 0}),  # 0: no slow start (the attribute's default)
])
def test_the_checker_admits_what_aws_takes(token: str, name: str, inputs: dict[str, Any]) -> None:
    assert resource_problems(token, name, inputs) == []


def test_redacted_problems_name_no_text_only_its_size() -> None:
    # the policy rule's way (aws-api-model-valid): CrossGuard unwraps secrets, so any text may be a password
    inputs = {"name": "ml/inference", "imageTagMutability": "hunter2-hunter2",
              "imageScanningConfiguration": ["secret-one"], "encryptionConfigurations": "secret-two"}
    shown = resource_problems("aws:ecr/repository:Repository", "inference", inputs, redact=True)
    plain = resource_problems("aws:ecr/repository:Repository", "inference", inputs)
    assert len(shown) == len(plain) >= 3 and any("hunter2-hunter2" in problem for problem in plain)
    assert not any(secret in problem for problem in shown for secret in ("hunter2", "secret-one", "secret-two"))
    assert any("a text of 15 characters is not one of" in problem for problem in shown), shown


# -- env keys that feed an API member directly -------------------------------------------------------------------

#: (env file key, the model class and field that read it, service, structure shape, member or None for the shape):
#: the env value becomes that member unchanged.
ENV_KEYS: list[tuple[str, type[BaseModel], str, str, str, str | None]] = [
    ("network.flow_log_retention_days", envs.NetworkConfig, "flow_log_retention_days", "logs", "Days", None),
    ("compute.log_retention_days", envs.ComputeConfig, "log_retention_days", "logs", "Days", None),
    ("messaging.broker_log_retention_days", envs.MessagingConfig, "broker_log_retention_days", "logs", "Days", None),
    ("messaging.deploy_runner.log_retention_days", envs.DeployRunnerConfig, "log_retention_days", "logs", "Days",
     None),
    ("messaging.deploy_runner.timeout_minutes", envs.DeployRunnerConfig, "timeout_minutes", "codebuild",
     "CreateProjectInput", "timeoutInMinutes"),
    ("messaging.deploy_runner.compute_type", envs.DeployRunnerConfig, "compute_type", "codebuild", "ComputeType",
     None),
    ("messaging.deploy_runner.deploy_role_name", envs.DeployRunnerConfig, "deploy_role_name", "iam",
     "CreateRoleRequest", "RoleName"),
    ("messaging.deployment_mode", envs.MessagingConfig, "deployment_mode", "mq", "DeploymentMode", None),
    ("messaging.maintenance_window.day_of_week", envs.MaintenanceWindow, "day_of_week", "mq", "DayOfWeek", None),
    ("messaging.credentials_rotation.max_age_days", envs.CredentialsRotation, "max_age_days", "secretsmanager",
     "RotationRulesType", "AutomaticallyAfterDays"),
    ("discovery.dns_ttl_seconds", envs.DiscoveryConfig, "dns_ttl_seconds", "servicediscovery", "DnsRecord", "TTL"),
    ("discovery.static_instances[].instance_id", envs.StaticInstance, "instance_id", "servicediscovery",
     "RegisterInstanceRequest", "InstanceId"),
    ("alarms.evaluation_periods", envs.AlarmsConfig, "evaluation_periods", "cloudwatch", "PutMetricAlarmInput",
     "EvaluationPeriods"),
    ("alarms.period_seconds", envs.AlarmsConfig, "period_seconds", "cloudwatch", "PutMetricAlarmInput", "Period"),
    ("mesh.canaries[].weight", envs.CanaryVersion, "weight", "appmesh", "WeightedTarget", "weight"),
]


def _probes(service: str, owner: str, member: str | None, field_probes: list[Any]) -> list[Any]:
    """Values at and past each limit of the model's member, and the schema's own edges."""
    from shared.api_model import limits

    model = service_model(service).shape_for(owner)
    shape = model if member is None else model.members[member]  # type: ignore[attr-defined]
    bounds = limits(service, shape, None if member is None else owner, member)
    found: list[Any] = list(field_probes)
    if shape.type_name == "string":
        found += list(bounds.enum or ())
        if bounds.high is not None:
            found += ["a" * int(bounds.high), "a" * (int(bounds.high) + 1)]
        return found
    for edge in [*(bounds.values or ()), *(v for v in (bounds.low, bounds.high) if v is not None)]:
        found += [int(edge) - 1, int(edge), int(edge) + 1]
    return found


def _schema_edges(model: type[BaseModel], field: str) -> list[Any]:
    info = model.model_fields[field]
    edges: list[Any] = [*(a for a in get_args(info.annotation) if isinstance(a, str))]
    for literal in get_args(info.annotation):
        edges += [a for a in get_args(literal) if isinstance(a, str)]
    for meta in info.metadata:
        for attr in ("ge", "le", "gt", "lt"):
            if getattr(meta, attr, None) is not None:
                edges += [getattr(meta, attr) - 1, getattr(meta, attr), getattr(meta, attr) + 1]
    edges += [day for day in envs.LOG_RETENTION_DAYS for day in (day - 1, day, day + 1)]
    return edges


def _admits(model: type[BaseModel], field: str, value: Any) -> bool:
    info = model.model_fields[field]
    try:
        TypeAdapter(Annotated[info.annotation, info]).validate_python(value, strict=True)
    except ValidationError:
        return False
    return value is not None


@pytest.mark.parametrize(("key", "model", "field", "service", "owner", "member"), ENV_KEYS,
                         ids=[entry[0] for entry in ENV_KEYS])
def test_env_keys_admit_only_what_the_model_admits(key: str, model: type[BaseModel], field: str, service: str,
                                                   owner: str, member: str | None) -> None:
    probes = _probes(service, owner, member, _schema_edges(model, field))
    wrong = [(value, member_problems(service, owner, member, value)) for value in probes
             if _admits(model, field, value) and member_problems(service, owner, member, value)]
    assert not wrong, f"{key} admits values AWS refuses: {wrong}"
    assert any(_admits(model, field, value) for value in probes)  # the probes reach what the schema admits


#: (env file key, a value the model refuses, how the file holds it)
REFUSED: list[tuple[str, Any]] = [
    ("compute.log_retention_days", 2),
    ("network.flow_log_retention_days", 4000),
    ("messaging.broker_log_retention_days", 0),
    ("alarms.evaluation_periods", 0),
    ("messaging.credentials_rotation.max_age_days", 1001),
    ("messaging.deployment_mode", "ACTIVE_STANDBY"),
]


@pytest.mark.parametrize(("key", "value"), REFUSED, ids=[entry[0] for entry in REFUSED])
def test_the_loader_refuses_a_value_aws_refuses_naming_file_and_key(key: str, value: Any, edit_env: Any) -> None:
    entry = next(e for e in ENV_KEYS if e[0] == key)
    assert member_problems(entry[3], entry[4], entry[5], value)  # AWS refuses it

    def change(data: dict[str, Any]) -> None:
        *sections, last = key.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[last] = value

    edit_env("dev", change)
    with pytest.raises(ConfigError) as refused:
        load_env("dev")
    assert "dev.yaml" in str(refused.value) and key in str(refused.value), str(refused.value)


def test_the_catalogs_health_check_limits_are_the_models() -> None:
    """An app container's health check (shared.catalog, from a catalog entry's startup_seconds) within ECS's."""
    limits = documented_limits()
    assert limits[("ecs", "HealthCheck", "interval")].high == catalog.HEALTH_INTERVAL_MAX
    assert limits[("ecs", "HealthCheck", "startPeriod")].high == catalog.HEALTH_START_PERIOD_MAX
    assert limits[("ecs", "HealthCheck", "retries")].high == catalog.HEALTH_RETRIES_MAX
    timeout = limits[("ecs", "HealthCheck", "timeout")]
    assert timeout.low is not None and timeout.high is not None
    assert timeout.low <= catalog.HEALTH_TIMEOUT <= timeout.high


def test_the_loaders_retention_days_are_the_models() -> None:
    assert envs.LOG_RETENTION_DAYS == documented_limits()[("logs", "Days", None)].values



def test_the_fargate_sizes_the_loader_admits_are_the_models() -> None:
    """services.<name>.cpu / memory (and the catalog's): the pairs shared.fargate admits are the ones botocore ecs
    RegisterTaskDefinition ``memory`` lists for Fargate, no more and no fewer."""
    from shared.fargate import FARGATE_SIZES

    assert documented_fargate_sizes() == FARGATE_SIZES


def _model_limit(service: str, owner: str, member: str) -> tuple[float | None, float | None]:
    from shared.api_model import limits

    shape = service_model(service).shape_for(owner)
    found = limits(service, shape.members[member], owner, member)  # type: ignore[attr-defined]
    return found.low, found.high


@pytest.mark.parametrize(("constant", "value", "service", "owner", "member", "end"), [
    ("gateway_names.ELB_NAME_MAX", gateway_names.ELB_NAME_MAX, "elbv2", "CreateLoadBalancerInput", "Name", "high"),
    ("gateway_names.ELB_NAME_MAX", gateway_names.ELB_NAME_MAX, "elbv2", "CreateTargetGroupInput", "Name", "high"),
    ("mesh_names.SERVICE_CONNECT_NAME_MAX", mesh_names.SERVICE_CONNECT_NAME_MAX, "ecs", "ServiceConnectService",
     "discoveryName", "high"),
    ("mesh_names.SERVICE_CONNECT_DNS_NAME_MAX", mesh_names.SERVICE_CONNECT_DNS_NAME_MAX, "ecs",
     "ServiceConnectClientAlias", "dnsName", "high"),
    ("mesh_names.PRIVATE_NAMESPACE_MAX", mesh_names.PRIVATE_NAMESPACE_MAX, "servicediscovery",
     "CreatePrivateDnsNamespaceRequest", "Name", "high"),
    ("mesh_names.IAM_ROLE_NAME_MAX", mesh_names.IAM_ROLE_NAME_MAX, "iam", "CreateRoleRequest", "RoleName", "high"),
    ("catalog.ECS_DURATION_MAX", catalog.ECS_DURATION_MAX, "ecs", "TimeoutConfiguration", "perRequestTimeoutSeconds",
     "high"),
    ("workflows.CODEBUILD_MAX_BUILD_MINUTES", workflows.CODEBUILD_MAX_BUILD_MINUTES, "codebuild", "CreateProjectInput",
     "timeoutInMinutes", "high"),
    ("workflows.MIN_MAX_SESSION_SECONDS", workflows.MIN_MAX_SESSION_SECONDS, "iam", "CreateRoleRequest",
     "MaxSessionDuration", "low"),
    ("workflows.MAX_SESSION_SECONDS", workflows.MAX_SESSION_SECONDS, "iam", "CreateRoleRequest", "MaxSessionDuration",
     "high"),
    ("queue_metrics.MAX_EVENT_AGE_SECONDS", queue_metrics.MAX_EVENT_AGE_SECONDS, "lambda",
     "PutFunctionEventInvokeConfigRequest", "MaximumEventAgeInSeconds", "low"),
    ("queue_metrics.MAX_EVENT_AGE_SECONDS", queue_metrics.MAX_EVENT_AGE_SECONDS, "events", "RetryPolicy",
     "MaximumEventAgeInSeconds", "low"),
    ("envs.TAG_KEY_MAX", envs.TAG_KEY_MAX, "iam", "Tag", "Key", "high"),
    ("envs.TAG_VALUE_MAX", envs.TAG_VALUE_MAX, "iam", "Tag", "Value", "high"),
    ("envs.TAGS_PER_RESOURCE", envs.TAGS_PER_RESOURCE, "iam", "CreateRoleRequest", "Tags", "high"),
], ids=lambda value: value if isinstance(value, str) and "." in value else None)
def test_the_platforms_limits_are_the_models(constant: str, value: int, service: str, owner: str, member: str,
                                             end: str) -> None:
    """The constants that cite botocore for a limit (the env and catalog rules read them) hold the model's figure."""
    low, high = _model_limit(service, owner, member)
    assert value == (high if end == "high" else low), (constant, low, high)


def test_the_providers_default_tags_are_checked_on_each_resource_that_takes_tags() -> None:
    """pulumi-aws adds the provider's defaultTags (the env file's tags) to every resource that takes tags."""
    provider = "urn:pulumi:dev::compute::pulumi:providers:aws::aws-dev"

    def resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"urn": f"urn:pulumi:dev::compute::{type_}::{name}", "type": type_, "name": name, "custom": True,
                "provider": provider, "inputs": inputs}

    document = {"resources": [
        {"urn": provider, "type": "pulumi:providers:aws", "name": "aws-dev", "custom": True,
         "inputs": {"defaultTags": json.dumps({"tags": {"team": "ML & AI", "env": "dev"}})}},
        resource("aws:iam/role:Role", "role", {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}),
            "tags": {"env": "dev"}}),
        resource("aws:iam/rolePolicy:RolePolicy", "policy", {"role": "role", "policy": json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})}),
    ]}
    problems = document_problems(document)
    assert len(problems) == 1, problems
    assert "aws:iam/role:Role role: inputs.tags[0].Value: 'ML & AI' does not match" in problems[0]


@pytest.mark.parametrize(("change", "key"), [
    (lambda tags: tags.update(team="ML & AI"), "tags.team"),
    (lambda tags: tags.update({"cost-center": "cc,1001"}), "tags.cost-center"),
    (lambda tags: tags.update(owner="a" * 257), "tags.owner"),
    (lambda tags: tags.update({"k" * 129: "x"}), "tags." + "k" * 129),
])
def test_the_loader_refuses_a_tag_aws_refuses_naming_file_and_key(change: Any, key: str, edit_env: Any) -> None:
    """The env file's tags are every resource's (the provider's default tags): IAM, ECS and CloudWatch Logs refuse
    keys and values outside botocore's tagKeyType / tagValueType, at the first `up` of the layer's first role."""
    edit_env("dev", lambda data: change(data["tags"]))
    with pytest.raises(ConfigError) as refused:
        load_env("dev")
    assert "dev.yaml" in str(refused.value) and key in str(refused.value), str(refused.value)


def test_the_loaders_tag_characters_are_the_models() -> None:
    """shared.envs.tag_problem's characters are botocore iam tagValueType's pattern (Java's \\p{L}\\p{Z}\\p{N} and
    _.:/=+-@), over ASCII and a span of other scripts."""
    from shared.api_model import _pattern

    pattern = service_model("iam").shape_for("tagValueType").metadata["pattern"]
    compiled = _pattern(pattern)
    assert compiled is not None
    differ = [char for char in map(chr, [*range(0x20, 0x2100), *range(0x3000, 0x3100)])
              if bool(compiled.fullmatch(char)) != (envs.tag_problem("k", f"a{char}") is None)]
    assert differ == []
