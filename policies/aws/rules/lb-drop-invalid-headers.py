"""Application Load Balancers drop HTTP headers with invalid names.

Checks ``dropInvalidHeaderFields`` of ``aws:lb/loadBalancer:LoadBalancer`` /
``aws:alb/loadBalancer:LoadBalancer`` of type ``application`` (the default; default ``false``).
Network and gateway load balancers do not parse HTTP and are not applicable.

Why: header names that the ALB forwards but the target parses differently are the raw material of
request smuggling and header injection. Matches Security Hub ELB.4, cdk-nag
ALBHttpDropInvalidHeaderEnabled, checkov CKV_AWS_131.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    application_load_balancer_props,
    applies_to,
    is_true,
    known_input,
    rule_description,
    rule_id,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = application_load_balancer_props(args)
    value = known_input(args, "load balancer", "dropInvalidHeaderFields", props)
    if not is_true(value):
        report_violation(f"load balancer '{args.name}' forwards invalid HTTP header fields; set "
                         "drop_invalid_header_fields=True.")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
