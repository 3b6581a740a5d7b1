"""Moving an env from App Mesh to Service Connect in place: what `up` does to each ECS service.

ECS UpdateService accepts both changes (botocore ecs UpdateService: "You can remove existing
serviceRegistries by passing an empty list", and serviceConnectConfiguration "triggers a new service
deployment"); the AWS provider marks neither ``service_registries`` nor ``service_connect_configuration``
as forcing a new resource and sends both in one UpdateService call (``serviceRegistries: []`` when the
block is removed). So the ECS service is updated in place and rolls out new tasks; only its task
definition is a new revision. The offline plan diff must say the same.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shared import lifecycle
from shared.catalog import load_catalog
from shared.envs import EnvConfig
from shared.orchestrate.automation import app_mesh_urns
from shared.plan_diff import diff_documents
from shared.synth.engine import synth_env
from tests.test_orchestrate import management_api

__all__ = ["management_api"]  # the stacks' management endpoint answers on loopback (the reach probe)

SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def test_switching_the_mesh_provider_updates_each_ecs_service_in_place(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    appmesh = synth_env("dev")["compute"]
    edit_env("dev", lambda data: data["mesh"].update(provider="service-connect",
                                                     appmesh_end_of_support_acknowledged=False))
    service_connect = synth_env("dev")["compute"]

    changes = diff_documents("compute", appmesh, service_connect).changes
    services = {change.urn.rsplit("::", 1)[-1]: change for change in changes if change.type == SERVICE}
    assert set(services) == set(load_catalog().names())
    for name, change in services.items():
        assert change.action == "update", (name, change.inputs)
        assert {"serviceRegistries", "serviceConnectConfiguration"} <= set(change.inputs)
    tasks = [change for change in changes if change.type == TASK]
    assert tasks and all(change.action == "replace" for change in tasks)


# -- after App Mesh's end of support: the mesh stack's App Mesh resources are dropped from the state first ----------

def _app_mesh_state(edit_env: Any) -> list[dict[str, Any]]:
    """The mesh layer's resources of dev on App Mesh, in the order its state lists them (the program's)."""
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    resources = synth_env("dev", ["mesh"])["mesh"]["resources"]
    edit_env("dev", lambda data: data["mesh"].update(provider="service-connect",
                                                     appmesh_end_of_support_acknowledged=False))
    return resources


def _orchestrate(argv: list[str], urns: list[str], day: date, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, Any]:
    from tests.test_orchestrate import RecordingRunner, run

    class StateRunner(RecordingRunner):
        def app_mesh_urns(self, layer: str, env: EnvConfig) -> list[str]:
            return list(urns) if layer == "mesh" else []

    monkeypatch.setattr(lifecycle, "today", lambda: day)
    runner = StateRunner()
    code, out = run(argv, runner)
    return code, out, runner


AFTER, BEFORE = date(2026, 10, 1), date(2026, 9, 30)


def test_app_mesh_resources_are_dropped_children_and_dependents_first(edit_env: Any) -> None:
    resources = _app_mesh_state(edit_env)
    by_urn = {resource["urn"]: resource for resource in resources}
    for listed in (resources, list(reversed(resources))):  # whatever order the state lists them in
        dropped = app_mesh_urns({"resources": listed})
        assert {by_urn[urn]["type"].split("/")[0] for urn in dropped} == {"aws:appmesh"}
        assert {by_urn[urn]["type"] for urn in dropped} >= {"aws:appmesh/mesh:Mesh",
                                                            "aws:appmesh/virtualNode:VirtualNode"}
        for index, urn in enumerate(dropped):  # its parent and what it depends on are dropped after it
            needs = {by_urn[urn].get("parent"), *by_urn[urn].get("dependencies", [])} & set(dropped)
            root = by_urn[urn]["type"] == "aws:appmesh/mesh:Mesh"  # the mesh needs none of them; all others need it
            assert needs <= set(dropped[index + 1:]) and (bool(needs) or root), urn


@pytest.mark.usefixtures("management_api")
@pytest.mark.parametrize("argv", [["up", "dev", "--yes"], ["destroy", "dev", "--yes"], ["refresh", "dev", "--yes"]])
def test_after_the_end_of_app_mesh_a_run_that_would_call_it_runs_nothing(
        argv: list[str], edit_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    urns = app_mesh_urns({"resources": _app_mesh_state(edit_env)})
    code, out, runner = _orchestrate(argv, urns, AFTER, monkeypatch)
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert f"still holds {len(urns)} App Mesh resources" in error and "Nothing was run" in error
    commands = [line.strip() for line in error.splitlines() if line.strip().startswith("pulumi state delete")]
    assert commands == [f"pulumi state delete --stack organization/mesh/dev '{urn}' --yes" for urn in urns]


@pytest.mark.usefixtures("management_api")
def test_before_the_end_or_as_a_preview_it_runs(edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    urns = app_mesh_urns({"resources": _app_mesh_state(edit_env)})
    code, out, runner = _orchestrate(["up", "dev", "--yes"], urns, BEFORE, monkeypatch)
    assert code == 0 and "mesh" in runner.started(), out
    code, out, runner = _orchestrate(["preview", "dev"], urns, AFTER, monkeypatch)
    assert code == 0 and "mesh" in runner.started(), out
    assert "note: preview would be refused:" in out and "pulumi state delete" in out
    code, out, runner = _orchestrate(["up", "dev", "--yes", "--layers", "network", "--exact"], urns, AFTER, monkeypatch)
    assert code == 0 and runner.started() == ["network"], out


def test_the_state_deletes_name_the_envs_backend(edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command runs on the env's backend with the secrets provider its state records, as the orchestrator's own
    runs do: against the CLI's own login it would miss the stack or act on a same-named one."""
    import io

    from shared.envs import load_env
    from shared.errors import ConfigError
    from shared.orchestrate.cli import check_ended_app_mesh
    from shared.orchestrate.model import Action, Operation
    from shared.orchestrate.plan import make_plan

    urns = app_mesh_urns({"resources": _app_mesh_state(edit_env)})
    monkeypatch.setattr(lifecycle, "today", lambda: AFTER)
    operation = Operation(Action.DESTROY)
    backend = "s3://ml-platform-state?region=eu-west-1&awssdk=v2"
    with pytest.raises(ConfigError) as raised:
        check_ended_app_mesh(make_plan(operation, None), operation, load_env("dev"),
                             lambda layer, env: urns if layer == "mesh" else [], io.StringIO(), backend)
    commands = [line.strip() for line in str(raised.value).splitlines() if "pulumi state delete" in line]
    assert commands == [f"PULUMI_BACKEND_URL='{backend}' PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true pulumi state "
                        f"delete --stack organization/mesh/dev '{urn}' --yes" for urn in urns]
