"""rabbitmq-queue-length-limit: every queue, dead-letter queues included, has a length limit (stack rule).

A queue is bounded when the policy RabbitMQ applies to it (the highest-priority ``rabbitmq.Policy`` of its vhost
whose pattern and apply-to match it) or the operator policy it applies (likewise among the
``rabbitmq.OperatorPolicy`` resources; RabbitMQ applies one of each and the lower limit wins) sets ``max-length``
or ``max-length-bytes``, or the queue declares ``x-max-length`` / ``x-max-length-bytes`` itself
(``rabbitmq-queue-settings-by-policy`` reports such an argument on its own). A stream is bounded by its retention
instead, ``max-length-bytes`` or ``max-age``: RabbitMQ does not apply ``max-length`` to streams. A queue whose name,
vhost or candidate policies are unknown during preview leaves the rule undecided when nothing else is reported.

Why: a queue without a limit grows while its consumers are down or slower than its publishers, dead-letter queues
above all (nothing consumes them by default). RabbitMQ then raises its memory or disk alarm and blocks every
publishing connection of the broker, every service's, not only the full queue's (RabbitMQ docs, "Memory and Disk
Alarms"); with a limit the queue refuses or drops at its own bound (``overflow``: ``reject-publish`` or drop-head,
"Queue Length Limit"). Amazon MQ puts default limits on the ``/`` vhost only. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import StackValidationArgs

from shared.policy_support import RabbitmqQueue, judge_rabbitmq_queues, stack_rule_policy
from shared.policy_typing import ReportViolation

LIMITS = ("max-length", "max-length-bytes")
#: a stream's retention (RabbitMQ docs, "Streams": size- or time-based retention drops whole segments); max-length
#: does not apply to a stream
STREAM_LIMITS = ("max-length-bytes", "max-age")


def _check(queue: RabbitmqQueue) -> str | None:
    """The violation message for ``queue``, or None when it has a length limit."""
    name, vhost = queue.name, queue.vhost
    limits = STREAM_LIMITS if queue.queue_type == "stream" else LIMITS
    if any(queue.arguments.get(f"x-{limit}") is not None for limit in limits):
        return None
    for operator in (False, True):
        applied = queue.applying(operator)
        if applied is not None and any(applied[1].get(limit) is not None for limit in limits):
            return None
    if queue.queue_type == "stream":
        return (f"RabbitMQ stream '{name}' (vhost '{vhost}') has no retention: neither its policy nor its arguments "
                "set max-length-bytes or max-age (max-length does not apply to a stream), so it keeps every message "
                "until the broker's disk alarm blocks every publisher. Add max-length-bytes (or max-age) to the "
                "stream's policy.")
    return (f"RabbitMQ queue '{name}' (vhost '{vhost}') has no length limit: neither the policy nor the operator "
            "policy that applies to it sets max-length or max-length-bytes, so it grows until the broker's memory or "
            "disk alarm blocks every publisher. Add rabbitmq.OperatorPolicy(vhost=..., policy={'pattern': "
            f"'^{name.replace('.', chr(92) + '.')}$', 'apply_to': 'queues', 'priority': 10, "
            "'definition': {'max-length': N}}) (or max-length in the queue's own policy).")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    judge_rabbitmq_queues(args, report_violation, _check)


POLICY = stack_rule_policy(__file__, _validate)
