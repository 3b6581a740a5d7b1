"""rabbitmq-queue-durable: queues are durable and not auto-delete.

Why: a non-durable queue loses every message on a broker restart, and an auto-delete queue is
removed when its last consumer disconnects -- a rolling deployment of the consuming service then
deletes the queue and every message published until the new tasks reconnect is unroutable. The
provider defaults are ``durable = false`` and ``auto_delete = false``, so a queue written without
settings fails. (Quorum queues must be durable anyway: RabbitMQ refuses a transient one.)
Resource: ``rabbitmq:index/queue:Queue`` (``settings.durable``, ``settings.autoDelete``). No
cdk-nag/checkov equivalent (RabbitMQ queues: https://www.rabbitmq.com/docs/queues#durability).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import get, resource_policy
from shared.policy_typing import ReportViolation

QUEUE = "rabbitmq:index/queue:Queue"


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = get(args.props, "name", default=args.name)
    durable = get(args.props, "settings", "durable", default=False)
    auto_delete = get(args.props, "settings", "autoDelete", default=False)
    problems = []
    if durable is not True:
        problems.append("is not durable (messages are lost on a broker restart): set settings.durable=True")
    if auto_delete is True:
        problems.append("is auto-delete (removed when its last consumer disconnects, e.g. during a deployment): "
                        "set settings.auto_delete=False")
    if problems:
        report(f"RabbitMQ queue '{name}' " + "; and ".join(problems) + ".")


POLICY = resource_policy(__file__, check, types=[QUEUE])
