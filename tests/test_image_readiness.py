"""A catalog change that reaches a service's running tasks without a roll waits for the operator to confirm the image.

Removing a ``publishes`` key narrows the service's RabbitMQ grant in messaging's ``up``, before compute and without
rolling its tasks; turning ``protects_jobs`` on changes compute's scale-in at once. Both are safe only where the image
the env runs is ready, which the catalog (every env's) cannot tell: ``up`` refuses (exit 2, nothing run) until the
service is named with ``--image-ready``; a preview notes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.envs import EnvConfig, load_env, scales_in_while_working
from shared.errors import ContractError
from shared.image_readiness import PUBLISH_GRANTS_OUTPUT, narrowed_publishes, publish_grants, readiness_refusals
from shared.synth.engine import synth_env
from tests.catalog_helpers import write_catalog
from tests.test_orchestrate import RecordingRunner, management_api, run  # noqa: F401 - its fixture: the reach probe

#: the shipped services' grants, as messaging's last `up` exported them
SHIPPED = {"gateway": {"requests": ["preprocess.request", "training.request"]},
           "inference": {"events": ["inference.completed"]},
           "preprocess": {"requests": ["inference.request"], "events": ["data.preprocessed"]},
           "training": {"events": ["model.trained"]}}
#: messaging deployed while the catalog still let gateway publish `ranking.request`, since removed
WIDER = {**SHIPPED, "gateway": {"requests": ["preprocess.request", "ranking.request", "training.request"]}}


def deployed_wider() -> dict[str, Any]:
    """The catalog in force's grants, as messaging deployed them while gateway could also publish ranking.request."""
    grants = publish_grants(load_catalog())
    grants["gateway"] = {**grants["gateway"], "requests": [*grants["gateway"]["requests"], "ranking.request"]}
    return grants


def wider_deployed() -> dict[str, Any]:
    return {PUBLISH_GRANTS_OUTPUT: deployed_wider()}


def compute_running(*services: str, scales_in_while_working: bool | None = False) -> dict[str, Any]:
    """Compute's outputs: an ECS service per name in ``services``, scaled in as ``scales_in_while_working`` says (None:
    a stack deployed before the record)."""
    scaled = {"scales_in_while_working": scales_in_while_working} if scales_in_while_working is not None else {}
    return {"services": {service: {"ecs_service_name": service, **scaled} for service in services}}


def reader(messaging: Mapping[str, Any] | None, compute: Mapping[str, Any] | None
           ) -> Callable[[str], Mapping[str, Any] | None]:
    return {"messaging": messaging, "compute": compute}.get


# -- the record --------------------------------------------------------------------------------------------------


def test_messaging_exports_what_each_service_may_publish(env_dir: Path) -> None:
    grants = publish_grants(load_catalog())
    assert {service: grants[service] for service in SHIPPED} == SHIPPED
    assert synth_env("dev", ["messaging"])["messaging"]["outputs"][PUBLISH_GRANTS_OUTPUT] == grants


def test_compute_records_how_each_service_is_scaled_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, _protect_training)
    services = synth_env("dev", ["compute"])["compute"]["outputs"]["services"]
    assert {service: entry["scales_in_while_working"] for service, entry in services.items()} == {
        service: service == "training" for service in services}


def test_what_is_recorded_is_the_scale_in_not_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         edit_env: Any) -> None:
    """Only where the env publishes queue metrics does a protecting consumer scale in while others work: an external
    broker's runs between min_count and max_count, so its flag changes nothing there, and nothing is refused."""
    from shared.components.compute import plan_service

    write_catalog(tmp_path, monkeypatch, _protect_training)
    assert plan_service(load_env("dev"), load_catalog(), "training").scales_in_while_working
    edit_env("dev", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                     "management_endpoint": "https://mq.example.com"}))
    external = load_env("dev")
    assert not plan_service(external, load_catalog(), "training").scales_in_while_working
    assert readiness_refusals(load_catalog(), external, ["compute"], reader(None, compute_running("training")),
                              set()) == []


@pytest.mark.parametrize(("deployed", "now", "lost"), [
    (WIDER, SHIPPED, {"gateway": {"requests": ["ranking.request"]}}),
    # an exchange's last key
    (SHIPPED, {**SHIPPED, "preprocess": {"requests": ["inference.request"]}},
     {"preprocess": {"events": ["data.preprocessed"]}}),
    # a service that stopped publishing altogether still has its user (it consumes)
    (SHIPPED, {**SHIPPED, "training": {}}, {"training": {"events": ["model.trained"]}}),
    # widened, unchanged, or the service left the catalog (shared.service_removal's)
    (SHIPPED, WIDER, {}),
    (SHIPPED, SHIPPED, {}),
    (SHIPPED, {service: grants for service, grants in SHIPPED.items() if service != "training"}, {}),
], ids=["key-removed", "exchange-emptied", "publishes-nothing", "widened", "unchanged", "service-removed"])
def test_a_narrowed_grant_is_what_was_deployed_and_is_granted_no_more(
        deployed: dict[str, Any], now: dict[str, Any], lost: dict[str, Any]) -> None:
    assert narrowed_publishes(deployed, now) == lost


# -- the rule ----------------------------------------------------------------------------------------------------


def test_a_narrowed_grant_of_a_running_service_is_refused(env_dir: Path) -> None:
    [refusal] = readiness_refusals(load_catalog(), load_env("dev"), ["messaging", "compute"],
                                   reader({PUBLISH_GRANTS_OUTPUT: deployed_wider()}, compute_running("gateway")), set())
    assert refusal.file.endswith("catalog.yaml") and refusal.key == "services.gateway.publishes.requests"
    assert "no longer lists ranking.request" in refusal.reason and "ACCESS_REFUSED" in refusal.reason
    assert "--image-ready gateway" in refusal.reason and "release.images" in refusal.reason
    assert ("Where this catalog change came first: `nox -s up -- dev --layers compute --exact` releases the image "
            "while messaging keeps the grant") in refusal.reason


@pytest.mark.parametrize(("layers", "messaging", "compute", "ready"), [
    (["messaging", "compute"], wider_deployed, compute_running("gateway"), {"gateway"}),
    # no task of gateway runs, or no compute stack
    (["messaging", "compute"], wider_deployed, compute_running("training"), set()),
    (["messaging", "compute"], wider_deployed, None, set()),
    # messaging does not run, or predates the record
    (["compute"], wider_deployed, compute_running("gateway"), set()),
    (["messaging", "compute"], lambda: {"vhost": "ml-dev"}, compute_running("gateway"), set()),
], ids=["confirmed", "not-running", "no-compute", "messaging-not-run", "messaging-before-record"])
def test_a_narrowed_grant_passes_where_no_running_task_can_lose_it(
        env_dir: Path, layers: list[str], messaging: Callable[[], dict[str, Any]], compute: dict[str, Any] | None,
        ready: set[str]) -> None:
    assert readiness_refusals(load_catalog(), load_env("dev"), layers, reader(messaging(), compute), ready) == []


def _protect_training(services: dict[str, Any]) -> None:
    services["training"]["protects_jobs"] = True


def test_protecting_jobs_of_a_running_service_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, _protect_training)
    [refusal] = readiness_refusals(load_catalog(), load_env("dev"), ["compute"],
                                   reader(None, compute_running("training")), set())
    assert refusal.key == "services.training.protects_jobs"
    assert "scale-in protection" in refusal.reason and "--image-ready training" in refusal.reason


@pytest.mark.parametrize(("layers", "compute", "ready"), [
    (["compute"], compute_running("training"), {"training"}),
    (["compute"], compute_running("training", scales_in_while_working=True), set()),   # already on
    (["compute"], compute_running("training", scales_in_while_working=None), set()),   # compute before the record
    (["compute"], compute_running("gateway"), set()),                        # training does not run
    (["messaging"], compute_running("training"), set()),                     # compute does not run
], ids=["confirmed", "already-on", "compute-before-record", "not-running", "compute-not-run"])
def test_protecting_jobs_passes_where_the_running_scale_in_does_not_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layers: list[str], compute: dict[str, Any],
        ready: set[str]) -> None:
    write_catalog(tmp_path, monkeypatch, _protect_training)
    assert readiness_refusals(load_catalog(), load_env("dev"), layers, reader(None, compute), ready) == []


def _stop_calling_inference(services: dict[str, Any]) -> None:
    for spec in services.values():
        spec["calls"] = [callee for callee in spec.get("calls", []) if callee != "inference"]


def _training_reads_only(services: dict[str, Any]) -> None:
    services["training"]["artifacts"] = "read"


def given(service: str) -> dict[str, Any]:
    """Compute's record of ``service`` as the shipped catalog gave it (its calls, artifacts access, scale-in)."""
    catalog = load_catalog()
    spec = catalog[service]
    return {"ecs_service_name": service, "calls": list(spec.calls), "artifacts": spec.artifacts or "",
            "scales_in_while_working": scales_in_while_working(spec, catalog, queue_metrics=True)}


def test_calls_narrowed_under_a_running_caller_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running = {"services": {service: given(service) for service in ("gateway", "preprocess", "inference")}}
    write_catalog(tmp_path, monkeypatch, _stop_calling_inference)
    refusals = readiness_refusals(load_catalog(), load_env("dev"), ["compute"], reader(None, running), set())
    assert [refusal.key for refusal in refusals] == ["services.gateway.calls", "services.preprocess.calls"]
    assert "no longer lists inference" in refusals[0].reason and "--image-ready gateway" in refusals[0].reason
    assert readiness_refusals(load_catalog(), load_env("dev"), ["compute"], reader(None, running),
                              {"gateway", "preprocess"}) == []
    # one service confirmed is not the other
    [left] = readiness_refusals(load_catalog(), load_env("dev"), ["compute"], reader(None, running), {"gateway"})
    assert left.key == "services.preprocess.calls"
    # in App Mesh envs the mesh layer narrows the callers' backends before compute: checked there too
    dev = load_env("dev")
    appmesh = dev.model_copy(update={"mesh": dev.mesh.model_copy(update={"provider": "appmesh"})})
    by_mesh = readiness_refusals(load_catalog(), appmesh, ["mesh"], reader(None, running), set())
    assert [refusal.key for refusal in by_mesh] == ["services.gateway.calls", "services.preprocess.calls"]
    assert readiness_refusals(load_catalog(), dev, ["mesh"], reader(None, running), set()) == []  # Service Connect


def test_artifacts_narrowed_under_a_running_writer_is_refused(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    running = {"services": {"training": given("training")}}
    assert running["services"]["training"]["artifacts"] == "write"
    write_catalog(tmp_path, monkeypatch, _training_reads_only)
    [refusal] = readiness_refusals(load_catalog(), load_env("dev"), ["compute"], reader(None, running), set())
    assert refusal.key == "services.training.artifacts"
    assert "is read, but the tasks dev runs were given write access" in refusal.reason
    assert "AccessDenied" in refusal.reason and "--image-ready training" in refusal.reason
    assert "Where this catalog change came first: set it back in the catalog until dev runs a ready image" in \
        refusal.reason
    assert readiness_refusals(load_catalog(), load_env("dev"), ["mesh"], reader(None, running), set()) == []


@pytest.mark.parametrize(("change", "service"), [
    (lambda services: services["inference"].update(artifacts="write"), "inference"),  # read -> write
    (lambda services: services["gateway"]["calls"].append("training"), "gateway"),     # a callee added
], ids=["artifacts-widened", "calls-widened"])
def test_widening_what_a_running_image_may_use_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      change: Callable[[dict[str, Any]], None], service: str) -> None:
    running = {"services": {service: given(service)}}
    write_catalog(tmp_path, monkeypatch, change)
    assert readiness_refusals(load_catalog(), load_env("dev"), ["compute"], reader(None, running), set()) == []


def test_the_shipped_catalog_as_compute_recorded_it_passes(env_dir: Path) -> None:
    """The second up with no change: every record the synthesized compute and messaging stacks export passes."""
    documents = synth_env("dev", ["compute"])
    outputs = {layer: documents[layer]["outputs"] for layer in ("messaging", "compute")}
    assert readiness_refusals(load_catalog(), load_env("dev"), ["messaging", "compute"], outputs.get, set()) == []


def test_a_run_of_neither_layer_reads_no_stack(env_dir: Path) -> None:
    def unreadable(layer: str) -> Mapping[str, Any] | None:
        raise AssertionError(f"{layer}'s outputs were read")

    assert readiness_refusals(load_catalog(), load_env("dev"), ["network", "discovery"], unreadable, set()) == []
    # the mesh layer applies callees only in App Mesh envs (dev is Service Connect)
    assert readiness_refusals(load_catalog(), load_env("dev"), ["mesh"], unreadable, set()) == []


@pytest.mark.parametrize(("edit", "output", "form"), [
    (lambda c, m: c["services"]["gateway"].update(artifacts="readwrite"), "services.gateway.artifacts", "one of"),
    (lambda c, m: c["services"]["gateway"].update(scales_in_while_working="false"),
     "services.gateway.scales_in_while_working", "true or false"),
    (lambda c, m: c["services"]["gateway"].update(calls="preprocess"), "services.gateway.calls", "a list of strings"),
    (lambda c, m: c["services"].update(gateway="gateway"), "services.gateway", "a mapping"),
    (lambda c, m: c.update(services=["gateway"]), "services", "a mapping of service to its record"),
    (lambda c, m: m[PUBLISH_GRANTS_OUTPUT]["gateway"].update(requests="preprocess.request"),
     f"{PUBLISH_GRANTS_OUTPUT}.gateway.requests", "a list of strings"),
    (lambda c, m: m[PUBLISH_GRANTS_OUTPUT].update(gateway=["requests"]), f"{PUBLISH_GRANTS_OUTPUT}.gateway",
     "a mapping of exchange to routing keys"),
    (lambda c, m: m.update({PUBLISH_GRANTS_OUTPUT: "all"}), PUBLISH_GRANTS_OUTPUT, "a mapping of service"),
], ids=["artifacts", "scale-in-string", "calls-string", "record-string", "services-list", "keys-string",
        "exchanges-list", "grants-string"])
def test_a_record_changed_by_hand_is_named_not_passed(env_dir: Path, edit: Callable[[Any, Any], None], output: str,
                                                      form: str) -> None:
    """A record of another form than compute and messaging write (a state edited by hand) stops the check naming the
    output, rather than reading as "no change" and letting the narrowing through."""
    compute = {"services": {service: given(service) for service in SHIPPED}}
    messaging = {PUBLISH_GRANTS_OUTPUT: deployed_wider()}
    edit(compute, messaging)
    layer = "messaging" if output.startswith(PUBLISH_GRANTS_OUTPUT) else "compute"
    with pytest.raises(ContractError, match=f"{layer}'s output {re.escape(output)} is .*, not {form}.*changed by hand; "
                                            "nothing was changed"):
        readiness_refusals(load_catalog(), load_env("dev"), ["messaging", "compute"], reader(messaging, compute),
                           set())


def test_a_record_changed_by_hand_stops_up_and_preview(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class HandEdited(Deployed):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
            outputs = dict(super().stack_outputs(layer, env) or {})
            if layer == "compute":
                outputs["services"] = {**outputs["services"], "gateway": {"artifacts": "all"}}
            return outputs

    for action in ("up", "preview"):
        runner = HandEdited()
        code, _ = run([action, "dev", "--yes"] if action == "up" else [action, "dev"], runner)
        assert code == 2 and runner.started() == [], action
        assert "compute's output services.gateway.artifacts is 'all'" in capsys.readouterr().err


# -- the orchestrator --------------------------------------------------------------------------------------------


class Deployed(RecordingRunner):
    """dev deployed while gateway could still publish ranking.request; compute runs every service."""

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "messaging":
            outputs[PUBLISH_GRANTS_OUTPUT] = deployed_wider()
        if layer == "compute":
            outputs.update(compute_running(*SHIPPED))
        return outputs


def test_up_refuses_before_any_layer_runs(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = Deployed()
    code, out = run(["up", "dev", "--yes"], runner)
    assert code == 2 and runner.started() == [], out
    assert "services.gateway.publishes.requests: no longer lists ranking.request" in capsys.readouterr().err


def test_up_with_the_image_confirmed_runs(env_dir: Path) -> None:
    runner = Deployed()
    code, out = run(["up", "dev", "--yes", "--image-ready", "gateway"], runner)
    assert code == 0 and "messaging" in runner.started(), out


def test_up_with_another_service_confirmed_is_still_refused(env_dir: Path) -> None:
    runner = Deployed()
    code, out = run(["up", "dev", "--yes", "--image-ready", "training"], runner)
    assert code == 2 and runner.started() == [], out


@pytest.mark.parametrize(("layers", "refused"), [("messaging", True), ("compute", False), ("network", False)])
def test_each_ci_job_checks_what_its_layer_applies(env_dir: Path, layers: str, refused: bool) -> None:
    """CI runs one job per layer (`--layers X --exact`): the narrowed grant is messaging's to apply."""
    runner = Deployed()
    code, out = run(["up", "dev", "--yes", "--layers", layers, "--exact"], runner)
    assert (code, runner.started()) == ((2, []) if refused else (0, [layers])), out


def test_a_preview_notes_the_refusal_and_runs(env_dir: Path) -> None:
    runner = Deployed()
    code, out = run(["preview", "dev"], runner)
    assert code == 0 and "messaging" in runner.started(), out
    assert "note: up would be refused: " in out and "services.gateway.publishes.requests" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["up", "dev", "--yes", "--image-ready", "ranker"], "--image-ready: ranker: no service of the catalog"),
    (["destroy", "dev", "--yes", "--image-ready", "gateway"], "--image-ready applies to up and preview only"),
], ids=["unknown-service", "destroy"])
def test_a_wrong_image_ready_runs_nothing(env_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    runner = Deployed()
    code, _ = run(argv, runner)
    assert code == 2 and runner.started() == []
    assert message in capsys.readouterr().err
