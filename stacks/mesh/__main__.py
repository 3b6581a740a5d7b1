"""mesh layer: ECS Service Connect wiring or an AWS App Mesh mesh, as the env chooses."""

import sys
from pathlib import Path

import pulumi

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.catalog import load_catalog
from shared.components.mesh import AppMesh, CloudMapService, MeshArgs, ServiceConnectWiring
from shared.contracts import DiscoveryOutputs
from shared.layer import Layer

layer = Layer("mesh")
discovery = layer.upstream("discovery").contract(DiscoveryOutputs)
args = MeshArgs.from_env(layer.env, load_catalog())



def cloud_map_name(service: str) -> pulumi.Output[str]:
    return discovery.services.apply(lambda services: services[service].name)


if args.provider == "appmesh":
    # Virtual nodes find their tasks in the discovery layer's Cloud Map services, by the names it exports.
    cloud_map = {
        spec.name: CloudMapService(namespace_name=discovery.private_namespace_name,
                                   service_name=cloud_map_name(spec.name))
        for spec in args.services
    }
    mesh = AppMesh("mesh", args, cloud_map, opts=layer.opts)
    layer.export(
        provider=args.provider, mesh_name=mesh.mesh.name, service_connect_namespace_arn=None,
        services=mesh.contract_services,
    )
else:
    # Service Connect uses the HTTP namespace (the namespace type does not matter to it, and ECS then
    # owns the Cloud Map services it creates there without colliding with the DNS namespace's).
    wiring = ServiceConnectWiring("mesh", args, discovery.http_namespace_arn, opts=layer.opts)
    layer.export(
        provider=args.provider, mesh_name=None, service_connect_namespace_arn=wiring.namespace_arn,
        services=wiring.services,
    )
