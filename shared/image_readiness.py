"""Catalog changes that reach a service's running tasks without a roll, which only its running image can be ready for.

Two catalog keys change what a service's running tasks may, or must, do at each env's next ``up``, and compute rolls
none of them for it:

* removing a ``publishes`` routing key (or an exchange's last key) narrows the service's RabbitMQ topic permissions
  (and, for an exchange's last key, its write permission) in messaging's ``up``, which runs before compute: a running
  task that still publishes the key gets ``ACCESS_REFUSED`` and its channel is closed (RabbitMQ access control,
  "Topic Authorisation"). Nothing of compute changes, so the tasks run on.
* turning ``protects_jobs`` on makes compute's scale-in remove idle tasks while others still work: safe only where the
  running image turns ECS task scale-in protection on while it holds a job, or ECS may stop a task in the middle of
  one (redelivered, and dead-lettered after ``delivery_limit``).

The catalog is every env's, while images are promoted env by env (``release.images``), so whether the image an env
runs is ready is known to no stack. The orchestrator refuses (exit 2, nothing run) such an ``up`` for each service
compute's deployed stack runs, unless it is named with ``--image-ready <service>``; a preview notes it. What was
granted and what compute's last ``up`` scaled by are read back from the deployed stacks (messaging's
:data:`PUBLISH_GRANTS_OUTPUT`, compute's ``services[*].protects_jobs``); a stack deployed before those outputs cannot
tell, and passes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from shared.catalog import EXCHANGES, Catalog, catalog_path
from shared.errors import ConfigError

#: messaging's output: service -> exchange (the catalog's name: ``requests``, ``events``) -> the routing keys its
#: users may publish there (no entry: none)
PUBLISH_GRANTS_OUTPUT = "publish_grants"
#: the orchestrator's flag that confirms a service's running image is ready for its catalog change
IMAGE_READY_FLAG = "--image-ready"


def publish_grants(catalog: Catalog) -> dict[str, dict[str, list[str]]]:
    """What each broker user of ``catalog``'s services may publish: service -> exchange -> routing keys."""
    return {spec.name: {exchange: list(keys) for exchange in EXCHANGES if (keys := getattr(spec.publishes, exchange))}
            for spec in catalog if spec.uses_messaging}


def narrowed_publishes(deployed: Mapping[str, Any], now: Mapping[str, Mapping[str, Sequence[str]]]
                       ) -> dict[str, dict[str, list[str]]]:
    """service -> exchange -> the routing keys ``deployed`` grants and ``now`` does not, for the services ``now``
    still grants something or nothing (a service removed from the catalog is shared.service_removal's)."""
    found: dict[str, dict[str, list[str]]] = {}
    for service, exchanges in deployed.items():
        if service not in now or not isinstance(exchanges, Mapping):
            continue
        for exchange, keys in sorted(exchanges.items()):
            lost = sorted(set(map(str, keys if isinstance(keys, list) else ())) - set(now[service].get(exchange, ())))
            if lost:
                found.setdefault(str(service), {})[str(exchange)] = lost
    return found


def _running(compute: Mapping[str, Any] | None) -> Mapping[str, Any]:
    services = (compute or {}).get("services")
    return services if isinstance(services, Mapping) else {}


def _ready_hint(env_name: str, service: str, what: str) -> str:
    return (f"The catalog is every env's and images are promoted env by env, so only you know whether the image "
            f"{env_name} runs {what}. Release one that does to {env_name} first (release.images, an up before this "
            f"change), then run this up with `{IMAGE_READY_FLAG} {service}`")


def readiness_refusals(catalog: Catalog, env_name: str, layers: Collection[str],
                       read: Callable[[str], Mapping[str, Any] | None], ready: Collection[str]) -> list[ConfigError]:
    """A ConfigError (file: the catalog) per catalog change of a service compute's deployed stack runs that reaches its
    running tasks in this ``up`` of ``layers`` without a roll, and that ``ready`` does not confirm."""
    if "messaging" not in layers and "compute" not in layers:
        return []
    file = str(catalog_path())
    running = _running(read("compute"))
    refusals: list[ConfigError] = []
    deployed = (read("messaging") or {}).get(PUBLISH_GRANTS_OUTPUT) if "messaging" in layers and running else None
    if isinstance(deployed, Mapping):
        for service, exchanges in narrowed_publishes(deployed, publish_grants(catalog)).items():
            if service not in running or service in ready:
                continue
            for exchange, keys in exchanges.items():
                refusals.append(ConfigError(file, f"services.{service}.publishes.{exchange}", (
                    f"no longer lists {', '.join(keys)}, which messaging's deployed grants let {service} publish to "
                    f"the {exchange} exchange. This up narrows the grant before, and without, any roll of the tasks "
                    f"{env_name} runs: a task that still publishes one gets ACCESS_REFUSED and its channel is closed. "
                    + _ready_hint(env_name, service, "no longer publishes them"))))
    if "compute" in layers:
        for service, entry in sorted(running.items()):
            if (service in catalog.names() and catalog[service].protects_jobs and service not in ready
                    and isinstance(entry, Mapping) and entry.get("protects_jobs") is False):
                refusals.append(ConfigError(file, f"services.{service}.protects_jobs", (
                    f"is true, but compute's last up scales {service} in only once its queue is empty. This up makes "
                    "its idle tasks leave while others still work, at once and without a roll of its tasks: safe only "
                    "where the running image turns ECS task scale-in protection on while it holds a job, or ECS may "
                    "stop a task in the middle of one (redelivered, then dead-lettered after delivery_limit). "
                    + _ready_hint(env_name, service, "protects its working tasks"))))
    return refusals
