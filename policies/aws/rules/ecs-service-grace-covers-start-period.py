"""An ECS service behind a load balancer ignores the load balancer's health checks at least as long as the
container it registers may still be starting: its ``healthCheckGracePeriodSeconds`` (unset: 0) is not shorter
than that container's health check ``startPeriod``.

A stack rule: for every ``aws:ecs/service:Service`` with ``loadBalancers``, its task definition of the stack
(``aws:ecs/taskDefinition:TaskDefinition``, found through ``referenced_targets``), and each container a load
balancer entry names (``containerName``) whose ``healthCheck`` sets a ``startPeriod``. A task definition of
another stack, or a container without a health check, is not applicable.

Why: a container's ``startPeriod`` says how long it may take before it answers (ECS does not count its failed
checks until then; botocore ecs HealthCheck, 0-300 s). Its load balancer target fails its health checks during
that time too, and once the service's grace period is over ECS stops a task whose target is unhealthy
(botocore ecs CreateService.healthCheckGracePeriodSeconds): a grace period shorter than the start period stops
a slow starter (a model still loading) before it can answer, its replacement starts over, and the deployment
circuit breaker rolls back. Keep the grace period at least the start period, better plus the target group's
healthy threshold x interval and its timeout. No Security Hub, cdk-nag or checkov equivalent.
"""

from typing import Any

from pulumi_policy import StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    as_int,
    as_list,
    contains_unknown,
    ecs_services_and_task_definitions,
    get,
    not_applicable,
    parse_json,
    provider_container_keys,
    referenced_targets,
    resource_input,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation


def _start_periods(containers: Any, names: set[str]) -> dict[str, int]:
    """Container name -> its health check's startPeriod, for the named containers that have one."""
    periods: dict[str, int] = {}
    for container in as_list(containers):
        name = get(container, "name")
        start = as_int(get(container, "healthCheck", "startPeriod"))
        if name in names and get(container, "healthCheck", "command") and start:
            periods[name] = start
    return periods


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    services, tasks = ecs_services_and_task_definitions(
        args, tasks_none_reason="the stack has no ECS task definition")
    undecided: list[str] = []
    checks: list[tuple[Any, Any, set[str], Any]] = []
    for service in services:
        balancers = resource_input(service, "loadBalancers")
        if contains_unknown(balancers):
            undecided.append(f"ECS service '{service.name}': loadBalancers")
            continue
        names = {get(entry, "containerName") for entry in as_list(balancers)} - {None}
        if not names:
            continue
        task = referenced_targets(service, "taskDefinition", tasks)
        grace = resource_input(service, "healthCheckGracePeriodSeconds")
        if task is None or grace is UNKNOWN:
            undecided.append(f"ECS service '{service.name}': "
                             f"{'taskDefinition' if task is None else 'healthCheckGracePeriodSeconds'}")
            continue
        if task:
            checks.append((service, task[0], names, grace))
    decided: list[tuple[Any, dict[str, int], int]] = []
    for service, task, names, grace in checks:
        raw = resource_input(task, "containerDefinitions")
        try:
            containers = parse_json(raw) if raw is not UNKNOWN else UNKNOWN
        except ValueError:
            continue  # ecs-task-definition-valid's finding
        if contains_unknown(containers):
            undecided.append(f"task definition '{task.name}': containerDefinitions")
            continue
        periods = _start_periods(provider_container_keys(list(as_list(containers))), names)
        if periods:
            decided.append((service, periods, as_int(grace) or 0))
    reported = 0
    for service, periods, grace in decided:
        name, start = max(periods.items(), key=lambda item: item[1])
        if grace < start:
            reported += 1
            report_violation(
                f"ECS service '{service.name}' ignores its load balancer's health checks for {grace} s "
                f"(healthCheckGracePeriodSeconds), less than container '{name}''s health check startPeriod of "
                f"{start} s: ECS stops the task while it may still be starting; set health_check_grace_period_"
                f"seconds to at least {start} (plus the target group's healthy threshold x interval and its "
                "timeout).", service.urn)
    # A service that was judged keeps its finding while another one is still unknown at preview.
    if undecided and not reported:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not decided:
        not_applicable(args, "no load-balanced ECS service of the stack registers a container with a health check "
                             "start period in a task definition of the stack")


POLICY = stack_rule_policy(__file__, _validate)
