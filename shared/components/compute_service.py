"""One platform service on ECS Fargate: log group, roles, task definition, service, autoscaling.

The service is wired to the other layers only through their contracts (``ComputeUpstreams``): the
network's private subnets and service SG, the discovery layer's Cloud Map service, the mesh layer's
port name / discovery name / client alias (and virtual node in App Mesh envs), and the messaging
layer's Secrets Manager secret for the service's RabbitMQ credentials.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import pulumi
import pulumi_aws as aws

from shared.catalog import ServiceSpec
from shared.components.compute_containers import (
    ENVOY_CONTAINER,
    ENVOY_IMAGE,
    ENVOY_TMP_VOLUME,
    TMP_VOLUME,
    ContainerWiring,
    amqps_port,
    appmesh_proxy_properties,
    appmesh_virtual_node_arn,
    container_definitions,
    env_var_name,
    image_reference,
)
from shared.components.compute_iam import ecs_tasks_trust_policy, execution_role_policy, task_role_statements
from shared.contracts import (
    Contract,
    DiscoveryContract,
    MeshContract,
    MessagingContract,
    NetworkOutputs,
    Upstream,
)
from shared.envs import is_digest
from shared.errors import ContractError

#: env var -> key of the JSON document the messaging layer stores in each service's Secrets Manager
#: secret (see shared.components.messaging.connection_secret). ECS injects each key's value at task
#: start (``valueFrom`` = ``<secret ARN>:<json key>::``), so no credential is in the task definition.
AMQP_SECRET_KEYS = {"AMQP_URL": "amqps_url", "AMQP_USERNAME": "username", "AMQP_PASSWORD": "password"}
SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60


@dataclass(frozen=True)
class ComputeSettings:
    """Env-wide facts every service of the compute layer shares."""

    env_name: str
    region: str
    account_id: str
    partition: str
    mesh_provider: str
    log_retention_days: int
    protect: bool
    #: the App Mesh Envoy image (env ``mesh.envoy_image``, else the platform's pinned default)
    envoy_image: str = ENVOY_IMAGE
    #: how long the provider waits for an ECS service's steady state (a Pulumi duration, e.g. "30m")
    steady_state_timeout: str = "30m"

    def log_group_name(self, service: str) -> str:
        return f"/platform/{self.env_name}/compute/{service}"

    @property
    def log_group_arn_pattern(self) -> str:
        return (f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:"
                f"/platform/{self.env_name}/compute/*")


@dataclass(frozen=True)
class ServicePlan:
    """One catalog service as this env runs it (catalog + env overrides + release)."""

    spec: ServiceSpec
    cpu: int
    memory: int
    desired_count: int
    min_count: int
    max_count: int
    cpu_target_percent: int
    #: the release's image digest (``sha256:...``) or tag; None = not released yet (repo only)
    release_ref: str | None
    #: App Mesh canary versions (env ``mesh.canaries``): one ECS service per version; empty = one service
    versions: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def image_digest(self) -> str | None:
        return self.release_ref if self.release_ref and is_digest(self.release_ref) else None


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
            messaging=upstreams["messaging"].resolved(MessagingContract),
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
PER_SERVICE_FIELDS = ("services", "queues", "service_secret_arns")


ContractT = TypeVar("ContractT", bound=Contract)
EntryT = TypeVar("EntryT")


def contract_slice(contract: ContractT, services: set[str]) -> ContractT:
    """``contract`` with its per-service maps cut down to ``services``."""
    return contract.model_copy(update={
        key: {name: entry for name, entry in getattr(contract, key).items() if name in services}
        for key in PER_SERVICE_FIELDS if key in type(contract).model_fields})


def _slice_output(value: pulumi.Output[ContractT], services: set[str]) -> pulumi.Output[ContractT]:
    # ``apply`` on the whole contract returns only the slice: passing the whole contract into
    # ``Output.all`` once per service would copy it per service (quadratic in the catalog size).
    return value.apply(lambda contract: contract_slice(contract, services))


def _entry(layer: str, entries: Mapping[str, EntryT], key: str, service: str) -> EntryT:
    if service not in entries:
        raise ContractError(
            f"compute needs {layer}.{key}[{service!r}] for catalog service {service!r}, but the {layer} layer "
            f"exports entries only for: {', '.join(sorted(entries)) or 'none'} (re-run the {layer} layer after "
            "a catalog change)")
    return entries[service]


def check_mesh_provider(settings: ComputeSettings, mesh: MeshContract) -> MeshContract:
    """``mesh`` if it was deployed for the env's provider."""
    if mesh.provider != settings.mesh_provider:
        raise ContractError(
            f"env {settings.env_name!r} says mesh.provider {settings.mesh_provider!r} but the mesh layer exports "
            f"provider {mesh.provider!r}; deploy the mesh layer before compute")
    if settings.mesh_provider == "appmesh" and not mesh.mesh_name:
        raise ContractError("the mesh layer exports no mesh_name, which App Mesh tasks need for their virtual node")
    if settings.mesh_provider == "service-connect" and not mesh.service_connect_namespace_arn:
        raise ContractError("the mesh layer exports no service_connect_namespace_arn, which Service Connect needs")
    return mesh


def virtual_node_arn(settings: ComputeSettings, mesh: MeshContract, service: str, version: str | None = None) -> str:
    """The ARN of the virtual node Envoy serves: the service's node, or one canary version's node."""
    entry = _entry("mesh", mesh.services, "services", service)
    if version is not None:
        versions = entry.versions
        if version not in versions:
            raise ContractError(
                f"env canaries {service!r} version {version!r}, but the mesh layer exports versions "
                f"{', '.join(sorted(versions)) or 'none'} for it; deploy the mesh layer before compute")
        node: str | None = versions[version].virtual_node_name
    else:
        node = entry.virtual_node_name
    if not node:
        raise ContractError(f"the mesh layer exports no virtual_node_name for {service!r} in an App Mesh env")
    assert mesh.mesh_name is not None, "check_mesh_provider refuses an App Mesh contract without mesh_name"
    return appmesh_virtual_node_arn(settings.partition, settings.region, settings.account_id, mesh.mesh_name, node)


def ecs_service_name(mesh: MeshContract, service: str, version: str | None) -> str:
    """The ECS service's name: the catalog name, or for a canary version the name the mesh layer's
    virtual node selects tasks by (ECS registers it as the ECS_SERVICE_NAME Cloud Map attribute)."""
    if version is None:
        return service
    versions = _entry("mesh", mesh.services, "services", service).versions
    attributes = versions[version].cloud_map_attributes if version in versions else {}
    if "ECS_SERVICE_NAME" not in attributes:
        raise ContractError(f"the mesh layer exports no ECS_SERVICE_NAME attribute for {service!r} version "
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
        "AMQP_ENDPOINT": messaging.amqps_endpoint,
        "AMQP_VHOST": messaging.vhost,
        "AMQP_REQUESTS_EXCHANGE": messaging.requests_exchange,
        "AMQP_EVENTS_EXCHANGE": messaging.events_exchange,
    }
    queue = messaging.queues.get(spec.name)
    if queue:
        environment["AMQP_QUEUE"] = str(queue)
    for callee in spec.calls:
        # Callees are reached by their mesh name (Service Connect client alias or App Mesh virtual
        # service), so traffic goes through the proxy that applies retries, TLS and routing.
        entry = _entry("mesh", mesh.services, "services", callee)
        # A StackReference returns numbers as floats; the contract model reads 8082.0 back as the int 8082.
        environment[env_var_name(callee, "URL")] = f"http://{entry.client_alias_dns}:{entry.client_alias_port}"
    return environment


def credential_secrets(secret_arn: str) -> dict[str, str]:
    """ECS ``secrets`` entries selecting the JSON keys of the service's messaging secret (the empty
    version-stage and version-id fields mean AWSCURRENT)."""
    return {var: f"{secret_arn}:{key}::" for var, key in AMQP_SECRET_KEYS.items()}


def service_wiring(plan: ServicePlan, settings: ComputeSettings, *, repository_url: str, log_group: str,
                   discovery: DiscoveryContract, mesh: MeshContract, messaging: MessagingContract,
                   version: str | None = None) -> ContainerWiring:
    """Resolve one service's (or canary version's) container wiring from the upstream contracts' values."""
    assert plan.release_ref is not None, "only released services get a task definition"
    entry = _entry("mesh", mesh.services, "services", plan.name)
    secret_arn = _entry("messaging", messaging.service_secret_arns, "service_secret_arns", plan.name)
    appmesh = settings.mesh_provider == "appmesh"
    return ContainerWiring(
        service=plan.name,
        port=plan.spec.port,
        health_path=plan.spec.health_path,
        image=image_reference(repository_url, plan.release_ref),
        region=settings.region,
        log_group=log_group,
        port_name=entry.port_name,
        environment=service_environment(plan, settings, discovery, mesh, messaging, version),
        secrets=credential_secrets(secret_arn),
        appmesh_resource_arn=virtual_node_arn(settings, mesh, plan.name, version) if appmesh else None,
        envoy_image=settings.envoy_image,
    )


@dataclass(frozen=True)
class FargateServiceArgs:
    plan: ServicePlan
    settings: ComputeSettings
    upstreams: ComputeUpstreams
    cluster_arn: pulumi.Input[str]
    cluster_name: str
    repository_url: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    logs_kms_key_arn: pulumi.Input[str] | None = None
    #: the public gateway's target group, for `public` services in envs with a public gateway
    target_group_arn: pulumi.Input[str] | None = None
    #: the canary version this ECS service runs (App Mesh canaries), None for the service itself
    version: str | None = None
    #: the ECS services of the services this one calls: created (and replaced) before this one
    start_after: tuple[pulumi.Resource, ...] = ()

    @property
    def unit(self) -> str:
        """What this ECS service is called in resource, log group and task family names."""
        return f"{self.plan.name}-{self.version}" if self.version else self.plan.name


class FargateService(pulumi.ComponentResource):
    """A catalog service running on Fargate in the private subnets, in the mesh, autoscaled."""

    def __init__(self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:FargateService", name, None, opts)
        plan, settings, upstreams, version = args.plan, args.settings, args.upstreams, args.version
        service, unit = plan.name, args.unit
        tags = {"service": service, **({"version": version} if version else {})}
        child = pulumi.ResourceOptions(parent=self)
        appmesh = settings.mesh_provider == "appmesh"

        self.log_group = aws.cloudwatch.LogGroup(
            name,
            name=settings.log_group_name(unit),
            retention_in_days=settings.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=tags,
            opts=child,
        )

        trust_args = (settings.partition, settings.region, settings.account_id)
        # Two roles on purpose (ecs-task-separate-roles): the execution role is used by ECS to start
        # the task, the task role by the application; neither can do the other's job.
        self.execution_role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=json.dumps(ecs_tasks_trust_policy(*trust_args, source_conditions=False), sort_keys=True),
            description=f"ECS starts {unit} tasks: pull its image, write its logs, read its secret",
            tags=tags, opts=child)
        secret_arn = upstreams.messaging.apply(
            lambda messaging: _entry("messaging", messaging.service_secret_arns, "service_secret_arns", service))
        self.execution_policy = aws.iam.RolePolicy(
            f"{name}-execution",
            role=self.execution_role.id,
            policy=pulumi.Output.all(args.repository_arn, self.log_group.arn, secret_arn).apply(
                lambda values: json.dumps(execution_role_policy(
                    repository_arn=values[0], log_group_arn=values[1], secret_arns=[values[2]]), sort_keys=True)),
            opts=pulumi.ResourceOptions(parent=self.execution_role),
        )

        self.task_role = aws.iam.Role(
            f"{name}-task",
            assume_role_policy=json.dumps(ecs_tasks_trust_policy(*trust_args, source_conditions=True), sort_keys=True),
            description=f"What the {unit} application itself may call",
            tags=tags, opts=child)
        task_statements = pulumi.Output.all(upstreams.discovery, upstreams.mesh).apply(
            lambda values: task_role_statements(
                discovery_namespaces=[values[0].private_namespace_name, values[0].http_namespace_name]
                if plan.spec.calls else [],
                appmesh_virtual_node_arn=virtual_node_arn(settings, values[1], service, version) if appmesh else None))
        # A role without statements gets no policy at all (an empty policy document is invalid).
        if plan.spec.calls or appmesh:
            self.task_policy: aws.iam.RolePolicy | None = aws.iam.RolePolicy(
                f"{name}-task", role=self.task_role.id,
                policy=task_statements.apply(
                    lambda statements: json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)),
                opts=pulumi.ResourceOptions(parent=self.task_role))
        else:
            self.task_policy = None

        self.wiring: pulumi.Output[ContainerWiring] = pulumi.Output.all(
            repository_url=args.repository_url, log_group=self.log_group.name,
            discovery=upstreams.discovery, mesh=upstreams.mesh, messaging=upstreams.messaging,
        ).apply(lambda values: service_wiring(plan, settings, version=version, **values))
        self.image: pulumi.Output[str] = self.wiring.apply(lambda wiring: wiring.image)

        # Task bind mounts (scratch space on the task's ephemeral storage), made writable for their
        # users by the scratch init container.
        volumes = [aws.ecs.TaskDefinitionVolumeArgs(name=TMP_VOLUME)]
        proxy = None
        if appmesh:
            volumes.append(aws.ecs.TaskDefinitionVolumeArgs(name=ENVOY_TMP_VOLUME))
            broker_port = upstreams.messaging.apply(lambda messaging: amqps_port(messaging.amqps_endpoint))
            proxy = aws.ecs.TaskDefinitionProxyConfigurationArgs(
                type="APPMESH", container_name=ENVOY_CONTAINER,
                properties=broker_port.apply(lambda port: appmesh_proxy_properties(plan.spec.port, port)))
        storage = plan.spec.ephemeral_storage_gib
        self.task_definition = aws.ecs.TaskDefinition(
            name,
            family=f"{settings.env_name}-{unit}",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(plan.cpu),
            memory=str(plan.memory),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            container_definitions=self.wiring.apply(
                lambda wiring: json.dumps(container_definitions(wiring), sort_keys=True)),
            volumes=volumes,
            proxy_configuration=proxy,
            # More than Fargate's default 20 GiB where the catalog asks (model caches, scratch files).
            ephemeral_storage=aws.ecs.TaskDefinitionEphemeralStorageArgs(size_in_gib=storage)
            if storage is not None else None,
            tags=tags,
            # The execution role must be able to pull and log before ECS tries to start a task.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.execution_policy]),
        )

        self.service = aws.ecs.Service(
            name,
            name=upstreams.mesh.apply(lambda mesh: ecs_service_name(mesh, service, version))
            if version else service,
            cluster=args.cluster_arn,
            task_definition=self.task_definition.arn,
            launch_type="FARGATE",
            desired_count=plan.desired_count,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=upstreams.network.private_subnet_ids,
                security_groups=[upstreams.network.service_security_group_id],
                # Tasks are private; they reach AWS APIs through VPC endpoints or the NAT.
                assign_public_ip=False,
            ),
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            service_registries=self._service_registries(plan, upstreams) if appmesh else None,
            service_connect_configuration=None if appmesh else self._service_connect(plan, settings, upstreams, unit),
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=args.target_group_arn, container_name=service, container_port=plan.spec.port,
            )] if args.target_group_arn is not None else None,
            health_check_grace_period_seconds=90 if args.target_group_arn is not None else None,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            enable_execute_command=False,
            # `up` fails when the service does not reach a steady state in time (a task that cannot pull
            # its image, crashes, or fails health checks), instead of reporting a deployment ECS is still
            # trying. The provider waits like `aws ecs wait services-stable` (pulumi_aws ecs.Service
            # docstring); a circuit-breaker rollback ends steady too (terraform-provider-aws #20858), which
            # the orchestrator catches by reading what ECS runs after compute's update.
            wait_for_steady_state=True,
            tags=tags,
            # Autoscaling owns the running count after the first deployment. The wait is bounded by the
            # env's compute.steady_state_timeout_minutes (the provider's own default is 20 minutes).
            # Callees first: a Service Connect client resolves only endpoints that exist when it starts.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["desiredCount"], depends_on=list(args.start_after),
                custom_timeouts=pulumi.CustomTimeouts(create=settings.steady_state_timeout,
                                                      update=settings.steady_state_timeout)),
        )

        self.scaling_target = aws.appautoscaling.Target(
            name,
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", self.service.name),
            min_capacity=plan.min_count,
            max_capacity=plan.max_count,
            opts=pulumi.ResourceOptions(parent=self.service),
        )
        tracking = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs
        cpu_metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs
        self.scaling_policy = aws.appautoscaling.Policy(
            f"{name}-cpu",
            policy_type="TargetTrackingScaling",
            resource_id=self.scaling_target.resource_id,
            scalable_dimension=self.scaling_target.scalable_dimension,
            service_namespace=self.scaling_target.service_namespace,
            target_tracking_scaling_policy_configuration=tracking(
                target_value=float(plan.cpu_target_percent),
                predefined_metric_specification=cpu_metric(predefined_metric_type="ECSServiceAverageCPUUtilization"),
                # Scale out fast, scale in slowly: a model reload costs more than an idle task.
                scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
                scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
            ),
            opts=pulumi.ResourceOptions(parent=self.scaling_target),
        )
        self.register_outputs({"service_arn": self.service.arn, "image": self.image})

    @staticmethod
    def _service_registries(plan: ServicePlan, upstreams: ComputeUpstreams) -> aws.ecs.ServiceServiceRegistriesArgs:
        """App Mesh envs: ECS registers each task in the discovery layer's Cloud Map service, which the
        virtual node discovers its endpoints from. The service has SRV records, so ECS needs the
        container and port to put in them."""
        registry_arn = upstreams.discovery.apply(
            lambda discovery: _entry("discovery", discovery.services, "services", plan.name).arn)
        return aws.ecs.ServiceServiceRegistriesArgs(
            registry_arn=registry_arn, container_name=plan.name, container_port=plan.spec.port)

    @staticmethod
    def _service_connect(plan: ServicePlan, settings: ComputeSettings, upstreams: ComputeUpstreams,
                         unit: str) -> aws.ecs.ServiceServiceConnectConfigurationArgs:
        """Service Connect envs: the service serves its named port under its discovery name and
        client alias in the mesh layer's namespace; ECS runs the proxy and registers the tasks."""
        mesh = upstreams.mesh
        entry = mesh.apply(lambda values: _entry("mesh", values.services, "services", plan.name))
        return aws.ecs.ServiceServiceConnectConfigurationArgs(
            enabled=True,
            namespace=mesh.apply(lambda values: values.service_connect_namespace_arn),
            services=[aws.ecs.ServiceServiceConnectConfigurationServiceArgs(
                port_name=entry.apply(lambda e: e.port_name),
                discovery_name=entry.apply(lambda e: e.discovery_name),
                client_alias=[aws.ecs.ServiceServiceConnectConfigurationServiceClientAliasArgs(
                    dns_name=entry.apply(lambda e: e.client_alias_dns),
                    port=entry.apply(lambda e: e.client_alias_port),
                )],
            )],
            # The Service Connect proxy logs next to the app, in the service's own log group.
            log_configuration=aws.ecs.ServiceServiceConnectConfigurationLogConfigurationArgs(
                log_driver="awslogs",
                options={"awslogs-group": settings.log_group_name(unit), "awslogs-region": settings.region,
                         "awslogs-stream-prefix": "service-connect"},
            ),
        )
