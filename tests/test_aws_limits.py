"""AWS count limits the env file and the catalog decide (shared.aws_limits): the env loader refuses a hard one before
any layer runs (exit 2 naming the file and key), the account preflight compares an adjustable one with the quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.aws_limits import CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE
from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors
from tests.catalog_helpers import shipped_services_only


def problems_of(name: str) -> list[ConfigError]:
    try:
        load_env(name)
    except ConfigErrors as raised:
        return raised.problems
    except ConfigError as raised:
        return [raised]
    return []


def cloud_map_problems(name: str) -> list[str]:
    return [f"{p.file}: {p.key}: {p.reason}" for p in problems_of(name) if "Cloud Map" in p.reason]


def counts(max_count: int) -> dict[str, int]:
    return {"desired_count": 1, "min_count": 1, "max_count": max_count}


def test_500_tasks_of_a_service_fit_its_cloud_map_service(edit_env: Any, env_dir: Path) -> None:
    edit_env("staging", lambda data: data.setdefault("services", {}).update(inference=counts(500)))
    assert cloud_map_problems("staging") == []


def test_a_max_count_past_1000_cloud_map_instances_exits_2_naming_the_key(edit_env: Any, env_dir: Path) -> None:
    """501 tasks, 1002 during a rolling deployment (200 %): Cloud Map registers at most 1,000 instances per service,
    a limit AWS does not raise, so the loader refuses the env before any layer."""
    edit_env("staging", lambda data: data.setdefault("services", {}).update(inference=counts(501)))
    found = cloud_map_problems("staging")
    assert len(found) == 1, found
    assert "staging.yaml: services.inference.max_count: 501 tasks" in found[0]
    assert "1002 Cloud Map instances" in found[0] and "keep max_count at most 500" in found[0]


def test_canary_versions_share_their_services_cloud_map_service(edit_env: Any, env_dir: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True, "canaries": {
            "inference": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}}
        data.setdefault("services", {})["inference"] = counts(251)

    edit_env("staging", change)
    found = cloud_map_problems("staging")
    assert len(found) == 1 and "for each of its 2 canary versions" in found[0] and "1004 Cloud Map" in found[0], found


def test_the_preflight_counts_the_envs_tasks_against_the_namespace_quota(
        edit_env: Any, env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task registers in the env's one namespace: the preflight compares the desired tasks (and, as a note, the
    peak) with the account's 'Instances per namespace' (2,000 by default, adjustable)."""
    from shared.orchestrate.account import quota_needs

    edit_env("staging", lambda data: data.setdefault("services", {}).update(inference={
        "desired_count": 300, "min_count": 1, "max_count": 450}))
    env = load_env("staging")
    [need] = [n for n in quota_needs(env, ["compute"]) if n.quota_code == CLOUD_MAP_INSTANCES_PER_NAMESPACE_CODE]
    others = [env.service_settings(name) for name in env.release.images if name != "inference"]  # counts or defaults
    assert need.service_code == "AWSCloudMap" and need.layer == "compute"
    assert need.need == 300 + sum(other.desired_count for other in others)
    assert need.peak == (450 + sum(other.max_count for other in others)) * 2  # a rolling deployment runs 200 %


RULE_TYPES = {"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "ingress",
              "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "egress"}


def synthesized_group_rules(documents: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """(ingress, egress) rules the synthesized layers put on the tasks' security group."""
    group = documents["network"]["outputs"]["service_security_group_id"]
    found = {"ingress": 0, "egress": 0}
    for document in documents.values():
        for resource in document["resources"]:
            direction = RULE_TYPES.get(resource["type"])
            if direction and resource["inputs"].get("securityGroupId") == group:
                found[direction] += 1
    return found["ingress"], found["egress"]


@pytest.mark.parametrize("name", ["dev", "staging", "prod", "dev-public"])
def test_the_preflight_counts_the_rules_the_layers_put_on_the_tasks_group(
        name: str, edit_env: Any, env_dir: Path) -> None:
    """The preflight's count is the synthesized one, for every shipped env and a public gateway (an ALB rule per
    public service): a layer that adds a rule to the group without the count fails here."""
    from shared.orchestrate.account import service_group_rules
    from shared.synth.engine import synth_env

    env_name = name.removesuffix("-public")
    if name.endswith("-public"):
        edit_env(env_name, lambda data: data["compute"].update(
            public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/abc"))
    assert service_group_rules(load_env(env_name)) == synthesized_group_rules(
        synth_env(env_name, ["network", "compute"]))


def test_200_generated_services_need_more_rules_on_the_tasks_group_than_the_default_quota(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's 200 services listen on consecutive ports: one rule each way admits the 199 called ones (it needed
    a rule per called service, 199 inbound and 202 outbound, past EC2's default 60). Spread one port apart, they need
    a rule per called service again, which the preflight compares with the account's quota."""
    from shared.bench import _scenario_dir
    from shared.catalog import CATALOG_ENV_VAR
    from shared.envs import ENV_DIR_VAR
    from shared.orchestrate.account import quota_needs
    from shared.synth.engine import synth_env

    catalog, env_dir = _scenario_dir(200, tmp_path)
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    monkeypatch.setenv(ENV_DIR_VAR, str(env_dir))
    env = load_env("dev")
    [need] = [n for n in quota_needs(env, ["network", "discovery", "compute"]) if n.quota_code == "L-0EA8095F"]
    assert need.need == max(synthesized_group_rules(synth_env("dev", ["network", "compute"]))) == 4
    assert need.service_code == "vpc" and need.layer == "network"
    data = yaml.safe_load(catalog.read_text())
    for index, spec in enumerate(data["services"].values()):
        spec["port"] = 8000 + 2 * index
    spread = tmp_path / "catalog-spread.yaml"
    spread.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(spread))
    [need] = [n for n in quota_needs(load_env("dev"), ["network", "compute"]) if n.quota_code == "L-0EA8095F"]
    assert need.need == max(synthesized_group_rules(synth_env("dev", ["network", "compute"]))) > 60


@pytest.mark.parametrize(("versions", "refused"), [(10, False), (11, True)])
def test_a_canary_splits_over_at_most_10_versions(versions: int, refused: bool, edit_env: Any, env_dir: Path) -> None:
    """Its App Mesh route has a weighted target per version, and a route takes at most 10 (not adjustable)."""
    def change(data: dict[str, Any]) -> None:
        weights = [100 // versions + (1 if index < 100 % versions else 0) for index in range(versions)]
        data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True, "canaries": {
            "inference": [{"version": f"v{index}", "weight": weight} for index, weight in enumerate(weights)]}}

    edit_env("staging", change)
    found = [f"{p.key}: {p.reason}" for p in problems_of("staging")]
    if refused:
        assert any(line.startswith("mesh.canaries") and "11 versions" in line and "at most 10 weighted targets" in line
                   for line in found), found
    else:
        assert not [line for line in found if "weighted targets" in line], found


def subnet_problems(name: str) -> list[str]:
    return [f"{p.file}: {p.key}: {p.reason}" for p in problems_of(name) if "private subnet" in p.reason]


def test_a_22_vpc_holds_the_shipped_counts_and_the_usable_addresses_are_the_subnets_less_5() -> None:
    """A /22 splits into 16 /26s: 64 addresses, 5 of them AWS's (VPC guide, "Subnet CIDR blocks")."""
    from shared.aws_limits import private_subnet_addresses

    assert private_subnet_addresses(22) == 59 and private_subnet_addresses(16) == 4091


def test_private_subnets_too_small_for_the_peak_tasks_exit_2_naming_network_cidr(
        edit_env: Any, env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """staging at /22 (three /26 private subnets of 59 addresses): inference at max_count 40 runs up to 80 tasks during
    a rolling deployment, 27 per AZ, with the others 35 task interfaces per AZ, plus 4 interface endpoints, the broker,
    2 Lambda functions and a build: 43 fit. At max_count 70 (140 tasks, 47 per AZ): 63 do not, and the tasks past the
    free addresses would fail only once the service scales out. The loader says so before any layer."""
    def change(max_count: int) -> Any:
        def apply(data: dict[str, Any]) -> None:
            data["network"]["cidr"] = "10.20.0.0/22"
            data.setdefault("services", {})["inference"] = counts(max_count)
        return apply

    shipped_services_only(tmp_path, monkeypatch, edit_env, ("staging",))  # the figures below count every service's
    edit_env("staging", change(40))
    assert subnet_problems("staging") == []
    edit_env("staging", change(70))
    found = subnet_problems("staging")
    assert len(found) == 1, found
    assert "staging.yaml: network.cidr: 10.20.0.0/22 gives each AZ a /26 private subnet with 59 usable" in found[0]
    assert "may need 63 at once" in found[0] and "inference 47" in found[0]
    # the smallest VPC whose private subnets hold 63: a /21 (/25 subnets, 123 addresses)
    assert "give network.cidr a /21 or larger" in found[0]
    with pytest.raises(ConfigError) as raised:
        load_env("staging")
    assert raised.value.exit_code == 2


def test_one_az_holds_a_whole_service(edit_env: Any, env_dir: Path) -> None:
    """With one AZ every task of every service lands in its one private subnet."""
    def change(data: dict[str, Any]) -> None:
        data["network"].update(cidr="10.10.0.0/22", az_count=1)
        data["services"]["inference"] = counts(27)

    edit_env("dev", change)
    found = subnet_problems("dev")
    assert len(found) == 1 and "inference 54" in found[0] and "spread over 1 AZ)" in found[0], found


def test_each_canary_version_is_its_own_service_spread_over_the_azs(edit_env: Any, env_dir: Path) -> None:
    """Each canary version runs as its own ECS service, which ECS spreads over the AZs by itself: three versions at
    max_count 1 (2 tasks each during a deployment) over 3 AZs may each put a task in the same AZ, 3 there, not the
    2 that spreading their 6 tasks together would give."""
    from shared.aws_limits import private_subnet_need
    from shared.catalog import load_catalog

    def change(data: dict[str, Any]) -> None:
        data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True, "canaries": {
            "inference": [{"version": "v1", "weight": 34}, {"version": "v2", "weight": 33},
                          {"version": "v3", "weight": 33}]}}
        data.setdefault("services", {})["inference"] = counts(1)

    edit_env("staging", change)
    _, parts = private_subnet_need(load_env("staging"), load_catalog())
    assert "inference 3" in parts[0], parts
