"""What a writer hands over by reference (``<service>/handoff/``) expires, also after the writer left.

An S3 lifecycle filter is one literal key prefix (botocore s3 LifecycleRuleFilter: Prefix, Tag, object sizes; no
wildcard), so the artifact bucket has one rule per writing service. Compute exports the services it has a rule for
(``handoff_writers``) and its next ``up`` keeps the rule of one that no longer writes (removed from the catalog, or
``read`` now): dropping it left that writer's payloads stored, and billed, for good. The change is an in-place update
of the bucket's one lifecycle configuration (its ``bucket`` is the only input that replaces it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.artifact_names import HANDOFF_DAYS, handoff_prefix
from shared.catalog import CATALOG_ENV_VAR
from shared.contracts import stack_reference_name
from shared.envs import load_env
from shared.synth.engine import layer_dir, referenced_outputs, synth_env, synth_program
from tests.spec_envs import SPEC_CATALOG

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def handoff_rules(document: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """rule id -> (its prefix, its expiration days), of the artifact bucket's lifecycle."""
    lifecycle = next(r for r in document["resources"] if r["type"] == LIFECYCLE and r["name"] == "compute-artifacts")
    return {rule["id"]: (rule["filter"]["prefix"], rule["expiration"]["days"])
            for rule in lifecycle["inputs"]["rules"] if rule["id"].startswith("handoff-")}


def synth_compute(own: dict[str, Any] | None) -> dict[str, Any]:
    """dev's compute layer with its upstreams as synthesized and ``own`` as its own stack's last outputs."""
    env = load_env("dev")
    documents = synth_env("dev", ["messaging", "mesh"])
    outputs = {stack_reference_name(env.pulumi_org, layer, env.name): referenced_outputs(document)
               for layer, document in documents.items()}
    if own is not None:
        outputs[stack_reference_name(env.pulumi_org, "compute", env.name)] = own
    return synth_program(layer_dir("compute"), stack=env.name, layer="compute", env=env.name,
                         account_id=env.account_id, region=env.region, stack_outputs=outputs,
                         organization=env.pulumi_org, env_vars={"PLATFORM_BROKER_RUNNING": ""})


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch copy of the shipped catalog, in force through PLATFORM_CATALOG."""
    path = tmp_path / "catalog.yaml"
    path.write_text(SPEC_CATALOG.read_text())
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    return path


def set_artifacts(path: Path, service: str, access: str) -> None:
    data = yaml.safe_load(path.read_text())
    data["services"][service]["artifacts"] = access
    path.write_text(yaml.safe_dump(data, sort_keys=False))


#: every shipped service publishes, so each may hand a payload over (README, "Model artifacts"), in catalog order
PUBLISHERS = ["gateway", "preprocess", "inference", "training"]


def stop_publishing(path: Path, service: str) -> None:
    data = yaml.safe_load(path.read_text())
    data["services"][service].pop("publishes", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_writer_that_reads_only_now_keeps_its_handoff_rule(catalog: Path, env_dir: Any) -> None:
    first = synth_compute(None)  # the first up: no stack outputs yet
    assert handoff_rules(first) == {f"handoff-{s}": (handoff_prefix(s), HANDOFF_DAYS) for s in PUBLISHERS}
    assert first["outputs"]["handoff_writers"] == PUBLISHERS
    assert handoff_rules(synth_compute(first["outputs"])) == handoff_rules(first)  # the next up, no change

    set_artifacts(catalog, "training", "read")
    stop_publishing(catalog, "training")  # neither writes models nor publishes: no longer a handoff writer
    later = synth_compute(first["outputs"])
    assert handoff_rules(later) == handoff_rules(first)
    assert later["outputs"]["handoff_writers"] == PUBLISHERS
    # and the up after it still has it: the record outlives the writer
    assert handoff_rules(synth_compute(later["outputs"])) == handoff_rules(first)


def test_a_new_writer_comes_first_and_former_ones_after_it(catalog: Path, env_dir: Any) -> None:
    first = synth_compute({"handoff_writers": ["a-removed-writer"], "cluster_name": "x"})
    assert list(handoff_rules(first)) == [*(f"handoff-{s}" for s in PUBLISHERS), "handoff-a-removed-writer"]
    assert handoff_rules(first)["handoff-a-removed-writer"] == (handoff_prefix("a-removed-writer"), HANDOFF_DAYS)
    assert first["outputs"]["handoff_writers"] == [*PUBLISHERS, "a-removed-writer"]


def test_a_stack_deployed_before_the_output_keeps_what_the_catalog_says(catalog: Path, env_dir: Any) -> None:
    assert list(handoff_rules(synth_compute({"cluster_name": "x"}))) == [f"handoff-{s}" for s in PUBLISHERS]
