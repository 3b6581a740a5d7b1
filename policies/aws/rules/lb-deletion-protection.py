"""Load balancers have deletion protection on (mandatory in prod).

Checks ``enableDeletionProtection`` of ``aws:lb/loadBalancer:LoadBalancer`` /
``aws:alb/loadBalancer:LoadBalancer`` (default ``false``).

Why: deleting the platform's entry point takes every client down and loses its DNS name; with the
protection on, AWS refuses the delete until someone turns it off on purpose (the AWS-side companion
of Pulumi's ``protect``). Matches Security Hub ELB.6, cdk-nag ELBDeletionProtectionEnabled, checkov
CKV_AWS_150.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    applies_to,
    is_true,
    known_input,
    rule_description,
    rule_id,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    value = known_input(args, "load balancer", "enableDeletionProtection")
    if not is_true(value):
        report_violation(f"load balancer '{args.name}' can be deleted without warning; set "
                         "enable_deletion_protection=True.")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
