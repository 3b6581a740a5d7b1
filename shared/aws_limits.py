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
