"""An env (or one layer) destroyed and deployed again takes the same fixed names: what the synthesized stacks
must keep true for that (README, what a destroy leaves behind). Guards of properties the stacks hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.layers.resource_types import ENVS, LOG_GROUP, ROLE, ROLE_POLICY, SECRET
from tests.synth_helpers import of_type, synth_layers

LAYERS = ("network", "discovery", "broker", "mesh", "messaging", "compute")


def documents(env: str) -> dict[str, dict[str, Any]]:
    return synth_layers(env, *LAYERS)


def statements(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement.get("Action", [])
    return [found] if isinstance(found, str) else list(found)


@pytest.mark.parametrize("env", ENVS)
def test_no_role_of_the_stacks_may_create_a_log_group(env: str) -> None:
    # Lambda, CodeBuild, VPC Flow Logs and ECS's awslogs driver create a missing group with the writer's role
    # where it may (logs:CreateLogGroup). A group re-created that way after a destroy makes the next `up`'s
    # CreateLogGroup fail with ResourceAlreadyExistsException, so no role may do it.
    checked = 0
    for layer, document in documents(env).items():
        policies = [r["inputs"]["policy"] for r in of_type(document, ROLE_POLICY)]
        policies += [policy["policy"] for r in of_type(document, ROLE)
                     for policy in r["inputs"].get("inlinePolicies", []) if "policy" in policy]
        for policy in policies:
            for statement in statements(policy):
                checked += 1
                if statement.get("Effect") != "Allow":
                    continue
                granted = [a for a in actions(statement) if a.lower() in ("logs:createloggroup", "logs:*", "*")
                           or (a.lower().startswith("logs:create") and a.endswith("*"))]
                assert not granted, f"{env}/{layer}: statement {statement.get('Sid')} allows {granted}"
    assert checked > 10


def depends_on(document: dict[str, Any], resource: dict[str, Any]) -> set[str]:
    """The URNs ``resource`` depends on, directly or through others (Pulumi deletes it before all of them)."""
    by_urn = {r["urn"]: r for r in document["resources"]}
    seen: set[str] = set()
    todo = list(resource.get("dependencies", []))
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo.extend(by_urn.get(urn, {}).get("dependencies", []))
    return seen


@pytest.mark.parametrize("env", ENVS)
def test_every_log_group_outlives_what_writes_to_it(env: str) -> None:
    # Pulumi deletes a resource before those it depends on: the function, project, flow log, task definition
    # and ECS service (its Service Connect proxy) naming a group go first, so nothing writes to it once it is
    # deleted.
    writers = 0
    for layer, document in documents(env).items():
        for group in of_type(document, LOG_GROUP):
            name = group["inputs"]["name"]
            for resource in document["resources"]:
                if resource is group or resource["type"] == LOG_GROUP or not resource.get("custom"):
                    continue
                if resource["type"].startswith(("aws:iam/", "aws:kms/", "pulumi:")):
                    continue  # policies name the group's ARN; they do not write to it
                # a message's text (an alarm's description, an event's input template) names a group it does not
                # write to; the target's arn, a function's or project's log configuration do
                inputs = {key: value for key, value in resource.get("inputs", {}).items()
                          if key not in ("description", "alarmDescription", "inputTransformer")}
                if name in json.dumps(inputs).replace("\\", ""):
                    writers += 1
                    assert group["urn"] in depends_on(document, resource), (
                        f"{env}/{layer}: {resource['type']} {resource['name']} writes to {name}, not after it")
    assert writers >= 5


@pytest.mark.parametrize("env", ENVS)
def test_an_unprotected_secret_is_deleted_without_recovery(env: str) -> None:
    # With a recovery window the name stays taken until it ends ("already scheduled for deletion" on
    # CreateSecret, botocore secretsmanager); without one the provider retries the create until it is free.
    secrets = [secret for document in documents(env).values() for secret in of_type(document, SECRET)]
    assert secrets
    for secret in secrets:
        window = secret["inputs"]["recoveryWindowInDays"]
        assert window == (30 if secret["protect"] else 0), (secret["name"], window, secret["protect"])
