"""On a real RabbitMQ (one throwaway node for the module): the synthesized dev topology delivers every
route the catalog declares and refuses everything else; breaking a permission, a binding, dead-lettering
or the catalog makes the rehearsal fail with a message naming what broke.

These are the checks ``nox -s rehearse -- dev`` runs; the broker is installed when missing (as root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pika
import pika.exceptions
import pytest
import yaml

from shared import REPO_ROOT
from shared.amazonmq import broker_consumer_timeout_ms
from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.rehearse import build_dir, rehearse, synthesized_topology
from shared.rehearse.broker import LocalBroker, processes_using
from shared.rehearse.checks import RehearsalReport, run_checks
from shared.rehearse.definitions import Topology, dumps_definitions, to_definitions
from tests.spec_envs import SPEC_CATALOG

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker(consumer_timeout_ms=broker_consumer_timeout_ms(load_catalog(), "4.2")) as started:
        yield started


@pytest.fixture(scope="module")
def topology() -> Topology:
    return synthesized_topology("dev")


@pytest.fixture(scope="module")
def report(broker: LocalBroker, topology: Topology) -> RehearsalReport:
    return rehearse("dev", broker=broker, topology=topology)


def _catalog_keys(exchange: str) -> set[str]:
    """Every routing key the catalog names on ``exchange`` ("requests" or "events"), published or consumed."""
    return {key for spec in load_catalog()
            for key in (*getattr(spec.publishes, exchange), *getattr(spec.consumes, exchange))}


def variant(topology: Topology, name: str) -> Topology:
    """``topology`` in a vhost of its own, so a broken copy never disturbs the others on the shared node."""
    return topology.with_vhost(f"ml-dev-{name}")


def test_the_dev_topology_passes_every_check(report: RehearsalReport) -> None:
    assert report.failures() == []
    assert report.ok


def test_every_catalog_route_delivers_to_exactly_its_queues(report: RehearsalReport) -> None:
    catalog_routes = {(p, k, tuple(sorted(q))) for p, _, k, q in load_catalog().routes()}
    assert {(r.publisher, r.routing_key, r.expected) for r in report.routes} == catalog_routes
    assert all(r.delivered == r.expected for r in report.routes)


def test_each_service_reads_only_its_own_queue_and_writes_only_its_exchanges(report: RehearsalReport) -> None:
    catalog = load_catalog()
    reads = {(a.service, a.target) for a in report.access if a.action == "read" and a.allowed}
    assert reads == {(spec.name, spec.queue) for spec in catalog if spec.queue}
    writes = {(a.service, a.target) for a in report.access if a.action == "write" and a.allowed}
    assert writes == {(spec.name, f"ml.{exchange}") for spec in catalog for exchange, _ in spec.publishes.items()}
    refused = [a for a in report.access if not a.expected_allowed]
    assert refused and all(a.allowed is False and a.code == 403 for a in refused)


def test_services_can_neither_declare_nor_delete_nor_rebind(report: RehearsalReport) -> None:
    for spec in load_catalog():
        actions = {a.row for a in report.access if a.service == spec.name and a.allowed is False}
        assert {"declare a queue", "declare an exchange", "delete its queue",
                "bind its queue to ml.events with '#'", "write (default exchange)"} <= actions, spec.name


def test_a_rejected_message_lands_in_the_dead_letter_queue(report: RehearsalReport) -> None:
    consumers = {spec.name for spec in load_catalog() if spec.queue}
    assert {d.service for d in report.dead_letters if d.ok} == consumers


def test_a_too_broad_write_permission_is_reported_as_the_refusal_it_breaks(
    broker: LocalBroker, topology: Topology,
) -> None:
    broken = variant(topology, "broad-write")
    broken = replace(broken, permissions=tuple(
        replace(p, write=r"^ml\..*$") if p.user == broken.credentials["gateway"].username else p
        for p in broken.permissions))
    failures = rehearse("dev", broker=broker, topology=broken).failures()
    (gateway,) = [spec for spec in load_catalog() if spec.name == "gateway"]
    assert not gateway.publishes.events
    assert failures == [
        "refusal broke: gateway could write ml.dead-letter (expected ACCESS_REFUSED)",
        "refusal broke: gateway could write ml.events (expected ACCESS_REFUSED)",
        # gateway has no topic permission on ml.events (it publishes no events), so nothing else stops it there
        "refusal broke: gateway could write an undeclared key to ml.events (expected ACCESS_REFUSED)",
        # every event key of the catalog (the shipped ones: data.preprocessed, inference.completed, model.trained)
        *(f"refusal broke: gateway could write '{key}' to ml.events (expected ACCESS_REFUSED)"
          for key in sorted(_catalog_keys("events"))),
    ]


def test_each_publisher_is_refused_every_routing_key_it_does_not_declare_on_either_exchange(
    report: RehearsalReport,
) -> None:
    """The catalog's `publishes` is enforced on ml.requests as on ml.events: gateway may publish preprocess and training
    requests, and is refused inference.request (it would feed inference.work); preprocess is refused the others'."""
    catalog = load_catalog()
    for exchange in ("requests", "events"):
        keys = _catalog_keys(exchange)
        for spec in catalog:
            for key in sorted(keys):
                row = f"write '{key}' to ml.{exchange}"
                (probe,) = [a for a in report.access if a.service == spec.name and a.row == row]
                declared = key in getattr(spec.publishes, exchange)
                assert (probe.allowed, probe.ok) == (declared, True), (spec.name, exchange, key, probe)
                if not declared:
                    assert probe.code == 403, (spec.name, exchange, key)
    refused = {(a.service, a.row) for a in report.access if a.allowed is False}
    assert ("gateway", "write 'inference.request' to ml.requests") in refused
    assert ("preprocess", "write 'training.request' to ml.requests") in refused
    assert ("gateway", "write an undeclared key to ml.requests") in refused


def test_a_direct_requests_exchange_lets_publishers_inject_each_others_requests(
    broker: LocalBroker, topology: Topology,
) -> None:
    """The topology before the fix: ml.requests direct, topic permissions on ml.events only. The broker checks no
    routing key there, so each request publisher could publish every request key (and the declared ones route)."""
    old = variant(topology, "direct-requests")
    requests = old.exchange_for("requests")
    old = replace(old, exchanges=tuple(replace(e, type="direct") if e.name == requests else e for e in old.exchanges),
                  topic_permissions=tuple(p for p in old.topic_permissions if p.exchange != requests))
    report = rehearse("dev", broker=broker, topology=old)
    assert all(route.ok for route in report.routes)
    # the shipped catalog's publishers: gateway (then inference.request) and preprocess (preprocess.request,
    # training.request); a service a user adds that publishes requests brings its own rows
    assert report.failures() == [
        row for spec in sorted((spec for spec in load_catalog() if spec.publishes.requests), key=lambda s: s.name)
        for row in (
            f"refusal broke: {spec.name} could write an undeclared key to ml.requests (expected ACCESS_REFUSED)",
            *(f"refusal broke: {spec.name} could write '{key}' to ml.requests (expected ACCESS_REFUSED)"
              for key in sorted(_catalog_keys("requests") - set(spec.publishes.requests))))
    ]


def _publish_as(broker: LocalBroker, topology: Topology, service: str, exchange: str, key: str) -> int | None:
    """Publish one persistent, confirmed message as ``service``: None when the broker took it, else the reply code
    that closed the channel (403 ACCESS_REFUSED, 404 NOT_FOUND)."""
    credentials = topology.credentials[service]
    connection = broker.connect(credentials.username, credentials.password, credentials.vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, key, b'{"upgrade": true}', pika.BasicProperties(delivery_mode=2))
        return None
    except pika.exceptions.ChannelClosedByBroker as error:
        return int(error.reply_code)
    finally:
        connection.close()


def _depths(broker: LocalBroker, topology: Topology) -> dict[str, int]:
    """Each queue's ready messages, as the broker counts them now (a passive declare; the management API's counts
    lag by its statistics interval)."""
    connection = broker.admin_connection(topology.vhost)
    try:
        channel = connection.channel()
        return {queue: int(channel.queue_declare(queue, passive=True).method.message_count)
                for queue in topology.queue_names()}
    finally:
        connection.close()


def test_upgrading_a_deployed_direct_requests_exchange_keeps_the_queued_work_and_closes_the_hole(
    broker: LocalBroker, topology: Topology,
) -> None:
    """A deployed env's next `up`, step by step as the provider runs it on the broker: RabbitMQ refuses the new type
    on the existing exchange (so it is delete_before_replace), the bindings and the exchange go, publishes in that gap
    fail with NOT_FOUND, then the topic exchange, its bindings and the topic permissions come. The queues are not
    touched: the work they held is all still there, and from then on only the catalog's keys are accepted."""
    new = variant(topology, "upgrade")
    requests = new.exchange_for("requests")
    old = replace(new, exchanges=tuple(replace(e, type="direct") if e.name == requests else e for e in new.exchanges),
                  topic_permissions=tuple(p for p in new.topic_permissions if p.exchange != requests))
    broker.import_definitions(to_definitions(old))
    vhost = quote(new.vhost, safe="")
    admin = broker.admin_connection(new.vhost).channel()
    for queue in new.queue_names():
        admin.queue_purge(queue)
    admin.close()
    assert _publish_as(broker, old, "gateway", requests, "training.request") is None
    assert _publish_as(broker, old, "gateway", requests, "inference.request") is None, "the hole before the upgrade"
    before = _depths(broker, new)
    assert before["training.work"] == 1 and before["inference.work"] == 1

    exchange_path = f"/api/exchanges/{vhost}/{quote(requests, safe='')}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        broker.management_api("PUT", exchange_path, {"type": "topic", "durable": True, "auto_delete": False})
    assert refused.value.code == 400, "inequivalent arg 'type': a replacement must delete the old exchange first"
    assert broker.management_api("GET", exchange_path)["type"] == "direct"

    for binding in broker.management_api("GET", f"/api/exchanges/{vhost}/{quote(requests, safe='')}/bindings/source"):
        broker.management_api("DELETE", f"/api/bindings/{vhost}/e/{quote(requests, safe='')}/q/"
                                        f"{quote(binding['destination'], safe='')}/{quote(binding['properties_key'])}")
    # Between the bindings' delete and their create a publish is confirmed and routed nowhere: dropped, unless the
    # publisher sets `mandatory` (then the broker returns it).
    assert _publish_as(broker, old, "gateway", requests, "training.request") is None
    assert _depths(broker, new) == before
    broker.management_api("DELETE", exchange_path)
    assert _publish_as(broker, old, "gateway", requests, "training.request") == 404, "NOT_FOUND while it is absent"

    broker.management_api("PUT", exchange_path, {"type": "topic", "durable": True, "auto_delete": False})
    for binding in (b for b in new.bindings if b.source == requests):
        broker.management_api("POST", f"/api/bindings/{vhost}/e/{quote(requests, safe='')}/q/"
                                      f"{quote(binding.destination, safe='')}", {"routing_key": binding.routing_key})
    for permission in (p for p in new.topic_permissions if p.exchange == requests):
        broker.management_api("PUT", f"/api/topic-permissions/{vhost}/{quote(permission.user, safe='')}",
                              {"exchange": permission.exchange, "write": permission.write, "read": permission.read})

    assert _depths(broker, new) == before, "the work queues keep every message they held"
    assert _publish_as(broker, new, "gateway", requests, "inference.request") == 403
    assert _publish_as(broker, new, "preprocess", requests, "training.request") == 403
    assert _publish_as(broker, new, "gateway", requests, "training.request") is None
    assert _publish_as(broker, new, "preprocess", requests, "inference.request") is None
    after = _depths(broker, new)
    assert (after["training.work"], after["inference.work"]) == (2, 2)
    # The upgraded vhost, as it is (nothing imported again), passes every check a fresh deploy passes.
    assert run_checks(broker, new, load_catalog(), "dev").failures() == []


def test_a_later_delete_before_replace_of_an_exchange_leaves_its_users_topic_permissions_in_force(
    broker: LocalBroker, topology: Topology,
) -> None:
    """The TopicPermissions resources read the exchanges' names but are not replaced with them (their `permissions`
    is not ForceNew, so the engine's dependent-replacement diff plans an update, and the name comes back the same: no
    step at all). That holds only because RabbitMQ keeps a topic permission when its exchange is deleted and honours
    it on the exchange of that name created again; were it dropped with the exchange, every later replacement of an
    exchange would leave its publishers any key while the state still lists the permission."""
    replaced = variant(topology, "replaced-exchanges")
    broker.import_definitions(to_definitions(replaced))
    vhost = quote(replaced.vhost, safe="")
    def topic_permissions() -> list[tuple[str, str, str, str]]:
        return sorted((p["user"], p["exchange"], p["write"], p["read"])
                      for p in broker.management_api("GET", f"/api/vhosts/{vhost}/topic-permissions"))

    before = topic_permissions()
    for name in (replaced.exchange_for("requests"), replaced.exchange_for("events")):
        exchange = next(e for e in replaced.exchanges if e.name == name)
        path = f"/api/exchanges/{vhost}/{quote(name, safe='')}"
        broker.management_api("DELETE", path)  # the provider's delete; RabbitMQ drops the bindings with it
        broker.management_api("PUT", path, {"type": exchange.type, "durable": True, "auto_delete": False})
        for binding in (b for b in replaced.bindings if b.source == name):
            broker.management_api("POST", f"/api/bindings/{vhost}/e/{quote(name, safe='')}/q/"
                                          f"{quote(binding.destination, safe='')}",
                                  {"routing_key": binding.routing_key})
    assert topic_permissions() == before
    assert before == sorted((p.user, p.exchange, p.write, p.read) for p in replaced.topic_permissions)
    assert run_checks(broker, replaced, load_catalog(), "dev").failures() == []


def test_a_too_broad_read_permission_is_reported(broker: LocalBroker, topology: Topology) -> None:
    broken = variant(topology, "broad-read")
    broken = replace(broken, permissions=tuple(
        replace(p, read=r"^(inference\.work|gateway\.work)$")
        if p.user == broken.credentials["inference"].username else p for p in broken.permissions))
    assert rehearse("dev", broker=broker, topology=broken).failures() == [
        "refusal broke: inference could read gateway.work (expected ACCESS_REFUSED)"]


def test_a_missing_binding_is_reported_as_the_route_it_breaks(broker: LocalBroker, topology: Topology) -> None:
    broken = variant(topology, "no-binding")
    broken = replace(broken, bindings=tuple(b for b in broken.bindings if b.routing_key != "training.request"))
    failures = rehearse("dev", broker=broker, topology=broken).failures()
    assert len(failures) == 1
    assert failures[0].startswith("route broke: gateway -> ml.requests 'training.request': the catalog says "
                                  "training.work, delivered to no queue")


def test_a_queue_whose_policy_does_not_dead_letter_is_reported(broker: LocalBroker, topology: Topology) -> None:
    broken = variant(topology, "no-dlx")
    broken = replace(broken, policies=tuple(
        replace(p, definition={k: v for k, v in p.definition.items() if not k.startswith("dead-letter")})
        if p.name == "queue-training.work" else p for p in broken.policies))
    failures = rehearse("dev", broker=broker, topology=broken).failures()
    assert failures == ["dead-lettering broke: a message training rejected from training.work: "
                        "it did not land in training.dlq (messages are in: no queue)"]


def test_changing_ttl_and_limit_applies_to_the_existing_queue_and_keeps_its_messages(report: RehearsalReport) -> None:
    (change,) = report.policy_changes
    assert change.ok, change.problem
    assert change.queue == next(spec.queue for spec in load_catalog() if spec.queue)
    assert change.kept == 3
    assert "message-ttl 129600000 -> 259200000" in change.change and "max-length 100000 -> 3" in change.change


def test_settings_as_queue_arguments_are_reported_as_a_policy_change_that_cannot_apply(
    broker: LocalBroker, topology: Topology,
) -> None:
    """The layout before policies: TTL, limit and dead-lettering as arguments of the queue, no policy."""
    broken = variant(topology, "arguments")
    old_style = {"x-queue-type": "quorum", "x-message-ttl": 3600000, "x-max-length": 100000,
                 "x-dead-letter-exchange": "ml.dead-letter", "x-dead-letter-routing-key": "gateway.work"}
    broken = replace(broken, queues=tuple(replace(q, arguments=old_style) if q.name == "gateway.work" else q
                                          for q in broken.queues),
                     policies=tuple(p for p in broken.policies if p.name != "queue-gateway.work"))
    failures = rehearse("dev", broker=broker, topology=broken).failures()
    assert failures == ["policy change broke: gateway.work (-): no policy applies to it",
                        "consumer timeout broke: gateway's gateway.work: the policy that applies to it (none) declares "
                        "consumer-timeout None, the catalog says 1800000 (max_job_seconds, or Amazon MQ's 30 minutes "
                        "without one)"]
    with_policy = replace(broken, policies=topology.with_vhost("ml-dev-arguments").policies)
    failures = rehearse("dev", broker=broker, topology=variant(with_policy, "arguments-2")).failures()
    assert len(failures) == 1 and failures[0].startswith("policy change broke: gateway.work (message-ttl")
    assert "its arguments fix x-dead-letter-exchange" in failures[0]


def test_a_catalog_route_the_deployed_topology_lacks_is_reported(
    broker: LocalBroker, topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["gateway"]["consumes"]["events"].append("data.preprocessed")
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    # The catalog now says gateway also hears data.preprocessed; the deployed topology (synthesized
    # from the old catalog) does not bind it.
    failures = rehearse("dev", broker=broker, topology=variant(topology, "stale"), catalog=load_catalog()).failures()
    assert len(failures) == 1
    assert failures[0].startswith("route broke: preprocess -> ml.events 'data.preprocessed': the catalog says "
                                  "gateway.work, training.work, delivered to training.work")


def test_a_service_whose_secret_does_not_match_its_user_cannot_log_in(broker: LocalBroker, topology: Topology) -> None:
    broken = variant(topology, "bad-secret")
    broken = replace(broken, credentials={
        **broken.credentials, "training": replace(broken.credentials["training"], password="not-the-password")})
    failures = rehearse("dev", broker=broker, topology=broken).failures()
    assert failures[0].startswith("credentials broke: training cannot log in as ml-dev-training")


def test_the_cli_rehearses_dev_prints_the_matrix_writes_definitions_and_leaves_nothing_running(
    broker: LocalBroker, topology: Topology,
) -> None:
    before = set(_rehearsal_processes()) - set(processes_using(broker.directory))  # type: ignore[arg-type]
    result = subprocess.run([sys.executable, "-m", "shared.rehearse", "dev"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Access matrix" in result.stdout and "rehearsal of dev passed" in result.stdout
    assert "Consumer timeouts" in result.stdout
    if broker.version() < (3, 12):
        assert "runs differently from the deployed broker" in result.stdout
    assert "refused" in result.stdout and "allowed" in result.stdout
    written = (build_dir("dev") / "rabbitmq-definitions.json").read_text()
    assert written == dumps_definitions(to_definitions(topology))
    credentials = json.loads((build_dir("dev") / "rabbitmq-credentials.json").read_text())
    assert set(credentials) == set(topology.credentials)
    after = set(_rehearsal_processes()) - set(processes_using(broker.directory))  # type: ignore[arg-type]
    assert after <= before, "the CLI left broker processes behind"


def _rehearsal_processes() -> list[int]:
    """Pids of our descendants whose command line names a rehearsal broker directory.

    Only descendants: other sessions on the machine run rehearsal brokers of their own. The broker
    fixture made this process a child subreaper, so whatever the CLI leaves behind is re-parented here.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"rehearse-rabbitmq-" in (entry / "cmdline").read_bytes() and _descends_from_us(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            status = (Path("/proc") / str(pid) / "status").read_text()
        except OSError:
            return False
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    return False


def test_stopping_the_broker_ends_every_process_it_started() -> None:
    local = LocalBroker()
    local.start()
    directory = local.directory
    assert directory is not None and processes_using(directory), "the node runs from its own directory"
    server, epmd = local._server, local._epmd
    assert server is not None and epmd is not None
    local.stop()
    assert server.poll() is not None and epmd.poll() is not None
    assert processes_using(directory) == [] and not directory.exists()


def test_the_local_broker_runs_with_the_consumer_timeout_the_env_broker_gets(broker: LocalBroker) -> None:
    # RabbitMQ 3.10 knows the broker-wide consumer_timeout of rabbitmq.conf, the key Amazon MQ's configuration sets.
    assert broker.running_consumer_timeout_ms() == 1_800_000


def test_each_work_queue_declares_its_consumer_timeout_and_a_node_that_refuses_the_key_says_so(
        broker: LocalBroker, report: RehearsalReport) -> None:
    timeouts = {(t.queue, t.expected, t.declared) for t in report.consumer_timeouts}
    shipped = {("gateway.work", 1_800_000, 1_800_000), ("preprocess.work", 1_800_000, 1_800_000),
               ("inference.work", 1_800_000, 1_800_000), ("training.work", 21_600_000, 21_600_000)}
    # and a consumer a user adds to the catalog: its own queue's timeout
    added = {(spec.queue, spec.queue_consumer_timeout_ms, spec.queue_consumer_timeout_ms) for spec in load_catalog()
             if spec.queue and spec.queue not in {queue for queue, _, _ in shipped}}
    assert timeouts == shipped | added
    assert all(t.ok for t in report.consumer_timeouts)
    if broker.version() < (3, 12):  # Debian's 3.10: the key is left out there, and the report says so
        assert {t.applied for t in report.consumer_timeouts} == {None}
        assert len(report.divergences) == len(timeouts)
        assert "policy queue-training.work: consumer-timeout 21600000 left out" in "\n".join(report.divergences)
    else:  # a node that knows the key applies it
        assert {t.queue: t.applied for t in report.consumer_timeouts}["training.work"] == 21_600_000
        assert report.divergences == []


def test_a_policy_without_the_catalogs_consumer_timeout_is_reported(broker: LocalBroker, topology: Topology) -> None:
    broken = variant(replace(topology, policies=tuple(
        replace(p, definition={k: v for k, v in p.definition.items() if k != "consumer-timeout"})
        if p.name == "queue-training.work" else p for p in topology.policies)), "timeout")
    failures = rehearse("dev", broker=broker, topology=broken).failures()
    assert [f for f in failures if f.startswith("consumer timeout broke")] == [
        "consumer timeout broke: training's training.work: the policy that applies to it (queue-training.work) "
        "declares consumer-timeout None, the catalog says 21600000 (max_job_seconds, or Amazon MQ's 30 minutes "
        "without one)"]


def test_a_rehearsal_on_its_own_broker_starts_it_with_the_env_brokers_consumer_timeout(
        monkeypatch: pytest.MonkeyPatch, topology: Topology) -> None:
    import shared.rehearse as rehearsal

    started: list[int | None] = []

    class Recorder:
        def __init__(self, *, consumer_timeout_ms: int | None = None) -> None:
            started.append(consumer_timeout_ms)

        def __enter__(self) -> LocalBroker:
            raise RuntimeError("not started in this test")

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(rehearsal, "LocalBroker", Recorder)
    with pytest.raises(RuntimeError, match="not started"):
        rehearse("dev", topology=topology)
    assert started == [1_800_000]
