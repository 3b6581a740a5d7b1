"""AWS count limits that grow with an env's services, where the env file and the catalog decide them: one place
for the numbers and the counting, read by the env loader (a hard limit: exit 2 before any layer) and the account
preflight (an adjustable quota: compared with the account's applied value).

Every ECS service of the platform registers each of its tasks as an instance of its AWS Cloud Map service (Service
Connect's, in the env's HTTP namespace; App Mesh's, in the private DNS namespace, every canary version of a service
in the same Cloud Map service), so a service's task count is bounded by Cloud Map's instances per service and the
env's by its instances per namespace.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from shared.fargate import DEPLOYMENT_MAXIMUM_PERCENT

if TYPE_CHECKING:
    from shared.catalog import Catalog
    from shared.envs import EnvConfig

#: AWS Cloud Map developer guide, "AWS Cloud Map service quotas": instances per service 1,000 (not adjustable).
CLOUD_MAP_INSTANCES_PER_SERVICE = 1000
#: Same page: instances per namespace, 2,000 by default and adjustable, so the account preflight compares the need
#: with the quota the account has (Service Quotas AWSCloudMap L-D95E8A57), not with a figure held here.
CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE = "L-D95E8A57"
#: App Mesh user guide, "App Mesh service quotas": weighted targets per route, 10 (not adjustable; Service Quotas
#: L-AE1D9567). A canary's route splits its traffic over one target per version: read by the env loader
#: (mesh.canaries) and the policy appmesh-mesh-quotas.
APPMESH_WEIGHTED_TARGETS_PER_ROUTE = 10


def task_units(env: EnvConfig, service: str) -> int:
    """The ECS services a catalog service runs as: one per canary version (each with its own counts) where the env's
    mesh is App Mesh, which alone runs canaries (shared.components.compute), else one."""
    versions = env.mesh.canaries.get(service, ()) if env.mesh.provider == "appmesh" else ()
    return max(1, len(versions))


def peak_tasks(env: EnvConfig, service: str) -> int:
    """The most tasks ``service`` registers at once: every unit at ``max_count``, during a rolling deployment that
    starts the new tasks before it stops the old ones (:data:`DEPLOYMENT_MAXIMUM_PERCENT`)."""
    return math.ceil(env.service_settings(service).max_count * task_units(env, service)
                     * DEPLOYMENT_MAXIMUM_PERCENT / 100)


def cloud_map_service_problems(env: EnvConfig, catalog: Catalog) -> list[tuple[str, str]]:
    """``(key, reason)`` for each service of ``env`` whose peak task count Cloud Map cannot register in one service."""
    problems = []
    for service, settings in env.services.items():
        if service not in catalog.services:
            continue
        peak = peak_tasks(env, service)
        if peak > CLOUD_MAP_INSTANCES_PER_SERVICE:
            units = task_units(env, service)
            each = f" for each of its {units} canary versions" if units > 1 else ""
            most = CLOUD_MAP_INSTANCES_PER_SERVICE * 100 // DEPLOYMENT_MAXIMUM_PERCENT // units
            problems.append((f"services.{service}.max_count", (
                f"{settings.max_count} tasks{each}, {DEPLOYMENT_MAXIMUM_PERCENT} % of it during a rolling deployment, "
                f"are {peak} Cloud Map instances of {service}'s service; Cloud Map registers at most "
                f"{CLOUD_MAP_INSTANCES_PER_SERVICE} per service (a limit AWS does not raise): the tasks past it "
                f"cannot be registered; keep max_count at most {most} (and give the "
                "tasks more cpu/memory instead)")))
    return problems


#: The network layer splits the VPC into 16 equal blocks, one private and one public subnet per AZ
#: (shared.components.network.plan_subnets): a private subnet's prefix is the VPC's plus this.
SUBNET_PREFIX_DIFF = 4
#: Amazon VPC user guide, "Subnet CIDR blocks": the first four and the last address of every subnet are reserved.
SUBNET_RESERVED_ADDRESSES = 5
#: The VPC prefixes the env loader accepts (shared.envs.NetworkConfig.cidr).
VPC_PREFIX_MIN, VPC_PREFIX_MAX = 16, 22


def private_subnet_addresses(vpc_prefix: int) -> int:
    """The addresses one private subnet of a ``/vpc_prefix`` VPC can give out."""
    return 2 ** (32 - vpc_prefix - SUBNET_PREFIX_DIFF) - SUBNET_RESERVED_ADDRESSES


def private_subnet_need(env: EnvConfig, catalog: Catalog) -> tuple[int, list[str]]:
    """(addresses one private subnet may need at once, what they are) with every service at its peak.

    Each Fargate task has its own network interface with one private address in a private subnet (ECS guide,
    "Amazon ECS task networking options for Fargate": awsvpc, one ENI per task), and ECS spreads a service's tasks
    over the subnets' AZs (ECS CreateService, schedulingStrategy REPLICA: "spreads tasks across Availability
    Zones"), so an AZ holds up to its share of each service's peak, rounded up (per canary version: each is an
    ECS service of its own). Beside the tasks, each AZ's private
    subnet holds an address for each interface endpoint (PrivateLink: one ENI per endpoint and subnet), the
    broker's endpoint (one per subnet at most), each VPC Lambda function with its own security group (Lambda
    guide: a Hyperplane ENI per subnet and security group; the broker rotation and the queue metrics publisher)
    and a running deploy runner build (CodeBuild in a VPC: one ENI per build)."""
    from shared.envs import publishes_queue_metrics

    # a retiring AZ's subnets take nothing new (one retiring every AZ is refused by its own rule, not here)
    zones = max(len(env.serving_availability_zones), 1)
    # Each canary version is an ECS service of its own, spread over the AZs by itself: round up per version.
    tasks = {spec.name: task_units(env, spec.name) * math.ceil(math.ceil(
        env.service_settings(spec.name).max_count * DEPLOYMENT_MAXIMUM_PERCENT / 100) / zones) for spec in catalog}
    parts = [f"{sum(tasks.values())} task network interfaces ("
             + ", ".join(f"{name} {count}" for name, count in tasks.items() if count)
             + f": each service at max_count, {DEPLOYMENT_MAXIMUM_PERCENT} % during a rolling deployment, spread over "
             f"{zones} AZ{'s' if zones > 1 else ''})"]
    # s3 is a gateway endpoint: a route, no network interface; one listed twice is one endpoint
    # (shared.components.network.interface_endpoints)
    endpoints = len({endpoint for endpoint in env.network.endpoints if endpoint != "s3"})
    if endpoints:
        parts.append(f"{endpoints} interface endpoints")
    amazon_mq = env.messaging.broker == "amazon-mq"
    functions = int(publishes_queue_metrics(env)) + int(amazon_mq and env.messaging.credentials_rotation is not None)
    others = endpoints + int(amazon_mq) + functions + 1
    parts.append(f"{int(amazon_mq)} broker endpoint, {functions} Lambda function{'s' if functions != 1 else ''} and "
                 "1 deploy runner build")
    return sum(tasks.values()) + others, parts


def private_subnet_problems(env: EnvConfig, catalog: Catalog) -> list[tuple[str, str]]:
    """``(key, reason)`` when an AZ's private subnet cannot hold the env's network interfaces at their peak: ECS
    would fail the tasks past it ("insufficient free addresses in subnet"), and only when they scale out or deploy.
    A bigger ``network.cidr`` replaces the VPC and everything in it, so the loader says it before the first ``up``."""
    prefix = env.network.cidr.prefixlen
    have = private_subnet_addresses(prefix)
    need, parts = private_subnet_need(env, catalog)
    if need <= have:
        return []
    fitting = [p for p in range(VPC_PREFIX_MAX, VPC_PREFIX_MIN - 1, -1) if private_subnet_addresses(p) >= need]
    fix = (f"give network.cidr a /{fitting[0]} or larger (its private subnets hold "
           f"{private_subnet_addresses(fitting[0])}; a new cidr replaces the VPC, so choose it before the first up)"
           if fitting else "no VPC the platform accepts is large enough")
    return [("network.cidr", (
        f"{env.network.cidr} gives each AZ a /{prefix + SUBNET_PREFIX_DIFF} private subnet with {have} usable "
        f"addresses ({SUBNET_RESERVED_ADDRESSES} of each subnet are AWS's), but one AZ's may need {need} at once: "
        f"{'; '.join(parts)}. ECS could not start the tasks past it (no free address in the subnet) when the "
        f"services scale out or deploy; {fix}, or lower the services' max_count or raise network.az_count"))]
