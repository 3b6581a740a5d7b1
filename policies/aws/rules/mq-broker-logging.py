"""Amazon MQ brokers ship their general logs to CloudWatch Logs.

Why: connection refusals, authentication failures and blocked publishers only show up in the broker
log; without ``logs.general`` there is nothing to investigate them with. (RabbitMQ brokers support
only general logs, so that is what is required.) Matches checkov CKV_AWS_48.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    applies_to,
    is_true,
    known_input,
    rule_description,
    rule_id,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:mq/broker:Broker")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    general = known_input(args, "MQ broker", "logs.general")
    if not is_true(general):
        report_violation(f"MQ broker '{args.name}' does not ship general logs; set logs={{'general': True}}.")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
