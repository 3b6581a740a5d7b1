"""Run a Pulumi Python program under the mock runtime and record what the engine would see.

For each resource the program registers we keep what a real ``pulumi preview`` sends the engine:
type, name, URN, parent, provider, dependencies, ``protect`` and the inputs under their engine
(camelCase) names, plus which top-level inputs were Pulumi secrets and, where the program set
them, the ``custom_timeouts`` (create/update/delete). Stack exports are captured
from the root stack's outputs. StackReference reads are answered from upstream layers' synthesized
outputs, so a layer is synthesized with the real values its upstreams export.
"""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextlib
import contextvars
import gc
import json
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pulumi
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime import sync_await as pulumi_sync_await
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.rpc import wrap_rpc_secret
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from shared import REPO_ROOT
from shared.errors import ConfigError, ContractError, PlatformError
from shared.jsonwalk import any_string, string_leaves
from shared.patch_guard import SYNTH_PATCHED, patches_allowed
from shared.patching import replace_attributes
from shared.synth.mocks import PlatformMocks
from shared.synth.speedups import sdk_fast_paths
from shared.yamlio import safe_load

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


async def _wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    """``pulumi.runtime.stack.wait_for_rpcs`` with the same semantics, linear in the number of outputs.

    The SDK's version waits on every pending output with ``asyncio.wait(FIRST_COMPLETED)`` and
    re-arms all of them after each completion: quadratic in the number of outputs, which made the
    synth of a 200-service catalog take minutes. Here each round gathers all pending
    outputs once, then picks up outputs created meanwhile; errors are re-raised as in the SDK.
    """
    rpc_manager = pulumi_settings._get_rpc_manager()
    while True:
        while rpc_manager.rpcs:
            await asyncio.sleep(0)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as error:
                if rpc_manager.unhandled_exception is not None:
                    cause = rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
                    raise error from cause
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        if await_all_outstanding_tasks:
            while True:
                with pulumi_settings.SETTINGS.lock:
                    if not pulumi_settings.SETTINGS.outputs:
                        break
                    pending = list(pulumi_settings.SETTINGS.outputs)
                    pulumi_settings.SETTINGS.outputs.clear()
                for result in await asyncio.gather(*pending, return_exceptions=True):
                    if isinstance(result, BaseException):
                        raise result
        if not rpc_manager.rpcs:
            break


class _TrackedOutputs(collections.abc.MutableSet[Any]):
    """The SDK's set of tracked outputs (``SETTINGS.outputs``: add, discard, remove, clear, len, iteration) in the
    order the program made them. A set of tasks iterates in the order of their memory addresses, so when several
    outputs failed, the one :func:`_wait_for_rpcs` re-raised -- the error the synth reports, e.g. which missing
    upstream field it names -- changed from run to run; now it is the first made."""

    def __init__(self) -> None:
        self._items: dict[Any, None] = {}

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, value: Any) -> None:
        self._items[value] = None

    def discard(self, value: Any) -> None:
        self._items.pop(value, None)

    def clear(self) -> None:
        self._items.clear()


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the mock monitor's calls on the event loop's own thread.

    The SDK sends every RPC through ``loop.run_in_executor``; against an in-process mock that only
    adds thread hand-offs. The recording monitor never blocks and never re-enters the loop, so it
    can answer inline.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=1)  # asyncio insists on a ThreadPoolExecutor; no thread starts

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(error)
        return future


@contextlib.contextmanager
def _fast_runtime(patched: bool, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The mock runtime tuned for throughput: the linear output wait above, the monitor
    answering inline (on ``loop``, the one the synth runs on), the SDK fast paths of :mod:`shared.synth.speedups`,
    a short GIL switch interval for whatever still hops threads, and the cyclic garbage collector paused.
    ``patched`` (:func:`shared.patch_guard.patches_allowed`): whether the parts that replace SDK internals apply.

    The SDK keeps every resource, Output and future of a program alive until the program ends, so
    each full collection re-scanned a heap that only grows: more than half of the synth time of a
    200-service catalog, growing faster than the catalog. Paused, the program's cyclic garbage
    (~30 MB for 200 services) waits for the collector's next run after the synth.
    """
    collecting = gc.isenabled()
    gc.disable()  # public API: stays whatever the SDK's version
    original_wait = pulumi_stack.wait_for_rpcs
    original_interval = sys.getswitchinterval()
    original_executor = getattr(loop, "_default_executor", None)
    if patched:
        pulumi_stack.wait_for_rpcs = _wait_for_rpcs
        loop.set_default_executor(_InlineExecutor())
    sys.setswitchinterval(0.001)
    try:
        with sdk_fast_paths() if patched else contextlib.nullcontext():
            yield
    finally:
        if patched:
            loop._default_executor = original_executor  # type: ignore[attr-defined]
            pulumi_stack.wait_for_rpcs = original_wait
        sys.setswitchinterval(original_interval)
        if collecting:
            gc.enable()


def _run_alone(loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to its end on ``loop``, then end what the program left there.

    A program that fails leaves work behind: outputs that failed, which the SDK keeps in its set of tracked
    outputs "to pick up at program exit", and tasks still pending (a component's children registering,
    applies not yet run). ``pulumi up`` runs one program per process, which then exits; here the next synth
    of the same process (``nox -s synth -- dev staging``, a test run) ran them on the same loop and gathered
    the tracked set it shared with every synth (MockSettings gives none of its own), and failed with the earlier
    program's error -- even a synth that was fine. So each synth gets its own set and context (``_synth``), and
    the tasks it started and left pending are cancelled and awaited here, as ``asyncio.run`` ends: nothing of one
    synth runs during another. The loop is the thread's (pulumi's ``_sync_await`` finds it; Outputs a caller made
    before the synth, such as a component's upstream contracts in a test, live on it), and what was pending on it
    before the synth is the caller's, left alone.
    """
    before = asyncio.all_tasks(loop)
    try:
        _sync_await(main)
    finally:
        leftover = asyncio.all_tasks(loop) - before
        for task in leftover:
            task.cancel()
        if leftover:
            _sync_await(asyncio.gather(*leftover, return_exceptions=True))


def _generic_hint(mocks: PlatformMocks) -> str:
    """Why a value the program read may be missing offline: types the mocks answer only generically."""
    if not mocks.generic_types:
        return ""
    return (f"\n  if a value the program read is missing offline: these resource types get generic mock answers "
            f"only (no computed outputs such as a URL): "
            f"{', '.join(sorted(mocks.generic_types))}; register their answers with "
            "shared.synth.mocks.register_mock beside the component that creates them (README, \"Add a layer\")")


class SynthError(PlatformError):
    """The program itself failed under the mock runtime (its exception is the cause). Exit 2: the
    program (or the input it read) is wrong; 1 stays the code of a policy or gate failure.

    ``error`` is the program's exception as ``Type: text``, ``frames`` its own frames (``file:line in
    function`` and the source line, innermost last), ``warnings`` what the run noticed before it
    failed (unanswered lookups often explain the failure): the policy command writes them into
    ``--json``/``--sarif`` as an error record."""

    exit_code = 2

    def __init__(self, message: str, *, error: str = "", frames: list[str] | None = None,
                 warnings: list[str] | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.frames = frames or []
        self.warnings = warnings or []


_LIBRARY_PARTS = ("site-packages", "dist-packages", f"{os.sep}lib{os.sep}python3")


def program_frames(error: BaseException) -> list[str]:
    """``file:line in function`` (and the source line) of the frames that belong to the program and
    to this repo's code it calls, innermost last; the SDK's, the engine's and the stdlib's left out.
    Follows ``__cause__``/``__context__`` so an error re-raised by the runtime still shows its origin."""
    engine_dir = Path(__file__).resolve().parent
    seen: set[int] = set()
    lines: list[str] = []
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in traceback.extract_tb(current.__traceback__):
            path = Path(frame.filename)
            if any(part in frame.filename for part in _LIBRARY_PARTS) or not path.is_absolute():
                continue
            if path.resolve().is_relative_to(engine_dir):
                continue
            text = f"{frame.filename}:{frame.lineno} in {frame.name}"
            if frame.line:
                text += f"\n      {frame.line.strip()}"
            if text not in lines:
                lines.append(text)
        if isinstance(current, SyntaxError) and current.filename and current.lineno:
            # (IndentationError too) raised by the compiler, not in a frame of the file: its traceback holds only
            # the frames that imported it, so the failing line is the error's own filename and lineno
            path = Path(current.filename)
            if path.is_absolute() and not any(part in current.filename for part in _LIBRARY_PARTS):
                text = f"{current.filename}:{current.lineno} in <module>"
                if current.text and current.text.strip():
                    text += f"\n      {current.text.strip()}"
                if text not in lines:
                    lines.append(text)
        current = current.__cause__ or current.__context__
    return lines


# -- preview semantics for --program runs ---------------------------------------------------------


@dataclass(frozen=True)
class _InvokeSite:
    """Where the program called a data source, and whether it used the plain form (values) or the
    ``*_output`` form (an Output)."""

    where: str
    plain: bool
    #: Set by the monitor when no table entry answered this invoke.
    unanswered: list[bool] = field(default_factory=list)


# Set while a data-source function runs; the task that performs the invoke copies the context, so
# the monitor reads it when the request arrives (also for ``*_output`` invokes that run later).
_INVOKE_SITE: contextvars.ContextVar[_InvokeSite | None] = contextvars.ContextVar("synth_invoke_site", default=None)


class ProgramSites:
    """The program's innermost frame on the Python stack: the line that created a resource or called
    a data source. Walks frame objects (nothing is formatted), so it costs microseconds per call."""

    def __init__(self, program_dir: Path) -> None:
        self.program_dir = program_dir
        self.prefix = str(program_dir) + os.sep
        self._relative: dict[str, str | None] = {}

    def relative(self, filename: str) -> str | None:
        """``filename`` relative to the program dir; None outside it or inside a virtualenv kept there."""
        if filename not in self._relative:
            rel: str | None = None
            if filename.startswith(self.prefix):
                rel = Path(filename[len(self.prefix):]).as_posix()
                if any(part in f"/{rel}" for part in ("site-packages", "dist-packages", "/lib/python3")):
                    rel = None
            self._relative[filename] = rel
        return self._relative[filename]

    def site(self) -> tuple[str, int] | None:
        frame = sys._getframe(1)
        while frame is not None:
            rel = self.relative(frame.f_code.co_filename)
            if rel is not None:
                return rel, frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def where(self) -> str:
        found = self.site()
        return f"{found[0]}:{found[1]}" if found else "(outside the program's files)"

    def stack_trace(self) -> source_pb2.StackTrace:
        """What the SDK's ``_get_stack_trace`` sends the engine, cut to the program's own frame."""
        found = self.site()
        if found is None:
            return source_pb2.StackTrace()
        position = source_pb2.SourcePosition(uri=found[0], line=found[1])
        return source_pb2.StackTrace(frames=[source_pb2.StackFrame(pc=position)])


@contextlib.contextmanager
def _preview_hooks(sites: ProgramSites, patched: bool) -> Iterator[None]:
    """Call sites for resources (the stack trace the SDK sends with each registration) and for
    invokes (a context variable the monitor reads), for the duration of a ``--program`` run."""
    module = sys.modules["pulumi.runtime.invoke"]
    original_invoke, original_output = module.invoke, module.invoke_output

    def invoke(*args: Any, **kwargs: Any) -> Any:
        site = _InvokeSite(sites.where(), plain=True)
        token = _INVOKE_SITE.set(site)
        try:
            result = original_invoke(*args, **kwargs)
        finally:
            _INVOKE_SITE.reset(token)
        typ = kwargs.get("typ", args[3] if len(args) > 3 else None)
        if site.unanswered and typ is not None:
            unknown = _unknown_result(typ)
            if unknown is not None:
                return type(result)(unknown, is_secret=False)
        return result

    def invoke_output(*args: Any, **kwargs: Any) -> Any:
        token = _INVOKE_SITE.set(_InvokeSite(sites.where(), plain=False))
        try:
            return original_output(*args, **kwargs)
        finally:
            _INVOKE_SITE.reset(token)

    replacements: list[tuple[Any, str, Any]] = [
        (module, "invoke", invoke), (module, "invoke_output", invoke_output),
        (pulumi.runtime, "invoke", invoke), (pulumi.runtime, "invoke_output", invoke_output),
    ]
    if patched:  # else the SDK's own full stack trace is sent; the monitor finds the program's frame in it
        replacements.append((pulumi_resource, "_get_stack_trace", sites.stack_trace))
    restore = replace_attributes(replacements)
    try:
        yield
    finally:
        restore()


def _unknown_result(typ: type) -> Any:
    """An unanswered plain invoke's result type (``GetImageResult``...) with every text field the
    engine's unknown sentinel and every other field None: a plain invoke returns values, not Outputs,
    and the generated result types accept only these; a resource input built from such a text is
    recorded as unknown (the rules then cannot decide) instead of as a made-up value."""
    from pulumi import _types

    fields: dict[str, Any] = {}
    for python_name, _pulumi_name, prop in _types._py_properties(typ):
        annotation = str(getattr(prop.fget, "__annotations__", {}).get("return", ""))
        text = annotation.replace("_builtins.", "").replace("builtins.", "").replace("<class 'str'>", "str")
        fields[python_name] = UNKNOWN if text in ("str", "Optional[str]") else None
    try:
        return typ(**fields)
    except TypeError:  # not a generated result type: keep the SDK's answer
        return None


def _strings(value: Any) -> Iterator[str]:
    """The string leaves of a lookup's answer long enough to be a credential or an identifier."""
    for text in string_leaves(value):
        if len(text) >= 8:
            yield text
            if text[:1] in "{[":  # a secret's JSON document: its fields are what programs pass on
                with contextlib.suppress(ValueError):
                    yield from _strings(json.loads(text))


def _unknown_if_derived(value: Any) -> Any:
    """A mock-computed value built from an unknown input (``f"{name}.example"`` with the name unknown)
    is itself unknown, as the engine would report it."""
    if isinstance(value, str):
        return UNKNOWN if UNKNOWN in value else value
    if isinstance(value, dict):
        return {key: _unknown_if_derived(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unknown_if_derived(item) for item in value]
    return value


def _plain(value: Any) -> tuple[Any, bool]:
    """A JSON value from a protobuf-struct value: secrets unwrapped (and reported), numbers tidy."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            inner, _ = _plain(value.get("value"))
            return inner, True
        if sig == RESOURCE_SIG:
            return value.get("id") or value.get("urn"), False
        if sig == ASSET_SIG:
            return {"asset": value.get("path") or value.get("uri") or "<text>"}, False
        if sig == ARCHIVE_SIG:
            return {"archive": value.get("path") or value.get("uri") or "<assets>"}, False
        secret = False
        result = {}
        for key in sorted(value):
            if key.startswith("__"):
                continue
            item, item_secret = _plain(value[key])
            secret |= item_secret
            if item is not None:
                result[key] = item
        return result, secret
    if isinstance(value, list):
        secret = False
        items = []
        for element in value:
            item, item_secret = _plain(element)
            secret |= item_secret
            items.append(item)
        return items, secret
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value), False
    return value, False


def _struct_to_plain(struct: Any) -> tuple[dict[str, Any], list[str]]:
    return _raw_to_plain(json_format.MessageToDict(struct))


def _raw_to_plain(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """:func:`_struct_to_plain` of a struct already converted by ``MessageToDict``."""
    inputs: dict[str, Any] = {}
    secrets: list[str] = []
    for key in sorted(raw):
        if key.startswith("__"):
            continue
        value, secret = _plain(raw[key])
        if value is None:
            continue
        inputs[key] = value
        if secret:
            secrets.append(key)
    return inputs, secrets


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    """A protobuf Struct of plain JSON values (secrets already in their signature form)."""
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(values)))
    return struct


def _provider_urn(reference: str) -> str | None:
    # Provider references are "<urn>::<id>"; the URN itself contains "::" separators.
    return reference.rsplit("::", 1)[0] if reference else None


def _custom_timeouts(request: Any) -> dict[str, str]:
    timeouts = request.customTimeouts
    return {op: getattr(timeouts, op) for op in ("create", "update", "delete") if getattr(timeouts, op)}


@dataclass
class _Recorded:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    dependencies: list[str]
    inputs: dict[str, Any]
    secret_inputs: list[str]
    protect: bool
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    delete_before_replace: bool = False
    #: the inputs whose changes the engine ignores on an update (ResourceOptions.ignore_changes, engine names)
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    #: the outputs the engine stores as secrets whatever their value (ResourceOptions.additional_secret_outputs:
    #: a provider SDK's own, e.g. RandomPassword.result, and the program's), as the CLI sends them to the analyzers
    additional_secret_outputs: list[str] = field(default_factory=list)
    location: dict[str, Any] | None = None
    lookup_inputs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "urn": self.urn, "type": self.type, "name": self.name, "custom": self.custom,
            "parent": self.parent, "provider": self.provider, "dependencies": self.dependencies,
            "inputs": self.inputs, "secret_inputs": self.secret_inputs, "protect": self.protect,
            # Extension of the documented schema: which resources each input came from, as the engine
            # passes it to AnalyzeStack (no-plaintext-secrets uses it to tell literal from derived).
            "property_dependencies": self.property_dependencies,
        }
        if self.custom_timeouts:  # only where a program set them (ResourceOptions.custom_timeouts)
            document["custom_timeouts"] = self.custom_timeouts
        if self.delete_before_replace:  # only where a program set it (ResourceOptions.delete_before_replace)
            document["delete_before_replace"] = True
        if self.ignore_changes:  # only where a program set them (ResourceOptions.ignore_changes)
            document["ignore_changes"] = self.ignore_changes
        if self.aliases:  # only where a program set them (ResourceOptions.aliases): the URNs it answered to before
            document["aliases"] = self.aliases
        if self.additional_secret_outputs:  # only where the resource's options name any
            document["additional_secret_outputs"] = self.additional_secret_outputs
        if self.location is not None:  # --program runs: where the program created the resource
            document["location"] = self.location
        if self.lookup_inputs:  # --program runs: inputs carrying a value a data source returned
            document["lookup_inputs"] = self.lookup_inputs
        return document


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's MockMonitor, keeping each registration as the engine would receive it."""

    def __init__(self, mocks: PlatformMocks, sites: ProgramSites | None = None) -> None:
        super().__init__(mocks)
        self.recorded: list[_Recorded] = []
        self.stack_outputs: dict[str, Any] = {}
        self.secret_outputs: list[str] = []
        self.stack_urn: str | None = None
        self._default_providers: dict[str, bool] = {}
        # A --program run (preview semantics): call sites, unanswered lookups, remote components.
        self.sites = sites
        self.unanswered: dict[tuple[str, str], bool] = {}  # (token, file:line) -> plain invoke
        self.remote: dict[str, list[str]] = {}  # component type -> names
        self.unreadable: dict[str, str] = {}  # stack reference -> file:line
        self.lookup_strings: set[str] = set()  # string values answered lookups returned

    @property
    def warnings(self) -> list[str]:
        """What a --program run could not judge or answer offline, in the order it happened."""
        lines = []
        for (token, where), plain in self.unanswered.items():
            effect = ("its text fields are unknown and its other fields None (a plain invoke returns values, "
                      "not Outputs)" if plain else "its result is unknown, so what depends on it is undecided")
            lines.append(f"{where}: lookup {token} is not answered offline; {effect}")
        for reference, where in self.unreadable.items():
            lines.append(f"{where}: stack reference {reference} is not available offline; its outputs are unknown")
        if self.remote:
            kinds = ", ".join(f"{kind} ({', '.join(names)})" for kind, names in self.remote.items())
            lines.append(f"not judged offline: components of multi-language packages, whose resources only "
                         f"their provider plugin creates: {kinds}")
        return lines

    def _location(self, request: Any) -> dict[str, Any] | None:
        """The program's file:line in the request's stack trace (``ProgramSites.stack_trace`` sends only
        that frame; the SDK's own trace has file:// URIs of every frame)."""
        assert self.sites is not None
        for frame in request.stackTrace.frames:
            uri = frame.pc.uri
            if uri.startswith("file://"):
                uri = self.sites.relative(unquote(urlparse(uri).path)) or ""
            if uri and frame.pc.line:
                return {"path": uri, "line": int(frame.pc.line)}
        return None

    def _alias_urns(self, request: Any) -> list[str]:
        """The URNs of ``request``'s aliases, as the engine resolves them (an alias spec leaves out what stays the same:
        name, type, parent), so the plan diff matches a resource to its former URN."""
        urns = set(request.aliasURNs)
        for alias in request.aliases:
            if alias.urn:
                urns.add(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            urns.add(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        return sorted(urns)

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)
        pulumi_mocks._ensure_event_loop()
        raw = json_format.MessageToDict(request.object)  # once per resource: the inputs and the assets below
        inputs, secret_inputs = _raw_to_plain(raw)
        if self.sites is not None:  # text built from an unknown (f"{image}:tag", json.dumps(...)) is unknown
            inputs = _unknown_if_derived(inputs)
        provider = _provider_urn(request.provider)
        if provider is None and request.custom and not request.type.startswith("pulumi:"):
            provider = self._default_provider(request.type.split(":", 1)[0], request.version)
        self.recorded.append(_Recorded(
            urn=urn, type=request.type, name=request.name, custom=bool(request.custom),
            parent=request.parent or None, provider=provider,
            dependencies=sorted(set(request.dependencies)), inputs=inputs,
            secret_inputs=secret_inputs, protect=bool(request.protect),
            property_dependencies={key: sorted(set(value.urns))
                                   for key, value in sorted(request.propertyDependencies.items()) if value.urns},
            custom_timeouts=_custom_timeouts(request),
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=sorted(request.ignoreChanges),
            aliases=self._alias_urns(request),
            additional_secret_outputs=sorted(set(request.additionalSecretOutputs)),
            location=self._location(request) if self.sites is not None else None,
            lookup_inputs=sorted(key for key, value in inputs.items()
                                 if any_string(value, self.lookup_strings.__contains__))
            if self.lookup_strings else [],
        ))
        if request.remote and self.sites is not None:
            self.remote.setdefault(request.type, []).append(request.name)
        if not request.custom:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        args = pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=json.loads(json.dumps(inputs)),
            provider=request.provider, resource_id=request.importId, custom=True,
        )
        resource_id, state = self.mocks.new_resource(args)
        resource_id = resource_id or ""
        if self.sites is not None:
            state = _unknown_if_derived(state)
        # Assets and archives come back as the program gave them (the recorded inputs only name them): the
        # SDK checks an output such as a Lambda function's `code` is an Archive again.
        state.update({key: value for key, value in raw.items()
                      if isinstance(value, dict) and value.get(SIG_KEY) in (ASSET_SIG, ARCHIVE_SIG)})
        # As the engine does: secret inputs stay secret in the state, and so do the outputs the
        # resource declares secret (e.g. RandomPassword.result), so values derived from them are too.
        for key in dict.fromkeys([*secret_inputs, *request.additionalSecretOutputs]):
            if key in state:
                state[key] = wrap_rpc_secret(state[key])
        obj = _struct(state)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj)

    def _default_provider(self, package: str, version: str) -> str:
        """The engine's default provider for ``package``, configured from ``<package>:*`` stack config.

        The real engine creates one for every resource without an explicit provider; recording it
        lets policies see provider-level settings such as ``aws:defaultTags``.
        """
        name = f"default_{version.replace('.', '_')}" if version else "default"
        urn = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::pulumi:providers:{package}::{name}"
        if urn not in self._default_providers:
            from pulumi.runtime.config import CONFIG

            prefix = f"{package}:"
            inputs: dict[str, Any] = {key[len(prefix):]: value for key, value in sorted(CONFIG.get().items())
                                      if key.startswith(prefix)}
            if version:
                inputs["version"] = version
            self._default_providers[urn] = True
            self.recorded.append(_Recorded(
                urn=urn, type=f"pulumi:providers:{package}", name=name, custom=True, parent=None, provider=None,
                dependencies=[], inputs=inputs, secret_inputs=[], protect=False))
        return urn

    def Invoke(self, request: Any) -> Any:
        args, _ = _struct_to_plain(request.args)
        call = pulumi_mocks.MockCallArgs(token=request.tok, args=args, provider=request.provider)
        result: Any = self.mocks.call(call)
        if isinstance(result, tuple):  # the Mocks API also allows (outputs, failures)
            result = result[0]
        if result is None:  # not in the table of answered lookups (shared/synth/mocks.py)
            site = _INVOKE_SITE.get()
            if self.sites is None:
                result = {}
            elif site is not None and site.plain:
                self.unanswered.setdefault((request.tok, site.where), True)
                site.unanswered.append(True)
                result = {}
            else:
                # The engine's answer to an invoke it cannot serve during a preview: wholly unknown.
                self.unanswered.setdefault((request.tok, site.where if site else "(unknown site)"), False)
                return resource_pb2.ResourceInvokeResponse(unknown=True)
        if self.sites is not None:
            self.lookup_strings.update(_strings(result))
        return resource_pb2.ResourceInvokeResponse(**{"return": _struct(result)})

    def ReadResource(self, request: Any) -> Any:
        inputs, secret_inputs = _struct_to_plain(request.properties)
        resource_id, state = self.mocks.new_resource(pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.id))
        if (self.sites is not None and request.type == "pulumi:pulumi:StackReference"
                and request.id not in getattr(self.mocks, "stack_outputs", {})):
            # Another project's stack, not available offline: its outputs are unknown, as in a preview
            # that cannot read them (get_output/require_output give unknowns instead of KeyError).
            state = {key: value for key, value in state.items() if key != "outputs"}
            location = self._location(request)
            self.unreadable.setdefault(request.id, f"{location['path']}:{location['line']}" if location
                                       else self.sites.where())
        urn = self.make_urn(request.parent, request.type, request.name)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id or "", state)
        response = resource_pb2.ReadResourceResponse(urn=urn, properties=_struct(state))
        if request.type == "pulumi:pulumi:StackReference":
            inputs = {"name": request.id}
        self.recorded.append(_Recorded(
            urn=response.urn, type=request.type, name=request.name, custom=True,
            parent=request.parent or None, provider=_provider_urn(request.provider),
            dependencies=sorted(set(request.dependencies)), inputs=inputs,
            secret_inputs=secret_inputs, protect=False,
        ))
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn and request.urn == self.stack_urn:
            self.stack_outputs, self.secret_outputs = _struct_to_plain(request.outputs)
            if self.sites is not None:
                self.stack_outputs = _unknown_if_derived(self.stack_outputs)
        return super().RegisterResourceOutputs(request)


def _read_yaml(path: Path) -> Any:
    """A Pulumi project or stack settings file's content (an empty file: ``{}``); one it cannot read is a
    :class:`ConfigError` naming it."""
    try:
        return safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(str(path), "(file)", f"YAML syntax error: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), "(file)", f"not UTF-8 text ({error})") from None


def _read_project(program_dir: Path) -> dict[str, Any]:
    for candidate in ("Pulumi.yaml", "Pulumi.yml"):
        path = program_dir / candidate
        if path.is_file():
            data = _read_yaml(path)
            if not isinstance(data, dict) or not data.get("name"):
                raise ConfigError(str(path), "name", "a Pulumi project file needs a name")
            runtime = data.get("runtime")
            runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
            if runtime_name != "python":
                raise ConfigError(str(path), "runtime", f"is {runtime_name!r}; only Python programs can be synthesized")
            return data
    raise ConfigError(str(program_dir), "Pulumi.yaml", "not a Pulumi project (no Pulumi.yaml)")


def _main_file(program_dir: Path, project: dict[str, Any]) -> Path:
    main = project.get("main")
    base = program_dir / main if main else program_dir
    candidate = base / "__main__.py" if base.is_dir() else base
    if not candidate.is_file():
        raise ConfigError(str(program_dir), "__main__.py", "the program has no __main__.py")
    return candidate


def _stack_config(program_dir: Path, project_name: str, stack: str) -> tuple[dict[str, str], list[str]]:
    """The stack's config (Pulumi.<stack>.yaml), namespaced as the engine passes it."""
    path = program_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}, []
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", f"a stack settings file is a mapping, not a {type(data).__name__}")
    stack_config = data.get("config") or {}
    if not isinstance(stack_config, dict):
        raise ConfigError(str(path), "config", f"is a {type(stack_config).__name__}; give a mapping of key: value")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in stack_config.items():
        full_key = key if ":" in key else f"{project_name}:{key}"
        if isinstance(value, dict) and "secure" in value:
            # Ciphertext cannot be decrypted offline: a placeholder, still marked secret.
            value = "synth-placeholder-secret"
            secret_keys.append(full_key)
        config[full_key] = value if isinstance(value, str) else json.dumps(value)
    return config, secret_keys


@contextlib.contextmanager
def _program_context(program_dir: Path, env_vars: dict[str, str]) -> Iterator[None]:
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_env = {key: os.environ.get(key) for key in env_vars}
    os.environ.update(env_vars)
    os.chdir(program_dir)
    sys.path.insert(0, str(program_dir))
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # Forget the program's own modules so the next program gets fresh copies.
        for module_name in set(sys.modules) - saved_modules:
            module = sys.modules.get(module_name)
            module_file = getattr(module, "__file__", None) or ""
            if module_file.startswith(str(program_dir)):
                del sys.modules[module_name]


@dataclass
class ProgramRun:
    project: str
    stack: str
    document: dict[str, Any]
    stack_references: list[str] = field(default_factory=list)


def synth_program(
    program_dir: Path | str,
    *,
    stack: str = "dev",
    layer: str | None = None,
    env: str | None = None,
    account_id: str = "123456789012",
    region: str | None = None,
    stack_outputs: dict[str, dict[str, Any]] | None = None,
    organization: str = "organization",
    env_vars: dict[str, str] | None = None,
    preview: bool = False,
) -> dict[str, Any]:
    """Synthesize one Pulumi Python program; returns the synth JSON document (README, File formats).

    ``preview`` (``--program`` runs) runs it as ``pulumi preview`` would: the SDK's dry run, so an
    output the mocks do not compute is unknown (never None) and ``apply`` callbacks do not run on
    it; the program's own ``aws:region`` config wins over ``region``; each resource carries the
    file:line that created it (``location``) and the document lists ``warnings`` (lookups not
    answered offline, multi-language components not judged). The platform's layers run without
    it: their synth output stays as it is.
    """
    program_dir = Path(program_dir).resolve()
    project_data = _read_project(program_dir)
    project = str(project_data["name"])
    main = _main_file(program_dir, project_data)
    config, secret_keys = _stack_config(program_dir, project, stack)
    if preview:
        region = config.get("aws:region") or region or "us-east-1"
    else:
        region = region or config.get("aws:region") or "us-east-1"

    def program() -> None:
        runpy.run_path(str(main), run_name="__main__")

    document = _synth(program, str(program_dir), _program_context(program_dir, env_vars or {}), project=project,
                      stack=stack, account_id=account_id, region=region, stack_outputs=stack_outputs or {},
                      organization=organization, config=config, secret_keys=secret_keys,
                      sites=ProgramSites(program_dir) if preview else None)
    return {"project": project, "stack": stack, "layer": layer, "env": env, **document}


def synth_function(build: Callable[[], None], *, project: str = "component", stack: str = "dev",
                   account_id: str = "123456789012", region: str = "us-east-1",
                   config: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``build`` as the whole program of a throwaway stack under the mock runtime (a component alone,
    with its args: ``synth_function(lambda: VpcNetwork("network", args))``); the synth JSON document
    with ``layer`` and ``env`` None. ``config`` is namespaced (``aws:region``)."""
    document = _synth(build, getattr(build, "__qualname__", "program"), contextlib.nullcontext(), project=project,
                      stack=stack, account_id=account_id, region=region, stack_outputs={},
                      organization="organization", config=config or {}, secret_keys=[], sites=None)
    return {"project": project, "stack": stack, "layer": None, "env": None, **document}


def _synth(program: Callable[[], None], label: str, context: contextlib.AbstractContextManager[Any], *,
           project: str, stack: str, account_id: str, region: str, stack_outputs: dict[str, dict[str, Any]],
           organization: str, config: dict[str, str], secret_keys: list[str],
           sites: ProgramSites | None) -> dict[str, Any]:
    """Run ``program`` under the mock runtime; the document's resources, outputs and references.

    ``sites`` (``--program`` runs): a preview -- the SDK's dry run, resource locations, ``warnings``."""
    preview = sites is not None
    mocks = PlatformMocks(project=project, stack=stack, account_id=account_id, region=region,
                          stack_outputs=stack_outputs)
    monitor = RecordingMonitor(mocks, sites)
    patched = patches_allowed("the synth's SDK fast paths", SYNTH_PATCHED)  # decided once per run
    hooks = _preview_hooks(sites, patched) if sites is not None else contextlib.nullcontext()

    def run() -> None:
        # In a copy of the caller's context (the SDK keeps its settings, config and root resource in context
        # variables), with a tracked-outputs set of its own, its leftover tasks ended (_run_alone): nothing of this
        # synth's runtime reaches another synth or the caller (a test's own pulumi.runtime.set_mocks stays as it was).
        settings = pulumi_mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=pulumi_mocks.MockEngine(None),
            project=project, stack=stack, dry_run=preview, organization=organization, callbacks=None,
            outputs=_TrackedOutputs(),
        )
        pulumi_settings.ROOT.set(None)
        pulumi_settings.configure(settings)
        set_all_config(config, secret_keys)
        _run_alone(loop, run_in_stack(program))

    loop = pulumi_sync_await._ensure_event_loop()
    with context, _fast_runtime(patched, loop), hooks:
        try:
            contextvars.copy_context().run(run)
        except ContractError as error:
            from shared.contracts import StackContractError

            # an upstream stack's outputs come from its own synth, not from this program's mock answers
            if mocks.generic_types and not isinstance(error, StackContractError):
                raise type(error)(f"{error}{_generic_hint(mocks)}") from error
            raise
        except PlatformError:
            raise
        except Exception as error:
            frames = program_frames(error)
            where = ("\n  " + "\n  ".join(frames)) if frames else ""
            noticed = monitor.warnings
            hint = ("\n  " + "\n  ".join(f"warning: {line}" for line in noticed)) if noticed else ""
            raise SynthError(f"{label}: the program failed under the mock runtime: "
                             f"{type(error).__name__}: {error}{where}{hint}{_generic_hint(mocks)}",
                             error=f"{type(error).__name__}: {error}", frames=frames, warnings=noticed) from error

    resources = sorted((r.as_json() for r in monitor.recorded), key=lambda r: r["urn"])
    references = sorted(r["inputs"].get("name", "") for r in resources if r["type"] == "pulumi:pulumi:StackReference")
    document: dict[str, Any] = {
        "resources": resources,
        "outputs": monitor.stack_outputs,
        "secret_outputs": sorted(monitor.secret_outputs),
        "stack_references": references,
    }
    if preview:
        document["warnings"] = monitor.warnings
    return document


def layer_dir(layer: str) -> Path:
    return REPO_ROOT / "stacks" / layer


def synth_env(env_name: str, layers: list[str] | None = None,
              on_document: Callable[[dict[str, Any]], None] | None = None,
              program_environment: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Synthesize every layer (or ``layers`` and what they read) of an env, in DAG order.

    Each layer's exported outputs are handed to the downstream layers' StackReference reads.
    ``on_document`` sees each layer's document as soon as it exists (the policy engine starts
    evaluating it while the next layers synthesize).

    The env's plan is the env file's alone: what the orchestrator hands the programs from the account
    (:data:`shared.broker_capacity.RUNNING_BROKER_VARIABLE`, :data:`shared.broker_upgrade.ACTIONS_VARIABLE`), and a
    pull request's published-contracts mode (:data:`shared.published.PUBLISHED_VARIABLE`), are blanked, whatever the
    shell exports, unless ``program_environment`` gives it (the synth, the snapshots, ``nox -s diff`` and ``policy``
    stay the same).
    """
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE
    from shared.broker_upgrade import ACTIONS_VARIABLE
    from shared.contracts import stack_reference_name
    from shared.dag import order, upstream_closure
    from shared.envs import load_env
    from shared.published import PUBLISHED_VARIABLE

    env = load_env(env_name)
    wanted = upstream_closure(layers) if layers else order()
    outputs: dict[str, dict[str, Any]] = {}
    documents: dict[str, dict[str, Any]] = {}
    for layer in wanted:
        document = synth_program(
            layer_dir(layer), stack=env.name, layer=layer, env=env.name, account_id=env.account_id,
            region=env.region, stack_outputs=outputs, organization=env.pulumi_org,
            env_vars={RUNNING_BROKER_VARIABLE: "", ACTIONS_VARIABLE: "", PUBLISHED_VARIABLE: "",
                      **(program_environment or {})},
        )
        documents[layer] = document
        if on_document is not None:
            on_document(document)
        outputs[stack_reference_name(env.pulumi_org, document["project"], env.name)] = referenced_outputs(document)
    return documents


def referenced_outputs(document: dict[str, Any]) -> dict[str, Any]:
    """A synthesized stack's outputs as the engine serves them to a StackReference: its secret outputs still
    secret (the mocks list them in ``secretOutputNames``), so what a downstream program builds from one is secret."""
    secret = set(document["secret_outputs"])
    return {key: wrap_rpc_secret(value) if key in secret else value for key, value in document["outputs"].items()}


def dumps(document: dict[str, Any]) -> str:
    """The canonical, byte-stable JSON text of a synth document."""
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
