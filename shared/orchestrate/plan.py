"""Which layers a run touches, in which levels, and why (``--layers`` expansion)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.dag import LAYER_UPSTREAMS, LAYERS, downstream_closure, levels, upstream_closure
from shared.errors import UsageError
from shared.orchestrate.model import Operation


@dataclass(frozen=True)
class Plan:
    levels: tuple[tuple[str, ...], ...]
    """Layers grouped by level, in run order (reversed for destroy)."""
    requested: tuple[str, ...]
    added: tuple[tuple[str, str], ...] = ()
    """(layer, reason) for every layer ``--layers`` expansion added."""

    @property
    def layers(self) -> list[str]:
        return [layer for level in self.levels for layer in level]


def _why_added(layer: str, closure: list[str], reverse: bool) -> str:
    if reverse:
        # For destroy an added layer reads a selected one: it has to go before what it reads.
        read = [other for other in closure if other in LAYER_UPSTREAMS[layer]]
        return f"{layer} reads {', '.join(read)}, so it is destroyed first"
    readers = [other for other in closure if layer in LAYER_UPSTREAMS[other]]
    return f"{', '.join(readers)} read{'s' if len(readers) == 1 else ''} {layer}'s outputs"


def requested_layers(value: str | None) -> list[str] | None:
    """The layers of a ``--layers`` option (comma-separated; None: the option was not given, every layer)."""
    if value is None:
        return None
    layers = [part.strip() for part in value.split(",") if part.strip()]
    if not layers:
        raise UsageError("--layers: give at least one layer name")
    return layers


def make_plan(operation: Operation, requested: list[str] | None, *, exact: bool = False) -> Plan:
    """All layers, or ``requested`` expanded: with what they read (preview/up/refresh) or with what
    reads them (destroy, so nothing is left pointing at a destroyed stack). ``exact``: ``requested``
    alone, still in DAG order (CI runs one job per layer after the jobs of what it reads)."""
    if requested and exact:
        added: tuple[tuple[str, str], ...] = ()
        chosen = set(upstream_closure(requested)) & set(requested)  # the closure checks the names
    elif requested:
        closure = downstream_closure(requested) if operation.reverse else upstream_closure(requested)
        wanted = set(requested)
        added = tuple((layer, _why_added(layer, closure, operation.reverse)) for layer in closure
                      if layer not in wanted)
        chosen = set(closure)
    else:
        requested, added, chosen = list(LAYERS), (), set(LAYERS)
    grouped = [tuple(layer for layer in level if layer in chosen) for level in levels()]
    grouped = [level for level in grouped if level]
    if operation.reverse:
        grouped.reverse()
    return Plan(levels=tuple(grouped), requested=tuple(requested), added=added)


def blocked_by_failure(failed: str, operation: Operation) -> list[str]:
    """Layers that must not run once ``failed`` failed: its readers (or, for destroy, what it reads)."""
    affected = upstream_closure([failed]) if operation.reverse else downstream_closure([failed])
    return [layer for layer in affected if layer != failed]
