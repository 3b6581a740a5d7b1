"""What the compute layer runs, as plain data: the env-wide settings and one plan per catalog service."""

from __future__ import annotations

from dataclasses import dataclass

from shared.artifact_names import artifact_bucket_name
from shared.catalog import ECS_DURATION_MAX, ServiceSpec
from shared.components.building_blocks import log_group_arn
from shared.components.compute_containers import ENVOY_IMAGE
from shared.envs import is_digest


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
    #: the queue metrics publisher's CloudWatch namespace (shared.components.queue_metrics); None where the env
    #: publishes no per-queue metric (an external broker)
    queue_metrics_namespace: str | None = None
    #: whether each Service Connect proxy logs every request it serves (env ``mesh.service_connect_access_logs``)
    access_logs: bool = False

    def log_group_name(self, service: str) -> str:
        return f"/platform/{self.env_name}/compute/{service}"

    @property
    def log_group_arn_pattern(self) -> str:
        return log_group_arn(self.partition, self.region, self.account_id, self.log_group_name("*"))

    @property
    def artifact_bucket_name(self) -> str:
        """The env's model-artifact bucket (shared.artifact_names): the store's name, the tasks' grants and their
        ``ARTIFACTS_BUCKET`` all read it from here."""
        return artifact_bucket_name(self.env_name, self.account_id, self.region)


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
    #: scales out on its work queue's backlog (it consumes, and the env publishes per-queue metrics)
    backlog_scaling: bool = False
    #: its backlog alone decides its count, down to min_count (0 allowed): no HTTP request reaches it
    #: (shared.envs.backlog_wakes); else CPU decides scale-in
    wakes_on_backlog: bool = False
    #: its scale-in removes an idle task while others hold jobs (shared.envs.scales_in_while_working)
    scales_in_while_working: bool = False
    #: only its queue brings it work (shared.catalog.Catalog.queue_only): no CPU policy, whether or not its backlog
    #: scales it
    queue_only: bool = False
    #: another catalog service calls it over HTTP (catalog ``calls``): in Service Connect envs its tasks hold back
    #: their RUNNING until the app is healthy (compute_containers.SERVE_GATE_CONTAINER)
    called: bool = False
    #: the publishers whose handoffs it may get (shared.catalog.Catalog.handoff_sources): it consumes their keys
    handoff_sources: tuple[str, ...] = ()
    #: the Fargate capacity provider its tasks run on (env ``services.<svc>.capacity``; shared.fargate)
    capacity_provider: str = "FARGATE"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hands_off(self) -> bool:
        """Whether it may hand a payload over by reference under its own ``<service>/handoff/``: it publishes."""
        return bool(self.spec.publishes)

    @property
    def uses_artifact_bucket(self) -> bool:
        """Whether its task role has a grant on the artifact bucket: catalog ``artifacts``, or a handoff to put or
        get."""
        return bool(self.spec.artifacts or self.hands_off or self.handoff_sources)

    @property
    def image_digest(self) -> str | None:
        return self.release_ref if self.release_ref and is_digest(self.release_ref) else None


#: Service Connect's idle timeout for HTTP when unset (ECS TimeoutConfiguration: 5 minutes).
SERVICE_CONNECT_IDLE_TIMEOUT_SECONDS = 300
#: How much longer than the request timeout an idle connection stays open: longer than any wait for one
#: response, and longer than a public service's ALB idle timeout (= its request timeout), since a proxy
#: that closes a kept-alive connection first makes the ALB answer 502 (ELB guide, "HTTP 502").
IDLE_TIMEOUT_MARGIN_SECONDS = 60


def service_connect_timeouts(request_timeout_seconds: int) -> tuple[int, int]:
    """(perRequestTimeoutSeconds, idleTimeoutSeconds) of a service's Service Connect endpoint.

    The timeout sits on the callee's ``services`` entry (the ECS ServiceConnectService that serves the
    endpoint; callers only name the namespace) and bounds how long its callers' proxies wait: without it
    they answer 504 after Service Connect's 15 s default. Both are always sent: the AWS provider sends an
    unset field as 0 (terraform-provider-aws ecs ``expandTimeout``), and 0 turns that timeout off. The
    idle timeout is never below the per-request one, which it would otherwise cut short (ECS
    TimeoutConfiguration), nor below the 5-minute HTTP default.
    """
    idle = max(SERVICE_CONNECT_IDLE_TIMEOUT_SECONDS, request_timeout_seconds + IDLE_TIMEOUT_MARGIN_SECONDS)
    return request_timeout_seconds, min(idle, ECS_DURATION_MAX)


#: How much longer than the Service Connect proxy in front of it (and a public service's ALB, whose idle timeout is
#: its request timeout) a public or called app keeps an idle keep-alive connection: strictly longer, so the proxy
#: always closes an idle connection first and never sends a request on one the app is closing (ELB guide: the
#: target's keep-alive timeout above the load balancer's idle timeout; the same race behind Envoy).
APP_KEEPALIVE_MARGIN_SECONDS = 15


def app_keepalive_seconds(request_timeout_seconds: int) -> int:
    """The shortest idle keep-alive a public or called app may hold (its container's ``HTTP_KEEPALIVE_SECONDS``)."""
    return service_connect_timeouts(request_timeout_seconds)[1] + APP_KEEPALIVE_MARGIN_SECONDS


def serve_gated(plan: ServicePlan, mesh_provider: str) -> bool:
    """Whether ``plan``'s tasks run the serve gate (compute_containers.SERVE_GATE_CONTAINER), so that they turn RUNNING
    only once the app is healthy: a service others call, in a Service Connect env (App Mesh's own listener health
    check steers its callers, a load balancer's target health its public traffic)."""
    return plan.called and mesh_provider != "appmesh"
