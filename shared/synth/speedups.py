"""Faster equivalents of five Pulumi SDK hot spots, in place only while a synth runs.

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
from pulumi import log as pulumi_log
from pulumi import output as pulumi_output
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime.proto import source_pb2

from shared.patching import replace_attributes

_SCALARS = frozenset({str, int, float, bool, type(None)})
_original_from_input = pulumi.Output.from_input
_original_contains_unknowns = rpc.contains_unknowns
_original_debug = pulumi_log.debug


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


def _empty_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


def _debug(msg: str, resource: Any = None, stream_id: Any = None, ephemeral: Any = None) -> None:
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        _original_debug(msg, resource, stream_id, ephemeral)


@contextlib.contextmanager
def sdk_fast_paths() -> Iterator[None]:
    """The five replacements above, for the duration of the block."""
    restore = replace_attributes([
        (pulumi.Output, "from_input", staticmethod(from_input)),
        (rpc, "contains_unknowns", contains_unknowns),
        (pulumi_resource, "_get_stack_trace", _empty_stack_trace),
        (pulumi_log, "debug", _debug),
        (rpc, "transfer_properties", transfer_properties),
    ])
    try:
        yield
    finally:
        restore()
