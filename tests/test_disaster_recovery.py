"""Disaster recovery (README, "Disaster recovery"): the import id of every stateful type is documented for a lost
state, and a prod env survives the loss of one availability zone."""

from __future__ import annotations

import json
import re
from pathlib import Path
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


CREDENTIALS = ("<!-- import-credentials: start", "<!-- import-credentials: end -->")
#: the resources that hold a generated credential: a password or id the random provider made, or the secret version
#: that wrote one
CREDENTIAL_TYPES = ("random:", "aws:secretsmanager/secretVersion:SecretVersion")


def _name_pattern(documented: str) -> re.Pattern[str]:
    """``messaging-password-<service>[.<epoch>]`` as a pattern of the resource names it stands for."""
    pattern = re.escape(documented).replace(re.escape("[.<epoch>]"), r"(\.[0-9-]+)?")
    return re.compile(pattern.replace(re.escape("<service>"), "[a-z0-9-]+") + "$")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_readme_says_what_to_do_with_each_generated_credential_of_a_lost_state(env: str) -> None:
    """An imported generated password is replaced on the next up (the random provider imports its own defaults), and
    a new admin password written as the secret's current version locks messaging out of the broker: each such
    resource of every layer has its row saying whether to import it and how."""
    from tests.layers.compute_helpers import platform

    table = readme_block(*CREDENTIALS, "import-credentials table (Disaster recovery)")
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \((\w+)\) \| (.+) \|$", table, re.MULTILINE)
    documented = [(type_, layer, _name_pattern(name), action) for type_, names, layer, action in rows
                  for name in re.findall(r"`([^`]+)`", names)]
    held = [(layer, resource["type"], resource["name"]) for layer, document in platform(env).items()
            for resource in document["resources"] if resource["type"].startswith(CREDENTIAL_TYPES)]
    assert {type_ for _, type_, _ in held} >= {"aws:secretsmanager/secretVersion:SecretVersion",
                                               "random:index/randomPassword:RandomPassword"}
    missing = [(layer, type_, name) for layer, type_, name in held if not any(
        (row_type, row_layer) == (type_, layer) and pattern.match(name)
        for row_type, row_layer, pattern, _ in documented)]
    assert missing == []
    # the one to import is the admin's first version: without it `up` writes a new admin password as AWSCURRENT
    (admin,) = [action for type_, layer, pattern, action in documented if pattern.match("broker-admin")
                and type_.endswith("SecretVersion")]
    assert admin.startswith("import it") and "platform-initial" in admin
    assert all(action.startswith("leave") for type_, _, _, action in documented if type_.startswith("random:"))


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


def test_what_a_destroy_leaves_behind_names_every_log_group_the_stacks_create() -> None:
    """README's "What a destroy leaves behind" tells which log groups go with their layer (and that no role may
    create one again before the next up): every log group a shipped env's synth declares is named there, with
    ``<env>`` for the env's name and ``...`` for the rest of a path."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    bullet = readme.split("- **Log groups** the stacks create (", 1)[1].split(")", 1)[0]
    patterns = [re.compile(re.escape(name.strip("`")).replace(re.escape("<env>"), "(?P<env>[a-z0-9-]+)")
                           .replace(re.escape("..."), ".+") + "$") for name in re.findall(r"`[^`]+`", bullet)]
    assert len(patterns) >= 4, bullet
    found = 0
    for snapshot in sorted((Path(__file__).parent / "snapshots").glob("*/*.json")):
        env = snapshot.parent.name
        for resource in json.loads(snapshot.read_text()).get("resources", []):
            if resource["type"] == "aws:cloudwatch/logGroup:LogGroup":
                name = str((resource.get("inputs") or {}).get("name"))
                found += 1
                matches = [match for pattern in patterns if (match := pattern.match(name))]
                assert any(match["env"] == env for match in matches), (env, name, bullet)
    assert found >= 9 * 3
