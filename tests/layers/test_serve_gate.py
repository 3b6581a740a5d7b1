"""Service Connect sends a caller's requests to a callee's new task as soon as the task runs, whatever its container
health check says (aws/containers-roadmap#2334): a slow starter's new tasks got requests they could not answer on every
deploy and scale-out. A called service's task runs a serve gate that starts only once the app is HEALTHY, so the task
turns RUNNING, and its endpoint takes requests, only then; the tasks-below-desired alarm waits out that start-up."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from shared.catalog import HEALTH_TIMEOUT, STARTUP_SECONDS_MAX, container_health_timing, load_catalog
from shared.components.alarms import below_desired_periods
from shared.components.compute_containers import (
    APP_USER,
    FARGATE_START_TIMEOUT_MAX,
    SCRATCH_INIT_CONTAINER,
    SERVE_GATE_CONTAINER,
)
from shared.envs import DEPLOY_OVERHEAD_SECONDS, load_env
from shared.synth.engine import synth_env
from tests.catalog_helpers import write_catalog
from tests.layers.compute_helpers import ENVS, container, containers, fresh, platform, unit
from tests.synth_helpers import by_name

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.mark.parametrize("env", ENVS)
def test_a_called_service_holds_its_task_back_until_the_app_is_healthy(env: str) -> None:
    assert load_env(env).mesh.provider == "service-connect"
    catalog = load_catalog()
    doc = platform(env)["compute"]
    called = {spec.name for spec in catalog if catalog.callers(spec.name)}
    # of the shipped four (a service a user adds is gated or not by the same rule, below): gateway is public (its target
    # group's health), training uncalled
    assert called & {"gateway", "preprocess", "inference", "training"} == {"preprocess", "inference"}
    for spec in catalog:
        task = unit(doc, spec.name)["task"]
        names = [c["name"] for c in containers(task)]
        if spec.name not in called:
            assert SERVE_GATE_CONTAINER not in names, spec.name
            continue
        app, gate = container(task, spec.name), container(task, SERVE_GATE_CONTAINER)
        # It starts once the app passes its health check, and no container waits for it (no shutdown order change).
        assert gate["dependsOn"] == [{"containerName": spec.name, "condition": "HEALTHY"}]
        assert "healthCheck" in app and "startTimeout" not in gate
        # ...or once Fargate's longest startTimeout has passed since the app started: the shipped start-up (60 s) turns
        # HEALTHY within it, and an app that never does is not held back PENDING for hours (test below)
        assert app["startTimeout"] == FARGATE_START_TIMEOUT_MAX == 120
        assert all(d["containerName"] != SERVE_GATE_CONTAINER for c in containers(task) for d in c.get("dependsOn", []))
        # It does nothing: exits 0 at once, from the image already pulled, as the app's user, with nothing to use.
        assert gate["essential"] is False and gate["image"] == app["image"]
        assert (gate["entryPoint"], gate["command"]) == (["/bin/sh", "-c"], ["exit 0"])
        assert gate["user"] == APP_USER and gate["privileged"] is False and gate["readonlyRootFilesystem"] is True
        assert gate["linuxParameters"]["capabilities"] == {"add": [], "drop": ["ALL"]}
        assert not any(gate.get(key) for key in ("portMappings", "secrets", "environment", "mountPoints"))
        assert gate["logConfiguration"]["options"]["awslogs-stream-prefix"] == SERVE_GATE_CONTAINER
        assert names == [spec.name, SCRATCH_INIT_CONTAINER, SERVE_GATE_CONTAINER]


def test_app_mesh_tasks_have_no_serve_gate(edit_env: Any) -> None:
    # App Mesh's listener health check steers callers' Envoys; its app already waits for Envoy's HEALTHY
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    doc = fresh("dev")["compute"]
    for name in ("preprocess", "inference"):
        assert SERVE_GATE_CONTAINER not in [c["name"] for c in containers(unit(doc, name)["task"])]


@pytest.mark.parametrize(("startup", "timeout"), [(0, 120), (60, 120), (85, 120), (86, None), (300, None),
                                                  (900, None)])
def test_the_gate_gives_up_at_fargates_start_timeout_where_a_healthy_app_is_healthy_by_then(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, startup: int, timeout: int | None) -> None:
    # A task whose dependency never reaches HEALTHY stays PENDING, its UNHEALTHY app not stopped, until the scheduler
    # gives up hours later (aws/containers-roadmap#2379): no stopped task for the circuit breaker to count, an `up` that
    # waits out its steady-state timeout, a scale-out task that never serves. The app's startTimeout (Fargate: 2-120 s,
    # botocore ecs ContainerDefinition.startTimeout) makes the agent stop the waiting gate instead (amazon-ecs-agent
    # dependencygraph hasDependencyTimedOut, task_manager handleTerminalDependencyError): the task runs, and ECS stops
    # it once the app is UNHEALTHY. Only where a healthy app is HEALTHY by then (startup_seconds, then up to one check
    # interval and its timeout: Docker checks every interval from the start), else the gate would let callers in early.
    write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(startup_seconds=startup))
    task = unit(synth_env("dev", ["compute"])["compute"], "inference")["task"]
    app = container(task, "inference")
    assert app.get("startTimeout") == timeout
    _, interval, _ = container_health_timing(startup)
    assert (timeout is not None) == (startup + interval + HEALTH_TIMEOUT <= FARGATE_START_TIMEOUT_MAX)
    assert "startTimeout" not in container(task, SERVE_GATE_CONTAINER)


def test_only_a_gated_app_has_a_start_timeout() -> None:
    doc = platform("dev")["compute"]
    for name in ("gateway", "training"):
        assert all("startTimeout" not in c for c in containers(unit(doc, name)["task"])), name


def test_a_service_gains_the_gate_when_a_service_starts_calling_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["gateway"]["calls"].append("training"))
    task = unit(synth_env("dev", ["compute"])["compute"], "training")["task"]
    assert container(task, SERVE_GATE_CONTAINER)["dependsOn"] == [{"containerName": "training", "condition": "HEALTHY"}]


# -- the tasks-below-desired alarm: a gated task is not RUNNING while its app starts --------------------------------

def below_desired(doc: dict[str, Any], env: str, service: str) -> dict[str, Any]:
    return by_name(doc, ALARM, f"{env}-ml-tasks-below-desired-{service}")


@pytest.mark.parametrize("startup", [900, STARTUP_SECONDS_MAX])
def test_a_slow_starters_alarm_waits_out_its_start_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any, startup: int) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(startup_seconds=startup))
    for env in ENVS:  # each covers its deployment (the catalog is every env's)
        edit_env(env, lambda data: data["compute"].update(steady_state_timeout_minutes=60))
    doc = synth_env("dev", ["compute"])["compute"]
    alarms = load_env("dev").alarms
    alarm = below_desired(doc, "dev", "inference")["inputs"]
    # the task turns RUNNING once the app is HEALTHY: at the first check after its first healthy answer, which Docker
    # runs every interval from the start (aws/containers-roadmap#2473), taking up to its timeout: 300 s more at 3000 s
    _, interval, _ = container_health_timing(startup)
    pending = startup + interval + HEALTH_TIMEOUT + DEPLOY_OVERHEAD_SECONDS
    # every minute the new task is not RUNNING breaches, the partial first and last ones included
    period = alarms.period_seconds
    assert alarm["evaluationPeriods"] > math.ceil(pending / period) + 1
    assert alarm["evaluationPeriods"] * period <= 86_400  # CloudWatch's longest evaluation
    assert f"for {alarm['evaluationPeriods'] * period // 60} minutes" in alarm["alarmDescription"]
    # not gated (training: nobody calls it; gateway: public): the env's own periods; gated at the default start-up: one
    # more (test_the_shipped_alarms_wait_one_period_more_for_a_gated_start_up)
    for service in ("training", "gateway"):
        assert below_desired(doc, "dev", service)["inputs"]["evaluationPeriods"] == alarms.evaluation_periods
    assert below_desired(doc, "dev", "preprocess")["inputs"]["evaluationPeriods"] == alarms.evaluation_periods + 1


@pytest.mark.parametrize("env", ENVS)
def test_the_shipped_alarms_wait_one_period_more_for_a_gated_start_up(env: str) -> None:
    # at the default 60 s a gated task is not RUNNING for up to 215 s (120 s to place and pull, 60 s, the next check
    # 30 s on and its 5 s timeout): up to 5 minutes with a breaching data point, so the env's 5 periods could fire
    doc = platform(env)["compute"]
    assert load_env(env).alarms.evaluation_periods == 5
    catalog = load_catalog()
    for name in ("gateway", "preprocess", "inference", "training"):  # the shipped four, at the default startup_seconds
        alarm = below_desired(doc, env, name)["inputs"]
        assert catalog[name].startup_seconds == 60 and alarm["evaluationPeriods"] == (6 if catalog.callers(name) else 5)


@pytest.mark.parametrize(("pending", "period", "periods", "expected"), [
    (0, 60, 5, 5), (180, 60, 5, 5), (181, 60, 5, 6), (3120, 60, 5, 54), (3120, 3600, 2, 3), (900, 300, 1, 5)])
def test_below_desired_periods(pending: int, period: int, periods: int, expected: int) -> None:
    settings = load_env("dev").alarms.model_copy(update={"period_seconds": period, "evaluation_periods": periods})
    assert below_desired_periods(settings, pending) == expected


def test_the_longest_start_up_fits_cloudwatchs_day() -> None:
    for env in ENVS:
        settings = load_env(env).alarms
        _, interval, _ = container_health_timing(STARTUP_SECONDS_MAX)
        periods = below_desired_periods(settings, STARTUP_SECONDS_MAX + interval + HEALTH_TIMEOUT
                                        + DEPLOY_OVERHEAD_SECONDS)
        assert periods * settings.period_seconds <= 86_400, env
