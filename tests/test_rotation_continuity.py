"""A credentials rotation that would delete the users the running tasks hold is refused before anything changes.

The messaging stack exports the epoch its secrets name (``credentials_epoch``) and reads it back from its own stack
on the next ``up``/``preview``: the layer program (a ``pulumi up`` in stacks/messaging) and the orchestrator (before
any layer runs) refuse an env whose ``credentials_rotation`` would not keep that epoch's users.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from shared.envs import CredentialsRotation, EnvConfig
from shared.errors import ConfigError, ContractError
from shared.orchestrate.cli import main
from shared.rotation_continuity import (
    HELD_VERSION_FIELD,
    KEPT_EPOCHS_OUTPUT,
    UNKNOWN_VERSION,
    held_secret_versions,
    kept_epochs,
    rollout_refusal,
    rotation_refusal,
)
from shared.synth.engine import layer_dir, synth_env, synth_program
from tests.aws_helpers import ReleasedEverywhere
from tests.test_orchestrate import RecordingRunner, management_api  # noqa: F401 - its fixture: the reach probe's endpoint

SELF = "organization/messaging/dev"
PREVIOUS = "messaging.credentials_rotation.previous_epoch"


def rotation(epoch: str, previous: str | None = None) -> CredentialsRotation:
    return CredentialsRotation(epoch=date.fromisoformat(epoch), max_age_days=90,
                               previous_epoch=date.fromisoformat(previous) if previous else None)


def deployed(epoch: str | None) -> dict[str, Any]:
    """A deployed messaging stack's outputs whose secrets name ``epoch``'s users (None: the unsuffixed ones)."""
    return {"vhost": "ml-dev", **({"credentials_epoch": epoch} if epoch else {})}


# -- the rule ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("outputs", "env", "key", "fix"), [
    # a rotation from the deployed epoch without previous_epoch, or with another one
    (deployed("2026-11-01"), rotation("2026-12-01"), PREVIOUS, f"`{PREVIOUS}: 2026-11-01`"),
    (deployed("2026-11-01"), rotation("2026-12-01", "2026-10-01"), PREVIOUS, f"`{PREVIOUS}: 2026-11-01`"),
    # the unsuffixed users are deployed: a previous_epoch would drop them
    (deployed(None), rotation("2026-12-01", "2026-11-01"), PREVIOUS, f"Remove `{PREVIOUS}`"),
    # rotation removed after per-epoch users exist: only unsuffixed users would be kept
    (deployed("2026-11-01"), None, "messaging.credentials_rotation", "Keep `messaging.credentials_rotation`"),
    # the epoch moved back before the deployed one: no previous_epoch can keep it
    (deployed("2026-11-01"), rotation("2026-10-01", "2026-09-01"), "messaging.credentials_rotation.epoch",
     f"`{PREVIOUS}: 2026-11-01`"),
])
def test_a_change_that_drops_the_deployed_users_is_refused(outputs: dict[str, Any], env: CredentialsRotation | None,
                                                           key: str, fix: str) -> None:
    refusal = rotation_refusal("dev", env, outputs)
    assert refusal is not None
    assert refusal.file == "tests/fixtures/environments/dev.yaml" and refusal.key == key
    assert fix in refusal.reason and "CONNECTION_FORCED" in refusal.reason


@pytest.mark.parametrize(("outputs", "env"), [
    (None, rotation("2026-12-01")),                                     # no stack yet
    ({}, rotation("2026-12-01", "2026-10-01")),                         # a stack never deployed
    (deployed("2026-11-01"), rotation("2026-12-01", "2026-11-01")),     # a rotation done right
    (deployed("2026-11-01"), rotation("2026-11-01")),                   # no change of epoch
    (deployed("2026-11-01"), rotation("2026-11-01", "2026-10-01")),     # no change of epoch
    (deployed(None), rotation("2026-11-01")),                           # the upgrade onto per-epoch users
    (deployed(None), None),                                             # no rotation, ever
])
def test_a_change_that_keeps_the_deployed_users_passes(outputs: dict[str, Any] | None,
                                                       env: CredentialsRotation | None) -> None:
    assert rotation_refusal("dev", env, outputs) is None


# -- the layer program (pulumi up / preview in stacks/messaging) --------------------------------------


def upstream_outputs() -> dict[str, dict[str, Any]]:
    upstream = synth_env("dev", ["broker"])
    return {f"organization/{layer}/dev": upstream[layer]["outputs"] for layer in ("network", "broker")}


def synth_messaging(own: dict[str, Any] | None, upstream: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Dev's messaging layer synthesized with its own stack's last outputs ``own`` (None: never deployed)."""
    outputs = dict(upstream or upstream_outputs())
    if own is not None:
        outputs[SELF] = own
    return synth_program(layer_dir("messaging"), stack="dev", layer="messaging", env="dev",
                         account_id="111111111111", region="eu-west-1", stack_outputs=outputs)


def set_rotation(edit_env: Any, epoch: str, previous: str | None) -> None:
    value: dict[str, Any] = {"epoch": epoch, "max_age_days": 180, **({"previous_epoch": previous} if previous else {})}
    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation=value))


def user_names(document: dict[str, Any]) -> set[str]:
    return {r["inputs"]["name"] for r in document["resources"] if r["type"] == "rabbitmq:index/user:User"}


def test_the_program_exports_its_epoch_and_reads_its_own_stack(env_dir: Path) -> None:
    document = synth_messaging(None)
    assert document["outputs"]["credentials_epoch"] == "2026-11-01"  # environments/dev.yaml's epoch
    assert SELF in document["stack_references"]


@pytest.mark.parametrize("previous", [None, "2026-10-01"])
def test_the_program_refuses_a_rotation_that_drops_the_deployed_epoch(edit_env: Any, previous: str | None) -> None:
    first = synth_messaging(None)  # deployed with dev's epoch 2026-11-01
    set_rotation(edit_env, "2026-12-01", previous)
    with pytest.raises(ConfigError) as refused:
        synth_messaging(first["outputs"])
    assert refused.value.key == PREVIOUS and refused.value.file.endswith("environments/dev.yaml")
    assert f"`{PREVIOUS}: 2026-11-01`" in str(refused.value)


def test_the_program_refuses_before_registering_any_resource(edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the engine would create, update or delete is what the program registers: at the refusal, nothing but
    the stack, the layer's AWS provider and the stack references (reads) was registered."""
    import shared.synth.engine as engine

    first = synth_messaging(None)
    set_rotation(edit_env, "2026-12-01", None)
    upstream = upstream_outputs()
    registered: list[str] = []
    original = engine.RecordingMonitor.RegisterResource

    def record(monitor: Any, request: Any) -> Any:
        registered.append(request.type)
        return original(monitor, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", record)
    with pytest.raises(ConfigError):
        synth_messaging(first["outputs"], upstream)
    assert "pulumi:providers:aws" in registered  # the program ran up to the check
    assert set(registered) == {"pulumi:pulumi:Stack", "pulumi:providers:aws"}


def test_the_program_accepts_the_rotation_that_keeps_the_deployed_epoch(edit_env: Any) -> None:
    first = synth_messaging(None)
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    rotated = synth_messaging(first["outputs"])
    assert rotated["outputs"]["credentials_epoch"] == "2026-12-01"
    assert {"ml-dev-gateway.2026-11-01", "ml-dev-gateway.2026-12-01"} <= user_names(rotated)
    assert synth_messaging(rotated["outputs"])["outputs"] == rotated["outputs"]  # the next up, no change


def test_the_program_accepts_a_first_deploy_and_no_change(edit_env: Any) -> None:
    set_rotation(edit_env, "2026-12-01", "2026-10-01")  # anything goes on the first deploy
    first = synth_messaging(None)
    assert synth_messaging(first["outputs"])["outputs"] == first["outputs"]


def test_the_program_refuses_removing_rotation_after_per_epoch_users(edit_env: Any) -> None:
    first = synth_messaging(None)
    edit_env("dev", lambda data: data["messaging"].pop("credentials_rotation"))
    with pytest.raises(ConfigError) as refused:
        synth_messaging(first["outputs"])
    assert refused.value.key == "messaging.credentials_rotation"


# -- the orchestrator (nox -s up / preview), before any layer runs -----------------------------------


class DeployedRunner(RecordingRunner):
    """Every stack deployed; messaging's secrets name ``epoch``'s users."""

    def __init__(self, epoch: str) -> None:
        super().__init__()
        self.epoch = epoch

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "messaging":
            outputs.update(deployed(self.epoch))
        return outputs


@pytest.mark.parametrize("action", ["up", "preview"])
def test_the_orchestrator_refuses_before_any_layer_runs(edit_env: Any, action: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    set_rotation(edit_env, "2026-12-01", None)
    runner = DeployedRunner("2026-11-01")
    code = main([action, "dev", *([] if action == "preview" else ["--yes"])],  # preview refuses --yes
                runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 2 and runner.started() == []
    error = capsys.readouterr().err
    assert f"environments/dev.yaml: {PREVIOUS}: is not set" in error and f"`{PREVIOUS}: 2026-11-01`" in error


def test_the_orchestrator_runs_a_rotation_that_keeps_the_deployed_epoch(edit_env: Any) -> None:
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    runner = DeployedRunner("2026-11-01")
    code = main(["up", "dev", "--yes"], runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 0 and "messaging" in runner.started()


# -- a rotation while compute's tasks still hold an older epoch's secret --------------------------------------------

V_OLD, V_DEPLOYED = "version-of-2026-10-01", "version-of-2026-11-01"


def deployed_versions(epoch: str, previous: str | None = None, *, kept: bool = True,
                      **versions: str) -> dict[str, Any]:
    """Deployed messaging outputs: ``epoch``'s users current, ``previous``'s kept ("" / None: the unsuffixed; ``kept``
    False: a stack from before that record), each service's secret at its version in ``versions``."""
    record = {KEPT_EPOCHS_OUTPUT: [epoch, previous or ""]} if kept else {}
    return {**deployed(epoch), **record, "service_secret_versions": versions}


def compute_holding(**held: str) -> dict[str, Any]:
    """Deployed compute outputs whose services' tasks hold the secret versions ``held`` ("" none pinned)."""
    return {"services": {service: {"ecs_service_name": service, "amqp_credentials": bool(version),
                                   "amqp_secret_version": version} for service, version in held.items()}}


ROTATED = rotation("2026-12-01", "2026-11-01")  # a rotation rotation_refusal lets through
DEPLOYED = deployed_versions("2026-11-01", "2026-10-01", gateway=V_DEPLOYED, training=V_DEPLOYED)


def test_messaging_exports_the_epochs_whose_users_it_keeps(env_dir: Path, edit_env: Any) -> None:
    assert synth_messaging(None)["outputs"][KEPT_EPOCHS_OUTPUT] == ["2026-11-01", ""]  # dev's, no previous_epoch
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    assert synth_messaging(None)["outputs"][KEPT_EPOCHS_OUTPUT] == ["2026-12-01", "2026-11-01"]
    assert kept_epochs(None) == [""]


def test_a_rotation_while_a_service_s_tasks_hold_an_older_secret_is_refused() -> None:
    refusal = rollout_refusal("dev", ROTATED, DEPLOYED, lambda: compute_holding(gateway=V_DEPLOYED, training=V_OLD))
    assert refusal is not None
    assert refusal.file == "tests/fixtures/environments/dev.yaml"
    assert refusal.key == "messaging.credentials_rotation.epoch"
    assert "this up would delete the users ml-dev-<service>.2026-10-01" in refusal.reason
    assert f"training's tasks hold version {V_OLD} of its secret, not the deployed {V_DEPLOYED}" in refusal.reason
    assert "gateway" not in refusal.reason  # it rolled onto the deployed secret
    assert "CONNECTION_FORCED" in refusal.reason
    # the way back: the rotation as deployed (which deletes nothing), then a whole up, which rolls compute
    assert ("Set the rotation back as deployed (`messaging.credentials_rotation.epoch: 2026-11-01`, "
            "`messaging.credentials_rotation.previous_epoch: 2026-10-01`) and run `nox -s up -- dev`") in refusal.reason


@pytest.mark.parametrize("previous", [None, "2026-09-01"], ids=["removed", "moved"])
def test_a_previous_epoch_change_alone_deletes_users_and_is_refused_the_same(previous: str | None) -> None:
    """The epoch stays, so rotation_refusal has nothing to say; the previous generation's users still go."""
    env = rotation("2026-11-01", previous)
    assert rotation_refusal("dev", env, DEPLOYED) is None
    refusal = rollout_refusal("dev", env, DEPLOYED, lambda: compute_holding(gateway=V_DEPLOYED, training=V_OLD))
    assert refusal is not None and refusal.key == "messaging.credentials_rotation.previous_epoch"
    assert "this up would delete the users ml-dev-<service>.2026-10-01" in refusal.reason


def test_a_service_ecs_rolled_back_before_any_record_holds_back_the_rotation() -> None:
    refusal = rollout_refusal("dev", ROTATED, DEPLOYED,
                              lambda: compute_holding(gateway=V_DEPLOYED, training=UNKNOWN_VERSION))
    assert refusal is not None
    assert "training's tasks hold a version of its secret compute has no record of (ECS rolled it back)" in \
        refusal.reason


def test_a_messaging_stack_before_the_kept_record_is_judged_by_its_epoch() -> None:
    legacy = deployed_versions("2026-11-01", kept=False, gateway=V_DEPLOYED)
    refusal = rollout_refusal("dev", ROTATED, legacy, lambda: compute_holding(gateway=V_OLD))
    assert refusal is not None and "of the generation before 2026-11-01" in refusal.reason
    assert "`messaging.credentials_rotation.previous_epoch` as deployed" in refusal.reason
    assert rollout_refusal("dev", rotation("2026-11-01"), legacy, lambda: compute_holding(gateway=V_OLD)) is None


@pytest.mark.parametrize(("env", "messaging", "compute"), [
    # every task on the deployed secret
    (ROTATED, DEPLOYED, compute_holding(gateway=V_DEPLOYED)),
    # nothing changes: no user is deleted
    (rotation("2026-11-01", "2026-10-01"), DEPLOYED, compute_holding(gateway=V_OLD)),
    # from the unsuffixed users, which the rotation keeps
    (rotation("2026-12-01"), {"vhost": "ml-dev", KEPT_EPOCHS_OUTPUT: [""],
                              "service_secret_versions": {"gateway": V_DEPLOYED}}, compute_holding(gateway=V_OLD)),
    # a service without credentials, or one removed from messaging (shared.service_removal judges it)
    (ROTATED, DEPLOYED, compute_holding(gateway=V_DEPLOYED, web="")),
    (ROTATED, DEPLOYED, compute_holding(gateway=V_DEPLOYED, old=V_OLD)),
    # stacks from before the record (compute) or the versions (messaging): nothing to compare
    (ROTATED, DEPLOYED, {"services": {"gateway": {"ecs_service_name": "gateway"}}}),
    (ROTATED, deployed("2026-11-01"), compute_holding(gateway=V_OLD)),
    # no compute stack
    (ROTATED, DEPLOYED, None),
], ids=["rolled", "no-change", "from-unsuffixed", "no-credentials", "not-in-messaging", "compute-before-record",
        "messaging-before-versions", "no-compute"])
def test_a_rotation_after_compute_rolled_every_task_passes(env: CredentialsRotation, messaging: dict[str, Any],
                                                           compute: dict[str, Any] | None) -> None:
    assert rollout_refusal("dev", env, messaging, lambda: compute) is None


def test_compute_s_outputs_are_read_only_for_a_rotation() -> None:
    def unreadable() -> dict[str, Any]:
        raise AssertionError("compute's outputs were read for an up that rotates nothing")

    assert rollout_refusal("dev", rotation("2026-11-01"), deployed_versions("2026-11-01"), unreadable) is None
    assert rollout_refusal("dev", rotation("2026-11-01"), deployed_versions("2026-11-01", kept=False),
                           unreadable) is None


def test_compute_records_the_secret_version_each_service_s_tasks_were_given(env_dir: Path) -> None:
    documents = synth_env("dev", ["compute"])
    versions = documents["messaging"]["outputs"]["service_secret_versions"]
    services = documents["compute"]["outputs"]["services"]
    held = held_secret_versions(documents["compute"]["outputs"])
    assert held and held == {service: versions[service] for service, entry in services.items()
                             if entry["amqp_credentials"]}
    assert all(entry["amqp_secret_version"] == "" for entry in services.values() if not entry["amqp_credentials"])


def test_where_ecs_rolled_a_service_back_compute_keeps_the_version_its_last_up_recorded(
        env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider reads an ECS service back after its wait: after a circuit-breaker rollback its task_definition is
    the previous revision, not the one this up registered, and the tasks hold the previous secret."""
    from tests.layers.compute_helpers import ecs_rolls_back

    documents = synth_env("dev", ["compute"])
    upstream = {f"organization/{layer}/dev": documents[layer]["outputs"]
                for layer in ("network", "discovery", "mesh", "broker", "messaging")}
    last = documents["compute"]["outputs"]
    rolled = next(service for service, version in held_secret_versions(last).items())
    own = {**last, "services": {**last["services"], rolled: {**last["services"][rolled], "amqp_secret_version": V_OLD}}}
    ecs_rolls_back(monkeypatch, rolled)
    document = synth_program(layer_dir("compute"), stack="dev", layer="compute", env="dev",
                             account_id="111111111111", region="eu-west-1",
                             stack_outputs={**upstream, "organization/compute/dev": own})
    held = held_secret_versions(document["outputs"])
    assert held[rolled] == V_OLD
    # without a record of it (a compute stack from before the field), the rolled-back service's version is unknown
    unrecorded = {**own, "services": {**own["services"], rolled: {
        key: value for key, value in own["services"][rolled].items() if key != "amqp_secret_version"}}}
    document = synth_program(layer_dir("compute"), stack="dev", layer="compute", env="dev",
                             account_id="111111111111", region="eu-west-1",
                             stack_outputs={**upstream, "organization/compute/dev": unrecorded})
    assert held_secret_versions(document["outputs"])[rolled] == UNKNOWN_VERSION
    assert {service: version for service, version in held.items() if service != rolled} == {
        service: version for service, version in held_secret_versions(last).items() if service != rolled}


class BehindRunner(DeployedRunner):
    """Messaging deployed at 2026-11-01 with gateway's secret at V_DEPLOYED; compute's gateway tasks hold ``held``."""

    def __init__(self, held: str) -> None:
        super().__init__("2026-11-01")
        self.held = held

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "messaging":
            outputs.update(service_secret_versions={"gateway": V_DEPLOYED}, **{KEPT_EPOCHS_OUTPUT: ["2026-11-01", ""]})
        if layer == "compute":
            outputs.update(compute_holding(gateway=self.held))
        return outputs


def test_the_orchestrator_refuses_a_rotation_before_compute_rolled_onto_the_last_one(
        edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    runner = BehindRunner(V_OLD)
    code = main(["up", "dev", "--yes"], runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 2 and runner.started() == []
    error = capsys.readouterr().err
    assert "environments/dev.yaml: messaging.credentials_rotation.epoch: this up would delete the users " \
           "ml-dev-<service>, but" in error
    assert f"gateway's tasks hold version {V_OLD}" in error


@pytest.mark.parametrize(("layers", "refused"), [("messaging", True), ("compute", False)])
def test_ci_s_messaging_job_refuses_it_and_compute_s_runs(edit_env: Any, layers: str, refused: bool) -> None:
    """CI runs one job per layer (`--layers X --exact`): messaging's deletes the users; compute's is the way forward."""
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    runner = BehindRunner(V_OLD)
    code = main(["up", "dev", "--yes", "--layers", layers, "--exact"], runner=runner, out=io.StringIO(),
                confirm=lambda prompt: True, images=ReleasedEverywhere())
    assert (code, runner.started()) == ((2, []) if refused else (0, [layers]))


def test_a_preview_of_that_rotation_notes_the_refusal_and_runs(edit_env: Any) -> None:
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    runner, out = BehindRunner(V_OLD), io.StringIO()
    code = main(["preview", "dev"], runner=runner, out=out, images=ReleasedEverywhere())
    assert code == 0 and "messaging" in runner.started()
    note = next(line for line in out.getvalue().splitlines() if line.startswith("note: up would be refused: "))
    assert "environments/dev.yaml: messaging.credentials_rotation.epoch: this up would delete the users" in note


def test_the_orchestrator_runs_the_rotation_once_compute_rolled(edit_env: Any) -> None:
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    runner = BehindRunner(V_DEPLOYED)
    code = main(["up", "dev", "--yes"], runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 0 and "messaging" in runner.started()


@pytest.mark.parametrize("deployed", [True, False], ids=["deployed", "first-deploy"])
def test_a_targeted_update_records_what_the_last_up_left_running(env_dir: Path, edit_env: Any, deployed: bool) -> None:
    """The image gate's registry step (``up --target``) changes no ECS service, while the engine still sets the stack's
    outputs from the program: compute exports its last record of what runs (nothing, before a first deploy), not what
    the catalog and messaging's new secrets would give the tasks."""
    from shared.components.compute import RUNNING_RECORDS
    from shared.orchestrate.model import TARGETED_VARIABLE

    documents = synth_env("dev", ["compute"])
    upstream = {f"organization/{layer}/dev": documents[layer]["outputs"]
                for layer in ("network", "discovery", "mesh", "broker", "messaging")}
    last = documents["compute"]["outputs"]
    # a record of an older version of the layer: a field the contract no longer declares, in a service and a version
    services = {service: {**entry, "protects_jobs": False, "versions": {"v1": {
        "ecs_service_name": f"{service}-v1", "ecs_service_arn": "arn", "protects_jobs": False}}}
                for service, entry in last["services"].items()}
    own = {"organization/compute/dev": {**last, "called_service_ports": {"inference": 8090},
                                        "services": services}} if deployed else {}
    document = synth_program(layer_dir("compute"), stack="dev", layer="compute", env="dev",
                             account_id="111111111111", region="eu-west-1", stack_outputs={**upstream, **own},
                             env_vars={TARGETED_VARIABLE: "1"})
    records = {key: document["outputs"].get(key) for key in RUNNING_RECORDS}
    declared = {service: {**last["services"][service], "versions": {"v1": {
        "ecs_service_name": f"{service}-v1", "ecs_service_arn": "arn"}}} for service in last["services"]}
    assert records == ({**{key: own["organization/compute/dev"][key] for key in RUNNING_RECORDS},
                        "services": declared} if deployed else RUNNING_RECORDS)
    assert document["outputs"]["repository_urls"] == last["repository_urls"]  # what the registry step does change


@pytest.mark.parametrize(("secret_version", "rolled_back", "before", "held"), [
    ("v-now", set(), {}, "v-now"),                                  # converged: what this up pinned
    ("v-now", {"gateway"}, {"gateway": "v-before"}, "v-before"),     # rolled back: the last record's
    ("v-now", {"gateway"}, {}, UNKNOWN_VERSION),                     # rolled back, no record: unknown
    ("", {"gateway"}, {"gateway": "v-before"}, ""),                  # no credentials: none, rolled back or not
    ("v-now", {"gateway"}, {"gateway": ""}, ""),                     # rolled back to tasks that held no secret
    ("v-now", {"training"}, {"gateway": "v-before"}, "v-now"),       # another service rolled back
], ids=["converged", "rolled-back", "rolled-back-unrecorded", "no-credentials", "rolled-back-to-none",
        "another-rolled-back"])
def test_the_version_a_service_s_tasks_hold(secret_version: str, rolled_back: set[str], before: dict[str, str],
                                            held: str) -> None:
    from shared.components.compute import _held_version
    from shared.components.compute_containers import ContainerWiring

    wiring = ContainerWiring(service="gateway", port=8080, health_path="/health", image="repo@sha256:" + "a" * 64,
                             region="eu-west-1", log_group="/platform/dev/gateway", port_name="gateway",
                             environment={}, secrets={}, secret_version=secret_version)
    assert _held_version("gateway", before, [wiring, rolled_back]) == held


@pytest.mark.parametrize("kept", [["2026-11-01", "Nov 2026"], ["2026-11-01", None], ["20261101", ""], "2026-11-01",
                                  ["2026-13-01", ""]],
                         ids=["prose", "null", "basic-format", "not-a-list", "no-such-day"])
def test_a_kept_record_changed_by_hand_is_a_clear_error(kept: Any) -> None:
    messaging = {**deployed_versions("2026-11-01", gateway=V_DEPLOYED), KEPT_EPOCHS_OUTPUT: kept}
    with pytest.raises(ContractError, match=f"messaging's output {KEPT_EPOCHS_OUTPUT} is .*changed by hand"):
        rollout_refusal("dev", ROTATED, messaging, lambda: compute_holding(gateway=V_OLD))


@pytest.mark.parametrize("held", [7, ["v1"], False], ids=["number", "list", "boolean"])
def test_a_held_version_changed_by_hand_is_a_clear_error(held: Any) -> None:
    """A held version compute's state carries in another form is named, not skipped as a service without a record
    (which would let the rotation delete the users its tasks still log in as)."""
    compute = compute_holding(gateway=V_OLD)
    compute["services"]["gateway"][HELD_VERSION_FIELD] = held
    with pytest.raises(ContractError, match=f"compute's output services.gateway.{HELD_VERSION_FIELD} is .*changed by "
                                            "hand"):
        rollout_refusal("dev", ROTATED, deployed_versions("2026-11-01", gateway=V_DEPLOYED), lambda: compute)


def test_a_typo_in_image_ready_is_said_before_any_other_check(edit_env: Any,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    set_rotation(edit_env, "2026-12-01", "2026-11-01")
    runner = BehindRunner(V_OLD)  # this up would also be refused for the rotation
    code = main(["up", "dev", "--yes", "--image-ready", "gatewya"], runner=runner, out=io.StringIO(),
                confirm=lambda prompt: True, images=ReleasedEverywhere())
    assert code == 2 and runner.started() == []
    error = capsys.readouterr().err
    assert "--image-ready: gatewya: no service of the catalog" in error and "credentials_rotation" not in error
