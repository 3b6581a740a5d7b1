"""Load balancers have deletion protection on (mandatory in prod).

Checks ``enableDeletionProtection`` of ``aws:lb/loadBalancer:LoadBalancer`` /
``aws:alb/loadBalancer:LoadBalancer`` (default ``false``).

Why: deleting the platform's entry point takes every client down and loses its DNS name; with the
protection on, AWS refuses the delete until someone turns it off on purpose (the AWS-side companion
of Pulumi's ``protect``). Matches Security Hub ELB.6, cdk-nag ELBDeletionProtectionEnabled, checkov
CKV_AWS_150.
"""

from shared.policy_support import boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
    label="load balancer", setting="enableDeletionProtection", required=True,
    finding="can be deleted without warning; set enable_deletion_protection=True.",
)
