"""Where a service's tasks run: on-demand Fargate, or Fargate Spot (env ``services.<svc>.capacity``) for a service only
its queue brings work to. Every ECS service names its capacity provider in a strategy (no launch type), the cluster
is associated with both Fargate providers before any service is created, and moving a service between them is an
update in place with a new deployment, never a replace (which would stop every task at once and, for a consumer,
drop the jobs it holds)."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import botocore.session
import pytest

from shared.catalog import load_catalog
from shared.envs import load_env, spot_job_notes
from shared.errors import ConfigError, ConfigErrors
from shared.fargate import CAPACITY_PROVIDERS
from shared.orchestrate.account import FARGATE_VCPU_QUOTAS, _compute_needs, released_units
from shared.plan_diff import diff_documents
from tests.layers.compute_helpers import fresh
from tests.synth_helpers import by_name, of_type

SERVICE = "aws:ecs/service:Service"
CAPACITY = "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
CLUSTER = "aws:ecs/cluster:Cluster"


def _spot(edit_env: Any, service: str = "training") -> None:
    edit_env("dev", lambda data: data["services"][service].update(capacity="spot"))


def _strategy(compute: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return by_name(compute, SERVICE, service)["inputs"]["capacityProviderStrategies"]


def test_every_service_names_its_provider_and_the_cluster_has_both_before_any_service(edit_env: Any) -> None:
    _spot(edit_env)
    compute = fresh("dev")["compute"]
    (association,) = of_type(compute, CAPACITY)
    (cluster,) = of_type(compute, CLUSTER)
    assert association["inputs"]["clusterName"] == cluster["inputs"]["name"]
    assert sorted(association["inputs"]["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    assert not association["inputs"].get("defaultCapacityProviderStrategies")  # each service names its own
    services = of_type(compute, SERVICE)
    assert services
    for service in services:
        inputs = service["inputs"]
        expected = "FARGATE_SPOT" if service["name"] == "training" else "FARGATE"
        assert inputs["capacityProviderStrategies"] == [{"capacityProvider": expected, "weight": 1, "base": 0}]
        assert "launchType" not in inputs  # CreateService refuses both (botocore ecs CreateService)
        # ECS takes a strategy change only with a forced new deployment; the provider refuses to plan one without it
        assert inputs["forceNewDeployment"] is True
        # created after the association (a strategy may name only a provider associated with the cluster), deleted
        # before it (ECS refuses to drop a provider a service uses)
        assert association["urn"] in service["dependencies"], service["name"]


def test_moving_a_consumer_to_spot_and_back_is_an_update_in_place(edit_env: Any) -> None:
    before = fresh("dev")["compute"]
    _spot(edit_env)
    after = fresh("dev")["compute"]
    assert _strategy(after, "training") == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    for old, new in ((before, after), (after, before)):
        changes = [(c.action, c.name, c.inputs) for c in diff_documents("compute", old, new).changes]
        assert changes == [("update", "training", ("capacityProviderStrategies",))]


def test_a_launch_type_service_deployed_before_moves_to_its_strategy_in_place() -> None:
    """The deployed services of releases before this one have ``launchType: FARGATE`` (ForceNew in the provider) and
    no strategy. The program no longer sets it; the provider's launch_type is Optional and Computed, so the state
    keeps it without a diff, and the strategy is added in place (terraform-provider-aws ecs/service.go)."""
    after = fresh("dev")["compute"]
    before = {**after, "resources": [dict(resource) for resource in after["resources"]]}
    for resource in before["resources"]:
        if resource["type"] == SERVICE:
            inputs = {key: value for key, value in resource["inputs"].items()
                      if key not in ("capacityProviderStrategies", "forceNewDeployment")}
            resource["inputs"] = {**inputs, "launchType": "FARGATE"}
    changes = {(c.action, c.inputs) for c in diff_documents("compute", before, after).changes if c.type == SERVICE}
    assert changes == {("update", ("capacityProviderStrategies", "forceNewDeployment"))}
    # and a launch type the program does set is still replace-on-change
    for resource in before["resources"]:
        if resource["type"] == SERVICE:
            resource["inputs"] = {**resource["inputs"], "launchType": "EC2"}
    for resource in after["resources"]:
        if resource["type"] == SERVICE:
            resource["inputs"] = {**resource["inputs"], "launchType": "FARGATE"}
    assert {c.action for c in diff_documents("compute", before, after).changes if c.type == SERVICE} == {"replace"}


@pytest.mark.parametrize(("service", "reason"), [
    ("gateway", "it is public"),
    ("inference", "gateway, preprocess call it over HTTP"),
])
def test_spot_is_refused_for_a_service_an_http_request_reaches(edit_env: Any, service: str, reason: str) -> None:
    _spot(edit_env, service)
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    message = str(raised.value)
    assert f"services.{service}.capacity" in message and reason in message and "use on_demand" in message, message


def test_an_unknown_capacity_is_refused(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["services"]["training"].update(capacity="FARGATE_SPOT"))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    assert "services.training.capacity" in str(raised.value)


def test_spot_tasks_count_against_the_spot_vcpu_quota(edit_env: Any) -> None:
    """ECS developer guide, "Amazon ECS service quotas": a Fargate Spot task's vCPUs count against "Fargate Spot vCPU
    resource count" (L-36FBB829), not the on-demand one (L-3032A538)."""
    on_demand = {need.quota_code: need for need in _compute_needs(load_env("dev"))}
    assert "L-3032A538" in on_demand and "L-36FBB829" not in on_demand
    _spot(edit_env)
    needs = {need.quota_code: need for need in _compute_needs(load_env("dev"))}
    spot, regular = needs["L-36FBB829"], needs["L-3032A538"]
    assert (spot.service_code, spot.name) == ("fargate", "Fargate Spot vCPU resource count")
    assert "training" in spot.what and "training" not in regular.what
    training_vcpus = 2048 / 1024  # catalog cpu 2048, desired 1 in dev: and one more while a release rolls it
    assert spot.need == 2 * training_vcpus
    assert regular.need <= on_demand["L-3032A538"].need - training_vcpus


def test_the_capacity_providers_are_the_ones_ecs_names() -> None:
    """botocore ecs CapacityProviderStrategyItem: "To use a Fargate capacity provider, specify either the FARGATE or
    FARGATE_SPOT capacity providers"; each has its vCPU quota."""
    model = botocore.session.get_session().get_service_model("ecs")
    documentation = model.shape_for("CapacityProviderStrategyItem").documentation
    for provider in CAPACITY_PROVIDERS.values():
        assert f"<code>{provider}</code>" in documentation, provider
    assert set(FARGATE_VCPU_QUOTAS) == set(CAPACITY_PROVIDERS.values())


def test_the_shipped_envs_run_on_demand() -> None:
    for name in ("dev", "staging", "prod"):
        assert {settings.capacity for settings in load_env(name).services.values()} == {"on_demand"}, name


def test_an_interruption_is_no_unexpected_task_stop() -> None:
    """botocore ecs TaskStopCode: ECS stops an interrupted Spot task with ``SpotInterruption``; the task-stops alarm
    counts a container's own exit and a failed start, so an interruption pages no one (README, Fargate Spot)."""
    from shared.components.task_stops import UNEXPECTED_STOP_CODES

    codes = botocore.session.get_session().get_service_model("ecs").shape_for("TaskStopCode").enum
    assert "SpotInterruption" in codes and "SpotInterruption" not in UNEXPECTED_STOP_CODES
    assert set(UNEXPECTED_STOP_CODES) <= set(codes)


def test_the_installed_provider_changes_a_strategy_in_place() -> None:
    """The move of a deployed service from its launch type to a strategy (and any later strategy change) is an
    in-place UpdateService only with terraform-provider-aws PR #43533 (2025-07) and later: before it, the provider's
    CustomizeDiff forced a new resource, so every ECS service would be deleted and created again. The installed
    pulumi_aws documents the later behaviour; a downgrade past it fails here."""
    import inspect

    import pulumi_aws

    text = " ".join(inspect.getsource(pulumi_aws.ecs.service).split())  # the resource's own docstrings
    assert ("capacity_provider_strategies: Capacity provider strategies to use for the service. Can be one or more. "
            "Updating this argument requires `force_new_deployment = true`.") in text


def test_a_misspelt_service_with_spot_is_named_as_unknown(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["services"].update(trainingx={"capacity": "spot"}))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    assert "services.trainingx" in str(raised.value), raised.value


def test_the_on_demand_quota_is_checked_where_every_released_service_runs_on_spot(
        edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its figure is the preflight's first, also at 0 vCPUs: the env's on-demand use is shown, not left out."""
    _spot(edit_env)
    monkeypatch.setattr("shared.orchestrate.account.released_units",
                        lambda env: [(plan, units) for plan, units in released_units(env)
                                     if plan.capacity_provider == "FARGATE_SPOT"])
    needs = _compute_needs(load_env("dev"))
    assert [need.quota_code for need in needs[:2]] == ["L-3032A538", "L-36FBB829"]
    assert needs[0].need == 0


def test_a_spot_service_whose_jobs_outlast_an_interruption_is_noted_at_up_and_preview(edit_env: Any) -> None:
    """Spot takes a task back with two minutes' warning and does not honour task scale-in protection: a job longer
    than that, or one its service protects, starts over. Not refused (a checkpointing job loses little), but said."""
    catalog = load_catalog()
    assert spot_job_notes(load_env("dev"), catalog) == []  # nothing on spot
    _spot(edit_env)
    (note,) = spot_job_notes(load_env("dev"), catalog)
    assert note.startswith("services.training.capacity: spot, and its jobs may last 21600 s (catalog max_job_seconds)"
                           ": a Spot interruption (two minutes' warning) ends the job in flight")
    training = catalog["training"]
    for changed, expected in (
            ({"max_job_seconds": 120}, None),  # within the longest stop timeout
            ({"max_job_seconds": None}, None),
            ({"max_job_seconds": None, "protects_jobs": True}, "it protects its working tasks (catalog protects_jobs)"),
            ({"protects_jobs": True}, "21600 s (catalog max_job_seconds) and it protects its working tasks")):
        services = {**catalog.services, "training": training.model_copy(update=changed)}
        notes = spot_job_notes(load_env("dev"), SimpleNamespace(services=services))  # type: ignore[arg-type]
        assert (notes == []) if expected is None else (expected in notes[0]), (changed, notes)


def test_the_spot_job_note_is_printed_by_up_and_preview(edit_env: Any) -> None:
    from shared.orchestrate.cli import main

    _spot(edit_env)
    out = io.StringIO()
    main(["preview", "dev"], runner=None, out=out)
    assert "note: " in out.getvalue() and "services.training.capacity: spot, and its jobs may last" in out.getvalue()
