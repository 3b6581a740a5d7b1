"""A scalable target that may scale in to 0 (``minCapacity`` 0) has a policy that can scale it out of 0 again.

A stack rule: for every ``aws:appautoscaling/target:Target`` of the stack whose ``minCapacity`` is 0, some
``aws:appautoscaling/policy:Policy`` created after it (it depends on the target, directly, through other resources or
through a parent component that does) must be a ``StepScaling`` policy that adds capacity from 0 (a positive step with
``ChangeInCapacity`` or ``ExactCapacity``, or with ``PercentChangeInCapacity`` a ``minAdjustmentMagnitude`` of 1 or
more: a percentage of 0 is 0), run by a ``aws:cloudwatch/metricAlarm:MetricAlarm`` of the stack (the alarm depends on
the policy) whose metric exists while nothing runs: not the tasks' own ``AWS/ECS`` CPU or memory utilization, nor
Container Insights' utilized CPU or memory.

Why: a target tracking policy "does not perform scaling when the specified metric has insufficient data"
(Amazon ECS developer guide, "Use a target metric to scale Amazon ECS services"), and a service with no task
publishes no utilization: a target with only target tracking (or only a task metric) that scales in to 0
stays at 0 for good, its queue filling and its callers failing, and nothing reports it. Unknown
``minCapacity`` or policy settings leave the rule undecided until deployment. No Security Hub, cdk-nag or
checkov equivalent.
"""

from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_autoscaling import SCALABLE_TARGET, SCALING_POLICY, scaling_policies_of, step_adjustments
from shared.policy_support import (
    UNKNOWN,
    as_int,
    as_list,
    contains_unknown,
    depended_on,
    not_applicable,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
#: metrics only running tasks publish (namespace, metric)
TASK_METRICS = frozenset({("AWS/ECS", "CPUUtilization"), ("AWS/ECS", "MemoryUtilization"),
                          ("ECS/ContainerInsights", "CpuUtilized"), ("ECS/ContainerInsights", "MemoryUtilized")})


def _adds_from_zero(config: Any) -> bool:
    """Whether a step scaling configuration has a step that takes a capacity of 0 above 0."""
    if not isinstance(config, dict):
        return False
    kind = config.get("adjustmentType")
    positive = any(adjustment > 0 for adjustment in step_adjustments(config))
    if kind in ("ChangeInCapacity", "ExactCapacity"):
        return positive
    return kind == "PercentChangeInCapacity" and positive and (as_int(config.get("minAdjustmentMagnitude")) or 0) >= 1


def _metrics(alarm: PolicyResource) -> list[tuple[Any, Any]]:
    """(namespace, metric) of each metric the alarm reads."""
    if resource_input(alarm, "metricName") is not None:
        return [(resource_input(alarm, "namespace"), resource_input(alarm, "metricName"))]
    return [(query["metric"].get("namespace"), query["metric"].get("metricName"))
            for query in as_list(resource_input(alarm, "metricQueries"))
            if isinstance(query, dict) and isinstance(query.get("metric"), dict)]


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    targets = stack_resources(args, SCALABLE_TARGET, none_reason="the stack has no scalable target")
    undecided = [f"scalable target '{t.name}': minCapacity" for t in targets
                 if resource_input(t, "minCapacity") is UNKNOWN]
    at_zero = [t for t in targets if as_int(resource_input(t, "minCapacity")) == 0]
    policies = stack_resources(args, SCALING_POLICY)
    step = [p for p in policies if resource_input(p, "policyType") == "StepScaling"]
    undecided += [f"scaling policy '{p.name}': stepScalingPolicyConfiguration" for p in step
                  if contains_unknown(resource_input(p, "stepScalingPolicyConfiguration"))]
    if undecided:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not at_zero:
        not_applicable(args, "no scalable target of the stack may scale in to 0")
    #: policy URN -> the alarms that run it and read a metric that exists while no task runs
    woken_by: dict[str, list[PolicyResource]] = {p.urn: [] for p in step}
    for alarm in stack_resources(args, ALARM):
        if any(metric in TASK_METRICS for metric in _metrics(alarm)):
            continue
        for urn in depended_on(alarm) & woken_by.keys():
            woken_by[urn].append(alarm)
    for target in at_zero:
        wakes = [p for p in scaling_policies_of(target, step) if woken_by[p.urn]
                 and _adds_from_zero(resource_input(p, "stepScalingPolicyConfiguration"))]
        if not wakes:
            report_violation(
                f"scalable target '{target.name}' may scale in to 0 (minCapacity 0) but no step scaling policy run "
                "by an alarm on a metric published without running tasks adds capacity from 0: target tracking "
                "does not scale on insufficient data, and 0 tasks publish no utilization, so it would stay at 0; "
                "add such a policy (e.g. on the queue's backlog) or set minCapacity to 1.", target.urn)


POLICY = stack_rule_policy(__file__, _validate)
