"""The gate before every ``up`` of a layer: no stateful resource is replaced or deleted unless named.

The runner previews the layer first and feeds each engine event to a :class:`ReplacementGuard`. A
``ResourcePreEvent`` carries the step's ``op``, ``urn`` and ``type`` (``pulumi.automation.events``
``StepEventMetadata``); a replacement shows as ``replace`` with its ``create-replacement`` and
``delete-replaced`` steps, a removal as ``delete``. When such a step touches a type of
:data:`shared.protect.STATEFUL_TYPES` (the types whose loss loses data: a broker and its messages, a
queue, a secret, a key...), the layer's ``up`` is refused unless the user named that URN with
``--allow-replace``. Outside prod nothing is ``protect``-ed, so without this gate a changed
``messaging.deployment_mode`` would delete the staging broker on ``up --yes``; with it, ``--yes`` and
CI get the same refusal as a terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pulumi import automation as auto

from shared.errors import UsageError
from shared.protect import is_stateful
from shared.urns import urn_parts

#: Steps that destroy the resource's current instance (``delete-replaced`` is the old one going,
#: ``create-replacement``/``replace`` announce it). ``discard``/``read-replacement``/``import-replacement``
#: only change the state, not the resource.
DESTRUCTIVE_OPS: frozenset[str] = frozenset({
    auto.OpType.REPLACE.value, auto.OpType.CREATE_REPLACEMENT.value, auto.OpType.DELETE_REPLACED.value,
    auto.OpType.DELETE.value,
})


@dataclass(frozen=True)
class Destruction:
    """A stateful resource the preview would replace or delete."""

    urn: str
    type: str
    ops: tuple[str, ...]

    @property
    def verb(self) -> str:
        return "delete" if self.ops == (auto.OpType.DELETE.value,) else "replace"

    def describe(self) -> str:
        return f"{self.verb} {self.type} {self.urn} (steps: {', '.join(self.ops)})"


@dataclass(frozen=True)
class CollectedStep:
    """The steps a preview would take on one resource: its URN and type, the ops in the order they came, and the
    properties that differ (the events' ``diffs``, else their replace ``keys``)."""

    urn: str
    type: str
    ops: tuple[str, ...]
    keys: tuple[str, ...]


class StepCollector:
    """Collects the steps of a preview's event stream whose op ``keep`` accepts, by resource (``on_event``;
    thread-safe, as the Automation API calls it from its event-log reader)."""

    def __init__(self, keep: Callable[[str], bool]) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._ops: dict[str, list[str]] = {}
        self._types: dict[str, str] = {}
        self._keys: dict[str, list[str]] = {}

    def on_event(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is None or pre.metadata is None:
            return
        metadata = pre.metadata
        op = getattr(metadata.op, "value", str(metadata.op))
        if not self._keep(op):
            return
        with self._lock:
            ops = self._ops.setdefault(metadata.urn, [])
            if op not in ops:
                ops.append(op)
            self._types[metadata.urn] = metadata.type
            keys = self._keys.setdefault(metadata.urn, [])
            keys.extend(key for key in (metadata.diffs or metadata.keys or ()) if key not in keys)

    def collected(self) -> list[CollectedStep]:
        with self._lock:
            return [CollectedStep(urn, self._types[urn], tuple(ops), tuple(sorted(self._keys[urn])))
                    for urn, ops in sorted(self._ops.items())]


class ReplacementGuard(StepCollector):
    """Collects the destructive steps of a preview's event stream (``keep``: the steps it collects besides, as a
    settle check's recorder does, shared.orchestrate.settled)."""

    def __init__(self, keep: Callable[[str], bool] = DESTRUCTIVE_OPS.__contains__) -> None:
        super().__init__(keep)

    def destructions(self) -> list[Destruction]:
        """The stateful resources the preview would replace or delete (:func:`shared.protect.is_stateful`)."""
        return [item for item in self.destroyed() if is_stateful(item.type)]

    def destroyed(self) -> list[Destruction]:
        """Every resource the preview would replace or delete, stateful or not."""
        return [Destruction(step.urn, step.type, ops) for step in self.collected()
                if (ops := tuple(op for op in step.ops if op in DESTRUCTIVE_OPS))]


@dataclass(frozen=True)
class Verdict:
    refused: tuple[Destruction, ...]
    allowed: tuple[Destruction, ...]
    #: --allow-replace URNs of this layer that the preview did not replace or delete
    unused: tuple[str, ...]

    def refusal(self, layer: str, env_name: str) -> str:
        listed = "; ".join(item.describe() for item in self.refused)
        flags = " ".join(f"--allow-replace '{item.urn}'" for item in self.refused)
        return (f"refused: up of {layer} ({env_name}) would destroy stateful resources and their data: {listed}. "
                f"Nothing was changed. If that is intended (the data may be lost), run again with {flags}")


def judge(destructions: Sequence[Destruction], allowed: Iterable[str], layer: str) -> Verdict:
    """Which destructions the user allowed (by exact URN), and which allowed URNs of ``layer`` were unused."""
    allowed_set = set(allowed)
    ok = tuple(item for item in destructions if item.urn in allowed_set)
    refused = tuple(item for item in destructions if item.urn not in allowed_set)
    seen = {item.urn for item in destructions}
    unused = tuple(sorted(urn for urn in allowed_set if urn_project(urn) == layer and urn not in seen))
    return Verdict(refused=refused, allowed=ok, unused=unused)


def urn_project(urn: str) -> str | None:
    parts = urn_parts(urn)
    return parts[1] if parts else None


def check_allowed(urns: Sequence[str], env_name: str, layers: Sequence[str]) -> None:
    """``--allow-replace`` names resources of this run: an engine URN of a layer it runs, in this env's
    stack (UsageError, exit 2, otherwise: a typo must not silently allow nothing)."""
    for urn in urns:
        parts = urn_parts(urn)
        if parts is None:
            raise UsageError(f"--allow-replace {urn!r}: not a Pulumi URN (urn:pulumi:<stack>::<project>::<type>::"
                             "<name>; copy it from the refusal message)")
        stack, project = parts[0], parts[1]
        if stack != env_name:
            raise UsageError(f"--allow-replace {urn!r}: names stack {stack!r}, but this run is {env_name!r}")
        if project not in layers:
            raise UsageError(f"--allow-replace {urn!r}: names layer {project!r}, which this run does not update "
                             f"({', '.join(layers)})")
