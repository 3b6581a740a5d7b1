"""On a real RabbitMQ: a port chosen free but taken by another process before the node (or its epmd)
binds it makes that start attempt fail; the broker retries with fresh ports and leaves nothing of the
failed attempt behind (its folder, its epmd, its node)."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.rehearse import broker as broker_module
from shared.rehearse.broker import DIR_PREFIX, BrokerUnavailable, LocalBroker, PortTaken, free_port, processes_using

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("own_tempdir")]

PORT_ROLES = ("amqp", "distribution", "epmd", "management")
"""The order in which an attempt asks the port chooser (LocalBroker.port_chooser)."""


@pytest.fixture
def occupied() -> Iterator[int]:
    """A loopback port another process holds (listening), as if it took it after free_port() chose it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        yield holder.getsockname()[1]


def chooser_giving(port: int, at_call: int) -> tuple[Callable[[], int], list[int]]:
    """A port chooser that answers ``port`` on its ``at_call``-th call (from 0) and free ports otherwise."""
    given: list[int] = []
    free = free_port

    def choose() -> int:
        given.append(port if len(given) == at_call else free())
        return given[-1]

    return choose, given


def our_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"))


@pytest.mark.parametrize("role", PORT_ROLES)
def test_a_port_taken_before_the_node_binds_it_is_retried_with_fresh_ports(
        role: str, occupied: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt gets the occupied port for ``role``: the node stops on dist_port_already_used or
    eaddrinuse, or our epmd exits; before, the start failed (only an error saying eaddrinuse was retried, and a
    handshake timeout against the other listener escaped as a pika error)."""
    choose, given = chooser_giving(occupied, PORT_ROLES.index(role))
    monkeypatch.setattr(broker_module, "free_port", choose)  # what LocalBroker() asks for each port
    before = our_folders()
    broker = LocalBroker()
    broker.start()
    try:
        assert len(broker.failed_attempts) == 1, broker.failed_attempts
        failed_folder, why = broker.failed_attempts[0]
        assert str(occupied) in why or "dist_port_already_used" in why or "eaddrinuse" in why, why
        # the second attempt runs on fresh ports and answers
        assert occupied not in (broker.amqp_port, broker.management_port) and len(given) == 8
        assert broker.version() >= (3,)
        broker.admin_connection().close()
        # nothing of the first attempt is left: neither its folder nor a process naming it
        assert not failed_folder.exists() and processes_using(failed_folder) == []
        assert our_folders() - before == {broker.directory}
    finally:
        broker.stop()
    assert our_folders() - before == set()


def test_a_port_taken_at_every_attempt_gives_up_after_the_last_and_leaves_nothing(occupied: int) -> None:
    before = our_folders()
    broker = LocalBroker(port_chooser=chooser_giving(occupied, 0)[0], attempts=1)
    with pytest.raises(PortTaken) as raised:
        broker.start()
    assert isinstance(raised.value, BrokerUnavailable) and "eaddrinuse" in str(raised.value).lower()
    assert our_folders() - before == set() and broker.directory is not None
    assert processes_using(broker.directory) == []
