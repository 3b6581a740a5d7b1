"""FargateService alone: its args and contract values given here, no compute layer, no upstream stacks."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from shared.catalog import Routes, ServiceSpec
from shared.components.compute_iam import task_role_statements
from shared.components.compute_plan import ComputeSettings, ServicePlan
from shared.components.compute_service import FargateService, FargateServiceArgs
from shared.components.compute_wiring import ComputeUpstreams
from shared.contracts import (
    DiscoveryContract,
    DiscoveryService,
    MeshContract,
    MeshService,
    MessagingContract,
    NetworkContract,
    NetworkOutputs,
)
from shared.errors import ContractError
from shared.synth.engine import SynthError
from tests.components.harness import ACCOUNT, REGION, of_type, root_of, run_component

DIGEST = "sha256:" + "ab" * 32
NAMESPACE_ARN = f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:namespace/ns-http"


def mesh_entry(service: str, port: int) -> MeshService:
    return MeshService(port_name=f"{service}-http", discovery_name=service, client_alias_dns=f"{service}.unit",
                       client_alias_port=port)


def upstreams(secret_for: tuple[str, ...] = ("inference",)) -> ComputeUpstreams:
    network = NetworkContract(vpc_id="vpc-unit", vpc_cidr="10.42.0.0/16", availability_zones=[f"{REGION}a"],
                              public_subnet_ids=["subnet-pub"], private_subnet_ids=["subnet-a", "subnet-b"],
                              service_security_group_id="sg-services", deploy_runner_security_group_id="sg-runner")
    discovery = DiscoveryContract(
        private_namespace_id="ns-dns", private_namespace_arn="arn:ns-dns", private_namespace_name="unit.internal",
        http_namespace_id="ns-http", http_namespace_arn=NAMESPACE_ARN, http_namespace_name="unit-http",
        services={s: DiscoveryService(id=f"srv-{s}", arn=f"arn:srv-{s}", name=s) for s in ("inference", "embeddings")})
    mesh = MeshContract(provider="service-connect", service_connect_namespace_arn=NAMESPACE_ARN,
                        services={"inference": mesh_entry("inference", 8080),
                                  "embeddings": mesh_entry("embeddings", 8081)})
    messaging = MessagingContract(
        broker_mode="amazon-mq", amqps_endpoint="amqps://b-1.mq.eu-west-1.on.aws:5671", vhost="unit",
        requests_exchange="platform.requests", events_exchange="platform.events", dead_letter_exchange="platform.dlx",
        queues={"inference": "inference.work"},
        service_secret_arns={s: f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{s}-AbCdEf" for s in secret_for})
    return ComputeUpstreams(network=NetworkOutputs.of(network), discovery=pulumi.Output.from_input(discovery),
                            mesh=pulumi.Output.from_input(mesh), messaging=pulumi.Output.from_input(messaging),
                            broker_security_group_id=pulumi.Output.from_input("sg-broker"))


CONSUMES = Routes(requests=("inference.request",))


def service(calls: tuple[str, ...] = ("embeddings",), wiring: ComputeUpstreams | None = None,
            consumes: Routes = CONSUMES) -> dict[str, Any]:
    # It consumes, so the messaging layer has given it a user, a secret and its work queue.
    spec = ServiceSpec(name="inference", port=8080, health_path="/health", calls=calls, consumes=consumes)
    plan = ServicePlan(spec=spec, cpu=512, memory=1024, desired_count=2, min_count=2, max_count=4,
                       cpu_target_percent=60, release_ref=DIGEST)
    settings = ComputeSettings(env_name="unit", region=REGION, account_id=ACCOUNT, partition="aws",
                               mesh_provider="service-connect", log_retention_days=30, protect=False)
    args = FargateServiceArgs(plan=plan, settings=settings, upstreams=wiring or upstreams(),
                              cluster_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/unit", cluster_name="unit",
                              repository_url=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/inference",
                              repository_arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/inference")
    return run_component(lambda: FargateService("inference", args))


def test_one_of_each_concern_all_under_the_component() -> None:
    document = service()
    kinds = sorted(r["type"] for r in document["resources"] if r["type"].startswith("aws:"))
    assert kinds == sorted([
        "aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicy:RolePolicy", "aws:ecs/taskDefinition:TaskDefinition", "aws:ecs/service:Service",
        "aws:appautoscaling/target:Target", "aws:appautoscaling/policy:Policy"])
    for resource in document["resources"]:
        if resource["type"].startswith("aws:"):
            assert root_of(document, resource)["type"] == "mlplatform:compute:FargateService"


def test_the_service_runs_the_digest_in_the_private_subnets_and_serves_its_mesh_entry() -> None:
    document = service()
    (task,) = of_type(document, "aws:ecs/taskDefinition:TaskDefinition")
    (app,) = [c for c in json.loads(task["inputs"]["containerDefinitions"]) if c["name"] == "inference"]
    assert app["image"].endswith(f"/inference@{DIGEST}")
    environment = {e["name"]: e["value"] for e in app.get("environment", [])}
    assert environment["AMQP_QUEUE"] == "inference.work"
    assert "http://embeddings.unit:8081" in environment.values()
    (ecs,) = of_type(document, "aws:ecs/service:Service")
    network = ecs["inputs"]["networkConfiguration"]
    assert (network["subnets"], network["securityGroups"], network["assignPublicIp"]) == (
        ["subnet-a", "subnet-b"], ["sg-services"], False)
    connect = ecs["inputs"]["serviceConnectConfiguration"]
    assert connect["namespace"] == NAMESPACE_ARN
    assert connect["services"][0]["clientAlias"][0] == {"dnsName": "inference.unit", "port": 8080}


def test_a_service_that_calls_and_consumes_nothing_in_service_connect_gets_no_task_policy() -> None:
    policies = of_type(service(calls=(), consumes=Routes(), wiring=upstreams(secret_for=())),
                       "aws:iam/rolePolicy:RolePolicy")
    assert [p["name"] for p in policies] == ["inference-execution"]


def test_a_consumer_that_calls_nothing_may_protect_its_task_of_its_cluster_from_scale_in() -> None:
    policies = of_type(service(calls=()), "aws:iam/rolePolicy:RolePolicy")
    (policy,) = [p for p in policies if p["name"] == "inference-task"]
    (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
    assert statement == {"Sid": "ProtectOwnTaskFromScaleIn", "Effect": "Allow",
                         "Action": ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"],
                         "Resource": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/unit/*",
                         # its own tasks only: those its ECS service tagged (propagate_tags)
                         "Condition": {"StringEquals": {"aws:ResourceTag/service": "inference"},
                                       "Null": {"aws:ResourceTag/version": "true"}}}


def test_a_canary_units_protection_grant_names_its_version_and_a_grant_needs_the_tags() -> None:
    tasks = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/unit/*"
    (statement,) = task_role_statements(discovery_namespaces=[], appmesh_virtual_node_arn=None,
                                        task_protection_tasks_arn=tasks,
                                        task_tags={"service": "inference", "version": "v2"})
    # the canary's tasks only: not the stable unit's (no version tag) nor another canary's
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/service": "inference",
                                                       "aws:ResourceTag/version": "v2"}}
    with pytest.raises(ValueError, match="task_tags"):
        task_role_statements(discovery_namespaces=[], appmesh_virtual_node_arn=None, task_protection_tasks_arn=tasks)


def test_a_missing_secret_entry_fails_naming_it() -> None:
    with pytest.raises((ContractError, SynthError), match=r"messaging\.service_secret_arns\['inference'\]"):
        service(wiring=upstreams(secret_for=("embeddings",)))


def test_a_service_that_neither_publishes_nor_consumes_needs_no_secret_entry() -> None:
    document = service(wiring=upstreams(secret_for=()), consumes=Routes())
    (task,) = of_type(document, "aws:ecs/taskDefinition:TaskDefinition")
    (app,) = [c for c in json.loads(task["inputs"]["containerDefinitions"]) if c["name"] == "inference"]
    assert not app.get("secrets") and not [e for e in app.get("environment", []) if e["name"].startswith("AMQP_")]
