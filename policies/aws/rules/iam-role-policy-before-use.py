"""A resource that hands an IAM role of its stack to an AWS service is created after every policy the stack puts on
or attaches to that role (stack rule).

For every resource that passes a role to a service -- an ``aws:lambda/function:Function`` (``role``), an
``aws:codebuild/project:Project`` (``serviceRole``), an ``aws:ecs/taskDefinition:TaskDefinition``
(``executionRoleArn``, ``taskRoleArn``), an ``aws:ec2/flowLog:FlowLog`` (``iamRoleArn``), an
``aws:cloudwatch/eventTarget:EventTarget`` or an ``aws:sfn/stateMachine:StateMachine`` (``roleArn``) -- whose role is
an ``aws:iam/role:Role`` of the stack, the resource must depend, directly or through other resources or a parent
component that does, on each ``aws:iam/rolePolicy:RolePolicy`` and
``aws:iam/rolePolicyAttachment:RolePolicyAttachment`` (``role``) and ``aws:iam/policyAttachment:PolicyAttachment``
(``roles``) of the stack for that role -- except a policy that itself
depends on the resource (e.g. a state machine's ``states:StartExecution`` on its own ARN), which cannot come first.
The role is found by the property's recorded dependency, else by its value (the role's ARN, or its name at the end of
one), else, while the value is unknown, by the one role of the stack the resource depends on. A role of another stack
(a known ARN naming no role of the stack) is not judged; a reference that cannot be told during preview (an unknown
ARN and several candidate roles) makes the rule not applicable.

Why: the resource reads only the role's ARN, so the engine creates it as soon as the role exists, in parallel with
the role's policies, and deletes it after them on a destroy. The service then uses a role that lacks its grants:
ECS starts the first tasks of a new task definition at once, and an execution role that may not yet pull the image or
read the secret fails their start, a task role that may not yet make the application's first call crashes it (each
failure counts toward the deployment circuit breaker, whose threshold is half the desired count but at least 3, ECS
API ServiceDeploymentCircuitBreaker; on a later `up` that widens a policy and rolls out a new revision together, the
new tasks start before the grant); VPC Flow Logs and EventBridge deliver with the role from
the start; Lambda and CodeBuild check the role's grants when the function or project is created, which the provider
retries for a bounded time only (terraform-provider-aws lambda/function.go retryFunctionOp, codebuild/project.go:
minutes). On a destroy the engine may delete the policy while the service still runs with the role (an ECS service's
draining tasks, a scheduled function). Add ``depends_on=[<policy>, ...]`` to the resource. IAM itself needs seconds
more after the policy is written (IAM user guide, "Changes that I make are not always immediately visible"), which
the services' and the provider's retries cover. No Security Hub, cdk-nag or checkov equivalent.
"""

import functools
from collections.abc import Iterable

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    depended_on,
    not_applicable,
    referenced_targets,
    stack_resources,
    stack_rule_policy,
    type_label,
)
from shared.policy_typing import ReportViolation

ROLE = "aws:iam/role:Role"
#: resource type -> the inputs through which it passes a role to its service
USERS: dict[str, tuple[str, ...]] = {
    "aws:lambda/function:Function": ("role",),
    "aws:codebuild/project:Project": ("serviceRole",),
    "aws:ecs/taskDefinition:TaskDefinition": ("executionRoleArn", "taskRoleArn"),
    "aws:ec2/flowLog:FlowLog": ("iamRoleArn",),
    "aws:cloudwatch/eventTarget:EventTarget": ("roleArn",),
    "aws:sfn/stateMachine:StateMachine": ("roleArn",),
}
#: resource type -> the input naming the role(s) it grants to
GRANTS: dict[str, str] = {
    "aws:iam/rolePolicy:RolePolicy": "role",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "role",
    "aws:iam/policyAttachment:PolicyAttachment": "roles",
}


class _Undecided(Exception):
    pass


def _names(value: str) -> set[str]:
    """A role reference as the values it may match: itself, and the name at the end of a role ARN."""
    return {value, value.rsplit("/", 1)[-1]} if ":role/" in value else {value}


def _roles_of(resource: PolicyResource, prop: str, roles: list[PolicyResource]) -> list[PolicyResource]:
    """The roles of the stack that ``resource.props[prop]`` (one reference or a list) names; raises
    :class:`_Undecided` where that cannot be told yet. A known reference that names no role of the stack (an existing
    role's ARN from config or a lookup: a stack role's ARN would have recorded its dependency) is a role of elsewhere,
    though the resource may still depend on a role of the stack for another input."""
    found = referenced_targets(resource, prop, roles, ("name", "id", "arn"), aliases=_names, known_elsewhere=True)
    if found is None:
        raise _Undecided
    return found


def _labels(resources: Iterable[PolicyResource]) -> str:
    return ", ".join(f"'{r.name}'" for r in resources)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    roles = stack_resources(args, ROLE, none_reason="the stack creates no IAM role")
    grants: dict[str, list[PolicyResource]] = {role.urn: [] for role in roles}
    undecided: list[str] = []
    for grant in stack_resources(args, *GRANTS):
        prop = GRANTS[grant.resource_type]
        try:
            for role in _roles_of(grant, prop, roles):
                grants[role.urn].append(grant)
        except _Undecided:
            undecided.append(f"{type_label(grant.resource_type)} '{grant.name}': {prop}")
    checks: list[tuple[PolicyResource, str, PolicyResource]] = []
    for user in stack_resources(args, *USERS):
        for prop in USERS[user.resource_type]:
            try:
                checks.extend((user, prop, role) for role in _roles_of(user, prop, roles) if grants[role.urn])
            except _Undecided:
                undecided.append(f"{type_label(user.resource_type)} '{user.name}': {prop}")
    violations = []
    predecessors = functools.cache(depended_on)  # each resource's walked once, however many roles and grants it meets
    for user, prop, role in checks:
        # a grant computed from the user itself (a state machine's StartExecution on its own ARN, a function's log
        # group) comes after it by construction: depends_on it would be a cycle the engine refuses
        missing = [grant for grant in grants[role.urn]
                   if grant.urn not in predecessors(user) and user.urn not in predecessors(grant)]
        if missing:
            violations.append((user, prop, role, missing))
    if not violations:
        if undecided:
            not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
        if not checks:
            not_applicable(args, "no resource of the stack passes a role of the stack that has policies of the stack")
    for user, prop, role, missing in violations:
        report_violation(
            f"{type_label(user.resource_type)} '{user.name}' passes role '{role.name}' ({prop}) but is not created "
            f"after its policy {_labels(missing)}: the engine creates both at once, and the service uses the role "
            "before the policy exists (and keeps using it after a destroy deleted the policy); add "
            f"depends_on=[{', '.join(f'<{m.name}>' for m in missing)}] to '{user.name}'.", user.urn)


POLICY = stack_rule_policy(__file__, _validate)
