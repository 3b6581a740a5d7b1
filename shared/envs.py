"""Environments: ``environments/<env>.yaml`` validated against one schema before anything runs.

An environment is data; the layers are code. Everything that differs between dev, staging and prod
is here: account, region, network shape, mesh provider, broker mode, sizes and counts, policy
enforcement and suppressions, and the release (the image each service runs).

``PLATFORM_ENV_DIR`` points the loader at another folder of env files (promotion synthesizes a
candidate release from a scratch copy this way; tests use it for fixtures).
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shared import REPO_ROOT
from shared.errors import ConfigError
from shared.regions import REGION_AZS

ENV_DIR = REPO_ROOT / "environments"
ENV_DIR_VAR = "PLATFORM_ENV_DIR"

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ENDPOINT_SERVICES = ("s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class NetworkConfig(_Strict):
    cidr: ipaddress.IPv4Network
    az_count: int = Field(ge=1, description="how many AZs the subnets spread over")
    nat: Literal["none", "single", "per-az"]
    endpoints: tuple[Literal["s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"], ...] = ()
    flow_log_retention_days: int = 30

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
        if not network.is_private:
            raise ValueError(f"{value} is not a private (RFC 1918) range")
        return network

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period ({LOG_RETENTION_DAYS})")
        return value


class StaticInstance(_Strict):
    """An instance registered by hand in a Cloud Map service (for something outside ECS)."""

    service: str
    instance_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    ipv4: ipaddress.IPv4Address
    port: int = Field(ge=1, le=65535)


_DNS_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"


class DiscoveryConfig(_Strict):
    namespace: str | None = Field(default=None, pattern=_DNS_NAME)
    dns_ttl_seconds: int = Field(default=10, ge=1, le=300)
    static_instances: tuple[StaticInstance, ...] = ()


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
    canaries: dict[str, tuple[CanaryVersion, ...]] = {}

    @field_validator("canaries")
    @classmethod
    def _weights(cls, value: dict[str, tuple[CanaryVersion, ...]]) -> dict[str, tuple[CanaryVersion, ...]]:
        for service, versions in value.items():
            if len(versions) < 2:
                raise ValueError(f"{service}: a canary needs at least two versions")
            if sum(v.weight for v in versions) != 100:
                raise ValueError(f"{service}: version weights must sum to 100")
            if len({v.version for v in versions}) != len(versions):
                raise ValueError(f"{service}: version names must be unique")
        return value


class ExternalBroker(_Strict):
    amqps_endpoint: str = Field(pattern=r"^amqps://[^/\s]+:\d+$")
    management_endpoint: str = Field(pattern=r"^https://[^\s]+$")


class ManagementAccess(_Strict):
    """How the deployer reaches the broker's management API (the RabbitMQ provider and the
    orchestrator's reachability probe use it). Unset: the broker's own endpoint, which only answers
    inside the VPC (the platform's deploy runner runs there)."""

    endpoint: str | None = Field(default=None, pattern=r"^https://[^\s/]+(:\d+)?/?$",
                                 description="e.g. https://localhost:15671 through an SSM port-forwarding tunnel")
    tls_server_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$",
                                        description="hostname the certificate is checked against (tunnels)")
    ca_file: str | None = Field(default=None, min_length=1, description="PEM bundle to verify the broker with")
    proxy: str | None = Field(default=None, pattern=r"^(https?|socks5h?)://[^\s]+$")


class DeployRunnerConfig(_Strict):
    """The platform's deploy runner: a CodeBuild project in the env's private subnets (broker layer)."""

    #: the IAM role a build assumes to deploy (created once per account, outside the platform: a stack
    #: cannot create the role it is deployed with); the runner's own service role may only assume it
    deploy_role_name: str = Field(default="ml-platform-deployer", pattern=r"^[\w+=,.@-]{1,64}$")
    #: https://github.com/<owner>/<repo>: builds check it out and the project accepts GitHub Actions
    #: jobs (CodeBuild-hosted runner); unset: builds take their source from `start-build` overrides
    github_repository: str | None = Field(default=None, pattern=r"^https://github\.com/[\w.-]+/[\w.-]+?(\.git)?$")
    compute_type: Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"] = (
        "BUILD_GENERAL1_SMALL")
    timeout_minutes: int = Field(default=120, ge=5, le=2160)  # botocore codebuild BuildTimeOut: 5-2160
    log_retention_days: int = 30

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period ({LOG_RETENTION_DAYS})")
        return value


class MessagingConfig(_Strict):
    broker: Literal["amazon-mq", "external"]
    management: ManagementAccess = ManagementAccess()
    deploy_runner: DeployRunnerConfig = DeployRunnerConfig()
    #: retention of the broker's own general log group (KMS-encrypted where compute.kms_encrypted_logs)
    broker_log_retention_days: int = 30
    engine_version: str = "3.13"
    instance_type: str = Field(default="mq.m5.large", pattern=r"^mq\.[a-z0-9]+\.[a-z0-9]+$")
    deployment_mode: Literal["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"] = "SINGLE_INSTANCE"
    external: ExternalBroker | None = None
    # Queue settings, applied as RabbitMQ policies (changeable in place; see shared/components/messaging.py).
    message_ttl_ms: int | None = Field(default=None, ge=1000)
    max_length: int = Field(default=100_000, ge=1, description="length limit of each work queue (operator policy)")
    dead_letter_max_length: int = Field(default=100_000, ge=1, description="length limit of each DLQ (operator policy)")
    delivery_limit: int = Field(default=5, ge=1, le=100)

    @field_validator("broker_log_retention_days")
    @classmethod
    def _broker_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period ({LOG_RETENTION_DAYS})")
        return value

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

    @model_validator(mode="after")
    def _counts(self) -> ServiceSettings:
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError("counts must satisfy min_count <= desired_count <= max_count")
        return self


class ComputeConfig(_Strict):
    container_insights: bool = True
    log_retention_days: int = 30
    ecr_keep_last_images: int = Field(default=20, ge=1, le=1000)
    kms_encrypted_logs: bool = False
    public_gateway: bool = False
    certificate_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:acm:")

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period")
        return value

    @model_validator(mode="after")
    def _alb_needs_certificate(self) -> ComputeConfig:
        if self.public_gateway and not self.certificate_arn:
            raise ValueError("public_gateway needs certificate_arn (the ALB listens on 443 only)")
        return self


class AlarmSubscription(_Strict):
    protocol: Literal["email", "email-json", "https", "sqs", "lambda", "sms"]
    endpoint: str = Field(min_length=3)

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> AlarmSubscription:
        patterns = {"email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "email-json": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                    "https": r"^https://\S+$", "sqs": r"^arn:aws[a-z-]*:sqs:", "lambda": r"^arn:aws[a-z-]*:lambda:",
                    "sms": r"^\+[1-9]\d{6,14}$"}
        if not re.match(patterns[self.protocol], self.endpoint):
            raise ValueError(f"{self.endpoint!r} is not a {self.protocol} endpoint")
        return self


class AlarmsConfig(_Strict):
    """Where alarm notifications go (one SNS topic per env) and when the alarms fire."""

    email: tuple[str, ...] = Field(default=(), description="shorthand for email subscriptions")
    subscriptions: tuple[AlarmSubscription, ...] = ()
    period_seconds: int = Field(default=60, ge=60, le=3600, multiple_of=60)
    evaluation_periods: int = Field(default=5, ge=1, le=60)
    queue_depth: int = Field(default=1000, ge=1, description="messages in a work queue")
    dead_letter_depth: int = Field(default=1, ge=1, description="messages in a DLQ")
    broker_memory_percent: int = Field(default=80, ge=1, le=100, description="of the broker's memory limit")
    broker_disk_free_ratio: float = Field(default=2.0, gt=1.0, description="free disk / the broker's disk limit")
    gateway_5xx: int = Field(default=10, ge=1, description="5xx responses per period at the load balancer")

    @field_validator("email")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", address):
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
    suppressions: tuple[Suppression, ...] = ()


class Release(_Strict):
    images: dict[str, str] = {}
    promoted_from: str | None = None
    promoted_at: str | None = None
    skipped: tuple[str, ...] = ()

    @field_validator("images")
    @classmethod
    def _refs(cls, value: dict[str, str]) -> dict[str, str]:
        for service, ref in value.items():
            if not re.match(r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$", ref):
                raise ValueError(f"{service}: {ref!r} is neither an image digest (sha256:<64 hex>) nor a tag")
        return value


class StateConfig(_Strict):
    """Where this env's Pulumi state and secrets live (PULUMI_BACKEND_URL overrides ``backend_url``)."""

    backend_url: str | None = Field(default=None, pattern=r"^(https://|s3://|file://|azblob://|gs://)\S+$")
    secrets_provider: str | None = Field(default=None, pattern=r"^(default|passphrase|awskms://|azurekeyvault://|"
                                                                r"gcpkms://|hashivault://)\S*$")


class Tags(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    team: str = Field(min_length=1)
    cost_center: str = Field(alias="cost-center", min_length=1)


class EnvConfig(_Strict):
    name: str
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str
    pulumi_org: str = Field(default="organization", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
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
            raise ValueError(f"unknown region {value!r} (known: {', '.join(sorted(REGION_AZS))})")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> EnvConfig:
        if self.policy.baseline is None and self.name not in ("dev", "staging", "prod"):
            raise _KeyedError("policy.baseline", f"required for env {self.name!r}: which column of the policy "
                                                 "catalog it follows (dev, staging or prod)")
        available = len(REGION_AZS[self.region])
        if self.network.az_count > available:
            raise _KeyedError("network.az_count",
                              f"{self.region} offers {available} availability zones, not {self.network.az_count}")
        return self

    # -- derived facts ------------------------------------------------------------------------
    @property
    def availability_zones(self) -> list[str]:
        return list(REGION_AZS[self.region][: self.network.az_count])

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


class _KeyedError(ValueError):
    """A validation error that knows its own key path (raised from whole-model checks)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


def env_dir() -> Path:
    override = os.environ.get(ENV_DIR_VAR)
    return Path(override) if override else ENV_DIR


def env_names(directory: Path | None = None) -> list[str]:
    directory = directory or env_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {type(error.get('input')).__name__} {error.get('input')!r})"
    return message


def _validate(path: Path, data: dict[str, Any]) -> EnvConfig:
    try:
        return EnvConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyedError):
            raise ConfigError(str(path), ctx_error.key, ctx_error.reason) from None
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(str(path), key, _reason(first)) from None


def _check_against_catalogs(path: Path, env: EnvConfig) -> None:
    from shared.catalog import load_catalog
    from shared.policy_catalog import LEVEL_STRENGTH, load_rules

    catalog = load_catalog()
    for section, names in (("services", env.services), ("release.images", env.release.images),
                           ("mesh.canaries", env.mesh.canaries)):
        for service in names:
            if service not in catalog.services:
                raise ConfigError(str(path), f"{section}.{service}",
                                  f"unknown service (the catalog has: {', '.join(catalog.names())})")
    for index, instance in enumerate(env.discovery.static_instances):
        if instance.service not in catalog.services:
            raise ConfigError(str(path), f"discovery.static_instances.{index}.service",
                              f"unknown service {instance.service!r}")
    rules = load_rules()
    for rule_id, level in env.policy.enforcement.items():
        if rule_id not in rules:
            raise ConfigError(str(path), f"policy.enforcement.{rule_id}", "unknown rule id (see policies/catalog.yaml)")
        default = rules[rule_id].level_for(env.baseline)
        if LEVEL_STRENGTH[level] < LEVEL_STRENGTH[default] and default == "mandatory" and env.baseline == "prod":
            raise ConfigError(str(path), f"policy.enforcement.{rule_id}",
                              f"cannot loosen a prod mandatory rule to {level}; add a suppression with a reason "
                              "for the resources it should not apply to")
    for index, suppression in enumerate(env.policy.suppressions):
        if suppression.rule not in rules:
            raise ConfigError(str(path), f"policy.suppressions.{index}.rule",
                              f"unknown rule id {suppression.rule!r}")


def _check_cidr_overlap(path: Path, env: EnvConfig) -> None:
    """Env CIDRs must not overlap: environments get peered and share transit/VPN routes."""
    from shared.yamlio import load_yaml_mapping

    for other in sorted(path.parent.glob("*.yaml")):
        if other == path:
            continue
        try:
            other_cidr = load_yaml_mapping(other).get("network", {}).get("cidr")
            other_net = ipaddress.IPv4Network(other_cidr)
        except (ConfigError, AttributeError, TypeError, ValueError):
            continue  # that file's own validation reports its problems
        if env.network.cidr.overlaps(other_net):
            raise ConfigError(str(path), "network.cidr",
                              f"{env.network.cidr} overlaps {other_net} of {other.name}")


@lru_cache(maxsize=32)
def _load_cached(path_str: str, mtime_ns: int, name: str, catalog_key: str) -> EnvConfig:
    from shared.yamlio import load_yaml_mapping

    path = Path(path_str)
    data = load_yaml_mapping(path)
    if "name" in data and data["name"] != name:
        raise ConfigError(str(path), "name", f"is {data['name']!r} but the file is {name}.yaml")
    data.setdefault("name", name)
    env = _validate(path, data)
    _check_against_catalogs(path, env)
    _check_cidr_overlap(path, env)
    return env


def env_path(name: str) -> Path:
    return env_dir() / f"{name}.yaml"


def load_env(name: str) -> EnvConfig:
    """Load and validate ``environments/<name>.yaml``; ConfigError (exit 2) on any problem."""
    from shared.catalog import catalog_path

    path = env_path(name)
    if not re.match(r"^[a-z][a-z0-9-]*$", name) or not path.is_file():
        known = ", ".join(env_names()) or "none"
        raise ConfigError(str(path), "(file)", f"unknown environment {name!r} (known: {known})")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns, name, str(catalog_path()))


def is_digest(ref: str) -> bool:
    return bool(DIGEST_RE.match(ref))
