"""ECS task definitions use the ``awsvpc`` network mode.

Why: only ``awsvpc`` gives each task its own ENI, so security groups, flow logs and Cloud Map records
apply per task; ``bridge`` (the default on EC2) and ``host`` share the instance's network identity, and
Fargate accepts nothing else. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    network_mode = known_input(args, "task definition", "networkMode")
    if network_mode != "awsvpc":
        shown = repr(network_mode) if network_mode else "unset (bridge on EC2)"
        report_violation(
            f"task definition '{args.name}' uses network mode {shown}; set network_mode='awsvpc' so each task gets "
            "its own ENI and security groups."
        )


POLICY = rule_policy(__file__, _validate)
