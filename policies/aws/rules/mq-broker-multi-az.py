"""RabbitMQ brokers on Amazon MQ run as a three-node cluster across AZs (``CLUSTER_MULTI_AZ``).

Applies to ``engine_type`` RabbitMQ only (ActiveMQ uses ``ACTIVE_STANDBY_MULTI_AZ`` and is not
applicable). The default deployment mode is ``SINGLE_INSTANCE``.

Why: a single-instance broker is down for every maintenance window and lost with its AZ; every queue
and every service behind it stops with it. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rabbitmq_broker_props, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:mq/broker:Broker")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    mode = known_input(args, "MQ broker", "deploymentMode", rabbitmq_broker_props(args))
    if str(mode or "SINGLE_INSTANCE").upper() != "CLUSTER_MULTI_AZ":
        report_violation(
            f"RabbitMQ broker '{args.name}' runs as {mode or 'SINGLE_INSTANCE (the default)'}; set "
            "deployment_mode='CLUSTER_MULTI_AZ' with a subnet in each of three AZs."
        )


POLICY = rule_policy(__file__, _validate)
