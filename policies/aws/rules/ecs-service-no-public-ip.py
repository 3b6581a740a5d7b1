"""ECS services do not assign public IPs to their tasks.

Why: a task with a public IP is reachable from the internet whenever its security group allows it,
bypassing the load balancer; tasks in private subnets reach AWS APIs through NAT or VPC endpoints.
Matches checkov CKV_AWS_333; no cdk-nag equivalent.
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


@applies_to("aws:ecs/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    assign_public_ip = known_input(args, "ECS service", "networkConfiguration.assignPublicIp")
    if is_true(assign_public_ip):
        report_violation(
            f"ECS service '{args.name}' assigns public IPs to its tasks; set network_configuration.assign_public_ip="
            "False and run the tasks in private subnets (egress through NAT or VPC endpoints)."
        )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
