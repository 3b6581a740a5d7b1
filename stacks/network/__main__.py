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
last = layer.last_outputs()
# Before any resource: an AZ dropped while the later layers still use its subnets (not retired first) is refused
# (exit 2) here too, for a `pulumi up` run in this folder without the orchestrator's own check.
refusal = serving_drop_refusal(layer.env, last)
if refusal is not None:
    raise refusal
# The ports the last `up` admitted for the catalog of then stay one more `up`: compute, which runs last, moves the
# tasks off them in this one (shared.port_retirement).
args = VpcNetworkArgs.from_env(layer.env, load_catalog(), last)
if last is None:  # a preview that cannot read the stack: the rules it shows may narrow what the `up` keeps
    pulumi.log.warn("the ports the last `up` admitted could not be read: this preview drops at once a called "
                    "service's port the catalog moved, which the `up` keeps one more `up` (shared.port_retirement)")
network = VpcNetwork("network", args, opts=layer.opts)

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
    called_service_ports=args.service_ports,
    retiring_service_ports=args.retiring_service_ports,
)
