"""Application and Network Load Balancers write access logs.

Checks ``accessLogs.enabled`` (and a ``bucket``) of ``aws:lb/loadBalancer:LoadBalancer`` /
``aws:alb/loadBalancer:LoadBalancer``; gateway load balancers have no access logs and are not
applicable.

Why: the access log is the only record of who called the platform's entry point, from where, and
what it answered. Matches Security Hub ELB.5, cdk-nag AwsSolutions-ELB2 / ELBLoggingEnabled, checkov
CKV_AWS_91.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    contains_unknown,
    get,
    is_true,
    props_of_kind,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = props_of_kind(args, "load balancer", "loadBalancerType", default="application",
                          judged=lambda kind: kind != "gateway",
                          otherwise=lambda _: "is a gateway load balancer (no access logs)")
    logs = props.get("accessLogs")
    if contains_unknown(logs):
        undecidable(args, f"load balancer '{args.name}': accessLogs")
    if not (is_true(get(logs, "enabled")) and get(logs, "bucket")):
        report_violation(f"load balancer '{args.name}' writes no access logs; set access_logs={{'enabled': True, "
                         "'bucket': <log bucket>, 'prefix': ...}.")


POLICY = rule_policy(__file__, _validate)
