"""Faster equivalents of seven Pulumi SDK hot spots, in place only while a synth runs.

Profiling the synth of a 200-service catalog (~5,000 resources) showed the SDK spending most of its
time on bookkeeping whose result the offline synth either never sees or gets the same way faster:

* ``Output.from_input`` lifts a plain dict/list/tuple by wrapping *every nested value* in its own
  Output (a future, a task and a tracking entry each) and gathering them again; an apply returning a
  policy document or container definitions paid that for every leaf. A container holding no
  Output, awaitable, input type or other object is now one resolved Output of an equal copy -- the
  value, ``is_known``, ``is_secret`` and (empty) dependencies the deep lift ends with;
* ``rpc.transfer_properties`` gives every input property of every resource four futures and an
  Output whose task awaits them; one future resolved with the Output's data does the same;
* ``rpc.contains_unknowns`` (called for every Output created) is an iterative walk with a fast path
  for scalars instead of a recursive generator: same answer, including for shared and cyclic values;
* ``_get_stack_trace`` formats the Python stack of every resource registration for the engine's
  error messages; the recording monitor never reads it, so the synth sends an empty trace (the SDK's
  own answer when it cannot find the frames) -- ``--program`` runs replace it again with the one
  program frame that created the resource (shared.synth.engine.ProgramSites, no formatting);
* ``resource_cycle_breaker.declare_dependency`` (called for every dependency of every resource, a
  component standing for each of its children) walked the whole transitive dependency closure of the
  dependency to find out whether the new edge closes a cycle: quadratic in the stack's size (a third
  of the 200-service synth). The replacement keeps a topological order of the resources it has seen
  (Pearce-Kelly dynamic topological sort): an edge that agrees with the order cannot close a cycle and
  costs O(1); any other searches only the resources between the two in the order, and re-orders
  them. Same answer (skipped when it would close a cycle) and the same ``_direct_computed_dependencies``
  graph;
* ``pulumi._types.unwrap_type`` (the ``T`` of ``Output[T]``/``Input[T]``/``Optional[T]``, asked for
  every property of every resource: 82,000 times for 200 services) is a pure function of its type
  argument; its answers are remembered per type (unhashable types are asked every time);
* ``pulumi.log.debug`` builds and sends a log request per registration step that the mock engine
  drops unless the root logger has DEBUG enabled; it is skipped exactly when it would be dropped.

Everything is restored when the synth ends, so a real ``pulumi up`` of the same process is untouched.
tests/test_synth_speedups.py holds the equivalence checks; re-run them when the SDK is upgraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
from pulumi import _types as pulumi_types
from pulumi import log as pulumi_log
from pulumi import output as pulumi_output
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import resource_cycle_breaker, rpc
from pulumi.runtime.proto import source_pb2

from shared.patching import replace_attributes

_SCALARS = frozenset({str, int, float, bool, type(None)})
_original_from_input = pulumi.Output.from_input
_original_contains_unknowns = rpc.contains_unknowns
_original_debug = pulumi_log.debug
_original_declare_dependency = resource_cycle_breaker.declare_dependency
_original_unwrap_type = pulumi_types.unwrap_type
_unwrapped: dict[Any, Any] = {}


def unwrap_type(val: Any) -> Any:
    """``pulumi._types.unwrap_type``, remembered per type."""
    try:
        return _unwrapped[val]
    except KeyError:
        answer = _unwrapped[val] = _original_unwrap_type(val)
        return answer
    except TypeError:  # an unhashable annotation
        return _original_unwrap_type(val)


def contains_unknowns(val: Any) -> bool:
    """``pulumi.runtime.rpc.contains_unknowns``, without recursion."""
    unknown = pulumi_output.Unknown
    stack = [val]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if type(item) in _SCALARS:
            continue
        if isinstance(item, unknown):
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item[key] for key in item)
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _NotPlain(Exception):
    pass


def _plain_copy(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        copy = {}
        for key, item in value.items():
            if type(key) is not str:  # the SDK lifts keys through Output.all(**d): strings only
                raise _NotPlain
            copy[key] = _plain_copy(item)
        return copy
    if kind is list:
        return [_plain_copy(item) for item in value]
    if kind is tuple:
        return tuple(_plain_copy(item) for item in value)
    raise _NotPlain


def from_input(value: Any) -> pulumi.Output[Any]:
    """``Output.from_input`` with a one-Output path for non-empty plain containers."""
    if type(value) in (dict, list, tuple) and value:
        try:
            copy = _plain_copy(value)
        except _NotPlain:
            return _original_from_input(value)
        resolved: asyncio.Future[Any] = asyncio.Future()
        resolved.set_result(pulumi_output._OutputData(resources=set(), value=copy, is_known=True, is_secret=False))
        return pulumi.Output._from_data(resolved)
    return _original_from_input(value)


def transfer_properties(res: Any, props: Any, custom: bool) -> dict[str, Callable[..., None]]:
    """``rpc.transfer_properties`` giving each property one resolved-at-once Output.

    The SDK builds four futures and an Output whose task awaits them, per input property of every
    resource (~45,000 for 200 services); this resolves one ``_OutputData`` future directly, as the SDK
    itself does for ``urn``/``id`` (``resource_output``). Same value, known, secret, dependencies
    (the resource plus the engine-reported ones) and the same exception on failure.
    """
    resolvers: dict[str, Callable[..., None]] = {}
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue  # handled elsewhere, as in the SDK
        data: asyncio.Future[Any] = asyncio.Future()

        def resolve(value: Any, is_known: bool, is_secret: bool, deps: Any, failed: Exception | None,
                    data: asyncio.Future[Any] = data) -> None:
            if failed is not None:
                data.set_exception(failed)
                return
            resources = set(deps) if deps else set()
            resources.add(res)
            data.set_result(pulumi_output._OutputData(resources=resources, value=value, is_known=is_known,
                                                      is_secret=is_secret))

        resolvers[name] = resolve
        res.__dict__[name] = pulumi.Output._from_data(data)
    return resolvers


# Per resource (attributes, like the SDK's own dependency set): its position in a topological order
# of the dependency graph (dependents above their dependencies), and the resources that depend on it.
_ORDER = "_synth_dependency_order"
_DEPENDENTS = "_synth_dependents"


class _Counters:
    low = 0  # below every order given so far: for a resource first seen as a dependency
    high = 0  # above every order given so far: for a resource first seen as a dependent
    untracked = False  # an edge was added by the SDK's own function: the order cannot be trusted


def _order(resource: Any, top: bool) -> int:
    """The resource's position; a resource seen for the first time has no edge yet, so it may go
    anywhere: on top when it is the dependent, at the bottom when it is the dependency."""
    order: int | None = resource.__dict__.get(_ORDER)
    if order is None:
        if resource.__dict__.get(resource_cycle_breaker._DEPENDENCIES_PROPERTY):
            raise _Untracked  # edges added outside this function: their order is unknown
        if top:
            _Counters.high += 1
            order = _Counters.high
        else:
            _Counters.low -= 1
            order = _Counters.low
        resource.__dict__[_ORDER] = order
        resource.__dict__[_DEPENDENTS] = []
    return order


class _Untracked(Exception):
    pass


def declare_dependency(from_resource: Any, to_resource: Any) -> bool:
    """``resource_cycle_breaker.declare_dependency``: record that ``from_resource`` depends on
    ``to_resource`` unless ``from_resource`` is reachable from ``to_resource`` (a cycle); False then."""
    if _Counters.untracked:
        return _original_declare_dependency(from_resource, to_resource)
    if from_resource is to_resource:
        return False
    try:
        order_from = _order(from_resource, top=True)
        order_to = _order(to_resource, top=False)
    except _Untracked:
        _Counters.untracked = True  # from now on the SDK's walk, for the rest of this process
        return _original_declare_dependency(from_resource, to_resource)
    if order_from < order_to and not _reorder(from_resource, to_resource, order_from, order_to):
        return False
    resource_cycle_breaker._add_dep(from_resource, to_resource)
    to_resource.__dict__[_DEPENDENTS].append(from_resource)
    return True


def _reorder(from_resource: Any, to_resource: Any, order_from: int, order_to: int) -> bool:
    """False if ``from_resource`` is reachable from ``to_resource``; else move ``to_resource`` and
    what it reaches below ``from_resource`` and what reaches it (both only between the two)."""
    deps = resource_cycle_breaker._deps
    below, stack, seen = [], [to_resource], {id(to_resource)}
    while stack:  # what to_resource reaches: only resources above from_resource can lead to it
        node = stack.pop()
        below.append(node)
        for dependency in deps(node):
            if dependency is from_resource:
                return False
            if id(dependency) not in seen and dependency.__dict__[_ORDER] > order_from:
                seen.add(id(dependency))
                stack.append(dependency)
    above, stack, seen = [], [from_resource], {id(from_resource)}
    while stack:  # what reaches from_resource, below to_resource
        node = stack.pop()
        above.append(node)
        for dependent in node.__dict__[_DEPENDENTS]:
            if id(dependent) not in seen and dependent.__dict__[_ORDER] < order_to:
                seen.add(id(dependent))
                stack.append(dependent)
    below.sort(key=lambda node: node.__dict__[_ORDER])
    above.sort(key=lambda node: node.__dict__[_ORDER])
    slots = sorted(node.__dict__[_ORDER] for node in below + above)
    for node, slot in zip(below + above, slots, strict=True):
        node.__dict__[_ORDER] = slot
    return True


def _empty_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


def _debug(msg: str, resource: Any = None, stream_id: Any = None, ephemeral: Any = None) -> None:
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        _original_debug(msg, resource, stream_id, ephemeral)


@contextlib.contextmanager
def sdk_fast_paths() -> Iterator[None]:
    """The seven replacements above, for the duration of the block."""
    restore = replace_attributes([
        (pulumi.Output, "from_input", staticmethod(from_input)),
        (rpc, "contains_unknowns", contains_unknowns),
        (pulumi_resource, "_get_stack_trace", _empty_stack_trace),
        (pulumi_log, "debug", _debug),
        (rpc, "transfer_properties", transfer_properties),
        (rpc, "declare_dependency", declare_dependency),
        (pulumi_types, "unwrap_type", unwrap_type),
    ])
    try:
        yield
    finally:
        restore()
