"""On a real RabbitMQ: the on-call replay of dead letters (README, "On call", the ``dlq-depth`` entry) puts them back
into their service's work queue, a replay that cannot start is seen and deleted as it says, and its purge empties the
DLQ.

A dead letter carries the routing key ``<svc>.work`` (the work queue's ``dead-letter-routing-key``), not the key it
was published with, so republishing it to its exchange as it is routes it nowhere: the second test shows that
advice (what the README said before) losing the message.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pika
import pytest

from shared.catalog import load_catalog
from shared.rehearse import synthesized_topology
from shared.rehearse.broker import ADMIN_USER, LocalBroker
from shared.rehearse.definitions import Topology, to_definitions
from tests.broker_helpers import until
from tests.readme_helpers import README

pytestmark = pytest.mark.broker

ENV = "dev"


def _dlq_entry() -> str:
    text = README.read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line.startswith("- `<env>-ml-dlq-depth-<svc>`")]
    assert len(entries) == 1, "README's On call chapter lacks its one `<env>-ml-dlq-depth-<svc>` entry"
    return entries[0]


def _readme_replay() -> tuple[str, str]:
    """The README's replay: (the management API path it PUTs, its JSON body), placeholders as written."""
    found = re.search(r"-X PUT [^`]*?<management URL>(/api/parameters/shovel/\S+) -d '(\{.*?\}\})'", _dlq_entry())
    assert found, "the dlq-depth entry names no shovel PUT (`-X PUT ... <management URL>/api/parameters/shovel/...`)"
    return found.group(1), found.group(2)


def _readme_purge() -> str:
    found = re.search(r"-X DELETE <management URL>(/api/queues/\S+?)`", _dlq_entry())
    assert found, "the dlq-depth entry names no purge (`-X DELETE <management URL>/api/queues/...`)"
    return found.group(1)


def _readme_shovel_checks() -> tuple[str, str]:
    """The README's check that the replay has finished (the path it GETs) and its delete of one that cannot start."""
    entry = _dlq_entry()
    listed = re.search(r"<management URL>(/api/parameters/shovel/ml-<env>)` lists it no more", entry)
    deleted = re.search(r"-X DELETE <management URL>(/api/parameters/shovel/\S+?)`", entry)
    assert listed and deleted, "the dlq-depth entry says neither how to see the replay finished nor how to delete it"
    return listed.group(1), deleted.group(1)


def _fill(template: str, vhost: str, service: str) -> str:
    return template.replace("ml-<env>", vhost).replace("<svc>", service)


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker(plugins=("rabbitmq_shovel",)) as started:
        yield started


@pytest.fixture(scope="module")
def topology(broker: LocalBroker) -> Topology:
    loaded = synthesized_topology(ENV)
    broker.import_definitions(to_definitions(loaded))
    return loaded


def _route(topology: Topology) -> tuple[str, str, str, str]:
    """(publisher, deployed exchange, routing key, consuming service) of the catalog's first route to a consumer."""
    catalog = load_catalog()
    for publisher, exchange, key, queues in catalog.routes():
        for queue in queues:
            service = queue.removesuffix(".work")
            if service in topology.credentials and publisher in topology.credentials:
                return publisher, topology.exchange_for(exchange), key, service
    raise AssertionError("the catalog has no route from a publisher to a consumer")


def _as(broker: LocalBroker, topology: Topology, service: str) -> pika.BlockingConnection:
    credentials = topology.credentials[service]
    return broker.connect(credentials.username, credentials.password, credentials.vhost)


def _depths(broker: LocalBroker, topology: Topology) -> dict[str, int]:
    connection = broker.connect(ADMIN_USER, broker.admin_password, topology.vhost)
    try:
        channel = connection.channel()
        return {queue: channel.queue_declare(queue, passive=True).method.message_count
                for queue in topology.queue_names()}
    finally:
        connection.close()



def _dead_letter_one(broker: LocalBroker, topology: Topology) -> tuple[str, str, bytes]:
    """A message published along a catalog route and rejected by its consumer, in that consumer's DLQ:
    (consuming service, the key it was published with, its body)."""
    publisher, exchange, key, service = _route(topology)
    for queue in topology.queue_names():  # a clean start: only this message in the vhost
        broker.management_api("DELETE", f"/api/queues/{quote(topology.vhost, safe='')}/{quote(queue)}/contents")
    body = uuid.uuid4().hex.encode()
    connection = _as(broker, topology, publisher)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(exchange, key, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    connection.close()
    work, dlq = f"{service}.work", f"{service}.dlq"
    assert until(lambda: _depths(broker, topology)[work] == 1), f"the message never reached {work}"
    connection = _as(broker, topology, service)
    channel = connection.channel()
    method, _, got = channel.basic_get(work, auto_ack=False)
    assert method is not None and got == body
    channel.basic_reject(method.delivery_tag, requeue=False)
    connection.close()
    assert until(lambda: _depths(broker, topology)[dlq] == 1), f"the rejected message never reached {dlq}"
    return service, key, body


def _shovel(broker: LocalBroker, path: str, body: dict[str, Any]) -> None:
    """PUT a shovel and wait until it has deleted itself (``src-delete-after``)."""
    broker.management_api("PUT", path, body)
    vhost = path.split("/")[4]
    assert until(lambda: not broker.management_api("GET", f"/api/parameters/shovel/{vhost}")), \
        "the shovel did not finish and delete itself"


def test_the_readme_replay_moves_dead_letters_back_into_the_work_queue(broker: LocalBroker,
                                                                       topology: Topology) -> None:
    service, key, body = _dead_letter_one(broker, topology)
    path, document = _readme_replay()
    _shovel(broker, _fill(path, topology.vhost, service),
            json.loads(_fill(document, topology.vhost, service)))
    work, dlq = f"{service}.work", f"{service}.dlq"
    assert until(lambda: _depths(broker, topology)[work] == 1)
    depths = _depths(broker, topology)
    assert depths[dlq] == 0 and sum(depths.values()) == 1, depths  # moved, not copied; nothing elsewhere
    connection = _as(broker, topology, service)  # its own consumer reads it again, with its history
    channel = connection.channel()
    method, properties, got = channel.basic_get(work, auto_ack=True)
    connection.close()
    assert method is not None and got == body
    deaths = (properties.headers or {}).get("x-death") or [{}]
    assert deaths[0].get("queue") == work and deaths[0].get("routing-keys") == [key], deaths


def test_republishing_a_dead_letter_to_its_exchange_as_it_is_loses_it(broker: LocalBroker,
                                                                      topology: Topology) -> None:
    """What the README advised before ("republish them to their exchange ..., a dynamic shovel does it"): the
    dead letter's own routing key is ``<svc>.work``, which no binding of the exchange matches."""
    service, _, _ = _dead_letter_one(broker, topology)
    _, exchange, _, _ = _route(topology)
    vhost = quote(topology.vhost, safe="")
    _shovel(broker, f"/api/parameters/shovel/{vhost}/republish-{service}", {"value": {
        "src-protocol": "amqp091", "src-uri": f"amqp:///{vhost}", "src-queue": f"{service}.dlq",
        "dest-protocol": "amqp091", "dest-uri": f"amqp:///{vhost}", "dest-exchange": exchange,
        "src-delete-after": "queue-length"}})
    time.sleep(1)
    assert sum(_depths(broker, topology).values()) == 0  # out of the DLQ, in no queue: lost


def test_the_readme_purge_empties_the_dead_letter_queue(broker: LocalBroker, topology: Topology) -> None:
    service, _, _ = _dead_letter_one(broker, topology)
    broker.management_api("DELETE", _fill(_readme_purge(), topology.vhost, service))
    assert until(lambda: _depths(broker, topology)[f"{service}.dlq"] == 0)


def test_a_replay_that_cannot_start_stays_listed_until_the_readme_deletes_it(broker: LocalBroker,
                                                                           topology: Topology) -> None:
    """A shovel that cannot connect (here its source a closed port instead of the direct ``amqp:///``) is accepted by
    the PUT (``curl --fail`` passes), never drains the DLQ and retries for ever: the README's GET still lists it, and
    its DELETE removes it, leaving the dead letter where it was."""
    service, _, _ = _dead_letter_one(broker, topology)
    path, document = _readme_replay()
    body = json.loads(_fill(document, topology.vhost, service))
    body["value"]["src-uri"] = body["value"]["src-uri"].replace("amqp:///", "amqp://127.0.0.1:1/")
    broker.management_api("PUT", _fill(path, topology.vhost, service), body)
    listed, deleted = _readme_shovel_checks()
    time.sleep(3)
    assert [p["name"] for p in broker.management_api("GET", _fill(listed, topology.vhost, service))] == \
        [f"replay-{service}"]
    broker.management_api("DELETE", _fill(deleted, topology.vhost, service))
    assert until(lambda: not broker.management_api("GET", _fill(listed, topology.vhost, service)))
    assert _depths(broker, topology)[f"{service}.dlq"] == 1
