"""One DAG, derived everywhere: synth order, up levels, destroy order, --layers expansion, README."""

from __future__ import annotations

import re

import pytest

from shared import REPO_ROOT
from shared.dag import LAYER_UPSTREAMS, NEEDS_VPC_REACH, downstream_closure, levels, mermaid, order, upstream_closure
from shared.errors import UsageError


def test_every_layer_comes_after_what_it_reads() -> None:
    position = {layer: index for index, layer in enumerate(order())}
    for layer, upstreams in LAYER_UPSTREAMS.items():
        assert all(position[u] < position[layer] for u in upstreams)


def test_levels_group_independent_layers() -> None:
    assert levels() == [["network"], ["discovery", "broker"], ["mesh", "messaging"], ["compute"]]


def test_up_with_layers_adds_what_they_read() -> None:
    assert upstream_closure(["mesh"]) == ["network", "discovery", "mesh"]


def test_the_broker_comes_before_messaging_and_needs_no_reach_into_the_vpc() -> None:
    # messaging also reads network: its queue metrics publisher runs in the private subnets
    assert LAYER_UPSTREAMS["broker"] == ("network",) and LAYER_UPSTREAMS["messaging"] == ("network", "broker")
    assert upstream_closure(["messaging"]) == ["network", "broker", "messaging"]
    # the broker layer creates the broker through AWS APIs only; messaging talks to its management API
    assert "messaging" in NEEDS_VPC_REACH and "broker" not in NEEDS_VPC_REACH


def test_destroy_with_layers_adds_what_reads_them() -> None:
    assert downstream_closure(["messaging"]) == ["messaging", "compute"]
    assert downstream_closure(["broker"]) == ["broker", "messaging", "compute"]
    assert downstream_closure(["network"]) == order()


def test_unknown_layer_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown layer"):
        upstream_closure(["no-such-layer"])


def test_every_layer_is_a_pulumi_project() -> None:
    for layer in LAYER_UPSTREAMS:
        assert (REPO_ROOT / "stacks" / layer / "Pulumi.yaml").is_file()
        assert (REPO_ROOT / "stacks" / layer / "__main__.py").is_file()


def test_readme_picture_is_generated_from_the_dag() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has a mermaid picture of the layers"
    assert blocks[0].strip() == mermaid().strip(), (
        "README picture is out of date; paste `python -c 'from shared.dag import mermaid; print(mermaid())'`")
