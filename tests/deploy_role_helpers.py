"""What the deploy role's tests read from the synth and the role's policies (their cases: the ``shipped`` and
``everything`` fixtures of tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from shared import deploy_role


def statements_of(policies: list[deploy_role.ManagedPolicy]) -> list[dict[str, Any]]:
    """Every statement of the role's managed policies."""
    return [statement for policy in policies for statement in policy.document["Statement"]]


def layer_provider(document: dict[str, Any]) -> dict[str, Any]:
    """The layer's one explicit AWS provider (its default tags are the env's)."""
    (provider,) = [r for r in document["resources"] if r["type"] == "pulumi:providers:aws"]
    return provider


def default_tags(document: dict[str, Any]) -> dict[str, str]:
    """The default tags the layer's provider puts on each resource it creates."""
    default = layer_provider(document)["inputs"]["defaultTags"]
    return dict((json.loads(default) if isinstance(default, str) else default)["tags"])


def each_resource(cases: Iterable[tuple[str, Any, dict[str, Any], list[deploy_role.ManagedPolicy]]]) -> Iterator[
        tuple[str, Any, list[dict[str, Any]], str, dict[str, Any], dict[str, Any]]]:
    """Each resource of each case's synth: (the case's label, its env, its role's statements, the layer, the layer's
    synth document, the resource)."""
    for label, env, documents, policies in cases:
        statements = statements_of(policies)
        for layer, document in documents.items():
            for resource in document["resources"]:
                yield label, env, statements, layer, document, resource
