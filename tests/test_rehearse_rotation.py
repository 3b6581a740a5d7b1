"""On a real RabbitMQ: a rotation of the services' broker credentials (a new ``credentials_rotation.epoch``) keeps
every running task working.

ECS injects a task's secrets only when it starts, so after messaging's ``up`` rotates the credentials, tasks that
started before keep the user and password they read then, until compute's rollout replaces them (or, after a failed
rollout, the circuit breaker's rollback starts more of them). Those tasks reconnect with what they have: the
credentials they started with must stay valid until the next rotation, and the new ones must log in too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from shared.rehearse import rehearse, synthesized_topology
from shared.rehearse.broker import LocalBroker
from shared.rehearse.rotation import check_rotation
from tests.conftest import EnvEditor

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        yield started


def rotate(edit_env: EnvEditor, epoch: str, previous: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data["messaging"]["credentials_rotation"].update(epoch=epoch, previous_epoch=previous)

    edit_env("dev", change)


def test_two_rotations_keep_the_running_tasks_credentials_and_the_new_ones_valid(
        broker: LocalBroker, edit_env: EnvEditor) -> None:
    shipped = synthesized_topology("dev")  # epoch 2026-11-01, deployed before per-epoch users
    rotate(edit_env, "2027-01-15", "2026-11-01")
    first = synthesized_topology("dev")
    rotate(edit_env, "2027-04-01", "2027-01-15")
    second = synthesized_topology("dev")
    for before, after in ((shipped, first), (first, second)):
        assert set(after.credentials) == set(before.credentials)
        assert all(after.credentials[s].password != before.credentials[s].password for s in before.credentials), \
            "every service's password rotates"
        assert check_rotation(broker, before, after) == []
    # two generations on: the first rotation's predecessor is gone, the credentials it held log in no more
    assert {user.name for user in second.users}.isdisjoint(
        {shipped.credentials[service].username for service in shipped.credentials})


def test_a_rotation_that_changes_the_password_in_place_is_reported(broker: LocalBroker, edit_env: EnvEditor) -> None:
    """The check itself: the same user with a new password (what the layer did before per-epoch users) breaks
    every running task's reconnect, and the rehearsal says so for each service."""
    before = synthesized_topology("dev")
    rotate(edit_env, "2027-01-15", "2026-11-01")
    after = synthesized_topology("dev")
    current = {c.username for c in after.credentials.values()}
    # keep only the new users, under the old users' names: one user per service whose password changed in place
    renamed = {after.credentials[s].username: before.credentials[s].username for s in after.credentials}
    in_place = replace(
        after,
        users=tuple(replace(u, name=renamed[u.name]) for u in after.users if u.name in current),
        permissions=tuple(replace(p, user=renamed[p.user]) for p in after.permissions if p.user in current),
        topic_permissions=tuple(replace(p, user=renamed[p.user]) for p in after.topic_permissions
                                if p.user in current),
        credentials={s: replace(c, username=renamed[c.username]) for s, c in after.credentials.items()})
    problems = check_rotation(broker, before, in_place)
    assert problems and all("cannot reconnect with the credentials its running tasks started with" in p
                            for p in problems)
    assert len(problems) == len(before.credentials)


def test_the_rehearsal_of_an_env_rehearses_its_next_rotation_last(edit_env: EnvEditor) -> None:
    """``nox -s rehearse -- ENV`` (its own broker): after the checks, the env's next rotation (epoch when due, the
    current one as previous_epoch) with a connection per service open across it; the env files are not touched."""
    path = edit_env("dev", lambda data: None)
    text = path.read_text()
    report = rehearse("dev")
    assert report.rotation == "epoch 2027-04-30, previous_epoch 2026-11-01"
    assert report.rotation_problems == [] and report.ok
    assert path.read_text() == text


def test_a_rotation_that_breaks_running_tasks_fails_the_rehearsal(
        monkeypatch: pytest.MonkeyPatch, edit_env: EnvEditor) -> None:
    import shared.rehearse as rehearsal

    edit_env("dev", lambda data: None)
    monkeypatch.setattr(rehearsal, "check_rotation", lambda broker, before, after: ["rotation broke: stand-in"])
    report = rehearse("dev")
    assert report.failures() == ["rotation broke: stand-in"] and not report.ok
