"""Helpers shared by the rules of the ``aws`` pack (``policies/aws/rules/<rule-id>.py``).

Three facts about how CrossGuard hands resources to a rule shape everything here:

* ``args.props`` is a proxy that raises ``UnknownValueError`` the moment a rule touches a value that is
  unknown during preview (an output of a resource not created yet). ``Mapping.get`` and ``in`` touch
  the value too. :func:`plain` turns the proxy into ordinary dicts/lists with :data:`UNKNOWN` markers so
  a rule can look at everything it can decide, and :func:`applies_to` turns any remaining
  ``UnknownValueError`` into *not applicable* -- never a crash, never a silent pass.
* Numbers arrive as floats (they travel as ``google.protobuf.Struct``), so ``80`` is ``80.0``.
* Properties left unset are absent: the rule applies the AWS/provider default (the documented one).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from shared.policy_support import limit_to_types, other_type_reason


class _Unknown:
    """Marker for a value CrossGuard reported as unknown (computed during preview)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The one :class:`_Unknown` instance; compare with ``is``."""

ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]


def plain(value: Any) -> Any:
    """A CrossGuard props proxy as plain dicts/lists; unknown values become :data:`UNKNOWN`."""
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in value:  # iterating a proxy reads keys only, never values
            try:
                result[key] = plain(value[key])
            except UnknownValueError:
                result[key] = UNKNOWN
        return result
    if isinstance(value, Sequence):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def undecidable(args: ResourceValidationArgs | StackValidationArgs, what: str) -> NoReturn:
    """Mark the rule not-applicable because ``what`` is unknown until the resources exist."""
    args.not_applicable(f"{what} is unknown until deployment; the rule decides once it is known")
    raise AssertionError("not_applicable returned")  # pragma: no cover - not_applicable always raises


def applies_to(*resource_types: str) -> Callable[[ResourceCheck], ResourceCheck]:
    """Run the decorated check only for ``resource_types``; other types are reported not applicable.

    Any value the check touches that is unknown during preview makes the rule *not applicable* for
    that resource (with the property path as reason) instead of failing the whole policy run.
    """

    def decorate(check: ResourceCheck) -> ResourceCheck:
        @functools.wraps(check)
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if args.resource_type not in resource_types:
                args.not_applicable(other_type_reason(args.resource_type))
            try:
                check(args, report_violation)
            except UnknownValueError as error:
                path = ".".join(str(step) for step in error.props)
                undecidable(args, f"{args.resource_type} '{args.name}': {path}")

        return limit_to_types(validate, frozenset(resource_types))

    return decorate


def get(obj: Any, *path: str | int) -> Any:
    """``obj[p0][p1]...`` on plain data; ``None`` when a step is missing, :data:`UNKNOWN` when unknown."""
    current = obj
    for step in path:
        if current is UNKNOWN:
            return UNKNOWN
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        else:
            if not isinstance(current, dict):
                return None
            current = current.get(step)
    return current


def as_list(value: Any) -> list[Any]:
    """A list-valued property: ``None`` is empty; a single value is a one-item list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def is_true(value: Any) -> bool:
    """``True`` or the string ``"true"`` (bridged providers accept both)."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def as_int(value: Any) -> int | None:
    """An integer-valued property (numbers arrive as floats, some as strings); ``None`` if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def parse_json(value: Any) -> Any:
    """A JSON-string property (policies, container definitions) as data; objects pass through.

    Raises ``ValueError`` when the string is not JSON.
    """
    if isinstance(value, str):
        return json.loads(value)
    return value


def container_definitions(args: ResourceValidationArgs, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The containers of an ``aws:ecs/taskDefinition:TaskDefinition`` (``containerDefinitions`` JSON).

    Unknown or unparsable definitions make the calling rule not applicable: whether they are valid at
    all is ``ecs-task-definition-valid``'s finding, not every container rule's.
    """
    raw = props.get("containerDefinitions")
    if raw is UNKNOWN:
        undecidable(args, f"task definition '{args.name}': containerDefinitions")
    try:
        containers = parse_json(raw)
    except ValueError:
        args.not_applicable(
            f"task definition '{args.name}': containerDefinitions is not valid JSON (see ecs-task-definition-valid)"
        )
    if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
        args.not_applicable(
            f"task definition '{args.name}': containerDefinitions is not a list of objects "
            "(see ecs-task-definition-valid)"
        )
    if contains_unknown(containers):
        undecidable(args, f"task definition '{args.name}': part of containerDefinitions")
    return containers


def container_label(container: Mapping[str, Any], index: int) -> str:
    name = container.get("name")
    return f"'{name}'" if isinstance(name, str) and name else f"#{index}"


# --- IAM policy documents -------------------------------------------------------------------------


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM policy document (``Statement`` may be one object or a list)."""
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


# --- security groups ------------------------------------------------------------------------------

def is_world(cidr: Any) -> bool:
    """``0.0.0.0/0`` or ``::/0`` (any spelling of a zero-length prefix)."""
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def protocol_name(protocol: Any) -> str:
    text = str(protocol).strip().lower() if protocol is not None else "-1"
    return {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}.get(text, text)


def describe_ports(protocol: Any, from_port: Any, to_port: Any) -> str:
    """``tcp 22``, ``tcp 1000-2000``, ``all traffic`` -- for messages."""
    name = protocol_name(protocol)
    if name == "-1":
        return "all traffic"
    low, high = as_int(from_port), as_int(to_port)
    if name not in ("tcp", "udp") or low is None:
        return name
    if high is None or high == low:
        return f"{name} {low}"
    return f"{name} {low}-{high}"


# --- stack rules: which resource does a reference point at? ---------------------------------------


def identity_values(resource: PolicyResource, keys: Iterable[str]) -> set[str]:
    """Known string values of ``keys`` on ``resource`` (e.g. its ``id`` under the real CLI, its name)."""
    values: set[str] = set()
    for key in keys:
        try:
            value = resource.props.get(key)
        except UnknownValueError:
            continue
        if isinstance(value, str) and value:
            values.add(value)
    return values


def referenced_targets(
    resource: PolicyResource,
    prop: str,
    targets: Sequence[PolicyResource],
    identity_keys: Iterable[str] = ("id", "arn"),
) -> list[PolicyResource] | None:
    """The resources among ``targets`` that ``resource.props[prop]`` refers to; ``None`` if undecidable.

    CrossGuard stack validation sees resources with their input properties, so a FlowLog's ``vpcId`` is
    the VPC's id -- which a VPC's own inputs never contain. The reference is therefore resolved in this
    order, most exact first:

    1. ``property_dependencies[prop]``: the engine (and the real CLI) records which resources a
       property was computed from; if it names any, that is the answer.
    2. value comparison: the property's value equals a known identity value of a target (``id``/``arn``
       as the real CLI reports them, or e.g. a repository's explicit ``name``).
    3. ``dependencies``: if the resource depends on exactly one of the targets, that one.

    Returns ``[]`` when the reference provably points elsewhere (e.g. a VPC of another stack) and
    ``None`` when it cannot be told (unknown value and several candidate targets).
    """
    target_urns = {t.urn: t for t in targets}
    prop_deps = resource.property_dependencies.get(prop) or []
    if prop_deps:
        return [target_urns[d.urn] for d in prop_deps if d.urn in target_urns]

    try:
        value = resource.props.get(prop)
    except UnknownValueError:
        value = UNKNOWN
    if value is None:
        return []
    identity_keys = tuple(identity_keys)
    if isinstance(value, str):
        by_value = [t for t in targets if value in identity_values(t, identity_keys)]
        if by_value:
            return by_value

    depended = [target_urns[d.urn] for d in resource.dependencies if d.urn in target_urns]
    if len(depended) == 1:
        return depended
    if len(depended) > 1:
        return None
    if value is UNKNOWN:
        return None
    return []


# --- resource and trust policies: who is the principal? -------------------------------------------


def principal_values(statement: Mapping[str, Any]) -> list[Any]:
    """Every principal a statement names (``Principal: "*"`` or ``{"AWS": [...], "Service": ...}``)."""
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        return [value for values in principal.values() for value in as_list(values)]
    return as_list(principal)


def is_public_statement(statement: Mapping[str, Any]) -> bool:
    """An ``Allow`` whose principal is anyone (``*``, ``{"AWS": "*"}``) and that has no ``Condition``.

    A condition (``aws:PrincipalOrgID``, ``aws:SourceAccount``, ``aws:SourceArn``...) is how a policy
    that must name ``*`` narrows it to known callers; the rules accept any condition, as AWS Config's
    and checkov's public-access checks do for resource policies.
    """
    if str(statement.get("Effect", "")).lower() != "allow" or statement.get("Condition"):
        return False
    if statement.get("NotPrincipal") is not None:
        return True  # Allow with NotPrincipal: everyone but the listed principals
    return any(isinstance(value, str) and value.strip() == "*" for value in principal_values(statement))
