"""Every region an env may pick (shared/regions.py) is one the layers can be deployed to: a region added to the table
without the checks its docstring lists fails here, not midway through a first ``up`` after the earlier layers were
created (the broker alone takes 20 minutes)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from shared import REPO_ROOT
from shared.artifact_names import NO_ACCOUNT_REGIONAL_NAMESPACE
from shared.components.gateway import (
    ELB_LOG_DELIVERY_ACCOUNTS,
    ELB_LOG_DELIVERY_BY_PRINCIPAL,
    LOG_DELIVERY_PRINCIPAL,
    access_log_bucket_policy,
)
from shared.fargate import FARGATE_ZONE_IDS
from shared.regions import REGION_AZS

REGIONS = sorted(REGION_AZS)
#: The botocore services each pulumi_aws module the layers create resources with calls (``cloudwatch`` holds the
#: alarms, the log groups and the EventBridge rules). App Mesh: none, as no env may pick it after its end of support
#: (shared/lifecycle.py), and the regions opened since have no App Mesh endpoint.
PROVIDER_MODULE_SERVICES: dict[str, tuple[str, ...]] = {
    "appautoscaling": ("application-autoscaling",), "appmesh": (), "budgets": ("budgets",),
    "cloudwatch": ("cloudwatch", "logs", "events"),
    "codebuild": ("codebuild",), "ec2": ("ec2",), "ecr": ("ecr",), "ecs": ("ecs",), "iam": ("iam",), "kms": ("kms",),
    "lambda_": ("lambda",), "lb": ("elbv2",), "mq": ("mq",), "s3": ("s3",), "secretsmanager": ("secretsmanager",),
    "servicediscovery": ("servicediscovery",), "sns": ("sns",), "sqs": ("sqs",), "ssm": ("ssm",), "vpc": ("ec2",),
}
_PROVIDER_MODULE = re.compile(r"\baws\.([a-z_0-9]+)\.[A-Z]")
#: boto3 clients the orchestrator, the dynamic providers and the functions make: ``clients(env, "ecr")``,
#: ``_client("logs", ...)``, ``boto3.client("secretsmanager", ...)``
_BOTO3_CLIENT = re.compile(r"\b[a-z_]*clients?\((?:[\w.]+, )?\"([a-z0-9-]+)\"")


def _sources() -> list[Path]:
    return sorted(path for folder in ("shared", "stacks") for path in (REPO_ROOT / folder).rglob("*.py"))


@cache
def _session() -> Any:
    return botocore.session.get_session()


@cache
def _aws_partition() -> dict[str, Any]:
    (aws,) = [p for p in _session().get_data("endpoints")["partitions"] if p["partition"] == "aws"]
    return dict(aws)


@cache
def services_the_layers_call() -> frozenset[str]:
    """The botocore service names, from the code: a module or client no one has placed fails the test below."""
    modules: set[str] = set()
    clients: set[str] = set()
    for path in _sources():
        text = path.read_text()
        modules.update(_PROVIDER_MODULE.findall(text))
        clients.update(_BOTO3_CLIENT.findall(text))
    unplaced = modules - set(PROVIDER_MODULE_SERVICES)
    assert not unplaced, f"pulumi_aws modules {sorted(unplaced)}: add the botocore services they call above"
    return frozenset(clients.union(*(PROVIDER_MODULE_SERVICES[module] for module in modules)))


def test_the_services_are_found_in_the_code_and_named_as_botocore_names_them() -> None:
    services = services_the_layers_call()
    # the ones every env uses, whatever the scan finds besides
    assert {"ec2", "ecs", "ecr", "mq", "codebuild", "lambda", "logs", "cloudwatch", "events", "secretsmanager",
            "servicediscovery", "application-autoscaling", "sts", "service-quotas", "elbv2"} <= services, services
    unknown = services - set(_session().get_available_services())
    assert not unknown, f"not botocore service names: {sorted(unknown)}"


@pytest.mark.parametrize("region", REGIONS)
def test_every_service_the_layers_call_has_an_endpoint_in_the_region(region: str) -> None:
    endpoints = _aws_partition()["services"]
    lacking = []
    for service in sorted(services_the_layers_call()):
        prefix = _session().get_service_model(service).metadata["endpointPrefix"]
        known = endpoints.get(prefix, {})
        if known.get("isRegionalized", True) and region not in known.get("endpoints", {}):
            lacking.append(f"{service} ({prefix})")
    assert not lacking, f"{region} has no endpoint for {', '.join(lacking)} (botocore data/endpoints.json)"


@pytest.mark.parametrize("region", REGIONS)
def test_every_region_is_of_the_aws_partition(region: str) -> None:
    # the code writes the aws partition's domains and service principals (amazonaws.com, logs.<region>.amazonaws.com)
    assert region in _aws_partition()["regions"], f"{region}: not a region of the aws partition"


@pytest.mark.parametrize("region", REGIONS)
def test_s3_offers_the_artifact_buckets_namespace_in_every_region(region: str) -> None:
    assert region not in NO_ACCOUNT_REGIONAL_NAMESPACE, (
        f"{region}: S3 has no account-regional namespace there; compute's artifact buckets cannot be created")


def test_the_regions_without_the_namespace_are_aws_regions() -> None:
    # the set is checked against botocore too, so a misspelt name cannot make the test above pass
    assert NO_ACCOUNT_REGIONAL_NAMESPACE <= set(_aws_partition()["regions"])


@pytest.mark.parametrize("region", REGIONS)
def test_elb_log_delivery_is_decided_for_every_region(region: str) -> None:
    # an older region left out of the account table by mistake would get the principal, and ELB would be refused the
    # bucket when compute turns the access logs on; a newer one given an invented account likewise
    by_account, by_principal = region in ELB_LOG_DELIVERY_ACCOUNTS, region in ELB_LOG_DELIVERY_BY_PRINCIPAL
    assert by_account != by_principal, (
        f"{region}: add ELB's account for it (ELB guide, 'Enable access logs', regions before August 2022) to "
        "ELB_LOG_DELIVERY_ACCOUNTS, or the region to ELB_LOG_DELIVERY_BY_PRINCIPAL (regions since)")
    statement = access_log_bucket_policy(bucket="b", partition="aws", region=region, account_id="1")["Statement"][0]
    expected = ({"AWS": f"arn:aws:iam::{ELB_LOG_DELIVERY_ACCOUNTS[region]}:root"} if by_account
                else {"Service": LOG_DELIVERY_PRINCIPAL})
    assert statement["Principal"] == expected


def test_a_region_outside_the_account_table_gets_the_service_principal() -> None:
    statement = access_log_bucket_policy(bucket="b", partition="aws", region="ap-southeast-4", account_id="1")
    assert statement["Statement"][0]["Principal"] == {"Service": LOG_DELIVERY_PRINCIPAL}


def test_fargates_zone_limits_name_regions_an_env_may_pick() -> None:
    assert set(FARGATE_ZONE_IDS) <= set(REGION_AZS)
    for region, zone_ids in FARGATE_ZONE_IDS.items():
        # AZ IDs are the region's short code and azN (use1-az1): one of another region would never match
        assert all(re.fullmatch(r"[a-z]+\d-az\d+", zone) for zone in zone_ids), (region, zone_ids)


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", "eu-west-1"])
def test_every_component_takes_its_partition_from_the_envs_region(region: str) -> None:
    """The loader refuses other partitions today; should that change, no component may still build ``arn:aws:``
    ARNs: each args' partition is derived from its region (no field to forget or to default)."""
    from shared.components.alarms import AlarmTopicArgs
    from shared.components.broker import AmazonMqBrokerArgs
    from shared.components.compute_containers import partition_of
    from shared.components.deploy_runner import DeployRunnerArgs
    from shared.envs import load_env

    env = load_env("prod").model_copy(update={"region": region})
    expected = partition_of(region)
    assert expected == {"cn": "aws-cn", "us": "aws-us-gov"}.get(region[:2], "aws")
    for args in (AlarmTopicArgs.from_env(env), AmazonMqBrokerArgs.from_env(env), DeployRunnerArgs.from_env(env)):
        assert args.partition == expected, type(args).__name__
