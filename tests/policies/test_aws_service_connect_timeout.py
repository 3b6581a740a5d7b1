"""``ecs-service-connect-timeout`` through the real pack: a Service Connect ``timeout`` block that sets one of
its two timeouts loses the other (the provider sends it as 0, ECS's "off"), and an idle timeout below the
per-request one closes the connection first; both set and ordered passes, no block passes, and a timeout
still unknown at preview leaves the rule undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import SERVICE

RULE = "ecs-service-connect-timeout"


def service(timeout: dict[str, Any] | None, enabled: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"portName": "inference-http", "discoveryName": "inference",
                             "clientAlias": [{"dnsName": "inference.dev.ml.internal", "port": 8082}]}
    if timeout is not None:
        entry["timeout"] = timeout
    return res(SERVICE, "inference", {
        "name": "inference", "launchType": "FARGATE",
        "serviceConnectConfiguration": {"enabled": enabled, "namespace": "arn:ns", "services": [entry]}})


def messages(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == RULE]


@pytest.mark.parametrize("timeout", [
    None, {"perRequestTimeoutSeconds": 120, "idleTimeoutSeconds": 300},
    {"perRequestTimeoutSeconds": 120, "idleTimeoutSeconds": 120},
    {"perRequestTimeoutSeconds": 0, "idleTimeoutSeconds": 0},
    {"perRequestTimeoutSeconds": 600, "idleTimeoutSeconds": 0},
])
def test_both_timeouts_set_with_the_idle_one_not_cutting_requests_short_pass(policy_findings: Any,
                                                                             timeout: dict[str, Any] | None) -> None:
    assert messages(policy_findings([service(timeout)], env="prod")) == []


@pytest.mark.parametrize(("timeout", "unset"), [
    ({"perRequestTimeoutSeconds": 120}, "idleTimeoutSeconds"),
    ({"idleTimeoutSeconds": 3600}, "perRequestTimeoutSeconds"),
])
def test_a_timeout_block_setting_one_timeout_fails_naming_the_other(policy_findings: Any, timeout: dict[str, Any],
                                                                    unset: str) -> None:
    found = messages(policy_findings([service(timeout)], env="prod"))
    assert len(found) == 1, found
    assert f"sets no {unset}" in found[0] and "'inference-http'" in found[0] and "as 0" in found[0]
    # an idle timeout alone is what a tcp port would want, but the provider sends the per-request one as 0, which
    # ECS refuses there: the finding says to drop the block rather than to add a per-request timeout
    tcp_hint = "on a tcp port" in found[0] and "drop the timeout block" in found[0]
    assert tcp_hint == (unset == "perRequestTimeoutSeconds")


def test_an_idle_timeout_below_the_per_request_one_fails(policy_findings: Any) -> None:
    found = messages(policy_findings([service({"perRequestTimeoutSeconds": 120, "idleTimeoutSeconds": 60})],
                                     env="prod"))
    assert len(found) == 1 and "idleTimeoutSeconds 60 below perRequestTimeoutSeconds 120" in found[0], found


def test_it_is_mandatory_in_prod(policy_findings: Any) -> None:
    (finding,) = [f for f in policy_findings([service({"perRequestTimeoutSeconds": 120})], env="prod")
                  if f["rule"] == RULE]
    assert finding["enforcement"] == "mandatory", finding


def test_a_disabled_service_connect_is_not_judged(policy_findings: Any) -> None:
    assert messages(policy_findings([service({"perRequestTimeoutSeconds": 120}, enabled=False)], env="prod")) == []


def test_a_timeout_unknown_at_preview_leaves_the_rule_undecided(policy_result: Any) -> None:
    # an unknown number as the Python SDK sends any unknown: the string sentinel (pulumi/runtime/rpc.py UNKNOWN)
    result = policy_result([service({"perRequestTimeoutSeconds": UNKNOWN_STRING, "idleTimeoutSeconds": 300})],
                           env="prod")
    assert not [f for f in result.findings if f.rule == RULE]
    reasons = [na.reason for na in result.not_applicable if na.rule == RULE]
    assert reasons and "services[0].timeout" in reasons[0], reasons
