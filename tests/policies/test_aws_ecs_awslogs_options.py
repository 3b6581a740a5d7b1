"""``ecs-task-awslogs-options`` through the real aws pack: awslogs configurations as the platform writes them
pass; a missing group, Region or (on Fargate) stream prefix, or a mode ECS does not know, is reported per
container; a task without awslogs is not judged (unknown definitions: test_aws_unknowns)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.components.compute_containers import awslogs_options
from tests.policies.resources import rule_ids
from tests.policies.test_aws_containers import good_container, task

RULE = "ecs-task-awslogs-options"


def logging(options: dict[str, str], driver: str = "awslogs") -> dict[str, Any]:
    return {"logDriver": driver, "options": options}


def without(key: str) -> dict[str, str]:
    return {k: v for k, v in awslogs_options("/platform/dev/compute/inference", "eu-west-1", "inference").items()
            if k != key}


def findings_of(policy_findings: Any, resource: dict[str, Any]) -> list[str]:
    return [f["message"] for f in policy_findings([resource]) if f["rule"] == RULE and f["enforcement"] == "mandatory"]


def test_the_platforms_awslogs_options_pass(policy_findings):
    options = awslogs_options("/platform/dev/compute/inference", "eu-west-1", "inference")
    sidecar = good_container(name="scratch-init", logConfiguration=logging(options))
    definition = task([good_container(logConfiguration=logging(options)), sidecar])
    assert RULE not in rule_ids(policy_findings([definition]))


@pytest.mark.parametrize("extra", [
    {"awslogs-create-group": "true"},
    {"awslogs-datetime-format": "%Y-%m-%d %H:%M:%S"},
    {"awslogs-multiline-pattern": "^\\d{4}-\\d{2}-\\d{2}"},
    {"awslogs-endpoint": "https://logs.eu-west-1.amazonaws.com"},
    {"mode": "blocking"},
    {"mode": "non-blocking"},  # without max-buffer-size: ECS's 10m default
    {"max-buffer-size": "4m"},
], ids=["create-group-true", "datetime-format", "multiline-pattern", "endpoint", "blocking", "no-buffer-size",
        "buffer-size"])
def test_optional_options_ecs_documents_pass(policy_findings, extra):
    # the options the ECS API's LogConfiguration lists as optional, and mode with or without max-buffer-size
    options = {k: v for k, v in without("mode").items() if k != "max-buffer-size"}
    definition = task([good_container(logConfiguration=logging({**options, **extra}))])
    assert findings_of(policy_findings, definition) == []


@pytest.mark.parametrize(("options", "says"), [
    (without("awslogs-group"), "awslogs awslogs-group is required"),
    (without("awslogs-region"), "awslogs awslogs-region is required"),
    (without("awslogs-stream-prefix"), "awslogs awslogs-stream-prefix is required on Fargate"),
    ({**without("mode"), "mode": "nonblocking"}, "mode 'nonblocking' is not blocking or non-blocking"),
    ({**without("mode"), "awslogs-create-group": "false"}, "awslogs-create-group 'false' must be 'true' or left out"),
])
def test_awslogs_options_ecs_cannot_start_with_are_reported(policy_findings, options, says):
    definition = task([good_container(), good_container(name="sidecar", logConfiguration=logging(options))])
    (message,) = findings_of(policy_findings, definition)
    assert "container 'sidecar'" in message and says in message


def test_the_stream_prefix_is_optional_off_fargate(policy_findings):
    definition = task([good_container(logConfiguration=logging(without("awslogs-stream-prefix")))],
                      requiresCompatibilities=["EC2"], networkMode="awsvpc")
    assert RULE not in rule_ids(policy_findings([definition]))


def test_a_task_without_awslogs_is_not_judged(policy_findings, policy_not_applicable):
    definition = task([good_container(logConfiguration=logging({"tag": "x"}, driver="splunk"))])
    assert RULE not in rule_ids(policy_findings([definition]))
    assert any(na["rule"] == RULE and "no container logging with awslogs" in na["reason"]
               for na in policy_not_applicable([definition]))


def test_the_synthesized_task_definitions_pass(policy_findings):
    from shared.synth.engine import synth_env

    compute = synth_env("prod", ["compute"])["compute"]
    tasks = [r for r in compute["resources"] if r["type"] == "aws:ecs/taskDefinition:TaskDefinition"]
    assert tasks
    for resource in tasks:
        definitions = json.loads(resource["inputs"]["containerDefinitions"])
        assert RULE not in rule_ids(policy_findings([task(definitions, name=resource["name"])]))
