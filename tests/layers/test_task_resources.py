"""Given an env (either mesh provider), the resources inside each service's Fargate task: no container of the
platform's takes from the app, or from the proxy beside it, a limit Fargate would otherwise give it."""

from __future__ import annotations

import re
from typing import Any

import botocore.loaders
import pytest

from shared.fargate import FARGATE_DEFAULT_NOFILE
from tests.layers.compute_helpers import ENVS, TASK, containers, fresh, platform
from tests.synth_helpers import of_type


def ecs_doc(shape: str, member: str | None = None) -> str:
    shapes = botocore.loaders.Loader().load_service_model("ecs", "service-2")["shapes"]
    text = shapes[shape]["members"][member]["documentation"] if member else shapes[shape]["documentation"]
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def nofile_limits(doc: dict[str, Any]) -> list[tuple[str, int]]:
    """(container, limit) for each nofile soft and hard limit a task definition of ``doc`` sets."""
    return [(c["name"], limit[key]) for task in of_type(doc, TASK) for c in containers(task)
            for limit in c.get("ulimits", []) if limit["name"] == "nofile" for key in ("softLimit", "hardLimit")]


def test_the_fargate_nofile_default_is_the_one_the_ecs_api_documents() -> None:
    assert (f"The default nofile soft limit is {FARGATE_DEFAULT_NOFILE} and the default hard limit is "
            f"{FARGATE_DEFAULT_NOFILE}") in ecs_doc("ContainerDefinition", "ulimits")


@pytest.mark.parametrize("env", ENVS)
def test_no_service_connect_container_lowers_the_open_files_limit_fargate_gives_it(env: str) -> None:
    assert [(name, limit) for name, limit in nofile_limits(platform(env)["compute"])
            if limit < FARGATE_DEFAULT_NOFILE] == []


def test_envoy_keeps_the_open_files_limit_fargate_gives_it(edit_env: Any) -> None:
    """Envoy holds two descriptors per connection it proxies (the app's side and the peer's), in and out: App Mesh's
    own example ulimit of 15000 is a raise on EC2 (1024) but a cut on Fargate (65535)."""
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    doc = fresh("dev")["compute"]
    assert all("envoy" in {c["name"] for c in containers(task)} for task in of_type(doc, TASK))
    assert [(name, limit) for name, limit in nofile_limits(doc) if limit < FARGATE_DEFAULT_NOFILE] == []


@pytest.mark.parametrize("env", ENVS)
def test_no_container_has_a_limit_of_its_own_so_the_app_may_use_what_the_proxy_leaves(env: str) -> None:
    """README, "Inside the task": the task size is the only limit, so the app of a 256/512 service has the ~448 MiB the
    Service Connect proxy leaves, not a fixed share, and scratch-init and the serve gate reserve nothing."""
    limits = [(c["name"], key) for task in of_type(platform(env)["compute"], TASK) for c in containers(task)
              for key in ("cpu", "memory", "memoryReservation") if c.get(key)]
    assert limits == []
