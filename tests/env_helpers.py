"""Editing env files in tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def wake_resting_services(data: dict[str, Any]) -> None:
    """Put every service of an env file's data that rests at 0 tasks (dev's training) back at ``min_count`` 1: an
    env switched to an ``external`` broker publishes no queue metrics, so nothing would start its first task, and the
    loader refuses 0 there (shared.envs.scale_from_zero_problem)."""
    for settings in (data.get("services") or {}).values():
        if settings.get("min_count") == 0:
            settings["min_count"] = 1
            settings["desired_count"] = max(1, settings.get("desired_count", 1))


def to_external(change: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], None]:
    """``change`` (an edit that makes the env's broker ``external``), then :func:`wake_resting_services`."""

    def edit(data: dict[str, Any]) -> None:
        change(data)
        wake_resting_services(data)

    return edit
