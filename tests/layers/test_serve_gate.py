"""Service Connect sends a caller's requests to a callee's new task as soon as the task runs, whatever its container
health check says (aws/containers-roadmap#2334): a slow starter's new tasks got requests they could not answer on every
deploy and scale-out. A called service's task runs a serve gate that starts only once the app is HEALTHY, so the task
turns RUNNING, and its endpoint takes requests, only then; the tasks-below-desired alarm waits out that start-up."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from shared.catalog import STARTUP_SECONDS_MAX, load_catalog
from shared.components.alarms import below_desired_periods
from shared.components.compute_containers import APP_USER, SCRATCH_INIT_CONTAINER, SERVE_GATE_CONTAINER
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
    assert called == {"preprocess", "inference"}  # gateway is public (its target group's health), training uncalled
    for spec in catalog:
        task = unit(doc, spec.name)["task"]
        names = [c["name"] for c in containers(task)]
        if spec.name not in called:
            assert SERVE_GATE_CONTAINER not in names, spec.name
            continue
        app, gate = container(task, spec.name), container(task, SERVE_GATE_CONTAINER)
        # It starts once the app passes its health check, and no container waits for it (no shutdown order change).
        assert gate["dependsOn"] == [{"containerName": spec.name, "condition": "HEALTHY"}]
        assert "healthCheck" in app and "startTimeout" not in gate and "startTimeout" not in app
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


def test_a_service_gains_the_gate_when_a_service_starts_calling_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["gateway"]["calls"].append("training"))
    task = unit(synth_env("dev", ["compute"])["compute"], "training")["task"]
    assert container(task, SERVE_GATE_CONTAINER)["dependsOn"] == [{"containerName": "training", "condition": "HEALTHY"}]


# -- the tasks-below-desired alarm: a gated task is not RUNNING while its app starts --------------------------------

def below_desired(doc: dict[str, Any], env: str, service: str) -> dict[str, Any]:
    return by_name(doc, ALARM, f"{env}-ml-tasks-below-desired-{service}")


def test_a_slow_starters_alarm_waits_out_its_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(startup_seconds=900))
    doc = synth_env("dev", ["compute"])["compute"]
    alarms = load_env("dev").alarms
    alarm = below_desired(doc, "dev", "inference")["inputs"]
    pending = 900 + DEPLOY_OVERHEAD_SECONDS
    # every minute the new task is not RUNNING breaches, the partial first and last ones included
    period = alarms.period_seconds
    assert alarm["evaluationPeriods"] > math.ceil(pending / period) + 1
    assert alarm["evaluationPeriods"] * period <= 86_400  # CloudWatch's longest evaluation
    assert f"for {alarm['evaluationPeriods'] * period // 60} minutes" in alarm["alarmDescription"]
    # not gated (training: nobody calls it) or a default start-up: the env's own periods
    for service in ("training", "preprocess", "gateway"):
        assert below_desired(doc, "dev", service)["inputs"]["evaluationPeriods"] == alarms.evaluation_periods


@pytest.mark.parametrize("env", ENVS)
def test_the_shipped_alarms_keep_the_envs_periods(env: str) -> None:
    doc = platform(env)["compute"]
    for spec in load_catalog():
        alarm = below_desired(doc, env, spec.name)["inputs"]
        assert alarm["evaluationPeriods"] == load_env(env).alarms.evaluation_periods, spec.name


@pytest.mark.parametrize(("pending", "period", "periods", "expected"), [
    (0, 60, 5, 5), (180, 60, 5, 5), (181, 60, 5, 6), (3120, 60, 5, 54), (3120, 3600, 2, 3), (900, 300, 1, 5)])
def test_below_desired_periods(pending: int, period: int, periods: int, expected: int) -> None:
    settings = load_env("dev").alarms.model_copy(update={"period_seconds": period, "evaluation_periods": periods})
    assert below_desired_periods(settings, pending) == expected


def test_the_longest_start_up_fits_cloudwatchs_day() -> None:
    for env in ENVS:
        settings = load_env(env).alarms
        periods = below_desired_periods(settings, STARTUP_SECONDS_MAX + DEPLOY_OVERHEAD_SECONDS)
        assert periods * settings.period_seconds <= 86_400, env
