"""A Service Connect caller's tasks resolve only the endpoints that existed, as they were, when those tasks
started: "Existing tasks can't resolve and connect to the new endpoint. Only new tasks ... that start running
after this deployment can", and "existing tasks and replacement tasks continue to behave the same as they did
after the most recent deployment" (ECS developer guide, "Amazon ECS Service Connect components"). So the `up`
that deploys a callee, or changes what its callers' proxies are told about it, also rolls its callers, after it:
their task definitions name each running callee's endpoint (a docker label), and their ECS services are updated
after the callees' (their ``depends_on``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.components.compute_containers import CALLEE_ENDPOINTS_LABEL
from shared.synth.engine import synth_env
from tests.catalog_helpers import write_catalog
from tests.layers.compute_helpers import SERVICE, TASK, container, platform, unit
from tests.synth_helpers import by_name


def definitions(compute: dict[str, Any], service: str) -> str:
    """The task definition's container definitions as registered: any change is a new revision, a rolling
    deployment of the ECS service."""
    return str(by_name(compute, TASK, service)["inputs"]["containerDefinitions"])


def endpoints(compute: dict[str, Any], service: str) -> dict[str, Any] | None:
    labels = container(by_name(compute, TASK, service), service).get("dockerLabels", {})
    value = labels.get(CALLEE_ENDPOINTS_LABEL)
    return None if value is None else dict(json.loads(value))


def test_each_caller_names_the_endpoints_of_the_callees_it_resolves() -> None:
    compute = platform("dev")["compute"]
    mesh = platform("dev")["mesh"]["outputs"]["services"]
    preprocess = endpoints(compute, "preprocess")
    assert preprocess == {"inference": {
        "client_alias": f"{mesh['inference']['client_alias_dns']}:{int(mesh['inference']['client_alias_port'])}",
        "discovery_name": mesh["inference"]["discovery_name"], "per_request_timeout_seconds": 120}}
    gateway_calls = set(load_catalog()["gateway"].calls)  # the shipped two and any service a user added to them
    assert set(endpoints(compute, "gateway") or {}) == gateway_calls >= {"preprocess", "inference"}
    # A service that calls nobody resolves nothing: no label, its task definition as before.
    assert endpoints(compute, "inference") is None and endpoints(compute, "training") is None


def test_the_up_that_releases_a_callee_rolls_its_callers_after_it(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["release"]["images"].pop("inference"))
    before = synth_env("dev", ["compute"])["compute"]
    after = platform("dev")["compute"]
    # Released later than its callers: their running tasks could never reach it ...
    assert "inference" not in (endpoints(before, "preprocess") or {})
    assert "inference" in (endpoints(after, "preprocess") or {})
    # ... so its release gives each caller a new task definition revision (ECS replaces their tasks) ...
    for caller in ("preprocess", "gateway"):
        assert definitions(before, caller) != definitions(after, caller), caller
    assert definitions(before, "training") == definitions(after, "training")
    # ... deployed after the callee's ECS service exists (Pulumi updates a resource after what it depends on).
    assert unit(after, "inference")["service"]["urn"] in by_name(after, SERVICE, "preprocess")["dependencies"]


def test_a_callees_new_request_timeout_rolls_its_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(request_timeout_seconds=130))
    changed = synth_env("dev", ["compute"])["compute"]
    shipped = platform("dev")["compute"]
    assert (endpoints(changed, "preprocess") or {})["inference"]["per_request_timeout_seconds"] == 130
    for caller in ("preprocess", "gateway"):
        assert definitions(changed, caller) != definitions(shipped, caller), caller
    assert definitions(changed, "training") == definitions(shipped, "training")


def test_without_a_change_the_callers_task_definitions_stay_byte_identical() -> None:
    again = synth_env("dev", ["compute"])["compute"]
    shipped = platform("dev")["compute"]
    for caller in ("preprocess", "gateway"):
        assert definitions(again, caller) == definitions(shipped, caller), caller


def test_app_mesh_callers_carry_no_endpoint_label(edit_env: Any) -> None:
    # Envoy learns its backends' endpoints from App Mesh while it runs: nothing to roll for.
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    compute = synth_env("dev")["compute"]
    assert endpoints(compute, "preprocess") is None and endpoints(compute, "gateway") is None


def rolled_back_synth(monkeypatch: pytest.MonkeyPatch, rolled: str) -> dict[str, Any]:
    """dev's compute as the provider reports it where ECS rolled ``rolled``'s ECS service back and its wait counted
    tasks (no new ECS deployment recorded): the rollback ends steady and the provider reads the service back, which
    runs the previous revision. (Where the wait reads the deployment's status, the callee's update itself fails.)"""
    from shared.synth.engine import layer_dir, synth_program
    from tests.layers.compute_helpers import ecs_rolls_back

    documents = platform("dev")
    upstream = {f"organization/{layer}/dev": documents[layer]["outputs"]
                for layer in ("network", "discovery", "mesh", "broker", "messaging")}
    ecs_rolls_back(monkeypatch, rolled)
    return synth_program(layer_dir("compute"), stack="dev", layer="compute", env="dev", account_id="111111111111",
                         region="eu-west-1", stack_outputs=upstream)


def test_a_callee_ecs_rolled_back_stops_the_up_before_its_callers_roll(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reported as a successful update, the rollback would let the engine go on to roll preprocess and gateway onto a
    # release inference does not run: a mix no env ran before. Their ECS services take their task definition only
    # once every callee runs what this up applied to it.
    from shared.components.compute_service import CalleeRolledBack
    from shared.synth.engine import SynthError

    with pytest.raises(SynthError) as raised:
        rolled_back_synth(monkeypatch, "inference")
    assert isinstance(raised.value.__cause__, CalleeRolledBack)
    message = str(raised.value)
    assert "compute stopped before" in message and "ECS rolled back what it calls (inference runs " in message
    assert "`nox -s promote -- dev@<revision> dev`" in message


def test_a_service_nothing_calls_rolled_back_stops_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    # training calls nothing and nothing calls it: its rollback is the orchestrator's to report after compute
    # (shared.orchestrate.images), and every other service rolls as it would have
    compute = rolled_back_synth(monkeypatch, "training")
    assert {service["name"] for service in compute["resources"] if service["type"] == SERVICE} >= {
        "gateway", "preprocess", "inference", "training"}
