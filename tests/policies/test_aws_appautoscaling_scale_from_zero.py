"""``appautoscaling-scale-from-zero`` through the real pack: a scalable target that may scale in to 0 has a step
scaling policy, run by an alarm on a metric that exists without running tasks, that adds capacity from 0 --
compliant, non-compliant, unknown at preview, and the platform's backlog-only consumer at 0 tasks."""

from __future__ import annotations

from typing import Any

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import fresh
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import ALARM, TARGET
from tests.policies.tokens import SCALING_POLICY as POLICY

RULE = "appautoscaling-scale-from-zero"
SCOPE = {"resourceId": "service/c/worker", "scalableDimension": "ecs:service:DesiredCount",
         "serviceNamespace": "ecs"}


def target(min_capacity: Any = 0) -> dict[str, Any]:
    return res(TARGET, "worker", {**SCOPE, "minCapacity": min_capacity, "maxCapacity": 4})


def tracking(scalable: dict[str, Any]) -> dict[str, Any]:
    return res(POLICY, "worker-cpu", {**SCOPE, "policyType": "TargetTrackingScaling",
                                      "targetTrackingScalingPolicyConfiguration": {
                                          "targetValue": 60, "predefinedMetricSpecification": {
                                              "predefinedMetricType": "ECSServiceAverageCPUUtilization"}}},
               dependencies=[scalable])


def step(scalable: dict[str, Any], adjustment: Any = 1, kind: str = "ChangeInCapacity") -> dict[str, Any]:
    return res(POLICY, "worker-backlog-out", {**SCOPE, "policyType": "StepScaling",
                                              "stepScalingPolicyConfiguration": {
                                                  "adjustmentType": kind, "cooldown": 60,
                                                  "metricAggregationType": "Maximum", "stepAdjustments": [
                                                      {"metricIntervalLowerBound": "0",
                                                       "scalingAdjustment": adjustment}]}},
               dependencies=[scalable])


def alarm(policy: dict[str, Any], namespace: str = "MLPlatform/RabbitMQ",
          metric: str = "MessagesReady") -> dict[str, Any]:
    return res(ALARM, "worker-backlog-out", {
        "name": "dev-ml-backlog-out-worker", "comparisonOperator": "GreaterThanOrEqualToThreshold", "threshold": 1,
        "evaluationPeriods": 1, "namespace": namespace, "metricName": metric, "statistic": "Maximum", "period": 60,
        "dimensions": {"VirtualHost": "ml-dev", "Queue": "worker.work"},
        "alarmActions": ["arn:aws:autoscaling:eu-west-1:111111111111:scalingPolicy:1:resource/ecs/service/c/worker"]},
        dependencies=[policy])


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


def test_a_target_at_zero_woken_by_a_backlog_step_policy_passes(policy_findings: Any) -> None:
    scalable = target()
    out = step(scalable)
    assert messages(policy_findings([scalable, tracking(scalable), out, alarm(out)])) == []


def test_a_target_at_zero_with_cpu_tracking_only_fails(policy_findings: Any) -> None:
    scalable = target()
    (message,) = messages(policy_findings([scalable, tracking(scalable)]))
    assert "scalable target 'worker' may scale in to 0" in message and "insufficient data" in message


def test_a_step_policy_that_cannot_wake_it_fails(policy_findings: Any) -> None:
    for policy_of, alarm_of in (
            (lambda t: step(t), lambda p: alarm(p, "AWS/ECS", "CPUUtilization")),  # no task, no CPU
            (lambda t: step(t, adjustment=-1), lambda p: alarm(p)),  # only removes
            (lambda t: step(t, adjustment=50, kind="PercentChangeInCapacity"), lambda p: alarm(p)),  # 50% of 0
            (lambda t: step(t), lambda p: None)):  # no alarm runs it
        scalable = target()
        policy = policy_of(scalable)
        run_by = alarm_of(policy)
        resources = [scalable, policy, *([run_by] if run_by else [])]
        assert len(messages(policy_findings(resources))) == 1, resources


def test_a_target_that_keeps_a_task_is_not_applicable(policy_findings: Any, policy_not_applicable: Any) -> None:
    scalable = target(1)
    resources = [scalable, tracking(scalable)]
    assert messages(policy_findings(resources)) == []
    assert any(na["rule"] == RULE and "may scale in to 0" in na["reason"] for na in policy_not_applicable(resources))


def test_an_unknown_min_capacity_leaves_the_rule_undecided(policy_findings: Any, policy_not_applicable: Any) -> None:
    scalable = target(UNKNOWN_STRING)
    resources = [scalable, tracking(scalable)]
    assert messages(policy_findings(resources)) == []
    (reason,) = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert "scalable target 'worker': minCapacity unknown until deployment" in reason


def test_the_platforms_backlog_only_consumer_at_zero_passes(edit_env: Any, policy_engine: PolicyEngine) -> None:
    edit_env("dev", lambda data: data["services"]["training"].update(desired_count=0, min_count=0))
    doc = fresh("dev")["compute"]
    result = evaluate_documents_result([doc], env_name="dev", engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert not [na for na in result.not_applicable if na.rule == RULE], "decided: training may scale in to 0"


def test_a_step_policy_inside_a_component_that_waits_for_the_target_passes(policy_findings: Any) -> None:
    """``Scaling("worker", opts=ResourceOptions(depends_on=[target]))`` creating its step policy with ``parent=self``
    and the target's resource id as a plain string: the engine records the target on the component only, yet the SDK
    registers a child only once its parent's URN resolves, after the parent's own dependencies exist (pulumi
    runtime/resource.py prepare_resource), and the engine's graph counts the parent
    (pkg/resource/graph/dependency_graph.go DependenciesOf)."""
    scalable = target()
    component = res("acme:ml:Scaling", "worker", {}, custom=False, dependencies=[scalable])
    out = step(scalable)
    out.update(dependencies=[], parent=component)
    assert messages(policy_findings([scalable, component, out, alarm(out)])) == []
    # a component without that dependency is no gate
    scalable = target()
    bare = res("acme:ml:Scaling", "worker", {}, custom=False)
    out = step(scalable)
    out.update(dependencies=[], parent=bare)
    (message,) = messages(policy_findings([scalable, bare, out, alarm(out)]))
    assert "scalable target 'worker' may scale in to 0" in message
