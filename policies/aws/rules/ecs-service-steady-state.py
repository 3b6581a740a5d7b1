"""ECS services make `pulumi up` wait for their steady state (``waitForSteadyState: true``).

Applies to services using the ECS deployment controller (the default); ``CODE_DEPLOY`` and ``EXTERNAL``
controllers report deployments through their own tools and are not applicable.

Why: without it `pulumi up` succeeds as soon as ECS accepted the deployment, even when no task ever
starts (an image that cannot be pulled, a crash loop, failing health checks): the deploy looks green
while ECS is still failing or rolling back. With it the provider waits like
``aws ecs wait services-stable`` (pulumi_aws ``ecs.Service`` docstring) and fails after the
resource's custom timeout. No cdk-nag/checkov equivalent.
"""

from shared.policy_support import boolean_setting_rule, ecs_controller_service_props

POLICY = boolean_setting_rule(
    __file__, "aws:ecs/service:Service",
    label="ECS service", setting="waitForSteadyState", required=True, inputs=ecs_controller_service_props,
    finding="lets `pulumi up` succeed before any task is healthy; set wait_for_steady_state=True (and a custom "
            "timeout for create/update).",
)
