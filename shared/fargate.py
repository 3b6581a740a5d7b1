"""The cpu/memory pairs Fargate accepts: one table for the compute layer and the policy rule.

Source: "Task CPU and memory" in the Amazon ECS developer guide; RegisterTaskDefinition refuses any
other pair (Linux tasks; Windows tasks start at 1024 cpu).
"""

from __future__ import annotations

#: cpu units -> the memory sizes (MiB) Fargate accepts with it.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
WINDOWS_MIN_CPU = 1024
