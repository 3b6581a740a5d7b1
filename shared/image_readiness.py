"""Catalog changes that take away what a service's running image may use, or change how its tasks are treated, which
only that image can be ready for.

The catalog is every env's, while images are promoted env by env (``release.images``): a catalog change reaches each
env at its next ``up``, whatever image runs there. Four changes are safe only where the image the env runs is ready:

* a ``publishes`` routing key removed (or an exchange's last key): messaging's ``up`` narrows the service's RabbitMQ
  topic permissions (and, for an exchange's last key, its write permission) before compute runs, and nothing rolls
  the tasks: a task that still publishes the key gets ``ACCESS_REFUSED`` and its channel is closed (RabbitMQ access
  control, "Topic Authorisation"), from its next channel or connection on: an open channel may keep its cached
  verdict (tests/test_publish_narrowing_broker.py);
* a service removed from ``calls``: compute rolls the caller onto a task definition without the callee's
  ``<SVC>_URL`` and Service Connect client, on the same image, which may still call it (in App Mesh envs the mesh
  layer drops the callee from the caller's virtual node backends first);
* ``artifacts`` narrowed (``write`` to ``read``, or removed): compute narrows the task role's policy in place, and an
  image that still writes (or reads) gets AccessDenied;
* ``protects_jobs`` turned on (where the service's queue alone scales it): compute's scale-in removes idle tasks while
  others still work, safe only where the image turns ECS task scale-in protection on while it holds a job, or ECS may
  stop a task in the middle of one (redelivered, and dead-lettered after ``delivery_limit``).

Whether the image an env runs is ready is known to no stack. The orchestrator refuses (exit 2, nothing run) such an
``up`` for each service compute's deployed stack runs, unless it is named with ``--image-ready <service>``; a preview
notes it. What was granted and what compute's last ``up`` gave each service are read back from the deployed stacks
(messaging's :data:`PUBLISH_GRANTS_OUTPUT`, compute's ``services[*]`` ``calls``, ``artifacts`` and
``scales_in_while_working``); a stack deployed before those outputs cannot tell, and passes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from shared.catalog import EXCHANGES, Catalog, ServiceSpec, catalog_path
from shared.envs import EnvConfig, publishes_queue_metrics, scales_in_while_working
from shared.errors import ConfigError, ContractError

#: messaging's output: service -> exchange (the catalog's name: ``requests``, ``events``) -> the routing keys its
#: users may publish there (no entry: none)
PUBLISH_GRANTS_OUTPUT = "publish_grants"
#: the orchestrator's flag that confirms a service's running image is ready for its catalog change
IMAGE_READY_FLAG = "--image-ready"


def publish_grants(catalog: Catalog) -> dict[str, dict[str, list[str]]]:
    """What each broker user of ``catalog``'s services may publish: service -> exchange -> routing keys."""
    return {spec.name: {exchange: list(keys) for exchange in EXCHANGES if (keys := getattr(spec.publishes, exchange))}
            for spec in catalog if spec.uses_messaging}


def _strings(layer: str, output: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ContractError.hand_edited(layer, output, value, "a list of strings")
    return value


def narrowed_publishes(deployed: object, now: Mapping[str, Mapping[str, Sequence[str]]]
                       ) -> dict[str, dict[str, list[str]]]:
    """service -> exchange -> the routing keys ``deployed`` (messaging's :data:`PUBLISH_GRANTS_OUTPUT`) grants and
    ``now`` does not, for the services ``now`` still grants something or nothing (a service removed from the catalog
    is shared.service_removal's). Grants of another form than messaging exports are a ContractError naming them."""
    if not isinstance(deployed, Mapping):
        raise ContractError.hand_edited("messaging", PUBLISH_GRANTS_OUTPUT, deployed,
                                        "a mapping of service to its grants")
    found: dict[str, dict[str, list[str]]] = {}
    for service, exchanges in deployed.items():
        output = f"{PUBLISH_GRANTS_OUTPUT}.{service}"
        if not isinstance(exchanges, Mapping):
            raise ContractError.hand_edited("messaging", output, exchanges, "a mapping of exchange to routing keys")
        for exchange, keys in sorted(exchanges.items()):
            granted = _strings("messaging", f"{output}.{exchange}", keys)
            lost = sorted(set(granted) - set(now[service].get(exchange, ()))) if service in now else []
            if lost:
                found.setdefault(str(service), {})[str(exchange)] = lost
    return found


def _running(compute: Mapping[str, Any] | None) -> Mapping[str, Mapping[str, Any]]:
    """Compute's record of each service it runs (``services``; none for a stack that exports none), each checked to
    be of the form compute writes."""
    services = (compute or {}).get("services")
    if services is None:
        return {}
    if not isinstance(services, Mapping):
        raise ContractError.hand_edited("compute", "services", services, "a mapping of service to its record")
    for service, entry in services.items():
        if not isinstance(entry, Mapping):
            raise ContractError.hand_edited("compute", f"services.{service}", entry, "a mapping")
        _checked(f"services.{service}", entry)
    return services


#: how much of the artifact bucket each catalog ``artifacts`` value reaches
_ARTIFACT_REACH = {"": 0, "read": 1, "write": 2}


def _checked(output: str, entry: Mapping[str, Any]) -> None:
    """ContractError where a record the readiness check reads (absent: a stack from before it) is of another form."""
    if entry.get("calls") is not None:
        _strings("compute", f"{output}.calls", entry["calls"])
    if entry.get("artifacts") is not None and entry["artifacts"] not in _ARTIFACT_REACH:
        raise ContractError.hand_edited("compute", f"{output}.artifacts", entry["artifacts"],
                                        f"one of {sorted(_ARTIFACT_REACH)}")
    if entry.get("scales_in_while_working") is not None and not isinstance(entry["scales_in_while_working"], bool):
        raise ContractError.hand_edited("compute", f"{output}.scales_in_while_working",
                                        entry["scales_in_while_working"], "true or false")


def _ready_hint(env_name: str, service: str, what: str, merged: str) -> str:
    """What to do; ``merged``: the way where the catalog change came first, so an up releasing the image is refused
    too."""
    return (f"The catalog is every env's and images are promoted env by env, so only you know whether the image "
            f"{env_name} runs {what}. Release one that does to {env_name} first (release.images, an up before this "
            f"change), then run this up with `{IMAGE_READY_FLAG} {service}`. Where this catalog change came first: "
            f"{merged}")


#: the way out of a narrowed publish grant merged before the image: compute alone releases it, messaging keeps the grant
_COMPUTE_FIRST = ("`nox -s up -- {env} --layers compute --exact` releases the image while messaging keeps the grant, "
                  "then this up with `" + IMAGE_READY_FLAG + " {service}`")
#: the way out of the other changes merged before the image: compute applies them in the up that releases it
_SET_BACK = "set it back in the catalog until {env} runs a ready image"


def readiness_refusals(catalog: Catalog, env: EnvConfig, layers: Collection[str],
                       read: Callable[[str], Mapping[str, Any] | None], ready: Collection[str]) -> list[ConfigError]:
    """A ConfigError (file: the catalog) per catalog change of a service compute's deployed stack runs that this ``up``
    of ``layers`` would apply under its running image (above) and that ``ready`` does not confirm."""
    calls = "compute" in layers or ("mesh" in layers and env.mesh.provider == "appmesh")
    if "messaging" not in layers and not calls:
        return []  # a run that applies none of them reads no stack
    env_name, file = env.name, str(catalog_path())
    running = _running(read("compute"))
    refusals: list[ConfigError] = []
    deployed = (read("messaging") or {}).get(PUBLISH_GRANTS_OUTPUT) if "messaging" in layers and running else None
    if deployed is not None:
        for service, exchanges in narrowed_publishes(deployed, publish_grants(catalog)).items():
            if service not in running or service in ready:
                continue
            for exchange, keys in exchanges.items():
                refusals.append(ConfigError(file, f"services.{service}.publishes.{exchange}", (
                    f"no longer lists {', '.join(keys)}, which messaging's deployed grants let {service} publish to "
                    f"the {exchange} exchange. This up narrows the grant before, and without, any roll of the tasks "
                    f"{env_name} runs: a task that still publishes one gets ACCESS_REFUSED and its channel is closed "
                    "(from its next channel or connection, so possibly long after this up). "
                    + _ready_hint(env_name, service, "no longer publishes them",
                                  _COMPUTE_FIRST.format(env=env_name, service=service)))))
    # compute applies calls, artifacts and scale-in (in App Mesh envs the mesh layer narrows a caller's backends first)
    queue_metrics = publishes_queue_metrics(env)
    for service, entry in sorted(running.items()):
        if service in catalog.names() and service not in ready:
            refusals += _compute_refusals(file, env_name, catalog[service], entry, layers, calls,
                                          scales_in_while_working(catalog[service], catalog, queue_metrics))
    return refusals


def _compute_refusals(file: str, env_name: str, spec: ServiceSpec, entry: Mapping[str, Any], layers: Collection[str],
                      calls: bool, scales_in: bool) -> list[ConfigError]:
    """What of ``spec`` (the catalog's; ``scales_in``: whether its scale-in now removes idle tasks while others work)
    this up of ``layers`` (``calls``: one that applies a caller's callees) takes away from, or changes under, the
    running tasks compute's last ``up`` gave ``entry`` (its record in compute's ``services`` output)."""
    service, refusals = spec.name, []
    called = entry.get("calls") if calls else None
    dropped = sorted(set(called) - set(spec.calls)) if called is not None else []
    if dropped:
        refusals.append(ConfigError(file, f"services.{service}.calls", (
            f"no longer lists {', '.join(dropped)}, which the tasks {env_name} runs were given. This up rolls "
            f"{service} onto a task definition without {'their' if len(dropped) > 1 else 'its'} <SVC>_URL and mesh "
            "client (Service Connect, or its App Mesh backend), on the image it runs now: a call it still makes fails. "
            + _ready_hint(env_name, service, f"no longer calls {', '.join(dropped)}",
                          _SET_BACK.format(env=env_name)))))
    if "compute" not in layers:
        return refusals
    artifacts = entry.get("artifacts")
    if artifacts is not None and _ARTIFACT_REACH[artifacts] > _ARTIFACT_REACH[spec.artifacts or ""]:
        refusals.append(ConfigError(file, f"services.{service}.artifacts", (
            f"is {spec.artifacts or 'unset'}, but the tasks {env_name} runs were given {artifacts} access to the "
            "artifact bucket. This up narrows the task role's policy in place: a read or write beyond it gets "
            "AccessDenied. " + _ready_hint(env_name, service, f"no longer needs {artifacts} access",
                                           _SET_BACK.format(env=env_name)))))
    if scales_in and entry.get("scales_in_while_working") is False:
        refusals.append(ConfigError(file, f"services.{service}.protects_jobs", (
            f"is true, but compute's last up scales {service} in only once no task holds a job (the flag was off, or "
            "the env published no queue metrics: an external broker). This up makes its idle tasks leave while others "
            "still work, at once and without a roll of its tasks: safe only where the "
            "running image turns ECS task scale-in protection on while it holds a job, or ECS may stop a task in the "
            "middle of one (redelivered, then dead-lettered after delivery_limit). "
            + _ready_hint(env_name, service, "protects its working tasks", _SET_BACK.format(env=env_name)))))
    return refusals
