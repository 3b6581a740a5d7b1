"""Given an env switched to App Mesh (and variants: a canary, a public gateway, an unreleased service), the
synthesized compute layer runs Envoy beside each app, registers tasks in the discovery layer's Cloud Map
services and points each task at the mesh layer's virtual node."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.catalog import load_catalog
from shared.components.compute_containers import ENVOY_IMAGE
from shared.contracts import ComputeContract
from shared.errors import ContractError
from shared.synth.engine import synth_env, synth_program
from tests.layers.compute_helpers import (
    CLUSTER,
    SERVICE,
    container,
    containers,
    environment,
    fresh,
    statements,
    task_policy,
    unit,
)
from tests.synth_helpers import by_name, gateway_certificate, of_type

CANARY = [{"version": "stable", "weight": 90}, {"version": "canary", "weight": 10}]
CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def appmesh(edit_env: Any, env: str = "dev", **mesh: Any) -> dict[str, dict[str, Any]]:
    edit_env(env, lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True, **mesh))
    return fresh(env)


def node_arn(docs: dict[str, dict[str, Any]], node: str) -> str:
    mesh_name = docs["mesh"]["outputs"]["mesh_name"]
    return f"arn:aws:appmesh:eu-west-1:111111111111:mesh/{mesh_name}/virtualNode/{node}"


@pytest.fixture
def appmesh_dev(edit_env: Any) -> dict[str, dict[str, Any]]:
    return appmesh(edit_env)


def test_appmesh_tasks_run_envoy_pointed_at_the_mesh_layers_virtual_node(appmesh_dev: dict[str, Any]) -> None:
    doc, mesh = appmesh_dev["compute"], appmesh_dev["mesh"]["outputs"]
    for spec in load_catalog():
        task = unit(doc, spec.name)["task"]
        node = mesh["services"][spec.name]["virtual_node_name"]
        envoy = container(task, "envoy")
        assert envoy["image"] == ENVOY_IMAGE and "@sha256:" in envoy["image"]
        assert environment(envoy)["APPMESH_RESOURCE_ARN"] == node_arn(appmesh_dev, node)
        assert envoy["essential"] is True and envoy["user"] == "1337" and envoy["privileged"] is False
        assert envoy["readonlyRootFilesystem"] is True
        assert envoy["logConfiguration"]["options"]["awslogs-stream-prefix"] == "envoy"
        assert envoy["logConfiguration"]["options"]["mode"] == "non-blocking"
        assert "LIVE" in envoy["healthCheck"]["command"][1]
        # The app starts only once its proxy is ready, since all its traffic goes through it.
        assert {"containerName": "envoy", "condition": "HEALTHY"} in container(task, spec.name)["dependsOn"]
        proxy = task["inputs"]["proxyConfiguration"]
        assert proxy["type"] == "APPMESH" and proxy["containerName"] == "envoy"
        assert proxy["properties"]["AppPorts"] == str(spec.port)
        assert proxy["properties"]["IgnoredUID"] == envoy["user"]
        assert {"name": "envoy-tmp"} in task["inputs"]["volumes"]


def test_appmesh_services_register_in_the_discovery_layers_cloud_map_services(appmesh_dev: dict[str, Any]) -> None:
    doc, discovery = appmesh_dev["compute"], appmesh_dev["discovery"]["outputs"]
    for spec in load_catalog():
        inputs = unit(doc, spec.name)["service"]["inputs"]
        assert inputs["serviceRegistries"] == {"registryArn": discovery["services"][spec.name]["arn"],
                                               "containerName": spec.name, "containerPort": spec.port}
        assert "serviceConnectConfiguration" not in inputs
    (cluster,) = of_type(doc, CLUSTER)
    assert "serviceConnectDefaults" not in cluster["inputs"]


def test_appmesh_callers_reach_callees_by_their_virtual_service_names(appmesh_dev: dict[str, Any]) -> None:
    mesh = appmesh_dev["mesh"]["outputs"]
    for spec in load_catalog():
        plain = environment(container(unit(appmesh_dev["compute"], spec.name)["task"], spec.name))
        for callee in spec.calls:
            assert plain[f"{callee.upper()}_URL"] == \
                f"http://{mesh['services'][callee]['virtual_service_name']}:{load_catalog()[callee].port}"


def test_appmesh_task_roles_may_stream_only_their_own_virtual_node(appmesh_dev: dict[str, Any]) -> None:
    mesh = appmesh_dev["mesh"]["outputs"]
    for spec in load_catalog():
        policy = task_policy(appmesh_dev["compute"], spec.name)
        assert policy is not None
        (envoy,) = [s for s in statements(policy) if s["Action"] == "appmesh:StreamAggregatedResources"]
        assert envoy["Resource"] == node_arn(appmesh_dev, mesh["services"][spec.name]["virtual_node_name"])


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_appmesh_wiring_holds_in_every_env(edit_env: Any, env: str) -> None:
    docs = appmesh(edit_env, env)
    contract = ComputeContract.model_validate(docs["compute"]["outputs"])
    assert set(contract.services) == set(load_catalog().names())
    for spec in load_catalog():
        task = unit(docs["compute"], spec.name)["task"]
        assert [c["name"] for c in containers(task)] == [spec.name, "scratch-init", "envoy"]


def test_a_canary_runs_one_ecs_service_per_version_each_with_its_own_node(edit_env: Any) -> None:
    docs = appmesh(edit_env, canaries={"inference": CANARY})
    doc, versions = docs["compute"], docs["mesh"]["outputs"]["services"]["inference"]["versions"]
    names = sorted(r["inputs"]["name"] for r in of_type(doc, SERVICE))
    others = [name for name in load_catalog().names() if name != "inference"]  # gateway, preprocess, training, ...
    assert names == sorted([*others, "inference-canary", "inference-stable"])
    for version in ("stable", "canary"):
        resources = unit(doc, f"inference-{version}")
        # The version's virtual node selects its tasks by the ECS service name ECS registers in Cloud Map.
        assert resources["service"]["inputs"]["name"] == \
            versions[version]["cloud_map_attributes"]["ECS_SERVICE_NAME"]
        assert resources["service"]["inputs"]["serviceRegistries"]["registryArn"] == \
            docs["discovery"]["outputs"]["services"]["inference"]["arn"]
        envoy = container(resources["task"], "envoy")
        assert environment(envoy)["APPMESH_RESOURCE_ARN"] == node_arn(docs, versions[version]["virtual_node_name"])
        assert environment(container(resources["task"], "inference"))["SERVICE_VERSION"] == version
        assert resources["task"]["inputs"]["family"] == f"dev-inference-{version}"
        assert resources["log_group"]["inputs"]["name"] == f"/platform/dev/compute/inference-{version}"
    exported = ComputeContract.model_validate(doc["outputs"]).services["inference"]
    assert exported.ecs_service_name == "inference-stable"
    assert {v: e.ecs_service_name for v, e in exported.versions.items()} == \
        {"stable": "inference-stable", "canary": "inference-canary"}
    assert {v: e.task_definition_arn for v, e in exported.versions.items()} == \
        {v: unit(doc, f"inference-{v}")["service"]["inputs"]["taskDefinition"] for v in ("stable", "canary")}
    assert exported.task_definition_arn == exported.versions["stable"].task_definition_arn


def test_callers_are_created_after_every_version_of_a_canaried_callee(edit_env: Any) -> None:
    doc = appmesh(edit_env, canaries={"inference": CANARY})["compute"]
    versions = {unit(doc, f"inference-{v}")["service"]["urn"] for v in ("stable", "canary")}
    for caller in (spec.name for spec in load_catalog() if "inference" in spec.calls):
        assert versions <= set(unit(doc, caller)["service"]["dependencies"]), caller


def test_each_version_of_a_canaried_caller_is_created_after_its_callees(edit_env: Any) -> None:
    doc = appmesh(edit_env, canaries={"gateway": CANARY})["compute"]
    for version in ("stable", "canary"):
        dependencies = set(unit(doc, f"gateway-{version}")["service"]["dependencies"])
        assert {unit(doc, callee)["service"]["urn"] for callee in load_catalog()["gateway"].calls} <= dependencies


def test_the_public_gateway_sits_behind_an_https_only_alb_in_the_public_subnets(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE))
    docs = fresh("dev")
    doc, network = docs["compute"], docs["network"]["outputs"]
    alb = by_name(doc, "aws:lb/loadBalancer:LoadBalancer", "gateway-alb")["inputs"]
    assert alb["internal"] is False and alb["subnets"] == network["public_subnet_ids"]
    assert alb["dropInvalidHeaderFields"] is True
    sg = by_name(doc, "aws:ec2/securityGroup:SecurityGroup", "gateway-alb")["inputs"]
    assert sg["tags"]["exposure"] == "public" and sg["vpcId"] == network["vpc_id"]
    assert [(r["fromPort"], r["toPort"]) for r in sg["ingress"]] == [(443, 443)]
    # The ALB reaches the tasks' group on the service port, and that group admits the ALB's group on it.
    assert sg["egress"] == [{"description": "To gateway tasks on their service port", "fromPort": 8080,
                             "protocol": "tcp", "securityGroups": [network["service_security_group_id"]],
                             "toPort": 8080}]
    alb_sg = by_name(doc, "aws:ec2/securityGroup:SecurityGroup", "gateway-alb")
    task_ingress = by_name(doc, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "gateway-alb-to-tasks")
    assert task_ingress["inputs"]["securityGroupId"] == network["service_security_group_id"]
    assert (task_ingress["inputs"]["ipProtocol"], task_ingress["inputs"]["fromPort"],
            task_ingress["inputs"]["toPort"]) == ("tcp", 8080, 8080)
    assert task_ingress["property_dependencies"]["referencedSecurityGroupId"] == [alb_sg["urn"]]
    listener = by_name(doc, "aws:lb/listener:Listener", "gateway-https")["inputs"]
    assert (listener["port"], listener["protocol"], listener["certificateArn"]) == (443, "HTTPS", CERTIFICATE)
    # one of the policies Security Hub ELB.17 accepts (TLS 1.3, TLS 1.2 with AEAD forward-secret ciphers only)
    assert listener["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    target_group = by_name(doc, "aws:lb/targetGroup:TargetGroup", "gateway-tasks")["inputs"]
    assert target_group["targetType"] == "ip" and target_group["healthCheck"]["path"] == "/healthz"
    service = unit(doc, "gateway")["service"]["inputs"]
    assert service["loadBalancers"] == [{"containerName": "gateway", "containerPort": 8080,
                                         "targetGroupArn": listener["defaultActions"][0]["targetGroupArn"]}]
    # Tasks stay private: only the ALB is in the public subnets.
    assert service["networkConfiguration"]["assignPublicIp"] is False
    assert all("loadBalancers" not in unit(doc, s)["service"]["inputs"] for s in ("preprocess", "inference"))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_public_gateways_alb_writes_access_logs_to_a_private_bucket_elb_may_write(
        edit_env: Any, env: str) -> None:
    from shared.envs import load_env

    edit_env(env, lambda data: data["compute"].update(public_gateway=True, certificate_arn=gateway_certificate(env)))
    doc = fresh(env)["compute"]
    config = load_env(env)
    bucket = by_name(doc, "aws:s3/bucket:Bucket", "gateway-alb-logs")
    name = f"ml-{env}-gateway-alb-logs-{config.account_id}"
    assert bucket["inputs"]["bucket"] == name
    alb = by_name(doc, "aws:lb/loadBalancer:LoadBalancer", "gateway-alb")
    assert alb["inputs"]["accessLogs"] == {"bucket": name, "prefix": "alb", "enabled": True}
    policy = by_name(doc, "aws:s3/bucketPolicy:BucketPolicy", "gateway-alb-logs")
    assert policy["urn"] in alb["dependencies"], "ELB checks its write access when logging is turned on"
    (deliver, deny) = json.loads(policy["inputs"]["policy"])["Statement"]
    # eu-west-1 opened before August 2022: its ELB account delivers (ELB guide, access-log bucket policy).
    assert deliver["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"} and deliver["Action"] == "s3:PutObject"
    assert deliver["Resource"] == f"arn:aws:s3:::{name}/alb/AWSLogs/{config.account_id}/*"
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    block = by_name(doc, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "gateway-alb-logs")["inputs"]
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    sse = by_name(doc, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "gateway-alb-logs")["inputs"]
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"  # SSE-KMS unsupported
    lifecycle = by_name(doc, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                        "gateway-alb-logs")["inputs"]
    assert lifecycle["rules"][0]["expiration"]["days"] == config.compute.log_retention_days


@pytest.mark.parametrize(("env", "protected"), [("staging", False), ("prod", True)])
def test_the_access_log_bucket_is_protected_where_the_env_protects_state_and_its_settings_are_not(
        edit_env: Any, env: str, protected: bool) -> None:
    # The access logs are audit evidence, kept like a log group's events; the bucket's policy, public access
    # block, ownership, encryption, lifecycle and server access logging hold no data and are re-created from the
    # program.
    edit_env(env, lambda data: data["compute"].update(public_gateway=True, certificate_arn=gateway_certificate(env)))
    doc = fresh(env)["compute"]
    bucket = by_name(doc, "aws:s3/bucket:Bucket", "gateway-alb-logs")
    assert bucket["protect"] is protected
    # destroyed with its logs where the env does not protect state (the ALB writes for as long as it runs: without
    # the flag every destroy of compute stopped at this bucket, half-way), kept where it does
    assert bucket["inputs"]["forceDestroy"] is (not protected)
    settings = [r for r in doc["resources"] if r["name"] == "gateway-alb-logs" and r["type"].startswith("aws:s3/")
                and r is not bucket]
    assert len(settings) == 6 and all(r["protect"] is False for r in settings), settings


def test_a_service_not_yet_in_the_release_gets_only_its_repository(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["release"]["images"].pop("training"))
    doc = fresh("dev")["compute"]
    contract = ComputeContract.model_validate(doc["outputs"])
    assert "training" not in contract.services and "training" in contract.repository_urls
    assert not [r for r in doc["resources"] if r["name"].startswith("training") and r["name"] != "training-repo"
                and r["type"] != "aws:ecr/lifecyclePolicy:LifecyclePolicy"]


def test_a_tag_in_the_release_runs_repo_colon_tag_and_exports_no_digest(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["release"]["images"].update(gateway="v1.4.2"))
    doc = fresh("dev")["compute"]
    exported = ComputeContract.model_validate(doc["outputs"]).services["gateway"]
    assert exported.image == f"{exported.repository_url}:v1.4.2" and exported.image_digest is None
    assert container(unit(doc, "gateway")["task"], "gateway")["image"] == exported.image


def test_a_mesh_stack_of_the_other_provider_is_refused_at_synth(edit_env: Any) -> None:
    # The mesh layer was synthesized with Service Connect, then the env switched to App Mesh: compute
    # must not wire Envoy against a mesh that does not exist.
    docs = synth_env("dev", ["mesh", "messaging"])
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    stack_outputs = {f"organization/{layer}/dev": document["outputs"] for layer, document in docs.items()}
    with pytest.raises(ContractError, match=re.escape("mesh.provider 'appmesh' but the mesh layer exports "
                                                      "provider 'service-connect'")):
        synth_program(REPO_ROOT / "stacks/compute", stack="dev", layer="compute", env="dev",
                      account_id="111111111111", region="eu-west-1", stack_outputs=stack_outputs)


def test_container_definitions_are_deterministic_json(appmesh_dev: dict[str, Any]) -> None:
    again = fresh("dev")["compute"]
    first = {r["urn"]: r["inputs"] for r in appmesh_dev["compute"]["resources"]}
    assert first == {r["urn"]: r["inputs"] for r in again["resources"]}
    for task in of_type(again, "aws:ecs/taskDefinition:TaskDefinition"):
        text = task["inputs"]["containerDefinitions"]
        assert text == json.dumps(json.loads(text), sort_keys=True)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_public_services_ecs_service_is_created_after_the_listener_attaching_its_target_group(
        edit_env: Any, env: str) -> None:
    # CreateService refuses a target group no listener attaches to a load balancer yet ("The target group
    # ... does not have an associated load balancer", InvalidParameterException): the first `up` of a
    # public gateway must create the listener before the ECS service that registers tasks in the group.
    edit_env(env, lambda data: data["compute"].update(public_gateway=True, certificate_arn=gateway_certificate(env)))
    doc = fresh(env)["compute"]
    listener = by_name(doc, "aws:lb/listener:Listener", "gateway-https")
    service = unit(doc, "gateway")["service"]
    assert listener["urn"] in service["dependencies"]
