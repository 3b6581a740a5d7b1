"""Rehearse an env's messaging layer on a real RabbitMQ: ``python -m shared.rehearse ENV``.

1. synthesize the messaging layer (:func:`shared.synth.engine.synth_env`), read its RabbitMQ
   objects, users, permissions and the services' Secrets Manager credentials
   (:func:`~shared.rehearse.definitions.topology_from_synth`);
2. write them as RabbitMQ definitions to ``build/ENV/rabbitmq-definitions.json`` (loadable into any
   local broker for development; the matching local credentials go to
   ``build/ENV/rabbitmq-credentials.json``: they are the synth's stand-in passwords, never real ones);
3. start a throwaway RabbitMQ on loopback (:class:`~shared.rehearse.broker.LocalBroker`), import the
   definitions, and run the checks (:mod:`shared.rehearse.checks`) with each service's own
   credentials, including an in-place change of a work queue's policies through the management API;
   a policy key the local node refuses (``consumer-timeout`` before RabbitMQ 3.12: Debian's 3.10 here) is
   left out on that node and listed in the report as not proven, never dropped silently; then the env's next
   credentials rotation, applied as ``up`` would, with a connection per service open across it
   (:mod:`shared.rehearse.rotation`);
4. print the route table, the access matrix and the policy change, stop the broker, exit 0 or 1.

Locally the services connect with plain AMQP on 127.0.0.1 (no TLS); everything else -- users,
passwords, vhost, permissions, objects -- is what the layer would create on the real broker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import REPO_ROOT
from shared.amazonmq import broker_consumer_timeout_ms
from shared.catalog import Catalog, load_catalog
from shared.envs import load_env
from shared.rehearse.broker import LocalBroker
from shared.rehearse.checks import RehearsalReport, run_checks
from shared.rehearse.definitions import Topology, dumps_definitions, to_definitions, topology_from_synth
from shared.rehearse.restart import check_restart
from shared.rehearse.rotation import check_rotation, next_rotation, rotated_topology

__all__ = ["RehearsalReport", "Topology", "build_dir", "rehearse", "synthesized_topology", "write_artifacts"]


def build_dir(env: str) -> Path:
    return REPO_ROOT / "build" / env


def synthesized_topology(env: str) -> Topology:
    """The messaging topology of ``env`` as the layer program registers it (offline synth)."""
    from shared.synth.engine import synth_env

    return topology_from_synth(synth_env(env, ["messaging"])["messaging"])


def local_credentials(topology: Topology, port: int = 5672) -> dict[str, Any]:
    return {
        service: {"username": c.username, "password": c.password, "vhost": c.vhost,
                  "url": f"amqp://{c.username}:{c.password}@127.0.0.1:{port}/{c.vhost}"}
        for service, c in sorted(topology.credentials.items())
    }


def write_artifacts(env: str, topology: Topology, directory: Path | None = None) -> Path:
    """``rabbitmq-definitions.json`` (+ the local credentials) under ``build/ENV``; returns the definitions path."""
    directory = directory or build_dir(env)
    from shared.cli import write_atomically

    path = directory / "rabbitmq-definitions.json"
    credentials = directory / "rabbitmq-credentials.json"
    # both or neither (a folder in one's place is exit 2's error naming it, before either is written)
    write_atomically({path: dumps_definitions(to_definitions(topology)),
                      credentials: json.dumps(local_credentials(topology), indent=2, sort_keys=True) + "\n"})
    credentials.chmod(0o600)
    return path


def rehearse(env: str, *, broker: LocalBroker | None = None, topology: Topology | None = None,
             catalog: Catalog | None = None) -> RehearsalReport:
    """Load ``topology`` (default: the synthesized one) into ``broker`` (default: a fresh local one,
    stopped afterwards) and check it against ``catalog`` (default: the catalog in force)."""
    topology = topology or synthesized_topology(env)
    catalog = catalog or load_catalog()
    if broker is not None:
        broker.import_definitions(to_definitions(topology))
        return run_checks(broker, topology, catalog, env)
    # The node runs with the broker-wide consumer timeout the env's Amazon MQ broker gets (shared.components.broker);
    # the work queues' own consumer-timeout keys are in their policies (left out on a node that refuses them).
    engine_version = load_env(env).messaging.engine_version
    rotation = next_rotation(env)
    after = rotated_topology(env) if rotation is not None else None
    with LocalBroker(consumer_timeout_ms=broker_consumer_timeout_ms(catalog, engine_version)) as own_broker:
        own_broker.import_definitions(to_definitions(topology))
        report = run_checks(own_broker, topology, catalog, env)
        # The broker's weekly maintenance restart (README, "Maintenance window"): nothing queued or defined is lost.
        report.restart_problems = check_restart(own_broker, topology)
        report.restarted = True
        if rotation is not None and after is not None:
            # Last: it changes the users the checks above log in as (the next rotation, as up would apply it).
            report.rotation = f"epoch {rotation[0]}, previous_epoch {rotation[1]}"
            report.rotation_problems = check_rotation(own_broker, topology, after)
        return report
