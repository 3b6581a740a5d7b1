"""Every layer of every example env as ``pulumi preview`` runs it: the SDK's dry run, where what the provider has not
computed yet is unknown and ``apply`` callbacks do not run on it. The synth runs the layers as an update whose mocks
answer every id, ARN and endpoint at once, so a program that names a resource after a computed value, branches on one
or creates resources inside ``apply`` would pass the synth and fail, or plan less, in a real preview (review-engine
N2). Each layer reads its upstreams' outputs, and its own last ones, as a preview of a later change does; in the
first-preview case every resource of the layer is one to create: its id and every output the provider computes
(ARNs, endpoints, ``tagsAll``) are unknown, as the engine reports them until the create has run (an autoname is
known: the engine assigns it when it checks the inputs)."""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

import pulumi
import pytest

from shared import dag
from shared.broker_capacity import RUNNING_BROKER_VARIABLE
from shared.broker_upgrade import ACTIONS_VARIABLE
from shared.contracts import stack_reference_name
from shared.envs import load_env
from shared.published import PUBLISHED_VARIABLE
from shared.synth.engine import UNKNOWN, layer_dir, referenced_outputs, synth_program
from shared.synth.mocks import PlatformMocks, autonamed_property
from tests.spec_envs import SPEC_ENVIRON
from tests.synth_helpers import synth_layers

ENVS = ("dev", "staging", "prod")
_answer = PlatformMocks.new_resource


def _to_create(self: PlatformMocks, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
    """The mocks' answer as a preview gives it for a resource it has yet to create: no id (the SDK makes an empty id
    unknown in a dry run) and back only what the program gave and the autoname (every other output unknown)."""
    rid, state = _answer(self, args)
    if args.typ == "pulumi:pulumi:StackReference":
        return rid, state
    given = set(args.inputs) | {autonamed_property(args.typ)}
    return "", {key: value for key, value in state.items() if key in given}


def _preview(env: str, layer: str, *, first: bool) -> dict[str, Any]:
    documents = synth_layers(env)  # before the mocks change: the upstreams are up
    with mock.patch.dict(os.environ, SPEC_ENVIRON), \
            mock.patch.object(PlatformMocks, "new_resource", _to_create if first else _answer):
        loaded = load_env(env)
        readable = {stack_reference_name(loaded.pulumi_org, name, env): referenced_outputs(documents[name])
                    for name in dag.upstream_closure([layer])}
        return synth_program(layer_dir(layer), stack=env, layer=layer, env=env, account_id=loaded.account_id,
                             region=loaded.region, stack_outputs=readable, organization=loaded.pulumi_org,
                             env_vars={RUNNING_BROKER_VARIABLE: "", ACTIONS_VARIABLE: "", PUBLISHED_VARIABLE: ""},
                             preview=True)


@pytest.mark.parametrize("first", [True, False], ids=["first-preview", "later-preview"])
@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("layer", dag.LAYERS)
def test_a_preview_plans_every_resource_the_update_creates(env: str, layer: str, first: bool) -> None:
    planned = _preview(env, layer, first=first)
    created = synth_layers(env)[layer]
    assert planned["warnings"] == [], planned["warnings"]
    missing = {r["urn"] for r in created["resources"]} - {r["urn"] for r in planned["resources"]}
    extra = {r["urn"] for r in planned["resources"]} - {r["urn"] for r in created["resources"]}
    assert (sorted(missing), sorted(extra)) == ([], []), "a preview plans other resources than the up creates"
    assert sorted(planned["outputs"]) == sorted(created["outputs"])


@pytest.mark.parametrize("env", ENVS)
def test_the_first_preview_does_leave_computed_values_unknown(env: str) -> None:
    """The first-preview case above is one: what the layers build from ids and ARNs reads as unknown."""
    unknown = {layer: json.dumps(_preview(env, layer, first=True)["resources"]).count(UNKNOWN) for layer in dag.LAYERS}
    assert all(unknown[layer] > 0 for layer in ("network", "broker", "messaging", "compute")), unknown
