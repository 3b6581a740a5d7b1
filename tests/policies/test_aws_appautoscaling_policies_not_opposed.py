"""``appautoscaling-policies-not-opposed`` through the real pack: a scalable target that a step scaling policy only
scales out is not scaled in by target tracking -- compliant, non-compliant, unknown at preview, and the platform's
HTTP consumers in every shipped env."""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import fresh
from tests.layers.resource_types import ENVS
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import SCALING_POLICY as POLICY
from tests.policies.tokens import TARGET

RULE = "appautoscaling-policies-not-opposed"
SCOPE = {"resourceId": "service/c/inference", "scalableDimension": "ecs:service:DesiredCount",
         "serviceNamespace": "ecs"}


def target() -> dict[str, Any]:
    return res(TARGET, "inference", {**SCOPE, "minCapacity": 1, "maxCapacity": 4})


def tracking(scalable: dict[str, Any], disable_scale_in: Any = None) -> dict[str, Any]:
    config: dict[str, Any] = {"targetValue": 60, "predefinedMetricSpecification": {
        "predefinedMetricType": "ECSServiceAverageCPUUtilization"}}
    if disable_scale_in is not None:
        config["disableScaleIn"] = disable_scale_in
    return res(POLICY, "inference-cpu", {**SCOPE, "policyType": "TargetTrackingScaling",
                                         "targetTrackingScalingPolicyConfiguration": config}, dependencies=[scalable])


def step(scalable: dict[str, Any], name: str, *adjustments: Any) -> dict[str, Any]:
    return res(POLICY, name, {**SCOPE, "policyType": "StepScaling", "stepScalingPolicyConfiguration": {
        "adjustmentType": "ChangeInCapacity", "cooldown": 300, "stepAdjustments": [
            {"metricIntervalLowerBound": "0", "scalingAdjustment": adjustment} for adjustment in adjustments]}},
               dependencies=[scalable])


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_tracking_that_only_adds_beside_a_step_scale_out_passes(policy_findings: Any) -> None:
    scalable = target()
    resources = [scalable, tracking(scalable, disable_scale_in=True), step(scalable, "inference-backlog-out", 1, 2),
                 step(scalable, "inference-quiet-in", -1)]
    assert messages(policy_findings(resources)) == []


@pytest.mark.parametrize("disable_scale_in", [None, False], ids=["unset", "false"])
def test_tracking_that_scales_in_against_a_step_scale_out_fails(policy_findings: Any, disable_scale_in: Any) -> None:
    scalable = target()
    resources = [scalable, tracking(scalable, disable_scale_in), step(scalable, "inference-backlog-out", 1, 2)]
    (message,) = messages(policy_findings(resources))
    assert "scaling policy 'inference-cpu' (target tracking) scales in scalable target 'inference'" in message
    assert "'inference-backlog-out' (step scaling) only scales out" in message and "disable_scale_in=True" in message


def test_a_step_policy_that_also_scales_in_or_tracking_alone_is_not_judged(
        policy_findings: Any, policy_not_applicable: Any) -> None:
    for extra in (lambda t: [step(t, "inference-steps", 1, -1)], lambda t: []):
        scalable = target()
        resources = [scalable, tracking(scalable), *extra(scalable)]
        assert messages(policy_findings(resources)) == []
        assert any(na["rule"] == RULE and "only scales out" in na["reason"]
                   for na in policy_not_applicable(resources)), resources


def test_another_targets_tracking_is_not_this_ones(policy_findings: Any) -> None:
    scaled, other = target(), res(TARGET, "gateway", {**SCOPE, "resourceId": "service/c/gateway", "minCapacity": 1,
                                                      "maxCapacity": 4})
    resources = [scaled, other, step(scaled, "inference-backlog-out", 1), tracking(other)]
    assert messages(policy_findings(resources)) == []


def test_a_step_policy_that_leaves_its_type_out_is_one(policy_findings: Any) -> None:
    """The provider defaults ``policyType`` to StepScaling (pulumi_aws appautoscaling.Policy policy_type)."""
    scalable = target()
    out = step(scalable, "inference-backlog-out", 1)
    del out["inputs"]["policyType"]
    (message,) = messages(policy_findings([scalable, tracking(scalable), out]))
    assert "'inference-backlog-out' (step scaling) only scales out" in message


def test_an_unknown_policy_of_one_target_hides_no_violation_of_another(policy_findings: Any) -> None:
    scalable = target()
    other = res(TARGET, "gateway", {**SCOPE, "resourceId": "service/c/gateway", "minCapacity": 1, "maxCapacity": 4})
    unknown = tracking(other, disable_scale_in=UNKNOWN_STRING)
    unknown["name"] = "gateway-cpu"
    resources = [scalable, other, tracking(scalable), step(scalable, "inference-backlog-out", 1), unknown]
    (message,) = messages(policy_findings(resources))
    assert "scaling policy 'inference-cpu' (target tracking) scales in scalable target 'inference'" in message


def test_an_unknown_configuration_leaves_the_rule_undecided(policy_findings: Any,
                                                            policy_not_applicable: Any) -> None:
    scalable = target()
    resources = [scalable, tracking(scalable, disable_scale_in=UNKNOWN_STRING),
                 step(scalable, "inference-backlog-out", 1)]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "scaling policy 'inference-cpu': targetTrackingScalingPolicyConfiguration unknown until deployment" in reason


@pytest.mark.parametrize("env", ENVS)
def test_the_platforms_http_consumers_pass(env: str, policy_engine: PolicyEngine) -> None:
    result = evaluate_documents_result([fresh(env)["compute"]], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert not [na for na in result.not_applicable if na.rule == RULE], "decided: the consumers scale out on backlog"
