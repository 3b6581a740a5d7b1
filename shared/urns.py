"""The URNs the Pulumi engine gives the resources of a synth document.

The engine's URN is ``urn:pulumi:<stack>::<project>::<qualified type>::<name>``, where the qualified type is the types
of every ancestor below the root stack and the resource's own, joined by ``$`` (e.g.
``a:b:Component$aws:ec2/vpc:Vpc$aws:ec2/internetGateway:InternetGateway`` in pulumi/pulumi#5869). The SDK's mock
runtime behind the synth keeps only the parent's last type (``pulumi/runtime/mocks.py``, ``make_urn``), and the root
stack's type for a top-level resource, so a change further up the parent chain (a component's type token, a
re-parented component) leaves a grandchild's mock URN alone while the engine deletes and creates it again. What
compares URNs with what the engine does (the plan diff, the packs' config, targeted updates) goes through here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def urn_parts(urn: str) -> tuple[str, str, str, str] | None:
    """(stack, project, qualified type, name) of a URN ``urn:pulumi:<stack>::<project>::<type>::<name>``, the name
    last (it may itself hold "::"); None if it is not one."""
    if not urn.startswith("urn:pulumi:"):
        return None
    parts = urn.removeprefix("urn:pulumi:").split("::", 3)
    if len(parts) != 4 or not all(parts[:3]):
        return None
    return parts[0], parts[1], parts[2], parts[3]


def make_urn(stack: str, project: str, qualified_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{qualified_type}::{name}"


def engine_urn(resource: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> str:
    """The engine's URN of ``resource`` of a synth document (``by_urn``: the document's resources by their URN), the
    chain rebuilt from the document's parent links. The same for a document already in engine URNs."""
    parts = urn_parts(str(resource["urn"]))
    if parts is None:
        raise ValueError(f"{resource['urn']!r} is not a Pulumi URN")
    stack, project, _qualified, name = parts
    # The engine's URN carries the bare stack name, also for a stack selected as <org>/<project>/<stack>.
    return make_urn(stack.rsplit("/", 1)[-1], project, _qualified_type(resource, by_urn), name)


def _qualified_type(resource: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> str:
    chain = [str(resource["type"])]
    parent = resource.get("parent")
    while parent and parent in by_urn:
        ancestor = by_urn[parent]
        chain.insert(0, str(ancestor["type"]))
        parent = ancestor.get("parent")
    return "$".join(chain)


def _engine_alias(alias: str, resource: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> str:
    """An alias the synth resolved (:meth:`shared.synth.engine.RecordingMonitor._alias_urns`) in the engine's form:
    one under the resource's own parent gets that parent's whole chain, a top-level one loses the root stack's type.
    One under another parent (an alias spec's ``parentUrn``) stays as it is: the synth does not know that parent's
    ancestors."""
    parts = urn_parts(alias)
    if parts is None:
        return alias
    stack, project, qualified, name = parts
    above, dollar, own = qualified.rpartition("$")
    if not dollar:
        return alias  # top-level already
    if above == ROOT_STACK_TYPE:
        return make_urn(stack, project, own, name)
    parent = by_urn.get(str(resource.get("parent") or ""))
    if parent is None:
        return alias
    chain = _qualified_type(parent, by_urn)
    if above in (chain, str(parent["type"])):
        return make_urn(stack, project, f"{chain}${own}", name)
    return alias


def engine_urns_of(document: Mapping[str, Any]) -> dict[str, str]:
    """Each URN of a synth document -> the engine's URN of the same resource."""
    by_urn = {str(resource["urn"]): resource for resource in document.get("resources", [])}
    return {urn: engine_urn(resource, by_urn) for urn, resource in by_urn.items()}


def engine_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose every URN (a resource's, its parent's, provider's, dependencies' and aliases') is
    the engine's. Idempotent: a document already in engine URNs comes back the same."""
    result = copy.deepcopy(dict(document))
    by_urn = {str(resource["urn"]): resource for resource in document.get("resources", [])}
    urns = engine_urns_of(document)

    def mapped(urn: Any) -> Any:
        return urns.get(urn, urn) if isinstance(urn, str) else urn

    for resource, original in zip(result.get("resources", []), document.get("resources", []), strict=True):
        resource["urn"] = urns[str(original["urn"])]
        for key in ("parent", "provider"):
            if resource.get(key):
                resource[key] = mapped(resource[key])
        if resource.get("dependencies"):
            resource["dependencies"] = [mapped(urn) for urn in resource["dependencies"]]
        if resource.get("property_dependencies"):
            resource["property_dependencies"] = {key: [mapped(urn) for urn in values]
                                                 for key, values in resource["property_dependencies"].items()}
        if resource.get("aliases"):
            resource["aliases"] = [_engine_alias(alias, original, by_urn) for alias in resource["aliases"]]
    return result
