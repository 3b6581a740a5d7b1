"""The compute layer passes the policy catalog: no unsuppressed mandatory finding in any env, with either
mesh provider, with a canary and with the public gateway (the packs run as real processes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.layers.compute_helpers import ENVS, fresh, platform
from tests.synth_helpers import gateway_certificate

CANARY = [{"version": "stable", "weight": 90}, {"version": "canary", "weight": 10}]


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as started:
        yield started


def findings(doc: dict[str, Any], env: str, engine: PolicyEngine) -> tuple[list[str], list[str]]:
    result = evaluate_documents_result([doc], env, engine=engine)
    described = [f"{f.rule} {f.resource_name or f.urn}: {f.message}" for f in result.findings]
    blocking = [f"{f.rule} {f.resource_name or f.urn}: {f.message}" for f in result.blocking]
    return blocking, described


@pytest.mark.parametrize("env", ENVS)
def test_service_connect_compute_has_no_blocking_findings(env: str, engine: PolicyEngine) -> None:
    blocking, _ = findings(platform(env)["compute"], env, engine)
    assert blocking == []


def test_prod_compute_has_no_findings_at_all(engine: PolicyEngine) -> None:
    assert findings(platform("prod")["compute"], "prod", engine)[1] == []


def test_appmesh_canary_and_public_gateway_compute_has_no_blocking_findings_in_any_env(
    edit_env: Any, engine: PolicyEngine,
) -> None:
    for env in ENVS:
        certificate = gateway_certificate(env)  # the env's own account
        edit_env(env, lambda data, certificate=certificate: (
            data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True,
                                canaries={"inference": CANARY}),
            data["compute"].update(public_gateway=True, certificate_arn=certificate),
            # staging and prod make appmesh-discontinued mandatory: running App Mesh there takes a reason.
            data["policy"].update(suppressions=[{"rule": "appmesh-discontinued", "resource": "*",
                                                 "reason": "App Mesh kept until the Service Connect env is live"}])))
    for env in ENVS:
        blocking, _ = findings(fresh(env)["compute"], env, engine)
        assert blocking == [], env


def test_the_packs_do_see_compute_problems(edit_env: Any, engine: PolicyEngine) -> None:
    # A release tag instead of a digest is allowed by the schema but must be caught in staging.
    edit_env("staging", lambda data: data["release"]["images"].update(gateway="latest"))
    blocking, _ = findings(fresh("staging")["compute"], "staging", engine)
    assert [line.split(" ", 1)[0] for line in blocking] == ["ecs-task-image-pinned"]
