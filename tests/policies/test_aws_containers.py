"""The container rules of the ``aws`` pack (ECR repositories, ECS clusters, task definitions, services).

Every case goes through the real pack process (``policy_findings``) and asserts on one rule id for
one resource. Task definitions start from :func:`good_task` -- compliant with every rule -- and each
case changes the one thing it is about.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.resources import messages, res
from tests.policies.tokens import ECR_LIFECYCLE_POLICY as LIFECYCLE_POLICY
from tests.policies.tokens import ECS_CLUSTER as CLUSTER
from tests.policies.tokens import REPO as REPOSITORY
from tests.policies.tokens import SERVICE, TASK

DIGEST = "sha256:3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d"
IMAGE = f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/inference@{DIGEST}"
TASK_RULES = (
    "ecs-task-awsvpc", "ecs-task-no-privileged", "ecs-task-read-only-root-fs", "ecs-task-non-root-user",
    "ecs-task-logging", "ecs-task-no-plaintext-secrets", "ecs-task-fargate-size-valid", "ecs-task-definition-valid",
    "ecs-task-image-pinned", "ecs-task-separate-roles",
)


# --- ECR ----------------------------------------------------------------------------------------


def repository(name: str = "inference", **inputs: Any) -> dict[str, Any]:
    return res(REPOSITORY, name, {"name": name, **inputs})


GOOD_REPOSITORY = {
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:111111111111:key/1"}],
}


def test_a_repository_with_defaults_violates_scan_mutability_and_kms(policy_findings):
    findings = policy_findings([repository()])
    assert messages(findings, "ecr-immutable-tags", "inference") == [
        "ECR repository 'inference' allows tag overwrites; set image_tag_mutability=IMMUTABLE."]
    assert "scan_on_push" in messages(findings, "ecr-scan-on-push", "inference")[0]
    assert "AES256 (the default)" in messages(findings, "ecr-kms-encryption", "inference")[0]


def test_a_hardened_repository_passes_scan_mutability_and_kms(policy_findings):
    findings = policy_findings([repository(**GOOD_REPOSITORY)])
    for rule in ("ecr-immutable-tags", "ecr-scan-on-push", "ecr-kms-encryption"):
        assert not messages(findings, rule, "inference"), rule


@pytest.mark.parametrize(("mutability", "violates"), [
    ("IMMUTABLE", False), ("MUTABLE", True), ("IMMUTABLE_WITH_EXCLUSION", True), ("MUTABLE_WITH_EXCLUSION", True)])
def test_ecr_immutable_tags(policy_findings, mutability, violates):
    findings = policy_findings([repository(imageTagMutability=mutability)])
    assert bool(messages(findings, "ecr-immutable-tags", "inference")) is violates


@pytest.mark.parametrize(("scanning", "violates"), [
    ({"scanOnPush": True}, False), ({"scanOnPush": False}, True), (None, True)])
def test_ecr_scan_on_push(policy_findings, scanning, violates):
    inputs = {"imageScanningConfiguration": scanning} if scanning is not None else {}
    assert bool(messages(policy_findings([repository(**inputs)]), "ecr-scan-on-push", "inference")) is violates


@pytest.mark.parametrize(("encryption", "violates"), [
    ([{"encryptionType": "KMS"}], False), ([{"encryptionType": "AES256"}], True), (None, True)])
def test_ecr_kms_encryption(policy_findings, encryption, violates):
    inputs = {"encryptionConfigurations": encryption} if encryption is not None else {}
    assert bool(messages(policy_findings([repository(**inputs)]), "ecr-kms-encryption", "inference")) is violates


def lifecycle_policy(name: str, repository_name: str, **opts: Any) -> dict[str, Any]:
    policy = {"rules": [{"rulePriority": 1, "description": "keep last 10",
                         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
                         "action": {"type": "expire"}}]}
    return res(LIFECYCLE_POLICY, name, {"repository": repository_name, "policy": json.dumps(policy)}, **opts)


def test_ecr_lifecycle_policy_attributed_through_dependencies(policy_findings):
    repo = repository()
    findings = policy_findings([repo, lifecycle_policy("inference-lifecycle", "inference", dependencies=[repo])])
    assert not [f for f in findings if f["rule"] == "ecr-lifecycle-policy"]


def test_ecr_lifecycle_policy_attributed_by_repository_name(policy_findings):
    # No recorded dependency (e.g. the name was written as a literal): the value still matches.
    findings = policy_findings([repository(), lifecycle_policy("inference-lifecycle", "inference")])
    assert not [f for f in findings if f["rule"] == "ecr-lifecycle-policy"]


def test_ecr_repository_without_lifecycle_policy_fails(policy_findings):
    training = repository("training")
    findings = policy_findings([repository(), training, lifecycle_policy("lc", "inference")])
    assert not messages(findings, "ecr-lifecycle-policy", "inference")
    (message,) = messages(findings, "ecr-lifecycle-policy", "training")
    assert "ECR repository 'training' has no lifecycle policy" in message


# --- ECS cluster --------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "violates"), [
    ([{"name": "containerInsights", "value": "enabled"}], False),
    ([{"name": "containerInsights", "value": "enhanced"}], False),
    ([{"name": "containerInsights", "value": "disabled"}], True),
    (None, True),
], ids=["enabled", "enhanced", "disabled", "unset"])
def test_ecs_cluster_container_insights(policy_findings, settings, violates):
    inputs = {"settings": settings} if settings is not None else {}
    cluster = res(CLUSTER, "platform", inputs)
    assert bool(messages(policy_findings([cluster]), "ecs-cluster-container-insights", "platform")) is violates


# --- ECS task definitions -----------------------------------------------------------------------


def good_container(**overrides: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "inference",
        "image": IMAGE,
        "essential": True,
        "user": "1000:1000",
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
        "environment": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "BROKER_HOST", "value": "b-1.mq.aws"}],
        "secrets": [{"name": "BROKER_PASSWORD",
                     "valueFrom": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:broker-AbCdEf"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ml/inference",
                                                                  "awslogs-region": "eu-west-1",
                                                                  "awslogs-stream-prefix": "inference"}},
    }
    container.update(overrides)
    return {k: v for k, v in container.items() if v is not None}


def task(containers: list[dict[str, Any]] | str | None = None, name: str = "inference", **overrides: Any
         ) -> dict[str, Any]:
    definitions = [good_container()] if containers is None else containers
    inputs: dict[str, Any] = {
        "family": name,
        "containerDefinitions": definitions if isinstance(definitions, str) else json.dumps(definitions),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "taskRoleArn": "arn:aws:iam::111111111111:role/inference-task",
        "executionRoleArn": "arn:aws:iam::111111111111:role/inference-execution",
    }
    inputs.update(overrides)
    return res(TASK, name, {k: v for k, v in inputs.items() if v is not None})


def test_the_baseline_task_definition_passes_every_task_rule(policy_findings):
    findings = policy_findings([task()])
    assert {f["rule"] for f in findings if f["urn"].endswith("::inference")}.isdisjoint(TASK_RULES)


@pytest.mark.parametrize(("network_mode", "violates"), [("awsvpc", False), ("bridge", True), ("host", True),
                                                        (None, True)])
def test_ecs_task_awsvpc(policy_findings, network_mode, violates):
    found = messages(policy_findings([task(networkMode=network_mode, requiresCompatibilities=["EC2"])]),
                     "ecs-task-awsvpc", "inference")
    assert bool(found) is violates


@pytest.mark.parametrize(("overrides", "container", "violates"), [
    ({}, {}, False),
    ({"pidMode": "task", "ipcMode": "none"}, {"privileged": False}, False),
    ({}, {"privileged": True}, True),
    ({"pidMode": "host"}, {}, True),
    ({"ipcMode": "host"}, {}, True),
], ids=["default", "explicitly-isolated", "privileged", "host-pid", "host-ipc"])
def test_ecs_task_no_privileged(policy_findings, overrides, container, violates):
    definition = task([good_container(**container)], requiresCompatibilities=["EC2"], **overrides)
    assert bool(messages(policy_findings([definition]), "ecs-task-no-privileged", "inference")) is violates


@pytest.mark.parametrize(("value", "violates"), [(True, False), (False, True), (None, True)])
def test_ecs_task_read_only_root_fs(policy_findings, value, violates):
    definition = task([good_container(), good_container(name="envoy", readonlyRootFilesystem=value)])
    found = messages(policy_findings([definition]), "ecs-task-read-only-root-fs", "inference")
    assert bool(found) is violates
    if violates:
        assert "'envoy'" in found[0] and "'inference'" not in found[0].split(":", 1)[1]


@pytest.mark.parametrize(("user", "violates"), [
    ("1000:1000", False), ("app", False), ("1000", False),
    ("root", True), ("0", True), ("0:0", True), ("root:app", True), (None, True)])
def test_ecs_task_non_root_user(policy_findings, user, violates):
    definition = task([good_container(user=user)])
    assert bool(messages(policy_findings([definition]), "ecs-task-non-root-user", "inference")) is violates


ALL_BUT_CHOWN = ["AUDIT_WRITE", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "NET_RAW",
                 "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT", "SYS_ADMIN"]


def init_container(**overrides: Any) -> dict[str, Any]:
    """A root container that only chowns a scratch volume, then exits (the compliant shape)."""
    shape: dict[str, Any] = {
        "name": "scratch-init", "essential": False, "user": "0", "portMappings": None, "secrets": None,
        "environment": None, "entryPoint": ["/bin/sh", "-c"], "command": ["chown 1000:1000 /scratch-init/tmp"],
        "linuxParameters": {"capabilities": {"drop": ALL_BUT_CHOWN}}}
    return good_container(**{**shape, **overrides})


def app_waiting_for(condition: str = "SUCCESS") -> dict[str, Any]:
    return good_container(dependsOn=[{"containerName": "scratch-init", "condition": condition}])


@pytest.mark.parametrize(("init", "app", "violation"), [
    (init_container(), app_waiting_for(), None),
    (init_container(), app_waiting_for("COMPLETE"), None),
    (init_container(linuxParameters={"capabilities": {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]}}),
     app_waiting_for(), None),
    (init_container(linuxParameters={"capabilities": {"drop": ["ALL"]}}), app_waiting_for(), None),
    (init_container(), app_waiting_for("START"), "no container waits for it to exit"),
    (init_container(), good_container(), "no container waits for it to exit"),
    (init_container(essential=True), app_waiting_for(), "'scratch-init' (user '0')"),
    (init_container(linuxParameters={"capabilities": {"drop": ["NET_RAW"]}}), app_waiting_for(),
     "it keeps capabilities AUDIT_WRITE, DAC_OVERRIDE, FSETID"),
    (init_container(linuxParameters=None), app_waiting_for(), "it keeps capabilities"),
    (init_container(linuxParameters={"capabilities": {"drop": ["ALL"], "add": ["CHOWN", "SYS_PTRACE"]}}),
     app_waiting_for(), "it keeps capabilities SYS_PTRACE"),
    (init_container(privileged=True), app_waiting_for(), "it is privileged"),
    (init_container(readonlyRootFilesystem=False), app_waiting_for(), "its root filesystem is writable"),
    (init_container(portMappings=[{"containerPort": 9000}]), app_waiting_for(), "it maps ports"),
    (init_container(secrets=[{"name": "TOKEN", "valueFrom": "arn:aws:secretsmanager:eu-west-1:1:secret:t"}]),
     app_waiting_for(), "it receives secrets"),
    (init_container(user=None), app_waiting_for(), None),
], ids=["chown-only", "complete", "drop-all-add-chown-fowner", "drop-all", "start-is-no-wait", "nobody-waits",
        "essential", "default-capabilities", "no-linux-parameters", "ptrace", "privileged", "writable-root",
        "ports", "secrets", "unset-user"])
def test_a_root_init_container_passes_only_when_it_can_do_nothing_but_fix_ownership(
    policy_findings, init, app, violation,
):
    found = messages(policy_findings([task([app, init])]), "ecs-task-non-root-user", "inference")
    if violation is None:
        assert found == []
    else:
        (message,) = found
        assert violation in message and "'scratch-init'" in message


@pytest.mark.parametrize(("log_configuration", "violates"), [
    ({"logDriver": "awsfirelens", "options": {"Name": "cloudwatch"}}, False),
    (None, True),
])
def test_ecs_task_logging(policy_findings, log_configuration, violates):
    definition = task([good_container(), good_container(name="sidecar", logConfiguration=log_configuration)])
    found = messages(policy_findings([definition]), "ecs-task-logging", "inference")
    assert bool(found) is violates
    if violates:
        assert "'sidecar'" in found[0] and "awslogs" in found[0]


@pytest.mark.parametrize(("variable", "violates"), [
    ({"name": "LOG_LEVEL", "value": "debug"}, False),
    ({"name": "TOKEN_URL", "value": "https://auth.example/token"}, False),
    ({"name": "DB_PASSWORD_SECRET_ARN", "value": "arn:aws:secretsmanager:eu-west-1:1:secret:db"}, False),
    ({"name": "API_KEY_FILE", "value": "/run/secrets/api-key"}, False),
    ({"name": "BYPASS_CACHE", "value": "true"}, False),
    ({"name": "TOKENIZER_MODEL", "value": "bert-base-uncased"}, False),
    ({"name": "AUTH_MODE", "value": "oauth"}, False),
    ({"name": "authType", "value": "oidc"}, False),
    ({"name": "AUTH", "value": "Basic dXNlcjpwYXNz"}, True),
    ({"name": "BROKER_PASSWORD", "value": "hunter2"}, True),
    ({"name": "api-key", "value": "abc123"}, True),
    ({"name": "dbPassword", "value": "abc123"}, True),
    ({"name": "DB_PASS", "value": "abc123"}, True),
    ({"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, True),
    ({"name": "BROKER_URL", "value": "amqps://inference:s3cr3t@b-1.mq.eu-west-1.amazonaws.com:5671"}, True),
    ({"name": "SOME_ID", "value": "AKIAIOSFODNN7EXAMPLE"}, True),
    ({"name": "TLS", "value": "-----BEGIN PRIVATE KEY-----\nMIIE..."}, True),
], ids=["plain", "token-url", "secret-arn", "key-file-path", "bypass", "tokenizer", "auth-mode", "auth-type",
        "auth-header", "password", "api-key",
        "camel-case", "pass", "aws-secret", "amqp-url-with-password", "access-key-value", "pem"])
def test_ecs_task_no_plaintext_secrets(policy_findings, variable, violates):
    definition = task([good_container(environment=[{"name": "LOG_LEVEL", "value": "info"}, variable])])
    found = messages(policy_findings([definition]), "ecs-task-no-plaintext-secrets", "inference")
    assert bool(found) is violates
    if violates:
        assert variable["name"] in found[0] and "secrets=" in found[0]
        assert str(variable["value"]) not in found[0]  # the finding must not leak the secret itself


@pytest.mark.parametrize(("cpu", "memory", "violates"), [
    ("256", "512", False), ("256", "2048", False), ("512", "4096", False), ("1024", "8192", False),
    ("2048", "5120", False), ("4096", "30720", False), ("8192", "20480", False), ("16384", "40960", False),
    ("1 vCPU", "2 GB", False), ("0.25 vCPU", "1GB", False),
    ("256", "3072", True), ("512", "512", True), ("1024", "9216", True), ("8192", "18432", True),
    ("16384", "36864", True), ("300", "1024", True), ("32768", "131072", True), (None, "1024", True),
], ids=lambda v: str(v))
def test_ecs_task_fargate_size(policy_findings, cpu, memory, violates):
    definition = task(cpu=cpu, memory=memory)
    assert bool(messages(policy_findings([definition]), "ecs-task-fargate-size-valid", "inference")) is violates


@pytest.mark.parametrize(("cpu", "memory", "violates"), [
    ("512", "1024", True), ("1024", "2048", False), ("4096", "8192", False), ("8192", "16384", True),
    ("16384", "32768", True)], ids=lambda v: str(v))
def test_windows_fargate_tasks_take_1_to_4_vcpu(policy_findings, cpu, memory, violates):
    # 8 and 16 vCPU need the Linux platform 1.4.0 (ECS task size table); Windows starts at 1 vCPU
    windows = task(cpu=cpu, memory=memory, runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE",
                                                            "cpuArchitecture": "X86_64"})
    found = messages(policy_findings([windows]), "ecs-task-fargate-size-valid", "inference")
    assert bool(found) is violates
    if violates:
        assert "for Windows; use one of 1024, 2048, 4096" in found[0]


def test_fargate_size_message_lists_the_valid_memory(policy_findings):
    (message,) = messages(policy_findings([task(cpu="512", memory="512")]), "ecs-task-fargate-size-valid", "inference")
    assert "with cpu 512 use memory 1024, 2048, 3072, 4096 (MiB)" in message


def test_fargate_size_rule_ignores_ec2_task_definitions(policy_findings):
    definition = task(cpu="300", memory="1000", requiresCompatibilities=["EC2"])
    assert not messages(policy_findings([definition]), "ecs-task-fargate-size-valid", "inference")


@pytest.mark.parametrize(("definitions", "expected"), [
    ([good_container()], None),
    ([good_container(readonlyRootFS=True)], "did you mean 'readonlyRootFilesystem'?"),
    ([good_container(cpu="256")], "wrong type of containerDefinitions[0].cpu"),
    ([good_container(portMappings=[{"containerPort": "8080"}])], "containerDefinitions[0].portMappings[0]"),
    ([good_container(image=None)], "containerDefinitions[0] has no image"),
    ([good_container(), good_container()], "container names are not unique: inference"),
    ([good_container(essential=False)], "no container is essential"),
    ("[{not json", "is not valid JSON"),
    ("[]", "non-empty JSON list"),
], ids=["valid", "misspelt-key", "string-cpu", "string-port", "no-image", "duplicate-names", "none-essential",
        "bad-json", "empty"])
def test_ecs_task_definition_valid(policy_findings, definitions, expected):
    definition = task(definitions)
    found = messages(policy_findings([definition]), "ecs-task-definition-valid", "inference")
    if expected is None:
        assert not found
    else:
        assert len(found) == 1 and expected in found[0]


@pytest.mark.parametrize(("image", "expected"), [
    (IMAGE, None),
    (f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/inference:1.4.2@{DIGEST}", None),
    ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/inference:latest", "uses :latest"),
    ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/inference", "has no tag (that is :latest)"),
    ("registry.local:5000/inference", "has no tag (that is :latest)"),
    ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/inference:1.4.2", "uses tag :1.4.2, which can be re-pushed"),
], ids=["digest", "tag-and-digest", "latest", "untagged", "registry-port-untagged", "plain-tag"])
def test_ecs_task_image_pinned(policy_findings, image, expected):
    found = messages(policy_findings([task([good_container(image=image)])]), "ecs-task-image-pinned", "inference")
    if expected is None:
        assert not found
    else:
        assert len(found) == 1 and expected in found[0] and "pin by digest" in found[0]


@pytest.mark.parametrize(("task_role", "execution_role", "expected"), [
    ("arn:aws:iam::1:role/task", "arn:aws:iam::1:role/exec", None),
    (None, "arn:aws:iam::1:role/exec", "does not set task_role_arn"),
    ("arn:aws:iam::1:role/task", None, "does not set execution_role_arn"),
    ("arn:aws:iam::1:role/same", "arn:aws:iam::1:role/same", "uses the same role"),
], ids=["separate", "no-task-role", "no-execution-role", "same-role"])
def test_ecs_task_separate_roles(policy_findings, task_role, execution_role, expected):
    definition = task(taskRoleArn=task_role, executionRoleArn=execution_role)
    found = messages(policy_findings([definition]), "ecs-task-separate-roles", "inference")
    if expected is None:
        assert not found
    else:
        assert len(found) == 1 and expected in found[0]


# --- ECS services -------------------------------------------------------------------------------


def service(**inputs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/platform",
        "taskDefinition": "arn:aws:ecs:eu-west-1:111111111111:task-definition/inference:1",
        "launchType": "FARGATE", "desiredCount": 2,
        "networkConfiguration": {"subnets": ["subnet-0a"], "securityGroups": ["sg-0a"], "assignPublicIp": False},
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    base.update(inputs)
    return res(SERVICE, "inference", {k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(("network", "violates"), [
    ({"subnets": ["subnet-0a"], "assignPublicIp": False}, False),
    ({"subnets": ["subnet-0a"]}, False),
    ({"subnets": ["subnet-0a"], "assignPublicIp": True}, True),
], ids=["false", "default", "true"])
def test_ecs_service_no_public_ip(policy_findings, network, violates):
    found = messages(policy_findings([service(networkConfiguration=network)]), "ecs-service-no-public-ip", "inference")
    assert bool(found) is violates


@pytest.mark.parametrize(("inputs", "violates"), [
    ({}, False),
    ({"deploymentController": {"type": "CODE_DEPLOY"}, "deploymentCircuitBreaker": None}, False),
    ({"deploymentCircuitBreaker": None}, True),
    ({"deploymentCircuitBreaker": {"enable": True, "rollback": False}}, True),
    ({"deploymentCircuitBreaker": {"enable": False, "rollback": True}}, True),
], ids=["enabled-with-rollback", "code-deploy", "unset", "no-rollback", "disabled"])
def test_ecs_service_circuit_breaker(policy_findings, inputs, violates):
    found = messages(policy_findings([service(**inputs)]), "ecs-service-circuit-breaker", "inference")
    assert bool(found) is violates
    if violates:
        assert "deployment_circuit_breaker={'enable': True, 'rollback': True}" in found[0]


@pytest.mark.parametrize(("inputs", "violates"), [
    ({"waitForSteadyState": True}, False),
    ({"deploymentController": {"type": "CODE_DEPLOY"}}, False),
    ({}, True),
    ({"waitForSteadyState": False}, True),
], ids=["waits", "code-deploy", "unset", "false"])
def test_ecs_service_steady_state(policy_findings, inputs, violates):
    found = messages(policy_findings([service(**inputs)]), "ecs-service-steady-state", "inference")
    assert bool(found) is violates
    if violates:
        assert "wait_for_steady_state=True" in found[0]


@pytest.mark.parametrize("rule", ["ecs-task-non-root-user", "ecs-task-read-only-root-fs"])
def test_windows_containers_are_not_held_to_linux_only_settings(policy_findings, policy_not_applicable, rule):
    # ECS ContainerDefinition (botocore model): user and readonlyRootFilesystem are "not supported for
    # Windows containers", so a Windows task could never pass
    windows = task([good_container(user=None, readonlyRootFilesystem=None)], cpu="1024", memory="2048",
                   runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE", "cpuArchitecture": "X86_64"})
    assert not messages(policy_findings([windows], env="prod"), rule, "inference")
    assert any(na["rule"] == rule and "Windows" in na["reason"]
               for na in policy_not_applicable([windows], env="prod"))
    linux = task([good_container(user=None, readonlyRootFilesystem=None)],
                 runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"})
    assert messages(policy_findings([linux], env="prod"), rule, "inference")


def test_keys_are_matched_as_the_provider_decodes_them_whatever_their_case(policy_findings):
    # pulumi-aws hands containerDefinitions to terraform-provider-aws, which decodes the JSON with Go's
    # encoding/json into the AWS SDK's ContainerDefinition (no JSON tags): a key matches its member whatever
    # its case, so "readOnlyRootFilesystem" (the Kubernetes spelling) sets readonlyRootFilesystem
    log = {"LogDriver": "awslogs", "Options": {"awslogs-group": "/ml/inference", "awslogs-region": "eu-west-1",
                                               "awslogs-stream-prefix": "inference"}}
    spelled = task([good_container(readonlyRootFilesystem=None, readOnlyRootFilesystem=True, logConfiguration=log,
                                   user=None, User="1000:1000")])
    findings = policy_findings([spelled], env="prod")
    for rule in ("ecs-task-definition-valid", "ecs-task-read-only-root-fs", "ecs-task-logging",
                 "ecs-task-non-root-user"):
        assert not messages(findings, rule, "inference"), rule
    privileged = task([good_container(Privileged=True)])
    assert messages(policy_findings([privileged], env="prod"), "ecs-task-no-privileged", "inference")
    # map keys are data, not members: a log option keeps its spelling
    shouted = dict(log, Options={"AWSLOGS-GROUP": "/ml/inference"})
    assert not messages(policy_findings([task([good_container(logConfiguration=shouted)])], env="prod"),
                        "ecs-task-definition-valid", "inference")


@pytest.mark.parametrize(("selection", "violates"), [
    ({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3}, False),
    ({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10}, False),
    ({"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 10}, True),
    ({"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan", "countNumber": 10}, True),
], ids=["untagged", "any", "tagged-prefix", "tagged-pattern"])
def test_ecr_lifecycle_policy_must_expire_untagged_images(policy_findings, selection, violates):
    # a policy of tagged rules only leaves every image pushed by digest (and the untagged per-platform manifests of
    # a multi-platform image) in the repository for ever: ECR.3 asks for a policy, the bound is on untagged images
    policy = {"rules": [{"rulePriority": 1, "description": "d", "selection": selection, "action": {"type": "expire"}}]}
    lifecycle = res(LIFECYCLE_POLICY, "lc", {"repository": "inference", "policy": json.dumps(policy)})
    found = messages(policy_findings([repository(), lifecycle]), "ecr-lifecycle-policy", "inference")
    if violates:
        (message,) = found
        assert "expires no untagged image" in message
    else:
        assert not found
