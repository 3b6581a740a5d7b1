"""Given an env, the synthesized mesh layer has... (both providers: Service Connect and App Mesh)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.contracts import MeshContract
from shared.errors import ConfigError
from shared.synth.engine import synth_env
from tests.spec_envs import SPEC_CATALOG
from tests.synth_helpers import by_urn, of_type

MESH = "aws:appmesh/mesh:Mesh"
NODE = "aws:appmesh/virtualNode:VirtualNode"
VIRTUAL_SERVICE = "aws:appmesh/virtualService:VirtualService"
ROUTER = "aws:appmesh/virtualRouter:VirtualRouter"
ROUTE = "aws:appmesh/route:Route"
CANARY = [{"version": "stable", "weight": 80}, {"version": "canary", "weight": 20}]


@cache
def service_connect(env: str) -> dict[str, dict[str, Any]]:
    return synth_env(env, ["mesh"])


def appmesh(edit_env: Any, env: str = "dev", **mesh: Any) -> dict[str, dict[str, Any]]:
    edit_env(env, lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True, **mesh))
    return synth_env(env, ["mesh"])


def aws_resources(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in doc["resources"] if r["type"].startswith("aws:")]


# -- Service Connect (every env's default) -------------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_service_connect_creates_no_aws_resources_and_uses_the_http_namespace(env: str) -> None:
    docs = service_connect(env)
    mesh = docs["mesh"]
    assert aws_resources(mesh) == [], "ECS creates Service Connect's Cloud Map services and proxies itself"
    contract = MeshContract.model_validate(mesh["outputs"])
    assert contract.provider == "service-connect" and contract.mesh_name is None
    assert contract.service_connect_namespace_arn == docs["discovery"]["outputs"]["http_namespace_arn"]
    assert mesh["stack_references"] == [f"organization/discovery/{env}"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_service_connect_wiring_per_catalog_service(env: str) -> None:
    contract = MeshContract.model_validate(service_connect(env)["mesh"]["outputs"])
    assert set(contract.services) == set(load_catalog().names())
    for spec in load_catalog():
        wiring = contract.services[spec.name]
        assert wiring.port_name == f"{spec.name}-http"
        assert wiring.discovery_name == spec.name
        assert (wiring.client_alias_dns, wiring.client_alias_port) == (f"{spec.name}.{env}.ml.internal", spec.port)
        assert wiring.virtual_node_name is None and wiring.virtual_service_name is None and wiring.versions == {}


def test_service_connect_wiring_is_recorded_on_a_component_for_traceability() -> None:
    (component,) = [r for r in service_connect("dev")["mesh"]["resources"]
                    if r["type"] == "mlplatform:mesh:ServiceConnectWiring"]
    assert component["custom"] is False


# -- App Mesh ------------------------------------------------------------------------------------------
def test_appmesh_mesh_drops_egress_to_undeclared_destinations_by_default(edit_env: Any) -> None:
    docs = appmesh(edit_env)
    (mesh,) = of_type(docs["mesh"], MESH)
    assert mesh["inputs"]["spec"]["egressFilter"]["type"] == "DROP_ALL"
    contract = MeshContract.model_validate(docs["mesh"]["outputs"])
    assert contract.provider == "appmesh" and contract.mesh_name == mesh["inputs"]["name"] == "dev-ml-mesh"
    assert contract.service_connect_namespace_arn is None


def test_appmesh_egress_filter_is_configurable(edit_env: Any) -> None:
    (mesh,) = of_type(appmesh(edit_env, egress_filter="ALLOW_ALL")["mesh"], MESH)
    assert mesh["inputs"]["spec"]["egressFilter"]["type"] == "ALLOW_ALL"


def test_appmesh_virtual_node_per_service_with_listener_health_check_and_cloud_map(edit_env: Any) -> None:
    docs = appmesh(edit_env)
    discovery = docs["discovery"]["outputs"]
    nodes = {n["inputs"]["name"]: n for n in of_type(docs["mesh"], NODE)}
    assert set(nodes) == set(load_catalog().names())
    for spec in load_catalog():
        node_spec = nodes[spec.name]["inputs"]["spec"]
        (listener,) = node_spec["listeners"]
        assert listener["portMapping"] == {"port": spec.port, "protocol": "http"}
        assert listener["healthCheck"]["path"] == spec.health_path
        assert listener["healthCheck"]["protocol"] == "http"
        cloud_map = node_spec["serviceDiscovery"]["awsCloudMap"]
        # The names come from the discovery layer's synthesized outputs, not from a local guess.
        assert cloud_map["namespaceName"] == discovery["private_namespace_name"]
        assert cloud_map["serviceName"] == discovery["services"][spec.name]["name"]


def test_appmesh_backends_are_exactly_the_catalogs_call_graph(edit_env: Any) -> None:
    docs = appmesh(edit_env)
    nodes = {n["inputs"]["name"]: n for n in of_type(docs["mesh"], NODE)}
    provided = {vs["inputs"]["name"] for vs in of_type(docs["mesh"], VIRTUAL_SERVICE)}
    for spec in load_catalog():
        backends = [b["virtualService"]["virtualServiceName"]
                    for b in nodes[spec.name]["inputs"]["spec"].get("backends", [])]
        assert backends == [f"{callee}.dev.ml.internal" for callee in spec.calls]
        assert set(backends) <= provided, "every backend is a virtual service of the mesh"


def test_appmesh_virtual_service_per_service_named_by_its_dns_name_and_provided_by_its_node(edit_env: Any) -> None:
    docs = appmesh(edit_env)
    contract = MeshContract.model_validate(docs["mesh"]["outputs"])
    services = {vs["inputs"]["name"]: vs for vs in of_type(docs["mesh"], VIRTUAL_SERVICE)}
    assert set(services) == {f"{name}.dev.ml.internal" for name in load_catalog().names()}
    for name, wiring in contract.services.items():
        virtual_service = services[wiring.virtual_service_name or ""]
        assert virtual_service["inputs"]["meshName"] == contract.mesh_name
        assert virtual_service["inputs"]["spec"]["provider"] == {"virtualNode": {"virtualNodeName": name}}
        assert wiring.virtual_node_name == name and wiring.client_alias_dns == wiring.virtual_service_name
    assert of_type(docs["mesh"], ROUTER) == [] and of_type(docs["mesh"], ROUTE) == []


def test_appmesh_canary_gets_a_node_per_version_and_a_weighted_route(edit_env: Any) -> None:
    docs = appmesh(edit_env, canaries={"inference": CANARY})
    mesh = docs["mesh"]
    nodes = {n["inputs"]["name"]: n for n in of_type(mesh, NODE)}
    assert "inference" not in nodes and {"inference-stable", "inference-canary"} <= set(nodes)
    for version in ("stable", "canary"):
        cloud_map = nodes[f"inference-{version}"]["inputs"]["spec"]["serviceDiscovery"]["awsCloudMap"]
        assert cloud_map["serviceName"] == docs["discovery"]["outputs"]["services"]["inference"]["name"]
        assert cloud_map["attributes"] == {"ECS_SERVICE_NAME": f"inference-{version}"}

    (router,) = of_type(mesh, ROUTER)
    assert router["inputs"]["spec"]["listeners"] == [{"portMapping": {"port": 8082, "protocol": "http"}}]
    (route,) = of_type(mesh, ROUTE)
    assert route["inputs"]["virtualRouterName"] == router["inputs"]["name"]
    targets = route["inputs"]["spec"]["httpRoute"]["action"]["weightedTargets"]
    assert {t["virtualNode"]: t["weight"] for t in targets} == {"inference-stable": 80, "inference-canary": 20}
    assert sum(t["weight"] for t in targets) == 100
    assert by_urn(mesh)[route["parent"]] is router

    (inference,) = [vs for vs in of_type(mesh, VIRTUAL_SERVICE) if vs["inputs"]["name"] == "inference.dev.ml.internal"]
    assert inference["inputs"]["spec"]["provider"] == {"virtualRouter": {"virtualRouterName": "inference-router"}}

    wiring = MeshContract.model_validate(mesh["outputs"]).services["inference"]
    assert wiring.virtual_node_name is None and wiring.virtual_router_name == "inference-router"
    assert {v: (w.virtual_node_name, w.weight) for v, w in wiring.versions.items()} == {
        "stable": ("inference-stable", 80), "canary": ("inference-canary", 20)}
    # Callers keep calling the same name: backends point at the virtual service, not at a version.
    callers = [n for n in nodes.values()
               if any(b["virtualService"]["virtualServiceName"] == "inference.dev.ml.internal"
                      for b in n["inputs"]["spec"].get("backends", []))]
    assert {n["inputs"]["name"] for n in callers} == {s.name for s in load_catalog() if "inference" in s.calls} \
        >= {"gateway", "preprocess"}


@pytest.mark.parametrize("weights", [(90, 20), (50,)])
def test_a_canary_whose_weights_do_not_make_100_stops_synth(edit_env: Any, weights: tuple[int, ...]) -> None:
    versions = [{"version": f"v{i}", "weight": w} for i, w in enumerate(weights)]
    with pytest.raises(ConfigError) as caught:
        appmesh(edit_env, canaries={"inference": versions})
    assert caught.value.key == "mesh.canaries"


def test_canaries_are_refused_with_service_connect_rather_than_silently_ignored(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(canaries={"inference": CANARY}))
    with pytest.raises(ConfigError) as caught:
        synth_env("dev", ["mesh"])
    assert caught.value.key == "mesh.canaries" and caught.value.file.endswith("dev.yaml")
    assert "appmesh" in caught.value.reason


def test_every_appmesh_resource_sits_in_the_mesh_under_the_envs_provider(edit_env: Any) -> None:
    mesh = appmesh(edit_env, canaries={"inference": CANARY})["mesh"]
    (provider,) = of_type(mesh, "pulumi:providers:aws")
    mesh_name = "dev-ml-mesh"
    for resource in aws_resources(mesh):
        assert resource["provider"] == provider["urn"]
        if resource["type"] != MESH:
            assert resource["inputs"]["meshName"] == mesh_name


def test_a_service_added_to_the_catalog_gets_its_mesh_entries(
    edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["embeddings"] = {"port": 8090, "health_path": "/healthz"}
    data["services"]["gateway"]["calls"].append("embeddings")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))

    assert "embeddings" in synth_env("dev", ["mesh"])["mesh"]["outputs"]["services"]
    mesh = appmesh(edit_env)["mesh"]
    nodes = {n["inputs"]["name"]: n for n in of_type(mesh, NODE)}
    assert nodes["embeddings"]["inputs"]["spec"]["serviceDiscovery"]["awsCloudMap"]["serviceName"] == "embeddings"
    assert "embeddings.dev.ml.internal" in {vs["inputs"]["name"] for vs in of_type(mesh, VIRTUAL_SERVICE)}
    backends = {b["virtualService"]["virtualServiceName"] for b in nodes["gateway"]["inputs"]["spec"]["backends"]}
    assert "embeddings.dev.ml.internal" in backends
