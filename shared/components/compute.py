"""The compute layer of one environment: ECR, the ECS cluster and one Fargate service per catalog entry.

Composition only; the pieces live in their own modules:
:mod:`~shared.components.ecr` (repositories), :mod:`~shared.components.compute_service` (a service's
log group, roles, task definition, ECS service and autoscaling), :mod:`~shared.components.gateway`
(the public ALB), :mod:`~shared.components.compute_containers` (container definitions) and
:mod:`~shared.components.compute_iam` (policy documents).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.artifact_names import artifact_log_bucket_name
from shared.catalog import Catalog, catalog_path
from shared.cloudwatch_metrics import QUEUE_METRICS_NAMESPACE
from shared.components.artifacts import ArtifactStore, ArtifactStoreArgs, former_writers, handoff_writers
from shared.components.broker_egress import BrokerTarget, services_to_broker
from shared.components.building_blocks import customer_key
from shared.components.compute_containers import ENVOY_IMAGE, partition_of
from shared.components.compute_iam import customer_key_policy
from shared.components.compute_plan import ComputeSettings, ServicePlan
from shared.components.compute_service import FargateService, FargateServiceArgs
from shared.components.compute_wiring import ComputeUpstreams, check_mesh_provider, contract_entry
from shared.components.ecr import ServiceRepository, ServiceRepositoryArgs
from shared.components.gateway import PublicGateway, PublicGatewayArgs, access_log_bucket_name
from shared.components.image_replication import ImageReplication, ImageReplicationArgs
from shared.components.service_connect_drain import ServiceConnectDrain
from shared.contracts import ComputeService, ComputeVersion, required
from shared.envs import (
    EnvConfig,
    backlog_wakes,
    env_path,
    publishes_queue_metrics,
    scale_from_zero_problem,
    scales_in_while_working,
)
from shared.errors import ConfigError
from shared.fargate import CAPACITY_PROVIDERS, fargate_size_problem
from shared.gateway_names import s3_bucket_arn
from shared.mesh_names import unit_name
from shared.port_retirement import CALLED_PORTS_OUTPUT
from shared.rotation_continuity import UNKNOWN_VERSION


def cluster_name(env_name: str) -> str:
    """The env's ECS cluster (promotion's deployed gate reads what runs in it)."""
    return f"{env_name}-ml-platform"


def plan_service(env: EnvConfig, catalog: Catalog, service: str) -> ServicePlan:
    """A catalog service with the env's overrides; refuses a cpu/memory pair Fargate would refuse."""
    spec = catalog[service]
    settings = env.service_settings(service)
    cpu = settings.cpu if settings.cpu is not None else spec.cpu
    memory = settings.memory if settings.memory is not None else spec.memory
    problem = fargate_size_problem(cpu, memory)
    if problem:
        # Name the file that set the value the user has to change.
        overridden = settings.cpu is not None or settings.memory is not None
        if overridden:
            key = f"services.{service}.{'cpu' if settings.cpu is not None else 'memory'}"
            raise ConfigError(str(env_path(env.name)), key, problem)
        raise ConfigError(str(catalog_path()), f"services.{service}.cpu", problem)
    queue_metrics = publishes_queue_metrics(env)
    zero = scale_from_zero_problem(spec, catalog, queue_metrics) if settings.min_count == 0 else None
    if zero:  # the env loader refuses it first (shared.envs, _rule_min_count_wakes)
        raise ConfigError(str(env_path(env.name)), f"services.{service}.min_count", zero)
    return ServicePlan(
        spec=spec, cpu=cpu, memory=memory,
        desired_count=settings.desired_count, min_count=settings.min_count, max_count=settings.max_count,
        cpu_target_percent=settings.cpu_target_percent,
        release_ref=env.release.images.get(service),
        backlog_scaling=bool(spec.consumes) and queue_metrics,
        wakes_on_backlog=backlog_wakes(spec, catalog, queue_metrics),
        scales_in_while_working=scales_in_while_working(spec, catalog, queue_metrics),
        queue_only=catalog.queue_only(spec.name),
        called=bool(catalog.callers(service)),
        handoff_sources=tuple(catalog.handoff_sources(service)),
        capacity_provider=CAPACITY_PROVIDERS[settings.capacity],
        # Weighted canaries exist only in App Mesh (the mesh layer refuses them otherwise); each version
        # has its own virtual node, so its own ECS service with its own Envoy.
        versions=tuple(v.version for v in env.mesh.canaries.get(service, ())) if env.mesh.provider == "appmesh"
        else (),
    )


def ports_called(now: Mapping[str, int], before: Mapping[str, int], rolled_back: set[str]) -> dict[str, int]:
    """Callee -> the port the running tasks call it on: the catalog's ``now`` where no ECS service was rolled back;
    else a ``rolled_back`` callee's port of ``before`` (compute's last record), and the callees of ``before`` that
    ``now`` no longer has, with their ports, for the rolled-back callers (:meth:`ComputePlatform.called_service_ports`).
    A callee that converged is called on its port of ``now`` only: its tasks listen there alone."""
    if not rolled_back:
        return dict(sorted(now.items()))
    kept = {service: before.get(service, port) if service in rolled_back else port for service, port in now.items()}
    return dict(sorted({**before, **kept}.items()))


#: compute's outputs that record what runs (the ECS services and what their tasks were given, the subnets they are in,
#: the ports they call, the artifact bucket's handoff rules), each as it is where nothing runs yet
RUNNING_RECORDS: dict[str, Any] = {"services": {}, "handoff_writers": [], "subnet_ids": [], CALLED_PORTS_OUTPUT: {}}


def targeted_records(last: Mapping[str, Any] | None) -> dict[str, Any]:
    """:data:`RUNNING_RECORDS` for a targeted update (the image gate's registry step): the last ``up``'s, since the ECS
    services, task definitions, policies and bucket rules keep their state in it, while the stack's outputs are still
    what the program exports (shared.orchestrate.model.TARGETED_VARIABLE); as nothing runs before a first deploy. A
    record the last outputs lack (a stack deployed before it) stays absent (None), and a field of a service's record
    the contract no longer declares (one an older version of this layer exported) is left out: the contract refuses
    undeclared fields."""
    if not last:
        return {key: type(empty)() for key, empty in RUNNING_RECORDS.items()}
    records = {key: last.get(key) for key in RUNNING_RECORDS}
    services = records["services"]
    if isinstance(services, Mapping):
        records["services"] = {service: _declared(entry, ComputeService) for service, entry in services.items()}
    return records


def _declared(entry: Any, model: type[ComputeService] | type[ComputeVersion]) -> Any:
    """``entry`` (a service's or canary version's record) with only the fields ``model`` declares."""
    if not isinstance(entry, Mapping):
        return entry
    kept = {key: value for key, value in entry.items() if key in model.model_fields}
    if isinstance(kept.get("versions"), Mapping):
        kept["versions"] = {version: _declared(unit, ComputeVersion) for version, unit in kept["versions"].items()}
    return kept


def _held_version(service: str, held_before: Mapping[str, str], values: list[Any]) -> str:
    """The secret version ``service``'s tasks hold: its wiring's (``values[0]``), unless ECS rolled it back (it is in
    ``values[1]``, :meth:`ComputePlatform._rolled_back`), then ``held_before``'s, the last record's ("" included; no
    record: shared.rotation_continuity.UNKNOWN_VERSION, which holds back the next rotation until a roll succeeds)."""
    wiring, rolled_back = values
    if service not in rolled_back or not wiring.secret_version:
        return str(wiring.secret_version)  # "" (no credentials) stays "" rolled back: its tasks hold none either
    before = held_before.get(service)  # "" recorded: the rolled-back tasks hold no secret either
    return UNKNOWN_VERSION if before is None else before


@dataclass(frozen=True)
class ComputeArgs:
    settings: ComputeSettings
    services: tuple[ServicePlan, ...]
    container_insights: bool
    ecr_keep_last_images: int
    kms_encrypted_logs: bool
    public_gateway: bool
    certificate_arn: str | None
    broker: BrokerTarget
    replication: ImageReplicationArgs
    #: the env's model-artifact store, where a catalog service reads or writes artifacts (None: no service does)
    artifacts: ArtifactStoreArgs | None = None

    @classmethod
    def from_env(cls, env: EnvConfig, catalog: Catalog,
                 last_outputs: Mapping[str, Any] | None = None) -> ComputeArgs:
        """``last_outputs``: compute's own, from its last deployment (the artifact bucket's former writers)."""
        settings = ComputeSettings(
            env_name=env.name, region=env.region, account_id=env.account_id, partition=partition_of(env.region),
            mesh_provider=env.mesh.provider, log_retention_days=env.compute.log_retention_days, protect=env.protect,
            envoy_image=env.mesh.envoy_image or ENVOY_IMAGE,
            steady_state_timeout=f"{env.compute.steady_state_timeout_minutes}m",
            queue_metrics_namespace=QUEUE_METRICS_NAMESPACE if publishes_queue_metrics(env) else None,
            access_logs=env.mesh.access_logs,
        )
        # Every service that may put under its <service>/handoff/ (a writer, a publisher) gets that prefix's expiry.
        handing_off = set(catalog.handoff_publishers())
        writers = tuple(spec.name for spec in catalog if spec.artifacts == "write" or spec.name in handing_off)
        # Callees before callers: each ECS service is created after the services it calls.
        services = tuple(plan_service(env, catalog, name) for name in catalog.creation_order())
        # The public gateways' access-log buckets log their requests into the artifact store's log bucket too
        # (Security Hub S3.9): its policy lets S3's logging service write for them.
        gateway_log_buckets = tuple(
            s3_bucket_arn(settings.partition, access_log_bucket_name(env.name, plan.name, env.account_id))
            for plan in services if plan.spec.public and env.compute.public_gateway)
        return cls(
            settings=settings,
            services=services,
            container_insights=env.compute.container_insights,
            ecr_keep_last_images=env.compute.ecr_keep_last_images,
            kms_encrypted_logs=env.compute.kms_encrypted_logs,
            public_gateway=env.compute.public_gateway,
            certificate_arn=env.compute.certificate_arn,
            broker=BrokerTarget.from_env(env),
            replication=ImageReplicationArgs.from_env(env, settings.partition),
            artifacts=ArtifactStoreArgs(env_name=env.name, account_id=env.account_id, region=env.region,
                                        partition=settings.partition, protect=env.protect,
                                        bucket_name=settings.artifact_bucket_name,
                                        log_bucket_name=artifact_log_bucket_name(env.name, env.account_id, env.region),
                                        log_retention_days=env.compute.log_retention_days,
                                        writers=writers, former_writers=former_writers(writers, last_outputs),
                                        other_logged_bucket_arns=gateway_log_buckets)
            if catalog.needs_artifact_bucket else None,
        )


class ComputePlatform(pulumi.ComponentResource):
    """ECR repositories, the ECS cluster, KMS keys and a FargateService per released catalog service.

    A service that has no image in the env's release yet gets its repository only (the first image
    has to be pushed somewhere), and its task definition and ECS service once the release names it.
    """

    def __init__(self, name: str, args: ComputeArgs, upstreams: ComputeUpstreams,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:ComputePlatform", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # Every reader of the mesh contract sees it only once it matched the env's provider, so a mesh
        # stack of the other provider fails with that reason, not a missing-field symptom.
        checked_mesh = upstreams.mesh.apply(lambda mesh: check_mesh_provider(settings, mesh))
        # The discovery layer's per-service entries depend on the provider too (App Mesh envs only): read
        # only after the provider check, so a mismatch is reported as such.
        checked_discovery = pulumi.Output.all(checked_mesh, upstreams.discovery).apply(lambda values: values[1])
        upstreams = dataclasses.replace(upstreams, mesh=checked_mesh, discovery=checked_discovery)

        self.ecr_key = self._key(name, "ecr", settings, "ECR images of the ML platform")
        self.logs_key = (self._key(name, "logs", settings, "Logs of the ML platform's services")
                         if args.kms_encrypted_logs else None)

        # Where the services keep trained models (catalog `artifacts`): the bucket and its key.
        self.artifacts = ArtifactStore(f"{name}-artifacts", args.artifacts, opts=child) if args.artifacts else None

        namespace_arn = upstreams.mesh.apply(lambda mesh: required(
            mesh.service_connect_namespace_arn, "mesh.service_connect_namespace_arn",
            "Service Connect needs it")) if settings.mesh_provider == "service-connect" else None
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=cluster_name(settings.env_name),
            settings=[aws.ecs.ClusterSettingArgs(
                name="containerInsights", value="enabled" if args.container_insights else "disabled")],
            # New Service Connect services default to the mesh layer's namespace.
            service_connect_defaults=aws.ecs.ClusterServiceConnectDefaultsArgs(
                namespace=namespace_arn,
            ) if namespace_arn is not None else None,
            opts=child,
        )
        # Both Fargate capacity providers, whichever the env's services use now: an ECS service names its own in its
        # strategy, which must name one associated with the cluster (botocore ecs CapacityProviderStrategyItem), and a
        # service moved between them (env `capacity`) then changes in place with the cluster as it is. No default
        # strategy: none of the platform's services goes without one of its own.
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers", cluster_name=self.cluster.name,
            capacity_providers=sorted(set(CAPACITY_PROVIDERS.values())), opts=child)
        # Discovery's namespace outlives compute's ECS services (a service dropped from the release or the catalog,
        # `destroy --layers compute`), and ECS removes the Cloud Map service of a deleted ECS service only later, while
        # a discovery name must be unique in it (botocore ecs ServiceConnectService.discoveryName): each ECS service
        # depends on a drain of its own name, deleted after it, which waits for the name to be gone so that a later
        # `up` can create the service again (service_connect_drain).
        self.service_connect_drains: dict[str, ServiceConnectDrain] = {}
        if namespace_arn is not None:
            namespace_name = upstreams.discovery.apply(lambda discovery: discovery.http_namespace_name)
            released = sorted(plan.name for plan in args.services if plan.release_ref is not None)

            def discovery_names(service: str) -> pulumi.Output[list[str]]:
                return upstreams.mesh.apply(
                    lambda mesh: [contract_entry("mesh", mesh.services, "services", service).discovery_name])

            for service in released:
                # The first takes over the one drain of every name that earlier versions had: its names change in
                # place (no wait), where deleting it would wait for the names of the services still running.
                aliases = [pulumi.Alias(name=f"{name}-service-connect-drain")] if service == released[0] else None
                self.service_connect_drains[service] = ServiceConnectDrain(
                    f"{name}-{service}-service-connect-drain",
                    # ListServices' NAMESPACE_ID filter takes "one namespace ID or ARN" (botocore servicediscovery)
                    namespace_id=namespace_arn, namespace_name=namespace_name, region=settings.region,
                    service_names=discovery_names(service),
                    opts=pulumi.ResourceOptions(parent=self, aliases=aliases))

        # The tasks' AMQPS egress (their security group has no other way to the broker).
        self.broker_egress = services_to_broker(
            name, args.broker, service_security_group_id=upstreams.network.service_security_group_id,
            broker_security_group_id=upstreams.broker_security_group_id, opts=child)
        # Replication settings of this env's registry: where its images come from / go to.
        self.image_replication = ImageReplication(f"{name}-images", args.replication, opts=child)

        self.repositories: dict[str, ServiceRepository] = {}
        #: catalog service -> its ECS service(s): one, or one per canary version (in the env's order)
        self.services: dict[str, list[FargateService]] = {}
        self.gateways: dict[str, PublicGateway] = {}
        self._network = upstreams.network
        #: the plans handled so far (callees come first: ComputeArgs orders them)
        self.plans: dict[str, ServicePlan] = {}
        for plan in args.services:
            service = plan.name
            self.plans[service] = plan
            repository = ServiceRepository(
                f"{service}-repo",
                ServiceRepositoryArgs(service=service, env_name=settings.env_name,
                                      keep_last_images=args.ecr_keep_last_images,
                                      source_env=args.replication.source.env_name if args.replication.source else None,
                                      kms_key_arn=self.ecr_key.arn, protect=settings.protect),
                opts=child,
            )
            self.repositories[service] = repository
            if plan.release_ref is None:
                pulumi.log.warn(f"{service}: no image in the {settings.env_name} release yet; only its ECR "
                                "repository is created", resource=repository)
                continue
            target_group_arn = None
            # what the ECS service is created after: its callees' ECS services and, behind a gateway, the listener
            start_after: list[pulumi.Resource] = [self.service_connect_drains[service]] \
                if service in self.service_connect_drains else []
            # its strategy's capacity provider is associated with the cluster first (and, on delete, stays until the
            # ECS service is gone: ECS refuses to drop a provider a service still uses)
            start_after.append(self.capacity_providers)
            if plan.spec.public and args.public_gateway:
                assert args.certificate_arn is not None, "the env schema requires it with public_gateway"
                gateway = PublicGateway(
                    f"{service}-gateway",
                    PublicGatewayArgs(
                        env_name=settings.env_name, service=service, port=plan.spec.port,
                        health_path=plan.spec.health_path, certificate_arn=args.certificate_arn,
                        vpc_id=upstreams.network.vpc_id,
                        service_security_group_id=upstreams.network.service_security_group_id,
                        public_subnet_ids=upstreams.network.public_subnet_ids, protect=settings.protect,
                        account_id=settings.account_id, region=settings.region, partition=settings.partition,
                        log_retention_days=settings.log_retention_days,
                        request_timeout_seconds=plan.spec.request_timeout_seconds,
                        load_balancing=plan.spec.load_balancing,
                        server_access_logs=self.artifacts.server_access_logs() if self.artifacts else None),
                    opts=child,
                )
                self.gateways[service] = gateway
                target_group_arn = gateway.target_group.arn
                # CreateService refuses a target group that no listener attaches to a load balancer yet
                # (InvalidParameterException "... does not have an associated load balancer"), and the
                # service reads only the group's ARN: it waits for the listener explicitly.
                start_after.append(gateway.listener)
                # ... and after the rule admitting the ALB into its tasks' group (its health checks)
                start_after.append(gateway.task_ingress)
            if plan.uses_artifact_bucket and self.artifacts:
                start_after.extend(self.artifacts.ready)  # its first write finds the bucket encrypted and versioned
            # its tasks' AMQPS egress (the only way its security group has to the broker) is in place before they start,
            # and (reversed on delete) stays until the ECS service is gone (failure review F2)
            start_after.append(self.broker_egress)
            service_upstreams = upstreams.for_service(service, plan.spec.calls)
            # A Service Connect client resolves only the endpoints that existed when its task started (ECS
            # guide, "Service Connect components": add dependsOn from each client service to the services it
            # connects to), so every ECS service is created after those of the services it calls.
            for callee in plan.spec.calls:
                if callee not in self.plans:
                    raise ValueError(f"{service} calls {callee}, which the compute plan creates later or not at all")
                if callee not in self.services:
                    pulumi.log.warn(f"{service} calls {callee}, which has no image in the {settings.env_name} release "
                                    f"yet: {service} reaches it from the `up` that releases it, which rolls {service} "
                                    "after it", resource=repository)
                start_after.extend(unit.service for unit in self.services.get(callee, []))
            # ... and its tasks are replaced whenever a callee starts running or what its proxy learns of one changes
            # (the endpoints are in its task definition: compute_wiring.callee_endpoints).
            running_callees = tuple((callee, self.plans[callee].spec.request_timeout_seconds)
                                    for callee in plan.spec.calls if callee in self.services)
            # ... and it rolls only onto a release its callees run: one ECS rolled back stops the `up` before it
            callee_rollouts = tuple(unit.rollout for callee in plan.spec.calls
                                    for unit in self.services.get(callee, []))
            self.services[service] = [
                FargateService(
                    unit_name(service, version),
                    FargateServiceArgs(
                        plan=plan, settings=settings, upstreams=service_upstreams,
                        cluster_arn=self.cluster.arn, cluster_name=cluster_name(settings.env_name),
                        repository_url=repository.repository.repository_url,
                        repository_arn=repository.repository.arn,
                        logs_kms_key_arn=self.logs_key.arn if self.logs_key else None,
                        artifacts_key_arn=self.artifacts.key.arn if self.artifacts and plan.uses_artifact_bucket
                        else None,
                        target_group_arn=target_group_arn, version=version, start_after=tuple(start_after),
                        running_callees=running_callees, callee_rollouts=callee_rollouts,
                    ),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
                )
                for version in (plan.versions or (None,))
            ]
        self.register_outputs({"cluster_arn": self.cluster.arn})

    def _key(self, name: str, purpose: str, settings: ComputeSettings, description: str) -> aws.kms.Key:
        """A customer managed key (rotated yearly) for ``purpose`` ("ecr" or "logs")."""
        policy = customer_key_policy(
            partition=settings.partition, account_id=settings.account_id, region=settings.region,
            logs_arn_pattern=settings.log_group_arn_pattern if purpose == "logs" else None)
        return customer_key(
            f"{name}-{purpose}", description=f"{description} ({settings.env_name})",
            alias=f"{settings.env_name}/{purpose}", policy=json.dumps(policy, sort_keys=True),
            # Losing the key loses what it encrypted: protected wherever stateful resources are.
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect))

    # -- the contract ------------------------------------------------------------------------------
    def handoff_writers(self, args: ComputeArgs) -> list[str]:
        """The services the artifact bucket has a handoff lifecycle rule for ([] without a bucket: a new bucket
        starts with no former writer)."""
        return list(handoff_writers(args.artifacts)) if args.artifacts else []

    def subnet_ids(self) -> pulumi.Output[list[str]]:
        """The network's subnets this layer has network interfaces in: the private ones where an ECS service runs
        (its tasks), the public ones where a gateway's load balancer is. The orchestrator lets the network layer
        delete a retiring AZ's subnets only once no layer's last `up` placed anything there (shared.zone_retirement).
        """
        private = self._network.private_subnet_ids if self.services else pulumi.Output.from_input([])
        public = self._network.public_subnet_ids if self.gateways else pulumi.Output.from_input([])
        return pulumi.Output.all(private, public).apply(lambda lists: [*lists[0], *lists[1]])

    def _rolled_back(self) -> pulumi.Output[set[str]]:
        """The services one of whose ECS services does not run the task definition this `up` registered: an ECS
        circuit-breaker rollback whose wait ended steady (the provider then reads the service back and records the
        revision ECS went back to; a wait on the ECS deployment's status fails the update instead, and compute's
        outputs stay those of its last complete `up`: compute_service.after_callees_rolled_out)."""
        units = {service: pulumi.Output.all(*[pulumi.Output.all(unit.rollout.running, unit.rollout.applied)
                                              for unit in service_units])
                 for service, service_units in self.services.items()}
        if not units:
            return pulumi.Output.from_input(set())
        return pulumi.Output.all(**units).apply(
            lambda runs: {service for service, pairs in runs.items() if any(running != applied
                                                                            for running, applied in pairs)})

    def called_service_ports(self, now: Mapping[str, int], before: Mapping[str, int]) -> pulumi.Output[dict[str, int]]:
        """The ports the running tasks call, by callee: ``now`` (the catalog's) where every ECS service runs the task
        definition this `up` registered. Where one does not (:meth:`_rolled_back`), a rolled-back callee still listens
        on its port of ``before`` (this layer's last record), and the callees of ``before`` that the catalog no longer
        calls stay, since rolled-back callers may still call them: the network layer keeps admitting them
        (shared.port_retirement, :func:`ports_called`)."""
        return self._rolled_back().apply(lambda rolled_back: ports_called(now, before, rolled_back))

    def contract_services(self, held_before: Mapping[str, str]) -> pulumi.Output[dict[str, dict[str, Any]]]:
        """Per deployed service: ECS service name/ARN and task definition ARN, repository URL, image and its digest,
        the work queue and broker credentials its tasks are given, and the version of its messaging secret they hold:
        the one this `up` pinned, or where ECS rolled the service back (:meth:`_rolled_back`) ``held_before``'s, this
        layer's last record (shared.rotation_continuity.recorded_secret_versions; UNKNOWN_VERSION when it has none).

        A canaried service lists every version's ECS service under ``versions``; its top-level ECS
        service is the first version the env names.
        """
        entries: dict[str, pulumi.Output[dict[str, Any]]] = {}
        rolled_back = self._rolled_back()
        for service, units in self.services.items():
            plan = self.plans[service]
            first = units[0]
            versions = pulumi.Output.all(**{
                version: pulumi.Output.all(ecs_service_name=unit.service.name, ecs_service_arn=unit.service.arn,
                                           task_definition_arn=unit.task_definition.arn)
                for version, unit in zip(plan.versions, units)
            }) if plan.versions else pulumi.Output.from_input({})
            entries[service] = pulumi.Output.all(
                ecs_service_name=first.service.name,
                ecs_service_arn=first.service.arn,
                # the revision this up registered, which the orchestrator compares with the one ECS runs afterwards: a
                # circuit-breaker rollback goes back to the previous one (shared.images.rollout_mismatches). Not the
                # service's task_definition: the provider reads the service again after its wait and records the
                # revision ECS went back to (terraform-provider-aws ecs/service.go: resourceServiceUpdate ends with
                # resourceServiceRead, which sets task_definition from DescribeServices)
                task_definition_arn=first.task_definition.arn,
                repository_url=self.repositories[service].repository.repository_url,
                image=first.image,
                versions=versions,
                image_digest=plan.image_digest,
                # what the running tasks use of messaging's objects: never null, so "none" is told from a stack
                # deployed before these fields (the engine drops null outputs)
                amqp_queue=first.wiring.apply(lambda wiring: wiring.environment.get("AMQP_QUEUE", "")),
                amqp_credentials=first.wiring.apply(lambda wiring: bool(wiring.secrets)),
                scales_in_while_working=plan.scales_in_while_working,
                calls=list(plan.spec.calls),
                artifacts=plan.spec.artifacts or "",
                amqp_secret_version=pulumi.Output.all(first.wiring, rolled_back).apply(
                    functools.partial(_held_version, service, held_before)),
            )
        return pulumi.Output.all(**entries) if entries else pulumi.Output.from_input({})

    def repository_urls(self) -> pulumi.Output[dict[str, str]]:
        return pulumi.Output.all(**{service: repo.repository.repository_url
                                    for service, repo in self.repositories.items()})
