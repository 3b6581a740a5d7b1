"""secretsmanager-rotation is mandatory in every baseline, and each env's broker layer passes it: the broker
admin's secret rotates through its SecretRotation (the rule's tests in test_aws_coverage_rules.py cover the
rule itself). Judged by the real pack processes over the synthesized layer."""

from __future__ import annotations

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from shared.policy_catalog import load_rules
from shared.synth.engine import synth_env

RULE = "secretsmanager-rotation"


@pytest.mark.parametrize("baseline", ["dev", "staging", "prod"])
def test_the_rule_is_mandatory_in_every_baseline(baseline: str) -> None:
    assert load_rules()[RULE].level_for(baseline) == "mandatory"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_broker_layers_admin_secret_rotates_under_the_rule(env: str, policy_engine: PolicyEngine) -> None:
    document = synth_env(env, ["broker"])["broker"]
    result = evaluate_documents_result([document], env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule == RULE] == []
    assert not [na for na in result.not_applicable if na.rule == RULE]
    assert result.exit_code == 0


def test_without_credentials_rotation_the_broker_admin_secret_fails_the_rule(
        edit_env: object, policy_engine: PolicyEngine) -> None:
    edit_env("dev", lambda data: data["messaging"].pop("credentials_rotation"))  # type: ignore[operator]
    document = synth_env("dev", ["broker"])["broker"]
    result = evaluate_documents_result([document], env_name="dev", engine=policy_engine)
    found = [f for f in result.findings if f.rule == RULE]
    assert [(f.enforcement, "never rotates" in f.message) for f in found] == [("mandatory", True)]
    assert result.exit_code == 1
