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


def test_a_delivery_returned_after_the_ttl_is_dead_lettered_not_delivered_again(broker: LocalBroker) -> None:
    """Why the loader holds ``messaging.message_ttl_ms`` to ``delivery_limit`` tries of the longest job
    (shared/envs.py, _rule_ttl_covers_retries): a consumer holds a delivery past the TTL (a long job) and stops
    without acking (its channel closes, as when its task stops). The delivery returns with its first expiry, already
    past, and the queue dead-letters it as expired: its next try never happens."""
    queue, dead_letters, exchange = "ttl-return.work", "ttl-return.dlq", "ttl-return.dead-letter"
    connection = broker.admin_connection()
    channel = connection.channel()
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.queue_declare(dead_letters, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(dead_letters, exchange, queue)
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    version = tuple(int(part) for part in broker.management_api("GET", "/api/overview")["rabbitmq_version"]
                    .split(".")[:2])
    broker.management_api("PUT", f"/api/policies/{ADMIN_VHOST}/ttl-return", {
        "pattern": f"^{queue}$", "priority": 10, "apply-to": apply_to_for_version("quorum_queues", version),
        "definition": {"message-ttl": TTL_MS * 4, "dead-letter-exchange": exchange,
                       "dead-letter-routing-key": queue, "delivery-limit": 5}})
    time.sleep(0.5)  # the policy reaches the queue
    channel.basic_publish("", queue, b"job")
    worker = connection.channel()
    body = None
    for _ in range(50):  # a quorum queue takes the publish a moment later
        method, _properties, body = worker.basic_get(queue, auto_ack=False)
        if method is not None:
            break
        time.sleep(0.05)
    assert body == b"job"
    time.sleep(TTL_MS * 4 / 1000 * 2)  # the job runs past the TTL
    worker.close()  # the task stops: the delivery returns to its queue
    deadline = time.monotonic() + 10
    dead = None
    while dead is None and time.monotonic() < deadline:
        method, properties, body = channel.basic_get(dead_letters, auto_ack=True)
        dead = (body, properties.headers) if method is not None else None
        if dead is None:
            time.sleep(0.2)
    again = channel.basic_get(queue, auto_ack=True)
    connection.close()
    assert again[0] is None, "the returned job was delivered again"
    assert dead is not None and dead[0] == b"job", "the returned job is neither in its queue nor dead-lettered"
    assert dead[1]["x-death"][0]["reason"] == "expired"
