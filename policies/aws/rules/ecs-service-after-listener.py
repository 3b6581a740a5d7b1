"""An ECS service that registers its tasks in a target group of the stack is created after a listener (or
listener rule) that forwards to that group.

A stack rule: for every ``aws:ecs/service:Service`` whose ``loadBalancers`` name a target group of the stack
(``aws:lb``/``aws:alb`` ``targetGroup``, found through ``referenced_targets``), the service must depend, directly,
through other resources or through a parent component that does, on an ``aws:lb``/``aws:alb`` ``listener``
(``defaultActions``) or ``listenerRule`` (``actions``) that forwards to it. A target group of another stack is not
applicable.

Why: ECS's CreateService refuses a target group that no listener attaches to a load balancer yet
("The target group with targetGroupArn ... does not have an associated load balancer",
InvalidParameterException), and a service that reads only the group's ARN gives the engine no reason to
create the listener first: the first `up` then fails or not depending on which create finishes first.
The usual fix is an explicit ``depends_on`` on the listener. No Security Hub, cdk-nag or checkov equivalent.
"""

from collections.abc import Iterable

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    depended_on,
    not_applicable,
    referenced_targets,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

SERVICE = "aws:ecs/service:Service"
TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
#: resource type -> the input holding its forward actions
FORWARDERS = {
    "aws:lb/listener:Listener": "defaultActions", "aws:alb/listener:Listener": "defaultActions",
    "aws:lb/listenerRule:ListenerRule": "actions", "aws:alb/listenerRule:ListenerRule": "actions",
}


def _names(resources: Iterable[PolicyResource]) -> str:
    return ", ".join(f"'{r.name}'" for r in resources)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    services = stack_resources(args, SERVICE)
    groups = stack_resources(args, *TARGET_GROUPS)
    if not services or not groups:
        not_applicable(args, "the stack has no ECS service and target group")
    undecided: list[str] = []
    #: target group URN -> URNs of the listeners and listener rules forwarding to it
    forwarders: dict[str, set[str]] = {group.urn: set() for group in groups}
    for forwarder in stack_resources(args, *FORWARDERS):
        prop = FORWARDERS[forwarder.resource_type]
        targets = referenced_targets(forwarder, prop, groups)
        if targets is None:
            undecided.append(f"listener '{forwarder.name}': {prop}")
            continue
        for group in targets:
            forwarders[group.urn].add(forwarder.urn)
    checks: list[tuple[PolicyResource, list[PolicyResource]]] = []
    for service in services:
        targets = referenced_targets(service, "loadBalancers", groups)
        if targets is None:
            undecided.append(f"ECS service '{service.name}': loadBalancers")
        elif targets:
            checks.append((service, targets))
    if undecided:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not checks:
        not_applicable(args, "no ECS service registers its tasks in a target group of the stack")
    for service, targets in checks:
        before = depended_on(service)
        waiting = [group for group in targets if not forwarders[group.urn] & before]
        if waiting:
            report_violation(
                f"ECS service '{service.name}' registers tasks in target group(s) {_names(waiting)} but is not "
                "created after a listener forwarding to them: CreateService refuses a target group no listener "
                "attaches to a load balancer yet; add depends_on=[<listener>] to the service.", service.urn)


POLICY = stack_rule_policy(__file__, _validate)
