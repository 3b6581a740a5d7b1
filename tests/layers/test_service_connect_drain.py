"""Destroying the discovery layer waits until ECS has removed its Service Connect services from the HTTP
namespace, which Cloud Map refuses to delete while it holds any (boto3 flows on moto)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.components import service_connect_drain
from shared.components.service_connect_drain import (
    DRAIN_TIMEOUT_SECONDS,
    ServiceConnectDrainProvider,
    wait_until_empty,
)
from shared.envs import load_env
from shared.synth.engine import synth_env
from tests.aws_helpers import patched_client
from tests.synth_helpers import by_name, of_type

REGION = "eu-west-1"
DYNAMIC = "pulumi-python:dynamic:Resource"


@pytest.fixture
def cloud_map(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    return patched_client(service_connect_drain, "servicediscovery", monkeypatch, REGION)


def namespace(client: Any, name: str) -> str:
    client.create_http_namespace(Name=name)
    (found,) = [ns for ns in client.list_namespaces()["Namespaces"] if ns["Name"] == name]
    return str(found["Id"])


def props(namespace_id: str) -> dict[str, Any]:
    return {"namespace_id": namespace_id, "namespace_name": "dev-ml-api", "region": REGION}


class Clock:
    """A fake monotonic clock that ``sleep`` advances; ``on_sleep`` plays ECS between two polls."""

    def __init__(self, on_sleep: Any = None) -> None:
        self.now, self.sleeps, self.on_sleep = 0.0, 0, on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.on_sleep is not None:
            self.on_sleep(self.sleeps)


def test_an_empty_namespace_is_deleted_at_once(cloud_map: Any) -> None:
    # (moto ignores ListServices' NAMESPACE_ID filter, so other namespaces' services are not set up here)
    clock = Clock()
    wait_until_empty(props(namespace(cloud_map, "dev-ml-api")), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == 0


def test_the_destroy_waits_until_ecs_has_removed_its_service_connect_services(cloud_map: Any) -> None:
    ns = namespace(cloud_map, "dev-ml-api")
    ids = [cloud_map.create_service(Name=name, NamespaceId=ns)["Service"]["Id"] for name in ("inference", "gateway")]

    def ecs_cleans_up(polls: int) -> None:  # ECS removes one service, then the other, a few polls later
        if polls in (2, 4):
            cloud_map.delete_service(Id=ids.pop())

    clock = Clock(ecs_cleans_up)
    wait_until_empty(props(ns), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == 4 and not ids


def test_services_ecs_never_removes_fail_the_destroy_naming_them_and_the_way_out(cloud_map: Any) -> None:
    ns = namespace(cloud_map, "dev-ml-api")
    service_id = cloud_map.create_service(Name="inference", NamespaceId=ns)["Service"]["Id"]
    clock = Clock()
    with pytest.raises(RuntimeError) as raised:
        wait_until_empty(props(ns), sleep=clock.sleep, clock=clock)
    message = str(raised.value)
    assert f"inference ({service_id})" in message and "dev-ml-api" in message
    assert f"aws servicediscovery delete-service --region {REGION} --id <id>" in message
    assert clock.now >= DRAIN_TIMEOUT_SECONDS
    assert cloud_map.list_services()["Services"], "it deletes nothing itself"


def test_the_provider_creates_nothing_and_waits_on_delete(cloud_map: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ns = namespace(cloud_map, "dev-ml-api")
    provider = ServiceConnectDrainProvider()
    created = provider.create(props(ns))
    assert created.id == ns and not cloud_map.list_services()["Services"]
    assert provider.diff(ns, props(ns), props(ns)).changes is False
    assert provider.diff(ns, props(ns), props("ns-other")).replaces == ["namespace_id"]
    waited: list[dict[str, Any]] = []
    monkeypatch.setattr(service_connect_drain, "wait_until_empty", waited.append)
    provider.delete(ns, props(ns))
    assert waited == [props(ns)]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_discovery_layer_deletes_the_drain_before_the_http_namespace(env: str) -> None:
    document = synth_env(env, ["discovery"])["discovery"]
    namespace_resource = by_name(document, "aws:servicediscovery/httpNamespace:HttpNamespace", "discovery-http")
    (drain,) = of_type(document, DYNAMIC)
    # Pulumi deletes a resource before the resources it depends on: the drain goes first.
    assert drain["dependencies"] == [namespace_resource["urn"]]
    assert drain["inputs"]["namespace_name"] == document["outputs"]["http_namespace_name"] == f"{env}-ml-api"
    assert drain["inputs"]["namespace_id"] == document["outputs"]["http_namespace_id"]
    assert drain["inputs"]["region"] == load_env(env).region
    assert drain["protect"] is False  # holds nothing; the namespace itself is what prod protects


# -- compute: a service dropped (from the release, the catalog, or by `destroy --layers compute`), then created again --
# discovery keeps the namespace; ECS removes its Cloud Map services only after DeleteService, and a discovery
# name must be unique in the namespace, so each ECS service's own drain waits for its name before that `up` ends.

def test_a_named_drain_waits_only_for_its_names(cloud_map: Any) -> None:
    ns = namespace(cloud_map, "dev-ml-api")
    other = cloud_map.create_service(Name="not-ours", NamespaceId=ns)["Service"]["Id"]
    ours = cloud_map.create_service(Name="inference", NamespaceId=ns)["Service"]["Id"]

    def ecs_cleans_up(polls: int) -> None:
        if polls == 3:
            cloud_map.delete_service(Id=ours)

    clock = Clock(ecs_cleans_up)
    wait_until_empty({**props(ns), "service_names": ["inference", "gateway"]}, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == 3
    assert [service["Id"] for service in cloud_map.list_services()["Services"]] == [other]


def test_a_named_drain_fails_naming_what_ecs_left_and_not_the_other_services(cloud_map: Any) -> None:
    ns = namespace(cloud_map, "dev-ml-api")
    cloud_map.create_service(Name="not-ours", NamespaceId=ns)
    ours = cloud_map.create_service(Name="gateway", NamespaceId=ns)["Service"]["Id"]
    clock = Clock()
    with pytest.raises(RuntimeError) as raised:
        wait_until_empty({**props(ns), "service_names": ["gateway"]}, sleep=clock.sleep, clock=clock)
    message = str(raised.value)
    assert f"gateway ({ours})" in message and "not-ours" not in message
    assert "destroy compute first" not in message  # this is compute's own destroy
    assert f"aws servicediscovery delete-service --region {REGION} --id <id>" in message


def test_a_change_of_names_is_an_in_place_update() -> None:
    provider = ServiceConnectDrainProvider()
    olds = {**props("ns-1"), "service_names": ["gateway"]}
    news = {**props("ns-1"), "service_names": ["gateway", "inference"]}
    diff = provider.diff("ns-1", olds, news)
    assert diff.changes is True and not diff.replaces


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_ecs_service_depends_on_a_drain_of_its_own_discovery_name(env: str) -> None:
    documents = synth_env(env, ["compute"])
    compute, mesh, discovery = documents["compute"], documents["mesh"]["outputs"], documents["discovery"]["outputs"]
    drains = {drain["urn"]: drain for drain in of_type(compute, DYNAMIC)}
    services = of_type(compute, "aws:ecs/service:Service")
    assert services and len(drains) == len(services)
    for service in services:
        # Pulumi deletes a resource before those it depends on: the ECS service goes before its drain, which then
        # waits for the Cloud Map service ECS made for it.
        (drain,) = [drains[urn] for urn in service["dependencies"] if urn in drains]
        assert drain["name"] == f"compute-{service['name']}-service-connect-drain"
        (entry,) = service["inputs"]["serviceConnectConfiguration"]["services"]
        assert drain["inputs"]["service_names"] == [entry["discoveryName"]]
        assert entry["discoveryName"] == mesh["services"][service["name"]]["discovery_name"]
        # the namespace the ECS service names (ListServices' NAMESPACE_ID filter takes an ID or an ARN)
        assert drain["inputs"]["namespace_id"] == service["inputs"]["serviceConnectConfiguration"]["namespace"] \
            == mesh["service_connect_namespace_arn"]
        assert drain["inputs"]["namespace_name"] == discovery["http_namespace_name"] == f"{env}-ml-api"
        assert drain["inputs"]["region"] == load_env(env).region
        assert drain["protect"] is False


def test_the_first_drain_takes_over_the_one_drain_of_earlier_versions() -> None:
    """Before, compute had one drain of every name; deleted, its stored names would have it wait for the services
    still running. The first service's drain aliases it, so the upgrade changes its names in place (no wait)."""
    compute = synth_env("dev", ["compute"])["compute"]
    aliased = [drain for drain in of_type(compute, DYNAMIC) if drain.get("aliases")]
    assert [drain["name"] for drain in aliased] == ["compute-gateway-service-connect-drain"]
    assert [str(alias) for alias in aliased[0]["aliases"]] == [
        aliased[0]["urn"].replace("compute-gateway-service-connect-drain", "compute-service-connect-drain")]


def test_a_service_dropped_from_the_release_takes_its_drain_with_it(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["release"]["images"].pop("inference"))
    compute = synth_env("dev", ["compute"])["compute"]
    names = sorted(drain["name"] for drain in of_type(compute, DYNAMIC))
    assert "compute-inference-service-connect-drain" not in names and names  # deleted after its ECS service
    assert not [service for service in of_type(compute, "aws:ecs/service:Service") if service["name"] == "inference"]


def test_an_app_mesh_env_has_no_service_connect_drain_in_compute(edit_env: Any) -> None:
    # App Mesh tasks register in the discovery layer's own Cloud Map services, which ECS does not create
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    compute = synth_env("dev")["compute"]
    assert of_type(compute, "aws:ecs/service:Service")
    assert not of_type(compute, DYNAMIC)
