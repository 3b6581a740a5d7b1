"""Per-queue backlog metrics of the env's RabbitMQ vhost, published to CloudWatch (a Lambda function's source).

Amazon MQ publishes no per-queue CloudWatch metric for RabbitMQ 4 brokers ("Amazon MQ will not vend RabbitMQ
queue metrics for RabbitMQ 4 brokers through AWS CloudWatch", Amazon MQ developer guide, "Amazon MQ for
RabbitMQ 4"), yet a consumer's autoscaling and its queue alarms need one. Every minute (an EventBridge
schedule) this function reads the work queues and DLQs of the env's vhost from the broker's RabbitMQ
management HTTP API (``GET /api/queues/<vhost>``, only the columns it needs) and writes, per queue, with
``PutMetricData`` to the namespace ``NAMESPACE`` and the dimensions ``VirtualHost`` and ``Queue``:

- ``MessagesReady``: messages waiting for a consumer (the backlog autoscaling acts on);
- ``MessagesUnacknowledged``: delivered, not yet acknowledged (jobs in progress);
- ``Messages``: the two together (the broker's ``messages``): 0 only when no job waits and none is in progress,
  what a consumer is scaled in on, so that a task holding a job is not taken for an idle one;
- ``Consumers``: consumers attached to the queue;
- ``IdleConsumers``: consumers holding no message while none is ready (``consumers`` less
  ``messages_unacknowledged``, at least 0; 0 while a message is ready; at least 1 while the queue holds nothing,
  every task then idle whether or not it consumes): each holds at most one job (prefetch 1), so this counts the
  tasks with nothing to do, what a consumer that protects its working tasks from scale-in is scaled in on (README,
  Autoscaling).

It signs in as the messaging layer's read-only user (tag ``management``, vhost permissions matching
nothing: it sees the vhost's queues and cannot publish, consume or configure), whose credentials are the
Secrets Manager secret ``SECRET_ARN`` (JSON ``username``/``password``), read on each run so a rotated
password is picked up. The queues it publishes are the platform's work queues and DLQs of the env, listed by the
messaging layer in ``queues.json`` beside this module in the function's package (a JSON list of names): not in the
function's environment, which Lambda holds to 4 KB in all (not adjustable), less than the queues of 50 services
with 32-character names. A queue named there that the broker does not list (or lists without its
figures), a refused sign-in or an unreachable broker fail the run (Lambda ``Errors``, which an alarm watches)
after publishing whatever it could: such a queue gets no data point rather than a false 0.

Standard library and boto3 only: the file ships as the function's code as is (no packaging step).
Configuration comes from the function's environment (set by the messaging layer): ``MANAGEMENT_ENDPOINT``
(the broker's management URL, ``https://...``), ``SECRET_ARN``, ``VHOST``, ``NAMESPACE`` and
``QUEUES_SHA256``, the SHA-256 of ``queues.json``'s bytes: a package whose list is not the one the layer planned
fails the run (Lambda applies a new configuration and a new package in two calls), and a change of the list is a
change of the function's configuration an offline plan shows. ``http://`` is refused unless
``QUEUE_METRICS_TEST_ONLY_ALLOW_HTTP=1`` is set and the host is a loopback address: for the tests against a
local broker only, the component never sets it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDPOINT_VAR = "MANAGEMENT_ENDPOINT"
SECRET_VAR = "SECRET_ARN"
VHOST_VAR = "VHOST"
QUEUES_DIGEST_VAR = "QUEUES_SHA256"
#: the package's list of the queues to publish, beside this module
QUEUES_FILE = "queues.json"
NAMESPACE_VAR = "NAMESPACE"
ALLOW_HTTP_VAR = "QUEUE_METRICS_TEST_ONLY_ALLOW_HTTP"
HTTP_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 3
#: metric name -> the management API's field of a queue object
METRICS = {"MessagesReady": "messages_ready", "MessagesUnacknowledged": "messages_unacknowledged",
           "Messages": "messages", "Consumers": "consumers"}
#: the metric derived from those fields (:func:`idle_consumers`)
IDLE_CONSUMERS = "IdleConsumers"
#: every metric name a run writes for each queue
PUBLISHED_METRICS = (*METRICS, IDLE_CONSUMERS)
#: the dimensions of every data point (their values: the vhost and the queue's name)
DIMENSIONS = ("VirtualHost", "Queue")
#: PutMetricData takes at most 1000 metric data items per call (botocore cloudwatch model, MetricData)
#: and 1 MB; a batch of 150 (30 queues' five metrics) stays far below both.
BATCH = 150
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


class PublishError(Exception):
    """The run could not read or publish every queue's figures (Lambda counts it in ``Errors``)."""


@dataclass(frozen=True)
class Settings:
    endpoint: str
    context: ssl.SSLContext | None
    secret_arn: str
    vhost: str
    queues: tuple[str, ...]
    namespace: str

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None, queues_file: Path | None = None) -> Settings:
        """From the function's environment and its package's queue list (``queues_file``: tests only)."""
        env = dict(os.environ if environ is None else environ)
        endpoint = env.get(ENDPOINT_VAR, "").strip().rstrip("/")
        parts = urllib.parse.urlsplit(endpoint)
        if not parts.hostname:
            raise PublishError(f"{ENDPOINT_VAR} must be the broker's management URL (https://<host>), "
                               f"got {endpoint!r}")
        context: ssl.SSLContext | None
        if parts.scheme == "http":
            if env.get(ALLOW_HTTP_VAR) != "1" or parts.hostname not in _LOOPBACK_HOSTS:
                raise PublishError(f"{ENDPOINT_VAR} {endpoint} is plain http: the user's password would cross "
                                   "the network in clear; use the broker's https URL")
            context = None
        elif parts.scheme == "https":
            context = ssl.create_default_context()  # the runtime's trust store verifies Amazon MQ's certificate
        else:
            raise PublishError(f"{ENDPOINT_VAR} {endpoint} is not an https URL")
        missing = [var for var in (SECRET_VAR, VHOST_VAR, QUEUES_DIGEST_VAR, NAMESPACE_VAR)
                   if not env.get(var, "").strip()]
        if missing:
            raise PublishError(f"the function's environment lacks {', '.join(missing)}")
        queues = packaged_queues(queues_file or Path(__file__).with_name(QUEUES_FILE), env[QUEUES_DIGEST_VAR].strip())
        return cls(endpoint=endpoint, context=context, secret_arn=env[SECRET_VAR].strip(),
                   vhost=env[VHOST_VAR].strip(), queues=queues, namespace=env[NAMESPACE_VAR].strip())


def packaged_queues(path: Path, digest: str) -> tuple[str, ...]:
    """The queue names of the package's list at ``path``, whose bytes' SHA-256 must be ``digest``."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise PublishError(f"the function's package has no queue list {path.name}: {error}") from None
    if hashlib.sha256(text).hexdigest() != digest:
        raise PublishError(f"{path.name} of the function's package is not the list the messaging layer planned "
                           f"({QUEUES_DIGEST_VAR} {digest}): a deployment under way, or a package changed by hand")
    listed = json.loads(text)
    if not isinstance(listed, list) or not listed or not all(isinstance(name, str) and name for name in listed):
        raise PublishError(f"{path.name} of the function's package is not a JSON list of queue names")
    return tuple(sorted(set(listed)))


def read_queues(settings: Settings, credentials: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The vhost's queues as the management API lists them (name -> object with the fields of METRICS)."""
    columns = ",".join(["name", *METRICS.values()])
    path = f"/api/queues/{urllib.parse.quote(settings.vhost, safe='')}?columns={columns}"
    token = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode()
    request = urllib.request.Request(settings.endpoint + path)
    # Unredirected: urllib's redirect handler copies every other header to wherever a 3xx points (any host, or plain
    # http), and this one carries the monitor's password.
    request.add_unredirected_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS, context=settings.context) as response:
            listed = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise PublishError(f"GET /api/queues/{settings.vhost} answered {error.code} (401: the secret's credentials "
                           "are refused; 401 'not authorised to access virtual host': the user has no permissions "
                           "entry on the vhost)") from None
    except (urllib.error.URLError, TimeoutError) as error:
        raise PublishError(f"the management API at {settings.endpoint} is unreachable: {error}") from None
    if not isinstance(listed, list):
        raise PublishError(f"GET /api/queues/{settings.vhost} answered {type(listed).__name__}, not a list")
    return {str(queue["name"]): queue for queue in listed if isinstance(queue, dict) and "name" in queue}


def metric_data(settings: Settings, listed: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The data points of the queues of ``settings`` found in ``listed`` with their figures, and the problems of
    the others (not listed, or listed without figures).

    A queue listed without its figures gets no data point, never a 0 that would scale its consumer in: the
    broker lists a fresh queue's name only until its next statistics interval, and none at all where its
    management metrics collection is turned off (``management_agent.disable_metrics_collector``)."""
    data: list[dict[str, Any]] = []
    missing: list[str] = []
    for queue in settings.queues:
        found = listed.get(queue)
        if found is None:
            missing.append(f"no queue {queue}")
            continue
        unreported = [field for field in METRICS.values() if not isinstance(found.get(field), int)]
        if unreported:
            missing.append(f"{queue} without {', '.join(unreported)}")
            continue
        dimensions = [{"Name": name, "Value": value} for name, value in zip(DIMENSIONS, (settings.vhost, queue),
                                                                              strict=True)]
        values = {metric: found[field] for metric, field in METRICS.items()} | {IDLE_CONSUMERS: idle_consumers(found)}
        for metric in PUBLISHED_METRICS:
            data.append({"MetricName": metric, "Dimensions": dimensions, "Unit": "Count",
                         "Value": float(values[metric]), "StorageResolution": 60})
    return data, missing


def idle_consumers(queue: dict[str, Any]) -> int:
    """The queue's consumers that hold no message, 0 while any message is ready (a consumer then has work to take:
    none of them counts as idle). One job at a time per consumer (prefetch 1), so a consumer holding one is busy;
    the queue's unacknowledged messages are those consumers' (RabbitMQ counts a delivery unacknowledged until its
    consumer acks it or its channel closes). At least 1 while the queue holds nothing, ready or unacknowledged: no
    task then holds a job, consuming or not (one whose app lost its channel, or has not subscribed yet), so one may
    leave, as an unflagged consumer's does on ``Messages`` 0; at ``min_count`` the scale-in changes nothing."""
    if queue["messages_ready"] > 0:
        return 0
    if queue["messages_unacknowledged"] == 0:
        return max(queue["consumers"], 1)
    return max(queue["consumers"] - queue["messages_unacknowledged"], 0)


def _credentials(client: Any, arn: str) -> dict[str, str]:
    value = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
    if not isinstance(value, dict) or not value.get("username") or not value.get("password"):
        raise PublishError(f"{arn} is not JSON with 'username' and 'password'")
    return {"username": str(value["username"]), "password": str(value["password"])}


def handler(event: dict[str, Any], context: Any, *, secrets: Any = None, cloudwatch: Any = None,
            environ: dict[str, str] | None = None, queues_file: Path | None = None) -> dict[str, Any]:
    """The function's entry point (an EventBridge scheduled event; its content is not used)."""
    settings = Settings.from_environment(environ, queues_file)
    if secrets is None or cloudwatch is None:
        import boto3  # the Lambda runtime ships boto3 (and its botocore)
        from botocore.config import Config

        # botocore's defaults (60 s to connect and to read, 3 attempts) outlast the function's own timeout: a
        # blocked route to Secrets Manager or CloudWatch would end as a bare "Task timed out", not as its error.
        config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=HTTP_TIMEOUT_SECONDS,
                        retries={"mode": "standard", "total_max_attempts": 2})
        secrets = secrets or boto3.client("secretsmanager", config=config)
        cloudwatch = cloudwatch or boto3.client("cloudwatch", config=config)
    data, missing = metric_data(settings, read_queues(settings, _credentials(secrets, settings.secret_arn)))
    for start in range(0, len(data), BATCH):
        cloudwatch.put_metric_data(Namespace=settings.namespace, MetricData=data[start:start + BATCH])
    logger.info("published %d data points of %d queues of %s", len(data), len(settings.queues) - len(missing),
                settings.vhost)
    if missing:
        raise PublishError(f"the broker lists {'; '.join(missing)} in vhost {settings.vhost}")
    return {"published": len(data)}
