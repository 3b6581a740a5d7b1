"""Lambda functions, CodeBuild projects and ECS tasks write to a log group the stack declares (stack rule).

A Lambda function logs to ``loggingConfig.logGroup``, else to ``/aws/lambda/<function name>``; a CodeBuild project
with CloudWatch Logs on (the default) to ``logsConfig.cloudwatchLogs.groupName``, else to ``/aws/codebuild/<project
name>`` (Lambda developer guide, "Sending Lambda function logs to CloudWatch Logs"; CodeBuild API,
CloudWatchLogsConfig.groupName); an ECS container (or an ECS service's Service Connect proxy,
``serviceConnectConfiguration.logConfiguration``) with the ``awslogs`` driver to its ``awslogs-group``, which the
driver creates when ``awslogs-create-group`` is ``true`` (ECS API, LogConfiguration; without that option a missing
group stops the task from starting, no growth). When that group does not exist, the service creates it on the first
write (with a role allowed ``logs:CreateLogGroup``, as AWSLambdaBasicExecutionRole is) with no retention and no KMS
key, so ``logs-retention-set`` and ``logs-kms-encryption`` never see it. Without that permission the logs are
dropped instead. The writer's group counts as declared when an ``aws.cloudwatch.LogGroup`` of the stack has its
name, when the group input is computed from such a LogGroup, or when a LogGroup of the stack is computed from the
writer (``name=fn.name.apply(lambda n: f"/aws/lambda/{n}")``). Declare it before the writer and name it there where
you can (``logging_config={"log_group": group.name}``): a group created after the writer races its first write, and
a write between a destroy's deletion of the group and of the writer re-creates it, so the next ``up`` fails with
ResourceAlreadyExistsException.

Not applicable while a group name it needs is unknown at preview and the stack has a LogGroup whose name is
unknown too, which may be it.
A group another stack declares is not visible here: suppress the finding for that writer in the env file's
``policy.suppressions``.

Why: a log group that CloudWatch creates on a service's behalf keeps its logs forever ("Never expire", the
default), a bill that grows every month unseen by the rules on declared groups. Related: cdk-nag
CloudWatchLogGroupRetentionPeriod and checkov CKV_AWS_66 judge declared groups only.
"""

from __future__ import annotations

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    contains_unknown,
    depended_on,
    get,
    not_applicable,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
    stack_task_containers,
)
from shared.policy_typing import ReportViolation

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION = "aws:lambda/function:Function"
PROJECT = "aws:codebuild/project:Project"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"


def _created_groups(task: PolicyResource) -> list[str] | None:
    """The ``awslogs-group`` of each container whose driver may create it (``awslogs-create-group: true``);
    ``None`` while the container definitions are unknown."""
    containers = stack_task_containers(task)  # [] when malformed: ecs-task-definition-valid's finding
    if containers is UNKNOWN:
        return None
    groups: list[str] = []
    for container in containers if isinstance(containers, list) else []:
        config = container.get("logConfiguration") if isinstance(container, dict) else None
        options = (config or {}).get("options") or {}
        if (config or {}).get("logDriver") == "awslogs" and str(options.get("awslogs-create-group")).lower() == "true":
            groups.append(str(options.get("awslogs-group")))
    return groups


def _service_created_groups(service: PolicyResource) -> list[str] | None:
    """The ``awslogs-group`` of an ECS service's Service Connect proxy when its driver may create it (its
    ``serviceConnectConfiguration.logConfiguration``, the options of a container's); ``None`` while unknown."""
    config = get(resource_input(service, "serviceConnectConfiguration"), "logConfiguration")
    if contains_unknown(config):
        return None
    options = get(config, "options") or {}
    if get(config, "logDriver") == "awslogs" and str(options.get("awslogs-create-group")).lower() == "true":
        return [str(options.get("awslogs-group"))]
    return []


def _writer_group(writer: PolicyResource) -> tuple[str, object, str]:
    """(the input the group is set in, the group's name or UNKNOWN/None, the default prefix)."""
    if writer.resource_type == FUNCTION:
        return "loggingConfig", get(resource_input(writer, "loggingConfig"), "logGroup"), "/aws/lambda/"
    return "logsConfig", get(resource_input(writer, "logsConfig"), "cloudwatchLogs", "groupName"), "/aws/codebuild/"


def _writes_to_cloudwatch(writer: PolicyResource) -> bool | None:
    if writer.resource_type == FUNCTION:
        return True
    status = get(resource_input(writer, "logsConfig"), "cloudwatchLogs", "status")
    if status is UNKNOWN:
        return None
    return str(status or "ENABLED").upper() == "ENABLED"


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not stack_resources(args, FUNCTION, PROJECT, TASK_DEFINITION, SERVICE):
        not_applicable(args, "the stack has no Lambda function, CodeBuild project or ECS task definition or service")
    writers = stack_resources(args, FUNCTION, PROJECT)
    groups = stack_resources(args, LOG_GROUP)
    names = {resource_input(g, "name") for g in groups}
    unknown_named = [g for g in groups if not isinstance(resource_input(g, "name"), str)]
    undecided: list[str] = []
    violations: list[tuple[str, PolicyResource]] = []
    for writer in writers:
        on = _writes_to_cloudwatch(writer)
        if on is False:
            continue
        if on is None:
            undecided.append(f"'{writer.name}' (logsConfig.cloudwatchLogs.status)")
            continue
        # a LogGroup computed from the writer, e.g. its name from the function's: a dependency the group's own inputs
        # record -- a group that merely sits in a component waiting for the writer is not named after it
        if any(writer.urn in depended_on(g, parents=False) for g in groups):
            continue
        key, group, prefix = _writer_group(writer)
        if group is UNKNOWN or (group is None and resource_input(writer, "name") is UNKNOWN):
            targets = referenced_targets(writer, key, groups, identity_keys=("name",))
            if targets:
                continue
            if targets is None or unknown_named:
                undecided.append(f"'{writer.name}' ({key})")
                continue
            violations.append((f"its log group ({key}) is not one of the stack's log groups", writer))
            continue
        name = group if isinstance(group, str) else f"{prefix}{resource_input(writer, 'name')}"
        if group is None and resource_input(writer, "name") is None:
            name = f"{prefix}<auto-name>"  # auto-named by the provider: no LogGroup can carry that name
        if name in names:
            continue
        if unknown_named:
            undecided.append(f"'{writer.name}' ({name})")
            continue
        violations.append((f"writes to log group {name}, which the stack does not declare", writer))
    for task in stack_resources(args, TASK_DEFINITION, SERVICE):
        key = "containerDefinitions" if task.resource_type == TASK_DEFINITION else "serviceConnectConfiguration"
        created = _created_groups(task) if task.resource_type == TASK_DEFINITION else _service_created_groups(task)
        if created is None:
            if not any(d.urn in {g.urn for g in groups} for d in task.property_dependencies.get(key) or []):
                undecided.append(f"'{task.name}' ({key})")
            continue
        for name in created:
            if name not in names and unknown_named:
                undecided.append(f"'{task.name}' ({name})")
            elif name not in names:
                violations.append((f"lets the awslogs driver create log group {name}, which the stack does not "
                                   "declare", task))
    for what, writer in violations:
        setting, label = {
            FUNCTION: ("logging_config={'log_group': group.name}", "Lambda function"),
            PROJECT: ("logs_config={'cloudwatch_logs': {'group_name': group.name}}", "CodeBuild project"),
            TASK_DEFINITION: ("awslogs-group to group.name (and leave out awslogs-create-group)", "task definition"),
            SERVICE: ("the Service Connect log configuration's awslogs-group to group.name (and leave out "
                      "awslogs-create-group)", "ECS service"),
        }[writer.resource_type]
        report_violation(
            f"{label} '{writer.name}' {what}; "
            "CloudWatch creates it on the first write with no retention (kept forever). Declare an "
            f"aws.cloudwatch.LogGroup with retention_in_days and set {setting}.",
            writer.urn,
        )
    if undecided and not violations:
        not_applicable(args, f"cannot tell yet which log group {', '.join(undecided)} writes to")


POLICY = stack_rule_policy(__file__, _validate)
