"""The queue metrics publisher, run the way Lambda runs it, against moto's Secrets Manager and CloudWatch and a
real RabbitMQ (management plugin, plain http on loopback, allowed by the test-only variable).

The function is loaded from the source text the messaging component ships (:func:`publisher_source`), as a
module of its own, so these tests also prove that text runs without the rest of the repository. The broker's
user is the one the component creates: tag ``management``, permissions on the vhost that match nothing.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import types
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared.components.queue_metrics import (
    HANDLER_MODULE,
    METRICS_NAMESPACE,
    MONITOR_PERMISSIONS,
    MONITOR_TAGS,
    QUEUES_DIGEST_VAR,
    QUEUES_FILE,
    TIMEOUT_SECONDS,
    publisher_source,
    queues_digest,
    queues_document,
)
from shared.rehearse.broker import ADMIN_USER, LocalBroker
from tests.rotation.imports import outside_the_runtime

REGION = "eu-west-1"
PASSWORD = "Monitor-Password-01"


@pytest.fixture(scope="module")
def publisher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    """The shipped source, imported as Lambda imports it (module ``queue_metrics``, nothing of ``shared``), from a
    folder of its own as the package's: the real-broker tests put the package's queue list beside it."""
    source = tmp_path_factory.mktemp("package") / f"{HANDLER_MODULE}.py"
    source.write_text(publisher_source(), encoding="utf-8")
    module = types.ModuleType(HANDLER_MODULE)
    module.__file__ = str(source)
    sys.modules[HANDLER_MODULE] = module  # as an import does: its dataclass resolves its annotations there
    try:
        exec(compile(publisher_source(), str(source), "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[HANDLER_MODULE]


def test_the_shipped_source_imports_only_the_standard_library_and_boto3() -> None:
    assert outside_the_runtime(publisher_source()) == set()


COMPLETE = {"SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "VHOST": "ml-dev",
            QUEUES_DIGEST_VAR: queues_digest(("a.work",)), "NAMESPACE": METRICS_NAMESPACE}


def package(folder: Path, queues: str) -> tuple[dict[str, str], Path]:
    """The package's queue list the component writes for ``queues`` (comma-separated) in ``folder``, and the
    variable naming its digest."""
    names = tuple(queues.split(","))
    path = folder / QUEUES_FILE
    path.write_text(queues_document(names), encoding="utf-8")
    return {QUEUES_DIGEST_VAR: queues_digest(names)}, path


#: MANAGEMENT_ENDPOINT -> why it is refused (the test-only switch is on: it opens plain http to loopback only)
REFUSED_ENDPOINTS = {
    "": "must be the broker's management URL",
    "http://b-1.mq.eu-west-1.on.aws": "plain http",
    "ftp://b-1.mq.eu-west-1.on.aws": "not an https URL",
}


def test_its_aws_calls_fail_within_the_function_s_timeout(publisher: types.ModuleType, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A blocked route to Secrets Manager or CloudWatch ends in that call's error, not in Lambda's bare timeout:
    botocore's defaults (60 s to connect, 60 s to read, 3 attempts) outlast the function's 30 s."""
    configs: dict[str, Any] = {}

    def client(service: str, config: Any = None, **_: Any) -> Any:
        configs[service] = config
        raise RuntimeError("no AWS here")

    monkeypatch.setattr(boto3, "client", client)
    _, queues = package(tmp_path, "a.work")
    env = {**COMPLETE, "MANAGEMENT_ENDPOINT": "https://b-1.mq.eu-west-1.on.aws"}
    with pytest.raises(RuntimeError, match="no AWS here"):
        publisher.handler({}, None, environ=env, queues_file=queues)
    config = configs["secretsmanager"]
    attempts = config.retries["total_max_attempts"]
    worst = attempts * (config.connect_timeout + config.read_timeout)
    assert worst < TIMEOUT_SECONDS, f"one AWS call may take {worst} s, the function has {TIMEOUT_SECONDS} s"


@pytest.mark.parametrize("endpoint", sorted(REFUSED_ENDPOINTS))
def test_the_endpoint_is_https_or_a_tests_loopback(publisher: types.ModuleType, endpoint: str, tmp_path: Path) -> None:
    _, queues = package(tmp_path, "a.work")
    environ = {**COMPLETE, "MANAGEMENT_ENDPOINT": endpoint, "QUEUE_METRICS_TEST_ONLY_ALLOW_HTTP": "1"}
    with pytest.raises(publisher.PublishError, match=REFUSED_ENDPOINTS[endpoint]):
        publisher.Settings.from_environment(environ, queues)
    loopback = {**COMPLETE, "MANAGEMENT_ENDPOINT": "http://127.0.0.1:15672"}
    with pytest.raises(publisher.PublishError, match="plain http"):  # without the switch, not even loopback
        publisher.Settings.from_environment(loopback, queues)


def test_a_setting_left_out_is_named(publisher: types.ModuleType) -> None:
    with pytest.raises(publisher.PublishError, match="lacks SECRET_ARN, VHOST, QUEUES_SHA256, NAMESPACE"):
        publisher.Settings.from_environment({"MANAGEMENT_ENDPOINT": "https://b-1.mq.eu-west-1.on.aws"})


def test_a_queue_listed_without_figures_gets_no_data_point_never_a_false_zero(publisher: types.ModuleType,
                                                                              tmp_path: Path) -> None:
    """A fresh queue until the broker's next statistics interval, or every queue of a broker whose management
    metrics collection is off: a 0 there would scale its consumer in (or never out)."""
    digest, queues = package(tmp_path, "a.work,b.work")
    settings = publisher.Settings.from_environment({**COMPLETE, **digest, "MANAGEMENT_ENDPOINT": "https://b-1.on.aws"},
                                                   queues)
    listed = {"a.work": {"name": "a.work", "messages_ready": 7, "messages_unacknowledged": 1, "messages": 8,
                         "consumers": 2},
              "b.work": {"name": "b.work"}}
    data, problems = publisher.metric_data(settings, listed)
    assert {(d["MetricName"], d["Value"]) for d in data} == {
        ("MessagesReady", 7.0), ("MessagesUnacknowledged", 1.0), ("Messages", 8.0), ("Consumers", 2.0),
        ("IdleConsumers", 0.0)}
    assert {d["Dimensions"][1]["Value"] for d in data} == {"a.work"}
    assert problems == ["b.work without messages_ready, messages_unacknowledged, messages, consumers"]


def test_a_job_in_progress_keeps_the_queue_s_messages_above_zero(publisher: types.ModuleType, tmp_path: Path) -> None:
    """No message waiting, one held unacknowledged by a working task: MessagesReady is 0, Messages (what a consumer
    is scaled in on) is not."""
    _, queues = package(tmp_path, "a.work")
    settings = publisher.Settings.from_environment({**COMPLETE, "MANAGEMENT_ENDPOINT": "https://b-1.on.aws"}, queues)
    listed = {"a.work": {"name": "a.work", "messages_ready": 0, "messages_unacknowledged": 1, "messages": 1,
                         "consumers": 1}}
    data, problems = publisher.metric_data(settings, listed)
    values = {d["MetricName"]: d["Value"] for d in data}
    assert (values["MessagesReady"], values["Messages"], values["IdleConsumers"], problems) == (0.0, 1.0, 0.0, [])


@pytest.mark.parametrize(("ready", "unacked", "consumers", "idle"), [
    (0, 1, 3, 2),  # one task works, two have nothing: two may leave
    (0, 3, 3, 0),  # every consumer holds a job
    (0, 0, 0, 1),  # nothing held by anyone: every task is idle, consuming or not (as Messages 0 scales in)
    (0, 0, 2, 2),  # nothing held, two consumers
    (2, 1, 3, 0),  # messages wait: the consumers without a job are about to take them, none is idle
    (0, 5, 2, 0),  # more unacknowledged than consumers (a consumer's channel closing): never below 0
])
def test_idle_consumers_count_the_consumers_holding_nothing_while_nothing_is_ready(
        publisher: types.ModuleType, tmp_path: Path, ready: int, unacked: int, consumers: int, idle: int) -> None:
    """What a consumer that protects its working tasks is scaled in on (one job per consumer, prefetch 1). A queue
    that holds nothing, ready or unacknowledged, counts at least 1 even without a consumer: no task then holds a job,
    so one may leave, as an unflagged consumer's does on Messages 0; a task whose app lost its consumer (a closed
    channel, a failed reconnect, a consumer-timeout) or never started one is otherwise never scaled in."""
    _, queues = package(tmp_path, "a.work")
    settings = publisher.Settings.from_environment({**COMPLETE, "MANAGEMENT_ENDPOINT": "https://b-1.on.aws"}, queues)
    listed = {"a.work": {"name": "a.work", "messages_ready": ready, "messages_unacknowledged": unacked,
                         "messages": ready + unacked, "consumers": consumers}}
    data, _ = publisher.metric_data(settings, listed)
    assert {d["MetricName"]: d["Value"] for d in data}["IdleConsumers"] == float(idle)


def test_https_verifies_the_certificate(publisher: types.ModuleType, tmp_path: Path) -> None:
    import ssl

    _, queues = package(tmp_path, "a.work")
    settings = publisher.Settings.from_environment({**COMPLETE, "MANAGEMENT_ENDPOINT": "https://b-1.on.aws/"}, queues)
    assert settings.endpoint == "https://b-1.on.aws"
    assert settings.context.verify_mode == ssl.CERT_REQUIRED and settings.context.check_hostname


def test_the_monitor_s_password_never_follows_a_redirect(publisher: types.ModuleType, tmp_path: Path) -> None:
    # urllib copies a request's headers to wherever a 3xx points (another host, plain http): the Authorization header
    # (the monitor's password, Basic) must stay with the endpoint the function was configured with
    from tests.loopback import RedirectRecorder

    _, queues = package(tmp_path, "a.work")
    with RedirectRecorder(b"[]") as servers:
        settings = publisher.Settings.from_environment(
            {**COMPLETE, "MANAGEMENT_ENDPOINT": servers.url, publisher.ALLOW_HTTP_VAR: "1"}, queues)
        assert publisher.read_queues(settings, {"username": "monitor", "password": PASSWORD}) == {}
    token = base64.b64encode(f"monitor:{PASSWORD}".encode()).decode()
    assert servers.seen == {"first": [f"Basic {token}"], "second": [None]}


# -- on a real RabbitMQ ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as started:
        yield started


@pytest.fixture
def vhost(broker: LocalBroker) -> Iterator[str]:
    """A vhost with two quorum work queues, three messages in the first; the component's user on it."""
    name = f"ml-{uuid.uuid4().hex[:6]}"
    broker.management_api("PUT", f"/api/vhosts/{name}", {})
    for queue in ("a.work", "b.work"):
        broker.management_api("PUT", f"/api/queues/{name}/{queue}",
                              {"durable": True, "arguments": {"x-queue-type": "quorum"}})
    for number in range(3):
        broker.management_api("POST", f"/api/exchanges/{name}/amq.default/publish", {
            "properties": {}, "routing_key": "a.work", "payload": f"job {number}", "payload_encoding": "string"})
    broker.management_api("PUT", f"/api/users/{name}-monitor", {"password": PASSWORD, "tags": ",".join(MONITOR_TAGS)})
    broker.management_api("PUT", f"/api/permissions/{name}/{name}-monitor", dict(MONITOR_PERMISSIONS))
    yield name
    broker.management_api("DELETE", f"/api/vhosts/{name}")
    broker.management_api("DELETE", f"/api/users/{name}-monitor")


@pytest.fixture
def clients(moto_aws: None) -> tuple[Any, Any]:
    return boto3.client("secretsmanager", region_name=REGION), boto3.client("cloudwatch", region_name=REGION)


def environ(publisher: types.ModuleType, broker: LocalBroker, vhost: str, secret_arn: str,
            queues: str) -> dict[str, str]:
    """The function's environment, and ``queues`` in its package's list (beside the module, where it reads it)."""
    digest, _ = package(Path(str(publisher.__file__)).parent, queues)
    return {"MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{broker.management_port}",
            "QUEUE_METRICS_TEST_ONLY_ALLOW_HTTP": "1", "SECRET_ARN": secret_arn, "VHOST": vhost, **digest,
            "NAMESPACE": METRICS_NAMESPACE}


def secret(client: Any, username: str, password: str = PASSWORD) -> str:
    created = client.create_secret(Name=f"platform/test/monitor/{uuid.uuid4().hex[:8]}",
                                   SecretString=json.dumps({"username": username, "password": password}))
    return str(created["ARN"])


def published(cloudwatch: Any) -> dict[tuple[str, str], float]:
    """(metric, queue) -> the value moto stored (one run: one data point each)."""
    values: dict[tuple[str, str], float] = {}
    for metric in cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"]:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        stats = cloudwatch.get_metric_statistics(
            Namespace=METRICS_NAMESPACE, MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
            StartTime=time.time() - 600, EndTime=time.time() + 60, Period=60, Statistics=["Maximum"])
        values[(metric["MetricName"], dimensions["Queue"])] = max(p["Maximum"] for p in stats["Datapoints"])
    return values


def wait_for_figures(publisher: types.ModuleType, settings: Any, queue: str, ready: int) -> None:
    """RabbitMQ computes a queue's figures every statistics interval (5 s by default)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = publisher.read_queues(settings, {"username": f"{settings.vhost}-monitor", "password": PASSWORD})
        if listed.get(queue, {}).get("messages_ready") == ready:
            return
        time.sleep(1)
    raise AssertionError(f"{queue} never listed {ready} ready messages")


def counted_environ(publisher: types.ModuleType, broker: LocalBroker, vhost: str, secrets: Any,
                    queues: str) -> dict[str, str]:
    """The function's environment with the vhost's monitor user, once the broker counts a.work's three messages."""
    env = environ(publisher, broker, vhost, secret(secrets, f"{vhost}-monitor"), queues)
    wait_for_figures(publisher, publisher.Settings.from_environment(env), "a.work", 3)
    return env


@pytest.mark.broker
def test_each_queue_s_backlog_is_published_with_its_vhost_and_queue(
        publisher: types.ModuleType, broker: LocalBroker, vhost: str, clients: tuple[Any, Any]) -> None:
    secrets, cloudwatch = clients
    env = counted_environ(publisher, broker, vhost, secrets, "a.work,b.work")
    result = publisher.handler({}, None, secrets=secrets, cloudwatch=cloudwatch, environ=env)
    assert result == {"published": 10}
    assert published(cloudwatch) == {
        ("MessagesReady", "a.work"): 3.0, ("MessagesUnacknowledged", "a.work"): 0.0, ("Messages", "a.work"): 3.0,
        ("Consumers", "a.work"): 0.0, ("IdleConsumers", "a.work"): 0.0,
        ("MessagesReady", "b.work"): 0.0, ("MessagesUnacknowledged", "b.work"): 0.0, ("Messages", "b.work"): 0.0,
        ("Consumers", "b.work"): 0.0, ("IdleConsumers", "b.work"): 1.0}
    (metric, *_) = cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE, MetricName="MessagesReady")["Metrics"]
    assert {d["Name"] for d in metric["Dimensions"]} == {"VirtualHost", "Queue"}
    assert {d["Value"] for d in metric["Dimensions"] if d["Name"] == "VirtualHost"} == {vhost}


@pytest.mark.broker
def test_a_queue_the_broker_does_not_list_fails_the_run_after_the_others_are_published(
        publisher: types.ModuleType, broker: LocalBroker, vhost: str, clients: tuple[Any, Any]) -> None:
    secrets, cloudwatch = clients
    env = counted_environ(publisher, broker, vhost, secrets, "a.work,gone.work")
    with pytest.raises(publisher.PublishError, match=r"lists no queue gone\.work in vhost"):
        publisher.handler({}, None, secrets=secrets, cloudwatch=cloudwatch, environ=env)
    assert {queue for _, queue in published(cloudwatch)} == {"a.work"}, "no false 0 for the missing queue"


@pytest.mark.broker
def test_refused_credentials_fail_the_run_and_publish_nothing(
        publisher: types.ModuleType, broker: LocalBroker, vhost: str, clients: tuple[Any, Any]) -> None:
    secrets, cloudwatch = clients
    env = environ(publisher, broker, vhost, secret(secrets, f"{vhost}-monitor", "Wrong-Password-01"), "a.work")
    with pytest.raises(publisher.PublishError, match="answered 401"):
        publisher.handler({}, None, secrets=secrets, cloudwatch=cloudwatch, environ=env)
    assert not cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"]


@pytest.mark.broker
def test_the_user_needs_its_permissions_entry_on_the_vhost(
        publisher: types.ModuleType, broker: LocalBroker, vhost: str, clients: tuple[Any, Any]) -> None:
    # Even the `monitoring` tag lists no queue of a vhost the user has no permissions entry on.
    secrets, cloudwatch = clients
    broker.management_api("DELETE", f"/api/permissions/{vhost}/{vhost}-monitor")
    env = environ(publisher, broker, vhost, secret(secrets, f"{vhost}-monitor"), "a.work")
    with pytest.raises(publisher.PublishError, match="answered 401"):
        publisher.handler({}, None, secrets=secrets, cloudwatch=cloudwatch, environ=env)


def _as_monitor(broker: LocalBroker, vhost: str, method: str, path: str, body: Any = None) -> tuple[int, str]:
    token = base64.b64encode(f"{vhost}-monitor:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{broker.management_port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.broker
def test_the_user_reads_figures_but_cannot_take_publish_or_configure(broker: LocalBroker, vhost: str) -> None:
    """Least privilege: the management API refuses what the user's permissions ("^$") and tag do not allow."""
    assert _as_monitor(broker, vhost, "GET", f"/api/queues/{vhost}")[0] == 200
    refused = {
        "publish": ("POST", f"/api/exchanges/{vhost}/amq.default/publish",
                    {"properties": {}, "routing_key": "a.work", "payload": "x", "payload_encoding": "string"}),
        "take": ("POST", f"/api/queues/{vhost}/a.work/get", {"count": 1, "ackmode": "ack_requeue_false",
                                                             "encoding": "auto"}),
        "declare": ("PUT", f"/api/queues/{vhost}/c.work", {"durable": True}),
        "list users": ("GET", "/api/users", None),
        "see the nodes": ("GET", "/api/nodes", None),  # the management tag, not monitoring
    }
    answers = {what: _as_monitor(broker, vhost, *call) for what, call in refused.items()}
    assert all(status >= 400 for status, _ in answers.values()), answers
    assert all("ACCESS_REFUSED" in answers[what][1] for what in ("publish", "take")), answers
    assert "Not monitor user" in answers["see the nodes"][1]
    queue = broker.management_api("GET", f"/api/queues/{vhost}/a.work")
    assert queue.get("messages", 3) == 3, "nothing was published or taken"
    assert broker.management_api("GET", f"/api/queues/{vhost}") and all(
        q["name"] != "c.work" for q in broker.management_api("GET", f"/api/queues/{vhost}"))


@pytest.mark.broker
def test_idle_consumers_count_consumers_not_channels_and_a_prefetched_job_as_held(
        publisher: types.ModuleType, broker: LocalBroker, vhost: str) -> None:
    """The broker's own figures: ``consumers`` counts each basic.consume (two on one channel are 2), and the one
    message a prefetch-1 consumer holds is unacknowledged, not ready. So a task running two consumers shows one
    idle while it works, which is why the contract is one consumer per task (README, Autoscaling)."""
    broker.management_api("POST", f"/api/exchanges/{vhost}/amq.default/publish", {
        "properties": {}, "routing_key": "b.work", "payload": "job", "payload_encoding": "string"})
    broker.management_api("PUT", f"/api/permissions/{vhost}/{ADMIN_USER}",
                          {"configure": "", "write": "", "read": ".*"})
    connection = broker.connect(ADMIN_USER, broker.admin_password, vhost)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)  # per consumer (global=false)
        delivered: list[int] = []
        for _ in range(2):
            channel.basic_consume("b.work", lambda _ch, method, _props, _body: delivered.append(method.delivery_tag))
        settings = publisher.Settings.from_environment(environ(publisher, broker, vhost, "arn:x", "a.work,b.work"))
        deadline, figures = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.5)
            figures = publisher.read_queues(settings, {"username": f"{vhost}-monitor", "password": PASSWORD})["b.work"]
            if figures.get("consumers") == 2 and figures.get("messages_unacknowledged") == 1:
                break
        assert (len(delivered), figures["messages_ready"], figures["messages_unacknowledged"],
                figures["consumers"]) == (1, 0, 1, 2)
        assert publisher.idle_consumers(figures) == 1
    finally:
        connection.close()
