"""Released images against real AWS: are they in the env's registry, and what does ECS run?

Two questions asked with boto3 in the env's own account and region:

- :func:`missing_images` -- every released image exists in the ECR registry the env pulls from
  (``DescribeImages`` with ``imageIds=[{imageDigest}]``, per repository). The orchestrator checks it
  between compute's two steps, ``promote`` in the target env before writing anything.
- :func:`running_images` -- what each ECS service of the env actually runs: ``DescribeServices`` in
  the env's cluster, the PRIMARY deployment's task definition, ``DescribeTaskDefinition``, the
  service container's image digest. Promotion's deployed gate compares it with the release, and the
  orchestrator after compute's update (a circuit-breaker rollback ends "steady" too).

Credentials: each env is reached through its own boto3 session: the profile named by
``PLATFORM_AWS_PROFILE_<ENV>`` (e.g. ``PLATFORM_AWS_PROFILE_STAGING``) when set, else the default
credential chain; the ``pulumi`` subprocesses of a run take the same (:func:`pulumi_credentials`).
:func:`verify_account` refuses (exit 2) when those credentials belong to another
account than the env's ``account_id``. Every AWS call goes through a :data:`ClientFactory`, so tests
run the same code on moto.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from shared.envs import EnvConfig, is_digest
from shared.errors import PlatformError
from shared.fargate import IMAGE_PLATFORM

ClientFactory = Callable[[EnvConfig, str], Any]
"""(env, AWS service name such as "ecr") -> a boto3 client in the env's region and credentials."""

PROFILE_VAR_PREFIX = "PLATFORM_AWS_PROFILE_"
#: The tag of a task definition revision an operator registered by hand to roll a service back (``python -m
#: shared.oneoff --rollback``; its value says when and by whom): compute's ``up`` refuses to deploy another image
#: over it (shared.orchestrate.images.refuse_over_hand_rollbacks). A tag key may hold ``:`` (botocore ecs, Tag.key).
HAND_ROLLBACK_TAG = "platform:hand-rollback"
DESCRIBE_SERVICES_LIMIT = 10  # DescribeServicesRequest.services: "up to 10 services" (botocore ecs model)


class AwsAccessError(PlatformError):
    """The AWS credentials for an env are missing, of another account, or not allowed (exit 2)."""

    exit_code = 2


def profile_var(env_name: str) -> str:
    return PROFILE_VAR_PREFIX + env_name.upper().replace("-", "_")


#: What the AWS SDKs take before a profile named only by ``AWS_PROFILE``: the static keys of the environment
#: (configure-aws-credentials exports them) and a web identity token. botocore drops its EnvProvider when a session is
#: given a profile (credentials.py create_credential_resolver: "An explicitly provided profile will negate an
#: EnvProvider"), but the Go SDK the CLI and the AWS provider use prefers these over ``AWS_PROFILE`` (aws-sdk-go
#: CHANGELOG for #2727: "Environment credentials have precedence over shared config credentials even if the AWS_PROFILE
#: environment credentials are present"). Empty is unset for both (botocore EnvProvider, aws-sdk-go-v2 envconfig).
#: The Go SDK also reads the legacy AWS_ACCESS_KEY / AWS_SECRET_KEY where AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
#: are empty (aws-sdk-go-v2 config/env_config.go credAccessEnvKeys, credSecretEnvKeys); botocore never does.
AMBIENT_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
                           "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


#: The AWS SDKs' variables naming a file, which a ``pulumi`` subprocess (run in ``stacks/<layer>``) gets absolute.
AWS_FILE_VARS = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE", "AWS_WEB_IDENTITY_TOKEN_FILE")


def pulumi_credentials(env_name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a ``pulumi`` subprocess for ``env_name`` gets so that it uses the credentials the orchestrator's
    own AWS calls use (:class:`SessionClients`): with ``PLATFORM_AWS_PROFILE_<ENV>`` set, that profile as
    ``AWS_PROFILE`` and the ambient credential variables emptied (the profile wins as it does for boto3's
    ``profile_name``); unset, nothing (both take the default chain of the shell)."""
    profile = environ.get(profile_var(env_name)) or None
    if profile is None:
        return {}
    return {"AWS_PROFILE": profile, **dict.fromkeys(AMBIENT_CREDENTIAL_VARS, "")}


class SessionClients:
    """The real :data:`ClientFactory`: clients in the env's region and credentials (its profile variable, else the
    default chain), made with ``config`` (a ``botocore.config.Config``) when given. One boto3 session per profile
    and region for the factory's life (one run or check): each new session resolves its credentials again, and for
    a profile with ``role_arn`` that is an STS AssumeRole (and a prompt for the MFA code of an ``mfa_serial``
    profile; botocore's AssumeRoleProvider) per session."""

    def __init__(self, config: Any = None) -> None:
        self.config = config
        self._sessions: dict[tuple[str | None, str], Any] = {}

    def __call__(self, env: EnvConfig, service: str) -> Any:
        import boto3

        profile = os.environ.get(profile_var(env.name)) or None
        session = self._sessions.get((profile, env.region))
        if session is None:
            session = boto3.session.Session(profile_name=profile, region_name=env.region)
            self._sessions[(profile, env.region)] = session
        return session.client(service, config=self.config)


def aws_errors() -> tuple[type[BaseException], ...]:
    """What a boto3 call raises when AWS (or the way to it) answers no: ``except aws_errors() as error``."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def aws_error_code(error: BaseException) -> str:
    """The ``Error.Code`` of a botocore ClientError (empty for any other exception)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _credentials_hint(env: EnvConfig) -> str:
    return (f"use credentials of account {env.account_id} for {env.name}: set {profile_var(env.name)} to an AWS "
            f"profile of that account (or AWS_PROFILE / the AWS_* variables when one account is enough)")


def _sso_login_hint(env: EnvConfig, error: BaseException) -> str | None:
    """What to run when ``error`` is an IAM Identity Center profile without a live session: never logged in here
    (botocore SSOTokenLoadError), or its token expired and could not be refreshed (TokenRetrievalError,
    UnauthorizedSSOTokenError)."""
    from botocore.exceptions import SSOError, TokenRetrievalError

    if not isinstance(error, SSOError | TokenRetrievalError):
        return None
    profile = os.environ.get(profile_var(env.name)) or os.environ.get("AWS_PROFILE") or "<profile>"
    return (f"the profile's IAM Identity Center (SSO) session has ended or was never started on this machine: run "
            f"`aws sso login --profile {profile}` and try again")


def verify_account(env: EnvConfig, clients: ClientFactory) -> None:
    """STS GetCallerIdentity: the credentials for ``env`` must belong to ``env.account_id`` (exit 2)."""
    try:
        account = str(clients(env, "sts").get_caller_identity()["Account"])
    except aws_errors() as error:
        raise AwsAccessError(f"{env.name}: cannot tell which AWS account the credentials belong to ({error}); "
                             f"{_sso_login_hint(env, error) or _credentials_hint(env)}") from None
    if account != env.account_id:
        raise AwsAccessError(f"{env.name}: the AWS credentials belong to account {account}, but "
                             f"environments/{env.name}.yaml says account_id {env.account_id}; nothing was "
                             f"changed. {_credentials_hint(env)}")


# -- images in the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingImage:
    service: str
    reference: str
    """The release's digest (or tag)."""
    repository_uri: str
    reason: str
    how: str
    """What puts it there: a push, replication, or a one-time copy."""

    def describe(self) -> str:
        return f"{self.service}: {self.reference} is not in {self.repository_uri} ({self.reason}); {self.how}"


def replication_status(env: EnvConfig, service: str, digest: str, clients: ClientFactory) -> str | None:
    """What ``env``'s image source says of its replication of ``digest`` to ``env`` (ECR
    DescribeImageReplicationStatus in the source's registry), described; None when it cannot be asked (no
    source, or no credentials for the source's account here: this is an explanation, never a gate)."""
    from shared.components.ecr import repository_name
    from shared.components.image_replication import image_source
    from shared.envs import load_env

    source = image_source(env)
    if source is None or not is_digest(digest):
        return None
    try:
        statuses = clients(load_env(source.env_name), "ecr").describe_image_replication_status(
            registryId=source.account_id, repositoryName=repository_name(service),
            imageId={"imageDigest": digest})["replicationStatuses"]
    except aws_errors():
        return None  # another account's credentials (AccessDenied), or the source lacks the image too
    mine = [s for s in statuses if s.get("registryId") == env.account_id and s.get("region") == env.region]
    if not mine:
        return (f"{source.env_name} reports no replication of it to {env.name}: it was pushed before "
                f"{source.env_name}'s replication reached {env.name}")
    status, failure = str(mine[0].get("status", "")), mine[0].get("failureCode")
    if status == "IN_PROGRESS":
        return f"{source.env_name}'s replication of it to {env.name} is still IN_PROGRESS: retry in a few minutes"
    if status == "FAILED":
        return (f"{source.env_name}'s replication of it to {env.name} FAILED ({failure or 'no failure code'}; "
                f"{env.name}'s repository and registry policy come from its compute `up`)")
    return (f"{source.env_name}'s replication of it to {env.name} is {status}, so it was removed from "
            f"{env.name} since (its release tag keeps it once {env.name}'s `up` has run)")


def _how_to_provide(env: EnvConfig, service: str, reference: str, uri: str, clients: ClientFactory) -> str:
    from shared.components.ecr import release_tag, repository_name
    from shared.components.image_replication import image_source, replica_registries

    source = image_source(env)
    if source is None:
        push = (f"push it to {uri} with a tag (`docker push {uri}:<tag>`); its digest must be {reference}")
        if not is_digest(reference):
            return f"build the image and {push}"
        # a destroy deleted the repositories with their images (they hold compute's KMS key, deleted with them): a
        # rebuild gives another digest, a digest-preserving copy the same one
        tag = release_tag(reference, env.name)
        copies = [f"`crane copy {replica.host}/{repository_name(service)}@{reference} {uri}:{tag}` (from "
                  f"{replica.env_name}, where {env.name}'s replication copied each push)"
                  for replica in replica_registries(env)]
        kept = " or ".join([*copies, f"`crane copy <where you kept it>@{reference} {uri}:{tag}`"])
        return (f"build the image and {push} (a rebuild of a released image gives another digest: name the new one "
                f"in environments/{env.name}.yaml's release.images instead); where a destroy deleted it with "
                f"{env.name}'s repositories, copy it back, digest unchanged: {kept}")
    status = replication_status(env, service, reference, clients)
    source_uri = f"{source.host}/{repository_name(service)}"
    # The copy gets its release tag at once: the lifecycle policy never expires a release-tagged image, while
    # one under another tag counts against "keep the last N" until `up` tags it (and tags are IMMUTABLE, so
    # a hand-picked one could also block the tag a later replicated push carries).
    tag = release_tag(reference, env.name) if is_digest(reference) else "<tag>"
    return (f"{status + '; ' if status else ''}{env.name} receives images by ECR replication from "
            f"{source.env_name} ({source_uri}); AWS replicates only images pushed after replication to {env.name} was "
            f"configured (by {source.env_name}'s compute `up` since environments/{env.name}.yaml named it as "
            f"image_source with this account and region) and its repositories existed, so copy it once, digest "
            f"unchanged: `crane copy {source_uri}@{reference} {uri}:{tag}`, or push it to {source.env_name} again "
            f"under a tag it does not carry yet, which replication then copies: `crane tag {source_uri}@{reference} "
            f"repush-<date>` ({source.env_name}'s tags are IMMUTABLE: a push under a tag it already has is refused)")


def _how_to_restore(env: EnvConfig, repository: str, digest: str, status: str) -> str:
    if status == "ACTIVATING":
        return (f"it is being restored from the archive: run `nox -s up -- {env.name}` again once "
                f"`aws ecr describe-images` shows it ACTIVE")
    return (f"restore it: `aws ecr update-image-storage-class --region {env.region} --repository-name {repository} "
            f"--image-id imageDigest={digest} --target-storage-class STANDARD`, then run `nox -s up -- {env.name}` "
            "again once it is ACTIVE")


#: the statuses of an image in ECR's archive storage class: stored, not pullable (botocore ecr ImageStatus)
INACTIVE_STATUSES = ("ARCHIVED", "ACTIVATING")


def _inactive(ecr: Any, env: EnvConfig, repository: str, image_id: Mapping[str, str]) -> dict[str, str] | None:
    """``image_id`` (its digest or tag) as ListImages finds it among the repository's archived or restoring images,
    with its ``imageStatus``; None where it is neither (ListImages, like DescribeImages, answers ACTIVE images only
    unless its filter names another status)."""
    for status in INACTIVE_STATUSES:
        try:
            for page in ecr.get_paginator("list_images").paginate(
                    registryId=env.account_id, repositoryName=repository, filter={"imageStatus": status}):
                for item in page.get("imageIds", []):
                    if all(item.get(key) == value for key, value in image_id.items()):
                        return {"imageDigest": str(item.get("imageDigest")), "imageStatus": status}
        except aws_errors() as error:
            raise AwsAccessError(f"{env.name}: ECR ListImages of {repository} failed ({error}); the caller needs "
                                 "ecr:ListImages on the platform's repositories") from None
    return None


#: why a release's image is missing when its service's repository is
NO_REPOSITORY = "the repository does not exist yet"


def missing_images(env: EnvConfig, images: Mapping[str, str], clients: ClientFactory) -> list[MissingImage]:
    """Which of ``images`` (service -> digest or tag) the env's registry cannot serve, in ``images`` order.

    ``ImageNotFoundException``/``RepositoryNotFoundException`` mean absent; an image whose
    ``imageStatus`` is not ACTIVE (archived) cannot be pulled either. Any other AWS error is an
    :class:`AwsAccessError`.
    """
    from shared.components.ecr import repository_name
    from shared.components.image_replication import Registry, image_source

    ecr = clients(env, "ecr")
    host = Registry.of(env).host
    missing = []
    for service, reference in images.items():
        repository = repository_name(service)
        uri = f"{host}/{repository}"
        image_id = {"imageDigest": reference} if is_digest(reference) else {"imageTag": reference}
        reason, how = "", ""
        details: list[Mapping[str, Any]] = []
        try:
            details = ecr.describe_images(registryId=env.account_id, repositoryName=repository,
                                          imageIds=[image_id])["imageDetails"]
        except aws_errors() as error:
            code = aws_error_code(error)
            if code == "RepositoryNotFoundException":
                reason = NO_REPOSITORY
            elif code != "ImageNotFoundException":
                raise AwsAccessError(f"{env.name}: ECR DescribeImages on {repository} failed ({error}); the caller "
                                     "needs ecr:DescribeImages on the platform's repositories") from None
        if not details and not reason:
            reason = "no such image"
            # DescribeImages answers ACTIVE images only unless its filter asks for others (botocore ecr
            # DescribeImagesFilter.imageStatus: "If not specified, only images with ACTIVE status are returned"),
            # and whether that holds for a lookup by imageIds is not documented: an archived one is looked up so.
            found = _inactive(ecr, env, repository, image_id)
            details = [found] if found is not None else []
        status = str(details[0].get("imageStatus", "ACTIVE")) if details else ""
        if details and status != "ACTIVE":
            # The image is there, in the archive storage class: restored in place, not pushed or replicated
            # again (botocore ecr model: ImageStatus ACTIVE | ARCHIVED | ACTIVATING, UpdateImageStorageClass).
            reason = f"the image is {status}"
            how = _how_to_restore(env, repository, str(details[0].get("imageDigest", reference)), status)
        if reason:
            how = how or _how_to_provide(env, service, reference, uri, clients)
            if reason == NO_REPOSITORY and image_source(env) is not None:
                # a service new to the env: replication cannot create its repository (the registry policy grants
                # ecr:ReplicateImage alone), and a copy into a repository that is not there fails (NAME_UNKNOWN)
                how = (f"{env.name}'s compute has not created {repository} yet (the service is new to {env.name}): "
                       f"deploy {env.name} with this code first (`nox -s up -- {env.name}`; in CI, deploy-promoted.yml "
                       f"run by hand for {env.name}), which creates the repository and runs nothing of the service "
                       f"while {env.name}'s release lacks it; then {how}")
            missing.append(MissingImage(service, reference, uri, reason, how))
    return missing


# -- the platform an image runs on ----------------------------------------------------------------------

#: Multi-platform indexes (OCI image index, Docker manifest list): one manifest per platform.
INDEX_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
#: What BatchGetImage may return; a multi-architecture index must come back as itself (asked without it, ECR
#: answers with a different manifest, and its digest is not the release's).
MANIFEST_MEDIA_TYPES = (
    INDEX_MEDIA_TYPES[0],
    "application/vnd.oci.image.manifest.v1+json",
    INDEX_MEDIA_TYPES[1],
    "application/vnd.docker.distribution.manifest.v2+json",
)


def is_index(manifest: Mapping[str, Any]) -> bool:
    """Whether a parsed manifest is a multi-platform index (its ``manifests`` name one manifest per platform); an
    index may omit ``mediaType`` (OCI image spec, image index: the property is optional), so its list tells too."""
    return manifest.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in manifest


BlobReader = Callable[[Any, str, str], bytes]
"""(ECR client, repository, blob digest) -> the blob's bytes."""
#: What :func:`_judge_released` finds of one image (its platforms, its size)
_Judged = TypeVar("_Judged")


def _client_verify(client: Any) -> bool | str:
    """The ``verify`` botocore's HTTP session of ``client`` holds: the client's ``verify=``, else the profile's
    ``ca_bundle`` or AWS_CA_BUNDLE (botocore session.create_client: get_config_variable('ca_bundle')), else
    REQUESTS_CA_BUNDLE (endpoint.py, _get_verify_value), else True (certifi's bundle, httpsession.get_cert_path).
    botocore has no public accessor; a client without one (a test's stand-in) gets True."""
    verify = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None), "_verify", True)
    return verify if isinstance(verify, bool | str) else True


def read_blob(ecr: Any, repository: str, digest: str) -> bytes:
    """A blob of the repository (an image config): GetDownloadUrlForLayer answers with a pre-signed URL of it
    (botocore ecr model: "Retrieves the pre-signed Amazon S3 download URL corresponding to an image layer")."""
    import ssl
    import urllib.request

    from botocore.httpsession import get_cert_path

    url = str(ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest)["downloadUrl"])
    if not url.startswith("https://"):
        raise ValueError(f"ECR answered a download URL that is not https: {url[:40]}")
    # The CAs botocore verified ECR with, not the interpreter's store: python.org's macOS Python has none until its
    # "Install Certificates" command ran, and a TLS-inspecting proxy's CA reaches boto3 as the profile's ca_bundle,
    # AWS_CA_BUNDLE or REQUESTS_CA_BUNDLE only. Host names are checked (create_default_context).
    trust = ssl.create_default_context(cafile=get_cert_path(_client_verify(ecr)) or None)
    with urllib.request.urlopen(url, timeout=60, context=trust) as response:
        return bytes(response.read())


@dataclass(frozen=True)
class WrongPlatform:
    service: str
    reference: str
    repository_uri: str
    found: str
    """The platform(s) the image provides, e.g. "linux/arm64"."""
    absent: str = ""
    """The digest of the index entry naming the task's platform whose manifest the registry does not hold, if that is
    what is wrong: the index itself is there (:func:`missing_images` finds it), the image a task pulls is not."""
    platform: tuple[str, str] = IMAGE_PLATFORM
    """The OCI platform the service's tasks run (:func:`task_platform`)."""

    def reason(self) -> str:
        """What is wrong and what to do, without the service's name."""
        from shared.fargate import CPU_ARCHITECTURES, OPERATING_SYSTEM_FAMILY

        wanted = "/".join(self.platform)
        if self.absent:
            return (f"{self.repository_uri}@{self.reference} is an image index whose {wanted} manifest "
                    f"{self.absent} {_LOST_MANIFEST}, so every task would stop with CannotPullContainerError; "
                    f"{whole_index_again(self.platform)}")
        return (f"{self.repository_uri}@{self.reference} is {self.found}, but the task definitions ask Fargate for "
                f"{OPERATING_SYSTEM_FAMILY}/{CPU_ARCHITECTURES[self.platform[1]]}, which runs {wanted} images only "
                "(a task would stop "
                f"with \"exec format error\" or find no matching manifest); build it for {wanted} "
                f"(`docker buildx build --platform {wanted} ...`), push it and release its digest")

    def describe(self) -> str:
        return f"{self.service}: {self.reason()}"


#: Other spellings of an OCI architecture that containerd takes for it when it matches a platform
#: (containerd/platforms database.go, normalizeArch; it lower-cases os, architecture and variant first).
_ARCHITECTURE_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}


def normalized_platform(system: str, architecture: str, variant: str = "") -> tuple[str, str, str]:
    """(os, architecture, variant) as containerd compares them (containerd/platforms Normalize): an image config
    saying ``x86_64`` runs where ``amd64`` does; an empty os is the host's (normalizeOS: runtime.GOOS, linux on
    Fargate); amd64's ``v1`` and arm64's ``8`` or ``v8`` are no variant (normalizeArch; its other variant rules
    concern 32-bit ARM and 386)."""
    architecture, variant = architecture.lower(), variant.lower()
    architecture = _ARCHITECTURE_ALIASES.get(architecture, architecture)
    if (architecture, variant) in (("amd64", "v1"), ("arm64", "8"), ("arm64", "v8")):
        variant = ""
    return system.lower() or IMAGE_PLATFORM[0], architecture, variant


def _shown(platform: tuple[str, str, str]) -> str:
    return "/".join(part for part in platform if part)


#: What an index names for an attestation manifest (buildx's provenance, by default on every push), no platform the
#: image runs on: containerd's Platforms skips such an entry (core/images/image.go).
_UNKNOWN = "unknown"

#: How many indexes deep an index entry without a platform is followed (real images nest none).
_MAX_INDEX_DEPTH = 2


def _manifest_of(ecr: Any, registry_id: str, repository: str, image_id: Mapping[str, str]) -> dict[str, Any] | None:
    """The manifest of one image (BatchGetImage, an index as itself), None when the repository lacks it.

    BatchGetImage answers a per-image problem as a ``failures`` entry, not an error (botocore ecr model:
    ImageFailureCode, e.g. KmsError, ImageInaccessible, UpstreamUnavailable): anything but ImageNotFound is a
    manifest that cannot be read, hence a platform that cannot be told (ValueError), never an image let through."""
    answer = ecr.batch_get_image(registryId=registry_id, repositoryName=repository, imageIds=[dict(image_id)],
                                 acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES))
    found = answer.get("images", [])
    if found:
        return dict(json.loads(found[0]["imageManifest"]))
    for failure in answer.get("failures", []):
        if failure.get("failureCode") != "ImageNotFound":
            raise ValueError(f"ECR BatchGetImage answered {failure.get('failureCode')}: "
                             f"{failure.get('failureReason') or 'no reason given'}")
    return None


def _platforms(ecr: Any, registry_id: str, repository: str, manifest: Mapping[str, Any], read: BlobReader,
               depth: int = 0) -> list[tuple[str, str, str]]:
    """The (os, architecture, variant) a manifest runs on: an index's entries, or a single image's config.

    containerd matches os, architecture and variant of an index's entries (NewMatcher; an entry without a platform by
    its config's, ConfigPlatform), but not the platform of the released manifest itself (core/images Manifest): its
    config still says what its binaries are, yet its variant stops nothing, so it is left out."""
    if is_index(manifest):
        found: list[tuple[str, str, str]] = []
        for entry in manifest.get("manifests", []):
            platform = entry.get("platform")
            if isinstance(platform, dict):
                found.append((str(platform.get("os", "")), str(platform.get("architecture", "")),
                              str(platform.get("variant", ""))))
            elif depth < _MAX_INDEX_DEPTH:
                # The platform is optional in an index entry (OCI image spec, image index); containerd, which
                # pulls for Fargate, keeps such an entry and matches the platform of its manifest's config
                # (containerd core/images/image.go, Manifest): so does this check, or it would stop a runnable image.
                child = _manifest_of(ecr, registry_id, repository, {"imageDigest": str(entry["digest"])})
                if child is not None:
                    found.extend(_platforms(ecr, registry_id, repository, child, read, depth + 1))
        return found
    config = json.loads(read(ecr, repository, str(manifest["config"]["digest"])))
    variant = str(config.get("variant", "")) if depth else ""
    return [(str(config.get("os", "")), str(config.get("architecture", "")), variant)]


def _judge_released(env: EnvConfig, images: Mapping[str, str], clients: ClientFactory, what: str,
                    judge: Callable[[Any, str, dict[str, Any], tuple[str, str]], _Judged | None],
                    ) -> list[tuple[str, str, str, _Judged]]:
    """``judge(ecr, repository, manifest, platform)`` (the platform its tasks run: :func:`task_platform`) of each
    released image of ``images`` (service -> digest or tag) that the
    env's registry serves, in ``images`` order: (service, reference, repository URI, what it judged); an image the
    registry lacks is :func:`missing_images`' to report, one ``judge`` answers None of is left out. A registry that
    cannot be read, or a manifest (or its config blob) that tells no ``what``, is an AwsAccessError (exit 2)."""
    from shared.components.ecr import repository_name
    from shared.components.image_replication import Registry

    ecr = clients(env, "ecr")
    host = Registry.of(env).host
    judged = []
    for service, reference in images.items():
        repository = repository_name(service)
        image_id = {"imageDigest": reference} if is_digest(reference) else {"imageTag": reference}
        try:
            manifest = _manifest_of(ecr, env.account_id, repository, image_id)
            found = None if manifest is None else judge(ecr, repository, manifest, task_platform(service))
        except aws_errors() as error:
            if aws_error_code(error) in ("RepositoryNotFoundException", "ImageNotFoundException"):
                continue
            raise AwsAccessError(f"{env.name}: reading the manifest of {repository}@{reference} failed ({error}); "
                                 "the caller needs ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the "
                                 "platform's repositories") from None
        except (OSError, ValueError, KeyError, TypeError) as error:  # a config blob's download, a manifest without one
            raise AwsAccessError(f"{env.name}: cannot tell the {what} of {repository}@{reference} ({error})") from None
        if found is not None:
            judged.append((service, reference, f"{host}/{repository}", found))
    return judged


#: why an index's per-platform manifest is gone while the index is not
_LOST_MANIFEST = ("is not in the registry (the registry's lifecycle rule expired it while untagged, or the copy that "
                  "brought the index left it out)")


def task_platform(service: str) -> tuple[str, str]:
    """The OCI (os, architecture) the tasks of catalog ``service`` run: its catalog ``architecture`` (linux/amd64 for a
    service the catalog lacks, as the task definitions asked before the key)."""
    from shared.catalog import load_catalog
    from shared.fargate import image_platform

    spec = load_catalog().services.get(service)
    return image_platform(spec.architecture) if spec is not None else image_platform()


def whole_index_again(platform: tuple[str, str] = IMAGE_PLATFORM) -> str:
    """What brings back a per-platform manifest an index's registry lost."""
    return (f"push or copy the whole index again (`docker buildx build --platform {'/'.join(platform)} --push`, "
            "or `crane copy` of the index from a registry that holds all of it), which brings the manifest back "
            "under the same digests")


def lost_platform_manifests(env: EnvConfig, images: Mapping[str, str], clients: ClientFactory) -> list[MissingImage]:
    """The images of ``images`` (service -> digest or tag; all in the registry, :func:`missing_images`) of which the
    registry holds the index only, not the manifest a task pulls (:func:`_absent_platform_manifest`), in the words
    of a missing image: a promotion's images gate reads no config blob, which :func:`wrong_platforms` would."""
    def lost(ecr: Any, repository: str, manifest: dict[str, Any],
             wanted: tuple[str, str]) -> tuple[str, tuple[str, str]] | None:
        absent = _absent_platform_manifest(ecr, env.account_id, repository, manifest, wanted)
        return (absent, wanted) if absent else None

    return [MissingImage(service, reference, uri,
                         f"only its index is: its {'/'.join(wanted)} manifest {absent} {_LOST_MANIFEST}",
                         whole_index_again(wanted))
            for service, reference, uri, (absent, wanted) in _judge_released(env, images, clients, "platform", lost)]


def _is_task_platform(platform: Mapping[str, Any], wanted: tuple[str, str]) -> bool:
    """Whether an index entry's ``platform`` is ``wanted``, the one a task definition asks Fargate for, as containerd
    matches it (:func:`normalized_platform`)."""
    return normalized_platform(str(platform.get("os", "")), str(platform.get("architecture", "")),
                               str(platform.get("variant", ""))) == (*wanted, "")


def _absent_platform_manifest(ecr: Any, registry_id: str, repository: str, manifest: Mapping[str, Any],
                              wanted: tuple[str, str]) -> str:
    """The digest of an index entry naming the task's platform when the registry holds the manifest of no such entry,
    else empty. A replica's or a pushed index's per-platform manifests are untagged, and an untagged-image lifecycle
    rule may expire them while the tagged index stays (:func:`shared.release_tags.tag_release` tags them for that
    reason, but only at an ``up``); DescribeImages of the index alone would not tell."""
    if not is_index(manifest):
        return ""
    named = [str(entry["digest"]) for entry in manifest.get("manifests", [])
             if isinstance(platform := entry.get("platform"), dict) and _is_task_platform(platform, wanted)]
    if not named or any(_manifest_of(ecr, registry_id, repository, {"imageDigest": digest}) is not None
                        for digest in named):
        return ""
    return named[0]


def wrong_platforms(env: EnvConfig, images: Mapping[str, str], clients: ClientFactory,
                    read: BlobReader | None = None) -> list[WrongPlatform]:
    """The images of ``images`` (service -> digest or tag) that Fargate's platform of their task definitions
    cannot run (:func:`task_platform`: the catalog's ``architecture``), in ``images`` order: built for another
    platform, or an index whose manifest for it the registry no longer holds; an image the registry lacks is
    :func:`missing_images`' to report, not this function's."""
    reader = read or read_blob
    wrong = []
    for service, reference, uri, (platforms, absent, wanted) in _judge_released(
            env, images, clients, "platform",
            lambda ecr, repository, manifest, wanted: (
                _platforms(ecr, env.account_id, repository, manifest, reader),
                _absent_platform_manifest(ecr, env.account_id, repository, manifest, wanted), wanted)):
        if absent:
            wrong.append(WrongPlatform(service, reference, uri, "an index without its manifest", absent, wanted))
        elif (*wanted, "") not in {normalized_platform(*platform) for platform in platforms}:
            shown = ", ".join(sorted({_shown(platform) for platform in platforms if _UNKNOWN not in platform[:2]})) \
                or "an index that names no platform"
            wrong.append(WrongPlatform(service, reference, uri, shown, platform=wanted))
    return wrong


# -- the size an image takes on the task's storage ---------------------------------------------------------

#: The least an image's unpacked layers take for each byte of their compressed blobs: gzip and zstd add a few bytes
#: of framing per block to data they cannot shrink (RFC 1951 stored blocks: 5 bytes per 64 KiB; RFC 8878 raw blocks:
#: 3 bytes per 128 KiB), so no layer unpacks to less than 0.999 of its blob.
_UNPACKED_PER_COMPRESSED = 0.999
_GIB = 1024 ** 3
#: SOCI index manifest v2 (soci-snapshotter soci/soci_index.go ImageAnnotationSociIndexDigest): on an image manifest,
#: and on its descriptor in the image index, the digest of its SOCI index, which that image index holds beside it.
_SOCI_INDEX_DIGEST = "com.amazon.soci.index-digest"


@dataclass(frozen=True)
class OversizedImage:
    """A released image whose pull alone fills its task's ephemeral storage."""

    service: str
    reference: str
    repository_uri: str
    compressed_bytes: int
    """The sum of the ``layers`` sizes of its linux/amd64 manifest, each digest once: the blobs a task downloads."""
    storage_gib: int
    """The task's ephemeral storage: the catalog's ``ephemeral_storage_gib``, or Fargate's default."""
    configured: bool
    """Whether the catalog sets ``ephemeral_storage_gib`` for the service."""
    soci_index: str = ""
    """The digest of the image's SOCI index (v2, in the released image index), or empty: Fargate lazy-loads such an
    image (starts it without pulling it whole first), so the bound of a full pull is not what its tasks need."""

    layer_bytes: int | None = None
    """The sum of the ``layers`` sizes as listed, where a digest is listed more than once (None: ``compressed_bytes``):
    containerd's content store keeps a blob once, but its snapshotter unpacks each position of the chain (a snapshot
    is keyed by its chain ID), so each listing is unpacked."""

    @property
    def refused(self) -> bool:
        """Whether `up` refuses it: a full pull's bound is proven only for an image Fargate pulls whole."""
        return not self.soci_index

    @property
    def needed_bytes(self) -> int:
        """The least the pull takes on the task's storage: the compressed blobs and the layers unpacked from them."""
        listed = self.compressed_bytes if self.layer_bytes is None else self.layer_bytes
        return self.compressed_bytes + int(listed * _UNPACKED_PER_COMPRESSED)

    def _compressed(self) -> str:
        listed = "" if self.layer_bytes is None else \
            f" ({self.layer_bytes / _GIB:.1f} GiB as listed: some more than once)"
        return f"{self.compressed_bytes / _GIB:.1f} GiB of compressed layers{listed}"

    def reason(self, catalog_file: str) -> str:
        """What is wrong and what to do, without the service's name."""
        key = f"{catalog_file}: services.{self.service}.ephemeral_storage_gib"
        storage = (f"{self.storage_gib} GiB ({key})" if self.configured else
                   f"{self.storage_gib} GiB (Fargate's default; {key} is unset)")
        needed = math.ceil(self.needed_bytes / _GIB)  # the least storage the check lets through
        fix = (f"set {key} to at least {needed} (21 to 200; plus what the app writes to /tmp), or make the image "
               "smaller" if needed <= 200 else
               "make the image smaller (a Fargate task has at most 200 GiB; e.g. load the model from the artifact "
               "bucket at start instead of baking it in)")
        if self.soci_index:
            return (f"{self.repository_uri}@{self.reference} has {self._compressed()}: pulled whole and unpacked at "
                    f"least {self.needed_bytes / _GIB:.1f} GiB, more than the task's {storage}, but it has a SOCI "
                    f"index ({self.soci_index}): Fargate lazy-loads it (fetches what the app reads, the rest in the "
                    "background) instead of pulling it whole before the start, so `up` goes on; what a lazy-loaded "
                    "task keeps on its storage is not documented: watch the service's EphemeralStorageUtilized "
                    "(Container Insights), and should a task pull it whole (the SOCI index gone from the image index) "
                    f"it stops with CannotPullContainerError (no space left on device); to be safe, {fix}")
        return (f"{self.repository_uri}@{self.reference} has {self._compressed()}, and Fargate keeps the pulled layers "
                "and their unpacked contents on the task's ephemeral storage: at least "
                f"{self.needed_bytes / _GIB:.1f} GiB, more than the task's {storage}, so every task would stop with "
                "CannotPullContainerError (no space left on device) and the deployment circuit breaker roll the "
                f"service back; {fix}")


def _runnable_manifest(ecr: Any, registry_id: str, repository: str, manifest: Mapping[str, Any], read: BlobReader,
                       wanted: tuple[str, str], depth: int = 0) -> Mapping[str, Any] | None:
    """The single-image manifest a task of ``wanted`` pulls of ``manifest`` (itself, or the first entry of an index
    that matches, as containerd picks it); None when there is none (:func:`wrong_platforms` reports that)."""
    if not is_index(manifest):
        return manifest
    for entry in manifest.get("manifests", []):
        platform = entry.get("platform")
        if isinstance(platform, dict) and not _is_task_platform(platform, wanted):
            continue
        if not isinstance(platform, dict) and depth >= _MAX_INDEX_DEPTH:
            continue
        child = _manifest_of(ecr, registry_id, repository, {"imageDigest": str(entry["digest"])})
        if child is None:
            continue
        if not isinstance(platform, dict) and not is_index(child):  # judged by its config, as the platform check does
            platforms = _platforms(ecr, registry_id, repository, child, read, depth + 1)
            if (*wanted, "") not in {normalized_platform(*platform) for platform in platforms}:
                continue
        found = _runnable_manifest(ecr, registry_id, repository, child, read, wanted, depth + 1)
        if found is not None:
            annotations = entry.get("annotations")
            if isinstance(annotations, dict) and _SOCI_INDEX_DIGEST in annotations:  # the descriptor's, kept with it
                found = {**found, "annotations": {**annotations, **(found.get("annotations") or {})}}
            return found
    return None


def _soci_index(manifest: Mapping[str, Any], runnable: Mapping[str, Any]) -> str:
    """The SOCI index (manifest v2) Fargate lazy-loads ``runnable`` with: the digest its annotation names, where the
    released image index ``manifest`` holds that digest (SOCI index manifest v2 binds the two in one image index; AWS
    blog "Improving Amazon ECS deployment consistency with SOCI Index Manifest v2"); else empty. A v1 index (a
    referrer, outside the image index) is not looked for: it is read, if at all, by ECR's referrers API."""
    annotations = runnable.get("annotations")
    digest = str(annotations.get(_SOCI_INDEX_DIGEST, "")) if isinstance(annotations, dict) else ""
    held = {str(entry.get("digest")) for entry in manifest.get("manifests", [])} if is_index(manifest) else set()
    return digest if digest and digest in held else ""


def oversized_images(env: EnvConfig, images: Mapping[str, str], storage_gib: Mapping[str, int | None],
                     clients: ClientFactory, read: BlobReader | None = None) -> list[OversizedImage]:
    """The images of ``images`` (service -> digest or tag) whose pull alone does not fit their tasks' ephemeral
    storage (``storage_gib``: service -> the catalog's ``ephemeral_storage_gib``, None for Fargate's default).

    Fargate stores "the pulled, compressed, and the uncompressed container image" on the task's ephemeral storage (ECS
    developer guide, "Fargate task ephemeral storage for Amazon ECS"), so a pull needs the compressed layers (the
    manifest's ``layers`` sizes, what ECR's ``imageSizeInBytes`` shows of an image; of an index it shows the largest
    manifest of any platform, botocore ecr model ``ImageDetail``, so the linux/amd64 manifest is read instead) plus
    their unpacked contents: a lower bound, before the writable layer and ``/tmp``. An image the registry lacks, or
    without a linux/amd64 manifest, is the other checks'. An image with a SOCI index v2 is returned with it
    (:attr:`OversizedImage.soci_index`): Fargate lazy-loads it rather than pulling it whole, so the bound is unproven.
    """
    from shared.fargate import DEFAULT_EPHEMERAL_STORAGE_GIB

    reader = read or read_blob

    def sized(ecr: Any, repository: str, manifest: dict[str, Any],
              wanted: tuple[str, str]) -> tuple[int, int, str] | None:
        """(its blobs' bytes, each once; its layers' bytes, as listed; its SOCI index v2) of the runnable manifest."""
        runnable = _runnable_manifest(ecr, env.account_id, repository, manifest, reader, wanted)
        if runnable is None:
            return None
        layers = runnable.get("layers", [])
        return (sum({str(layer["digest"]): int(layer["size"]) for layer in layers}.values()),
                sum(int(layer["size"]) for layer in layers), _soci_index(manifest, runnable))

    oversized = []
    for service, reference, uri, (compressed, listed, soci) in _judge_released(env, images, clients, "size", sized):
        configured = storage_gib.get(service)
        storage = configured if configured is not None else DEFAULT_EPHEMERAL_STORAGE_GIB
        image = OversizedImage(service, reference, uri, compressed, storage, configured is not None, soci,
                               None if listed == compressed else listed)
        if image.needed_bytes > storage * _GIB:
            oversized.append(image)
    return oversized


# -- repositories compute did not create -------------------------------------------------------------

#: ECR's defaults for a repository it creates itself -- by replication without a creation template, for one --
#: are AES256 and MUTABLE (Amazon ECR user guide, "Templates to control repositories created during a pull
#: through cache or replication action"); compute's are KMS and IMMUTABLE (shared.components.ecr).
DEFAULT_ENCRYPTION = "AES256"


@dataclass(frozen=True)
class ForeignRepository:
    """A repository of a platform service's name in the env's registry that compute did not create."""

    service: str
    repository_uri: str
    settings: str
    """What differs from compute's repositories, e.g. "encryption AES256, tags MUTABLE"."""
    origin: str
    how: str

    def describe(self) -> str:
        return f"{self.service}: {self.repository_uri} already exists with {self.settings}; {self.origin}; {self.how}"


def _foreign_origin(env: EnvConfig) -> str:
    from shared.components.image_replication import image_source

    source = image_source(env)
    if source is not None and source.account_id == env.account_id:
        # Same-account replication needs no registry policy, and the replication service-linked role may
        # create any repository of its account (ecr:CreateRepository on "*": Amazon ECR user guide, "Amazon
        # ECR service-linked role for replication"): a push to the source before this env's compute created
        # its repositories makes ECR create them itself, with its defaults.
        return (f"most likely ECR replication from {source.env_name} created it (same account {env.account_id}, "
                f"{source.region} -> {env.region}: the replication role may create repositories) when an image "
                f"was pushed to {source.env_name} before {env.name}'s compute had created its repositories")
    return "it was created outside compute (by hand, or by replication that may create repositories)"


#: The provider's default tags (:meth:`shared.envs.EnvConfig.common_tags`) that mark a repository compute of an env
#: created: ``env`` names the env, these two say compute.
COMPUTE_TAGS = {"layer": "compute", "managed-by": "pulumi"}


def _repository_tags(env: EnvConfig, clients: ClientFactory, item: dict[str, Any]) -> dict[str, str] | None:
    """The tags of the repository ``item`` (a DescribeRepositories item); None when they cannot be read."""
    if "repositoryArn" not in item:
        return None
    try:
        listed = clients(env, "ecr").list_tags_for_resource(resourceArn=str(item["repositoryArn"])).get("tags", [])
    except aws_errors():
        return None
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in listed}


def _other_env(env: EnvConfig, tags: Mapping[str, str] | None) -> str | None:
    """The other env of the platform whose compute's tags ``tags`` are (None: this env's, not the platform's, or
    unknown)."""
    if tags is None:
        return None
    other = tags.get("env")
    if all(tags.get(key) == value for key, value in COMPUTE_TAGS.items()) and other and other != env.name:
        return other
    return None


def _other_envs_repository(env: EnvConfig, clients: ClientFactory, item: dict[str, Any]) -> str | None:
    """The env whose compute made the KMS repository ``item``, when that is another env of the platform: its
    ``env`` tag (the provider's default tags, :meth:`shared.envs.EnvConfig.common_tags`) names it. None when the
    tags say this env, are not the platform's, or cannot be read (then compute's own create tells)."""
    return _other_env(env, _repository_tags(env, clients, item))


def _template_origin(env: EnvConfig) -> str:
    from shared.components.image_replication import image_source

    source = image_source(env)
    # A creation template applied for REPLICATION or CREATE_ON_PUSH (botocore ecr RCTAppliedFor) sets the
    # encryption, tag mutability and tags of a repository ECR creates itself (Amazon ECR user guide, "Private
    # repository creation templates"): with KMS it looks like compute's by its encryption.
    by = (f"replication from {source.env_name} (same account {env.account_id}: the replication role may create "
          f"repositories) before {env.name}'s compute had created its repositories, or a push to it"
          if source is not None and source.account_id == env.account_id
          else "a push to it (CREATE_ON_PUSH) or replication before compute had created it")
    return (f"most likely ECR created it from a repository creation template of this registry that asks for KMS, "
            f"on {by}")


def _encryption(item: dict[str, Any]) -> str:
    """A DescribeRepositories item's encryption type (AES256 when the item does not say)."""
    return str((item.get("encryptionConfiguration") or {}).get("encryptionType", DEFAULT_ENCRYPTION))


def _platform_repositories(env: EnvConfig, services: Iterable[str],
                           clients: ClientFactory) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(repository name -> service) of ``services``, and those of them the env's registry holds (DescribeRepositories
    items by name); AwsAccessError when the registry cannot be listed."""
    from shared.components.ecr import repository_name

    wanted = {repository_name(service): service for service in services}
    found: dict[str, dict[str, Any]] = {}
    try:
        # Listed, not named: DescribeRepositories refuses the whole call when one named repository is missing.
        for page in clients(env, "ecr").get_paginator("describe_repositories").paginate(registryId=env.account_id):
            found.update({str(item["repositoryName"]): item for item in page.get("repositories", [])
                          if item.get("repositoryName") in wanted})
    except aws_errors() as error:
        raise AwsAccessError(f"{env.name}: ECR DescribeRepositories failed ({error}); the caller needs "
                             "ecr:DescribeRepositories in the env's registry") from None
    return wanted, found


def other_envs_repositories(env: EnvConfig, services: Iterable[str], clients: ClientFactory) -> dict[str, list[str]]:
    """The repositories of ``services`` in the env's registry (its account and region) that another env's compute
    created, by that env (their ``env`` tag): that env holds the account and region (AwsAccessError when the
    registry cannot be listed)."""
    _, found = _platform_repositories(env, services, clients)
    others: dict[str, list[str]] = {}
    for name in sorted(found):
        other = _other_envs_repository(env, clients, found[name])
        if other:
            others.setdefault(other, []).append(name)
    return others


def foreign_repositories(env: EnvConfig, services: Iterable[str], clients: ClientFactory) -> list[ForeignRepository]:
    """The repositories of ``services`` that exist in the env's registry without compute's encryption or tags.

    Compute cannot adopt one (its CreateRepository fails with RepositoryAlreadyExistsException, and a
    repository's encryption is fixed once created: ECR user guide, "Editing a private repository"), so it
    has to be deleted before compute's `up`. Compute's own repositories (KMS, with the env's compute tags) never
    match, whatever their tag mutability has become since. A KMS one whose ``env`` tag names another env was made
    by that env's compute, in the same account and region (from another folder of env files, or under the env's
    old name); one without compute's tags at all was made by ECR from a repository creation template asking for
    KMS (replication or create-on-push before compute ran). Unreadable tags count as compute's.
    """
    from shared.components.ecr import ENCRYPTION_TYPE as COMPUTE_ENCRYPTION
    from shared.components.ecr import TAG_MUTABILITY as COMPUTE_TAG_MUTABILITY
    from shared.components.image_replication import Registry

    wanted, found = _platform_repositories(env, services, clients)
    host = Registry.of(env).host
    foreign, origin = [], _foreign_origin(env)
    own_tags = {"env": env.name, **COMPUTE_TAGS}
    for name in sorted(found):
        item = found[name]
        encryption = _encryption(item)
        # Only the encryption tells: it is set when a repository is created and never changes (ECR user guide,
        # "Encryption at rest": "set when the repository is created"), and compute has created every one with
        # KMS. Tag mutability is not evidence: anyone may change it in place on compute's own repository
        # (PutImageTagMutability; IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION), and a stop on it would
        # block every `up` of a healthy env with a remedy that deletes what its services pull.
        if encryption == COMPUTE_ENCRYPTION:
            tags = _repository_tags(env, clients, item)
            other = _other_env(env, tags)
            if other:
                foreign.append(ForeignRepository(
                    wanted[name], f"{host}/{name}", f"the tag env={other}",
                    f"env {other}'s compute created it: one env per account and region (its ECR repositories "
                    f"and registry settings exist once there), and the env loader sees only the env files of "
                    f"this folder",
                    f"deploy {env.name} to another account or region, or destroy {other} there first (its `up` "
                    f"would fail on this repository, or take over {other}'s registry policy and replication)"))
            elif tags is not None and own_tags.items() - tags.items():
                # KMS without compute's tags: ECR made it from a creation template (compute's CreateRepository would
                # fail with RepositoryAlreadyExistsException), or compute's own lost its tags by hand. Unreadable
                # tags prove nothing: compute's own create tells then.
                shown = ", ".join(f"{key}={value}" for key, value in own_tags.items())
                retag = " ".join(f"Key={key},Value={value}" for key, value in own_tags.items())
                foreign.append(ForeignRepository(
                    wanted[name], f"{host}/{name}", f"encryption KMS without compute's tags ({shown})",
                    _template_origin(env),
                    f"compute cannot create or adopt it: delete it, `aws ecr delete-repository --region {env.region} "
                    f"--repository-name {name} --force` (its images can be pushed or replicated again), then run "
                    f"`nox -s up -- {env.name}` right away, before the template makes it again; if it is compute's "
                    f"own and only its tags were removed by hand, put them back instead: `aws ecr tag-resource "
                    f"--region {env.region} --resource-arn {item.get('repositoryArn')} --tags {retag}`"))
            continue
        mutability = str(item.get("imageTagMutability", "MUTABLE"))
        differences = [f"encryption {encryption}"] + ([f"tags {mutability}"] if mutability != COMPUTE_TAG_MUTABILITY
                                                      else [])
        how = (f"compute cannot create or adopt it (a repository's encryption cannot change): delete it, "
               f"`aws ecr delete-repository --region {env.region} --repository-name {name} --force` (its images "
               f"can be pushed or replicated again), then run `nox -s up -- {env.name}` right away")
        foreign.append(ForeignRepository(wanted[name], f"{host}/{name}", ", ".join(differences), origin, how))
    return foreign


# -- registry-wide settings compute writes whole ---------------------------------------------------------


@dataclass(frozen=True)
class RegistrySetting:
    """A registry-wide ECR setting (one per account and region) that compute writes whole, as the registry holds it."""

    name: str
    """``registry policy`` or ``replication configuration``"""
    call: str
    """the ECR call compute's create and update make, which replaces the setting whole"""
    others: tuple[str, ...]
    """what it holds that compute does not write (statements, rules), described"""
    platform: bool
    """whether it also holds what compute writes (compute's earlier `up`)"""
    writes: bool = True
    """whether compute still writes it; False: it holds compute's own but the env no longer asks for it, so compute's
    `up` removes it (``call``) where its state holds it"""


def _rule_text(rule: Mapping[str, Any]) -> str:
    filters = ", ".join(str(item.get("filter")) for item in rule.get("repositoryFilters") or []) or "every repository"
    targets = ", ".join(f"{item.get('registryId')} {item.get('region')}" for item in rule.get("destinations") or [])
    return f"a rule of repositories {filters} to {targets or 'nowhere'}"


def registry_settings(env: EnvConfig, clients: ClientFactory) -> list[RegistrySetting]:
    """The registry-wide settings of the env's registry that its compute writes: the registry policy where its image
    source is another account's (:func:`shared.components.image_replication.registry_policy`), the replication
    configuration where envs read from it. ECR keeps one of each per account and region, and compute's create and
    update put them whole (botocore ecr PutRegistryPolicy "Creates or updates the permissions policy for your
    registry", PutReplicationConfiguration "Creates or updates the replication configuration"; destroy:
    DeleteRegistryPolicy), so whatever else they hold is dropped. AwsAccessError when they cannot be read.

    Also one compute no longer writes (``writes`` False) that still holds compute's statement or rule: the env stopped
    reading from another account, or no env reads from it any more, so compute's `up` removes it whole -- the
    provider's delete is DeleteRegistryPolicy, or PutReplicationConfiguration with no rules (terraform-provider-aws
    internal/service/ecr/replication_configuration.go, resourceReplicationConfigurationDelete). Not readable then:
    left out (compute's `up` needs neither read)."""
    from shared.components.image_replication import (
        Registry,
        image_source,
        is_platform_rule,
        is_platform_statement,
        replica_registries,
    )

    ecr = clients(env, "ecr")
    found: list[RegistrySetting] = []
    source = image_source(env)
    writes_policy = source is not None and source.account_id != env.account_id
    text: str | None = None
    try:
        text = ecr.get_registry_policy()["policyText"]
    except aws_errors() as error:
        if writes_policy and aws_error_code(error) != "RegistryPolicyNotFoundException":
            raise AwsAccessError(f"{env.name}: ECR GetRegistryPolicy failed ({error}); the caller needs "
                                 "ecr:GetRegistryPolicy") from None
    if text:
        statements = json.loads(text).get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]
        mine = [is_platform_statement(statement, Registry.of(env)) for statement in statements]
        others = tuple(f"statement {statement.get('Sid') or json.dumps(statement, sort_keys=True)}"
                       for statement, own in zip(statements, mine, strict=True) if not own)
        if writes_policy or any(mine):
            found.append(RegistrySetting("registry policy",
                                         "PutRegistryPolicy" if writes_policy else "DeleteRegistryPolicy",
                                         others, any(mine), writes_policy))
    writes_replication = bool(replica_registries(env))
    rules: list[dict[str, Any]] = []
    try:
        rules = (ecr.describe_registry().get("replicationConfiguration") or {}).get("rules") or []
    except aws_errors() as error:
        if writes_replication:
            raise AwsAccessError(f"{env.name}: ECR DescribeRegistry failed ({error}); the caller needs "
                                 "ecr:DescribeRegistry") from None
    platform_rule = any(is_platform_rule(rule) for rule in rules)
    if rules and (writes_replication or platform_rule):
        found.append(RegistrySetting(
            "replication configuration",
            "PutReplicationConfiguration" if writes_replication else "PutReplicationConfiguration with none",
            tuple(_rule_text(rule) for rule in rules if not is_platform_rule(rule)), platform_rule,
            writes_replication))
    return found


# -- what a destroy of compute would leave ---------------------------------------------------------------


def released_images_kept(env: EnvConfig, services: Iterable[str]) -> str:
    """What a destroy that must delete the repositories of ``services`` with their images tells of ``env``'s
    released images there (``release.images`` digests), where it pushes them itself (no ``image_source``): the next
    ``up`` of the same env file asks for those digests again, which only a digest-preserving copy gives back (a
    rebuild makes another digest; the repositories cannot be kept, their KMS key goes with the destroy). Empty where
    there is none."""
    from shared.components.ecr import release_tag, repository_name
    from shared.components.image_replication import Registry, image_source, replica_registries

    deleted = set(services)
    released = {service: ref for service, ref in sorted(env.release.images.items())
                if is_digest(ref) and service in deleted}
    if not released or image_source(env) is not None:
        return ""  # a replica env's up copies them from its source again (_how_to_provide)
    host = Registry.of(env).host
    keep = "; ".join(f"`crane copy {host}/{repository_name(service)}@{digest} <registry that outlives "
                     f"{env.name}>/{repository_name(service)}:{release_tag(digest, env.name)}`"
                     for service, digest in released.items())
    replicas = ", ".join(replica.env_name for replica in replica_registries(env))
    back = (f" (or copy them back from {replicas} after that `up` created the repositories, where {env.name}'s "
            "replication copied each push, while their lifecycle policy keeps them)") if replicas else ""
    return (f"the next `up` of environments/{env.name}.yaml asks for its released images again, digest for digest "
            f"({', '.join(f'{service}@{digest}' for service, digest in released.items())}), which a rebuild does "
            f"not give: keep each first (where the repository holds it), digest unchanged: {keep}{back}; else that "
            "`up` needs a new release")


class HeldRepository(NamedTuple):
    """One of compute's repositories that still holds images: compute's destroy cannot delete it."""

    service: str
    repository: str
    """its name in the env's registry, ``ml-platform/<service>``"""
    images: int
    """how many images (distinct digests) it holds"""

    def describe(self, env: EnvConfig, then: str = "destroy") -> str:
        """``then``: the run that deletes the repository after the user has (it finds it gone)."""
        return (f"{self.service}: {self.repository} holds {self.images} image(s); `aws ecr delete-repository "
                f"--region {env.region} --repository-name {self.repository} --force` deletes it with them (the "
                f"{then} then finds it gone)")


def held_images(env: EnvConfig, services: Iterable[str], clients: ClientFactory, *,
                in_state: bool = False) -> list[HeldRepository]:
    """Compute's repositories of ``services`` (KMS-encrypted: the ones compute created, :func:`foreign_repositories`)
    in the env's registry that hold at least one image, by repository name. ``in_state``: compute's state holds a
    repository of each name (its outputs said so), and its delete targets the name: any repository of that name
    counts, whatever its encryption (ECR replication or a creation template may have made it again after the user
    deleted compute's).

    compute creates them with ``force_delete`` off, and ECR's DeleteRepository without ``force`` refuses a
    repository that is not empty (botocore ecr model, DeleteRepository: "If the repository isn't empty, you must
    either delete the contents of the repository or use the force option"): its destroy would fail there, after
    deleting whatever of compute it had deleted before."""
    from shared.components.ecr import ENCRYPTION_TYPE as COMPUTE_ENCRYPTION

    wanted, found = _platform_repositories(env, services, clients)
    ecr = clients(env, "ecr")
    held = []
    for name in sorted(found):
        encryption = _encryption(found[name])
        if encryption != COMPUTE_ENCRYPTION and not in_state:
            continue  # not compute's: not in its state, its destroy does not touch it
        digests: set[str] = set()
        try:
            # one entry per tag of an image (and one for an untagged image): counted by digest. Archived images count
            # (DeleteRepository refuses them too): ListImages answers ACTIVE ones only unless its filter says ANY
            # (botocore ecr ListImagesFilter.imageStatus).
            for page in ecr.get_paginator("list_images").paginate(registryId=env.account_id, repositoryName=name,
                                                                   filter={"imageStatus": "ANY"}):
                digests.update(str(item.get("imageDigest")) for item in page.get("imageIds", []))
        except aws_errors() as error:
            raise AwsAccessError(f"{env.name}: ECR ListImages of {name} failed ({error}); the caller needs "
                                 "ecr:ListImages in the env's registry") from None
        if digests:
            held.append(HeldRepository(wanted[name], name, len(digests)))
    return held


class HeldBucket(NamedTuple):
    """An S3 bucket of compute's state without ``force_destroy`` that still holds objects: its destroy cannot delete
    it."""

    bucket: str

    def describe(self, env: EnvConfig) -> str:
        return (f"{self.bucket} holds objects; `aws s3 rm s3://{self.bucket} --recursive --region {env.region}` "
                f"deletes them (a versioned bucket's earlier versions too: `aws s3api delete-objects` of each version "
                f"`aws s3api list-object-versions --bucket {self.bucket}` lists)")


def held_buckets(env: EnvConfig, buckets: Iterable[str], clients: ClientFactory) -> list[HeldBucket]:
    """The ``buckets`` (by name) that hold any object version or delete marker, sorted; a bucket that is not there any
    more holds none. S3 refuses DeleteBucket while a bucket holds either (botocore s3 model, DeleteBucket: "All
    objects (including all object versions and delete markers) in the bucket must be deleted before the bucket itself
    can be deleted"), so ListObjectVersions, which lists both (and an unversioned bucket's objects), asks for one."""
    s3 = clients(env, "s3")
    held = []
    for name in sorted(set(buckets)):
        try:
            # ExpectedBucketOwner: a name another account holds now is not read (403 instead)
            page = s3.list_object_versions(Bucket=name, MaxKeys=1, ExpectedBucketOwner=env.account_id)
        except aws_errors() as error:
            code = aws_error_code(error)
            if code == "NoSuchBucket":
                continue
            need = (": the caller needs s3:ListBucketVersions on the env's buckets, and the bucket must be the env "
                    f"account's ({env.account_id})") if code in ("AccessDenied", "403") else ""
            raise AwsAccessError(f"{env.name}: S3 ListObjectVersions of {name} failed ({error}){need}") from None
        if page.get("Versions") or page.get("DeleteMarkers"):
            held.append(HeldBucket(name))
    return held


def deletion_protected(env: EnvConfig, load_balancers: Iterable[str], clients: ClientFactory) -> list[str]:
    """The ``load_balancers`` (by ARN) whose AWS deletion protection is on now (DescribeLoadBalancerAttributes
    ``deletion_protection.enabled``, botocore elbv2 model), sorted: ELB refuses DeleteLoadBalancer while it is
    (OperationNotPermitted). One that is not there any more is not (DeleteLoadBalancer "succeeds" for it)."""
    elb = clients(env, "elbv2")
    protected = []
    for arn in sorted(set(load_balancers)):
        try:
            attributes = elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        except aws_errors() as error:
            code = aws_error_code(error)
            if code == "LoadBalancerNotFound":
                continue
            need = (": the caller needs elasticloadbalancing:DescribeLoadBalancerAttributes"
                    if code in ("AccessDenied", "AccessDeniedException") else "")
            raise AwsAccessError(f"{env.name}: ELB DescribeLoadBalancerAttributes of {arn} failed ({error}){need}"
                                 ) from None
        if any(a.get("Key") == "deletion_protection.enabled" and a.get("Value") == "true" for a in attributes):
            protected.append(arn)
    return protected


# -- what ECS runs ------------------------------------------------------------------------------------


def service_where(service: str, ecs_service: str) -> str:
    """A catalog service as a message names it: the service, with its ECS service after it where that has another name
    (an App Mesh canary version's, :func:`ecs_service_names`)."""
    return service if ecs_service == service else f"{service} ({ecs_service})"


@dataclass(frozen=True)
class RunningImage:
    """What one ECS service of a catalog service runs (``digest``), or why that is not settled."""

    service: str
    ecs_service: str
    digest: str | None
    problem: str | None = None
    #: the ARN of the task definition of its PRIMARY deployment (None: no such deployment)
    task_definition: str | None = None
    #: its PRIMARY deployment completed at a desired count of 0 and no task of it runs (a service at ``min_count`` 0
    #: with no backlog): ECS reports the deployment's digest, but no task runs it now, so nothing shows it starts
    resting: bool = False
    #: a Fargate Spot service whose completed deployment runs no task while Spot has no capacity for it (env
    #: ``capacity: spot``): AWS takes Spot tasks back and starts none without capacity, so that is how Spot runs, not
    #: a failed release; still, no task shows the digest starts
    awaiting_spot: bool = False
    #: the value of the :data:`HAND_ROLLBACK_TAG` of its PRIMARY deployment's task definition (when and by whom): a
    #: revision an operator registered by hand to roll the service back (``python -m shared.oneoff --rollback``)
    hand_rollback: str | None = None

    @property
    def where(self) -> str:
        return service_where(self.service, self.ecs_service)

    def describe(self) -> str:
        if self.problem:
            return f"{self.where}: {self.problem}"
        if self.resting:
            return f"{self.where} rests at 0 tasks: no task runs {self.digest or 'its image'}"
        if self.awaiting_spot:
            return f"{self.where} waits for Fargate Spot capacity: no task runs {self.digest or 'its image'}"
        return f"{self.where} runs {self.digest or 'an image not pinned by digest'}"


def ecs_service_names(env: EnvConfig, service: str) -> list[str]:
    """The ECS services of a catalog service in ``env``: itself, or one per App Mesh canary version."""
    from shared.components.mesh import version_ecs_service_name

    versions = env.mesh.canaries.get(service, ()) if env.mesh.provider == "appmesh" else ()
    return [version_ecs_service_name(service, v.version) for v in versions] or [service]


def _digest_of(image: str) -> str | None:
    return image.rsplit("@", 1)[1] if "@" in image else None


def running_images(env: EnvConfig, services: Iterable[str], clients: ClientFactory) -> list[RunningImage]:
    """One entry per ECS service of ``services`` in the env's cluster, in that order."""
    from shared.components.compute import cluster_name

    ecs = clients(env, "ecs")
    cluster = cluster_name(env.name)
    wanted = [(service, name) for service in services for name in ecs_service_names(env, service)]
    described: dict[str, dict[str, Any]] = {}
    names = [name for _, name in wanted]
    try:
        for start in range(0, len(names), DESCRIBE_SERVICES_LIMIT):
            answer = ecs.describe_services(cluster=cluster, services=names[start:start + DESCRIBE_SERVICES_LIMIT])
            described.update({item["serviceName"]: item for item in answer.get("services", [])})
    except aws_errors() as error:
        if aws_error_code(error) == "ClusterNotFoundException":
            return [RunningImage(service, name, None, f"no ECS cluster {cluster}: compute of {env.name} is not "
                                                      "deployed") for service, name in wanted]
        raise AwsAccessError(f"{env.name}: ECS DescribeServices in {cluster} failed ({error})") from None
    results = []
    task_definitions: dict[str, dict[str, Any]] = {}
    for service, name in wanted:
        item = described.get(name)
        if item is None or item.get("status") != "ACTIVE":
            results.append(RunningImage(service, name, None, f"no active ECS service {name} in {cluster}"))
            continue
        primary = [d for d in item.get("deployments", []) if d.get("status") == "PRIMARY"]
        if not primary:
            results.append(RunningImage(service, name, None, "ECS reports no PRIMARY deployment"))
            continue
        deployment = primary[0]
        rollout = deployment.get("rolloutState", "COMPLETED")
        arn = str(deployment["taskDefinition"])
        if arn not in task_definitions:
            try:
                task_definitions[arn] = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            except aws_errors() as error:
                raise AwsAccessError(f"{env.name}: ECS DescribeTaskDefinition {arn} failed ({error})") from None
        definition = task_definitions[arn]["taskDefinition"]
        containers = [c for c in definition.get("containerDefinitions", []) if c.get("name") == service]
        digest = _digest_of(str(containers[0].get("image", ""))) if containers else None
        problem = None
        # Deployment.runningCount is "the number of tasks in the deployment that are in the RUNNING status" (botocore
        # ecs model); a deployment at a desired count of 0 reaches its steady state, COMPLETED, with none.
        running, desired = int(deployment.get("runningCount", 0)), int(deployment.get("desiredCount", 1))
        if not containers:
            problem = f"its task definition {arn} has no container {service!r}"
        elif rollout != "COMPLETED":
            reason = deployment.get("rolloutStateReason") or ""
            problem = (f"its deployment of {digest or 'an image not pinned by digest'} is {rollout}"
                       f"{' (' + reason + ')' if reason else ''}")
        elif desired > 0 and running < 1 and not _awaits_spot(item):
            problem = f"its deployment of {digest} runs no task"
            if _on_spot(item):  # an interruption's replacement may be starting: the next run sees it
                problem += (" (a Fargate Spot service: Spot may have taken its tasks back a moment ago; its events "
                            "say why: `aws ecs describe-services`)")
        results.append(RunningImage(service, name, digest, problem, arn,
                                    resting=problem is None and desired == 0 and running == 0,
                                    awaiting_spot=problem is None and desired > 0 and running < 1,
                                    hand_rollback=_tag(task_definitions[arn].get("tags") or (), HAND_ROLLBACK_TAG)))
    return results


def _tag(tags: Iterable[Mapping[str, Any]], key: str) -> str | None:
    """The value of the tag ``key`` among ECS's ``[{"key": ..., "value": ...}]`` (None: not tagged)."""
    return next((str(tag.get("value", "")) for tag in tags if tag.get("key") == key), None)


#: What ECS says when Fargate has no capacity for a task: a service's event "(service <name>) was unable to place a
#: task. Reason: Capacity is unavailable at this time. Please try again later or in a different availability zone"
#: (AWS re:Post knowledge center, "ecs-fargate-runtask-capacity", quotes the same reason for RunTask).
CAPACITY_UNAVAILABLE = "Capacity is unavailable"


def _on_spot(service: Mapping[str, Any]) -> bool:
    """Whether the ECS service's capacity provider strategy names FARGATE_SPOT."""
    return any(item.get("capacityProvider") == "FARGATE_SPOT" for item in service.get("capacityProviderStrategy") or [])


def _awaits_spot(service: Mapping[str, Any]) -> bool:
    """Whether a Fargate Spot service runs no task for want of Spot capacity: its newest event says Fargate has none
    (Fargate Spot does not fall back to on-demand; ECS retries until capacity comes). A pending replacement alone is no
    proof: a task that crashes after a completed deployment leaves one too, and that is a problem."""
    events = sorted(service.get("events") or [], key=lambda event: str(event.get("createdAt", "")), reverse=True)
    newest = str(events[0].get("message", "")) if events else ""
    return _on_spot(service) and CAPACITY_UNAVAILABLE in newest


def applied_task_definitions(outputs: Mapping[str, Any] | None) -> dict[str, str]:
    """ECS service name -> the task definition ARN compute's last ``up`` applied to it, from compute's stack outputs
    (``services[*].task_definition_arn``, each App Mesh canary version's under ``versions``). A stack deployed before
    that output, or none: empty (nothing to compare)."""
    applied: dict[str, str] = {}
    services = (outputs or {}).get("services")
    for entry in services.values() if isinstance(services, Mapping) else ():
        if not isinstance(entry, Mapping):
            continue
        versions = entry.get("versions")
        for unit in [entry, *(versions.values() if isinstance(versions, Mapping) else ())]:
            if isinstance(unit, Mapping) and unit.get("ecs_service_name") and unit.get("task_definition_arn"):
                applied[str(unit["ecs_service_name"])] = str(unit["task_definition_arn"])
    return applied


def rollout_mismatches(env: EnvConfig, images: Mapping[str, str], running: Iterable[RunningImage],
                       applied: Mapping[str, str] | None = None) -> list[str]:
    """What ECS runs against what ``images`` (service -> digest) says it should, described; with ``applied`` (ECS
    service name -> task definition ARN, :func:`applied_task_definitions`), also a PRIMARY deployment of another
    task definition than compute's ``up`` applied: a circuit-breaker rollback of a change that kept the image (cpu,
    memory, the container's environment or health check) runs the previous revision with the release's digest."""
    problems = []
    for entry in running:
        expected = images.get(entry.service)
        wanted = (applied or {}).get(entry.ecs_service)
        if entry.problem:
            problems.append(entry.describe())
        elif expected is not None and entry.digest != expected:
            problems.append(f"{entry.describe()}, not the release's {expected}")
        elif wanted is not None and entry.task_definition is not None and entry.task_definition != wanted:
            problems.append(f"{entry.where} runs task definition {entry.task_definition}, not {wanted}, which "
                            "compute's up applied")
    return problems


#: ListServiceDeployments statuses of a deployment the circuit breaker (or an alarm) rolled back (botocore ecs
#: model, ServiceDeploymentStatus). A rollback is no deployment of its own: ECS rolls the same service deployment back
#: to the last successful service revision ("Amazon ECS doesn't create a new service revision for a rollback", ECS
#: developer guide, Amazon ECS service revisions).
ROLLED_BACK_STATUSES = ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
#: How far before the update's start (by the runner's clock) deployments are listed: AWS refuses a signed request from
#: a clock more than 5 minutes off (SigV4 RequestTimeTooSkewed), so none of this update's deployments is missed. Only
#: each service's newest is judged: an older rollback in the margin that a later deployment superseded is not one.
DEPLOYMENTS_CLOCK_MARGIN = timedelta(minutes=5)
#: ListServiceDeployments error codes of a region or partition without the API (it came on 2024-10-30)
DEPLOYMENTS_UNAVAILABLE = ("UnsupportedFeatureException", "UnknownOperationException", "InvalidAction")


@dataclass(frozen=True)
class RolledBack:
    """An ECS service whose newest deployment since compute's update started ECS rolled back."""

    service: str
    ecs_service: str
    status: str
    reason: str
    deployment: str

    def describe(self) -> str:
        return (f"{service_where(self.service, self.ecs_service)}: ECS rolled its deployment back ({self.status}"
                f"{': ' + self.reason if self.reason else ''}; {self.deployment})")


@dataclass(frozen=True)
class RollbackReport:
    rolled_back: list[RolledBack]
    #: why some or all services were not looked at (no failure: the API's absence)
    note: str | None = None


def rolled_back_deployments(env: EnvConfig, services: Iterable[str], clients: ClientFactory,
                            since: datetime) -> RollbackReport:
    """The ECS services of ``services`` whose newest deployment created since ``since`` (less the clock margin) ECS
    rolled back. This catches what the task definition's comparison cannot: a deployment without a new task definition
    (Service Connect, network configuration, load balancers) keeps both revision and digest when rolled back, and the
    provider's read of the service does not see its Service Connect configuration. A service without a deployment since
    (nothing of it changed) passes; a region without the API is a note."""
    from shared.components.compute import cluster_name

    ecs = clients(env, "ecs")
    cluster = cluster_name(env.name)
    after = since - DEPLOYMENTS_CLOCK_MARGIN
    found: list[RolledBack] = []
    for service in services:
        for name in ecs_service_names(env, service):
            deployments: list[dict[str, Any]] = []
            request: dict[str, Any] = {"cluster": cluster, "service": name, "createdAt": {"after": after}}
            try:
                while True:
                    page = ecs.list_service_deployments(**request)
                    deployments.extend(page.get("serviceDeployments", []))
                    if not page.get("nextToken"):
                        break
                    request["nextToken"] = page["nextToken"]
            except aws_errors() as error:
                code = aws_error_code(error)
                if code in DEPLOYMENTS_UNAVAILABLE:
                    return RollbackReport(found, f"ECS ListServiceDeployments is not available in {env.region} "
                                                 f"({code}): a rollback of a change that kept the task definition "
                                                 "(Service Connect, network configuration) is not checked")
                if code in ("ServiceNotFoundException", "ClusterNotFoundException"):
                    continue  # the running check names it
                # authorized on the service (ECS developer guide: Permissions required for viewing service deployments)
                raise AwsAccessError(f"{env.name}: ECS ListServiceDeployments of {name} in {cluster} failed ({error}); "
                                     "the caller needs ecs:ListServiceDeployments on the env's services") from None
            if not deployments:
                continue
            newest = max(deployments, key=lambda item: item.get("createdAt") or after)
            status = str(newest.get("status", ""))
            if status in ROLLED_BACK_STATUSES:
                found.append(RolledBack(service, name, status, str(newest.get("statusReason") or ""),
                                        str(newest.get("serviceDeploymentArn", ""))))
    return RollbackReport(found)
