"""What runs in a service's Fargate task: sizes, image references and container definitions.

Pure functions over plain values (no Pulumi here), so the container definitions the compute layer
registers are the same dicts the tests validate against botocore's ECS model.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.catalog import (
    DEFAULT_STARTUP_SECONDS,
    FARGATE_STOP_TIMEOUT_DEFAULT,
    HEALTH_CURL_MAX_SECONDS,
    HEALTH_INTERVAL,
    HEALTH_RETRIES,
    HEALTH_TIMEOUT,
)
from shared.envs import is_digest

#: The App Mesh Envoy proxy when the env names none (``mesh.envoy_image``), pinned by digest (a tag can
#: be re-pointed; a digest cannot). Provenance: the digest `public.ecr.aws/appmesh/aws-appmesh-envoy:
#: v1.27.0.0-prod` resolved to on 2023-10-25, as recorded in a published `kubectl describe pod` of an
#: App Mesh sidecar; it was not re-resolved here (no registry access). An env that runs App Mesh should
#: set ``mesh.envoy_image`` to a digest it resolved itself, e.g. ``crane digest
#: public.ecr.aws/appmesh/aws-appmesh-envoy:vX.Y.Z.W-prod``. The public gallery needs no ECR permissions
#: on the execution role; tasks reach it through the NAT.
ENVOY_IMAGE = (
    "public.ecr.aws/appmesh/aws-appmesh-envoy"
    "@sha256:e962021573bec151ba648cd20d9fa898abda97ece28074749c1c83d078ccbbe4"
)
ENVOY_CONTAINER = "envoy"
#: App Mesh's proxy configuration excludes traffic of this uid from redirection: Envoy must run as it.
ENVOY_UID = "1337"
ENVOY_INGRESS_PORT = 15000
ENVOY_EGRESS_PORT = 15001
ENVOY_ADMIN_PORT = 9901
#: The task metadata endpoint and the instance metadata service must bypass the proxy.
ENVOY_EGRESS_IGNORED_IPS = "169.254.170.2,169.254.169.254"
#: Amazon MQ's AMQPS port: the broker is outside the mesh, so its TLS connections bypass Envoy.
AMQPS_PORT = 5671

#: Application containers run as this uid:gid; images must not need root (ecs-task-non-root-user).
APP_USER = "10001:10001"
TMP_VOLUME = "tmp"
#: Where the app's scratch volume is mounted: its only writable path (read-only root).
APP_SCRATCH_PATH = "/tmp"
ENVOY_TMP_VOLUME = "envoy-tmp"

#: The init container that makes the scratch volumes writable for the users that mount them: Fargate
#: creates a task bind mount root-owned, mode 0755 (ECS guide "Use bind mounts";
#: aws/containers-roadmap#938), so a non-root app (and Envoy, aws/aws-app-mesh-roadmap#433) with a
#: read-only root could not write its /tmp.
SCRATCH_INIT_CONTAINER = "scratch-init"
SCRATCH_INIT_MOUNT = "/scratch-init"
#: Linux capabilities the ECS API accepts (botocore ``ecs`` KernelCapabilities).
LINUX_CAPABILITIES = (
    "AUDIT_CONTROL", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID",
    "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT",
    "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
)
#: Fargate only supports *adding* SYS_PTRACE (KernelCapabilities.add), so "drop ALL, add CHOWN" is not
#: available: the init container drops every capability except CHOWN, the one `chown` needs.
SCRATCH_INIT_DROPPED_CAPABILITIES = tuple(cap for cap in LINUX_CAPABILITIES if cap != "CHOWN")

#: Service Connect envs: a container that starts once the app is HEALTHY and exits at once, so that a new task of a
#: service others call turns RUNNING, and its callers' proxies send it requests, only once its app answers its health
#: check. Service Connect itself routes to a task as soon as it runs, ignoring the container health check: callers got
#: 503s from a slow starter's new tasks on every deploy and scale-out, and this container is the workaround AWS
#: validated (aws/containers-roadmap#2334). Stopping is unchanged: it has exited long before (a dependency's shutdown
#: order is the reverse of its start-up, botocore ecs ContainerDependency).
SERVE_GATE_CONTAINER = "serve-gate"
#: Fargate's longest container startTimeout (botocore ecs ContainerDefinition.startTimeout: 2-120 s on Fargate). The
#: app's, in a gated task whose app turns HEALTHY within it: a task whose dependency never reaches HEALTHY stays
#: PENDING, its UNHEALTHY app not stopped, until the scheduler gives up hours later (aws/containers-roadmap#2379): no
#: stopped task for the circuit breaker to count, an `up` that waits out its steady-state timeout, a scale-out task
#: that never serves. Past the app's startTimeout the agent stops the waiting gate instead (amazon-ecs-agent
#: dependencygraph hasDependencyTimedOut, task_manager handleTerminalDependencyError); the gate is not essential, so
#: the task runs, and ECS stops it once its app is UNHEALTHY, as without the gate (the API reference says the task
#: stops at once: a stopped task for the circuit breaker either way).
FARGATE_START_TIMEOUT_MAX = 120


def image_reference(repository_url: str, release_ref: str) -> str:
    """``<repo>@sha256:...`` for a digest (immutable: what was tested is what runs), ``<repo>:<tag>``
    for a tag (allowed by the env schema, flagged by ecs-task-image-pinned)."""
    separator = "@" if is_digest(release_ref) else ":"
    return f"{repository_url}{separator}{release_ref}"


def env_var_name(service: str, suffix: str) -> str:
    return f"{service.upper().replace('-', '_')}_{suffix}"


@dataclass(frozen=True)
class ContainerWiring:
    """Everything a service's containers need, resolved to plain values."""

    service: str
    port: int
    health_path: str
    image: str
    region: str
    log_group: str
    port_name: str
    #: plain configuration: discovery names, endpoints, exchange names (never credentials)
    environment: dict[str, str]
    #: env var name -> Secrets Manager ARN (or ARN with a JSON key selector); injected by ECS
    secrets: dict[str, str]
    #: the version of the service's messaging secret ``secrets`` pins ("" none: no credentials, or unpinned), which
    #: compute records for the next rotation's check (shared.rotation_continuity.HELD_VERSION_FIELD)
    secret_version: str = ""
    #: the virtual node Envoy serves, for App Mesh envs; None for Service Connect
    appmesh_resource_arn: str | None = None
    #: the app's container health check timing (the catalog's ServiceSpec.health_check_timing)
    health_start_period: int = DEFAULT_STARTUP_SECONDS
    health_interval: int = HEALTH_INTERVAL
    health_retries: int = HEALTH_RETRIES
    envoy_image: str = ENVOY_IMAGE
    #: seconds from the app's SIGTERM to its SIGKILL (the catalog's ServiceSpec.stop_timeout, within Fargate's
    #: FARGATE_STOP_TIMEOUT_MIN..MAX)
    stop_timeout: int = FARGATE_STOP_TIMEOUT_DEFAULT
    #: Service Connect callers: the endpoints of the callees that run, as its tasks resolve them (the
    #: CALLEE_ENDPOINTS_LABEL docker label, see there); None for a service that calls nobody, and in App Mesh envs
    callee_endpoints: str | None = None
    #: Service Connect envs, a service another calls: its task runs the SERVE_GATE_CONTAINER
    serve_gate: bool = False
    #: the app container's startTimeout, how long the serve gate waits for its HEALTHY (serve_gate_start_timeout)
    app_start_timeout: int | None = None


#: The awslogs delivery mode, stated rather than left to the account: without ``mode`` ECS takes the
#: Region's ``defaultLogDriverMode`` account setting, which may say ``blocking`` -- then a container whose
#: logs cannot reach CloudWatch Logs (throttling, an endpoint or NAT outage) blocks on every write to
#: stdout/stderr and fails its health check (botocore ``ecs`` LogConfiguration.options, ``mode``).
AWSLOGS_MODE = "non-blocking"
#: The in-memory buffer of non-blocking delivery (ECS default 10m); lines past it are lost while CloudWatch
#: Logs is out of reach. 25m as in the AWS CDK's awslogs example; sizing: AWS Containers blog
#: "Preventing log loss with non-blocking mode in the AWSLogs container log driver".
AWSLOGS_MAX_BUFFER_SIZE = "25m"


#: The app container's docker label naming the Service Connect endpoints of its running callees (JSON: callee ->
#: discovery name, client alias, per-request timeout). A task resolves only the endpoints that existed, as they were,
#: when it started (ECS guide, "Amazon ECS Service Connect components"), so a callee released after its caller, or
#: a change of what callers' proxies learn about it, must replace the caller's tasks: the label changes the task
#: definition (a new revision, a rolling deployment), and the caller's ECS service is updated after its callees'.
CALLEE_ENDPOINTS_LABEL = "platform.service-connect-endpoints"


def awslogs_options(log_group: str, region: str, prefix: str) -> dict[str, str]:
    """The awslogs driver options of every container and proxy of the platform: the service's
    pre-created (retention, KMS) group -- no ``awslogs-create-group``, so a typo fails the task's start
    instead of creating an unencrypted group that never expires -- and an explicit delivery mode."""
    return {
        "awslogs-group": log_group,
        "awslogs-region": region,
        "awslogs-stream-prefix": prefix,
        "mode": AWSLOGS_MODE,
        "max-buffer-size": AWSLOGS_MAX_BUFFER_SIZE,
    }


def _log_configuration(wiring: ContainerWiring, prefix: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": awslogs_options(wiring.log_group, wiring.region, prefix)}


def dropped_capabilities(dropped: tuple[str, ...]) -> dict[str, list[str]]:
    """KernelCapabilities dropping ``dropped`` and adding none, in the shape ECS returns it.

    DescribeTaskDefinition returns both lists, ``add: []`` included when only ``drop`` was sent, and the
    AWS provider compares the two sides' ``capabilities`` as they are (its container-definition reduce
    normalises top-level fields only): without ``"add": []`` every ``up`` would replace the task
    definition and roll the service's tasks."""
    return {"add": [], "drop": list(dropped)}


def _name_value(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": values[name]} for name in sorted(values)]


def serve_gate_start_timeout(serve_gate: bool, healthy_seconds: int) -> int | None:
    """The app container's startTimeout (:data:`FARGATE_START_TIMEOUT_MAX`) where the task runs the serve gate and an
    app that keeps its start-up turns HEALTHY by then (``healthy_seconds``, the catalog's ServiceSpec.healthy_seconds:
    95 s at the default 60 s start-up). A slower starter gets none (a gate given up early would let callers in before
    the app answers): its gate waits without a bound."""
    return FARGATE_START_TIMEOUT_MAX if serve_gate and healthy_seconds <= FARGATE_START_TIMEOUT_MAX else None


def app_container(wiring: ContainerWiring) -> dict[str, Any]:
    url = f"http://127.0.0.1:{wiring.port}{wiring.health_path}"
    container: dict[str, Any] = {
        "name": wiring.service,
        "image": wiring.image,
        "essential": True,
        # Named and with an app protocol: Service Connect refers to the port by this name and
        # reports HTTP metrics for it.
        "portMappings": [{"name": wiring.port_name, "containerPort": wiring.port, "protocol": "tcp",
                          "appProtocol": "http"}],
        # HOME on the scratch volume: Docker derives HOME from the user's /etc/passwd entry and uses "/" for a
        # uid the image does not list (Docker run reference, "Environment variables"), and with a read-only
        # root neither "/" nor an image's home directory is writable, so anything writing under ~ (pip,
        # model and framework caches in ~/.cache, ~/.config) would fail with EROFS at run time.
        "environment": _name_value({**wiring.environment, "HOME": APP_SCRATCH_PATH}),
        # Credentials come from Secrets Manager at task start, so they never appear in the task
        # definition, the console or `describe-task-definition` output.
        "secrets": [{"name": name, "valueFrom": wiring.secrets[name]} for name in sorted(wiring.secrets)],
        "healthCheck": {
            # The image must ship curl (or provide a `curl` shim); the check runs inside the container, in its shell
            # (botocore ecs HealthCheck.command, CMD-SHELL): the URL quoted, where a query's `&` or `;` would
            # otherwise end the command and the check pass with nothing listening.
            "command": ["CMD-SHELL", f"curl -fsS --max-time {HEALTH_CURL_MAX_SECONDS} -o /dev/null "
                                     f"{shlex.quote(url)} || exit 1"],
            # Model-serving containers load weights before they answer: failures count only after startPeriod
            # (the catalog's startup_seconds, at most ECS's 300), and a longer start-up within retries x interval.
            "interval": wiring.health_interval, "timeout": HEALTH_TIMEOUT, "retries": wiring.health_retries,
            "startPeriod": wiring.health_start_period,
        },
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": TMP_VOLUME, "containerPath": APP_SCRATCH_PATH, "readOnly": False}],
        "user": APP_USER,
        "privileged": False,
        # An init process reaps zombies and forwards SIGTERM; no Linux capabilities are needed to
        # serve HTTP on a port above 1024.
        "linuxParameters": {"initProcessEnabled": True, "capabilities": dropped_capabilities(("ALL",))},
        "logConfiguration": _log_configuration(wiring, wiring.service),
        # On a deploy or scale-in ECS sends SIGTERM, then SIGKILL after this long: the app stops taking
        # work, finishes (or hands back) what it holds, and exits (README, "Add a service").
        "stopTimeout": wiring.stop_timeout,
        "dockerLabels": {"platform.service": wiring.service,
                         **({CALLEE_ENDPOINTS_LABEL: wiring.callee_endpoints}
                            if wiring.callee_endpoints is not None else {})},
    }
    # Its /tmp is writable only once the init container handed it to the app's user.
    container["dependsOn"] = [{"containerName": SCRATCH_INIT_CONTAINER, "condition": "SUCCESS"}]
    if wiring.app_start_timeout is not None:  # how long the serve gate waits for this container's HEALTHY
        container["startTimeout"] = wiring.app_start_timeout
    if wiring.appmesh_resource_arn:
        # Traffic is redirected through Envoy from the first packet: the app must not start before
        # the proxy is ready, or its first calls fail.
        container["dependsOn"].append({"containerName": ENVOY_CONTAINER, "condition": "HEALTHY"})
    return container


def scratch_owners(wiring: ContainerWiring) -> dict[str, str]:
    """Scratch volume -> the ``uid[:gid]`` that must own it: the app's /tmp, and Envoy's in App Mesh envs."""
    owners = {TMP_VOLUME: APP_USER}
    if wiring.appmesh_resource_arn:
        owners[ENVOY_TMP_VOLUME] = ENVOY_UID
    return owners


def scratch_init_container(wiring: ContainerWiring) -> dict[str, Any]:
    """A short, non-essential root container that chowns the scratch volumes, then exits 0.

    It runs the service's own image (already pulled, pinned by the release digest, scanned on push:
    no third-party image and no second digest to keep current), with the image's entry point replaced
    by ``/bin/sh -c 'chown ...'``. The image must ship ``/bin/sh`` (its health check already runs in
    it) and ``chown``. Root only for this, with every capability but CHOWN dropped, a read-only root,
    no ports, no secrets, no environment.
    """
    owners = scratch_owners(wiring)
    script = " && ".join(f"chown {owner} {SCRATCH_INIT_MOUNT}/{volume}" for volume, owner in owners.items())
    return {
        "name": SCRATCH_INIT_CONTAINER,
        "image": wiring.image,
        "essential": False,
        "entryPoint": ["/bin/sh", "-c"],
        "command": [script],
        "user": "0",
        "privileged": False,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": volume, "containerPath": f"{SCRATCH_INIT_MOUNT}/{volume}", "readOnly": False}
                        for volume in owners],
        "linuxParameters": {"capabilities": dropped_capabilities(SCRATCH_INIT_DROPPED_CAPABILITIES)},
        "logConfiguration": _log_configuration(wiring, SCRATCH_INIT_CONTAINER),
        "dockerLabels": {"platform.service": wiring.service},
    }


def serve_gate_container(wiring: ContainerWiring) -> dict[str, Any]:
    """A short, non-essential container that waits for the app's HEALTHY and exits 0 (:data:`SERVE_GATE_CONTAINER`).

    The service's own image (already pulled, pinned by the release digest), its entry point replaced by ``/bin/sh -c
    'exit 0'``: the app's user, a read-only root, no capabilities, ports, secrets, environment or volumes.
    """
    return {
        "name": SERVE_GATE_CONTAINER,
        "image": wiring.image,
        "essential": False,
        "entryPoint": ["/bin/sh", "-c"],
        "command": ["exit 0"],
        "user": APP_USER,
        "privileged": False,
        "readonlyRootFilesystem": True,
        "linuxParameters": {"capabilities": dropped_capabilities(("ALL",))},
        "logConfiguration": _log_configuration(wiring, SERVE_GATE_CONTAINER),
        "dockerLabels": {"platform.service": wiring.service},
        # Bounded by the app's startTimeout where its start-up allows one (serve_gate_start_timeout): an UNHEALTHY app
        # does not stop a task that is not RUNNING yet (aws/containers-roadmap#2379).
        "dependsOn": [{"containerName": wiring.service, "condition": "HEALTHY"}],
    }


def envoy_container(wiring: ContainerWiring) -> dict[str, Any]:
    if not wiring.appmesh_resource_arn:
        raise ValueError(f"{wiring.service}: the Envoy sidecar needs the virtual node ARN")
    return {
        "name": ENVOY_CONTAINER,
        "image": wiring.envoy_image,
        "essential": True,
        # Envoy learns its listeners, routes and clusters from App Mesh for exactly this node.
        "environment": _name_value({"APPMESH_RESOURCE_ARN": wiring.appmesh_resource_arn,
                                    "ENVOY_LOG_LEVEL": "info"}),
        "healthCheck": {
            "command": ["CMD-SHELL",
                        f"curl -s http://localhost:{ENVOY_ADMIN_PORT}/server_info | grep state | grep -q LIVE"],
            "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 10,
        },
        "user": ENVOY_UID,
        "privileged": False,
        "readonlyRootFilesystem": True,
        # Envoy writes its bootstrap configuration under /tmp (mktemp), as uid 1337: the init container
        # hands the volume to that uid first (aws/aws-app-mesh-roadmap#433).
        "mountPoints": [{"sourceVolume": ENVOY_TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}],
        "dependsOn": [{"containerName": SCRATCH_INIT_CONTAINER, "condition": "SUCCESS"}],
        # No nofile ulimit: Envoy holds two descriptors per proxied connection (the app's side and the peer's), in and
        # out, and Fargate's default (shared.fargate.FARGATE_DEFAULT_NOFILE, 65535) is already above App Mesh's 15000.
        "linuxParameters": {"initProcessEnabled": True, "capabilities": dropped_capabilities(("ALL",))},
        "logConfiguration": _log_configuration(wiring, ENVOY_CONTAINER),
        "stopTimeout": 30,
    }


def container_definitions(wiring: ContainerWiring) -> list[dict[str, Any]]:
    """The task's containers: the app, the scratch init container, plus the Envoy sidecar in App Mesh envs and the
    serve gate in Service Connect envs for a service another calls."""
    containers = [app_container(wiring), scratch_init_container(wiring)]
    if wiring.appmesh_resource_arn:
        containers.append(envoy_container(wiring))
    elif wiring.serve_gate:
        containers.append(serve_gate_container(wiring))
    return containers


def amqps_port(endpoint: str) -> int:
    """The port of an ``amqps://host[:port]`` endpoint (AMQPS's 5671 when it names none)."""
    port = urlsplit(endpoint).port
    return port if port is not None else AMQPS_PORT


def appmesh_proxy_properties(app_port: int, broker_port: int = AMQPS_PORT) -> dict[str, str]:
    """The APPMESH proxy configuration: which traffic ECS redirects through Envoy.

    Everything else leaves through Envoy, AWS API calls included (the mesh's DROP_ALL egress filter
    lets ``*.amazonaws.com`` through, per the App Mesh EgressFilter docs). The broker's AMQPS port is
    ignored: the broker is no mesh backend, and its long-lived TLS connections need no proxy.
    """
    return {
        "AppPorts": str(app_port),
        "EgressIgnoredIPs": ENVOY_EGRESS_IGNORED_IPS,
        "EgressIgnoredPorts": str(broker_port),
        "IgnoredUID": ENVOY_UID,
        "ProxyEgressPort": str(ENVOY_EGRESS_PORT),
        "ProxyIngressPort": str(ENVOY_INGRESS_PORT),
    }


def appmesh_virtual_node_arn(partition: str, region: str, account_id: str, mesh: str, node: str) -> str:
    return f"arn:{partition}:appmesh:{region}:{account_id}:mesh/{mesh}/virtualNode/{node}"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class InRegion:
    """A component's args with the env's ``region`` (a dataclass field of the subclass): the AWS partition every ARN
    the component builds is in comes from it, so the two cannot disagree."""

    region: str

    @property
    def partition(self) -> str:
        """The AWS partition of the env's region."""
        return partition_of(self.region)
