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
``definition`` must set ``dead-letter-exchange`` (``""``, the default exchange, with a ``dead-letter-routing-key``
naming another queue). An ``x-dead-letter-exchange`` queue argument also
counts here (``rabbitmq-queue-settings-by-policy`` reports the argument itself). A queue whose name,
vhost or candidate policies are unknown during preview makes the rule not applicable.
No cdk-nag/checkov equivalent (RabbitMQ dead lettering: https://www.rabbitmq.com/docs/dlx; policies:
https://www.rabbitmq.com/docs/policies).
"""

import re

from pulumi_policy import StackValidationArgs

from shared.policy_support import RabbitmqQueue, judge_rabbitmq_queues, stack_rule_policy
from shared.policy_typing import ReportViolation

DEAD_LETTER_SUFFIXES = (".dlq", "-dlq", "_dlq", ".dead-letter", ".dlx")


def _dead_letters(exchange: object, routing_key: object, name: str) -> bool:
    """Whether a dead-letter exchange (and routing key) sends a queue's dead letters somewhere. ``""`` is the
    default exchange, which routes by the routing key to the queue of that name: dead letters go to the key's queue,
    and with no key (or the queue's own name) back to the queue, a cycle RabbitMQ drops them from (RabbitMQ "Dead
    Letter Exchanges": "Routing Dead-Lettered Messages", "Dead-Lettered Messages cycles")."""
    if not isinstance(exchange, str):
        return False
    return exchange != "" or (isinstance(routing_key, str) and routing_key not in ("", name))


def _check(queue: RabbitmqQueue) -> str | None:
    """The violation message for ``queue``, or None when it dead-letters (or is a DLQ)."""
    name, vhost = queue.name, queue.vhost
    if name.lower().endswith(DEAD_LETTER_SUFFIXES):
        return None
    if "x-dead-letter-exchange" in queue.arguments:  # a queue argument wins over any policy (RabbitMQ "Policies")
        if _dead_letters(queue.arguments["x-dead-letter-exchange"], queue.arguments.get("x-dead-letter-routing-key"),
                         name):
            return None
        return (f"RabbitMQ work queue '{name}': its x-dead-letter-exchange argument is the default exchange without "
                "an x-dead-letter-routing-key naming another queue, so dead letters cycle back and are dropped; set "
                f"the routing key to its dead-letter queue ('{name.rsplit('.', 1)[0]}.dlq').")
    applied = queue.applying()
    dlq = f"{name.rsplit('.', 1)[0]}.dlq"
    fix = (f"add rabbitmq.Policy(vhost='{vhost}', policy={{'pattern': '^{re.escape(name)}$', 'apply_to': "
           f"'quorum_queues', 'priority': 10, 'definition': {{'dead-letter-exchange': '<dlx>', "
           f"'dead-letter-routing-key': '{name}'}}}}) and bind a '{dlq}' queue to the exchange")
    if applied is None:
        return f"RabbitMQ work queue '{name}' has no policy that names a dead-letter exchange, so rejected or " \
               f"expired messages are dropped; {fix}."
    policy_name, definition = applied
    if definition.get("dead-letter-exchange") == "" and not _dead_letters("", definition.get(
            "dead-letter-routing-key"), name):
        return (f"RabbitMQ work queue '{name}': the policy that applies to it, '{policy_name}' (highest priority "
                "match), sets the default exchange as dead-letter-exchange without a dead-letter-routing-key naming "
                "another queue, so dead letters cycle back and are dropped; set the routing key to its dead-letter "
                "queue.")
    if not _dead_letters(definition.get("dead-letter-exchange"), definition.get("dead-letter-routing-key"), name):
        return (f"RabbitMQ work queue '{name}': the policy that applies to it, '{policy_name}' (highest priority "
                "match), sets no dead-letter-exchange, so rejected or expired messages are dropped; add "
                "'dead-letter-exchange' (and 'dead-letter-routing-key') to its definition.")
    return None


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    judge_rabbitmq_queues(args, report_violation, _check)


POLICY = stack_rule_policy(__file__, _validate)
