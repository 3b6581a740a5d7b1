"""Walks over JSON-shaped values (the inputs of a resource as the engines record them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def any_string(value: Any, test: Callable[[str], bool]) -> bool:
    """Whether ``test`` holds for a string anywhere in ``value`` (dict values and list items, recursively)."""
    if isinstance(value, str):
        return test(value)
    if isinstance(value, dict):
        return any(any_string(item, test) for item in value.values())
    if isinstance(value, list):
        return any(any_string(item, test) for item in value)
    return False
