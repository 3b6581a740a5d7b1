"""Container definitions validate against the ECS API's own model (botocore's RegisterTaskDefinition input
shape) in every env with either mesh provider; task sizes are pairs Fargate accepts, refused with the file
and key that set them otherwise."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.model import Shape
from botocore.validate import ParamValidator

from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.components.compute import plan_service
from shared.components.compute_containers import image_reference
from shared.envs import load_env
from shared.errors import ConfigError
from shared.fargate import FARGATE_SIZES, fargate_size_problem
from tests.layers.compute_helpers import ENVS, TASK, container, containers, environment, fresh, platform, unit
from tests.spec_envs import SPEC_CATALOG
from tests.synth_helpers import of_type


@cache
def register_task_definition() -> Shape:
    ecs = botocore.session.get_session().get_service_model("ecs")
    return ecs.operation_model("RegisterTaskDefinition").input_shape


def container_errors(definitions: list[dict[str, Any]]) -> str:
    report = ParamValidator().validate(definitions, register_task_definition().members["containerDefinitions"])
    return report.generate_report() if report.has_errors() else ""


def request(task: dict[str, Any]) -> dict[str, Any]:
    """The RegisterTaskDefinition request the AWS provider sends for a task definition's inputs."""
    inputs = task["inputs"]
    body: dict[str, Any] = {
        "family": inputs["family"], "containerDefinitions": containers(task), "cpu": inputs["cpu"],
        "memory": inputs["memory"], "networkMode": inputs["networkMode"],
        "requiresCompatibilities": inputs["requiresCompatibilities"],
        "executionRoleArn": inputs["executionRoleArn"], "taskRoleArn": inputs["taskRoleArn"],
        "volumes": inputs.get("volumes", []), "runtimePlatform": inputs["runtimePlatform"],
    }
    if "ephemeralStorage" in inputs:
        body["ephemeralStorage"] = {"sizeInGiB": inputs["ephemeralStorage"]["sizeInGib"]}
    if "proxyConfiguration" in inputs:
        proxy = inputs["proxyConfiguration"]
        body["proxyConfiguration"] = {"type": proxy["type"], "containerName": proxy["containerName"],
                                      "properties": [{"name": k, "value": v} for k, v in proxy["properties"].items()]}
    return body


def assert_valid(doc: dict[str, Any]) -> int:
    tasks = of_type(doc, TASK)
    for task in tasks:
        assert container_errors(containers(task)) == "", task["name"]
        report = ParamValidator().validate(request(task), register_task_definition())
        assert not report.has_errors(), f"{task['name']}: {report.generate_report()}"
    return len(tasks)


@pytest.mark.parametrize("env", ENVS)
def test_service_connect_container_definitions_validate_against_the_ecs_api_model(env: str) -> None:
    assert assert_valid(platform(env)["compute"]) == len(load_catalog().names())


@pytest.mark.parametrize("env", ENVS)
def test_appmesh_container_definitions_with_envoy_validate_against_the_ecs_api_model(edit_env: Any, env: str) -> None:
    canary = [{"version": "stable", "weight": 50}, {"version": "next", "weight": 50}]
    edit_env(env, lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True, canaries={"training": canary}))
    doc = fresh(env)["compute"]
    assert assert_valid(doc) == len(load_catalog().names()) + 1
    assert all(len(containers(task)) == 3 for task in of_type(doc, TASK))


def test_a_task_with_more_ephemeral_storage_validates_against_the_ecs_api_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["inference"]["ephemeral_storage_gib"] = 200
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    doc = fresh("dev")["compute"]
    (task,) = [t for t in of_type(doc, TASK) if t["name"] == "inference"]
    assert request(task)["ephemeralStorage"] == {"sizeInGiB": 200}
    assert assert_valid(doc) == len(load_catalog().names())


def test_the_validation_catches_what_the_ecs_api_would_refuse() -> None:
    (task,) = [t for t in of_type(platform("dev")["compute"], TASK) if t["name"] == "gateway"]
    good = containers(task)
    assert container_errors(good) == ""
    broken = [{**good[0], "portMappings": [{"containerPort": "8080"}], "readOnlyRootFs": True}]
    errors = container_errors(broken)
    assert "containerPort" in errors and "readOnlyRootFs" in errors


def test_fargate_size_table() -> None:
    assert fargate_size_problem(256, 512) is None and fargate_size_problem(16384, 122880) is None
    assert fargate_size_problem(1024, 2048) is None and fargate_size_problem(8192, 20480) is None
    assert "memory 4096 does not go with cpu 256" in (fargate_size_problem(256, 4096) or "")
    assert "memory 17408 does not go with cpu 8192" in (fargate_size_problem(8192, 17408) or "")
    assert "cpu 300 is not a Fargate size" in (fargate_size_problem(300, 1024) or "")
    assert all(fargate_size_problem(cpu, memory) is None for cpu, sizes in FARGATE_SIZES.items() for memory in sizes)


def test_an_env_override_fargate_refuses_names_the_env_file_and_key(edit_env: Any) -> None:
    path = edit_env("prod", lambda data: data["services"]["inference"].update(cpu=2048, memory=2048))
    with pytest.raises(ConfigError) as raised:
        plan_service(load_env("prod"), load_catalog(), "inference")
    assert raised.value.key == "services.inference.cpu"
    assert Path(raised.value.file).name == path.name and "memory 2048 does not go with cpu 2048" in raised.value.reason


def test_a_catalog_size_fargate_refuses_names_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["training"]["memory"] = 1024
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    with pytest.raises(ConfigError) as raised:
        plan_service(load_env("dev"), load_catalog(), "training")
    assert (raised.value.key, Path(raised.value.file)) == ("services.training.cpu", catalog)


def test_image_references_use_the_digest_separator_for_digests_and_the_tag_separator_for_tags() -> None:
    digest = "sha256:" + "ab" * 32
    assert image_reference("1.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/x", digest).endswith(f"/x@{digest}")
    assert image_reference("1.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/x", "v2").endswith("/x:v2")


def test_a_service_without_messaging_runs_with_no_broker_credentials(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The messaging layer gives a broker user and a secret only to a service that publishes or consumes;
    # compute must not ask the messaging contract for a secret such a service does not have.
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["feature-store"] = {"port": 8099, "health_path": "/healthz"}
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    edit_env("dev", lambda env: env["release"]["images"].update({"feature-store": "sha256:" + "d" * 64}))
    layers = fresh("dev")
    assert not any("feature-store" in r["name"] for r in layers["messaging"]["resources"])
    resources = unit(layers["compute"], "feature-store")
    app = container(resources["task"], "feature-store")
    assert "secrets" not in app or app["secrets"] == []
    assert not [name for name in environment(app) if name.startswith("AMQP_")]
    statements = json.loads(resources["execution_policy"]["inputs"]["policy"])["Statement"]
    assert not [s for s in statements if "secretsmanager" in json.dumps(s) or s["Action"] == "kms:Decrypt"]
    assert_valid(layers["compute"])
    # a service that does messaging keeps its credentials and broker settings
    inference = container(unit(layers["compute"], "inference")["task"], "inference")
    assert {item["name"] for item in inference["secrets"]} and "AMQP_ENDPOINT" in environment(inference)
