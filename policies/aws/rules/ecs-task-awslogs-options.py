"""Containers that log with the ``awslogs`` driver name the log group and the Region, on Fargate a stream
prefix too, a delivery ``mode`` ECS knows (``blocking`` or ``non-blocking``), and ``awslogs-create-group``
only as ``true``.

Why: each passes ``pulumi preview`` and fails ``pulumi up`` in the middle of the compute layer, where
RegisterTaskDefinition refuses it ("Log driver awslogs requires options: awslogs-region, awslogs-group";
"option 'awslogs-create-group' should only be set to 'true', else omit option", as reported by users of
the AWS provider and CloudFormation), or a container of the registered definition cannot start. The
requirements are the ECS API's (botocore ``ecs`` model, LogConfiguration.options: ``awslogs-group`` and
``awslogs-region`` "Required: Yes", ``awslogs-stream-prefix`` "Required: Yes, when using Fargate",
``mode`` "Valid values: non-blocking | blocking"). No cdk-nag/checkov equivalent (``ecs-task-logging``
only asks for some log configuration).
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, as_list, get, known_input, rule_policy, task_containers
from shared.policy_typing import ReportViolation

MODES = ("blocking", "non-blocking")


def awslogs_problems(options: dict[str, Any], fargate: bool) -> list[str]:
    """What the ``awslogs`` ``options`` of one container lack or get wrong."""
    required = ["awslogs-group", "awslogs-region"] + (["awslogs-stream-prefix"] if fargate else [])
    problems = [f"{key} is required{' on Fargate' if key == 'awslogs-stream-prefix' else ''}"
                for key in required if not options.get(key)]
    if options.get("mode", MODES[0]) not in MODES:
        problems.append(f"mode {options['mode']!r} is not blocking or non-blocking")
    if options.get("awslogs-create-group", "true") != "true":
        problems.append(f"awslogs-create-group {options['awslogs-create-group']!r} must be 'true' or left out")
    return problems


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    containers = task_containers(args)
    if not any(get(c, "logConfiguration", "logDriver") == "awslogs" for _, c in containers):
        args.not_applicable(f"task definition '{args.name}' has no container logging with awslogs")
    fargate = "FARGATE" in as_list(known_input(args, "task definition", "requiresCompatibilities"))
    for label, container in containers:
        if get(container, "logConfiguration", "logDriver") != "awslogs":
            continue
        options = get(container, "logConfiguration", "options")
        for problem in awslogs_problems(options if isinstance(options, dict) else {}, fargate):
            report_violation(f"task definition '{args.name}', container {label}: awslogs {problem}; ECS refuses the "
                             "task definition or cannot start the container. Set options awslogs-group, "
                             "awslogs-region, awslogs-stream-prefix (and mode blocking or non-blocking).")


POLICY = rule_policy(__file__, _validate)
