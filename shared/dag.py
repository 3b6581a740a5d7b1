"""The one declaration of which layer reads which.

Everything that needs an order derives it from :data:`LAYER_UPSTREAMS`: the synth order, the
``up`` levels, the reverse ``destroy`` order, ``--layers`` expansion and the README picture.
"""

from __future__ import annotations

from collections.abc import Iterable
from graphlib import TopologicalSorter

LAYER_UPSTREAMS: dict[str, tuple[str, ...]] = {
    "network": (),
    "discovery": ("network",),
    "mesh": ("discovery",),
    "broker": ("network",),
    "messaging": ("network", "broker"),
    "compute": ("network", "discovery", "mesh", "broker", "messaging"),
}
"""layer -> the layers whose stack outputs it reads (through their contracts)."""

LAYERS: tuple[str, ...] = tuple(LAYER_UPSTREAMS)

NEEDS_VPC_REACH: frozenset[str] = frozenset({"messaging"})
"""Layers whose provider talks to an endpoint that only answers inside the env's VPC (the RabbitMQ
management API): the orchestrator probes the endpoint before running them. The broker layer is not
one of them: it creates the Amazon MQ broker through AWS APIs only, so it deploys from anywhere."""

SECRET_STATE_LAYERS: frozenset[str] = frozenset({"broker", "messaging"})
"""Layers whose state holds the broker's admin password: broker's as generated (its RandomPassword, the broker's
``users``, the admin secret's first version; the admin's password until the first rotation), messaging's as its
RabbitMQ provider's configuration, beside every service's RabbitMQ password. The read-only role, which a
``pull_request`` job of any branch assumes, may not read their states (shared.deploy_role.secret_state_denials)."""


def _check_known(layers: Iterable[str]) -> list[str]:
    names = list(layers)
    unknown = [name for name in names if name not in LAYER_UPSTREAMS]
    if unknown:
        from shared.errors import UsageError

        raise UsageError(
            f"--layers: unknown layer(s) {', '.join(sorted(unknown))}; "
            f"known layers are {', '.join(LAYERS)}"
        )
    return names


def levels() -> list[list[str]]:
    """Layers grouped by level: every layer of a level only reads layers of earlier levels."""
    sorter = TopologicalSorter(LAYER_UPSTREAMS)
    sorter.prepare()
    result: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=LAYERS.index)
        result.append(ready)
        sorter.done(*ready)
    return result


def order() -> list[str]:
    """A deterministic topological order (synth and ``up`` run in this order)."""
    return [layer for level in levels() for layer in level]


def upstream_closure(layers: Iterable[str]) -> list[str]:
    """The given layers plus everything they read, transitively, in DAG order."""
    wanted = set(_check_known(layers))
    pending = list(wanted)
    while pending:
        for upstream in LAYER_UPSTREAMS[pending.pop()]:
            if upstream not in wanted:
                wanted.add(upstream)
                pending.append(upstream)
    return [layer for layer in order() if layer in wanted]


def downstream_closure(layers: Iterable[str]) -> list[str]:
    """The given layers plus everything that reads them, transitively, in DAG order."""
    wanted = set(_check_known(layers))
    changed = True
    while changed:
        changed = False
        for layer, upstreams in LAYER_UPSTREAMS.items():
            if layer not in wanted and wanted.intersection(upstreams):
                wanted.add(layer)
                changed = True
    return [layer for layer in order() if layer in wanted]


PUBLISHED_LAYERS: frozenset[str] = frozenset({"broker", "messaging"})
"""Layers that publish the non-secret part of their contract on every ``up`` (shared.published: an SSM parameter the
read-only role may read), which a pull request's preview reads instead of their states."""


def pull_request_layers() -> list[str]:
    """The layers a pull request's preview runs (under the read-only role): every layer that is not one of
    :data:`SECRET_STATE_LAYERS`, whose states that role may not read, and reads none of them through a StackReference
    (which reads the referenced stack's whole state): an upstream of those is read from its published contract
    (:data:`PUBLISHED_LAYERS`), or the layer is not previewed. Only a layer's direct upstreams' states are read."""
    return [layer for layer in order() if layer not in SECRET_STATE_LAYERS
            and all(upstream in PUBLISHED_LAYERS for upstream in LAYER_UPSTREAMS[layer]
                    if upstream in SECRET_STATE_LAYERS)]


def mermaid() -> str:
    """The README's picture of the layers, generated from the DAG (a test keeps them equal)."""
    lines = ["flowchart LR"]
    for layer in order():
        lines.append(f"    {layer}[{layer}]")
    for layer in order():
        for upstream in LAYER_UPSTREAMS[layer]:
            lines.append(f"    {upstream} --> {layer}")
    return "\n".join(lines)
