"""The README's "Upgrading an existing deployment" tells what the first `up` after the code change does and which env
files the loader now refuses: an operator reads it before that `up`, and a refusal or a new notification it does not
name is a surprise in a running env."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.envs import ExternalBroker, ManagementAccess, load_env, tag_problem

ROOT = Path(__file__).resolve().parents[1]


def upgrade_section() -> str:
    """The section as Markdown renders it (a wrapped line is one)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Upgrading an existing deployment\n")
    end = text.find("\n## ", start + 1)
    return " ".join(text[start:end if end != -1 else None].split())


def test_the_upgrade_notes_name_the_env_tags_the_loader_now_refuses() -> None:
    """An env file with `tags: {owner: ""}` (or an empty key) loaded before; now every `nox` session refuses it, exit
    2, before any layer runs."""
    assert tag_problem("owner", "") is not None and tag_problem("", "x") is not None
    section = upgrade_section()
    assert "an empty tag value" in section and "an empty tag key" in section


def test_the_upgrade_notes_name_the_new_event_notifications_and_their_delivery_alarms() -> None:
    """Every EventBridge rule on the alarm topic and every event-delivery alarm the stacks now make is named (as
    ``<env>-ml-...``), with the topic's and key's policies that let EventBridge publish."""
    env = "prod"
    snapshots = {path.stem: json.loads(path.read_text(encoding="utf-8"))
                 for path in sorted((ROOT / "tests" / "snapshots" / env).glob("*.json"))}
    topic = snapshots["broker"]["outputs"]["alarm_topic_arn"]
    names: set[str] = set()
    for document in snapshots.values():
        for resource in document["resources"]:
            inputs = resource.get("inputs") or {}
            if resource["type"] == "aws:cloudwatch/eventTarget:EventTarget" and inputs.get("arn") == topic:
                names.add(str(inputs["rule"]))
            if (resource["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"
                    and inputs.get("namespace") == "AWS/Events"):
                names.add(str(inputs["name"]))
    assert f"{env}-ml-admin-rotation-failed" in names and len(names) >= 3
    section = upgrade_section()
    for name in sorted(names):
        assert name.replace(f"{env}-ml-", "<env>-ml-", 1) in section, name
    assert "events.amazonaws.com" in section


def test_the_upgrade_notes_say_the_brokers_log_group_is_tagged_in_place() -> None:
    section = upgrade_section()
    assert "/aws/amazonmq/broker/<broker-id>/general" in section and "TagResource" in section


def _snapshots(env: str) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((ROOT / "tests" / "snapshots" / env).glob("*.json"))}


@pytest.mark.parametrize(("key", "model", "fields"), [
    ("messaging.external.amqps_endpoint", ExternalBroker,
     {"amqps_endpoint": "amqps://admin:pw@rabbit.example:5671", "management_endpoint": "https://rabbit.example"}),
    ("messaging.external.management_endpoint", ExternalBroker,
     {"amqps_endpoint": "amqps://rabbit.example:5671", "management_endpoint": "https://admin:pw@rabbit.example"}),
    ("messaging.management.endpoint", ManagementAccess, {"endpoint": "https://admin:pw@rabbit.example"}),
    ("messaging.management.proxy", ManagementAccess, {"proxy": "http://bob:pw@proxy.example:3128"}),
])
def test_the_upgrade_notes_name_each_broker_url_the_loader_now_refuses_with_a_password(
        key: str, model: type[BaseModel], fields: dict[str, str]) -> None:
    """An env file with ``user:password@`` in one of these URLs loaded before; now it exits 2 before any layer."""
    with pytest.raises(ValidationError, match="carries credentials"):
        model(**fields)
    section = upgrade_section()
    leaf = key.rsplit(".", 1)[1]
    assert "`user:password@`" in section and (f"`{key}`" in section or f"`{leaf}`" in section), key


def test_the_upgrade_notes_name_compute_s_new_service_output_and_the_rollback_checks() -> None:
    """compute's first `up` after the change records each service's task definition and from then on fails on a
    rollback; an operator must know a compute `up` that passed before can now fail."""
    section = upgrade_section()
    for env in ("dev", "staging", "prod"):
        services = _snapshots(env)["compute"]["outputs"]["services"]
        keys = set.intersection(*(set(entry) for entry in services.values()))
        assert "task_definition_arn" in keys, env
    assert "`task_definition_arn`" in section and "ListServiceDeployments" in section


def test_the_upgrade_notes_name_the_refusal_of_a_digest_no_resting_task_ran() -> None:
    """The deployed gate now refuses a digest a service resting at 0 tasks in FROM has not run: the notes quote the
    refusal as shared/promote.py words it, and no shipped env that images are promoted from rests a service."""
    from shared.promote import PROMOTION_ORDER

    section = upgrade_section()
    quoted = "rests at 0 tasks (desired count 0)"
    assert quoted in section and quoted in (ROOT / "shared" / "promote.py").read_text(encoding="utf-8")
    assert all(settings.min_count >= 1 for env in PROMOTION_ORDER[:-1]
               for settings in load_env(env).services.values())


def test_the_upgrade_notes_name_the_lock_and_the_tried_gate_of_the_generated_workflows() -> None:
    """The workflows of this change install the CLI without pulumi/actions and gate each promoted env on the env
    before it; the notes say what an operator must allow and expect (read from the generated files)."""
    from shared.promote import PROMOTION_ORDER
    from shared.venvcheck import LOCK_NAME

    workflows = {path.name: path.read_text(encoding="utf-8")
                 for path in (ROOT / ".github" / "workflows").glob("*.yml")}
    assert not any("pulumi/actions" in text for text in workflows.values())
    promoted = workflows["deploy-promoted.yml"]
    for env in PROMOTION_ORDER[1:]:
        assert f"  tried-{env}:" in promoted
    assert "actions: read" in promoted and "deploy_untried_reason:" in promoted
    section = upgrade_section()
    for words in (LOCK_NAME, "`nox -s lock`", "--require-hashes", ".ci/install-pulumi", "`pulumi/actions`",
                  "`tried-<env>`", "`actions: read`", "`deploy_untried_reason`"):
        assert words in section, words
