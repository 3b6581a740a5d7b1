"""Environments: ``environments/<env>.yaml`` validated against one schema before anything runs.

An environment is data; the layers are code. Everything that differs between dev, staging and prod
is here: account, region, network shape, mesh provider, broker mode, sizes and counts, policy
enforcement and suppressions, and the release (the image each service runs).

``PLATFORM_ENV_DIR`` points the loader at another folder of env files (promotion synthesizes a
candidate release from a scratch copy this way; tests use it for fixtures).

Validation happens in two passes, and each pass reports every problem it finds at once (exit 2, one
line per problem naming the file, the key path and the reason):

1. the schema: unknown keys, missing keys, wrong types. Types are strict: a YAML string is never
   turned into a number or a boolean (``"1"``, ``yes`` in quotes, ``"off"`` are refused), while
   YAML's own integers and booleans are of course accepted;
2. every cross-field and cross-layer rule (:data:`RULES`), which would otherwise surface only when a
   later layer runs, after the earlier ones were deployed. A rule runs unless a section it reads has
   a schema problem, so both passes report together.
"""

from __future__ import annotations

import ipaddress
import os
import re
import reprlib
import unicodedata
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared import REPO_ROOT
from shared.amazonmq import (
    CLUSTER_AZS,
    DEFAULT_ENGINE_VERSION,
    DEFAULT_INSTANCE_TYPE,
    broker_problems,
    cluster_zones_problem,
)
from shared.aws_limits import APPMESH_WEIGHTED_TARGETS_PER_ROUTE
from shared.errors import ConfigError, ConfigErrors, non_string_key, raise_all
from shared.fargate import unknown_key_reason
from shared.kms_url import kms_key
from shared.maintenance import TIME_OF_DAY, DayOfWeek, business_hours_problem, time_zone_problem, windows_overlap
from shared.mesh_names import SERVICE_TAG, VERSION_TAG
from shared.regions import REGION_AZS

if TYPE_CHECKING:
    from shared.catalog import Catalog, ServiceSpec

ENV_DIR = REPO_ROOT / "environments"
ENV_DIR_VAR = "PLATFORM_ENV_DIR"

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ENDPOINT_SERVICES = ("s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"{value} is not a CloudWatch Logs retention period ({LOG_RETENTION_DAYS})")
    return value


#: days a CloudWatch log group keeps its events: one of the values CloudWatch Logs accepts
LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]


class _Strict(BaseModel):
    # strict: "1", "yes" or "off" in quotes stay strings (an error where a number or boolean is due).
    # Lists in YAML become tuples, so tuple fields opt out of strict (their items stay strict).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


#: the private address blocks of RFC 1918, where a VPC's range belongs (the env schema's ``network.cidr``)
RFC1918_BLOCKS = tuple(ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
DOCKER_BRIDGE = ipaddress.IPv4Network("172.17.0.0/16")


class NetworkConfig(_Strict):
    cidr: ipaddress.IPv4Network
    az_count: int = Field(ge=1, description="how many AZs the subnets spread over")
    #: the account's AZ names to use, in order (default: the first ``az_count`` of shared/regions.py): AZ names are
    #: the account's own in the oldest regions (AWS Regions and Availability Zones guide, "AZ IDs"), so an account
    #: may lack the table's (us-west-1 accounts have two of a/b/c); ``up``'s preflight checks them in the account
    availability_zones: tuple[str, ...] | None = Field(default=None, strict=False)
    #: the last of the env's AZs, being dropped: their subnets (and route tables, NAT gateway) stay, but nothing is
    #: placed in them any more, so the `up` moves tasks, functions, the deploy runner and the load balancer off; the
    #: next `up`, with a lower ``az_count``, deletes them. In one step EC2 refuses it: DeleteSubnet answers
    #: DependencyViolation while a network interface is left, and the layers that hold them run after network
    retiring_availability_zones: tuple[str, ...] = Field(default=(), strict=False)
    nat: Literal["none", "single", "per-az"]
    endpoints: tuple[Literal["s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring"], ...] = Field(
        default=(), strict=False)
    flow_log_retention_days: LogRetentionDays = 30

    @field_validator("cidr", mode="before")
    @classmethod
    def _cidr(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a CIDR string such as 10.10.0.0/16")
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a valid IPv4 CIDR ({error})") from None
        if not 16 <= network.prefixlen <= 22:
            raise ValueError(f"{value}: the VPC prefix must be between /16 and /22 (AWS allows /16-/28; "
                             "subnets are carved as /20 to /26 below it)")
        if not any(network.subnet_of(block) for block in RFC1918_BLOCKS):
            raise ValueError(f"{value} is not inside a private (RFC 1918) range: 10.0.0.0/8, 172.16.0.0/12 or "
                             "192.168.0.0/16")
        if network.overlaps(DOCKER_BRIDGE):
            # AWS VPC user guide, "IPv4 VPC CIDR blocks": "Some AWS services use the 172.17.0.0/16 CIDR range. To
            # avoid future conflicts, don't use this range when creating your VPC" (Docker's default bridge network)
            raise ValueError(f"{value} overlaps 172.17.0.0/16, which some AWS services use (Docker's default bridge); "
                             "AWS's VPC guide says not to use it for a VPC")
        return network


class StaticInstance(_Strict):
    """An instance registered by hand in a Cloud Map service (for something outside ECS)."""

    service: str
    instance_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    ipv4: ipaddress.IPv4Address
    port: int = Field(ge=1, le=65535)

    @field_validator("ipv4", mode="before")
    @classmethod
    def _ipv4(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be an IPv4 address string such as 10.10.0.12 (got {type(value).__name__})")
        try:
            return ipaddress.IPv4Address(value)
        except ValueError as error:
            raise ValueError(str(error)) from None


_DNS_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"


class DiscoveryConfig(_Strict):
    namespace: str | None = Field(default=None, pattern=_DNS_NAME)
    dns_ttl_seconds: int = Field(default=10, ge=1, le=300)
    static_instances: tuple[StaticInstance, ...] = Field(default=(), strict=False)


#: The most versions one canary splits traffic over: its App Mesh route's weighted targets.
MAX_CANARY_VERSIONS = APPMESH_WEIGHTED_TARGETS_PER_ROUTE


class CanaryVersion(_Strict):
    version: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,15}$")
    weight: int = Field(ge=0, le=100)


class MeshConfig(_Strict):
    provider: Literal["service-connect", "appmesh"]
    egress_filter: Literal["DROP_ALL", "ALLOW_ALL"] = "DROP_ALL"
    #: App Mesh's Envoy from the ECR Public gallery (its pull needs no IAM), pinned by digest; unset =
    #: the platform's default (shared.components.compute_containers.ENVOY_IMAGE)
    envoy_image: str | None = Field(default=None,
                                    pattern=r"^public\.ecr\.aws/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$")
    canaries: dict[str, Annotated[tuple[CanaryVersion, ...], Strict(False)]] = {}
    appmesh_end_of_support_acknowledged: bool = Field(
        default=False, description="required (true) to select provider appmesh: AWS ended App Mesh on 2026-09-30")
    #: service-connect envs: the proxy writes one JSON line per request it serves (method, path, status, timing;
    #: no query string) beside its own log (ECS ServiceConnectConfiguration.accessLogConfiguration). An appmesh
    #: env may not set it: App Mesh has ended, its virtual nodes stay as they are.
    service_connect_access_logs: bool | None = None

    @property
    def access_logs(self) -> bool:
        """Whether compute's services log every request their Service Connect proxy serves (on unless turned off)."""
        return self.provider == "service-connect" and self.service_connect_access_logs is not False

    @field_validator("service_connect_access_logs")
    @classmethod
    def _access_logs_need_service_connect(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is not None and info.data.get("provider") == "appmesh":
            raise ValueError("for provider service-connect only (App Mesh has ended: an appmesh env's virtual nodes "
                             "stay as they are)")
        return value

    @field_validator("canaries")
    @classmethod
    def _weights(cls, value: dict[str, tuple[CanaryVersion, ...]]) -> dict[str, tuple[CanaryVersion, ...]]:
        for service, versions in value.items():
            if len(versions) < 2:
                raise ValueError(f"{service}: a canary needs at least two versions")
            if len(versions) > MAX_CANARY_VERSIONS:
                # App Mesh service quotas: weighted targets per route, 10, not adjustable (its route splits them).
                raise ValueError(f"{service}: {len(versions)} versions; App Mesh routes to at most "
                                 f"{MAX_CANARY_VERSIONS} weighted targets per route (a limit AWS does not raise)")
            if sum(v.weight for v in versions) != 100:
                raise ValueError(f"{service}: version weights must sum to 100")
            if len({v.version for v in versions}) != len(versions):
                raise ValueError(f"{service}: version names must be unique")
        return value


def url_credentials_problem(url: str | None, instead: str) -> str | None:
    """Why an env file's URL may not carry ``user:password@`` (None: it carries none). The env file is committed,
    and these URLs go in clear where no secret may: the broker stack's outputs (``amqps_endpoint``,
    ``management_endpoint``), the RabbitMQ provider's ``endpoint``/``proxy`` in the messaging state (not Pulumi
    secrets), the orchestrator's reachability messages. The reason never repeats the URL."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        carries = parts.username is not None or parts.password is not None
    except ValueError:  # a malformed port: the key's pattern says what is wrong
        carries = "@" in url
    if not carries:
        return None
    return ("carries credentials (user:password@ before the host): the env file is committed, and the URL is "
            "stored and shown in clear (stack outputs, the RabbitMQ provider's settings in the state, `up`'s "
            f"messages); {instead}")


EXTERNAL_CREDENTIALS = ("keep the broker's admin credentials in the Secrets Manager secret "
                        "platform/<env>/broker/external-admin (JSON username and password; the services get their own "
                        "generated users); README, \"Messaging (RabbitMQ) and its rehearsal\"")
PROXY_CREDENTIALS = ("use a proxy that needs none in its URL, e.g. a SOCKS tunnel on localhost (README, \"Ways into "
                     "the VPC: the deploy runner and tunnels\")")


class ExternalBroker(_Strict):
    amqps_endpoint: str = Field(pattern=r"^amqps://[^/\s]+:\d+$")
    management_endpoint: str = Field(pattern=r"^https://[^\s]+$")

    @field_validator("amqps_endpoint", "management_endpoint")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        problem = url_credentials_problem(url, EXTERNAL_CREDENTIALS)
        if problem:
            raise ValueError(problem)
        return url


class ManagementAccess(_Strict):
    """How the deployer reaches the broker's management API (the RabbitMQ provider and the
    orchestrator's reachability probe use it). Unset: the broker's own endpoint, which only answers
    inside the VPC (the platform's deploy runner runs there)."""

    endpoint: str | None = Field(default=None, pattern=r"^https://[^\s/]+(:\d+)?/?$",
                                 description="e.g. https://localhost:15671 through an SSM port-forwarding tunnel")
    tls_server_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$",
                                        description="hostname the certificate is checked against (tunnels)")
    ca_file: str | None = Field(default=None, min_length=1, description="PEM bundle to verify the broker with: "
                                "a file of the repository (path relative to its root) or an absolute path")
    proxy: str | None = Field(default=None, pattern=r"^(https?|socks5h?)://[^\s]+$")

    @field_validator("endpoint")
    @classmethod
    def _no_endpoint_credentials(cls, url: str | None) -> str | None:
        problem = url_credentials_problem(url, "the RabbitMQ provider signs in with the broker's admin credentials "
                                               "(from Secrets Manager)")
        if problem:
            raise ValueError(problem)
        return url

    @field_validator("proxy")
    @classmethod
    def _no_proxy_credentials(cls, url: str | None) -> str | None:
        problem = url_credentials_problem(url, PROXY_CREDENTIALS)
        if problem:
            raise ValueError(problem)
        return url


#: An IAM role name: CreateRole's RoleName, botocore iam roleNameType (1 to 64, ``[\w+=,.@-]+``, Java's ASCII ``\w``:
#: "upper and lowercase alphanumeric characters with no spaces" and ``_+=,.@-``, IAM API reference). Spelled out:
#: Python's and pydantic's ``\w`` also take non-ASCII letters and digits, which IAM refuses.
IAM_ROLE_NAME = r"[A-Za-z0-9_+=,.@-]{1,64}"


class DeployRunnerConfig(_Strict):
    """The platform's deploy runner: a CodeBuild project in the env's private subnets (broker layer)."""

    #: the IAM role a build assumes to deploy (created once per account, outside the platform: a stack
    #: cannot create the role it is deployed with); the runner's own service role may only assume it
    deploy_role_name: str = Field(default="ml-platform-deployer", pattern=rf"^{IAM_ROLE_NAME}$")
    #: https://github.com/<owner>/<repo>: builds check it out and the project accepts GitHub Actions
    #: jobs (CodeBuild-hosted runner); unset: builds take their source from `start-build` overrides
    github_repository: str | None = Field(default=None, pattern=r"^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?(\.git)?$")
    compute_type: Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"] = (
        "BUILD_GENERAL1_SMALL")
    #: a build's limit (botocore codebuild BuildTimeOut: 5-2160); unset: as long as a deploy job of the whole env
    #: (shared.workflows.env_job_minutes), which a build running `up` of every layer, or a GitHub Actions job on
    #: the runner, may take; less is refused
    timeout_minutes: int | None = Field(default=None, ge=5, le=2160)
    log_retention_days: LogRetentionDays = 30
    #: name of a Secrets Manager secret (this env's account and region) holding the Pulumi passphrase, for a
    #: state backend whose stack secrets are passphrase-encrypted: the project holds its ARN and the build reads it
    #: into PULUMI_CONFIG_PASSPHRASE as the deploy role; no role of the runner reads it
    #: (shared.components.deploy_runner.SECRET_VARIABLES; Secrets Manager secret names: 1-512 of these characters)
    passphrase_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")
    #: name of a Secrets Manager secret (this env's account and region) holding a Pulumi access token, for a Pulumi
    #: Cloud backend: the build reads it into PULUMI_ACCESS_TOKEN in the same way (the CLI's login in a build, which
    #: has no terminal)
    access_token_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")
    #: the AWS CodeConnections (formerly CodeStar Connections) GitHub App connection builds check GitHub out
    #: with (github_repository, or a start-build source override); unset: a token credential of CodeBuild
    github_connection_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$")

    @field_validator("passphrase_secret", "access_token_secret")
    @classmethod
    def _not_a_partial_arn(cls, name: str | None) -> str | None:
        # botocore secretsmanager CreateSecret Name: "Do not end your secret name with a hyphen followed by six
        # characters": the ARN's own suffix looks so, and a name (what CodeBuild resolves) that ends so can be
        # taken for a partial ARN of another secret.
        if name is not None and re.search(r"-[A-Za-z0-9]{6}$", name):
            raise ValueError(f"{name!r} ends with a hyphen and six characters, which Secrets Manager may take for "
                             "the random suffix of a partial ARN; name the secret otherwise")
        return name


class CredentialsRotation(_Strict):
    """When the platform's generated broker credentials last rotated, and how old they may get.

    ``epoch`` (a YAML date, ``2026-11-01``) is the keeper of every generated service password: changing
    it makes the next ``up`` generate new passwords, update the RabbitMQ users and the Secrets Manager
    secrets in place. ``max_age_days`` is the longest the env lets an epoch stand; the policy rule
    ``secretsmanager-rotation`` holds it to the env's baseline (``maxDays``), and each secret carries
    the due date (``epoch + max_age_days``) in its ``rotation-due`` tag. Whether that date has passed is
    not part of validation or policy (their verdict would change with the calendar, not with a change).

    ``previous_epoch`` is the epoch a rotation replaced: its users stay valid (running tasks read their
    credentials when they started, and reconnect with them) until the next rotation deletes them. Unset: the
    previous users are the unsuffixed ones the platform made before users were per epoch. The loader cannot know
    the deployed epoch: messaging's ``up`` refuses a new epoch whose previous_epoch is not it
    (shared.rotation_continuity).
    """

    epoch: date
    max_age_days: int = Field(ge=1, le=365)
    previous_epoch: date | None = None

    @field_validator("epoch", "previous_epoch", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> date | None:
        # YAML gives a date for an unquoted 2026-11-01; a quoted one is accepted in the same form only.
        if value is None:
            return None  # only previous_epoch may be null; epoch's own type refuses it
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _previous_before_epoch(self) -> CredentialsRotation:
        if self.previous_epoch is not None and self.previous_epoch >= self.epoch:
            raise ValueError(f"previous_epoch {self.previous_epoch} must be before epoch {self.epoch} (a rotation "
                             "moves the old epoch to previous_epoch and sets a later one)")
        return self

    @property
    def due(self) -> date:
        return self.epoch + timedelta(days=self.max_age_days)


class MaintenanceWindow(_Strict):
    """When Amazon MQ may restart the env's broker each week to apply a pending change, a patch of its engine or its
    own maintenance (up to two hours from the start: shared.maintenance). An in-place ``UpdateBroker``, no reboot
    (terraform-provider-aws mq/broker.go: maintenance_window_start_time is not ForceNew and updates alone)."""

    day_of_week: DayOfWeek
    #: the start, 24-hour HH:MM in ``time_zone`` (botocore mq WeeklyStartTime.TimeOfDay)
    time_of_day: str = Field(pattern=TIME_OF_DAY)
    #: an IANA Area/City zone (the env's own, e.g. Europe/Dublin) or UTC (botocore mq WeeklyStartTime.TimeZone)
    time_zone: str

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        problem = time_zone_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def spec(self) -> tuple[str, str, str]:
        return self.day_of_week, self.time_of_day, self.time_zone


#: RabbitMQ refuses a ``message-ttl`` above 2^32 - 1 ms, about 49.7 days (rabbit_policies, message-ttl validation)
MESSAGE_TTL_MAX_MS = 4_294_967_295


class MessagingConfig(_Strict):
    broker: Literal["amazon-mq", "external"]
    #: the broker's weekly maintenance window (amazon-mq only); unset: Sunday 03:00 UTC
    maintenance_window: MaintenanceWindow = MaintenanceWindow(day_of_week="SUNDAY", time_of_day="03:00",
                                                              time_zone="UTC")
    management: ManagementAccess = ManagementAccess()
    deploy_runner: DeployRunnerConfig = DeployRunnerConfig()
    #: retention of the broker's own general log group (KMS-encrypted where compute.kms_encrypted_logs)
    broker_log_retention_days: LogRetentionDays = 30
    engine_version: str = DEFAULT_ENGINE_VERSION
    instance_type: str = Field(default=DEFAULT_INSTANCE_TYPE, pattern=r"^mq\.[a-z0-9]+\.[a-z0-9]+$")
    deployment_mode: Literal["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"] = "SINGLE_INSTANCE"
    external: ExternalBroker | None = None
    # Queue settings, applied as RabbitMQ policies (changeable in place; see shared/components/messaging.py).
    message_ttl_ms: int | None = Field(default=None, ge=1000, le=MESSAGE_TTL_MAX_MS)
    max_length: int = Field(default=100_000, ge=1, description="length limit of each work queue (operator policy)")
    dead_letter_max_length: int = Field(default=100_000, ge=1, description="length limit of each DLQ (operator policy)")
    delivery_limit: int = Field(default=5, ge=1, le=100)
    #: rotation of the generated service credentials (unset: they never rotate; policy flags it)
    credentials_rotation: CredentialsRotation | None = None

    @model_validator(mode="after")
    def _external_needs_endpoint(self) -> MessagingConfig:
        if self.broker == "external" and self.external is None:
            raise ValueError("broker 'external' needs messaging.external (amqps_endpoint, management_endpoint)")
        if self.broker == "amazon-mq" and self.external is not None:
            raise ValueError("messaging.external is only for broker 'external'")
        return self


class ServiceSettings(_Strict):
    cpu: int | None = None
    memory: int | None = None
    desired_count: int = Field(default=1, ge=0)
    min_count: int = Field(default=1, ge=0)
    max_count: int = Field(default=2, ge=1)
    cpu_target_percent: int = Field(default=60, ge=10, le=95)
    #: where its tasks run: ``on_demand`` (Fargate) or ``spot`` (Fargate Spot: spare capacity at a discount, taken
    #: back with two minutes' warning, none launched while there is none); spot only for a service that only its
    #: queue brings work to (:func:`_rule_spot_queue_only`)
    capacity: Literal["on_demand", "spot"] = "on_demand"

    @model_validator(mode="after")
    def _counts(self) -> ServiceSettings:
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError("counts must satisfy min_count <= desired_count <= max_count")
        return self


class ComputeConfig(_Strict):
    container_insights: bool = True
    log_retention_days: LogRetentionDays = 30
    ecr_keep_last_images: int = Field(default=20, ge=1, le=1000)
    kms_encrypted_logs: bool = False
    public_gateway: bool = False
    #: an ACM certificate's ARN (botocore acm Arn; the region and account are checked against the env's)
    certificate_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]*:\d*:certificate/[\w-]+$")
    #: how long `up` waits for each ECS service to reach a steady state before it fails
    steady_state_timeout_minutes: int = Field(default=30, ge=5, le=240)
    #: the env whose ECR registry replicates its images into this env's registry (None: images are
    #: pushed here directly, as in dev)
    image_source: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]*$")

    @model_validator(mode="after")
    def _alb_needs_certificate(self) -> ComputeConfig:
        if self.public_gateway and not self.certificate_arn:
            raise ValueError("public_gateway needs certificate_arn (the ALB listens on 443 only)")
        return self


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: what an SNS subscription endpoint of each protocol looks like
_SUBSCRIPTION_ENDPOINTS = {"email": _EMAIL, "email-json": _EMAIL, "https": r"^https://\S+$",
                           "sqs": r"^arn:aws[a-z-]*:sqs:", "lambda": r"^arn:aws[a-z-]*:lambda:",
                           "sms": r"^\+[1-9]\d{6,14}$"}


def _userinfo_split(url: str) -> tuple[str, str] | None:
    """``(scheme://, everything after user:password@)`` of a URL with userinfo, None without."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at:
        return None
    head = f"{parts.scheme}://"
    return head, url[len(head) + len(userinfo) + 1:]


def without_userinfo(url: str) -> str:
    """``url`` without its ``user:password@`` (a credential: never printed nor passed on)."""
    split = _userinfo_split(url)
    return url if split is None else split[0] + split[1]


class AlarmSubscription(_Strict):
    protocol: Literal["email", "email-json", "https", "sqs", "lambda", "sms"]
    endpoint: str = Field(min_length=3)

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> AlarmSubscription:
        if not re.match(_SUBSCRIPTION_ENDPOINTS[self.protocol], self.endpoint):
            raise ValueError(f"{self.shown!r} is not a {self.protocol} endpoint")
        return self

    @property
    def is_secret(self) -> bool:
        """An https endpoint is a credential: SNS sends its ``user:password@`` as basic auth (SNS developer guide,
        "Fanout Amazon SNS notifications to HTTPS endpoints"), and an integration URL carries its key in the path
        (PagerDuty's ``/integration/<key>/enqueue``). It is a Pulumi secret then, and messages elide it."""
        return self.protocol == "https"

    @property
    def without_credentials(self) -> str:
        """The endpoint without its ``user:password@`` (what names a subscription's resource)."""
        return without_userinfo(self.endpoint)

    @property
    def shown(self) -> str:
        """The endpoint as messages print it: ``user:password@`` as ``[redacted]@`` and, for https, the path and
        query as ``/[redacted]``."""
        split = _userinfo_split(self.endpoint)
        head, rest = split if split is not None else ("", self.endpoint)
        userinfo = "[redacted]@" if split is not None else ""
        if self.protocol == "https":
            try:
                parts = urlsplit(head + rest if split is not None else rest)
            except ValueError:
                parts = None
            if parts is not None and (parts.path.strip("/") or parts.query or parts.fragment):
                return f"{parts.scheme}://{userinfo}{parts.netloc}/[redacted]"
        return head + userinfo + rest if split is not None else rest


class AlarmsConfig(_Strict):
    """Where alarm notifications go (one SNS topic per env) and when the alarms fire."""

    email: tuple[str, ...] = Field(default=(), strict=False, description="shorthand for email subscriptions")
    subscriptions: tuple[AlarmSubscription, ...] = Field(default=(), strict=False)
    period_seconds: int = Field(default=60, ge=60, le=3600, multiple_of=60)
    evaluation_periods: int = Field(default=5, ge=1, le=60)
    queue_depth: int = Field(default=1000, ge=1, description="messages in a work queue")
    dead_letter_depth: int = Field(default=1, ge=1, description="messages in a DLQ")
    broker_memory_percent: int = Field(default=80, ge=1, le=100, description="of the broker's memory limit")
    broker_disk_free_ratio: float = Field(default=2.0, gt=1.0, description="free disk / the broker's disk limit")
    gateway_5xx: int = Field(default=10, ge=1, description="5xx responses per period at the load balancer")
    monthly_cost_usd: int | None = Field(
        default=None, ge=1, le=1_000_000_000,
        description="the env's monthly AWS cost in its region (USD) that an AWS Budgets budget holds it to: a "
                    "notification on the alarm topic when the month's forecast passes it, and when the actual cost "
                    "passes 80 % and 100 % of it; none: no budget")

    @field_validator("email")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not re.match(_EMAIL, address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _evaluation_window(self) -> AlarmsConfig:
        # PutMetricAlarm: period x evaluation periods <= 1 day below a 1-hour period (7 days at most).
        window = self.period_seconds * self.evaluation_periods
        if self.period_seconds < 3600 and window > 86_400:
            raise ValueError(f"period_seconds x evaluation_periods = {window} s; CloudWatch allows at most 86400 s "
                             "(one day) for periods under one hour")
        return self

    @model_validator(mode="after")
    def _https_told_apart_without_credentials(self) -> AlarmsConfig:
        # An https subscription's resource name is made without user:password@ (shared.components.alarms
        # .subscription_name): two endpoints that differ only there would be one URN, which the engine refuses.
        seen: set[str] = set()
        for subscription in self.subscriptions:
            if subscription.protocol == "https":
                if subscription.without_credentials in seen:
                    raise ValueError(f"two https subscriptions to {subscription.shown} differ only in their "
                                     "user:password@; keep one")
                seen.add(subscription.without_credentials)
        return self

    def all_subscriptions(self) -> list[AlarmSubscription]:
        listed = [AlarmSubscription(protocol="email", endpoint=address) for address in self.email]
        return list(dict.fromkeys([*listed, *self.subscriptions]))


class Suppression(_Strict):
    rule: str
    resource: str = Field(min_length=1, description="resource name, URN, or fnmatch pattern of either")
    reason: str = Field(min_length=10)


class PolicySettings(_Strict):
    baseline: Literal["dev", "staging", "prod"] | None = None
    enforcement: dict[str, Literal["mandatory", "advisory", "disabled"]] = {}
    suppressions: tuple[Suppression, ...] = Field(default=(), strict=False)


class Release(_Strict):
    images: dict[str, str] = {}
    promoted_from: str | None = None
    promoted_at: str | None = None
    skipped: tuple[str, ...] = Field(default=(), strict=False)

    @field_validator("images")
    @classmethod
    def _refs(cls, value: dict[str, str]) -> dict[str, str]:
        for service, ref in value.items():
            if not re.match(r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$", ref):
                raise ValueError(f"{service}: {ref!r} is neither an image digest (sha256:<64 hex>) nor a tag")
            if re.fullmatch(r"[0-9a-fA-F]{64}", ref):  # a digest pasted without its algorithm reads as a tag
                raise ValueError(f"{service}: {ref!r} is a digest without its algorithm: write "
                                 f"sha256:{ref.lower()} (a tag of 64 hex characters is refused, as ambiguous)")
        return value


class StateConfig(_Strict):
    """Where this env's Pulumi state and secrets live (PULUMI_BACKEND_URL overrides ``backend_url``)."""

    backend_url: str | None = Field(default=None, pattern=r"^(https://|s3://|file://|azblob://|gs://)\S+$")
    secrets_provider: str | None = Field(default=None, pattern=r"^(default|passphrase|awskms://|azurekeyvault://|"
                                                                r"gcpkms://|hashivault://)\S*$")

    @field_validator("secrets_provider")
    @classmethod
    def _kms_key(cls, value: str | None) -> str | None:
        kms_key(value)  # an awskms:// key the roles' grants can match, or a ValueError naming why not
        return value


class Tags(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, strict=True)

    team: str = Field(min_length=1)
    cost_center: str = Field(alias="cost-center", min_length=1)


class EnvConfig(_Strict):
    name: str
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str
    #: a Pulumi Cloud org or user name as `pulumi stack init` accepts it (pkg/backend/httpstate/backend.go
    #: stackOwnerRegexp, "invalid stack owner"); self-managed backends take only "organization" (orchestrator)
    pulumi_org: str = Field(default="organization", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}[A-Za-z0-9]$")
    protect_stateful: bool | None = None
    tags: Tags
    network: NetworkConfig
    discovery: DiscoveryConfig = DiscoveryConfig()
    mesh: MeshConfig
    messaging: MessagingConfig
    compute: ComputeConfig = ComputeConfig()
    services: dict[str, ServiceSettings] = {}
    policy: PolicySettings = PolicySettings()
    release: Release = Release()
    state: StateConfig = StateConfig()
    alarms: AlarmsConfig = AlarmsConfig()

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in REGION_AZS:
            raise ValueError(unknown_region_reason(value))
        return value

    # -- derived facts ------------------------------------------------------------------------
    @property
    def availability_zones(self) -> list[str]:
        """The AZ names the subnets are in: ``network.availability_zones``, else the region's first ``az_count``
        of :data:`shared.regions.REGION_AZS`."""
        if self.network.availability_zones is not None:
            return list(self.network.availability_zones)
        return list(REGION_AZS[self.region][: self.network.az_count])

    @property
    def az_count_beyond_region(self) -> bool:
        """``network.az_count`` asks for more AZs than :data:`shared.regions.REGION_AZS` lists for the region (and no
        ``network.availability_zones`` names them): :attr:`availability_zones` then holds fewer."""
        return self.network.availability_zones is None and self.network.az_count > len(REGION_AZS[self.region])

    @property
    def serving_availability_zones(self) -> list[str]:
        """The AZs other layers place things in: :attr:`availability_zones` less
        ``network.retiring_availability_zones`` (their subnets stay until a lower ``az_count`` drops them)."""
        retiring = set(self.network.retiring_availability_zones)
        return [zone for zone in self.availability_zones if zone not in retiring]

    @property
    def serving_zones_counted(self) -> tuple[int, str, str]:
        """How many AZs serve, the env key an error about it names, and how that key gives the number."""
        count = len(self.serving_availability_zones)
        if self.network.retiring_availability_zones:
            return (count, "network.retiring_availability_zones",
                    "network.az_count less network.retiring_availability_zones")
        return count, "network.az_count", "network.az_count"

    @property
    def namespace(self) -> str:
        return self.discovery.namespace or f"{self.name}.ml.internal"

    @property
    def baseline(self) -> str:
        return self.policy.baseline or self.name

    @property
    def protect(self) -> bool:
        """Whether stateful resources are ``protect``ed (default: only in prod)."""
        return self.protect_stateful if self.protect_stateful is not None else self.baseline == "prod"

    def service_settings(self, service: str) -> ServiceSettings:
        return self.services.get(service, ServiceSettings())

    def common_tags(self, layer: str) -> dict[str, str]:
        """Tags every taggable resource carries (set as the AWS provider's default tags)."""
        extra = {k: str(v) for k, v in (self.tags.model_extra or {}).items()}
        return {
            **extra,
            "env": self.name,
            "layer": layer,
            "team": self.tags.team,
            "cost-center": self.tags.cost_center,
            "managed-by": "pulumi",
        }


def unknown_region_reason(region: str) -> str:
    """Why the platform refuses ``region``, and what would let it: a region of another AWS partition (botocore's
    endpoint data) is not supported (its ARNs, domains and service principals differ); one of the ``aws``
    partition is not yet among those shared/regions.py has checked; anything else is no AWS region."""
    import botocore.session

    partitions = botocore.session.get_session().get_data("endpoints")["partitions"]
    partition = next((p["partition"] for p in partitions if region in p.get("regions", {})), None)
    known = ", ".join(sorted(REGION_AZS))
    if partition is not None and partition != "aws":
        return (f"region {region!r} is in the AWS partition {partition!r}; the platform runs in the 'aws' partition "
                f"only (its ARNs, domains and service principals are that partition's). Regions: {known}")
    if partition == "aws":
        return (f"region {region!r} is not one the platform has checked yet (its services' endpoints, ELB log "
                f"delivery, S3's bucket namespace, Fargate's zones): add it to shared/regions.py as its docstring "
                f"says (README, Add an environment). Regions: {known}")
    return f"unknown region {region!r} (known: {known})"


#: An env's name: its file's name (README, "Add an environment").
ENV_NAME_PATTERN = r"^[a-z]([a-z0-9-]*[a-z0-9])?$"


def env_dir() -> Path:
    override = os.environ.get(ENV_DIR_VAR)
    return Path(override) if override else ENV_DIR


@contextmanager
def active_env_dir(directory: Path) -> Iterator[None]:
    """``directory`` is the env folder (``PLATFORM_ENV_DIR``) inside the block; the previous setting after it."""
    previous = os.environ.get(ENV_DIR_VAR)
    os.environ[ENV_DIR_VAR] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_DIR_VAR, None)
        else:
            os.environ[ENV_DIR_VAR] = previous


def env_names(directory: Path | None = None) -> list[str]:
    directory = directory or env_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return unknown_key_reason(error["loc"][-1] if error["loc"] else None)
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {type(error.get('input')).__name__} {error.get('input')!r})"
    return message


def _problem(path: Path, error: Any) -> ConfigError:
    """One schema problem (a key YAML read as a boolean or a number: :func:`shared.errors.non_string_key`)."""
    key = non_string_key(error["loc"], error.get("input"), error["type"])
    if key:
        return ConfigError(str(path), *key)
    return ConfigError(str(path), ".".join(str(part) for part in error["loc"]) or "(top level)", _reason(error))


def _validate(path: Path, data: dict[str, Any]) -> EnvConfig:
    """Both passes: every schema problem and every rule the well-formed sections break, at once."""
    try:
        env = EnvConfig.model_validate(data)
    except ValidationError as error:
        problems = [_problem(path, item) for item in error.errors()]
        broken = {str(item["loc"][0]) if item["loc"] else "" for item in error.errors()}
        problems += env_problems(path, _partial_env(data, broken), skip=broken)
        raise_all(problems)
        raise  # unreachable: a ValidationError always carries at least one error
    raise_all(env_problems(path, env))
    return env


def _partial_env(data: dict[str, Any], broken: set[str]) -> EnvConfig:
    """The env's well-formed top-level sections, unvalidated as a whole (rules reading a broken or
    missing section are skipped by :func:`env_problems`)."""
    values: dict[str, Any] = {}
    for key, field in EnvConfig.model_fields.items():
        if key in broken or key not in data:
            continue
        try:
            values[key] = TypeAdapter(field.annotation).validate_python(data[key])
        except ValidationError:  # a field-level constraint the full pass already reported: leave it out
            continue
    return EnvConfig.model_construct(**values)


# -- the rules pass: cross-field and cross-layer rules -----------------------------------------------
# Each rule yields (file, key path, reason) for every violation; all rules run and all violations are
# reported together. A rule belongs here when a later layer (or AWS) would refuse the combination.
Problem = tuple[Path, str, str]


def _rule_baseline(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    if env.policy.baseline is None and env.name not in ("dev", "staging", "prod"):
        yield path, "policy.baseline", (f"required for env {env.name!r}: which column of the policy catalog it "
                                        "follows (dev, staging or prod)")


def _rule_env_name_lengths(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The broker layer names AWS resources after the env (shared.broker_names); AWS caps their lengths."""
    from shared.broker_names import name_problems

    for reason in name_problems(env.name):
        yield path, "name", reason


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761), 127.0.0.0/8, ``::1`` and an IPv4-mapped 127.x address."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def management_endpoint_problem(management: ManagementAccess) -> str | None:
    """Why ``messaging.management`` cannot reach the broker with TLS verified (None: it can). The RabbitMQ
    provider checks the broker's certificate against the endpoint's own host name and has no setting to
    check it against another, so a tunnel on loopback needs ``tls_server_name`` (the URL is then built on
    that name: shared.management_api.management_url). One rule for the env loader and the messaging layer."""
    endpoint = management.endpoint
    if management.tls_server_name or not endpoint or not is_loopback_host(urlsplit(endpoint).hostname or ""):
        return None
    return (f"required with the loopback endpoint {endpoint} (a tunnel): TLS to the broker's host name cannot "
            "verify against localhost, because the RabbitMQ provider checks the broker's certificate against the "
            "endpoint's host name and cannot override it; set tls_server_name to the broker's host name and map "
            "it to 127.0.0.1 in /etc/hosts (README, \"Ways into the VPC: the deploy runner and tunnels\")")


def _rule_management_endpoint(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The messaging layer would refuse it only after network and broker were deployed."""
    problem = management_endpoint_problem(env.messaging.management)
    if problem:
        yield path, "messaging.management.tls_server_name", problem


def _rule_kms_key_region(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """An awskms:// key ARN of another region needs region=: the CLI would ask the env's KMS for it."""
    key = kms_key(env.state.secrets_provider)
    problem = key.region_problem(env.region) if key else None
    if problem:
        yield path, "state.secrets_provider", problem


def _rule_management_ca_file(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A relative ``messaging.management.ca_file`` is a file of the repository (the RabbitMQ provider reads it
    only at messaging's up, after the layers before it were deployed). An absolute one is the deploying
    machine's own and is not checked here."""
    ca_file = env.messaging.management.ca_file
    if ca_file and not Path(ca_file).is_absolute() and not (REPO_ROOT / ca_file).is_file():
        yield path, "messaging.management.ca_file", (f"{ca_file} is not a file of the repository (a relative path "
                                                     f"is relative to the repository root, {REPO_ROOT})")


#: Tag keys the platform sets per resource (an ECS service's ``service``, and ``version`` on a canary unit), which
#: its ECS services propagate to their tasks; each consumer's task role may protect from scale-in only the tasks
#: carrying its own (shared.components.compute_iam.task_protection_statement).
PER_RESOURCE_TAG_KEYS = (SERVICE_TAG, VERSION_TAG)


def _rule_per_resource_tags(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """An env-wide ``version`` (the provider's default tags) lands on every unit's tasks that sets none itself, so
    a stable unit's tasks carry it and its role's scale-in protection grant (no ``version`` tag) refuses them at
    run time; an env-wide ``service`` would label every other resource as one service."""
    for key in PER_RESOURCE_TAG_KEYS:
        if key in (env.tags.model_extra or {}):
            yield path, f"tags.{key}", (f"'{key}' is a tag the platform sets per resource and its ECS services pass "
                                        "to their tasks, where the consumers' scale-in protection grants read it; "
                                        "an env-wide value would be on tasks it does not describe (use another key)")


#: The tags :meth:`EnvConfig.common_tags` sets itself (the providers' default tags), besides the per-resource ones
PLATFORM_TAG_KEYS = ("env", "layer", "team", "cost-center", "managed-by")


def _rule_platform_tag_keys(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """An extra tag whose key is a platform tag's in another case (``Env``, ``Managed-By``): IAM takes a role's tag
    keys case-insensitively (IAM user guide, "Tagging IAM resources", Case sensitivity), so every role's CreateRole
    fails with InvalidInput "Duplicate tag keys found", and on an existing role the provider's TagRole of the new key
    overwrites the platform's tag (the compute roles' ``env``, ``layer``, ``managed-by`` scope the deploy role's
    grants: the role leaves the scope and its next PassRole is denied). The exact keys are the platform's too."""
    own = {key.lower(): key for key in (*PLATFORM_TAG_KEYS, *PER_RESOURCE_TAG_KEYS)}
    for key in env.tags.model_extra or {}:
        if key.lower() in own and key not in PER_RESOURCE_TAG_KEYS:  # those: _rule_per_resource_tags
            yield path, f"tags.{key}", (f"'{key}' is the platform's own '{own[key.lower()]}' tag to IAM, which takes "
                                        "a role's tag keys case-insensitively: every IAM role's create would fail "
                                        "(InvalidInput: Duplicate tag keys found) and an existing role's tag would "
                                        "be overwritten (use another key)")


#: A tag key's and value's most characters, and the most tags one resource takes (botocore iam tagKeyType, tagValueType,
#: tagListType; ecs, elbv2 and logs the same).
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_PER_RESOURCE = 128, 256, 50
#: The most tags the platform puts on one resource itself: its default tags and a secret's own (service and rotation).
PLATFORM_TAGS_PER_RESOURCE = len(PLATFORM_TAG_KEYS) + 4


def _tag_char_ok(char: str) -> bool:
    # [\p{L}\p{Z}\p{N}_.:/=+\-@]: letters, separators (spaces), numbers and _.:/=+-@ (botocore iam tagValueType)
    return unicodedata.category(char)[0] in "LZN" or char in "_.:/=+-@"


def tag_problem(key: str, value: object) -> str | None:
    """Why AWS would refuse the tag ``key: value`` on an IAM role, ECS service, load balancer or log group (None:
    it takes it). The value must be a YAML string: str() of a YAML 1.1 boolean, octal-looking or dotted number or
    null is not what the file says (``yes`` is "True", ``1.10`` is "1.1", ``~`` is "None")."""
    if not isinstance(value, str):
        return (f"{reprlib.repr(value)} is not a string (YAML read it as {type(value).__name__}); put the value in "
                "quotes, as tag values are text")
    if not key:
        return "the key is empty; AWS takes 1 to 128 characters (botocore iam tagKeyType)"
    if not value.strip():
        # AWS takes it, but the AWS provider's default tags do not apply an empty value reliably: a change to "" leaves
        # every resource with the old value (hashicorp/terraform-provider-aws#37297, pulumi/pulumi-aws#5505)
        return ("the value is empty; the AWS provider's default tags do not apply an empty value (a change to it "
                "leaves the old one on every resource): remove the key instead")
    if key.lower().startswith("aws:"):
        return "the prefix 'aws:' is reserved for AWS's own tags"
    for what, text, most in (("key", key, TAG_KEY_MAX), ("value", value, TAG_VALUE_MAX)):
        if len(text) > most:
            return f"the {what} has {len(text)} characters; AWS takes {most} at most"
        bad = sorted({char for char in text if not _tag_char_ok(char)})
        if bad:
            return (f"{bad[0]!r} is not a character AWS takes in a tag {what} (letters, digits, spaces and _ . : / = "
                    "+ - @; IAM CreateRole refuses the rest)")
    return None


def _rule_tag_values(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The env's tags are every resource's default tags, IAM roles' included: a tag AWS refuses fails the first
    create of a layer, after the layers before it were applied."""
    extra = env.tags.model_extra or {}
    for key, value in {"team": env.tags.team, "cost-center": env.tags.cost_center, **extra}.items():
        problem = tag_problem(key, value)
        if problem:
            yield path, f"tags.{key}", problem
    most = TAGS_PER_RESOURCE - PLATFORM_TAGS_PER_RESOURCE
    if len(extra) > most:
        yield path, "tags", (f"{len(extra)} tags besides team and cost-center; AWS takes {TAGS_PER_RESOURCE} on a "
                             f"resource and the platform sets up to {PLATFORM_TAGS_PER_RESOURCE}, so an env sets at "
                             f"most {most} of its own")


def _rule_azs_in_region(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    chosen = env.network.availability_zones
    if chosen is not None:
        # AZ names are the region's code and one letter; which letters an account has, only the account says
        # (the preflight asks it: DescribeAvailabilityZones)
        foreign = [name for name in chosen if not re.fullmatch(rf"{re.escape(env.region)}[a-z]", name)]
        if foreign:
            yield path, "network.availability_zones", (f"{', '.join(foreign)}: not an availability zone name of "
                                                       f"{env.region} (its names are {env.region}a, "
                                                       f"{env.region}b, ...)")
        elif len(set(chosen)) != len(chosen):
            yield path, "network.availability_zones", f"{', '.join(chosen)}: an availability zone is listed twice"
        elif len(chosen) != env.network.az_count:
            yield path, "network.availability_zones", (f"lists {len(chosen)} availability zones, but "
                                                       f"network.az_count is {env.network.az_count}")
        return
    if env.az_count_beyond_region:
        yield path, "network.az_count", (f"{env.region} offers {len(REGION_AZS[env.region])} availability zones, "
                                         f"not {env.network.az_count}")


def _rule_retiring_zones(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """``network.retiring_availability_zones`` names the last of the env's AZs, and leaves one serving: each AZ's
    subnets are carved by its index (a dropped AZ in the middle would move every later one's CIDR block, replacing
    them), and the broker's subnets are the first AZs' (a retired one would replace the broker)."""
    retiring = list(env.network.retiring_availability_zones)
    if not retiring:
        return
    key, zones = "network.retiring_availability_zones", env.availability_zones
    unknown = [zone for zone in retiring if zone not in zones]
    if unknown:
        yield path, key, (f"{', '.join(unknown)}: not among the env's availability zones ({', '.join(zones)}); a zone "
                          "retires while its subnets still exist")
    elif len(set(retiring)) != len(retiring):
        yield path, key, f"{', '.join(retiring)}: an availability zone is listed twice"
    elif len(retiring) >= len(zones):
        yield path, key, (f"retires every availability zone of the env ({', '.join(zones)}): at least one keeps "
                          "serving")
    elif set(retiring) != set(zones[-len(retiring):]):
        yield path, key, (f"{', '.join(retiring)}: only the last of the env's availability zones ({', '.join(zones)}) "
                          f"can retire, here {', '.join(zones[-len(retiring):])}: each AZ's subnets are carved by its "
                          "place in the list, so dropping another would move the later AZs' subnets (a replacement), "
                          "and the broker is in the first")


def _rule_prod_spans_azs(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A prod-baseline env survives the loss of one AZ: its services' tasks run in the private subnets, one per AZ
    (ECS places a service's tasks only in the AZs of its subnets, and spreads them over those), so with one AZ an
    AZ outage stops every service, whatever its broker (README, "Disaster recovery")."""
    messaging = env.messaging
    if messaging.broker == "amazon-mq" and messaging.deployment_mode == "CLUSTER_MULTI_AZ":
        return  # the cluster's own rule asks for three AZs (_rule_cluster_azs): one reason, not two
    zones, key, counted = env.serving_zones_counted
    if env.baseline == "prod" and zones < 2:
        yield path, key, (f"{counted} is {zones}: a prod env runs its services in at least two availability zones, so "
                          "the loss of one leaves tasks running in another (set 3 for a CLUSTER_MULTI_AZ broker)")


def _rule_canaries_need_appmesh(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    # Refused rather than ignored: the env would believe it splits traffic while it does not.
    if env.mesh.canaries and env.mesh.provider != "appmesh":
        yield path, "mesh.canaries", (f"weighted canaries need provider 'appmesh'; {env.mesh.provider} has no "
                                      "weighted routing between versions of a service (remove mesh.canaries, or "
                                      "canary with ECS deployments instead)")


def _rule_appmesh_only_keys(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    # Refused rather than ignored, as canaries are: the env would believe its egress filtered or its Envoy pinned
    if env.mesh.provider == "appmesh":
        return
    for key, what in (("egress_filter", "App Mesh's mesh egress filter"), ("envoy_image", "App Mesh's Envoy")):
        if key in env.mesh.model_fields_set:
            yield path, f"mesh.{key}", (f"sets {what}, which provider {env.mesh.provider} has none of (ECS runs its "
                                        "own Service Connect proxy, and the services' egress is their security "
                                        "group's); remove it")


def _rule_arm64_service_connect_only(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """An arm64 service (catalog ``architecture``) in an App Mesh env: each task runs the Envoy sidecar of
    ``mesh.envoy_image``, whose platforms nothing checks (the image checks read the services' own images, and the
    default digest was taken from an amd64 deployment), and App Mesh reached its end of support on 2026-09-30."""
    arm = [spec.name for spec in catalog if spec.architecture == "arm64"]
    if env.mesh.provider == "appmesh" and arm:
        yield (path, "mesh.provider", f"appmesh cannot run the catalog's arm64 services ({', '.join(arm)}: their tasks "
               "would run App Mesh's Envoy sidecar, an image no check proves runs on arm64); move the env to "
               "service-connect (README, \"Moving an env from appmesh to service-connect\"), or build those services "
               "for amd64")


def _rule_appmesh_acknowledged(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    if env.mesh.provider == "appmesh" and not env.mesh.appmesh_end_of_support_acknowledged:
        yield path, "mesh.appmesh_end_of_support_acknowledged", (
            "must be true to select mesh.provider 'appmesh': AWS ended support for App Mesh on 2026-09-30 (no "
            "fixes, console and resources being withdrawn); use 'service-connect', or see the README section "
            "\"Moving an env from appmesh to service-connect\" before acknowledging")


def _rule_broker_matrix(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    messaging = env.messaging
    if messaging.broker != "amazon-mq":
        return
    for key, reason in broker_problems(messaging.engine_version, messaging.instance_type, messaging.deployment_mode):
        yield path, f"messaging.{key}", reason


def _rule_maintenance_business_hours(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A prod-baseline broker is maintained outside business hours in its window's own time zone: Amazon MQ restarts
    its nodes one at a time (a single instance goes offline) for up to two hours (shared.maintenance)."""
    window = env.messaging.maintenance_window
    problem = business_hours_problem(window.day_of_week, window.time_of_day)
    if env.messaging.broker == "amazon-mq" and env.baseline == "prod" and problem:
        yield path, "messaging.maintenance_window", problem


def _rule_maintenance_shared(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A prod-baseline broker's window is its own: no other env's Amazon MQ broker of the folder is maintained in
    the same hours (winter or summer time), so a patch AWS rolls out reaches the other envs before or after prod,
    never with it, and one incident at a time wakes the on-call. Judged from both sides: a non-prod env whose
    window meets a prod env's is refused in its own file too, so an env file added later (unset: SUNDAY 03:00 UTC)
    fails its own synth instead of only the next load of prod."""
    if env.messaging.broker != "amazon-mq":
        return
    own = env.messaging.maintenance_window
    for other, data in other_env_files(path):
        try:
            messaging = data.get("messaging") or {}
            if messaging.get("broker") != "amazon-mq":
                continue
            theirs = MessagingConfig.model_fields["maintenance_window"].default
            if "maintenance_window" in messaging:
                theirs = MaintenanceWindow.model_validate(messaging["maintenance_window"])
            their_baseline = (data.get("policy") or {}).get("baseline") or other.stem
        except (ConfigError, AttributeError, ValidationError):
            continue  # that file's own validation reports its problems
        if "prod" not in (env.baseline, their_baseline) or not windows_overlap(own.spec(), theirs.spec()):
            continue
        if env.baseline == "prod":
            yield path, "messaging.maintenance_window", (
                f"{' '.join(own.spec())} shares hours with {other.stem}'s broker window ({' '.join(theirs.spec())}; "
                "Amazon MQ's maintenance lasts up to two hours): give prod a window of its own, so a patch reaches "
                f"the other envs' brokers before or after it, never at the same time (or move {other.stem}'s: "
                f"messaging.maintenance_window in {other.name}; unset is SUNDAY 03:00 UTC)")
        else:
            yield path, "messaging.maintenance_window", (
                f"{' '.join(own.spec())} shares hours with the prod env {other.stem}'s broker window "
                f"({' '.join(theirs.spec())}; Amazon MQ's maintenance lasts up to two hours; unset is SUNDAY 03:00 "
                f"UTC): give {env.name} a window of its own, else {other.name} is refused at its next load")


def _rule_broker_capacity(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The broker would refuse the connections, channels or queues of the services at their peak, and their tasks
    would fail only once they scaled out (shared.broker_capacity)."""
    from shared.broker_capacity import capacity_problems

    for key, reason in capacity_problems(env, catalog):
        yield path, key, reason


def static_instances_problem(env: EnvConfig) -> str | None:
    """Why ``discovery.static_instances`` cannot be registered (None: they can): instances outside ECS are
    found through the DNS namespace's per-service Cloud Map services, which only App Mesh envs create."""
    if not env.discovery.static_instances or env.mesh.provider == "appmesh":
        return None
    return (f"instances outside ECS are discovered through the DNS namespace's per-service Cloud Map services, "
            f"which only App Mesh envs have; mesh.provider {env.mesh.provider} reaches only ECS tasks")


def _rule_static_instances(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The discovery layer would refuse them only after network was deployed (and, on a later move to
    Service Connect, after the env already ran with them)."""
    problem = static_instances_problem(env)
    if problem:
        yield path, "discovery.static_instances", problem


def _rule_cluster_azs(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    messaging = env.messaging
    if messaging.broker != "amazon-mq":
        return
    region_zones = len(REGION_AZS[env.region])
    if messaging.deployment_mode == "CLUSTER_MULTI_AZ" and region_zones < CLUSTER_AZS:
        # raising network.az_count cannot help: one reason that says so, not "raise it to 3"
        yield path, "messaging.deployment_mode", (
            f"CLUSTER_MULTI_AZ runs three nodes in {CLUSTER_AZS} availability zones, and {env.region} offers "
            f"{region_zones}: use SINGLE_INSTANCE, or a region with {CLUSTER_AZS}")
        return
    if env.az_count_beyond_region:
        return  # _rule_azs_in_region reports the count; the region's first zones stand in for it meanwhile
    # Amazon MQ best practices: a cluster is three nodes distributed across three AZs; the platform gives its
    # endpoint a private subnet in each of them (shared.amazonmq.cluster_zones_problem says why).
    zones, _, counted = env.serving_zones_counted
    problem = cluster_zones_problem(messaging.deployment_mode, zones, counted)
    if problem:
        yield path, "messaging.deployment_mode", problem


def _rule_fargate_sizes(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Each service's cpu/memory (env override, else catalog default) must be a pair Fargate offers."""
    from shared.catalog import catalog_path
    from shared.fargate import fargate_size_problem

    for spec in catalog:
        settings = env.services.get(spec.name, ServiceSettings())
        cpu = settings.cpu if settings.cpu is not None else spec.cpu
        memory = settings.memory if settings.memory is not None else spec.memory
        problem = fargate_size_problem(cpu, memory)
        if problem is None:
            continue
        if settings.cpu is not None or settings.memory is not None:  # name the file that set the value
            yield path, f"services.{spec.name}.{'cpu' if settings.cpu is not None else 'memory'}", problem
        else:
            yield catalog_path(), f"services.{spec.name}.cpu", problem


#: What a deployment takes besides the app's start-up and the old task's stop: placing the task, pulling the image,
#: the scratch-init container (a rough allowance, so that `up` does not give up on a deployment ECS completes).
DEPLOY_OVERHEAD_SECONDS = 120


def deployment_seconds(spec: ServiceSpec, public: bool) -> int:
    """The least time a rolling deployment of ``spec`` takes to end steady: a new task starts and turns healthy
    (behind a load balancer, its grace period; elsewhere its container turns HEALTHY, which ECS's steady state
    waits for, aws/containers-roadmap#897: ``healthy_seconds``), then an old one drains (behind a load balancer,
    its target group's deregistration delay, then its stop timeout) or stops (its stop timeout), with
    :data:`DEPLOY_OVERHEAD_SECONDS` on top."""
    from shared.catalog import deregistration_delay

    started = spec.health_check_grace_seconds if public else spec.healthy_seconds
    stopped = spec.stop_timeout + (deregistration_delay(spec.request_timeout_seconds)
                                   if public else 0)
    return started + stopped + DEPLOY_OVERHEAD_SECONDS


def _rule_steady_state_covers_startup(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """`up` waits compute.steady_state_timeout_minutes for each ECS service: a slow starter (catalog
    ``startup_seconds``) must fit, or every deploy of it fails the `up` while ECS is still rolling it out."""
    timeout = env.compute.steady_state_timeout_minutes * 60
    for spec in catalog:
        needed = deployment_seconds(spec, spec.public and env.compute.public_gateway)
        if needed > timeout:
            yield path, "compute.steady_state_timeout_minutes", (
                f"{env.compute.steady_state_timeout_minutes} minutes is shorter than a deployment of {spec.name} "
                f"takes (at least {needed} s: its catalog startup_seconds {spec.startup_seconds} s and the health "
                f"check's next pass, the old task's "
                f"drain and stop, {DEPLOY_OVERHEAD_SECONDS} s to place and pull); give at least "
                f"{-(-needed // 60)} minutes")


def _rule_ttl_covers_retries(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A work queue's ``message-ttl`` counts from the enqueue, and a delivery returned to the queue (a task stopped
    mid-job, the consumer timeout) keeps its first expiry (RabbitMQ docs, "Time-To-Live and Expiration": "The
    original expiry time of a message is preserved if it is requeued"): returned past the TTL, a job is dead-lettered
    as expired instead of tried again. The TTL must cover every delivery the delivery limit allows of each consumer's
    longest job (its ``max_job_seconds``, else the 30-minute consumer timeout): the first and ``delivery_limit`` more
    (a quorum queue dead-letters a message returned more times than the limit: Amazon MQ's "Best practices for quorum
    queues"), or the redelivery the platform promises is cut short: a 6-hour training job behind a 1-hour TTL is never
    retried."""
    ttl = env.messaging.message_ttl_ms
    if ttl is None:
        return
    deliveries = env.messaging.delivery_limit + 1
    short = sorted(((deliveries * spec.queue_consumer_timeout_ms, spec.name)
                    for spec in catalog if spec.queue and spec.dead_letter_queue), reverse=True)
    short = [(needed, name) for needed, name in short if needed > ttl]
    if not short:
        return
    needed, name = short[0]
    others = f" (also {', '.join(n for _, n in short[1:])})" if short[1:] else ""
    what = (f"{ttl} ms is shorter than {deliveries} deliveries (the first and messaging.delivery_limit "
            f"{env.messaging.delivery_limit} more) of {name}'s longest job ({needed // deliveries} ms: its "
            "max_job_seconds, else the 30-minute consumer timeout) take: a job returned to its queue after the TTL (a "
            f"task stopped mid-job) keeps its first expiry and is dead-lettered as expired, not tried again{others}")
    if needed > MESSAGE_TTL_MAX_MS:
        yield path, "messaging.message_ttl_ms", (
            f"{what}; no TTL RabbitMQ takes covers them (at most {MESSAGE_TTL_MAX_MS} ms, about 49 days): unset the "
            "key, or lower messaging.delivery_limit")
        return
    yield path, "messaging.message_ttl_ms", (
        f"{what}; give at least {needed} ({needed / 3_600_000:g} hours), or unset the key")


def _rule_deploy_runner_outlasts_a_deploy(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The deploy runner's build limit covers an `up` of the whole env: CodeBuild stops a build at its project's
    timeout, also a CodeBuild-hosted GitHub Actions job (staging's and prod's deploy job runs every layer there),
    and a deploy stopped midway leaves its stack locked with an operation half done."""
    from shared.workflows import needed_build_minutes

    runner = env.messaging.deploy_runner
    needed = needed_build_minutes(env, catalog)
    if runner.timeout_minutes is not None and runner.timeout_minutes < needed:
        yield path, "messaging.deploy_runner.timeout_minutes", (
            f"{runner.timeout_minutes} minutes is shorter than a deploy of the whole env may take ({needed}: "
            f"compute.steady_state_timeout_minutes for each ECS service deployed one after another, and the other "
            f"layers); CodeBuild would stop the build midway and leave the stack locked: give at least {needed}, "
            "or leave the key unset")


def publishes_queue_metrics(env: EnvConfig) -> bool:
    """Whether the env's messaging layer runs the queue metrics publisher (shared.components.queue_metrics): every
    ``amazon-mq`` env; an ``external`` broker is not the platform's to reach from its subnets."""
    return env.messaging.broker == "amazon-mq"


def backlog_wakes(spec: ServiceSpec, catalog: Catalog, queue_metrics: bool) -> bool:
    """Whether the service scales out of zero tasks on its queue's backlog: it consumes, the env publishes its
    queue's figures (``queue_metrics``: :func:`publishes_queue_metrics`), and no HTTP request
    reaches it (not ``public``, called by no service), since nothing starts a task for a request."""
    return queue_metrics and catalog.queue_only(spec.name)


def scales_in_while_working(spec: ServiceSpec, catalog: Catalog, queue_metrics: bool) -> bool:
    """Whether the service's scale-in removes an idle task while others hold jobs: its app protects the tasks that hold
    one (catalog ``protects_jobs``) and its queue alone scales it (:func:`backlog_wakes`). One rule for the compute
    layer's scaling policies and the orchestrator's check of a change to it (shared.image_readiness)."""
    return spec.protects_jobs and backlog_wakes(spec, catalog, queue_metrics)


def scale_from_zero_problem(spec: ServiceSpec, catalog: Catalog, queue_metrics: bool) -> str | None:
    """Why ``services.<service>.min_count`` cannot be 0 (None: it can): autoscaling would never start a task
    again. One rule for the env loader and the compute layer (shared.components.compute.plan_service)."""
    if backlog_wakes(spec, catalog, queue_metrics):
        return None
    # ECS developer guide, "Use a target metric to scale Amazon ECS services": a target tracking policy
    # "does not perform scaling when the specified metric has insufficient data"; a service with no task
    # publishes no ECSServiceAverageCPUUtilization.
    cpu = ("its CPU target tracking cannot scale out from 0 tasks (a service with no task publishes no CPU "
           "metric, and target tracking does not scale on insufficient data)")
    callers = catalog.callers(spec.name)
    if spec.public or callers:
        reached_by = "the load balancer" if spec.public else ", ".join(callers)
        why = (f"HTTP requests from {reached_by} would fail while it has no task, and nothing starts a task for a "
               f"request: {cpu}")
    elif not spec.consumes:
        why = f"it consumes no queue whose backlog could start a task, and {cpu}"
    else:
        why = (f"this env publishes no per-queue metric to scale it on its backlog (messaging.broker external: no "
               f"queue metrics publisher), and {cpu}")
    return f"0 would let autoscaling stop every {spec.name} task for good: {why}; set min_count to 1 or more"


def _rule_cpu_target_applies(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """``cpu_target_percent`` set for a service that has no CPU policy: its backlog alone scales it
    (shared.components.compute_service.autoscaling), so the value would change nothing, silently."""
    for service, settings in env.services.items():
        if (service in catalog.services and "cpu_target_percent" in settings.model_fields_set
                and catalog.queue_only(service)):
            scale_in = ("while none is ready, one idle task at a time (protects_jobs)" if catalog[service].protects_jobs
                        else "once none is ready or unacknowledged")
            how = (f"scales on its queue alone (out while messages wait, in {scale_in})"
                   if publishes_queue_metrics(env) else
                   "runs between min_count and max_count as set (messaging.broker external: no queue metrics)")
            yield (path, f"services.{service}.cpu_target_percent",
                   f"has no effect: {service} {how}, never on its CPU, as no HTTP request reaches it (README, "
                   "Autoscaling); remove the key")


def _rule_spot_queue_only(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """``capacity: spot`` for a service an HTTP request reaches. Fargate Spot takes a task back with two minutes'
    warning and launches none while it has no spare capacity (AWS does not fall back to on-demand): a caller's or the
    load balancer's requests then fail, where a queue's messages wait for the next task (README, Fargate Spot)."""
    for service, settings in env.services.items():
        if service in catalog.services and settings.capacity == "spot" and not catalog.queue_only(service):
            spec = catalog[service]
            reached = ("it is public (its load balancer's requests)" if spec.public else
                       f"{', '.join(catalog.callers(service))} call it over HTTP" if catalog.callers(service) else
                       "it consumes no queue (only HTTP requests bring it work)")
            yield (path, f"services.{service}.capacity",
                   f"spot is for a service only its queue brings work to, and {reached}: Fargate Spot stops a task "
                   "with two minutes' warning and starts none while it has no spare capacity, so those requests would "
                   "fail; use on_demand")


def spot_job_notes(env: EnvConfig, catalog: Catalog) -> list[str]:
    """A note for each Fargate Spot service (``capacity: spot``) whose jobs outlast what an interruption leaves them:
    longer than Fargate's longest stop timeout (its ``max_job_seconds``), or protected from scale-in (its
    ``protects_jobs``, which Spot does not honour). Spot takes a task back with two minutes' warning; the job in
    flight is delivered again from its start (README, Fargate Spot). Not refused: a checkpointing job loses little."""
    from shared.catalog import FARGATE_STOP_TIMEOUT_MAX

    notes = []
    for service, settings in sorted(env.services.items()):
        spec = catalog.services.get(service)
        if spec is None or settings.capacity != "spot":
            continue
        long_jobs = spec.max_job_seconds is not None and spec.max_job_seconds > FARGATE_STOP_TIMEOUT_MAX
        if not (long_jobs or spec.protects_jobs):
            continue
        why = [f"its jobs may last {spec.max_job_seconds} s (catalog max_job_seconds)"] if long_jobs else []
        why += ["it protects its working tasks (catalog protects_jobs), which Spot does not honour"] if (
            spec.protects_jobs) else []
        notes.append(f"services.{service}.capacity: spot, and {' and '.join(why)}: a Spot interruption (two "
                     "minutes' warning) ends the job in flight, which its queue then delivers again from its start; "
                     "checkpoint long jobs (to the artifact bucket) or use on_demand (README, \"Fargate Spot\")")
    return notes


def _rule_protected_consumer_canaries(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A consumer that protects its working tasks (catalog ``protects_jobs``) scales in on its work queue's
    IdleConsumers, a figure of the whole queue; each canary version is its own ECS service on that queue, with its own
    scalable target and backlog-in alarm (shared.components.compute_service.autoscaling), so one idle consumer would
    take a task from every version, also from one whose tasks all work."""
    if not publishes_queue_metrics(env) or env.mesh.provider != "appmesh":
        return
    for service in env.mesh.canaries:
        if service in catalog.services and catalog[service].protects_jobs and catalog.queue_only(service):
            yield (path, f"mesh.canaries.{service}",
                   f"{service} protects its jobs (catalog protects_jobs) and scales in on its queue's IdleConsumers, "
                   "which every version's ECS service would read: one idle consumer would remove a task from each "
                   "version, also from one whose tasks all hold a job (README, Autoscaling); canary it without "
                   "protects_jobs, or remove the canary")


def _rule_min_count_wakes(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A service scaled in to 0 tasks must have a metric that can scale it out again; the compute layer would
    deploy it, and it would sit at 0 (its queue filling, its callers failing) without an error anywhere."""
    for service, settings in env.services.items():
        if service not in catalog.services or settings.min_count != 0:
            continue
        problem = scale_from_zero_problem(catalog[service], catalog, publishes_queue_metrics(env))
        if problem:
            yield path, f"services.{service}.min_count", problem


def _rule_depth_alarms_reachable(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """A depth alarm above its queue's length limit can never fire: RabbitMQ counts ready messages only against
    ``max-length`` (RabbitMQ docs, "Queue Length Limit"), and the alarms read ready messages, so a work queue held
    to ``messaging.max_length`` (it then refuses publishes) or a DLQ to ``dead_letter_max_length`` (it then drops
    its oldest) never reaches a higher ``alarms`` threshold."""
    if env.messaging.broker != "amazon-mq":
        return  # no queue alarms (shared.components.alarms.queue_alarms)
    for key, threshold, limit_key, limit in (
            ("alarms.queue_depth", env.alarms.queue_depth, "messaging.max_length", env.messaging.max_length),
            ("alarms.dead_letter_depth", env.alarms.dead_letter_depth, "messaging.dead_letter_max_length",
             env.messaging.dead_letter_max_length)):
        if threshold > limit:
            yield (path, key, f"{threshold} is above {limit_key} ({limit}), the most ready messages the queue ever "
                              f"holds: the alarm could never fire; set it to {limit} or less")


def _rule_cloud_map_instances(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Every task registers in its service's Cloud Map service, which holds at most 1,000 (shared.aws_limits)."""
    from shared.aws_limits import cloud_map_service_problems

    for key, reason in cloud_map_service_problems(env, catalog):
        yield path, key, reason


def _rule_private_subnet_addresses(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Every task takes an address of a private subnet; the subnets are sized by network.cidr (shared.aws_limits)."""
    from shared.aws_limits import private_subnet_problems

    for key, reason in private_subnet_problems(env, catalog):
        yield path, key, reason


def _rule_public_gateway(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The compute layer puts an internet-facing ALB in front of each ``public`` catalog service."""
    if not env.compute.public_gateway or not any(spec.public for spec in catalog):
        return
    zones, _, counted = env.serving_zones_counted
    if zones < 2:
        # botocore elbv2 CreateLoadBalancer.Subnets: an Application Load Balancer needs subnets in at
        # least two Availability Zones.
        yield path, "compute.public_gateway", (f"the gateway's Application Load Balancer needs subnets in at least 2 "
                                               f"availability zones, but {counted} is {zones}")
    from shared.catalog import catalog_path
    from shared.gateway_names import gateway_name_problems

    for spec in catalog:
        if spec.public:
            for problem in gateway_name_problems(env.name, spec.name, env.account_id):
                yield catalog_path(), f"services.{spec.name}", problem
    arn = env.compute.certificate_arn or ""
    parts = arn.split(":")
    if len(parts) > 3 and parts[3] != env.region:
        # ACM user guide, "Supported Regions": certificates are regional; a load balancer uses one from
        # its own Region (a certificate cannot be copied between Regions).
        yield path, "compute.certificate_arn", (f"the certificate is in {parts[3] or '(no region)'}, but the load "
                                                f"balancer is in {env.region}: ACM certificates are regional; request "
                                                f"or import one in {env.region}")
    if len(parts) > 4 and parts[4] != env.account_id:
        # ACM certificates are not shared between accounts (AWS Security Blog, "How to deploy public ACM
        # certificates across multiple AWS accounts and Regions"): one per account, and CreateListener answers
        # CertificateNotFound for another account's.
        yield path, "compute.certificate_arn", (f"the certificate is of account {parts[4] or '(none)'}, but the env's "
                                                f"account_id is {env.account_id}: a load balancer uses a certificate "
                                                f"of its own account; request or import one in {env.account_id}")


def _rule_discovery_names(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """The private DNS namespace and the names below it must be ones Cloud Map, Route 53 and (Service Connect)
    ECS accept; the schema's pattern checks the characters, not the lengths (shared.mesh_names)."""
    from shared.mesh_names import namespace_problems

    default = "" if env.discovery.namespace else (" (the default, made from the env name; set discovery.namespace "
                                                  "to a shorter name)")
    for problem in namespace_problems(env.namespace, catalog.names(), env.mesh.provider):
        yield path, "discovery.namespace", problem + default


def _rule_canary_role_names(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Each canary version runs as its own ECS service "<service>-<version>", whose IAM roles Pulumi auto-names
    from it; the catalog (32) and version (16) limits allow names IAM refuses (shared.mesh_names)."""
    from shared.mesh_names import role_name_problems, unit_name

    for service, versions in env.mesh.canaries.items():
        for version in versions:
            for problem in role_name_problems(unit_name(service, version.version)):
                yield path, f"mesh.canaries.{service}", problem


def _rule_private_egress(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Private subnets reach AWS APIs through a NAT gateway or interface endpoints; without a NAT nothing
    in them reaches the internet."""
    if env.network.nat != "none":
        return
    # The deploy runner (broker layer, always present) downloads the Pulumi CLI and the Python packages
    # and checks out GitHub sources: it needs internet egress, which only a NAT gateway gives a private subnet.
    yield path, "network.nat", ("'none' leaves the private subnets without internet egress, but the deploy "
                                "runner downloads the Pulumi CLI and packages through a NAT gateway; use "
                                "'single' (or 'per-az'); an env deployed with 'none' can still be refreshed "
                                "or destroyed after that edit, since neither creates anything")
    missing = [service for service in ENDPOINT_SERVICES if service not in env.network.endpoints]
    if missing:  # (the broker admin's rotation function, too, reaches Secrets Manager by endpoint or NAT)
        # ECS guide, "Amazon ECS interface VPC endpoints": a Fargate task in a subnet without a NAT pulls
        # from ECR through ecr.api + ecr.dkr + the s3 gateway, logs through logs, secrets through
        # secretsmanager; without them the task never starts (CannotPullContainerError).
        yield path, "network.endpoints", (f"with network.nat 'none', Fargate tasks reach ECR, S3, CloudWatch Logs "
                                          f"and Secrets Manager only through VPC endpoints; add "
                                          f"{', '.join(missing)}")


def _rule_catalog_names(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    for section, names in (("services", env.services), ("release.images", env.release.images),
                           ("mesh.canaries", env.mesh.canaries)):
        for service in names:
            if service not in catalog.services:
                yield path, f"{section}.{service}", f"unknown service (the catalog has: {', '.join(catalog.names())})"
    for index, instance in enumerate(env.discovery.static_instances):
        if instance.service not in catalog.services:
            yield path, f"discovery.static_instances.{index}.service", f"unknown service {instance.service!r}"


def _rule_policy_ids(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    from shared.policy_catalog import LEVEL_STRENGTH, load_rules

    rules = load_rules()
    for rule_id, level in env.policy.enforcement.items():
        if rule_id not in rules:
            yield path, f"policy.enforcement.{rule_id}", "unknown rule id (see policies/catalog.yaml)"
            continue
        default = rules[rule_id].level_for(env.baseline)
        if LEVEL_STRENGTH[level] < LEVEL_STRENGTH[default] and default == "mandatory" and env.baseline == "prod":
            yield path, f"policy.enforcement.{rule_id}", (
                f"cannot loosen a prod mandatory rule to {level}; add a suppression with a reason for the "
                "resources it should not apply to")
    for index, suppression in enumerate(env.policy.suppressions):
        if suppression.rule not in rules:
            yield path, f"policy.suppressions.{index}.rule", f"unknown rule id {suppression.rule!r}"


def other_env_files(path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every other env file beside ``path``, in name order, with its YAML mapping; a file that does not load is
    left out (its own validation reports its problems)."""
    from shared.yamlio import load_yaml_mapping

    for other in sorted(path.parent.glob("*.yaml")):
        if other == path:
            continue
        try:
            data = load_yaml_mapping(other)
        except ConfigError:
            continue
        yield other, data


def _rule_cidr_overlap(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Env CIDRs must not overlap: environments get peered and share transit/VPN routes."""
    for other, data in other_env_files(path):
        try:
            other_cidr = data.get("network", {}).get("cidr")
            other_net = ipaddress.IPv4Network(other_cidr)
        except (ConfigError, AttributeError, TypeError, ValueError):
            continue  # that file's own validation reports its problems
        if env.network.cidr.overlaps(other_net):
            yield path, "network.cidr", f"{env.network.cidr} overlaps {other_net} of {other.name}"


def _rule_own_registry(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """One env per account and region: compute names its ECR repositories ``ml-platform/<service>`` and owns
    the registry's policy or replication configuration, one of each per account and region (ECR user
    guide, "Private registry settings"), so a second env there fails on its first ``up`` of compute."""
    for other, data in other_env_files(path):
        if str(data.get("account_id")) == env.account_id and data.get("region") == env.region:
            yield path, "account_id", (f"{other.name} already deploys to account {env.account_id} in {env.region}; "
                                       "each env needs an account (or a region) of its own: the ECR repositories "
                                       "ml-platform/<service> and the registry's policy and replication settings "
                                       "exist once per account and region")


def _rule_account_wide_names(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """Names of one account outside any region must differ between its envs, whatever their regions: the public
    services' access-log buckets (S3's global namespace, shared.gateway_names.access_log_bucket_owners). The env's
    other account-wide names (IAM roles ``ml-platform-<env>-<fixed role>``, account-regional buckets) cannot
    coincide for two env names."""
    from shared.gateway_names import access_log_bucket_owners

    public = [spec.name for spec in catalog if spec.public]
    if not env.compute.public_gateway or not public:
        return
    own = access_log_bucket_owners(env.name, public, env.account_id)
    for other, data in other_env_files(path):
        try:
            compute = data.get("compute") or {}
            gateway = compute.get("public_gateway") is True if isinstance(compute, dict) else False
        except (ConfigError, AttributeError):
            continue  # that file's own validation reports its problems
        if str(data.get("account_id")) != env.account_id or not gateway:
            continue
        for bucket, service in sorted(access_log_bucket_owners(other.stem, public, env.account_id).items()):
            if bucket in own:
                yield path, "name", (f"the access-log bucket {bucket!r} of public service {own[bucket]} is also "
                                     f"{other.stem}'s, for its service {service} (same account {env.account_id}): "
                                     "S3 bucket names are unique across all accounts and regions, so the second "
                                     "env's compute would fail to create it; rename one of the envs")


def _rule_image_source(path: Path, env: EnvConfig, catalog: Catalog) -> Iterator[Problem]:
    """``compute.image_source`` names another env, whose registry is not this one's and which has its
    images pushed to it (replication copies pushes, one hop: shared.components.image_replication)."""
    from shared.yamlio import load_yaml_mapping

    source = env.compute.image_source
    if source is None:
        return
    key = "compute.image_source"
    source_path = path.parent / f"{source}.yaml"
    if source == env.name:
        yield path, key, "names this env itself; name the env whose registry images are pushed to"
        return
    if not source_path.is_file():
        known = ", ".join(env_names(path.parent))
        yield path, key, f"unknown environment {source!r} (known: {known})"
        return
    try:
        data = load_yaml_mapping(source_path)
        compute = data.get("compute") or {}
        registry = (str(data.get("account_id")), str(data.get("region")))
        upstream = compute.get("image_source") if isinstance(compute, dict) else None
    except (ConfigError, AttributeError):
        return  # that file's own validation reports its problems
    if upstream:
        yield (path, key, f"{source} itself receives its images from {upstream}; name the env images are "
                          f"pushed to ({upstream}), so every env is one replication hop from it")
        return
    if registry == (env.account_id, env.region):
        yield (path, key, f"{source} uses the same ECR registry (account {env.account_id}, {env.region}); an "
                          "image cannot be replicated into its own registry, so leave image_source unset")


Rule = Callable[[Path, EnvConfig, "Catalog"], Iterator[Problem]]
#: Every rule of the second pass with the top-level sections it reads, in the order problems are listed.
RULES: tuple[tuple[Rule, tuple[str, ...]], ...] = (
    (_rule_baseline, ("name", "policy")),
    (_rule_env_name_lengths, ("name",)),
    (_rule_azs_in_region, ("region", "network")),
    (_rule_retiring_zones, ("region", "network")),
    (_rule_prod_spans_azs, ("name", "policy", "region", "network", "messaging")),
    (_rule_per_resource_tags, ("tags",)),
    (_rule_platform_tag_keys, ("tags",)),
    (_rule_tag_values, ("tags",)),
    (_rule_private_egress, ("network",)),
    (_rule_catalog_names, ("services", "release", "mesh", "discovery")),
    (_rule_canaries_need_appmesh, ("mesh",)),
    (_rule_appmesh_only_keys, ("mesh",)),
    (_rule_canary_role_names, ("mesh",)),
    (_rule_appmesh_acknowledged, ("mesh",)),
    (_rule_arm64_service_connect_only, ("mesh",)),
    (_rule_broker_matrix, ("messaging",)),
    (_rule_maintenance_business_hours, ("messaging", "name", "policy")),
    (_rule_maintenance_shared, ("messaging", "name", "policy")),
    (_rule_broker_capacity, ("messaging", "services", "release", "mesh")),
    (_rule_management_ca_file, ("messaging",)),
    (_rule_management_endpoint, ("messaging",)),
    (_rule_static_instances, ("discovery", "mesh")),
    (_rule_cluster_azs, ("messaging", "region", "network")),
    (_rule_fargate_sizes, ("services",)),
    (_rule_min_count_wakes, ("services", "messaging")),
    (_rule_cpu_target_applies, ("services", "messaging")),
    (_rule_spot_queue_only, ("services",)),
    (_rule_protected_consumer_canaries, ("mesh", "messaging")),
    (_rule_depth_alarms_reachable, ("alarms", "messaging")),
    (_rule_cloud_map_instances, ("services", "mesh")),
    (_rule_private_subnet_addresses, ("region", "network", "services", "mesh", "messaging")),
    (_rule_public_gateway, ("compute", "network", "region", "account_id")),
    (_rule_steady_state_covers_startup, ("compute",)),
    (_rule_deploy_runner_outlasts_a_deploy, ("messaging", "compute")),
    (_rule_ttl_covers_retries, ("messaging",)),
    (_rule_discovery_names, ("name", "discovery", "mesh")),
    (_rule_policy_ids, ("name", "policy")),
    (_rule_cidr_overlap, ("network",)),
    (_rule_image_source, ("name", "compute", "account_id", "region")),
    (_rule_own_registry, ("account_id", "region")),
    (_rule_account_wide_names, ("name", "account_id", "compute")),
    (_rule_kms_key_region, ("state", "region")),
)


def env_problems(path: Path, env: EnvConfig, skip: Collection[str] = ()) -> list[ConfigError]:
    """Every cross-field and cross-layer rule ``env`` breaks (empty: the env can be deployed).
    Rules reading a section named in ``skip`` (or one the env lacks) do not run."""
    from shared.catalog import load_catalog

    catalog = load_catalog()
    present = set(env.model_fields_set) | {name for name, field in EnvConfig.model_fields.items()
                                           if not field.is_required()}
    return [ConfigError(str(file), key, reason)
            for rule, sections in RULES if not set(skip).intersection(sections) and present.issuperset(sections)
            for file, key, reason in rule(path, env, catalog)]


@lru_cache(maxsize=32)
def _load_cached(path_str: str, mtime_ns: int, name: str, catalog_key: str) -> EnvConfig:
    from shared.yamlio import load_yaml_mapping

    path = Path(path_str)
    data = load_yaml_mapping(path)
    if "name" in data and data["name"] != name:
        raise ConfigError(str(path), "name", f"is {data['name']!r} but the file is {name}.yaml")
    data.setdefault("name", name)
    return _validate(path, data)


def env_path(name: str) -> Path:
    return env_dir() / f"{name}.yaml"


def load_env(name: str) -> EnvConfig:
    """Load and validate ``environments/<name>.yaml``; ConfigError (exit 2) on any problem."""
    from shared.catalog import catalog_path

    path = env_path(name)
    if not re.match(ENV_NAME_PATTERN, name) or not path.is_file():
        if path.is_file() and path.parent == env_dir() and re.match(r"^[A-Za-z0-9_.-]+$", name):
            # Its name makes the names of AWS resources (S3 buckets: lower-case letters, digits, '-') and is the
            # first label of its DNS namespace <name>.ml.internal (a DNS label ends with a letter or digit, the
            # rule discovery.namespace is held to).
            raise ConfigError(str(path), "name", (
                f"{name!r} (the file's name) is not an env name: lower-case letters, digits and '-', starting with a "
                "letter and ending with a letter or digit; AWS resource names and the env's DNS namespace "
                f"<name>.ml.internal are made from it. Rename the file"))
        if path.exists() and not path.is_file():  # a folder of the env file's name (env_names() lists it: *.yaml)
            raise ConfigError(str(path), "(file)", "is not a file: an env is the YAML file environments/<name>.yaml")
        if not path.parent.is_dir():
            raise ConfigError(str(path), "(file)", f"the env folder {path.parent} does not exist (run from the "
                                                   "repository's root, or set PLATFORM_ENV_DIR to the folder)")
        known = ", ".join(env_names()) or "none"
        # Every command and the loader's cross-env checks read environments/*.yaml only: a .yml file is not an env.
        other = path.with_suffix(".yml")
        hint = f"; {other.name} is not read: rename it {path.name}" if other.is_file() else ""
        raise ConfigError(str(path), "(file)", f"unknown environment {name!r} (known: {known}){hint}")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns, name, str(catalog_path()))


def load_envs(names: list[str]) -> list[EnvConfig]:
    """:func:`load_env` for each name, every problem of every file reported together."""
    envs: list[EnvConfig] = []
    problems: list[ConfigError] = []
    for name in names:
        try:
            envs.append(load_env(name))
        except ConfigErrors as errors:
            problems.extend(errors.problems)
        except ConfigError as error:
            problems.append(error)
    unique = {str(problem): problem for problem in problems}  # a catalog problem stops every env: list it once
    raise_all(list(unique.values()))
    return envs


def is_digest(ref: str) -> bool:
    return bool(DIGEST_RE.match(ref))
