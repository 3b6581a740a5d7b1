"""Run one component alone, with its args, as the whole program of a throwaway stack under the mock
runtime (no env file, no layer program, no upstream stacks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from shared.synth.engine import synth_function

REGION = "eu-west-1"
ACCOUNT = "111111111111"


def run_component(build: Callable[[], pulumi.Resource | object]) -> dict[str, Any]:
    """The synth document of a program that only calls ``build()``."""

    def program() -> None:
        build()

    return synth_function(program, region=REGION, account_id=ACCOUNT, config={"aws:region": REGION})


def of_type(document: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in document["resources"] if r["type"] == type_]


def root_of(document: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """The outermost component ``resource`` belongs to."""
    by_urn = {r["urn"]: r for r in document["resources"]}
    while resource["parent"] in by_urn:
        resource = by_urn[resource["parent"]]
    return resource
