"""Reading synth documents in tests."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Set
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

from shared.synth.engine import dumps, synth_env
from tests.spec_envs import SPEC_ENVIRON


@cache
def synth_layers(env: str, *layers: str) -> dict[str, dict[str, Any]]:
    """The synth documents of ``layers`` of the example ``env`` (tests/fixtures/environments/, with the example
    catalog tests/fixtures/catalog.yaml) and of the layers they read, synthesized once per test run (tests read them,
    never change them). A test's scratch copy (the ``env_dir`` and ``edit_env`` fixtures, ``write_catalog``) is not
    read here: it would be cached for every later test; synthesize it with ``synth_env``."""
    with mock.patch.dict(os.environ, SPEC_ENVIRON):
        return synth_env(env, list(layers))


def of_type(document: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in document["resources"] if r["type"] == type_]


def by_name(document: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    matches = [r for r in of_type(document, type_) if r["name"] == name]
    assert len(matches) == 1, f"expected one {type_} named {name}, found {len(matches)}"
    return matches[0]


def by_urn(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in document["resources"]}


def gateway_certificate(env: str, certificate_id: str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") -> str:
    """An ACM certificate ARN of ``env``'s own account and region, as ``compute.certificate_arn`` must name (the env
    loader refuses another account's or region's)."""
    from shared.envs import load_env

    loaded = load_env(env)
    return f"arn:aws:acm:{loaded.region}:{loaded.account_id}:certificate/{certificate_id}"


def reachable(graph: Mapping[str, Set[str]], start: str) -> set[str]:
    """Every node ``start`` reaches through ``graph`` (node -> the nodes it depends on), ``start`` left out unless a
    cycle leads back to it: what the engine creates before it, and deletes after it."""
    found: set[str] = set()
    todo = [start]
    while todo:
        for node in graph.get(todo.pop(), set()) - found:
            found.add(node)
            todo.append(node)
    return found


def spec_document(env: str, layer: str) -> dict[str, Any]:
    """A fresh copy (yours to change) of ``layer``'s synth document of the example ``env``, in the form its snapshot
    file holds (tests/fixtures/environments/; tests/snapshots/ are the synth of the env files that deploy, which a fork
    sets to its own accounts)."""
    loaded: dict[str, Any] = json.loads(dumps(synth_layers(env)[layer]))
    return loaded


def spec_documents(env: str) -> dict[str, dict[str, Any]]:
    """:func:`spec_document` of every layer of ``env``, by layer."""
    return {layer: spec_document(env, layer) for layer in synth_layers(env)}


def write_spec_baseline(folder: Path, *envs: str) -> Path:
    """``folder/<env>/<layer>.json`` for each example env: its synth as ``nox -s diff`` reads an accepted baseline
    (the form of tests/snapshots/), for a test that changes a baseline the example envs' synth is judged against."""
    for env in envs:
        (folder / env).mkdir(parents=True, exist_ok=True)
        for layer, document in synth_layers(env).items():
            (folder / env / f"{layer}.json").write_text(dumps(document))
    return folder
