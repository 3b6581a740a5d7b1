"""The README's "Upgrading an existing deployment" tells what the first `up` after the code change does and which env
files the loader now refuses: an operator reads it before that `up`, and a refusal or a new notification it does not
name is a surprise in a running env."""

from __future__ import annotations

import json
from pathlib import Path

from shared.envs import tag_problem

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
