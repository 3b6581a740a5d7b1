"""network layer: the VPC every other layer lives in."""

import sys
from pathlib import Path

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pulumi

from shared.catalog import load_catalog
from shared.components.network import VpcNetwork, VpcNetworkArgs
from shared.layer import Layer
from shared.zone_retirement import serving_drop_refusal

layer = Layer("network")
# Before any resource: an AZ dropped while the later layers still use its subnets (not retired first) is refused
# (exit 2) here too, for a `pulumi up` run in this folder without the orchestrator's own check.
refusal = serving_drop_refusal(layer.env, layer.last_outputs())
if refusal is not None:
    raise refusal
network = VpcNetwork("network", VpcNetworkArgs.from_env(layer.env, load_catalog()), opts=layer.opts)

layer.export(
    vpc_id=network.vpc.id,
    vpc_cidr=network.vpc.cidr_block,
    availability_zones=layer.env.serving_availability_zones,
    retiring_availability_zones=list(layer.env.network.retiring_availability_zones),
    public_subnet_ids=pulumi.Output.all(*[subnet.id for subnet in network.serving_public_subnets]),
    private_subnet_ids=pulumi.Output.all(*[subnet.id for subnet in network.serving_private_subnets]),
    service_security_group_id=network.service_security_group.id,
    deploy_runner_security_group_id=network.deploy_runner_security_group.id,
    broker_rotation_security_group_id=network.broker_rotation_security_group.id,
    queue_metrics_security_group_id=network.queue_metrics_security_group.id,
)
