"""Every container of a task definition runs as a non-root user, declared in the task definition.

A container passes when ``user`` is set and is neither ``root`` nor UID ``0`` (``"1000"``,
``"1000:1000"``, ``"app"`` pass; ``"root"``, ``"0"``, ``"0:0"``, ``"root:app"`` fail). An unset
``user`` fails too: it defers to the image's ``USER``, which is root for most base images and cannot
be checked here.

Why: root in the container is root on the host's kernel; a container escape from a non-root process
is much harder. Matches the AWS Config rule ecs-task-definition-nonroot-user; no cdk-nag/checkov id.
"""

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.aws.support import applies_to, container_definitions, container_label, plain
from shared.policy_support import rule_description, rule_id


def _is_root(user: object) -> bool:
    if not isinstance(user, str) or not user.strip():
        return True
    name = user.strip().split(":", 1)[0]
    return name in ("root", "0")


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    containers = container_definitions(args, plain(args.props))
    if not containers:
        args.not_applicable(f"task definition '{args.name}' has no containers")
    root = [
        f"{container_label(c, i)} ({'user ' + repr(c['user']) if c.get('user') else 'no user'})"
        for i, c in enumerate(containers)
        if _is_root(c.get("user"))
    ]
    if root:
        report_violation(
            f"task definition '{args.name}' has container(s) that run as root: {', '.join(root)}; "
            "set user to a non-root UID:GID, e.g. user='1000:1000'."
        )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
