"""The discovery and mesh layers pass the policy catalog: no unsuppressed mandatory finding in any env,
with either mesh provider. The App Mesh variant is checked at every env's levels (staging and prod make
the App Mesh rules mandatory); ``appmesh-discontinued`` fires everywhere, advisory in dev and mandatory
in staging and prod, where only a suppression with a reason lets App Mesh through."""

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


def _appmesh(data: dict[str, Any], instance: dict[str, Any], suppress: bool) -> None:
    data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True, canaries={"inference": CANARY})
    data.setdefault("discovery", {}).update(static_instances=[instance])
    if suppress:
        data["policy"]["suppressions"] = [{"rule": "appmesh-discontinued", "resource": "*",
                                           "reason": "App Mesh kept until the Service Connect env takes traffic"}]


@pytest.mark.parametrize("suppress", [False, True], ids=["unsuppressed", "suppressed"])
def test_appmesh_with_a_canary_and_static_instances_blocks_beyond_dev_only_on_appmesh_discontinued(
    edit_env: Any, engine: PolicyEngine, suppress: bool,
) -> None:
    instance = {"service": "training", "instance_id": "gpu-box-1", "ipv4": "10.10.5.4", "port": 8083}
    for env in ENVS:
        edit_env(env, lambda data: _appmesh(data, instance, suppress))
    for env in ENVS:
        problems, findings = blocking(env, engine)
        discontinued = [f for f in findings if f.rule == "appmesh-discontinued"]
        assert discontinued, env
        if env == "dev" or suppress:
            assert problems == [], env
        else:
            assert problems and all(" appmesh-discontinued " in line for line in problems), (env, problems)
            assert all(f.enforcement == "mandatory" for f in discontinued)
