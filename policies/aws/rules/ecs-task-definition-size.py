"""A task definition fits ECS's 64 KiB: ECS refuses to register a larger one.

ECS's service quotas list "Task definition size: 64 KiB", not adjustable (ECS developer guide, "Amazon ECS service
quotas"; 32 KiB in its older editions), measured over the registered definition. Measured here as the compact JSON
of the resource's inputs with its containers as the API takes them (``containerDefinitions`` parsed), in UTF-8
bytes, which counts every container's environment, secrets and labels.

Why: what grows a task definition grows with the catalog. With ECS Service Connect a caller's container gets an
environment variable and an entry of a docker label's endpoint map per service it calls (about 200 to 320 bytes
each, with the names), so a service calling a couple of hundred others registers no longer: RegisterTaskDefinition
fails in compute's
``up``, after the layers before it were applied. Nothing in a preview measures it. Split such a caller, or have it
find its callees through Service Connect's DNS names instead of one variable per callee.
"""

import json

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, container_definitions, contains_unknown, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

#: ECS service quotas: "Task definition size", 64 KiB, not adjustable.
MAX_BYTES = 64 * 1024
LABEL = "task definition"


def measured_bytes(props: dict[str, object], containers: list[dict[str, object]]) -> int:
    """The definition as compact JSON, its containers as objects (not the provider's JSON string), in bytes."""
    document = {**props, "containerDefinitions": containers}
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode())


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    containers = container_definitions(args, props)
    others = {key: value for key, value in props.items() if key != "containerDefinitions"}
    size = measured_bytes({key: value for key, value in others.items() if not contains_unknown(value)}, containers)
    if size > MAX_BYTES:
        largest = max(containers, key=lambda c: len(json.dumps(c)), default={})
        report_violation(
            f"task definition '{args.name}' measures {size} bytes as compact JSON, more than the {MAX_BYTES} "
            f"(64 KiB) ECS registers (RegisterTaskDefinition fails on up); its largest container, "
            f"{largest.get('name', '?')}, takes {len(json.dumps(largest, separators=(',', ':')).encode())} bytes "
            f"with {len(largest.get('environment') or [])} environment variables. A service calling very many "
            "others adds a variable and an entry of its endpoints label per callee: split it, or reach the callees "
            "by their Service Connect names.")
    elif unknown := sorted(key for key, value in others.items() if contains_unknown(value)):
        undecidable(args, f"{LABEL} '{args.name}': {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
