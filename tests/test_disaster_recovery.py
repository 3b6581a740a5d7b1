"""Disaster recovery (README, "Disaster recovery"): the import id of every stateful type is documented for a lost
state, and a prod env survives the loss of one availability zone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors
from shared.protect import STATEFUL_TYPES
from tests.readme_helpers import readme_block

START, END = "<!-- import-ids: start", "<!-- import-ids: end -->"


def test_readme_gives_the_import_id_of_every_stateful_type() -> None:
    """A lost state is recovered by importing the resources that hold data by id; a stateful type added to
    shared/protect.py without its id in the table fails here, and so does a row of a type no longer stateful."""
    table = readme_block(START, END, "import-ids table (Disaster recovery)")
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", table, re.MULTILINE)
    assert {type_ for type_, _ in rows} == set(STATEFUL_TYPES)
    assert all(id_form.strip() for _, id_form in rows)


def _refusals(name: str) -> list[ConfigError]:
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env(name)
    error = raised.value
    return list(error.problems) if isinstance(error, ConfigErrors) else [error]


def _external(data: dict[str, Any]) -> None:
    data["messaging"].update(broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                                          "management_endpoint": "https://mq.example.com"})
    data["messaging"].pop("deployment_mode")


def test_a_prod_env_in_one_availability_zone_is_refused(edit_env: Any) -> None:
    # an external broker, so the cluster's own three-AZ rule does not speak for it
    def one_az(data: dict[str, Any]) -> None:
        _external(data)
        data["network"].update(az_count=1, nat="single")

    edit_env("prod", one_az)
    [problem] = _refusals("prod")
    assert (problem.file.endswith("prod.yaml"), problem.key) == (True, "network.az_count")
    assert "at least two availability zones" in problem.reason


def test_a_dev_env_may_run_in_one_availability_zone(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["network"].update(az_count=1))
    assert load_env("dev").network.az_count == 1


def test_the_shipped_prod_survives_one_az(edit_env: Any) -> None:
    env = load_env("prod")
    assert env.network.az_count == 3 and env.network.nat == "per-az"
    assert env.messaging.deployment_mode == "CLUSTER_MULTI_AZ"
