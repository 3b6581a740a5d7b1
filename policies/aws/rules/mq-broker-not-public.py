"""Amazon MQ brokers are not publicly accessible.

Why: a public broker endpoint exposes the AMQP and management ports to the internet, where only a
password stands between an attacker and every queue; clients in the VPC reach a private broker
directly. Matches checkov CKV_AWS_69; no cdk-nag equivalent.
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
    public = known_input(args, "MQ broker", "publiclyAccessible")
    if is_true(public):
        report_violation(
            f"MQ broker '{args.name}' is publicly accessible; set publicly_accessible=False and place it in "
            "private subnets with a security group that admits only the services' security groups."
        )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
