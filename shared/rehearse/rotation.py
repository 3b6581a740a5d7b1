"""A service credentials rotation on a real RabbitMQ, as ``up`` applies it to running tasks.

ECS reads a task's secrets only when the task starts, so a task keeps the user and password it started with
until it stops. A rotation (a new ``messaging.credentials_rotation.epoch``) is applied by messaging's ``up``
first and rolled out by compute's ``up`` after it: in between, and whenever a service's rollout is rolled back
by the deployment circuit breaker, tasks that started with the previous credentials are still running, and they
reconnect (a broker restart or failover, a closed connection) with those credentials.

:func:`apply_update` changes a broker from one synthesized topology to the next the way the RabbitMQ provider
does (users and permissions created or updated, users the new program no longer declares deleted; RabbitMQ
closes a deleted user's connections with ``CONNECTION_FORCED``). :func:`check_rotation` holds each service to
what a running task needs across that update: its open connection survives, and a reconnect with the
credentials it started with is still accepted, with the grants of its service's new credentials.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pika
import pika.exceptions
import yaml
from pika.adapters.blocking_connection import BlockingConnection

from shared.envs import active_env_dir, env_dir, load_env
from shared.rehearse.broker import LocalBroker
from shared.rehearse.definitions import ServiceCredentials, Topology, to_definitions
from shared.yamlio import load_yaml_mapping


def apply_update(broker: LocalBroker, before: Topology, after: Topology) -> None:
    """What messaging's ``up`` does to ``broker``'s users going from ``before`` to ``after``: import ``after``
    (creates users, sets changed passwords in place, grants permissions), then delete every user only ``before``
    declares (``DELETE /api/users/<name>``, the provider's delete)."""
    broker.import_definitions(to_definitions(after))
    kept = {user.name for user in after.users}
    for user in before.users:
        if user.name not in kept:
            broker.management_api("DELETE", f"/api/users/{quote(user.name, safe='')}")


def _grants(topology: Topology, user: str) -> tuple[object, ...]:
    """``user``'s permissions and topic permissions in ``topology``, without the user's name."""
    return (tuple(sorted((p.vhost, p.configure, p.write, p.read) for p in topology.permissions if p.user == user)),
            tuple(sorted((p.vhost, p.exchange, p.write, p.read)
                         for p in topology.topic_permissions if p.user == user)))


@contextmanager
def _connections(broker: LocalBroker, credentials: dict[str, ServiceCredentials],
                 ) -> Iterator[dict[str, BlockingConnection]]:
    opened: dict[str, BlockingConnection] = {}
    try:
        for service, creds in sorted(credentials.items()):
            opened[service] = broker.connect(creds.username, creds.password, creds.vhost)
        yield opened
    finally:
        for connection in opened.values():
            if connection.is_open:
                try:
                    connection.close()
                except pika.exceptions.AMQPError:
                    pass


def _usable(connection: BlockingConnection) -> str | None:
    """None when ``connection`` still carries a channel, else why not."""
    try:
        connection.process_data_events(0.2)
        connection.channel().close()
    except pika.exceptions.AMQPError as error:
        return f"{type(error).__name__} {error}"
    return None if connection.is_open else "closed"


def check_rotation(broker: LocalBroker, before: Topology, after: Topology) -> list[str]:
    """Problems a running system meets when ``after`` (the next rotation's synth) is applied over ``before``:
    every service connects with ``before``'s credentials (its running tasks), the update is applied, and then
    each task's connection must still work, a reconnect with its credentials must be accepted, with the same
    grants as the new credentials, and the new credentials must log in. Empty: nothing broke."""
    problems: list[str] = []
    broker.import_definitions(to_definitions(before))
    with _connections(broker, before.credentials) as running:
        apply_update(broker, before, after)
        for service, connection in sorted(running.items()):
            old = before.credentials[service]
            if (why := _usable(connection)) is not None:
                problems.append(f"rotation broke: {service}'s running connection as {old.username} did not survive "
                                f"the update ({why})")
            try:
                broker.connect(old.username, old.password, old.vhost).close()
            except pika.exceptions.AMQPError as error:
                problems.append(f"rotation broke: {service} cannot reconnect with the credentials its running tasks "
                                f"started with ({old.username}): {type(error).__name__} {error}")
            new = after.credentials.get(service)
            if new is None:
                problems.append(f"rotation broke: {service} has no credentials after the update")
                continue
            if new.username != old.username and _grants(after, old.username) != _grants(after, new.username):
                problems.append(f"rotation broke: {old.username} (running tasks) and {new.username} (new tasks) "
                                "are granted different permissions")
            try:
                broker.connect(new.username, new.password, new.vhost).close()
            except pika.exceptions.AMQPError as error:
                problems.append(f"rotation broke: {service}'s new credentials ({new.username}) do not log in: "
                                f"{type(error).__name__} {error}")
    return problems


def next_rotation(env: str) -> tuple[date, date] | None:
    """(epoch, previous_epoch) of ``env``'s next rotation, done as README says (the epoch when the current one is
    due, the current one as ``previous_epoch``); None for an env without ``credentials_rotation``."""
    rotation = load_env(env).messaging.credentials_rotation
    return None if rotation is None else (rotation.due, rotation.epoch)


def rotated_topology(env: str) -> Topology:
    """``env``'s messaging topology after its next rotation (:func:`next_rotation`), synthesized from a scratch copy
    of the env files (the originals are not touched)."""
    from shared.rehearse import synthesized_topology

    rotation = next_rotation(env)
    if rotation is None:
        raise ValueError(f"env {env!r} has no messaging.credentials_rotation")
    epoch, previous = rotation
    with tempfile.TemporaryDirectory(prefix="rehearse-rotation-") as scratch:
        directory = Path(scratch)
        for path in env_dir().glob("*.yaml"):
            shutil.copy2(path, directory / path.name)
        target = directory / f"{env}.yaml"
        data = load_yaml_mapping(target)
        data["messaging"]["credentials_rotation"].update(epoch=epoch.isoformat(), previous_epoch=previous.isoformat())
        target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        with active_env_dir(directory):
            return synthesized_topology(env)
