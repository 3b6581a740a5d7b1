"""Replacing attributes of other packages for a while, and putting them back.

The synth's SDK fast paths (shared.synth.speedups) and the packs' analyzer speed-up
(shared.policy.fast_analyzer) both swap functions inside pulumi / pulumi_policy; this is the one
way they do it. Standard library only: it runs inside policy packs too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def replace_attributes(replacements: Iterable[tuple[Any, str, Any]]) -> Callable[[], None]:
    """Set ``owner.name = value`` for each ``(owner, name, value)``; returns the function that restores
    every original (as found in the owner's own ``__dict__``, so a staticmethod stays one)."""
    saved: list[tuple[Any, str, Any]] = []
    for owner, name, value in replacements:
        saved.append((owner, name, vars(owner)[name]))
        setattr(owner, name, value)

    def restore() -> None:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)

    return restore
