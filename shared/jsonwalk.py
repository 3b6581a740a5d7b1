"""Walks over JSON-shaped values (the inputs of a resource as the engines record them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def string_leaves(value: Any) -> Iterator[str]:
    """Every string in ``value``: itself, or its dict values' and list items', recursively, in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_leaves(item)


def any_string(value: Any, test: Callable[[str], bool]) -> bool:
    """Whether ``test`` holds for a string anywhere in ``value`` (dict values and list items, recursively)."""
    return any(test(text) for text in string_leaves(value))
