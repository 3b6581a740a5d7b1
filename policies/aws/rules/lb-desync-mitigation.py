"""Application Load Balancers mitigate HTTP desync in ``defensive`` or ``strictest`` mode.

Checks ``desyncMitigationMode`` of ``aws:lb/loadBalancer:LoadBalancer`` / ``aws:alb/loadBalancer:LoadBalancer``
of type ``application`` (unset is ``defensive``, which passes); ``monitor`` forwards ambiguous requests
and fails. Network and gateway load balancers do not parse HTTP and are not applicable.

Why: requests that the load balancer and the target frame differently (request smuggling) let an
attacker prepend their request to another user's. Matches Security Hub ELB.12, checkov CKV_AWS_328;
no cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    application_load_balancer_props,
    applies_to,
    known_input,
    rule_policy,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = application_load_balancer_props(args)
    mode = known_input(args, "load balancer", "desyncMitigationMode", props)
    if str(mode or "defensive").lower() not in ("defensive", "strictest"):
        report_violation(f"load balancer '{args.name}' has desync_mitigation_mode={mode!r}; set 'defensive' (the "
                         "default) or 'strictest'.")


POLICY = rule_policy(__file__, _validate)
