"""AWS size and count limits a real ``up`` hits as the catalog grows, judged offline by the ``aws`` pack: for each
rule a compliant case, a non-compliant case and a case whose deciding value is unknown at preview (through the
real pack process), and the synthesized layers of a generated catalog (``shared.bench``) that cross the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.policies.resources import res

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
FUNCTION = "aws:lambda/function:Function"


def findings_of(findings: list[dict[str, Any]], rule: str) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == rule]


@pytest.fixture(scope="module")
def generated_envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bench's generated catalog of 200 services and env files releasing all of them (``nox -s bench``)."""
    from shared.bench import _scenario_dir
    from shared.catalog import CATALOG_ENV_VAR
    from shared.envs import ENV_DIR_VAR

    root = tmp_path_factory.mktemp("services-200")
    catalog, env_dir = _scenario_dir(200, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CATALOG_ENV_VAR, str(catalog))
        patch.setenv(ENV_DIR_VAR, str(env_dir))
        yield root


def layer_findings(policy_engine: PolicyEngine, env: str, layer: str) -> list[dict[str, Any]]:
    from shared.synth.engine import synth_env

    document = synth_env(env, [layer])[layer]
    result = evaluate_documents_result([document], env_name=env, engine=policy_engine)
    return [finding.to_json() for finding in result.findings]


# --- lambda-environment-size -------------------------------------------------------------------

LAMBDA_RULE = "lambda-environment-size"


def function(variables: dict[str, str]) -> dict[str, Any]:
    return res(FUNCTION, "publisher", {"runtime": "python3.12", "handler": "index.handler", "role": "arn:aws:iam::"
                                       "111111111111:role/publisher", "environment": {"variables": variables}})


@pytest.mark.parametrize(("variables", "violates"), [
    ({"QUEUES": "a" * 4083}, False),  # {"QUEUES":"..."}: 13 + 4083 = 4096 bytes, Lambda's limit exactly
    ({"QUEUES": "a" * 4084}, True),
    ({"QUEUES": "é" * 2042}, True),  # 2042 characters, 4084 bytes in UTF-8: 4097 in all
    ({"A": "x" * 2000, "B": "y" * 2100}, True),  # no variable alone is too long: they count together
    ({}, False),
], ids=["at-the-limit", "one-byte-over", "utf-8-bytes", "together", "none"])
def test_lambda_environment_size(policy_findings: Any, variables: dict[str, str], violates: bool) -> None:
    found = findings_of(policy_findings([function(variables)]), LAMBDA_RULE)
    assert bool(found) is violates
    if violates:
        assert "4096" in found[0] and "code package" in found[0]


def test_lambda_environment_size_waits_for_an_unknown_value(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [function({"QUEUES": "short", "SECRET_ARN": UNKNOWN_STRING})]
    assert findings_of(policy_findings(resources), LAMBDA_RULE) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == LAMBDA_RULE]
    assert reasons and "SECRET_ARN" in reasons[0]
    # known values that already cross the limit decide whatever the unknown one turns out to be
    crossing = [function({"QUEUES": "a" * 5000, "SECRET_ARN": UNKNOWN_STRING})]
    assert findings_of(policy_findings(crossing), LAMBDA_RULE)


def test_the_queue_metrics_publisher_of_the_shipped_dev_fits(policy_engine: PolicyEngine) -> None:
    assert findings_of(layer_findings(policy_engine, "dev", "messaging"), LAMBDA_RULE) == []


def test_200_generated_services_cross_the_queue_metrics_publishers_4_kb(
        generated_envs: Path, policy_engine: PolicyEngine) -> None:
    """The publisher lists every work queue and DLQ in QUEUES: 400 queues of the bench's 200 services measure
    about 4.8 KB, so ``up`` of such an env fails at the messaging layer."""
    found = findings_of(layer_findings(policy_engine, "dev", "messaging"), LAMBDA_RULE)
    assert len(found) == 1 and "QUEUES" in found[0], found
