"""Real boto3 calls against moto (no network): one moto account per env, reached like a real deployer.

The ``moto_aws`` fixture (conftest.py) starts moto for a test. :class:`MotoAccounts` is a
:data:`shared.images.ClientFactory` that reaches each env's account the way a multi-account
deployer does (STS AssumeRole into it; moto then answers in that account), or, with ``caller`` set,
always with one account's credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared import images as findings  # what the orchestrator's image checks find
from shared.components.compute import cluster_name
from shared.components.ecr import repository_name
from shared.envs import EnvConfig
from shared.images import AwsAccessError, profile_var
from shared.orchestrate.account import AccountReport, LinkedRole
from shared.orchestrate.interfaces import ForeignResources, VpcScope
from shared.release_tags import TagResult


def create_role_boundaries(env_names: Sequence[str] = ("dev", "staging", "prod")) -> None:
    """The role boundary of each env in its account (moto), as an administrator creates (or updates) it before ``up``
    (README, "A fresh account, in order", step 4; the account preflight refuses ``up`` without it)."""
    from shared.deploy_role import boundary_policy
    from shared.envs import load_env

    for name in env_names:
        env = load_env(name)
        policy = boundary_policy(env)
        iam = MotoAccounts.client(env.account_id, env.region, "iam")
        try:
            iam.create_policy(PolicyName=policy.name, PolicyDocument=json.dumps(policy.document))
        except iam.exceptions.EntityAlreadyExistsException:  # the env file changed (its region): as it prints now
            iam.create_policy_version(PolicyArn=f"arn:aws:iam::{env.account_id}:policy/{policy.name}",
                                      PolicyDocument=json.dumps(policy.document), SetAsDefault=True)


def count_profile_assumptions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env_name: str) -> list[str]:
    """Give ``env_name`` a profile with ``role_arn`` (PLATFORM_AWS_PROFILE_<ENV>) and return the list that moto's
    STS AssumeRole appends the role to, once per call. botocore's AssumeRoleProvider assumes the role for each new
    boto3 Session (and asks for the MFA code of an ``mfa_serial`` profile each time, getpass)."""
    from moto.sts.models import STSBackend

    config = tmp_path / "aws-config"
    config.write_text("[profile base]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n"
                      f"[profile {env_name}-deploy]\nrole_arn = arn:aws:iam::111111111111:role/deployer\n"
                      "source_profile = base\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv(profile_var(env_name), f"{env_name}-deploy")
    assumed: list[str] = []
    original = STSBackend.assume_role

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        assumed.append(str(kwargs.get("role_arn", args[0] if args else "")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(STSBackend, "assume_role", counting)
    return assumed


class MotoAccounts:
    """Clients for an env in its own region, with credentials of its account (or of ``caller``'s)."""

    def __init__(self, caller: str | None = None) -> None:
        self.caller = caller
        self.calls: list[tuple[str, str]] = []

    def __call__(self, env: EnvConfig, service: str) -> Any:
        self.calls.append((env.name, service))
        return self.client(self.caller or env.account_id, env.region, service)

    @staticmethod
    def client(account_id: str, region: str, service: str) -> Any:
        credentials = boto3.client("sts", region_name=region).assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/deployer", RoleSessionName="platform-tests")["Credentials"]
        client = boto3.client(service, region_name=region, aws_access_key_id=credentials["AccessKeyId"],
                              aws_secret_access_key=credentials["SecretAccessKey"],
                              aws_session_token=credentials["SessionToken"])
        if service == "ecr":
            client.meta.events.register("before-call.ecr.DescribeImageReplicationStatus",
                                        replication_status_answer(account_id, region))
        if service == "ec2":
            client.meta.events.register("before-call.ec2.CreateVpc", dry_run_answer)
            client.meta.events.register("before-call.ec2.DescribeVpcBlockPublicAccessOptions",
                                        block_public_access_answer(account_id, region))
            client.meta.events.register("before-call.ec2.DescribeVpcBlockPublicAccessExclusions",
                                        block_public_access_exclusions_answer(account_id, region))
        if service == "ecs":
            client.meta.events.register("before-call.ecs.ListServiceDeployments",
                                        service_deployments_answer(account_id, region))
        return client


#: What ECR DescribeImageReplicationStatus answers (moto lacks it): (source account, region, repository, digest)
#: -> its replicationStatuses; an image not listed has none (it was never replicated).
REPLICATION_STATUSES: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}


class _Answered:
    status_code = 200


#: (account, region) -> its VpcBlockPublicAccessOptions (botocore ec2: InternetGatewayBlockMode, ExclusionsAllowed,
#: ManagedBy), which moto lacks; absent: off, as in a new account. Tests set entries with monkeypatch.
BLOCK_PUBLIC_ACCESS: dict[tuple[str, str], dict[str, str]] = {}
#: (account, region) -> its VpcBlockPublicAccessExclusions (ResourceArn, InternetGatewayExclusionMode, State)
BLOCK_PUBLIC_ACCESS_EXCLUSIONS: dict[tuple[str, str], list[dict[str, str]]] = {}


def block_public_access_answer(account_id: str, region: str) -> Any:
    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        options = BLOCK_PUBLIC_ACCESS.get((account_id, region), {})
        return _Answered(), {"VpcBlockPublicAccessOptions": {
            "AwsAccountId": account_id, "AwsRegion": region, "State": "default-state",
            "InternetGatewayBlockMode": "off", "ExclusionsAllowed": "allowed", "ManagedBy": "account", **options}}

    return answer


def block_public_access_exclusions_answer(account_id: str, region: str) -> Any:
    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return _Answered(), {"VpcBlockPublicAccessExclusions": BLOCK_PUBLIC_ACCESS_EXCLUSIONS.get((account_id, region),
                                                                                                  [])}

    return answer


def dry_run_answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
    """A botocore ``before-call`` handler answering an EC2 request with ``DryRun`` as EC2 does where it would be
    allowed (HTTP 412 DryRunOperation, EC2 API reference "DryRun"): moto's CreateVpc ignores DryRun and creates."""
    if str(params["body"].get("DryRun", "")).lower() != "true":
        return None
    return type("DryRun", (), {"status_code": 412})(), {"Error": {
        "Code": "DryRunOperation", "Message": "Request would have succeeded, but DryRun flag is set."}}


def replication_status_answer(account_id: str, region: str) -> Any:
    """A botocore ``before-call`` handler answering DescribeImageReplicationStatus from REPLICATION_STATUSES
    (the caller's own registry; another registryId is AccessDenied, as for a real cross-account call)."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        request = json.loads(params["body"])
        if request.get("registryId", account_id) != account_id:
            return type("Denied", (), {"status_code": 400})(), {
                "Error": {"Code": "AccessDeniedException", "Message": "not your registry"}}
        digest = request["imageId"]["imageDigest"]
        return _Answered(), {"repositoryName": request["repositoryName"], "imageId": request["imageId"],
                             "replicationStatuses": REPLICATION_STATUSES.get(
                                 (account_id, region, request["repositoryName"], digest), [])}

    return answer


#: (account, region, cluster, ECS service) -> its service deployments, as ListServiceDeployments briefs them (moto
#: implements neither ListServiceDeployments nor the deployments ECS records). Tests set entries with monkeypatch.
SERVICE_DEPLOYMENTS: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
#: Set (monkeypatch) to an error code to answer ListServiceDeployments with it (a region without the API).
SERVICE_DEPLOYMENTS_ERROR: dict[str, str] = {}


def service_deployments_answer(account_id: str, region: str) -> Any:
    """A botocore ``before-call`` handler answering ListServiceDeployments from :data:`SERVICE_DEPLOYMENTS`: its
    ``createdAt.after`` filter applied (epoch seconds on the wire), one page of at most ``maxResults`` (20 by
    default, the API's), newest first."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        if SERVICE_DEPLOYMENTS_ERROR:
            return type("Refused", (), {"status_code": 400})(), {
                "Error": {"Code": SERVICE_DEPLOYMENTS_ERROR["code"], "Message": "not supported"}}
        request = json.loads(params["body"])
        after = request.get("createdAt", {}).get("after")
        listed = [item for item in SERVICE_DEPLOYMENTS.get(
            (account_id, region, request.get("cluster", "default"), request["service"]), [])
                  if after is None or item["createdAt"].timestamp() > float(after)]
        listed.sort(key=lambda item: item["createdAt"], reverse=True)
        start = int(request.get("nextToken") or 0)
        size = int(request.get("maxResults") or 20)
        page: dict[str, Any] = {"serviceDeployments": listed[start:start + size]}
        if start + size < len(listed):
            page["nextToken"] = str(start + size)
        return _Answered(), page

    return answer


#: Image configs by digest: what GetDownloadUrlForLayer's pre-signed URL would serve (moto implements neither).
CONFIGS: dict[str, bytes] = {"sha256:" + "0" * 64: json.dumps({"os": "linux", "architecture": "amd64"}).encode()}


def read_config_blob(ecr: Any, repository: str, digest: str) -> bytes:
    """shared.images.read_blob on moto: the blob of :data:`CONFIGS` (the ``moto_aws`` fixture installs it)."""
    return CONFIGS[digest]


MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:" + "0" * 64},
    "layers": []})


def create_repositories(env: EnvConfig, services: list[str]) -> None:
    """What compute's first (targeted) step creates: the env's repositories, empty."""
    ecr = MotoAccounts.client(env.account_id, env.region, "ecr")
    for service in services:
        create_repository(ecr, env, service)


def create_repository(ecr: Any, env: EnvConfig, service: str) -> None:
    """``service``'s repository as compute of ``env`` creates it: KMS-encrypted, tags IMMUTABLE
    (shared.components.ecr), with the provider's default tags (:meth:`EnvConfig.common_tags`)."""
    ecr.create_repository(repositoryName=repository_name(service), imageTagMutability="IMMUTABLE",
                          encryptionConfiguration={"encryptionType": "KMS"},
                          tags=[{"Key": key, "Value": value} for key, value in env.common_tags("compute").items()])


def push_image(env: EnvConfig, service: str, digest: str, tag: str | None = None, manifest: str = MANIFEST) -> None:
    """An image of ``digest`` in the env's repository for ``service`` (created when missing)."""
    ecr = MotoAccounts.client(env.account_id, env.region, "ecr")
    repository = repository_name(service)
    try:
        create_repository(ecr, env, service)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    ecr.put_image(repositoryName=repository, imageManifest=manifest, imageDigest=digest,
                  imageTag=tag or f"release-{digest[7:19]}")


def run_service(env: EnvConfig, service: str, digest: str, *, ecs_name: str | None = None,
                settled: bool = True, monkeypatch: pytest.MonkeyPatch | None = None, desired: int = 1) -> str:
    """An ECS service in the env's cluster whose PRIMARY deployment runs ``digest``; its task definition's ARN.

    moto does not schedule tasks: MOTO_ECS_SERVICE_RUNNING (moto's documented switch) makes a new
    service's deployment COMPLETED with that many running tasks; without it the rollout stays
    IN_PROGRESS with nothing running. ``desired`` 0: a service resting at 0 tasks (its deployment COMPLETED, none
    running).
    """
    if monkeypatch is not None:
        if settled:
            monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(desired))
        else:
            monkeypatch.delenv("MOTO_ECS_SERVICE_RUNNING", raising=False)
    ecs = MotoAccounts.client(env.account_id, env.region, "ecs")
    cluster = cluster_name(env.name)
    ecs.create_cluster(clusterName=cluster)
    image = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/{repository_name(service)}@{digest}"
    task = ecs.register_task_definition(
        family=f"{env.name}-{service}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="256", memory="512", containerDefinitions=[{"name": service, "image": image, "essential": True}],
    )["taskDefinition"]
    ecs.create_service(cluster=cluster, serviceName=ecs_name or service,
                       taskDefinition=task["taskDefinitionArn"], desiredCount=desired)
    return str(task["taskDefinitionArn"])


class ReleasedEverywhere:
    """An orchestrator ``ImageChecks`` for runs that are not about images: the credentials are the
    env's, every released image is in its registry, and ECS runs the release."""

    def verify(self, env: EnvConfig) -> None:
        return None

    def missing(self, env: EnvConfig, images: Mapping[str, str]) -> list[findings.MissingImage]:
        return []

    def foreign(self, env: EnvConfig) -> list[findings.ForeignRepository]:
        return []

    def wrong_platforms(self, env: EnvConfig, images: Mapping[str, str]) -> list[findings.WrongPlatform]:
        return []

    def oversized(self, env: EnvConfig, images: Mapping[str, str]) -> list[findings.OversizedImage]:
        return []

    def held(self, env: EnvConfig, services: Sequence[str] | None = None) -> list[findings.HeldRepository]:
        return []

    def held_buckets(self, env: EnvConfig, buckets: Sequence[str]) -> list[findings.HeldBucket]:
        return []

    def deletion_protected(self, env: EnvConfig, load_balancers: Sequence[str]) -> list[str]:
        return []

    def running(self, env: EnvConfig, services: Sequence[str]) -> list[findings.RunningImage]:
        return [findings.RunningImage(service, service, env.release.images[service]) for service in services]

    def rollbacks(self, env: EnvConfig, services: Sequence[str], since: datetime) -> findings.RollbackReport:
        return findings.RollbackReport([])

    def registry_targets(self, env: EnvConfig) -> list[str]:
        return []

    def program_buckets(self, env: EnvConfig) -> list[str]:
        return []

    def program_load_balancers(self, env: EnvConfig) -> list[str]:
        return []

    def tag_release(self, env: EnvConfig, stop: Callable[[], bool] | None = None) -> list[TagResult]:
        return []


class ImagesUnread(ReleasedEverywhere):
    """An orchestrator ``ImageChecks`` for tests that inject none (conftest.py makes it the default): no registry
    can be read, as with credentials that may not, so no test reaches real AWS."""

    def verify(self, env: EnvConfig) -> None:
        raise AwsAccessError(f"{env.name}: the tests reach no AWS (inject images= to check images)")


class AccountReady:
    """An orchestrator ``AccountCheck`` for runs that are not about the account: every service-linked role is
    there and every quota fits (conftest.py makes it the default, so no test reaches real AWS)."""

    def check(self, env: EnvConfig, layers: Sequence[str]) -> AccountReport:
        return AccountReport()

    def create(self, env: EnvConfig, roles: Sequence[LinkedRole]) -> list[str]:
        assert not roles, "AccountReady reported no missing role"
        return []

    def foreign_resources(self, env: EnvConfig, scope: VpcScope) -> ForeignResources:
        return ForeignResources()  # the env's VPC holds only what its layers made

    def program_secrets(self, env: EnvConfig, layers: Sequence[str]) -> AccountReport:
        return AccountReport()  # every secret a program reads is there

    def destroy_blockers(self, env: EnvConfig, layers: Sequence[str],
                         held: Mapping[str, Sequence[str] | None]) -> AccountReport:
        return AccountReport()  # nothing outside the stacks holds a delete back

    def brokers(self, env: EnvConfig) -> AccountReport:
        return AccountReport()  # the account's brokers unread: nothing is taken for lost


def archive_images(client: Any, statuses: Mapping[str, str]) -> Any:
    """Make a moto ECR ``client`` answer as ECR does for images in the archive storage class (moto knows none):
    ``statuses`` maps a digest to ARCHIVED or ACTIVATING. As the API reference documents it, strictly: DescribeImages
    and ListImages answer ACTIVE images only unless their filter's ``imageStatus`` names another status (botocore ecr
    DescribeImagesFilter, ListImagesFilter: "If not specified, only images with ACTIVE status are returned"), and
    ListImages with ``ANY`` answers all of them."""
    asked: dict[str, str] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        asked["status"] = str((params.get("filter") or {}).get("imageStatus", "ACTIVE"))

    def answered(status: str) -> bool:
        return asked["status"] in ("ANY", status)

    def described(parsed: dict[str, Any], **_: Any) -> None:
        parsed["imageDetails"] = [{**detail, "imageStatus": statuses.get(detail["imageDigest"], "ACTIVE")}
                                  for detail in parsed.get("imageDetails", [])
                                  if answered(statuses.get(detail["imageDigest"], "ACTIVE"))]

    def listed(parsed: dict[str, Any], **_: Any) -> None:
        parsed["imageIds"] = [item for item in parsed.get("imageIds", [])
                              if answered(statuses.get(item.get("imageDigest", ""), "ACTIVE"))]

    for operation, handler in (("DescribeImages", described), ("ListImages", listed)):
        client.meta.events.register(f"before-parameter-build.ecr.{operation}", remember)
        client.meta.events.register(f"after-call.ecr.{operation}", handler)
    return client


def patched_client(module: Any, service: str, monkeypatch: pytest.MonkeyPatch, region: str = "eu-west-1") -> Any:
    """A boto3 client of ``service`` (moto, where the test runs under the ``moto_aws`` fixture) that ``module``'s
    ``_client(service, region)`` answers with, whatever it asks for."""
    client = boto3.client(service, region_name=region)
    monkeypatch.setattr(module, "_client", lambda service, region: client)
    return client
