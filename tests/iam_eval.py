"""One IAM policy evaluator for the tests: does a set of policy statements allow an action on a resource for a
request context?

It models the parts of IAM's evaluation the platform's policies use (IAM user guide, "Policy evaluation logic",
"IAM JSON policy elements: Action / Resource / Condition", "Condition operators", "Conditions with multiple context
keys or values"):

- an explicit ``Deny`` that applies wins; else an ``Allow`` that applies allows; else the request is implicitly
  denied;
- ``Action``/``NotAction``: ``service:Name`` with ``*`` and ``?``, case-insensitive ("The prefix and the action
  name are case insensitive");
- ``Resource``/``NotResource``: ARNs with ``*`` and ``?`` within a colon-delimited segment, a ``*`` that ends a
  segment matching past colons; case-sensitive;
- ``Condition``: operators ANDed, keys of one operator ANDed, a key's values ORed (NORed for a negated operator);
  context key names case-insensitive; a key missing from the request fails a positive operator and passes a
  negated one; ``...IfExists`` passes on a missing key, ``Null`` tests presence; ``ForAnyValue``/``ForAllValues``
  over a multivalued key (an empty or missing set: ForAllValues true, ForAnyValue false). Operators: the
  ``String*`` family, ``Arn*`` (``ArnEquals`` and ``ArnLike`` identical, each of the six ARN components matched on
  its own), ``Bool`` and ``Null``.

Anything else (another operator, a policy variable, a ``Principal`` other than ``*``, a malformed statement, a
multivalued key under a single-valued operator, an ambiguous context) raises: a statement the evaluator does not
understand must never be taken for an allow or a deny.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from functools import cache
from typing import Any

#: A request context: key -> a value, a list of values (a multivalued key such as ``aws:TagKeys``), or None (absent).
Context = Mapping[str, str | bool | list[str] | tuple[str, ...] | None]

STRING_OPERATORS = ("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
                    "StringLike", "StringNotLike")
ARN_OPERATORS = ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
OPERATORS = (*STRING_OPERATORS, *ARN_OPERATORS, "Bool", "Null")


class Decision(Enum):
    ALLOW = "Allow"
    #: a Deny statement applies
    EXPLICIT_DENY = "Deny"
    #: no statement applies
    IMPLICIT_DENY = "NotApplicable"


def as_list(value: Any) -> list[Any]:
    """A policy element's value as a list (an element may be one value or a list of them)."""
    return list(value) if isinstance(value, list | tuple) else [value]


# -- matching --------------------------------------------------------------------------------------------------------

@cache
def _wildcard(pattern: str, *, segmented: bool, ignore_case: bool) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` any one; ``segmented``: neither crosses a colon, except a ``*`` that ends
    a segment (IAM user guide, "IAM JSON policy elements: Resource", wildcards in resource ARNs)."""
    parts = []
    for index, char in enumerate(pattern):
        if char == "*":
            ends_segment = index + 1 == len(pattern) or pattern[index + 1] == ":"
            parts.append("[^:]*" if segmented and not ends_segment else ".*")
        elif char == "?":
            parts.append("[^:]" if segmented else ".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """An ``Action`` entry against a requested action: wildcards, case-insensitive."""
    return _wildcard(pattern, segmented=False, ignore_case=True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """A ``Resource`` entry against a requested resource's ARN: wildcards within segments, case-sensitive."""
    return _wildcard(pattern, segmented=True, ignore_case=False).fullmatch(resource) is not None


def string_like(pattern: str, value: str) -> bool:
    """``StringLike``: ``*`` and ``?`` anywhere, case-sensitive."""
    return _wildcard(pattern, segmented=False, ignore_case=False).fullmatch(value) is not None


def arn_like(pattern: str, value: str) -> bool:
    """``ArnLike`` (and ``ArnEquals``, which behaves identically): each of the six colon-delimited components
    matched on its own, with wildcards, case-sensitive (IAM user guide, "Condition operators", ARN)."""
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(given) == 6 and all(string_like(w, g) for w, g in zip(wanted, given, strict=True))


# -- conditions ------------------------------------------------------------------------------------------------------

def _lookup(context: Context) -> dict[str, Any]:
    """The context by lower-cased key (key names are case-insensitive: IAM user guide, "IAM JSON policy elements:
    Condition"); absent keys (None) dropped. Two keys the same but for case are refused: which one IAM sees is
    undefined (the guide: a tag key matches ``TagKey1`` or ``tagkey1`` "but not both")."""
    found: dict[str, Any] = {}
    for key, value in context.items():
        if value is None:
            continue
        folded = key.lower()
        if folded in found:
            raise ValueError(f"request context has {key!r} twice (context key names are case-insensitive)")
        found[folded] = value
    return found


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse(operator: str) -> tuple[str | None, str, bool]:
    """``[ForAnyValue:|ForAllValues:]<base>[IfExists]`` -> (qualifier, base, if_exists)."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise NotImplementedError(f"condition operator {operator}")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in OPERATORS or (base == "Null" and (if_exists or qualifier)):
        raise NotImplementedError(f"condition operator {operator}")
    return qualifier or None, base, if_exists


def _positive(base: str, wanted: str, value: str) -> bool:
    """The un-negated test of one policy value against one request value."""
    if "${" in wanted and base != "Bool":
        raise NotImplementedError(f"policy variable in condition value {wanted!r}")
    if base in ("StringEquals", "StringNotEquals"):
        return wanted == value
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return wanted.casefold() == value.casefold()
    if base in ("StringLike", "StringNotLike"):
        return string_like(wanted, value)
    if base in ARN_OPERATORS:
        return arn_like(wanted, value)
    assert base == "Bool", base
    return wanted.lower() == value.lower()


def condition_holds(operator: str, key: str, wanted: Any, context: Context) -> bool:
    """One ``"<operator>": {"<key>": <wanted>}`` of a Condition block against the request context."""
    qualifier, base, if_exists = _parse(operator)
    values = _lookup(context).get(key.lower())
    wanted_values = [_text(item) for item in as_list(wanted)]
    if base == "Null":  # "true": the key is absent; "false": it is present (a key's values ORed)
        return any((item.lower() == "true") == (values is None) for item in wanted_values)
    negated = "Not" in base
    if values is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated  # a missing key: a positive operator fails, a negated one passes

    def single(value: Any) -> bool:
        matched = any(_positive(base, item, _text(value)) for item in wanted_values)
        return not matched if negated else matched

    if qualifier is None:
        if isinstance(values, list | tuple):
            raise NotImplementedError(f"{operator} on the multivalued {key}: a set operator (ForAnyValue, "
                                      f"ForAllValues) says how its values combine")
        return single(values)
    request = as_list(values)
    return all(map(single, request)) if qualifier == "ForAllValues" else any(map(single, request))


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    """A whole Condition block: every operator and every key of each holds."""
    return all(condition_holds(operator, key, wanted, context)
               for operator, pairs in condition.items() for key, wanted in pairs.items())


# -- statements and decisions ----------------------------------------------------------------------------------------

def _element(statement: Mapping[str, Any], name: str) -> tuple[list[str], bool]:
    """The patterns of ``name`` or ``Not<name>`` (exactly one of them) and whether it is the ``Not`` form."""
    if (name in statement) == (f"Not{name}" in statement):
        raise ValueError(f"statement {statement.get('Sid')!r}: exactly one of {name} and Not{name}")
    negated = name not in statement
    return [str(item) for item in as_list(statement[f"Not{name}" if negated else name])], negated


def _principal_matches(statement: Mapping[str, Any]) -> bool:
    if "NotPrincipal" in statement:
        raise NotImplementedError(f"statement {statement.get('Sid')!r}: NotPrincipal")
    if "Principal" in statement and statement["Principal"] not in ("*", {"AWS": "*"}):
        raise NotImplementedError(f"statement {statement.get('Sid')!r}: a Principal other than *")
    return True


def matches_request(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether ``statement`` names ``action`` and ``resource`` (its conditions aside)."""
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"statement {statement.get('Sid')!r}: Effect {statement.get('Effect')!r}")
    actions, not_action = _element(statement, "Action")
    resources, not_resource = _element(statement, "Resource")
    _principal_matches(statement)
    if any(action_matches(pattern, action) for pattern in actions) == not_action:
        return False
    return any(resource_matches(pattern, resource) for pattern in resources) != not_resource


def applies(statement: Mapping[str, Any], action: str, resource: str, context: Context) -> bool:
    """Whether ``statement`` applies to the request: it names the action and resource and its conditions hold."""
    return matches_request(statement, action, resource) and conditions_hold(statement.get("Condition") or {},
                                                                              context)


def decide(statements: Iterable[Mapping[str, Any]], action: str, resource: str = "*",
           context: Context | None = None) -> Decision:
    """IAM's decision over one policy's (or one principal's policies') statements: an explicit deny wins, then an
    allow, else the request is implicitly denied."""
    allowed = False
    for statement in statements:
        if applies(statement, action, resource, context or {}):
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def allows(statements: Iterable[Mapping[str, Any]], action: str, resource: str = "*",
           context: Context | None = None) -> bool:
    """Whether the statements allow ``action`` on ``resource`` for ``context``."""
    return decide(statements, action, resource, context) is Decision.ALLOW


def grants_some_context(statements: Iterable[Mapping[str, Any]], action: str, resource: str = "*") -> bool:
    """The upper bound, for calls whose request context the caller does not model: some Allow names ``action`` on
    ``resource`` (its conditions taken to hold) and no unconditional Deny does (a conditional one taken not to).
    False means no context at all lets the call through."""
    allowed = False
    for statement in statements:
        if not matches_request(statement, action, resource):
            continue
        if statement["Effect"] == "Deny" and not statement.get("Condition"):
            return False
        allowed = allowed or statement["Effect"] == "Allow"
    return allowed
