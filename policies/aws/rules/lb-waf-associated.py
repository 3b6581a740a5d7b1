"""Internet-facing Application Load Balancers are protected by an AWS WAF web ACL (advisory).

A stack rule: every ``aws:lb/loadBalancer`` / ``aws:alb/loadBalancer`` of type ``application`` that is not
``internal`` needs an ``aws:wafv2/webAclAssociation:WebAclAssociation`` (or an AWS WAF Classic
``aws:wafregional/webAclAssociation:WebAclAssociation``) whose ``resourceArn`` refers to it
(property dependencies, value, or dependencies: see ``referenced_targets``). Internal ALBs and other
load balancer types are not applicable. A web ACL attached outside the stack (Firewall Manager) is
invisible here: that is why the rule is advisory by default.

Why: a WAF in front of the entry point blocks the common exploit payloads and bots before they reach
a service. Matches Security Hub ELB.16, cdk-nag ALBWAFEnabled, checkov CKV2_AWS_28.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    is_true,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
#: AWS WAF and AWS WAF Classic (regional) associations: Security Hub ELB.16 accepts either web ACL
ASSOCIATIONS = ("aws:wafv2/webAclAssociation:WebAclAssociation", "aws:wafregional/webAclAssociation:WebAclAssociation")


def _internet_facing_alb(resource: PolicyResource) -> bool | None:
    kind, internal = resource_input(resource, "loadBalancerType"), resource_input(resource, "internal")
    if kind is UNKNOWN or internal is UNKNOWN:
        return None
    return str(kind or "application").lower() == "application" and not is_true(internal)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    candidates = stack_resources(args, *LOAD_BALANCERS)
    decided = {r.urn: _internet_facing_alb(r) for r in candidates}
    albs = [r for r in candidates if decided[r.urn]]
    undecided = [f"load balancer '{r.name}': loadBalancerType/internal" for r in candidates if decided[r.urn] is None]
    if not albs and not undecided:
        args.not_applicable("the stack has no internet-facing Application Load Balancer")
    covered: set[str] = set()
    for association in stack_resources(args, *ASSOCIATIONS):
        targets = referenced_targets(association, "resourceArn", candidates)
        if targets is None:
            undecided.append(f"web ACL association '{association.name}': resourceArn")
        else:
            covered.update(t.urn for t in targets)
    for alb in albs:
        if alb.urn in covered:
            continue
        if undecided:
            continue
        report_violation(f"internet-facing load balancer '{alb.name}' has no AWS WAF web ACL; add "
                         "aws.wafv2.WebAclAssociation(resource_arn=<alb>.arn, web_acl_arn=<web ACL>.arn).", alb.urn)
    if undecided:
        args.not_applicable(f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")


POLICY = stack_rule_policy(__file__, _validate)
