"""On a real RabbitMQ: a narrowed topic permission (a ``publishes`` key removed from the catalog, which messaging's
``up`` applies in place) refuses the removed key on the next channel or connection the running tasks open, while the
keys left still pass. An open channel may keep its cached verdict for a while (RabbitMQ caches access checks per
channel), so the failure can come later than the ``up``: at a reconnect, or when the app opens a channel. This is why
``up`` refuses such a change until the service is named with ``--image-ready`` (shared.image_readiness)."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from shared.rehearse.broker import LocalBroker

pytestmark = pytest.mark.broker

VHOST, USER, PASSWORD, EXCHANGE = "narrowing-probe", "probe", "probe-password", "ml.requests"


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        started.management_api("PUT", f"/api/vhosts/{VHOST}")
        started.management_api("PUT", f"/api/users/{USER}", {"password": PASSWORD, "tags": ""})
        # as messaging grants a publisher: write on the exchange, nothing to configure or read
        started.management_api("PUT", f"/api/permissions/{VHOST}/{USER}",
                               {"configure": "", "write": r"^ml\.requests$", "read": ""})
        started.management_api("PUT", f"/api/exchanges/{VHOST}/{EXCHANGE}", {"type": "topic", "durable": True})
        yield started


def grant(broker: LocalBroker, keys: str) -> None:
    broker.management_api("PUT", f"/api/topic-permissions/{VHOST}/{USER}",
                          {"exchange": EXCHANGE, "write": f"^({keys})$", "read": ".*"})


def publish(channel: pika.adapters.blocking_connection.BlockingChannel, key: str) -> str | None:
    """None when the broker took it, else the broker's refusal (the channel is closed then)."""
    try:
        channel.basic_publish(EXCHANGE, key, b"job")
    except ChannelClosedByBroker as refused:
        return f"{refused.reply_code} {refused.reply_text}"
    return None


def confirmed_channel(connection: pika.BlockingConnection) -> pika.adapters.blocking_connection.BlockingChannel:
    channel = connection.channel()
    channel.confirm_delivery()  # a refusal closes the channel before the confirm: basic_publish raises it
    return channel


def test_a_removed_key_is_refused_from_the_next_channel_on_and_the_kept_keys_pass(broker: LocalBroker) -> None:
    grant(broker, r"a\.request|b\.request")
    running = broker.connect(USER, PASSWORD, VHOST)  # a task started before the up
    open_channel = confirmed_channel(running)
    assert publish(open_channel, "b.request") is None

    grant(broker, r"a\.request")  # the up: b.request left the catalog
    on_open_channel = publish(open_channel, "b.request")
    assert on_open_channel is None or on_open_channel.startswith("403 ACCESS_REFUSED")  # cached, or refused at once

    refused = publish(confirmed_channel(running), "b.request")
    assert refused is not None and refused.startswith("403 ACCESS_REFUSED") and "b.request" in refused
    reconnected = broker.connect(USER, PASSWORD, VHOST)
    assert (publish(confirmed_channel(reconnected), "b.request") or "").startswith("403 ACCESS_REFUSED")
    assert publish(confirmed_channel(reconnected), "a.request") is None
    reconnected.close()
    running.close()
