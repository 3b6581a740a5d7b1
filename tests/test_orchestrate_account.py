"""The account preflight (shared/orchestrate/account.py): service-linked roles and service quotas, before any layer.

IAM and STS are moto's (a fresh account has no service-linked role); Service Quotas is moto's for the
VPC quotas it knows and an injected fake for the others (moto answers NoSuchResource for every other
service). The orchestrator runs with the recording runner of test_orchestrate.py.
"""

from __future__ import annotations

import ast
import io
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from shared import REPO_ROOT
from shared.catalog import load_catalog
from shared.dag import LAYERS
from shared.deploy_role import boundary_policy
from shared.envs import EnvConfig, load_env
from shared.images import AwsAccessError
from shared.orchestrate.account import (
    ROLE_SETTLE_S,
    AccountError,
    AwsAccountCheck,
    PreflightClients,
    linked_roles,
    quota_needs,
)
from shared.orchestrate.account import _fmt as amount
from shared.orchestrate.account import main as account_main
from shared.orchestrate.cli import main
from shared.synth.engine import synth_env
from tests.aws_helpers import (
    AccountReady,
    MotoAccounts,
    ReleasedEverywhere,
    count_profile_assumptions,
    create_role_boundaries,
)
from tests.test_orchestrate import RecordingRunner, management_api

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback

ECS_ROLE = "AWSServiceRoleForECS"
FRESH_DEV_ROLES = ["AWSServiceRoleForAmazonMQ", ECS_ROLE, "AWSServiceRoleForApplicationAutoScaling_ECSService",
                   "AWSServiceRoleForECRReplication"]


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeQuotas:
    """Service Quotas: (service, code) -> the applied value, an error code, or absent (NoSuchResource)."""

    def __init__(self, applied: Mapping[tuple[str, str], float | str], defaults: Mapping[tuple[str, str], float] = {}):
        self.applied = dict(applied)
        self.defaults = dict(defaults)

    def _answer(self, table: Mapping[tuple[str, str], float | str], operation: str, ServiceCode: str,
                QuotaCode: str) -> dict[str, Any]:
        value = table.get((ServiceCode, QuotaCode))
        if value is None:
            raise client_error("NoSuchResourceException", "no such quota", operation)
        if isinstance(value, str):
            raise client_error(value, "denied", operation)
        return {"Quota": {"ServiceCode": ServiceCode, "QuotaCode": QuotaCode, "Value": value}}

    def get_service_quota(self, ServiceCode: str, QuotaCode: str) -> dict[str, Any]:
        return self._answer(self.applied, "GetServiceQuota", ServiceCode, QuotaCode)

    def get_aws_default_service_quota(self, ServiceCode: str, QuotaCode: str) -> dict[str, Any]:
        return self._answer(self.defaults, "GetAWSDefaultServiceQuota", ServiceCode, QuotaCode)


class ReadingIam:
    """moto's IAM for the preflight's reads (a role, the role boundary and its version); the subclasses answer
    CreateServiceLinkedRole as the case needs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_role(self, RoleName: str) -> Any:
        return self.inner.get_role(RoleName=RoleName)

    def get_policy(self, PolicyArn: str) -> Any:
        return self.inner.get_policy(PolicyArn=PolicyArn)

    def get_policy_version(self, PolicyArn: str, VersionId: str) -> Any:
        return self.inner.get_policy_version(PolicyArn=PolicyArn, VersionId=VersionId)

    def get_account_summary(self) -> Any:
        return self.inner.get_account_summary()


class DenyingIam(ReadingIam):
    """moto's IAM, except that CreateServiceLinkedRole answers ``code`` (AccessDenied, or "has been taken")."""

    def __init__(self, inner: Any, code: str = "AccessDenied", message: str = "not authorized") -> None:
        super().__init__(inner)
        self.code = code
        self.message = message
        self.attempts: list[str] = []

    def create_service_linked_role(self, AWSServiceName: str) -> Any:
        self.attempts.append(AWSServiceName)
        raise client_error(self.code, self.message, "CreateServiceLinkedRole")


class AwsNamedIam(ReadingIam):
    """moto's IAM with AWS's own service-linked roles: moto names the role of ecs.amazonaws.com
    "AWSServiceRoleForecs" where IAM creates AWSServiceRoleForECS (each service's guide names its role), and
    answers an existing one with EntityAlreadyExists where IAM says InvalidInput "... has been taken"."""

    NAMES = {"ecs.amazonaws.com": ECS_ROLE, "mq.amazonaws.com": "AWSServiceRoleForAmazonMQ",
             "ecs.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_ECSService",
             "replication.ecr.amazonaws.com": "AWSServiceRoleForECRReplication",
             "elasticloadbalancing.amazonaws.com": "AWSServiceRoleForElasticLoadBalancing",
             "appmesh.amazonaws.com": "AWSServiceRoleForAppMesh"}

    def create_service_linked_role(self, AWSServiceName: str) -> Any:
        name = self.NAMES[AWSServiceName]
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": AWSServiceName}, "Action": "sts:AssumeRole"}]})
        try:
            return self.inner.create_role(RoleName=name, Path=f"/aws-service-role/{AWSServiceName}/",
                                          AssumeRolePolicyDocument=trust)
        except self.inner.exceptions.EntityAlreadyExistsException:
            raise client_error("InvalidInput", f"Service role name {name} has been taken in this account, please "
                                               "try a different suffix.", "CreateServiceLinkedRole") from None


class MotoQuotas:
    """moto's Service Quotas (the VPC quotas only) with GetAWSDefaultServiceQuota, which moto lacks, answered
    from moto's ListAWSDefaultServiceQuotas."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_service_quota(self, ServiceCode: str, QuotaCode: str) -> Any:
        return self.inner.get_service_quota(ServiceCode=ServiceCode, QuotaCode=QuotaCode)

    def get_aws_default_service_quota(self, ServiceCode: str, QuotaCode: str) -> Any:
        for quota in self.inner.list_aws_default_service_quotas(ServiceCode=ServiceCode)["Quotas"]:
            if quota["QuotaCode"] == QuotaCode:
                return {"Quota": quota}
        raise client_error("NoSuchResourceException", "no such quota", "GetAWSDefaultServiceQuota")


class EndpointServicesEc2:
    """moto's EC2, whose DescribeVpcEndpointServices cannot run here (it imports moto's every backend), answering
    it as EC2 does (botocore ec2 DescribeVpcEndpointServices: ``ServiceDetails[].ServiceName`` and
    ``AvailabilityZones``, the account's AZ names; ``NextToken``) from ``offered``: service name -> AZ names, absent:
    every AZ of the account (DescribeAvailabilityZones), None: a service the region does not offer. EC2 answers a
    ``ServiceNames`` request naming such a service with InvalidServiceName for the whole request (cloud-custodian
    PR #10741; aws-cdk PR #29524), a ``service-name`` filter by leaving it out; ``page_size`` details a page."""

    def __init__(self, inner: Any, offered: Mapping[str, Sequence[str] | None] = {}, page_size: int = 1) -> None:
        self.inner = inner
        self.offered = dict(offered)
        self.page_size = page_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def describe_vpc_endpoint_services(self, ServiceNames: Sequence[str] = (),
                                       Filters: Sequence[Mapping[str, Any]] = (),
                                       NextToken: str = "") -> dict[str, Any]:
        unknown = [name for name in ServiceNames if self.offered.get(name, ()) is None]
        if unknown:
            raise client_error("InvalidServiceName", f"The Vpc Endpoint Service '{unknown[0]}' does not exist",
                               "DescribeVpcEndpointServices")
        names = list(ServiceNames)
        for flt in Filters:
            assert flt["Name"] == "service-name", flt
            names.extend(flt["Values"])
        zones = [zone["ZoneName"] for zone in self.inner.describe_availability_zones()["AvailabilityZones"]]
        details = []
        for name in sorted(names):
            offered = self.offered.get(name, zones)
            if offered is not None:
                details.append({"ServiceName": name, "ServiceType": [{"ServiceType": "Interface"}],
                                "AvailabilityZones": list(offered)})
        start = int(NextToken or 0)
        page: dict[str, Any] = {"ServiceDetails": details[start:start + self.page_size]}
        if start + self.page_size < len(details):
            page["NextToken"] = str(start + self.page_size)
        return page


class BrokerOptionsMq:
    """moto's Amazon MQ, which lacks DescribeBrokerInstanceOptions, answering it as Amazon MQ does (botocore mq:
    ``BrokerInstanceOptions[]`` of ``AvailabilityZones[].Name``, ``EngineType``, ``HostInstanceType``,
    ``StorageType``, ``SupportedDeploymentModes``, ``SupportedEngineVersions``, e.g. ``["4.2", "3.13"]``; ``NextToken``:
    Amazon MQ API reference, Broker Instance Options, 20 a page by default) from ``options``: host instance type ->
    (AZ names, engine versions, deployment modes), or a list of them (one option a page), absent: what
    shared/amazonmq.py says it runs, in every AZ of the account."""

    Option = tuple[Sequence[str], Sequence[str], Sequence[str]]

    def __init__(self, inner: Any, zones: Sequence[str], options: Mapping[str, Option | list[Option]] = {}) -> None:
        self.inner = inner
        self.zones = list(zones)
        self.options = dict(options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def describe_broker_instance_options(self, EngineType: str, HostInstanceType: str,
                                         NextToken: str = "") -> dict[str, Any]:
        from shared.amazonmq import RABBITMQ_ENGINE_FAMILIES, RABBITMQ_INSTANCE_TYPES

        assert EngineType == "RABBITMQ"
        family = HostInstanceType.rsplit(".", 1)[0]
        default = (self.zones, [v for v, families in RABBITMQ_ENGINE_FAMILIES.items() if family in families],
                   RABBITMQ_INSTANCE_TYPES.get(HostInstanceType, ()))
        given = self.options.get(HostInstanceType, default)
        pages = [option for option in (given if isinstance(given, list) else [given]) if option[0]]
        start = int(NextToken or 0)
        answer: dict[str, Any] = {"BrokerInstanceOptions": [{
            "AvailabilityZones": [{"Name": zone} for zone in zones], "EngineType": "RABBITMQ",
            "HostInstanceType": HostInstanceType, "StorageType": "EBS", "SupportedDeploymentModes": list(modes),
            "SupportedEngineVersions": list(versions)} for zones, versions, modes in pages[start:start + 1]]}
        if start + 1 < len(pages):
            answer["NextToken"] = str(start + 1)
        return answer


class Clients:
    """moto in each env's own account, with Service Quotas, IAM, ACM, the endpoint services' AZs and Amazon MQ's
    broker options replaceable, and any service's client replaced by ``replace``'s."""

    def __init__(self, quotas: Any = None, iam: Any = None, caller: str | None = None,
                 endpoint_zones: Mapping[str, Sequence[str] | None] = {},
                 broker_options: Mapping[str, BrokerOptionsMq.Option | list[BrokerOptionsMq.Option]] = {},
                 acm: Any = None, replace: Mapping[str, Any] = {}) -> None:
        self.replace = replace
        self.moto = MotoAccounts(caller)
        self.quotas = quotas
        self.iam = iam
        self.acm = acm
        self.endpoint_zones = endpoint_zones
        self.broker_options = broker_options

    def __call__(self, env: EnvConfig, service: str) -> Any:
        if service in self.replace:
            return self.replace[service]
        if service == "service-quotas":
            return self.quotas if self.quotas is not None else MotoQuotas(self.moto(env, service))
        if service == "iam":
            return self.iam if self.iam is not None else AwsNamedIam(self.moto(env, service))
        if service == "acm" and self.acm is not None:
            return self.acm
        if service == "ec2":
            return EndpointServicesEc2(self.moto(env, service), self.endpoint_zones)
        if service == "mq":
            zones = [zone["ZoneName"] for zone in
                     self.moto(env, "ec2").describe_availability_zones()["AvailabilityZones"]]
            return BrokerOptionsMq(self.moto(env, service), zones, self.broker_options)
        return self.moto(env, service)


def checker(clients: Clients, sleeps: list[float] | None = None) -> AwsAccountCheck:
    """The real check on ``clients``; its waits recorded in ``sleeps`` instead of slept."""
    return AwsAccountCheck(clients, sleep=(sleeps if sleeps is not None else []).append)


def replacing(**clients: Any) -> AwsAccountCheck:
    """The check in accounts with room for everything, each named service's client replaced by the one given."""
    return checker(Clients(roomy(), replace=clients))


def roles_in(env: EnvConfig) -> set[str]:
    iam = MotoAccounts.client(env.account_id, env.region, "iam")
    return {role["RoleName"] for role in iam.list_roles(PathPrefix="/aws-service-role/")["Roles"]}


def up(argv: list[str], check: AwsAccountCheck,
       runner: RecordingRunner | None = None) -> tuple[int, str, RecordingRunner]:
    runner = runner or RecordingRunner()
    out = io.StringIO()
    code = main(argv, runner=runner, out=out, confirm=lambda prompt: True, images=ReleasedEverywhere(), account=check)
    return code, out.getvalue(), runner


def compute_alone(operation: str, env: str) -> tuple[int, str, RecordingRunner]:
    """``up`` (confirmed) or ``preview`` of ``env``'s compute alone, in an account with room for everything."""
    argv = ["up", env, "--yes"] if operation == "up" else [operation, env]
    return up([*argv, "--layers", "compute", "--exact"], checker(Clients(roomy())))


def compute_refused(env: str, capsys: pytest.CaptureFixture[str]) -> str:
    """compute's ``up`` alone is refused before any layer runs: its error."""
    code, out, runner = compute_alone("up", env)
    assert code == 2 and runner.started() == [], out
    return capsys.readouterr().err


def compute_goes_on(operation: str, env: str) -> str:
    """compute's ``up`` or ``preview`` alone runs compute: its output."""
    code, out, runner = compute_alone(operation, env)
    assert code == 0 and runner.started() == ["compute"], out
    return out


FARGATE = ("fargate", "L-3032A538")


def roomy() -> FakeQuotas:
    return FakeQuotas({FARGATE: 4000, ("AWSCloudMap", "L-0FE3F50E"): 50, ("ec2", "L-0263D0A3"): 5})


# -- what each layer needs ----------------------------------------------------------------------------


def test_the_roles_follow_the_layers_and_the_env() -> None:
    dev, staging = load_env("dev"), load_env("staging")
    # dev: an Amazon MQ broker, ECS with autoscaling, and the source of staging's and prod's replication
    assert [role.role_name for role in linked_roles(dev, LAYERS)] == FRESH_DEV_ROLES
    # staging receives images, replicates nothing; without public_gateway no ALB
    assert [role.role_name for role in linked_roles(staging, ["compute"])] == [
        ECS_ROLE, "AWSServiceRoleForApplicationAutoScaling_ECSService"]
    assert linked_roles(dev, ["network", "discovery", "mesh", "messaging"]) == []


def test_an_app_mesh_env_needs_the_app_mesh_role(edit_env: Any) -> None:
    edit_env("staging", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    staging = load_env("staging")
    assert [(role.role_name, role.service) for role in linked_roles(staging, ["network", "discovery", "mesh"])] == [
        ("AWSServiceRoleForAppMesh", "appmesh.amazonaws.com")]


def test_a_public_gateway_needs_the_load_balancing_role_and_an_alb(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/abc"))
    dev = load_env("dev")
    assert "AWSServiceRoleForElasticLoadBalancing" in [role.role_name for role in linked_roles(dev, ["compute"])]
    albs = [need for need in quota_needs(dev, ["compute"]) if need.quota_code == "L-53DA6B97"]
    assert [(need.need, need.layer) for need in albs] == [(1, "compute")]


def test_the_needs_come_from_the_env_and_the_catalog() -> None:
    env = load_env("prod")
    prod = {need.quota_code: need for need in quota_needs(env, LAYERS)}
    # per-az NAT in 3 AZs: three Elastic IPs; four interface endpoints (s3 is a gateway endpoint)
    assert prod["L-0263D0A3"].need == 3 and prod["L-29B6F2EB"].need == 4
    # a service a user adds to the catalog and the release: its vCPUs at its counts (README, "Add a service")
    catalog = load_catalog()
    added = [(((env.service_settings(name).cpu or catalog[name].cpu) / 1024), env.service_settings(name))
             for name in env.release.images if name not in ("gateway", "preprocess", "inference", "training")]
    # catalog cpu (gateway 512, preprocess 512, training 2048) and prod's inference override (2048), desired 3/3/3/1,
    # and one more task of the largest (2 vCPU): a release starts a new task before it stops an old one
    assert prod["L-3032A538"].need == pytest.approx(
        0.5 * 3 + 0.5 * 3 + 2 * 3 + 2 * 1 + sum(vcpu * settings.desired_count for vcpu, settings in added)
        + max([2.0, *(vcpu for vcpu, _ in added)]))
    # every service at max_count (9, 9, 12, 3), doubled by a rolling deployment
    assert prod["L-3032A538"].peak == pytest.approx(
        (0.5 * 9 + 0.5 * 9 + 2 * 12 + 2 * 3 + sum(vcpu * settings.max_count for vcpu, settings in added)) * 2)
    dev = {need.quota_code: need for need in quota_needs(load_env("dev"), ["network"])}
    assert dev["L-0263D0A3"].need == 1 and "L-29B6F2EB" not in dev  # one NAT, only the s3 gateway endpoint


def test_an_endpoint_listed_twice_is_one_endpoint_and_one_of_the_quota(edit_env: Any) -> None:
    # the env loader takes `endpoints: [s3, logs, logs]`; the network layer makes one logs endpoint of it
    edit_env("staging", lambda data: data["network"].update(endpoints=["s3", "logs", "logs", "secretsmanager"]))
    needs = {need.quota_code: need for need in quota_needs(load_env("staging"), ["network"])}
    network = synth_env("staging", ["network"])["network"]
    made = [r for r in network["resources"] if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"
            and r["inputs"]["vpcEndpointType"] == "Interface"]
    assert needs["L-29B6F2EB"].need == len(made) == 2
    # and one address of each private subnet, not two (shared.aws_limits.private_subnet_need)
    from shared.aws_limits import private_subnet_need
    from shared.catalog import load_catalog

    assert "2 interface endpoints" in " ".join(private_subnet_need(load_env("staging"), load_catalog())[1])


def resources(env_name: str, layer: str, type_: str) -> list[dict[str, Any]]:
    """The synth of ``layer`` of the example env ``env_name``: the resources of ``type_``."""
    from tests.synth_helpers import spec_document

    document = spec_document(env_name, layer)
    return [resource for resource in document["resources"] if resource["type"] == type_]


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_the_needs_are_what_the_synthesized_stacks_create(env_name: str) -> None:
    env = load_env(env_name)
    needs = {need.quota_code: need for need in quota_needs(env, LAYERS)}
    vpcs = resources(env_name, "network", "aws:ec2/vpc:Vpc")
    eips = resources(env_name, "network", "aws:ec2/eip:Eip")
    assert needs["L-F678F1CE"].need == len(vpcs) == 1
    assert needs["L-0263D0A3"].need == len(eips)
    # what the account's count subtracts as the env's own: the Name tags the network layer gives them
    assert [vpc["inputs"]["tags"]["Name"] for vpc in vpcs] == [f"{env_name}-vpc"]
    gateways = resources(env_name, "network", "aws:ec2/internetGateway:InternetGateway")
    assert needs["L-A4707A72"].need == len(gateways) == 1
    assert [gateway["inputs"]["tags"]["Name"] for gateway in gateways] == [f"{env_name}-igw"]
    assert all(eip["inputs"]["tags"]["Name"].startswith(f"{env_name}-nat-") for eip in eips)
    interface = [e for e in resources(env_name, "network", "aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e["inputs"]["vpcEndpointType"] == "Interface"]
    assert (needs["L-29B6F2EB"].need if "L-29B6F2EB" in needs else 0) == len(interface)
    namespaces = (resources(env_name, "discovery", "aws:servicediscovery/httpNamespace:HttpNamespace")
                  + resources(env_name, "discovery", "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"))
    assert needs["L-0FE3F50E"].need == len(namespaces)
    cpu = {task["inputs"]["family"]: int(task["inputs"]["cpu"])
           for task in resources(env_name, "compute", "aws:ecs/taskDefinition:TaskDefinition")}
    services = resources(env_name, "compute", "aws:ecs/service:Service")
    vcpus = sum(cpu[service["inputs"]["taskDefinition"].rsplit("/", 1)[1].rsplit(":", 1)[0]]
                * service["inputs"]["desiredCount"] / 1024 for service in services)
    # every ECS service rolls with a minimum healthy 100 %: one more task of the largest while a release replaces it
    assert all(service["inputs"]["deploymentMinimumHealthyPercent"] == 100 for service in services)
    assert needs["L-3032A538"].need == pytest.approx(vcpus + max(cpu.values()) / 1024)
    runner = resources(env_name, "broker", "aws:codebuild/project:Project")
    assert [project["inputs"]["concurrentBuildLimit"] for project in runner] == [needs["L-9D07B6EF"].need] == [1]
    assert [project["inputs"]["environment"]["computeType"] for project in runner] == ["BUILD_GENERAL1_SMALL"]
    albs = resources(env_name, "compute", "aws:lb/loadBalancer:LoadBalancer")
    assert (needs["L-53DA6B97"].need if "L-53DA6B97" in needs else 0) == len(albs)


# -- service-linked roles ---------------------------------------------------------------------------------


def test_a_fresh_account_gets_its_roles_before_the_first_layer(moto_aws: None) -> None:
    dev = load_env("dev")
    assert roles_in(dev) == set()

    class Watching(RecordingRunner):
        seen: set[str] | None = None

        def run(self, layer: str, env: EnvConfig, operation: Any, on_output: Any) -> Any:
            if self.seen is None:
                self.seen = roles_in(env)  # what the account has when the first layer starts
            return super().run(layer, env, operation, on_output)

    runner = Watching()
    sleeps: list[float] = []
    code, out, _ = up(["up", "dev", "--yes"], checker(Clients(roomy()), sleeps), runner)
    assert code == 0, out
    assert runner.seen == set(FRESH_DEV_ROLES)
    assert sleeps == [ROLE_SETTLE_S]  # once, after creating, for IAM's eventual consistency
    assert f"account dev: {ECS_ROLE}: created (aws iam create-service-linked-role --aws-service-name " \
           "ecs.amazonaws.com)" in out

    # the second `up`: everything is there, nothing is created again, nothing is waited for
    code, out, _ = up(["up", "dev", "--yes"], checker(Clients(roomy()), sleeps))
    assert code == 0, out
    assert sleeps == [ROLE_SETTLE_S]
    assert f"account dev: {ECS_ROLE}: present" in out and "created" not in out


def test_preview_and_dry_only_report(moto_aws: None) -> None:
    dev = load_env("dev")
    code, out, runner = up(["preview", "dev"], checker(Clients(roomy())))
    assert code == 0, out
    assert roles_in(dev) == set()
    assert f"note: up creates the service-linked role {ECS_ROLE} first" in out
    assert sorted(runner.started()) == sorted(LAYERS)

    out_io = io.StringIO()
    assert account_main(["dev", "--dry"], check=checker(Clients(roomy())), out=out_io) == 0
    assert roles_in(dev) == set()
    assert "would create AWSServiceRoleForAmazonMQ: `aws iam create-service-linked-role --aws-service-name " \
           "mq.amazonaws.com`" in out_io.getvalue()

    out_io = io.StringIO()
    assert account_main(["dev", "--layers", "broker"], check=checker(Clients(roomy())), out=out_io) == 0
    assert roles_in(dev) == {"AWSServiceRoleForAmazonMQ"}  # broker and what it reads (network): MQ's role only
    assert "account dev: ready for network, broker" in out_io.getvalue()


@pytest.mark.parametrize("layers", ["", " , "])
def test_the_preflight_command_refuses_an_empty_layers_option_as_up_does(layers: str,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # `up --layers ""` is a usage error (exit 2); the preflight of those layers must not check every layer instead
    assert main(["up", "dev", "--layers", layers]) == 2
    assert account_main(["dev", "--layers", layers], check=AccountReady()) == 2
    assert capsys.readouterr().err.count("--layers: give at least one layer name") == 2


def test_a_role_made_meanwhile_by_someone_else_counts_as_present(moto_aws: None) -> None:
    dev = load_env("dev")
    moto_iam = MotoAccounts.client(dev.account_id, dev.region, "iam")
    # IAM's answer when the role exists: InvalidInput "... has been taken in this account"
    taken = DenyingIam(moto_iam, "InvalidInput",
                       f"Service role name {ECS_ROLE} has been taken in this account, please try a different suffix.")
    check = checker(Clients(roomy(), iam=taken))
    lines = check.create(dev, linked_roles(dev, ["compute"])[:1])
    assert lines == [f"{ECS_ROLE}: present (created meanwhile by someone else)"]
    # moto's answer for the same race (EntityAlreadyExists) is the same to the preflight
    moto_iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    check = checker(Clients(roomy(), iam=moto_iam))
    assert check.create(dev, linked_roles(dev, ["compute"])[:1]) == [
        f"{ECS_ROLE}: present (created meanwhile by someone else)"]
    # and through AWS's names: the second create of the same role is "has been taken", i.e. present
    check = checker(Clients(roomy()))
    assert check.create(dev, linked_roles(dev, ["broker"])) == [
        "AWSServiceRoleForAmazonMQ: created (aws iam create-service-linked-role --aws-service-name mq.amazonaws.com)"]
    assert check.create(dev, linked_roles(dev, ["broker"])) == [
        "AWSServiceRoleForAmazonMQ: present (created meanwhile by someone else)"]


def test_credentials_that_may_not_create_a_role_stop_up_before_any_layer(moto_aws: None) -> None:
    dev = load_env("dev")
    denying = DenyingIam(MotoAccounts.client(dev.account_id, dev.region, "iam"))
    code, out, runner = up(["up", "dev", "--yes"], checker(Clients(roomy(), iam=denying)))
    assert code == 2, out
    assert runner.started() == []
    assert denying.attempts == ["mq.amazonaws.com"]  # stops at the first refusal
    command = r"`aws iam create-service-linked-role --aws-service-name mq\.amazonaws\.com`"
    with pytest.raises(AccountError, match=r"may not iam:CreateServiceLinkedRole\. No layer has run\. Someone allowed "
                       r"to create it should run once, in account \d+: " + command):
        checker(Clients(roomy(), iam=denying)).create(dev, linked_roles(dev, ["broker"]))


def test_a_declined_up_creates_nothing(moto_aws: None) -> None:
    dev = load_env("dev")
    out = io.StringIO()
    code = main(["up", "dev"], runner=RecordingRunner(), out=out, confirm=lambda prompt: False,
                images=ReleasedEverywhere(), account=checker(Clients(roomy())))
    assert code == 1
    assert roles_in(dev) == set()
    assert f"account dev: {ECS_ROLE} is created before the first layer" in out.getvalue()


def test_ctrl_c_while_the_roles_are_created_stops_before_the_first_layer(moto_aws: None) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt  # during the wait after the first role was created

    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           AwsAccountCheck(Clients(roomy()), sleep=interrupted))
    assert code == 130 and runner.started() == [], out


def test_credentials_of_another_account_create_nothing(moto_aws: None) -> None:
    dev = load_env("dev")
    code, out, runner = up(["up", "dev", "--yes"], checker(Clients(roomy(), caller="999999999999")))
    assert code == 2 and runner.started() == [], out
    assert roles_in(dev) == set()
    assert MotoAccounts.client("999999999999", dev.region, "iam").list_roles(
        PathPrefix="/aws-service-role/")["Roles"] == []
    # a preview with them goes on with a note (README, First `up` in a new account), and creates nothing either
    code, out, runner = up(["preview", "dev"], checker(Clients(roomy(), caller="999999999999")))
    assert code == 0 and "note: account not checked: dev: the AWS credentials belong to account 999999999999" in out
    assert roles_in(dev) == set()


# -- quotas ------------------------------------------------------------------------------------------------


def _fargate_need(env_name: str) -> Any:
    """The env's Fargate vCPU need as the preflight computes it (its figures: the test above)."""
    return next(need for need in quota_needs(load_env(env_name), ["compute"]) if need.quota_code == "L-3032A538")


def test_up_is_refused_when_the_desired_tasks_exceed_the_fargate_quota(moto_aws: None) -> None:
    # a new account's Fargate quota can be a handful of vCPUs; prod's desired tasks need 10.25
    quotas = FakeQuotas({FARGATE: 8, ("AWSCloudMap", "L-0FE3F50E"): 50, ("ec2", "L-0263D0A3"): 5})
    code, out, runner = up(["up", "prod", "--yes", "--layers", "compute", "--exact"], checker(Clients(quotas)))
    assert code == 2, out
    assert runner.started() == []
    assert roles_in(load_env("prod")) == set()  # refused before anything was created
    need = _fargate_need("prod").need  # the shipped catalog's 10.25 (test_the_needs_come_from_the_env_and_the_catalog)
    assert (f"Fargate On-Demand vCPU resource count (fargate L-3032A538): prod needs {amount(need)}, quota 8 "
            "(applied)") in out

    # the same run as a preview: reported, and the layers preview
    code, out, runner = up(["preview", "prod", "--layers", "compute", "--exact"], checker(Clients(quotas)))
    assert code == 0 and runner.started() == ["compute"]
    assert "note: up would be refused: compute cannot succeed in account 333333333333" in out


def test_a_quota_that_fits_the_desired_tasks_but_no_rolling_task_refuses_compute(moto_aws: None) -> None:
    # A release replaces a task by starting the new one first (minimum healthy 100 %): with room for the desired tasks
    # only, the first up creates them and every later release of the largest service waits for capacity until
    # compute's steady-state timeout. One more task of the largest is the least the env needs.
    need = _fargate_need("dev")
    assert "one more training task while a release replaces one" in need.what
    desired = need.need - 2  # training: 2048 CPU units
    quotas = FakeQuotas({FARGATE: desired, ("AWSCloudMap", "L-0FE3F50E"): 50, ("ec2", "L-0263D0A3"): 5})
    report = checker(Clients(quotas)).check(load_env("dev"), ["compute"])
    assert len(report.refusals) == 1 and f"dev needs {amount(need.need)}" in report.refusals[0]
    quotas = FakeQuotas({FARGATE: need.need, ("AWSCloudMap", "L-0FE3F50E"): 50, ("ec2", "L-0263D0A3"): 5})
    assert checker(Clients(quotas)).check(load_env("dev"), ["compute"]).refusals == []


@pytest.mark.parametrize(("compute_type", "code"), [("BUILD_GENERAL1_SMALL", "L-9D07B6EF"),
                                                    ("BUILD_GENERAL1_LARGE", "L-4DDC4A99")])
def test_broker_is_refused_where_the_account_may_run_no_build_of_the_runner_s_compute_type(
        moto_aws: None, edit_env: Any, compute_type: str, code: str) -> None:
    # The deploy runner's project allows one build at a time; CreateProject refuses a project limit above the
    # account's concurrent builds, which CodeBuild may start at 0 in a new account: broker's up would fail after
    # network and discovery, with the broker's create under way.
    edit_env("dev", lambda data: data["messaging"].setdefault("deploy_runner", {}).update(compute_type=compute_type))
    dev = load_env("dev")
    report = checker(Clients(FakeQuotas({("codebuild", code): 0}))).check(dev, ["broker"])
    [refusal] = report.refusals
    assert refusal.startswith("broker cannot succeed in account 111111111111 (eu-west-1): Concurrently running "
                              f"builds for Linux/{compute_type.rsplit('_', 1)[1].title()} environment")
    assert f"--service-code codebuild --quota-code {code} --desired-value 1" in refusal
    assert "messaging.deploy_runner.compute_type" in refusal
    assert checker(Clients(FakeQuotas({("codebuild", code): 1}))).check(dev, ["broker"]).refusals == []
    # without the broker layer in the run, no build quota is asked
    assert all(need.service_code != "codebuild" for need in quota_needs(dev, ["network", "compute"]))
    # where only AWS's default answers, CodeBuild may still hold the new account lower: a note with the request
    report = checker(Clients(FakeQuotas({}, defaults={("codebuild", code): 15}))).check(dev, ["broker"])
    assert report.refusals == []
    assert any(note.startswith("quota Concurrently running builds") and "AWS's default 15" in note
               and "Project-level concurrent build limit" in note for note in report.notes), report.notes


def test_a_runner_with_a_github_source_sets_no_build_limit_but_its_jobs_still_need_one_build(
        moto_aws: None, edit_env: Any) -> None:
    # Each GitHub Actions job is a build of its own: the project has no limit for CreateProject to refuse, so broker's
    # up would succeed at quota 0; but no job on the runner would ever start (messaging's deploy waits until GitHub
    # cancels it), so the run is refused before any layer all the same, naming what would not start.
    edit_env("dev", lambda data: data["messaging"].setdefault("deploy_runner", {}).update(
        github_repository="https://github.com/acme/ml-platform"))
    dev = load_env("dev")
    [need] = [need for need in quota_needs(dev, ["broker"]) if need.service_code == "codebuild"]
    assert (need.quota_code, need.need) == ("L-9D07B6EF", 1)
    project = next(r for r in synth_env("dev", ["broker"])["broker"]["resources"]
                   if r["type"] == "aws:codebuild/project:Project")
    assert "concurrentBuildLimit" not in project["inputs"]
    def with_quota(value: int) -> AwsAccountCheck:
        return checker(Clients(FakeQuotas({("codebuild", "L-9D07B6EF"): value}),
                               replace={"codebuild": SourceCredentials("GITHUB")}))

    [refusal] = with_quota(0).check(dev, ["broker"]).refusals
    assert refusal.startswith("the jobs of dev's workflows on the deploy runner (messaging's deploy, the settle "
                              "check) cannot succeed in account 111111111111 (eu-west-1)"), refusal
    assert "each GitHub Actions job in the VPC is a build of the deploy runner's project" in refusal
    assert "--quota-code L-9D07B6EF --desired-value 1" in refusal
    assert with_quota(1).check(dev, ["broker"]).refusals == []


def test_compute_is_refused_where_the_account_holds_ten_other_log_resource_policies(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # CloudWatch Logs takes at most 10 account-scoped resource policies per region; compute's task-stops policy would
    # fail with LimitExceededException after the cluster and services were created
    prod = load_env("prod")
    logs = MotoAccounts.client(prod.account_id, prod.region, "logs")
    document = json.dumps({"Version": "2012-10-17", "Statement": []})
    for index in range(10):
        logs.put_resource_policy(policyName=f"other-{index}", policyDocument=document)
    error = compute_refused("prod", capsys)
    assert "holds 10 CloudWatch Logs resource policies" in error and "prod-ml-ecs-task-stops" in error
    assert "environments/prod.yaml" in error
    # a preview notes it and goes on
    out = compute_goes_on("preview", "prod")
    assert "up would be refused" in out and "prod-ml-ecs-task-stops" in out

    # with prod's own among the ten (its second up) there is nothing more to create
    logs.delete_resource_policy(policyName="other-9")
    logs.put_resource_policy(policyName="prod-ml-ecs-task-stops", policyDocument=document)
    out = compute_goes_on("up", "prod")

    # nine others: room for prod's
    logs.delete_resource_policy(policyName="prod-ml-ecs-task-stops")
    out = compute_goes_on("up", "prod")
    assert "CloudWatch Logs resource policies: the account holds 9" in out


def test_a_peak_above_the_quota_is_a_note(moto_aws: None) -> None:
    quotas = FakeQuotas({FARGATE: 16})
    code, out, _ = up(["up", "prod", "--yes", "--layers", "compute", "--exact"], checker(Clients(quotas)))
    assert code == 0, out
    peak = _fargate_need("prod").peak  # the shipped catalog's 73.50
    assert f"not for the peak {amount(peak)}" in out
    assert f"--service-code fargate --quota-code L-3032A538 --desired-value {math.ceil(peak)}" in out


def test_the_default_quota_answers_when_none_is_applied_and_unreadable_ones_are_notes(moto_aws: None) -> None:
    dev = load_env("dev")
    check = checker(Clients(FakeQuotas({FARGATE: "AccessDeniedException"})))
    report = check.check(dev, ["compute"])
    assert report.refusals == []
    assert any("Fargate On-Demand vCPU resource count (fargate L-3032A538): unknown, not allowed to read it" in note
               for note in report.notes)

    report = checker(Clients(FakeQuotas({}, defaults={FARGATE: 1}))).check(dev, ["compute"])
    need = _fargate_need("dev").need  # dev's desired tasks in the shipped catalog: 0.25 + 0.5 + 1 + 2
    assert (f"Fargate On-Demand vCPU resource count (fargate L-3032A538): dev needs {amount(need)}, quota 1 "
            "(AWS default)") in report.lines
    assert report.refusals[0].startswith("compute cannot succeed in account 111111111111 (eu-west-1): Fargate")
    # where AWS's default answers and fits, a new account may still hold fewer vCPUs: a note with the request
    report = checker(Clients(FakeQuotas({}, defaults={FARGATE: 4000}))).check(dev, ["compute"])
    assert not any("L-3032A538" in refusal for refusal in report.refusals), report.refusals
    assert any(note.startswith("quota Fargate On-Demand vCPU resource count (fargate L-3032A538) is AWS's default "
                               "4000") and "a new account's Fargate vCPUs can be a few" in note
               and "--quota-code L-3032A538" in note for note in report.notes), report.notes

    # moto knows the VPC quotas (5 VPCs per Region): network fits; Cloud Map is not known there: a note
    report = checker(Clients()).check(dev, ["network", "discovery"])
    assert report.refusals == []
    # moto's region has its default VPC
    assert "VPCs per Region (vpc L-F678F1CE): dev needs 1 (the account holds 1, 0 of them dev's), quota 5 " \
           "(applied)" in report.lines
    assert any(note.startswith("quota Namespaces per Region (AWSCloudMap L-0FE3F50E): unknown, Service Quotas "
                               "does not know it here") for note in report.notes)


def test_what_the_account_already_holds_counts_except_the_envs_own(moto_aws: None) -> None:
    dev = load_env("dev")
    ec2 = MotoAccounts.client(dev.account_id, dev.region, "ec2")
    for index in range(4):  # with moto's default VPC: five, the default quota
        ec2.create_vpc(CidrBlock=f"10.{100 + index}.0.0/16")
    addresses = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(5)]
    quotas = FakeQuotas({("vpc", "L-F678F1CE"): 5, ("ec2", "L-0263D0A3"): 5, ("vpc", "L-A4707A72"): 5})
    code, out, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(quotas)))
    assert code == 2 and runner.started() == [], out
    held_igws = len(ec2.describe_internet_gateways()["InternetGateways"])
    assert f"Internet gateways per Region (vpc L-A4707A72): dev needs 1 (the account holds {held_igws}, 0 of them " \
           "dev's), quota 5" in out
    assert "VPCs per Region (vpc L-F678F1CE): dev needs 1 (the account holds 5, 0 of them dev's), quota 5" in out
    assert "EC2-VPC Elastic IPs (ec2 L-0263D0A3): dev needs 1 (the account holds 5, 0 of them dev's)" in out

    # the second `up`: dev's own VPC and NAT address are among them, nothing more is needed
    vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.100.0.0/16"]}])["Vpcs"][0]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "dev-vpc"}])
    ec2.create_tags(Resources=[addresses[0]], Tags=[{"Key": "Name", "Value": "dev-nat-eu-west-1a"}])
    code, out, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(quotas)))
    assert code == 0 and runner.started() == ["network"], out
    assert "dev needs 1 (the account holds 5, 1 of them dev's), quota 5" in out


# -- without credentials -------------------------------------------------------------------------------------


def test_without_credentials_up_stops_quickly_and_preview_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Any) -> None:
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "PLATFORM_AWS_PROFILE_DEV"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    started = time.monotonic()
    code, out, runner = up(["up", "dev", "--yes"], AwsAccountCheck(PreflightClients()))
    assert code == 2 and runner.started() == []
    assert time.monotonic() - started < 20
    with pytest.raises(AwsAccessError, match="cannot tell which AWS account the credentials belong to"):
        AwsAccountCheck(PreflightClients()).check(load_env("dev"), ["compute"])
    code, out, runner = up(["preview", "dev"], AwsAccountCheck(PreflightClients()))
    assert code == 0 and "note: account not checked: dev: cannot tell which AWS account" in out


# -- the command ------------------------------------------------------------------------------------------


def test_nox_preflight_runs_the_account_check_and_the_readme_lists_every_session() -> None:
    tree = ast.parse((REPO_ROOT / "noxfile.py").read_text(encoding="utf-8"))
    sessions = {node.name: ast.unparse(node) for node in tree.body if isinstance(node, ast.FunctionDef)
                and any(ast.unparse(decorator) == "nox.session" for decorator in node.decorator_list)}
    assert "'-m', 'shared.orchestrate.account', *session.posargs" in sessions["preflight"]
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    commands = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = {name for group in re.findall(r"`nox -s ([a-z|\\]+)", commands) for name in group.split("\\|")}
    assert set(sessions) <= listed, f"sessions missing from the README's Commands: {sorted(set(sessions) - listed)}"


class _Body:
    """The raw body of a canned HTTP answer (botocore reads it with ``stream()``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def test_each_preflight_call_is_retried_once_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's Config: ``max_attempts`` counts the retries after the first request, ``total_max_attempts``
    # every attempt (botocore/config.py). "One retry" is two attempts, not three.
    from botocore.awsrequest import AWSResponse

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("PLATFORM_AWS_PROFILE_DEV", raising=False)
    sts = PreflightClients()(load_env("dev"), "sts")
    attempts: list[str] = []

    def unavailable(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.url)
        return AWSResponse(request.url, 503, {}, _Body(b"<ErrorResponse><Error><Code>ServiceUnavailable</Code>"
                                                       b"<Message>down</Message></Error></ErrorResponse>"))

    sts.meta.events.register("before-send.sts.GetCallerIdentity", unavailable)
    with pytest.raises(ClientError, match="ServiceUnavailable"):
        sts.get_caller_identity()
    assert len(attempts) == 2


@pytest.mark.parametrize("code", ["ServiceException", "TooManyRequestsException", "AccessDeniedException"])
def test_the_default_stands_in_only_for_a_quota_with_no_applied_value(moto_aws: None, code: str) -> None:
    # Service Quotas API reference, GetServiceQuota: "If the applied quota value is not available for a quota, the
    # quota is not retrieved" (NoSuchResourceException): only then is AWS's default the account's quota. A failed
    # read of an applied quota (a new account's Fargate quota is far below the default) must not pass as the default.
    dev = load_env("dev")
    report = checker(Clients(FakeQuotas({FARGATE: code}, defaults={FARGATE: 4000}))).check(dev, ["compute"])
    assert not any("L-3032A538" in line for line in report.lines), report.lines
    assert any(note.startswith("quota Fargate On-Demand vCPU resource count (fargate L-3032A538): unknown")
               for note in report.notes), report.notes


def test_one_run_assumes_the_env_profile_role_once(moto_aws: None, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Any) -> None:
    assumed = count_profile_assumptions(monkeypatch, tmp_path, "dev")
    # moto's Service Quotas knows no CodeBuild quota and has no GetAWSDefaultServiceQuota: the runner's build quota
    # answers as an account with one build at a time would
    monkeypatch.setattr(AwsAccountCheck, "_quota_value", staticmethod(lambda quotas, need: (1.0, "applied")))
    # broker: STS (whose account), IAM (the Amazon MQ role) and Service Quotas, clients of the one session
    report = AwsAccountCheck().check(load_env("dev"), ["broker"])
    assert [role.role_name for role in report.missing] == ["AWSServiceRoleForAmazonMQ"]
    assert len(assumed) == 1, assumed


class SharedVpcEc2:
    """moto's EC2 in an account that a network account shares one VPC with (AWS RAM, VPC sharing): DescribeVpcs
    and DescribeInternetGateways list the owner's VPC and gateway too, under the owner's OwnerId."""

    OWNER = "999999999999"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def describe_vpcs(self, **kwargs: Any) -> dict[str, Any]:
        answer = self.inner.describe_vpcs(**kwargs)
        return {**answer, "Vpcs": [*answer["Vpcs"], {"VpcId": "vpc-0shared", "OwnerId": self.OWNER,
                                                      "Tags": [{"Key": "Name", "Value": "network-shared"}]}]}

    def describe_internet_gateways(self, **kwargs: Any) -> dict[str, Any]:
        answer = self.inner.describe_internet_gateways(**kwargs)
        return {**answer, "InternetGateways": [*answer["InternetGateways"],
                                               {"InternetGatewayId": "igw-0shared", "OwnerId": self.OWNER}]}

    def describe_addresses(self, **kwargs: Any) -> dict[str, Any]:
        return dict(self.inner.describe_addresses(**kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_vpc_shared_with_the_account_is_not_its_own(moto_aws: None) -> None:
    # Amazon VPC user guide, VPC sharing, "Responsibilities and permissions for owners and participants": the
    # owner owns the shared VPC and its internet gateway; what a participant can see of them is not on its quotas.
    dev = load_env("dev")
    ec2 = MotoAccounts.client(dev.account_id, dev.region, "ec2")
    for index in range(4):  # with moto's default VPC: five of the account's own, the default quota
        ec2.create_vpc(CidrBlock=f"10.{100 + index}.0.0/16")
    own_vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.100.0.0/16"]}])["Vpcs"][0]["VpcId"]
    ec2.create_tags(Resources=[own_vpc], Tags=[{"Key": "Name", "Value": "dev-vpc"}])
    igws = len(ec2.describe_internet_gateways()["InternetGateways"])

    class Shared(Clients):
        def __call__(self, env: EnvConfig, service: str) -> Any:
            client = super().__call__(env, service)
            return SharedVpcEc2(client) if service == "ec2" else client

    quotas = FakeQuotas({("vpc", "L-F678F1CE"): 5, ("ec2", "L-0263D0A3"): 5, ("vpc", "L-A4707A72"): 5})
    report = checker(Shared(quotas)).check(dev, ["network"])
    assert report.refusals == [], report.refusals
    assert "VPCs per Region (vpc L-F678F1CE): dev needs 1 (the account holds 5, 1 of them dev's), quota 5 " \
           "(applied)" in report.lines
    assert f"Internet gateways per Region (vpc L-A4707A72): dev needs 1 (the account holds {igws}, 0 of them " \
           "dev's), quota 5 (applied)" in report.lines


# -- the role boundary (shared/role_boundary.py) ------------------------------------------------------------------


@pytest.mark.parametrize("layers", [["network"], ["compute"]])
def test_up_is_refused_before_any_layer_without_the_role_boundary(
        moto_aws: None, capsys: pytest.CaptureFixture[str], layers: list[str]) -> None:
    # every role of the stacks names it: network would stop at its flow-log role with NoSuchEntity after the VPC,
    # subnets and endpoints (compute: after the cluster, repositories and log groups)
    dev = load_env("dev")
    iam = MotoAccounts.client(dev.account_id, dev.region, "iam")
    arn = f"arn:aws:iam::{dev.account_id}:policy/ml-platform-dev-role-boundary"
    iam.delete_policy(PolicyArn=arn)
    code, out, runner = up(["up", "dev", "--yes", "--layers", ",".join(layers), "--exact"], checker(Clients(roomy())))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "the role boundary ml-platform-dev-role-boundary does not exist in account 111111111111" in error
    assert "aws iam create-policy --policy-name ml-platform-dev-role-boundary" in error
    assert "environments/dev.yaml" in error
    code, out, runner = up(["preview", "dev", "--layers", ",".join(layers), "--exact"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == layers, out
    assert "note: up would be refused: " in out and "ml-platform-dev-role-boundary" in out

    # created from an older print (the deploy runner assumed another deploy role): its calls would be denied at run
    # time, after the up passed
    boundary = boundary_policy(dev)
    stale = [dict(statement, Resource=[f"arn:aws:iam::{dev.account_id}:role/old-deployer"])
             if statement["Sid"] == "AssumeDeployRole" else statement for statement in boundary.document["Statement"]]
    iam.create_policy(PolicyName=boundary.name, PolicyDocument=json.dumps({**boundary.document, "Statement": stale}))
    code, out, runner = up(["up", "dev", "--yes", "--layers", ",".join(layers), "--exact"], checker(Clients(roomy())))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "the role boundary ml-platform-dev-role-boundary (version v1) lacks what the roles of this code and env " \
           "file are granted (statements AssumeDeployRole)" in error
    assert f"aws iam create-policy-version --policy-arn {arn} --policy-document" in error
    assert f"aws iam delete-policy-version --policy-arn {arn} --version-id" in error  # IAM keeps 5 versions

    # as printed (with a statement of the administrator's own beside: more than printed passes)
    extra = {"Sid": "Extra", "Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}
    iam.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=json.dumps(
        {**boundary.document, "Statement": [extra, *reversed(boundary.document["Statement"])]}))
    code, out, runner = up(["up", "dev", "--yes", "--layers", ",".join(layers), "--exact"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == layers, out
    assert "ml-platform-dev-role-boundary: present, up to date" in out


def test_the_layers_checked_for_the_boundary_are_those_that_create_roles() -> None:
    from shared.orchestrate.account import ROLE_LAYERS

    for env_name in ("dev", "staging", "prod"):
        documents = synth_env(env_name)
        with_roles = {layer for layer, document in documents.items()
                      if any(resource["type"] == "aws:iam/role:Role" for resource in document["resources"])}
        assert with_roles <= set(ROLE_LAYERS), env_name


def test_the_boundary_is_compared_as_iam_returns_it() -> None:
    # IAM's GetPolicyVersion answers the document URL-encoded (boto3 decodes it to a dict); order is not meaning
    from urllib.parse import quote

    from shared.orchestrate.account import missing_boundary_statements

    dev = load_env("dev")
    document = boundary_policy(dev).document
    assert missing_boundary_statements(dev, document) == []
    assert missing_boundary_statements(dev, quote(json.dumps(document))) == []
    shuffled = [dict(statement, Action=list(reversed(statement["Action"])), Sid=f"Mine{index}")
                for index, statement in enumerate(document["Statement"])]
    assert missing_boundary_statements(dev, {"Statement": shuffled}) == []
    assert missing_boundary_statements(dev, {"Statement": shuffled[1:]}) == [document["Statement"][0]["Sid"]]
    assert missing_boundary_statements(dev, "not json") == [statement["Sid"] for statement in document["Statement"]]
# -- alarm subscriptions SNS removed by itself ----------------------------------------------------------------------


class PendingSns:
    """moto's SNS, except that the subscriptions of ``pending`` endpoints are listed as SNS lists one awaiting
    confirmation (SubscriptionArn ``PendingConfirmation``; moto confirms every subscription at once)."""

    def __init__(self, sns: Any, pending: set[str]) -> None:
        self.sns, self.pending = sns, pending

    def get_paginator(self, operation: str) -> Any:
        paginator = self.sns.get_paginator(operation)
        pending = self.pending

        class Pages:
            def paginate(self, **kwargs: Any) -> Any:
                for page in paginator.paginate(**kwargs):
                    for sub in page.get("Subscriptions", []):
                        if sub["Endpoint"] in pending:
                            sub["SubscriptionArn"] = "PendingConfirmation"
                    yield page

        return Pages()


def test_an_alarm_subscription_sns_deleted_is_named_with_the_refresh_that_brings_it_back(
        moto_aws: None, edit_env: Any) -> None:
    """SNS deletes a subscription left unconfirmed 48 hours, and an email one suspended by an alarm storm (more than
    10 messages a second) the same way; the broker layer's state still holds it and `up` reads no state back, so no
    `up` subscribes the address again and the alarms reach nobody."""
    dev = load_env("dev")
    sns = MotoAccounts.client(dev.account_id, dev.region, "sns")
    # an env naming nobody: every notification reaches nobody, which up says before the broker layer runs
    assert dev.alarms.all_subscriptions() == []
    code, out, _ = up(["preview", "dev", "--layers", "broker", "--exact"], replacing(sns=sns))
    assert code == 0 and ("dev.yaml: alarms: no subscription (alarms.email, alarms.subscriptions), so every alarm "
                          "and event notification of dev goes to dev-ml-alarms and reaches nobody") in out, out
    edit_env("dev", lambda data: data.setdefault("alarms", {}).update(
        email=["oncall@example.com", "lead@example.com", "new@example.com"]))
    dev = load_env("dev")
    code, out, _ = up(["preview", "dev", "--layers", "broker", "--exact"], replacing(sns=sns))
    assert code == 0 and "not subscribed" not in out, out  # no topic yet: the first up subscribes them all
    assert "no subscription" not in out, out

    topic = sns.create_topic(Name="dev-ml-alarms")["TopicArn"]
    for address in ("oncall@example.com", "new@example.com"):
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           replacing(sns=PendingSns(sns, {"new@example.com"})))
    assert code == 0 and runner.started() == ["broker"], out
    notes = [line for line in out.splitlines() if line.startswith("note: ") and "dev.yaml: alarms" in line]
    assert len(notes) == 2, out
    gone = next(note for note in notes if "lead@example.com" in note)
    assert "is not subscribed to dev-ml-alarms" in gone and "nox -s refresh -- dev --layers broker --exact" in gone
    waiting = next(note for note in notes if "new@example.com" in note)
    assert "pending confirmation" in waiting and "48 hours" in waiting


class MaskedHttpsSns(PendingSns):
    """SNS listing an https subscription as it does: "HTTPS URLs are only retrievable from the Amazon SNS
    GetSubscriptionAttributes API action" (SNS developer guide, "Fanout Amazon SNS notifications to HTTPS endpoints"),
    so ListSubscriptionsByTopic masks a basic-auth password."""

    def get_paginator(self, operation: str) -> Any:
        pages = super().get_paginator(operation)

        class Masked:
            def paginate(self, **kwargs: Any) -> Any:
                for page in pages.paginate(**kwargs):
                    for sub in page.get("Subscriptions", []):
                        sub["Endpoint"] = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:****@", sub["Endpoint"])
                    yield page

        return Masked()


def test_an_https_subscription_with_basic_auth_is_found_though_sns_masks_its_password(
        moto_aws: None, edit_env: Any) -> None:
    """An https endpoint carrying basic-auth credentials is listed with its password masked: still subscribed, no
    note (a note would send the operator to refresh the broker layer for nothing)."""
    hook = "https://alarms:s3cret@hooks.example.com/sns"
    edit_env("dev", lambda data: data.setdefault("alarms", {}).update(
        subscriptions=[{"protocol": "https", "endpoint": hook}]))
    dev = load_env("dev")
    sns = MotoAccounts.client(dev.account_id, dev.region, "sns")
    topic = sns.create_topic(Name="dev-ml-alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=hook)
    code, out, _ = up(["preview", "dev", "--layers", "broker", "--exact"],
                      replacing(sns=MaskedHttpsSns(sns, set())))
    assert code == 0 and "dev.yaml: alarms" not in out, out
    code, out, _ = up(["preview", "dev", "--layers", "broker", "--exact"],
                      replacing(sns=MaskedHttpsSns(sns, {hook})))
    # named without its password: the preflight's notes are printed (a CI log keeps them)
    assert code == 0 and "is not subscribed" not in out, out
    assert "https://[redacted]@hooks.example.com/[redacted] is pending confirmation" in out and "s3cret" not in out, out


class SmsSns:
    """moto's SNS (its topics and subscriptions) with the SMS sandbox and settings moto does not model: the account's
    sandbox status, the destination numbers it lists (``{number: "Verified" | "Pending"}``; None: SNS answers
    ResourceNotFoundException, as for a sandbox listing none) and its ``MonthlySpendLimit``."""

    def __init__(self, sns: Any, *, sandbox: bool, numbers: dict[str, str] | None, limit: str | None,
                 attributes_denied: bool = False) -> None:
        self.sns, self.sandbox, self.numbers, self.limit = sns, sandbox, numbers, limit
        self.attributes_denied = attributes_denied

    def get_sms_sandbox_account_status(self) -> dict[str, Any]:
        return {"IsInSandbox": self.sandbox}

    def get_sms_attributes(self, attributes: list[str]) -> dict[str, Any]:
        assert attributes == ["MonthlySpendLimit"]
        if self.attributes_denied:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}}, "GetSMSAttributes")
        return {"attributes": {} if self.limit is None else {"MonthlySpendLimit": self.limit}}

    def get_paginator(self, operation: str) -> Any:
        if operation != "list_sms_sandbox_phone_numbers":
            return self.sns.get_paginator(operation)
        numbers = self.numbers

        class Pages:
            def paginate(self, **kwargs: Any) -> Any:
                if numbers is None:
                    from botocore.exceptions import ClientError

                    # the code SNS sends: its query protocol's for ResourceNotFoundException (botocore sns model)
                    code = botocore.session.get_session().get_service_model("sns").shape_for(
                        "ResourceNotFoundException").metadata["error"]["code"]
                    raise ClientError({"Error": {"Code": code, "Message": "none"}}, "ListSMSSandboxPhoneNumbers")
                items = [{"PhoneNumber": number, "Status": status} for number, status in numbers.items()]
                yield {"PhoneNumbers": items[:1]}  # one number a page: every page is read
                yield {"PhoneNumbers": items[1:]}

        return Pages()


class UsOrigination:
    """End User Messaging SMS, which moto lacks: the account's active US origination numbers with SMS, as
    DescribePhoneNumbers filtered to them answers (one number a page)."""

    FILTERS = [{"Name": "iso-country-code", "Values": ["US"]}, {"Name": "status", "Values": ["ACTIVE"]},
               {"Name": "number-capability", "Values": ["SMS"]},
               {"Name": "number-type", "Values": ["TOLL_FREE", "TEN_DLC", "SHORT_CODE"]}]

    def __init__(self, numbers: Sequence[str]) -> None:
        self.numbers = list(numbers)

    def get_paginator(self, operation: str) -> Any:
        assert operation == "describe_phone_numbers"
        numbers = self.numbers

        class Pages:
            def paginate(self, Filters: list[dict[str, Any]]) -> Any:
                assert Filters == UsOrigination.FILTERS
                yield {"PhoneNumbers": []}  # a first page may be empty with a NextToken
                for number in numbers:
                    yield {"PhoneNumbers": [{"PhoneNumber": number, "IsoCountryCode": "US", "Status": "ACTIVE"}]}

        return Pages()


def sms_account(sns: Any, origination: Sequence[str] = ("+18885550100",)) -> AwsAccountCheck:
    """The check with ``sns`` for SNS and the account's US origination numbers ``origination`` (a toll-free one)."""
    return replacing(sns=sns, **{"pinpoint-sms-voice-v2": UsOrigination(origination)})


def _sms_env(edit_env: Any, *numbers: str) -> EnvConfig:
    edit_env("dev", lambda data: data.setdefault("alarms", {}).update(
        email=["oncall@example.com"], subscriptions=[{"protocol": "sms", "endpoint": number} for number in numbers]))
    return load_env("dev")


def test_an_sms_number_the_sandboxed_account_has_not_verified_stops_up_before_any_layer(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """In the SNS SMS sandbox SNS texts verified numbers only, while the subscription to any other is created and looks
    fine: the on-call would never be paged. Each such number is refused with the commands that verify it."""
    dev = _sms_env(edit_env, "+15550100001", "+15550100002", "+15550100003")
    moto = MotoAccounts.client(dev.account_id, dev.region, "sns")
    sandboxed = SmsSns(moto, sandbox=True, numbers={"+15550100001": "Verified", "+15550100002": "Pending"},
                       limit="100")
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], sms_account(sandboxed))
    assert code == 2 and runner.started() == [], out
    out += capsys.readouterr().err
    assert "+15550100001" not in out, out  # verified: texted
    assert "dev.yaml: alarms sms +15550100002: account" in out and "is still pending verification" in out, out
    assert "+15550100003 is not among its verified numbers" in out, out
    assert "verify-sms-sandbox-phone-number --phone-number +15550100003 --one-time-password CODE --region eu-west-1" \
        in out, out
    assert "create-sms-sandbox-phone-number --phone-number +15550100003 --region eu-west-1" in out, out

    code, out, runner = up(["preview", "dev", "--layers", "broker", "--exact"], sms_account(sandboxed))
    assert code == 0 and runner.started() == ["broker"], out
    assert "is still pending verification" in out + capsys.readouterr().err, out

    # a sandbox listing no number at all (a new account's) answers ResourceNotFound: every number is unverified
    empty = SmsSns(moto, sandbox=True, numbers=None, limit="100")
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], sms_account(empty))
    assert code == 2 and capsys.readouterr().err.count("is not among its verified numbers") == 3, out
    # the spend limit unreadable: a note of its own, the numbers still refused
    denied = SmsSns(moto, sandbox=True, numbers=None, limit="100", attributes_denied=True)
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], sms_account(denied))
    assert code == 2 and capsys.readouterr().err.count("is not among its verified numbers") == 3, out
    assert "monthly SMS spend limit is unknown (SNS GetSMSAttributes" in out, out


def test_an_sms_number_is_texted_once_verified_or_out_of_the_sandbox(moto_aws: None, edit_env: Any) -> None:
    dev = _sms_env(edit_env, "+15550100001", "+15550100002")
    moto = MotoAccounts.client(dev.account_id, dev.region, "sns")
    verified = SmsSns(moto, sandbox=True, numbers={"+15550100001": "Verified", "+15550100002": "Verified"},
                      limit="100")
    out_of_sandbox = SmsSns(moto, sandbox=False, numbers={}, limit="100")
    for sns in (verified, out_of_sandbox):
        code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], sms_account(sns))
        assert code == 0 and runner.started() == ["broker"] and "alarms sms" not in out, out


def test_a_new_accounts_one_dollar_sms_spend_limit_is_a_note(moto_aws: None, edit_env: Any) -> None:
    """SNS texts nobody for the rest of the month once the account's MonthlySpendLimit is spent, $1 in a new account:
    an alarm storm, or an env's first up (an OK for every alarm it creates), spends that."""
    dev = _sms_env(edit_env, "+15550100001")
    moto = MotoAccounts.client(dev.account_id, dev.region, "sns")
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           sms_account(SmsSns(moto, sandbox=False, numbers={}, limit="1")))
    assert code == 0 and runner.started() == ["broker"], out
    assert "dev.yaml: alarms sms: account" in out and "may spend $1 a month on SMS" in out, out
    assert "set-sms-attributes --attributes MonthlySpendLimit=N --region eu-west-1" in out, out
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                      sms_account(SmsSns(moto, sandbox=False, numbers={}, limit="250")))
    assert code == 0 and "alarms sms" not in out, out
    # never set: the account's default, $1 in a new account
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                      sms_account(SmsSns(moto, sandbox=False, numbers={}, limit=None)))
    assert code == 0 and "sets no MonthlySpendLimit (the account's default applies, $1 in a new account)" in out, out


def test_an_env_without_sms_asks_nothing_of_the_sms_sandbox(moto_aws: None, edit_env: Any) -> None:
    dev = _sms_env(edit_env)
    moto = MotoAccounts.client(dev.account_id, dev.region, "sns")
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                      sms_account(SmsSns(moto, sandbox=True, numbers=None, limit="1")))
    assert code == 0 and "alarms sms" not in out, out


def test_an_identity_denied_the_sms_reads_gets_a_note_and_up_runs(moto_aws: None, edit_env: Any) -> None:
    _sms_env(edit_env, "+15550100001")
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           sms_account(Denied("AuthorizationError")))
    assert code == 0 and runner.started() == ["broker"], out
    assert "dev.yaml: alarms sms: whether SNS may text +15550100001 from account" in out, out
    assert "is unknown (SNS GetSMSSandboxAccountStatus" in out, out
    assert "monthly SMS spend limit is unknown" in out, out  # Denied answers every call so
    # End User Messaging SMS denied too: its own note
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           replacing(sns=Denied("AuthorizationError"),
                                     **{"pinpoint-sms-voice-v2": Denied("AccessDeniedException")}))
    assert code == 0 and runner.started() == ["broker"], out
    assert "holds a US origination number for +15550100001 is unknown (End User Messaging SMS DescribePhoneNumbers" \
        in out, out


def test_a_plus_one_number_without_a_us_origination_number_is_a_note(moto_aws: None, edit_env: Any) -> None:
    """Since 2023-08-31 SNS texts numbers of the US and its territories only from a registered US origination number
    (toll-free or 10DLC) of the account in the region: without one the subscription is made and every page to it
    fails. A note (+1 is also Canada's, which needs none); a number of another country is not asked about."""
    dev = _sms_env(edit_env, "+15550100001", "+447700900123")
    moto = MotoAccounts.client(dev.account_id, dev.region, "sns")
    texted = SmsSns(moto, sandbox=False, numbers={}, limit="250")
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], sms_account(texted, ()))
    assert code == 0 and runner.started() == ["broker"], out
    assert (f"dev.yaml: alarms sms +15550100001: account {dev.account_id} (eu-west-1) holds no active US origination "
            "number") in out and "+447700900123" not in out, out
    assert "since 2023-08-31 SNS texts numbers of the United States and its territories only from one" in out, out
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], sms_account(texted))
    assert code == 0 and "alarms sms" not in out, out
    # no +1 number: End User Messaging SMS is not asked at all (Denied would leave a note)
    _sms_env(edit_env, "+447700900123")
    code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                      replacing(sns=texted, **{"pinpoint-sms-voice-v2": Denied("AccessDeniedException")}))
    assert code == 0 and "alarms sms" not in out, out


class DescribedSecret:
    """Secrets Manager answering DescribeSecret with ``described`` (moto keeps no rotation schedule)."""

    def __init__(self, described: dict[str, Any]) -> None:
        self.described = described

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        return {"Name": SecretId, **self.described}


def test_an_admin_rotation_that_never_ran_or_stopped_partway_is_a_note(moto_aws: None) -> None:
    """The rotation alarm counts the function's errors only: an invocation Lambda refused (a VPC function idle for
    weeks is Inactive) raises none, and the secret's NextRotationDate stays in the past."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    overdue = DescribedSecret({"RotationEnabled": True, "LastRotatedDate": now - timedelta(days=200),
                               "NextRotationDate": now - timedelta(days=20),
                               "VersionIdsToStages": {"v1": ["AWSCURRENT", "platform-initial"],
                                                      "v2": ["AWSPENDING"]}})
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], replacing(secretsmanager=overdue))
    assert code == 0 and runner.started() == ["broker"], out
    notes = [line for line in out.splitlines() if line.startswith("note: ") and "platform/dev/broker/admin" in line]
    assert len(notes) == 2, out
    assert "was due to rotate on" in notes[0] and "has not" in notes[0] and "rotate-secret" in notes[0]
    assert "stopped partway" in notes[1] and "v2" in notes[1]

    on_time = DescribedSecret({"RotationEnabled": True, "LastRotatedDate": now - timedelta(days=10),
                               "NextRotationDate": now + timedelta(days=170),
                               "VersionIdsToStages": {"v3": ["AWSCURRENT"], "v2": ["AWSPREVIOUS"]}})
    code, out, _ = up(["preview", "dev", "--layers", "broker", "--exact"], replacing(secretsmanager=on_time))
    assert code == 0 and "platform/dev/broker/admin" not in out, out


class SourceCredentials:
    """CodeBuild's ListSourceCredentials of an account holding ``server_types``."""

    def __init__(self, *server_types: str) -> None:
        self.server_types = server_types

    def list_source_credentials(self) -> dict[str, Any]:
        return {"sourceCredentialsInfos": [{"arn": f"arn:aws:codebuild:eu-west-1:111111111111:token/{t.lower()}",
                                            "serverType": t, "authType": "PERSONAL_ACCESS_TOKEN"}
                                           for t in self.server_types]}


def _github_runner(edit_env: Any, connection: str | None = None) -> None:
    runner = {"github_repository": "https://github.com/acme/ml-platform"}
    if connection:
        runner["github_connection_arn"] = connection
    edit_env("dev", lambda data: data["messaging"].setdefault("deploy_runner", {}).update(runner))


def test_a_github_runner_without_a_credential_or_connection_is_refused_before_any_layer(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """CodeBuild's CreateWebhook needs the account's GitHub access in the region; without it the broker layer's up
    fails after the project moved to the GitHub source."""
    _github_runner(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           replacing(codebuild=SourceCredentials("BITBUCKET")))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "messaging.deploy_runner: github_repository is set without github_connection_arn" in error
    assert "import-source-credentials --server-type GITHUB" in error

    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           replacing(codebuild=SourceCredentials("GITHUB")))
    assert code == 0 and runner.started() == ["broker"], out


def test_a_github_runner_with_a_connection_is_not_asked_for_a_credential(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """(The run stops on the role boundary, which lacks the connection's statement in the test account.)"""
    _github_runner(edit_env, "arn:aws:codeconnections:eu-west-1:111111111111:connection/"
                             "0b1c2d3e-aaaa-bbbb-cccc-123456789abc")
    _code, out, _runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                             replacing(codebuild=Denied("AccessDeniedException")))
    said = out + capsys.readouterr().err
    assert "ListSourceCredentials" not in said and "github_repository is set without" not in said


def test_an_unreadable_credential_list_is_a_note(moto_aws: None, edit_env: Any) -> None:
    _github_runner(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"],
                           replacing(codebuild=Denied("AccessDeniedException")))
    assert code == 0 and runner.started() == ["broker"], out
    assert "whether CodeBuild holds a GitHub credential in eu-west-1 is unknown" in out


class Denied:
    """A client whose every call answers ``code`` (a role without the action: AccessDenied)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def _deny(self, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": self.code, "Message": "not authorized"}}, "Call")

    describe_secret = _deny
    list_source_credentials = _deny
    describe_certificate = _deny
    get_sms_sandbox_account_status = _deny
    get_sms_attributes = _deny

    def get_paginator(self, operation: str) -> Any:
        deny = self._deny

        class Pages:
            def paginate(self, **kwargs: Any) -> Any:
                deny()
                yield {}

        return Pages()


def test_an_identity_denied_the_subscription_and_rotation_reads_gets_notes_and_up_runs(
        moto_aws: None, edit_env: Any) -> None:
    """A role without sns:ListSubscriptionsByTopic or secretsmanager:DescribeSecret (a custom read role): what is
    unknown is a note, never a crash or a refusal."""
    edit_env("dev", lambda data: data.setdefault("alarms", {}).update(email=["oncall@example.com"]))

    denied = replacing(sns=Denied("AuthorizationError"), secretsmanager=Denied("AccessDeniedException"))
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], denied)
    assert code == 0 and runner.started() == ["broker"], out
    assert "alarm subscriptions still exist is unknown (ListSubscriptionsByTopic:" in out, out
    assert "whether platform/dev/broker/admin rotates is unknown (DescribeSecret:" in out, out


# -- availability zones ---------------------------------------------------------------------------------------


def test_an_account_without_the_envs_availability_zones_stops_up_before_the_network(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # AZ names are each account's own in the oldest regions, and a us-west-1 account has two of a/b/c (AWS Regions
    # and Availability Zones guide, "AZ IDs"); moto's account has us-west-1a and us-west-1b, shared/regions.py's
    # default is us-west-1a and us-west-1c: CreateSubnet would fail ("Value (us-west-1c) for parameter
    # availabilityZone is invalid", workload-discovery-on-aws#234) after the VPC was created
    edit_env("dev", lambda data: data.update(region="us-west-1"))
    create_role_boundaries(["dev"])  # its statements name the env's region
    code, out, runner = up(["up", "dev", "--yes", "--layers", "network", "--exact"], checker(Clients(roomy())))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert ("environments/dev.yaml: network.az_count: account 111111111111 has no availability zone us-west-1c in "
            "us-west-1 (it has us-west-1a, us-west-1b;") in error, error
    assert "List 2 of the account's in network.availability_zones" in error
    code, out, runner = up(["preview", "dev", "--layers", "network", "--exact"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["network"] and "up would be refused" in out, out

    # the account's own names: the network goes ahead, and the run says which physical AZs they are
    edit_env("dev", lambda data: data["network"].update(availability_zones=["us-west-1b", "us-west-1a"]))
    code, out, runner = up(["up", "dev", "--yes", "--layers", "network", "--exact"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["network"], out
    assert ("availability zones: us-west-1b (usw1-az1), us-west-1a (usw1-az3) of the account's us-west-1a, "
            "us-west-1b") in out


def test_an_interface_endpoint_not_offered_in_an_az_stops_up_before_the_network(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # an endpoint service need not be offered in every AZ; CreateVpcEndpoint then fails ("The VPC endpoint service
    # ... does not support the availability zone of the subnet", terraform-aws-modules/terraform-aws-vpc#462)
    staging = load_env("staging")
    assert staging.availability_zones == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    lacking = Clients(roomy(), endpoint_zones={"com.amazonaws.eu-west-1.ecr.dkr": ["eu-west-1a", "eu-west-1b"]})
    code, out, runner = up(["up", "staging", "--yes", "--layers", "network", "--exact"], checker(lacking))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert ("environments/staging.yaml: network.endpoints: ecr.dkr: the endpoint service "
            "com.amazonaws.eu-west-1.ecr.dkr is not offered in eu-west-1c (only eu-west-1a, eu-west-1b)") in error
    assert "ecr.api" not in error

    missing = Clients(roomy(), endpoint_zones={"com.amazonaws.eu-west-1.logs": None})
    code, out, runner = up(["up", "staging", "--yes", "--layers", "network", "--exact"], checker(missing))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "network.endpoints: logs: eu-west-1 offers no endpoint service com.amazonaws.eu-west-1.logs" in error, error
    assert "ecr.dkr" not in error and "ecr.api" not in error  # the others are still checked (and offered)

    # listed, in none of the account's AZs: CreateVpcEndpoint has no subnet to take
    nowhere = Clients(roomy(), endpoint_zones={"com.amazonaws.eu-west-1.secretsmanager": []})
    code, out, runner = up(["up", "staging", "--yes", "--layers", "network", "--exact"], checker(nowhere))
    assert code == 2 and runner.started() == [], out
    assert "secretsmanager: the endpoint service com.amazonaws.eu-west-1.secretsmanager is not offered in " \
           "eu-west-1a, eu-west-1b, eu-west-1c (in none of the account's)" in capsys.readouterr().err

    # every endpoint in every AZ: the network goes ahead
    code, out, runner = up(["up", "staging", "--yes", "--layers", "network", "--exact"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["network"], out


def test_an_endpoint_service_a_retiring_az_lacks_does_not_stop_up(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The endpoints take the serving AZs' subnets only (shared.components.network): retiring the AZ an endpoint
    service lacks is the way out of the refusal above, not another refusal."""
    edit_env("staging", lambda data: data["network"].update(retiring_availability_zones=["eu-west-1c"]))
    lacking = Clients(roomy(), endpoint_zones={"com.amazonaws.eu-west-1.ecr.dkr": ["eu-west-1a", "eu-west-1b"]})
    code, out, runner = up(["up", "staging", "--yes", "--layers", "network", "--exact"], checker(lacking))
    assert code == 0 and runner.started() == ["network"], (out, capsys.readouterr().err)
    # serving there, it still refuses, and names the way out
    lacking = Clients(roomy(), endpoint_zones={"com.amazonaws.eu-west-1.ecr.dkr": ["eu-west-1a", "eu-west-1c"]})
    code, out, runner = up(["up", "staging", "--yes", "--layers", "network", "--exact"], checker(lacking))
    assert code == 2 and runner.started() == [], out
    error = " ".join(capsys.readouterr().err.split())
    assert "com.amazonaws.eu-west-1.ecr.dkr is not offered in eu-west-1b" in error, error
    assert "retire that one (network.retiring_availability_zones" in error, error


def test_a_broker_amazon_mq_does_not_offer_in_the_region_or_its_azs_stops_up_before_any_layer(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # Amazon MQ API reference, Broker Engine Types: "Amazon MQ does not support all instance types in all availability
    # zones and regions"; CreateBroker would fail after the network and the broker layer's other resources
    prod = load_env("prod")  # RabbitMQ 4.2 on mq.m7g.large, CLUSTER_MULTI_AZ over eu-west-1a/b/c
    assert (prod.messaging.instance_type, prod.messaging.deployment_mode) == ("mq.m7g.large", "CLUSTER_MULTI_AZ")
    run = ["up", "prod", "--yes", "--layers", "broker", "--exact"]

    two_azs = Clients(roomy(), broker_options={"mq.m7g.large": (["eu-west-1a", "eu-west-1b"], ["4.2", "3.13"],
                                                                ["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"])})
    code, out, runner = up(run, checker(two_azs))
    assert code == 2 and runner.started() == [], out
    assert ("environments/prod.yaml: network.az_count: Amazon MQ offers RabbitMQ 4.2 on mq.m7g.large in eu-west-1a, "
            "eu-west-1b only, not in eu-west-1c, where the broker's subnet is") in capsys.readouterr().err

    old_engine = Clients(roomy(), broker_options={"mq.m7g.large": (["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                                                                   ["3.13"], ["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"])})
    code, out, runner = up(run, checker(old_engine))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "network.az_count" not in error, error
    assert ("messaging.engine_version: Amazon MQ offers mq.m7g.large in eu-west-1 only for RabbitMQ 3.13 and "
            "CLUSTER_MULTI_AZ, SINGLE_INSTANCE, not 4.2 CLUSTER_MULTI_AZ") in error, error

    code, out, runner = up(run, checker(Clients(roomy(), broker_options={"mq.m7g.large": ([], [], [])})))
    assert code == 2 and runner.started() == [], out
    assert "messaging.instance_type: Amazon MQ offers no RabbitMQ mq.m7g.large in eu-west-1" in capsys.readouterr().err

    # offered where the subnets are, over two pages (NextToken): the broker layer runs
    modes = ["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"]
    paged = Clients(roomy(), broker_options={"mq.m7g.large": [(["eu-west-1a", "eu-west-1b"], ["4.2"], modes),
                                                              (["eu-west-1c"], ["4.2"], modes)]})
    code, out, runner = up(run, checker(paged))
    assert code == 0 and runner.started() == ["broker"], out
    code, out, runner = up(run, checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["broker"], out
    assert "Amazon MQ: RabbitMQ 4.2 on mq.m7g.large (CLUSTER_MULTI_AZ) is offered in eu-west-1a, eu-west-1b, " \
           "eu-west-1c" in out

    # a broker the account holds is not created again: what Amazon MQ offers new brokers is a note
    MotoAccounts.client(prod.account_id, prod.region, "mq").create_broker(
        BrokerName="ml-prod", DeploymentMode="CLUSTER_MULTI_AZ", EngineType="RABBITMQ", EngineVersion="4.2",
        HostInstanceType="mq.m7g.large", PubliclyAccessible=False, AutoMinorVersionUpgrade=True,
        Users=[{"Username": "admin", "Password": "a-long-password-1"}])
    code, out, runner = up(run, checker(two_azs))
    assert code == 0 and runner.started() == ["broker"], out
    assert "Amazon MQ offers RabbitMQ 4.2 on mq.m7g.large in eu-west-1a, eu-west-1b only" in out
    assert "CreateBroker would fail" not in out + capsys.readouterr().err


class OlderAccountEc2:
    """moto's EC2 as an ap-northeast-1 account opened before apne1-az3 was closed to new accounts sees it: four AZs,
    with ap-northeast-1a on apne1-az3 (AZ names map to IDs per account in the oldest regions: AWS Regions and
    Availability Zones guide, "AZ IDs")."""

    ZONES = {"ap-northeast-1a": "apne1-az3", "ap-northeast-1b": "apne1-az4", "ap-northeast-1c": "apne1-az1",
             "ap-northeast-1d": "apne1-az2"}

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def describe_availability_zones(self, **kwargs: Any) -> dict[str, Any]:
        return {"AvailabilityZones": [
            {"ZoneName": name, "ZoneId": zone_id, "RegionName": "ap-northeast-1", "State": "available",
             "ZoneType": "availability-zone", "OptInStatus": "opt-in-not-required"}
            for name, zone_id in self.ZONES.items()]}


def test_azs_where_fargate_runs_no_task_stop_up_before_the_network(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # ECS guide, "Supported Regions for Amazon ECS on AWS Fargate": in ap-northeast-1 Fargate runs in apne1-az1, az2
    # and az4 only; an older account's ap-northeast-1a can be apne1-az3, where the services' tasks never start
    edit_env("dev", lambda data: data.update(region="ap-northeast-1"))
    create_role_boundaries(["dev"])  # its statements name the env's region
    assert load_env("dev").availability_zones == ["ap-northeast-1a", "ap-northeast-1c"]

    class Older(Clients):
        def __call__(self, env: EnvConfig, service: str) -> Any:
            client = super().__call__(env, service)
            return OlderAccountEc2(client) if service == "ec2" else client

    code, out, runner = up(["up", "dev", "--yes", "--layers", "network", "--exact"], checker(Older(roomy())))
    assert code == 2 and runner.started() == [], out
    assert ("environments/dev.yaml: network.az_count: Fargate runs tasks in ap-northeast-1 in apne1-az1, apne1-az2, "
            "apne1-az4 only (ECS guide, 'Supported Regions for Amazon ECS on AWS Fargate'), not in ap-northeast-1a "
            "(apne1-az3): the services' tasks there would never start. List 2 of the account's ap-northeast-1b, "
            "ap-northeast-1c, ap-northeast-1d in network.availability_zones") in capsys.readouterr().err

    # an env whose network is deployed there already: a note (moving the subnets replaces them), not a refusal
    edit_env("dev", lambda data: data["network"].update(endpoints=["s3", "ecr.dkr"]))
    dev = load_env("dev")
    ec2 = MotoAccounts.client(dev.account_id, dev.region, "ec2")
    vpc = ec2.create_vpc(CidrBlock=str(dev.network.cidr))["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "env", "Value": "dev"}, {"Key": "layer", "Value": "network"},
                                           {"Key": "managed-by", "Value": "pulumi"}])
    report = checker(Older(roomy())).check(dev, ["network"])
    assert report.refusals == [] and any("not in ap-northeast-1a (apne1-az3)" in note for note in report.notes)
    # following it on a deployed env replaces the broker too where the first AZ changes (tests/fixtures/env_key_changes)
    assert any("and the broker where the first AZ changes" in note for note in report.notes), report.notes
    # the note does not end the AZ checks: an endpoint service the AZ lacks still stops up before CreateVpcEndpoint
    lacking = {"com.amazonaws.ap-northeast-1.ecr.dkr": ["ap-northeast-1c", "ap-northeast-1d"]}
    report = checker(Older(roomy(), endpoint_zones=lacking)).check(dev, ["network"])
    assert any("not in ap-northeast-1a (apne1-az3)" in note for note in report.notes), report.notes
    assert [refusal for refusal in report.refusals if "ecr.dkr: the endpoint service "
            "com.amazonaws.ap-northeast-1.ecr.dkr is not offered in ap-northeast-1a" in refusal], report.refusals
    ec2.delete_vpc(VpcId=vpc)

    # a newer account (moto's: a, c, d on az4, az1, az2) takes the default; the older one its own names
    code, out, runner = up(["up", "dev", "--yes", "--layers", "network", "--exact"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["network"], out
    edit_env("dev", lambda data: data["network"].update(availability_zones=["ap-northeast-1c", "ap-northeast-1d"]))
    code, out, runner = up(["up", "dev", "--yes", "--layers", "network", "--exact"], checker(Older(roomy())))
    assert code == 0 and runner.started() == ["network"], out


def test_a_boundary_that_grants_at_least_what_is_printed_is_up_to_date() -> None:
    # the administrator's boundary may hold a statement wider than printed, or one split in two: every action on every
    # resource of each printed statement is still allowed (under the same condition, or none), so up must not be
    # refused. The case that needs it: a change of messaging.deploy_runner.deploy_role_name, where the deploy runner
    # still assumes the old role until that up has passed, so AssumeDeployRole names both roles meanwhile.
    from shared.orchestrate.account import missing_boundary_statements

    dev = load_env("dev")
    printed = boundary_policy(dev).document["Statement"]
    by_sid = {statement["Sid"]: statement for statement in printed}
    old_role = f"arn:aws:iam::{dev.account_id}:role/old-deployer"
    both = dict(by_sid["AssumeDeployRole"], Resource=[old_role, *by_sid["AssumeDeployRole"]["Resource"]])
    logs = by_sid["WriteLogs"]
    split = [dict(logs, Sid="Write", Action=[action for action in logs["Action"] if "Describe" not in action]),
             dict(logs, Sid="Find", Action="logs:Describe*")]
    wider_resource = dict(by_sid["PullImages"], Resource="*")
    keys = by_sid["KeysThroughSecretsManagerAndS3"]  # a condition's values in another order
    services = keys["Condition"]["StringEquals"]["kms:ViaService"]
    reordered = dict(keys, Condition={"StringEquals": {"kms:ViaService": list(reversed(services))}})
    held = [both, *split, wider_resource, reordered,
            *(statement for statement in printed if statement["Sid"] not in (
                "AssumeDeployRole", "WriteLogs", "PullImages", "KeysThroughSecretsManagerAndS3"))]
    assert missing_boundary_statements(dev, {"Statement": held}) == []

    # still refused: a printed grant not held, or held only under a condition the printed one lacks
    only_old = dict(by_sid["AssumeDeployRole"], Resource=old_role)
    assert missing_boundary_statements(
        dev, {"Statement": [only_old, *(s for s in printed if s["Sid"] != "AssumeDeployRole")]}) == ["AssumeDeployRole"]
    conditioned = dict(by_sid["EcrLogin"], Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}})
    assert missing_boundary_statements(
        dev, {"Statement": [conditioned, *(s for s in printed if s["Sid"] != "EcrLogin")]}) == ["EcrLogin"]
    narrower = dict(by_sid["WriteLogs"], Action=["logs:PutLogEvents"])
    assert missing_boundary_statements(
        dev, {"Statement": [narrower, *(s for s in printed if s["Sid"] != "WriteLogs")]}) == ["WriteLogs"]
    question = dict(by_sid["PullImages"], Resource=[r.replace("/*", "/?") for r in
                                                   by_sid["PullImages"]["Resource"]])
    assert missing_boundary_statements(
        dev, {"Statement": [question, *(s for s in printed if s["Sid"] != "PullImages")]}) == ["PullImages"]


# -- registry-wide ECR settings compute writes whole ---------------------------------------------------------------


def org_statement(prod: EnvConfig) -> dict[str, Any]:
    """A registry policy statement of someone else's: another team's replication from its own account."""
    return {"Sid": "OrgSecurityTooling", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444444444444:root"},
            "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
            "Resource": f"arn:aws:ecr:{prod.region}:{prod.account_id}:repository/*"}


def test_compute_is_refused_where_the_registry_policy_holds_statements_it_would_replace(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # prod receives its images from dev, in another account: its compute writes the registry's one permissions policy
    # (PutRegistryPolicy creates or replaces it whole, DeleteRegistryPolicy at destroy): whatever the account's
    # registry policy allowed before was silently gone after prod's first `up`.
    from shared.components.image_replication import Registry, registry_policy

    prod = load_env("prod")
    ecr = MotoAccounts.client(prod.account_id, prod.region, "ecr")
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [org_statement(prod)]}))
    error = compute_refused("prod", capsys)
    assert ("environments/prod.yaml: the ECR registry policy of account 333333333333 (eu-west-1) holds statement "
            "OrgSecurityTooling, which compute did not put there") in error
    assert "PutRegistryPolicy replaces it whole" in error
    # what the registry holds, and how to clear it once what needs it has moved (botocore ecr: GetRegistryPolicy and
    # DeleteRegistryPolicy take no parameters)
    assert ("see it: `aws ecr get-registry-policy --region eu-west-1 --query policyText --output text`; clear it: "
            "`aws ecr delete-registry-policy --region eu-west-1`") in error
    # a preview notes it and goes on
    out = compute_goes_on("preview", "prod")
    assert "up would be refused" in out and "OrgSecurityTooling" in out

    # compute's own statement is there (its earlier `up`): the other one is a note, compute's next change drops it
    ours = registry_policy(Registry.of(load_env("dev")), Registry.of(prod), "aws")
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17",
                                                   "Statement": [*ours["Statement"], org_statement(prod)]}))
    out = compute_goes_on("up", "prod")
    assert "also holds statement OrgSecurityTooling" in out

    # compute's alone: nothing to say
    ecr.put_registry_policy(policyText=json.dumps(ours))
    out = compute_goes_on("up", "prod")
    assert "OrgSecurityTooling" not in out and "also holds" not in out


def test_compute_of_the_image_source_is_refused_where_replication_holds_other_rules(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # dev replicates to staging and prod: its compute writes the registry's replication configuration whole
    # (PutReplicationConfiguration), which would drop a rule of someone else's (a copy to a DR region, say)
    dev = load_env("dev")
    ecr = MotoAccounts.client(dev.account_id, dev.region, "ecr")
    ecr.put_replication_configuration(replicationConfiguration={"rules": [{
        "destinations": [{"region": "us-east-1", "registryId": dev.account_id}],
        "repositoryFilters": [{"filter": "data-team/", "filterType": "PREFIX_MATCH"}]}]})
    error = compute_refused("dev", capsys)
    assert ("environments/dev.yaml: the ECR replication configuration of account 111111111111 (eu-west-1) holds "
            "a rule of repositories data-team/ to 111111111111 us-east-1, which compute did not put there") in error
    assert "PutReplicationConfiguration replaces it whole" in error
    assert ("see it: `aws ecr describe-registry --region eu-west-1 --query replicationConfiguration`; clear it: "
            "`aws ecr put-replication-configuration --region eu-west-1 --replication-configuration "
            "'{\"rules\": []}'`") in error

    # compute's own rule: fine
    from shared.components.image_replication import replica_registries, replication_configuration

    ecr.put_replication_configuration(replicationConfiguration=replication_configuration(replica_registries(dev)))
    compute_goes_on("up", "dev")


def test_compute_that_stops_writing_a_registry_setting_is_told_it_deletes_what_else_it_holds(
        moto_aws: None, edit_env: Any) -> None:
    # An env that stops reading from another account (image_source removed) loses compute's RegistryPolicy: the
    # provider's delete is DeleteRegistryPolicy, the whole policy. The last replica removed from dev: the provider's
    # delete of the replication configuration is PutReplicationConfiguration with no rules (terraform-provider-aws
    # internal/service/ecr/replication_configuration.go, resourceReplicationConfigurationDelete). Either drops what
    # someone else put beside compute's since; the preflight read neither setting once compute stopped writing it.
    from shared.components.image_replication import (
        Registry,
        registry_policy,
        replica_registries,
        replication_configuration,
    )

    prod, dev = load_env("prod"), load_env("dev")
    ours = registry_policy(Registry.of(dev), Registry.of(prod), "aws")
    MotoAccounts.client(prod.account_id, prod.region, "ecr").put_registry_policy(policyText=json.dumps(
        {"Version": "2012-10-17", "Statement": [*ours["Statement"], org_statement(prod)]}))
    rules = replication_configuration(replica_registries(dev))["rules"]
    # moto's PutReplicationConfiguration takes one rule ("This feature is disabled"); ECR takes 10 (botocore ecr
    # ReplicationRuleList max): the registry's configuration is set in moto's backend
    from moto.ecr.models import ecr_backends

    ecr_backends[dev.account_id][dev.region].replication_config = {"rules": [*rules, {
        "destinations": [{"region": "us-east-1", "registryId": dev.account_id}],
        "repositoryFilters": [{"filter": "data-team/", "filterType": "PREFIX_MATCH"}]}]}
    for name in ("staging", "prod"):
        edit_env(name, lambda data: data["compute"].pop("image_source"))

    out = compute_goes_on("up", "prod")
    assert ("the ECR registry policy of account 333333333333 (eu-west-1) holds compute's statement, which compute no "
            "longer writes, beside statement OrgSecurityTooling: compute's `up` deletes the policy whole "
            "(DeleteRegistryPolicy)") in out
    out = compute_goes_on("up", "dev")
    assert ("the ECR replication configuration of account 111111111111 (eu-west-1) holds compute's rule, which "
            "compute no longer writes, beside a rule of repositories data-team/ to 111111111111 us-east-1: compute's "
            "`up` removes every rule (PutReplicationConfiguration with none)") in out


# -- the public gateway's certificate ------------------------------------------------------------------------------

def _gateway_with(edit_env: Any, certificate_arn: str) -> None:
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=certificate_arn))


def _gateway_with_dev_certificate(edit_env: Any) -> str:
    """dev's gateway with a certificate of dev's account (its ARN), which the tests' ACM double describes."""
    arn = f"arn:aws:acm:eu-west-1:{load_env('dev').account_id}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    _gateway_with(edit_env, arn)
    return arn


def test_a_gateway_certificate_acm_has_not_issued_stops_up_before_any_layer(
        moto_aws: None, edit_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Elastic Load Balancing answers CreateListener (and ModifyListener, for a new certificate_arn) with
    UnsupportedCertificate while the certificate is not yet ISSUED (terraform-provider-aws #26245, govuk-paas/paas-cf
    #3063): compute would stop at the listener, after the ALB, its bucket and target group were created."""
    import moto.settings

    dev = load_env("dev")
    acm = MotoAccounts.client(dev.account_id, dev.region, "acm")
    arn = acm.request_certificate(DomainName="api.example.com", ValidationMethod="DNS")["CertificateArn"]
    _gateway_with(edit_env, arn)
    error = compute_refused("dev", capsys)
    assert "environments/dev.yaml: compute.certificate_arn" in error and "PENDING_VALIDATION" in error
    # the DNS record ACM waits for, as DescribeCertificate names it
    assert "CNAME _d930b28be6c5927595552b219965053e.api.example.com." in error, error
    # a preview notes it and goes on
    out = compute_goes_on("preview", "dev")
    assert "up would be refused" in out and "PENDING_VALIDATION" in out

    # once ACM has issued it (moto issues a requested certificate after ACM_VALIDATION_WAIT seconds)
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", -1)
    out = compute_goes_on("up", "dev")
    assert f"gateway certificate {arn}: ISSUED" in out

    # a certificate the account does not hold (deleted, or a typo in its id): CreateListener's CertificateNotFound
    acm.delete_certificate(CertificateArn=arn)
    error = compute_refused("dev", capsys)
    assert "compute.certificate_arn" in error and "does not hold" in error


def test_a_gateway_certificate_is_not_read_without_a_gateway_or_compute(moto_aws: None, edit_env: Any) -> None:
    clients = Clients(roomy())
    code, out, _ = up(["up", "dev", "--yes", "--layers", "compute", "--exact"], checker(clients))
    assert code == 0 and "gateway certificate" not in out, out
    _gateway_with_dev_certificate(edit_env)
    code, out, _ = up(["up", "dev", "--yes", "--layers", "network", "--exact"], checker(clients))
    assert code == 0 and "gateway certificate" not in out, out
    assert ("dev", "acm") not in clients.moto.calls


def test_a_gateway_certificate_that_cannot_be_read_is_a_note(moto_aws: None, edit_env: Any) -> None:
    _gateway_with_dev_certificate(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(Clients(roomy(), acm=Denied("AccessDeniedException"))))
    assert code == 0 and runner.started() == ["compute"], out
    assert "note: whether ACM has issued the gateway certificate" in out and "DescribeCertificate" in out



class DescribedCertificate:
    """ACM answering DescribeCertificate with ``status`` and ``in_use_by`` (botocore acm CertificateDetail.InUseBy: the
    ARNs of the AWS resources that use it) for any ARN (moto refuses to import an expired certificate, as ACM does,
    and never expires one within a test)."""

    def __init__(self, status: str, in_use_by: Sequence[str] = ()) -> None:
        self.status = status
        self.in_use_by = list(in_use_by)

    def describe_certificate(self, CertificateArn: str) -> dict[str, Any]:
        return {"Certificate": {"CertificateArn": CertificateArn, "DomainName": "api.example.com",
                                "Status": self.status, "Type": "IMPORTED", "InUseBy": self.in_use_by}}


#: the dev gateway's load balancer as Pulumi names it (shared.gateway_names: "<service>-alb" and a random suffix)
DEV_GATEWAY_ALB = ("arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/app/gateway-alb-3f2a1b9/"
                   "50dc6c495c0c9188")


@pytest.mark.parametrize("status", ["EXPIRED", "REVOKED", "INACTIVE"])
def test_an_expired_gateway_certificate_the_gateway_serves_already_is_a_note(moto_aws: None, edit_env: Any,
                                                                             status: str) -> None:
    # the listener exists and serves it (an up changes nothing there); the expiry alarm fired before
    arn = _gateway_with_dev_certificate(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(Clients(roomy(), acm=DescribedCertificate(status, [DEV_GATEWAY_ALB]))))
    assert code == 0 and runner.started() == ["compute"], out
    assert f"compute.certificate_arn: the certificate {arn} is {status}: clients refuse" in out


@pytest.mark.parametrize("in_use_by", [[], [DEV_GATEWAY_ALB.replace("gateway-alb-", "other-alb-")]])
def test_an_expired_gateway_certificate_a_new_listener_would_take_stops_up(
        moto_aws: None, edit_env: Any, in_use_by: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """ELB's CreateListener (the gateway's first up) and ModifyListener (a new certificate_arn) answer
    CertificateNotFound for an expired certificate (terraform-provider-aws #17505), after the load balancer was
    created; and a gateway serving it would be refused by every client."""
    _gateway_with_dev_certificate(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(Clients(roomy(), acm=DescribedCertificate("EXPIRED", in_use_by))))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "is EXPIRED" in error and "gateway" in error and "CertificateNotFound" in error, error


@pytest.mark.parametrize(("status", "advice"), [("VALIDATION_TIMED_OUT", "request a new certificate"),
                                                ("FAILED", "request a new certificate")])
def test_a_gateway_certificate_acm_gave_up_on_stops_up(moto_aws: None, edit_env: Any, status: str, advice: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _gateway_with_dev_certificate(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(Clients(roomy(), acm=DescribedCertificate(status))))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert f"is {status}, not ISSUED" in error and advice.capitalize() in error, error


def test_a_gateway_certificate_pending_email_validation_names_the_approval_addresses(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A certificate requested with EMAIL validation has no ResourceRecord (botocore acm DomainValidation: EMAIL
    validation names ValidationEmails): ACM waits for a link in the mail it sent to be followed, not for a DNS record
    (moto answers every request with DNS records, so the double answers here)."""
    class EmailPending(DescribedCertificate):
        def describe_certificate(self, CertificateArn: str) -> dict[str, Any]:
            options = [{"DomainName": "api.example.com", "ValidationDomain": "example.com",
                        "ValidationStatus": "PENDING_VALIDATION", "ValidationMethod": "EMAIL",
                        "ValidationEmails": ["admin@example.com", "hostmaster@example.com"]}]
            return {"Certificate": {**super().describe_certificate(CertificateArn)["Certificate"],
                                    "DomainValidationOptions": options}}

    _gateway_with_dev_certificate(edit_env)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(Clients(roomy(), acm=EmailPending("PENDING_VALIDATION"))))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "PENDING_VALIDATION" in error and "admin@example.com, hostmaster@example.com" in error, error
    assert "api.example.com" in error and "validation email" in error, error


def test_vpc_block_public_access_stops_up_until_the_envs_vpc_is_excluded(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The account's VPC Block Public Access in block-bidirectional (botocore ec2 VpcBlockPublicAccessOptions) lets
    network's up pass and cuts all egress through the NAT after it: refused until the env's VPC is excluded, which
    needs its id, so a first up of network alone goes on with a note. A policy that allows no exclusion is said so."""
    from tests import aws_helpers

    dev = load_env("dev")
    where = (dev.account_id, dev.region)
    monkeypatch.setitem(aws_helpers.BLOCK_PUBLIC_ACCESS, where, {"InternetGatewayBlockMode": "block-bidirectional"})
    check = checker(Clients(roomy()))
    report = check.check(dev, ["network", "discovery", "broker"])
    (refusal,) = [r for r in report.refusals if "VPC Block Public Access" in r]
    assert "is block-bidirectional in eu-west-1 (the account), which cuts all internet egress" in refusal
    assert "Run `nox -s up -- dev --layers network --exact` first, exclude its VPC" in refusal
    report = check.check(dev, ["network"])
    assert not [r for r in report.refusals if "VPC Block Public Access" in r]
    assert any("once this up made the VPC, exclude it (`aws ec2 create-vpc-block-public-access-exclusion --region "
               "eu-west-1 --vpc-id <vpc> --internet-gateway-exclusion-mode allow-egress`)" in n for n in report.notes)

    ec2 = MotoAccounts.client(dev.account_id, dev.region, "ec2")
    vpc = ec2.create_vpc(CidrBlock=str(dev.network.cidr))["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "env", "Value": "dev"}, {"Key": "layer", "Value": "network"},
                                           {"Key": "managed-by", "Value": "pulumi"}])
    report = check.check(dev, ["network", "discovery", "broker"])
    assert [r for r in report.refusals if f"dev's VPC {vpc} is not excluded: `aws ec2 "
            f"create-vpc-block-public-access-exclusion --region eu-west-1 --vpc-id {vpc}" in r], report.refusals
    arn = f"arn:aws:ec2:{dev.region}:{dev.account_id}:vpc/{vpc}"
    monkeypatch.setitem(aws_helpers.BLOCK_PUBLIC_ACCESS_EXCLUSIONS, where, [
        {"ResourceArn": arn, "InternetGatewayExclusionMode": "allow-egress", "State": "create-in-progress"}])
    report = check.check(dev, ["network", "discovery", "broker"])
    assert [r for r in report.refusals if "is not excluded" in r]  # not in force yet
    monkeypatch.setitem(aws_helpers.BLOCK_PUBLIC_ACCESS_EXCLUSIONS, where, [
        {"ResourceArn": arn, "InternetGatewayExclusionMode": "allow-egress", "State": "create-complete"}])
    report = check.check(dev, ["network", "discovery", "broker"])
    assert not [r for r in report.refusals if "VPC Block Public Access" in r]
    assert f"VPC Block Public Access: {vpc} excluded" in report.lines

    # block-ingress keeps NAT egress: nothing to refuse without a public gateway
    monkeypatch.setitem(aws_helpers.BLOCK_PUBLIC_ACCESS, where, {"InternetGatewayBlockMode": "block-ingress"})
    monkeypatch.setitem(aws_helpers.BLOCK_PUBLIC_ACCESS_EXCLUSIONS, where, [])
    assert not [r for r in check.check(dev, ["network", "compute"]).refusals if "VPC Block Public Access" in r]
    # an organization's policy that allows no exclusion
    monkeypatch.setitem(aws_helpers.BLOCK_PUBLIC_ACCESS, where, {
        "InternetGatewayBlockMode": "block-bidirectional", "ExclusionsAllowed": "not-allowed",
        "ManagedBy": "declarative-policy"})
    (refusal,) = [r for r in check.check(dev, ["network"]).refusals if "VPC Block Public Access" in r]
    assert "(the organization's declarative policy)" in refusal and "allows no exclusion" in refusal
    capsys.readouterr()


def test_a_malformed_certificate_arn_is_refused_like_a_missing_one() -> None:
    """ACM answers InvalidArnException for an ARN it cannot parse: compute would fail at the HTTPS listener after the
    load balancer, its log bucket and target group."""
    from botocore.exceptions import ClientError

    from shared.orchestrate.account import AccountReport

    class BadArn:
        def describe_certificate(self, CertificateArn: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "InvalidArnException", "Message": "bad"}}, "DescribeCertificate")

    report = AccountReport()
    AwsAccountCheck(lambda env, service: BadArn())._check_gateway_certificate(load_env("dev"), ["gateway"], report)
    assert len(report.refusals) == 1 and "does not hold the certificate" in report.refusals[0], report


def test_the_preflight_counts_the_iam_roles_of_the_run_and_says_where_it_cannot(moto_aws: None) -> None:
    """The account's room for IAM roles is asked by the preflight of every up and preview whose layers create roles
    (a note, never a refusal: CreateRole beyond the quota fails a layer midway); where IAM does not say, a note says
    that the room is unknown instead of passing in silence."""
    dev = load_env("dev")
    moto_iam = MotoAccounts.client(dev.account_id, dev.region, "iam")

    class Crowded(AwsNamedIam):
        def get_account_summary(self) -> Any:
            return {"SummaryMap": {"Roles": 995, "RolesQuota": 1000}}

    class Denied(AwsNamedIam):
        def get_account_summary(self) -> Any:
            raise client_error("AccessDenied", "not authorized", "GetAccountSummary")

    class Partial(AwsNamedIam):
        def get_account_summary(self) -> Any:
            return {"SummaryMap": {"Users": 3}}

    report = checker(Clients(roomy(), iam=Crowded(moto_iam))).check(dev, ["compute"])
    assert report.refusals == [], report.refusals
    assert any(note.startswith("IAM roles: account 111111111111 holds 995 of the 1000") for note in report.notes)
    assert "IAM roles: the account holds 995 of 1000; dev's layers of the run create compute 8" in report.lines
    report = checker(Clients(roomy(), iam=Denied(moto_iam))).check(dev, ["compute"])
    assert any(note.startswith("IAM roles: how many the account holds is unknown (GetAccountSummary")
               for note in report.notes), report.notes
    report = checker(Clients(roomy(), iam=Partial(moto_iam))).check(dev, ["compute"])
    assert "IAM roles: GetAccountSummary answered without Roles and RolesQuota" in report.notes
