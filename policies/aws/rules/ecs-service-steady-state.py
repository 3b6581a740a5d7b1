"""ECS services make `pulumi up` wait for their steady state (``waitForSteadyState: true``).

Applies to services using the ECS deployment controller (the default); ``CODE_DEPLOY`` and ``EXTERNAL``
controllers report deployments through their own tools and are not applicable.

Why: without it `pulumi up` succeeds as soon as ECS accepted the deployment, even when no task ever
starts (an image that cannot be pulled, a crash loop, failing health checks): the deploy looks green
while ECS is still failing or rolling back. With it the provider waits like
``aws ecs wait services-stable`` (pulumi_aws ``ecs.Service`` docstring) and fails after the
resource's custom timeout. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    applies_to,
    ecs_controller_service_props,
    is_true,
    known_input,
    rule_description,
    rule_id,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    wait = known_input(args, "ECS service", "waitForSteadyState", ecs_controller_service_props(args))
    if not is_true(wait):
        report_violation(
            f"ECS service '{args.name}' lets `pulumi up` succeed before any task is healthy; set "
            "wait_for_steady_state=True (and a custom timeout for create/update)."
        )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
