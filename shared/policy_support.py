"""The one helper module of the policy rules (``policies/<pack>/rules/<id>.py``).

A rule's id is its file name (cdk-nag style), so the id is written once, in
``policies/catalog.yaml``, and the pack refuses to start if a rule file and the catalog disagree.

Three facts about how CrossGuard hands resources to a rule shape the helpers:

* ``args.props`` is a proxy that raises ``UnknownValueError`` the moment a rule touches a value that is
  unknown during preview (an output of a resource not created yet). ``Mapping.get`` and ``in`` touch
  the value too. :func:`plain` turns the proxy into ordinary dicts/lists with :data:`UNKNOWN` markers so
  a rule can look at everything it can decide; :func:`resource_policy` (and the :func:`applies_to`
  decorator) turn any remaining unknown into *not applicable* -- never a crash, never a silent pass.
* Numbers arrive as floats (they travel as ``google.protobuf.Struct``), so ``80`` is ``80.0``.
* Properties left unset are absent: the rule applies the AWS/provider default (the documented one).
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from shared.dag import LAYERS
from shared.policy_catalog import load_rules
from shared.policy_typing import (
    ReportViolation,
    ResourceCheck,
    SdkReportViolation,
    SdkResourceValidation,
    StackCheck,
    as_report,
    stack_check,
)

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

#: What the engine sends for a value not known during preview, by the value's type (pulumi
#: sdk/go/common/resource/plugin/rpc.go, UnknownStringValue ...; pulumi_policy.proxy reads them).
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
UNKNOWN_ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
#: The sentinels the Pulumi engine sends for values not known during preview (pulumi_policy.proxy).
UNKNOWN_SENTINELS = frozenset({
    UNKNOWN_BOOL,
    UNKNOWN_NUMBER,
    UNKNOWN_STRING,
    UNKNOWN_ARRAY,
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    UNKNOWN_OBJECT,
})


class Unknown(Exception):
    """Raised by :func:`known` (and turned into not-applicable by the policy wrappers)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """``value[path[0]][path[1]]...``, or ``default`` when a step is missing or None.

    Works on both shapes a rule reads: ``args.props`` itself (a CrossGuard proxy: an unknown value on
    the way raises ``UnknownValueError``, which the wrappers turn into not-applicable) and data made
    plain with :func:`plain` (an :data:`UNKNOWN` marker on the way is returned as :data:`UNKNOWN`, for
    the rule to decide what an unknown means). An unknown sentinel string at the end raises
    :class:`Unknown` (-> not-applicable).
    """
    current = value
    for step in path:
        if current is UNKNOWN:
            return UNKNOWN
        if current is None or isinstance(current, str | bytes):
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


RESOURCE_TYPES_ATTRIBUTE = "resource_types"
"""Set on a rule's validate function to the frozenset of resource types it checks; for any other
type the function's first act is ``args.not_applicable(other_type_reason(type))``. The packs'
analyzer (shared.policy.fast_analyzer) answers that without calling the rule."""


def other_type_reason(resource_type: str) -> str:
    """The not-applicable reason of a rule for a resource type it does not check."""
    return f"{resource_type} is not a resource type this rule checks"


def limit_to_types(validate: SdkResourceValidation, types: frozenset[str]) -> SdkResourceValidation:
    """Declare that ``validate`` starts with the type check described at :data:`RESOURCE_TYPES_ATTRIBUTE`."""
    setattr(validate, RESOURCE_TYPES_ATTRIBUTE, types)
    return validate


def rule_policy(module_file: str, validate: SdkResourceValidation, *,
                config_schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    """The ``POLICY`` of a resource rule module with its own validate function (usually :func:`applies_to`):
    id from the file name, description from the catalog."""
    return ResourceValidationPolicy(name=rule_id(module_file), description=rule_description(module_file),
                                    validate=validate, config_schema=config_schema)


def stack_rule_policy(module_file: str, check: StackCheck, *,
                      config_schema: PolicyConfigSchema | None = None) -> StackValidationPolicy:
    """The ``POLICY`` of a stack rule module: id from the file name, description from the catalog."""
    return StackValidationPolicy(name=rule_id(module_file), description=rule_description(module_file),
                                 validate=stack_check(check), config_schema=config_schema)


def resource_policy(module_file: str, check: ResourceCheck, *, types: Iterable[str] | None = None,
                    description: str | None = None, config_schema: Any = None) -> ResourceValidationPolicy:
    """The ``POLICY`` of a resource rule module: id from the file name, description from the catalog.

    ``types`` (resource type tokens) limits the rule; any other type is reported not-applicable.
    Unknown values read by ``check`` become not-applicable with the path that was unknown.
    """
    type_set = frozenset(types) if types is not None else None

    def validate(args: ResourceValidationArgs, report: SdkReportViolation) -> None:
        if type_set is not None and args.resource_type not in type_set:
            args.not_applicable(other_type_reason(args.resource_type))
        _not_applicable_on_unknown(args, lambda: check(args, as_report(report)))

    return ResourceValidationPolicy(
        name=rule_id(module_file),
        description=description or rule_description(module_file),
        validate=validate if type_set is None else limit_to_types(validate, type_set),
        config_schema=config_schema,
    )


def as_list(value: Any) -> Sequence[Any]:
    """A list-valued input as a sequence: None is empty, a single value a one-item list, a list (or a
    proxy list) itself. An unknown sentinel raises :class:`Unknown`; the :data:`UNKNOWN` marker of plain
    data is one unknown item (``[UNKNOWN]``), for the rule to report."""
    if value is None:
        return []
    if is_unknown(value):
        raise Unknown("list")
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        return [value]
    return value


#: apply-to values of a RabbitMQ policy (or operator policy) that reach queues
RABBITMQ_APPLIES_TO_QUEUES = ("queues", "all", "classic_queues", "quorum_queues", "streams")
#: apply-to of a policy for one queue type only (RabbitMQ 3.12+, "Policies": apply-to) -> that type
RABBITMQ_TYPED_APPLY_TO = {"classic_queues": "classic", "quorum_queues": "quorum", "streams": "stream"}

_RabbitmqPolicyView = tuple[str, str, int, str, dict[str, Any]] | None


def _rabbitmq_policy_view(policy: PolicyResource) -> _RabbitmqPolicyView:
    """(vhost, pattern, priority, apply-to, definition) of a ``rabbitmq.Policy`` or ``rabbitmq.OperatorPolicy`` (the
    same inputs); None when it cannot match a queue."""
    props = policy.props
    vhost = known(get(props, "vhost"), f"policy '{policy.name}' vhost")
    pattern = known(get(props, "policy", "pattern"), f"policy '{policy.name}' pattern")
    apply_to = known(get(props, "policy", "applyTo"), f"policy '{policy.name}' applyTo")
    priority = known(get(props, "policy", "priority", default=0), f"policy '{policy.name}' priority")
    definition = get(props, "policy", "definition", default={}) or {}
    if vhost is None or pattern is None or apply_to not in RABBITMQ_APPLIES_TO_QUEUES:
        return None
    return str(vhost), str(pattern), int(priority), str(apply_to), dict(definition)


class RabbitmqPolicyViews:
    """Each policy's view, read once per stack instead of once per queue (200 queues x 200 policies
    re-read 40,000 views). A policy whose view raised raises the same error again, at the same
    place in the order, for every queue that gets that far -- what reading it again would do."""

    def __init__(self, policies: list[PolicyResource]) -> None:
        self.policies = policies
        self._views: list[tuple[PolicyResource, _RabbitmqPolicyView, Exception | None]] | None = None

    def __iter__(self) -> Iterator[tuple[PolicyResource, _RabbitmqPolicyView]]:
        if self._views is None:
            views: list[tuple[PolicyResource, _RabbitmqPolicyView, Exception | None]] = []
            for policy in self.policies:
                try:
                    views.append((policy, _rabbitmq_policy_view(policy), None))
                except Exception as raised:  # noqa: BLE001 -- raised again below, in order
                    views.append((policy, None, raised))
            self._views = views
        for policy, view, failure in self._views:
            if failure is not None:
                raise failure
            yield policy, view


def rabbitmq_applying_policy(policies: list[PolicyResource] | RabbitmqPolicyViews, vhost: str, queue: str,
                             queue_type: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(name, definition) of the policy RabbitMQ applies to ``queue`` in ``vhost`` among ``policies`` (user policies,
    or operator policies: RabbitMQ applies one of each kind, the highest-priority match), or None. A policy for one
    queue type applies only to queues of that type; ``queue_type`` None (not declared: the vhost's default
    decides) lets it apply."""
    best: tuple[int, str, dict[str, Any]] | None = None
    views = policies if isinstance(policies, RabbitmqPolicyViews) else RabbitmqPolicyViews(policies)
    for policy, view in views:
        if view is None or view[0] != vhost:
            continue
        typed = RABBITMQ_TYPED_APPLY_TO.get(view[3])
        if typed is not None and queue_type is not None and typed != queue_type:
            continue
        try:
            matches = re.search(view[1], queue) is not None
        except re.error:
            continue  # RabbitMQ refuses an invalid pattern: this policy applies to nothing
        if matches and (best is None or view[2] > best[0]):
            name = known(get(policy.props, "name", default=policy.name), f"policy '{policy.name}' name")
            best = (view[2], str(name), view[4])
    return None if best is None else (best[1], best[2])


@dataclass(frozen=True)
class RabbitmqQueue:
    """A queue as the queue rules judge it: its resource, name, vhost and arguments, and the policies of its stack."""

    resource: PolicyResource
    name: str
    vhost: str
    arguments: dict[str, Any]
    policies: RabbitmqPolicyViews
    operator_policies: RabbitmqPolicyViews

    @property
    def queue_type(self) -> str | None:
        """Its ``x-queue-type`` in lower case; None where it declares none (the vhost's default decides)."""
        queue_type = self.arguments.get("x-queue-type")
        return str(queue_type).lower() if queue_type else None

    def applying(self, operator: bool = False) -> tuple[str, dict[str, Any]] | None:
        """(name, definition) of the policy (``operator``: the operator policy) RabbitMQ applies to the queue."""
        return rabbitmq_applying_policy(self.operator_policies if operator else self.policies, self.vhost, self.name,
                                        self.queue_type)


def judge_rabbitmq_queues(args: StackValidationArgs, report_violation: ReportViolation,
                          check: Callable[[RabbitmqQueue], str | None]) -> None:
    """A queue stack rule's body: ``check`` gives each queue of the stack its violation message (None: it complies).
    A queue whose name, vhost or candidate policies are unknown during preview is left undecided; the rule is not
    applicable only when no queue was reported."""
    queues = stack_resources(args, "rabbitmq:index/queue:Queue", none_reason="the stack has no RabbitMQ queue")
    policies = RabbitmqPolicyViews(stack_resources(args, "rabbitmq:index/policy:Policy"))
    operator_policies = RabbitmqPolicyViews(stack_resources(args, "rabbitmq:index/operatorPolicy:OperatorPolicy"))
    undecided: list[str] = []
    violations = 0
    for resource in queues:
        try:
            name = str(known(get(resource.props, "name", default=resource.name), f"queue '{resource.name}' name"))
            vhost = str(known(get(resource.props, "vhost", default="/"), f"queue '{name}' vhost"))
            arguments = rabbitmq_queue_arguments(resource.props)
            message = check(RabbitmqQueue(resource, name, vhost, arguments, policies, operator_policies))
        except (Unknown, UnknownValueError) as error:
            undecided.append(str(getattr(error, "message", None) or error))
            continue
        if message:
            violations += 1
            report_violation(message, resource.urn)
    if undecided and not violations:
        args.not_applicable(f"cannot decide: {undecided[0]} is not known during preview")


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


# -- plain data, the aws pack's checks, IAM documents, security groups, references -----------------


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


def as_sent(value: Any, unknown: Any = UNKNOWN) -> Any:
    """Plain data (:func:`plain`) with its whole numbers whole again (the engine sends every number as a double;
    an API model wants integers) and each :data:`UNKNOWN` part replaced by ``unknown``."""
    if value is UNKNOWN:
        return unknown
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: as_sent(item, unknown) for key, item in value.items()}
    if isinstance(value, list):
        return [as_sent(item, unknown) for item in value]
    return value


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def not_applicable(args: ResourceValidationArgs | StackValidationArgs, reason: str) -> NoReturn:
    """``args.not_applicable(reason)``, typed as what it does (it raises; the SDK does not say so)."""
    args.not_applicable(reason)
    raise AssertionError("not_applicable returned")  # pragma: no cover - not_applicable always raises


def undecidable(args: ResourceValidationArgs | StackValidationArgs, what: str) -> NoReturn:
    """Mark the rule not-applicable because ``what`` is unknown until the resources exist."""
    args.not_applicable(f"{what} is unknown until deployment; the rule decides once it is known")
    raise AssertionError("not_applicable returned")  # pragma: no cover - not_applicable always raises


def known_input(args: ResourceValidationArgs, label: str, path: str, props: Mapping[str, Any] | None = None) -> Any:
    """The input at ``path`` (dotted for a nested one: ``logs.general``) of the resource being checked, as
    plain data (``None`` when unset). While it is unknown the rule is undecidable for the resource, the
    reason naming ``label``, the resource and the path: ``broker 'b': autoMinorVersionUpgrade``.
    ``props`` is the rule's own ``plain(args.props)`` where it reads more than this input."""
    value = get(plain(args.props) if props is None else props, *path.split("."))
    if value is UNKNOWN:
        undecidable(args, f"{label} '{args.name}': {path}")
    return value


def boolean_setting_rule(module_file: str, *resource_types: str, label: str, setting: str, required: bool,
                         finding: str, inputs: Callable[[ResourceValidationArgs], Mapping[str, Any]] | None = None,
                         ) -> ResourceValidationPolicy:
    """The ``POLICY`` of a rule that checks one on/off input (the shape of checkov's value checks).

    ``setting`` (dotted for a nested input) must be on (``required=True``) or off (``required=False``); unset
    is off, the AWS default of these inputs. Otherwise the rule reports ``<label> '<name>' <finding>``.
    The input is read with :func:`known_input`: unknown during preview is undecidable. ``inputs`` reads the
    resource's inputs where the rule is about only some resources of its types and reports the others not
    applicable (e.g. :func:`application_load_balancer_props`).
    """

    @applies_to(*resource_types)
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        value = known_input(args, label, setting, inputs(args) if inputs is not None else None)
        if is_true(value) != required:
            report_violation(f"{label} '{args.name}' {finding}")

    return rule_policy(module_file, validate)


def props_of_kind(args: ResourceValidationArgs, label: str, path: str, *, default: str, judged: Callable[[str], bool],
                  otherwise: Callable[[str], str]) -> dict[str, Any]:
    """The plain inputs of a resource whose kind (the input at ``path``, ``default`` when unset) is one the
    calling rule judges (``judged`` of the kind in lower case); another kind is not applicable, the reason
    ``<label> '<name>' <otherwise(kind)>``. An unknown kind is undecidable (:func:`known_input`)."""
    props = plain(args.props)
    kind = str(known_input(args, label, path, props) or default)
    if not judged(kind.lower()):
        args.not_applicable(f"{label} '{args.name}' {otherwise(kind)}")
    return props


def application_load_balancer_props(args: ResourceValidationArgs) -> dict[str, Any]:
    """The plain inputs of an application load balancer; a network or gateway load balancer is not
    applicable (it does not parse HTTP, so the HTTP settings the calling rule checks do not exist)."""
    return props_of_kind(args, "load balancer", "loadBalancerType", default="application",
                         judged=lambda kind: kind == "application",
                         otherwise=lambda kind: f"is a {kind} load balancer (no HTTP parsing)")


def retained_log_group_props(args: ResourceValidationArgs) -> dict[str, Any]:
    """The plain inputs of a CloudWatch log group whose retention the program sets; a ``DELIVERY``-class group
    is not applicable: CloudWatch Logs keeps its events one day whatever ``retentionInDays`` says (botocore's
    logs model, CreateLogGroup ``logGroupClass``; the provider forces the input to 2)."""
    return props_of_kind(args, "log group", "logGroupClass", default="STANDARD",
                         judged=lambda kind: kind != "delivery",
                         otherwise=lambda kind: f"is of the {kind} class, whose events AWS keeps one day (for "
                                                "delivery to S3 or Firehose) whatever its retention says")


#: A log group an AWS service creates on its own, created or adopted with its retention (and key) by a dynamic
#: resource, e.g. Amazon MQ's ``/aws/amazonmq/broker/<id>/general`` (shared.components.broker_logs).
ADOPTED_LOG_GROUP = "pulumi-python:dynamic:Resource"


def log_group_retention(args: ResourceValidationArgs) -> Any:
    """The retention a program sets on a log group: ``retentionInDays`` of an ``aws.cloudwatch.LogGroup`` (a
    ``DELIVERY``-class one is not applicable: :func:`retained_log_group_props`), ``retention_in_days`` of a dynamic
    resource that creates or adopts a group (one with a ``log_group_name``); another dynamic resource is not
    applicable. Unknown at preview: undecidable."""
    if args.resource_type == ADOPTED_LOG_GROUP:
        props = plain(args.props)
        if "log_group_name" not in props:
            not_applicable(args, f"dynamic resource '{args.name}' manages no log group")
        return known_input(args, "log group", "retention_in_days", props)
    return known_input(args, "log group", "retentionInDays", retained_log_group_props(args))


def rabbitmq_broker_props(args: ResourceValidationArgs) -> dict[str, Any]:
    """The plain inputs of an Amazon MQ broker running RabbitMQ; an ActiveMQ broker is not applicable."""
    props = plain(args.props)
    engine = known_input(args, "MQ broker", "engineType", props)
    if str(engine).lower() != "rabbitmq":
        args.not_applicable(f"MQ broker '{args.name}' runs {engine}, not RabbitMQ")
    return props


def ecs_controller_service_props(args: ResourceValidationArgs) -> dict[str, Any]:
    """The plain inputs of an ECS service deployed by the ECS controller (rolling updates); a service on
    CODE_DEPLOY or EXTERNAL is not-applicable (those controllers own rollouts and their safeguards)."""
    props = plain(args.props)
    controller = get(props, "deploymentController", "type")
    if controller is UNKNOWN:
        undecidable(args, f"ECS service '{args.name}': deploymentController.type")
    if controller is not None and str(controller).upper() != "ECS":
        args.not_applicable(f"ECS service '{args.name}' uses the {controller} deployment controller")
    return props


def inline_rule_entries(args: ResourceValidationArgs, key: str, props: Mapping[str, Any] | None = None,
                        ) -> Iterator[tuple[int, dict[str, Any], list[Any]]]:
    """``(index, entry, its IPv4 and IPv6 CIDR blocks)`` of each inline ``ingress``/``egress`` (``key``)
    entry of a security group. An unknown list is undecidable at once; an unknown entry is skipped and,
    once every known one was yielded (and judged), makes the rule undecidable naming it. ``props`` is
    the rule's own ``plain(args.props)`` where it reads more than these entries."""
    entries = (plain(args.props) if props is None else props).get(key)
    if entries is UNKNOWN:
        undecidable(args, f"security group '{args.name}': {key}")
    undecided: list[str] = []
    for index, entry in enumerate(as_list(entries)):
        if contains_unknown(entry) or not isinstance(entry, dict):
            undecided.append(f"{key}[{index}]")
            continue
        yield index, entry, [*as_list(entry.get("cidrBlocks")), *as_list(entry.get("ipv6CidrBlocks"))]
    if undecided:
        undecidable(args, f"security group '{args.name}': {', '.join(undecided)}")


#: The inputs of a CloudWatch alarm that list its actions (the SNS topics it notifies among them), per state.
ALARM_ACTION_INPUTS = ("alarmActions", "okActions", "insufficientDataActions")

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUPS = (SECURITY_GROUP, DEFAULT_SECURITY_GROUP)
"""The security group types whose rules are inline ``ingress``/``egress`` entries (:func:`inline_rule_entries`)."""
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


@dataclass(frozen=True)
class StandaloneRule:
    """The inputs of one standalone security group rule and where its type keeps addresses and protocol:
    ``aws:ec2/securityGroupRule`` in ``cidrBlocks``/``ipv6CidrBlocks`` and ``protocol``,
    ``aws:vpc/securityGroup{Ingress,Egress}Rule`` in ``cidrIpv4``/``cidrIpv6`` and ``ipProtocol``."""

    props: dict[str, Any]
    cidr_props: tuple[str, str]
    protocol_prop: str

    def cidrs(self, keep: Callable[[Any], bool]) -> list[Any]:
        """The known address ranges of the rule that ``keep`` selects (e.g. :func:`is_world`)."""
        return [c for key in self.cidr_props for c in as_list(self.props.get(key)) if keep(c)]

    def require_known_cidrs(self, args: ResourceValidationArgs) -> None:
        """Undecidable while an address input is (or holds) an unknown."""
        unknown = [key for key in self.cidr_props if contains_unknown(self.props.get(key))]
        if unknown:
            undecidable(args, f"security group rule '{args.name}': {', '.join(unknown)}")

    def ports(self, args: ResourceValidationArgs) -> tuple[Any, Any, Any]:
        """``(protocol, fromPort, toPort)``; undecidable while any of them is unknown."""
        protocol, low, high = self.props.get(self.protocol_prop), self.props.get("fromPort"), self.props.get("toPort")
        if contains_unknown([protocol, low, high]):
            undecidable(args, f"security group rule '{args.name}': ports")
        return protocol, low, high


def standalone_rule(args: ResourceValidationArgs, direction: str) -> StandaloneRule | None:
    """The standalone security group rule being checked, for a rule about ``direction`` (``ingress`` or
    ``egress``): ``None`` for an ``aws:ec2/securityGroupRule`` whose ``type`` is the other direction
    (undecidable while that type is unknown). A ``aws:vpc`` rule's type is its direction."""
    props = plain(args.props)
    if args.resource_type != SECURITY_GROUP_RULE:
        return StandaloneRule(props, ("cidrIpv4", "cidrIpv6"), "ipProtocol")
    rule_type = props.get("type")
    if contains_unknown(rule_type):
        undecidable(args, f"security group rule '{args.name}': type")
    if str(rule_type).lower() != direction:
        return None
    return StandaloneRule(props, ("cidrBlocks", "ipv6CidrBlocks"), "protocol")


def world_open(args: ResourceValidationArgs, rule: StandaloneRule) -> tuple[list[Any], tuple[Any, Any, Any]] | None:
    """The whole-internet ranges (:func:`is_world`) a standalone rule opens, with its ports; ``None`` when it
    opens none. Undecidable when no known range is the world but one is unknown, or when the world is
    opened on unknown ports."""
    cidrs = rule.cidrs(is_world)
    if not cidrs:
        rule.require_known_cidrs(args)
        return None
    return cidrs, rule.ports(args)


#: inputs by which a security group rule names another group or a prefix list (EC2's UserIdGroupPair /
#: PrefixListId, whose descriptions take a narrower character set than an address range's)
SECURITY_GROUP_REFERENCE_KEYS = ("referencedSecurityGroupId", "sourceSecurityGroupId", "prefixListId",
                                 "prefixListIds", "securityGroups", "self")


@dataclass(frozen=True)
class GroupDescription:
    """One description a security group resource sets: the group's own (``where`` is ``description``), an
    inline entry's (``ingress[0]``...), or a standalone rule's; ``references`` when its rule names another
    group or a prefix list."""

    where: str
    text: Any
    references: bool


def security_group_descriptions(args: ResourceValidationArgs) -> tuple[list[GroupDescription], list[str]]:
    """The known descriptions of the security group or standalone security group rule being checked, and
    the paths of those still unknown (for :func:`undecidable` once the known ones are judged)."""
    props = plain(args.props)

    def references(entry: Mapping[str, Any]) -> bool:
        return any(entry.get(key) not in (None, False, [], ()) for key in SECURITY_GROUP_REFERENCE_KEYS)

    if args.resource_type != SECURITY_GROUP:
        description = known_input(args, "security group rule", "description", props)
        return [GroupDescription("description", description, references(props))], []
    known: list[GroupDescription] = []
    unknown: list[str] = []
    if props.get("description") is UNKNOWN:
        unknown.append("description")
    else:
        known.append(GroupDescription("description", props.get("description"), False))
    for direction in ("ingress", "egress"):
        entries = props.get(direction)
        if entries is UNKNOWN:
            unknown.append(direction)
            continue
        for index, entry in enumerate(as_list(entries)):
            text = entry.get("description") if isinstance(entry, dict) else entry
            if contains_unknown(text):
                unknown.append(f"{direction}[{index}].description")
            else:
                known.append(GroupDescription(f"{direction}[{index}]", text,
                                              isinstance(entry, dict) and references(entry)))
    return known, unknown


def applies_to(*resource_types: str) -> Callable[[ResourceCheck], SdkResourceValidation]:
    """Run the decorated check only for ``resource_types``; other types are reported not applicable.

    Any value the check touches that is unknown during preview makes the rule *not applicable* for
    that resource (with the property path as reason) instead of failing the whole policy run.
    """

    def decorate(check: ResourceCheck) -> SdkResourceValidation:
        @functools.wraps(check)
        def validate(args: ResourceValidationArgs, report_violation: SdkReportViolation) -> None:
            if args.resource_type not in resource_types:
                args.not_applicable(other_type_reason(args.resource_type))
            try:
                check(args, as_report(report_violation))
            except UnknownValueError as error:
                path = ".".join(str(step) for step in error.props)
                undecidable(args, f"{args.resource_type} '{args.name}': {path}")
            except Unknown as error:
                undecidable(args, f"{args.resource_type} '{args.name}': {error.what}")

        return limit_to_types(validate, frozenset(resource_types))

    return decorate




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


@functools.lru_cache(maxsize=1)
def _container_definition_shape() -> Any:
    import botocore.session  # imported lazily: loading the ECS model costs ~0.1 s, only when a task exists

    return botocore.session.get_session().get_service_model("ecs").shape_for("ContainerDefinition")


def _member_keys(value: Any, shape: Any) -> Any:
    if shape.type_name == "structure" and isinstance(value, dict):
        members = {name.lower(): name for name in shape.members}
        spelled: dict[Any, Any] = {}
        for key, item in value.items():
            name = members.get(key.lower()) if isinstance(key, str) else None
            if name is None:
                spelled[key] = item  # no member: the provider drops it (ecs-task-definition-valid reports it)
            else:
                spelled[name] = _member_keys(item, shape.members[name])
        return spelled
    if shape.type_name == "list" and isinstance(value, list):
        return [_member_keys(item, shape.member) for item in value]
    return value  # a map's keys (dockerLabels, log options) are data and keep their spelling


def provider_container_keys(containers: list[Any]) -> list[Any]:
    """Container definitions with each key spelled as the ECS model's member it stands for, as the AWS provider
    reads them: terraform-provider-aws decodes ``containerDefinitions`` with Go's ``encoding/json`` into the AWS
    SDK's ``ContainerDefinition``, whose fields carry no JSON names, so a key matches its member whatever its
    case (``readOnlyRootFilesystem`` sets ``readonlyRootFilesystem``). Keys that match no member are kept."""
    return [_member_keys(container, _container_definition_shape()) for container in containers]


def container_definitions(args: ResourceValidationArgs, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The containers of an ``aws:ecs/taskDefinition:TaskDefinition`` (``containerDefinitions`` JSON), keys
    spelled as the provider reads them (:func:`provider_container_keys`).

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
    return provider_container_keys(containers)


def container_label(container: Mapping[str, Any], index: int) -> str:
    name = container.get("name")
    return f"'{name}'" if isinstance(name, str) and name else f"#{index}"


def require_linux_task(args: ResourceValidationArgs, setting: str) -> None:
    """Not applicable to a task definition of Windows containers (``runtimePlatform.operatingSystemFamily``
    ``WINDOWS_*``) for a rule about ``setting``, a container parameter the ECS API documents as "not supported
    for Windows containers" (botocore's ecs model, ContainerDefinition). Undecidable while the family is unknown;
    an unset family (EC2 tasks may leave it out) is judged as Linux."""
    family = get(plain(args.props), "runtimePlatform", "operatingSystemFamily")
    if family is UNKNOWN:
        undecidable(args, f"task definition '{args.name}': runtimePlatform.operatingSystemFamily")
    if str(family or "").upper().startswith("WINDOWS"):
        args.not_applicable(f"task definition '{args.name}' runs Windows containers ({family}), which do not "
                            f"support {setting}")


def task_containers(args: ResourceValidationArgs, *, at_least_one: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """``(label, container)`` of each container of the task definition being checked, as the container
    rules name them in messages (:func:`container_label`); not applicable as :func:`container_definitions`,
    and with ``at_least_one`` when there is no container (a rule about what every container does)."""
    containers = container_definitions(args, plain(args.props))
    if at_least_one and not containers:
        args.not_applicable(f"task definition '{args.name}' has no containers")
    return [(container_label(container, index), container) for index, container in enumerate(containers)]


# --- credentials in plain environment variables ------------------------------------------------------
# One judgement for every resource kind whose environment variables are stored and shown in clear (ECS container
# ``environment``, a Lambda function's ``environment.variables``, a CodeBuild project's PLAINTEXT variables).

CREDENTIAL_WORDS = {
    "PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "CREDENTIAL", "CREDENTIALS", "APIKEY",
    "PRIVATEKEY", "ACCESSKEY", "SECRETKEY", "PWD", "AUTH",
}  # fmt: skip
#: A name ending in KEY is a credential unless the word before says what kind of non-secret key it is.
NON_SECRET_KEYS = {"ROUTING", "PARTITION", "SORT", "CACHE", "PRIMARY", "FOREIGN", "HASH", "RANGE", "IDEMPOTENCY",
                   "OBJECT", "S3", "MAP", "LOOKUP", "DEDUP", "DEDUPLICATION", "GROUP", "SHARD", "CURSOR", "PUBLIC"}
CREDENTIAL_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY"), ("PRIVATE", "KEY"), ("CLIENT", "SECRET")}
METADATA_SUFFIXES = {
    "ARN", "ID", "NAME", "FILE", "PATH", "URL", "URI", "ENDPOINT", "TTL", "SECONDS", "EXPIRY", "LENGTH", "HEADER",
    "REGION", "ENABLED",
    # which kind of authentication, not a credential: AUTH_MODE=oauth, AUTH_TYPE=oidc, TOKEN_METHOD=jwt
    "MODE", "TYPE", "METHOD", "SCHEME", "PROVIDER", "STRATEGY",
}  # fmt: skip
VALUE_PATTERNS = (
    ("a URL with an embedded password", re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a PEM private key or certificate", re.compile(r"-----BEGIN [A-Z ]+-----")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Stripe live key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}")),
)


def credential_name(name: str) -> bool:
    # camelCase counts as separate words too: dbPassword is DB + PASSWORD.
    words = [w for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper()) if w]
    if not words or words[-1] in METADATA_SUFFIXES:
        return False
    if any(w in CREDENTIAL_WORDS for w in words):
        return True
    if words[-1] == "KEY" and (len(words) == 1 or words[-2] not in NON_SECRET_KEYS):
        return True
    return any(pair in CREDENTIAL_PAIRS for pair in itertools.pairwise(words))


def is_secret_reference(value: str) -> bool:
    return not value.strip() or value.startswith("arn:") or value.startswith("/")


def credential_value(value: str) -> str | None:
    for what, pattern in VALUE_PATTERNS:
        if pattern.search(value):
            return what
    return None


def plaintext_credential(name: str, value: Any) -> str | None:
    """What makes the plain variable ``name=value`` a credential (``"NAME (value is ...)"`` or
    ``"NAME (credential-like name)"``), None when it is none. Names and kinds only: the value is never repeated."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    if what := credential_value(text):
        return f"{name} (value is {what})"
    if credential_name(name) and not is_secret_reference(text):
        return f"{name} (credential-like name)"
    return None


# --- IAM policy documents -------------------------------------------------------------------------


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM policy document (``Statement`` may be one object or a list)."""
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def iam_wildcard(pattern: str) -> re.Pattern[str]:
    """An IAM policy wildcard as a regular expression to ``fullmatch``: ``*`` any run of characters (colons
    too), ``?`` one character (IAM user guide, "IAM JSON policy elements: Action" and "String condition
    operators"). Case is the caller's: action names are compared in lower case, ARNs as written."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def every_resource(resource: str) -> bool:
    """Whether a policy ``Resource`` names every resource of its kind in any account: ``*`` (or only wildcards), an
    ARN whose account is only wildcards and whose resource is too (``arn:aws:iam::*:role/*``,
    ``arn:aws:secretsmanager:*:*:secret:*``), or an S3 ARN whose bucket is (``arn:aws:s3:::*/*``). A named resource
    in any account (``arn:aws:logs:*:*:log-group:/aws/lambda/fn:*``) is not, nor is an account-pinned ``type/*``
    (``arn:aws:kms:eu-west-1:111111111111:key/*``): it stays in the account."""
    text = resource.strip()
    wild = set("*?")
    parts = text.split(":", 5)
    if len(parts) < 6 or parts[0].lower() != "arn":
        return bool(text) and set(text) <= wild
    account, rest = parts[4], parts[5]
    if account and set(account) <= wild:
        return re.fullmatch(r"([A-Za-z0-9-]+[:/])?[*?]+([:/][*?]+)*", rest) is not None
    bucket = rest.split("/", 1)[0]
    return parts[2].lower() == "s3" and not account and bool(bucket) and set(bucket) <= wild


def arn_like(pattern: str, arn: str) -> bool:
    """Whether ``ArnLike`` with ``pattern`` matches ``arn``: the six colon-delimited parts one by one, each with
    IAM wildcards, the last (resource) part holding any further colons (IAM user guide, "Amazon Resource Name
    (ARN) condition operators")."""
    parts, values = pattern.split(":", 5), arn.split(":", 5)
    return len(parts) == len(values) == 6 and all(
        iam_wildcard(part).fullmatch(value) is not None for part, value in zip(parts, values, strict=True))


def allow_statements(document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``Allow`` statements of an IAM policy document, each with the label findings name it by:
    ``statement <Sid>``, or its position when it has none."""
    for index, statement in enumerate(policy_statements(document)):
        if str(statement.get("Effect", "")).lower() == "allow":
            yield f"statement {statement.get('Sid') or index}", statement


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


def opens_all_ports(protocol: Any, from_port: Any, to_port: Any, lowest: int = 0) -> bool:
    """All traffic (protocol ``-1``), or TCP/UDP from port ``lowest`` (or below) up to 65535."""
    name = protocol_name(protocol)
    if name == "-1":
        return True
    low, high = as_int(from_port), as_int(to_port)
    return name in ("tcp", "udp") and low is not None and high is not None and low <= lowest and high >= 65535


# --- stack rules: which resource does a reference point at? ---------------------------------------


def stack_resources(args: StackValidationArgs, *resource_types: str,
                    none_reason: str | None = None) -> list[PolicyResource]:
    """The stack's resources of ``resource_types``, in stack order. With ``none_reason`` the rule is not
    applicable, for that reason, to a stack that has none."""
    resources = [r for r in args.resources if r.resource_type in resource_types]
    if not resources and none_reason is not None:
        not_applicable(args, none_reason)
    return resources


def depended_on(resource: PolicyResource, *, parents: bool = True) -> set[str]:
    """The URNs ``resource`` is created after and deleted before: its dependencies and its parent, theirs, and so on.
    A parent counts: the SDK registers a child once the parent's URN resolves, after the parent's own dependencies
    exist (pulumi runtime/resource.py prepare_resource), and the engine's graph counts the parent as a dependency
    (pkg/resource/graph/dependency_graph.go DependenciesOf: children are deleted first) -- so a resource inside a
    component created with ``depends_on=[x]`` comes after ``x`` though only the component records it. With
    ``parents=False``, the recorded dependencies only: what the resource's own inputs and options name."""
    seen: set[str] = set()
    pending: list[PolicyResource] = list(resource.dependencies)
    if parents and resource.parent is not None:
        pending.append(resource.parent)
    while pending:
        current = pending.pop()
        if current.urn not in seen:
            seen.add(current.urn)
            pending.extend(current.dependencies)
            if parents and current.parent is not None:
                pending.append(current.parent)
    return seen


def resource_input(resource: PolicyResource, key: str) -> Any:
    """Input ``key`` of a stack's resource as plain data (:func:`plain`; ``None`` when unset), :data:`UNKNOWN`
    while it is unknown. Converts that input only, not the resource's every input."""
    try:
        return plain(resource.props.get(key))
    except UnknownValueError:
        return UNKNOWN


def stack_task_containers(task: PolicyResource) -> Any:
    """The container definitions of a stack's ``aws.ecs.TaskDefinition``, parsed: :data:`UNKNOWN` while any part of
    them is unknown during preview, ``[]`` when they are not valid JSON (``ecs-task-definition-valid``'s finding)."""
    raw = resource_input(task, "containerDefinitions")
    if raw is UNKNOWN:
        return UNKNOWN
    try:
        containers = parse_json(raw)
    except ValueError:
        return []
    return UNKNOWN if contains_unknown(containers) else containers


def identity_values(resource: PolicyResource, keys: Iterable[str]) -> set[str]:
    """Known string values of ``keys`` on ``resource`` (e.g. its ``id`` under the real CLI, its name)."""
    values: set[str] = set()
    for key in keys:
        value = resource_input(resource, key)
        if isinstance(value, str) and value:
            values.add(value)
    return values


def referenced_targets(
    resource: PolicyResource,
    prop: str,
    targets: Sequence[PolicyResource],
    identity_keys: Iterable[str] = ("id", "arn"),
    *,
    aliases: Callable[[str], Iterable[str]] | None = None,
    known_elsewhere: bool = False,
) -> list[PolicyResource] | None:
    """The resources among ``targets`` that ``resource.props[prop]`` refers to; ``None`` if undecidable.

    ``nox -s policy``'s stack validation sees resources with their input properties; the real engine sends
    ``AnalyzeStack`` their outputs (pulumi/pulumi pkg/resource/deploy/step_generator.go: "called on the final
    outputs of each resource"; sent offline in the ``up`` and ``first-preview`` stages, :mod:`shared.policy.stages`),
    which hold the ``id`` and ``arn`` too, unknown in a preview of a new resource. A FlowLog's ``vpcId`` is the VPC's
    id -- which a VPC's inputs never contain, and its outputs may not yet. The
    reference is therefore resolved in this order, most exact first:

    1. ``property_dependencies[prop]``: the engine (and the real CLI) records which resources a
       property was computed from; if it names any, that is the answer.
    2. value comparison: the property's value (or one of ``aliases(value)``, e.g. the name at the end of a role's
       ARN) equals a known identity value of a target (``id``/``arn`` as the real CLI reports them, or e.g. a
       repository's explicit ``name``).
    3. ``dependencies``: if the resource depends on exactly one of the targets, that one.

    Returns ``[]`` when the reference provably points elsewhere (e.g. a VPC of another stack) and
    ``None`` when it cannot be told (unknown value and several candidate targets).

    With ``known_elsewhere`` a known reference is final: one that names no target names a resource elsewhere (step
    3 is for an unknown value only: the resource may depend on a target for another input), and a list value is a
    list of references, unknown while any of them is.
    """
    target_urns = {t.urn: t for t in targets}
    prop_deps = resource.property_dependencies.get(prop) or []
    if prop_deps:
        return [target_urns[d.urn] for d in prop_deps if d.urn in target_urns]

    value = resource_input(resource, prop)
    if value is None:
        return []
    identity_keys = tuple(identity_keys)
    values = value if known_elsewhere and isinstance(value, list) else [value]
    names = {name for one in values if isinstance(one, str) for name in (one, *(aliases(one) if aliases else ()))}
    by_value = [t for t in targets if names & identity_values(t, identity_keys)]
    if by_value:
        return by_value
    unknown = any(one is UNKNOWN for one in values)
    if known_elsewhere and not unknown:
        return []

    depended = [target_urns[d.urn] for d in resource.dependencies if d.urn in target_urns]
    if len(depended) == 1:
        return depended
    if len(depended) > 1:
        return None
    if unknown:
        return None
    return []


#: ECS services and the task definitions their ``taskDefinition`` input refers to (pulumi_aws types).
ECS_SERVICE = "aws:ecs/service:Service"
ECS_TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


def ecs_services_and_task_definitions(args: StackValidationArgs, *, tasks_none_reason: str | None = None) -> tuple[
        list[PolicyResource], list[PolicyResource]]:
    """The stack's ECS services (a stack without one: not applicable) and its ECS task definitions, which a
    service's ``taskDefinition`` is resolved against (:func:`referenced_targets`); with ``tasks_none_reason`` a
    stack without a task definition is not applicable too, for that reason."""
    services = stack_resources(args, ECS_SERVICE, none_reason="the stack has no ECS service")
    return services, stack_resources(args, ECS_TASK_DEFINITION, none_reason=tasks_none_reason)


#: The stack's S3 buckets (the current and the deprecated V2 resource of pulumi_aws).
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")


def bucket_companions(args: StackValidationArgs, companion_type: str, *more_types: str) -> tuple[
        list[PolicyResource], dict[str, list[PolicyResource]]]:
    """The stack's S3 buckets, and per bucket URN the ``companion_type`` (and ``more_types``: a deprecated ``...V2``
    token of the same setting) resources whose ``bucket`` input names it (``aws.s3.BucketPublicAccessBlock``,
    ``BucketOwnershipControls``...: one bucket setting per resource).
    Not applicable to a stack without buckets, or while a companion's bucket cannot be told apart between
    several (:func:`referenced_targets`); the reason names the companion."""
    buckets = stack_resources(args, *S3_BUCKETS, none_reason="the stack has no S3 bucket")
    companions: dict[str, list[PolicyResource]] = {bucket.urn: [] for bucket in buckets}
    undecided: list[str] = []
    for companion in stack_resources(args, companion_type, *more_types):
        targets = referenced_targets(companion, "bucket", buckets, identity_keys=("id", "bucket"))
        if targets is None:
            undecided.append(f"{type_label(companion.resource_type)} '{companion.name}': bucket")
        for bucket in targets or ():
            companions[bucket.urn].append(companion)
    if undecided:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    return buckets, companions



def report_bucket_problems(args: StackValidationArgs, report_violation: ReportViolation,
                           buckets: Sequence[PolicyResource], problems_of: Callable[[PolicyResource], Iterable[str]], *,
                           none_judged: str) -> None:
    """An S3 bucket rule's loop (:func:`report_problems` with ``none_judged``): each finding ``problems_of`` gives a
    bucket is reported at the bucket; a bucket it cannot judge yet (:class:`Undecided`) is decided once its values are
    known, and a stack where no bucket could be judged is not applicable, ``none_judged``."""
    report_problems(args, buckets, problems_of, lambda bucket, problem: report_violation(problem, bucket.urn),
                    none_judged=none_judged)


def bucket_companion_check(companion_type: str, *, missing: str,
                           problems_of: Callable[[PolicyResource, list[PolicyResource]], Iterable[str]],
                           none_judged: str) -> StackCheck:
    """The check of an S3 bucket rule that judges each bucket by its ``companion_type`` resources alone
    (:func:`bucket_companions`): a bucket without one is reported as ``S3 bucket '<name>' <missing>``, one with some
    gets ``problems_of(bucket, companions)`` (:func:`report_bucket_problems`)."""

    def check(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        buckets, companions = bucket_companions(args, companion_type)

        def problems(bucket: PolicyResource) -> Iterable[str]:
            if not companions[bucket.urn]:
                return [f"S3 bucket '{bucket.name}' {missing}"]
            return problems_of(bucket, companions[bucket.urn])

        report_bucket_problems(args, report_violation, buckets, problems, none_judged=none_judged)

    return check


#: Both kinds of CloudWatch alarm: each notifies through :data:`ALARM_ACTION_INPUTS`.
CLOUDWATCH_ALARMS = ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm")
#: What an alarm action is compared with: an action is an ARN (PutMetricAlarm/PutCompositeAlarm's AlarmActions),
#: which is a topic's ``arn`` and, for pulumi_aws's Topic, its ``id``; a topic's ``name`` is never an action.
ALARM_TOPIC_IDENTITY = ("arn", "id")


def alarm_topics(alarm: PolicyResource, topics: Sequence[PolicyResource]) -> list[PolicyResource] | None:
    """The topics among ``topics`` that ``alarm`` (metric or composite) notifies in any state, in ``topics``'
    order; ``None`` when an action's topic cannot be told. At preview a new topic's ARN is unknown, so the
    engine's property dependencies (the topic's URN) decide first (:func:`referenced_targets`)."""
    notified: set[str] = set()
    for prop in ALARM_ACTION_INPUTS:
        actions = resource_input(alarm, prop)
        if (not alarm.property_dependencies.get(prop) and isinstance(actions, list)
                and all(isinstance(action, str) for action in actions)):
            # known ARNs: each names its topic (one not among ``topics`` is another stack's)
            targets: list[PolicyResource] | None = [t for t in topics
                                                    if identity_values(t, ALARM_TOPIC_IDENTITY) & set(actions)]
        else:
            targets = referenced_targets(alarm, prop, topics, identity_keys=ALARM_TOPIC_IDENTITY)
        if targets is None:
            return None
        notified.update(t.urn for t in targets)
    return [t for t in topics if t.urn in notified]


# --- resource and trust policies: who is the principal? -------------------------------------------


def principal_values(statement: Mapping[str, Any]) -> list[Any]:
    """Every principal a statement names (``Principal: "*"`` or ``{"AWS": [...], "Service": ...}``)."""
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        return [value for values in principal.values() for value in as_list(values)]
    return list(as_list(principal))


#: What makes a policy value match more than one fixed value: IAM wildcards and policy variables.
NOT_FIXED_MARKS = ("*", "?", "${")
#: Condition keys (lower case) that bind a statement to known callers or sources: global ones, SNS's
#: aws:SourceOwner and KMS's kms:CallerAccount (kms:ViaService names a service, which any account may call).
#: sts:ExternalId is not one: it names no caller, and anyone who learns the value passes.
CALLER_CONDITION_KEYS = frozenset({
    "aws:sourceaccount", "aws:sourceowner", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths",
    "aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:principalorgpaths", "aws:sourcevpce",
    "aws:sourcevpc", "kms:calleraccount"})
#: Operators (lower case) under which such a key narrows: the key must be in the request and match. Negated ones,
#: ``...IfExists`` and ``ForAllValues:`` let requests without the key through.
NARROWING_OPERATORS = frozenset({
    "stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike",
    "foranyvalue:stringequals", "foranyvalue:stringlike"})


def fixed_value(value: Any) -> bool:
    """A policy value that matches one thing: a non-empty string without a wildcard or a policy variable."""
    return isinstance(value, str) and value.strip() != "" and not any(mark in value for mark in NOT_FIXED_MARKS)


#: Condition keys (lower case) that pin the resources a statement reaches to one account or organization: in a VPC
#: endpoint policy the keys that stop a way out to other accounts' resources (Amazon VPC guide, "Control access to
#: VPC endpoints using endpoint policies"; IAM global condition keys)
RESOURCE_CONDITION_KEYS = frozenset({"aws:resourceaccount", "aws:resourceorgid", "aws:resourceorgpaths",
                                     "s3:resourceaccount"})


def names_an_account(arn: Any) -> bool:
    """Whether an ARN carries an account ID (its fifth field): an S3 bucket's (``arn:aws:s3:::bucket``) does not, and a
    bucket of that name may be any account's."""
    parts = str(arn).split(":", 5)
    return len(parts) == 6 and parts[4] != ""


def narrows_to_fixed_callers(statement: Mapping[str, Any], keys: frozenset[str] = CALLER_CONDITION_KEYS) -> bool:
    """Whether a statement's ``Condition`` holds one of ``keys`` (default: the caller keys,
    :data:`CALLER_CONDITION_KEYS`) under a narrowing operator (:data:`NARROWING_OPERATORS`) with fixed values only
    (:func:`fixed_value`); conditions are ANDed, so one such entry narrows the statement whatever the others say.
    An ``aws:SourceArn`` of an ARN without an account (an S3 bucket's) narrows nothing alone: the IAM user guide
    (``aws:SourceArn``) and EventBridge's confused-deputy page ask for ``aws:SourceAccount`` beside it then."""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    for operator, entries in condition.items():
        if str(operator).lower() not in NARROWING_OPERATORS or not isinstance(entries, Mapping):
            continue
        for key, values in entries.items():
            listed = as_list(values)
            if str(key).lower() not in keys or not listed or not all(fixed_value(v) for v in listed):
                continue
            if str(key).lower() == "aws:sourcearn" and not all(names_an_account(v) for v in listed):
                continue
            return True
    return False


def is_public_statement(statement: Mapping[str, Any]) -> bool:
    """An ``Allow`` whose principal is anyone (``*``, ``{"AWS": "*"}``, or ``NotPrincipal``) unless its
    ``Condition`` :func:`narrows_to_fixed_callers`.

    AWS Config's public-access checks (sns-topic-no-public-access, kms-key-policy-no-public-access, behind
    Security Hub SNS.4 and KMS.5) call a policy non-public only when it grants access to fixed values, and every
    resource and trust policy rule holds to that: a condition on how (``aws:SecureTransport``), on a shared value
    (``sts:ExternalId``) or with a wildcard (``aws:PrincipalOrgID`` ``o-*``) names no caller.
    """
    if str(statement.get("Effect", "")).lower() != "allow" or narrows_to_fixed_callers(statement):
        return False
    if statement.get("NotPrincipal") is not None:
        return True  # Allow with NotPrincipal: everyone but the listed principals
    return any(isinstance(value, str) and value.strip() == "*" for value in principal_values(statement))


def public_statement_labels(document: Any) -> list[str]:
    """``statement <Sid or index>`` (as :func:`allow_statements` labels them) of each public statement
    (:func:`is_public_statement`) of a parsed policy document."""
    return [label for label, statement in allow_statements(document) if is_public_statement(statement)]


def known_policy_document(args: ResourceValidationArgs, prop: str, label: str,
                          report_violation: Callable[..., None], invalid_json: str) -> Any:
    """The parsed policy document in input ``prop``: undecidable while any of it is unknown, ``invalid_json``
    reported (and None returned) when it does not parse. ``label`` names the property for the not-applicable
    reason."""
    raw = plain(args.props).get(prop)
    if raw is UNKNOWN or contains_unknown(raw):
        undecidable(args, label)
    try:
        return parse_json(raw)
    except ValueError:
        report_violation(invalid_json)
        return None


def public_statements(args: ResourceValidationArgs, prop: str, label: str,
                      report_violation: Callable[..., None], invalid_json: str) -> list[str]:
    """``statement <Sid or index>`` of each public statement (:func:`public_statement_labels`) of the policy
    document in input ``prop`` (:func:`known_policy_document`)."""
    document = known_policy_document(args, prop, label, report_violation, invalid_json)
    return [] if document is None else public_statement_labels(document)


def report_public_policy(args: ResourceValidationArgs, prop: str, what: str, report_violation: Callable[..., None],
                         fix: str) -> None:
    """The check of a resource policy rule (ECR repository, SNS topic...): one violation naming every public
    statement (:func:`public_statements`) of the policy document in input ``prop`` of ``what`` (``ECR repository
    policy 'r'``), ending with ``fix``; one naming ``what`` when it is not JSON."""
    public = public_statements(args, prop, f"{what}: {prop}", report_violation,
                               f"{what} is not valid JSON; fix the policy document.")
    if public:
        report_violation(f"{what}: {', '.join(public)} allows any principal without a condition naming fixed "
                         f"callers; {fix}")


def owned_policy_not_public(service: str, owner: str, owner_type: str, policy_type: str,
                            fix: str) -> SdkResourceValidation:
    """The validate function of a rule on a resource policy that lives either inline (``policy`` of ``owner_type``, an
    SNS topic, an SQS queue) or in a resource of its own (``policy`` of ``policy_type``): :func:`report_public_policy`
    of it; an owner without an inline policy has its service's default (its own account only) and is not
    applicable."""

    @applies_to(owner_type, policy_type)
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        what = f"{service} {owner + ' policy' if args.resource_type == policy_type else owner} '{args.name}'"
        if args.resource_type == owner_type and plain(args.props).get("policy") in (None, ""):
            args.not_applicable(f"{what} has no inline policy ({service}'s default: its own account only)")
        report_public_policy(args, "policy", what, report_violation, fix)

    return validate


IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY_DOCUMENT_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
    "aws:iam/policy:Policy",
)
"""Resource types whose ``policy`` input is an IAM policy document (a role carries inline ones)."""


def iam_policy_documents(args: ResourceValidationArgs) -> tuple[str, list[tuple[str, Any]]]:
    """``(what, [(label, raw document)])`` of an IAM role (its inline policies) or of a policy resource
    (its ``policy``): what the IAM rules read. Undecidable when a role's inline policies are unknown."""
    props = plain(args.props)
    documents: list[tuple[str, Any]] = []
    if args.resource_type == IAM_ROLE:
        inline = props.get("inlinePolicies")
        if inline is UNKNOWN:
            undecidable(args, f"IAM role '{args.name}': inlinePolicies")
        for index, entry in enumerate(as_list(inline)):
            name = entry.get("name") if isinstance(entry, dict) else None
            label = f"inline policy '{name}'" if isinstance(name, str) and name else f"inline policy #{index}"
            documents.append((label, entry.get("policy") if isinstance(entry, dict) else None))
        return f"IAM role '{args.name}'", documents
    documents.append(("policy", props.get("policy")))
    kind = args.resource_type.split(":")[-1]
    return f"IAM {'managed policy' if kind == 'Policy' else kind} '{args.name}'", documents


def known_iam_documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    """``(subject, raw document)`` of each set policy document of the IAM role or policy being checked
    (:func:`iam_policy_documents`), ``subject`` naming it for messages (``IAM role 'r': inline policy 'p'``).
    Unset documents are skipped; unknown ones, once every known one was yielded (and judged), make the
    rule undecidable naming them."""
    what, documents = iam_policy_documents(args)
    unknown: list[str] = []
    for label, raw in documents:
        if raw is None or raw == "":
            continue
        if contains_unknown(raw):
            unknown.append(label)
            continue
        yield f"{what}: {label}", raw
    if unknown:
        undecidable(args, f"{what}: {', '.join(unknown)}")


def iam_document_rule(module_file: str, findings: Callable[[Any], list[str]], *, fix: str,
                      invalid_json: str | None) -> ResourceValidationPolicy:
    """The ``POLICY`` of a rule that judges each set permission policy document of IAM roles and policies
    (:func:`known_iam_documents`): ``findings`` of the parsed document, reported together as
    ``<subject> <finding>; <finding>; <fix>``. A document that is not JSON is reported
    ``<subject> is not valid JSON; <invalid_json>``, or left to the rule that reports it (``None``)."""

    @applies_to(IAM_ROLE, *IAM_POLICY_DOCUMENT_TYPES)
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for subject, raw in known_iam_documents(args):
            try:
                document = parse_json(raw)
            except ValueError:
                if invalid_json is not None:
                    report_violation(f"{subject} is not valid JSON; {invalid_json}")
                continue
            found = findings(document)
            if found:
                report_violation(f"{subject} {'; '.join(found)}; {fix}")

    return rule_policy(module_file, validate)


# -- fix hints that name the platform's own settings ----------------------------------------------

#: Stack tag the offline engine sends (ConfigureStack) for the platform's own layers: its value is the
#: layer. Any other program (``nox -s policy -- --program DIR``) has no such tag.
PLATFORM_LAYER_TAG = "ml-platform:layer"
#: The stack tag the CLI sends for every stack (its project's name, pulumi/pulumi "pulumi:project"): a layer's
#: project is named after it (stacks/<layer>/Pulumi.yaml), and the CLI sends no PLATFORM_LAYER_TAG.
PROJECT_TAG = "pulumi:project"


def platform_hint(args: ResourceValidationArgs | StackValidationArgs, hint: str) -> str:
    """``hint`` (text naming this platform's env file or helpers, starting with a space) for the
    platform's layers, offline or under the CLI; empty for any other program, whose owners have none of those."""
    tags = getattr(args, "stack_tags", None) or {}
    return hint if tags.get(PLATFORM_LAYER_TAG) or tags.get(PROJECT_TAG) in LAYERS else ""


# --- key policies of a stack's KMS keys, and ARN conditions -------------------------------------------

KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
#: What names a KMS key where another resource refers to it (``kmsKeyId``, ``kmsMasterKeyId``, a KeyPolicy's
#: ``keyId``): its ARN, its id or its key id.
KMS_KEY_IDENTITY = ("arn", "id", "keyId")
#: The condition operators (lower case) under which an ARN-valued key such as ``aws:SourceArn`` names resources.
ARN_CONDITION_OPERATORS = ("arnlike", "arnequals", "stringlike", "stringequals")


class Undecided(Exception):
    """What a stack rule could not read; the message names it, for the rule's not-applicable reason."""


def policy_input(resource: PolicyResource, what: str) -> Any:
    """``resource``'s ``policy`` input as a document: ``None`` when unset or not JSON; :class:`Undecided` while
    unknown (``what`` names the resource kind in the reason)."""
    raw = resource_input(resource, "policy")
    if raw is UNKNOWN or contains_unknown(raw):
        raise Undecided(f"{what} '{resource.name}': policy")
    if raw is None or raw == "":
        return None
    try:
        return parse_json(raw)
    except ValueError:
        return None


def targets_of(resource: PolicyResource, prop: str, candidates: Sequence[PolicyResource], what: str,
               identity_keys: tuple[str, ...]) -> list[PolicyResource]:
    """:func:`referenced_targets`, with :class:`Undecided` where it cannot be told."""
    targets = referenced_targets(resource, prop, candidates, identity_keys=identity_keys)
    if targets is None:
        raise Undecided(f"{what} '{resource.name}': {prop}")
    return targets


def attached_policies(target: PolicyResource, attached: Sequence[PolicyResource], prop: str,
                      candidates: Sequence[PolicyResource], what: str,
                      identity_keys: tuple[str, ...]) -> list[PolicyResource]:
    """The policy resources of the stack (``aws.sns.TopicPolicy``, ``aws.kms.KeyPolicy``) whose ``prop`` refers
    to ``target``: each replaces the target's own ``policy`` input."""
    return [policy for policy in attached
            if target.urn in {t.urn for t in targets_of(policy, prop, candidates, what, identity_keys)}]


def key_policy_documents(key: PolicyResource, key_policies: Sequence[PolicyResource],
                         keys: Sequence[PolicyResource]) -> list[tuple[str, Any]]:
    """The policies in force on the stack's KMS ``key``, each with how a finding names it: those of the stack's
    ``aws.kms.KeyPolicy`` resources for it (``" (key policy '<name>')"``), which replace the key's own input, else
    that input (``""``; ``None`` where unset: AWS's default key policy, for the account's IAM principals only)."""
    attached = attached_policies(key, key_policies, "keyId", keys, "key policy", KMS_KEY_IDENTITY)
    if attached:
        return [(f" (key policy '{policy.name}')", policy_input(policy, "key policy")) for policy in attached]
    return [("", policy_input(key, "KMS key"))]


def key_policy_problems(resource: PolicyResource, key_input: str, what: str, keys: Sequence[PolicyResource],
                        key_policies: Sequence[PolicyResource], *, grants: Callable[[Any], bool],
                        denied: str) -> Iterator[str]:
    """What keeps a service out of the KMS key ``resource`` (a ``what``, e.g. ``"topic"``) is encrypted with: for each
    key of the stack its ``key_input`` refers to (a key of another stack, by ARN: none), each policy in force on it
    (:func:`key_policy_documents`) that ``grants`` refuses, as ``"its KMS key '<key>'<where> does not let <denied>"``.
    :class:`Undecided` while the reference or a policy cannot be read."""
    for key in targets_of(resource, key_input, keys, f"{what} '{resource.name}'", KMS_KEY_IDENTITY):
        for where, document in key_policy_documents(key, key_policies, keys):
            if not grants(document):
                yield f"its KMS key '{key.name}'{where} does not let {denied}"


def allows_action(statement: Mapping[str, Any], action: str) -> bool:
    """Whether the statement's ``Action`` names ``action``, with IAM wildcards, in any case."""
    return any(isinstance(granted, str) and iam_wildcard(granted.lower()).fullmatch(action.lower()) is not None
               for granted in as_list(statement.get("Action")))


def names_service(statement: Mapping[str, Any], service: re.Pattern[str]) -> bool:
    """Whether the statement's principal is a service principal ``service`` matches, or anyone (``*``)."""
    return any(isinstance(p, str) and (p.strip() == "*" or service.fullmatch(p.strip()) is not None)
               for p in principal_values(statement))


def service_grants(document: Any, service: re.Pattern[str], actions: Iterable[str],
                   admits: Callable[[dict[str, Any]], bool]) -> bool:
    """Whether the policy's Allow statements that name ``service`` (:func:`names_service`) and that ``admits``
    (the caller's conditions) allow, together, every one of ``actions``."""
    usable = [s for _, s in allow_statements(document) if names_service(s, service) and admits(s)]
    return all(any(allows_action(s, action) for s in usable) for action in actions)


def condition_values(statement: Mapping[str, Any], key: str) -> Iterator[tuple[list[Any], str]]:
    """Each condition of the statement on ``key`` (in any case) under an ARN-naming operator
    (:data:`ARN_CONDITION_OPERATORS`): its values and its operator (lower case)."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return
    for operator, clauses in condition.items():
        if not isinstance(clauses, dict) or str(operator).lower() not in ARN_CONDITION_OPERATORS:
            continue
        for name, values in clauses.items():
            if str(name).lower() == key.lower():
                yield list(as_list(values)), str(operator).lower()


def admits_arn(value: Any, operator: str, service: str, resource: str) -> bool:
    """Whether a condition value under ``operator`` admits the ARN of ``resource`` (``alarm:<name>``,
    ``log-group:<name>``) of ``service``. The ARN operators (ArnEquals too) match the six colon-delimited parts one by
    one with wildcards, the last holding the rest; ``StringLike`` matches the whole string, a ``*`` spanning colons
    too (IAM user guide, "Amazon Resource Name (ARN) condition operators", "String condition operators").
    Partition, region and account are taken as written: a rule cannot see them."""
    if not isinstance(value, str):
        return False
    parts = value.split(":", 5)
    if operator == "stringlike":
        # the ARN with the partition, region and account the pattern writes where it has six parts (a * there
        # matches itself), else any that a * can stand for
        written = [f"arn:{parts[1]}:{service}:{parts[3]}:{parts[4]}:{resource}"] if len(parts) == 6 else []
        return any(iam_wildcard(value).fullmatch(arn) is not None
                   for arn in (*written, f"arn:*:{service}:*:*:{resource}"))
    # ArnEquals matches like ArnLike, wildcards included; only StringEquals compares literally (IAM user guide,
    # "Amazon Resource Name (ARN) condition operators")
    wildcards = operator.startswith("arn") or operator.endswith("like")

    def matches(pattern: str, text: str) -> bool:
        return iam_wildcard(pattern).fullmatch(text) is not None if wildcards else pattern == text

    return len(parts) == 6 and matches(parts[2], service) and matches(parts[5], resource)


def report_problems(args: StackValidationArgs, resources: Sequence[PolicyResource],
                    problems_of: Callable[[PolicyResource], Iterable[str]],
                    report: Callable[[PolicyResource, str], None], *, none_judged: str | None = None) -> None:
    """A stack rule's loop: ``report`` each problem ``problems_of`` finds on each resource. The resources it could not
    judge (:class:`Undecided`) make the rule not applicable once the others are reported, naming what; with
    ``none_judged`` they are passed over instead (decided once known), and the rule is not applicable, for that
    reason, only when it judged no resource at all."""
    undecided: list[str] = []
    for resource in resources:
        try:
            problems = list(problems_of(resource))
        except Undecided as reason:
            undecided.append(str(reason))
            continue
        for problem in problems:
            report(resource, problem)
    if none_judged is not None:
        if len(undecided) == len(resources):
            not_applicable(args, none_judged)
    elif undecided:
        undecidable(args, ", ".join(undecided))


# --- SNS topics of a stack that an AWS service publishes to ----------------------------------------------

SNS_TOPIC = "aws:sns/topic:Topic"
SNS_TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
#: What SNS calls on an encrypted topic's key for the AWS service that publishes (the SNS guide's key policy
#: statement for AWS services: kms:Decrypt and kms:GenerateDataKey*).
TOPIC_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
_AWS_MANAGED_SNS_KEY = re.compile(r"(^|:)alias/aws/sns$")


def admits_source_arn(statement: Mapping[str, Any], service: str, resource: str) -> bool:
    """Every ``aws:SourceArn`` condition of the statement names an ARN the caller's (``resource`` of ``service``)
    matches (:func:`admits_arn`); a statement without one admits any caller."""
    return all(any(admits_arn(value, operator, service, resource) for value in values)
               for values, operator in condition_values(statement, "aws:SourceArn"))


def publishing_stack(args: StackValidationArgs, none_reason: str, *more_types: str) -> dict[str, list[PolicyResource]]:
    """The stack's SNS topics (none: not applicable, ``none_reason``), KMS keys, key policies, topic policies and
    ``more_types``, by type: what :func:`topic_publish_problems` reads."""
    topics = stack_resources(args, SNS_TOPIC, none_reason=none_reason)
    return {SNS_TOPIC: topics, **{kind: stack_resources(args, kind)
                                  for kind in (KMS_KEY, KMS_KEY_POLICY, SNS_TOPIC_POLICY, *more_types)}}


@dataclass(frozen=True)
class TopicPublisher:
    """An AWS service that publishes to SNS topics for one caller (an alarm, an EventBridge rule): what
    :func:`topic_publish_problems` asks of the topic's key and topic policies."""

    #: the service as findings name it (``"CloudWatch"``)
    service: str
    #: its service principal (``"cloudwatch.amazonaws.com"``); a policy's principal may add a suffix (``.cn``)
    principal: str
    #: the caller as findings name it (``"alarm '<name>'"``, ``"rule/<name>"``)
    caller: str
    #: whether a key policy's Allow statement for the principal admits the caller (its conditions)
    key_admits: Callable[[dict[str, Any]], bool]
    #: whether a topic policy's Allow statement for the principal admits the caller (its conditions)
    topic_admits: Callable[[dict[str, Any]], bool]
    #: what ends a key policy finding (the condition the statement needs)
    key_detail: str = ""
    #: whether SNS's default topic policy (a topic with none of its own) lets the service publish: CloudWatch alarms
    #: of the account yes; EventBridge no (its principal is in no statement of the default policy: AWS knowledge
    #: center, "Why isn't my Amazon SNS topic receiving EventBridge notifications?")
    default_policy_admits: bool = True

    def grants(self, document: Any, actions: Iterable[str], admits: Callable[[dict[str, Any]], bool]) -> bool:
        """Whether the policy lets the service principal call every one of ``actions`` (:func:`service_grants`)."""
        return service_grants(document, re.compile(rf"{re.escape(self.principal)}.*"), actions, admits)


def topic_publish_problems(topic: PolicyResource, stack: dict[str, list[PolicyResource]],
                           publisher: TopicPublisher) -> Iterator[str]:
    """Why the ``publisher`` cannot publish to the stack's ``topic``: the topic is encrypted with the AWS managed key
    ``alias/aws/sns``; a policy in force on its key of the stack (:func:`key_policy_problems`) does not grant the
    principal :data:`TOPIC_KEY_ACTIONS` in a statement that ``key_admits``; its topic policies of the stack, else its
    own ``policy`` input, do not grant ``sns:Publish`` in a statement that ``topic_admits``; neither: SNS's default
    policy, which lets the publisher in only where ``default_policy_admits``. A key or topic policy not traced to the
    stack is not judged; what cannot be read raises :class:`Undecided`."""
    principal, caller = publisher.principal, publisher.caller
    key_id = resource_input(topic, "kmsMasterKeyId")
    if isinstance(key_id, str) and _AWS_MANAGED_SNS_KEY.search(key_id):
        yield (f"topic '{topic.name}': it is encrypted with the AWS managed key alias/aws/sns, which "
               f"{publisher.service} may not use; encrypt it with a customer managed key whose policy lets {principal} "
               "call kms:Decrypt and kms:GenerateDataKey*")
    elif key_id is not None:
        yield from (f"topic '{topic.name}': {problem}" for problem in key_policy_problems(
            topic, "kmsMasterKeyId", "topic", stack[KMS_KEY], stack[KMS_KEY_POLICY],
            grants=lambda document: publisher.grants(document, TOPIC_KEY_ACTIONS, publisher.key_admits),
            denied=f"{principal} call kms:Decrypt and kms:GenerateDataKey*{publisher.key_detail}"))

    def publishes(document: Any) -> bool:
        return publisher.grants(document, ("sns:Publish",), publisher.topic_admits)

    topic_policies = attached_policies(topic, stack[SNS_TOPIC_POLICY], "arn", stack[SNS_TOPIC], "topic policy",
                                       ("arn", "id"))
    for topic_policy in topic_policies:
        if not publishes(policy_input(topic_policy, "topic policy")):
            yield (f"topic '{topic.name}': its topic policy '{topic_policy.name}' does not let {principal} call "
                   f"sns:Publish for {caller}")
    own = None if topic_policies else policy_input(topic, "topic")
    if own is not None and not publishes(own):
        yield f"topic '{topic.name}': its policy input does not let {principal} call sns:Publish for {caller}"
    if resource_input(topic, "policy") is None and not topic_policies and not publisher.default_policy_admits:
        yield (f"topic '{topic.name}': it has SNS's default topic policy, which does not let {principal} call "
               f"sns:Publish; give it a policy (an aws.sns.TopicPolicy) whose statement allows {principal} "
               f"sns:Publish with aws:SourceArn = the ARN of {caller}")


def report_topic_publishers(args: StackValidationArgs, publishers: Sequence[PolicyResource],
                            stack: dict[str, list[PolicyResource]],
                            topics_of: Callable[[PolicyResource], Sequence[PolicyResource]],
                            publisher_of: Callable[[PolicyResource], TopicPublisher],
                            report: Callable[[PolicyResource, str], None]) -> None:
    """A publishing rule's loop (:func:`report_problems`): for each of the stack's ``publishers`` (alarms, event
    targets), the topics of the stack it publishes to (``topics_of``) and, where there are any, each
    :func:`topic_publish_problems` of its :class:`TopicPublisher` (``publisher_of``), given to ``report``."""

    def problems_of(resource: PolicyResource) -> list[str]:
        topics = topics_of(resource)
        if not topics:
            return []
        publisher = publisher_of(resource)
        return [problem for topic in topics for problem in topic_publish_problems(topic, stack, publisher)]

    report_problems(args, publishers, problems_of, report)
