"""Fargate task definitions use a task-level cpu/memory combination Fargate accepts.

Applies to task definitions whose ``requires_compatibilities`` includes ``FARGATE``. Accepted
combinations (cpu units: memory MiB):

* 256: 512, 1024, 2048
* 512: 1024-4096 in 1024 steps
* 1024: 2048-8192 in 1024 steps
* 2048: 4096-16384 in 1024 steps
* 4096: 8192-30720 in 1024 steps
* 8192: 16384-61440 in 4096 steps
* 16384: 32768-122880 in 8192 steps

Windows tasks take 1024 to 4096 cpu (8 and 16 vCPU are Linux only). ``cpu`` may be written as units
(``"512"``) or vCPU (``"0.5 vCPU"``),
``memory`` as MiB (``"1024"``) or GB (``"1 GB"``), as the ECS API allows.

Why: any other combination is rejected by RegisterTaskDefinition at deploy time -- halfway through a
``pulumi up`` -- while this rule finds it at preview. No cdk-nag/checkov equivalent.
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.fargate import FARGATE_SIZES, WINDOWS_MAX_CPU, WINDOWS_MIN_CPU
from shared.policy_support import UNKNOWN, applies_to, as_list, get, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


def _cpu_units(value: object) -> int | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(vcpu)?\s*", str(value), re.IGNORECASE)
    if not match:
        return None
    amount = float(match.group(1)) * (1024 if match.group(2) else 1)
    return int(amount) if amount.is_integer() else None


def _memory_mib(value: object) -> int | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(gb|gib|mb|mib)?\s*", str(value), re.IGNORECASE)
    if not match:
        return None
    unit = (match.group(2) or "mib").lower()
    amount = float(match.group(1)) * (1024 if unit in ("gb", "gib") else 1)
    return int(amount) if amount.is_integer() else None


def _choices(cpu: int) -> str:
    memory = FARGATE_SIZES[cpu]
    if len(memory) <= 4:
        return ", ".join(str(m) for m in memory)
    return f"{memory[0]}-{memory[-1]} step {memory[1] - memory[0]}"


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    compatibilities = props.get("requiresCompatibilities")
    if compatibilities is UNKNOWN or UNKNOWN in as_list(compatibilities):
        undecidable(args, f"task definition '{args.name}': requiresCompatibilities")
    if "FARGATE" not in [str(c).upper() for c in as_list(compatibilities)]:
        args.not_applicable(f"task definition '{args.name}' does not require FARGATE")
    raw_cpu, raw_memory = props.get("cpu"), props.get("memory")
    if raw_cpu is UNKNOWN or raw_memory is UNKNOWN:
        undecidable(args, f"task definition '{args.name}': cpu/memory")
    if raw_cpu is None or raw_memory is None:
        report_violation(
            f"Fargate task definition '{args.name}' does not set task-level {'cpu' if raw_cpu is None else 'memory'}; "
            "Fargate requires both, e.g. cpu='512', memory='1024'."
        )
        return
    cpu, memory = _cpu_units(raw_cpu), _memory_mib(raw_memory)
    windows = str(get(props, "runtimePlatform", "operatingSystemFamily") or "").upper().startswith("WINDOWS")
    offered = [c for c in FARGATE_SIZES if not windows or WINDOWS_MIN_CPU <= c <= WINDOWS_MAX_CPU]
    table = ", ".join(str(c) for c in offered)
    if cpu not in offered:
        report_violation(
            f"Fargate task definition '{args.name}' has cpu={raw_cpu!r}, which Fargate does not offer"
            f"{' for Windows' if windows else ''}; use one of {table}."
        )
        return
    if memory not in FARGATE_SIZES[cpu]:
        report_violation(
            f"Fargate task definition '{args.name}' has cpu={raw_cpu!r} with memory={raw_memory!r}, which Fargate "
            f"rejects; with cpu {cpu} use memory {_choices(cpu)} (MiB)."
        )


POLICY = rule_policy(__file__, _validate)
