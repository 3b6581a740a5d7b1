"""Throughput for pulumi_policy's analyzer server, installed in packs the offline engine starts.

pulumi_policy's ``Analyze`` converts a resource's properties (and its provider's) from protobuf to
Python, wraps them in an eager unknown-checking proxy and builds the options and provider objects
*once per rule*: in the 32-rule aws pack that was ~85 % of the pack's time, the rules themselves
~7 %. :func:`install` changes how values reach the rules, not what the pack answers (the tests
compare responses byte for byte with plain pulumi_policy):

* each properties message is converted once per request, not once per rule; the provider's
  properties (the same few values for thousands of resources) once per distinct value;
* the options and provider objects are built once per request;
* rules see a *lazy* unknown-checking proxy -- the same ``UnknownValueError`` with the same
  property path on the same access, but children are wrapped when read, not all up front. Because
  the converted values are shared by the rules of one request, the proxy is read-only: a rule that
  assigns into ``args.props`` gets a ``TypeError`` instead of changing what the next rule sees;
* ``Analyze`` is pulumi_policy's, line for line, except that a rule which declared its resource
  types (``shared.policy_support.limit_to_types``) is answered not-applicable for other types
  without being called -- the answer it would give. ``AnalyzeStack`` is pulumi_policy's, except
  that it reads each resource of the request once instead of once per stack rule (every rule still
  gets its own ``PolicyResource`` objects, linked the same way).

It also serves one extra method beside the Analyzer service, :data:`BATCH_METHOD`: many
``AnalyzeRequest``s in, their ``AnalyzeResponse``s out, in one call (framing below). The offline
engine uses it to avoid a gRPC round trip per resource and pack; the ``pulumi`` CLI never calls it.

Besides the standard library, grpc/protobuf and pulumi_policy it imports only
``shared.policy_support`` (which the rules import anyway). Packs install it only when the offline
engine started them and the installed versions are the pinned ones (``shared.patch_guard``): under
the real CLI a pack is plain pulumi_policy.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from inspect import isawaitable
from typing import Any

import grpc
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import policy as _policy
from pulumi_policy import proxy as _proxy

from shared.patching import replace_attributes
from shared.policy_support import RESOURCE_TYPES_ATTRIBUTE, other_type_reason

BATCH_SERVICE = "mlplatform.AnalyzerBatch"
BATCH_METHOD = f"/{BATCH_SERVICE}/AnalyzeBatch"
BATCH_OK = 0
BATCH_FAILED = 1
_LENGTH = struct.Struct(">I")
_STATUS_LENGTH = struct.Struct(">BI")
_CACHE_SIZE = 64

_original_message_to_dict = json_format.MessageToDict
_original_deserialize = _policy.deserialize_properties
_original_proxy = _policy.unknown_checking_proxy
_installed = False


# -- framing of the batch method ----------------------------------------------------------------------
# request: repeated (uint32 big-endian length, AnalyzeRequest bytes)
# response: repeated (uint8 status, uint32 length, payload); status 0: AnalyzeResponse bytes,
#           status 1: the error the pack raised for that request (UTF-8 text)


def encode_requests(bodies: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(body)) + body for body in bodies)


def decode_requests(data: bytes) -> Iterator[bytes]:
    offset = 0
    while offset < len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise ValueError("truncated batch request")
        yield data[offset:offset + length]
        offset += length


def encode_responses(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_STATUS_LENGTH.pack(status, len(payload)) + payload for status, payload in items)


def decode_responses(data: bytes) -> list[tuple[int, bytes]]:
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        status, length = _STATUS_LENGTH.unpack_from(data, offset)
        offset += _STATUS_LENGTH.size
        if offset + length > len(data):
            raise ValueError("truncated batch response")
        items.append((status, data[offset:offset + length]))
        offset += length
    return items


# -- convert once --------------------------------------------------------------------------------------


class _Converted(dict):  # type: ignore[type-arg]
    """``MessageToDict``'s result, carrying its deserialized form for every rule of the request."""

    __slots__ = ("deserialized",)
    deserialized: _Shared


class _Shared(dict):  # type: ignore[type-arg]
    """A deserialized property tree shared by several rules: handed out only behind a read-only proxy."""

    __slots__ = ()


class _State(threading.local):
    def __init__(self) -> None:
        self.active = False
        self.cache: OrderedDict[bytes, _Converted] = OrderedDict()
        # (kind, id(message)) -> (message, result) for the call in progress; holding the message
        # keeps its id from being reused while the entry exists
        self.per_request: dict[tuple[str, int], tuple[Any, Any]] = {}


_state = _State()


def _message_to_dict(message: Any, *args: Any, **kwargs: Any) -> Any:
    if not _state.active or args or kwargs:
        return _original_message_to_dict(message, *args, **kwargs)
    return _per_request("MessageToDict", message, lambda: _convert(message))


def _convert(message: Any) -> _Converted:
    """A properties message as a dict carrying its deserialized form; equal messages share one."""
    key = message.SerializeToString(deterministic=True)
    cache = _state.cache
    converted = cache.get(key)
    if converted is None:
        converted = _Converted(_original_message_to_dict(message))
        converted.deserialized = _Shared(_original_deserialize(converted))
        cache[key] = converted
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return converted


def _deserialize_properties(props: Any, proxy_secrets: bool = False) -> Any:
    if type(props) is _Converted and not proxy_secrets:
        return props.deserialized
    return _original_deserialize(props, proxy_secrets)


def _unknown_checking_proxy(props: Any) -> Any:
    if type(props) is _Shared:
        return _LazyDict(props, [])
    return _original_proxy(props)


def _per_request(kind: str, message: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per ``(kind, message)`` during the call in progress. The entry holds the
    message, so its id cannot be reused by another object while the entry exists."""
    key = (kind, id(message))
    entry = _state.per_request.get(key)
    if entry is None or entry[0] is not message:
        entry = (message, compute())
        _state.per_request[key] = entry
    return entry[1]


def _once_per_request(method: Any) -> Any:
    """``method(self, request)`` computed once per request message while a call is in progress.

    Used for the options and provider objects pulumi_policy builds for every rule; they are plain
    data holders the rules only read.
    """

    @functools.wraps(method)
    def wrapper(self: Any, request: Any) -> Any:
        if not _state.active:
            return method(self, request)
        return _per_request(method.__name__, request, lambda: method(self, request))

    return wrapper


class _JsonFormat:
    """Stands in for ``google.protobuf.json_format`` inside ``pulumi_policy.policy`` only."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json_format, name)

    MessageToDict = staticmethod(_message_to_dict)


# -- the lazy proxy ------------------------------------------------------------------------------------


def _wrap(key: Any, value: Any, path: list[str]) -> Any:
    if _proxy._is_unknown(value):
        raise _proxy.UnknownValueError(value, _proxy._append_prop(path, key))
    if isinstance(value, dict):
        return _LazyDict(value, _proxy._append_prop(path, key))
    if isinstance(value, list):
        return _LazyList(value, _proxy._append_prop(path, key))
    return value


class _LazyDict(_proxy._DictProxy):
    """pulumi_policy's ``_DictProxy`` with children wrapped on access; read-only."""

    __slots__ = ("_path", "_raw")

    def __init__(self, target: dict[str, Any], path: list[str]) -> None:
        self._raw = target
        self._path = path

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return self._raw
        return _wrap(key, self._raw[key], self._path)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("resource properties are read-only inside a policy (they are shared by the pack's rules)")

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)


class _LazyList(_proxy._ListProxy):
    """pulumi_policy's ``_ListProxy`` with children wrapped on access."""

    __slots__ = ("_path", "_raw")

    def __init__(self, target: list[Any], path: list[str]) -> None:
        self._raw = target
        self._path = path

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return self._raw
        if isinstance(key, slice):
            # As pulumi_policy: a slice is a plain list of the (wrapped) elements, unknowns unchecked.
            indices = range(len(self._raw))[key]
            return [self._raw[i] if _proxy._is_unknown(self._raw[i]) else _wrap(i, self._raw[i], self._path)
                    for i in indices]
        return _wrap(key, self._raw[key], self._path)

    def __len__(self) -> int:
        return len(self._raw)


# -- the servicer ---------------------------------------------------------------------------------------


@functools.cache
def _declared_types(policy: Any) -> frozenset[str] | None:
    """The resource types a rule declared with ``limit_to_types`` (None: it looks at every type)."""
    if type(policy) is not _policy.ResourceValidationPolicy:
        return None
    validate = getattr(policy, "_ResourceValidationPolicy__validate", None)
    types = getattr(validate, RESOURCE_TYPES_ATTRIBUTE, None)
    return types if isinstance(types, frozenset) else None


_PLANS = "_fast_analyzer_plans"


def _plan(self: Any, resource_type: str) -> list[Any]:
    """What ``Analyze`` does per rule for a resource of ``resource_type``, in rule order: a ready
    not-applicable answer (a disabled rule is left out), or ``(policy, enforcement level)`` to run.

    It depends only on the type and the levels ``Configure`` set, so it is worked out once per type
    and configuration: ``Configure`` replaces the levels dict, and a plan is reused only while the
    dict it was made for is still the servicer's (the entry holds it, so its identity is stable)."""
    levels = self._PolicyAnalyzerServicer__policy_pack_config_enforcement_level
    plans: dict[str, tuple[Any, list[Any]]] = self.__dict__.setdefault(_PLANS, {})
    entry = plans.get(resource_type)
    if entry is not None and entry[0] is levels:
        return entry[1]
    proto = _policy.proto
    level_disabled, level_remediate = _policy.EnforcementLevel.DISABLED, _policy.EnforcementLevel.REMEDIATE
    plan: list[Any] = []
    for policy in self._PolicyAnalyzerServicer__policies:
        enforcement_level = self._get_enforcement_level(policy)
        if enforcement_level == level_disabled or not isinstance(policy, _policy.ResourceValidationPolicy):
            continue
        types = _declared_types(policy)
        if types is not None and resource_type not in types:
            plan.append(proto.PolicyNotApplicable(policy_name=policy.name, reason=other_type_reason(resource_type)))
            continue
        if not policy.has_validation():
            plan.append(proto.PolicyNotApplicable(policy_name=policy.name, reason="Policy does not implement validate"))
            continue
        if enforcement_level == level_remediate:
            enforcement_level = _policy.EnforcementLevel.MANDATORY
        plan.append((policy, enforcement_level))
    plans[resource_type] = (levels, plan)
    return plan


def _analyze(self: Any, request: Any, _context: Any) -> Any:
    """pulumi_policy's ``Analyze``, line for line, plus two shortcuts: a rule that declared its
    resource types (``limit_to_types``) is answered not-applicable for any other type without
    building its arguments -- the answer its validate function would give (for a 32-rule pack most
    rules check a handful of types, so that was most of the work per resource); and which rules
    run, at which level, and the not-applicable answers of the others are worked out once per
    resource type and configuration (:func:`_plan`), not for every resource."""
    self._configure_runtime_settings()
    proto = _policy.proto
    response = proto.AnalyzeResponse()
    not_applicable = response.not_applicable
    for step in _plan(self, request.type):
        if type(step) is not tuple:
            not_applicable.append(step)
            continue
        policy, enforcement_level = step

        report_violation = self._create_report_violation(response, policy.name, policy.description,
                                                         enforcement_level, policy.severity)
        deserialized = _policy.deserialize_properties(_policy.json_format.MessageToDict(request.properties))
        props = _policy.unknown_checking_proxy(deserialized)
        opts = self._get_resource_options(request)
        provider = self._get_provider_resource(request)
        config = self._get_policy_config(policy.name)
        args = _policy.ResourceValidationArgs(request.type, props, request.urn, request.name, opts, provider,
                                              config, self._PolicyAnalyzerServicer__stack_tags)
        _validate(self, policy, args, report_violation, response)
    return response


def _validate(self: Any, policy: Any, args: Any, report_violation: Any, response: Any) -> None:
    """What pulumi_policy's ``Analyze`` and ``AnalyzeStack`` both do with one rule's arguments: run
    it (awaiting a coroutine), a read of an unknown value becomes the advisory "can't run policy"
    diagnostic, ``args.not_applicable`` a not-applicable answer."""
    proto = _policy.proto
    try:
        result = policy.validate(args, report_violation)
        if isawaitable(result):
            loop = asyncio.new_event_loop()
            task = asyncio.Task(result, loop=loop)  # type: ignore[arg-type,var-annotated]
            loop.run_until_complete(task)
            loop.close()
    except _proxy.UnknownValueError as e:
        name = self._PolicyAnalyzerServicer__policy_pack_name
        version = self._PolicyAnalyzerServicer__policy_pack_version
        response.diagnostics.append(proto.AnalyzeDiagnostic(
            policyName=policy.name,
            policyPackName=name,
            policyPackVersion=version,
            message=(f"can't run policy '{policy.name}' from policy pack "
                     f"'{name}@v{version}' during preview: {e.message}"),
            urn="",
            description=policy.description,
            enforcementLevel=self._map_enforcement_level(_policy.EnforcementLevel.ADVISORY),
        ))
    except _policy._NotApplicableError as e:
        response.not_applicable.append(proto.PolicyNotApplicable(policy_name=policy.name, reason=e.reason or ""))


def _analyze_stack(self: Any, request: Any, _context: Any) -> Any:
    """pulumi_policy's ``AnalyzeStack``, line for line, except that what it computed again for every
    stack rule from the request -- each resource's converted properties, options, provider, parent,
    dependency and property-dependency URNs -- is read from the request once. Every rule still gets
    its own ``PolicyResource`` objects, lists and dicts, linked the same way. With ~10 stack rules
    per pack over a 2,800-resource stack, that per-rule re-reading was nearly all of the call."""
    self._configure_runtime_settings()
    proto = _policy.proto
    policy_resource = _policy.PolicyResource
    response = proto.AnalyzeResponse()
    entries: list[tuple[Any, Any, str, str, Any, Any, str, list[str], dict[str, list[str]]]] | None = None

    for policy in self._PolicyAnalyzerServicer__policies:
        enforcement_level = self._get_enforcement_level(policy)
        if enforcement_level == _policy.EnforcementLevel.DISABLED or not isinstance(
                policy, _policy.StackValidationPolicy):
            continue
        if enforcement_level == _policy.EnforcementLevel.REMEDIATE:
            # Stack policies cannot be remediated, so treat the level as mandatory.
            enforcement_level = _policy.EnforcementLevel.MANDATORY

        report_violation = self._create_report_violation(response, policy.name,
                                                         policy.description, enforcement_level, policy.severity)

        if entries is None:  # what upstream reads from each resource message, read once
            entries = []
            for r in request.resources:
                entries.append((
                    r.type, _policy.deserialize_properties(_policy.json_format.MessageToDict(r.properties)), r.urn,
                    r.name, self._get_resource_options(r), self._get_provider_resource(r), r.parent,
                    list(r.dependencies), {k: list(v.urns) for k, v in r.propertyDependencies.items()},
                ))

        resources: list[Any] = []
        urns_to_resources: dict[str, Any] = {}
        for type_, deserialized, urn, name, opts, provider, _parent, _deps, _prop_deps in entries:
            resource = policy_resource(type_, _policy.unknown_checking_proxy(deserialized), urn, name, opts, provider,
                                       None, [], {})
            resources.append(resource)
            urns_to_resources[urn] = resource

        # Set the parent, dependencies and property dependencies to the actual resource objects.
        for resource, (*_, parent, dependencies, property_dependencies) in zip(resources, entries, strict=True):
            if parent is not None and parent in urns_to_resources:
                resource.parent = urns_to_resources[parent]
            for d in dependencies:
                if d in urns_to_resources:
                    resource.dependencies.append(urns_to_resources[d])
            for k, v in property_dependencies.items():
                resource.property_dependencies[k] = [urns_to_resources[d] for d in v if d in urns_to_resources]

        config = self._get_policy_config(policy.name)
        args = _policy.StackValidationArgs(resources, config, self._PolicyAnalyzerServicer__stack_tags)

        _validate(self, policy, args, report_violation, response)

    return response


def _converting_once(method: Any) -> Any:
    """``method(self, request, context)`` with the per-request memo (:func:`_per_request`) active."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: Any) -> Any:
        previous = _state.active, _state.per_request
        _state.active, _state.per_request = True, {}
        try:
            return method(self, request, context)
        finally:
            _state.active, _state.per_request = previous

    return wrapper


def _batch_handler(servicer: Any) -> grpc.GenericRpcHandler:
    def analyze_batch(request: bytes, context: Any) -> bytes:
        items: list[tuple[int, bytes]] = []
        for body in decode_requests(request):
            try:
                response = servicer.Analyze(analyzer_pb2.AnalyzeRequest.FromString(body), context)
                items.append((BATCH_OK, response.SerializeToString()))
            except Exception as error:  # noqa: BLE001 - reported per request; the engine re-sends it alone
                items.append((BATCH_FAILED, f"{type(error).__name__}: {error}".encode()))
        return encode_responses(items)

    return grpc.method_handlers_generic_handler(BATCH_SERVICE, {
        "AnalyzeBatch": grpc.unary_unary_rpc_method_handler(analyze_batch),
    })


def patch() -> Callable[[], None]:
    """Patch pulumi_policy in this process; returns the function that undoes it (tests use both)."""
    servicer_class = _policy._PolicyAnalyzerServicer
    grpc_module = _policy.analyzer_pb2_grpc
    original_add = grpc_module.add_AnalyzerServicer_to_server

    def add_servicer(servicer: Any, server: Any) -> None:
        original_add(servicer, server)
        server.add_generic_rpc_handlers((_batch_handler(servicer),))

    restore = replace_attributes([
        (servicer_class, "Analyze", _converting_once(_analyze)),
        (servicer_class, "AnalyzeStack", _converting_once(_analyze_stack)),
        (servicer_class, "_get_resource_options", _once_per_request(servicer_class._get_resource_options)),
        (servicer_class, "_get_provider_resource", _once_per_request(servicer_class._get_provider_resource)),
        (_policy, "json_format", _JsonFormat()),
        (_policy, "deserialize_properties", _deserialize_properties),
        (_policy, "unknown_checking_proxy", _unknown_checking_proxy),
        (grpc_module, "add_AnalyzerServicer_to_server", add_servicer),
    ])

    def undo() -> None:
        restore()
        _state.cache.clear()

    return undo


def install() -> None:
    """Patch pulumi_policy for the rest of this process, before ``PolicyPack(...)`` starts serving."""
    global _installed
    if not _installed:
        patch()
        _installed = True
