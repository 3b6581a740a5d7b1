"""How compute reads its upstream contracts: the network, discovery, mesh, messaging and broker values a
service needs (``ComputeUpstreams``), sliced per service, and one service's container wiring resolved
from them (its callees' mesh names, its broker objects, its credentials' secret).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import pulumi

from shared.artifact_names import artifact_prefix, handoff_prefix
from shared.components.compute_containers import (
    ContainerWiring,
    appmesh_virtual_node_arn,
    env_var_name,
    image_reference,
    serve_gate_start_timeout,
)
from shared.components.compute_plan import ComputeSettings, ServicePlan, app_keepalive_seconds, serve_gated
from shared.contracts import (
    Contract,
    DiscoveryContract,
    MeshContract,
    MessagingContract,
    NetworkOutputs,
    StackContractError,
    Upstream,
)

#: env var -> key of the JSON document the messaging layer stores in each service's Secrets Manager
#: secret (see shared.components.messaging.connection_secret). ECS injects each key's value at task
#: start (``valueFrom`` = ``<secret ARN>:<json key>::<version id>``), so no credential is in the task
#: definition.
AMQP_SECRET_KEYS = {"AMQP_URL": "amqps_url", "AMQP_USERNAME": "username", "AMQP_PASSWORD": "password"}


@dataclass(frozen=True)
class ComputeUpstreams:
    """The contracts compute reads: the network's fields one by one, discovery, mesh and messaging as
    whole validated contract models (their per-service entries are read together)."""

    network: NetworkOutputs
    discovery: pulumi.Output[DiscoveryContract]
    mesh: pulumi.Output[MeshContract]
    messaging: pulumi.Output[MessagingContract]
    #: BrokerContract.broker_security_group_id (None with an external broker): the tasks' AMQPS egress
    broker_security_group_id: pulumi.Output[str | None]

    @classmethod
    def from_upstreams(cls, upstreams: dict[str, Upstream]) -> ComputeUpstreams:
        return cls(
            network=upstreams["network"].contract(NetworkOutputs),
            discovery=upstreams["discovery"].resolved(DiscoveryContract),
            mesh=upstreams["mesh"].resolved(MeshContract),
            messaging=upstreams["messaging"].resolved(MessagingContract).apply(warn_if_unversioned),
            broker_security_group_id=upstreams["broker"].field("broker_security_group_id"),
        )

    def for_service(self, service: str, calls: tuple[str, ...]) -> ComputeUpstreams:
        """The values one service's resources read: its own and its callees' entries only."""
        wanted = {service, *calls}
        return dataclasses.replace(
            self,
            discovery=_slice_output(self.discovery, wanted),
            mesh=_slice_output(self.mesh, wanted),
            messaging=_slice_output(self.messaging, wanted),
        )


#: Contract fields keyed by catalog service: a service's slice keeps only its own and its callees' entries.
PER_SERVICE_FIELDS = ("services", "queues", "service_secret_arns", "service_secret_versions")

UNVERSIONED_WARNING = (
    "the messaging stack exports no service_secret_versions (it was last deployed before that output existed): "
    "the tasks read their credentials' current version, and a later password rotation would not roll them. "
    "Run up of messaging first; compute then pins each task to its secret's version.")


def warn_if_unversioned(messaging: MessagingContract) -> MessagingContract:
    """``messaging``, warning once when it comes from a stack older than ``service_secret_versions``.

    Compute then falls back to unpinned ``valueFrom`` (what tasks had before): nothing breaks, and the
    next ``up`` of messaging exports the versions, so no rotation can happen without them."""
    if messaging.service_secret_versions is None:
        pulumi.log.warn(UNVERSIONED_WARNING)
    return messaging


ContractT = TypeVar("ContractT", bound=Contract)
EntryT = TypeVar("EntryT")


def contract_slice(contract: ContractT, services: set[str]) -> ContractT:
    """``contract`` with its per-service maps cut down to ``services``."""
    return contract.model_copy(update={
        key: {name: entry for name, entry in getattr(contract, key).items() if name in services}
        for key in PER_SERVICE_FIELDS
        if key in type(contract).model_fields and getattr(contract, key) is not None})


def _slice_output(value: pulumi.Output[ContractT], services: set[str]) -> pulumi.Output[ContractT]:
    # ``apply`` on the whole contract returns only the slice: passing the whole contract into
    # ``Output.all`` once per service would copy it per service (quadratic in the catalog size).
    return value.apply(lambda contract: contract_slice(contract, services))


def contract_entry(layer: str, entries: Mapping[str, EntryT], key: str, service: str) -> EntryT:
    if service not in entries:
        raise StackContractError(
            f"compute needs {layer}.{key}[{service!r}] for catalog service {service!r}, but the {layer} layer "
            f"exports entries only for: {', '.join(sorted(entries)) or 'none'} (re-run the {layer} layer after "
            "a catalog change)")
    return entries[service]


def check_mesh_provider(settings: ComputeSettings, mesh: MeshContract) -> MeshContract:
    """``mesh`` if it was deployed for the env's provider."""
    if mesh.provider != settings.mesh_provider:
        raise StackContractError(
            f"env {settings.env_name!r} says mesh.provider {settings.mesh_provider!r} but the mesh layer exports "
            f"provider {mesh.provider!r}; deploy the mesh layer before compute")
    if settings.mesh_provider == "appmesh" and not mesh.mesh_name:
        raise StackContractError(
            "the mesh layer exports no mesh_name, which App Mesh tasks need for their virtual node")
    if settings.mesh_provider == "service-connect" and not mesh.service_connect_namespace_arn:
        raise StackContractError("the mesh layer exports no service_connect_namespace_arn, which Service Connect needs")
    return mesh


def virtual_node_arn(settings: ComputeSettings, mesh: MeshContract, service: str, version: str | None = None) -> str:
    """The ARN of the virtual node Envoy serves: the service's node, or one canary version's node."""
    entry = contract_entry("mesh", mesh.services, "services", service)
    if version is not None:
        versions = entry.versions
        if version not in versions:
            raise StackContractError(
                f"env canaries {service!r} version {version!r}, but the mesh layer exports versions "
                f"{', '.join(sorted(versions)) or 'none'} for it; deploy the mesh layer before compute")
        node: str | None = versions[version].virtual_node_name
    else:
        node = entry.virtual_node_name
    if not node:
        raise StackContractError(f"the mesh layer exports no virtual_node_name for {service!r} in an App Mesh env")
    assert mesh.mesh_name is not None, "check_mesh_provider refuses an App Mesh contract without mesh_name"
    return appmesh_virtual_node_arn(settings.partition, settings.region, settings.account_id, mesh.mesh_name, node)


def ecs_service_name(mesh: MeshContract, service: str, version: str | None) -> str:
    """The ECS service's name: the catalog name, or for a canary version the name the mesh layer's
    virtual node selects tasks by (ECS registers it as the ECS_SERVICE_NAME Cloud Map attribute)."""
    if version is None:
        return service
    versions = contract_entry("mesh", mesh.services, "services", service).versions
    attributes = versions[version].cloud_map_attributes if version in versions else {}
    if "ECS_SERVICE_NAME" not in attributes:
        raise StackContractError(f"the mesh layer exports no ECS_SERVICE_NAME attribute for {service!r} version "
                                 f"{version!r}, which its virtual node selects the version's tasks by")
    return str(attributes["ECS_SERVICE_NAME"])


def service_environment(plan: ServicePlan, settings: ComputeSettings, discovery: DiscoveryContract,
                        mesh: MeshContract, messaging: MessagingContract,
                        version: str | None = None) -> dict[str, str]:
    """Plain configuration: where the service's callees and its broker objects are. No credentials."""
    spec = plan.spec
    environment = {
        "SERVICE_NAME": spec.name,
        **({"SERVICE_VERSION": version} if version else {}),
        "PLATFORM_ENV": settings.env_name,
        "PORT": str(spec.port),
        "DISCOVERY_NAMESPACE": discovery.private_namespace_name,
    }
    if spec.public or plan.called:  # a proxy (and a public one's ALB) keeps idle connections to it: it outlasts them
        environment["HTTP_KEEPALIVE_SECONDS"] = str(app_keepalive_seconds(spec.request_timeout_seconds))
    if spec.uses_messaging:  # a service that neither publishes nor consumes has no broker identity
        environment.update({
            "AMQP_ENDPOINT": messaging.amqps_endpoint,
            "AMQP_VHOST": messaging.vhost,
            "AMQP_REQUESTS_EXCHANGE": messaging.requests_exchange,
            "AMQP_EVENTS_EXCHANGE": messaging.events_exchange,
        })
        # Only while the catalog says it consumes: a compute run before messaging's (the order that stops a consumer
        # safely, shared.service_removal) then rolls its tasks off a queue messaging still holds.
        queue = messaging.queues.get(spec.name) if spec.queue else None
        if queue:
            environment["AMQP_QUEUE"] = str(queue)
    if plan.uses_artifact_bucket:
        # Where models and handoffs live (README, "Add a service"): the bucket, for a writer the prefix its grants hold
        # it to, and for a publisher where it puts a payload too large for a message.
        environment["ARTIFACTS_BUCKET"] = settings.artifact_bucket_name
        if spec.artifacts == "write":
            environment["ARTIFACTS_PREFIX"] = artifact_prefix(spec.name)
        if plan.hands_off:
            environment["ARTIFACTS_HANDOFF_PREFIX"] = handoff_prefix(spec.name)
    for callee in spec.calls:
        # Callees are reached by their mesh name (Service Connect client alias or App Mesh virtual
        # service), so traffic goes through the proxy that applies retries, TLS and routing.
        entry = contract_entry("mesh", mesh.services, "services", callee)
        # A StackReference returns numbers as floats; the contract model reads 8082.0 back as the int 8082.
        environment[env_var_name(callee, "URL")] = f"http://{entry.client_alias_dns}:{entry.client_alias_port}"
    return environment


def credential_secrets(secret_arn: str, version_id: str | None) -> dict[str, str]:
    """ECS ``secrets`` entries selecting the JSON keys of one version of the service's messaging secret.

    ``arn:...:secret:<name>:<json-key>:<version-stage>:<version-id>``, the stage empty when the id is
    given (ECS guide, "Pass Secrets Manager secrets through Amazon ECS environment variables"). ECS reads a
    secret only when a task starts, so a running task keeps a rotated password; naming the version makes
    each rotation a new task definition, which the ECS service rolls out. ``version_id`` None (an older
    messaging stack): both fields empty, i.e. AWSCURRENT, unpinned."""
    return {var: f"{secret_arn}:{key}::{version_id or ''}" for var, key in AMQP_SECRET_KEYS.items()}


def callee_endpoints(plan: ServicePlan, settings: ComputeSettings, mesh: MeshContract,
                     running_callees: Mapping[str, int]) -> str | None:
    """The Service Connect endpoints of the callees of ``plan`` that run (``running_callees``: callee -> its request
    timeout), as its tasks resolve them: the value of the app container's CALLEE_ENDPOINTS_LABEL. None in App Mesh
    envs (Envoy learns its backends from App Mesh while it runs) and for a service that calls nobody."""
    if settings.mesh_provider != "service-connect" or not plan.spec.calls:
        return None
    endpoints = {}
    for callee in plan.spec.calls:
        if callee not in running_callees:  # no ECS service yet: nothing to resolve until the up that releases it
            continue
        entry = contract_entry("mesh", mesh.services, "services", callee)
        endpoints[callee] = {"discovery_name": entry.discovery_name,
                             "client_alias": f"{entry.client_alias_dns}:{entry.client_alias_port}",
                             "per_request_timeout_seconds": running_callees[callee]}
    return json.dumps(endpoints, sort_keys=True, separators=(",", ":"))


def service_wiring(plan: ServicePlan, settings: ComputeSettings, *, repository_url: str, log_group: str,
                   discovery: DiscoveryContract, mesh: MeshContract, messaging: MessagingContract,
                   version: str | None = None, running_callees: Mapping[str, int] | None = None) -> ContainerWiring:
    """Resolve one service's (or canary version's) container wiring from the upstream contracts' values."""
    assert plan.release_ref is not None, "only released services get a task definition"
    entry = contract_entry("mesh", mesh.services, "services", plan.name)
    secrets: dict[str, str] = {}
    version_id: str | None = None
    if plan.spec.uses_messaging:  # only then has the messaging layer made it a user and a secret
        secret_arn = contract_entry("messaging", messaging.service_secret_arns, "service_secret_arns", plan.name)
        versions = messaging.service_secret_versions
        version_id = (None if versions is None
                      else contract_entry("messaging", versions, "service_secret_versions", plan.name))
        secrets = credential_secrets(secret_arn, version_id)
    appmesh = settings.mesh_provider == "appmesh"
    start_period, interval, retries = plan.spec.health_check_timing
    gated = serve_gated(plan, settings.mesh_provider)
    return ContainerWiring(
        service=plan.name,
        port=plan.spec.port,
        health_path=plan.spec.health_path,
        image=image_reference(repository_url, plan.release_ref),
        region=settings.region,
        log_group=log_group,
        port_name=entry.port_name,
        environment=service_environment(plan, settings, discovery, mesh, messaging, version),
        secrets=secrets,
        secret_version=version_id or "",
        appmesh_resource_arn=virtual_node_arn(settings, mesh, plan.name, version) if appmesh else None,
        envoy_image=settings.envoy_image,
        stop_timeout=plan.spec.stop_timeout,
        health_start_period=start_period,
        health_interval=interval,
        health_retries=retries,
        callee_endpoints=callee_endpoints(plan, settings, mesh, running_callees or {}),
        serve_gate=gated,
        app_start_timeout=serve_gate_start_timeout(gated, plan.spec.healthy_seconds),
    )

