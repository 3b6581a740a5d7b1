"""Taking a gone broker's RabbitMQ objects out of messaging's exported state (shared.orchestrate.state_drop): on the
state each shipped env's messaging layer has, every object leaves, every AWS resource stays with no reference to one
that left, and the result is a state `pulumi stack import` takes (each reference to a resource listed before it:
pulumi/pulumi pkg/resource/deploy/snapshot.go VerifyIntegrity). A file it cannot edit whole is left as it was, exit 2.
"""

from __future__ import annotations

import json
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest

from shared.orchestrate.state_drop import drop, main
from tests.synth_helpers import spec_document

ENVS = ("dev", "staging", "prod")


def exported(env: str) -> dict[str, Any]:
    """messaging's state as `pulumi stack export` writes it, built from the env's synth: each resource with its parent,
    dependencies and property dependencies, after everything it references (the order the engine keeps)."""
    resources = []
    for resource in spec_document(env, "messaging")["resources"]:
        entry: dict[str, Any] = {"urn": resource["urn"], "type": resource["type"], "custom": resource["custom"]}
        if resource.get("parent"):
            entry["parent"] = resource["parent"]
        if resource.get("dependencies"):
            entry["dependencies"] = list(resource["dependencies"])
        if resource.get("property_dependencies"):
            entry["propertyDependencies"] = {key: list(urns) for key, urns in resource["property_dependencies"].items()}
        resources.append(entry)
    by_urn = {entry["urn"]: entry for entry in resources}
    order = TopologicalSorter({urn: references(entry) & set(by_urn) for urn, entry in by_urn.items()}).static_order()
    return {"version": 3, "deployment": {"manifest": {}, "resources": [by_urn[urn] for urn in order]}}


def references(resource: dict[str, Any]) -> set[str]:
    """The URNs a state entry names: its dependencies, property dependencies, parent and deletedWith."""
    named = {*(resource.get("dependencies") or []), resource.get("parent"), resource.get("deletedWith")}
    for urns in (resource.get("propertyDependencies") or {}).values():
        named.update(urns)
    return {urn for urn in named if urn}


@pytest.mark.parametrize("env", ENVS)
def test_every_object_leaves_and_every_aws_resource_stays_without_a_reference_to_one(env: str) -> None:
    state = exported(env)
    before = {r["urn"]: r["type"] for r in state["deployment"]["resources"]}
    rabbit = {urn for urn, type_ in before.items() if type_.startswith("rabbitmq:")}
    depending = [r["urn"] for r in state["deployment"]["resources"]
                 if not r["type"].startswith("rabbitmq:") and references(r) & rabbit]
    assert depending, "messaging's AWS resources depend on its RabbitMQ objects (why `pulumi state delete` cannot)"
    dropped = drop(state, "rabbitmq:")
    assert set(dropped) == rabbit
    after = state["deployment"]["resources"]
    assert {r["urn"] for r in after} == set(before) - rabbit
    seen: set[str] = set()
    for resource in after:  # (the root stack resource is not in the synth: a reference to it is left out)
        named = references(resource) & set(before)
        assert named <= seen, (resource["urn"], named - seen)
        seen.add(resource["urn"])


def test_the_command_rewrites_the_file_and_says_what_it_dropped(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "messaging-dev.state.json"
    path.write_text(json.dumps(exported("dev")))
    assert main(["rabbitmq", str(path)]) == 0
    resources = json.loads(path.read_text())["deployment"]["resources"]
    assert resources and not [r for r in resources if r["type"].startswith("rabbitmq:")]
    out = capsys.readouterr().out
    assert "dropped" in out and "rabbitmq:index/vHost:VHost" in out and "pulumi stack import" in out


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "cannot be read as JSON"),
    (json.dumps({"resources": []}), "not the output of `pulumi stack export`"),
    (json.dumps({"deployment": {"resources": [
        {"urn": "urn:pulumi:dev::messaging::rabbitmq:index/vHost:VHost::v", "type": "rabbitmq:index/vHost:VHost"},
        {"urn": "urn:pulumi:dev::messaging::aws:ssm/parameter:Parameter::p", "type": "aws:ssm/parameter:Parameter",
         "parent": "urn:pulumi:dev::messaging::rabbitmq:index/vHost:VHost::v"}]}}),
     "would stay as the child of a resource that leaves"),
])
def test_a_file_it_cannot_edit_whole_is_left_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      content: str, reason: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    assert main(["rabbitmq", str(path)]) == 2
    assert path.read_text() == content
    error = capsys.readouterr().err
    assert str(path) in error and reason in error


def test_only_a_known_kind_is_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(exported("dev")))
    assert main(["aws", str(path)]) == 2
    assert "rabbitmq" in capsys.readouterr().err
