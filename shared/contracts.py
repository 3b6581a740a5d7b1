"""Typed contracts between layers: what each layer exports, and the only way to read it.

A producer exports exactly its contract (:func:`export_contract`): a missing or extra output is a
:class:`~shared.errors.ContractError` at synth time, and the values are checked against the model
once they resolve. A consumer reads upstream outputs only through :class:`Upstream`, which refuses
(at synth time, before any deployment) a name the upstream's contract does not declare, and reads the
StackReference's outputs map itself, so a value the upstream stack lacks fails naming the stack and the layer to
deploy first (a :class:`StackContractError`).
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar, TypeVar

import pulumi
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from shared.dag import LAYER_UPSTREAMS
from shared.errors import ContractError


class StackContractError(ContractError, pulumi.RunError):
    """A contract broken by what a stack holds, met while the program runs (in an ``apply``): a value that breaks the
    model, a field the upstream stack lacks. A ``pulumi.RunError``, which the Python language host logs as one
    ``error: <message>`` line (pulumi-language-python-exec: ``except pulumi.RunError as e: pulumi.log.error(str(e))``)
    where any other exception is "Program failed with an unhandled exception:" and a traceback, the only ``error:``
    line the orchestrator's table would then show."""


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkContract(Contract):
    vpc_id: str
    vpc_cidr: str
    #: the AZs later layers place things in, one private and one public subnet each (in the lists below)
    availability_zones: list[str]
    #: AZs whose subnets still exist but serve no layer (``network.retiring_availability_zones``): the
    #: orchestrator lets a later `up` delete them only once they are here; absent from a stack deployed before
    retiring_availability_zones: list[str] | None = None
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]
    service_security_group_id: str
    #: the deploy runner's group (its CodeBuild project is the broker layer's); the interface endpoints
    #: and the broker's management API admit it
    deploy_runner_security_group_id: str
    #: the broker admin rotation function's group (its Lambda function is the broker layer's); None where
    #: the admin does not rotate (an external broker, or no messaging.credentials_rotation)
    broker_rotation_security_group_id: str | None = None
    #: the queue metrics publisher's group (its Lambda function is the messaging layer's); None (absent) from a
    #: network stack last deployed before this field existed
    queue_metrics_security_group_id: str | None = None
    #: called service -> the port the tasks' group admits for it; ``retiring_service_ports``: service -> a port it
    #: still admitted only for the tasks of the catalog before, which its next `up` drops once compute moved off
    #: (shared.port_retirement). None (absent): a stack deployed before these fields
    called_service_ports: dict[str, int] | None = None
    retiring_service_ports: dict[str, int] | None = None


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
    #: what the amazon-mq broker was last asked to run (None: external, or a stack deployed before these fields); the
    #: next `up` checks a change of them against it (shared.broker_upgrade)
    engine_version: str | None = None
    instance_type: str | None = None
    #: a new one is a new broker, to which no upgrade path applies (None: external, or deployed before this field)
    deployment_mode: str | None = None
    #: the in-VPC deploy runner (CodeBuild) and its security group, which the broker admits on 443
    deploy_runner_project_name: str
    deploy_runner_security_group_id: str
    #: the env's SNS topic for alarm notifications (created here: the first layer with alarms)
    alarm_topic_arn: str
    #: the network's subnets this layer's last `up` placed network interfaces in; the orchestrator lets the network
    #: layer delete a retiring AZ's subnets only once none of them is here (shared.zone_retirement). None (absent): a
    #: stack deployed before this field
    subnet_ids: list[str] | None = None


class MessagingContract(Contract):
    broker_mode: str
    amqps_endpoint: str
    vhost: str
    requests_exchange: str
    events_exchange: str
    dead_letter_exchange: str
    queues: dict[str, str]
    service_secret_arns: dict[str, str]
    #: service -> version id of its secret's current value (ECS valueFrom pins it, so a rotation rolls the
    #: tasks); None (absent) from a messaging stack last deployed before this field existed
    service_secret_versions: dict[str, str] | None = None
    #: the rotation epoch (YYYY-MM-DD) whose users the secrets name; None (absent): the unsuffixed users (no
    #: rotation, or a stack deployed before this field existed). The layer reads its own last value to refuse a
    #: rotation that would delete the users running tasks hold (shared.rotation_continuity)
    credentials_epoch: str | None = None
    #: the epochs whose users it keeps ("" the unsuffixed users): a later `up` that deletes one while compute's tasks
    #: still hold it is refused (shared.rotation_continuity.rollout_refusal). None (absent): a stack deployed before
    #: this field
    credentials_kept_epochs: list[str] | None = None
    #: the network's subnets this layer's last `up` placed network interfaces in; the orchestrator lets the network
    #: layer delete a retiring AZ's subnets only once none of them is here (shared.zone_retirement). None (absent): a
    #: stack deployed before this field
    subnet_ids: list[str] | None = None
    #: service -> exchange (``requests``, ``events``) -> the routing keys its users may publish; the orchestrator
    #: refuses an `up` that narrows them under a service compute runs unless its image is confirmed ready
    #: (shared.image_readiness). None (absent): a stack deployed before this field
    publish_grants: dict[str, dict[str, list[str]]] | None = None


class ComputeVersion(Contract):
    """The ECS service of one canary version of an App Mesh service."""

    ecs_service_name: str
    ecs_service_arn: str
    #: the task definition compute's last up applied to it; None: a stack deployed before this field
    task_definition_arn: str | None = None


class ComputeService(Contract):
    ecs_service_name: str
    ecs_service_arn: str
    #: the task definition compute's last up applied to it (the first version's of a canaried service); None: a stack
    #: deployed before this field
    task_definition_arn: str | None = None
    repository_url: str
    image: str
    #: None (absent from the stack: the engine drops null outputs) when the release names a tag
    image_digest: str | None = None
    #: App Mesh canaries: version -> its own ECS service (the top-level one is the first version's)
    versions: dict[str, ComputeVersion] = {}
    #: the work queue its task definition names (AMQP_QUEUE), "" none; with ``amqp_credentials`` (its task definition
    #: reads the broker credentials secret), what an ``up`` must not let messaging delete before compute rolls the
    #: tasks off it (shared.service_removal.check_consumers). None (absent): a stack deployed before these fields
    amqp_queue: str | None = None
    amqp_credentials: bool | None = None
    #: the version of its messaging secret the running tasks were given ("" none pinned); where ECS rolled the
    #: service back, the last record's ("unknown" without one). A rotation that would delete the users of an older
    #: version is refused (shared.rotation_continuity.rollout_refusal). None (absent): a stack deployed before this
    #: field
    amqp_secret_version: str | None = None
    #: its scale-in removes an idle task while others hold jobs (catalog ``protects_jobs``, where its queue alone
    #: scales it: shared.envs.scales_in_while_working); turning that on under a running image is refused unless the
    #: image is confirmed ready (shared.image_readiness). None (absent): a stack deployed before this field
    scales_in_while_working: bool | None = None
    #: the catalog's ``calls`` and ``artifacts`` ("" none) its task definition and task role were given; a catalog
    #: change narrowing them is refused unless its image is confirmed ready (shared.image_readiness). None (absent): a
    #: stack deployed before these fields
    calls: list[str] | None = None
    artifacts: str | None = None


class ComputeContract(Contract):
    cluster_name: str
    cluster_arn: str
    #: deployed services only: a catalog service without an image in the env's release has no ECS service yet
    services: dict[str, ComputeService]
    #: every catalog service's ECR repository, released or not (CI pushes the first image there)
    repository_urls: dict[str, str]
    #: the services the artifact bucket has a handoff lifecycle rule for, former writers included: compute's next
    #: `up` keeps their rules (shared.components.artifacts.former_writers). None: a stack deployed before this field
    handoff_writers: list[str] | None = None
    #: the network's subnets this layer's last `up` placed network interfaces in; the orchestrator lets the network
    #: layer delete a retiring AZ's subnets only once none of them is here (shared.zone_retirement). None (absent): a
    #: stack deployed before this field
    subnet_ids: list[str] | None = None
    #: called service -> the port this layer's last `up` wired its tasks to call it on; the orchestrator lets the
    #: network layer stop admitting a port only once it is not here (shared.port_retirement). None (absent): a stack
    #: deployed before this field
    called_service_ports: dict[str, int] | None = None


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
            raise StackContractError(
                f"layer {layer!r} exports {key} that breaks {model.__name__}: {first['msg']}") from None

    pulumi.Output.all(**values).apply(check)
    for name in model.model_fields:
        pulumi.export(name, values[name])


def stack_reference_name(org: str, layer: str, env: str) -> str:
    return f"{org}/{layer}/{env}"


def own_last_outputs(layer: str, org: str, env: str) -> dict[str, Any] | None:
    """The outputs ``layer``'s own stack for ``env`` had after its last deployment, read before the program
    registers anything else (a reference to the stack itself: the engine reads the root resource's outputs of
    the stack's latest snapshot, which keep their old values until the program ends; an empty map for a stack
    never deployed). Blocks until read, so a check on them runs before any resource of the layer is registered.
    None when they are unknown (a preview that cannot read them)."""
    from pulumi.runtime.sync_await import _sync_await  # what the SDK's own synchronous invokes block on

    reference = pulumi.StackReference(stack_reference_name(org, layer, env))
    outputs: dict[str, Any] | None = _sync_await(reference.outputs.future())
    return outputs


C = TypeVar("C", bound=Contract)
V = TypeVar("V", bound="ContractOutputs")
T = TypeVar("T")


def required(value: T | None, field: str, reason: str) -> T:
    """``value`` of an optional contract field that the consumer's case needs: None fails naming it."""
    if value is None:
        raise StackContractError(f"{field} is not set, but {reason}")
    return value


def check_reads(consumer: str, layer: str) -> None:
    """Refuse ``consumer`` reading ``layer`` where the DAG says it does not."""
    if layer not in LAYER_UPSTREAMS.get(consumer, ()):
        raise ContractError(
            f"layer {consumer!r} reads {layer!r}, but the DAG (shared/dag.py) says {consumer} reads only "
            f"{', '.join(LAYER_UPSTREAMS.get(consumer, ())) or 'nothing'}"
        )


class Upstream:
    """One upstream layer's stack outputs, read through its contract.

    ``contract(NetworkOutputs)`` is the typed view consumers use: each field a ``pulumi.Output`` of the
    contract's type (nested entries as contract models), so ``network.vpc_id`` is checked by mypy.
    ``resolved(MeshContract)`` is the whole contract as one validated model, for code that reads
    several fields together. ``upstream["name"]`` is the raw, untyped output.
    """

    def __init__(self, consumer: str, layer: str, org: str, env: str) -> None:
        check_reads(consumer, layer)
        self.consumer = consumer
        self.layer = layer
        self.env = env
        self.model = CONTRACTS[layer]
        self.stack = stack_reference_name(org, layer, env)
        self.reference = pulumi.StackReference(self.stack)

    def check_declared(self, name: str) -> None:
        if name not in self.model.model_fields:
            raise ContractError(
                f"layer {self.consumer!r} reads {name!r} from {self.layer!r}, which its contract "
                f"{self.model.__name__} does not declare (declared: {', '.join(self.model.model_fields)})"
            )

    def __getitem__(self, name: str) -> pulumi.Output[Any]:
        self.check_declared(name)
        nullable = _nullable(self.model, name)

        def pick(outputs: dict[str, Any]) -> Any:
            # A null stack output is dropped by the engine (it is absent, not null, downstream), so a
            # field the contract declares optional reads as None when absent instead of failing.
            if name in outputs or nullable:
                return outputs.get(name)
            raise StackContractError(self._missing(name, outputs))

        # What the SDK's require_output does, but a missing output names the stack and the layer to deploy where
        # the SDK raises a bare KeyError (pulumi/stack_reference.py: `l[1][l[0]]`); the secretness is the SDK's own
        # per-name answer (secret_output_names), not that of the whole outputs map.
        value = self.reference.outputs.apply(pick)
        return pulumi.Output(value.resources(), value.future(), value.is_known(),
                             self.reference.get_output(name).is_secret())

    def _missing(self, name: str, outputs: dict[str, Any]) -> str:
        # the stack and the command first: the orchestrator's table keeps the first 300 characters of a failed layer's
        deploy = f"deploy {self.layer} first (`nox -s up -- {self.env} --layers {self.layer}`)"
        if not outputs:
            return (f"layer {self.consumer!r} reads {self.layer}.{name}, but stack {self.stack} has no outputs: "
                    f"{deploy}. {self.layer} was never deployed to {self.env} (or was destroyed); a preview reads "
                    f"what the upstream layers have deployed, not what their previews plan")
        return (f"layer {self.consumer!r} reads {self.layer}.{name}, which stack {self.stack} does not export: "
                f"{deploy}. It was last deployed by a release whose {self.model.__name__} has no such field (an older "
                f"one, or a newer one that removed or renamed it); a preview or `--exact` run reads what {self.layer} "
                f"has deployed, not what its preview plans")


    def field(self, name: str) -> pulumi.Output[Any]:
        """Output ``name``, its value checked against (and parsed into) the contract's field type."""
        self.check_declared(name)  # before model_fields[name]: an undeclared name is a ContractError, not a KeyError
        adapter: TypeAdapter[Any] = TypeAdapter(self.model.model_fields[name].annotation)
        return self[name].apply(lambda value: self._parse(name, lambda: adapter.validate_python(value)))

    def contract(self, view: type[V]) -> V:
        """The typed view ``view`` (e.g. :class:`NetworkOutputs`) of this upstream's contract."""
        self._expect(view.model)
        return view(self)

    def resolved(self, model: type[C]) -> pulumi.Output[C]:
        """The whole contract as one validated ``model`` instance (every field read)."""
        self._expect(model)
        values = {name: self[name] for name in model.model_fields}
        return pulumi.Output.all(**values).apply(
            lambda resolved: self._parse("", lambda: model.model_validate(resolved)))

    def _expect(self, model: type[Contract]) -> None:
        if model is not self.model:
            raise ContractError(f"layer {self.consumer!r} reads {self.layer!r} as {model.__name__}, but its "
                                f"contract is {self.model.__name__}")

    def _parse(self, field: str, parse: typing.Callable[[], Any]) -> Any:
        try:
            return parse()
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(p) for p in (field, *first["loc"]) if p != "")
            raise StackContractError(f"layer {self.consumer!r} reads {self.layer}.{key}, which breaks "
                                     f"{self.model.__name__}: {first['msg']} (re-run the {self.layer} layer)") from None


class ContractOutputs:
    """A consumer's typed view of one contract: one ``pulumi.Output`` attribute per contract field,
    typed ``pulumi.Output[<the field's type>]``. The class body declares the fields; the check at the
    end of this module refuses a view whose fields differ from its contract model's."""

    model: ClassVar[type[Contract]]

    def __init__(self, upstream: Upstream) -> None:
        for name in self.model.model_fields:
            setattr(self, name, upstream.field(name))

    @classmethod
    def of(cls: type[V], contract: Contract) -> V:
        """The view of known contract values (a component run alone, without a StackReference)."""
        if type(contract) is not cls.model:
            raise ContractError(f"{cls.__name__} views {cls.model.__name__}, not {type(contract).__name__}")
        view = cls.__new__(cls)
        for name in cls.model.model_fields:
            setattr(view, name, pulumi.Output.from_input(getattr(contract, name)))
        return view


class NetworkOutputs(ContractOutputs):
    model = NetworkContract
    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    availability_zones: pulumi.Output[list[str]]
    retiring_availability_zones: pulumi.Output[list[str] | None]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    service_security_group_id: pulumi.Output[str]
    deploy_runner_security_group_id: pulumi.Output[str]
    broker_rotation_security_group_id: pulumi.Output[str | None]
    queue_metrics_security_group_id: pulumi.Output[str | None]
    called_service_ports: pulumi.Output[dict[str, int] | None]
    retiring_service_ports: pulumi.Output[dict[str, int] | None]


class DiscoveryOutputs(ContractOutputs):
    model = DiscoveryContract
    private_namespace_id: pulumi.Output[str]
    private_namespace_arn: pulumi.Output[str]
    private_namespace_name: pulumi.Output[str]
    http_namespace_id: pulumi.Output[str]
    http_namespace_arn: pulumi.Output[str]
    http_namespace_name: pulumi.Output[str]
    services: pulumi.Output[dict[str, DiscoveryService]]


class MeshOutputs(ContractOutputs):
    model = MeshContract
    provider: pulumi.Output[str]
    mesh_name: pulumi.Output[str | None]
    service_connect_namespace_arn: pulumi.Output[str | None]
    services: pulumi.Output[dict[str, MeshService]]


class BrokerOutputs(ContractOutputs):
    model = BrokerContract
    broker_mode: pulumi.Output[str]
    amqps_endpoint: pulumi.Output[str]
    management_endpoint: pulumi.Output[str]
    admin_username: pulumi.Output[str | None]
    admin_secret_arn: pulumi.Output[str | None]
    broker_id: pulumi.Output[str | None]
    broker_arn: pulumi.Output[str | None]
    broker_name: pulumi.Output[str | None]
    broker_security_group_id: pulumi.Output[str | None]
    broker_log_group_name: pulumi.Output[str | None]
    engine_version: pulumi.Output[str | None]
    instance_type: pulumi.Output[str | None]
    deployment_mode: pulumi.Output[str | None]
    deploy_runner_project_name: pulumi.Output[str]
    deploy_runner_security_group_id: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str] | None]


class MessagingOutputs(ContractOutputs):
    model = MessagingContract
    broker_mode: pulumi.Output[str]
    amqps_endpoint: pulumi.Output[str]
    vhost: pulumi.Output[str]
    requests_exchange: pulumi.Output[str]
    events_exchange: pulumi.Output[str]
    dead_letter_exchange: pulumi.Output[str]
    queues: pulumi.Output[dict[str, str]]
    service_secret_arns: pulumi.Output[dict[str, str]]
    service_secret_versions: pulumi.Output[dict[str, str] | None]
    credentials_epoch: pulumi.Output[str | None]
    credentials_kept_epochs: pulumi.Output[list[str] | None]
    subnet_ids: pulumi.Output[list[str] | None]
    publish_grants: pulumi.Output[dict[str, dict[str, list[str]]] | None]


class ComputeOutputs(ContractOutputs):
    model = ComputeContract
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    services: pulumi.Output[dict[str, ComputeService]]
    repository_urls: pulumi.Output[dict[str, str]]
    handoff_writers: pulumi.Output[list[str] | None]
    subnet_ids: pulumi.Output[list[str] | None]
    called_service_ports: pulumi.Output[dict[str, int] | None]


#: layer -> the typed view its consumers read it through
VIEWS: dict[str, type[ContractOutputs]] = {
    "network": NetworkOutputs, "discovery": DiscoveryOutputs, "mesh": MeshOutputs, "broker": BrokerOutputs,
    "messaging": MessagingOutputs, "compute": ComputeOutputs,
}


def view_mismatches(view: type[ContractOutputs]) -> list[str]:
    """How ``view``'s declared fields differ from its contract model's (empty: they match)."""
    hints = {name: hint for name, hint in typing.get_type_hints(view).items() if name != "model"}
    output: Any = pulumi.Output  # subscripted with runtime annotations, which mypy cannot follow
    wanted = {name: output[field.annotation] for name, field in view.model.model_fields.items()}
    return sorted({*hints, *wanted} - {name for name in hints if hints[name] == wanted.get(name)})


def _check_views() -> None:
    if set(VIEWS) != set(CONTRACTS):
        raise ContractError(f"every contract needs a typed view: {sorted(set(CONTRACTS) ^ set(VIEWS))}")
    for layer, view in VIEWS.items():
        if view.model is not CONTRACTS[layer] or (wrong := view_mismatches(view)):
            raise ContractError(f"{view.__name__} does not mirror {CONTRACTS[layer].__name__}: "
                                f"{', '.join(wrong) if view.model is CONTRACTS[layer] else 'wrong model'}")


def _nullable(model: type[Contract], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return type(None) in typing.get_args(annotation)


def read_upstreams(consumer: str, org: str, env: str) -> dict[str, Upstream]:
    """Every upstream layer ``consumer`` reads, per the DAG."""
    return {layer: Upstream(consumer, layer, org, env) for layer in LAYER_UPSTREAMS[consumer]}


_check_views()
