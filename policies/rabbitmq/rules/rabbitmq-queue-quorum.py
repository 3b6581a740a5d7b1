"""rabbitmq-queue-quorum: queues are quorum queues.

Why: classic queues live on one broker node; in a ``CLUSTER_MULTI_AZ`` broker a node (AZ) failure
makes them unavailable and classic mirroring is removed in RabbitMQ 4. Quorum queues replicate with
Raft across nodes, survive the loss of a minority, and support a ``x-delivery-limit`` so poison
messages are dead-lettered instead of looping. Amazon MQ recommends them for RabbitMQ 3.13+.

The queue must declare ``x-queue-type = quorum`` in ``settings.arguments`` (or ``argumentsJson``): a
vhost's ``default_queue_type`` is not visible to a resource policy, and an explicit type keeps the
declaration identical whatever vhost it is applied to. Resource: ``rabbitmq:index/queue:Queue``.
No cdk-nag/checkov equivalent (RabbitMQ quorum queues: https://www.rabbitmq.com/docs/quorum-queues;
Amazon MQ best practice: https://docs.aws.amazon.com/amazon-mq/latest/developer-guide/quorum-queues.html).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import get, known, rabbitmq_queue_arguments, resource_policy
from shared.policy_typing import ReportViolation

QUEUE = "rabbitmq:index/queue:Queue"


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = known(get(args.props, "name", default=args.name), "name")
    queue_type = rabbitmq_queue_arguments(args.props).get("x-queue-type")
    if queue_type != "quorum":
        found = f"x-queue-type={queue_type!r}" if queue_type is not None else "no x-queue-type (a classic queue)"
        report(f"RabbitMQ queue '{name}' has {found}; declare it as a replicated quorum queue with "
               "settings.arguments={'x-queue-type': 'quorum'} (and durable=True, auto_delete=False).")


POLICY = resource_policy(__file__, check, types=[QUEUE])
