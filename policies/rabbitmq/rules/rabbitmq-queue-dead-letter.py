"""rabbitmq-queue-dead-letter: work queues name a dead-letter exchange.

Why: without ``x-dead-letter-exchange`` a message that is rejected, expires (``x-message-ttl``) or
exceeds the quorum queue ``x-delivery-limit`` is dropped -- a poison message is either lost or
redelivered forever. With it, such messages land in the service's dead-letter queue
(``<service>.dlq`` in the catalog) where they can be inspected and replayed.

A work queue is any queue that is not itself a dead-letter queue (names ending in ``.dlq``, ``-dlq``,
``.dead-letter`` or ``.dlx``). The argument is read from ``settings.arguments`` or
``settings.argumentsJson``. A dead-letter exchange set by a broker policy is not visible to a
resource policy; the platform declares it on the queue so it is reviewable in code.
Resource: ``rabbitmq:index/queue:Queue``. No cdk-nag/checkov equivalent (RabbitMQ dead lettering:
https://www.rabbitmq.com/docs/dlx).
"""

from pulumi_policy import ReportViolation, ResourceValidationArgs

from shared.policy_support import get, known, rabbitmq_queue_arguments, resource_policy

QUEUE = "rabbitmq:index/queue:Queue"
DEAD_LETTER_SUFFIXES = (".dlq", "-dlq", "_dlq", ".dead-letter", ".dlx")


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = known(get(args.props, "name", default=args.name), "name")
    if str(name).lower().endswith(DEAD_LETTER_SUFFIXES):
        args.not_applicable(f"'{name}' is a dead-letter queue")
    dlx = rabbitmq_queue_arguments(args.props).get("x-dead-letter-exchange")
    if dlx is None:
        report(f"RabbitMQ work queue '{name}' names no dead-letter exchange, so rejected or expired messages are "
               "dropped; add settings.arguments={'x-dead-letter-exchange': '<dlx>', 'x-dead-letter-routing-key': "
               f"'{str(name).rsplit('.', 1)[0]}.dlq'}} and bind a '<service>.dlq' queue to it.")


POLICY = resource_policy(__file__, check, types=[QUEUE])
