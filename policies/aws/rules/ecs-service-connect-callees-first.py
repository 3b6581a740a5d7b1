"""An ECS service whose tasks call another ECS service of the stack through its Service Connect client alias is
created (and updated) after that service.

A stack rule: for every ``aws:ecs/service:Service``, the containers of its task definition of the stack
(``taskDefinition``, found through ``referenced_targets``) name in their ``environment`` values the URLs they call
(``scheme://host:port``, or ``scheme://host`` for the scheme's port: 80 for http, 443 for https). A URL whose host and
port are a ``clientAlias`` (``dnsName``, ``port``) of another ECS service's enabled ``serviceConnectConfiguration`` in
the stack makes that service a callee: the caller must depend on it, directly, through other resources or through a
parent component that does. A callee reached by its alias's port and a ``dnsName`` it leaves unset (ECS then uses
``discoveryName``) is not recognised; a task definition of another stack is not applicable. A caller is judged only as
a Service Connect client (its own ``serviceConnectConfiguration`` enabled) of the callee's namespace (client aliases
are per namespace; an unset namespace, the cluster's default, or a name against an ARN is taken as possibly the same).

Why: a Service Connect task resolves only the endpoints that existed when it started: "Existing tasks can't resolve
and connect to the new endpoint. Only new tasks ... that start running after this deployment can", and ECS's guide
says to add ``dependsOn`` from each client service to every service it connects to (ECS developer guide, "Amazon ECS
Service Connect components"). A caller created in parallel with its callee may start its tasks before the callee's
endpoint exists, and those tasks never reach it until they are replaced. No Security Hub, cdk-nag or checkov
equivalent.
"""

import re
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    as_int,
    as_list,
    contains_unknown,
    depended_on,
    ecs_services_and_task_definitions,
    get,
    is_true,
    not_applicable,
    referenced_targets,
    resource_input,
    stack_rule_policy,
    stack_task_containers,
)
from shared.policy_typing import ReportViolation

#: scheme://host[:port] in an environment value (the host a DNS name: letters, digits, '-' and '.')
URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://([A-Za-z0-9.-]+)(?::(\d+))?", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80}


def _aliases(service: PolicyResource) -> set[tuple[str, int]] | None:
    """The (dnsName, port) client aliases the service serves under; None while its configuration is unknown."""
    connect = resource_input(service, "serviceConnectConfiguration")
    if contains_unknown(connect):
        return None
    if not connect or not is_true(get(connect, "enabled")):
        return set()
    aliases: set[tuple[str, int]] = set()
    for entry in as_list(get(connect, "services")):
        for alias in as_list(get(entry, "clientAlias")):
            name, port = get(alias, "dnsName"), as_int(get(alias, "port"))
            if isinstance(name, str) and name and port is not None:
                aliases.add((name.lower().rstrip("."), port))
    return aliases


def _namespace(service: PolicyResource) -> Any:
    """The namespace the service is a Service Connect client of: its ``namespace`` (name or ARN), ``""`` where it
    leaves it to the cluster's default, None where Service Connect is off, UNKNOWN while unknown."""
    connect = resource_input(service, "serviceConnectConfiguration")
    if contains_unknown(connect):
        return UNKNOWN
    if not connect or not is_true(get(connect, "enabled")):
        return None
    namespace = get(connect, "namespace")
    return namespace if isinstance(namespace, str) else ""


def _same_namespace(caller: str, callee: str) -> bool:
    """Whether the two may be one namespace: unset (the cluster's default), or a name against an ARN, may be."""
    if not caller or not callee or caller.startswith("arn:") != callee.startswith("arn:"):
        return True
    return caller == callee


def _called(containers: Any) -> dict[tuple[str, int], str]:
    """(host, port) -> 'container: VAR' for each URL the containers' environment values name."""
    called: dict[tuple[str, int], str] = {}
    for container in as_list(containers):
        for variable in as_list(get(container, "environment")):
            value = get(variable, "value")
            if not isinstance(value, str):
                continue
            for scheme, host, port in URL.findall(value):
                number = int(port) if port else DEFAULT_PORTS.get(scheme.lower())
                if number is not None:
                    called.setdefault((host.lower().rstrip("."), number),
                                      f"{get(container, 'name')}: {get(variable, 'name')}")
    return called


def _containers(service: PolicyResource, tasks: list[PolicyResource]) -> Any:
    """The containers of the service's task definition of the stack: [] when it is elsewhere, UNKNOWN while either
    the reference or the definitions are unknown."""
    targets = referenced_targets(service, "taskDefinition", tasks)
    if targets is None:
        return UNKNOWN
    if not targets:
        return []
    return stack_task_containers(targets[0])


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    services, tasks = ecs_services_and_task_definitions(args)
    undecided: list[str] = []
    aliases: dict[str, set[tuple[str, int]]] = {}
    namespaces: dict[str, Any] = {}
    for service in services:
        found, namespaces[service.urn] = _aliases(service), _namespace(service)
        if found is None:
            undecided.append(f"ECS service '{service.name}': serviceConnectConfiguration")
        elif found:
            aliases[service.urn] = found
    if not aliases and not undecided:
        not_applicable(args, "no ECS service of the stack serves a Service Connect client alias")
    by_urn = {service.urn: service for service in services}
    checked = reported = 0
    for caller in services:
        # Only a Service Connect client resolves client aliases, and only those of its own namespace.
        namespace = namespaces[caller.urn]
        if namespace is None or namespace is UNKNOWN:
            continue  # unknown: its configuration is undecided above
        containers = _containers(caller, tasks)
        if containers is UNKNOWN:
            undecided.append(f"ECS service '{caller.name}': taskDefinition containerDefinitions")
            continue
        called = _called(containers)
        before = depended_on(caller)
        for urn, served in aliases.items():
            if urn == caller.urn or not _same_namespace(namespace, namespaces[urn]):
                continue
            hits = sorted(called[alias] for alias in served if alias in called)
            if not hits:
                continue
            checked += 1
            if urn not in before:
                reported += 1
                callee = by_urn[urn]
                report_violation(
                    f"ECS service '{caller.name}' calls '{callee.name}' through its Service Connect client alias "
                    f"({', '.join(hits)}) but is not created after it: a task resolves only the Service Connect "
                    f"endpoints that existed when it started; add depends_on=[<'{callee.name}' ECS service>].",
                    caller.urn)
    # A service that was judged keeps its finding while another one is still unknown at preview.
    if undecided and not reported:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    if not checked:
        not_applicable(args, "no ECS service of the stack calls another one's Service Connect client alias")


POLICY = stack_rule_policy(__file__, _validate)
