"""App Mesh resources stay within App Mesh's quotas per mesh, virtual node, virtual router and route (stack rule).

App Mesh user guide, "App Mesh service quotas" (Service Quotas codes): per mesh at most 200 virtual nodes
(L-E043DFB4), 200 virtual services (L-DA7495A7) and 200 virtual routers (L-50F6C35A); per virtual node at most 50
backends (L-8775AB18); per virtual router at most 50 routes (L-BB90B7FF) -- all adjustable -- and per route at most
10 weighted targets (L-AE1D9567, not adjustable). Checks ``aws:appmesh/virtualNode``, ``virtualService``,
``virtualRouter`` and ``route`` of the stack, counted per ``meshName`` (and a route per ``virtualRouterName``).

Why: the platform makes a virtual node, a virtual service and, for a canary, a router per catalog service and a
node per canary version; its node's backends are the services it calls. A catalog past 200 services, a service
calling more than 50, or a canary of more than 10 versions synthesizes and passes every other rule, and ``up``
then stops half-way at the first CreateVirtualNode (or CreateRoute) past the quota (LimitExceededException). An
account whose adjustable quota was raised suppresses this rule in the env's ``policy.suppressions``, naming it.

A mesh or router name unknown at preview leaves the rule undecided for the stack, unless the known resources
already cross a quota.
"""

from collections import Counter

from pulumi_policy import StackValidationArgs

from shared.aws_limits import APPMESH_WEIGHTED_TARGETS_PER_ROUTE
from shared.policy_support import UNKNOWN, as_list, get, resource_input, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

VIRTUAL_NODE = "aws:appmesh/virtualNode:VirtualNode"
VIRTUAL_SERVICE = "aws:appmesh/virtualService:VirtualService"
VIRTUAL_ROUTER = "aws:appmesh/virtualRouter:VirtualRouter"
ROUTE = "aws:appmesh/route:Route"
#: App Mesh service quotas (defaults): resources per mesh, of each kind
PER_MESH = {VIRTUAL_NODE: ("virtual nodes", 200), VIRTUAL_SERVICE: ("virtual services", 200),
            VIRTUAL_ROUTER: ("virtual routers", 200)}
BACKENDS_PER_NODE = 50
ROUTES_PER_ROUTER = 50
WEIGHTED_TARGETS_PER_ROUTE = APPMESH_WEIGHTED_TARGETS_PER_ROUTE  # not adjustable
ROUTE_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")


def _name(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args, *PER_MESH, ROUTE, none_reason="the stack has no App Mesh resources")
    per_mesh: Counter[tuple[str, str]] = Counter()
    per_router: Counter[tuple[str, str]] = Counter()
    undecided: list[str] = []
    for resource in resources:
        mesh = _name(resource_input(resource, "meshName"))
        if resource.resource_type == ROUTE:
            router = _name(resource_input(resource, "virtualRouterName"))
            if mesh is None or router is None:
                undecided.append(f"'{resource.name}'.{'meshName' if mesh is None else 'virtualRouterName'}")
            else:
                per_router[(mesh, router)] += 1
            spec = resource_input(resource, "spec")
            for kind in ROUTE_KINDS:
                targets = get(spec, kind, "action", "weightedTargets")
                if targets is not UNKNOWN and len(as_list(targets)) > WEIGHTED_TARGETS_PER_ROUTE:
                    report_violation(
                        f"route '{resource.name}' splits traffic over {len(as_list(targets))} weighted targets; App "
                        f"Mesh takes at most {WEIGHTED_TARGETS_PER_ROUTE} per route (a quota that cannot be raised): "
                        "retire versions before adding more.", resource.urn)
            continue
        if mesh is None:
            undecided.append(f"'{resource.name}'.meshName")
        else:
            per_mesh[(mesh, resource.resource_type)] += 1
        if resource.resource_type == VIRTUAL_NODE:
            backends = get(resource_input(resource, "spec"), "backends")
            if backends is UNKNOWN:
                undecided.append(f"'{resource.name}'.spec.backends")
            elif len(as_list(backends)) > BACKENDS_PER_NODE:
                report_violation(
                    f"virtual node '{resource.name}' has {len(as_list(backends))} backends; App Mesh takes at most "
                    f"{BACKENDS_PER_NODE} per virtual node by default (CreateVirtualNode fails past it): call fewer "
                    "services from one service, or raise the quota 'Backends per virtual node' and suppress this "
                    "rule naming it.", resource.urn)

    for (mesh, resource_type), count in sorted(per_mesh.items()):
        what, quota = PER_MESH[resource_type]
        if count > quota:
            report_violation(
                f"mesh '{mesh}' gets {count} {what} from this stack; App Mesh takes at most {quota} per mesh by "
                f"default: up fails at the first one past it. Raise the quota '{what.capitalize()} per mesh' "
                "before the catalog grows past it and suppress this rule naming the raised quota, or split the "
                "services over meshes.")
    for (mesh, router), count in sorted(per_router.items()):
        if count > ROUTES_PER_ROUTER:
            report_violation(
                f"virtual router '{router}' of mesh '{mesh}' has {count} routes; App Mesh takes at most "
                f"{ROUTES_PER_ROUTER} per virtual router by default.")
    if undecided:
        args.not_applicable(f"cannot count {', '.join(undecided)} before deployment")


POLICY = stack_rule_policy(__file__, _validate)
