"""A scalable target that a step scaling policy scales out, and only out, is not also scaled in by target tracking.

A stack rule: for every ``aws:appautoscaling/target:Target`` of the stack, if some ``StepScaling``
``aws:appautoscaling/policy:Policy`` that depends on it (directly, through other resources or through a parent
component that does) has only positive steps, no ``TargetTrackingScaling`` policy of the target may scale in: each
must set ``disableScaleIn: true``. Scale the target in by a step policy whose alarm holds back while the step
scale-out's signal says there is work (the platform's HTTP consumers: their queue empty and their CPU low).

Why: target tracking knows nothing of the step policy's signal. While it shows work (messages waiting) and the tracked
metric is low (CPU of jobs that wait on I/O), target tracking removes what the step policy adds back, again and again
("We recommend caution, however, when using target tracking scaling policies with step scaling policies because
conflicts between these policies can cause undesirable behavior", botocore application-autoscaling
PutScalingPolicy). On ECS each removal stops a task that may hold a job, which the broker redelivers towards its
delivery limit. A policy that leaves ``policyType`` out is a step scaling policy (the provider's default). A
target whose policies' settings are unknown is decided once they are known; the others are judged at once. No
Security Hub, cdk-nag or checkov equivalent.
"""

from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_autoscaling import SCALABLE_TARGET, SCALING_POLICY, scaling_policies_of, step_adjustments
from shared.policy_support import (
    UNKNOWN,
    contains_unknown,
    not_applicable,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

STEP, TRACKING = "StepScaling", "TargetTrackingScaling"
CONFIG = {STEP: "stepScalingPolicyConfiguration", TRACKING: "targetTrackingScalingPolicyConfiguration"}


def _kind(policy: PolicyResource) -> Any:
    """The policy's type; the provider's default where the program leaves it out (pulumi_aws appautoscaling.Policy
    ``policy_type``: "Defaults to `StepScaling`")."""
    kind = resource_input(policy, "policyType")
    return STEP if kind is None else kind


def _undecided(policy: PolicyResource) -> str | None:
    """The input of ``policy`` the rule reads that is unknown until deployment, if any."""
    kind = _kind(policy)
    if kind is UNKNOWN:
        return "policyType"
    key = CONFIG.get(kind)
    return key if key is not None and contains_unknown(resource_input(policy, key)) else None


def _only_adds(config: Any) -> bool:
    """Whether a step scaling configuration has steps and every one adds capacity."""
    adjustments = step_adjustments(config)
    return bool(adjustments) and all(adjustment > 0 for adjustment in adjustments)


def _scales_in(config: Any) -> bool:
    return not (isinstance(config, dict) and config.get("disableScaleIn") is True)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    targets = stack_resources(args, SCALABLE_TARGET, none_reason="the stack has no scalable target")
    policies = stack_resources(args, SCALING_POLICY)
    undecided: list[str] = []
    judged = False
    for target in targets:
        of_target = scaling_policies_of(target, policies)
        # a target whose policies are not known yet is decided once they are; the others are judged now
        unknown = [f"scaling policy '{p.name}': {what}" for p in of_target if (what := _undecided(p))]
        if unknown:
            undecided += unknown
            continue
        out = [p for p in of_target if _kind(p) == STEP and _only_adds(resource_input(p, CONFIG[STEP]))]
        if not out:
            continue
        judged = True
        for tracking in of_target:
            if _kind(tracking) == TRACKING and _scales_in(resource_input(tracking, CONFIG[TRACKING])):
                report_violation(
                    f"scaling policy '{tracking.name}' (target tracking) scales in scalable target '{target.name}', "
                    f"which {', '.join(repr(p.name) for p in out)} (step scaling) only scales out: target tracking "
                    "knows nothing of the step policy's signal, so while it shows work and the tracked metric is low "
                    "it removes what the step policy adds back, again and again, each removal stopping a task that "
                    "may hold a job. Set disable_scale_in=True on the target tracking policy and scale in by a step "
                    "policy whose alarm waits until that signal shows no work.", tracking.urn)
    if not judged and undecided:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not judged:
        not_applicable(args, "no scalable target of the stack has a step scaling policy that only scales out")


POLICY = stack_rule_policy(__file__, _validate)
