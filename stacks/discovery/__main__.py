"""discovery layer: Cloud Map namespaces and one Cloud Map service per platform service."""

import sys
from pathlib import Path

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.catalog import load_catalog
from shared.components.discovery import ServiceDiscovery, ServiceDiscoveryArgs
from shared.contracts import NetworkOutputs
from shared.layer import Layer

layer = Layer("discovery")
network = layer.upstream("network").contract(NetworkOutputs)
discovery = ServiceDiscovery(
    "discovery", ServiceDiscoveryArgs.from_env(layer.env, load_catalog()), vpc_id=network.vpc_id, opts=layer.opts,
)

layer.export(
    private_namespace_id=discovery.private_namespace.id,
    private_namespace_arn=discovery.private_namespace.arn,
    private_namespace_name=discovery.private_namespace.name,
    http_namespace_id=discovery.http_namespace.id,
    http_namespace_arn=discovery.http_namespace.arn,
    http_namespace_name=discovery.http_namespace.name,
    services=discovery.contract_services(),
)
