"""The benchmark's inputs are what they claim to be (no timings are asserted here: targets live in
`nox -s bench`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from shared.bench import TARGETS, generated_catalog, resource_modules
from shared.catalog import Catalog

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("count", [2, 50, 200])
def test_generated_catalog_is_a_valid_catalog_of_that_size(count: int) -> None:
    catalog = Catalog.model_validate(generated_catalog(count))
    assert len(catalog.names()) == count
    for publisher, _exchange, key, queues in catalog.routes():
        assert queues, f"{publisher} publishes {key} to nobody"


def test_import_floor_covers_every_resource_type_the_layers_use(tmp_path: Path) -> None:
    shutil.copytree(SNAPSHOTS, tmp_path / "build")
    modules = resource_modules(tmp_path / "build")
    assert all(importlib.util.find_spec(module) for module in modules)
    types = {r["type"] for path in SNAPSHOTS.glob("*/*.json") for r in json.loads(path.read_text())["resources"]
             if r["type"].startswith("aws:")}
    assert len({t.split(":")[1] for t in types}) <= len([m for m in modules if m.startswith("pulumi_aws.")])
    assert "pulumi_aws.ecs.task_definition" in modules and "pulumi_rabbitmq.queue" in modules


def test_targets_are_the_issue_s_ratios() -> None:
    figures = {"import_floor_s": 1.0, "policy_all_envs_s": 2.5, "per_stack_process_s": 10.0,
               "services_50_s": 2.0, "services_200_s": 9.0, "program_import_floor_s": 1.0, "program_100_s": 1.5}
    assert all(check(figures) for check in TARGETS.values())
    assert not TARGETS["policy_all_envs_s <= 2.5 x import_floor_s"]({**figures, "policy_all_envs_s": 2.6})


def test_the_generated_program_has_at_most_100_resources_of_pulumi_aws(tmp_path: Path) -> None:
    from shared.bench import generated_program
    from shared.synth.engine import synth_program

    document = synth_program(generated_program(tmp_path), preview=True)
    types = [resource["type"] for resource in document["resources"]]
    assert 90 <= len(types) <= 100
    assert {t.split(":")[0] for t in types} == {"aws", "pulumi"}
    assert types.count("aws:ecs/service:Service") == 8


def test_the_program_target_is_twice_its_own_floor() -> None:
    check = TARGETS["program_100_s <= 2 x program_import_floor_s"]
    assert check({"program_100_s": 2.0, "program_import_floor_s": 1.0})
    assert not check({"program_100_s": 2.1, "program_import_floor_s": 1.0})


@pytest.mark.parametrize("count", [50, 200])
def test_the_generated_envs_pass_the_loader_with_every_service_released(
        count: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nox -s bench` synthesizes and judges these envs: each must load, its broker holding the generated services
    at their peak (the loader refuses a broker that cannot), and release all of them."""
    from shared.bench import _scenario_dir
    from shared.catalog import CATALOG_ENV_VAR
    from shared.envs import ENV_DIR_VAR, load_env

    catalog, env_dir = _scenario_dir(count, tmp_path)
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    monkeypatch.setenv(ENV_DIR_VAR, str(env_dir))
    for path in sorted(env_dir.glob("*.yaml")):
        env = load_env(path.stem)
        assert len(env.release.images) == count, path.name
