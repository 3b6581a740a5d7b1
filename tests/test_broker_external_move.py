"""Moving a deployed env from its Amazon MQ broker to an external one, as a specification: refused in one `up` while
messaging and compute hold rules naming the broker's security group.

The broker layer runs first and deletes the broker, then its group; the group is still named by compute's
``compute-tasks-to-broker`` and messaging's ``queue-metrics-to-broker`` (EC2 DeleteSecurityGroup: DependencyViolation),
so the layer fails with the broker gone and the later layers never move off it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.broker_upgrade import BROKER_GROUP_REFERRERS, external_move_refusal
from shared.envs import load_env
from tests.spec_envs import SPEC_ENV_DIR
from tests.test_orchestrate import RecordingRunner, management_api, refused_up, run

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback

GROUP = "sg-0broker"
DEPLOYED_BROKER = {"broker_mode": "amazon-mq", "broker_security_group_id": GROUP, "broker_name": "ml-dev"}


def _external(data: dict[str, Any]) -> None:
    data["messaging"].update(broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                                          "management_endpoint": "https://mq.example.com"})


@pytest.fixture
def dev_external(edit_env: Callable[..., Path]) -> None:
    edit_env("dev", _external)


def test_the_snapshots_show_the_rules_that_name_the_broker_group() -> None:
    import json

    for layer, rule in (("compute", "compute-tasks-to-broker"), ("messaging", "queue-metrics-to-broker")):
        assert layer in BROKER_GROUP_REFERRERS
        document = json.loads((SPEC_ENV_DIR.parent.parent / "snapshots" / "prod" / f"{layer}.json").read_text())
        (resource,) = [r for r in document["resources"] if r["name"] == rule]
        assert resource["inputs"].get("referencedSecurityGroupId"), rule


def _read(layers: tuple[str, ...], broker: dict[str, Any] | None = DEPLOYED_BROKER) -> Callable[[str], Any]:
    return lambda layer: broker if layer == "broker" else ({"x": 1} if layer in layers else None)


def test_refused_while_messaging_or_compute_is_deployed(dev_external: None) -> None:
    env = load_env("dev")
    for layer in BROKER_GROUP_REFERRERS:
        (refusal,) = external_move_refusal(env, _read((layer,)))
        assert refusal.key == "messaging.broker" and GROUP in refusal.reason and layer in refusal.reason
    assert external_move_refusal(env, _read(())) == []  # nothing names the group: the broker layer deletes it
    assert external_move_refusal(env, _read(BROKER_GROUP_REFERRERS, None)) == []  # a first up
    external = {"broker_mode": "external", "broker_security_group_id": None}
    assert external_move_refusal(env, _read(BROKER_GROUP_REFERRERS, external)) == []  # the move is done


def test_an_amazon_mq_env_is_not_concerned() -> None:
    assert external_move_refusal(load_env("dev"), _read(BROKER_GROUP_REFERRERS)) == []


def test_up_runs_nothing_and_names_the_key(dev_external: None, capsys: pytest.CaptureFixture[str]) -> None:
    error = refused_up("dev", RecordingRunner(deployed={"broker": DEPLOYED_BROKER}), capsys)
    assert "messaging.broker: is external, but the env runs an Amazon MQ broker (ml-dev)" in error


def test_preview_notes_it_and_runs(dev_external: None) -> None:
    """A preview only notes it (it changes nothing); here it then stops on the external broker's management API, which
    answers nowhere in the tests."""
    _code, out = run(["preview", "dev"], RecordingRunner(deployed={"broker": DEPLOYED_BROKER}))
    assert "note: up would be refused:" in out and "messaging.broker: is external" in out


def test_a_broker_only_up_to_external_is_refused_too(dev_external: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The deploy workflows run broker as a job of its own (`--layers broker --exact`): the gate holds there as in a
    whole `up`, or the broker's group would go while the messaging and compute rules still name it."""
    code, out = run(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                    RecordingRunner(deployed={"broker": DEPLOYED_BROKER}))
    assert code == 2, out
    assert "messaging.broker: is external" in capsys.readouterr().err
