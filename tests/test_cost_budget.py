"""The env's cost budget (``alarms.monthly_cost_usd``, README "The cost budget"): an AWS Budgets budget on the month's
costs of the env's region that notifies the alarm topic, which the topic's policy and its KMS key let AWS Budgets
publish to, and which the deploy role may manage, that one budget only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import deploy_role
from shared.components.alarms import COST_NOTIFICATIONS, cost_budget_name
from shared.envs import load_env
from shared.synth.engine import synth_env
from tests import iam_eval
from tests.synth_helpers import of_type, synth_layers

BUDGET = "aws:budgets/budget:Budget"
SHIPPED_AMOUNTS = {"dev": 500, "staging": 900, "prod": 2000}


@pytest.mark.parametrize("env_name", sorted(SHIPPED_AMOUNTS))
def test_each_shipped_env_holds_its_region_to_a_monthly_amount_and_notifies_the_alarm_topic(env_name: str) -> None:
    env = load_env(env_name)
    broker = synth_layers(env_name, "broker")["broker"]
    [budget] = of_type(broker, BUDGET)
    inputs = budget["inputs"]
    topic = f"arn:aws:sns:{env.region}:{env.account_id}:{env_name}-ml-alarms"
    assert (inputs["name"], inputs["budgetType"], inputs["timeUnit"]) == (f"{env_name}-ml-cost", "COST", "MONTHLY")
    assert (inputs["limitAmount"], inputs["limitUnit"]) == (str(SHIPPED_AMOUNTS[env_name]), "USD")
    # another env of the account, in another region, has a budget of its own
    assert inputs["costFilters"] == [{"name": "Region", "values": [env.region]}]
    # the forecast past the amount, then the actual cost at 80 % and 100 % (README, "The cost budget")
    assert [(n["notificationType"], n["threshold"]) for n in inputs["notifications"]] == [
        ("FORECASTED", 100), ("ACTUAL", 80), ("ACTUAL", 100)] == list(COST_NOTIFICATIONS)
    assert all(n["comparisonOperator"] == "GREATER_THAN" and n["thresholdType"] == "PERCENTAGE"
               and n["subscriberSnsTopicArns"] == [topic] for n in inputs["notifications"])
    # one budget of a name per account: replaced delete first; created after the policy that lets Budgets publish
    assert budget["delete_before_replace"] is True
    [policy] = [r for r in of_type(broker, "aws:sns/topicPolicy:TopicPolicy")]
    assert policy["urn"] in budget["dependencies"]


@pytest.mark.parametrize("env_name", sorted(SHIPPED_AMOUNTS))
def test_the_alarm_topic_and_its_key_let_this_account_s_budgets_publish(env_name: str) -> None:
    env = load_env(env_name)
    broker = synth_layers(env_name, "broker")["broker"]
    [policy] = of_type(broker, "aws:sns/topicPolicy:TopicPolicy")
    [statement] = [s for s in json.loads(policy["inputs"]["policy"])["Statement"] if s["Sid"] == "BudgetsPublish"]
    assert statement["Principal"] == {"Service": "budgets.amazonaws.com"} and statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": env.account_id},
                                      "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{env.account_id}:*"}}
    keys = [r for r in of_type(broker, "aws:kms/key:Key") if "Alarm notifications" in r["inputs"]["description"]]
    [key] = keys
    [grant] = [s for s in json.loads(key["inputs"]["policy"])["Statement"] if s["Sid"] == "BudgetsPublish"]
    assert grant["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_an_env_without_an_amount_has_no_budget(edit_env: Any) -> None:
    edit_env("dev", lambda data: data.pop("alarms"))
    assert not load_env("dev").alarms.monthly_cost_usd
    assert of_type(synth_env("dev", ["broker"])["broker"], BUDGET) == []


@pytest.mark.parametrize("amount", [0, -5, "a lot", 1_000_000_001])  # the last: past the bound of a billion
def test_an_amount_that_is_no_positive_whole_number_of_dollars_is_refused_naming_the_key(
        edit_env: Any, amount: Any) -> None:
    from shared.errors import ConfigError, ConfigErrors

    edit_env("dev", lambda data: data["alarms"].update(monthly_cost_usd=amount))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env("dev")
    assert "alarms.monthly_cost_usd" in str(raised.value), str(raised.value)


def test_the_deploy_role_manages_the_env_s_budget_and_no_other() -> None:
    env = load_env("prod")
    policies = deploy_role.deploy_policies("prod", environ={}, documents=synth_layers("prod"))
    statements = [statement for policy in policies for statement in policy.document["Statement"]]
    own = f"arn:aws:budgets::{env.account_id}:budget/{cost_budget_name('prod')}"
    other = f"arn:aws:budgets::{env.account_id}:budget/finance-team"
    for action in ("budgets:ModifyBudget", "budgets:ViewBudget", "budgets:TagResource",
                   "budgets:ListTagsForResource"):
        assert iam_eval.allows(statements, action, own), action
        assert not iam_eval.allows(statements, action, other), action
