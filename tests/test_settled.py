"""preview --expect-no-changes (shared/orchestrate/settled.py): what a layer that does not settle is told.

The runner's path (events in, a failed layer out, the other layers still previewed) is specified in
tests/test_orchestrate_automation.py with the fake CLI; here, which steps count as changes and how many are named.
"""

from __future__ import annotations

from pulumi import automation as auto

from shared.orchestrate.settled import ChangeRecorder, unsettled_detail

ROLE = "aws:iam/role:Role"


def pre_event(op: str, name: str, diffs: list[str] | None = None, keys: list[str] | None = None) -> auto.EngineEvent:
    metadata: dict[str, object] = {"op": op, "urn": f"urn:pulumi:dev::compute::{ROLE}::{name}", "type": ROLE,
                                   "provider": ""}
    if diffs is not None:
        metadata["diffs"] = diffs
    if keys is not None:
        metadata["keys"] = keys
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0,
                                       "resourcePreEvent": {"metadata": metadata, "planning": True}})


def test_only_steps_an_up_would_take_are_changes() -> None:
    recorder = ChangeRecorder()
    for op in ("same", "read", "refresh"):
        recorder.on_event(pre_event(op, f"kept-{op}"))
    recorder.on_event(pre_event("update", "tagged", diffs=["tags", "assumeRolePolicy"]))
    for op in ("create-replacement", "replace", "delete-replaced"):
        recorder.on_event(pre_event(op, "renamed", keys=["name"]))
    recorder.on_event(pre_event("create", "new"))
    steps = {step.urn.rsplit("::", 1)[-1]: step for step in recorder.collected()}
    assert sorted(steps) == ["new", "renamed", "tagged"]
    assert steps["tagged"].keys == ("assumeRolePolicy", "tags")
    assert steps["renamed"].ops == ("create-replacement", "replace", "delete-replaced")
    assert steps["renamed"].keys == ("name",)  # no diffs given: the replace keys
    assert steps["new"].keys == ()


def test_a_layer_with_many_changes_names_eight_and_counts_the_rest() -> None:
    recorder = ChangeRecorder()
    for number in range(11):
        recorder.on_event(pre_event("update", f"role-{number:02}", diffs=["tags"]))
    detail = unsettled_detail("compute", "dev", recorder.collected())
    assert "proposes 11 change(s)" in detail
    assert "update aws:iam/role:Role role-07 (tags)" in detail and "role-08" not in detail
    assert "; and 3 more." in detail
    assert "pulumi preview --diff --stack <org>/compute/dev" in detail
