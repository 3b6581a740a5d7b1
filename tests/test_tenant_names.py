"""Every name the platform gives an AWS resource, for the longest env and service names the loader accepts.

The env loader refuses an env (30 characters at most) or a catalog entry (32) whose derived names AWS would refuse;
these tests synthesize the longest of both, in the region with the longest code, in both mesh providers, and hold
every physical name of every layer against AWS's rule for it (length and characters, from botocore's models where
they hold them, else from the API documentation the model carries). A named resource type without a rule here
fails the test: whoever adds one states its limit.

Names that only one account holds, whatever the region (IAM roles), or only one in all accounts (S3's global
namespace), are compared across two envs of one account in two regions too.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR
from shared.envs import ENV_DIR_VAR
from shared.synth.engine import synth_env
from tests.spec_envs import SPEC_CATALOG, SPEC_ENV_DIR

LONGEST_ENV = "customer-analytics-sandbox-eu1"  # 30 characters: the loader's longest (shared.broker_names)
LONGEST_SERVICE = "feature-store-materializer-batch"  # 32 characters: the catalog's longest
#: A public service's name with the longest env: its access-log bucket ml-<env>-<service>-alb-logs-<account> is 63.
PUBLIC_SERVICE = "edge-io"
REGION = "ap-southeast-1"  # a 14-character code, the longest an env may pick
ACCOUNT = "444444444444"
#: Pulumi auto-names a resource "<resource name>-" plus 7 random characters.
AUTONAME = 8


@dataclass(frozen=True)
class NameRule:
    max_length: int
    pattern: str | None
    source: str
    autonamed: bool = False


# (resource type, input key) -> AWS's rule for the name.
RULES: dict[tuple[str, str], NameRule] = {
    ("aws:iam/role:Role", "name"): NameRule(64, r"[\w+=,.@-]+", "botocore iam roleNameType"),
    ("aws:iam/role:Role", ""): NameRule(64, None, "botocore iam roleNameType", autonamed=True),
    ("aws:iam/rolePolicy:RolePolicy", ""): NameRule(128, None, "botocore iam policyNameType", autonamed=True),
    ("aws:lb/loadBalancer:LoadBalancer", ""): NameRule(32, None, "botocore elbv2 CreateLoadBalancer.Name",
                                                       autonamed=True),
    ("aws:lb/targetGroup:TargetGroup", ""): NameRule(32, None, "botocore elbv2 CreateTargetGroup.Name",
                                                     autonamed=True),
    ("aws:cloudwatch/logGroup:LogGroup", "name"): NameRule(512, r"[\.\-_/#A-Za-z0-9]+", "botocore logs LogGroupName"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "name"): NameRule(255, None, "botocore cloudwatch AlarmName"),
    ("aws:cloudwatch/eventRule:EventRule", "name"): NameRule(64, r"[\.\-_A-Za-z0-9]+", "botocore events RuleName"),
    ("aws:cloudwatch/logMetricFilter:LogMetricFilter", "name"): NameRule(512, r"[^:*]*", "botocore logs FilterName"),
    ("aws:kms/alias:Alias", "name"): NameRule(256, r"alias/[a-zA-Z0-9:/_-]+", "botocore kms AliasNameType"),
    ("aws:secretsmanager/secret:Secret", "name"): NameRule(512, r"[A-Za-z0-9/_+=.@-]+",
                                                           "botocore secretsmanager NameType"),
    ("aws:sns/topic:Topic", "name"): NameRule(256, r"[A-Za-z0-9_-]+", "botocore sns CreateTopic.Name (documentation)"),
    ("aws:sqs/queue:Queue", "name"): NameRule(80, r"[A-Za-z0-9_-]+",
                                              "botocore sqs CreateQueue.QueueName (documentation)"),
    ("aws:budgets/budget:Budget", "name"): NameRule(100, r"[^:\\]+", "botocore budgets BudgetName"),
    ("aws:ssm/parameter:Parameter", "name"): NameRule(1011, r"[a-zA-Z0-9_./-]+",
                                                      "botocore ssm PutParameter.Name (documentation)"),
    ("aws:ecs/cluster:Cluster", "name"): NameRule(255, r"[A-Za-z0-9_-]+", "botocore ecs CreateCluster.clusterName"),
    ("aws:ecs/service:Service", "name"): NameRule(255, r"[A-Za-z0-9_-]+", "botocore ecs CreateService.serviceName"),
    ("aws:ecs/taskDefinition:TaskDefinition", "family"): NameRule(255, r"[A-Za-z0-9_-]+",
                                                                  "botocore ecs RegisterTaskDefinition.family"),
    ("aws:ecr/repository:Repository", "name"): NameRule(
        256, r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*", "botocore ecr RepositoryName"),
    ("aws:lambda/function:Function", "name"): NameRule(64, r"[a-zA-Z0-9_-]+",
                                                       "botocore lambda CreateFunction.FunctionName: a plain name"),
    ("aws:mq/broker:Broker", "brokerName"): NameRule(50, r"[A-Za-z0-9_-]+", "botocore mq CreateBroker.BrokerName"),
    ("aws:mq/configuration:Configuration", "name"): NameRule(150, r"[A-Za-z0-9._~-]+",
                                                             "botocore mq CreateConfiguration.Name"),
    ("aws:codebuild/project:Project", "name"): NameRule(150, r"[A-Za-z0-9][A-Za-z0-9\-_]{1,149}",
                                                        "botocore codebuild ProjectName"),
    ("aws:s3/bucket:Bucket", "bucket"): NameRule(63, r"[a-z0-9][a-z0-9.-]*[a-z0-9]", "S3 user guide, bucket naming"),
    ("aws:servicediscovery/httpNamespace:HttpNamespace", "name"): NameRule(
        1024, r"(?!arn:)[!-~]+", "botocore servicediscovery NamespaceNameHttp"),
    ("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "name"): NameRule(
        253, r"(?!arn:)[!-~]+", "botocore servicediscovery NamespaceNamePrivate"),
    ("aws:servicediscovery/service:Service", "name"): NameRule(
        127, r"[a-zA-Z0-9_]([a-zA-Z0-9-_]{0,61}[a-zA-Z0-9_])?", "botocore servicediscovery ServiceName"),
    ("aws:appmesh/mesh:Mesh", "name"): NameRule(255, None, "botocore appmesh ResourceName"),
    ("aws:appmesh/virtualNode:VirtualNode", "name"): NameRule(255, None, "botocore appmesh ResourceName"),
    ("aws:appmesh/virtualRouter:VirtualRouter", "name"): NameRule(255, None, "botocore appmesh ResourceName"),
    ("aws:appmesh/route:Route", "name"): NameRule(255, None, "botocore appmesh ResourceName"),
    ("aws:appmesh/virtualService:VirtualService", "name"): NameRule(255, None, "App Mesh: a DNS name"),
}
#: The inputs that carry a resource's own physical name.
NAME_INPUTS = ("name", "bucket", "brokerName", "family")
#: Types whose ``name`` input is not an AWS name (RabbitMQ objects, Pulumi's own), or which AWS names itself.
NOT_AWS = ("rabbitmq:", "pulumi:", "pulumi-python:")


def _env_dir(root: Path, mesh: str) -> Path:
    target = root / "environments"
    target.mkdir()
    for name in ("dev", "staging", "prod"):
        shutil.copy2(SPEC_ENV_DIR / f"{name}.yaml", target)
    data = yaml.safe_load((target / "staging.yaml").read_text())
    data.update(region=REGION, account_id=ACCOUNT)
    data["network"]["cidr"] = "10.40.0.0/16"
    data["policy"]["baseline"] = "staging"
    data["compute"].update(public_gateway=True,
                           certificate_arn=f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    for service in (LONGEST_SERVICE, PUBLIC_SERVICE):
        data["release"]["images"][service] = data["release"]["images"]["gateway"]
    if mesh == "appmesh":
        versions = [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]
        data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True,
                        "canaries": {LONGEST_SERVICE: versions}}
    (target / f"{LONGEST_ENV}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


@pytest.fixture(params=["service-connect", "appmesh"])
def longest(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    catalog["services"][LONGEST_SERVICE] = {
        "port": 8099, "health_path": "/healthz", "artifacts": "write",
        "publishes": {"events": ["features.materialized"]}, "consumes": {"events": ["features.materialized"]}}
    catalog["services"][PUBLIC_SERVICE] = {"port": 8098, "health_path": "/healthz", "public": True}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(tmp_path / "catalog.yaml"))
    monkeypatch.setenv(ENV_DIR_VAR, str(_env_dir(tmp_path, str(request.param))))
    return synth_env(LONGEST_ENV)


def _names(documents: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(layer, type, input key or "" for an auto-named one, name) of every custom resource of every layer."""
    for layer, document in documents.items():
        for resource in document["resources"]:
            if not resource.get("custom") or resource["type"].startswith(NOT_AWS):
                continue
            inputs = resource["inputs"]
            keys = [key for key in NAME_INPUTS if isinstance(inputs.get(key), str)]
            if resource["type"].startswith("aws:s3/") and resource["type"] != "aws:s3/bucket:Bucket":
                keys = []  # a bucket's settings name the bucket, not themselves
            if keys:
                yield layer, resource["type"], keys[0], inputs[keys[0]]
            elif (resource["type"], "") in RULES:
                yield layer, resource["type"], "", resource["name"]


def test_every_name_fits_awss_rule_for_the_longest_env_and_service_names(longest: dict[str, Any]) -> None:
    unknown, broken = set(), []
    seen = 0
    for layer, type_, key, name in _names(longest):
        rule = RULES.get((type_, key))
        if rule is None:
            if key:
                unknown.add((type_, key))
            continue
        seen += 1
        length = len(name) + (AUTONAME if rule.autonamed else 0)
        if length > rule.max_length or (rule.pattern and not re.fullmatch(rule.pattern, name)):
            broken.append(f"{layer}: {type_} {name!r} ({length} characters; {rule.source}: {rule.max_length})")
    assert not unknown, f"named resource types without a rule here (state AWS's limit for each): {sorted(unknown)}"
    assert not broken, "\n".join(broken)
    assert seen > 100  # every layer was synthesized, with the long env's and the long service's resources
    names = {name for _, _, _, name in _names(longest)}
    assert f"ml-platform-{LONGEST_ENV}-broker-admin-rotation" in names  # exactly 64: the env name's bound
    assert f"ml-{LONGEST_ENV}-{PUBLIC_SERVICE}-alb-logs-{ACCOUNT}" in names  # exactly 63
    # its log group (one per canary version under App Mesh)
    assert any(name.startswith(f"/platform/{LONGEST_ENV}/compute/{LONGEST_SERVICE}") for name in names)


def test_two_envs_of_one_account_in_two_regions_share_no_account_wide_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM names are unique in the account whatever the region, S3's global names in every account: dev and a second
    env in dev's account, in another region, with the same catalog, must name none of them alike."""
    target = tmp_path / "environments"
    target.mkdir()
    for name in ("dev", "staging", "prod"):
        shutil.copy2(SPEC_ENV_DIR / f"{name}.yaml", target)
    data = yaml.safe_load((target / "dev.yaml").read_text())
    data.update(region="eu-central-1")
    data["network"]["cidr"] = "10.50.0.0/16"
    data["policy"]["baseline"] = "dev"
    (target / "dev-eu.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(ENV_DIR_VAR, str(target))

    def account_wide(env_name: str) -> set[str]:
        return {name for _, type_, key, name in _names(synth_env(env_name))
                if (type_, key) in (("aws:iam/role:Role", "name"), ("aws:s3/bucket:Bucket", "bucket"))}

    dev, dev_eu = account_wide("dev"), account_wide("dev-eu")
    assert "ml-platform-dev-deploy-runner" in dev and "ml-platform-dev-eu-deploy-runner" in dev_eu
    assert not dev & dev_eu
