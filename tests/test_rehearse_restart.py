"""On a real RabbitMQ: the broker's weekly maintenance restart (README, "Maintenance window") loses no queued message
and no definition of the env's topology, and every service gets back in with the credentials it started with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from shared.rehearse import rehearse, synthesized_topology
from shared.rehearse.broker import LocalBroker
from shared.rehearse.definitions import Topology, to_definitions
from shared.rehearse.restart import check_restart

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        yield started


@pytest.fixture(scope="module")
def topology() -> Topology:
    return synthesized_topology("dev")


def test_the_dev_topology_survives_a_restart_with_its_messages(broker: LocalBroker, topology: Topology) -> None:
    broker.import_definitions(to_definitions(topology))
    assert check_restart(broker, topology) == []
    # and again: a second window finds the same
    assert check_restart(broker, topology) == []


def test_a_transient_queue_is_reported_lost_across_the_restart(broker: LocalBroker, topology: Topology) -> None:
    """The check can fail: a non-durable classic work queue (what the platform never declares) is gone after the
    restart, with its message."""
    moved = topology.with_vhost("ml-dev-transient")
    work = next(q for q in moved.queues if q.name.endswith(".work"))
    transient = replace(moved, queues=tuple(replace(q, durable=False, arguments={}) if q == work else q
                                            for q in moved.queues))
    broker.import_definitions(to_definitions(transient))
    problems = check_restart(broker, transient)
    assert any("queues of vhost ml-dev-transient changed" in p for p in problems), problems
    assert any(f"the message {work.name} held before the restart (lost)" in p or f"cannot read {work.name}" in p
               for p in problems), problems


def test_the_rehearsal_restarts_its_node() -> None:
    report = rehearse("dev")
    assert report.restarted and report.restart_problems == [] and report.ok, report.failures()
