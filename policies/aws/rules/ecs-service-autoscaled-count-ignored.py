"""An ECS service that Application Auto Scaling scales ignores changes of its ``desiredCount``.

A stack rule: for every ``aws:appautoscaling/target:Target`` of the ``ecs:service:DesiredCount`` dimension, the
``aws:ecs/service:Service`` it scales (its ``resourceId`` ``service/<cluster>/<service>``, found through the
property dependencies of ``resourceId``, else the service's ``name``) must list ``desiredCount`` in its
``ignore_changes``. A scalable target of a service of another stack is not applicable; an unknown namespace,
dimension or ``resourceId`` leaves the rule undecided until deployment.

Why: once the service runs, Application Auto Scaling owns its desired count (it calls UpdateService itself). A
program that still manages ``desiredCount`` sends its own figure whenever the service differs from it -- after a
``pulumi refresh`` read the scaled count, or whenever the program's figure changes -- and an ``up`` with no change
of its own scales a service under load back down to the program's count until the policies move it again (AWS
Application Auto Scaling user guide, "Amazon ECS and Application Auto Scaling"; the pulumi_aws ``ecs.Service``
docstring: ``ignore_changes=["desiredCount"]`` to ignore changes "caused externally (e.g., Application Auto
Scaling)"). The fix is ``ignore_changes=["desiredCount"]``: the
program's count is then the first deployment's only. No Security Hub, cdk-nag or checkov equivalent.
"""

import re

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_autoscaling import SCALABLE_TARGET
from shared.policy_support import (
    UNKNOWN,
    not_applicable,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

SERVICE = "aws:ecs/service:Service"
DIMENSION = "ecs:service:DesiredCount"
IGNORED = "desiredCount"
#: ECS's scalable target resource id (botocore application-autoscaling RegisterScalableTarget.ResourceId)
RESOURCE_ID = re.compile(r"^service/[^/]+/(?P<service>[^/]+)$")


def _scaled(target: PolicyResource, services: list[PolicyResource]) -> list[PolicyResource] | None:
    """The stack's ECS services ``target`` scales ([] for another stack's), None when it cannot be told."""
    found = referenced_targets(target, "resourceId", services, identity_keys=())
    if found:
        return found
    resource_id = resource_input(target, "resourceId")
    if resource_id is UNKNOWN:
        return None
    match = RESOURCE_ID.match(resource_id) if isinstance(resource_id, str) else None
    return [s for s in services if match and resource_input(s, "name") == match.group("service")]


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    targets = stack_resources(args, SCALABLE_TARGET, none_reason="the stack has no scalable target")
    services = stack_resources(args, SERVICE, none_reason="the stack has no ECS service")
    undecided: list[str] = []
    scaled: dict[str, PolicyResource] = {}
    for target in targets:
        scope = (resource_input(target, "serviceNamespace"), resource_input(target, "scalableDimension"))
        if UNKNOWN in scope:
            undecided.append(f"scalable target '{target.name}': serviceNamespace/scalableDimension")
            continue
        if scope != ("ecs", DIMENSION):
            continue
        found = _scaled(target, services)
        if found is None:
            undecided.append(f"scalable target '{target.name}': resourceId")
            continue
        scaled.update((service.urn, service) for service in found)
    if undecided:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not scaled:
        not_applicable(args, "no scalable target of the stack scales an ECS service of the stack")
    for service in scaled.values():
        if IGNORED not in service.opts.ignore_changes:
            report_violation(
                f"ECS service '{service.name}' is scaled by Application Auto Scaling but its program manages "
                "desiredCount: an up would set the running count back to the program's figure (a scale-in under "
                "load); add ignore_changes=[\"desiredCount\"] to the service.", service.urn)


POLICY = stack_rule_policy(__file__, _validate)
