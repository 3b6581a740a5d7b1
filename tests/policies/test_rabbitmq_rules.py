"""The ``rabbitmq`` pack, rule by rule, through the real pack process (Analyzer protocol).

Each rule: a resource written the way the platform writes it (no finding), the way quick-starts
write it (a finding with a message that says what to change), and an unknown value (not-applicable).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.catalog import load_catalog
from tests.policies.resources import UNKNOWN_ARRAY, UNKNOWN_STRING, of_rule, res, rule_ids, snapshot_document
from tests.policies.tokens import BINDING, EXCHANGE, OPERATOR_POLICY, PERMISSIONS, QUEUE, TOPIC_PERMISSIONS, USER
from tests.policies.tokens import RABBITMQ_POLICY as POLICY


def work_queue(name: str = "inference.work", **settings: Any) -> dict[str, Any]:
    """A queue the way the platform writes it: its type as the only argument, the rest in policies."""
    base = {"durable": True, "autoDelete": False, "argumentsJson": json.dumps({"x-queue-type": "quorum"})}
    base.update(settings)
    return res(QUEUE, name.replace(".", "-"), {"name": name, "vhost": "dev", "settings": base})


def queue_policy(queue: str = "inference.work", *, vhost: str = "dev", pattern: str | None = None,
                 priority: int = 10, apply_to: str = "quorum_queues", **definition: str) -> dict[str, Any]:
    """A rabbitmq.Policy for ``queue`` (definition keys with '_' for '-'); dead-lettering by default."""
    values = {key.replace("_", "-"): value for key, value in definition.items()} or {
        "dead-letter-exchange": "ml.dead-letter", "dead-letter-routing-key": queue, "delivery-limit": "5"}
    name = f"queue-{queue}-{priority}-{vhost}"
    return res(POLICY, name.replace(".", "-"), {"name": name, "vhost": vhost, "policy": {
        "pattern": pattern if pattern is not None else "^" + queue.replace(".", "\\.") + "$",
        "priority": priority, "applyTo": apply_to, "definition": values}})


# -- rabbitmq-no-admin-users ----------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["administrator", "Administrator", " administrator "])
def test_admin_tag_is_reported(policy_findings, tag):
    # any spelling: the rule errs on the side of the tag that makes a user the broker's administrator
    findings = policy_findings([res(USER, "app", {"name": "app", "password": "x", "tags": ["monitoring", tag]},
                                    secret_inputs=["password"])])
    [finding] = of_rule(findings, "rabbitmq-no-admin-users")
    assert finding["enforcement"] == "mandatory"
    assert finding["resource_type"] == USER
    assert "remove the tag" in finding["message"]


@pytest.mark.parametrize("tags", [[], ["monitoring"], None])
def test_user_without_admin_tag_passes(policy_findings, tags):
    inputs: dict[str, Any] = {"name": "svc", "password": "x"}
    if tags is not None:
        inputs["tags"] = tags
    assert "rabbitmq-no-admin-users" not in rule_ids(policy_findings([res(USER, "svc", inputs)]))


def test_unknown_tags_are_not_applicable(policy_findings, policy_not_applicable):
    user = res(USER, "svc", {"name": "svc", "tags": UNKNOWN_ARRAY})
    assert "rabbitmq-no-admin-users" not in rule_ids(policy_findings([user]))
    reasons = [na["reason"] for na in policy_not_applicable([user]) if na["rule"] == "rabbitmq-no-admin-users"]
    assert reasons and "tags" in reasons[0]


# -- rabbitmq-least-privilege ----------------------------------------------------------------------


def test_match_all_permissions_are_reported_once_per_field(policy_findings):
    grant = res(PERMISSIONS, "app", {"user": "app", "vhost": "dev",
                                      "permissions": {"configure": ".*", "write": ".*", "read": "^app\\.work$"}})
    findings = of_rule(policy_findings([grant]), "rabbitmq-least-privilege")
    assert sorted(f["message"].split("permission ")[1].split("=")[0] for f in findings) == ["configure", "write"]
    assert all("'^inference" in f["message"] for f in findings)  # the message shows a narrow example


@pytest.mark.parametrize("pattern", ["^.*$", ".+", "work", "(", "^(app|.*)$"])
def test_broad_or_invalid_patterns_are_reported(policy_findings, pattern):
    grant = res(PERMISSIONS, "app", {"user": "app", "vhost": "dev",
                                      "permissions": {"configure": "^$", "write": pattern, "read": "^$"}})
    assert "rabbitmq-least-privilege" in rule_ids(policy_findings([grant]))


def test_patterns_naming_own_objects_pass(policy_findings):
    grant = res(PERMISSIONS, "inference", {"user": "dev-inference", "vhost": "dev", "permissions": {
        "configure": "^$", "write": "^ml\\.requests$", "read": "^inference\\.(work|dlq)$"}})
    assert "rabbitmq-least-privilege" not in rule_ids(policy_findings([grant]))


def test_topic_permissions_are_checked(policy_findings):
    broad = res(TOPIC_PERMISSIONS, "broad", {"user": "app", "vhost": "dev", "permissions": [
        {"exchange": "ml.events", "write": ".*", "read": ""}]})
    narrow = res(TOPIC_PERMISSIONS, "narrow", {"user": "app", "vhost": "dev", "permissions": [
        {"exchange": "ml.events", "write": "^inference\\.done$", "read": ""}]})
    # read: which routing keys the user's queues may bind with, so ".*" receives every other service's messages
    reads_all = res(TOPIC_PERMISSIONS, "reads-all", {"user": "app", "vhost": "dev", "permissions": [
        {"exchange": "ml.events", "write": "^inference\\.done$", "read": ".*"}]})
    findings = of_rule(policy_findings([broad, narrow, reads_all]), "rabbitmq-least-privilege")
    assert sorted(f["urn"].rsplit("::", 1)[1] for f in findings) == ["broad", "reads-all"]
    [read] = [f for f in findings if f["urn"].endswith("::reads-all")]
    assert "permissions[0].read" in read["message"], read["message"]


def test_unknown_permission_is_not_applicable(policy_findings, policy_not_applicable):
    grant = res(PERMISSIONS, "app", {"user": "app", "vhost": "dev",
                                      "permissions": {"configure": UNKNOWN_STRING, "write": "^$", "read": "^$"}})
    assert "rabbitmq-least-privilege" not in rule_ids(policy_findings([grant]))
    assert any(na["rule"] == "rabbitmq-least-privilege" for na in policy_not_applicable([grant]))


# -- rabbitmq-no-default-vhost ---------------------------------------------------------------------


def test_topology_in_default_vhost_is_reported(policy_findings):
    explicit = res(EXCHANGE, "explicit", {"name": "ml.requests", "vhost": "/",
                                          "settings": {"type": "topic", "durable": True}})
    implicit = res(QUEUE, "implicit", {"name": "inference.work", "settings": {"durable": True}})
    findings = of_rule(policy_findings([explicit, implicit]), "rabbitmq-no-default-vhost")
    messages = {f["urn"].rsplit("::", 1)[1]: f["message"] for f in findings}
    assert set(messages) == {"explicit", "implicit"}
    assert "has no vhost" in messages["implicit"]
    assert "rabbitmq.VHost" in messages["explicit"]


def test_topology_in_own_vhost_passes(policy_findings):
    binding = res(BINDING, "b", {"vhost": "dev", "source": "ml.requests", "destination": "inference.work",
                                 "destinationType": "queue", "routingKey": "inference.request"})
    policy = res(POLICY, "p", {"name": "ha", "vhost": "dev", "policy": {"pattern": ".*", "applyTo": "queues",
                                                                         "definition": {"max-length": "1000"}}})
    assert "rabbitmq-no-default-vhost" not in rule_ids(policy_findings([binding, policy, work_queue()]))


def test_required_vhost_missing_is_not_applicable(policy_not_applicable):
    # Binding's vhost is required by the provider: without it the rule cannot know where it lands.
    binding = res(BINDING, "b", {"source": "x", "destination": "y", "destinationType": "queue"})
    assert any(na["rule"] == "rabbitmq-no-default-vhost" for na in policy_not_applicable([binding]))


# -- rabbitmq-exchange-durable ---------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"type": "topic"}, {"type": "topic", "durable": False}, None])
def test_transient_exchange_is_reported(policy_findings, settings):
    inputs: dict[str, Any] = {"name": "ml.requests", "vhost": "dev"}
    if settings is not None:
        inputs["settings"] = settings
    [finding] = of_rule(policy_findings([res(EXCHANGE, "requests", inputs)]), "rabbitmq-exchange-durable")
    assert "settings.durable=True" in finding["message"]


def test_durable_exchange_passes(policy_findings):
    exchange = res(EXCHANGE, "requests", {"name": "ml.requests", "vhost": "dev",
                                          "settings": {"type": "topic", "durable": True, "autoDelete": False}})
    assert "rabbitmq-exchange-durable" not in rule_ids(policy_findings([exchange]))


# -- rabbitmq-queue-durable -------------------------------------------------------------------------


def test_transient_or_auto_delete_queue_is_reported(policy_findings):
    transient = res(QUEUE, "transient", {"name": "a.work", "vhost": "dev", "settings": {"durable": False}})
    auto_delete = work_queue("b.work", autoDelete=True)
    findings = of_rule(policy_findings([transient, auto_delete]), "rabbitmq-queue-durable")
    messages = {f["urn"].rsplit("::", 1)[1]: f["message"] for f in findings}
    assert set(messages) == {"transient", "b-work"}
    assert "durable=True" in messages["transient"]
    assert "auto_delete=False" in messages["b-work"] and "not durable" not in messages["b-work"]


def test_durable_queue_passes(policy_findings):
    assert "rabbitmq-queue-durable" not in rule_ids(policy_findings([work_queue()]))


def test_unknown_durability_is_not_applicable(policy_findings, policy_not_applicable):
    queue = res(QUEUE, "q", {"name": "q.work", "vhost": "dev", "settings": {"durable": UNKNOWN_STRING}})
    assert "rabbitmq-queue-durable" not in rule_ids(policy_findings([queue]))
    assert any(na["rule"] == "rabbitmq-queue-durable" for na in policy_not_applicable([queue]))


# -- rabbitmq-publish-keys-enforced (stack rule) ------------------------------------------------------

RULE_KEYS = "rabbitmq-publish-keys-enforced"


def exchange(name: str, kind: str, vhost: str = "ml-dev") -> dict[str, Any]:
    return res(EXCHANGE, name.replace(".", "-"), {"name": name, "vhost": vhost,
                                                  "settings": {"type": kind, "durable": True, "autoDelete": False}})


def writer(user: str = "ml-dev-gateway", write: str = "^(ml\\.requests)$", vhost: str = "ml-dev") -> dict[str, Any]:
    return res(PERMISSIONS, f"permissions-{user}", {"user": user, "vhost": vhost, "permissions": {
        "configure": "^$", "write": write, "read": "^$"}})


def topic_grant(user: str = "ml-dev-gateway", exchange: str = "ml.requests",
                write: str = "^(preprocess\\.request|training\\.request)$") -> dict[str, Any]:
    return res(TOPIC_PERMISSIONS, f"topic-permissions-{user}", {"user": user, "vhost": "ml-dev", "permissions": [
        {"exchange": exchange, "write": write, "read": "^$"}]})


def test_a_writer_of_a_topic_exchange_with_its_own_topic_permission_passes(policy_findings):
    findings = policy_findings([exchange("ml.requests", "topic"), exchange("ml.dead-letter", "direct"), writer(),
                                topic_grant()])
    assert RULE_KEYS not in rule_ids(findings)


def test_a_writer_of_a_direct_exchange_is_reported_mandatory(policy_findings):
    """The audit's finding: ml.requests direct, so gateway could publish inference.request."""
    [finding] = of_rule(policy_findings([exchange("ml.requests", "direct"), writer(), topic_grant()]), RULE_KEYS)
    assert finding["enforcement"] == "mandatory"
    assert finding["urn"].endswith("::permissions-ml-dev-gateway")
    assert "'ml.requests'" in finding["message"] and "direct exchange" in finding["message"]
    assert "topic exchanges only" in finding["message"]


def test_a_writer_of_a_topic_exchange_without_a_topic_permission_on_it_is_reported(policy_findings):
    other = topic_grant(exchange="ml.events", write="^(data\\.preprocessed)$")
    [finding] = of_rule(policy_findings([exchange("ml.requests", "topic"), writer(), other]), RULE_KEYS)
    assert "no topic permission" in finding["message"] and "rabbitmq.TopicPermissions(" in finding["message"]


def test_exchanges_the_user_may_not_write_or_of_another_vhost_are_not_judged(policy_findings):
    findings = policy_findings([exchange("ml.requests", "direct", vhost="other"), exchange("ml.dead-letter", "direct"),
                                writer(), writer("ml-dev-metrics", write="^$")])
    assert RULE_KEYS not in rule_ids(findings)


def test_two_topic_permissions_of_one_user_are_reported(policy_findings):
    """One resource per exchange, as the messaging layer had before ml.requests was a topic exchange: the provider's
    id is user@vhost and its delete/update clear all of the user's topic permissions, so they undo each other."""
    events = res(TOPIC_PERMISSIONS, "topic-permissions-preprocess-ml-events", {
        "user": "ml-dev-preprocess", "vhost": "ml-dev",
        "permissions": [{"exchange": "ml.events", "write": "^(data\\.preprocessed)$", "read": "^$"}]})
    requests = res(TOPIC_PERMISSIONS, "topic-permissions-preprocess-ml-requests", {
        "user": "ml-dev-preprocess", "vhost": "ml-dev",
        "permissions": [{"exchange": "ml.requests", "write": "^(inference\\.request)$", "read": "^$"}]})
    resources = [exchange("ml.requests", "topic"), exchange("ml.events", "topic"),
                 writer("ml-dev-preprocess", write="^(ml\\.requests|ml\\.events)$"), events, requests]
    [finding] = of_rule(policy_findings(resources), RULE_KEYS)
    assert finding["enforcement"] == "mandatory"
    assert finding["urn"].endswith("::topic-permissions-preprocess-ml-requests")
    assert "'ml-dev-preprocess'" in finding["message"] and "user@vhost" in finding["message"]
    # One resource holding both entries passes; so do two users with one resource each.
    merged = res(TOPIC_PERMISSIONS, "topic-permissions-preprocess", {
        "user": "ml-dev-preprocess", "vhost": "ml-dev",
        "permissions": [*events["inputs"]["permissions"], *requests["inputs"]["permissions"]]})
    assert RULE_KEYS not in rule_ids(policy_findings([*resources[:3], merged]))
    assert RULE_KEYS not in rule_ids(policy_findings([exchange("ml.requests", "topic"), writer(), topic_grant(),
                                                      topic_grant("ml-dev-other", write="^(x)$")]))


def test_an_unknown_exchange_type_is_not_applicable(policy_findings, policy_not_applicable):
    resources = [exchange("ml.requests", UNKNOWN_STRING), writer(), topic_grant()]
    assert RULE_KEYS not in rule_ids(policy_findings(resources))
    assert any(na["rule"] == RULE_KEYS and "settings.type" in na["reason"] for na in policy_not_applicable(resources))


# -- rabbitmq-queue-dead-letter (stack rule) --------------------------------------------------------------


def test_work_queue_without_a_dead_lettering_policy_is_reported_advisory_in_dev_mandatory_in_staging(
        policy_findings):
    queue = work_queue()
    [dev] = of_rule(policy_findings([queue], env="dev"), "rabbitmq-queue-dead-letter")
    [staging] = of_rule(policy_findings([queue], env="staging"), "rabbitmq-queue-dead-letter")
    assert (dev["enforcement"], staging["enforcement"]) == ("advisory", "mandatory")
    assert dev["urn"].endswith("::inference-work")
    assert "dead-letter-exchange" in dev["message"] and "inference.dlq" in dev["message"]
    assert "rabbitmq.Policy" in dev["message"]


def test_work_queue_with_a_dead_lettering_policy_passes(policy_findings):
    findings = policy_findings([work_queue(), queue_policy(), work_queue("inference.dlq")])
    assert "rabbitmq-queue-dead-letter" not in rule_ids(findings)


@pytest.mark.parametrize(("policy", "why"), [
    (queue_policy(vhost="other"), "another vhost"),
    (queue_policy(pattern="^training\\.work$"), "a pattern that does not match"),
    (queue_policy(apply_to="exchanges"), "applies to exchanges"),
    (queue_policy(message_ttl="60000"), "no dead-letter-exchange in its definition"),
])
def test_a_policy_that_does_not_dead_letter_this_queue_does_not_count(policy_findings, policy, why):
    findings = of_rule(policy_findings([work_queue(), policy]), "rabbitmq-queue-dead-letter")
    assert len(findings) == 1, why


def test_only_the_highest_priority_matching_policy_applies(policy_findings):
    # RabbitMQ applies one policy per queue: a broader, higher-priority policy hides the queue's own.
    broad = queue_policy(pattern=".*", priority=20, max_length="1000")
    [finding] = of_rule(policy_findings([work_queue(), queue_policy(priority=10), broad]),
                        "rabbitmq-queue-dead-letter")
    assert "queue-inference.work-20-dev" in finding["message"] and "highest priority" in finding["message"]
    lower = queue_policy(pattern=".*", priority=1, max_length="1000")
    assert "rabbitmq-queue-dead-letter" not in rule_ids(policy_findings([work_queue(), queue_policy(), lower]))


@pytest.mark.parametrize(("queue_type", "apply_to", "dead_letters"), [
    ("quorum", "quorum_queues", True),
    ("classic", "classic_queues", True),  # RabbitMQ 3.12+: apply-to classic_queues, quorum_queues, streams
    ("classic", "quorum_queues", False),  # a quorum-queue policy never applies to a classic queue
    ("quorum", "classic_queues", False),
    ("stream", "streams", True),
    (None, "classic_queues", True),  # no x-queue-type: the vhost's default type decides, unseen here
])
def test_a_policy_for_one_queue_type_applies_only_to_queues_of_that_type(policy_findings, queue_type, apply_to,
                                                                         dead_letters):
    arguments = {"x-queue-type": queue_type} if queue_type else {}
    queue = work_queue(argumentsJson=json.dumps(arguments))
    findings = policy_findings([queue, queue_policy(apply_to=apply_to)], env="staging")
    assert ("rabbitmq-queue-dead-letter" not in rule_ids(findings)) is dead_letters


def test_a_dead_letter_exchange_queue_argument_counts_here(policy_findings):
    legacy = work_queue(argumentsJson=json.dumps({"x-queue-type": "quorum",
                                                  "x-dead-letter-exchange": "ml.dead-letter"}))
    findings = policy_findings([legacy])
    assert "rabbitmq-queue-dead-letter" not in rule_ids(findings)
    assert "rabbitmq-queue-settings-by-policy" in rule_ids(findings), "the argument itself is reported there"


def test_a_dead_letter_queue_needs_no_dead_lettering(policy_findings):
    dlq = res(QUEUE, "dlq", {"name": "inference.dlq", "vhost": "dev", "settings": {"durable": True}})
    assert "rabbitmq-queue-dead-letter" not in rule_ids(policy_findings([dlq]))


def test_an_unknown_policy_pattern_is_not_applicable(policy_findings, policy_not_applicable):
    unknown = queue_policy(pattern=UNKNOWN_STRING)
    assert "rabbitmq-queue-dead-letter" not in rule_ids(policy_findings([work_queue(), unknown]))
    assert any(na["rule"] == "rabbitmq-queue-dead-letter" and "pattern" in na["reason"]
               for na in policy_not_applicable([work_queue(), unknown]))


def test_every_queue_is_matched_against_every_policy_of_the_stack(policy_findings):
    """The policies are read once per stack: each queue still gets the policy that applies to it."""
    queues = [work_queue(f"svc{i}.work") for i in range(4)]
    policies = [queue_policy(f"svc{i}.work") for i in (0, 2)] + [queue_policy("svc3.work", message_ttl="60000")]
    findings = of_rule(policy_findings([*queues, *policies]), "rabbitmq-queue-dead-letter")
    assert sorted((f["urn"].rsplit("::", 1)[1], "sets no dead-letter-exchange" in f["message"]) for f in findings) == [
        ("svc1-work", False), ("svc3-work", True)]


def test_an_unknown_policy_makes_every_queue_that_reaches_it_undecided(policy_findings, policy_not_applicable):
    resources = [work_queue("a.work"), work_queue("b.work"), queue_policy("a.work"),
                 queue_policy("x", pattern=UNKNOWN_STRING), work_queue("c.dlq")]
    assert "rabbitmq-queue-dead-letter" not in rule_ids(policy_findings(resources))
    [reason] = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == "rabbitmq-queue-dead-letter"]
    assert ".policy.pattern" in reason


# -- rabbitmq-queue-settings-by-policy -------------------------------------------------------------------


@pytest.mark.parametrize("arguments", [
    {"x-queue-type": "quorum", "x-message-ttl": 3600000},
    {"x-queue-type": "quorum", "x-max-length": 1000, "x-overflow": "reject-publish"},
    {"x-queue-type": "quorum", "x-delivery-limit": 5, "x-dead-letter-exchange": "ml.dead-letter"},
])
def test_settings_that_may_change_as_queue_arguments_are_reported(policy_findings, arguments):
    [finding] = of_rule(policy_findings([work_queue(argumentsJson=json.dumps(arguments))]),
                        "rabbitmq-queue-settings-by-policy")
    assert finding["enforcement"] == "mandatory"
    for key in arguments:
        if key != "x-queue-type":
            assert key in finding["message"] and f"'{key[2:]}'" in finding["message"]
    assert "rabbitmq.Policy" in finding["message"] and "PRECONDITION_FAILED" in finding["message"]


def test_string_arguments_are_checked_too(policy_findings):
    queue = res(QUEUE, "q", {"name": "a.work", "vhost": "dev", "settings": {
        "durable": True, "arguments": {"x-queue-type": "quorum", "x-max-length": "10"}}})
    [finding] = of_rule(policy_findings([queue]), "rabbitmq-queue-settings-by-policy")
    assert "OperatorPolicy" in finding["message"]


def test_a_queue_with_only_its_type_as_argument_passes(policy_findings):
    assert "rabbitmq-queue-settings-by-policy" not in rule_ids(policy_findings([work_queue()], env="prod"))


# -- rabbitmq-queue-quorum ---------------------------------------------------------------------------


def test_classic_queue_is_reported_mandatory_in_prod(policy_findings):
    classic = res(QUEUE, "c", {"name": "inference.work", "vhost": "prod", "settings": {"durable": True}})
    [dev] = of_rule(policy_findings([classic], env="dev"), "rabbitmq-queue-quorum")
    [prod] = of_rule(policy_findings([classic], env="prod"), "rabbitmq-queue-quorum")
    assert (dev["enforcement"], prod["enforcement"]) == ("advisory", "mandatory")
    assert "x-queue-type" in prod["message"] and "classic" in prod["message"]


def test_quorum_queue_passes(policy_findings):
    assert "rabbitmq-queue-quorum" not in rule_ids(policy_findings([work_queue()], env="prod"))


def test_unknown_queue_arguments_are_not_applicable(policy_findings, policy_not_applicable):
    queue = res(QUEUE, "q", {"name": "q.work", "vhost": "dev",
                             "settings": {"durable": True, "arguments": {"x-queue-type": UNKNOWN_STRING}}})
    assert "rabbitmq-queue-quorum" not in rule_ids(policy_findings([queue]))
    assert any(na["rule"] == "rabbitmq-queue-quorum" for na in policy_not_applicable([queue]))


@pytest.mark.parametrize("settings", [
    {"argumentsJson": UNKNOWN_STRING},
    {"arguments": {"x-message-ttl": UNKNOWN_STRING}},
])
def test_unknown_queue_arguments_leave_settings_by_policy_undecided(policy_findings, policy_not_applicable, settings):
    queue = work_queue(**settings)
    assert "rabbitmq-queue-settings-by-policy" not in rule_ids(policy_findings([queue]))
    assert any(na["rule"] == "rabbitmq-queue-settings-by-policy" for na in policy_not_applicable([queue]))


# -- rabbitmq-queue-length-limit (stack rule) -------------------------------------------------------------

LENGTH_RULE = "rabbitmq-queue-length-limit"


def operator_policy(pattern: str, *, vhost: str = "dev", priority: int = 10, apply_to: str = "quorum_queues",
                    **definition: str) -> dict[str, Any]:
    values = {key.replace("_", "-"): value for key, value in definition.items()}
    name = f"limits-{priority}-{vhost}"
    return res(OPERATOR_POLICY, name, {"name": name, "vhost": vhost, "policy": {
        "pattern": pattern, "priority": priority, "applyTo": apply_to, "definition": values}})


def test_a_queue_without_a_length_limit_is_reported_dlqs_included(policy_findings):
    # a DLQ nobody consumes grows until the broker's memory or disk alarm blocks every publisher
    findings = of_rule(policy_findings([work_queue(), queue_policy(), work_queue("inference.dlq")], env="staging"),
                       LENGTH_RULE)
    assert sorted(f["urn"].rsplit("::", 1)[-1] for f in findings) == ["inference-dlq", "inference-work"]
    assert all(f["enforcement"] == "mandatory" for f in findings)
    assert "max-length" in findings[0]["message"] and "rabbitmq.OperatorPolicy" in findings[0]["message"]


def test_a_limit_from_an_operator_policy_the_queues_policy_or_its_argument_passes(policy_findings):
    limits = operator_policy("^inference\\.(work|dlq)$", max_length="100000")
    resources = [work_queue(), queue_policy(), work_queue("inference.dlq"), limits]
    assert not of_rule(policy_findings(resources), LENGTH_RULE)
    own = queue_policy(max_length_bytes="1000000", dead_letter_exchange="ml.dead-letter")
    assert not of_rule(policy_findings([work_queue(), own]), LENGTH_RULE)
    argument = work_queue(argumentsJson=json.dumps({"x-queue-type": "quorum", "x-max-length": 10}))
    assert not of_rule(policy_findings([argument, queue_policy()]), LENGTH_RULE)


@pytest.mark.parametrize(("limits", "why"), [
    (operator_policy("^inference\\.work$", vhost="other", max_length="10"), "another vhost"),
    (operator_policy("^inference\\.work$", apply_to="streams", max_length="10"), "another queue type"),
    (operator_policy("^inference\\.work$", max_age="1D"), "no length key"),
])
def test_an_operator_policy_that_does_not_limit_this_queue_does_not_count(policy_findings, limits, why):
    assert len(of_rule(policy_findings([work_queue(), queue_policy(), limits]), LENGTH_RULE)) == 1, why


def test_a_stream_is_bounded_by_its_retention_not_by_max_length(policy_findings):
    """A stream keeps every message until its retention (max-length-bytes or max-age, policy or argument) drops
    a segment; max-length does not apply to streams (RabbitMQ docs, "Streams": retention; the management UI offers
    x-max-length for other queue types only), so a stream bounded by max-length alone grows without bound."""
    stream = work_queue("events.log", argumentsJson=json.dumps({"x-queue-type": "stream"}))
    by_count = operator_policy("^events\\.log$", apply_to="streams", max_length="100000")
    (finding,) = of_rule(policy_findings([stream, by_count]), LENGTH_RULE)
    assert "max-length-bytes" in finding["message"] and "stream" in finding["message"]
    by_bytes = operator_policy("^events\\.log$", apply_to="streams", max_length_bytes="10000000000")
    assert not of_rule(policy_findings([stream, by_bytes]), LENGTH_RULE)
    by_age = queue_policy("events.log", apply_to="streams", max_age="7D")
    assert not of_rule(policy_findings([stream, by_age]), LENGTH_RULE)
    own = work_queue("events.log", argumentsJson=json.dumps({"x-queue-type": "stream", "x-max-length": 10}))
    assert of_rule(policy_findings([own]), LENGTH_RULE)


def test_an_unknown_operator_policy_pattern_leaves_the_length_rule_undecided(policy_findings, policy_not_applicable):
    resources = [work_queue(), queue_policy(), operator_policy(UNKNOWN_STRING, max_length="10")]
    assert not of_rule(policy_findings(resources), LENGTH_RULE)
    assert any(na["rule"] == LENGTH_RULE and "pattern" in na["reason"] for na in policy_not_applicable(resources))


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_platforms_queues_all_have_a_length_limit(rule_outcome, env):
    doc = snapshot_document(env, "messaging")
    assert rule_outcome(LENGTH_RULE, env, doc) == ([], [])
    doc["resources"] = [r for r in doc["resources"] if r["type"] != OPERATOR_POLICY
                        or "dead-letter" not in r["inputs"]["name"]]
    findings, _ = rule_outcome(LENGTH_RULE, env, doc)
    consumers = sorted(spec.name for spec in load_catalog() if spec.consumes)  # the shipped four and any service added
    assert {"gateway", "inference", "preprocess", "training"} <= set(consumers)
    assert sorted(f["urn"].rsplit("::", 1)[-1] for f in findings) == [f"messaging-queue-{svc}-dlq" for svc in consumers]
