"""Scratch space for non-root tasks with a read-only root: Fargate creates a task bind mount root-owned,
mode 0755, so every task runs a short root init container -- the service's own image, only CHOWN left --
that hands each scratch volume to the user that mounts it before the app (and Envoy) start; the catalog
may ask for more ephemeral storage. App Mesh's Envoy gets a writable /tmp the same way, leaves the
broker's AMQPS port alone, and runs the image the env names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml

from shared import REPO_ROOT
from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.components.compute_containers import ENVOY_IMAGE, SCRATCH_INIT_DROPPED_CAPABILITIES
from shared.envs import load_env
from shared.errors import ConfigError
from shared.synth.engine import synth_program
from tests.layers.compute_helpers import ENVS, container, containers, environment, fresh, platform, unit
from tests.spec_envs import SPEC_CATALOG

INIT = "scratch-init"


def fargate_capabilities() -> set[str]:
    """The capability names the ECS API documents for KernelCapabilities.drop."""
    model = botocore.session.get_session().get_service_model("ecs")
    documentation = model.shape_for("KernelCapabilities").members["drop"].documentation
    return set(re.findall(r'"([A-Z_]+)"', documentation)) - {"ALL"}


def mounted_owner(task: dict[str, Any], name: str, path: str) -> tuple[str, str]:
    """(volume the container ``name`` mounts at ``path``, the user that runs it)."""
    target = container(task, name)
    (mount,) = [m for m in target["mountPoints"] if m["containerPath"] == path]
    assert mount["readOnly"] is False
    return mount["sourceVolume"], target["user"]


def chowned(task: dict[str, Any]) -> dict[str, str]:
    """Volume -> owner the init container's command gives it."""
    init = container(task, INIT)
    assert init["entryPoint"] == ["/bin/sh", "-c"]
    (script,) = init["command"]
    mounts = {m["containerPath"]: m["sourceVolume"] for m in init["mountPoints"]}
    owners = {}
    for step in script.split(" && "):
        command, owner, path = step.split(" ")
        assert command == "chown"
        owners[mounts[path]] = owner
    return owners


def test_the_init_container_keeps_exactly_chown_of_what_the_ecs_api_knows() -> None:
    assert fargate_capabilities() - set(SCRATCH_INIT_DROPPED_CAPABILITIES) == {"CHOWN"}
    assert set(SCRATCH_INIT_DROPPED_CAPABILITIES) <= fargate_capabilities()


@pytest.mark.parametrize("env", ENVS)
def test_each_app_owns_its_tmp_before_it_starts(env: str) -> None:
    urls = compute_outputs(env)["repository_urls"]
    release = load_env(env).release.images
    for spec in load_catalog():
        task = unit(platform(env)["compute"], spec.name)["task"]
        volume, user = mounted_owner(task, spec.name, "/tmp")
        assert chowned(task) == {volume: user}
        app = container(task, spec.name)
        assert {"containerName": INIT, "condition": "SUCCESS"} in app["dependsOn"]
        init = container(task, INIT)
        # Runs once, as root, with nothing but CHOWN, from the service's own pinned image.
        assert init["essential"] is False and init["user"] == "0" and init["privileged"] is False
        assert init["readonlyRootFilesystem"] is True
        assert init["linuxParameters"] == {"capabilities": {
            "add": [], "drop": list(SCRATCH_INIT_DROPPED_CAPABILITIES)}}
        assert init["image"] == app["image"] == f"{urls[spec.name]}@{release[spec.name]}"
        assert not {"portMappings", "secrets", "environment", "healthCheck"} & set(init)
        assert init["logConfiguration"]["options"]["awslogs-stream-prefix"] == INIT
        assert "ephemeralStorage" not in task["inputs"]  # the catalog asks for none


@pytest.mark.parametrize("env", ENVS)
def test_the_apps_home_is_its_writable_scratch_volume(env: str) -> None:
    # A uid the image does not list gets HOME=/ from Docker, read-only here like the rest of the root:
    # whatever the app writes under ~ (pip, framework and model caches) must land on the scratch volume.
    for spec in load_catalog():
        task = unit(platform(env)["compute"], spec.name)["task"]
        app = container(task, spec.name)
        home = environment(app).get("HOME")
        assert home is not None, f"{spec.name}: no HOME, so ~ is / on a read-only root"
        volume, user = mounted_owner(task, spec.name, home)
        assert chowned(task)[volume] == user == app["user"]


def compute_outputs(env: str) -> dict[str, Any]:
    return platform(env)["compute"]["outputs"]


def test_envoy_owns_its_tmp_too_and_starts_after_the_init_container(edit_env: Any) -> None:
    doc = appmesh_dev(edit_env)["compute"]
    for spec in load_catalog():
        task = unit(doc, spec.name)["task"]
        app_volume, app_user = mounted_owner(task, spec.name, "/tmp")
        envoy_volume, envoy_user = mounted_owner(task, "envoy", "/tmp")
        assert app_volume != envoy_volume
        assert chowned(task) == {app_volume: app_user, envoy_volume: envoy_user} and envoy_user == "1337"
        assert container(task, "envoy")["dependsOn"] == [{"containerName": INIT, "condition": "SUCCESS"}]
        assert container(task, spec.name)["dependsOn"] == [{"containerName": INIT, "condition": "SUCCESS"},
                                                          {"containerName": "envoy", "condition": "HEALTHY"}]


def appmesh_dev(edit_env: Any, **mesh: Any) -> dict[str, dict[str, Any]]:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True,
                                                     **mesh))
    return fresh("dev")


def test_the_broker_port_bypasses_envoy(edit_env: Any) -> None:
    docs = appmesh_dev(edit_env)
    endpoint = docs["messaging"]["outputs"]["amqps_endpoint"]
    assert endpoint.endswith(":5671")
    for spec in load_catalog():
        properties = unit(docs["compute"], spec.name)["task"]["inputs"]["proxyConfiguration"]["properties"]
        assert properties["EgressIgnoredPorts"] == "5671"
        assert properties["EgressIgnoredIPs"] == "169.254.170.2,169.254.169.254"


def test_an_external_brokers_port_is_the_one_that_bypasses_envoy(edit_env: Any) -> None:
    docs = appmesh_dev(edit_env)
    stack_outputs = {f"organization/{layer}/dev": json.loads(json.dumps(docs[layer]["outputs"]))
                     for layer in ("network", "discovery", "mesh", "broker", "messaging")}
    stack_outputs["organization/messaging/dev"]["amqps_endpoint"] = "amqps://rabbit.example.internal:5700"
    doc = synth_program(REPO_ROOT / "stacks/compute", stack="dev", layer="compute", env="dev",
                        account_id="111111111111", region="eu-west-1", stack_outputs=stack_outputs)
    properties = unit(doc, "gateway")["task"]["inputs"]["proxyConfiguration"]["properties"]
    assert properties["EgressIgnoredPorts"] == "5700"


def test_envoy_runs_the_image_the_env_names(edit_env: Any) -> None:
    default = appmesh_dev(edit_env)["compute"]
    assert container(unit(default, "gateway")["task"], "envoy")["image"] == ENVOY_IMAGE
    pinned = "public.ecr.aws/appmesh/aws-appmesh-envoy@sha256:" + "ab" * 32
    named = appmesh_dev(edit_env, envoy_image=pinned)["compute"]
    for spec in load_catalog():
        assert container(unit(named, spec.name)["task"], "envoy")["image"] == pinned


@pytest.mark.parametrize("image", [
    "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.12.1-prod",  # a tag can be re-pointed
    "840364872350.dkr.ecr.eu-west-1.amazonaws.com/aws-appmesh-envoy@sha256:" + "ab" * 32,  # needs ECR IAM
])
def test_an_envoy_image_not_pinned_in_the_public_gallery_is_refused(edit_env: Any, image: str) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", envoy_image=image))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "mesh.envoy_image"


def catalog_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **inference: Any) -> Path:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["inference"].update(inference)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    return path


def test_the_catalog_may_ask_for_more_ephemeral_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_with(tmp_path, monkeypatch, ephemeral_storage_gib=60)
    doc = fresh("dev")["compute"]
    assert unit(doc, "inference")["task"]["inputs"]["ephemeralStorage"] == {"sizeInGib": 60}
    assert "ephemeralStorage" not in unit(doc, "gateway")["task"]["inputs"]
    # no container of its own: the app, scratch-init and (others call inference) the serve gate
    names = [c["name"] for c in containers(unit(doc, "inference")["task"])]
    assert names == ["inference", "scratch-init", "serve-gate"]


@pytest.mark.parametrize("size", [20, 201, "lots"])
def test_ephemeral_storage_fargate_refuses_names_the_catalog_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: Any,
) -> None:
    path = catalog_with(tmp_path, monkeypatch, ephemeral_storage_gib=size)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (raised.value.key, Path(raised.value.file)) == ("services.inference.ephemeral_storage_gib", path)
