"""Given an env, the synthesized messaging layer has a private broker, a catalog-shaped topology,
least-privilege service users and their credentials in Secrets Manager."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import MockCallArgs

from shared import REPO_ROOT
from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.components.broker import admin_password_from_secret
from shared.components.messaging import NOTHING, exact_names, plan_topology, policy_apply_to, work_queue_policy
from shared.contracts import MessagingContract
from shared.envs import load_env
from shared.errors import ConfigError
from shared.management_api import management_url
from shared.synth.engine import dumps, synth_env, synth_program
from tests.layers.resource_types import BROKER, ENVS, PASSWORD, SECRET, SECRET_VERSION, SG
from tests.spec_envs import SPEC_CATALOG
from tests.synth_helpers import by_urn, of_type, synth_layers

PROVIDER = "pulumi:providers:rabbitmq"
VHOST = "rabbitmq:index/vHost:VHost"
EXCHANGE = "rabbitmq:index/exchange:Exchange"
QUEUE = "rabbitmq:index/queue:Queue"
BINDING = "rabbitmq:index/binding:Binding"
USER = "rabbitmq:index/user:User"
PERMISSIONS = "rabbitmq:index/permissions:Permissions"
TOPIC_PERMISSIONS = "rabbitmq:index/topicPermissions:TopicPermissions"
POLICY = "rabbitmq:index/policy:Policy"
OPERATOR_POLICY = "rabbitmq:index/operatorPolicy:OperatorPolicy"


def secret_versions_read(document: dict[str, Any]) -> list[str]:
    """The secret strings the synth's Secrets Manager lookup answered (the mock's stand-in value)."""
    from shared.synth.mocks import PlatformMocks

    broker = layers("dev")["broker"]["outputs"]
    mocks = PlatformMocks(project="messaging", stack="dev", account_id="111111111111", region="eu-west-1")
    call = MockCallArgs("aws:secretsmanager/getSecretVersion:getSecretVersion",
                        {"secretId": broker["admin_secret_arn"]}, provider="")
    answer = mocks.call(call)
    assert answer is not None, "the mocks answer the Secrets Manager lookup"
    return [answer["secretString"]]


def layers(env: str) -> dict[str, dict[str, Any]]:
    return synth_layers(env, "messaging")


def messaging(env: str) -> dict[str, Any]:
    return layers(env)["messaging"]


def one(document: dict[str, Any], type_: str) -> dict[str, Any]:
    resources = of_type(document, type_)
    assert len(resources) == 1, f"expected one {type_}, found {len(resources)}"
    return resources[0]


def queue_arguments(queue: dict[str, Any]) -> dict[str, Any]:
    return json.loads(queue["inputs"]["settings"]["argumentsJson"])


def queues_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["inputs"]["name"]: q for q in of_type(document, QUEUE)}


def secret_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """service -> the JSON a service finds in its Secrets Manager secret."""
    resources = by_urn(document)
    result = {}
    for version in of_type(document, SECRET_VERSION):
        secret = resources[version["parent"]]
        if "service" in secret["inputs"]["tags"]:  # not the queue metrics publisher's (test_queue_metrics.py)
            result[secret["inputs"]["tags"]["service"]] = json.loads(version["inputs"]["secretString"])
    return result


# -- provider ------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_every_rabbitmq_resource_uses_the_explicit_provider_of_this_broker(env: str) -> None:
    document = messaging(env)
    broker = layers(env)["broker"]["outputs"]
    provider = one(document, PROVIDER)  # exactly one: no default (ambient) rabbitmq provider exists
    assert not provider["name"].startswith("default")
    assert provider["inputs"]["endpoint"] == broker["management_endpoint"]
    assert provider["inputs"]["endpoint"].startswith("https://")
    assert provider["inputs"]["insecure"] in ("false", False)
    assert "password" in provider["secret_inputs"]
    assert provider["inputs"]["username"] == broker["admin_username"]
    assert "cacertFile" not in provider["inputs"] and "proxy" not in provider["inputs"]
    rabbit = [r for r in document["resources"] if r["type"].startswith("rabbitmq:")]
    assert rabbit and {r["provider"] for r in rabbit} == {provider["urn"]}


def test_the_admin_password_is_read_from_the_broker_layers_secret_at_deploy_time() -> None:
    # Secrets Manager is the admin credential's one source after creation (a rotation updates it there),
    # so the provider's password comes from the secret the broker layer names, not from its stack outputs.
    document = messaging("dev")
    provider = one(document, PROVIDER)
    assert provider["inputs"]["password"] == admin_password_from_secret(
        next(iter(secret_versions_read(document))))
    assert provider["property_dependencies"]["password"], "derived, never written in clear"


def test_no_project_holds_both_a_broker_and_a_rabbitmq_provider() -> None:
    for env in ENVS:
        documents = synth_env(env)
        for layer, document in documents.items():
            types = {r["type"] for r in document["resources"]}
            assert not ({BROKER, PROVIDER} <= types), f"{env}/{layer} holds a broker and a RabbitMQ provider"
        assert of_type(documents["broker"], BROKER) and of_type(documents["messaging"], PROVIDER)


# -- management access (tunnels) ------------------------------------------------------------------
def provider_for(edit_env: Any, management: dict[str, Any]) -> dict[str, Any]:
    edit_env("dev", lambda data: data["messaging"].update(management=management))
    return one(synth_env("dev", ["messaging"])["messaging"], PROVIDER)


def test_a_ca_file_and_a_proxy_reach_the_provider_with_verification_on(edit_env: Any) -> None:
    provider = provider_for(edit_env, {"ca_file": "/etc/ssl/broker-ca.pem", "proxy": "socks5://localhost:1080"})
    inputs = provider["inputs"]
    assert (inputs["cacertFile"], inputs["proxy"]) == ("/etc/ssl/broker-ca.pem", "socks5://localhost:1080")
    assert inputs["insecure"] in ("false", False)
    assert inputs["endpoint"] == layers("dev")["broker"]["outputs"]["management_endpoint"]


def test_a_relative_ca_file_is_the_repository_roots_file_wherever_the_provider_runs(edit_env: Any) -> None:
    # Env-file paths are relative to the repository root (where nox runs). The provider reads cacert_file
    # relative to its own working directory, the messaging project's folder (Pulumi starts a provider
    # plugin in the project's directory), so the path is re-based there; relative, it is the same on every
    # checkout (a CodeBuild source folder differs per build), so the provider's config never drifts.
    provider = provider_for(edit_env, {"ca_file": "tests/fixtures/broker-ca.pem"})
    path = provider["inputs"]["cacertFile"]
    assert not Path(path).is_absolute()
    assert (REPO_ROOT / "stacks" / "messaging" / path).resolve() == REPO_ROOT / "tests" / "fixtures" / "broker-ca.pem"


def test_a_tunnel_to_localhost_connects_by_the_brokers_name_with_verification_on(edit_env: Any) -> None:
    host = layers("dev")["broker"]["outputs"]["management_endpoint"].removeprefix("https://")
    provider = provider_for(edit_env, {"endpoint": "https://localhost:15671", "tls_server_name": host})
    # The provider cannot override the TLS server name: it calls the broker's own name on the tunnel's
    # port (mapped to 127.0.0.1 in /etc/hosts), so the certificate is checked against that name.
    assert provider["inputs"]["endpoint"] == f"https://{host}:15671"
    assert provider["inputs"]["insecure"] in ("false", False)


def test_a_loopback_endpoint_without_a_tls_server_name_is_refused(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(management={"endpoint": "https://127.0.0.1:15671"}))
    with pytest.raises(ConfigError) as error:
        synth_env("dev", ["messaging"])
    assert error.value.key == "messaging.management.tls_server_name" and "/etc/hosts" in error.value.reason


def test_a_non_loopback_management_endpoint_replaces_the_brokers_own(edit_env: Any) -> None:
    provider = provider_for(edit_env, {"endpoint": "https://rabbit-admin.vpn.example.com"})
    assert provider["inputs"]["endpoint"] == "https://rabbit-admin.vpn.example.com"


def test_management_url_is_what_a_reachability_probe_would_try(edit_env: Any) -> None:
    own = "https://b-1.mq.eu-west-1.on.aws"
    assert management_url(load_env("dev"), own) == own
    edit_env("dev", lambda data: data["messaging"].update(
        management={"endpoint": "https://localhost:15671", "tls_server_name": "b-1.mq.eu-west-1.on.aws"}))
    assert management_url(load_env("dev"), own) == "https://b-1.mq.eu-west-1.on.aws:15671"


def test_a_tls_server_name_without_an_endpoint_keeps_the_brokers_port(edit_env: Any) -> None:
    # With no local endpoint (a proxy, or a tunnel on the broker's own port) only the host name is replaced:
    # an external broker's management API on RabbitMQ's TLS port 15671 is not called on 443.
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data.update(messaging={
        "broker": "external", "external": external,
        "management": {"tls_server_name": "rabbit-admin.example.internal", "proxy": "socks5h://localhost:1080"}}))
    assert management_url(load_env("dev"), None) == "https://rabbit-admin.example.internal:15671"
    # Amazon MQ's console URL names no port (443); whatever the broker layer exports, its port is kept. (dev keeps
    # its own maintenance window: the default, Sunday 03:00 UTC, shares prod's hours, which the loader refuses.)
    edit_env("dev", lambda data: data.update(messaging={
        "broker": "amazon-mq", "management": {"tls_server_name": "b-1.mq.eu-west-1.on.aws"},
        "maintenance_window": {"day_of_week": "WEDNESDAY", "time_of_day": "03:00", "time_zone": "Europe/Dublin"}}))
    assert management_url(load_env("dev"), None) is None  # known only from the broker layer's output
    assert management_url(load_env("dev"), "https://b-1.mq.eu-west-1.amazonaws.com") == "https://b-1.mq.eu-west-1.on.aws"
    assert management_url(load_env("dev"), "https://b-1.internal:8443/rmq") == "https://b-1.mq.eu-west-1.on.aws:8443/rmq"


def test_an_amazon_mq_broker_reached_by_name_through_a_proxy_is_called_on_its_own_port(edit_env: Any) -> None:
    own = layers("dev")["broker"]["outputs"]["management_endpoint"]
    provider = provider_for(edit_env, {"tls_server_name": "broker.example.internal", "proxy": "socks5h://localhost:1080"})
    # the mock's console URL is Amazon MQ's shape, https://<host> (443): the provider gets the name, no port added
    assert re.fullmatch(r"https://[a-z0-9.-]+", own), own
    assert provider["inputs"]["endpoint"] == "https://broker.example.internal"


# -- topology ------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_one_vhost_per_env_and_everything_lives_in_it(env: str) -> None:
    document = messaging(env)
    vhost = one(document, VHOST)["inputs"]["name"]
    assert vhost == f"ml-{env}" and vhost != "/"
    assert document["outputs"]["vhost"] == vhost
    for type_ in (EXCHANGE, QUEUE, BINDING, PERMISSIONS, TOPIC_PERMISSIONS):
        assert {r["inputs"]["vhost"] for r in of_type(document, type_)} == {vhost}, type_


@pytest.mark.parametrize("env", ENVS)
def test_exchanges_are_durable_topic_for_requests_and_events_plus_a_dead_letter_exchange(env: str) -> None:
    document = messaging(env)
    outputs = document["outputs"]
    exchanges = {e["inputs"]["name"]: e["inputs"]["settings"] for e in of_type(document, EXCHANGE)}
    # Both exchanges services publish to are topic exchanges: RabbitMQ checks topic permissions on no other type.
    assert {name: s["type"] for name, s in exchanges.items()} == {
        outputs["requests_exchange"]: "topic", outputs["events_exchange"]: "topic",
        outputs["dead_letter_exchange"]: "direct"}
    assert all(s["durable"] is True and s["autoDelete"] is False for s in exchanges.values())
    # A replaced exchange keeps its name: RabbitMQ refuses a second exchange of that name with another type, so the
    # old one goes first (and its bindings, which name it as their source, are replaced with it).
    assert all(e.get("delete_before_replace") is True for e in of_type(document, EXCHANGE))
    urns = {e["inputs"]["name"]: e["urn"] for e in of_type(document, EXCHANGE)}
    for binding in of_type(document, BINDING):
        assert binding["property_dependencies"]["source"] == [urns[binding["inputs"]["source"]]], binding["name"]


def policies_by_name(document: dict[str, Any], type_: str = POLICY) -> dict[str, dict[str, Any]]:
    return {p["inputs"]["name"]: p for p in of_type(document, type_)}


def applying(document: dict[str, Any], queue: str, type_: str) -> dict[str, Any] | None:
    """The policy (or operator policy) RabbitMQ applies to ``queue``: the highest-priority match."""
    matches = [p["inputs"] for p in of_type(document, type_) if re.search(p["inputs"]["policy"]["pattern"], queue)]
    return max(matches, key=lambda p: p["policy"]["priority"], default=None)


def applied(document: dict[str, Any], queue: str, type_: str) -> dict[str, Any]:
    """The policy of ``type_`` that must apply to ``queue`` (a failed assertion names both when none does)."""
    policy = applying(document, queue, type_)
    assert policy is not None, f"no {type_} applies to {queue}"
    return policy


@pytest.mark.parametrize("env", ENVS)
def test_each_consuming_service_has_a_durable_quorum_queue_that_dead_letters_into_its_dlq(env: str) -> None:
    document = messaging(env)
    settings = load_env(env).messaging
    queues = queues_by_name(document)
    consumers = [spec for spec in load_catalog() if spec.consumes]
    assert set(queues) == {q for spec in consumers for q in (spec.queue, spec.dead_letter_queue)}
    assert document["outputs"]["queues"] == {spec.name: spec.queue for spec in consumers}
    for spec in consumers:
        work, dlq = queues[spec.queue], queues[spec.dead_letter_queue]
        for queue in (work, dlq):
            assert queue["inputs"]["settings"]["durable"] is True
            assert queue["inputs"]["settings"]["autoDelete"] is False
            assert queue_arguments(queue)["x-queue-type"] == "quorum"
        policy = applying(document, spec.queue, POLICY)
        assert policy is not None, f"no policy applies to {spec.queue}"
        definition = policy["policy"]["definition"]
        assert definition["dead-letter-exchange"] == document["outputs"]["dead_letter_exchange"]
        assert definition["dead-letter-routing-key"] == spec.queue
        # Values are strings on the provider's input; it sends integer strings as integers.
        assert definition["delivery-limit"] == str(settings.delivery_limit)
        assert definition.get("message-ttl") == (str(settings.message_ttl_ms) if settings.message_ttl_ms else None)
        assert definition["overflow"] == "reject-publish"
        dlq_policy = applied(document, spec.dead_letter_queue, POLICY)["policy"]["definition"]
        assert "dead-letter-exchange" not in dlq_policy, "a DLQ does not dead-letter again"


@pytest.mark.parametrize("env", ENVS)
def test_no_queue_argument_carries_a_setting_that_may_change_policies_do(env: str) -> None:
    """A queue's arguments are ForceNew in the provider and fixed at declaration in RabbitMQ (a redeclare
    with others is PRECONDITION_FAILED): only the queue type may be one. TTL, limits and dead-lettering
    are (operator) policies, which the provider and RabbitMQ change in place."""
    document = messaging(env)
    settings = load_env(env).messaging
    for queue in of_type(document, QUEUE):
        assert queue_arguments(queue) == {"x-queue-type": "quorum"}, queue["inputs"]["name"]
        assert "arguments" not in queue["inputs"]["settings"]
    apply_to = {p["inputs"]["policy"]["applyTo"] for t in (POLICY, OPERATOR_POLICY) for p in of_type(document, t)}
    assert apply_to == {"quorum_queues"}, "Amazon MQ: a policy for quorum queues must apply to quorum_queues"
    for spec in load_catalog():
        if not spec.queue:
            continue
        work_limit = applying(document, spec.queue, OPERATOR_POLICY)
        dlq_limit = applying(document, spec.dead_letter_queue, OPERATOR_POLICY)
        assert work_limit and work_limit["policy"]["definition"] == {"max-length": str(settings.max_length)}
        assert dlq_limit and dlq_limit["policy"]["definition"] == {"max-length": str(settings.dead_letter_max_length)}
        # Above Amazon MQ's default policies (priority 0 / 1 on clusters).
        assert min(work_limit["policy"]["priority"], applied(document, spec.queue, POLICY)["policy"]["priority"]) > 1
    for policy in [*of_type(document, POLICY), *of_type(document, OPERATOR_POLICY)]:
        assert policy["inputs"]["vhost"] == document["outputs"]["vhost"]
        # Amazon MQ: a quorum-queue policy has no ha-*/queue-mode keys and no reject-publish-dlx overflow.
        definition = policy["inputs"]["policy"]["definition"]
        assert not [k for k in definition if k.startswith("ha-") or k == "queue-mode"]
        assert definition.get("overflow") in (None, "reject-publish", "drop-head")


@pytest.mark.parametrize("env", ENVS)
def test_a_queue_is_created_after_the_policies_that_apply_to_it(env: str) -> None:
    document = messaging(env)
    urns = {p["inputs"]["name"]: p["urn"] for t in (POLICY, OPERATOR_POLICY) for p in of_type(document, t)}
    for name, queue in queues_by_name(document).items():
        applied = [p for t in (POLICY, OPERATOR_POLICY) if (p := applying(document, name, t))]
        assert applied and {urns[p["name"]] for p in applied} <= set(queue["dependencies"]), name


def test_env_keys_change_policies_not_queues(edit_env: Any) -> None:
    before = messaging("dev")
    edit_env("dev", lambda data: data["messaging"].update(max_length=10000, dead_letter_max_length=500,
                                                          message_ttl_ms=None, delivery_limit=3))
    after = synth_env("dev", ["messaging"])["messaging"]
    assert {n: q["inputs"] for n, q in queues_by_name(after).items()} == {
        n: q["inputs"] for n, q in queues_by_name(before).items()}, "the queues themselves do not change"
    for spec in load_catalog():
        if spec.queue:
            definition = applied(after, spec.queue, POLICY)["policy"]["definition"]
            assert definition["delivery-limit"] == "3" and "message-ttl" not in definition
            assert applied(after, spec.queue, OPERATOR_POLICY)["policy"]["definition"] == {"max-length": "10000"}
            assert applied(after, spec.dead_letter_queue, OPERATOR_POLICY)["policy"]["definition"] == {
                "max-length": "500"}
    # Same resource names (URNs) before and after: the provider updates the policies in place.
    assert set(policies_by_name(after)) == set(policies_by_name(before))


@pytest.mark.parametrize("env", ENVS)
def test_each_work_queue_carries_its_consumers_timeout_in_its_own_policy(env: str) -> None:
    """RabbitMQ 4.2 applies a queue's consumer-timeout policy key instead of the broker-wide consumer_timeout: the
    training queue may hold a delivery for its 6-hour jobs, every other work queue for Amazon MQ's 30 minutes.
    In the queue's one policy (the highest priority wins, so a second policy would drop its dead-lettering), as an
    integer string the provider sends as an integer, never as an x-consumer-timeout argument (fixed for good)."""
    document = messaging(env)
    timeouts = {}
    for spec in load_catalog():
        if spec.queue:
            definition = applied(document, spec.queue, POLICY)["policy"]["definition"]
            assert definition["dead-letter-exchange"] and definition["delivery-limit"], "the same policy"
            timeouts[spec.queue] = definition["consumer-timeout"]
    shipped = {"gateway.work": "1800000", "preprocess.work": "1800000", "inference.work": "1800000",
               "training.work": "21600000"}
    assert {queue: timeouts[queue] for queue in shipped} == shipped
    for spec in load_catalog():  # a consumer a user adds: its max_job_seconds, else Amazon MQ's 30 minutes
        if spec.queue and spec.queue not in shipped:
            assert timeouts[spec.queue] == str((spec.max_job_seconds or 1800) * 1000)
    assert all("x-consumer-timeout" not in queue_arguments(q) for q in of_type(document, QUEUE))


@pytest.mark.parametrize("env", ENVS)
def test_every_quorum_queue_has_an_explicit_delivery_limit_and_a_dlq_keeps_its_dead_letters(env: str) -> None:
    """From RabbitMQ 4.0 a quorum queue without a delivery limit gets 20, and on 4.0-4.2 every return counts (a
    requeue, a consumer's connection closing): a DLQ, which has no dead-letter exchange, would drop a dead letter
    returned 20 times. Each queue's one policy names its limit: the env's for work queues, a high bound for DLQs,
    which never dead-letter (no loop) and carry no consumer timeout."""
    document = messaging(env)
    for spec in load_catalog():
        if not spec.queue:
            continue
        work = applied(document, spec.queue, POLICY)["policy"]["definition"]
        assert work["delivery-limit"] == str(load_env(env).messaging.delivery_limit)
        dlq = applied(document, spec.dead_letter_queue, POLICY)
        assert dlq["name"] == "dead-letter-queues"
        assert dlq["policy"]["definition"] == {"delivery-limit": "1000"}
        assert dlq["policy"]["priority"] == 10 and dlq["policy"]["applyTo"] == "quorum_queues"
    for queue in of_type(document, QUEUE):
        assert applying(document, queue["inputs"]["name"], POLICY), f"{queue['inputs']['name']}: no policy"


def test_a_new_max_job_seconds_updates_its_queues_policy_in_place(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = messaging("dev")
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["training"]["max_job_seconds"] = 18000
    data["services"]["inference"]["max_job_seconds"] = 300
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    after = synth_env("dev", ["messaging"])["messaging"]
    assert applied(after, "training.work", POLICY)["policy"]["definition"]["consumer-timeout"] == "18000000"
    assert applied(after, "inference.work", POLICY)["policy"]["definition"]["consumer-timeout"] == "300000"
    assert {n: q["inputs"] for n, q in queues_by_name(after).items()} == {
        n: q["inputs"] for n, q in queues_by_name(before).items()}, "the queues themselves do not change"
    assert set(policies_by_name(after)) == set(policies_by_name(before)), "the same policies, updated"


def test_an_engine_without_per_queue_timeouts_gets_no_consumer_timeout_key(tmp_path: Path, edit_env: Any) -> None:
    # An external broker older than RabbitMQ 3.12 refuses the key ("not recognised policy settings"): its
    # operator sets the broker-wide value instead (the broker layer's warning).
    assert "consumer-timeout" not in work_queue_policy(
        load_env("dev").model_copy(update={"messaging": load_env("dev").messaging.model_copy(
            update={"engine_version": "3.10"})}), "training.work", 21_600_000).definition
    assert "consumer-timeout" not in work_queue_policy(
        load_env("dev").model_copy(update={"messaging": load_env("dev").messaging.model_copy(
            update={"engine_version": "3.11.28"})}), "training.work", 21_600_000).definition, "no 3.11 has the key"
    assert work_queue_policy(load_env("dev"), "training.work", 21_600_000).definition["consumer-timeout"] == 21_600_000


def test_policy_apply_to_follows_the_engine_version() -> None:
    assert policy_apply_to("3.13") == "quorum_queues" and policy_apply_to("4.2") == "quorum_queues"
    assert policy_apply_to("3.11.20") == "queues"


@pytest.mark.parametrize("env", ENVS)
def test_bindings_are_exactly_what_the_catalog_consumes_plus_one_per_dlq(env: str) -> None:
    document = messaging(env)
    outputs = document["outputs"]
    bindings = {(b["inputs"]["source"], b["inputs"]["destination"], b["inputs"]["routingKey"])
                for b in of_type(document, BINDING)}
    assert {b["inputs"]["destinationType"] for b in of_type(document, BINDING)} == {"queue"}
    expected = set()
    for spec in load_catalog():
        for exchange, key in spec.consumes.items():
            expected.add((outputs[f"{exchange}_exchange"], spec.queue, key))
        if spec.queue:
            expected.add((outputs["dead_letter_exchange"], spec.dead_letter_queue, spec.queue))
    assert bindings == expected


# -- users and permissions -----------------------------------------------------------------------
def permissions_by_user(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {p["inputs"]["user"]: p["inputs"]["permissions"] for p in of_type(document, PERMISSIONS)}


#: The shipped env files' credentials_rotation.epoch: each service's current user is ml-<env>-<service>.<epoch>, its
#: previous one (no previous_epoch: the user made before users were per epoch) ml-<env>-<service>.
EPOCH = "2026-11-01"
GENERATIONS = (f".{EPOCH}", "")


@pytest.mark.parametrize("env", ENVS)
def test_two_untagged_users_per_messaging_service_each_with_a_generated_secret_password(env: str) -> None:
    """The current generation's user (the secret's) and the previous one's, which the tasks started before the last
    rotation still use (shared.components.messaging.Generation)."""
    document = messaging(env)
    users = {u["inputs"]["name"]: u for u in of_type(document, USER) if u["name"] != "queue-metrics-user"}
    services = [spec.name for spec in load_catalog() if spec.publishes or spec.consumes]
    assert set(users) == {f"ml-{env}-{service}{suffix}" for service in services for suffix in GENERATIONS}
    passwords = {p["urn"] for p in of_type(document, PASSWORD)}
    for user in users.values():
        assert user["inputs"].get("tags", []) == [], "no administrator/management tags"
        assert "password" in user["secret_inputs"]
        assert set(user["dependencies"]) & passwords, "the password comes from a RandomPassword"
    assert len({u["inputs"]["password"] for u in users.values()}) == len(users), "no shared passwords"


@pytest.mark.parametrize("env", ENVS)
def test_permissions_grant_each_service_only_its_own_objects(env: str) -> None:
    document = messaging(env)
    outputs = document["outputs"]
    permissions = permissions_by_user(document)
    queues = list(queues_by_name(document))
    # RabbitMQ checks a publish to the default exchange ("") against the name amq.default; "^$" covers no
    # resource (RabbitMQ access-control guide), so a service that publishes nothing has write "^$"
    exchanges = [e["inputs"]["name"] for e in of_type(document, EXCHANGE)] + ["amq.default", "amq.topic"]
    for spec in load_catalog():
        granted = permissions[f"ml-{env}-{spec.name}"]
        assert permissions[f"ml-{env}-{spec.name}.{EPOCH}"] == granted, "every generation is granted the same"
        assert ".*" not in granted.values()
        assert granted["configure"] == NOTHING
        assert [q for q in queues if re.search(granted["read"], q)] == ([spec.queue] if spec.queue else [])
        publishes = {outputs[f"{exchange}_exchange"] for exchange, _ in spec.publishes.items()}
        assert {e for e in exchanges if re.search(granted["write"], e)} == publishes
        assert not re.search(granted["read"], "x") and not re.search(granted["write"], "x")


@pytest.mark.parametrize("env", ENVS)
def test_topic_permissions_restrict_every_publisher_to_its_declared_routing_keys_on_each_exchange(env: str) -> None:
    document = messaging(env)
    outputs = document["outputs"]
    resources = of_type(document, TOPIC_PERMISSIONS)
    topic = {p["inputs"]["user"]: p["inputs"]["permissions"] for p in resources}
    # One resource per user: the provider's delete and update clear all of the user's topic permissions in the vhost.
    assert len(topic) == len(resources)
    catalog = load_catalog()
    publishers = [spec for spec in catalog if spec.publishes]
    assert set(topic) == {f"ml-{env}-{spec.name}{suffix}" for spec in publishers for suffix in GENERATIONS}
    for spec in publishers:
        # both generations of a service's credentials are granted the same (a running task keeps working)
        assert topic[f"ml-{env}-{spec.name}"] == topic[f"ml-{env}-{spec.name}.{EPOCH}"]
        entries = {entry["exchange"]: entry for entry in topic[f"ml-{env}-{spec.name}"]}
        assert set(entries) == {outputs[f"{exchange}_exchange"] for exchange, _ in spec.publishes.items()}
        for exchange in ("requests", "events"):
            entry = entries.get(outputs[f"{exchange}_exchange"])
            if entry is None:
                continue
            assert entry["read"] == NOTHING
            all_keys = {key for other in catalog
                        for key in (*getattr(other.publishes, exchange), *getattr(other.consumes, exchange))}
            assert {k for k in all_keys if re.search(entry["write"], k)} == set(getattr(spec.publishes, exchange))
            assert entry["write"].startswith("^(") and entry["write"].endswith(")$")
    gateway = {entry["exchange"]: entry["write"] for entry in topic[f"ml-{env}-gateway"]}
    # The audit's case: gateway may publish preprocess and training requests, never inference's.
    assert gateway == {outputs["requests_exchange"]: r"^(preprocess\.request|training\.request)$"}
    preprocess = {entry["exchange"]: entry["write"] for entry in topic[f"ml-{env}-preprocess"]}
    assert not re.search(preprocess[outputs["requests_exchange"]], "training.request")


def test_exact_names_is_an_anchored_alternation_of_literal_names() -> None:
    pattern = exact_names(["ml.requests", "ml.events"])
    assert pattern == r"^(ml\.requests|ml\.events)$"
    assert re.fullmatch(pattern, "ml.events") and not re.search(pattern, "mlXevents")
    assert not re.search(pattern, "ml.events.extra") and exact_names([]) == "^$"
    with pytest.raises(ValueError):
        exact_names(["a|b"])


def test_exact_names_refuses_a_name_with_a_trailing_newline() -> None:
    """Python's ``$`` (like RabbitMQ's PCRE) matches before a final newline, so a ``match`` against ``^[...]*$`` let
    'training.request\\n' through into a topic permission and a binding key."""
    with pytest.raises(ValueError, match="not a plain object name"):
        exact_names(["training.request\n"])


# -- credentials for compute ---------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_each_service_credentials_are_a_secret_in_secrets_manager_that_compute_can_reference(env: str) -> None:
    document = messaging(env)
    outputs = document["outputs"]
    users = {u["inputs"]["name"]: u["inputs"]["password"] for u in of_type(document, USER)}
    credentials = secret_services(document)
    assert set(credentials) == set(outputs["service_secret_arns"])
    host = outputs["amqps_endpoint"].removeprefix("amqps://")
    for service, value in credentials.items():
        assert value["username"] == f"ml-{env}-{service}.{EPOCH}" and value["password"] == users[value["username"]]
        assert value["vhost"] == outputs["vhost"] and f"{value['host']}:{value['port']}" == host
        assert value["amqps_url"] == f"amqps://{value['username']}:{value['password']}@{host}/{value['vhost']}"
        assert outputs["service_secret_arns"][service].startswith(
            f"arn:aws:secretsmanager:{load_env(env).region}:{load_env(env).account_id}:secret:platform/{env}/messaging/"
            f"{service}-")
    for version in of_type(document, SECRET_VERSION):
        assert version["secret_inputs"] == ["secretString"]
    assert document["secret_outputs"] == [], "the contract exports no credentials"


@pytest.mark.parametrize(("env", "window"), [("dev", 0), ("prod", 30)])
def test_secrets_are_deleted_at_once_outside_protected_envs(env: str, window: int) -> None:
    assert {s["inputs"]["recoveryWindowInDays"] for s in of_type(messaging(env), SECRET)} == {window}


@pytest.mark.parametrize("env", ENVS)
def test_service_secrets_use_the_layers_customer_managed_key(env: str) -> None:
    document = messaging(env)
    config = load_env(env)
    (key,) = [k for k in of_type(document, "aws:kms/key:Key") if k["name"] == "messaging-secrets"]
    assert key["inputs"]["enableKeyRotation"] is True and key["inputs"]["deletionWindowInDays"] == 30
    assert key["protect"] is config.protect
    (admin,) = json.loads(key["inputs"]["policy"])["Statement"]
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{config.account_id}:root"}, "use is delegated to IAM"
    secrets = of_type(document, SECRET)
    assert secrets and all(s["inputs"]["kmsKeyId"].startswith(f"arn:aws:kms:{config.region}:") for s in secrets)
    assert all(key["urn"] in s["dependencies"] for s in secrets)


@pytest.mark.parametrize(("env", "max_age"), [("dev", 180), ("staging", 90), ("prod", 90)])
def test_service_passwords_rotate_with_the_env_files_epoch(env: str, max_age: int) -> None:
    document = messaging(env)
    passwords = of_type(document, PASSWORD)
    assert passwords and all(p["inputs"]["keepers"] == {"rotation_epoch": "2026-11-01"} for p in passwords)
    due = {"dev": "2027-04-30", "staging": "2027-01-30", "prod": "2027-01-30"}[env]
    for secret in of_type(document, SECRET):
        tags = secret["inputs"]["tags"]
        assert (tags["rotation-epoch"], tags["rotation-max-age-days"], tags["rotation-due"]) == (
            "2026-11-01", str(max_age), due)


def test_a_new_epoch_changes_every_service_password_and_nothing_is_replaced_but_them(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation={"epoch": "2027-01-15",
                                                                                "max_age_days": 180}))
    document = synth_env("dev", ["messaging"])["messaging"]
    assert {json.dumps(p["inputs"]["keepers"]) for p in of_type(document, PASSWORD)} == {
        '{"rotation_epoch": "2027-01-15"}'}
    before = {s["urn"]: s["inputs"]["name"] for s in of_type(messaging("dev"), SECRET)}
    assert {s["urn"]: s["inputs"]["name"] for s in of_type(document, SECRET)} == before, "same secrets, same names"
    # every secret gets a new version, whose id compute pins its tasks to (so they are replaced)
    old_versions = messaging("dev")["outputs"]["service_secret_versions"]
    new_versions = document["outputs"]["service_secret_versions"]
    assert set(new_versions) == set(old_versions) == set(document["outputs"]["service_secret_arns"])
    assert all(new_versions[service] != old_versions[service] for service in old_versions)


def test_a_rotation_makes_new_users_and_keeps_the_previous_ones_password_for_the_running_tasks(
        edit_env: Any) -> None:
    """ECS injects a secret only at task start: the tasks that started before the rotation keep the previous user and
    password (and reconnect with them) until compute's rollout replaces them, or a rollback starts them again."""
    before = {u["inputs"]["name"]: u["inputs"]["password"] for u in of_type(messaging("dev"), USER)}
    edit_env("dev", lambda data: data["messaging"]["credentials_rotation"].update(epoch="2027-01-15",
                                                                                  previous_epoch=EPOCH))
    document = synth_env("dev", ["messaging"])["messaging"]
    after = {u["inputs"]["name"]: u["inputs"]["password"] for u in of_type(document, USER)}
    services = [spec.name for spec in load_catalog() if spec.uses_messaging]
    assert set(after) - {"ml-dev.queue-metrics"} == {
        f"ml-dev-{service}{suffix}" for service in services for suffix in (f".{EPOCH}", ".2027-01-15")}
    for service in services:
        previous = f"ml-dev-{service}.{EPOCH}"
        assert after[previous] == before[previous], "the running tasks' password is unchanged"
        assert after[f"ml-dev-{service}.2027-01-15"] not in before.values()
        assert secret_services(document)[service]["username"] == f"ml-dev-{service}.2027-01-15"


def test_previous_epoch_must_come_before_the_epoch(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"]["credentials_rotation"].update(previous_epoch=EPOCH))
    with pytest.raises(ConfigError, match=r"credentials_rotation: .*previous_epoch 2026-11-01 must be before epoch"):
        load_env("dev")


def test_a_new_max_age_only_retags_the_secrets_and_keeps_every_password(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation={"epoch": "2026-11-01",
                                                                                "max_age_days": 30}))
    document = synth_env("dev", ["messaging"])["messaging"]
    before = [p["inputs"] for p in of_type(messaging("dev"), PASSWORD)]
    assert [p["inputs"] for p in of_type(document, PASSWORD)] == before, "no password is replaced"
    assert document["outputs"]["service_secret_versions"] == messaging("dev")["outputs"]["service_secret_versions"]
    assert {s["inputs"]["tags"]["rotation-due"] for s in of_type(document, SECRET)} == {"2026-12-01"}


def test_without_credentials_rotation_passwords_have_no_keeper(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].pop("credentials_rotation"))
    document = synth_env("dev", ["messaging"])["messaging"]
    assert all("keepers" not in p["inputs"] for p in of_type(document, PASSWORD))
    assert all("rotation-epoch" not in s["inputs"]["tags"] for s in of_type(document, SECRET))


# -- contract, protection, determinism -----------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_the_layer_exports_exactly_its_contract(env: str) -> None:
    outputs = messaging(env)["outputs"]
    contract = MessagingContract.model_validate(outputs)
    assert contract.broker_mode == "amazon-mq"
    assert contract.amqps_endpoint == layers(env)["broker"]["outputs"]["amqps_endpoint"]
    assert contract.amqps_endpoint.startswith("amqps://") and contract.amqps_endpoint.endswith(":5671")
    assert set(outputs) == set(MessagingContract.model_fields)


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_vhost_and_queues_are_protected_where_the_env_protects_state(env: str, protected: bool) -> None:
    document = messaging(env)
    for type_ in (VHOST, QUEUE):
        assert {r["protect"] for r in of_type(document, type_)} == {protected}, type_


def test_synth_is_deterministic() -> None:
    assert dumps(synth_env("dev", ["messaging"])["messaging"]) == dumps(messaging("dev"))


def test_plan_topology_grows_from_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    data["services"]["reporting"] = {"port": 8090, "health_path": "/healthz",
                                     "consumes": {"events": ["model.trained"]}}
    data["services"]["static-docs"] = {"port": 8091, "health_path": "/healthz"}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    document = synth_env("dev", ["messaging"])["messaging"]
    assert document["outputs"]["queues"]["reporting"] == "reporting.work"
    assert {"reporting.work", "reporting.dlq"} <= set(queues_by_name(document))
    assert "static-docs" not in document["outputs"]["service_secret_arns"], "no messaging, no broker identity"
    assert "reporting" in document["outputs"]["service_secret_arns"]
    plan = plan_topology(load_env("dev"), load_catalog())
    reporting = next(u for u in plan.users if u.service == "reporting")
    assert (reporting.write, reporting.read, reporting.topic_write) == (NOTHING, r"^(reporting\.work)$", {})


# -- external broker -----------------------------------------------------------------------------
def external_program(tmp_path: Path, edit_env: Any, config: dict[str, Any] | None,
                     management: dict[str, Any] | None = None) -> dict[str, Any]:
    """The messaging program for a dev env with an external broker, with ``config`` as its stack file."""
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: data.update(messaging={"broker": "external", "external": external,
                                                        "management": management or {}}))
    program = tmp_path / "messaging"
    shutil.copytree(REPO_ROOT / "stacks" / "messaging", program, ignore=shutil.ignore_patterns("Pulumi.*.yaml"))
    if config is not None:
        (program / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}))
    upstream = synth_env("dev", ["broker"])
    return synth_program(program, stack="dev", layer="messaging", env="dev", account_id="111111111111",
                         region="eu-west-1", stack_outputs={"organization/broker/dev": upstream["broker"]["outputs"],
                                                            "organization/network/dev": upstream["network"]["outputs"]})


def test_an_external_broker_is_administered_with_its_operators_secret(tmp_path: Path, edit_env: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The credentials are read from Secrets Manager at each run (its current version), never from a file of the
    # repository: a committed stack config's secrets open with the secrets provider's key, which the pull-request
    # jobs' read-only role may use.
    asked = recorded_secret_reads(monkeypatch)
    document = external_program(tmp_path, edit_env, None)
    assert asked == [{"secretId": "platform/dev/broker/external-admin"}]
    assert of_type(document, BROKER) == [] and of_type(document, SG) == []
    provider = one(document, PROVIDER)
    assert provider["inputs"]["endpoint"] == "https://rabbit.example.internal:15671"
    assert provider["inputs"]["username"] == "synth-stand-in"  # the mock's secret: {"username", "password"}
    assert sorted(provider["secret_inputs"]) == ["password", "username"]
    outputs = document["outputs"]
    assert outputs["broker_mode"] == "external" and outputs["amqps_endpoint"] == "amqps://rabbit.example.internal:5671"
    assert {v["host"] for v in secret_services(document).values()} == {"rabbit.example.internal"}
    assert len(of_type(document, QUEUE)) == 2 * len([s for s in load_catalog() if s.consumes])


def test_an_external_brokers_management_port_survives_a_tls_server_name(tmp_path: Path, edit_env: Any) -> None:
    # The provider is pointed at the external broker's own management port (15671), not at 443.
    document = external_program(tmp_path, edit_env, None,
                                {"tls_server_name": "rabbit-admin.example.internal", "proxy": "socks5h://localhost:1080"})
    assert one(document, PROVIDER)["inputs"]["endpoint"] == "https://rabbit-admin.example.internal:15671"


@pytest.mark.parametrize(("secret_string", "missing"), [
    ('{"username": "admin"}', "password"), ('{"password": "p"}', "username"), ('{"username": "", "password": ""}',
                                                                              "username and password"),
    ("not json", "username and password"), ('["admin", "p"]', "username and password")])
def test_an_external_admin_secret_without_both_keys_is_named_never_shown(secret_string: str, missing: str) -> None:
    from shared.components.broker import external_admin_from_secret

    with pytest.raises(ValueError, match=f"platform/dev/broker/external-admin is not JSON with a non-empty "
                                         f"{missing} ") as raised:
        external_admin_from_secret(secret_string, "platform/dev/broker/external-admin")
    assert "admin\"" not in str(raised.value) and '"p"' not in str(raised.value)
    assert external_admin_from_secret('{"username": "admin", "password": "p", "engine": "rabbitmq"}', "x") == (
        "admin", "p")


def test_credentials_left_in_the_stack_config_are_named_for_removal(tmp_path: Path, edit_env: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    # an external env set up before the move to Secrets Manager: its committed settings still hold them
    external_program(tmp_path, edit_env, {"messaging:adminUsername": {"secure": "v1:AAAA"},
                                          "messaging:adminPassword": {"secure": "v1:BBBB"}})
    assert ("the messaging stack's config still holds messaging:adminUsername, messaging:adminPassword, which no run "
            "reads any more") in caplog.text
    caplog.clear()
    external_program(tmp_path / "without", edit_env, None)
    assert "still holds" not in caplog.text


def recorded_secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of every getSecretVersion the synth's program invokes, as they are asked."""
    from shared.synth import engine

    asked: list[dict[str, Any]] = []
    original = engine.RecordingMonitor.Invoke

    def recording(self: engine.RecordingMonitor, request: Any) -> Any:
        if request.tok == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            asked.append(engine._struct_to_plain(request.args)[0])
        return original(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "Invoke", recording)
    return asked


def test_messaging_reads_the_admin_secrets_current_version_at_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker admin's secret rotates (its rotation function moves AWSCURRENT): messaging must ask for
    the current version, never a pinned one, so each `up` after a rotation authenticates with the new password."""
    asked = recorded_secret_reads(monkeypatch)
    outputs = synth_env("dev", ["messaging"])
    assert asked == [{"secretId": outputs["broker"]["outputs"]["admin_secret_arn"]}], \
        "no versionId/versionStage: the provider reads AWSCURRENT"
