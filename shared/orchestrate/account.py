"""Is the AWS account ready for what a run creates? Service-linked roles and service quotas, before any layer.

A brand-new account fails a first ``up`` in two ways no layer can prevent by itself:

- **Service-linked roles** are per account, not per env, so no stack may own one (an
  ``aws.iam.ServiceLinkedRole`` fails with "has been taken" wherever the role already exists). The
  services create theirs on first use with the caller's ``iam:CreateServiceLinkedRole``, but ECS does
  so in CreateCluster without waiting for it, and the first CreateService after it can fail with
  "Unable to assume the service linked role" (ECS API reference, CreateCluster: "Amazon ECS attempts
  to create the Amazon ECS service-linked role"; a re-run then works). So the preflight reads each role
  the run's layers need (IAM GetRole) and, for ``up``, creates the missing ones
  (CreateServiceLinkedRole; "has been taken" means another run made it meanwhile) after the run was
  confirmed and before the first layer. ``preview`` and ``--dry`` only report.
- **Service quotas**: the env's need, computed from the env file and the catalog, against the quota
  applied to the account (Service Quotas GetServiceQuota, else GetAWSDefaultServiceQuota). A need that
  certainly exceeds its quota (e.g. the Fargate vCPUs of every service at its desired count) refuses
  ``up`` with exit 2 before any layer; a later peak above it (every service at ``max_count``, or a
  rolling deployment at 200 %) is a note, as is a quota that cannot be read (AccessDenied, no such
  quota). VPCs, internet gateways and Elastic IPs count what the region already holds (less the env's
  own, by ``Name`` tag); the other quotas are compared with the env's own need, though other resources
  of the account share them.

- **The role boundary** (:mod:`shared.role_boundary`) every IAM role of the stacks names: read where the run has a
  layer that creates roles (IAM GetPolicy); missing, ``up`` is refused (the layer would stop at its first role).

Credentials: those of :mod:`shared.images` (``PLATFORM_AWS_PROFILE_<ENV>`` or the default chain), refused
(exit 2) when they are not of the env's ``account_id`` -- before anything is created. Every call has
short timeouts and one retry, so a machine without credentials or network gets an answer within seconds.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TextIO

from shared.aws_limits import CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE
from shared.catalog import catalog_path
from shared.envs import EnvConfig, env_path
from shared.errors import PlatformError
from shared.fargate import DEPLOYMENT_MAXIMUM_PERCENT, FARGATE_ZONE_IDS
from shared.images import (
    AwsAccessError,
    ClientFactory,
    SessionClients,
    aws_error_code,
    aws_errors,
    other_envs_repositories,
    registry_settings,
    verify_account,
)
from shared.orchestrate.interfaces import ForeignResources, VpcScope, read_foreign_resources

if TYPE_CHECKING:
    from shared.components.compute_plan import ServicePlan  # imported where used, as plan_service is

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
#: Every attempt, the first included: one retry. (botocore Config: ``total_max_attempts`` counts every attempt,
#: ``max_attempts`` only the retries after the first.)
MAX_ATTEMPTS = 2
#: Days past its NextRotationDate before the broker admin's secret is reported as not rotated (Secrets Manager picks
#: the hour within the due day, and a rotation takes minutes).
ROTATION_GRACE_DAYS = 1
#: How long a created role is waited for in IAM's reads (eventually consistent) before the first layer runs.
ROLE_VISIBLE_ATTEMPTS = 10
ROLE_VISIBLE_SLEEP_S = 2.0
#: After a role was created, before the first layer: IAM is eventually consistent, so the role reads back before
#: every service can assume it (the AWS provider retries its own resources' IAM eventual-consistency errors for
#: the same reason), and a service that cannot assume it yet fails as if it were missing.
ROLE_SETTLE_S = 10.0
#: The KMS key states in which a key decrypts: Updating is a multi-Region key whose primary changes, usable meanwhile
#: (KMS developer guide, "Change the primary key in a set of multi-Region keys").
DECRYPTING_KEY_STATES = frozenset({"Enabled", "Updating"})
#: Fargate task cpu units per vCPU (ECS task definition cpu: "1024 CPU units = 1 vCPU").
CPU_UNITS_PER_VCPU = 1024

DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
#: The layers that create IAM roles, each capped by the env's role boundary (shared.role_boundary): network's flow-log
#: role, broker's rotation function and deploy runner, messaging's queue metrics publisher, compute's task roles
ROLE_LAYERS = ("network", "broker", "messaging", "compute")


#: ACM statuses of a certificate that was never issued (botocore acm CertificateStatus) -> what to do about it
GATEWAY_CERTIFICATE_UNUSABLE = {
    "PENDING_VALIDATION": "validate the domain (ACM console, the certificate's domains) and wait until ACM shows it "
                          "ISSUED",
    "VALIDATION_TIMED_OUT": "request a new certificate (ACM gives up on validation after 72 hours) and name it",
    "FAILED": "request a new certificate and name it",
}


def gateway_services(env: EnvConfig) -> list[str]:
    """The services whose gateway listener compute creates with ``compute.certificate_arn``: with
    ``compute.public_gateway``, each public catalog service with an image in the release (compute creates the gateway
    of such a service only: shared.components.compute)."""
    from shared.catalog import load_catalog
    from shared.components.compute import plan_service

    if not env.compute.public_gateway or not env.compute.certificate_arn:
        return []
    catalog = load_catalog()
    return [spec.name for spec in catalog.services.values()
            if spec.public and plan_service(env, catalog, spec.name).release_ref is not None]


def _served_by(service: str, in_use_by: Sequence[str]) -> bool:
    """Whether ``service``'s gateway load balancer is among a certificate's users (ACM DescribeCertificate
    ``InUseBy``): Pulumi names it ``<service>-alb`` and a 7-character suffix (shared.gateway_names)."""
    from shared.gateway_names import load_balancer_resource_name

    name = re.escape(load_balancer_resource_name(service))
    return any(re.search(rf":loadbalancer/app/{name}-[0-9a-z]{{7}}/", str(arn)) for arn in in_use_by)


class AccountError(PlatformError):
    """The account cannot take what the run creates (a quota, a role that cannot be created): exit 2."""

    exit_code = 2


class PreflightClients(SessionClients):
    """The preflight's :data:`ClientFactory`: :class:`shared.images.SessionClients` (one session per profile and
    region for the check) with short timeouts and one retry, so the preflight answers quickly where AWS cannot be
    reached."""

    def __init__(self) -> None:
        from botocore.config import Config

        super().__init__(Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                                retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"}))


# -- what the layers need -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedRole:
    service: str
    """The AWS service principal (``aws iam create-service-linked-role --aws-service-name``)."""
    role_name: str
    layer: str
    why: str

    @property
    def command(self) -> str:
        return f"aws iam create-service-linked-role --aws-service-name {self.service}"


def linked_roles(env: EnvConfig, layers: Iterable[str]) -> list[LinkedRole]:
    """The service-linked roles the resources of ``layers`` need in ``env``'s account, in layer order."""
    from shared.catalog import load_catalog
    from shared.components.image_replication import replica_registries

    chosen = set(layers)
    roles: list[LinkedRole] = []
    if "broker" in chosen and env.messaging.broker == "amazon-mq":
        # Amazon MQ developer guide, "Using service-linked roles for Amazon MQ": the broker's network
        # interfaces and VPC endpoints are managed through AWSServiceRoleForAmazonMQ.
        roles.append(LinkedRole("mq.amazonaws.com", "AWSServiceRoleForAmazonMQ", "broker",
                                "the Amazon MQ broker"))
    if "mesh" in chosen and env.mesh.provider == "appmesh":
        # App Mesh user guide, "Using service-linked roles for App Mesh" (it discovers Cloud Map instances).
        roles.append(LinkedRole("appmesh.amazonaws.com", "AWSServiceRoleForAppMesh", "mesh",
                                "the App Mesh mesh and its virtual nodes"))
    if "compute" in chosen:
        # ECS API reference, CreateCluster: ECS only attempts to create it; a CreateService right after can
        # still fail "Unable to assume the service linked role".
        roles.append(LinkedRole("ecs.amazonaws.com", "AWSServiceRoleForECS", "compute",
                                "the ECS cluster and its Fargate services (Service Connect)"))
        # Application Auto Scaling user guide, "Amazon ECS and Application Auto Scaling".
        roles.append(LinkedRole("ecs.application-autoscaling.amazonaws.com",
                                "AWSServiceRoleForApplicationAutoScaling_ECSService", "compute",
                                "the ECS services' scalable targets"))
        if env.compute.public_gateway and any(spec.public for spec in load_catalog().services.values()):
            # Elastic Load Balancing user guide, "Elastic Load Balancing service-linked role".
            roles.append(LinkedRole("elasticloadbalancing.amazonaws.com", "AWSServiceRoleForElasticLoadBalancing",
                                    "compute", "the internet-facing ALB of a public service"))
        if replica_registries(env):
            # Amazon ECR user guide, "Amazon ECR service-linked role for replication".
            roles.append(LinkedRole("replication.ecr.amazonaws.com", "AWSServiceRoleForECRReplication",
                                    "compute", "the registry's replication to the envs reading from it"))
    return roles


@dataclass(frozen=True)
class NamedRole:
    """An IAM role a layer names after the env (not auto-named)."""

    layer: str
    role_name: str
    what: str


def account_wide_roles(env: EnvConfig, layers: Iterable[str]) -> list[NamedRole]:
    """The IAM roles the resources of ``layers`` name after ``env``, in layer order. IAM names are unique in the
    whole account, in no region (botocore iam CreateRole: EntityAlreadyExists), so one that exists where the layer's
    stack does not is an env of this name deployed from elsewhere -- another region, env folder, org or backend --
    and the layer's create would fail on it halfway through an `up`."""
    from shared.broker_names import (
        deploy_runner_role_name,
        flow_log_role_name,
        rotation_function_name,
        runner_jobs_role_name,
    )
    from shared.components.broker_rotation import rotation_days
    from shared.components.queue_metrics import publisher_name
    from shared.envs import publishes_queue_metrics

    chosen = set(layers)
    roles: list[NamedRole] = []
    if "network" in chosen:
        roles.append(NamedRole("network", flow_log_role_name(env.name), "the VPC flow logs' role"))
    if "broker" in chosen:
        roles.append(NamedRole("broker", deploy_runner_role_name(env.name), "the deploy runner's service role"))
        if env.messaging.deploy_runner.github_repository:
            roles.append(NamedRole("broker", runner_jobs_role_name(env.name),
                                   "the deploy runner's role for GitHub Actions jobs"))
        if rotation_days(env) is not None:
            roles.append(NamedRole("broker", rotation_function_name(env.name), "the broker admin rotation's role"))
    if "messaging" in chosen and publishes_queue_metrics(env):
        roles.append(NamedRole("messaging", publisher_name(env.name), "the queue metrics publisher's role"))
    return roles


@dataclass(frozen=True)
class QuotaNeed:
    service_code: str
    quota_code: str
    name: str
    layer: str
    need: float
    """What the run certainly needs: above the quota, the layer cannot succeed."""
    peak: float
    """What the env may need later (scale-out, a rolling deployment): above the quota, a note."""
    what: str
    counted: str | None = None
    """A key of :data:`USAGE`: the account's resources of this quota are counted too (the env's own, found by
    their ``Name`` tag, are not needed again)."""
    unapplied: str | None = None
    """Said in a note where no value is applied to the account and AWS's default stands in for it (a quota the
    service may hold lower for a new account than Service Quotas shows)."""
    blocked: str | None = None
    """What cannot succeed above the quota, where it is not the layer's ``up`` itself."""


#: What the account already holds of a quota, read with EC2 (key -> (describe call, list key, the env's own
#: ``Name`` tag prefix)); the network layer names its VPC ``<env>-vpc``, its internet gateway ``<env>-igw``
#: and its NAT addresses ``<env>-nat-<az>``.
USAGE: dict[str, tuple[str, str, str]] = {
    "vpcs": ("describe_vpcs", "Vpcs", "{env}-vpc"),
    "internet-gateways": ("describe_internet_gateways", "InternetGateways", "{env}-igw"),
    "elastic-ips": ("describe_addresses", "Addresses", "{env}-nat-"),
}


def _vcpus(cpu_units: int, count: int) -> float:
    return cpu_units * count / CPU_UNITS_PER_VCPU


def quota_needs(env: EnvConfig, layers: Iterable[str]) -> list[QuotaNeed]:
    """The env's need of each quota its ``layers`` draw on, from the env file and the catalog."""
    from shared.components.network import interface_endpoints, nat_gateway_count

    chosen = set(layers)
    needs: list[QuotaNeed] = []
    if "network" in chosen:
        nats = nat_gateway_count(env.network.nat, env.network.az_count)
        interface = interface_endpoints(env.network.endpoints)
        # Amazon VPC user guide, "Amazon VPC quotas" (codes as listed by Service Quotas for service "vpc").
        needs.append(QuotaNeed("vpc", "L-F678F1CE", "VPCs per Region", "network", 1, 1, "the env's VPC",
                               counted="vpcs"))
        needs.append(QuotaNeed("vpc", "L-A4707A72", "Internet gateways per Region", "network", 1, 1,
                               "the VPC's internet gateway", counted="internet-gateways"))
        if nats:
            # "Elastic IP addresses per Region" of the VPC guide is Service Quotas' ec2 "EC2-VPC Elastic IPs".
            needs.append(QuotaNeed("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", "network", nats, nats,
                                   f"one per NAT gateway (network.nat: {env.network.nat})", counted="elastic-ips"))
            needs.append(QuotaNeed("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", "network", 1, 1,
                                   "one NAT gateway per AZ at most"))
        if interface:
            needs.append(QuotaNeed("vpc", "L-29B6F2EB", "Interface VPC endpoints per VPC", "network",
                                   len(interface), len(interface), f"network.endpoints {', '.join(interface)}"))
    if chosen & {"network", "compute"}:
        needs.append(_service_group_rules_need(env, "network" if "network" in chosen else "compute"))
    if "broker" in chosen:
        needs.append(_deploy_runner_builds_need(env))
    if "discovery" in chosen:
        # AWS Cloud Map developer guide, "AWS Cloud Map service quotas" (Service Quotas service "AWSCloudMap").
        needs.append(QuotaNeed("AWSCloudMap", "L-0FE3F50E", "Namespaces per Region", "discovery", 2, 2,
                               "the private DNS namespace and the HTTP (Service Connect) namespace"))
    if "compute" in chosen:
        needs.extend(_compute_needs(env))
    return needs


#: Service Quotas' CodeBuild quota of concurrently running builds per compute type the deploy runner may use (as
#: `aws service-quotas list-service-quotas --service-code codebuild` lists them).
CODEBUILD_CONCURRENT_BUILDS: dict[str, tuple[str, str]] = {
    "BUILD_GENERAL1_SMALL": ("L-9D07B6EF", "Concurrently running builds for Linux/Small environment"),
    "BUILD_GENERAL1_MEDIUM": ("L-2DC20C30", "Concurrently running builds for Linux/Medium environment"),
    "BUILD_GENERAL1_LARGE": ("L-4DDC4A99", "Concurrently running builds for Linux/Large environment"),
}


def _deploy_runner_builds_need(env: EnvConfig) -> QuotaNeed:
    """The builds of the broker layer's deploy runner. Where its CodeBuild project allows one build at a time (no
    GitHub source: :attr:`DeployRunnerArgs.concurrent_build_limit`), CreateProject refuses a project limit above the
    account's ("Project-level concurrent build limit cannot exceed the account-level concurrent build limit",
    terraform-provider-aws #37748; CodeBuild user guide, "Enable concurrent build limit"), and CodeBuild sets a new
    account's quota from "internal metrics", seen at 0: broker's `up` would fail there after network and discovery,
    with the broker's half-hour create under way. A project without the limit (a GitHub Actions runner) is created
    whatever the quota, but its builds, the workflows' jobs in the VPC, wait for it: at 0 none ever starts, and the
    env's deploy stops at its first job there (review-quota Q1)."""
    from shared.components.deploy_runner import DeployRunnerArgs

    compute_type = env.messaging.deploy_runner.compute_type
    code, name = CODEBUILD_CONCURRENT_BUILDS[compute_type]
    below = "CodeBuild may still hold a new account below AWS's default (\"internal metrics\", CodeBuild quotas)"
    if DeployRunnerArgs.from_env(env).concurrent_build_limit is None:
        unapplied = (f"{below}: where a job on the deploy runner waits and never starts, ask for the quota with this "
                     "command, or AWS Support")
        return QuotaNeed("codebuild", code, name, "broker", 1, 1,
                         f"each GitHub Actions job in the VPC is a build of the deploy runner's project on "
                         f"{compute_type} (messaging.deploy_runner.compute_type), and none starts while the account "
                         "may run none", unapplied=unapplied,
                         blocked=f"the jobs of {env.name}'s workflows on the deploy runner (messaging's deploy, "
                                 "the settle check)")
    unapplied = (f"{below}: where broker's up fails with \"Project-level concurrent build limit cannot exceed the "
                 "account-level concurrent build limit\", ask for the quota with this command, or AWS Support")
    return QuotaNeed("codebuild", code, name, "broker", 1, 1,
                     f"the deploy runner's project, one build at a time on {compute_type} "
                     "(messaging.deploy_runner.compute_type)", unapplied=unapplied)


def service_group_rules(env: EnvConfig) -> tuple[int, int]:
    """(ingress, egress) rules of the tasks' security group: the network layer's, an ingress and an egress rule per
    range of consecutive called services' ports (shared.components.network.port_ranges) and HTTPS out to the
    interface endpoints, to S3's prefix list and through the NAT (shared.components.network,
    VpcNetwork._service_rules), and the compute layer's, an ingress rule per public
    service's ALB and one egress rule to the broker (shared.components.gateway, shared.components.broker_egress).
    A referenced group and the AWS-managed S3 prefix list count as one rule each (Amazon VPC quotas)."""
    from shared.catalog import load_catalog
    from shared.components.network import interface_endpoints, nat_gateway_count, port_ranges
    from shared.port_retirement import called_service_ports

    catalog = load_catalog()
    called = len(port_ranges(called_service_ports(catalog)))
    public = sum(1 for spec in catalog if spec.public) if env.compute.public_gateway else 0
    fixed_egress = (bool(interface_endpoints(env.network.endpoints)) + ("s3" in env.network.endpoints)
                    + bool(nat_gateway_count(env.network.nat, env.network.az_count)) + 1)
    return called + public, called + fixed_egress


def _service_group_rules_need(env: EnvConfig, layer: str) -> QuotaNeed:
    ingress, egress = service_group_rules(env)
    # Amazon VPC user guide, "Amazon VPC quotas": inbound or outbound rules per security group, 60 by default,
    # counted per direction (Service Quotas code L-0EA8095F).
    return QuotaNeed("vpc", "L-0EA8095F", "Inbound or outbound rules per security group", layer,
                     max(ingress, egress), max(ingress, egress),
                     f"the tasks' security group: {ingress} inbound, {egress} outbound (a rule per range of called "
                     "services' ports each way, per public service's load balancer, to the endpoints, S3, the NAT, "
                     "the broker)")


def released_units(env: EnvConfig) -> list[tuple[ServicePlan, int]]:
    """Each service of the env's release (a service without an image gets only its repository) with its number of
    units: one, or one per canary version (App Mesh), each an ECS service with its own task definition and roles."""
    from shared.catalog import load_catalog
    from shared.components.compute import plan_service

    catalog = load_catalog()
    plans = [plan_service(env, catalog, name) for name in catalog.creation_order()]
    return [(plan, max(1, len(plan.versions))) for plan in plans if plan.release_ref is not None]


#: The IAM roles of one compute unit: its execution role and its task role (shared.components.compute_service).
ROLES_PER_UNIT = 2


def roles_declared(env: EnvConfig, layers: Iterable[str]) -> dict[str, int]:
    """How many IAM roles each of ``layers`` creates in ``env`` (layers creating none left out): the ones named after
    the env (:func:`account_wide_roles`) and compute's auto-named two per released unit."""
    declared = Counter(role.layer for role in account_wide_roles(env, layers))
    if "compute" in set(layers):
        declared["compute"] += ROLES_PER_UNIT * sum(units for _, units in released_units(env))
    return {layer: count for layer, count in declared.items() if count}


#: Fargate capacity provider -> its vCPU quota (service code "fargate"): ECS developer guide, "Amazon ECS service
#: quotas" (Fargate): "Fargate On-Demand vCPU resource count" L-3032A538, "Fargate Spot vCPU resource count" L-36FBB829.
FARGATE_VCPU_QUOTAS: dict[str, tuple[str, str]] = {
    "FARGATE": ("L-3032A538", "Fargate On-Demand vCPU resource count"),
    "FARGATE_SPOT": ("L-36FBB829", "Fargate Spot vCPU resource count"),
}


def _fargate_need(provider: str, running: list[tuple[ServicePlan, int]]) -> QuotaNeed:
    """The vCPUs ``running`` (the released units on ``provider``) need of its quota."""
    desired = sum(_vcpus(plan.cpu, plan.desired_count * units) for plan, units in running)
    # A release rolls each service with its minimum healthy percent at 100: a new task starts before an old one stops,
    # so a quota of exactly the desired tasks lets the first `up` create them and then stalls every release of the
    # largest service until compute's steady-state timeout (review-cost C2). One task of the largest more is the least.
    largest = max(running, key=lambda entry: entry[0].cpu)[0] if running else None
    headroom = _vcpus(largest.cpu, 1) if largest is not None else 0.0
    peak = sum(_vcpus(plan.cpu, plan.max_count * units) for plan, units in running) * DEPLOYMENT_MAXIMUM_PERCENT / 100
    parts = ", ".join(f"{plan.name} {plan.cpu / CPU_UNITS_PER_VCPU:g} x {plan.desired_count * units}"
                      f" (max {plan.max_count * units})" for plan, units in running)
    rolling = (f"; and {headroom:g} for one more {largest.name} task while a release replaces one (minimum healthy "
               "100 %)") if largest is not None else ""
    code, quota = FARGATE_VCPU_QUOTAS[provider]
    return QuotaNeed("fargate", code, quota, "compute", desired + headroom, max(peak, desired + headroom),
                     f"vCPU x desired count of each released service on {provider}: {parts}{rolling}; peak: every "
                     f"service at max_count during a rolling deployment ({DEPLOYMENT_MAXIMUM_PERCENT} %)",
                     unapplied=("a new account's Fargate vCPUs can be a few, below AWS's default, until its use "
                                "grows: where compute's tasks stay PROVISIONING or ECS says \"You've reached the "
                                "limit on the number of vCPUs you can run concurrently\", ask for the quota with "
                                "this command"))


def _compute_needs(env: EnvConfig) -> list[QuotaNeed]:
    running = released_units(env)
    # On-demand always (its count is the preflight's first figure); Spot where a service runs there (env `capacity`).
    needs = [_fargate_need(provider, [(plan, units) for plan, units in running if plan.capacity_provider == provider])
             for provider in FARGATE_VCPU_QUOTAS
             if provider == "FARGATE" or any(plan.capacity_provider == provider for plan, _ in running)]
    # Every task is an instance of its service's Cloud Map service, all of them in the env's one namespace
    # (shared.aws_limits); a Cloud Map service's own 1,000 is refused by the env loader.
    needs.append(QuotaNeed(
        "AWSCloudMap", CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE, "Instances per namespace", "compute",
        sum(plan.desired_count * units for plan, units in running),
        sum(plan.max_count * units for plan, units in running) * DEPLOYMENT_MAXIMUM_PERCENT / 100,
        f"one instance per task of each released service; peak: every service at max_count during a rolling "
        f"deployment ({DEPLOYMENT_MAXIMUM_PERCENT} %)"))
    public = [plan.name for plan, _ in running if plan.spec.public] if env.compute.public_gateway else []
    if public:
        # Elastic Load Balancing, "Quotas for your Application Load Balancers" (Service Quotas code L-53DA6B97).
        needs.append(QuotaNeed("elasticloadbalancing", "L-53DA6B97", "Application Load Balancers per Region",
                               "compute", len(public), len(public), f"one per public service: {', '.join(public)}"))
    return needs


# -- asking AWS -------------------------------------------------------------------------------------------


class _KeptSecret(NamedTuple):
    """A secret a layer creates by name (:meth:`AwsAccountCheck._find_secrets_pending_deletion`), and what its
    refusal says where Secrets Manager holds it scheduled for deletion."""
    name: str
    key: str        #: the file and key that make the layer create it
    holder: str     #: who keeps what in it
    cause: str      #: how it came to be scheduled for deletion
    layer: str      #: the layer whose CreateSecret would fail
    after: str      #: what else that failure means
    old: str        #: whose the old value is, gone with a delete for good
    readme: str     #: where README says more about restoring it


@dataclass(frozen=True)
class RunningBroker:
    """The env's Amazon MQ broker as DescribeBroker answers now (botocore mq ``DescribeBrokerResponse``); a field AWS
    did not answer is None."""

    broker_id: str
    state: str | None
    """``BrokerState``: RUNNING, REBOOT_IN_PROGRESS, CRITICAL_ACTION_REQUIRED, ..."""
    instance_type: str | None
    """``HostInstanceType``: a new one is ``PendingHostInstanceType`` until a reboot or the maintenance window."""
    deployment_mode: str | None
    engine_version: str | None
    """``EngineVersion``, major.minor.patch."""
    actions_required: tuple[str, ...] = ()
    """``ActionsRequired[].ActionRequiredCode``: why a CRITICAL_ACTION_REQUIRED broker needs its operator (as
    RABBITMQ_BROKER_NOT_UPGRADEABLE_TO_V4: :func:`shared.broker_upgrade.going_back`)."""
    pending_engine_version: str | None = None
    """``PendingEngineVersion``: the engine version the broker was set to and has not applied yet (at a reboot or in
    the maintenance window); None: nothing pending."""


@dataclass
class AccountReport:
    """What the preflight found: roles to create, quota refusals, notes for the user."""

    missing: list[LinkedRole] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    """What was checked and found in order (printed as ``account:`` lines)."""
    deployed_vpcs: list[str] = field(default_factory=list)
    """VPCs of the account and region that carry the env's network layer's default tags (``env``, ``layer:
    network``, ``managed-by: pulumi``): the env's network is deployed, by whatever stack
    (:func:`shared.orchestrate.identity.stackless_refusal`)."""
    existing_roles: list[NamedRole] = field(default_factory=list)
    """The roles of :func:`account_wide_roles` the account holds already (the orchestrator refuses ``up`` where the
    layer's stack does not exist: :func:`named_roles_refusal`)."""
    brokers: dict[str, str] | None = None
    """The Amazon MQ brokers of the account and region (id -> name), read where the run has the broker or messaging
    layer of an ``amazon-mq`` env; None: not read. The orchestrator refuses a run whose broker stack records a
    broker that is not among them (:func:`lost_broker_refusal`)."""
    deleting_brokers: frozenset[str] = frozenset()
    """Those of :attr:`brokers` Amazon MQ is deleting (BrokerState DELETION_IN_PROGRESS: ListBrokers lists a broker
    until its delete ends), which a teardown takes for gone (shared.orchestrate.cli.check_lost_broker_teardown)."""
    caller_judged: list[str] = field(default_factory=list)
    """The refusals (of :attr:`refusals`) from EC2 DryRun probes, which judge the credentials that ask: ``up``'s are
    the deploy role, a pull request's preview has the read-only role (ReadOnlyAccess grants no create), so a preview
    does not call ``up`` refused for them."""
    broker_pending: dict[str, str] = field(default_factory=dict)
    """What the env's broker has asked for and not applied yet (botocore mq DescribeBroker ``PendingEngineVersion``
    -> ``engine_version``, ``PendingHostInstanceType`` -> ``instance_type``, ``Configurations.Pending`` ->
    ``configuration``): Amazon MQ applies them at a reboot or in
    the maintenance window (:func:`shared.broker_upgrade.pending_move_refusal`)."""
    broker_running: RunningBroker | None = None
    """What the env's broker is and runs now (DescribeBroker); None: not read
    (:func:`shared.orchestrate.cli.rebooting_broker_refusal`, :func:`shared.orchestrate.cli.unapplied_type_refusal`)."""


class AccountCheck(Protocol):
    """The orchestrator's view of the preflight (:class:`AwsAccountCheck` in real runs)."""

    def check(self, env: EnvConfig, layers: Sequence[str]) -> AccountReport:
        """Read-only: which roles are missing, which quotas are too low (:class:`~shared.images.AwsAccessError`,
        exit 2, when the credentials are of another account or none can be found)."""

    def create(self, env: EnvConfig, roles: Sequence[LinkedRole]) -> list[str]:
        """Create ``roles`` (idempotent); what was done, one line each; AccountError when it cannot."""

    def program_secrets(self, env: EnvConfig, layers: Sequence[str]) -> AccountReport:
        """Read-only, for a ``refresh`` or ``destroy``, which run the layers' programs too: the secrets a program of
        ``layers`` reads that no layer creates (an ``external`` broker's admin), where absent (``refusals``)."""

    def brokers(self, env: EnvConfig) -> AccountReport:
        """Read-only: the account's Amazon MQ brokers in the env's region (``brokers``; None and a note where they
        cannot be read), for a ``refresh`` or ``destroy`` that would call the env's broker."""

    def destroy_blockers(self, env: EnvConfig, layers: Sequence[str],
                         held: Mapping[str, Sequence[str] | None]) -> AccountReport:
        """Read-only, before a ``destroy`` of ``layers``: what of theirs AWS refuses to delete whatever the state says
        (a log group with CloudWatch Logs deletion protection on), as ``refusals``; what cannot be read, ``notes``.
        ``held``: each layer's log groups as its state holds them (None: unknown), the ones its destroy deletes."""

    def foreign_resources(self, env: EnvConfig, scope: VpcScope) -> ForeignResources:
        """Read-only, before a destroy of network or an `up` that drops AZs: what in the VPC of ``scope`` no layer
        deletes (:mod:`shared.orchestrate.interfaces`; :class:`~shared.images.AwsAccessError` when EC2 cannot be
        read)."""


def _layers_log_groups(env: EnvConfig) -> tuple[tuple[str, str], ...]:
    """(layer, name) of each log group a layer's program creates in ``env``; a name ending in ``/`` stands for every
    group below it. A test holds the table to every log group each layer's synth declares."""
    from shared.broker_names import default_log_group_name, deploy_project_name, rotation_function_name
    from shared.components.queue_metrics import publisher_name

    return (("network", f"/platform/{env.name}/vpc-flow-logs"),  # shared.components.network: flow_log_group_name
            ("compute", f"/platform/{env.name}/compute/"),  # ComputeSettings.log_group_name, the task stops' group
            ("broker", default_log_group_name("lambda", rotation_function_name(env.name))),
            ("broker", default_log_group_name("codebuild", deploy_project_name(env.name))),
            ("messaging", default_log_group_name("lambda", publisher_name(env.name))))


def log_group_prefixes(env: EnvConfig, layer: str) -> tuple[str, ...]:
    """What the names of the log groups ``layer`` creates in ``env`` start with (DescribeLogGroups'
    ``logGroupNamePrefix``); :func:`log_group_layer` says which of the groups found are that layer's."""
    return tuple(name for owner, name in _layers_log_groups(env) if owner == layer)


def log_group_layer(env: EnvConfig, name: str) -> str | None:
    """The layer whose program creates the log group ``name`` in ``env`` (None: no layer's)."""
    return next((owner for owner, known in _layers_log_groups(env)
                 if name == known or (known.endswith("/") and name.startswith(known))), None)


def every_page(operation: Callable[..., Any], items: str, **params: Any) -> list[Any]:
    """Every ``items`` entry of an AWS list or describe call that pages by ``NextToken`` (a call botocore has no
    paginator for, e.g. Amazon MQ DescribeBrokerInstanceOptions, or one answered by a test double without one)."""
    found: list[Any] = []
    token: str | None = None
    while True:
        page = operation(**params, **({"NextToken": token} if token else {}))
        found.extend(page.get(items, []))
        token = page.get("NextToken")
        if not token:
            return found


def _listed_as(endpoint: str) -> str:
    """``endpoint`` as ListSubscriptionsByTopic can compare it: an https URL without its basic-auth user and password,
    which SNS lists masked ("HTTPS URLs are only retrievable from the Amazon SNS GetSubscriptionAttributes API
    action": SNS developer guide, "Fanout Amazon SNS notifications to HTTPS endpoints")."""
    return re.sub(r"^(https?://)[^/@]*@", r"\1", endpoint)


#: the SNS SMS attribute of the account's monthly SMS budget in USD (SNS API reference, SetSMSAttributes)
SMS_SPEND_LIMIT = "MonthlySpendLimit"
#: SNS's error code when there is nothing to list (ResourceNotFoundException's code in the query protocol: botocore sns
#: model, ``ResourceNotFound``); the longer form too, as other SDKs' fakes raise it
SNS_NOT_FOUND_CODES = ("ResourceNotFound", "ResourceNotFoundException")
#: a monthly SMS spend limit this low (a new account's) is noted: at a few US cents a message a single alarm storm
#: spends it, and SNS then texts nobody until the month ends
SMS_LOW_SPEND_LIMIT_USD = 1.0


def _fmt(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


class AwsAccountCheck:
    """:class:`AccountCheck` with boto3 (IAM, Service Quotas, STS) through a :data:`ClientFactory`."""

    def __init__(self, clients: ClientFactory | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clients = clients if clients is not None else PreflightClients()
        self.sleep = sleep

    def foreign_resources(self, env: EnvConfig, scope: VpcScope) -> ForeignResources:
        try:
            return read_foreign_resources(env, self.clients(env, "ec2"), scope)
        except aws_errors() as error:
            where = f"the env's VPC {scope.vpc_id}" + (f" in {', '.join(scope.zones)}" if scope.zones else "")
            raise AwsAccessError(
                f"{env.name}: nothing was run: what is in {where} could not be read (EC2 DescribeNetworkInterfaces, "
                f"DescribeSecurityGroups, DescribeNatGateways: {error}); an interface no layer deletes would stop "
                "network's delete of the subnets after the layers before it ran. Where AWS denied the read, use the "
                "deploy role (`nox -s roles` grants it); then run again.") from None

    def check(self, env: EnvConfig, layers: Sequence[str]) -> AccountReport:
        report = AccountReport()
        roles = linked_roles(env, layers)
        needs = quota_needs(env, layers)
        named = account_wide_roles(env, layers)
        # compute too: the deploy workflows run it as a job of its own (`--layers compute --exact`), and whether the
        # broker runs the type the env sized it on is read from the broker (cli.unapplied_type_refusal)
        brokers = env.messaging.broker == "amazon-mq" and bool({"broker", "messaging", "compute"} & set(layers))
        subscriptions = "broker" in layers and bool(env.alarms.all_subscriptions())
        rotation = "broker" in layers and env.messaging.broker == "amazon-mq" and \
            env.messaging.credentials_rotation is not None
        bounded = [layer for layer in layers if layer in ROLE_LAYERS]
        # every other check (brokers, subscriptions, rotation, secrets, network, compute) needs a layer of ROLE_LAYERS
        if not roles and not needs and not named and not bounded:
            return report
        verify_account(env, self.clients)  # never create anything in another account
        iam = self.clients(env, "iam") if roles or named or bounded else None
        if bounded:
            self._check_boundary(env, iam, bounded[0], report)
        for role in roles:
            self._check_role(iam, role, report)
        for named_role in named:
            self._find_named_role(iam, named_role, report)
        quotas = self.clients(env, "service-quotas") if needs else None
        for need in needs:
            self._check_quota(env, quotas, need, report)
        if "network" in layers:
            self._find_deployed_network(env, report)
            self._check_availability_zones(env, report)
            if not report.deployed_vpcs:
                self._probe_network_creates(env, report)
            self._check_block_public_access(env, layers, report)
        if brokers:
            self._list_brokers(env, report)
            if "broker" in layers:
                self._check_broker_offering(env, report)
        if subscriptions:
            self._check_alarm_subscriptions(env, report)
            self._check_sms_delivery(env, report)
        elif "broker" in layers:  # no AWS call needed: the env file names nobody
            from shared.components.alarms import topic_name

            report.notes.append(
                f"{env_path(env.name)}: alarms: no subscription (alarms.email, alarms.subscriptions), so every alarm "
                f"and event notification of {env.name} goes to {topic_name(env.name)} and reaches nobody; name the "
                "on-call address or integration there")
        if rotation:
            self._check_admin_rotation(env, report)
        if iam is not None:
            self._check_iam_roles(env, iam, layers, report)
        runner = env.messaging.deploy_runner
        if "broker" in layers and runner.github_repository and not runner.github_connection_arn:
            self._check_github_credential(env, report)
        if {"broker", "messaging"} & set(layers):
            self._find_secrets_pending_deletion(env, layers, report)
        if reads_external_admin_secret(env, layers):
            self._check_external_admin_secret(env, report)
        if "compute" in layers:
            self._find_other_envs_registry(env, report)
            self._check_registry_settings(env, report)
            self._count_log_resource_policies(env, report)
            gateways = gateway_services(env)
            if gateways:
                self._check_gateway_certificate(env, gateways, report)
        return report

    @staticmethod
    def _check_iam_roles(env: EnvConfig, iam: Any, layers: Sequence[str], report: AccountReport) -> None:
        """A note where the account's IAM role quota has less room than the roles the layers of the run create
        (IAM GetAccountSummary: ``Roles``, ``RolesQuota``; 1,000 by default, IAM user guide, "IAM and AWS STS
        quotas"). IAM roles are account-wide, every region's and every tool's count, and CreateRole beyond the quota
        fails (LimitExceeded) midway through a layer. A note, not a refusal: where the env's roles exist already
        (any `up` after its first) they are counted in ``Roles`` and none is created again, and which of them exist
        is not known without listing the account's roles."""
        declared = roles_declared(env, layers)
        if not declared:
            return
        try:
            summary = iam.get_account_summary()["SummaryMap"]
            held, quota = int(summary["Roles"]), int(summary["RolesQuota"])
        except aws_errors() as error:
            report.notes.append(f"IAM roles: how many the account holds is unknown (GetAccountSummary: {error})")
            return
        except (KeyError, TypeError, ValueError):
            report.notes.append("IAM roles: GetAccountSummary answered without Roles and RolesQuota")
            return
        parts = ", ".join(f"{layer} {count}" for layer, count in declared.items())
        report.lines.append(f"IAM roles: the account holds {held} of {quota}; {env.name}'s layers of the run create "
                            f"{parts}")
        room, total = max(0, quota - held), sum(declared.values())
        if room < total:
            report.notes.append(
                f"IAM roles: account {env.account_id} holds {held} of the {quota} it may (GetAccountSummary), room for "
                f"{room} more, and {env.name}'s layers of the run create {total} ({parts}) where they do not exist yet "
                "(a first up, a new service or canary version): CreateRole beyond the quota fails that layer midway "
                "(LimitExceeded). Delete roles nothing uses, or ask for more (Service Quotas, IAM's quota of roles "
                "per account, in us-east-1)")

    def _check_gateway_certificate(self, env: EnvConfig, gateways: Sequence[str], report: AccountReport) -> None:
        """Refuse where ACM does not hold ``compute.certificate_arn`` or has not issued it: Elastic Load Balancing
        answers CreateListener (and ModifyListener, for a new ARN) with CertificateNotFound for the one and
        UnsupportedCertificate for a certificate not yet ``ISSUED`` (terraform-provider-aws #26245, govuk-paas/paas-cf
        #3063), so compute would stop at the listener after the ALB, its log bucket and target group. An expired,
        revoked or inactive certificate is refused where a gateway of ``gateways`` does not use it yet (its listener
        would be created or changed: CertificateNotFound for an expired one, terraform-provider-aws #17505), a note
        where every one does (its listener serves it already and an ``up`` changes nothing there; clients refuse it
        either way, the expiry alarm fired before)."""
        arn = env.compute.certificate_arn or ""
        key = f"{env_path(env.name)}: compute.certificate_arn"
        try:
            # botocore acm DescribeCertificate: Certificate.Status, DomainValidationOptions[].ResourceRecord
            described = self.clients(env, "acm").describe_certificate(CertificateArn=arn)["Certificate"]
        except aws_errors() as error:
            if aws_error_code(error) in ("ResourceNotFoundException", "InvalidArnException"):
                report.refusals.append(
                    f"{key}: account {env.account_id} ({env.region}) does not hold the certificate {arn} "
                    f"(ACM DescribeCertificate: {aws_error_code(error)}): the gateway's HTTPS listener would fail "
                    "with CertificateNotFound after its load balancer was created. Name a certificate of the env's "
                    "account and region (`aws acm list-certificates --region "
                    f"{env.region}`). Nothing was run.")
                return
            report.notes.append(f"whether ACM has issued the gateway certificate {arn} is unknown "
                                f"(DescribeCertificate: {error})")
            return
        status = str(described.get("Status", ""))
        report.lines.append(f"gateway certificate {arn}: {status} ({described.get('DomainName', '?')})")
        if status in GATEWAY_CERTIFICATE_UNUSABLE:
            pending = [option for option in described.get("DomainValidationOptions") or []
                       if option.get("ValidationStatus") != "SUCCESS"]
            records = sorted({f"{r['Type']} {r['Name']} -> {r['Value']}" for option in pending
                              if (r := option.get("ResourceRecord"))})
            # EMAIL validation has no ResourceRecord: ACM mails an approval link to ValidationEmails (botocore acm
            # DomainValidation; ACM user guide, "Email validation")
            mails = [f"{option.get('DomainName', '?')} ({', '.join(option.get('ValidationEmails') or [])})"
                     for option in pending if option.get("ValidationMethod") == "EMAIL"]
            why = GATEWAY_CERTIFICATE_UNUSABLE[status]
            if status == "PENDING_VALIDATION" and records:
                why = (f"create the DNS validation record{'s' if len(records) > 1 else ''} {'; '.join(records)} and "
                       "wait until ACM shows it ISSUED (minutes once the record resolves)")
            elif status == "PENDING_VALIDATION" and mails:
                why = (f"follow the link of the validation email ACM sent for {'; '.join(mails)} (ACM console: "
                       "Resend email) and wait until ACM shows it ISSUED")
            failure = f", {described['FailureReason']}" if described.get("FailureReason") else ""
            report.refusals.append(
                f"{key}: the certificate {arn} is {status}{failure}, not ISSUED: Elastic Load Balancing refuses it "
                "(UnsupportedCertificate) and compute would stop at the gateway's HTTPS listener after creating its "
                f"load balancer. {why[0].upper()}{why[1:]}, then run this again. Nothing was run.")
        elif status != "ISSUED":
            new = [service for service in gateways if not _served_by(service, described.get("InUseBy") or [])]
            if new:
                report.refusals.append(
                    f"{key}: the certificate {arn} is {status}, and the gateway of {', '.join(new)} does not use it "
                    "yet: its HTTPS listener would be created or changed with it after its load balancer (Elastic "
                    "Load Balancing answers CertificateNotFound for an expired certificate), and every client would "
                    "refuse it. Name an ISSUED certificate (README, Gateway certificate). Nothing was run.")
            else:
                report.notes.append(f"{key}: the certificate {arn} is {status}: clients refuse the gateway's TLS "
                                    "handshake until it names an ISSUED certificate (README, Gateway certificate)")

    def _count_log_resource_policies(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where the account and region hold the most account-scoped CloudWatch Logs resource policies
        (10, not adjustable) and none is the env's: compute's task-stops policy
        (:func:`shared.components.task_stops.resource_policy_name`) would fail with LimitExceededException midway
        through compute's ``up``, after its cluster and services. Every env of the account and other tools' (the
        EventBridge console's ``TrustEventsToStoreLogEvent``, vended logs) share the 10."""
        from shared.components.task_stops import LOG_RESOURCE_POLICIES_PER_REGION, resource_policy_name

        own = resource_policy_name(env.name)
        try:
            pages = self.clients(env, "logs").get_paginator("describe_resource_policies").paginate()
            names = [str(policy["policyName"]) for page in pages for policy in page.get("resourcePolicies", [])]
        except aws_errors() as error:
            report.notes.append(f"CloudWatch Logs resource policies: what {env.region} holds is unknown "
                                f"(DescribeResourcePolicies: {error}); compute creates {own}, one of at most "
                                f"{LOG_RESOURCE_POLICIES_PER_REGION} per account and region")
            return
        report.lines.append(f"CloudWatch Logs resource policies: the account holds {len(names)} in {env.region} "
                            f"({'including' if own in names else 'not'} {own}), at most "
                            f"{LOG_RESOURCE_POLICIES_PER_REGION}")
        if own not in names and len(names) >= LOG_RESOURCE_POLICIES_PER_REGION:
            report.refusals.append(
                f"{env_path(env.name)}: account {env.account_id} ({env.region}) holds {len(names)} CloudWatch Logs "
                f"resource policies ({', '.join(sorted(names))}), the most an account may hold per region (not "
                f"adjustable): compute's {own} (EventBridge delivering the task stops) would fail midway through "
                "compute. Delete one that nothing uses (aws logs delete-resource-policy --policy-name NAME), or "
                "deploy the env to another account or region. Nothing was run.")

    def _check_alarm_subscriptions(self, env: EnvConfig, report: AccountReport) -> None:
        """A note for each of the env's alarm subscriptions (``alarms``) that the deployed alarm topic lacks, or holds
        pending confirmation. SNS deletes a subscription left unconfirmed 48 hours, and puts an email one that received
        more than 10 messages a second (an alarm storm) back to pending (SNS developer guide, "Amazon SNS email
        subscription setup and management"; "Deleting an Amazon SNS subscription and topic"). The broker layer's state
        still holds such a deleted subscription and its ``up`` reads no state back, so without a refresh no ``up``
        subscribes the endpoint again and the alarms reach nobody."""
        from shared.components.alarms import topic_name
        from shared.components.compute_containers import partition_of
        from shared.contracts import stack_reference_name

        topic = f"arn:{partition_of(env.region)}:sns:{env.region}:{env.account_id}:{topic_name(env.name)}"
        try:
            pages = self.clients(env, "sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
            found = [(str(sub.get("Protocol")), str(sub.get("Endpoint")), str(sub.get("SubscriptionArn")))
                     for page in pages for sub in page.get("Subscriptions", [])]
        except aws_errors() as error:
            if aws_error_code(error) == "NotFound":  # no topic yet: the broker layer's first `up` subscribes them all
                return
            report.notes.append(f"whether {topic_name(env.name)}'s alarm subscriptions still exist is unknown "
                                f"(ListSubscriptionsByTopic: {error})")
            return
        stack = stack_reference_name(env.pulumi_org, "broker", env.name)
        for wanted in env.alarms.all_subscriptions():
            arns = [arn for protocol, endpoint, arn in found
                    if protocol == wanted.protocol and _listed_as(endpoint) == _listed_as(wanted.endpoint)]
            what = f"{env_path(env.name)}: alarms {wanted.protocol} {wanted.shown}"
            if not arns:
                report.notes.append(
                    f"{what} is not subscribed to {topic_name(env.name)}. Unless it is new in the env file, SNS "
                    "deleted it (unconfirmed for 48 hours, or suspended after more than 10 emails a second) and the "
                    f"broker layer's state ({stack}) still holds it, so `up` will not subscribe it again: run `nox -s "
                    f"refresh -- {env.name} --layers broker --exact` first (it drops the subscription from the state), "
                    "then `up` (SNS sends a new confirmation)")
            elif all(arn == "PendingConfirmation" for arn in arns):
                report.notes.append(f"{what} is pending confirmation: its recipient must confirm the message SNS "
                                    "sent within 48 hours, or SNS deletes the subscription")

    def _check_sms_delivery(self, env: EnvConfig, report: AccountReport) -> None:
        """Whether SNS will text the env's ``sms`` alarm subscriptions. An account starts in the SNS SMS sandbox, where
        SNS sends text messages to verified destination numbers only (SNS developer guide, "Using the Amazon SNS SMS
        sandbox"), while the subscription to any other number is created and looks fine: each such number is a
        refusal. And SNS stops sending any SMS for the rest of the month once the account's ``MonthlySpendLimit`` is
        reached (SNS API reference, SetSMSAttributes), $1 in a new account: a note where it is that low, or unset.
        Each of the two is judged on its own reads: one that fails is a note and leaves the other's verdict."""
        numbers = sorted({wanted.endpoint for wanted in env.alarms.all_subscriptions() if wanted.protocol == "sms"})
        if not numbers:
            return
        sns = self.clients(env, "sns")
        where = f"account {env.account_id} ({env.region})"
        try:
            in_sandbox = bool(sns.get_sms_sandbox_account_status().get("IsInSandbox"))
            listed: list[tuple[str, str]] = []
            if in_sandbox:
                try:
                    pages = sns.get_paginator("list_sms_sandbox_phone_numbers").paginate()
                    listed = [(str(number.get("PhoneNumber")), str(number.get("Status")))
                              for page in pages for number in page.get("PhoneNumbers", [])]
                except aws_errors() as error:
                    # the sandbox lists no number yet: SNS's query protocol code of ResourceNotFoundException
                    if aws_error_code(error) not in SNS_NOT_FOUND_CODES:
                        raise
        except aws_errors() as error:
            report.notes.append(f"{env_path(env.name)}: alarms sms: whether SNS may text {', '.join(numbers)} from "
                                f"{where} is unknown (SNS GetSMSSandboxAccountStatus, ListSMSSandboxPhoneNumbers: "
                                f"{error})")
        else:
            verified = {number for number, status in listed if status == "Verified"}
            pending = {number for number, status in listed if status != "Verified"}
            for number in numbers:
                if in_sandbox and number not in verified:
                    state = "still pending verification" if number in pending else "not among its verified numbers"
                    report.refusals.append(
                        f"{env_path(env.name)}: alarms sms {number}: {where} is in the SNS SMS sandbox, where SNS "
                        f"texts verified numbers only, and {number} is {state}: the subscription would be created and "
                        f"every page to it dropped. Verify it (`aws sns create-sms-sandbox-phone-number --phone-number "
                        f"{number} --region {env.region}`, then `aws sns verify-sms-sandbox-phone-number "
                        f"--phone-number {number} --one-time-password CODE --region {env.region}`), move the account "
                        "out of the SMS sandbox (SNS console, Text messaging (SMS)), or page it through another "
                        "protocol. Nothing was run.")
        self._check_us_origination(env, [number for number in numbers if number.startswith("+1")], report)
        try:
            attributes = sns.get_sms_attributes(attributes=[SMS_SPEND_LIMIT]).get("attributes") or {}
        except aws_errors() as error:
            report.notes.append(f"{env_path(env.name)}: alarms sms: {where}'s monthly SMS spend limit is unknown "
                                f"(SNS GetSMSAttributes: {error})")
            return
        limit = attributes.get(SMS_SPEND_LIMIT)
        try:
            dollars = float(limit) if limit is not None else None
        except ValueError:
            return
        if dollars is None or dollars <= SMS_LOW_SPEND_LIMIT_USD:
            spends = "sets no MonthlySpendLimit (the account's default applies, $1 in a new account)" \
                if dollars is None else f"may spend ${_fmt(dollars)} a month on SMS (SNS MonthlySpendLimit)"
            report.notes.append(
                f"{env_path(env.name)}: alarms sms: {where} {spends}: once it is reached SNS sends no text message "
                "for the rest of the month, and an env's first `up` alone texts each number an OK for every alarm it "
                "creates. Ask AWS Support for a higher limit (an SNS spend-limit increase case), then `aws sns "
                f"set-sms-attributes --attributes MonthlySpendLimit=N --region {env.region}`")

    def _check_us_origination(self, env: EnvConfig, numbers: Sequence[str], report: AccountReport) -> None:
        """SNS texts a number of the United States and its territories only from a registered US origination number of
        the account in the region (a toll-free or 10DLC number of AWS End User Messaging SMS): "Effective August 31,
        2023, a dedicated number such as a 10DLC number or a toll-free number is required to send SMS messages to the
        United States and its territories" (SNS developer guide, "Supported countries and regions"). Without one the
        subscription is created and every text to it fails. A note, not a refusal: +1 is the whole North American
        numbering plan (Canada's numbers need none), and a number's registration is the account owner's step.
        DescribePhoneNumbers (pinpoint-sms-voice-v2, IAM prefix sms-voice) filtered to active US SMS numbers."""
        if not numbers:
            return
        where = f"account {env.account_id} ({env.region})"
        # not SIMULATOR (it texts simulator destinations only) nor LONG_CODE (US carriers take no application
        # traffic from one): botocore pinpoint-sms-voice-v2 NumberType
        filters = [{"Name": "iso-country-code", "Values": ["US"]}, {"Name": "status", "Values": ["ACTIVE"]},
                   {"Name": "number-capability", "Values": ["SMS"]},
                   {"Name": "number-type", "Values": ["TOLL_FREE", "TEN_DLC", "SHORT_CODE"]}]
        try:
            pages = self.clients(env, "pinpoint-sms-voice-v2").get_paginator(
                "describe_phone_numbers").paginate(Filters=filters)
            found = any(page.get("PhoneNumbers") for page in pages)
        except aws_errors() as error:
            report.notes.append(f"{env_path(env.name)}: alarms sms: whether {where} holds a US origination number "
                                f"for {', '.join(numbers)} is unknown (End User Messaging SMS DescribePhoneNumbers: "
                                f"{error})")
            return
        if not found:
            report.notes.append(
                f"{env_path(env.name)}: alarms sms {', '.join(numbers)}: {where} holds no active US origination number "
                "(a toll-free, 10DLC or short code number with SMS, AWS End User Messaging SMS), and since "
                "2023-08-31 SNS texts "
                "numbers of the United States and its territories only from one: each text to such a number fails "
                "(Canadian numbers need none). Register one in that region (End User Messaging SMS console, Phone "
                "numbers: request a toll-free number, then its registration), or page through another protocol")

    def _check_github_credential(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where the deploy runner takes GitHub Actions jobs (``messaging.deploy_runner.github_repository``)
        through CodeBuild's own GitHub access (no ``github_connection_arn``) and the account holds no GitHub source
        credential for CodeBuild in the region: CreateWebhook then fails in the broker layer's `up`, after the project
        moved to the GitHub source (pulumi_aws codebuild Webhook: the account "must have authorized CodeBuild to access
        ... GitHub's OAuth API in each applicable region", a manual step)."""
        field_path = f"{env_path(env.name)}: messaging.deploy_runner"
        try:
            listed = self.clients(env, "codebuild").list_source_credentials()
        except aws_errors() as error:
            report.notes.append(f"{field_path}: whether CodeBuild holds a GitHub credential in {env.region} is unknown "
                                f"(ListSourceCredentials: {error}); without one the runner's webhook is refused")
            return
        if any(info.get("serverType") == "GITHUB" for info in listed.get("sourceCredentialsInfos") or []):
            return
        report.refusals.append(
            f"{field_path}: github_repository is set without github_connection_arn, and CodeBuild holds no GitHub "
            f"credential in account {env.account_id} ({env.region}): the broker layer's `up` would fail creating the "
            "runner's webhook. Connect CodeBuild to GitHub once in this region (`aws codebuild "
            "import-source-credentials --server-type GITHUB --auth-type PERSONAL_ACCESS_TOKEN --token <token>`, a "
            "token of an account with admin rights on the repository), or name a CodeConnections connection in "
            "github_connection_arn")

    def _check_admin_rotation(self, env: EnvConfig, report: AccountReport) -> None:
        """A note where the broker admin's secret missed its rotation or holds a rotation stopped partway (Secrets
        Manager DescribeSecret). The rotation alarm counts the function's errors only: a rotation whose invocation
        was refused (Lambda refuses one while it re-activates a VPC function idle for weeks: Lambda developer guide,
        "Lambda function states", Inactive) raises none, and Secrets Manager schedules the next rotation only when
        one completes (Secrets Manager user guide, "Troubleshoot rotation"), so ``NextRotationDate`` stays past."""
        from shared.components.broker import admin_secret_name

        secret = admin_secret_name(env.name)
        try:
            described = self.clients(env, "secretsmanager").describe_secret(SecretId=secret)
        except aws_errors() as error:
            if aws_error_code(error) != "ResourceNotFoundException":  # none yet: the broker layer's first `up`
                report.notes.append(f"whether {secret} rotates is unknown (DescribeSecret: {error})")
            return
        if described.get("DeletedDate") is not None:  # refused, with what to do: _find_secrets_pending_deletion
            return
        due = described.get("NextRotationDate")
        last = described.get("LastRotatedDate")
        if described.get("RotationEnabled") and isinstance(due, datetime) and \
                due < datetime.now(UTC) - timedelta(days=ROTATION_GRACE_DAYS):
            report.notes.append(
                f"the broker admin's secret {secret} was due to rotate on {due:%Y-%m-%d} and has not (last rotated: "
                f"{f'{last:%Y-%m-%d}' if isinstance(last, datetime) else 'never'}): its rotation function's log group "
                "says why (README, \"Broker admin rotation\", Break-glass); `aws secretsmanager rotate-secret "
                f"--secret-id {secret}` retries it")
        stalled = sorted(version for version, stages in (described.get("VersionIdsToStages") or {}).items()
                         if "AWSPENDING" in stages and "AWSCURRENT" not in stages)
        if stalled:
            report.notes.append(
                f"a rotation of {secret} stopped partway (AWSPENDING on version {', '.join(stalled)}): Secrets Manager "
                "starts no other rotation while it stays (README, \"Broker admin rotation\", Break-glass)")

    def program_secrets(self, env: EnvConfig, layers: Sequence[str]) -> AccountReport:
        report = AccountReport()
        if reads_external_admin_secret(env, layers):
            verify_account(env, self.clients)
            self._check_external_admin_secret(env, report)
        return report

    def brokers(self, env: EnvConfig) -> AccountReport:
        report = AccountReport()
        verify_account(env, self.clients)
        self._list_brokers(env, report)
        return report

    def destroy_blockers(self, env: EnvConfig, layers: Sequence[str],
                         held: Mapping[str, Sequence[str] | None]) -> AccountReport:
        """CloudWatch Logs deletion protection ("When enabled on a log group, deletion protection blocks all deletion
        operations until it is explicitly disabled": PutLogGroupDeletionProtection) is AWS's own flag, which the
        programs never set (pulumi_aws LogGroup ``deletion_protection_enabled``, default false) and so never turn back
        once someone outside the stacks turned it on: a layer's destroy then deletes what writes to the group and
        stops at DeleteLogGroup, half-way. Each log group of ``layers`` with it on that the layer's state holds (or
        whose layer's state is unknown) is refused before any layer; one no state holds, the destroy never deletes."""
        report = AccountReport()
        prefixes = sorted({prefix for layer in layers for prefix in log_group_prefixes(env, layer)})
        if not prefixes:
            return report
        verify_account(env, self.clients)
        logs = self.clients(env, "logs")
        protected: list[tuple[str, str]] = []
        for prefix in prefixes:
            try:
                groups = [group for page in logs.get_paginator("describe_log_groups").paginate(
                    logGroupNamePrefix=prefix) for group in page.get("logGroups", [])]
            except aws_errors() as error:
                report.notes.append(f"whether a log group under {prefix} has deletion protection on is unknown "
                                    f"(CloudWatch Logs DescribeLogGroups: {error})")
                continue
            for group in groups:
                name = str(group.get("logGroupName", ""))
                layer = log_group_layer(env, name)
                if group.get("deletionProtectionEnabled") and layer is not None and layer in layers:
                    in_state = held.get(layer)
                    if in_state is None or name in in_state:
                        protected.append((layer, name))
        for layer, name in sorted(set(protected)):
            report.refusals.append(
                f"destroy {env.name}: {layer}'s log group {name} has CloudWatch Logs deletion protection on, which "
                f"refuses its delete: {layer}'s destroy would stop there after deleting what writes to it. Turn it "
                f"off (`aws logs put-log-group-deletion-protection --region {env.region} --log-group-identifier "
                f"{name} --no-deletion-protection-enabled`), keeping what must be kept of its logs first, then run "
                "the destroy again. Nothing was deleted.")
        return report

    def _check_external_admin_secret(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where the secret holding an ``external`` broker's admin credentials is absent or scheduled for
        deletion (Secrets Manager DescribeSecret: ResourceNotFoundException, ``DeletedDate``): messaging's program
        reads it (GetSecretValue) and would fail after the layers before it ran. Its operator creates it; no layer
        does."""
        from shared.components.broker import external_admin_secret_name

        secret = external_admin_secret_name(env.name)
        where = f"{env_path(env.name)}: messaging.broker external"
        create = (f"aws secretsmanager create-secret --region {env.region} --name {secret} --secret-string "
                  "file://admin.json (admin.json: {\"username\": \"...\", \"password\": \"...\"}, the broker "
                  "administrator's; delete the file after)")
        try:
            described = self.clients(env, "secretsmanager").describe_secret(SecretId=secret)
        except aws_errors() as error:
            if aws_error_code(error) == "ResourceNotFoundException":
                report.refusals.append(
                    f"{where}: messaging signs in to the broker with the admin credentials in the Secrets Manager "
                    f"secret {secret} of account {env.account_id} ({env.region}), which does not exist: create it "
                    f"(`{create}`). Nothing was run.")
            else:
                report.notes.append(f"whether the external broker's admin secret {secret} exists is unknown "
                                    f"(DescribeSecret: {error})")
            return
        deleted = described.get("DeletedDate")
        if deleted is not None:
            report.refusals.append(
                f"{where}: the Secrets Manager secret {secret} with the broker admin's credentials is scheduled for "
                f"deletion since {deleted}, and messaging cannot read it: take it back (`aws secretsmanager "
                f"restore-secret --region {env.region} --secret-id {secret}`). Nothing was run.")
            return
        stages = described.get("VersionIdsToStages") or {}
        if not any("AWSCURRENT" in labels for labels in stages.values()):
            # created without --secret-string: GetSecretValue of its current version finds none
            report.refusals.append(
                f"{where}: the Secrets Manager secret {secret} holds no value yet (no AWSCURRENT version), and "
                f"messaging reads its current one: put the broker admin's credentials in it (`aws secretsmanager "
                f"put-secret-value --region {env.region} --secret-id {secret} --secret-string file://admin.json`, "
                "admin.json: {\"username\": \"...\", \"password\": \"...\"}). Nothing was run.")
            return
        key = described.get("KmsKeyId")
        if key and not self._external_admin_key_usable(env, secret, str(key), where, report):
            return
        report.lines.append(f"{secret}: present (the external broker's admin)")

    def _external_admin_key_usable(self, env: EnvConfig, secret: str, key: str, where: str,
                                   report: AccountReport) -> bool:
        """Where the external admin secret is encrypted with a customer managed key (DescribeSecret ``KmsKeyId``,
        "the key ID or alias ARN"; "If the secret is encrypted with ... aws/secretsmanager, this field is omitted"),
        GetSecretValue decrypts with it as the caller: refuse a key the deploy role may not use (its policies grant
        KMS on the keys of the env's account and region only: shared.deploy_role.kms_statements) or that cannot
        decrypt (KMS DescribeKey ``KeyState`` other than Enabled; Decrypt's DisabledException, "the specified KMS key
        is not enabled", KMSInvalidStateException). False when it refused."""
        if key.startswith("arn:") and key.split(":")[3:5] != [env.region, env.account_id]:
            report.refusals.append(
                f"{where}: the Secrets Manager secret {secret} is encrypted with the KMS key {key} of another "
                f"account or region, which the deploy role may not use (it decrypts with the keys of account "
                f"{env.account_id} in {env.region} only), so messaging cannot read it: re-encrypt it with the "
                f"default key (`aws secretsmanager update-secret --region {env.region} --secret-id {secret} "
                "--kms-key-id alias/aws/secretsmanager`, as a principal that may use the old key). Nothing was run.")
            return False
        if ":alias/" in key or key.startswith("alias/"):
            # an alias names whatever key it points at now: deleted or moved since, it says nothing of the key that
            # encrypted the secret (the ciphertext names its own key), so what KMS says of it is a note only
            self._note_alias_key(env, secret, key, report)
            return True
        try:
            state = self._key_state(env, key)
        except aws_errors() as error:
            if aws_error_code(error) == "NotFoundException":
                report.refusals.append(
                    f"{where}: the Secrets Manager secret {secret} is encrypted with the KMS key {key}, which does "
                    "not exist (deleted: no one can decrypt its value again; `aws kms describe-key --region "
                    f"{env.region} --key-id {key}` confirms it): delete it (`aws secretsmanager "
                    f"delete-secret --region {env.region} --secret-id {secret} --force-delete-without-recovery`) and "
                    f"create it anew (`aws secretsmanager create-secret --region {env.region} --name {secret} "
                    "--secret-string file://admin.json`). Nothing was run.")
                return False
            report.notes.append(f"whether the KMS key {key} of the external broker's admin secret {secret} can "
                                f"decrypt is unknown (DescribeKey: {error})")
            return True
        if state in DECRYPTING_KEY_STATES:
            return True
        if state == "Creating":  # a multi-Region replica key on its way: it settles by itself
            report.notes.append(f"the KMS key {key} of the external broker's admin secret {secret} is {state}: "
                                "messaging's read fails until it is Enabled")
            return True
        enable = f"`aws kms enable-key --region {env.region} --key-id {key}`"
        cancel = (f"`aws kms cancel-key-deletion --region {env.region} --key-id {key}`, then {enable} (a cancelled "
                  "deletion leaves the key disabled)")
        fixes = {"Disabled": enable, "PendingDeletion": cancel, "PendingReplicaDeletion": cancel}
        fix = fixes.get(state, "make the key usable, or re-encrypt the secret with another key")
        report.refusals.append(
            f"{where}: the Secrets Manager secret {secret} is encrypted with the KMS key {key}, which is {state} "
            f"(KMS decrypts with Enabled keys only), so messaging cannot read it: {fix}. Nothing was run.")
        return False

    def _key_state(self, env: EnvConfig, key: str) -> str:
        """KMS DescribeKey's ``KeyState`` of ``key`` (an id, ARN or alias) in the env's account and region."""
        return str(self.clients(env, "kms").describe_key(KeyId=key)["KeyMetadata"].get("KeyState", ""))

    def _note_alias_key(self, env: EnvConfig, secret: str, key: str, report: AccountReport) -> None:
        """What KMS says of the key an alias of the external admin secret points at now, as a note."""
        try:
            state = self._key_state(env, key)
        except aws_errors() as error:
            report.notes.append(f"the external broker's admin secret {secret} names its KMS key by the alias {key}, "
                                f"which KMS does not describe ({error}): whether the key that encrypted it can "
                                "decrypt is unknown")
            return
        if state not in DECRYPTING_KEY_STATES:
            report.notes.append(f"the external broker's admin secret {secret} names its KMS key by the alias {key}, "
                                f"whose key is {state} now: where it is the one that encrypted the secret, "
                                "messaging's read fails")

    def _find_secrets_pending_deletion(self, env: EnvConfig, layers: Sequence[str], report: AccountReport) -> None:
        """Refuse where a secret a layer of the run creates by name is scheduled for deletion. Where the env protects
        state (prod) every secret is deleted with a 30-day recovery window, and Secrets Manager refuses a new secret
        of that name until the window ends (botocore secretsmanager CreateSecret: InvalidRequestException, "The
        secret is scheduled for deletion"), so the layer's CreateSecret would fail midway through its ``up``.
        DescribeSecret answers for such a secret with its ``DeletedDate`` ("If it is not scheduled for deletion,
        this field is omitted"). The secrets, each where its layer is in the run and creates it:

        * with broker, in an ``amazon-mq`` env, the broker admin's (``platform/<env>/broker/admin``): a move to
          ``external`` (or a destroy) deleted it, and the env moved back within the window;
        * with messaging, where the env publishes queue metrics (``amazon-mq``), the publisher's
          (``platform/<env>/messaging-monitor/queue-metrics``), deleted the same ways;
        * with messaging, the credentials secret it keeps for each catalog service that uses the broker
          (``platform/<env>/messaging/<svc>``): a service removed and added again, or renamed back, within the
          window."""
        from shared.broker_names import service_secret_name
        from shared.catalog import load_catalog
        from shared.envs import publishes_queue_metrics

        where, region = env_path(env.name), env.region
        moved = ("the env's broker moved to external, or its layers were destroyed, less than 30 days ago, and the "
                 "secret was deleted with a recovery window")
        platform = ("README, \"Real runs against AWS\", what a destroy leaves behind: a restored secret is still "
                    "encrypted with the layer's old KMS key, which the same change scheduled for deletion: take it "
                    "back first")
        secrets: list[_KeptSecret] = []
        if "broker" in layers and env.messaging.broker == "amazon-mq":
            from shared.components.broker import admin_secret_name

            secrets.append(_KeptSecret(
                admin_secret_name(env.name), f"{where}: messaging.broker", "the broker layer keeps the broker "
                "admin's credentials", moved, "broker",
                ", alongside the new broker (20 minutes or more), and messaging would find no admin credentials",
                "the former broker's admin, which no broker knows any more; the layer writes the new broker's",
                platform))
        if "messaging" in layers and publishes_queue_metrics(env):
            from shared.components.queue_metrics import monitor_secret_name

            secrets.append(_KeptSecret(
                monitor_secret_name(env.name), f"{where}: messaging.broker", "messaging keeps the queue metrics "
                "publisher's credentials", moved, "messaging", "",
                "a former broker's user; messaging writes the new user's", platform))
        if "messaging" in layers:
            secrets += [_KeptSecret(
                service_secret_name(env.name, spec.name), f"{catalog_path()}: services.{spec.name}",
                "messaging keeps its credentials", "a removed service of that name, deleted with a recovery window",
                "messaging", "",
                "the removed service's, whose RabbitMQ user was deleted with it; messaging writes new ones",
                "README, \"Remove (or rename) a service\"") for spec in load_catalog() if spec.uses_messaging]
        client = None
        for secret in secrets:
            try:
                client = client or self.clients(env, "secretsmanager")
                described = client.describe_secret(SecretId=secret.name)
            except aws_errors() as error:
                if aws_error_code(error) == "ResourceNotFoundException":
                    continue
                # Denied, unreachable or timed out: so would be every other one's (up to 200 services', each after
                # the client's timeouts and retries), so one note and no more asking.
                asked = sorted({re.sub(r"/messaging/[^/]+$", "/messaging/<service>", kept.name)
                                for kept in secrets})
                report.notes.append(f"whether the secrets {', '.join(asked)} are scheduled for deletion is unknown "
                                    f"(DescribeSecret of {secret.name}: {error})")
                return
            deleted = described.get("DeletedDate")
            if deleted is None:
                continue
            report.refusals.append(
                f"{secret.key}: {secret.holder} in the secret {secret.name}, which Secrets Manager holds scheduled "
                f"for deletion since {deleted} ({secret.cause}): its CreateSecret would fail (\"already scheduled "
                f"for deletion\") midway through {secret.layer}{secret.after}. Either delete it for good: `aws "
                f"secretsmanager delete-secret --region {region} --secret-id {secret.name} "
                f"--force-delete-without-recovery` (its old value goes for good: {secret.old}); or restore it: "
                f"`aws secretsmanager restore-secret --region {region} --secret-id {secret.name}` (it comes back "
                f"with its old value) and `pulumi import` it into {secret.layer} ({secret.readme}). Nothing was run.")

    def _list_brokers(self, env: EnvConfig, report: AccountReport) -> None:
        """The account's Amazon MQ brokers in the env's region into ``report.brokers`` (botocore mq ListBrokers,
        paginated); a note where they cannot be read."""
        try:
            pages = self.clients(env, "mq").get_paginator("list_brokers").paginate()
            summaries = [summary for page in pages for summary in page.get("BrokerSummaries", [])]
            report.brokers = {str(summary["BrokerId"]): str(summary.get("BrokerName", "")) for summary in summaries}
            report.deleting_brokers = frozenset(str(summary["BrokerId"]) for summary in summaries
                                                if summary.get("BrokerState") == "DELETION_IN_PROGRESS")
        except aws_errors() as error:
            report.notes.append(f"whether {env.name}'s broker still exists is unknown (ListBrokers: {error})")
            return
        from shared.broker_names import broker_name

        for broker_id, name in sorted(report.brokers.items()):
            if name != broker_name(env.name):
                continue
            try:
                described = self.clients(env, "mq").describe_broker(BrokerId=broker_id)
            except aws_errors() as error:
                report.notes.append(f"what {name} has pending is unknown (DescribeBroker: {error})")
                return
            configurations = described.get("Configurations") or {}
            waiting = configurations.get("Pending") or {}
            # a revision set and not applied (Configurations.Pending, botocore mq Configurations: Current, History,
            # Pending): Amazon MQ answers the current one as the broker's until a reboot or the maintenance window
            pending_configuration = (f"{waiting.get('Id')} revision {waiting.get('Revision')}"
                                     if waiting and waiting != configurations.get("Current") else None)
            pending = {"engine_version": described.get("PendingEngineVersion"),
                       "instance_type": described.get("PendingHostInstanceType"),
                       "configuration": pending_configuration}
            report.broker_pending = {key: str(value) for key, value in pending.items() if value}
            running = {key: str(described[key]) if described.get(key) else None
                       for key in ("BrokerState", "HostInstanceType", "DeploymentMode", "EngineVersion")}
            codes = tuple(str(action["ActionRequiredCode"]) for action in described.get("ActionsRequired") or []
                          if action.get("ActionRequiredCode"))
            report.broker_running = RunningBroker(
                broker_id, running["BrokerState"], running["HostInstanceType"], running["DeploymentMode"],
                running["EngineVersion"], codes, report.broker_pending.get("engine_version"))

    def _check_broker_offering(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where Amazon MQ does not offer the env's broker (``messaging.instance_type`` with its
        ``engine_version`` and ``deployment_mode``) in the region, or not in the AZs of its subnets
        (:func:`shared.components.broker.broker_subnets`: the first, or the first three): "Amazon MQ does not support
        all instance types in all availability zones and regions" (Amazon MQ API reference, Broker Engine Types), and
        CreateBroker would fail after the network and the broker layer's other resources. botocore mq
        DescribeBrokerInstanceOptions (EngineType, HostInstanceType): ``BrokerInstanceOptions[]`` with
        ``AvailabilityZones[].Name``, ``SupportedDeploymentModes`` and ``SupportedEngineVersions`` (major.minor).
        A broker the account holds already is not created again: then a note, not a refusal."""
        from shared.amazonmq import CLUSTER_AZS
        from shared.broker_names import broker_name

        messaging = env.messaging
        wanted = (messaging.instance_type, messaging.engine_version, messaging.deployment_mode)
        zones = env.availability_zones[:1 if messaging.deployment_mode == "SINGLE_INSTANCE" else CLUSTER_AZS]
        try:
            mq = self.clients(env, "mq")
            options = every_page(mq.describe_broker_instance_options, "BrokerInstanceOptions",
                                 EngineType="RABBITMQ", HostInstanceType=wanted[0])
        except aws_errors() as error:
            report.notes.append(f"whether Amazon MQ offers {wanted[0]} in {', '.join(zones)} is unknown "
                                f"(DescribeBrokerInstanceOptions: {error})")
            return

        def runs(option: dict[str, Any]) -> bool:
            versions = [str(version) for version in option.get("SupportedEngineVersions", [])]
            return wanted[2] in option.get("SupportedDeploymentModes", []) and any(
                version == wanted[1] or version.startswith(f"{wanted[1]}.") for version in versions)

        matching = [option for option in options if runs(option)]
        offered = sorted({str(zone["Name"]) for option in matching for zone in option.get("AvailabilityZones", [])})
        lacking = [zone for zone in zones if zone not in offered]
        if not lacking:
            report.lines.append(f"Amazon MQ: RabbitMQ {wanted[1]} on {wanted[0]} ({wanted[2]}) is offered in "
                                f"{', '.join(zones)}")
            return
        if not matching:
            key, problem = ("messaging.instance_type", f"Amazon MQ offers no RabbitMQ {wanted[0]} in {env.region}") \
                if not options else ("messaging.engine_version", (
                    f"Amazon MQ offers {wanted[0]} in {env.region} only for RabbitMQ "
                    f"{', '.join(sorted({str(v) for o in options for v in o.get('SupportedEngineVersions', [])}))} "
                    f"and {', '.join(sorted({str(m) for o in options for m in o.get('SupportedDeploymentModes', [])}))}"
                    f", not {wanted[1]} {wanted[2]}"))
        else:
            key = "network.availability_zones" if env.network.availability_zones is not None else "network.az_count"
            problem = (f"Amazon MQ offers RabbitMQ {wanted[1]} on {wanted[0]} in {', '.join(offered)} only, not in "
                       f"{', '.join(lacking)}, where the broker's subnet is")
        held = report.brokers is None or broker_name(env.name) in report.brokers.values()
        if held:  # not created by this run (or unknown): whatever the account has keeps running
            report.notes.append(f"{env_path(env.name)}: {key}: {problem}")
            return
        report.refusals.append(f"{env_path(env.name)}: {key}: {problem}: the broker layer's CreateBroker would fail "
                               "after the network. Nothing was run.")

    def _find_other_envs_registry(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where the registry of the env's account and region holds another env's repositories of the
        catalog's services (:func:`shared.images.other_envs_repositories`): compute's repositories
        ``ml-platform/<service>`` and the registry's policy and replication settings exist once per account and
        region. The env loader refuses two envs of one folder there; this catches one deployed from elsewhere."""
        from shared.catalog import load_catalog

        try:
            others = other_envs_repositories(env, load_catalog().names(), self.clients)
        except AwsAccessError as error:
            report.notes.append(f"whether another env holds {env.region}'s registry is unknown ({error})")
            return
        for other, repositories in sorted(others.items()):
            report.refusals.append(
                f"{env_path(env.name)}: account {env.account_id} ({env.region}) already holds env {other}'s ECR "
                f"repositories {', '.join(repositories)} (their env tag): compute's repositories and the registry's "
                "policy and replication settings exist once per account and region, so compute would fail on them "
                f"and take over {other}'s registry settings. {other} is deployed from another folder of env files, "
                f"org or backend (or is this env's old name). Deploy {env.name} to another account or region, or "
                f"destroy {other} first. Nothing was run.")

    def _check_registry_settings(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where a registry-wide ECR setting compute writes whole (:func:`shared.images.registry_settings`)
        holds what compute does not write and nothing of compute's yet: compute's first `up` would replace it, and
        what used it (another team's replication, a pull through cache) would stop without a word. With compute's
        own beside them (written by hand since, or before compute's earlier `up` could tell), a note: compute's
        next change of the setting drops them."""
        try:
            settings = registry_settings(env, self.clients)
        except AwsAccessError as error:
            report.notes.append(f"what {env.region}'s ECR registry policy and replication configuration hold is "
                                f"unknown ({error})")
            return
        for setting in settings:
            if not setting.others:
                continue
            held = ", ".join(setting.others)
            if not setting.writes:
                # the env no longer asks for it: compute's `up` removes it, and what else it holds with it
                what, removal = (("statement", "deletes the policy whole") if setting.name == "registry policy"
                                 else ("rule", "removes every rule"))
                report.notes.append(
                    f"the ECR {setting.name} of account {env.account_id} ({env.region}) holds compute's {what}, which "
                    f"compute no longer writes, beside {held}: compute's `up` {removal} ({setting.call}) where its "
                    "state holds it; put them back after it, or keep them elsewhere first")
                continue
            if setting.platform:
                report.notes.append(
                    f"the ECR {setting.name} of account {env.account_id} ({env.region}) also holds {held}, which "
                    f"compute does not write: compute's next change of it ({setting.call}) replaces it whole and "
                    "drops them")
                continue
            # nothing of compute's is in it: clearing it whole removes only theirs (botocore ecr: GetRegistryPolicy,
            # DeleteRegistryPolicy, DescribeRegistry take no parameters; a replication configuration of no rules is
            # what the provider's delete puts)
            see, clear = ((f"aws ecr get-registry-policy --region {env.region} --query policyText --output text",
                           f"aws ecr delete-registry-policy --region {env.region}")
                          if setting.name == "registry policy" else
                          (f"aws ecr describe-registry --region {env.region} --query replicationConfiguration",
                           f"aws ecr put-replication-configuration --region {env.region} --replication-configuration "
                           """'{"rules": []}'"""))
            report.refusals.append(
                f"{env_path(env.name)}: the ECR {setting.name} of account {env.account_id} ({env.region}) holds "
                f"{held}, which compute did not put there: ECR keeps one {setting.name} per account and region, "
                f"compute writes it ({setting.call} replaces it whole; its destroy deletes it), so its `up` would "
                f"remove them and stop whatever uses them. Remove them from the registry (after moving what needs "
                f"them; see it: `{see}`; clear it: `{clear}`), or deploy {env.name} to an account or region whose "
                "registry serves the platform alone. Nothing was run.")

    def _check_availability_zones(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where the account lacks one of the env's AZ names (:attr:`EnvConfig.availability_zones`), or one
        of its interface endpoints' services is not offered in one of them: the network layer's CreateSubnet
        ("InvalidParameterValue: Value (us-west-1a) for parameter availabilityZone is invalid. Subnets can currently
        only be created in the following availability zones: ...") or CreateVpcEndpoint ("InvalidParameter: The VPC
        endpoint service ... does not support the availability zone of the subnet") would fail after the VPC was
        created. AZ names are each account's own in the oldest regions, and an account may lack an AZ others
        have (AWS Regions and Availability Zones guide, "AZ IDs"), so only the account can tell."""
        chosen = env.availability_zones
        key = "network.availability_zones" if env.network.availability_zones is not None else "network.az_count"
        ec2 = self.clients(env, "ec2")
        try:
            # without AllAvailabilityZones: the zones the account may use (EC2 API reference); Local and Wavelength
            # Zones (ZoneType) are left out: no env names one (the loader takes <region><letter> only)
            zones = [zone for zone in ec2.describe_availability_zones()["AvailabilityZones"]
                     if zone.get("ZoneType", "availability-zone") == "availability-zone"]
        except aws_errors() as error:
            report.notes.append(f"whether account {env.account_id} has {', '.join(chosen)} is unknown "
                                f"(DescribeAvailabilityZones: {error})")
            return
        ids = {str(zone["ZoneName"]): str(zone.get("ZoneId", "?")) for zone in zones}
        named = ", ".join(f"{name} ({ids.get(name, 'absent')})" for name in chosen)
        report.lines.append(f"availability zones: {named} of the account's {', '.join(sorted(ids))}")
        missing = [name for name in chosen if name not in ids]
        if missing:
            report.refusals.append(
                f"{env_path(env.name)}: {key}: account {env.account_id} has no availability zone "
                f"{', '.join(missing)} in {env.region} (it has {', '.join(sorted(ids))}; AZ names are each "
                "account's own): the network layer's CreateSubnet would fail after its VPC was created. List "
                f"{env.network.az_count} of the account's in network.availability_zones. Nothing was run.")
            return
        fargate = FARGATE_ZONE_IDS.get(env.region)
        outside = [f"{name} ({ids[name]})" for name in chosen if fargate and ids[name] not in fargate]
        if fargate and outside:
            usable = sorted(name for name, zone_id in ids.items() if zone_id in fargate)
            problem = (f"{env_path(env.name)}: {key}: Fargate runs tasks in {env.region} in {', '.join(fargate)} only "
                       f"(ECS guide, 'Supported Regions for Amazon ECS on AWS Fargate'), not in {', '.join(outside)}: "
                       f"the services' tasks there would never start. List {env.network.az_count} of the account's "
                       f"{', '.join(usable)} in network.availability_zones")
            if report.deployed_vpcs:  # its subnets exist: moving them replaces them (README, key changes)
                report.notes.append(f"{problem} (on the deployed {env.name} that replaces their subnets, and the "
                                    "broker where the first AZ changes: README, key changes)")
            else:
                report.refusals.append(f"{problem}. Nothing was run.")
                return
        for zone in zones:
            if zone["ZoneName"] in chosen and zone.get("State", "available") != "available":
                report.notes.append(f"{zone['ZoneName']} ({ids[zone['ZoneName']]}) is {zone.get('State')} in "
                                    f"{env.region} now")
        # the endpoints' subnets are the serving AZs' (shared.components.network): a retiring AZ gets none, so an
        # endpoint service it lacks is no reason to refuse (retiring that AZ is the way out of it)
        self._check_endpoint_zones(env, ec2, env.serving_availability_zones, report)

    @staticmethod
    def _check_endpoint_zones(env: EnvConfig, ec2: Any, chosen: Sequence[str], report: AccountReport) -> None:
        """Each interface endpoint of ``network.endpoints`` is created with one private subnet per serving AZ
        (``chosen``): its service must be offered in each (EC2 DescribeVpcEndpointServices
        ``ServiceDetails[].AvailabilityZones``, the account's AZ names)."""
        from shared.components.network import interface_endpoints

        services = {f"com.amazonaws.{env.region}.{name}": name for name in interface_endpoints(env.network.endpoints)}
        if not services:
            return
        try:
            # a service-name filter, not ServiceNames: EC2 answers ServiceNames naming a service the region lacks with
            # InvalidServiceName for the whole request (cloud-custodian PR #10741), a filter by leaving it out; the
            # answer pages (botocore ec2 paginators-1.json: DescribeVpcEndpointServices, NextToken)
            details = every_page(ec2.describe_vpc_endpoint_services, "ServiceDetails",
                                 Filters=[{"Name": "service-name", "Values": sorted(services)}])
        except aws_errors() as error:
            report.notes.append(f"which availability zones the endpoint services {', '.join(sorted(services))} "
                                f"offer is unknown (DescribeVpcEndpointServices: {error})")
            return
        offered = {str(detail["ServiceName"]): set(detail.get("AvailabilityZones", [])) for detail in details}
        for service, name in sorted(services.items()):
            if service not in offered:
                report.refusals.append(
                    f"{env_path(env.name)}: network.endpoints: {name}: {env.region} offers no endpoint service "
                    f"{service}: the network layer's CreateVpcEndpoint would fail. Remove it from "
                    "network.endpoints (the NAT carries its calls). Nothing was run.")
                continue
            lacking = [zone for zone in chosen if zone not in offered[service]]
            if lacking:
                only = f"only {', '.join(sorted(offered[service]))}" if offered[service] else "in none of the account's"
                report.refusals.append(
                    f"{env_path(env.name)}: network.endpoints: {name}: the endpoint service {service} is not offered "
                    f"in {', '.join(lacking)} ({only}): the network layer's "
                    "CreateVpcEndpoint would fail (\"does not support the availability zone of the subnet\"). List "
                    "other availability zones in network.availability_zones, retire that one "
                    "(network.retiring_availability_zones: its subnets get no endpoint), or remove it from "
                    "network.endpoints. Nothing was run.")

    def _check_block_public_access(self, env: EnvConfig, layers: Sequence[str], report: AccountReport) -> None:
        """Refuse where the account's VPC Block Public Access (EC2 DescribeVpcBlockPublicAccessOptions
        ``InternetGatewayBlockMode``, set by the account or an organization's declarative policy) blocks what the env
        needs of its internet gateway and its VPC is not excluded (DescribeVpcBlockPublicAccessExclusions):
        ``block-bidirectional`` stops all egress through the NAT gateways (the deploy runner's downloads, image pulls
        without endpoints, the AWS APIs without one), ``block-ingress`` a public gateway's load balancer. Network's
        own ``up`` passes either way, and an exclusion needs the VPC's id: a first ``up`` of network alone is let
        through with a note, a first ``up`` of more is refused, naming that order."""
        ec2 = self.clients(env, "ec2")
        try:
            options = ec2.describe_vpc_block_public_access_options()["VpcBlockPublicAccessOptions"]
        except aws_errors() as error:
            report.notes.append(f"whether VPC Block Public Access cuts {env.name}'s internet access is unknown "
                                f"(DescribeVpcBlockPublicAccessOptions: {error})")
            return
        mode = str(options.get("InternetGatewayBlockMode", "off"))
        report.lines.append(f"VPC Block Public Access: {mode}")
        public = bool(gateway_services(env))
        # what the env's VPC needs excluded: egress through the NAT always, ingress for a public gateway
        wanted = {"block-bidirectional": {"allow-egress", "allow-bidirectional"} if not public
                  else {"allow-bidirectional"},
                  "block-ingress": {"allow-bidirectional"} if public else set()}.get(mode, set())
        if not wanted:
            return
        cut = ("all internet egress through the NAT gateways (the deploy runner's downloads, image pulls and AWS APIs "
               "without a VPC endpoint)" if mode == "block-bidirectional" else "")
        if public:
            cut = f"{cut + ' and ' if cut else ''}the public gateway's load balancer from the internet"
        by = "the organization's declarative policy" if options.get("ManagedBy") == "declarative-policy" \
            else "the account"
        blocked = f"VPC Block Public Access is {mode} in {env.region} ({by})"
        network_alone = list(layers) == ["network"]  # network's own up needs no internet
        if options.get("ExclusionsAllowed") == "not-allowed":
            report.refusals.append(
                f"{blocked}, which cuts {cut}, and allows no exclusion: "
                f"{env.name} cannot work in account {env.account_id} there until it is lifted. Nothing was run.")
            return
        command = (f"`aws ec2 create-vpc-block-public-access-exclusion --region {env.region} --vpc-id <vpc> "
                   f"--internet-gateway-exclusion-mode {'allow-bidirectional' if public else 'allow-egress'}`")
        if not report.deployed_vpcs:
            if network_alone:
                report.notes.append(f"{blocked}, which cuts {cut}: "
                                    f"once this up made the VPC, exclude it ({command}) before the other layers")
            else:
                report.refusals.append(
                    f"{blocked}, which cuts {cut}: the layers after "
                    f"network would fail. Run `nox -s up -- {env.name} --layers network --exact` first, exclude its "
                    f"VPC ({command}), then the rest. Nothing was run.")
            return
        try:
            exclusions = every_page(ec2.describe_vpc_block_public_access_exclusions, "VpcBlockPublicAccessExclusions")
        except aws_errors() as error:
            report.notes.append(f"whether {env.name}'s VPC is excluded from VPC Block Public Access ({mode}) is "
                                f"unknown (DescribeVpcBlockPublicAccessExclusions: {error})")
            return
        live = [exclusion for exclusion in exclusions
                if exclusion.get("State") in ("create-complete", "update-complete")]
        for vpc in report.deployed_vpcs:
            if any(str(e.get("ResourceArn", "")).endswith(f":vpc/{vpc}") and e.get("InternetGatewayExclusionMode")
                   in wanted for e in live):
                report.lines.append(f"VPC Block Public Access: {vpc} excluded")
                continue
            if any(":subnet/" in str(e.get("ResourceArn", "")) for e in live):
                report.notes.append(f"{blocked} and {vpc} has no "
                                    f"exclusion of its own; subnet exclusions exist, which may cover it (if not: "
                                    f"{command.replace('<vpc>', vpc)})")
                continue
            problem = f"{blocked}, which cuts {cut}, and {env.name}'s VPC {vpc} is not excluded: " \
                      f"{command.replace('<vpc>', vpc)}"
            if network_alone:
                report.notes.append(problem)
            else:
                report.refusals.append(f"{problem}, then run again. Nothing was run.")

    def _find_deployed_network(self, env: EnvConfig, report: AccountReport) -> None:
        """The account's VPCs (its own, in the env's region) tagged as the env's network layer tags its VPC (the
        provider's default tags, :meth:`shared.envs.EnvConfig.common_tags`) into ``report.deployed_vpcs``."""
        filters = [{"Name": f"tag:{key}", "Values": [value]}
                   for key, value in (("env", env.name), ("layer", "network"), ("managed-by", "pulumi"))]
        try:
            vpcs = self.clients(env, "ec2").describe_vpcs(Filters=filters)["Vpcs"]
        except aws_errors() as error:
            report.notes.append(f"whether {env.name}'s network is deployed already is unknown (DescribeVpcs: {error})")
            return
        report.deployed_vpcs = sorted(str(vpc["VpcId"]) for vpc in vpcs
                                      if str(vpc.get("OwnerId", env.account_id)) == env.account_id)

    def _probe_network_creates(self, env: EnvConfig, report: AccountReport) -> None:
        """Refuse where EC2 would deny one of the network layer's first creates that comes after others: an
        organization's SCP that denies internet gateways or Elastic IPs (AWS Organizations user guide, "Example SCPs
        for Amazon Virtual Private Cloud": "Prevent any VPC that doesn't already have internet access from getting
        it"), or VPCs, stopped the layer's first `up` midway, its VPC and subnets made. EC2's ``DryRun`` answers
        DryRunOperation where the request would be allowed and UnauthorizedOperation where not (EC2 API reference,
        "DryRun"), judged as the real request is, SCPs and their ``aws:RequestTag`` conditions included, so the probes
        carry the tags the AWS provider creates with (the layer's default tags and the resource's ``Name``). The IAM
        policy simulator is no substitute: its answer "can differ from your live AWS environment" (botocore iam
        SimulatePrincipalPolicy), and other services have no DryRun. Only before the env's VPC exists."""
        from shared.components.network import nat_gateway_count

        ec2 = self.clients(env, "ec2")

        def tagged(kind: str, name: str) -> list[dict[str, Any]]:
            tags = {**env.common_tags("network"), "Name": name}
            return [{"ResourceType": kind, "Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}]

        first_az = env.availability_zones[0]
        probes: list[tuple[str, str, Callable[[], Any]]] = [
            ("ec2:CreateVpc", "nothing", lambda: ec2.create_vpc(
                CidrBlock=str(env.network.cidr), DryRun=True, TagSpecifications=tagged("vpc", f"{env.name}-vpc"))),
            ("ec2:CreateInternetGateway", "the VPC", lambda: ec2.create_internet_gateway(
                DryRun=True, TagSpecifications=tagged("internet-gateway", f"{env.name}-igw"))),
        ]
        if nat_gateway_count(env.network.nat, len(env.availability_zones)):
            probes.append(("ec2:AllocateAddress", "the VPC", lambda: ec2.allocate_address(
                Domain="vpc", DryRun=True, TagSpecifications=tagged("elastic-ip", f"{env.name}-nat-{first_az}"))))
        allowed: list[str] = []
        for action, made_before, probe in probes:
            try:
                probe()
            except aws_errors() as error:
                code = aws_error_code(error)
                if code == "DryRunOperation":
                    allowed.append(action)
                    continue
                if code not in DENIED_CODES:
                    report.notes.append(f"whether network's {action} would be allowed is unknown (DryRun: {error})")
                    continue
                denial = self._network_denial(env, action, made_before, str(error))
                report.refusals.append(denial)
                report.caller_judged.append(denial)
                return
            else:  # a DryRun never creates; an answer without its error is not one to trust
                report.notes.append(f"whether network's {action} would be allowed is unknown (DryRun answered "
                                    "without DryRunOperation)")
        if allowed:
            report.lines.append(f"network's creates (EC2 DryRun): {', '.join(allowed)} allowed")

    @staticmethod
    def _network_denial(env: EnvConfig, action: str, made_before: str, said: str) -> str:
        from shared.orchestrate.report import ORGANIZATIONS_ADMINISTRATOR, organization_denial

        where = (f"{env_path(env.name)}: network: {action} is denied in account {env.account_id} ({env.region}): the "
                 f"network layer's first `up` would stop there after creating {made_before}")
        message = said.split(" Encoded authorization failure message", 1)[0]
        if organization_denial(said) is not None:
            return (f"{where}. A service control policy of the account's AWS Organization denies it ({message}), "
                    f"and no IAM policy of the account overrides that: ask your {ORGANIZATIONS_ADMINISTRATOR} to "
                    "allow it for the deploy role in this region, or deploy the env to an account or region where it "
                    "is allowed (README, Organizations policies and Control Tower). Nothing was run.")
        return (f"{where}. These credentials may not ({message}): run `up` with the deploy role, its policies as "
                f"`nox -s roles -- {env.name}` prints them (README, A fresh account, in order, step 4). Nothing was "
                "run.")

    @staticmethod
    def _check_boundary(env: EnvConfig, iam: Any, layer: str, report: AccountReport) -> None:
        """Refuse where the env's role boundary (:mod:`shared.role_boundary`) does not exist (IAM GetPolicy): every
        role of the stacks names it, and the first CreateRole (or, on an env deployed before it, the first
        PutRolePermissionsBoundary) would fail with NoSuchEntity midway through ``layer``. No stack creates it (the
        deploy role may not write its own cap): the administrator does, from ``nox -s roles``."""
        from shared.components.compute_containers import partition_of
        from shared.role_boundary import boundary_arn, boundary_policy_name, update_commands

        name, arn = boundary_policy_name(env.name), boundary_arn(partition_of(env.region), env.account_id, env.name)
        try:
            version = str(iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"])
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        except aws_errors() as error:
            if aws_error_code(error) != "NoSuchEntity":
                report.notes.append(f"whether the role boundary {name} exists and is up to date is unknown ({error}); "
                                    f"the first role {layer} creates or updates fails without it")
                return
            report.refusals.append(
                f"{env_path(env.name)}: the role boundary {name} does not exist in account {env.account_id}: every "
                f"IAM role of the stacks carries it, and {layer} would fail at its first role (NoSuchEntity) after "
                f"creating what comes before. Create it with administrator credentials from `nox -s roles -- "
                f"{env.name} --out DIR`: aws iam create-policy --policy-name {name} --policy-document "
                f"file://DIR/{name}.json (README, A fresh account, in order, step 4). Nothing was run.")
            return
        missing = missing_boundary_statements(env, document)
        if missing:
            # the roles' policies would be written, and their calls denied when the tasks, functions and builds run
            report.refusals.append(
                f"{env_path(env.name)}: the role boundary {name} (version {version}) lacks what the roles of this "
                f"code and env file are granted (statements {', '.join(missing)}): their calls would be denied when "
                f"they run (a changed messaging.deploy_runner.deploy_role_name or github_connection_arn, or a code "
                f"upgrade). Update it with administrator credentials from `nox -s roles -- {env.name} --out DIR`: "
                f"{update_commands(arn, f'file://DIR/{name}.json')}. Nothing was run.")
            return
        report.lines.append(f"{name}: present, up to date")

    @staticmethod
    def _find_named_role(iam: Any, role: NamedRole, report: AccountReport) -> None:
        try:
            iam.get_role(RoleName=role.role_name)
        except aws_errors() as error:
            if aws_error_code(error) != "NoSuchEntity":
                report.notes.append(f"whether IAM role {role.role_name} ({role.layer}: {role.what}) exists already is "
                                    f"unknown ({error})")
            return
        report.existing_roles.append(role)

    @staticmethod
    def _check_role(iam: Any, role: LinkedRole, report: AccountReport) -> None:
        try:
            iam.get_role(RoleName=role.role_name)
        except aws_errors() as error:
            code = aws_error_code(error)
            if code == "NoSuchEntity":
                report.missing.append(role)
                report.lines.append(f"{role.role_name}: missing ({role.layer}: {role.why})")
                return
            what = "not allowed to read it (iam:GetRole)" if code in DENIED_CODES else f"could not read it ({error})"
            report.notes.append(f"service-linked role {role.role_name} ({role.layer}: {role.why}): unknown, "
                                f"{what}; if {role.layer} fails on it, create it once: `{role.command}`")
            return
        report.lines.append(f"{role.role_name}: present")

    @staticmethod
    def _quota_value(quotas: Any, need: QuotaNeed) -> tuple[float | None, str]:
        """The applied quota (else AWS's default) and where it came from; None and why when unreadable.

        The default stands in only where Service Quotas has no applied value (GetServiceQuota answers
        NoSuchResourceException: "If the applied quota value is not available for a quota, the quota is not
        retrieved", Service Quotas API reference). Any other failure leaves the quota unknown: an account's applied
        value can be far below the default (a new account's Fargate vCPUs)."""
        reads = ((quotas.get_service_quota, "GetServiceQuota", "applied"),
                 (quotas.get_aws_default_service_quota, "GetAWSDefaultServiceQuota", "AWS default"))
        for call, action, source in reads:
            try:
                value = call(ServiceCode=need.service_code, QuotaCode=need.quota_code)["Quota"]["Value"]
                return float(value), source
            except aws_errors() as error:
                code = aws_error_code(error)
                if code in DENIED_CODES:
                    return None, f"not allowed to read it (servicequotas:{action})"
                if code != "NoSuchResourceException":
                    return None, f"could not read it ({action}: {error})"
        return None, "Service Quotas does not know it here"

    def _usage(self, env: EnvConfig, need: QuotaNeed, report: AccountReport) -> tuple[int, int] | None:
        """(held in the account and region, of which the env's own) for a counted quota; None when unreadable."""
        if need.counted is None:
            return None
        call, key, own_name = USAGE[need.counted]
        own_name = own_name.format(env=env.name)
        try:
            listed = getattr(self.clients(env, "ec2"), call)()[key]
        except aws_errors() as error:
            report.notes.append(f"{need.name}: what the account holds is unknown ({call}: {error})")
            return None
        # A VPC shared with the account (VPC sharing) is listed with its internet gateway under the owner's OwnerId,
        # and counts on the owner's quotas (VPC user guide, "Responsibilities and permissions for owners and
        # participants"). Elastic IPs are never shared (DescribeAddresses has no OwnerId).
        items = [item for item in listed if str(item.get("OwnerId", env.account_id)) == env.account_id]
        own = sum(1 for item in items
                  if any(tag.get("Key") == "Name" and str(tag.get("Value", "")).startswith(own_name)
                         for tag in item.get("Tags") or []))
        return len(items), own

    def _check_quota(self, env: EnvConfig, quotas: Any, need: QuotaNeed, report: AccountReport) -> None:
        label = f"{need.name} ({need.service_code} {need.quota_code})"
        value, source = self._quota_value(quotas, need)
        if value is None:
            report.notes.append(f"quota {label}: unknown, {source}; {env.name} needs {_fmt(need.need)} "
                                f"({need.what})")
            return
        usage = self._usage(env, need, report)
        total, held = need.need, ""
        if usage is not None:
            existing, own = usage
            # what the account holds, plus what the env still has to create (its own are already counted)
            total = existing + max(0.0, need.need - own)
            held = f" (the account holds {existing}, {own} of them {env.name}'s)"
        report.lines.append(f"{label}: {env.name} needs {_fmt(need.need)}{held}, quota {_fmt(value)} ({source})")
        request = (f"aws service-quotas request-service-quota-increase --region {env.region} --service-code "
                   f"{need.service_code} --quota-code {need.quota_code} --desired-value "
                   f"{math.ceil(max(need.peak, total))}")
        if need.unapplied and source == "AWS default" and total <= value:
            report.notes.append(f"quota {label} is AWS's default {_fmt(value)}, none applied to the account: "
                                f"{need.unapplied}: `{request}`")
        if total > value:
            report.refusals.append(
                f"{need.blocked or need.layer} cannot succeed in account {env.account_id} ({env.region}): {label} "
                f"is {_fmt(value)}, "
                f"and {env.name} needs {_fmt(need.need)} ({need.what}){held}. Ask for more (`{request}`), free "
                f"some, or lower the need in {env_path(env.name)}. Nothing was run.")
        elif need.peak > value:
            report.notes.append(f"quota {label} is {_fmt(value)}: enough for the first up ({_fmt(need.need)}), "
                                f"not for the peak {_fmt(need.peak)} ({need.what}); what goes beyond it is not "
                                f"started. `{request}`")

    def create(self, env: EnvConfig, roles: Sequence[LinkedRole]) -> list[str]:
        from shared.orchestrate.report import ORGANIZATIONS_ADMINISTRATOR, organization_denial

        if not roles:
            return []
        iam = self.clients(env, "iam")
        done: list[str] = []
        created = False
        for role in roles:
            try:
                name = str(iam.create_service_linked_role(AWSServiceName=role.service)["Role"]["RoleName"])
            except aws_errors() as error:
                code = aws_error_code(error)
                message = str(error)
                if code == "EntityAlreadyExists" or (code == "InvalidInput" and "has been taken" in message):
                    done.append(f"{role.role_name}: present (created meanwhile by someone else)")
                    continue
                so_far = f" {'; '.join(done)}." if done else ""
                who = "Someone allowed to create it should"
                reason = ("the credentials may not iam:CreateServiceLinkedRole" if code in DENIED_CODES
                          else message)
                if code in DENIED_CODES and organization_denial(message) is not None:
                    # an SCP binds every principal of the account alike (AWS Organizations user guide, "Service
                    # control policies"): the account's own administrator is denied it too
                    reason = ("a service control policy of the account's AWS Organization denies "
                              "iam:CreateServiceLinkedRole, and no IAM policy of the account overrides it")
                    who = (f"Ask your {ORGANIZATIONS_ADMINISTRATOR} to allow it (condition iam:AWSServiceName "
                           f"{role.service}) or to have a principal the policy exempts")
                raise AccountError(
                    f"{env.name}: creating the service-linked role {role.role_name} ({role.layer}: {role.why}) "
                    f"failed: {reason}. No layer has run.{so_far} {who} run once, in "
                    f"account {env.account_id}: `{role.command}`") from None
            self._wait_visible(iam, name)
            created = True
            done.append(f"{name}: created ({role.command})")
        if created:
            self.sleep(ROLE_SETTLE_S)
        return done

    def _wait_visible(self, iam: Any, name: str) -> None:
        """IAM is eventually consistent: wait (bounded) until the new role reads back."""
        for _ in range(ROLE_VISIBLE_ATTEMPTS):
            try:
                iam.get_role(RoleName=name)
                return
            except aws_errors() as error:
                if aws_error_code(error) != "NoSuchEntity":
                    return
            self.sleep(ROLE_VISIBLE_SLEEP_S)


def reads_external_admin_secret(env: EnvConfig, layers: Iterable[str]) -> bool:
    """Whether a program of ``layers`` reads the secret of an ``external`` broker's admin (messaging's, which no
    layer creates: :meth:`AwsAccountCheck._check_external_admin_secret`)."""
    return "messaging" in set(layers) and env.messaging.broker == "external"


def missing_boundary_statements(env: EnvConfig, document: Any) -> list[str]:
    """The Sids of ``env``'s role boundary (:func:`shared.role_boundary.boundary_document`) that ``document`` (the
    boundary policy's default version, as IAM GetPolicyVersion returns it: URL-encoded JSON, or the dict boto3
    decodes it to) does not allow: some action on some resource of the statement is allowed by no statement of
    ``document`` under the same condition or none (IAM's wildcards read as IAM reads them), or is denied by one. A
    boundary wider than printed passes: a statement split in two, or one naming more (the old and the new deploy role
    while a change of ``messaging.deploy_runner.deploy_role_name`` is applied)."""
    from urllib.parse import unquote

    from shared.role_boundary import boundary_document

    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            document = {}
    listed = document.get("Statement", []) if isinstance(document, dict) else []
    held = [statement for statement in (listed if isinstance(listed, list) else [listed])
            if isinstance(statement, dict) and "Action" in statement and "Resource" in statement]

    def matches(statement: dict[str, Any], key: str, value: str) -> bool:
        # IAM user guide, "IAM JSON policy elements: Action / Resource": * any run of characters, ? one (never a
        # printed *, which stands for many); action names are case-insensitive, ARNs are not
        values = statement[key] if isinstance(statement[key], list) else [statement[key]]
        return any(re.fullmatch("".join(".*" if char == "*" else "[^*]" if char == "?" else re.escape(char)
                                        for char in str(pattern)),
                                value, re.IGNORECASE if key == "Action" else 0) for pattern in values)

    def canonical(condition: Any) -> Any:
        # a condition's values are a set (IAM user guide, "Condition element": multiple values are ORed)
        if not isinstance(condition, dict):
            return condition
        return {operator: {key: sorted(map(str, value if isinstance(value, list) else [value]))
                           for key, value in pairs.items()} if isinstance(pairs, dict) else pairs
                for operator, pairs in condition.items()}

    def allowed(action: str, resource: str, condition: Any) -> bool:
        found = [statement for statement in held
                 if matches(statement, "Action", action) and matches(statement, "Resource", resource)]
        return not any(statement.get("Effect") == "Deny" for statement in found) and any(
            statement.get("Effect") == "Allow"
            and canonical(statement.get("Condition")) in (None, {}, canonical(condition)) for statement in found)

    return [str(statement["Sid"]) for statement in boundary_document(env)["Statement"]
            if not all(allowed(action, resource, statement.get("Condition"))
                       for action in statement["Action"] for resource in statement["Resource"])]


def named_roles_refusal(env: EnvConfig, layer: str, stack: str, roles: Sequence[NamedRole]) -> str:
    """Why ``up`` stops when ``layer``'s stack does not exist, yet the account holds IAM roles that layer names
    after the env (:func:`account_wide_roles`)."""
    listed = ", ".join(f"{role.role_name} ({role.what})" for role in roles)
    return (f"{env_path(env.name)}: account {env.account_id} already holds the IAM role {listed} that {layer} names "
            f"after the env, but the stack {stack} does not exist on this state backend. IAM names are account-wide, "
            f"not regional: an env named {env.name} is deployed to this account from elsewhere (another region, "
            "another folder of env files, pulumi_org or state backend), or its stacks were lost, and this up would "
            f"stop at that role after the layers before {layer} were deployed. Give this env another name (a new "
            "file), or run from the stacks that deployed it; a leftover role whose stacks are gone for good is "
            "deleted first (`aws iam delete-role`, after its inline policies).")


# -- the standalone command --------------------------------------------------------------------------------


def lost_broker_refusal(env: EnvConfig, stack: str, broker_id: str) -> str:
    """Why a run stops whose broker stack records a broker the account no longer holds (deleted outside Pulumi): the
    broker layer's ``up`` reads no AWS state (no refresh), so it would change nothing, and messaging's refresh would
    call the deleted broker's endpoint."""
    return (f"{env_path(env.name)}: the broker layer's stack {stack} records the Amazon MQ broker {broker_id}, which "
            f"account {env.account_id} ({env.region}) no longer holds (deleted outside Pulumi): the broker layer's up "
            "would change nothing and messaging's refresh would call the deleted broker. Drop it from the state "
            f"first, `nox -s refresh -- {env.name} --layers broker --exact`, then run this again: up creates a new "
            "broker, puts its admin's first password back in the admin secret, and messaging creates the topology on "
            "it. The deleted broker's messages are lost (README, \"Disaster recovery\"). Nothing was run.")


def print_report(report: AccountReport, env: EnvConfig, out: TextIO) -> None:
    for line in report.lines:
        out.write(f"account {env.name}: {line}\n")
    for note in report.notes:
        out.write(f"note: {note}\n")
    out.flush()


def main(argv: Sequence[str] | None = None, *, check: AccountCheck | None = None, out: TextIO | None = None) -> int:
    """``python -m shared.orchestrate.account ENV [--layers a,b] [--dry]``: exit 0 ready (roles created unless
    --dry), 2 a quota the env certainly exceeds, a role that cannot be created, or credentials of another account."""
    from shared.cli import UsageParser
    from shared.envs import load_env
    from shared.orchestrate.model import Action, Operation
    from shared.orchestrate.plan import make_plan, requested_layers

    out = out or sys.stdout
    parser = UsageParser(prog="python -m shared.orchestrate.account", label="nox -s preflight",
                         description="The account preflight of `up` alone: service-linked roles and service quotas.")
    parser.add_argument("env")
    parser.add_argument("--layers", help="comma-separated layers (with what they read, as `up` expands them)")
    parser.add_argument("--dry", action="store_true", help="report only: create no service-linked role")
    try:
        args = parser.parse_args(argv)
        env = load_env(args.env)
        layers = make_plan(Operation(Action.UP), requested_layers(args.layers)).layers
        check = check if check is not None else AwsAccountCheck()
        report = check.check(env, layers)
        print_report(report, env, out)
        if report.refusals:
            raise AccountError("\n".join(report.refusals))
        if args.dry:
            for role in report.missing:
                out.write(f"account {env.name}: would create {role.role_name}: `{role.command}`\n")
            return 0
        for line in check.create(env, report.missing):
            out.write(f"account {env.name}: {line}\n")
    except PlatformError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    out.write(f"account {env.name}: ready for {', '.join(layers)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
