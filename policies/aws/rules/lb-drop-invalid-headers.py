"""Application Load Balancers drop HTTP headers with invalid names.

Checks ``dropInvalidHeaderFields`` of ``aws:lb/loadBalancer:LoadBalancer`` /
``aws:alb/loadBalancer:LoadBalancer`` of type ``application`` (the default; default ``false``).
Network and gateway load balancers do not parse HTTP and are not applicable.

Why: header names that the ALB forwards but the target parses differently are the raw material of
request smuggling and header injection. Matches Security Hub ELB.4, cdk-nag
ALBHttpDropInvalidHeaderEnabled, checkov CKV_AWS_131.
"""

from shared.policy_support import application_load_balancer_props, boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
    label="load balancer", setting="dropInvalidHeaderFields", required=True, inputs=application_load_balancer_props,
    finding="forwards invalid HTTP header fields; set drop_invalid_header_fields=True.",
)
