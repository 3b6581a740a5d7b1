"""Small helpers the policy rules share (imported by ``policies/<pack>/rules/<id>.py``).

A rule's id is its file name (cdk-nag style), so the id is written once, in
``policies/catalog.yaml``, and the pack refuses to start if a rule file and the catalog disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from shared.policy_catalog import load_rules

#: Tags every taggable AWS resource must carry (resource tags or the provider's defaultTags).
REQUIRED_TAGS = ("env", "layer", "team", "cost-center")


def rule_id(module_file: str) -> str:
    """The rule id of a rule module: its file name without ``.py``; must be in the catalog."""
    rid = Path(module_file).stem
    if rid not in load_rules():
        raise LookupError(f"{module_file}: {rid!r} is not a rule id of policies/catalog.yaml")
    return rid


def rule_description(module_file: str) -> str:
    return load_rules()[rule_id(module_file)].summary


def effective_tags(args: ResourceValidationArgs) -> dict[str, Any]:
    """Resource tags merged over the AWS provider's ``defaultTags`` (what AWS will actually set)."""
    tags: dict[str, Any] = {}
    provider = args.provider
    if provider is not None and provider.props:
        default_tags = provider.props.get("defaultTags") or {}
        if isinstance(default_tags, str):
            # pulumi_aws's Provider sends its object inputs JSON-encoded (``.apply(to_json)``), and the
            # engine passes them on as that string.
            try:
                default_tags = json.loads(default_tags)
            except ValueError:
                default_tags = {}
        if isinstance(default_tags, Mapping):
            tags.update(default_tags.get("tags") or {})
    tags.update(args.props.get("tags") or {})
    return tags


# -- tri-state helpers (violation / compliant / not applicable) -------------------------------------
# Added for the packs: every rule decides, passes, or says why it cannot decide; none crashes on a
# missing, None or unknown (computed-during-preview) value.

#: The sentinels the Pulumi engine sends for values not known during preview (pulumi_policy.proxy).
UNKNOWN_SENTINELS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


class Unknown(Exception):
    """Raised by :func:`known` (and turned into not-applicable by the policy wrappers)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """``value[path[0]][path[1]]...`` or ``default`` when a step is missing or None.

    An unknown value on the way raises ``UnknownValueError`` (through the pulumi_policy proxy) which
    the wrappers below report as not-applicable.
    """
    current = value
    for step in path:
        if current is None:
            return default
        try:
            current = current[step]
        except (KeyError, IndexError, TypeError):
            return default
    if is_unknown(current):
        raise Unknown(".".join(str(p) for p in path))
    return default if current is None else current


def known(value: Any, what: str) -> Any:
    """``value`` itself; raises :class:`Unknown` (-> not-applicable) if it is an unknown sentinel."""
    if is_unknown(value):
        raise Unknown(what)
    return value


def _not_applicable_on_unknown(args: Any, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except UnknownValueError as error:
        args.not_applicable(f"cannot decide: {error.message}")
    except Unknown as error:
        args.not_applicable(f"cannot decide: {error.what} is not known during preview")
    return None


ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]

RESOURCE_TYPES_ATTRIBUTE = "resource_types"
"""Set on a rule's validate function to the frozenset of resource types it checks; for any other
type the function's first act is ``args.not_applicable(other_type_reason(type))``. The packs'
analyzer (shared.policy.fast_analyzer) answers that without calling the rule."""


def other_type_reason(resource_type: str) -> str:
    """The not-applicable reason of a rule for a resource type it does not check."""
    return f"{resource_type} is not a resource type this rule checks"


def limit_to_types(validate: ResourceCheck, types: frozenset[str]) -> ResourceCheck:
    """Declare that ``validate`` starts with the type check described at :data:`RESOURCE_TYPES_ATTRIBUTE`."""
    setattr(validate, RESOURCE_TYPES_ATTRIBUTE, types)
    return validate


def resource_policy(module_file: str, check: ResourceCheck, *, types: Iterable[str] | None = None,
                    description: str | None = None, config_schema: Any = None) -> ResourceValidationPolicy:
    """The ``POLICY`` of a resource rule module: id from the file name, description from the catalog.

    ``types`` (resource type tokens) limits the rule; any other type is reported not-applicable.
    Unknown values read by ``check`` become not-applicable with the path that was unknown.
    """
    type_set = frozenset(types) if types is not None else None

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if type_set is not None and args.resource_type not in type_set:
            args.not_applicable(other_type_reason(args.resource_type))
        _not_applicable_on_unknown(args, lambda: check(args, report))

    return ResourceValidationPolicy(
        name=rule_id(module_file),
        description=description or rule_description(module_file),
        validate=validate if type_set is None else limit_to_types(validate, type_set),
        config_schema=config_schema,
    )


def as_list(value: Any) -> Sequence[Any]:
    """A list input as a sequence ([] for None/missing); an unknown list raises :class:`Unknown`."""
    if value is None:
        return []
    if is_unknown(value):
        raise Unknown("list")
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return value


def rabbitmq_queue_arguments(props: Mapping[str, Any]) -> dict[str, Any]:
    """A pulumi_rabbitmq Queue's ``settings.arguments`` merged over ``settings.argumentsJson``.

    The provider accepts either (``argumentsJson`` for non-string values such as ``x-delivery-limit``).
    """
    merged: dict[str, Any] = {}
    raw_json = get(props, "settings", "argumentsJson")
    if isinstance(raw_json, str) and raw_json.strip():
        try:
            parsed = json.loads(raw_json)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            merged.update(parsed)
    arguments = get(props, "settings", "arguments", default={})
    if isinstance(arguments, Mapping):
        for key in arguments:
            merged[key] = known(arguments[key], f"settings.arguments.{key}")
    return merged


#: Credential inputs ``no-plaintext-secrets`` checks: resource type -> top-level input names.
#: The offline engine reads the same table to tell the rule which of them were written in clear.
CREDENTIAL_INPUTS: dict[str, tuple[str, ...]] = {
    "rabbitmq:index/user:User": ("password",),
    "pulumi:providers:rabbitmq": ("password",),
    "aws:mq/broker:Broker": ("users",),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretString", "secretBinary"),
    "pulumi:providers:aws": ("accessKey", "secretKey", "token"),
}


def type_label(resource_type: str) -> str:
    """How a program spells the type: ``aws.ecr.Repository``, ``rabbitmq.User``, ``rabbitmq.Provider``."""
    parts = resource_type.split(":")
    if len(parts) == 3 and parts[0] == "pulumi" and parts[1] == "providers":
        return f"{parts[2]}.Provider"
    if len(parts) != 3:
        return resource_type
    package, module, kind = parts
    module = module.split("/", 1)[0]
    return f"{package}.{kind}" if module == "index" else f"{package}.{module}.{kind}"


def rule_parameter(args: Any, module_file: str, name: str) -> Any:
    """The rule's parameter ``name`` for this run: from its policy config (the env's baseline, sent by
    ``shared.policy.engine.pack_config``), else -- a real CLI run without ``--policy-pack-config`` --
    the catalog's prod value, the strictest."""
    config = dict(args.get_config() or {})
    if name in config:
        return config[name]
    return load_rules()[rule_id(module_file)].parameters["prod"][name]
