"""README's "Break-glass: inside a task, a service stopped now" says what the compute layer makes true: no ECS Exec
(off on every service, and it could not work: read-only root filesystems, no task role with the ``ssmmessages``
channel actions), a one-off task's container override names the app's container (the service's name), and the
scalable target an operator closes is ``service/<env>-ml-platform/<ecs service>`` on ``ecs:service:DesiredCount``.
Turning ECS Exec on, or renaming what the commands name, fails here until the README says how it works then."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import SHIPPED_ENVS
from tests.readme_helpers import readme_rendered, readme_section
from tests.synth_helpers import of_type, synth_layers


def _section() -> str:
    return readme_section("### Break-glass: inside a task, a service stopped now", stop="\n#")


def _compute(env: str) -> dict[str, Any]:
    return synth_layers(env, "compute")["compute"]


def _policy_actions(document: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for resource in of_type(document, "aws:iam/rolePolicy:RolePolicy") + of_type(document, "aws:iam/policy:Policy"):
        policy = resource["inputs"].get("policy")
        for statement in (json.loads(policy) if isinstance(policy, str) else policy or {}).get("Statement", []):
            listed = statement.get("Action", [])
            actions.update(a.lower() for a in ([listed] if isinstance(listed, str) else listed))
    return actions


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_no_service_has_ecs_exec_and_none_could(env: str) -> None:
    section = _section()
    assert "`enableExecuteCommand` off" in section and "read-only root filesystem" in section
    document = _compute(env)
    services = of_type(document, "aws:ecs/service:Service")
    assert services
    assert all(service["inputs"].get("enableExecuteCommand") is False for service in services), \
        "a service has ECS Exec on: README's Break-glass section says it is off and why it cannot work"
    for task in of_type(document, "aws:ecs/taskDefinition:TaskDefinition"):
        for container in json.loads(task["inputs"]["containerDefinitions"]):
            assert container.get("readonlyRootFilesystem") is True, (task["name"], container["name"])
    channel = {a for a in _policy_actions(document) if a.startswith("ssmmessages:") or a == "*"}
    assert channel == set(), f"a compute role grants ECS Exec's channel actions: {sorted(channel)}"


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_the_commands_name_what_compute_creates(env: str) -> None:
    section = _section()
    document = _compute(env)
    found = re.search(r"--scalable-dimension\s+(\S+)\s+--resource-id\s+(service/\S+/<ecs service>)", section)
    assert found and "--service-namespace ecs" in section, "the stop command names no scalable target"
    dimension, resource_id = found.groups()
    targets = {(t["inputs"]["scalableDimension"], t["inputs"]["resourceId"], t["inputs"]["serviceNamespace"])
               for t in of_type(document, "aws:appautoscaling/target:Target")}
    for service in of_type(document, "aws:ecs/service:Service"):
        name = service["inputs"]["name"]
        wanted = (dimension, resource_id.replace("<env>", env).replace("<ecs service>", name), "ecs")
        assert wanted in targets, f"README's stop command names {wanted}, compute's targets are {sorted(targets)}"
    assert '"containerOverrides": [{"name": "<svc>"' in section
    for task in of_type(document, "aws:ecs/taskDefinition:TaskDefinition"):
        names = {container["name"] for container in json.loads(task["inputs"]["containerDefinitions"])}
        labels = {container.get("dockerLabels", {}).get("platform.service")
                  for container in json.loads(task["inputs"]["containerDefinitions"])} - {None}
        assert labels and labels <= names, (task["name"], names, labels)  # the app's container is named <svc>


def _stop_paragraph() -> str:
    section = _section()
    start = section.index("- **Stop a service now**")
    end = section.find("\n- **", start + 1)
    return " ".join(section[start:end if end != -1 else len(section)].split())


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_the_stop_says_how_long_messages_wait_and_how_to_come_back(env: str) -> None:
    """A stopped consumer's messages do not wait for ever: the work queue's policy expires them into the DLQ after
    ``messaging.message_ttl_ms`` (and its operator policy refuses publishes past ``messaging.max_length``, the DLQ's
    drops its oldest past ``dead_letter_max_length``). The paragraph says so wherever the synth sets those limits, and
    names the counts its restore command takes where the env file sets none (ServiceSettings' defaults)."""
    from shared.envs import ServiceSettings

    paragraph = _stop_paragraph()
    messaging = synth_layers(env, "messaging")["messaging"]
    work = [p["inputs"]["policy"]["definition"] for p in of_type(messaging, "rabbitmq:index/policy:Policy")
            if p["inputs"]["name"].startswith("queue-") and p["inputs"]["name"].endswith(".work")]
    assert work, "messaging declares no work-queue policy"
    if any("message-ttl" in definition for definition in work):
        assert "`messaging.message_ttl_ms`" in paragraph and "`<svc>.dlq`" in paragraph, \
            "the work queues expire messages into their DLQs: the stop paragraph must say a stop lasts that long"
    limits = {p["inputs"]["name"]: p["inputs"]["policy"]["definition"]
              for p in of_type(messaging, "rabbitmq:index/operatorPolicy:OperatorPolicy")}
    if "max-length" in limits.get("limits-work-queues", {}):
        assert "`messaging.max_length`" in paragraph
    if "max-length" in limits.get("limits-dead-letter-queues", {}):
        assert "`messaging.dead_letter_max_length`" in paragraph
    defaults = ServiceSettings()
    assert f"(`{defaults.min_count}` and `{defaults.max_count}` where the env file sets none)" in paragraph, \
        "the restore command's counts where the env file sets none are ServiceSettings' defaults"


def test_the_break_glass_credentials_are_ones_an_operator_can_have() -> None:
    """The deploy role's trust (README, CI/CD "Set up once" step 2, and the runner's statement) admits the GitHub
    environment's jobs and the deploy runner only: an operator on call cannot assume it, so the section must not send
    them to it, and must say which credentials do the job."""
    text = readme_rendered()
    trusts = re.findall(r'"Principal": \{"(\w+)": "([^"]+)"\}', text)
    assert {kind for kind, _ in trusts} == {"Federated", "AWS"}
    assert all(principal.endswith((":oidc-provider/token.actions.githubusercontent.com", ":root"))
               for _, principal in trusts)
    intro = " ".join(_section().split("\n- ", 1)[0].split())
    assert "as the deploy role" not in intro
    assert "administrator" in intro and "nox -s roles -- <env>" in intro


def test_a_lost_broker_admin_is_recovered_through_iam_before_a_replacement_loses_the_queues() -> None:
    """Amazon MQ has no API to reset a RabbitMQ user's password, but AWS documents a way back in through IAM
    authentication (RabbitMQ 3.13 and 4.2+) that keeps the queues: the README names it before the replacement, and
    says the broker layer's own configuration goes back afterwards (the recovery edits it outside the stacks)."""
    text = readme_rendered()
    start = text.index("If the broker accepts none of them")
    paragraph = text[start:text.index("starts over with the first generated password", start)]
    assert "Recovering broker access using IAM authentication for recovery" in paragraph
    assert paragraph.index("IAM authentication") < paragraph.index("Replacing the broker (its queues are lost)")
    assert "`refresh` and `up` the broker layer" in paragraph
