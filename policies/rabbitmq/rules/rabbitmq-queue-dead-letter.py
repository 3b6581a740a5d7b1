"""rabbitmq-queue-dead-letter: every work queue dead-letters (the policy that applies to it names a DLX).

A stack rule: it matches queues against the stack's policies.

Why: without a dead-letter exchange a message that is rejected, expires (``message-ttl``) or exceeds
the quorum queue ``delivery-limit`` is dropped -- a poison message is either lost or redelivered
forever. With one, such messages land in the service's dead-letter queue (``<service>.dlq`` in the
catalog) where they can be inspected and replayed.

How it decides: a work queue is any ``rabbitmq:index/queue:Queue`` that is not itself a dead-letter
queue (names ending in ``.dlq``, ``-dlq``, ``_dlq``, ``.dead-letter`` or ``.dlx``). RabbitMQ applies
exactly one policy to a queue: among the ``rabbitmq:index/policy:Policy`` resources of the queue's
vhost whose ``apply-to`` covers the queue (``queues``, ``all``, or the queue's own type: ``classic_queues``,
``quorum_queues``, ``streams`` by its ``x-queue-type``; any of them when it declares none) and whose ``pattern``
(a regular expression) matches the queue name, the one with the highest ``priority``. That policy's
``definition`` must set ``dead-letter-exchange``. An ``x-dead-letter-exchange`` queue argument also
counts here (``rabbitmq-queue-settings-by-policy`` reports the argument itself). A queue whose name,
vhost or candidate policies are unknown during preview makes the rule not applicable.
No cdk-nag/checkov equivalent (RabbitMQ dead lettering: https://www.rabbitmq.com/docs/dlx; policies:
https://www.rabbitmq.com/docs/policies).
"""

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from shared.policy_support import Unknown, get, known, rabbitmq_queue_arguments, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

QUEUE = "rabbitmq:index/queue:Queue"
POLICY_TYPE = "rabbitmq:index/policy:Policy"
DEAD_LETTER_SUFFIXES = (".dlq", "-dlq", "_dlq", ".dead-letter", ".dlx")
APPLIES_TO_QUEUES = ("queues", "all", "classic_queues", "quorum_queues", "streams")
#: apply-to of a policy for one queue type only (RabbitMQ 3.12+, "Policies": apply-to) -> that type
TYPED_APPLY_TO = {"classic_queues": "classic", "quorum_queues": "quorum", "streams": "stream"}


def _policy_view(policy: PolicyResource) -> tuple[str, str, int, str, dict[str, Any]] | None:
    """(vhost, pattern, priority, apply-to, definition) of a policy; None when it cannot match anything."""
    props = policy.props
    vhost = known(get(props, "vhost"), f"policy '{policy.name}' vhost")
    pattern = known(get(props, "policy", "pattern"), f"policy '{policy.name}' pattern")
    apply_to = known(get(props, "policy", "applyTo"), f"policy '{policy.name}' applyTo")
    priority = known(get(props, "policy", "priority", default=0), f"policy '{policy.name}' priority")
    definition = get(props, "policy", "definition", default={}) or {}
    if vhost is None or pattern is None or apply_to not in APPLIES_TO_QUEUES:
        return None
    return str(vhost), str(pattern), int(priority), str(apply_to), dict(definition)


_View = tuple[str, str, int, str, dict[str, Any]] | None


class _Views:
    """Each policy's view, read once per stack instead of once per queue (200 queues x 200 policies
    re-read 40,000 views). A policy whose view raised raises the same error again, at the same
    place in the order, for every queue that gets that far -- what reading it again would do."""

    def __init__(self, policies: list[PolicyResource]) -> None:
        self.policies = policies
        self._views: list[tuple[PolicyResource, _View, Exception | None]] | None = None

    def __iter__(self) -> Iterator[tuple[PolicyResource, _View]]:
        if self._views is None:
            views: list[tuple[PolicyResource, _View, Exception | None]] = []
            for policy in self.policies:
                try:
                    views.append((policy, _policy_view(policy), None))
                except Exception as raised:  # noqa: BLE001 -- raised again below, in order
                    views.append((policy, None, raised))
            self._views = views
        for policy, view, failure in self._views:
            if failure is not None:
                raise failure
            yield policy, view


def applying_policy(policies: list[PolicyResource] | _Views, vhost: str, queue: str,
                    queue_type: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(name, definition) of the policy RabbitMQ applies to ``queue`` in ``vhost``, or None. A policy for one
    queue type applies only to queues of that type; ``queue_type`` None (not declared: the vhost's default
    decides) lets it apply."""
    best: tuple[int, str, dict[str, Any]] | None = None
    for policy, view in (policies if isinstance(policies, _Views) else _Views(policies)):
        if view is None or view[0] != vhost:
            continue
        typed = TYPED_APPLY_TO.get(view[3])
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


def _check(queue: PolicyResource, policies: _Views) -> str | None:
    """The violation message for ``queue``, or None when it dead-letters (or is a DLQ)."""
    name = str(known(get(queue.props, "name", default=queue.name), f"queue '{queue.name}' name"))
    if name.lower().endswith(DEAD_LETTER_SUFFIXES):
        return None
    vhost = str(known(get(queue.props, "vhost", default="/"), f"queue '{name}' vhost"))
    arguments = rabbitmq_queue_arguments(queue.props)
    if arguments.get("x-dead-letter-exchange"):
        return None
    queue_type = arguments.get("x-queue-type")
    applied = applying_policy(policies, vhost, name, str(queue_type).lower() if queue_type else None)
    dlq = f"{name.rsplit('.', 1)[0]}.dlq"
    fix = (f"add rabbitmq.Policy(vhost='{vhost}', policy={{'pattern': '^{re.escape(name)}$', 'apply_to': "
           f"'quorum_queues', 'priority': 10, 'definition': {{'dead-letter-exchange': '<dlx>', "
           f"'dead-letter-routing-key': '{name}'}}}}) and bind a '{dlq}' queue to the exchange")
    if applied is None:
        return f"RabbitMQ work queue '{name}' has no policy that names a dead-letter exchange, so rejected or " \
               f"expired messages are dropped; {fix}."
    policy_name, definition = applied
    if not definition.get("dead-letter-exchange"):
        return (f"RabbitMQ work queue '{name}': the policy that applies to it, '{policy_name}' (highest priority "
                "match), sets no dead-letter-exchange, so rejected or expired messages are dropped; add "
                "'dead-letter-exchange' (and 'dead-letter-routing-key') to its definition.")
    return None


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    queues = stack_resources(args, QUEUE, none_reason="the stack has no RabbitMQ queue")
    policies = _Views(stack_resources(args, POLICY_TYPE))
    undecided: list[str] = []
    violations = 0
    for queue in queues:
        try:
            message = _check(queue, policies)
        except (Unknown, UnknownValueError) as error:
            undecided.append(str(getattr(error, "message", None) or error))
            continue
        if message:
            violations += 1
            report_violation(message, queue.urn)
    if undecided and not violations:
        args.not_applicable(f"cannot decide: {undecided[0]} is not known during preview")


POLICY = stack_rule_policy(__file__, _validate)
