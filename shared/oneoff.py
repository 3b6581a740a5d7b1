"""A one-off task definition of a service: ``python -m shared.oneoff DESCRIBED.json > oneoff.json``.

Why: a service whose app answers a health check runs a ``serve-gate`` container that waits for the app's ``HEALTHY``
(shared.components.compute_containers). A one-off command (a backfill, a dead-letter replay) never serves the health
path, so 120 seconds after its start ECS gives up on the gate, and the ECS API reference says the task then stops
(botocore ecs ``ContainerDefinition.startTimeout``: "the task transitioning to a STOPPED state"). A ``run-task``
override cannot remove a container or a dependency (botocore ecs ``ContainerOverride``). So a one-off command runs in
a copy of the service's task definition without the gate: the same image, roles, secrets, logs and volumes, under the
family ``<family>-oneoff``, registered for the run and deregistered after (README, "A one-off command as the
service").

Input: the output of ``aws ecs describe-task-definition --task-definition ARN --include TAGS`` (or its
``taskDefinition`` alone); output: the ``--cli-input-json`` of ``aws ecs register-task-definition``.

``--rollback``: the copy keeps the service's own family and every container, its serve gate too: a new revision of
a revision the last ``up`` deregistered, which ECS refuses to point a service at ("you can't update an existing
service to reference an INACTIVE task definition": botocore ecs DeregisterTaskDefinition), so that the service can
be rolled back to it by hand (README, "Roll a service back now"). The copy carries the tag ``platform:hand-rollback``
(when, by whom): compute's ``up`` refuses to deploy another image over a service that runs it, so that no run undoes
the rollback before the rollback pull request pins its image.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from shared.cli import login_name
from shared.components.compute_containers import SERVE_GATE_CONTAINER
from shared.errors import ConfigError, PlatformError
from shared.images import HAND_ROLLBACK_TAG

#: the family a one-off copy is registered under: ``<service family>-oneoff``
FAMILY_SUFFIX = "-oneoff"


@cache
def registered_keys() -> tuple[str, ...]:
    """What RegisterTaskDefinition takes (botocore's ecs model, RegisterTaskDefinitionRequest), but the family and
    tags set here: what DescribeTaskDefinition returns beyond it (ARN, revision, status, registeredAt...) ECS sets."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    return tuple(name for name in shape.input_shape.members if name not in ("family", "tags"))


def _service_definition(described: Mapping[str, Any], label: str, copy_of_a_copy: str) -> Mapping[str, Any]:
    """The task definition of ``described`` (DescribeTaskDefinition's output, or its ``taskDefinition``), a service's
    (ConfigError ending in ``copy_of_a_copy`` for a one-off copy's)."""
    definition = described.get("taskDefinition", described)
    if not isinstance(definition, Mapping) or not isinstance(definition.get("family"), str) \
            or not isinstance(definition.get("containerDefinitions"), list):
        raise ConfigError(label, "taskDefinition", "is not an ECS task definition (no family or containerDefinitions):"
                                                   " pass the output of `aws ecs describe-task-definition`")
    if str(definition["family"]).endswith(FAMILY_SUFFIX):
        raise ConfigError(label, "taskDefinition.family", f"{definition['family']} {copy_of_a_copy}")
    return definition


def _registered(described: Mapping[str, Any], definition: Mapping[str, Any], family: str,
                containers: list[Any]) -> dict[str, Any]:
    """RegisterTaskDefinition's input: ``family``, ``containers`` and every other key of ``definition`` it takes (none
    of what ECS sets: ARN, revision, status...), with the tags DescribeTaskDefinition printed beside it."""
    result: dict[str, Any] = {"family": family}
    for key in registered_keys():
        value = containers if key == "containerDefinitions" else definition.get(key)
        if value not in (None, [], {}):
            result[key] = value
    tags = described.get("tags") if "taskDefinition" in described else None
    if tags:
        result["tags"] = list(tags)
    return result


def oneoff_definition(described: Mapping[str, Any], label: str = "<described task definition>") -> dict[str, Any]:
    """The RegisterTaskDefinition input of a one-off copy of ``described`` without the serve gate."""
    definition = _service_definition(described, label, "is already a one-off copy")
    family = str(definition["family"])
    containers = []
    for container in definition["containerDefinitions"]:
        if not isinstance(container, Mapping):
            raise ConfigError(label, "taskDefinition.containerDefinitions", "holds an entry that is not an object")
        if container.get("name") == SERVE_GATE_CONTAINER:
            continue
        copy = dict(container)
        depends = [d for d in copy.get("dependsOn") or () if d.get("containerName") != SERVE_GATE_CONTAINER]
        if depends:
            copy["dependsOn"] = depends
        else:
            copy.pop("dependsOn", None)
        containers.append(copy)
    return _registered(described, definition, family + FAMILY_SUFFIX, containers)


def rollback_mark(now: datetime, user: str) -> str:
    """The value of a hand rollback's tag: when (UTC, to the second) and by whom, in the characters a tag value may
    hold (letters, numbers, spaces and ``+ - = . _ : / @``: botocore ecs model, Tag.value; 256 at most)."""
    who = re.sub(r"[^\w +\-=.:/@]", "_", user, flags=re.ASCII) or "unknown"
    return f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} by {who}"[:256]


def rollback_definition(described: Mapping[str, Any], label: str = "<described task definition>",
                        mark: str | None = None) -> dict[str, Any]:
    """The RegisterTaskDefinition input of a new revision of ``described`` under its own family, unchanged but for
    the :data:`~shared.images.HAND_ROLLBACK_TAG` (value ``mark``, by default now and this user), which the orchestrator
    reads before compute's ``up`` (README, "Roll a service back now")."""
    definition = _service_definition(described, label, "is a one-off copy, no service's")
    result = _registered(described, definition, str(definition["family"]), list(definition["containerDefinitions"]))
    tags = [tag for tag in result.get("tags", []) if tag.get("key") != HAND_ROLLBACK_TAG]
    result["tags"] = [*tags, {"key": HAND_ROLLBACK_TAG,
                              "value": mark if mark is not None else rollback_mark(datetime.now(UTC), login_name())}]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.oneoff", description=__doc__.split("\n\n")[0])
    parser.add_argument("described", help="the JSON of `aws ecs describe-task-definition --include TAGS` (- : stdin)")
    parser.add_argument("--rollback", action="store_true",
                        help="a new revision under the service's own family, serve gate kept (a hand rollback)")
    args = parser.parse_args(argv)
    label = "<stdin>" if args.described == "-" else args.described
    try:
        try:
            text = sys.stdin.read() if args.described == "-" else Path(args.described).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(label, "(file)", f"cannot be read: {error.strerror or error}") from None
        try:
            described = json.loads(text)
        except ValueError as error:
            raise ConfigError(label, "(file)", f"is not JSON: {error}") from None
        if not isinstance(described, Mapping):
            raise ConfigError(label, "(top level)", "must be a JSON object")
        made = rollback_definition(described, label) if args.rollback else oneoff_definition(described, label)
        print(json.dumps(made, indent=2, sort_keys=True))
    except PlatformError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
