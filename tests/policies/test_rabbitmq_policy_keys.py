"""rabbitmq-policy-keys-supported through the real pack process: the platform's policies pass; ha-*, queue-mode,
reject-publish-dlx on quorum queues and non-integer values are reported; an unknown value is not applicable."""

from __future__ import annotations

from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.components.messaging import plan_topology
from shared.envs import load_env
from tests.policies.resources import UNKNOWN_STRING, res, rule_ids
from tests.policies.tokens import OPERATOR_POLICY
from tests.policies.tokens import RABBITMQ_POLICY as POLICY

RULE = "rabbitmq-policy-keys-supported"


def policy(definition: dict[str, Any], *, type_: str = POLICY, apply_to: str = "quorum_queues",
           name: str = "queue-training.work") -> dict[str, Any]:
    return res(type_, name.replace(".", "-"), {"name": name, "vhost": "ml-dev", "policy": {
        "pattern": "^(training\\.work)$", "priority": 10, "applyTo": apply_to, "definition": definition}})


def findings_of(policy_findings: Any, resources: list[dict[str, Any]], env: str = "dev") -> list[dict[str, Any]]:
    return [f for f in policy_findings(resources, env=env) if f["rule"] == RULE]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_platforms_own_policies_pass(policy_findings: Any, env: str) -> None:
    # Every policy the messaging layer plans for the env, as the provider receives it (values as strings).
    plan = plan_topology(load_env(env), load_catalog())
    resources = [policy({k: str(v) for k, v in p.definition.items()}, name=p.name, apply_to=p.apply_to,
                        type_=OPERATOR_POLICY if p.operator else POLICY) for p in plan.policies]
    assert any("consumer-timeout" in p.definition for p in plan.policies)
    assert findings_of(policy_findings, resources, env) == []


def test_mirroring_and_lazy_keys_are_reported_mandatory(policy_findings: Any) -> None:
    # What a 3.x quick-start policy holds: no effect on RabbitMQ 4, refused by Amazon MQ on quorum queues.
    [finding] = findings_of(policy_findings, [policy({"ha-mode": "all", "ha-sync-mode": "automatic",
                                                      "queue-mode": "lazy", "dead-letter-exchange": "ml.dead-letter"},
                                                     apply_to="queues")])
    assert finding["enforcement"] == "mandatory" and finding["resource_type"] == POLICY
    assert "ha-mode, ha-sync-mode: classic queue mirroring was removed in RabbitMQ 4.0" in finding["message"]
    assert "queue-mode: lazy queues are gone" in finding["message"]


def test_reject_publish_dlx_is_reported_where_the_policy_reaches_quorum_queues(policy_findings: Any) -> None:
    [finding] = findings_of(policy_findings, [policy({"overflow": "reject-publish-dlx"})])
    assert "quorum queues support drop-head and reject-publish only" in finding["message"]
    assert findings_of(policy_findings, [policy({"overflow": "reject-publish-dlx"}, apply_to="classic_queues")]) == []
    assert findings_of(policy_findings, [policy({"overflow": "reject-publish"})]) == []


@pytest.mark.parametrize("key", ["consumer-timeout", "delivery-limit", "max-length"])
def test_a_value_rabbitmq_cannot_read_as_an_integer_is_reported(policy_findings: Any, key: str) -> None:
    [finding] = findings_of(policy_findings, [policy({key: "6h"}, type_=OPERATOR_POLICY)])
    assert finding["message"].startswith("RabbitMQ operator policy 'queue-training.work': ")
    assert f"{key} '6h' is not an integer" in finding["message"]
    assert findings_of(policy_findings, [policy({key: "21600000"}), policy({key: 5}, name="other")]) == []


def test_delivery_limit_minus_one_is_an_integer(policy_findings: Any) -> None:
    # RabbitMQ 4.0+ reads a negative delivery-limit as "no limit": a valid value, whether wise or not.
    assert findings_of(policy_findings, [policy({"delivery-limit": "-1"})]) == []


def test_an_unknown_value_is_not_applicable(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [policy({"consumer-timeout": UNKNOWN_STRING})]
    assert RULE not in rule_ids(policy_findings(resources))
    reasons = [na["reason"] for na in policy_not_applicable(resources) if na["rule"] == RULE]
    assert reasons and "consumer-timeout" in reasons[0]
