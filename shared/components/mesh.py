"""Service-to-service networking of one environment, with the provider the env chooses.

* ``service-connect`` (ECS Service Connect): ECS itself creates the Cloud Map services and runs the
  proxy, so this layer creates no AWS resource. It decides and records (as a component's outputs, for
  traceability) the wiring compute applies: the cluster's default namespace, and per service the port
  mapping name, the discovery name and the client alias clients dial.
* ``appmesh`` (AWS App Mesh, discontinued by AWS on 2026-09-30): a mesh, one virtual node per service
  discovered through the discovery layer's Cloud Map service, one virtual service per service, and a
  virtual router with a weighted route for a service the env canaries.

Both providers give clients the same names (``<service>.<namespace>:<port>``), so application code
and configuration do not change when an env moves from App Mesh to Service Connect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from shared.catalog import Catalog, ServiceSpec
from shared.envs import CanaryVersion, EnvConfig, env_path
from shared.errors import ConfigError
from shared.mesh_names import discovery_name, port_name, service_dns_name, unit_name

MeshProvider = Literal["service-connect", "appmesh"]

# Envoy's active health check of each task; a task failing 3 checks 5 s apart leaves the pool in ~15 s.
HEALTH_CHECK = {"healthy_threshold": 2, "unhealthy_threshold": 3, "interval_millis": 5000, "timeout_millis": 2000}


@dataclass(frozen=True)
class MeshArgs:
    env_name: str
    provider: MeshProvider
    namespace: str
    services: tuple[ServiceSpec, ...]
    egress_filter: Literal["DROP_ALL", "ALLOW_ALL"]
    canaries: dict[str, tuple[CanaryVersion, ...]]

    @classmethod
    def from_env(cls, env: EnvConfig, catalog: Catalog) -> MeshArgs:
        if env.mesh.canaries and env.mesh.provider != "appmesh":
            # Refused rather than ignored: the env would believe it splits traffic while it does not.
            raise ConfigError(
                str(env_path(env.name)), "mesh.canaries",
                f"weighted canaries need provider 'appmesh'; {env.mesh.provider} has no weighted routing between "
                "versions of a service (remove mesh.canaries, or canary with ECS deployments instead)")
        return cls(
            env_name=env.name, provider=env.mesh.provider, namespace=env.namespace, services=tuple(catalog),
            egress_filter=env.mesh.egress_filter, canaries=dict(env.mesh.canaries),
        )

    @property
    def mesh_name(self) -> str:
        return f"{self.env_name}-ml-mesh"


# -- names compute wires Envoy / Service Connect with (one place, so both layers agree) --------------
def virtual_node_name(service: str, version: str | None = None) -> str:
    return unit_name(service, version)


def virtual_router_name(service: str) -> str:
    return f"{service}-router"


def route_name(service: str) -> str:
    return f"{service}-weighted"


def version_ecs_service_name(service: str, version: str) -> str:
    """The ECS service running one canary version; its tasks carry this name as a Cloud Map attribute."""
    return unit_name(service, version)


@dataclass(frozen=True)
class CloudMapService:
    """The discovery layer's names for one service (read from its contract)."""

    namespace_name: pulumi.Input[str]
    service_name: pulumi.Input[str]


def _wiring(spec: ServiceSpec, namespace: str) -> dict[str, Any]:
    """The MeshContract fields that do not depend on the provider."""
    return {
        "port_name": port_name(spec.name),
        "discovery_name": discovery_name(spec.name),
        "client_alias_dns": service_dns_name(spec.name, namespace),
        "client_alias_port": spec.port,
    }


class ServiceConnectWiring(pulumi.ComponentResource):
    """No AWS resource: ECS creates Service Connect's Cloud Map services and proxies when compute's
    ECS services name this namespace. The component records the wiring in the state so a reviewer can
    see what compute was told."""

    def __init__(
        self, name: str, args: MeshArgs, namespace_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:mesh:ServiceConnectWiring", name, None, opts)
        self.namespace_arn = pulumi.Output.from_input(namespace_arn)
        self.services: dict[str, dict[str, Any]] = {spec.name: _wiring(spec, args.namespace) for spec in args.services}
        self.register_outputs({"namespace_arn": self.namespace_arn, "services": self.services})


class AppMesh(pulumi.ComponentResource):
    """A mesh with a virtual node per service (Cloud Map discovery, listener, health check, backends =
    the services it calls), a virtual service per service, and a router + weighted route per canary."""

    def __init__(
        self,
        name: str,
        args: MeshArgs,
        cloud_map: dict[str, CloudMapService],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:mesh:AppMesh", name, None, opts)
        self.mesh = aws.appmesh.Mesh(
            f"{name}-mesh",
            name=args.mesh_name,
            spec=aws.appmesh.MeshSpecArgs(
                # DROP_ALL: a proxy only reaches the mesh's own virtual services and *.amazonaws.com (AWS
                # API calls do go through Envoy; App Mesh EgressFilter docs); nothing else leaves the mesh.
                # Only the metadata endpoints and the broker's AMQPS port bypass Envoy (compute's proxy
                # configuration). ALLOW_ALL only where the env says so (dev experiments).
                egress_filter=aws.appmesh.MeshSpecEgressFilterArgs(type=args.egress_filter),
            ),
            tags={"Name": args.mesh_name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_mesh = pulumi.ResourceOptions(parent=self.mesh)
        self.virtual_nodes: dict[str, aws.appmesh.VirtualNode] = {}
        self.virtual_routers: dict[str, aws.appmesh.VirtualRouter] = {}
        self.routes: dict[str, aws.appmesh.Route] = {}
        self.virtual_services: dict[str, aws.appmesh.VirtualService] = {}
        self.contract_services: dict[str, dict[str, Any]] = {}

        for spec in args.services:
            versions = args.canaries.get(spec.name, ())
            entry = {**_wiring(spec, args.namespace),
                     "virtual_service_name": service_dns_name(spec.name, args.namespace)}
            if versions:
                provider = self._canary(name, args, spec, versions, cloud_map[spec.name], in_mesh, entry)
            else:
                node = self._node(name, args, spec, None, cloud_map[spec.name], in_mesh)
                entry["virtual_node_name"] = virtual_node_name(spec.name)
                provider = aws.appmesh.VirtualServiceSpecProviderArgs(
                    virtual_node=aws.appmesh.VirtualServiceSpecProviderVirtualNodeArgs(virtual_node_name=node.name))
            # The virtual service is named after the DNS name clients dial: Envoy matches outbound
            # requests on it, and it must resolve (the discovery layer's A records make it resolve).
            self.virtual_services[spec.name] = aws.appmesh.VirtualService(
                f"{name}-{spec.name}",
                name=entry["virtual_service_name"],
                mesh_name=self.mesh.name,
                spec=aws.appmesh.VirtualServiceSpecArgs(provider=provider),
                tags={"service": spec.name},
                opts=in_mesh,
            )
            self.contract_services[spec.name] = entry

        self.register_outputs({
            "mesh_name": self.mesh.name,
            "virtual_nodes": {key: node.name for key, node in self.virtual_nodes.items()},
            "virtual_services": {key: vs.name for key, vs in self.virtual_services.items()},
        })

    def _node(
        self, name: str, args: MeshArgs, spec: ServiceSpec, version: str | None, cloud_map: CloudMapService,
        opts: pulumi.ResourceOptions,
    ) -> aws.appmesh.VirtualNode:
        node_name = virtual_node_name(spec.name, version)
        attributes = {"ECS_SERVICE_NAME": version_ecs_service_name(spec.name, version)} if version else None
        node = aws.appmesh.VirtualNode(
            f"{name}-{node_name}",
            name=node_name,
            mesh_name=self.mesh.name,
            spec=aws.appmesh.VirtualNodeSpecArgs(
                listeners=[aws.appmesh.VirtualNodeSpecListenerArgs(
                    port_mapping=aws.appmesh.VirtualNodeSpecListenerPortMappingArgs(port=spec.port, protocol="http"),
                    health_check=aws.appmesh.VirtualNodeSpecListenerHealthCheckArgs(
                        protocol="http", path=spec.health_path, port=spec.port, **HEALTH_CHECK),
                    # App Mesh's per-request default is 15 s, and a longer wait must be set on every
                    # resource of the conversation: the caller's and the callee's nodes and the route
                    # (App Mesh API, HttpTimeout.perRequest). Each node's is its own catalog value, and the
                    # catalog keeps a caller's at least its callees'.
                    timeout=aws.appmesh.VirtualNodeSpecListenerTimeoutArgs(
                        http=aws.appmesh.VirtualNodeSpecListenerTimeoutHttpArgs(
                            per_request=aws.appmesh.VirtualNodeSpecListenerTimeoutHttpPerRequestArgs(
                                unit="s", value=spec.request_timeout_seconds))),
                )],
                # Endpoints come from the discovery layer's Cloud Map service, where ECS registers only
                # healthy tasks; a canary version's node keeps only its own ECS service's tasks.
                service_discovery=aws.appmesh.VirtualNodeSpecServiceDiscoveryArgs(
                    aws_cloud_map=aws.appmesh.VirtualNodeSpecServiceDiscoveryAwsCloudMapArgs(
                        namespace_name=cloud_map.namespace_name, service_name=cloud_map.service_name,
                        attributes=attributes,
                    )),
                # With DROP_ALL, a node reaches only the virtual services it declares: exactly its calls.
                backends=[
                    aws.appmesh.VirtualNodeSpecBackendArgs(
                        virtual_service=aws.appmesh.VirtualNodeSpecBackendVirtualServiceArgs(
                            virtual_service_name=service_dns_name(callee, args.namespace)))
                    for callee in spec.calls
                ] or None,
            ),
            tags={"service": spec.name, **({"version": version} if version else {})},
            opts=opts,
        )
        self.virtual_nodes[node_name] = node
        return node

    def _canary(
        self, name: str, args: MeshArgs, spec: ServiceSpec, versions: tuple[CanaryVersion, ...],
        cloud_map: CloudMapService, opts: pulumi.ResourceOptions, entry: dict[str, Any],
    ) -> aws.appmesh.VirtualServiceSpecProviderArgs:
        """One node per version behind a router whose single route splits traffic by the env's weights."""
        nodes = {v.version: self._node(name, args, spec, v.version, cloud_map, opts) for v in versions}
        router = aws.appmesh.VirtualRouter(
            f"{name}-{virtual_router_name(spec.name)}",
            name=virtual_router_name(spec.name),
            mesh_name=self.mesh.name,
            spec=aws.appmesh.VirtualRouterSpecArgs(listeners=[aws.appmesh.VirtualRouterSpecListenerArgs(
                port_mapping=aws.appmesh.VirtualRouterSpecListenerPortMappingArgs(port=spec.port, protocol="http"))]),
            tags={"service": spec.name},
            opts=opts,
        )
        self.virtual_routers[spec.name] = router
        self.routes[spec.name] = aws.appmesh.Route(
            f"{name}-{route_name(spec.name)}",
            name=route_name(spec.name),
            mesh_name=self.mesh.name,
            virtual_router_name=router.name,
            spec=aws.appmesh.RouteSpecArgs(http_route=aws.appmesh.RouteSpecHttpRouteArgs(
                match=aws.appmesh.RouteSpecHttpRouteMatchArgs(prefix="/"),
                action=aws.appmesh.RouteSpecHttpRouteActionArgs(weighted_targets=[
                    aws.appmesh.RouteSpecHttpRouteActionWeightedTargetArgs(
                        virtual_node=nodes[v.version].name, weight=v.weight)
                    for v in versions
                ]),
                # The route waits as long as the service's nodes (see _node).
                timeout=aws.appmesh.RouteSpecHttpRouteTimeoutArgs(
                    per_request=aws.appmesh.RouteSpecHttpRouteTimeoutPerRequestArgs(
                        unit="s", value=spec.request_timeout_seconds)),
            )),
            tags={"service": spec.name},
            opts=pulumi.ResourceOptions(parent=router),
        )
        entry["virtual_router_name"] = virtual_router_name(spec.name)
        entry["versions"] = {
            v.version: {
                "virtual_node_name": virtual_node_name(spec.name, v.version),
                "weight": v.weight,
                "cloud_map_attributes": {"ECS_SERVICE_NAME": version_ecs_service_name(spec.name, v.version)},
            }
            for v in versions
        }
        return aws.appmesh.VirtualServiceSpecProviderArgs(
            virtual_router=aws.appmesh.VirtualServiceSpecProviderVirtualRouterArgs(virtual_router_name=router.name))
