"""The broker's maintenance restart, rehearsed: what Amazon MQ does to a broker in its weekly window (a node restart:
README, "Maintenance window") must lose no queued message and no definition, and each service must get back in with
the credentials it started with (README, "What a service's image must provide": it reconnects with backoff).

On the rehearsal's node: a marker message in each work queue, a connection per consuming service, then the RabbitMQ
application restarted (``rabbitmqctl stop_app`` / ``start_app``: every connection closed, the queues recovered from
disk). Afterwards the old connections must be gone, the definitions of the env's vhost (exchanges, queues, bindings,
policies, users, permissions) the same, each service's reconnect accepted, and each consumer must read its marker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from shared.rehearse.broker import ADMIN_USER, LocalBroker
from shared.rehearse.definitions import Topology

WORK_SUFFIX = ".work"
#: Definition sections of the vhost a restart must leave as they were (the management API's GET /api/definitions).
_VHOST_SECTIONS = ("exchanges", "queues", "bindings", "policies", "permissions", "topic_permissions")


def _consumers(topology: Topology) -> dict[str, str]:
    """service -> its work queue, for every consuming service with credentials."""
    return {queue[: -len(WORK_SUFFIX)]: queue for queue in topology.queue_names()
            if queue.endswith(WORK_SUFFIX) and queue[: -len(WORK_SUFFIX)] in topology.credentials}


def _vhost_definitions(broker: LocalBroker, vhost: str) -> dict[str, Any]:
    """The vhost's definitions and the users, order-independent (the rehearsal's own administrator left out)."""
    everything = broker.management_api("GET", "/api/definitions") or {}

    def key(item: Mapping[str, Any]) -> str:
        return repr(sorted(item.items()))

    kept: dict[str, Any] = {section: sorted((item for item in everything.get(section, [])
                                             if item.get("vhost") == vhost and item.get("user") != ADMIN_USER), key=key)
                            for section in _VHOST_SECTIONS}
    kept["users"] = sorted((user["name"], user.get("tags"), user.get("password_hash"))
                           for user in everything.get("users", []) if user["name"] != ADMIN_USER)
    kept["vhosts"] = [v for v in everything.get("vhosts", []) if v.get("name") == vhost]
    return kept


def _closed(connection: BlockingConnection) -> bool:
    """Whether the broker closed ``connection`` (pika learns it when it next reads the socket)."""
    try:
        connection.process_data_events(time_limit=0.5)
    except (pika.exceptions.AMQPError, OSError):
        return True
    return not connection.is_open


def _restart(broker: LocalBroker, timeout: float = 90.0) -> str | None:
    """Restart the node's RabbitMQ application; why it did not come back (None: it did)."""
    broker.rabbitmqctl("stop_app")
    broker.rabbitmqctl("start_app")
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            broker.admin_connection().close()
            broker.management_api("GET", "/api/overview")
            return None
        except (pika.exceptions.AMQPError, OSError) as error:
            last = f"{type(error).__name__} {error}"
            time.sleep(0.25)
    return f"the node did not accept connections {timeout:.0f}s after its restart ({last})"


def check_restart(broker: LocalBroker, topology: Topology) -> list[str]:
    """Restart ``broker`` as a maintenance window does and say what broke (empty: nothing)."""
    vhost = topology.vhost
    consumers = _consumers(topology)
    problems: list[str] = []
    markers: dict[str, str] = {}
    admin = broker.connect(ADMIN_USER, broker.admin_password, vhost)
    try:
        channel = admin.channel()
        channel.confirm_delivery()
        for queue in consumers.values():
            channel.queue_purge(queue)
            markers[queue] = uuid.uuid4().hex
            channel.basic_publish("", queue, b'{"maintenance": true}',
                                  pika.BasicProperties(message_id=markers[queue], delivery_mode=2), mandatory=True)
    finally:
        admin.close()
    before = _vhost_definitions(broker, vhost)
    held: dict[str, BlockingConnection] = {}
    for service in consumers:
        credentials = topology.credentials[service]
        held[service] = broker.connect(credentials.username, credentials.password, credentials.vhost)

    stuck = _restart(broker)
    if stuck:
        return [f"maintenance restart broke: {stuck}"]

    for service, connection in held.items():
        if not _closed(connection):
            problems.append(f"maintenance restart broke: {service}'s connection from before the restart is still "
                            "open (the rehearsal did not restart the node)")
    after = _vhost_definitions(broker, vhost)
    for section in sorted(set(before) | set(after)):
        if before.get(section) != after.get(section):
            problems.append(f"maintenance restart broke: the {section} of vhost {vhost} changed across the restart")
    for service, queue in consumers.items():
        credentials = topology.credentials[service]
        try:
            connection = broker.connect(credentials.username, credentials.password, credentials.vhost)
        except pika.exceptions.AMQPError as error:
            problems.append(f"maintenance restart broke: {service} cannot reconnect as {credentials.username} with "
                            f"the credentials it started with ({type(error).__name__} {error})")
            continue
        try:
            method, properties, _ = connection.channel().basic_get(queue, auto_ack=True)
            if method is None or properties.message_id != markers[queue]:
                problems.append(f"maintenance restart broke: {service} found no longer the message {queue} held "
                                "before the restart (lost)")
        except pika.exceptions.ChannelClosedByBroker as error:
            problems.append(f"maintenance restart broke: {service} cannot read {queue} after the restart "
                            f"({error.reply_code} {error.reply_text})")
        finally:
            if connection.is_open:
                connection.close()
    for connection in held.values():
        if connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                pass
    return problems
