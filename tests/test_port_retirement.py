"""A called service's port, as a specification: it leaves the tasks' security group one `up` after it left the catalog.

The group is the network layer's (first in the DAG), the tasks are compute's (last). So the `up` that moves a called
service to another port (or stops calling it) admits the old port beside the new one while compute rolls the tasks,
and the next `up` drops it; the orchestrator refuses that next `up` while compute's last `up` still calls the old port.
Played on the real network program (its own last outputs fed back) and on the orchestrator with injected runners.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.envs import EnvConfig
from shared.port_retirement import (
    CALLED_PORTS_OUTPUT,
    RETIRING_PORTS_OUTPUT,
    called_service_ports,
    port_drop_refusals,
    retiring_service_ports,
)
from shared.synth.engine import layer_dir, synth_program
from tests.components.harness import of_type
from tests.spec_envs import SPEC_CATALOG
from tests.test_orchestrate import RecordingRunner, management_api, run
from tests.test_service_port_ranges import Group

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback

#: the shipped catalog's called services: gateway calls preprocess and inference, preprocess calls inference
SHIPPED = {"inference": 8082, "preprocess": 8081}
MOVED = 9082


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_dir: Path) -> Callable[..., None]:
    """Edits a scratch copy of the shipped catalog, in force through PLATFORM_CATALOG (with scratch env files)."""

    path = tmp_path / "catalog.yaml"
    path.write_text(SPEC_CATALOG.read_text())
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))

    def edit(change: Callable[[dict[str, Any]], None]) -> None:
        data = yaml.safe_load(path.read_text())
        change(data["services"])
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    return edit


def _move_inference(services: dict[str, Any]) -> None:
    services["inference"]["port"] = MOVED


def _stop_calling_inference(services: dict[str, Any]) -> None:
    for spec in services.values():
        spec["calls"] = [callee for callee in spec.get("calls", []) if callee != "inference"]


def test_the_called_ports_are_the_callees_ports() -> None:
    assert called_service_ports(load_catalog()) == SHIPPED


@pytest.mark.parametrize(("last", "retiring"), [
    (None, {}),  # a network never deployed
    ({}, {}),  # deployed before the record
    ({CALLED_PORTS_OUTPUT: SHIPPED}, {}),  # no change
    ({CALLED_PORTS_OUTPUT: {**SHIPPED, "inference": 8070}}, {"inference": 8070}),  # inference moved to 8082
    ({CALLED_PORTS_OUTPUT: {**SHIPPED, "ranker": 8090}}, {"ranker": 8090}),  # ranker no longer called
    ({CALLED_PORTS_OUTPUT: {"inference": 8081, "ranker": 8082}}, {}),  # the same ports, other services on them
], ids=["no-stack", "before-the-record", "unchanged", "moved", "no-longer-called", "ports-kept"])
def test_a_port_retires_where_the_catalog_no_longer_calls_it(last: dict[str, Any] | None,
                                                             retiring: dict[str, int]) -> None:
    assert retiring_service_ports(SHIPPED, last) == retiring


def test_on_ec2_the_two_ups_refuse_no_call_and_one_up_would(moto_aws: None) -> None:
    """inference moves from 8080 to 8095; its callers' tasks call 8080 until compute, last in the `up`, rolls them."""
    before, after = {"inference": 8080, "preprocess": 8081}, {"inference": 8095, "preprocess": 8081}
    group = Group()
    group.apply(before, set(before.values()))
    group.apply(after, {*before.values(), *after.values()}, retiring=[8080])  # the `up` of the change
    assert group.admitted() == {8080, 8081, 8095}
    group.apply(after, set(after.values()))  # the next `up`, compute rolled
    assert group.admitted() == {8081, 8095}

    at_once = Group()
    at_once.apply(before, set(before.values()))
    with pytest.raises(AssertionError, match=r"\[8080\] refused"):
        at_once.apply(after, {*before.values(), *after.values()})


# -- the network program (`pulumi up` in stacks/network, its own last outputs fed back) -------------------------------

def _synth_network(own: Mapping[str, Any] | None) -> dict[str, Any]:
    outputs = {"organization/network/dev": dict(own)} if own is not None else {}
    return synth_program(layer_dir("network"), stack="dev", layer="network", env="dev",
                         account_id="111111111111", region="eu-west-1", stack_outputs=outputs)


def _admitted(document: dict[str, Any]) -> dict[str, set[int]]:
    """direction -> the ports the tasks' group admits between the services."""
    found: dict[str, set[int]] = {}
    for direction, kind in (("in", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
                            ("out", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")):
        for rule in of_type(document, kind):
            if rule["name"].removeprefix(f"network-services-{direction}-").isdigit():
                ports = range(rule["inputs"]["fromPort"], rule["inputs"]["toPort"] + 1)
                found.setdefault(direction, set()).update(ports)
    return found


@pytest.mark.parametrize(("change", "kept", "now"), [
    (_move_inference, {"inference": 8082}, {8081, MOVED}),
    (_stop_calling_inference, {"inference": 8082}, {8081}),
], ids=["moved", "no-longer-called"])
def test_the_network_program_admits_the_old_port_one_more_up(
        catalog: Callable[..., None], change: Callable[[dict[str, Any]], None], kept: dict[str, int],
        now: set[int]) -> None:
    first = _synth_network(None)
    assert first["outputs"][CALLED_PORTS_OUTPUT] == SHIPPED and first["outputs"][RETIRING_PORTS_OUTPUT] == {}
    assert _admitted(first) == {"in": {8081, 8082}, "out": {8081, 8082}}

    catalog(change)
    changed = _synth_network(first["outputs"])
    assert changed["outputs"][RETIRING_PORTS_OUTPUT] == kept
    assert _admitted(changed) == {"in": {8082} | now, "out": {8082} | now}  # old and new

    later = _synth_network(changed["outputs"])
    assert later["outputs"][RETIRING_PORTS_OUTPUT] == {}
    assert _admitted(later) == {"in": now, "out": now}
    assert _synth_network(later["outputs"])["outputs"] == later["outputs"]  # the next up, no change


def test_a_retiring_range_start_takes_no_alias(catalog: Callable[..., None]) -> None:
    """The alias of a range names the per-port rule of its first service; a retiring port's service has its alias on
    the rule of its port now (two resources with one alias would fail the engine)."""
    first = _synth_network(None)
    catalog(lambda services: services["preprocess"].update(port=9081))  # 8081 retires, 8081-8082 keeps its name
    changed = _synth_network(first["outputs"])
    aliases = [alias for rule in changed["resources"] if rule["name"].startswith("network-services-")
               for alias in rule.get("aliases") or []]
    assert aliases and len(aliases) == len(set(map(str, aliases))), aliases


# -- the orchestrator -------------------------------------------------------------------------------------------------

def _deployed(compute: dict[str, int] | None, *, stack: bool = True) -> Callable[[str, dict[str, Any]], Any]:
    """dev as deployed by the `up` that moved inference to MOVED: network kept 8082; compute's last `up` wired its
    tasks to call ``compute`` (None: it predates the record; ``stack`` False: no compute stack)."""
    def outputs(layer: str, base: dict[str, Any]) -> Any:
        if layer == "network":
            return {**base, CALLED_PORTS_OUTPUT: {"inference": MOVED, "preprocess": 8081},
                    RETIRING_PORTS_OUTPUT: {"inference": 8082}}
        if layer == "compute":
            if not stack:
                return None
            return {**base, **({CALLED_PORTS_OUTPUT: compute} if compute is not None else {})}
        return base

    return outputs


def _orchestrate(argv: list[str], deployed: Callable[[str, dict[str, Any]], Any]) -> tuple[int, str, Any]:
    class Runner(RecordingRunner):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Any:
            return deployed(layer, dict(super().stack_outputs(layer, env) or {}))

    runner = Runner()
    code, out = run(argv, runner)
    return code, out, runner


def test_up_before_compute_moved_off_runs_nothing(catalog: Callable[..., None],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    catalog(_move_inference)
    code, out, runner = _orchestrate(["up", "dev", "--yes"], _deployed(SHIPPED))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "services.inference.port: the network layer would stop admitting port 8082 (inference's before it moved " \
           "to 9082)" in error
    assert "calling inference on 8082" in error and "--layers compute --exact" in error


def test_a_compute_stack_from_before_the_record_is_refused(catalog: Callable[..., None],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    catalog(_move_inference)
    code, out, runner = _orchestrate(["up", "dev", "--yes"], _deployed(None))
    assert code == 2 and runner.started() == [], out
    assert "predates the record of the ports its tasks call" in capsys.readouterr().err


@pytest.mark.parametrize("deployed", [
    _deployed({"inference": MOVED, "preprocess": 8081}), _deployed(None, stack=False),
], ids=["compute-moved", "no-compute-stack"])
def test_up_after_compute_moved_off_runs(catalog: Callable[..., None],
                                         deployed: Callable[[str, dict[str, Any]], Any]) -> None:
    catalog(_move_inference)
    code, out, runner = _orchestrate(["up", "dev", "--yes"], deployed)
    assert code == 0 and runner.started()[0] == "network", out


def test_preview_notes_the_refusal_and_runs(catalog: Callable[..., None]) -> None:
    catalog(_move_inference)
    code, out, runner = _orchestrate(["preview", "dev"], _deployed(SHIPPED))
    assert code == 0 and runner.started(), out
    assert "note: up would be refused:" in out and "stop admitting port 8082" in out


def test_a_run_without_network_is_not_checked(catalog: Callable[..., None]) -> None:
    catalog(_move_inference)
    code, out, runner = _orchestrate(["up", "dev", "--yes", "--layers", "compute", "--exact"], _deployed(SHIPPED))
    assert code == 0 and runner.started() == ["compute"], out


def test_the_refusal_names_each_port_and_what_stopped_calling_it(catalog: Callable[..., None]) -> None:
    catalog(_move_inference)
    network = {CALLED_PORTS_OUTPUT: {"inference": MOVED, "preprocess": 8081},
               RETIRING_PORTS_OUTPUT: {"inference": 8082, "ranker": 8090, "scorer": 8091}}
    compute = {CALLED_PORTS_OUTPUT: {"inference": 8082, "ranker": 8090, "scorer": 8091}}
    [refusal] = port_drop_refusals(load_catalog(), "dev", {"network": network, "compute": compute}.get)
    assert refusal.key == "services.inference.port"
    assert "ports 8082 (inference's before it moved to 9082), 8090 (ranker's, which left the catalog)" in refusal.reason
    assert port_drop_refusals(load_catalog(), "dev", {"network": network, "compute": network}.get) == []


def test_a_compute_run_without_network_onto_a_port_not_admitted_yet_runs_nothing(
        catalog: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    """The catalog moved inference again (to 9083) after the network's last `up` (which admits 8081, 8082, 9082):
    compute alone would put the tasks on a port no rule admits."""
    catalog(lambda services: services["inference"].update(port=MOVED + 1))
    code, out, runner = _orchestrate(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                                     _deployed({"inference": MOVED, "preprocess": 8081}))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "services.inference.port: compute would roll the tasks onto inference's port 9083" in error
    assert "admits 8081, 8082, 9082" in error and "nox -s up -- dev` (every layer)" in error


def test_where_neither_a_full_up_nor_compute_alone_is_safe_the_refusal_says_the_way_back(
        catalog: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    """compute's last `up` was rolled back onto 8082 (so network may not drop it) and the catalog moved inference
    again, to 9083 (so compute alone may not go there)."""
    catalog(lambda services: services["inference"].update(port=MOVED + 1))
    code, out, runner = _orchestrate(["up", "dev", "--yes", "--layers", "compute", "--exact"], _deployed(SHIPPED))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "A full `up` is refused too" in error
    assert "Set the catalog's called ports back to ones the network admits (8081, 8082, 9082), run compute alone" \
        in error


def test_the_refusal_sends_to_compute_alone_only_where_network_admits_the_catalogs_ports(
        catalog: Callable[..., None]) -> None:
    catalog(lambda services: services["inference"].update(port=MOVED + 1))
    network = {CALLED_PORTS_OUTPUT: {"inference": MOVED, "preprocess": 8081},
               RETIRING_PORTS_OUTPUT: {"inference": 8082}}
    [refusal] = port_drop_refusals(load_catalog(), "dev", {"network": network,
                                                           "compute": {CALLED_PORTS_OUTPUT: SHIPPED}}.get)
    assert "Run compute once first" not in refusal.reason  # it would move the tasks to 9083, which no rule admits
    assert "compute alone would now move the tasks to 9083" in refusal.reason
    assert "Set the catalog's called ports back to ones the network admits (8081, 8082, 9082)" in refusal.reason


@pytest.mark.parametrize(("rolled_back", "record"), [
    (set(), {"inference": MOVED, "preprocess": 8081}),
    ({"inference"}, {"inference": 8082, "preprocess": 8081, "ranker": 8090}),  # the callee went back to its old port
    ({"gateway"}, {"inference": MOVED, "preprocess": 8081, "ranker": 8090}),  # a caller went back: it may call ranker
], ids=["converged", "callee-rolled-back", "caller-rolled-back"])
def test_compute_records_the_ports_ecs_runs_after_a_rollback(rolled_back: set[str], record: dict[str, int]) -> None:
    """An ECS circuit-breaker rollback is a successful update to Pulumi (its outputs are saved): compute's record keeps
    the ports of its last one for what went back, so the network keeps admitting them."""
    from shared.components.compute import ports_called

    before = {"inference": 8082, "preprocess": 8081, "ranker": 8090}
    assert ports_called({"inference": MOVED, "preprocess": 8081}, before, rolled_back) == record


def test_the_compute_program_records_the_catalogs_ports_where_ecs_runs_what_it_applied(env_dir: Path) -> None:
    from shared.synth.engine import synth_env

    assert synth_env("dev", ["compute"])["compute"]["outputs"][CALLED_PORTS_OUTPUT] == SHIPPED


def test_a_full_up_onto_a_port_the_network_admits_in_the_same_run_runs(catalog: Any) -> None:
    """A second move while the first still retires: a whole `up` runs network first, which admits the new port, so
    it is not refused (the refusal's own advice is to run every layer)."""
    catalog(lambda services: services["inference"].update(port=MOVED + 1))
    code, out, runner = _orchestrate(["up", "dev", "--yes"], _deployed({"inference": MOVED, "preprocess": 8081}))
    assert code == 0 and runner.started()[0] == "network", out


def test_compute_alone_is_not_refused_where_the_network_predates_the_record() -> None:
    """A network deployed before it recorded the called ports has no record to hold compute to: the first
    compute-alone job after the upgrade runs."""
    from shared.port_retirement import port_admission_refusals

    assert port_admission_refusals(load_catalog(), "dev", {"network": {"vpc_id": "vpc-1"}}.get) == []
