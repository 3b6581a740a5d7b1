"""rabbitmq-policy-keys-supported: policies hold only keys RabbitMQ 4 and Amazon MQ apply, with valid values.

Why: a policy is the one place the platform sets queue behaviour, and a key that no longer works fails silently
or fails the deploy:

- ``ha-*`` (``ha-mode``, ``ha-params``, ``ha-sync-mode``, ...): classic queue mirroring was removed in RabbitMQ
  4.0 ("all classic queue mirroring-related parts of policies will have no effect", 4.0 release notes), and
  Amazon MQ requires every ``ha-`` key removed from a policy for quorum queues ("Policy configurations for
  quorum queues for Amazon MQ for RabbitMQ");
- ``queue-mode`` (lazy queues): gone with classic queues v1, ignored from RabbitMQ 3.12, and Amazon MQ requires
  it removed from a quorum-queue policy (same guide);
- ``overflow: reject-publish-dlx`` in a policy that applies to quorum queues (``apply-to`` ``quorum_queues``,
  ``queues`` or ``all``): quorum queues support ``drop-head`` and ``reject-publish`` only, and Amazon MQ requires
  it changed (same guide);
- a non-integer value of an integer key (``consumer-timeout``, ``delivery-limit``, ``message-ttl``, ``expires``,
  ``max-length``, ``max-length-bytes``): RabbitMQ refuses the whole policy ("... is not a valid consumer
  timeout"), so ``up`` fails on it. The provider's definition is a map of strings and it sends a string that
  parses as an integer as an integer (terraform-provider-rabbitmq ``putPolicy``/``putOperatorPolicy``, "special
  case for integers"), so ``"21600000"`` is fine and ``"6h"`` is not.

Those are offline checks because the rehearsal's local RabbitMQ is 3.10: it still knows ``ha-*`` and
``queue-mode`` and cannot show their removal.

How it decides: the ``policy.definition`` of each ``rabbitmq:index/policy:Policy`` and
``rabbitmq:index/operatorPolicy:OperatorPolicy``; ``policy.applyTo`` for the overflow value. An unknown
definition or value makes the rule not applicable. No cdk-nag/checkov equivalent.
"""

import re
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import get, known, resource_policy
from shared.policy_typing import ReportViolation

TYPES = ("rabbitmq:index/policy:Policy", "rabbitmq:index/operatorPolicy:OperatorPolicy")
#: apply-to values that cover quorum queues (RabbitMQ "Policies": apply-to)
COVERS_QUORUM = ("quorum_queues", "queues", "all")
INTEGER_KEYS = ("consumer-timeout", "delivery-limit", "message-ttl", "expires", "max-length", "max-length-bytes")
_INTEGER = re.compile(r"^-?[0-9]+$")


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):  # numbers reach a policy pack as floats (protobuf Value)
        return value.is_integer()
    return isinstance(value, int) or (isinstance(value, str) and _INTEGER.match(value) is not None)


def problems(definition: dict[str, Any], apply_to: str) -> list[str]:
    """What is wrong with one policy's ``definition`` (empty: nothing)."""
    found: list[str] = []
    mirroring = sorted(key for key in definition if key.startswith("ha-"))
    if mirroring:
        found.append(f"{', '.join(mirroring)}: classic queue mirroring was removed in RabbitMQ 4.0 (no effect) and "
                     "Amazon MQ refuses ha-* keys in a quorum-queue policy; remove them (replicate with quorum "
                     "queues)")
    if "queue-mode" in definition:
        found.append("queue-mode: lazy queues are gone (ignored from RabbitMQ 3.12) and Amazon MQ refuses the key in "
                     "a quorum-queue policy; remove it")
    overflow = known(definition.get("overflow"), "policy.definition.overflow")
    if overflow == "reject-publish-dlx" and apply_to in COVERS_QUORUM:
        found.append("overflow reject-publish-dlx: quorum queues support drop-head and reject-publish only (Amazon "
                     "MQ requires it changed); use reject-publish")
    for key in INTEGER_KEYS:
        if key in definition:
            value = known(definition[key], f"policy.definition.{key}")
            if not _is_integer(value):
                found.append(f"{key} {value!r} is not an integer (milliseconds or a count): RabbitMQ refuses the "
                             "whole policy; give the number alone, e.g. '21600000'")
    return found


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = known(get(args.props, "name", default=args.name), "name")
    definition = known(get(args.props, "policy", "definition", default={}), "policy.definition") or {}
    apply_to = str(known(get(args.props, "policy", "applyTo", default="all"), "policy.applyTo"))
    found = problems(dict(definition), apply_to)
    if found:
        kind = "operator policy" if args.resource_type == TYPES[1] else "policy"
        report(f"RabbitMQ {kind} '{name}': " + "; ".join(found) + ".")


POLICY = resource_policy(__file__, check, types=TYPES)
