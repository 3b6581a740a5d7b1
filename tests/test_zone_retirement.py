"""Dropping an availability zone, as a specification: two `up`s; the orchestrator refuses the second before the first.

EC2 refuses to delete a subnet while a network interface is left in it, and the layers holding interfaces there run
after network. So the first `up` (``network.retiring_availability_zones``) moves every layer off the AZ's subnets and
deletes nothing; the second (a lower ``network.az_count``) deletes subnets no layer uses any more. Shown on staging
(three AZs, interface endpoints, a deploy runner, the rotation and queue metrics functions, four ECS services).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import shared.synth.engine as engine
from shared.contracts import CONTRACTS
from shared.envs import EnvConfig, active_env_dir, load_env
from shared.errors import ConfigError
from shared.plan_diff import diff_layers
from shared.zone_retirement import HOLDING_LAYERS, RETIRING_KEY, SUBNET_OUTPUT, zone_drop_refusals
from tests.spec_envs import SPEC_ENV_DIR
from tests.synth_helpers import synth_layers
from tests.test_orchestrate import RecordingRunner, management_api, run

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback

Documents = dict[str, dict[str, Any]]
RETIRED = "eu-west-1c"


def _synth(edit: Callable[[dict[str, Any]], None]) -> tuple[EnvConfig, Documents]:
    """staging with ``edit`` applied to its env file: the loaded env and every layer's synth."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "environments"
        folder.mkdir()
        for name in ("dev", "staging", "prod"):
            shutil.copy2(SPEC_ENV_DIR / f"{name}.yaml", folder)
        path = folder / "staging.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        with active_env_dir(folder):
            return load_env("staging"), engine.synth_env("staging")


def _retire(data: dict[str, Any]) -> None:
    data["network"]["retiring_availability_zones"] = [RETIRED]


def _drop(data: dict[str, Any]) -> None:
    data["network"]["az_count"] = 2


@pytest.fixture(scope="module")
def before() -> Documents:
    return synth_layers("staging")


@pytest.fixture(scope="module")
def retiring() -> tuple[EnvConfig, Documents]:
    return _synth(_retire)


@pytest.fixture(scope="module")
def dropped() -> tuple[EnvConfig, Documents]:
    return _synth(_drop)


def _subnets_used(document: dict[str, Any]) -> set[str]:
    """Every subnet id a layer's resources name in their inputs."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith("subnet-"):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for resource in document["resources"]:
        walk(resource["inputs"])
    return found


def _retired_subnets(documents: Documents) -> set[str]:
    """The retired AZ's private and public subnet (the third of each list the network exported before)."""
    outputs = documents["network"]["outputs"]
    assert outputs["availability_zones"][2] == RETIRED
    return {outputs["private_subnet_ids"][2], outputs["public_subnet_ids"][2]}


def _reader(*sources: Documents) -> Callable[[str], dict[str, Any] | None]:
    """Each layer's deployed outputs from the first of ``sources`` holding it."""
    def read(layer: str) -> dict[str, Any] | None:
        for documents in sources:
            if layer in documents:
                return documents[layer]["outputs"]
        return None

    return read


def test_every_layer_that_holds_interfaces_records_its_subnets() -> None:
    declared = {layer for layer, model in CONTRACTS.items() if SUBNET_OUTPUT in model.model_fields}
    assert declared == set(HOLDING_LAYERS)


def test_the_layers_after_network_use_the_subnets_of_every_az_today(before: Documents) -> None:
    """Why one `up` cannot drop an AZ: its subnets hold compute's tasks, the runner and both functions."""
    retired = _retired_subnets(before)
    for layer in HOLDING_LAYERS:
        assert retired & _subnets_used(before[layer]), layer
        assert set(before[layer]["outputs"][SUBNET_OUTPUT]) & retired, layer


def test_retiring_an_az_moves_every_layer_off_and_deletes_nothing(
        before: Documents, retiring: tuple[EnvConfig, Documents]) -> None:
    env, after = retiring
    assert env.serving_availability_zones == ["eu-west-1a", "eu-west-1b"]
    retired = _retired_subnets(before)
    diffs = diff_layers(dict(before), dict(after), list(after))
    removed = [(c.action, c.urn) for diff in diffs for c in diff.changes if c.action in ("delete", "replace")]
    assert removed == []
    # the subnets stay (and their route tables): only the exports and the endpoints leave them
    names = {r["name"] for r in after["network"]["resources"] if r["type"] == "aws:ec2/subnet:Subnet"}
    assert {"network-private-c", "network-public-c"} <= names
    assert after["network"]["outputs"]["retiring_availability_zones"] == [RETIRED]
    assert after["network"]["outputs"]["availability_zones"] == ["eu-west-1a", "eu-west-1b"]
    for layer, document in after.items():
        if layer != "network":
            assert not retired & _subnets_used(document), layer
    endpoints = [r for r in after["network"]["resources"] if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"
                 and r["inputs"].get("vpcEndpointType") == "Interface"]
    assert endpoints and all(not retired & set(r["inputs"]["subnetIds"]) for r in endpoints)


def test_the_second_up_deletes_only_subnets_no_layer_is_left_in(
        before: Documents, retiring: tuple[EnvConfig, Documents], dropped: tuple[EnvConfig, Documents]) -> None:
    _, first = retiring
    env, second = dropped
    diffs = {diff.layer: diff for diff in diff_layers(dict(first), dict(second), list(second))}
    deleted = {c.urn.rsplit("::", 1)[1] for c in diffs["network"].changes
               if c.action == "delete" and c.type == "aws:ec2/subnet:Subnet"}
    assert deleted == {"network-private-c", "network-public-c"}
    retired = _retired_subnets(before)
    for layer in HOLDING_LAYERS:  # what the first `up` left them in
        assert not retired & _subnets_used(first[layer]), layer
    assert zone_drop_refusals(env, _reader(first)) == []


def test_dropping_a_serving_az_in_one_up_is_refused(before: Documents, dropped: tuple[EnvConfig, Documents]) -> None:
    env, _ = dropped
    [refusal] = zone_drop_refusals(env, _reader(before))
    assert refusal.key == "network.az_count"
    assert f"drops {RETIRED}" in refusal.reason and RETIRING_KEY in refusal.reason
    assert "DependencyViolation" in refusal.reason and refusal.reason.endswith("Nothing was run")


def test_a_layer_the_first_up_did_not_reach_is_refused(
        before: Documents, retiring: tuple[EnvConfig, Documents], dropped: tuple[EnvConfig, Documents]) -> None:
    """`--layers network` alone retired the AZ: compute, the broker and messaging still sit in its subnets."""
    _, first = retiring
    env, _ = dropped
    refusals = zone_drop_refusals(env, _reader({"network": first["network"]}, before))
    assert [r.reason.split(" layer ")[0] for r in refusals] == [
        f"drops {RETIRED}, but the {layer}" for layer in HOLDING_LAYERS]
    assert all("left it in subnet-" in r.reason for r in refusals)


def test_a_layer_deployed_before_the_subnets_were_recorded_is_refused(
        retiring: tuple[EnvConfig, Documents], dropped: tuple[EnvConfig, Documents]) -> None:
    _, first = retiring
    env, _ = dropped
    older = {**first, "compute": {"outputs": {k: v for k, v in first["compute"]["outputs"].items()
                                              if k != SUBNET_OUTPUT}}}
    [refusal] = zone_drop_refusals(env, _reader(older))
    assert "the compute layer" in refusal.reason and "predates" in refusal.reason


def test_nothing_dropped_or_nothing_deployed_is_not_checked(before: Documents) -> None:
    staging = load_env("staging")
    assert zone_drop_refusals(staging, _reader(before)) == []
    assert zone_drop_refusals(staging, lambda layer: None) == []


# -- the env loader ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "zones", "reason"), [
    ("staging", ["eu-west-1d"], "not among the env's availability zones"),
    ("staging", ["eu-west-1c", "eu-west-1c"], "listed twice"),
    ("staging", ["eu-west-1b"], "only the last of the env's availability zones"),
    ("dev", ["eu-west-1a", "eu-west-1b"], "retires every availability zone"),
    ("prod", ["eu-west-1c"], "CLUSTER_MULTI_AZ runs three nodes"),
])
def test_the_loader_refuses_a_retirement_that_cannot_be_done(
        edit_env: Callable[..., Path], env: str, zones: list[str], reason: str) -> None:
    edit_env(env, lambda data: data["network"].update(retiring_availability_zones=zones))
    with pytest.raises(ConfigError) as raised:
        load_env(env)
    assert reason in str(raised.value)
    assert RETIRING_KEY in str(raised.value)


def test_a_prod_env_keeps_two_serving_azs(edit_env: Callable[..., Path]) -> None:
    def shape(data: dict[str, Any]) -> None:
        data["messaging"]["deployment_mode"] = "SINGLE_INSTANCE"
        data["network"].update(az_count=2, retiring_availability_zones=["eu-west-1b"])

    edit_env("prod", shape)
    with pytest.raises(ConfigError) as raised:
        load_env("prod")
    assert "network.az_count less network.retiring_availability_zones is 1" in str(raised.value)


def test_capacity_counts_the_serving_azs_only(edit_env: Callable[..., Path]) -> None:
    from shared.aws_limits import private_subnet_need
    from shared.catalog import load_catalog

    staging = load_env("staging")
    edit_env("staging", _retire)
    retiring = load_env("staging")
    assert "spread over 2 AZs" in private_subnet_need(retiring, load_catalog())[1][0]
    assert "spread over 3 AZs" in private_subnet_need(staging, load_catalog())[1][0]


# -- the orchestrator -------------------------------------------------------------------------------------------------

class _DeployedDev:
    """dev's stacks as deployed with two AZs: ``retired`` whether the last `up` retired eu-west-1b, ``moved`` the layers
    that `up` reached (they left its subnets)."""

    def __init__(self, retired: bool, moved: tuple[str, ...] = HOLDING_LAYERS) -> None:
        self.retired, self.moved = retired, moved

    def outputs(self, layer: str, base: dict[str, Any]) -> dict[str, Any]:
        both, kept = ["subnet-a", "subnet-b", "subnet-pa", "subnet-pb"], ["subnet-a", "subnet-pa"]
        if layer == "network":
            return {**base, "availability_zones": ["eu-west-1a"] if self.retired else ["eu-west-1a", "eu-west-1b"],
                    "retiring_availability_zones": ["eu-west-1b"] if self.retired else [],
                    "private_subnet_ids": ["subnet-a"] if self.retired else ["subnet-a", "subnet-b"],
                    "public_subnet_ids": ["subnet-pa"] if self.retired else ["subnet-pa", "subnet-pb"]}
        if layer in HOLDING_LAYERS:
            return {**base, SUBNET_OUTPUT: kept if self.retired and layer in self.moved else both}
        return base


def _orchestrate(argv: list[str], deployed: _DeployedDev) -> tuple[int, str, Any]:
    class Runner(RecordingRunner):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Any:
            return deployed.outputs(layer, dict(super().stack_outputs(layer, env) or {}))

    runner = Runner()
    code, out = run(argv, runner)
    return code, out, runner


@pytest.fixture
def dev_on_one_az(edit_env: Callable[..., Path]) -> None:
    edit_env("dev", lambda data: data["network"].update(az_count=1))


def test_up_that_drops_a_serving_az_runs_nothing(dev_on_one_az: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, runner = _orchestrate(["up", "dev", "--yes"], _DeployedDev(retired=False))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "network.az_count: drops eu-west-1b" in error and RETIRING_KEY in error


def test_preview_notes_the_refusal_and_runs(dev_on_one_az: None) -> None:
    code, out, runner = _orchestrate(["preview", "dev"], _DeployedDev(retired=False))
    assert code == 0, out
    assert "note: up would be refused:" in out and "drops eu-west-1b" in out
    assert runner.started(), out


def test_up_after_the_retirement_reached_every_layer_runs(dev_on_one_az: None) -> None:
    code, out, runner = _orchestrate(["up", "dev", "--yes"], _DeployedDev(retired=True))
    assert code == 0 and runner.started()[0] == "network", out


def test_up_after_a_network_only_retirement_runs_nothing(dev_on_one_az: None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, runner = _orchestrate(["up", "dev", "--yes"], _DeployedDev(retired=True, moved=("broker",)))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "the messaging layer has not moved off" in error and "the compute layer has not moved off" in error


def test_outputs_that_cannot_be_read_leave_a_note_and_the_up_runs(dev_on_one_az: None) -> None:
    """Credentials that may run the stacks but not decrypt their outputs still deploy (an AZ drop is then not caught,
    and the note says so)."""
    class Undecryptable(RecordingRunner):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Any:
            if layer == "network":
                raise RuntimeError("decrypting secret value: access denied")
            return super().stack_outputs(layer, env)

    runner = Undecryptable()
    code, out = run(["up", "dev", "--yes", "--layers", "network", "--exact"], runner)
    assert code == 0 and runner.started() == ["network"], out
    assert "note: which subnets dev's layers use could not be read" in out and "not caught" in out


# -- the network program (`pulumi up` in stacks/network, without the orchestrator) -------------------------------------

def _synth_network(own: dict[str, Any] | None) -> dict[str, Any]:
    from shared.synth.engine import layer_dir, synth_program

    outputs = {"organization/network/dev": own} if own is not None else {}
    return synth_program(layer_dir("network"), stack="dev", layer="network", env="dev",
                         account_id="111111111111", region="eu-west-1", stack_outputs=outputs)


def test_the_network_program_refuses_dropping_a_serving_az_itself(env_dir: Path,
                                                                  edit_env: Callable[..., Path]) -> None:
    first = _synth_network(None)
    assert "organization/network/dev" in first["stack_references"]  # it reads its own last outputs
    edit_env("dev", lambda data: data["network"].update(az_count=1))
    with pytest.raises(ConfigError) as refused:
        _synth_network(first["outputs"])
    assert refused.value.key == "network.az_count" and RETIRING_KEY in refused.value.reason


def test_the_network_program_takes_the_two_steps(env_dir: Path, edit_env: Callable[..., Path]) -> None:
    first = _synth_network(None)
    edit_env("dev", lambda data: data["network"].update(retiring_availability_zones=["eu-west-1b"]))
    second = _synth_network(first["outputs"])
    assert second["outputs"]["availability_zones"] == ["eu-west-1a"]
    edit_env("dev", lambda data: data["network"].update(az_count=1, retiring_availability_zones=[]))
    third = _synth_network(second["outputs"])
    assert third["outputs"]["retiring_availability_zones"] == []
    assert _synth_network(third["outputs"])["outputs"] == third["outputs"]  # the next up, no change
