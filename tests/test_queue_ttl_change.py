"""On a real RabbitMQ: a work queue's ``message-ttl`` changed by its policy (``messaging.message_ttl_ms``, an in-place
policy update) applies to the messages enqueued from then on; those already queued keep the expiry they got when
enqueued (a quorum queue stores it with the message), so a lowered TTL does not expire an old backlog. The env-key
table says so (it said the opposite before)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.rehearse.broker import ADMIN_VHOST, LocalBroker, apply_to_for_version
from tests.test_env_key_changes import readme_table

pytestmark = pytest.mark.broker

QUEUE = "ttl-probe.work"
TTL_MS = 300


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        yield started


def test_a_lowered_ttl_expires_only_what_is_enqueued_after_it(broker: LocalBroker) -> None:
    connection = broker.admin_connection()
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    for _ in range(3):
        channel.basic_publish("", QUEUE, b"before")
    version = tuple(int(part) for part in broker.management_api("GET", "/api/overview")["rabbitmq_version"]
                    .split(".")[:2])
    broker.management_api("PUT", f"/api/policies/{ADMIN_VHOST}/ttl-probe", {
        "pattern": f"^{QUEUE}$", "definition": {"message-ttl": TTL_MS}, "priority": 10,
        "apply-to": apply_to_for_version("quorum_queues", version)})
    channel.basic_publish("", QUEUE, b"after")
    time.sleep(TTL_MS / 1000 * 5)

    delivered = []
    while True:
        method, _properties, body = channel.basic_get(QUEUE, auto_ack=True)
        if method is None:
            break
        delivered.append(body)
    connection.close()
    assert delivered == [b"before"] * 3, "the old messages outlive the new TTL; the one enqueued under it expired"


def test_the_env_key_table_says_a_lowered_ttl_spares_the_queued_messages() -> None:
    (row,) = [line for line in readme_table().splitlines() if line.startswith("| `messaging.message_ttl_ms`")]
    assert "already queued keep theirs" in row and "does not expire an old backlog" in row
