"""A one-off command runs in a copy of its service's task definition without the serve gate (shared/oneoff.py).

A gated service's one-off task (a backfill, a dead-letter replay) never turns its app HEALTHY, and ECS gives up on
the gate 120 s after the app's start: the API reference says the task then stops. A run-task override cannot remove
a container or a dependency, so the README's one-off path registers a copy without the gate.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from shared import REPO_ROOT
from shared.components.compute_containers import SERVE_GATE_CONTAINER
from shared.images import HAND_ROLLBACK_TAG
from shared.oneoff import FAMILY_SUFFIX, main, oneoff_definition, rollback_definition, rollback_mark
from tests.synth_helpers import spec_document

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


def described(env: str) -> list[dict[str, Any]]:
    """Each task definition of ``env``'s compute snapshot as `aws ecs describe-task-definition --include TAGS`
    prints it: the inputs ECS stores, ARN and revision added, tags beside it."""
    document = spec_document(env, "compute")
    found = []
    for resource in document["resources"]:
        if resource["type"] != TASK_DEFINITION:
            continue
        inputs = resource["inputs"]
        definition = {key: value for key, value in inputs.items()
                      if key not in ("tags", "tagsAll", "skipDestroy", "trackLatest", "containerDefinitions")}
        definition.update(containerDefinitions=json.loads(inputs["containerDefinitions"]), revision=7,
                          status="ACTIVE", taskDefinitionArn="arn:aws:ecs:eu-west-1:1:task-definition/x:7",
                          registeredAt="2026-12-04T10:00:00Z", compatibilities=["EC2", "FARGATE"])
        tags = [{"key": key, "value": value} for key, value in sorted((inputs.get("tags") or {}).items())]
        found.append({"taskDefinition": definition, "tags": tags})
    return found


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_task_definition_s_one_off_copy_has_no_gate_and_is_what_register_task_definition_takes(env: str) -> None:
    ecs = botocore.session.get_session().get_service_model("ecs")
    shape = ecs.operation_model("RegisterTaskDefinition").input_shape
    gated = 0
    for item in described(env):
        source = item["taskDefinition"]
        copy = oneoff_definition(item)
        report = ParamValidator().validate(copy, shape)
        assert not report.has_errors(), report.generate_report()
        assert copy["family"] == source["family"] + FAMILY_SUFFIX
        names = [c["name"] for c in copy["containerDefinitions"]]
        gated += SERVE_GATE_CONTAINER in [c["name"] for c in source["containerDefinitions"]]
        assert SERVE_GATE_CONTAINER not in names
        assert names == [c["name"] for c in source["containerDefinitions"] if c["name"] != SERVE_GATE_CONTAINER]
        for container in copy["containerDefinitions"]:
            assert all(d["containerName"] != SERVE_GATE_CONTAINER for d in container.get("dependsOn", []))
        for key in ("taskRoleArn", "executionRoleArn", "cpu", "memory", "networkMode", "runtimePlatform"):
            assert copy[key] == source[key], key  # the service's roles, size and platform
        assert copy["tags"] == item["tags"]
        assert "revision" not in copy and "taskDefinitionArn" not in copy
    assert gated >= 2, "the shipped envs have gated services (preprocess, inference)"


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_the_command_reads_the_described_file_and_prints_the_copy(tmp_path: Path) -> None:
    item = described("prod")[0]
    path = tmp_path / "described.json"
    path.write_text(json.dumps(item))
    code, out, err = run([str(path)])
    assert code == 0, err
    assert json.loads(out) == oneoff_definition(item)


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot be read"),
    ("{not json", "is not JSON"),
    ("[]", "must be a JSON object"),
    ('{"taskDefinition": {"family": "x"}}', "is not an ECS task definition"),
    ('{"family": "svc-oneoff", "containerDefinitions": []}', "is already a one-off copy"),
])
def test_bad_input_is_refused_with_exit_2_naming_the_file(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "described.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run([str(path)])
    assert code == 2 and out == ""
    assert str(path) in err and reason in err, err


def test_the_readme_s_one_off_path_registers_a_copy_without_the_gate() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("- **A one-off command as the service**"):]
    section = section[:section.index("\n- **")]
    for needed in ("python -m shared.oneoff", "register-task-definition --cli-input-json", SERVE_GATE_CONTAINER,
                   "deregister-task-definition", "delete-task-definitions"):
        assert needed in section, needed


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_a_rollback_copy_is_a_new_revision_of_the_service_s_own_family_unchanged(env: str) -> None:
    """An `up` deregisters the revision it replaced, and ECS refuses to point a service at an INACTIVE one: the hand
    rollback registers the same definition again, under the service's family, every container (serve gate too) and
    setting as it was, and nothing ECS sets itself (revision, ARN, status, registeredAt...)."""
    ecs = botocore.session.get_session().get_service_model("ecs")
    shape = ecs.operation_model("RegisterTaskDefinition").input_shape
    for item in described(env):
        source = item["taskDefinition"]
        copy = rollback_definition({**item, "taskDefinition": {**source, "status": "INACTIVE"}}, mark=MARK)
        report = ParamValidator().validate(copy, shape)
        assert not report.has_errors(), report.generate_report()
        assert copy["family"] == source["family"]
        assert copy["containerDefinitions"] == source["containerDefinitions"]
        assert {key: value for key, value in source.items() if key in copy} == {
            key: value for key, value in copy.items() if key != "tags"}
        assert not {"revision", "taskDefinitionArn", "status", "registeredAt", "compatibilities"} & set(copy)
        # marked, so that compute's up deploys no other image over it (shared.orchestrate.images)
        assert copy["tags"] == [*item["tags"], {"key": HAND_ROLLBACK_TAG, "value": MARK}]
        assert len(copy["tags"]) <= 50  # botocore ecs model, Tags: "Maximum number of tags per resource - 50"


MARK = "2026-12-07T21:05:00Z by alice"


def test_a_rollback_of_a_rollback_copy_is_marked_once_with_the_new_mark() -> None:
    item = described("staging")[0]
    again = rollback_definition(rollback_definition(item, mark="2026-12-01T08:00:00Z by bob"), mark=MARK)
    assert [tag for tag in again["tags"] if tag["key"] == HAND_ROLLBACK_TAG] == [
        {"key": HAND_ROLLBACK_TAG, "value": MARK}]


def test_the_rollback_mark_says_when_in_utc_and_who_in_the_characters_a_tag_value_may_hold() -> None:
    when = datetime(2026, 12, 7, 22, 5, 1, 999, tzinfo=timezone(timedelta(hours=1)))
    assert rollback_mark(when, "alice") == MARK.replace(":00Z", ":01Z")
    assert rollback_mark(when, "CORP\\bob smith!") == "2026-12-07T21:05:01Z by CORP_bob smith_"
    assert rollback_mark(when, "") == "2026-12-07T21:05:01Z by unknown"
    assert len(rollback_mark(when, "x" * 400)) == 256


def test_the_rollback_flag_prints_the_rollback_copy_and_refuses_a_one_off_one(tmp_path: Path) -> None:
    item = described("prod")[0]
    path = tmp_path / "previous.json"
    path.write_text(json.dumps(item))
    code, out, err = run(["--rollback", str(path)])
    printed = json.loads(out)
    mark = printed["tags"][-1]["value"]
    assert code == 0 and printed == rollback_definition(item, mark=mark), err
    assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ by \S.*", mark), mark
    path.write_text('{"family": "prod-gateway-oneoff", "containerDefinitions": []}')
    code, out, err = run(["--rollback", str(path)])
    assert code == 2 and "is a one-off copy" in err


def test_the_readme_s_rollback_path_names_each_step() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("- **Roll a service back now**"):]
    section = section[:section.index("\n- **")]
    for needed in ("stop-service-deployment", "--stop-type ROLLBACK", "list-task-definitions", "--status INACTIVE",
                   "python -m shared.oneoff --rollback", "register-task-definition --cli-input-json",
                   "update-service", "deregister-task-definition", HAND_ROLLBACK_TAG,
                   f"untag-resource --resource-arn <that arn> --tag-keys {HAND_ROLLBACK_TAG}"):
        assert needed in " ".join(section.split()), needed
