"""Given an env, the synthesized discovery layer has..."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.components.discovery import ServiceDiscoveryArgs
from shared.contracts import DiscoveryContract
from shared.envs import StaticInstance, load_env
from shared.errors import ConfigError
from shared.synth.engine import layer_dir, synth_env, synth_program
from tests.layers.resource_types import CLOUD_MAP_SERVICE, HTTP_NS, INSTANCE, PRIVATE_NS
from tests.spec_envs import SPEC_CATALOG
from tests.synth_helpers import by_urn, of_type, synth_layers


def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_layers(env, "discovery")


def discovery(env: str) -> dict[str, Any]:
    return layers(env)["discovery"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_private_namespace_lives_in_the_vpc_the_network_layer_exported(env: str) -> None:
    doc = discovery(env)
    (namespace,) = of_type(doc, PRIVATE_NS)
    assert namespace["inputs"]["vpc"] == layers(env)["network"]["outputs"]["vpc_id"]
    assert namespace["inputs"]["name"] == f"{env}.ml.internal"
    assert doc["stack_references"] == [f"organization/network/{env}"]


def test_the_vpc_id_is_read_from_the_network_stack_not_computed_locally() -> None:
    outputs = {**layers("dev")["network"]["outputs"], "vpc_id": "vpc-0feedfacefeedface"}
    doc = synth_program(layer_dir("discovery"), stack="dev", layer="discovery", env="dev",
                        account_id="111111111111", region="eu-west-1",
                        stack_outputs={"organization/network/dev": outputs})
    (namespace,) = of_type(doc, PRIVATE_NS)
    assert namespace["inputs"]["vpc"] == "vpc-0feedfacefeedface"


def test_an_http_namespace_serves_api_only_discovery() -> None:
    (namespace,) = of_type(discovery("staging"), HTTP_NS)
    assert namespace["inputs"]["name"] == "staging-ml-api"
    assert "vpc" not in namespace["inputs"]


def appmesh(edit_env: Any, env: str, **discovery_settings: Any) -> dict[str, Any]:
    """The discovery layer of ``env`` switched to App Mesh (with extra ``discovery`` settings)."""
    edit_env(env, lambda data: (data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True),
                                data.setdefault("discovery", {}).update(discovery_settings)))
    return synth_env(env, ["discovery"])["discovery"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_appmesh_envs_have_one_cloud_map_service_per_catalog_service_in_the_private_namespace(
    edit_env: Any, env: str,
) -> None:
    doc = appmesh(edit_env, env)
    services = of_type(doc, CLOUD_MAP_SERVICE)
    assert sorted(s["inputs"]["name"] for s in services) == sorted(load_catalog().names())
    private_id = doc["outputs"]["private_namespace_id"]
    ttl = load_env(env).discovery.dns_ttl_seconds
    for service in services:
        dns = service["inputs"]["dnsConfig"]
        assert dns["namespaceId"] == private_id
        assert dns["routingPolicy"] == "MULTIVALUE"
        assert sorted(dns["dnsRecords"], key=lambda r: r["type"]) == [{"ttl": ttl, "type": "A"},
                                                                      {"ttl": ttl, "type": "SRV"}]
        # ECS reports task health through a custom check; an empty block would be dropped by the provider.
        assert service["inputs"]["healthCheckCustomConfig"] == {"failureThreshold": 1}
        assert "healthCheckConfig" not in service["inputs"], "Route 53 checks cannot reach private task IPs"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_service_connect_envs_keep_no_per_service_cloud_map_services(env: str) -> None:
    # No task would ever be registered in them: Service Connect registers tasks in its own namespace.
    assert load_env(env).mesh.provider == "service-connect"
    assert of_type(discovery(env), CLOUD_MAP_SERVICE) == []
    assert discovery(env)["outputs"]["services"] == {}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_dns_namespace_holds_services_only_where_every_ecs_service_registers_in_them(
    edit_env: Any, env: str,
) -> None:
    for provider in ("service-connect", "appmesh"):
        edit_env(env, lambda data, provider=provider: data["mesh"].update(
            provider=provider, appmesh_end_of_support_acknowledged=provider == "appmesh"))
        docs = synth_env(env)
        cloud_map = {r["urn"]: r for r in of_type(docs["discovery"], CLOUD_MAP_SERVICE)}
        arns = {entry["arn"]: name for name, entry in docs["discovery"]["outputs"]["services"].items()}
        ecs_services = of_type(docs["compute"], "aws:ecs/service:Service")
        assert ecs_services
        if not cloud_map:
            assert provider == "service-connect"
            assert all("serviceRegistries" not in s["inputs"] for s in ecs_services)
            continue
        assert set(arns.values()) == {r["inputs"]["name"] for r in cloud_map.values()}
        for ecs_service in ecs_services:
            registry = ecs_service["inputs"]["serviceRegistries"]
            assert arns[registry["registryArn"]] == registry["containerName"], ecs_service["name"]


def test_dns_ttl_comes_from_the_env(edit_env: Any) -> None:
    doc = appmesh(edit_env, "dev", dns_ttl_seconds=42)
    ttls = {r["ttl"] for s in of_type(doc, CLOUD_MAP_SERVICE) for r in s["inputs"]["dnsConfig"]["dnsRecords"]}
    assert ttls == {42}


def test_the_env_may_name_its_namespace(edit_env: Any) -> None:
    edit_env("dev", lambda data: data.setdefault("discovery", {}).update(namespace="ml.dev.example.internal"))
    doc = synth_env("dev", ["discovery"])["discovery"]
    assert doc["outputs"]["private_namespace_name"] == "ml.dev.example.internal"


@pytest.mark.parametrize("provider", ["service-connect", "appmesh"])
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_exports_exactly_the_discovery_contract(edit_env: Any, env: str, provider: str) -> None:
    edit_env(env, lambda data: data["mesh"].update(provider=provider,
                                                   appmesh_end_of_support_acknowledged=provider == "appmesh"))
    doc = synth_env(env, ["discovery"])["discovery"]
    contract = DiscoveryContract.model_validate(doc["outputs"])
    resources = {r["inputs"]["name"]: r for r in of_type(doc, CLOUD_MAP_SERVICE)}
    assert set(contract.services) == (set(load_catalog().names()) if provider == "appmesh" else set())
    for name, service in contract.services.items():
        assert service.name == resources[name]["inputs"]["name"] == name
        assert service.id.startswith("srv-") and service.arn.endswith(f":service/{service.id}")
    assert contract.private_namespace_arn.endswith(f":namespace/{contract.private_namespace_id}")
    assert contract.http_namespace_arn.endswith(f":namespace/{contract.http_namespace_id}")


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_namespaces_are_protected_where_the_env_protects_state(env: str, protected: bool) -> None:
    for type_ in (PRIVATE_NS, HTTP_NS):
        (namespace,) = of_type(discovery(env), type_)
        assert namespace["protect"] is protected


def test_static_instances_register_their_ip_and_port_in_their_service(edit_env: Any) -> None:
    instance = {"service": "training", "instance_id": "gpu-box-1", "ipv4": "10.10.5.4", "port": 9000}
    doc = appmesh(edit_env, "dev", static_instances=[instance])
    (registered,) = of_type(doc, INSTANCE)
    assert registered["inputs"]["instanceId"] == "gpu-box-1"
    assert registered["inputs"]["serviceId"] == doc["outputs"]["services"]["training"]["id"]
    assert registered["inputs"]["attributes"]["AWS_INSTANCE_IPV4"] == "10.10.5.4"
    assert registered["inputs"]["attributes"]["AWS_INSTANCE_PORT"] == "9000"
    assert by_urn(doc)[registered["parent"]]["inputs"]["name"] == "training"


@pytest.mark.parametrize(("instance", "key"), [
    ({"service": "training", "instance_id": "box", "ipv4": "10.10.5.400", "port": 80},
     "discovery.static_instances.0.ipv4"),
    ({"service": "training", "instance_id": "box", "ipv4": "10.10.5.4", "port": 70000},
     "discovery.static_instances.0.port"),
    ({"service": "nope", "instance_id": "box", "ipv4": "10.10.5.4", "port": 80},
     "discovery.static_instances.0.service"),
])
def test_a_bad_static_instance_stops_synth_naming_the_key(edit_env: Any, instance: dict[str, Any], key: str) -> None:
    edit_env("dev", lambda data: data.setdefault("discovery", {}).update(static_instances=[instance]))
    with pytest.raises(ConfigError) as caught:
        synth_env("dev", ["discovery"])
    assert caught.value.key == key and caught.value.file.endswith("dev.yaml")


def test_static_instances_are_refused_where_service_connect_could_not_reach_them(edit_env: Any) -> None:
    instance = {"service": "training", "instance_id": "gpu-box-1", "ipv4": "10.10.5.4", "port": 9000}
    path = edit_env("dev", lambda data: data.setdefault("discovery", {}).update(static_instances=[instance]))
    with pytest.raises(ConfigError) as caught:
        synth_env("dev", ["discovery"])
    assert caught.value.key == "discovery.static_instances" and Path(caught.value.file).name == path.name
    assert "service-connect" in caught.value.reason


def test_the_discovery_component_refuses_static_instances_with_the_loaders_reason(edit_env: Any) -> None:
    """One rule: args built from an env the loader never checked fail with the reason the loader gives."""
    instance = {"service": "training", "instance_id": "gpu-box-1", "ipv4": "10.10.5.4", "port": 9000}
    unchecked = load_env("dev").model_copy(update={"discovery": load_env("dev").discovery.model_copy(
        update={"static_instances": (StaticInstance.model_validate(instance),)})})
    with pytest.raises(ConfigError) as from_component:
        ServiceDiscoveryArgs.from_env(unchecked, load_catalog())
    edit_env("dev", lambda data: data.setdefault("discovery", {}).update(static_instances=[instance]))
    with pytest.raises(ConfigError) as from_loader:
        load_env("dev")
    assert from_component.value.key == from_loader.value.key == "discovery.static_instances"
    assert from_component.value.reason == from_loader.value.reason


def test_a_service_added_to_the_catalog_gets_its_cloud_map_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any,
) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["embeddings"] = {"port": 8090, "health_path": "/healthz"}
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    doc = synth_env("dev", ["discovery"])["discovery"]
    assert "embeddings" in {s["inputs"]["name"] for s in of_type(doc, CLOUD_MAP_SERVICE)}
    assert "embeddings" in doc["outputs"]["services"]
