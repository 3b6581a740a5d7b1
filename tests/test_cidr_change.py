"""A new ``network.cidr`` on a deployed env, as a specification: refused before any layer runs while later layers are
deployed in the VPC.

A VPC's primary CIDR cannot change (EC2 ``CreateVpc.CidrBlock``; nothing modifies it), so the network layer replaces
the VPC, its subnets and security groups, and deletes the old ones at the end of its own `up`, while the broker, the
functions, the deploy runner's builds and the tasks of the later layers are still in them: EC2 answers
``DependencyViolation`` for 45 minutes, network fails, the later layers are skipped, and every later `up` fails alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.envs import load_env
from shared.plan_diff import diff_layers
from shared.zone_retirement import VPC_LAYERS, cidr_change_refusals
from tests.test_orchestrate import RecordingRunner, management_api, refused_up, run
from tests.test_zone_retirement import _synth

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback

DEPLOYED = "10.10.0.0/16"  # dev's CIDR in its env file


def _move(data: dict[str, Any]) -> None:
    data["network"]["cidr"] = "10.21.0.0/16"


def test_a_new_cidr_replaces_the_vpc_its_subnets_and_the_broker() -> None:
    before, after = _synth(lambda data: None)[1], _synth(_move)[1]
    replaced = {change.urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1]
                for diff in diff_layers(dict(before), dict(after), list(after)) for change in diff.changes
                if change.action == "replace"}
    assert {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:mq/broker:Broker"} <= replaced


def _outputs(layers: tuple[str, ...], cidr: str = DEPLOYED) -> Callable[[str], dict[str, Any] | None]:
    return lambda layer: {"vpc_cidr": cidr} if layer == "network" else ({"x": 1} if layer in layers else None)


def test_refused_while_a_later_layer_is_deployed_in_the_vpc() -> None:
    env = load_env("dev").model_copy(update={"network": load_env("dev").network.model_copy(
        update={"cidr": "10.21.0.0/16"})})
    for layer in VPC_LAYERS:
        (refusal,) = cidr_change_refusals(env, _outputs((layer,)))
        assert refusal.key == "network.cidr" and DEPLOYED in refusal.reason and layer in refusal.reason
    assert cidr_change_refusals(env, _outputs(())) == []  # the network alone: replaced in one up, nothing in it
    assert cidr_change_refusals(env, lambda layer: None) == []  # a first up
    assert cidr_change_refusals(load_env("dev"), _outputs(VPC_LAYERS)) == []  # unchanged


@pytest.fixture
def dev_moved(edit_env: Callable[..., Path]) -> None:
    edit_env("dev", _move)


def test_up_runs_nothing_and_names_the_key(dev_moved: None, capsys: pytest.CaptureFixture[str]) -> None:
    error = refused_up("dev", RecordingRunner(deployed={"network": {"vpc_cidr": DEPLOYED}}), capsys)
    assert "network.cidr: is 10.21.0.0/16, but the network was deployed with 10.10.0.0/16" in error


def test_preview_notes_it_and_runs(dev_moved: None) -> None:
    runner = RecordingRunner(deployed={"network": {"vpc_cidr": DEPLOYED}})
    code, out = run(["preview", "dev"], runner)
    assert code == 0 and runner.started(), out
    assert "note: up would be refused:" in out and "network.cidr" in out


def test_a_cidr_change_is_refused_while_discovery_alone_is_deployed() -> None:
    """discovery's private namespace is tied to the VPC: deployed alone, it still holds the old VPC."""
    dev = load_env("dev")
    env = dev.model_copy(update={"network": dev.network.model_copy(update={"cidr": "10.21.0.0/16"})})

    def read(layer: str) -> dict[str, Any] | None:
        return {"vpc_cidr": "10.10.0.0/16"} if layer == "network" else {"x": 1} if layer == "discovery" else None

    (refusal,) = cidr_change_refusals(env, read)
    assert "discovery" in refusal.reason
