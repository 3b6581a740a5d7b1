"""A catalog service removed while its ECS service still runs: which layers of an ``up`` would pull its resources from
under its running tasks.

``up`` runs the layers in DAG order, compute last. A service removed from ``shared/catalog.yaml`` loses its entries in
every layer at once, so the layers before compute delete what its tasks still use, and compute deletes the ECS service
only afterwards (and, when compute's own preview is refused, e.g. for the service's repository or log group, never in
that run):

* messaging deletes its RabbitMQ user (RabbitMQ closes the user's connections), its credentials secret (a task ECS
  starts then fails to read it: ``ResourceInitializationError``) and its work queue and DLQ (a consumer's channel is
  cancelled);
* App Mesh envs: discovery deletes its Cloud Map service, where ECS registered its tasks (``force_destroy``
  deregisters them; where the env protects state, Cloud Map refuses: ``ResourceInUse``, "The specified resource is in
  use", botocore servicediscovery model, DeleteService), and mesh deletes its virtual node, whose name its Envoy
  proxies ask App Mesh for.

A service that stays but stops consuming (its last ``consumes`` key) or stops using the broker (its last key of
both) is the same case within messaging: its ``up`` deletes the work queue and DLQ (or the user and secret) while the
running tasks still consume it (hold them), compute rolls them off only afterwards. Compute's ``services`` output says
what the running task definitions were given (``amqp_queue``, ``amqp_credentials``); :func:`check_consumers` refuses
such an ``up`` the same way, naming the compute-first run (compute's new task definitions no longer name the queue or
the secret). A compute stack deployed before those fields cannot tell: a note.

The order a removal needs is the reverse one: compute first. The orchestrator compares the catalog with the deployed
stacks' outputs (compute's ``services``: the ECS services it runs; the earlier layers' per-service entries) before any
layer runs, and refuses such an ``up`` (exit 2) with the two runs that remove a service in that order
(:func:`removal_refusal`); a preview notes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError, display_path

#: per earlier layer: its output keyed by catalog service, and what its ``up`` deletes of a removed service
_EARLIER: dict[str, tuple[tuple[str, str], ...]] = {
    "discovery": (("services", "its Cloud Map service, in which ECS registered its tasks (deregistered, or, where "
                               "the env protects state, the delete fails with ResourceInUse)"),),
    "mesh": (("services", "its App Mesh virtual node and virtual service, which its Envoy proxies read"),),
    "messaging": (("service_secret_arns", "its RabbitMQ user (RabbitMQ closes its connections) and its credentials "
                                          "secret (a task ECS starts cannot read it)"),
                  ("queues", "its work queue and DLQ, which its consumers read")),
}

OutputsReader = Callable[[str, EnvConfig], Mapping[str, Any] | None]


def _entries(outputs: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = (outputs or {}).get(key)
    return value if isinstance(value, Mapping) else {}


def running_removed(catalog_names: Sequence[str], compute_outputs: Mapping[str, Any] | None) -> dict[str, str]:
    """service -> its ECS service name, for each service compute's deployed stack runs that the catalog no longer
    has."""
    running = _entries(compute_outputs, "services")
    return {service: str((entry or {}).get("ecs_service_name", service)) if isinstance(entry, Mapping) else service
            for service, entry in running.items() if service not in catalog_names}


def earlier_deletions(service: str, layers: Sequence[str], read: Callable[[str], Mapping[str, Any] | None],
                      ) -> list[tuple[str, str]]:
    """(layer, what it deletes) for each layer of ``layers`` before compute whose deployed outputs still hold an entry
    of ``service`` (``read``: a layer's deployed outputs). App Mesh entries only where the mesh is App Mesh."""
    found: list[tuple[str, str]] = []
    for layer in layers:
        if layer == "compute":
            break
        if layer not in _EARLIER:
            continue
        outputs = read(layer)
        if layer == "mesh" and (outputs or {}).get("provider") != "appmesh":
            continue  # Service Connect: the mesh layer creates no AWS resource per service
        found.extend((layer, what) for key, what in _EARLIER[layer] if service in _entries(outputs, key))
    return found


def removal_refusal(env: EnvConfig, catalog_file: str, service: str, ecs_service: str, compute_stack: str,
                    deletions: Sequence[tuple[str, str]]) -> ConfigError:
    """Why ``up`` of ``env`` must not run as planned, and the two runs that remove ``service`` compute first."""
    layers = ", ".join(dict.fromkeys(layer for layer, _ in deletions))
    what = "; ".join(f"{layer} deletes {item}" for layer, item in deletions)
    env_file = display_path(str(env_path(env.name)))
    return ConfigError(catalog_file, f"services.{service}", (
        f"removed from the catalog, but {env.name}'s compute stack ({compute_stack}) still runs its ECS service "
        f"{ecs_service}, and this up runs {layers} before compute: {what}, while its tasks still run; compute would "
        f"delete the ECS service only after that (not at all in this run if its own preview is refused). Nothing was "
        f"run. Remove its tasks first: `nox -s up -- {env.name} --layers compute --exact` (compute alone, with the "
        f"catalog as it is now: it deletes {service}'s ECS service, task definition, roles, log group and "
        f"repository, and rolls its callers; the layers before it keep {service}'s entries until the next run), then "
        f"`nox -s up -- {env.name}`. Or keep the entry until every env has stopped the service: restore it, remove "
        f"release.images.{service} from {env_file}, run `nox -s up -- {env.name}` (compute deletes the ECS service, "
        f"its roles and log group; nothing before compute changes), then remove the entry. Each run asks "
        f"--allow-replace for what holds data. A rename is an addition and a removal: add the new name beside the old "
        f"one, move its callers and publishers to it, then remove the old one (README, \"Remove (or rename) a "
        f"service\")"))


def check_removals(env: EnvConfig, catalog_names: Sequence[str], catalog_file: str, layers: Sequence[str],
                   compute_stack: str, read: Callable[[str], Mapping[str, Any] | None]) -> list[ConfigError]:
    """One refusal per catalog service that compute's deployed stack still runs, that the catalog no longer has, and
    whose entries a layer of ``layers`` run before compute would delete."""
    if not any(layer in _EARLIER for layer in layers):
        return []
    refusals = []
    for service, ecs_service in running_removed(catalog_names, read("compute")).items():
        deletions = earlier_deletions(service, layers, read)
        if deletions:
            refusals.append(removal_refusal(env, catalog_file, service, ecs_service, compute_stack, deletions))
    return refusals


def consumer_refusal(env: EnvConfig, catalog_file: str, service: str, ecs_service: str, compute_stack: str,
                     deleted: Sequence[str]) -> ConfigError:
    """Why ``up`` of ``env`` must not run messaging before compute: ``service`` stays in the catalog but no longer
    consumes (or uses the broker), and its running tasks still use what messaging deletes (``deleted``)."""
    what = " and ".join(deleted)
    return ConfigError(catalog_file, f"services.{service}", (
        f"no longer declares what its running tasks use: {env.name}'s compute stack ({compute_stack}) runs its ECS "
        f"service {ecs_service} with {what}, and this up runs messaging before compute: messaging deletes them while "
        f"those tasks still run (a consumer's channel is cancelled, a task ECS starts cannot read a deleted secret), "
        f"and compute rolls the tasks off them only afterwards. Nothing was run. Roll the tasks off first: `nox -s up "
        f"-- {env.name} --layers compute --exact` (compute alone, with the catalog as it is now: its new task "
        f"definition no longer names them), then `nox -s up -- {env.name}` (messaging deletes them; it asks "
        f"--allow-replace for what holds data, naming the URNs)"))


def check_consumers(env: EnvConfig, catalog: Mapping[str, tuple[bool, bool]], catalog_file: str,
                    layers: Sequence[str], compute_stack: str, read: Callable[[str], Mapping[str, Any] | None],
                    ) -> tuple[list[ConfigError], list[str]]:
    """(refusals, notes) for the services of ``catalog`` (service -> (consumes anything, publishes or consumes
    anything)) whose running tasks, as compute's deployed ``services`` records them, use a work queue or broker
    credentials that messaging's deployed stack holds and that an ``up`` of ``layers`` with messaging would delete
    before compute runs. A compute entry without ``amqp_queue`` (a stack deployed before it): a note where it
    matters."""
    if "messaging" not in layers:
        return [], []
    running = _entries(read("compute"), "services")
    if not running:
        return [], []
    messaging = read("messaging")
    queues, secrets = _entries(messaging, "queues"), _entries(messaging, "service_secret_arns")
    refusals: list[ConfigError] = []
    unknown: list[str] = []
    for service, entry in running.items():
        if service not in catalog or not isinstance(entry, Mapping):
            continue  # removed: check_removals
        consumes, uses_broker = catalog[service]
        loses_queue = not consumes and service in queues
        loses_user = not uses_broker and service in secrets
        if not (loses_queue or loses_user):
            continue
        if "amqp_queue" not in entry:
            unknown.append(service)
            continue
        deleted = [*([f"its work queue {entry['amqp_queue']} and DLQ"] if loses_queue and entry["amqp_queue"] else []),
                   *(["its RabbitMQ user and credentials secret"] if loses_user and entry.get("amqp_credentials")
                     else [])]
        if deleted:
            refusals.append(consumer_refusal(env, catalog_file, service, str(entry.get("ecs_service_name", service)),
                                             compute_stack, deleted))
    notes = [f"{compute_stack} was deployed before compute recorded which queue and broker credentials each service's "
             f"tasks use, so whether {', '.join(unknown)} still consume what messaging deletes now (the queue, or the "
             f"user and secret, the catalog no longer declares) cannot be told: if their tasks run with them, stop and "
             f"run `nox -s up -- {env.name} --layers compute --exact` first"] if unknown else []
    return refusals, notes
