"""Policy rule ``secretsmanager-recovery-window`` through the real pack process: a compliant, a non-compliant and an
unknown-at-preview case, the levels per baseline, and the shipped envs' secrets."""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy.enforcement import enforcement_for
from tests.policies.resources import UNKNOWN_NUMBER, res
from tests.policies.tokens import SECRET

RULE = "secretsmanager-recovery-window"


def judged(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize("inputs", [{}, {"recoveryWindowInDays": 7}, {"recoveryWindowInDays": 30}])
def test_a_secret_that_can_be_restored_passes(policy_findings: Any, inputs: dict[str, Any]) -> None:
    assert judged(policy_findings([res(SECRET, "r", inputs)], env="prod")) == []


def test_a_secret_deleted_without_recovery_fails_in_prod(policy_findings: Any) -> None:
    [finding] = [f for f in policy_findings([res(SECRET, "r", {"recoveryWindowInDays": 0})], env="prod")
                 if f["rule"] == RULE]
    assert finding["enforcement"] == "mandatory"
    assert "recovery_window_in_days=0" in finding["message"] and "between 7 and 30" in finding["message"]


def test_an_unknown_window_is_decided_at_up(policy_result: Any) -> None:
    result = policy_result([res(SECRET, "r", {"recoveryWindowInDays": UNKNOWN_NUMBER})], env="prod")
    assert not [f for f in result.findings if f.rule == RULE]
    reasons = [na.reason for na in result.not_applicable if na.rule == RULE]
    assert reasons and any("recoveryWindowInDays" in reason for reason in reasons), reasons


def test_envs_that_delete_their_secrets_at_once_are_not_held_to_it() -> None:
    assert {env: enforcement_for(env).levels[RULE] for env in ("dev", "staging", "prod")} == {
        "dev": "disabled", "staging": "advisory", "prod": "mandatory"}


def test_the_shipped_prod_passes_and_dev_deletes_at_once(policy_findings: Any) -> None:
    from tests.synth_helpers import of_type, synth_layers

    for env, window in (("prod", 30), ("dev", 0)):
        secrets = [s for layer in synth_layers(env, "broker", "messaging").values() for s in of_type(layer, SECRET)]
        assert secrets and {s["inputs"].get("recoveryWindowInDays") for s in secrets} == {window}, env
