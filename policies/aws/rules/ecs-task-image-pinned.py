"""Container images are pinned by digest (``image@sha256:...``).

``repo@sha256:<digest>`` (with or without a tag before the ``@``) passes. ``repo:latest`` and an image
without a tag (which means ``latest``) always fail; any other tag fails too, because a tag is a
pointer that can be re-pushed -- the message says to pin the digest.

Why: with a tag, two tasks of the same task definition can run different code (a new push between
two scale-outs), a rollback does not roll back, and what was scanned is not necessarily what runs.
No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, rule_policy, task_containers
from shared.policy_typing import ReportViolation


def _problem(image: object) -> str | None:
    if not isinstance(image, str) or not image.strip():
        return None  # no image at all is ecs-task-definition-valid's finding
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]  # a registry host may carry a port: host:5000/repo
    tag = last.split(":", 1)[1] if ":" in last else None
    if tag is None:
        return f"{image!r} has no tag (that is :latest)"
    if tag == "latest":
        return f"{image!r} uses :latest"
    return f"{image!r} uses tag :{tag}, which can be re-pushed"


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    problems = [f"container {label}: {problem}" for label, c in task_containers(args)
                if (problem := _problem(c.get("image")))]
    if problems:
        report_violation(
            f"task definition '{args.name}' does not pin its images: {'; '.join(problems)}; pin by digest, "
            "e.g. image='<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<digest>'."
        )


POLICY = rule_policy(__file__, _validate)
