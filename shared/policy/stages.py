"""What the real engine sends the packs at each stage of a run, built from a synth document.

The Pulumi engine does not send both calls the same properties (pulumi/pulumi
``pkg/resource/deploy/step_generator.go``, ``AnalyzeResources``: "Unlike Analyze, AnalyzeStack is called on the
final outputs of each resource"): ``Analyze`` gets a resource's *inputs*, ``AnalyzeStack`` its *outputs* -- the
inputs the provider echoes plus what AWS computes (``id``, ``arn``, ``tagsAll``...). In a preview of resources not
yet created, what AWS computes is unknown, and so is every input built from it (a flow log's ``vpcId`` before its
VPC exists). A rule tested on one shape may judge another differently, so the offline engine can send each:

``offline``
    Inputs to both calls: what a program declares. ``nox -s policy`` judges this; the packs' tests are written
    against it.
``up``
    ``Analyze`` inputs, ``AnalyzeStack`` outputs, all known: an ``up`` (its resources are created before the
    stack is analyzed) and any preview of a stack already deployed.
``first-preview``
    The first ``pulumi preview`` of a stack in an empty account: every computed output unknown, and every input
    whose value comes from one unknown too, in both calls.

Outputs are the synth mocks' answers (:class:`shared.synth.mocks.PlatformMocks`, the same values the synth gave the
program), so an ``id`` in the outputs is the one the dependent resources' inputs carry. What the mocks do not model
-- defaults the provider fills in, AWS's normalization of JSON documents -- is not in them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pulumi

from shared.jsonwalk import string_leaves
from shared.policy_support import UNKNOWN_ARRAY, UNKNOWN_BOOL, UNKNOWN_NUMBER, UNKNOWN_OBJECT, UNKNOWN_STRING

STAGES = ("offline", "up", "first-preview")
#: provider packages whose resources the mocks answer (their outputs are derived; any other type echoes its inputs)
_DERIVED_PACKAGES = ("aws", "rabbitmq", "random")
# A computed value shorter than this (a revision 1, a region) is too common to tell an input built from it.
_MIN_TRACEABLE = 8


def unknown_like(value: Any) -> str:
    """The engine's unknown sentinel for a value of ``value``'s kind."""
    if isinstance(value, bool):
        return UNKNOWN_BOOL
    if isinstance(value, int | float):
        return UNKNOWN_NUMBER
    if isinstance(value, list):
        return UNKNOWN_ARRAY
    if isinstance(value, dict):
        return UNKNOWN_OBJECT
    return UNKNOWN_STRING


@cache
def _account_region(env: str | None) -> tuple[str, str]:
    if not env:
        return "123456789012", "us-east-1"  # the mocks' own defaults (a --program run)
    from shared.envs import load_env

    loaded = load_env(env)
    return loaded.account_id, loaded.region


def _derived(resource: dict[str, Any]) -> bool:
    return bool(resource.get("custom")) and str(resource.get("type", "")).split(":", 1)[0] in _DERIVED_PACKAGES


def deployed_outputs(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{urn: outputs}`` of every resource of ``document`` once deployed: the mocks' state (inputs echoed, computed
    values added) and the ``id``; a resource of another kind (a provider, a component) echoes its inputs."""
    from shared.synth.mocks import PlatformMocks

    account, region = _account_region(document.get("env"))
    mocks = PlatformMocks(project=str(document.get("project") or ""), stack=str(document.get("stack") or ""),
                          account_id=account, region=region)
    outputs: dict[str, dict[str, Any]] = {}
    for resource in document["resources"]:
        inputs = dict(resource.get("inputs") or {})
        if not _derived(resource):
            outputs[resource["urn"]] = inputs
            continue
        args = pulumi.runtime.MockResourceArgs(typ=resource["type"], name=resource["name"], inputs=inputs,
                                               provider=resource.get("provider") or "", resource_id="", custom=True)
        try:
            resource_id, state = mocks.new_resource(args)
        except (TypeError, ValueError, KeyError, AttributeError):
            # inputs the mocks cannot compute from (a None length, an unknown sentinel): what AWS would compute
            # from them is not modelled, the inputs are echoed
            outputs[resource["urn"]] = inputs
            continue
        outputs[resource["urn"]] = {**state, "id": resource_id}
    return outputs


def first_preview(document: dict[str, Any],
                  outputs: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(inputs, outputs)`` by URN as a first preview sends them: what AWS computes is unknown (not an autoname or
    ``tagsAll``, which the plan decides, unless ``tags`` is unknown), and so is a
    (top-level) input whose value comes from it, at any depth of dependency.

    Where a value comes from: the resources its ``property_dependencies`` name; "from it": one of their unknown
    values stands in the input's text (a policy document with a role's ARN in it is unknown as a whole, as
    ``Output.apply`` makes it). Providers and components keep their inputs (they exist before any AWS call).
    """
    from shared.synth.mocks import autonamed_property

    resources = {resource["urn"]: resource for resource in document["resources"]}
    unknown_keys: dict[str, set[str]] = {}
    for urn, resource in resources.items():
        inputs = resource.get("inputs") or {}
        # Known in a preview: an autoname (the provider's Check picks it) and tagsAll (the plan merges the tags).
        known = {autonamed_property(resource["type"]), "tagsAll", *inputs}
        unknown_keys[urn] = {key for key in outputs[urn] if key not in known} if _derived(resource) else set()

    def unknown_texts(urn: str) -> set[str]:
        # A text a known value holds too (a rabbitmq user's id is its name) may have come from that value.
        values = outputs[urn]
        known = {text for key, value in values.items() if key not in unknown_keys[urn] for text in string_leaves(value)}
        return {text for key in unknown_keys[urn] for text in string_leaves(values.get(key))
                if len(text) >= _MIN_TRACEABLE and text not in known}

    changed = True
    while changed:  # to a fixed point: an input built from an unknown input is unknown too
        changed = False
        for urn, resource in resources.items():
            inputs = resource.get("inputs") or {}
            for key, sources in (resource.get("property_dependencies") or {}).items():
                if key in unknown_keys[urn] or key not in inputs:
                    continue
                texts = set().union(*(unknown_texts(source) for source in sources if source in resources))
                if texts and any(text in value for value in string_leaves(inputs[key]) for text in texts):
                    unknown_keys[urn].add(key)
                    changed = True
    preview_inputs: dict[str, dict[str, Any]] = {}
    preview_outputs: dict[str, dict[str, Any]] = {}
    for urn, resource in resources.items():
        hidden = unknown_keys[urn]
        if "tags" in hidden:  # the plan merges the provider's default tags into tags: unknown tags, unknown tagsAll
            hidden.add("tagsAll")
        preview_inputs[urn] = {key: unknown_like(value) if key in hidden else value
                               for key, value in (resource.get("inputs") or {}).items()}
        preview_outputs[urn] = {key: unknown_like(value) if key in hidden else value
                                for key, value in outputs[urn].items()}
    return preview_inputs, preview_outputs


def stage_properties(document: dict[str, Any],
                     stage: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(Analyze properties, AnalyzeStack properties)`` by URN for ``stage`` (one of :data:`STAGES`)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    inputs = {resource["urn"]: dict(resource.get("inputs") or {}) for resource in document["resources"]}
    if stage == "offline":
        return inputs, inputs
    outputs = deployed_outputs(document)
    if stage == "up":
        return inputs, outputs
    return first_preview(document, outputs)
