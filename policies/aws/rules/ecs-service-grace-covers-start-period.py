"""An ECS service behind a load balancer ignores the load balancer's health checks at least as long as the
container it registers may still be starting and its target then needs to turn healthy: its
``healthCheckGracePeriodSeconds`` (unset: 0) is not shorter than that container's health check ``startPeriod``,
plus, for a target group of the stack, the checks that make a target that answers from then on healthy.

A stack rule: for every ``aws:ecs/service:Service`` with ``loadBalancers``, its task definition of the stack
(``aws:ecs/taskDefinition:TaskDefinition``, found through ``referenced_targets``), and each container a load
balancer entry names (``containerName``) whose ``healthCheck`` sets a ``startPeriod``. A task definition of
another stack, or a container without a health check, is not applicable. The target groups are those of the
stack the service's ``loadBalancers`` refer to (``referenced_targets``); one of another stack adds nothing.

Why: a container's ``startPeriod`` says how long it may take before it answers (ECS does not count its failed
checks until then; botocore ecs HealthCheck, 0-300 s). Its load balancer target fails its health checks during
that time too, and once the service's grace period is over ECS stops a task whose target is unhealthy
(botocore ecs CreateService.healthCheckGracePeriodSeconds): a grace period shorter than the start period stops
a slow starter (a model still loading) before it can answer, its replacement starts over, and the deployment
circuit breaker rolls back. The target group's checks come every ``interval`` whatever the answer's time, each
passing when its answer arrives within ``timeout``; a registered target turns healthy on its first passing check,
but one that failed ``unhealthyThreshold`` checks in a row is unhealthy and needs ``healthyThreshold`` passing
checks in a row (ELB guide, "Health checks for Application Load Balancer target groups"). A container that
answers only after ``startPeriod`` may have failed ceil(startPeriod / interval) checks: from that many on, its
target is healthy up to startPeriod + healthyThreshold x interval + timeout after the start, else up to
startPeriod + interval + timeout. A value left out of a ``healthCheck`` block is the provider's default (pulumi_aws
``TargetGroupHealthCheck``: thresholds 3, interval 30 s); a target group without the block is created with none of
them sent, so AWS's apply (botocore elbv2 CreateTargetGroup: healthy threshold 5, unhealthy threshold 2, interval
30 s); the timeout is AWS's in both cases, 6 s for an HTTP target group, 10 s otherwise. No Security Hub, cdk-nag
or checkov equivalent.
"""

import math
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
    provider_container_keys,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
    stack_task_containers,
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


TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
#: pulumi_aws TargetGroupHealthCheck defaults (its docstring): thresholds 3 ("Defaults to 3"), interval 30 s.
DEFAULT_THRESHOLD, DEFAULT_INTERVAL = 3, 30
#: AWS's defaults where the program gives no healthCheck block: the provider's schema defaults live inside the
#: block, so it sends no threshold (terraform-provider-aws elbv2 target_group.go, resourceTargetGroupCreate) and AWS
#: applies "the default is 5" healthy, "the default is 2" unhealthy (botocore elbv2 CreateTargetGroup
#: HealthyThresholdCount, UnhealthyThresholdCount; HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP).
AWS_HEALTHY_THRESHOLD, AWS_UNHEALTHY_THRESHOLD = 5, 2


def _turns_healthy(target_group: Any, start: int) -> int | None:
    """Seconds after ``start`` (the container answers from then on) by which the target group counts the target
    healthy (0: no health check); None while a value it depends on is unknown."""
    check = resource_input(target_group, "healthCheck")
    protocol = resource_input(target_group, "protocol")
    if contains_unknown(check) or protocol is UNKNOWN:
        return None
    if get(check, "enabled") is False:
        return 0
    interval = as_int(get(check, "interval")) or DEFAULT_INTERVAL
    # AWS's default timeout: "For target groups with a protocol of HTTP, the default is 6 seconds" (botocore elbv2
    # CreateTargetGroup.HealthCheckTimeoutSeconds), 10 s for HTTPS, TCP and TLS.
    timeout = as_int(get(check, "timeout")) or (6 if protocol == "HTTP" else 10)
    block = check is not None
    healthy = as_int(get(check, "healthyThreshold")) or (DEFAULT_THRESHOLD if block else AWS_HEALTHY_THRESHOLD)
    unhealthy = as_int(get(check, "unhealthyThreshold")) or (DEFAULT_THRESHOLD if block else AWS_UNHEALTHY_THRESHOLD)
    passes = healthy if math.ceil(start / interval) >= unhealthy else 1
    return passes * interval + timeout


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    services, tasks = ecs_services_and_task_definitions(
        args, tasks_none_reason="the stack has no ECS task definition")
    target_groups = stack_resources(args, *TARGET_GROUPS)
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
    decided: list[tuple[Any, dict[str, int], int, list[Any] | None]] = []
    for service, task, names, grace in checks:
        containers = stack_task_containers(task)  # [] when malformed: ecs-task-definition-valid's finding
        if containers is UNKNOWN:
            undecided.append(f"task definition '{task.name}': containerDefinitions")
            continue
        periods = _start_periods(provider_container_keys(list(as_list(containers))), names)
        if periods:
            decided.append((service, periods, as_int(grace) or 0,
                            referenced_targets(service, "loadBalancers", target_groups)))
    reported = 0
    for service, periods, grace, groups in decided:
        name, start = max(periods.items(), key=lambda item: item[1])
        turns = [_turns_healthy(group, start) for group in groups or []]
        if groups is None or None in turns:
            undecided.append(f"ECS service '{service.name}': "
                             f"{'loadBalancers' if groups is None else 'its target group healthCheck'}")
            continue
        group, extra = max(zip(groups, turns), key=lambda item: item[1] or 0, default=(None, 0))
        needed = start + (extra or 0)
        if grace < needed:
            reported += 1
            then = (f" and then {extra} s until target group '{group.name}' counts its target healthy (healthy "
                    "threshold x interval, or one interval for a target that cannot have failed the unhealthy "
                    "threshold, plus the check's timeout)") if group is not None and extra else ""
            report_violation(
                f"ECS service '{service.name}' ignores its load balancer's health checks for {grace} s "
                f"(healthCheckGracePeriodSeconds), less than container '{name}''s health check startPeriod of "
                f"{start} s{then}: ECS stops the task while it may still be starting; set health_check_grace_"
                f"period_seconds to at least {needed}.", service.urn)
    # A service that was judged keeps its finding while another one is still unknown at preview.
    if undecided and not reported:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not decided:
        not_applicable(args, "no load-balanced ECS service of the stack registers a container with a health check "
                             "start period in a task definition of the stack")


POLICY = stack_rule_policy(__file__, _validate)
