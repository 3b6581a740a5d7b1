"""Typed contracts between layers: what each layer exports, and the only way to read it.

A producer exports exactly its contract (:func:`export_contract`): a missing or extra output is a
:class:`~shared.errors.ContractError` at synth time, and the values are checked against the model
once they resolve. A consumer reads upstream outputs only through :class:`Upstream`, which refuses
(at synth time, before any deployment) a name the upstream's contract does not declare, and uses
``StackReference.require_output`` underneath, so a missing value also fails loudly.
"""

from __future__ import annotations

import typing
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.dag import LAYER_UPSTREAMS
from shared.errors import ContractError


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkContract(Contract):
    vpc_id: str
    vpc_cidr: str
    availability_zones: list[str]
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]
    service_security_group_id: str
    #: the deploy runner's group (its CodeBuild project is the broker layer's); the interface endpoints
    #: and the broker's management API admit it
    deploy_runner_security_group_id: str


class DiscoveryService(Contract):
    id: str
    arn: str
    name: str


class DiscoveryContract(Contract):
    private_namespace_id: str
    private_namespace_arn: str
    private_namespace_name: str
    http_namespace_id: str
    http_namespace_arn: str
    http_namespace_name: str
    services: dict[str, DiscoveryService]


class MeshVersion(Contract):
    """One version of a canaried service (App Mesh only): its own virtual node and traffic weight.

    Compute runs one ECS service per version; the node selects that version's tasks in the shared
    Cloud Map service by ``cloud_map_attributes`` (attributes ECS registers itself).
    """

    virtual_node_name: str
    weight: int
    cloud_map_attributes: dict[str, str]


class MeshService(Contract):
    """What compute needs to wire one service into the mesh, whatever the provider.

    ``virtual_node_name`` is None with Service Connect, and for a canaried App Mesh service (whose
    nodes are per version, in ``versions``; ``virtual_router_name`` then names its router).
    """

    port_name: str
    discovery_name: str
    client_alias_dns: str
    client_alias_port: int
    virtual_node_name: str | None = None
    virtual_service_name: str | None = None
    virtual_router_name: str | None = None
    versions: dict[str, MeshVersion] = {}


class MeshContract(Contract):
    """One contract whatever the provider: ``mesh_name`` is set with App Mesh only,
    ``service_connect_namespace_arn`` with Service Connect only.

    Pulumi drops a stack output whose value is None, so the unset one is absent from the stack
    (:class:`Upstream` reads such a nullable field as None).
    """

    provider: str
    mesh_name: str | None = None
    service_connect_namespace_arn: str | None = None
    services: dict[str, MeshService]


class BrokerContract(Contract):
    """Where the env's RabbitMQ broker is and how the platform administers it, whatever its mode.

    ``amazon-mq``: the broker this layer created; ``external``: the endpoints of the env file, so the
    messaging layer reads one shape either way. The AWS-only fields are None (absent) for ``external``.
    ``admin_secret_arn`` names the Secrets Manager secret holding the admin credential (JSON
    ``username``/``password``), the one source of it after the broker exists (it is rotated there).
    """

    broker_mode: str
    amqps_endpoint: str
    #: the broker's own management API URL (answers inside the VPC only for amazon-mq)
    management_endpoint: str
    admin_username: str | None = None
    admin_secret_arn: str | None = None
    broker_id: str | None = None
    broker_arn: str | None = None
    #: the Broker dimension of its AWS/AmazonMQ metrics (the queue alarms of messaging use it)
    broker_name: str | None = None
    broker_security_group_id: str | None = None
    broker_log_group_name: str | None = None
    #: the in-VPC deploy runner (CodeBuild) and its security group, which the broker admits on 443
    deploy_runner_project_name: str
    deploy_runner_security_group_id: str
    #: the env's SNS topic for alarm notifications (created here: the first layer with alarms)
    alarm_topic_arn: str


class MessagingContract(Contract):
    broker_mode: str
    amqps_endpoint: str
    vhost: str
    requests_exchange: str
    events_exchange: str
    dead_letter_exchange: str
    queues: dict[str, str]
    service_secret_arns: dict[str, str]


class ComputeVersion(Contract):
    """The ECS service of one canary version of an App Mesh service."""

    ecs_service_name: str
    ecs_service_arn: str


class ComputeService(Contract):
    ecs_service_name: str
    ecs_service_arn: str
    repository_url: str
    image: str
    #: None (absent from the stack: the engine drops null outputs) when the release names a tag
    image_digest: str | None = None
    #: App Mesh canaries: version -> its own ECS service (the top-level one is the first version's)
    versions: dict[str, ComputeVersion] = {}


class ComputeContract(Contract):
    cluster_name: str
    cluster_arn: str
    #: deployed services only: a catalog service without an image in the env's release has no ECS service yet
    services: dict[str, ComputeService]
    #: every catalog service's ECR repository, released or not (CI pushes the first image there)
    repository_urls: dict[str, str]


CONTRACTS: dict[str, type[Contract]] = {
    "network": NetworkContract,
    "discovery": DiscoveryContract,
    "mesh": MeshContract,
    "broker": BrokerContract,
    "messaging": MessagingContract,
    "compute": ComputeContract,
}
assert set(CONTRACTS) == set(LAYER_UPSTREAMS), "every layer of the DAG declares a contract"


def contract_fields(layer: str) -> list[str]:
    return list(CONTRACTS[layer].model_fields)


def export_contract(layer: str, **values: Any) -> None:
    """Export exactly ``layer``'s contract as stack outputs."""
    model = CONTRACTS[layer]
    declared = set(model.model_fields)
    missing = sorted(declared - set(values))
    extra = sorted(set(values) - declared)
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"not declared {', '.join(extra)}")
        raise ContractError(f"layer {layer!r} must export exactly {model.__name__}: {'; '.join(problems)}")

    def check(resolved: dict[str, Any]) -> None:
        try:
            model.model_validate(resolved)
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ContractError(f"layer {layer!r} exports {key} that breaks {model.__name__}: {first['msg']}") from None

    pulumi.Output.all(**values).apply(check)
    for name in model.model_fields:
        pulumi.export(name, values[name])


def stack_reference_name(org: str, layer: str, env: str) -> str:
    return f"{org}/{layer}/{env}"


class Upstream:
    """A typed view of one upstream layer's stack outputs."""

    def __init__(self, consumer: str, layer: str, org: str, env: str) -> None:
        if layer not in LAYER_UPSTREAMS.get(consumer, ()):
            raise ContractError(
                f"layer {consumer!r} reads {layer!r}, but the DAG (shared/dag.py) says {consumer} reads only "
                f"{', '.join(LAYER_UPSTREAMS.get(consumer, ())) or 'nothing'}"
            )
        self.consumer = consumer
        self.layer = layer
        self.contract = CONTRACTS[layer]
        self.reference = pulumi.StackReference(stack_reference_name(org, layer, env))

    def __getitem__(self, name: str) -> pulumi.Output[Any]:
        if name not in self.contract.model_fields:
            raise ContractError(
                f"layer {self.consumer!r} reads {name!r} from {self.layer!r}, which its contract "
                f"{self.contract.__name__} does not declare (declared: {', '.join(self.contract.model_fields)})"
            )
        if _nullable(self.contract, name):
            # A null stack output is dropped by the engine (it is absent, not null, downstream), so a
            # field the contract declares optional reads as None when absent instead of failing.
            return self.reference.get_output(name)
        return self.reference.require_output(name)


def _nullable(model: type[Contract], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return type(None) in typing.get_args(annotation)


def read_upstreams(consumer: str, org: str, env: str) -> dict[str, Upstream]:
    """Every upstream layer ``consumer`` reads, per the DAG."""
    return {layer: Upstream(consumer, layer, org, env) for layer in LAYER_UPSTREAMS[consumer]}
