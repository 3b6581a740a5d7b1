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

from pulumi_policy import PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from shared.policy_support import (
    RabbitmqPolicyViews,
    Unknown,
    get,
    known,
    rabbitmq_applying_policy,
    rabbitmq_queue_arguments,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

QUEUE = "rabbitmq:index/queue:Queue"
POLICY_TYPE = "rabbitmq:index/policy:Policy"
DEAD_LETTER_SUFFIXES = (".dlq", "-dlq", "_dlq", ".dead-letter", ".dlx")
def _check(queue: PolicyResource, policies: RabbitmqPolicyViews) -> str | None:
    """The violation message for ``queue``, or None when it dead-letters (or is a DLQ)."""
    name = str(known(get(queue.props, "name", default=queue.name), f"queue '{queue.name}' name"))
    if name.lower().endswith(DEAD_LETTER_SUFFIXES):
        return None
    vhost = str(known(get(queue.props, "vhost", default="/"), f"queue '{name}' vhost"))
    arguments = rabbitmq_queue_arguments(queue.props)
    if arguments.get("x-dead-letter-exchange"):
        return None
    queue_type = arguments.get("x-queue-type")
    applied = rabbitmq_applying_policy(policies, vhost, name, str(queue_type).lower() if queue_type else None)
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
    policies = RabbitmqPolicyViews(stack_resources(args, POLICY_TYPE))
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
