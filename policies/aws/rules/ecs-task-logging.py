"""Every container of a task definition has a log configuration.

Why: without ``logConfiguration`` a container's stdout/stderr goes nowhere on Fargate (and only to the
instance's Docker daemon on EC2): a crash leaves no trace. Matches cdk-nag AwsSolutions-ECS7.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    get,
    rule_policy,
    task_containers,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    silent = [label for label, c in task_containers(args, at_least_one=True)
              if not get(c, "logConfiguration", "logDriver")]
    if silent:
        report_violation(
            f"task definition '{args.name}' has container(s) without logging: {', '.join(silent)}; set "
            "logConfiguration={'logDriver': 'awslogs', 'options': {'awslogs-group': <log group>, "
            "'awslogs-region': <region>, 'awslogs-stream-prefix': <service>}}."
        )


POLICY = rule_policy(__file__, _validate)
