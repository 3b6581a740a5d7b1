"""Every container of a task definition has a read-only root filesystem.

Why: an attacker who gets code execution cannot drop tools or modify the image's binaries; writable
scratch space is declared explicitly as a volume. Windows containers do not support the setting (ECS
ContainerDefinition) and are not applicable. Matches checkov CKV_AWS_336; no cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    is_true,
    require_linux_task,
    rule_policy,
    task_containers,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    require_linux_task(args, "readonlyRootFilesystem")
    writable = [label for label, c in task_containers(args, at_least_one=True)
                if not is_true(c.get("readonlyRootFilesystem"))]
    if writable:
        report_violation(
            f"task definition '{args.name}' has container(s) with a writable root filesystem: {', '.join(writable)}; "
            "set readonlyRootFilesystem=true and mount a volume for any path the app writes to."
        )


POLICY = rule_policy(__file__, _validate)
