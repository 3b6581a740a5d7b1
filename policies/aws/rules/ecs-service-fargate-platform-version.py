"""Fargate services are not pinned to an old platform version.

A stack rule over ``aws:ecs/service:Service`` with ``launchType`` FARGATE (or a capacity provider strategy
of FARGATE / FARGATE_SPOT); services that are not on Fargate are not applicable. ``platformVersion`` unset or
``LATEST`` passes. A pinned version must be the current one of the OS family the service's tasks run:
Linux ``1.4.0``, Windows ``1.0.0`` (:data:`CURRENT`). The family comes from the task definition the service's
``taskDefinition`` refers to, when that task definition is in the same stack (found through the input's
property dependencies, its value or the service's dependencies): ``runtimePlatform.operatingSystemFamily``
``WINDOWS_*`` is Windows, ``LINUX`` or unset is Linux. Where the task definition is not in the stack (another
stack's, or an ARN given as text), or its family is unknown at preview, the family cannot be told and a pin
to either current version passes (a Linux service pinned to ``1.0.0`` is then not caught here).

Why: platform versions carry the Fargate runtime's security fixes and features (1.4.0: ephemeral
storage encryption, the task metadata v4 endpoint); an old pin keeps tasks on an unpatched runtime. Linux
and Windows number their platform versions independently: Linux ``1.0.0`` is the first Linux runtime (2017),
not Windows' current ``1.0.0`` (ECS developer guide, "Fargate platform versions for Amazon ECS").
Matches Security Hub ECS.10, checkov CKV_AWS_332 (which accepts only ``LATEST``; a pin to the current
version passes here and must be moved on when AWS releases the next one). No cdk-nag equivalent.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    as_list,
    contains_unknown,
    ecs_services_and_task_definitions,
    get,
    not_applicable,
    referenced_targets,
    resource_input,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

#: The newest platform version of each OS family (ECS developer guide, "Fargate platform versions for Amazon ECS").
CURRENT = {"Linux": "1.4.0", "Windows": "1.0.0"}


def _family(task: PolicyResource) -> str | None:
    """``Linux`` or ``Windows`` for a task definition of the stack; None while its family is unknown."""
    family = get(resource_input(task, "runtimePlatform"), "operatingSystemFamily")
    if family is UNKNOWN or contains_unknown(family):
        return None
    return "Windows" if str(family or "").upper().startswith("WINDOWS") else "Linux"


def _service_family(service: PolicyResource, tasks: list[PolicyResource]) -> tuple[str, str] | None:
    """(family, task definition name) of the service's tasks when its task definition is in the stack."""
    targets = referenced_targets(service, "taskDefinition", tasks, identity_keys=("id", "arn", "family"))
    if not targets:
        return None
    families = {_family(task) for task in targets}
    family = families.pop() if len(families) == 1 else None
    return (family, targets[0].name) if family is not None else None


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    services, tasks = ecs_services_and_task_definitions(args)
    undecided: list[str] = []
    fargate = 0
    reported: list[str] = []

    def report(message: str, urn: str) -> None:
        reported.append(urn)
        report_violation(message, urn)

    for service in services:
        launch_type = resource_input(service, "launchType")
        strategy = resource_input(service, "capacityProviderStrategies")
        if launch_type is UNKNOWN or contains_unknown(strategy):
            undecided.append(f"service '{service.name}': launchType/capacityProviderStrategies")
            continue
        providers = {str(get(item, "capacityProvider") or "").upper() for item in as_list(strategy)}
        if str(launch_type or "").upper() != "FARGATE" and not providers & {"FARGATE", "FARGATE_SPOT"}:
            continue
        fargate += 1
        version = resource_input(service, "platformVersion")
        if version is UNKNOWN:
            undecided.append(f"service '{service.name}': platformVersion")
            continue
        text = str(version or "LATEST").strip()
        if text.upper() == "LATEST":
            continue
        known = _service_family(service, tasks)
        if known is None:  # the task definition is elsewhere or its family unknown: either current version
            if text not in CURRENT.values():
                report(f"service '{service.name}' is pinned to Fargate platform version {text}; set "
                                 "platform_version='LATEST' (or leave it unset).", service.urn)
            continue
        family, task_name = known
        if text != CURRENT[family]:
            other = next((name for name, current in CURRENT.items() if current == text and name != family), None)
            why = f" (the current {other} version; {family} numbers its versions independently)" if other else ""
            report(
                f"service '{service.name}' runs {family} tasks (task definition '{task_name}') and is pinned to "
                f"Fargate platform version {text}{why}; {family}'s current version is {CURRENT[family]}: set "
                "platform_version='LATEST' (or leave it unset).", service.urn)
    if undecided and not reported:  # a service that was judged keeps its finding
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not fargate:
        not_applicable(args, "no ECS service of the stack runs on Fargate")


POLICY = stack_rule_policy(__file__, _validate)
