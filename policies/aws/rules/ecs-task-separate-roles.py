"""Task definitions set both a task role and an execution role, and they are different roles.

A stack rule over ``aws:ecs/taskDefinition:TaskDefinition`` (``taskRoleArn``, ``executionRoleArn``). Known
ARNs are compared as they are. During preview the ARNs of roles created in the same run are unknown;
the rule then compares the resources each ARN is computed from (the engine's property dependencies,
which the real CLI sends too): the same role resource behind both is the finding, two different role
resources pass, and only when neither tells does the rule report not-applicable.

Why: the execution role is what the ECS agent uses to pull the image, fetch ``secrets`` and write
logs; the task role is what the application's code gets. Sharing one role hands the application the
right to read every secret the agent may fetch (and the agent whatever the app needs); leaving either
unset either breaks ``secrets``/private pulls or leaves the app with no identity of its own.
Matches checkov CKV_AWS_249 (execution and task role ARNs differ); no cdk-nag equivalent.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import UNKNOWN, resource_input, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ROLE = "aws:iam/role:Role"


def _roles(resource: PolicyResource, key: str) -> set[str]:
    """URNs of the IAM roles ``key`` is computed from (an ARN built from a role's output)."""
    return {d.urn for d in resource.property_dependencies.get(key) or [] if d.resource_type == ROLE}


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    definitions = stack_resources(args, TASK_DEFINITION, none_reason="the stack has no ECS task definition")
    undecided: list[str] = []
    for definition in definitions:
        task_role = resource_input(definition, "taskRoleArn")
        execution_role = resource_input(definition, "executionRoleArn")
        missing = [setting for setting, value in (("task_role_arn", task_role), ("execution_role_arn", execution_role))
                   if value is None or value == ""]
        if missing:
            report_violation(
                f"task definition '{definition.name}' does not set {' and '.join(missing)}; give the task its own "
                "role for the application and a separate execution role for image pulls, secrets and logs.",
                definition.urn)
            continue
        if task_role is not UNKNOWN and execution_role is not UNKNOWN:
            same = task_role == execution_role
            shown = task_role
        else:
            task_roles, execution_roles = _roles(definition, "taskRoleArn"), _roles(definition, "executionRoleArn")
            overlap_only = bool(task_roles & execution_roles) and task_roles != execution_roles
            if not task_roles or not execution_roles or overlap_only:
                undecided.append(f"task definition '{definition.name}': taskRoleArn/executionRoleArn")
                continue
            same = task_roles == execution_roles
            shown = ", ".join(sorted(urn.rsplit("::", 1)[-1] for urn in task_roles))
        if same:
            report_violation(
                f"task definition '{definition.name}' uses the same role ({shown}) as task role and execution role; "
                "create a separate execution role (image pulls, secrets, logs) from the application's task role.",
                definition.urn)
    if undecided:
        args.not_applicable(f"{', '.join(undecided)} is unknown until deployment and not traceable to a role "
                            "resource; the rule decides once it is known")


POLICY = stack_rule_policy(__file__, _validate)
