"""ECS services use the deployment circuit breaker with rollback.

Applies to services using the ECS deployment controller (the default); ``CODE_DEPLOY`` and ``EXTERNAL``
controllers manage rollbacks themselves and are not applicable.

Why: without it, a deployment whose tasks never become healthy keeps replacing tasks forever (and
``pulumi up`` waits for steady state until it times out); with ``rollback`` ECS returns to the last
working task definition on its own. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    contains_unknown,
    ecs_controller_service_props,
    get,
    is_true,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = ecs_controller_service_props(args)
    breaker = props.get("deploymentCircuitBreaker")
    if contains_unknown(breaker):
        undecidable(args, f"ECS service '{args.name}': deploymentCircuitBreaker")
    enabled, rollback = is_true(get(breaker, "enable")), is_true(get(breaker, "rollback"))
    if not (enabled and rollback):
        state = "without rollback" if enabled else "without a deployment circuit breaker"
        report_violation(
            f"ECS service '{args.name}' deploys {state}; set "
            "deployment_circuit_breaker={'enable': True, 'rollback': True}."
        )


POLICY = rule_policy(__file__, _validate)
