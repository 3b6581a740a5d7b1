"""``aws-api-model-valid``: a value AWS's model of the call refuses is found at preview, through the real pack.

The walk itself (shared.api_model) has its own tests (tests/test_api_model.py); these hold the rule to it: what it
reports, what it skips (unknown values, inputs no member takes, types the table does not map), and that the shipped
envs give it nothing to say.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.dag import LAYERS
from shared.synth.engine import synth_env
from tests.policies.conftest import FindingsOf, RuleOutcome
from tests.policies.resources import UNKNOWN_NUMBER, UNKNOWN_STRING, messages, res
from tests.policies.tokens import LOG_GROUP, REPO

RULE = "aws-api-model-valid"


def log_group(**inputs: Any) -> dict[str, Any]:
    return res(LOG_GROUP, "app-logs", {"name": "/ml/dev/app", "retentionInDays": 30, **inputs})


def repository(**inputs: Any) -> dict[str, Any]:
    return res(REPO, "inference", {"name": "ml/inference", "imageTagMutability": "IMMUTABLE", **inputs})


def test_values_the_model_admits_pass(policy_findings: FindingsOf) -> None:
    assert messages(policy_findings([log_group(), repository()]), RULE, "app-logs") == []
    assert messages(policy_findings([repository()]), RULE, "inference") == []


@pytest.mark.parametrize(("resource", "name", "said"), [
    # botocore ecr ImageTagMutability: MUTABLE | IMMUTABLE | ...; a text is named by its length alone (below)
    (repository(imageTagMutability="SOMETIMES"), "inference",
     "inputs.imageTagMutability: a text of 9 characters is not one of ImageTagMutability's values (MUTABLE"),
    # CloudWatch Logs' retention days, as the model's documentation of PutRetentionPolicy lists them
    (log_group(retentionInDays=17), "app-logs", "inputs.retentionInDays: 17 is not one of"),
    # botocore logs LogGroupName: at most 512 characters
    (log_group(name="/" + "a" * 600), "app-logs", "inputs.name: 601 characters"),
])
def test_a_value_the_model_refuses_is_a_finding_naming_input_and_operation(
        policy_findings: FindingsOf, resource: dict[str, Any], name: str, said: str) -> None:
    (message,) = messages(policy_findings([resource], env="prod"), RULE, name)
    assert said in message, message
    assert message.startswith("AWS's model of the call refuses it: ") and message.endswith(")"), message


def test_a_finding_names_no_text_value(policy_findings: FindingsOf) -> None:
    # CrossGuard unwraps secrets before a rule sees them: a refused text input may be a password (an Amazon MQ user's,
    # a SecretVersion's), so no message holds the text
    secret = "Pa55word-That-Is-Refused"
    (message,) = messages(policy_findings([repository(imageTagMutability=secret)]), RULE, "inference")
    assert secret not in message and f"a text of {len(secret)} characters" in message, message


def test_it_is_advisory_everywhere(policy_findings: FindingsOf) -> None:
    for env in ("dev", "staging", "prod"):
        found = [f for f in policy_findings([repository(imageTagMutability="SOMETIMES")], env=env)
                 if f["rule"] == RULE]
        assert [f["enforcement"] for f in found] == ["advisory"], (env, found)


def test_unknown_values_are_skipped_and_the_known_ones_still_judged(policy_findings: FindingsOf) -> None:
    assert messages(policy_findings([log_group(retentionInDays=UNKNOWN_NUMBER, name=UNKNOWN_STRING)]), RULE,
                    "app-logs") == []
    (message,) = messages(policy_findings([log_group(retentionInDays=17, name=UNKNOWN_STRING)]), RULE, "app-logs")
    assert "retentionInDays: 17" in message


def test_an_input_no_member_takes_is_not_reported(policy_findings: FindingsOf) -> None:
    # the provider's own settings (force_delete) and inputs the table does not map are not AWS refusals
    assert messages(policy_findings([repository(forceDelete=True, somethingNew="x")]), RULE, "inference") == []


def test_the_shipped_envs_give_it_nothing_to_say(rule_outcome: RuleOutcome) -> None:
    documents = synth_env("dev", list(LAYERS))
    findings, _ = rule_outcome(RULE, "dev", *documents.values())
    assert findings == []
