"""The discovery and mesh layers pass the policy catalog: no unsuppressed mandatory finding in any env,
with either mesh provider. The App Mesh variant is checked at every env's levels (staging and prod make
the App Mesh rules mandatory); ``appmesh-discontinued`` must stay advisory and must fire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from shared.synth.engine import synth_env

ENVS = ["dev", "staging", "prod"]
CANARY = [{"version": "stable", "weight": 90}, {"version": "canary", "weight": 10}]


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as started:
        yield started


def blocking(env: str, engine: PolicyEngine) -> tuple[list[str], list[Any]]:
    docs = synth_env(env, ["mesh"])
    result = evaluate_documents_result([docs["discovery"], docs["mesh"]], env, engine=engine)
    return [f"{f.layer} {f.rule} {f.urn}: {f.message}" for f in result.findings if f.blocking], result.findings


@pytest.mark.parametrize("env", ENVS)
def test_service_connect_envs_have_no_blocking_findings(env: str, engine: PolicyEngine) -> None:
    problems, _ = blocking(env, engine)
    assert problems == []


def test_appmesh_with_a_canary_and_static_instances_has_no_blocking_findings_in_any_env(
    edit_env: Any, engine: PolicyEngine,
) -> None:
    instance = {"service": "training", "instance_id": "gpu-box-1", "ipv4": "10.10.5.4", "port": 8083}
    for env in ENVS:
        edit_env(env, lambda data: (data["mesh"].update(provider="appmesh", canaries={"inference": CANARY}),
                                    data.setdefault("discovery", {}).update(static_instances=[instance])))
    for env in ENVS:
        problems, findings = blocking(env, engine)
        assert problems == [], env
        discontinued = [f for f in findings if f.rule == "appmesh-discontinued"]
        assert discontinued and all(f.enforcement == "advisory" for f in discontinued)
