"""rabbitmq-queue-settings-by-policy: queues carry no argument a policy can set; policies do.

Arguments a policy can set: TTL, length and delivery limits, overflow, dead-lettering.

Why: a queue's arguments are fixed when it is declared. The RabbitMQ provider marks every queue setting
ForceNew (terraform-provider-rabbitmq ``resource_queue.go``: ``settings``, ``arguments`` and
``arguments_json`` are ``ForceNew``; the resource has no Update), so changing e.g. ``x-message-ttl``
later means delete + create: the queue's messages are lost, and where the queue is ``protect``ed (prod)
the ``up`` fails. RabbitMQ itself refuses a redeclare with other arguments (``406 PRECONDITION_FAILED
- inequivalent arg``). A RabbitMQ policy (``rabbitmq.Policy``) or operator policy
(``rabbitmq.OperatorPolicy``, for limits) sets the same things and is updated in place; RabbitMQ
applies the change to the existing queue and its messages at once (https://www.rabbitmq.com/docs/policies).
Worse, an argument wins over a policy for these keys, so a setting once made an argument can no
longer be changed by any policy.

How it decides: the arguments of a ``rabbitmq:index/queue:Queue`` (``settings.arguments`` merged with
``settings.argumentsJson``) must not contain any of the policy-settable keys listed in ``POLICY_KEYS``
(``x-queue-type``, which can never change, is fine). No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import get, known, rabbitmq_queue_arguments, resource_policy
from shared.policy_typing import ReportViolation

QUEUE = "rabbitmq:index/queue:Queue"

#: The policy keys that set what a queue's argument ``x-<key>`` sets (RabbitMQ docs, "Policies": queue keys).
SETTABLE = ("message-ttl", "expires", "max-length", "max-length-bytes", "overflow", "dead-letter-exchange",
            "dead-letter-routing-key", "dead-letter-strategy", "delivery-limit", "max-in-memory-length",
            "max-in-memory-bytes", "queue-leader-locator")
#: queue argument -> the policy key that sets the same thing.
POLICY_KEYS: dict[str, str] = {f"x-{key}": key for key in SETTABLE}
LIMITS = ("x-max-length", "x-max-length-bytes", "x-message-ttl", "x-delivery-limit", "x-expires")


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = known(get(args.props, "name", default=args.name), "name")
    arguments = rabbitmq_queue_arguments(args.props)
    found = sorted(key for key in arguments if key in POLICY_KEYS)
    if not found:
        return
    moves = ", ".join(f"{key} -> '{POLICY_KEYS[key]}'" for key in found)
    operator = [POLICY_KEYS[key] for key in found if key in LIMITS]
    report(f"RabbitMQ queue '{name}' sets {', '.join(found)} as queue arguments, which can never change without "
           "deleting the queue (the provider replaces it; RabbitMQ refuses a redeclare with 406 PRECONDITION_FAILED); "
           f"keep only x-queue-type and move them into a rabbitmq.Policy matching the queue ({moves})"
           + (f", limits ({', '.join(operator)}) preferably into a rabbitmq.OperatorPolicy" if operator else "")
           + ".")


POLICY = resource_policy(__file__, check, types=[QUEUE])
