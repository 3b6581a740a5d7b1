"""A public service's load balancer picks a task for each request as its catalog entry's ``load_balancing`` says: in
turn (``round_robin``, the default) or the task with the fewest requests in flight (``least_outstanding_requests``,
for requests of very uneven length). Always sent, so that removing the key puts the target group back on round_robin,
and changed in place: nothing is replaced and nothing rolls."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any, get_args

import botocore
import pytest

from shared.catalog import ServiceSpec
from shared.errors import ConfigError, ConfigErrors
from shared.plan_diff import diff_documents
from tests.catalog_helpers import write_catalog
from tests.layers.compute_helpers import fresh
from tests.synth_helpers import by_name

CERTIFICATE = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"


def _public_gateway(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE))


def test_the_target_group_says_round_robin_unless_the_catalog_says_otherwise_and_changes_in_place(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _public_gateway(edit_env)
    write_catalog(tmp_path, monkeypatch, lambda services: None)  # the same catalog, written as the change below is
    before = fresh("dev")["compute"]
    assert by_name(before, TARGET_GROUP, "gateway-tasks")["inputs"]["loadBalancingAlgorithmType"] == "round_robin"
    write_catalog(tmp_path, monkeypatch,
                  lambda services: services["gateway"].update(load_balancing="least_outstanding_requests"))
    after = fresh("dev")["compute"]
    inputs = by_name(after, TARGET_GROUP, "gateway-tasks")["inputs"]
    assert inputs["loadBalancingAlgorithmType"] == "least_outstanding_requests"
    changes = [(c.action, c.type, c.inputs) for c in diff_documents("compute", before, after).changes]
    assert changes == [("update", TARGET_GROUP, ("loadBalancingAlgorithmType",))]


def test_a_service_no_load_balancer_routes_to_may_not_set_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.catalog import load_catalog

    write_catalog(tmp_path, monkeypatch,
                  lambda services: services["inference"].update(load_balancing="least_outstanding_requests"))
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_catalog()
    assert "services.inference.load_balancing: inference is not public" in str(raised.value)


def test_the_catalog_offers_only_algorithms_elb_documents() -> None:
    """botocore elbv2 TargetGroupAttribute.Key: "load_balancing.algorithm.type - ... The value is round_robin,
    least_outstanding_requests, or weighted_random" (weighted_random needs anomaly mitigation settings the platform
    does not offer)."""
    model = next((Path(botocore.__file__).parent / "data" / "elbv2").glob("*/service-2.json*"))
    opened = gzip.open(model) if model.suffix == ".gz" else model.open("rb")
    with opened as handle:
        shapes = json.load(handle)["shapes"]
    text = re.sub(r"<[^>]+>", "", shapes["TargetGroupAttribute"]["members"]["Key"]["documentation"])
    documented = re.search(r"load_balancing\.algorithm\.type - .*?The value is ([a-z_, ]+?)(?:, or| or) ([a-z_]+)\.",
                           text)
    assert documented, "botocore no longer documents the algorithm's values: read it again"
    values = {value.strip() for value in documented.group(1).split(",")} | {documented.group(2)}
    offered = set(get_args(ServiceSpec.model_fields["load_balancing"].annotation))
    assert offered <= values and "round_robin" in offered, (offered, values)
    assert "weighted_random" not in offered, "its anomaly mitigation settings are not offered"
