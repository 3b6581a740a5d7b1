"""A service's callers wait as long as its catalog entry's ``request_timeout_seconds`` says, on every hop a
request takes: the Service Connect proxy of each caller (the timeout on the callee's endpoint), App Mesh's
listeners and routes, and the public gateway's ALB, whose idle timeout and deregistration delay follow the
public service's wait. Without these, Service Connect and App Mesh answer 504 after their 15 s default and the
ALB closes a request idle for its 60 s default."""

from __future__ import annotations

from typing import Any

import pytest

from shared.catalog import DEFAULT_REQUEST_TIMEOUT_SECONDS, deregistration_delay, load_catalog
from shared.components.compute_plan import SERVICE_CONNECT_IDLE_TIMEOUT_SECONDS, service_connect_timeouts
from tests.layers.compute_helpers import ENVS, container, environment, fresh, platform, unit
from tests.synth_helpers import by_name, of_type

CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
NODE = "aws:appmesh/virtualNode:VirtualNode"
ROUTE = "aws:appmesh/route:Route"


def endpoint_timeout(doc: dict[str, Any], service: str) -> dict[str, int]:
    (entry,) = unit(doc, service)["service"]["inputs"]["serviceConnectConfiguration"]["services"]
    timeout: dict[str, int] = entry["timeout"]
    return timeout


def test_the_shipped_catalog_lets_inference_answer_after_the_proxies_15_s_default() -> None:
    catalog = load_catalog()
    assert catalog["inference"].request_timeout_seconds > DEFAULT_REQUEST_TIMEOUT_SECONDS
    # Each caller waits at least as long as what it calls waits: gateway -> preprocess -> inference.
    for spec in catalog:
        for callee in spec.calls:
            assert spec.request_timeout_seconds >= catalog[callee].request_timeout_seconds, (spec.name, callee)


@pytest.mark.parametrize("env", ENVS)
def test_each_service_connect_endpoint_carries_its_catalog_request_timeout(env: str) -> None:
    doc = platform(env)["compute"]
    for spec in load_catalog():
        timeout = endpoint_timeout(doc, spec.name)
        assert timeout["perRequestTimeoutSeconds"] == spec.request_timeout_seconds
        # Both fields are sent (the provider would send a missing one as 0, which turns it off), and the
        # idle timeout never cuts a request short: ECS closes at the idle timeout when it is the smaller.
        assert timeout["idleTimeoutSeconds"] > timeout["perRequestTimeoutSeconds"]
        assert timeout["idleTimeoutSeconds"] >= SERVICE_CONNECT_IDLE_TIMEOUT_SECONDS


def test_the_idle_timeout_stays_in_ecs_range_for_the_longest_request_timeout() -> None:
    per_request, idle = service_connect_timeouts(2147483647)
    assert per_request == idle == 2147483647
    assert service_connect_timeouts(15) == (15, SERVICE_CONNECT_IDLE_TIMEOUT_SECONDS)
    assert service_connect_timeouts(600) == (600, 660)


def test_the_public_gateways_alb_waits_as_long_as_the_gateway_and_drains_that_long(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE))
    doc = fresh("dev")["compute"]
    gateway = load_catalog()["gateway"]
    alb = by_name(doc, "aws:lb/loadBalancer:LoadBalancer", "gateway-alb")["inputs"]
    # The proxy in the task (Service Connect's ingress on the container port) ends an over-long request, with a 504
    # its access log shows: the ALB, whose timer starts a moment earlier, waits a little longer (185 s).
    assert alb["idleTimeout"] == gateway.request_timeout_seconds + 5 == 185
    assert alb["idleTimeout"] > endpoint_timeout(doc, "gateway")["perRequestTimeoutSeconds"]
    # ... and no longer than the app keeps an idle connection (HTTP_KEEPALIVE_SECONDS), which it must not close first.
    keepalive = int(environment(container(unit(doc, "gateway")["task"], "gateway"))["HTTP_KEEPALIVE_SECONDS"])
    assert alb["idleTimeout"] < keepalive
    # ... which covers the longest chain behind it (the catalog keeps a caller's wait >= its callees').
    assert alb["idleTimeout"] >= max(load_catalog()[callee].request_timeout_seconds for callee in gateway.calls)
    assert 1 <= alb["idleTimeout"] <= 4000
    target_group = by_name(doc, "aws:lb/targetGroup:TargetGroup", "gateway-tasks")["inputs"]
    # A leaving task's requests in flight finish within the deregistration delay: when it ends the ALB breaks their
    # connections (ECS guide, "Optimize load balancer connection draining parameters"), and only then does ECS send
    # SIGTERM, so the app's stop timeout after it buys an ALB request nothing (a 60 s delay cut the gateway's
    # 180 s requests on every deploy and scale-in).
    assert target_group["deregistrationDelay"] >= gateway.request_timeout_seconds
    assert target_group["deregistrationDelay"] == 180


@pytest.mark.parametrize("env", ENVS)
def test_a_public_or_called_app_is_told_a_keep_alive_that_outlasts_the_proxy_in_front_of_it(env: str) -> None:
    """The Service Connect proxy (and a public service's ALB) reuses idle connections to the app; where the app closes
    one first, the request sent on it that moment is a 502/503 (ELB guide: the target's keep-alive above the idle
    timeout in front of it). Each such app gets HTTP_KEEPALIVE_SECONDS, strictly above its endpoint's idle timeout;
    a service no HTTP request reaches gets none."""
    doc = platform(env)["compute"]
    catalog = load_catalog()
    called = {callee for spec in catalog for callee in spec.calls}
    told = set()
    for spec in catalog:
        resources = unit(doc, spec.name)
        variables = environment(container(resources["task"], spec.name))
        if not (spec.public or spec.name in called):
            assert "HTTP_KEEPALIVE_SECONDS" not in variables, spec.name
            continue
        told.add(spec.name)
        idle = endpoint_timeout(doc, spec.name)["idleTimeoutSeconds"]
        assert int(variables["HTTP_KEEPALIVE_SECONDS"]) > idle > spec.request_timeout_seconds, spec.name
    assert told == {"gateway", "preprocess", "inference"}


@pytest.mark.parametrize(("request_timeout", "delay"), [(180, 180), (15, 30), (3600, 3600), (120, 120), (30, 30)])
def test_the_deregistration_delay_covers_a_whole_request(request_timeout: int, delay: int) -> None:
    assert deregistration_delay(request_timeout) == delay
    assert 0 <= delay <= 3600 and delay >= request_timeout


def test_app_mesh_listeners_and_canary_routes_wait_the_catalog_request_timeout(edit_env: Any) -> None:
    canary = [{"version": "stable", "weight": 90}, {"version": "canary", "weight": 10}]
    edit_env("dev", lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True, canaries={"inference": canary}))
    mesh = fresh("dev")["mesh"]
    catalog = load_catalog()
    nodes = of_type(mesh, NODE)
    assert {n["inputs"]["name"] for n in nodes} >= {"gateway", "preprocess", "inference-stable", "inference-canary"}
    for node in nodes:
        service = node["inputs"]["tags"]["service"]
        (listener,) = node["inputs"]["spec"]["listeners"]
        assert listener["timeout"] == {"http": {"perRequest": {
            "unit": "s", "value": catalog[service].request_timeout_seconds}}}
    (route,) = of_type(mesh, ROUTE)
    assert route["inputs"]["spec"]["httpRoute"]["timeout"] == {"perRequest": {
        "unit": "s", "value": catalog["inference"].request_timeout_seconds}}
