"""Reading synth documents in tests."""

from __future__ import annotations

from typing import Any


def of_type(document: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in document["resources"] if r["type"] == type_]


def by_name(document: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    matches = [r for r in of_type(document, type_) if r["name"] == name]
    assert len(matches) == 1, f"expected one {type_} named {name}, found {len(matches)}"
    return matches[0]


def by_urn(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in document["resources"]}
