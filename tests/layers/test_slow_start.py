"""Slow starters (catalog ``startup_seconds``): the container health check, the load-balanced service's grace
period and `up`'s steady-state wait all let a service take that long before it answers its health check."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.loaders
import pytest

from shared.catalog import (
    STARTUP_SECONDS_MAX,
    container_health_timing,
    deregistration_delay,
    load_catalog,
)
from shared.envs import DEPLOY_OVERHEAD_SECONDS, deployment_seconds, load_env
from shared.errors import ConfigError
from shared.synth.engine import synth_env
from tests.catalog_helpers import write_catalog
from tests.layers.compute_helpers import SERVICE, TASK, container
from tests.synth_helpers import by_name, of_type

CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/slow-start"
CatalogEditor = Callable[[Callable[[dict[str, Any]], None]], Path]


@pytest.fixture
def edit_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogEditor:
    def edit(change: Callable[[dict[str, Any]], None]) -> Path:
        return write_catalog(tmp_path, monkeypatch, change)

    return edit


def ecs_health_check_ranges() -> dict[str, tuple[int, int]]:
    """The ranges botocore's ECS model documents for a container HealthCheck ("between X and Y")."""
    model = botocore.loaders.Loader().load_service_model("ecs", "service-2")
    members = model["shapes"]["HealthCheck"]["members"]
    ranges = {}
    for key in ("interval", "timeout", "retries", "startPeriod"):
        found = re.search(r"between (\d+) and (\d+)", members[key]["documentation"])
        assert found, key
        ranges[key] = (int(found.group(1)), int(found.group(2)))
    return ranges


def test_the_health_check_lets_every_allowed_start_up_through_within_ecs_ranges() -> None:
    ranges = ecs_health_check_ranges()
    assert ranges["startPeriod"] == (0, 300)  # the model still says so: the cap the key works around
    for startup in range(0, STARTUP_SECONDS_MAX + 1):
        start_period, interval, retries = container_health_timing(startup)
        for key, value in (("startPeriod", start_period), ("interval", interval), ("retries", retries)):
            low, high = ranges[key]
            assert low <= value <= high, (startup, key, value)
        # After startPeriod the first counted failure may come at once; the container turns UNHEALTHY at the
        # retries-th failure in a row, so retries-1 intervals are sure to pass before it.
        assert start_period + (retries - 1) * interval >= startup, startup


def test_the_default_health_check_and_grace_period() -> None:
    spec = load_catalog()["inference"]
    assert spec.health_check_timing == (60, 30, 3)
    # 60 s start-up, two passing target group checks 15 s apart, the second one's 5 s answer.
    assert spec.health_check_grace_seconds == 95


@pytest.mark.parametrize(("value", "said"), [(STARTUP_SECONDS_MAX + 1, "longer than an ECS container health check"),
                                             (-1, "no start-up time")])
def test_a_start_up_no_health_check_can_wait_for_is_refused_naming_the_key(
        edit_catalog: CatalogEditor, value: int, said: str) -> None:
    path = edit_catalog(lambda services: services["inference"].update(startup_seconds=value))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (Path(raised.value.file), raised.value.key) == (path, "services.inference.startup_seconds")
    assert said in raised.value.reason


def app_health_check(compute: dict[str, Any], service: str) -> dict[str, Any]:
    health: dict[str, Any] = container(by_name(compute, TASK, service), service)["healthCheck"]
    return health


@pytest.mark.parametrize(("startup", "expected"), [
    (240, {"startPeriod": 240, "interval": 30, "retries": 3}),
    (900, {"startPeriod": 300, "interval": 67, "retries": 10}),
])
def test_the_app_container_health_check_follows_the_key(edit_catalog: CatalogEditor, startup: int,
                                                        expected: dict[str, int]) -> None:
    edit_catalog(lambda services: services["inference"].update(startup_seconds=startup))
    compute = synth_env("dev", ["compute"])["compute"]
    health = app_health_check(compute, "inference")
    assert {key: health[key] for key in expected} == expected and health["timeout"] == 5
    # The others keep today's check.
    assert {key: app_health_check(compute, "training")[key] for key in expected} == {
        "startPeriod": 60, "interval": 30, "retries": 3}


def test_a_public_slow_starter_gets_a_grace_period_covering_its_start_up(edit_catalog: CatalogEditor,
                                                                        edit_env: Any) -> None:
    edit_catalog(lambda services: services["gateway"].update(startup_seconds=240))
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE))
    compute = synth_env("dev", ["compute"])["compute"]
    services = {s["name"]: s["inputs"] for s in of_type(compute, SERVICE)}
    # ECS ignores the load balancer's (and the container's) health checks that long after a task starts, and stops
    # a task whose target is still unhealthy after it. At worst the app answers just after a failed check was sent:
    # the target group's next healthyThreshold checks start one interval apart, and the last one passes when its
    # answer arrives, up to its timeout later (ELB guide, "Health checks for Application Load Balancer target
    # groups"). Read from the target group as synthesized, so a change of its checks is held to the grace period.
    (target_group,) = [r["inputs"] for r in of_type(compute, "aws:lb/targetGroup:TargetGroup")]
    check = target_group["healthCheck"]
    healthy_at = 240 + check["healthyThreshold"] * check["interval"] + check["timeout"]
    assert services["gateway"]["healthCheckGracePeriodSeconds"] >= healthy_at
    assert services["gateway"]["healthCheckGracePeriodSeconds"] == 240 + 2 * 15 + 5  # and no longer than that
    assert services["gateway"]["healthCheckGracePeriodSeconds"] >= app_health_check(compute, "gateway")["startPeriod"]
    # Without a load balancer none is set (the container check's own startPeriod and retries cover the start-up).
    assert "healthCheckGracePeriodSeconds" not in services["inference"]


def test_a_steady_state_wait_shorter_than_a_deployment_of_a_slow_starter_is_refused(
        edit_catalog: CatalogEditor, edit_env: Any) -> None:
    edit_catalog(lambda services: services["inference"].update(startup_seconds=900))
    path = edit_env("dev", lambda data: data["compute"].update(steady_state_timeout_minutes=10))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "compute.steady_state_timeout_minutes" and raised.value.file.endswith(path.name)
    # 900 s start-up, the health check's next pass (a 67 s interval, its 5 s timeout), inference's 120 s stop
    # timeout, 120 s to place and pull.
    assert "inference" in raised.value.reason and "at least 1212 s" in raised.value.reason
    assert "21 minutes" in raised.value.reason
    edit_env("dev", lambda data: data["compute"].update(steady_state_timeout_minutes=21))
    assert load_env("dev").compute.steady_state_timeout_minutes == 21


def test_deleting_a_public_service_waits_for_its_drain(edit_catalog: CatalogEditor, edit_env: Any) -> None:
    # A public service with a long request timeout drains that long, then gets its stop timeout; the provider waits
    # for INACTIVE on delete (destroy, a service leaving the release) 20 minutes unless told otherwise.
    edit_catalog(lambda services: services["gateway"].update(request_timeout_seconds=1800))
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE,
                                                        steady_state_timeout_minutes=40))
    compute = synth_env("dev", ["compute"])["compute"]
    target_group = of_type(compute, "aws:lb/targetGroup:TargetGroup")[0]["inputs"]
    drain = target_group["deregistrationDelay"] + container(by_name(compute, TASK, "gateway"), "gateway")["stopTimeout"]
    assert drain == 1800 + 120 > 20 * 60
    timeouts = by_name(compute, SERVICE, "gateway")["custom_timeouts"]
    assert timeouts["delete"] == "40m" and 40 * 60 >= drain


@pytest.mark.parametrize(("service", "change"), [
    ("gateway", {}),  # 180 s request timeout: a 180 s deregistration delay, then its 120 s stop timeout
    ("inference", {"public": True}),  # 120 s request and stop timeouts
    ("inference", {"public": True, "request_timeout_seconds": 15, "stop_timeout_seconds": 10}),
])
def test_a_public_deployment_waits_the_target_groups_deregistration_delay_and_the_stop_timeout(
        service: str, change: dict[str, Any]) -> None:
    # ECS deregisters a leaving task, waits the target group's deregistration delay, then sends SIGTERM and waits
    # up to the stop timeout: the old task of a public service is gone only after both.
    spec = load_catalog()[service].model_copy(update=change)
    drain = deregistration_delay(spec.request_timeout_seconds) + spec.stop_timeout
    assert deployment_seconds(spec, True) == (
        spec.health_check_grace_seconds + drain + DEPLOY_OVERHEAD_SECONDS)
    assert deployment_seconds(spec, False) == spec.healthy_seconds + spec.stop_timeout + DEPLOY_OVERHEAD_SECONDS


@pytest.mark.parametrize("startup", [60, 900, 3000])
def test_a_private_deployment_waits_until_the_new_task_is_healthy_not_until_it_first_answers(startup: int) -> None:
    # ECS's steady state needs the new task's container HEALTHY (aws/containers-roadmap#897); Docker runs the
    # check every interval from the start, so HEALTHY comes up to an interval and the check's timeout after the
    # app first answers: a timeout sized to startup_seconds alone gives up on a deployment ECS completes.
    spec = load_catalog()["preprocess"].model_copy(update={"startup_seconds": startup})
    _, interval, _ = spec.health_check_timing
    assert deployment_seconds(spec, False) > startup + interval + spec.stop_timeout + DEPLOY_OVERHEAD_SECONDS
