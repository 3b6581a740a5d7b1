"""The service catalog, loaded once from ``shared/catalog.yaml`` and validated.

``PLATFORM_CATALOG=/path/to/catalog.yaml`` points every layer at another catalog (the benchmark uses
this to synthesize a platform of hundreds of services; nothing else should need it).
"""

from __future__ import annotations

import graphlib
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import ConfigError, non_string_key, raise_all
from shared.fargate import unknown_key_reason

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")
CATALOG_ENV_VAR = "PLATFORM_CATALOG"

Exchange = Literal["requests", "events"]
#: What a service may do in the env's model-artifact bucket (catalog ``artifacts``; unset: nothing, no grant at all).
ArtifactAccess = Literal["read", "write"]
ARTIFACT_ACCESS: tuple[ArtifactAccess, ...] = ("read", "write")
EXCHANGES: tuple[Exchange, ...] = ("requests", "events")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_ROUTING_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

#: What both mesh proxies wait for a response when nothing is configured: Service Connect keeps Envoy's 15 s
#: route timeout (its requests carry X-Envoy-Expected-Rq-Timeout-Ms: 15000, aws/containers-roadmap#1958), and
#: App Mesh documents 15 s as HttpTimeout.perRequest's default (App Mesh API reference).
DEFAULT_REQUEST_TIMEOUT_SECONDS = 15
#: The largest value ECS takes for a Service Connect timeout (botocore ecs model: Duration, 0..2147483647).
ECS_DURATION_MAX = 2147483647
#: A public service's request timeout bounds its ALB's idle timeout (aws.lb.LoadBalancer idle_timeout, 1-4000 s; below)
#: and its target group's deregistration delay (0-3600 s: in-flight requests finish while a task leaves).
PUBLIC_REQUEST_TIMEOUT_MAX = 3600
#: How much longer than its request timeout a public service's ALB waits on an idle connection: the mesh proxy in the
#: task (Service Connect's ingress listens on the container port; App Mesh's Envoy) starts its per-request timer a
#: moment after the ALB sent the request, so at equal timeouts the ALB always gave up first, with a 504 of its own
#: (HTTPCode_ELB_5XX_Count) that the proxy's access log never shows; now the proxy ends an over-long request.
ALB_IDLE_MARGIN_SECONDS = 5


def alb_idle_timeout(request_timeout_seconds: int) -> int:
    """A public service's ALB idle timeout (aws.lb.LoadBalancer idle_timeout: 1-4000 s, ``PUBLIC_REQUEST_TIMEOUT_MAX``
    plus the margin stays within it)."""
    return request_timeout_seconds + ALB_IDLE_MARGIN_SECONDS


#: Fargate's bounds and default for a container's stopTimeout, the time between SIGTERM and SIGKILL (botocore ecs
#: ContainerDefinition.stopTimeout: "The valid values for Fargate are 2-120 seconds", 30 when unset).
FARGATE_STOP_TIMEOUT_MIN, FARGATE_STOP_TIMEOUT_MAX, FARGATE_STOP_TIMEOUT_DEFAULT = 2, 120, 30
#: RabbitMQ's ``consumer_timeout`` on Amazon MQ: default 1,800,000 ms (30 minutes), at most 2,147,483,647 ms
#: (Amazon MQ developer guide, "Configurable values for RabbitMQ on Amazon MQ"). A consumer that holds a delivery
#: unacked for longer has its channel closed and the delivery requeued (redelivered, then dead-lettered at the
#: queue's delivery limit).
CONSUMER_TIMEOUT_DEFAULT_MS = 1_800_000
CONSUMER_TIMEOUT_MAX_MS = 2_147_483_647
#: The longest job a catalog entry may declare: what fits in consumer_timeout's milliseconds.
MAX_JOB_SECONDS_MAX = CONSUMER_TIMEOUT_MAX_MS // 1000
#: An app container's health check (botocore ecs HealthCheck): startPeriod 0-300 s, interval 5-300 s, retries
#: 1-10, timeout 2-60 s. Failures within startPeriod do not count; after it, ``retries`` failures in a row make the
#: container UNHEALTHY and ECS replaces the task (an essential container).
HEALTH_START_PERIOD_MAX = 300
HEALTH_INTERVAL, HEALTH_INTERVAL_MAX = 30, 300
HEALTH_RETRIES, HEALTH_RETRIES_MAX = 3, 10
HEALTH_TIMEOUT = 5
#: The longest a health check's curl waits for the app's answer (``--max-time``): under the check's timeout, so that
#: a check of an app that takes the connection and never answers (a worker busy in the server's process) ends with
#: curl, instead of leaving a curl that waits forever behind each check run every interval.
HEALTH_CURL_MAX_SECONDS = HEALTH_TIMEOUT - 1
#: What a health path may hold: a path and query of RFC 3986's characters, no space, ``#``, quote, backquote or
#: backslash, at most 1,024 characters (the target group's ``HealthCheckPath``: botocore elbv2 Path, max 1024).
#: The container's check runs it in a shell (CMD-SHELL), quoted (shared.components.compute_containers).
HEALTH_PATH_PATTERN = r"/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?"
HEALTH_PATH_MAX = 1024
#: The platform's start-up allowance when an entry states none (the health check's startPeriod before the key).
DEFAULT_STARTUP_SECONDS = 60
#: The longest start-up a health check can wait for: the longest startPeriod, then retries-1 failed checks at the
#: longest interval (the first counted check may come right after the start period).
STARTUP_SECONDS_MAX = HEALTH_START_PERIOD_MAX + (HEALTH_RETRIES_MAX - 1) * HEALTH_INTERVAL_MAX
#: A public service's target group health check (shared/components/gateway.py), a check every
#: TARGET_HEALTH_INTERVAL_SECONDS, each passing when its answer arrives within TARGET_HEALTH_TIMEOUT_SECONDS. A new
#: target turns healthy on its first passing check, but one that failed 3 checks (45 s, as a slow starter does) is
#: unhealthy and needs TARGET_HEALTHY_THRESHOLD passing checks in a row (ELB guide, "Health checks for Application
#: Load Balancer target groups": checks start every interval whatever the answer's time, which the timeout bounds).
TARGET_HEALTH_INTERVAL_SECONDS = 15
TARGET_HEALTH_TIMEOUT_SECONDS = 5
TARGET_HEALTHY_THRESHOLD = 2

#: The shortest drain before ECS sends a leaving task SIGTERM (what every public service had before the delay
#: followed its request timeout), so that a request routed as the deregistration starts is not cut off by
#: an app that stops listening at once.
MIN_DEREGISTRATION_DELAY_SECONDS = 30


def deregistration_delay(request_timeout_seconds: int) -> int:
    """The target group's deregistration delay: ECS deregisters a leaving task (deploy, scale-in) and the load
    balancer sends it no new request but lets the ones in flight finish for this long, then breaks their
    connections (ECS developer guide, "Optimize load balancer connection draining parameters"; ELB guide,
    "Deregistration delay"); ECS sends SIGTERM only after it. So a request in flight when the drain starts has
    the delay, not the delay plus the app's stop timeout, to finish: the whole request timeout. Every leaving
    task waits the whole delay: with nothing in flight ELB completes the deregistration early but shows the target
    draining until the delay ends (ELB guide, "Deregistration delay"), and ECS waits for it to be unused. 0-3600 s
    (ELB target group attributes); the catalog keeps a public request timeout <= 3600."""
    return max(MIN_DEREGISTRATION_DELAY_SECONDS, request_timeout_seconds)


def container_health_timing(startup_seconds: int) -> tuple[int, int, int]:
    """(startPeriod, interval, retries) of a container health check that lets the app answer its first check
    ``startup_seconds`` after its start: startPeriod covers up to ECS's 300 s; a longer start-up is covered by the
    failures the check tolerates after it (at least retries-1 intervals), first more retries (up to 10, the
    interval staying 30 s), then a longer interval (up to 300 s)."""
    if startup_seconds <= HEALTH_START_PERIOD_MAX:
        return startup_seconds, HEALTH_INTERVAL, HEALTH_RETRIES
    rest = startup_seconds - HEALTH_START_PERIOD_MAX
    retries = max(HEALTH_RETRIES, min(HEALTH_RETRIES_MAX, 1 + math.ceil(rest / HEALTH_INTERVAL)))
    interval = max(HEALTH_INTERVAL, math.ceil(rest / (retries - 1)))
    if interval > HEALTH_INTERVAL_MAX:
        raise ValueError(f"{startup_seconds} s of start-up is more than an ECS container health check can wait "
                         f"({STARTUP_SECONDS_MAX} s)")
    return HEALTH_START_PERIOD_MAX, interval, retries


class Routes(BaseModel):
    """Routing keys per exchange."""

    # strict like the env file: a quoted "8084" or "yes" stays a string (an error where a number or boolean is
    # due). Lists in YAML become tuples, so tuple fields opt out of strict (their items stay strict).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    requests: tuple[str, ...] = Field(default=(), strict=False)
    events: tuple[str, ...] = Field(default=(), strict=False)

    @field_validator("requests", "events")
    @classmethod
    def _keys_are_routing_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for key in keys:
            if not _ROUTING_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a routing key (lower-case words joined by '.')")
        if len(set(keys)) != len(keys):
            raise ValueError("routing keys must be unique")
        return keys

    def items(self) -> list[tuple[Exchange, str]]:
        return [(exchange, key) for exchange in EXCHANGES for key in getattr(self, exchange)]

    def __bool__(self) -> bool:
        return bool(self.requests or self.events)


#: the longest one ECS task scale-in protection lasts (botocore ecs UpdateTaskProtection.expiresInMinutes: 1-2880)
TASK_PROTECTION_MAX_MINUTES = 2880


class ServiceSpec(BaseModel):
    """One platform service."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # as Routes

    name: str
    description: str = ""
    port: int = Field(ge=1, le=65535)
    health_path: str
    cpu: int = 256
    memory: int = 512
    public: bool = False
    #: how its public load balancer picks a task for a request (the target group's ``load_balancing.algorithm.type``):
    #: ``round_robin`` (the default), or ``least_outstanding_requests`` for requests of very uneven length (inference
    #: of varied inputs), which sends each to the task with the fewest in flight; public services only
    load_balancing: Literal["round_robin", "least_outstanding_requests"] = "round_robin"
    #: the CPU architecture its image is built for and its tasks run on: ``amd64`` (x86-64, the default) or ``arm64``
    #: (AWS Graviton: Fargate's price per vCPU and GiB is lower); its released images must provide that platform
    #: (shared.fargate.CPU_ARCHITECTURES)
    architecture: Literal["amd64", "arm64"] = "amd64"
    #: task ephemeral storage in GiB (Fargate: 21..200; unset = Fargate's default 20 GiB); /tmp lives on it, and the
    #: pulled image, compressed and unpacked (shared.images.oversized_images)
    ephemeral_storage_gib: int | None = Field(default=None, ge=21, le=200)
    calls: tuple[str, ...] = Field(default=(), strict=False)
    publishes: Routes = Routes()
    consumes: Routes = Routes()
    #: the longest a caller waits for one response of this service: its Service Connect proxy's
    #: per-request timeout, its App Mesh listener and route timeouts, and, when public, its ALB's idle timeout
    request_timeout_seconds: int = DEFAULT_REQUEST_TIMEOUT_SECONDS
    #: seconds between the SIGTERM ECS sends the app (deploy, scale-in) and its SIGKILL; unset = long enough for
    #: a request in flight (request_timeout_seconds), at least Fargate's 30 and at most its 120 (see stop_timeout)
    stop_timeout_seconds: int | None = None
    #: the longest a consumer holds one delivery unacked (its longest job), in seconds: its work queue's own
    #: ``consumer-timeout`` (:attr:`queue_consumer_timeout_ms`, a policy key)
    max_job_seconds: int | None = None
    #: its app turns on ECS task scale-in protection while it holds a job and off when it is idle (README,
    #: "Stopping, and jobs longer than a stop"), one job per consumer (prefetch 1): a consumer no HTTP request
    #: reaches is then scaled in on its idle consumers, not only once its queue holds nothing (README, Autoscaling)
    protects_jobs: bool = False
    #: the env's model-artifact bucket: "read" (get any object or version, list the bucket), "write" (also put
    #: objects under ``<service>/``); unset = no access (README, "Add a service": model artifacts)
    artifacts: ArtifactAccess | None = None
    #: the longest the app takes from its container's start to a healthy answer on health_path (loading a model,
    #: preparing data), in seconds: its container health check's startPeriod (then retries x interval beyond
    #: ECS's 300 s) and, when public, its ECS service's health check grace period
    startup_seconds: int = DEFAULT_STARTUP_SECONDS

    @field_validator("startup_seconds")
    @classmethod
    def _a_coverable_startup(cls, seconds: int) -> int:
        if seconds < 0:
            raise ValueError(f"{seconds} is no start-up time; give the longest the app takes from its start to a "
                             f"healthy answer on its health_path, 0 to {STARTUP_SECONDS_MAX} s")
        if seconds > STARTUP_SECONDS_MAX:
            raise ValueError(
                f"{seconds} s is longer than an ECS container health check can wait for a first healthy answer "
                f"({STARTUP_SECONDS_MAX} s: a startPeriod of at most {HEALTH_START_PERIOD_MAX} s, then at most "
                f"{HEALTH_RETRIES_MAX} retries at most {HEALTH_INTERVAL_MAX} s apart); answer /health while the "
                "model still loads (and report readiness elsewhere), or load less at start")
        return seconds

    @property
    def health_check_timing(self) -> tuple[int, int, int]:
        """Its app container health check's (startPeriod, interval, retries): :func:`container_health_timing`."""
        return container_health_timing(self.startup_seconds)

    @property
    def healthy_seconds(self) -> int:
        """The longest from its container's start to HEALTHY for an app that answers within ``startup_seconds``: Docker
        runs the check every ``interval`` from the start, the start period included (aws/containers-roadmap#2473), so
        the first passing one may leave up to an interval after the app answers, and pass up to its timeout later
        (95 s at the default 60 s)."""
        _, interval, _ = self.health_check_timing
        return self.startup_seconds + interval + HEALTH_TIMEOUT

    @property
    def health_check_grace_seconds(self) -> int:
        """The ECS service's health check grace period behind a load balancer: its start-up, then the passing
        target group checks an unhealthy target needs to turn healthy, the last one's answer included (95 s at the
        default 60 s start-up). At worst the app answers just after a failed check was sent: the next checks leave
        one and two intervals later and the second passes only when its answer arrives, up to the check's timeout
        later. ECS ignores the load balancer's and the container's health checks that long after a task starts
        (botocore ecs CreateService.healthCheckGracePeriodSeconds) and stops a task whose target is still
        unhealthy after it."""
        return (self.startup_seconds + TARGET_HEALTHY_THRESHOLD * TARGET_HEALTH_INTERVAL_SECONDS
                + TARGET_HEALTH_TIMEOUT_SECONDS)

    @field_validator("health_path")
    @classmethod
    def _a_health_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} must start with '/' (e.g. /{path.lstrip('/') or 'healthz'})")
        if len(path) > HEALTH_PATH_MAX:
            raise ValueError(f"{len(path)} characters is longer than a target group's health check path takes "
                             f"({HEALTH_PATH_MAX})")
        if not re.fullmatch(HEALTH_PATH_PATTERN, path):
            bad = sorted({c for c in path if not re.fullmatch(HEALTH_PATH_PATTERN, "/" + c)} - {"?"}) or ["?"]
            raise ValueError(f"{path!r} holds {', '.join(repr(c) for c in bad)}: a path and an optional ?query of "
                             "letters, digits and -._~%!$&'()*+,;=:@/ only (percent-encode anything else)")
        return path

    @field_validator("artifacts", mode="before")
    @classmethod
    def _an_artifact_access(cls, value: object) -> object:
        if value is not None and value not in ARTIFACT_ACCESS:
            raise ValueError(f"{value!r} is no artifact access: 'read' (get objects and their versions, list the "
                             "bucket) or 'write' (read, and put objects under <service>/); leave the key out for none")
        return value

    @field_validator("max_job_seconds")
    @classmethod
    def _a_bounded_job(cls, seconds: int | None) -> int | None:
        if seconds is not None and seconds < 1:
            # consumer_timeout 0 turns the check off: a consumer that hangs would hold its delivery for good.
            raise ValueError(f"{seconds} is no job length; give the longest a job may take, 1 to "
                             f"{MAX_JOB_SECONDS_MAX} s (the broker then takes back a delivery held longer)")
        if seconds is not None and seconds > MAX_JOB_SECONDS_MAX:
            raise ValueError(f"{seconds} is longer than the broker's consumer_timeout can be ({MAX_JOB_SECONDS_MAX} s: "
                             f"{CONSUMER_TIMEOUT_MAX_MS} ms, Amazon MQ's maximum)")
        return seconds

    @field_validator("stop_timeout_seconds")
    @classmethod
    def _a_fargate_stop_timeout(cls, seconds: int | None) -> int | None:
        if seconds is not None and not FARGATE_STOP_TIMEOUT_MIN <= seconds <= FARGATE_STOP_TIMEOUT_MAX:
            raise ValueError(f"{seconds} is outside the stopTimeout Fargate allows ({FARGATE_STOP_TIMEOUT_MIN} to "
                             f"{FARGATE_STOP_TIMEOUT_MAX} s); work longer than that needs task scale-in protection "
                             "(README, \"Add a service\")")
        return seconds

    @property
    def queue_consumer_timeout_ms(self) -> int:
        """How long the broker lets a consumer of this service's work queue hold one delivery unacked: its
        ``max_job_seconds``, or Amazon MQ's default (30 minutes) for a service that declares none."""
        return CONSUMER_TIMEOUT_DEFAULT_MS if self.max_job_seconds is None else self.max_job_seconds * 1000

    @property
    def in_flight_seconds(self) -> int:
        """How long a request in flight at SIGTERM may still need: its callers wait up to
        request_timeout_seconds, and no stopTimeout on Fargate is longer than 120 s."""
        return min(self.request_timeout_seconds, FARGATE_STOP_TIMEOUT_MAX)

    @property
    def stop_timeout(self) -> int:
        """The app container's stopTimeout: the catalog's, else time for an in-flight request to finish, at
        least Fargate's 30 s default."""
        if self.stop_timeout_seconds is not None:
            return self.stop_timeout_seconds
        return max(FARGATE_STOP_TIMEOUT_DEFAULT, self.in_flight_seconds)

    @field_validator("request_timeout_seconds")
    @classmethod
    def _a_bounded_wait(cls, seconds: int) -> int:
        if seconds == 0:
            # ECS reads 0 as "no timeout" (TimeoutConfiguration); no load balancer can wait without limit.
            raise ValueError("0 would turn the timeout off and let a caller wait forever; give the longest "
                             f"wait in seconds, 1 to {ECS_DURATION_MAX}")
        if not 1 <= seconds <= ECS_DURATION_MAX:
            raise ValueError(f"{seconds} is outside ECS's Service Connect timeout range (1 to {ECS_DURATION_MAX} s)")
        return seconds

    @property
    def uses_messaging(self) -> bool:
        """Whether it publishes or consumes: only then has it a broker user and a credentials secret."""
        return bool(self.publishes or self.consumes)

    @property
    def queue(self) -> str | None:
        """The service's own durable work queue, if it consumes anything."""
        return f"{self.name}.work" if self.consumes else None

    @property
    def dead_letter_queue(self) -> str | None:
        return f"{self.name}.dlq" if self.consumes else None


class CatalogProblems(ValueError):
    """The whole-catalog problems found at once, each a (key, reason) pair, told one a line by the loader."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{key}: {reason}" for key, reason in problems))
        self.problems = problems


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # as Routes

    services: dict[str, ServiceSpec]

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("services"), dict):
            data = dict(data)
            data["services"] = {
                name: {**spec, "name": name} if isinstance(spec, dict) else spec
                for name, spec in data["services"].items()
            }
        return data

    @model_validator(mode="after")
    def _whole_catalog_is_consistent(self) -> Catalog:
        """Every whole-catalog problem at once (the call graph, then waits and keys against it), so a fix does not
        uncover the next problem one run later."""
        problems = self._graph_problems()
        problems += self._wait_problems()
        if problems:
            raise CatalogProblems(problems)
        return self

    def _graph_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for name, spec in self.services.items():
            if not _NAME.fullmatch(name):
                problems.append((f"services.{name}", "names are lower-case dns labels (2-32 chars)"))
            for callee in spec.calls:
                if callee not in self.services:
                    problems.append((f"services.{name}.calls", f"unknown service {callee!r}"))
                elif callee == name:
                    problems.append((f"services.{name}.calls", "a service does not call itself"))
        owners: dict[int, str] = {}
        for name, spec in self.services.items():
            if spec.port in owners:
                problems.append((f"services.{name}.port", f"{spec.port} is already the port of {owners[spec.port]}; "
                                 "each service listens on a port of its own"))
            owners.setdefault(spec.port, name)
        known = {name: [callee for callee in spec.calls if callee in self.services and callee != name]
                 for name, spec in self.services.items()}
        try:
            graphlib.TopologicalSorter(known).prepare()
        except graphlib.CycleError as error:
            # A Service Connect client resolves only the endpoints that existed when its task started,
            # so callees are created before their callers (creation_order); a cycle has no such order.
            cycle: list[str] = list(error.args[1])[::-1]  # graphlib lists it callee-first
            problems.append((
                f"services.{cycle[0]}.calls",
                f"call cycle {' -> '.join(cycle)}; services are started callees first (a client only reaches "
                "services that existed when it started), so calls must not form a cycle"))
        return problems

    def _wait_problems(self) -> list[tuple[str, str]]:
        """Request timeouts, job lengths and public waits against the call graph (its known callees)."""
        problems: list[tuple[str, str]] = []
        for name, spec in self.services.items():
            for callee in spec.calls:
                if callee not in self.services or callee == name:
                    continue  # the graph's own problem
                waited = self.services[callee].request_timeout_seconds
                if spec.request_timeout_seconds < waited:
                    # A service answers its callers only after its callees answered it: its own callers
                    # (and, when public, its load balancer) would give up while it still legitimately waits.
                    problems.append((
                        f"services.{name}.request_timeout_seconds",
                        f"{spec.request_timeout_seconds} s is shorter than the {waited} s {name} may wait for "
                        f"{callee}, which it calls; give {name} at least {waited}"))
            if spec.max_job_seconds is not None and not spec.consumes:
                problems.append((
                    f"services.{name}.max_job_seconds",
                    f"{name} consumes nothing, so it never holds a delivery; declare how long a job may take on the "
                    "service that consumes its requests"))
            if spec.protects_jobs and not self.queue_only(name):
                reached = ("consumes nothing" if not spec.consumes else
                           "is public" if spec.public else f"is called by {', '.join(self.callers(name))}")
                problems.append((
                    f"services.{name}.protects_jobs",
                    f"{name} {reached}; only a service that consumes and that no HTTP request reaches is scaled on "
                    "its queue alone, where the protection of its working tasks lets its idle ones leave (CPU target "
                    "tracking scales the others); remove the key"))
            if spec.protects_jobs and spec.queue_consumer_timeout_ms > TASK_PROTECTION_MAX_MINUTES * 60_000:
                # ExpiresInMinutes is 1-2880 (botocore ecs UpdateTaskProtection; ECS developer guide, task scale-in
                # protection), and the app protects each job for its whole length at once (README, Autoscaling)
                problems.append((
                    f"services.{name}.protects_jobs",
                    f"its jobs may last {spec.queue_consumer_timeout_ms // 1000} s (max_job_seconds), longer than "
                    f"one task protection lasts ({TASK_PROTECTION_MAX_MINUTES * 60} s, 48 hours); shorten its "
                    "max_job_seconds or remove the key"))
            if spec.load_balancing != "round_robin" and not spec.public:
                problems.append((
                    f"services.{name}.load_balancing",
                    f"{name} is not public, so no load balancer routes to it (its callers reach it through the mesh "
                    "proxy); remove the key"))
            if spec.public and spec.request_timeout_seconds > PUBLIC_REQUEST_TIMEOUT_MAX:
                problems.append((
                    f"services.{name}.request_timeout_seconds",
                    f"{spec.request_timeout_seconds} s is longer than a public service's load balancer can wait "
                    f"({PUBLIC_REQUEST_TIMEOUT_MAX} s: the ALB's idle timeout goes up to 4000 s, its target group's "
                    "deregistration delay up to 3600 s)"))
        return problems

    def __iter__(self):  # type: ignore[override]
        return iter(self.services.values())

    def __getitem__(self, name: str) -> ServiceSpec:
        return self.services[name]

    def names(self) -> list[str]:
        return list(self.services)

    def creation_order(self) -> list[str]:
        """Every service after the services it calls (catalog order otherwise); the catalog has no cycle."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for callee in self.services[name].calls:
                visit(callee)
            order.append(name)

        for name in self.services:
            visit(name)
        return order

    def callers(self, service: str) -> list[str]:
        """The services that call ``service`` over HTTP (catalog ``calls``)."""
        return [spec.name for spec in self if service in spec.calls]

    def queue_only(self, service: str) -> bool:
        """Whether only its queue brings ``service`` work: it consumes and no HTTP request reaches it (not ``public``,
        called by no service). Its CPU then says how hard the jobs it holds work, not that work waits, so nothing
        scales it on its CPU (shared.components.compute_service.autoscaling)."""
        spec = self.services[service]
        return bool(spec.consumes) and not spec.public and not self.callers(service)

    @property
    def uses_artifacts(self) -> bool:
        """Whether any service reads or writes model artifacts: only then has the env an artifact bucket."""
        return any(spec.artifacts for spec in self)

    def handoff_publishers(self) -> list[str]:
        """The services that may hand a payload too large for a message over by reference (every service that
        publishes, catalog order): each may put it under its own ``<service>/handoff/`` in the artifact bucket
        (shared.artifact_names.handoff_prefix; README, "Model artifacts")."""
        return [spec.name for spec in self if spec.publishes]

    def handoff_sources(self, service: str) -> list[str]:
        """The publishers whose handoffs ``service`` may get: those that publish a key its work queue is bound to
        (the bindings messaging makes from ``consumes``: :meth:`consumers_of`), in catalog order."""
        return [spec.name for spec in self
                if any(service in {c.name for c in self.consumers_of(exchange, key)}
                       for exchange, key in spec.publishes.items())]

    @property
    def needs_artifact_bucket(self) -> bool:
        """Whether the env has a model-artifact bucket: a service reads or writes artifacts, or one publishes (and may
        hand a payload over through the bucket, :meth:`handoff_publishers`)."""
        return self.uses_artifacts or bool(self.handoff_publishers())

    def consumer_timeout_ms(self) -> int:
        """A broker-wide ``consumer_timeout`` that covers every job: the longest ``max_job_seconds`` of the
        catalog, in ms, never below Amazon MQ's default (30 minutes). What a broker needs that cannot take a
        timeout per queue (older than RabbitMQ 3.12; :func:`shared.amazonmq.broker_consumer_timeout_ms`)."""
        longest = max((spec.max_job_seconds for spec in self if spec.max_job_seconds is not None), default=0)
        return max(CONSUMER_TIMEOUT_DEFAULT_MS, longest * 1000)

    def consumers_of(self, exchange: Exchange, routing_key: str) -> list[ServiceSpec]:
        """Services whose work queue is bound to ``routing_key`` on ``exchange``."""
        return [s for s in self if routing_key in getattr(s.consumes, exchange)]

    def warnings(self) -> list[str]:
        """What is valid but almost surely a mistake: a published routing key no queue receives (the
        broker drops those messages silently), a consumed one nobody publishes (a queue that waits
        for nothing), a stop timeout shorter than a request in flight may need, or a service that reads model
        artifacts no service writes."""
        found = []
        for publisher, exchange, key, queues in self.routes():
            if not queues:
                found.append(f"services.{publisher}.publishes.{exchange}: {key!r} is consumed by no service; "
                             "RabbitMQ drops what is published with it")
        for spec in self:
            in_flight = spec.in_flight_seconds
            if spec.stop_timeout_seconds is not None and spec.stop_timeout_seconds < in_flight:
                found.append(f"services.{spec.name}.stop_timeout_seconds: {spec.stop_timeout_seconds} s is shorter "
                             f"than the {in_flight} s a request in flight may still need; ECS kills the app "
                             "mid-request on a deploy or scale-in")
        if not any(spec.artifacts == "write" for spec in self):
            found.extend(f"services.{spec.name}.artifacts: reads model artifacts, but no service of the catalog "
                         "writes any" for spec in self if spec.artifacts == "read")
        published = {(exchange, key) for spec in self for exchange, key in spec.publishes.items()}
        for spec in self:
            for exchange, key in spec.consumes.items():
                if (exchange, key) not in published:
                    found.append(f"services.{spec.name}.consumes.{exchange}: {key!r} is published by no service "
                                 "of the catalog")
        return found

    def routes(self) -> list[tuple[str, Exchange, str, list[str]]]:
        """Every declared (publisher, exchange, routing key, receiving queues) route."""
        result = []
        for spec in self:
            for exchange, key in spec.publishes.items():
                queues = [c.queue for c in self.consumers_of(exchange, key) if c.queue]
                result.append((spec.name, exchange, key, queues))
        return result


_REASONS = {"missing": "required key is missing"}  # the env loader's words (an unknown key: unknown_key_reason)


def _format_errors(path: Path, error: ValidationError) -> list[ConfigError]:
    """Every problem pydantic found (a misspelt key shows as itself, unknown, next to the key it lacks)."""
    problems = []
    keys = [item for item in error.errors() if non_string_key(item["loc"], item.get("input"), item["type"])]
    for item in error.errors():
        named = non_string_key(item["loc"], item.get("input"), item["type"])
        if named:
            problems.append(ConfigError(str(path), *named))
            continue
        if any(item["loc"] == (*key["loc"][:-1], "name") for key in keys):
            continue  # a service's name is its key: that key's problem says it
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        whole = item.get("ctx", {}).get("error")
        if isinstance(whole, CatalogProblems):
            problems.extend(ConfigError(str(path), *problem) for problem in whole.problems)
        else:
            reason = (unknown_key_reason(item["loc"][-1]) if item["type"] == "extra_forbidden"
                      else _REASONS.get(item["type"], item["msg"]))
            problems.append(ConfigError(str(path), key, reason.removeprefix("Value error, ")))
    return problems


def load_catalog_file(path: Path) -> Catalog:
    from shared.yamlio import load_yaml_mapping

    data = load_yaml_mapping(path)
    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        raise_all(_format_errors(path, error))
        raise  # unreachable: a ValidationError always carries at least one error


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Catalog:
    return load_catalog_file(Path(path))


def catalog_path() -> Path:
    override = os.environ.get(CATALOG_ENV_VAR)
    return Path(override) if override else CATALOG_FILE


def load_catalog() -> Catalog:
    """The catalog in force (``$PLATFORM_CATALOG`` or ``shared/catalog.yaml``)."""
    path = catalog_path()
    if not path.is_file():
        raise ConfigError(str(path), "(file)", "catalog file does not exist")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)
