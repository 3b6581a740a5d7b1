"""Fixtures of the policy tests: rules are exercised through the real pack processes.

``policy_findings(resources, env="dev", stack_name="test")`` wraps the resources in a synth
document (:func:`tests.policies.resources.document`), sends it through the three packs over the
Analyzer protocol -- the same engine ``nox -s policy`` uses, with the env's levels and suppressions
-- and returns the findings as JSON dicts. The pack processes live for the whole test session.

Each document is also evaluated as a real ``up`` and a first preview send it, and must be judged alike
(:mod:`tests.policies.stages`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from shared.policy.findings import PolicyResult
from tests.policies.resources import document, rule_ids
from tests.policies.stages import STAGED, stage_differences

__all__ = ["rule_ids"]

Findings = list[dict[str, Any]]
FindingsOf = Callable[..., Findings]


@pytest.fixture(scope="session")
def policy_engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as engine:
        yield engine


def judged_alike(documents: list[dict[str, Any]], env: str | None, enforcement: dict[str, str] | None,
                 engine: PolicyEngine) -> PolicyResult:
    """The offline result of ``documents``, after asserting the other stages judge them alike."""
    result = evaluate_documents_result(documents, env_name=env, enforcement=enforcement, engine=engine)
    for stage in STAGED:
        staged = evaluate_documents_result(documents, env_name=env, enforcement=enforcement, engine=engine,
                                           stage=stage)
        problems = stage_differences(result, staged, stage)
        assert not problems, f"judged unlike offline in the {stage} stage:\n  " + "\n  ".join(problems)
    return result


@pytest.fixture
def policy_result(policy_engine: PolicyEngine) -> Callable[..., PolicyResult]:
    """Like ``policy_findings`` but the whole :class:`PolicyResult` (findings + not-applicable records)."""

    def run(resources: list[dict[str, Any]], env: str | None = "dev", stack_name: str = "test",
            enforcement: dict[str, str] | None = None) -> PolicyResult:
        doc = document(resources, env=env, stack=stack_name)
        return judged_alike([doc], env, enforcement, policy_engine)

    return run


@pytest.fixture
def policy_findings(policy_result: Callable[..., PolicyResult]) -> FindingsOf:
    def run(resources: list[dict[str, Any]], env: str | None = "dev", stack_name: str = "test",
            enforcement: dict[str, str] | None = None) -> Findings:
        result = policy_result(resources, env=env, stack_name=stack_name, enforcement=enforcement)
        return [finding.to_json() for finding in result.findings]

    return run


@pytest.fixture
def policy_not_applicable(policy_result: Callable[..., PolicyResult]) -> Callable[..., list[dict[str, Any]]]:
    """``[{rule, urn, reason}]`` of the rules that could not decide (type mismatches left out)."""

    def run(resources: list[dict[str, Any]], env: str | None = "dev", stack_name: str = "test") -> list[dict[str, Any]]:
        result = policy_result(resources, env=env, stack_name=stack_name)
        return [{"rule": na.rule, "urn": na.urn, "reason": na.reason} for na in result.not_applicable
                if "is not a resource type this rule checks" not in na.reason]

    return run


RuleOutcome = Callable[..., tuple[Findings, list[str]]]


@pytest.fixture
def rule_outcome(policy_engine: PolicyEngine) -> RuleOutcome:
    """``rule_outcome(rule, env, *documents)``: the findings of ``rule`` over the documents (JSON dicts) and the
    reasons it was not applicable, as ``nox -s policy`` judges them for ``env``."""

    def run(rule: str, env: str, *documents: dict[str, Any]) -> tuple[Findings, list[str]]:
        result = judged_alike(list(documents), env, None, policy_engine)
        return ([finding.to_json() for finding in result.findings if finding.rule == rule],
                [na.reason for na in result.not_applicable if na.rule == rule])

    return run
