"""Every container of a task definition runs as a non-root user, declared in the task definition.

A container passes when ``user`` is set and is neither ``root`` nor UID ``0`` (``"1000"``,
``"1000:1000"``, ``"app"`` pass; ``"root"``, ``"0"``, ``"0:0"``, ``"root:app"`` fail). An unset
``user`` fails too: it defers to the image's ``USER``, which is root for most base images and cannot
be checked here.

One exception, a **root init container** that only fixes file ownership: Fargate creates task bind
mounts root-owned, mode 0755 (ECS guide "Use bind mounts"), so a non-root app with a read-only root
needs one to hand its scratch volume over. Root passes for a container that is all of:

* non-essential (``essential: false``), and another container of the task waits for it to exit
  (``dependsOn`` with condition ``SUCCESS`` or ``COMPLETE``): it runs once, before the app;
* left with no Linux capability but ``CHOWN``/``FOWNER`` (``linuxParameters.capabilities``: ``drop``
  ``ALL`` or every other capability of Docker's default set; Fargate cannot ``add`` any but SYS_PTRACE);
* not privileged, with a read-only root filesystem, no port mappings and no ``secrets``.

Windows containers do not support ``user`` (ECS ContainerDefinition) and are not applicable.

Why: root in the container is root on the host's kernel; a container escape from a non-root process
is much harder. Matches the AWS Config rule ecs-task-definition-nonroot-user; no cdk-nag/checkov id.
"""

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    as_list,
    get,
    is_true,
    require_linux_task,
    rule_policy,
    task_containers,
)
from shared.policy_typing import ReportViolation

#: The capabilities Docker (and so ECS) gives a container unless dropped (moby's default set).
DOCKER_DEFAULT_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "NET_RAW",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
#: What a root init container may keep: changing owners (and modes of files it does not own).
INIT_CAPABILITIES = frozenset({"CHOWN", "FOWNER"})


def _is_root(user: object) -> bool:
    if not isinstance(user, str) or not user.strip():
        return True
    name = user.strip().split(":", 1)[0]
    return name in ("root", "0")


def _capabilities(container: Mapping[str, Any]) -> set[str]:
    """The capabilities the container ends up with (the KernelCapabilities rules: drop, then add)."""
    caps = get(container, "linuxParameters", "capabilities")
    caps = caps if isinstance(caps, dict) else {}
    drop = {str(c).upper() for c in as_list(caps.get("drop"))}
    add = {str(c).upper() for c in as_list(caps.get("add"))}
    if "ALL" in add:
        return set(DOCKER_DEFAULT_CAPABILITIES - drop) | {"ALL"}
    kept = set() if "ALL" in drop else set(DOCKER_DEFAULT_CAPABILITIES - drop)
    return kept | add


def _init_problems(container: Mapping[str, Any], containers: list[dict[str, Any]]) -> list[str]:
    """Why a root container is not an acceptable ownership-fixing init container (empty: it is one)."""
    name = container.get("name")
    problems = []
    if container.get("essential") is not False:
        problems.append("it is essential")
    waited_for = any(
        isinstance(dependency, dict) and dependency.get("containerName") == name
        and dependency.get("condition") in ("SUCCESS", "COMPLETE")
        for other in containers if other is not container for dependency in as_list(other.get("dependsOn")))
    if not waited_for:
        problems.append("no container waits for it to exit (dependsOn SUCCESS/COMPLETE)")
    extra = sorted(_capabilities(container) - INIT_CAPABILITIES)
    if extra:
        problems.append(f"it keeps capabilities {', '.join(extra)}")
    if is_true(container.get("privileged")):
        problems.append("it is privileged")
    if not is_true(container.get("readonlyRootFilesystem")):
        problems.append("its root filesystem is writable")
    if as_list(container.get("portMappings")):
        problems.append("it maps ports")
    if as_list(container.get("secrets")):
        problems.append("it receives secrets")
    return problems


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    require_linux_task(args, "user")
    labelled = task_containers(args, at_least_one=True)
    containers = [container for _label, container in labelled]
    root = []
    for label, container in labelled:
        if not _is_root(container.get("user")):
            continue
        problems = _init_problems(container, containers)
        if not problems:
            continue  # a root init container that can only fix ownership
        who = f"user {container['user']!r}" if container.get("user") else "no user"
        why = f"; not a root init container: {', '.join(problems)}" if container.get("essential") is False else ""
        root.append(f"{label} ({who}{why})")
    if root:
        report_violation(
            f"task definition '{args.name}' has container(s) that run as root: {', '.join(root)}; "
            "set user to a non-root UID:GID, e.g. user='1000:1000'."
        )


POLICY = rule_policy(__file__, _validate)
