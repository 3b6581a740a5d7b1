"""Dropping an availability zone takes two `up`\\ s; before the second, the orchestrator checks the first happened.

EC2 deletes a subnet only once no network interface is left in it (botocore ec2 ``DeleteSubnet``: "You must
terminate all running instances in the subnet before you can delete the subnet"; it answers ``DependencyViolation``,
which the provider retries until the subnet's 45-minute delete timeout). The layers that hold interfaces there run
after network: compute (the ECS tasks, a public gateway's load balancer), broker (the deploy runner's builds, the
admin rotation function) and messaging (the queue metrics function). A lower ``network.az_count`` in one `up` would
have network wait on subnets those layers only leave later in the same run, and fail. So an env drops an AZ in two:

1. ``network.retiring_availability_zones`` names it (the last of the env's AZs): network keeps its subnets but exports
   only the others, so the later layers of that `up` move off (ECS replaces the tasks, Lambda and CodeBuild leave the
   subnets, the load balancer's subnets shrink), and each records the subnets it is left in (``subnet_ids``);
2. a lower ``network.az_count``, with the AZ off that list, deletes the subnets.

:func:`zone_drop_refusals` refuses step 2 before any layer runs where step 1 was skipped, or did not reach a layer
(a ``--layers network`` run, a layer that failed). Standard library and the env schema only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.deployed import refuse_while_deployed
from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError

RETIRING_KEY = "network.retiring_availability_zones"
#: the layers whose resources have network interfaces in the network's subnets; each exports those subnets as
#: :data:`SUBNET_OUTPUT` (their contracts declare it: tests/test_zone_retirement.py)
HOLDING_LAYERS = ("broker", "messaging", "compute")
SUBNET_OUTPUT = "subnet_ids"

Outputs = Mapping[str, Any] | None


def _listed(zones: list[str]) -> str:
    return ", ".join(zones)


def serving_drop_refusal(env: EnvConfig, network: Outputs) -> ConfigError | None:
    """Why the env must not drop the AZs the network stack (its deployed ``network`` outputs) still serves: the later
    layers are in their subnets (None: it drops none). The network program checks it too, against its own last
    outputs, for a `pulumi up` run in stacks/network without the orchestrator."""
    if not network:
        return None
    kept = set(env.availability_zones)
    serving = [zone for zone in network.get("availability_zones") or [] if zone not in kept]
    if not serving:
        return None
    them = "them" if len(serving) > 1 else "it"
    return ConfigError(str(env_path(env.name)), changed_zone_key(env), (
        f"drops {_listed(serving)}, whose subnets the later layers still use (compute's tasks and load balancer, "
        "the deploy runner and the Lambda functions): the network layer would delete them before those layers "
        "move off, and EC2 refuses to delete a subnet while a network interface is left in it "
        f"(DependencyViolation, after a 45-minute wait). Retire {them} first: keep the AZs, list "
        f"{_listed(serving)} in {RETIRING_KEY} and run `up` (every layer); then drop {them} and clear that list in "
        "a second `up`. Nothing was run"))


def changed_zone_key(env: EnvConfig) -> str:
    """The env key whose change drops an AZ."""
    return "network.availability_zones" if env.network.availability_zones is not None else "network.az_count"


def zone_drop_refusals(env: EnvConfig, read: Callable[[str], Outputs]) -> list[ConfigError]:
    """Why the env's `up` must not delete the subnets of the AZs it drops (the deployed network's AZs it no longer
    lists): an AZ the network stack still served at its last `up` (not retired first: :func:`serving_drop_refusal`),
    or a later layer whose last `up` left it in a subnet the network no longer offers. ``read(layer)``: that layer's
    deployed outputs (None: no stack). [] where nothing is dropped, or no network is deployed."""
    network = read("network")
    if not network:
        return []
    refusal = serving_drop_refusal(env, network)
    if refusal is not None:
        return [refusal]
    file, key = str(env_path(env.name)), changed_zone_key(env)
    retired = [zone for zone in network.get("retiring_availability_zones") or [] if zone not in env.availability_zones]
    if not retired:
        return []
    offered = {*(network.get("private_subnet_ids") or []), *(network.get("public_subnet_ids") or [])}
    refusals = []
    for layer in HOLDING_LAYERS:
        outputs = read(layer)
        if not outputs:
            continue  # no stack: nothing of it in any subnet
        used = outputs.get(SUBNET_OUTPUT)
        if used is None:
            reason = "its last `up` predates the record of the subnets it uses, so it may still use any"
        else:
            left = sorted(subnet for subnet in used if subnet not in offered)
            if not left:
                continue
            reason = f"its last `up` left it in {_listed(left)}, which {_listed(retired)} retired"
        refusals.append(ConfigError(file, key, (
            f"drops {_listed(retired)}, but the {layer} layer has not moved off since the AZ retired ({reason}): the "
            f"network layer would wait on its network interfaces and fail. Run `up` of every layer once more with "
            f"{_listed(retired)} still in {RETIRING_KEY} (or `--layers {layer}`), then this one. Nothing was run")))
    return refusals


#: the layers after network with resources in its VPC: the holders of network interfaces, and discovery, whose
#: private DNS namespace is associated with the VPC (replaced with it)
VPC_LAYERS = ("discovery", *HOLDING_LAYERS)


def cidr_change_refusals(env: EnvConfig, read: Callable[[str], Outputs]) -> list[ConfigError]:
    """Why the env's `up` must not move its VPC to another ``network.cidr`` while later layers are deployed in it.

    A new CIDR replaces the VPC (``CreateVpc``'s ``CidrBlock``; no API changes a VPC's primary block) and with it
    every subnet and security group. Pulumi deletes the replaced ones at the end of the network layer's own `up`,
    before the later layers leave them: EC2 refuses to delete a subnet or group that network interfaces still use
    (``DependencyViolation``, retried until the subnet's 45-minute timeout), so network fails, the later layers are
    skipped, and each later `up` fails the same way. ``read(layer)``: the layer's deployed outputs (None: no stack).
    """
    network = read("network")
    deployed = (network or {}).get("vpc_cidr")
    if not deployed or str(deployed) == str(env.network.cidr):
        return []
    return refuse_while_deployed(env, "network.cidr", VPC_LAYERS, read, lambda them: (
        f"is {env.network.cidr}, but the network was deployed with {deployed}: a new CIDR replaces the VPC, its "
        f"subnets and security groups, and the network layer would delete the old ones while {them} still use them "
        f"(DependencyViolation, after 45 minutes), failing this up and every later one. It is in effect a new env: "
        f"put {deployed} back, or destroy {them} first (`nox -s destroy -- {env.name} --layers ...`, as README \"Where "
        "a destroy runs\" says; their data goes with them), then up. Nothing was run"))
