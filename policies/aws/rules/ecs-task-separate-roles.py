"""Task definitions set both a task role and an execution role, and they are different roles.

Why: the execution role is what the ECS agent uses to pull the image, fetch ``secrets`` and write
logs; the task role is what the application's code gets. Sharing one role hands the application the
right to read every secret the agent may fetch (and the agent whatever the app needs); leaving either
unset either breaks ``secrets``/private pulls or leaves the app with no identity of its own.
No cdk-nag/checkov equivalent. Role ARNs that are unknown during preview make the rule not applicable.
"""

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.aws.support import UNKNOWN, applies_to, plain, undecidable
from shared.policy_support import rule_description, rule_id


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    task_role, execution_role = props.get("taskRoleArn"), props.get("executionRoleArn")
    missing = [
        setting
        for setting, value in (("task_role_arn", task_role), ("execution_role_arn", execution_role))
        if value is None or value == ""
    ]
    if missing:
        report_violation(
            f"task definition '{args.name}' does not set {' and '.join(missing)}; give the task its own role for "
            "the application and a separate execution role for image pulls, secrets and logs."
        )
        return
    if task_role is UNKNOWN or execution_role is UNKNOWN:
        undecidable(args, f"task definition '{args.name}': taskRoleArn/executionRoleArn")
    if task_role == execution_role:
        report_violation(
            f"task definition '{args.name}' uses the same role ({task_role}) as task role and execution role; "
            "create a separate execution role (image pulls, secrets, logs) from the application's task role."
        )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
