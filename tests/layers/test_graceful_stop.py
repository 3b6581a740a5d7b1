"""On a deploy or scale-in ECS sends the app SIGTERM and, after its container's stopTimeout, SIGKILL. The
stopTimeout comes from the catalog: by default long enough for a request in flight to finish (the callers'
request_timeout_seconds) within Fargate's 2-120 s, so Fargate's 30 s default no longer cuts a 120 s inference
short; Envoy keeps 30 s (ECS stops it after the app, which depends on it)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.components.compute_containers import ContainerWiring, app_container
from tests.layers.compute_helpers import ENVS, container, fresh, platform, unit


@pytest.mark.parametrize("env", ENVS)
def test_each_app_container_gets_its_catalog_stop_timeout(env: str) -> None:
    doc = platform(env)["compute"]
    for spec in load_catalog():
        app = container(unit(doc, spec.name)["task"], spec.name)
        assert app["stopTimeout"] == spec.stop_timeout
        assert 2 <= app["stopTimeout"] <= 120
        assert app["stopTimeout"] >= min(spec.request_timeout_seconds, 120), spec.name


def test_the_shipped_services_stop_timeouts_cover_their_requests_in_flight() -> None:
    catalog = load_catalog()
    # inference answers within 120 s, so it gets Fargate's maximum; training serves short requests only.
    assert (catalog["inference"].stop_timeout, catalog["gateway"].stop_timeout) == (120, 120)
    assert catalog["training"].stop_timeout == 30


def test_an_explicit_stop_timeout_is_used_as_is() -> None:
    wiring = ContainerWiring(service="training", port=8083, health_path="/health", image="repo@sha256:" + "a" * 64,
                             region="eu-west-1", log_group="/g", port_name="training-http", environment={},
                             secrets={}, stop_timeout=90)
    assert app_container(wiring)["stopTimeout"] == 90


def test_envoy_keeps_its_30_s_in_app_mesh_envs(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    doc = fresh("dev")["compute"]
    inference = unit(doc, "inference")["task"]
    assert container(inference, "envoy")["stopTimeout"] == 30
    assert container(inference, "inference")["stopTimeout"] == load_catalog()["inference"].stop_timeout


@pytest.mark.parametrize("env", ENVS)
def test_a_deploy_starts_the_replacements_before_it_stops_a_task(env: str) -> None:
    # botocore ecs DeploymentConfiguration: minimumHealthyPercent is the share of desiredCount that must stay RUNNING
    # (rounded up), maximumPercent the cap on RUNNING or PENDING tasks (rounded down). 100/200 keep even a service of
    # one task (min_count 1) serving: its replacement runs and is healthy before ECS stops it.
    doc = platform(env)["compute"]
    for spec in load_catalog():
        inputs = unit(doc, spec.name)["service"]["inputs"]
        assert (inputs["deploymentMinimumHealthyPercent"], inputs["deploymentMaximumPercent"]) == (100, 200), spec.name
