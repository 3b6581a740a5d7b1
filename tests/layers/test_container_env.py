"""README's table of what a service's container gets in its environment (the contract app developers code against)
names exactly the variables and secrets the shipped envs' task definitions give the apps."""

from __future__ import annotations

import json
import re

import pytest

from shared import REPO_ROOT
from shared.catalog import load_catalog
from shared.components.compute_containers import env_var_name
from tests.layers.resource_types import ENVS
from tests.synth_helpers import synth_layers

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
START = "<!-- container-env: start"
END = "<!-- container-env: end -->"
#: Documented, but in no shipped env: only a canary version's tasks get it (App Mesh canaries).
CANARY_ONLY = {"SERVICE_VERSION"}


def readme_names() -> set[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index(START):text.index(END)]
    names: set[str] = set()
    for row in table.splitlines()[3:]:
        names.update(re.findall(r"`([A-Z<>_0-9]+)`", row.split("|")[1]))
    return names


def synthesized_names(env: str) -> set[str]:
    """Every environment variable and secret name the env's app containers get, a callee's URL as ``<CALLEE>_URL``."""
    urls = {env_var_name(spec.name, "URL") for spec in load_catalog()}
    names: set[str] = set()
    for resource in synth_layers(env, "compute")["compute"]["resources"]:
        if resource["type"] != TASK_DEFINITION:
            continue
        for container in json.loads(resource["inputs"]["containerDefinitions"]):
            if container["name"] in ("scratch-init", "envoy"):
                continue
            for entry in (*container.get("environment", []), *container.get("secrets", [])):
                names.add("<CALLEE>_URL" if entry["name"] in urls else entry["name"])
    return names


@pytest.mark.parametrize("env", ENVS)
def test_readme_names_every_variable_the_apps_get(env: str) -> None:
    assert synthesized_names(env) <= readme_names()


def test_readme_names_no_variable_the_apps_do_not_get() -> None:
    given = set().union(*(synthesized_names(env) for env in ENVS))
    assert readme_names() - given == CANARY_ONLY
