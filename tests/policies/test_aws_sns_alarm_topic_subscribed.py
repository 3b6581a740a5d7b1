"""``sns-alarm-topic-subscribed`` (stack rule) through the real aws pack: a topic that the stack's alarms
notify needs a subscription; the synthesized envs without ``alarms`` subscriptions are reported (advisory),
with one they pass; a subscription whose topic cannot be told leaves the rule undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import GOOD_TAGS, res, rule_ids
from tests.policies.test_aws_cloudwatch_alarms import single_alarm
from tests.policies.tokens import ALARM, COMPOSITE, TOPIC
from tests.policies.tokens import TOPIC_SUBSCRIPTION as SUBSCRIPTION

RULE = "sns-alarm-topic-subscribed"


def topic(name: str = "alarms-topic") -> dict[str, Any]:
    return res(TOPIC, name, {"name": f"dev-ml-{name}", "tags": GOOD_TAGS})


def notifying(target: dict[str, Any]) -> dict[str, Any]:
    alarm = single_alarm(alarmActions=["arn:aws:sns:eu-west-1:111111111111:dev-ml-alarms"])
    alarm["property_dependencies"] = {"alarmActions": [target], "okActions": [target]}
    alarm["dependencies"] = [target]
    return alarm


def subscription(target: dict[str, Any] | None, name: str = "alarms-email", **inputs: Any) -> dict[str, Any]:
    resource = res(SUBSCRIPTION, name, {"topic": "arn:aws:sns:eu-west-1:111111111111:dev-ml-alarms",
                                        "protocol": "email", "endpoint": "oncall@example.com", **inputs})
    if target is not None:
        resource["property_dependencies"] = {"topic": [target]}
        resource["dependencies"] = [target]
    return resource


def findings_of(policy_findings: Any, resources: list[dict[str, Any]], env: str = "prod") -> list[dict[str, Any]]:
    return [f for f in policy_findings(resources, env=env) if f["rule"] == RULE]


def test_a_subscribed_alarm_topic_passes(policy_findings):
    alarms = topic()
    assert RULE not in rule_ids(policy_findings([alarms, notifying(alarms), subscription(alarms)], env="prod"))


def test_an_alarm_topic_nobody_subscribed_to_is_reported(policy_findings):
    alarms, other = topic(), topic("other-topic")
    [finding] = findings_of(policy_findings, [alarms, other, notifying(alarms), subscription(other)])
    assert finding["enforcement"] == "advisory" and "'alarms-topic'" in finding["message"]
    assert "has no subscription: every ALARM goes unheard" in finding["message"]


def test_a_topic_no_alarm_notifies_is_not_judged(policy_findings, policy_not_applicable):
    resources = [topic(), single_alarm()]
    assert RULE not in rule_ids(policy_findings(resources, env="prod"))
    assert any(na["rule"] == RULE and "no alarm of the stack notifies" in na["reason"]
               for na in policy_not_applicable(resources, env="prod"))


def test_a_subscription_of_an_unknown_topic_leaves_the_rule_undecided(policy_findings, policy_not_applicable):
    alarms, other = topic(), topic("other-topic")
    unknown = subscription(None, topic="04da6b54-80e4-46f7-96ec-b56ff0331ba9")
    unknown["dependencies"] = [alarms, other]
    resources = [alarms, other, notifying(alarms), unknown]
    assert RULE not in rule_ids(policy_findings(resources, env="prod"))
    assert any(na["rule"] == RULE and "'alarms-email'" in na["reason"]
               for na in policy_not_applicable(resources, env="prod"))


@pytest.mark.parametrize("subscribed", [False, True])
def test_the_synthesized_broker_layer(policy_findings, edit_env, subscribed):
    from shared.synth.engine import synth_env

    if subscribed:
        edit_env("prod", lambda data: data.update(alarms={"email": ["ml-oncall@example.com"]}))
    broker = synth_env("prod", ["broker"])["broker"]
    resources = [res(r["type"], r["name"], r["inputs"], urn=r["urn"], dependencies=r["dependencies"],
                     property_dependencies=r.get("property_dependencies", {}))
                 for r in broker["resources"] if r["type"] in (TOPIC, ALARM, SUBSCRIPTION)]
    assert bool(findings_of(policy_findings, resources)) is not subscribed




def composite(target: dict[str, Any], prop: str) -> dict[str, Any]:
    """A composite alarm whose ``prop`` names ``target`` (at preview: its ARN unknown, the engine's dependency)."""
    alarm = res(COMPOSITE, "service-down", {"alarmName": "dev-ml-service-down", "alarmRule": 'ALARM("dev-ml-a")',
                                            "tags": GOOD_TAGS, prop: ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"]})
    alarm["property_dependencies"] = {prop: [target]}
    alarm["dependencies"] = [target]
    return alarm


@pytest.mark.parametrize("prop", ["alarmActions", "okActions", "insufficientDataActions"])
def test_a_composite_alarm_topic_needs_a_subscription_too(policy_findings, prop):
    alarms = topic()
    [finding] = findings_of(policy_findings, [alarms, composite(alarms, prop)])
    assert "'alarms-topic'" in finding["message"] and "has no subscription" in finding["message"]
    assert RULE not in rule_ids(policy_findings([alarms, composite(alarms, prop), subscription(alarms)], env="prod"))


def test_an_action_is_matched_by_the_topics_arn_not_its_name(policy_findings, policy_not_applicable):
    # an alarm action is an ARN: a string equal to the topic's name is not that topic
    alarms = res(TOPIC, "alarms-topic", {"name": "dev-ml-alarms", "tags": GOOD_TAGS,
                                         "arn": "arn:aws:sns:eu-west-1:111111111111:dev-ml-alarms"})
    by_name = res(COMPOSITE, "service-down", {"alarmName": "dev-ml-service-down", "alarmRule": 'ALARM("dev-ml-a")',
                                              "tags": GOOD_TAGS, "alarmActions": ["dev-ml-alarms"]})
    assert RULE not in rule_ids(policy_findings([alarms, by_name], env="prod"))
    assert any(na["rule"] == RULE and "no alarm of the stack notifies" in na["reason"]
               for na in policy_not_applicable([alarms, by_name], env="prod"))
    by_arn = res(COMPOSITE, "service-down", {"alarmName": "dev-ml-service-down", "alarmRule": 'ALARM("dev-ml-a")',
                                             "tags": GOOD_TAGS, "alarmActions": [alarms["inputs"]["arn"]]})
    assert RULE in rule_ids(policy_findings([alarms, by_arn], env="prod"))
