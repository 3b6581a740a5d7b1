"""RabbitMQ brokers on Amazon MQ ask for an engine version, instance type and deployment mode that
Amazon MQ offers together (RabbitMQ 4.2 only on ``mq.m7g``; 3.13 on ``mq.t3``/``mq.m5``/``mq.m7g``;
``mq.t3.micro`` single-instance only).

Why: CreateBroker refuses any other combination, but only after the layers before the broker were
deployed; the env loader refuses the same for env runs, this rule for any program. The matrix and its
sources (Amazon MQ developer guide) are in ``shared/amazonmq.py``. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.amazonmq import broker_problems
from shared.policy_support import applies_to, known_input, rabbitmq_broker_props, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:mq/broker:Broker")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = rabbitmq_broker_props(args)
    version, instance, mode = (known_input(args, "MQ broker", key, props)
                               for key in ("engineVersion", "hostInstanceType", "deploymentMode"))
    version, instance, mode = str(version), str(instance), str(mode or "SINGLE_INSTANCE")
    for key, reason in broker_problems(version, instance, mode):
        report_violation(f"RabbitMQ broker '{args.name}' ({version}, {instance}, {mode}): {key}: {reason}.")


POLICY = rule_policy(__file__, _validate)
