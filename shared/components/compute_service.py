"""One platform service on ECS Fargate, built concern by concern, each a function with one job:
its log group (:func:`service_log_group`), its two IAM roles (:func:`service_roles`), its task
definition (:func:`task_definition`), its ECS service wired into the mesh (:func:`ecs_service`, with
:func:`service_registries` for App Mesh and :func:`service_connect` for Service Connect) and its
autoscaling (:func:`autoscaling`). :class:`FargateService` only puts them together under one component.

The service is wired to the other layers only through their contracts (``ComputeUpstreams``, in
:mod:`shared.components.compute_wiring`): the network's private subnets and service SG, the discovery
layer's Cloud Map service, the mesh layer's port name / discovery name / client alias (and virtual node
in App Mesh envs), and the messaging layer's Secrets Manager secret for the service's RabbitMQ credentials.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_aws as aws

from shared.artifact_names import artifact_prefix, handoff_prefix
from shared.catalog import ServiceSpec
from shared.cloudwatch_metrics import (
    BACKLOG_OUT_PERIODS,
    ECS_NAMESPACE,
    QUEUE_IDLE_CONSUMERS_METRIC,
    QUEUE_MESSAGES_METRIC,
    QUEUE_READY_METRIC,
)
from shared.components.alarms import Query, alarm_query, metric_query
from shared.components.building_blocks import FORCE_DETACH_POLICIES
from shared.components.compute_containers import (
    ENVOY_CONTAINER,
    ENVOY_TMP_VOLUME,
    TMP_VOLUME,
    ContainerWiring,
    amqps_port,
    appmesh_proxy_properties,
    awslogs_options,
    container_definitions,
)
from shared.components.compute_iam import (
    artifact_statements,
    ecs_tasks_trust_policy,
    execution_role_policy,
    task_role_statements,
)
from shared.components.compute_plan import ComputeSettings, ServicePlan, service_connect_timeouts
from shared.components.compute_wiring import (
    ComputeUpstreams,
    contract_entry,
    ecs_service_name,
    service_wiring,
    virtual_node_arn,
)
from shared.envs import DEPLOY_OVERHEAD_SECONDS
from shared.fargate import CPU_ARCHITECTURES, DEPLOYMENT_MAXIMUM_PERCENT, OPERATING_SYSTEM_FAMILY
from shared.gateway_names import s3_bucket_arn
from shared.mesh_names import execution_role_resource_name, task_role_resource_name, unit_name, unit_tags
from shared.role_boundary import boundary_arn

SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60


class CalleeRolledBack(pulumi.RunError):
    """A service this one calls does not run the task definition this `up` registered for it: ECS rolled its
    deployment back. A ``pulumi.RunError``: the language host logs its message as one ``error:`` line."""


@dataclass(frozen=True)
class CalleeRollout:
    """One ECS service of a callee as this `up` left it (it is updated before its callers: their ``start_after``)."""

    unit: str
    #: the task definition the ECS service runs: the provider reads the service back after a wait that ends steady,
    #: so after a circuit-breaker rollback its wait counted as steady this is the revision ECS went back to
    running: pulumi.Output[str | None]
    #: the task definition this `up` registered for it
    applied: pulumi.Output[str]


def after_callees_rolled_out(env_name: str, caller: str, task_arn: pulumi.Output[str],
                             callees: Sequence[CalleeRollout]) -> pulumi.Output[str]:
    """``task_arn``, once every callee runs what this `up` registered for it; a callee ECS rolled back fails the
    `up` before the caller rolls (:class:`CalleeRolledBack`). The provider's wait on the service's ECS deployment
    fails a rolled-back update itself, and its callers then never start; but where the wait counts tasks instead (no
    new ECS deployment recorded: terraform-provider-aws ecs/service.go, statusServiceWaitForStable), a rollback ends
    steady, the update succeeds with the revision ECS went back to, and without this check the callers went on onto a
    release their callee does not run (the orchestrator's check comes only after compute's whole update). Services
    that call nothing roll as before."""
    if not callees:
        return task_arn

    def check(pairs: list[Any]) -> bool:
        behind = [f"{callee.unit} runs {running}, not {applied}"
                  for callee, (running, applied) in zip(callees, pairs, strict=True) if running != applied]
        if behind:
            raise CalleeRolledBack(
                f"compute stopped before {caller} rolled: ECS rolled back what it calls ({'; '.join(behind)}), and a "
                f"caller is not rolled onto a release its callee does not run. Why the callee's tasks stopped: the "
                f"task-stops log (README, On call). Fix the cause and run `nox -s up -- {env_name}` again, or go "
                f"back with `nox -s promote -- {env_name}@<revision> {env_name}`")
        return True

    checked = pulumi.Output.all(*[pulumi.Output.all(callee.running, callee.applied) for callee in callees]).apply(check)

    async def value() -> str | None:
        await checked.future()  # raises where a callee was rolled back; a preview's unknown callees check nothing
        return await task_arn.future()

    # Only the task definition is what the value depends on: the callees' resources are not recorded as its property
    # dependencies (the callers already depend on the callees' ECS services; a policy reading which task definition a
    # service runs follows them), and a preview shows the caller unchanged where only its callees change.
    # (futures, not bare coroutines: where the check raises, or the program fails first, the Output never awaits
    # some of them)
    known, secret = asyncio.ensure_future(task_arn.is_known()), asyncio.ensure_future(task_arn.is_secret())
    return pulumi.Output(task_arn.resources(), cast("Awaitable[str]", asyncio.ensure_future(value())), known, secret)


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
    #: the env's model-artifact bucket's key (compute's ArtifactStore), for a service with catalog ``artifacts``
    artifacts_key_arn: pulumi.Input[str] | None = None
    #: the public gateway's target group, for `public` services in envs with a public gateway
    target_group_arn: pulumi.Input[str] | None = None
    #: the canary version this ECS service runs (App Mesh canaries), None for the service itself
    version: str | None = None
    #: created (and replaced) before this ECS service: the ECS services of the services it calls and,
    #: behind a public gateway, the listener that attaches its target group to the load balancer
    start_after: tuple[pulumi.Resource, ...] = ()
    #: (callee, its request timeout) per service it calls that has an ECS service in this env (created before this
    #: one, in ``start_after``): the Service Connect endpoints its tasks resolve (compute_wiring.callee_endpoints)
    running_callees: tuple[tuple[str, int], ...] = ()
    #: the ECS services of those callees as this `up` left them: this one rolls only where each runs what was applied
    callee_rollouts: tuple[CalleeRollout, ...] = ()

    @property
    def unit(self) -> str:
        """What this ECS service is called in resource, log group and task family names."""
        return unit_name(self.plan.name, self.version)

    @property
    def tags(self) -> dict[str, str]:
        return unit_tags(self.plan.name, self.version)

    @property
    def appmesh(self) -> bool:
        return self.settings.mesh_provider == "appmesh"


def service_log_group(name: str, args: FargateServiceArgs, parent: pulumi.Resource) -> aws.cloudwatch.LogGroup:
    """The log group of the app, its sidecars and (Service Connect) its proxy."""
    return aws.cloudwatch.LogGroup(
        name,
        name=args.settings.log_group_name(args.unit),
        retention_in_days=args.settings.log_retention_days,
        kms_key_id=args.logs_kms_key_arn,
        tags=args.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class ServiceRoles:
    execution_role: aws.iam.Role
    execution_policy: aws.iam.RolePolicy
    task_role: aws.iam.Role
    task_policy: aws.iam.RolePolicy | None


def service_roles(name: str, args: FargateServiceArgs, log_group: aws.cloudwatch.LogGroup,
                  parent: pulumi.Resource) -> ServiceRoles:
    """The execution role (ECS starts the task) and the task role (the application), with their policies."""
    plan, settings, upstreams, version = args.plan, args.settings, args.upstreams, args.version
    service, unit, tags = plan.name, args.unit, args.tags
    child = pulumi.ResourceOptions(parent=parent)
    trust_args = (settings.partition, settings.region, settings.account_id)
    # the env's cap on every role the deploy role creates (shared.role_boundary)
    boundary = boundary_arn(settings.partition, settings.account_id, settings.env_name)
    # Two roles on purpose (ecs-task-separate-roles): the execution role is used by ECS to start
    # the task, the task role by the application; neither can do the other's job.
    # Auto-named "<name>-execution-" plus 7 characters: the env rules hold canary units to IAM's 64.
    def role(resource_name: str, *, source_conditions: bool, description: str) -> aws.iam.Role:
        return aws.iam.Role(
            resource_name, description=description, permissions_boundary=boundary,
            assume_role_policy=json.dumps(ecs_tasks_trust_policy(*trust_args, source_conditions=source_conditions),
                                          sort_keys=True),
            force_detach_policies=FORCE_DETACH_POLICIES, tags=tags, opts=child)

    execution_role = role(execution_role_resource_name(name), source_conditions=False,
                          description=f"ECS starts {unit} tasks: pull its image, write its logs, read its secret")
    # Only a service that publishes or consumes has a broker user, hence a credentials secret to read.
    secret_arns: pulumi.Output[list[str]] = upstreams.messaging.apply(
        lambda messaging: [contract_entry("messaging", messaging.service_secret_arns, "service_secret_arns", service)]
        if plan.spec.uses_messaging else [])
    execution_policy = aws.iam.RolePolicy(
        f"{name}-execution",
        role=execution_role.id,
        policy=pulumi.Output.all(args.repository_arn, log_group.arn, secret_arns).apply(
            lambda values: json.dumps(execution_role_policy(
                repository_arn=values[0], log_group_arn=values[1], secret_arns=values[2]), sort_keys=True)),
        opts=pulumi.ResourceOptions(parent=execution_role),
    )

    task_role = role(task_role_resource_name(name), source_conditions=True,
                     description=f"What the {unit} application itself may call")
    access = plan.spec.artifacts
    uses_bucket = plan.uses_artifact_bucket  # artifacts, or a handoff to put (it publishes) or get (it consumes)
    if uses_bucket and args.artifacts_key_arn is None:
        raise ValueError(f"{service} has catalog artifacts {access!r} or hands payloads over, but no artifact bucket "
                         "key was given")
    bucket_arn = s3_bucket_arn(settings.partition, settings.artifact_bucket_name) if uses_bucket else ""
    task_statements = pulumi.Output.all(upstreams.discovery, upstreams.mesh, args.artifacts_key_arn).apply(
        lambda values: task_role_statements(
            discovery_namespaces=[values[0].private_namespace_name, values[0].http_namespace_name]
            if plan.spec.calls else [],
            appmesh_virtual_node_arn=virtual_node_arn(settings, values[1], service, version) if args.appmesh
            else None,
            task_protection_tasks_arn=cluster_tasks_arn(settings, args.cluster_name) if plan.spec.consumes else None,
            task_tags=args.tags,
            artifacts=artifact_statements(
                access, bucket_arn=bucket_arn, key_arn=values[2], region=settings.region,
                prefix=artifact_prefix(service), handoff_prefix=handoff_prefix(service) if plan.hands_off else None,
                handoff_source_prefixes=tuple(handoff_prefix(source) for source in plan.handoff_sources))
            if uses_bucket else None))
    # A role without statements gets no policy at all (an empty policy document is invalid).
    task_policy = aws.iam.RolePolicy(
        f"{name}-task", role=task_role.id,
        policy=task_statements.apply(
            lambda statements: json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)),
        opts=pulumi.ResourceOptions(parent=task_role)) \
        if plan.spec.calls or args.appmesh or plan.spec.consumes or uses_bucket else None
    return ServiceRoles(execution_role, execution_policy, task_role, task_policy)


def cluster_tasks_arn(settings: ComputeSettings, cluster_name: str) -> str:
    """Every task of the env's cluster, as task-level IAM permissions name them."""
    return f"arn:{settings.partition}:ecs:{settings.region}:{settings.account_id}:task/{cluster_name}/*"


def task_definition(name: str, args: FargateServiceArgs, roles: ServiceRoles,
                    wiring: pulumi.Output[ContainerWiring], parent: pulumi.Resource) -> aws.ecs.TaskDefinition:
    """The Fargate task definition: its containers (from ``wiring``), scratch volumes, App Mesh proxy."""
    plan, settings = args.plan, args.settings
    # Task bind mounts (scratch space on the task's ephemeral storage), made writable for their
    # users by the scratch init container.
    volumes = [aws.ecs.TaskDefinitionVolumeArgs(name=TMP_VOLUME)]
    proxy = None
    if args.appmesh:
        volumes.append(aws.ecs.TaskDefinitionVolumeArgs(name=ENVOY_TMP_VOLUME))
        broker_port = args.upstreams.messaging.apply(lambda messaging: amqps_port(messaging.amqps_endpoint))
        proxy = aws.ecs.TaskDefinitionProxyConfigurationArgs(
            type="APPMESH", container_name=ENVOY_CONTAINER,
            properties=broker_port.apply(lambda port: appmesh_proxy_properties(plan.spec.port, port)))
    storage = plan.spec.ephemeral_storage_gib
    return aws.ecs.TaskDefinition(
        name,
        family=f"{settings.env_name}-{args.unit}",
        requires_compatibilities=["FARGATE"],
        network_mode="awsvpc",
        cpu=str(plan.cpu),
        memory=str(plan.memory),
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family=OPERATING_SYSTEM_FAMILY,
            cpu_architecture=CPU_ARCHITECTURES[plan.spec.architecture]),
        execution_role_arn=roles.execution_role.arn,
        task_role_arn=roles.task_role.arn,
        container_definitions=wiring.apply(
            lambda resolved: json.dumps(container_definitions(resolved), sort_keys=True)),
        volumes=volumes,
        proxy_configuration=proxy,
        # More than Fargate's default 20 GiB where the catalog asks (model caches, scratch files).
        ephemeral_storage=aws.ecs.TaskDefinitionEphemeralStorageArgs(size_in_gib=storage)
        if storage is not None else None,
        tags=args.tags,
        # The execution role must be able to pull and log before ECS tries to start a task, and the task role
        # hold its statements before the application makes its first call (an AccessDenied at start-up crashes
        # the task, and on the first deployment the circuit breaker fails the `up`).
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[
            roles.execution_policy, *([roles.task_policy] if roles.task_policy is not None else [])]),
    )


def ecs_service(name: str, args: FargateServiceArgs, task: aws.ecs.TaskDefinition,
                parent: pulumi.Resource) -> aws.ecs.Service:
    """The ECS service running ``task`` in the private subnets, in the mesh, behind the gateway if public."""
    plan, settings, upstreams, version = args.plan, args.settings, args.upstreams, args.version
    service = plan.name
    return aws.ecs.Service(
        name,
        name=upstreams.mesh.apply(lambda mesh: ecs_service_name(mesh, service, version)) if version else service,
        cluster=args.cluster_arn,
        task_definition=after_callees_rolled_out(settings.env_name, args.unit, task.arn, args.callee_rollouts),
        # A strategy, not a launch type, also on on-demand Fargate: a service then moves between FARGATE and
        # FARGATE_SPOT (env `capacity`) in place, with a new deployment, where a launch-type service would have to be
        # replaced (the provider's launch_type is ForceNew; ECS takes a strategy change only with a forced new
        # deployment, which the provider refuses to plan without force_new_deployment: terraform-provider-aws
        # ecs/service.go capacityProviderStrategyCustomizeDiff, PR #43533).
        capacity_provider_strategies=[aws.ecs.ServiceCapacityProviderStrategyArgs(
            capacity_provider=plan.capacity_provider, weight=1, base=0)],
        # Any update of the service starts a new deployment (UpdateService forceNewDeployment), as a task definition
        # change does anyway; with minimum healthy 100 % it replaces tasks without a gap.
        force_new_deployment=True,
        desired_count=plan.desired_count,
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=upstreams.network.private_subnet_ids,
            security_groups=[upstreams.network.service_security_group_id],
            # Tasks are private; they reach AWS APIs through VPC endpoints or the NAT.
            assign_public_ip=False,
        ),
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
        availability_zone_rebalancing=availability_zone_rebalancing(plan),
        deployment_minimum_healthy_percent=100,
        deployment_maximum_percent=DEPLOYMENT_MAXIMUM_PERCENT,
        service_registries=service_registries(plan, upstreams) if args.appmesh else None,
        service_connect_configuration=None if args.appmesh else service_connect(plan, settings, upstreams, args.unit),
        load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
            target_group_arn=args.target_group_arn, container_name=service, container_port=plan.spec.port,
        )] if args.target_group_arn is not None else None,
        # Behind the load balancer: its start-up and the target group's passing checks (ServiceSpec.
        # health_check_grace_seconds). None without one: the container health check's own startPeriod and retries
        # cover the start-up; botocore's ecs model now applies the grace period to container health checks too, but
        # the AWS provider documents it for load-balanced services only and older ECS refused it without one.
        health_check_grace_period_seconds=plan.spec.health_check_grace_seconds
        if args.target_group_arn is not None else None,
        # Tasks carry the service's tags: the task role's scale-in protection grant is held to them
        # (compute_iam.task_protection_statement).
        propagate_tags="SERVICE",
        enable_ecs_managed_tags=True,
        # No ECS Exec: its SSM agent must write /managed-agents and /var/lib/amazon/ssm, which the read-only root
        # filesystem refuses (aws/containers-roadmap#1359); README, "Break-glass", says what to do instead.
        enable_execute_command=False,
        # `up` fails when the service does not reach a steady state in time (a task that cannot pull
        # its image, crashes, or fails health checks), instead of reporting a deployment ECS is still
        # trying. The provider waits for the service's new deployment (terraform-provider-aws ecs/service.go,
        # statusServiceWaitForStable: its ECS deployment status), and a circuit-breaker rollback fails the update
        # (ROLLBACK_SUCCESSFUL is an error there) with the state recording the task definition it asked for:
        # compute's `up` refreshes first (shared.orchestrate.automation.REFRESHED_BEFORE_UP), so the next one
        # deploys it again. Where the wait counts tasks instead (no new ECS deployment recorded), a rollback ends
        # steady and the update succeeds: the orchestrator catches that by reading what ECS runs after compute's
        # update, and a callee's callers do not roll (after_callees_rolled_out).
        wait_for_steady_state=True,
        tags=args.tags,
        # Autoscaling owns the running count after the first deployment. The wait is bounded by the
        # env's compute.steady_state_timeout_minutes (the provider's own default is 20 minutes), and so is a
        # delete's wait for INACTIVE, which comes once every task is stopping (botocore ecs DeleteService), i.e.
        # after a public service's deregistration delay (up to its request timeout): longer than 20 minutes for a
        # long request timeout, which the env rules keep within this timeout (terraform-provider-aws
        # ecs/service.go: Delete DefaultTimeout 20m, resourceServiceDelete waits for INACTIVE with it).
        # Callees first: a Service Connect client resolves only endpoints that exist when it starts; the
        # gateway's listener first: ECS refuses a target group not yet attached to a load balancer.
        # Delete before replace: ECS refuses a service named like one still ACTIVE or DRAINING (DeleteService), and
        # AWS drops the old service's scalable target and policies with it (AWS provider issues). Their resourceId is
        # the same string for the new service, so only the engine's delete-before-replace scan (each dependent whose
        # replace-on-change input reads the replaced resource is deleted first, created after) creates them again.
        opts=pulumi.ResourceOptions(
            parent=parent, ignore_changes=["desiredCount"], depends_on=list(args.start_after),
            delete_before_replace=True,
            custom_timeouts=pulumi.CustomTimeouts(create=settings.steady_state_timeout,
                                                  update=settings.steady_state_timeout,
                                                  delete=settings.steady_state_timeout)),
    )


def availability_zone_rebalancing(plan: ServicePlan) -> str:
    """``DISABLED`` for a consumer, ``ENABLED`` for the rest, always sent. Unsent, ECS enables it on a service created
    since 2025-06-30 and keeps DISABLED on an older one (botocore ecs CreateService/UpdateService
    availabilityZoneRebalancing), so the same program behaved two ways. Enabled, ECS stops tasks in the AZ that runs
    the most of them whenever the spread is uneven (ECS developer guide, "Balancing an Amazon ECS service across
    Availability Zones"); a consumer's spread is often uneven (its scale-in stops the idle tasks, wherever they run,
    where the busy ones are protected: catalog ``protects_jobs``), and a task stopped that way loses the job it holds
    (up to ``max_job_seconds``, hours for training), which goes back to its queue and counts towards the delivery
    limit. A service with no queue holds no job, and rebalancing restores its spread after an AZ event. Either way
    an update in place, no new deployment (UpdateService)."""
    return "DISABLED" if plan.spec.consumes else "ENABLED"


def service_registries(plan: ServicePlan, upstreams: ComputeUpstreams) -> aws.ecs.ServiceServiceRegistriesArgs:
    """App Mesh envs: ECS registers each task in the discovery layer's Cloud Map service, which the
    virtual node discovers its endpoints from. The service has SRV records, so ECS needs the
    container and port to put in them."""
    registry_arn = upstreams.discovery.apply(
        lambda discovery: contract_entry("discovery", discovery.services, "services", plan.name).arn)
    return aws.ecs.ServiceServiceRegistriesArgs(
        registry_arn=registry_arn, container_name=plan.name, container_port=plan.spec.port)


def service_connect(plan: ServicePlan, settings: ComputeSettings, upstreams: ComputeUpstreams,
                    unit: str) -> aws.ecs.ServiceServiceConnectConfigurationArgs:
    """Service Connect envs: the service serves its named port under its discovery name and
    client alias in the mesh layer's namespace; ECS runs the proxy and registers the tasks."""
    mesh = upstreams.mesh
    entry = mesh.apply(lambda values: contract_entry("mesh", values.services, "services", plan.name))
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
            timeout=service_connect_timeout(plan.spec.request_timeout_seconds),
        )],
        # The Service Connect proxy logs next to the app, in the service's own log group.
        log_configuration=aws.ecs.ServiceServiceConnectConfigurationLogConfigurationArgs(
            log_driver="awslogs",
            options=awslogs_options(settings.log_group_name(unit), settings.region, "service-connect"),
        ),
        # A line per request the proxy serves, into that log (ECS guide "Service Connect access logs": it needs the
        # logConfiguration above; Fargate 1.4.0+; a change updates the service in place). Query strings stay out:
        # they may carry tokens. DISABLED is sent, not left to AWS's default, so a refresh finds what was sent.
        access_log_configuration=aws.ecs.ServiceServiceConnectConfigurationAccessLogConfigurationArgs(
            format="JSON", include_query_parameters="DISABLED") if settings.access_logs else None,
    )


def service_connect_timeout(
        request_timeout_seconds: int) -> aws.ecs.ServiceServiceConnectConfigurationServiceTimeoutArgs:
    per_request, idle = service_connect_timeouts(request_timeout_seconds)
    return aws.ecs.ServiceServiceConnectConfigurationServiceTimeoutArgs(
        per_request_timeout_seconds=per_request, idle_timeout_seconds=idle)


#: Scale-out steps on a work queue's ready messages (the alarm fires at 1 or more): (lower, upper, tasks added),
#: the bounds relative to that threshold (Application Auto Scaling StepAdjustment: lower inclusive, upper
#: exclusive, None = unbounded).
BACKLOG_OUT_STEPS: tuple[tuple[int, int | None, int], ...] = ((0, 9, 1), (9, 99, 2), (99, None, 4))
#: Minutes with no message in its queue (ready or unacknowledged) before a backlog-driven consumer loses one task.
BACKLOG_IDLE_PERIODS = SCALE_IN_COOLDOWN_SECONDS // 60
BACKLOG_PERIOD_SECONDS = 60  # the publisher writes one data point per queue each minute
#: Minutes an HTTP consumer's queue must hold nothing and its tasks' CPU stay under :func:`quiet_cpu_percent` before it
#: loses one task: as slow as target tracking's own scale-in (a model reload costs more than an idle task).
QUIET_IN_PERIODS = 15


def quiet_cpu_percent(cpu_target_percent: int) -> float:
    """The average CPU below which an HTTP consumer whose queue holds nothing loses a task: half its target, as one
    task of N >= 2 fewer at most doubles the others' share of the load, which stays under the target, so CPU tracking
    does not add it back."""
    return cpu_target_percent / 2


#: The backlog scale-out's cooldown: a new Fargate task pulls an ML image and loads its model before it consumes,
#: often minutes, and meanwhile the queue still shows its message ready. Within a cooldown a breaching alarm adds
#: tasks only for a larger step (Application Auto Scaling user guide, step scaling, "Cooldown period"), so 60 s
#: would add one task a minute up to max_count for one message, and the extras idle until the queue empties.
BACKLOG_OUT_COOLDOWN_SECONDS = 300


def scale_out_cooldown(spec: ServiceSpec, least: int) -> int:
    """A scale-out policy's cooldown for ``spec``: at least ``least``, and at least the time a new task takes before
    it serves or consumes (placement, image pull and scratch-init, :data:`DEPLOY_OVERHEAD_SECONDS`, then its
    ``startup_seconds``). Until then the metric that scaled it out still says the same: after a shorter cooldown the
    policy adds tasks again for the same load (a slow starter's one waiting message would take it to max_count).
    A longer cooldown holds back no growing need: within it a larger scale-out still adds the difference
    (Application Auto Scaling user guide, "Define cooldown periods"; step scaling, "Cooldown period")."""
    return max(least, spec.startup_seconds + DEPLOY_OVERHEAD_SECONDS)


@dataclass(frozen=True)
class Autoscaling:
    target: aws.appautoscaling.Target
    #: CPU target tracking: every service but a consumer that its backlog alone scales (``wakes_on_backlog``)
    cpu: aws.appautoscaling.Policy | None = None
    #: step policies on the work queue's backlog (consumers in envs that publish per-queue metrics)
    backlog_out: aws.appautoscaling.Policy | None = None
    backlog_in: aws.appautoscaling.Policy | None = None
    alarms: tuple[aws.cloudwatch.MetricAlarm, ...] = ()


def autoscaling(name: str, args: FargateServiceArgs, service: aws.ecs.Service) -> Autoscaling:
    """The scalable target between the plan's min and max task counts, CPU target tracking (save for a consumer no
    request reaches) and, for a consumer where the env publishes per-queue metrics, step scaling on its work queue's
    ready messages.

    A consumer no request reaches (``wakes_on_backlog``) scales on its queue alone: out while messages wait, in
    once nothing is ready or unacknowledged, or, where its app protects the task holding a job
    (``protects_jobs``), while nothing is ready and a consumer holds nothing (one idle task a cooldown). It gets
    no CPU policy: its CPU says how hard the jobs it holds work, not that work waits. A task takes only what is
    ready (its prefetch bounds what it holds), so a task added while
    nothing waits takes no part of a running job; target tracking on the average CPU would still add one for each
    CPU-bound job (one task at 100 % against a 60 % target asks for 2: "scales out proportionally to the metric",
    Application Auto Scaling user guide, target tracking), and with its own scale-in off (low CPU is no sign of no
    work) only the backlog scale-in would remove it, once the queue is empty: an idle task billed for as long as
    the job runs (``max_job_seconds``, 6 hours for training). Step scaling, unlike target tracking, acts on its alarm
    alone, so it scales out of 0 tasks: the queue's figures are published whether or not a task runs.
    A service that serves HTTP keeps CPU tracking for scale-out. Where it also consumes and the env publishes its
    queue's figures, that tracking removes no task (target tracking knows nothing of the jobs its tasks hold, and the
    backlog scale-out it does not see would add back what it removed while messages wait: "caution ... when using
    target tracking scaling policies with step scaling policies", botocore application-autoscaling
    PutScalingPolicy): it loses one task per cooldown once its queue has held nothing, ready or unacknowledged, and
    its CPU stayed under half the target for :data:`QUIET_IN_PERIODS` minutes (the quiet scale-in). Elsewhere (no
    queue, or no figures) CPU tracking scales it in too.
    """
    plan, settings = args.plan, args.settings
    target = aws.appautoscaling.Target(
        name,
        service_namespace="ecs",
        scalable_dimension="ecs:service:DesiredCount",
        resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", service.name),
        min_capacity=plan.min_count,
        max_capacity=plan.max_count,
        opts=pulumi.ResourceOptions(parent=service),
    )
    # A consumer only its queue feeds never scales on its CPU. Where the env publishes no queue metrics (an
    # external broker) it then has no policy at all and runs between min_count and max_count as set: CPU tracking
    # with scale-in would add a task per CPU-bound job and then, the average halved by the idle one, scale in,
    # and ECS may stop the working task, its job redelivered and started over towards the delivery limit.
    namespace = settings.queue_metrics_namespace if plan.backlog_scaling else None  # its queue's figures
    quiet = namespace is not None and not plan.queue_only  # an HTTP consumer with them: the quiet scale-in (below)
    cpu = None if plan.queue_only else cpu_policy(f"{name}-cpu", target, plan, scale_in=not quiet)
    if namespace is None:
        return Autoscaling(target, cpu)
    messaging = args.upstreams.messaging
    dimensions = {"VirtualHost": messaging.apply(lambda values: values.vhost),
                  "Queue": messaging.apply(lambda values: contract_entry("messaging", values.queues, "queues",
                                                                         plan.name))}
    # The step is sized on the least of the alarm's samples (MetricAggregationType "Aggregation to apply to all
    # data points over the evaluation periods", CDK StepScalingPolicyProps): what waited on both, not a stale peak.
    out = step_policy(f"{name}-backlog-out", target, scale_out_cooldown(plan.spec, BACKLOG_OUT_COOLDOWN_SECONDS), [
        aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
            metric_interval_lower_bound=str(lower), metric_interval_upper_bound=None if upper is None else str(upper),
            scaling_adjustment=tasks) for lower, upper, tasks in BACKLOG_OUT_STEPS], aggregation="Minimum")
    alarms = [backlog_alarm(
        f"{settings.env_name}-ml-backlog-out-{args.unit}", namespace, QUEUE_READY_METRIC,
        dimensions,
        f"{plan.name}.work has had messages waiting for {BACKLOG_OUT_PERIODS} minutes: add {args.unit} tasks (step "
        "scaling, README Autoscaling)",
        "GreaterThanOrEqualToThreshold", 1, BACKLOG_OUT_PERIODS, out)]
    backlog_in = None
    if plan.scales_in_while_working:
        # Its app protects the task that holds a job (catalog protects_jobs): ECS stops none of those on scale-in
        # ("your task will not be terminated by scale-in events from Service Auto Scaling or deployments", ECS
        # developer guide, task scale-in protection endpoint), so an idle task may leave while others work.
        backlog_in = step_policy(f"{name}-backlog-in", target, SCALE_IN_COOLDOWN_SECONDS, [
            aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                metric_interval_lower_bound="0", scaling_adjustment=-1)], aggregation="Minimum")
        alarms.append(backlog_alarm(
            f"{settings.env_name}-ml-backlog-in-{args.unit}", namespace,
            QUEUE_IDLE_CONSUMERS_METRIC, dimensions,
            f"{plan.name}.work has had no message ready and an idle consumer for {BACKLOG_IDLE_PERIODS} minutes: "
            f"remove one idle {args.unit} task (down to min_count; its working tasks are protected)",
            "GreaterThanOrEqualToThreshold", 1, BACKLOG_IDLE_PERIODS, backlog_in, statistic="Minimum"))
    elif plan.wakes_on_backlog:
        # One task per cooldown, and only once the queue holds nothing, ready or unacknowledged: ECS picks the task
        # it stops, so while any task holds a job (MessagesReady 0 but MessagesUnacknowledged > 0) scaling in could
        # stop that one, its job redelivered and started over, towards the queue's delivery limit. A task that
        # protects itself from scale-in is never stopped either (ECS developer guide, "Protect your Amazon ECS
        # tasks from being terminated by scale-in events"); this holds without it.
        backlog_in = step_policy(f"{name}-backlog-in", target, SCALE_IN_COOLDOWN_SECONDS, [
            aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                metric_interval_upper_bound="0", scaling_adjustment=-1)])
        alarms.append(backlog_alarm(
            f"{settings.env_name}-ml-backlog-in-{args.unit}", namespace, QUEUE_MESSAGES_METRIC,
            dimensions,
            f"{plan.name}.work has had no message, waiting or in progress, for {BACKLOG_IDLE_PERIODS} minutes: remove "
            f"one idle {args.unit} task (down to min_count)", "LessThanOrEqualToThreshold", 0, BACKLOG_IDLE_PERIODS,
            backlog_in))
    elif quiet:
        backlog_in = step_policy(f"{name}-quiet-in", target, SCALE_IN_COOLDOWN_SECONDS, [
            aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                metric_interval_lower_bound="0", scaling_adjustment=-1)])
        alarms.append(quiet_alarm(f"{settings.env_name}-ml-quiet-in-{args.unit}", namespace,
                                  dimensions, {"ClusterName": args.cluster_name, "ServiceName": service.name}, plan,
                                  args.unit, backlog_in))
    return Autoscaling(target, cpu, out, backlog_in, tuple(alarms))


def cpu_policy(name: str, target: aws.appautoscaling.Target, plan: ServicePlan,
               scale_in: bool = True) -> aws.appautoscaling.Policy:
    """Target tracking of ``target`` on its tasks' average CPU at the plan's ``cpu_target_percent``; with
    ``scale_in`` off it only adds tasks (``DisableScaleIn``)."""
    tracking = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs
    cpu_metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs
    return aws.appautoscaling.Policy(
        name,
        policy_type="TargetTrackingScaling",
        resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension,
        service_namespace=target.service_namespace,
        target_tracking_scaling_policy_configuration=tracking(
            target_value=float(plan.cpu_target_percent),
            predefined_metric_specification=cpu_metric(predefined_metric_type="ECSServiceAverageCPUUtilization"),
            disable_scale_in=None if scale_in else True,
            # Scale out once per new task's start (not before it can take load), scale in slowly: a model reload costs
            # more than an idle task.
            scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
            scale_out_cooldown=scale_out_cooldown(plan.spec, SCALE_OUT_COOLDOWN_SECONDS),
        ),
        opts=pulumi.ResourceOptions(parent=target),
    )


def step_policy(name: str, target: aws.appautoscaling.Target, cooldown: int,
                steps: list[aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs],
                aggregation: str = "Maximum") -> aws.appautoscaling.Policy:
    """A step scaling policy of ``target`` that adds ``steps``' task counts (``ChangeInCapacity``; Application Auto
    Scaling holds the result within the target's min and max), one activity per ``cooldown``."""
    return aws.appautoscaling.Policy(
        name, policy_type="StepScaling", resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
        step_scaling_policy_configuration=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
            adjustment_type="ChangeInCapacity", cooldown=cooldown, metric_aggregation_type=aggregation,
            step_adjustments=steps),
        opts=pulumi.ResourceOptions(parent=target))


def backlog_alarm(alarm_name: str, namespace: str, metric: str, dimensions: Mapping[str, pulumi.Input[str]],
                  description: str, comparison: str, threshold: int, periods: int,
                  policy: aws.appautoscaling.Policy, statistic: str = "Maximum") -> aws.cloudwatch.MetricAlarm:
    """The alarm that runs ``policy`` on the work queue's ``metric`` (the queue metrics publisher's series: ready
    messages to scale out; all messages, or idle consumers for a consumer that protects its working tasks, to scale
    in), each period's ``statistic`` of its points.
    Missing data is not breaching: without figures (the publisher failing, which its own alarms report) the
    service neither grows nor shrinks. No notification: it scales, the queue alarms notify."""
    return aws.cloudwatch.MetricAlarm(
        alarm_name, name=alarm_name, alarm_description=description, comparison_operator=comparison,
        threshold=threshold, evaluation_periods=periods, datapoints_to_alarm=periods,
        treat_missing_data="notBreaching", namespace=namespace, metric_name=metric, statistic=statistic,
        period=BACKLOG_PERIOD_SECONDS, dimensions=dict(dimensions), alarm_actions=[policy.arn],
        opts=pulumi.ResourceOptions(parent=policy))


def quiet_alarm(alarm_name: str, namespace: str, queue: Mapping[str, pulumi.Input[str]],
                service: Mapping[str, pulumi.Input[str]], plan: ServicePlan, unit: str,
                policy: aws.appautoscaling.Policy) -> aws.cloudwatch.MetricAlarm:
    """The alarm that runs an HTTP consumer's quiet scale-in ``policy``: for :data:`QUIET_IN_PERIODS` minutes its work
    queue (``queue``: the publisher's dimensions) held no message, ready or unacknowledged, so no task holds a job a
    stop would cut, and its tasks' average CPU (``AWS/ECS`` ``CPUUtilization`` of ``service``) stayed under
    :func:`quiet_cpu_percent`. A minute without either figure (the publisher failing, no task) is no quiet minute
    (metric math yields no point there; missing data is not breaching): the service is not scaled in."""
    quiet_cpu = quiet_cpu_percent(plan.cpu_target_percent)
    queries = (metric_query("cpu", ECS_NAMESPACE, "CPUUtilization", dict(service), "Average"),
               metric_query("messages", namespace, QUEUE_MESSAGES_METRIC, dict(queue), "Maximum"),
               Query(id="quiet", label="queue empty and CPU low", return_data=True,
                     expression=f"IF(messages == 0 AND cpu < {quiet_cpu:g}, 1, 0)"))
    return aws.cloudwatch.MetricAlarm(
        alarm_name, name=alarm_name,
        alarm_description=(f"{plan.name}.work has held no message and {unit}'s CPU stayed under {quiet_cpu:g} % for "
                           f"{QUIET_IN_PERIODS} minutes: remove one {unit} task (down to min_count; README "
                           "Autoscaling)"),
        comparison_operator="GreaterThanOrEqualToThreshold", threshold=1, evaluation_periods=QUIET_IN_PERIODS,
        datapoints_to_alarm=QUIET_IN_PERIODS, treat_missing_data="notBreaching",
        metric_queries=[alarm_query(query, BACKLOG_PERIOD_SECONDS) for query in queries],
        alarm_actions=[policy.arn], opts=pulumi.ResourceOptions(parent=policy))


class FargateService(pulumi.ComponentResource):
    """A catalog service running on Fargate in the private subnets, in the mesh, autoscaled."""

    def __init__(self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:FargateService", name, None, opts)
        #: the service, or its canary version (App Mesh), as resource and log names know it
        self.unit = args.unit
        self.log_group = service_log_group(name, args, self)
        roles = service_roles(name, args, self.log_group, self)
        self.execution_role, self.execution_policy = roles.execution_role, roles.execution_policy
        self.task_role, self.task_policy = roles.task_role, roles.task_policy
        upstreams = args.upstreams
        self.wiring: pulumi.Output[ContainerWiring] = pulumi.Output.all(
            repository_url=args.repository_url, log_group=self.log_group.name,
            discovery=upstreams.discovery, mesh=upstreams.mesh, messaging=upstreams.messaging,
        ).apply(lambda values: service_wiring(args.plan, args.settings, version=args.version,
                                              running_callees=dict(args.running_callees), **values))
        self.image: pulumi.Output[str] = self.wiring.apply(lambda wiring: wiring.image)
        self.task_definition = task_definition(name, args, roles, self.wiring, self)
        self.service = ecs_service(name, args, self.task_definition, self)
        self.scaling = autoscaling(name, args, self.service)
        self.scaling_target = self.scaling.target
        self.register_outputs({"service_arn": self.service.arn, "image": self.image})

    @property
    def rollout(self) -> CalleeRollout:
        """The task definition its ECS service runs (as the provider read it back) beside the one this `up`
        registered."""
        return CalleeRollout(self.unit, self.service.task_definition, self.task_definition.arn)
