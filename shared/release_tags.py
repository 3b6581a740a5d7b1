"""Release tags: ``python -m shared.release_tags ENV [--check]``.

Every image an env's ``release.images`` pins gets the tag ``release_<env>_<digest hex>`` in that env's own
ECR repository (``ml-platform/<service>`` in the env's account and region). The repositories'
lifecycle policy (:func:`shared.components.ecr.lifecycle_policy`) never expires an image with that
tag, so neither "keep the last N images" nor the untagged-image rule can delete what an env runs --
including an image copied into the repository by digest only, which has no tag until this runs.

The tag is derived from the digest, so it is written once and never moves (the repositories' tags
are IMMUTABLE). Adding it is ECR's documented retag: ``BatchGetImage`` reads the manifest and
``PutImage`` stores the same manifest under the new tag (no layer is copied). A release that names
a tag (allowed by the env schema outside staging/prod) is resolved to the digest it points at.

Run it wherever images reach the env's repositories -- after promotion copied them, before
``nox -s up`` -- with credentials for the env's account (the profile ``PLATFORM_AWS_PROFILE_<ENV>`` names,
else the default chain, as for every command): the untagged rule expires an untagged copy
after ``UNTAGGED_EXPIRY_DAYS`` days. ``--check`` changes nothing and exits 1 when an image lacks its
tag. Exit codes: 0 every pinned image carries its tag, 1 an image is missing, untagged or not served by ECR (named),
2 bad input or credentials (unknown env; credentials missing, of another account, or not allowed the ECR calls).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.cli import UsageParser
from shared.components.ecr import release_tag, repository_name
from shared.envs import is_digest, load_env
from shared.errors import ConfigError, PlatformError
from shared.images import (
    MANIFEST_MEDIA_TYPES,
    AwsAccessError,
    aws_error_code,
    aws_errors,
    is_index,
    profile_var,
)

Action = Literal["tagged", "already-tagged", "untagged", "missing", "incomplete"]


@dataclass(frozen=True)
class TagResult:
    service: str
    repository: str
    #: the release's reference (digest or tag) and the digest it resolved to (None: not in the repository)
    reference: str
    digest: str | None
    tag: str | None
    action: Action

    @property
    def ok(self) -> bool:
        return self.action in ("tagged", "already-tagged")

    def describe(self) -> str:
        if self.action == "missing":
            return f"{self.service}: {self.repository} has no image {self.reference}"
        if self.action == "untagged":
            return f"{self.service}: {self.repository}@{self.digest} lacks its tag {self.tag}"
        if self.action == "incomplete":
            return (f"{self.service}: {self.repository}@{self.digest} cannot take its tag {self.tag}: ECR refuses an "
                    "index that names an image the repository lacks (ReferencedImagesNotFoundException; the missing "
                    "ones above), so the untagged rule may expire it: copy the whole index into the repository again "
                    "(README, Images), then run `up` again")
        return f"{self.service}: {self.repository}@{self.digest} {self.action} {self.tag}"


def _describe(ecr: Any, repository: str, reference: str) -> dict[str, Any] | None:
    image_id = {"imageDigest": reference} if is_digest(reference) else {"imageTag": reference}
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[image_id])["imageDetails"]
    except Exception as error:  # botocore's ClientError; its code says what happened
        if aws_error_code(error) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return None  # a repository compute has not created yet holds no image either
        raise
    return details[0] if details else None


class ImageUnreadable(PlatformError):
    """ECR lists an image but cannot serve its manifest (exit 1): nothing can pull it either."""

    exit_code = 1


def _manifest(ecr: Any, repository: str, digest: str) -> dict[str, Any]:
    """BatchGetImage of ``digest``: its manifest text and media type, an index as itself. An image ECR cannot serve
    is a ``failures`` entry of the answer, not an error (botocore ecr BatchGetImageResponse, ImageFailureCode:
    KmsError, ImageInaccessible, ...): ImageUnreadable names it."""
    answer = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}],
                                 acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES))
    images = answer.get("images") or []
    if len(images) != 1:
        said = "; ".join(f"{failure.get('failureCode')}: {failure.get('failureReason')}"
                         for failure in answer.get("failures") or []) or "no manifest and no failure"
        raise ImageUnreadable(f"{repository}@{digest}: ECR lists the image but BatchGetImage does not serve its "
                              f"manifest ({said}), so no task could pull it; nothing of it was tagged")
    return dict(images[0])


def _tag(ecr: Any, env_name: str, service: str, repository: str, reference: str, detail: Mapping[str, Any],
         check: bool, image: Mapping[str, Any] | None = None) -> TagResult:
    digest = str(detail["imageDigest"])
    tag = release_tag(digest, env_name)
    if tag in (detail.get("imageTags") or []):
        return TagResult(service, repository, reference, digest, tag, "already-tagged")
    if check:
        return TagResult(service, repository, reference, digest, tag, "untagged")
    image = image if image is not None else _manifest(ecr, repository, digest)
    request: dict[str, Any] = {"repositoryName": repository, "imageManifest": image["imageManifest"],
                               "imageTag": tag, "imageDigest": digest}
    if image.get("imageManifestMediaType"):
        request["imageManifestMediaType"] = image["imageManifestMediaType"]
    try:
        ecr.put_image(**request)
    except Exception as error:
        if aws_error_code(error) == "ReferencedImagesNotFoundException":  # an index one of whose images is gone
            return TagResult(service, repository, reference, digest, tag, "incomplete")
        # Tagged meanwhile by another run: the same tag on the same digest is the wanted state. compute's repositories
        # have immutable tags, where ECR may answer ImageTagAlreadyExistsException instead (aws/containers-roadmap
        # #2179); the tag names the digest (release_tag), so it is this image's all the same.
        if aws_error_code(error) not in ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException"):
            raise
        return TagResult(service, repository, reference, digest, tag, "already-tagged")  # not this run's write
    return TagResult(service, repository, reference, digest, tag, "tagged")


def _children(image: Mapping[str, Any]) -> list[str]:
    """The manifests a multi-platform index references (none for a single image)."""
    manifest = json.loads(str(image["imageManifest"]))
    if is_index(manifest):
        return [str(entry["digest"]) for entry in manifest.get("manifests", [])]
    return []


def tag_release(ecr: Any, images: Mapping[str, str], env_name: str, *, check: bool = False,
                stop: Callable[[], bool] | None = None) -> list[TagResult]:
    """Give each image ``env_name`` pins (service -> digest or tag) its release tag in ``ml-platform/<service>``.

    A multi-platform index is tagged, and so is every manifest it references (one per platform, and
    attestations): they are stored as images of their own, untagged, and the untagged rule must not be able
    to expire the linux/amd64 manifest a task pulls through the index, whatever ECR's lifecycle evaluation
    makes of references (community reports differ; a release tag on each settles it).

    ``stop`` is asked before each image is looked at and again before its first write (an index is tagged with all its
    manifests, or not at all: one left untagged would be the untagged rule's to expire): once it answers True nothing
    more is read or written, and the results so far come back (an interrupted ``up``,
    shared.orchestrate.images.ImageGatedRunner, writes no tag after the interrupt and says which it wrote before).
    """
    results: list[TagResult] = []
    stopped = stop or (lambda: False)
    for service in sorted(images):
        if stopped():
            break
        reference, repository = images[service], repository_name(service)
        detail = _describe(ecr, repository, reference)
        if detail is None:
            results.append(TagResult(service, repository, reference, None, None, "missing"))
            continue
        image = _manifest(ecr, repository, str(detail["imageDigest"]))
        if stopped():  # asked again after the reads: an interrupt during them writes no tag either
            break
        # The index's images first (not stopped half-way: an untagged platform manifest may expire), then the index:
        # ECR refuses an index naming an image the repository lacks (ecr PutImage ReferencedImagesNotFoundException),
        # and the images that are there are the ones a task pulls, tagged whatever the index's own tag does.
        for child in _children(image):
            child_detail = _describe(ecr, repository, child)
            results.append(TagResult(service, repository, child, None, None, "missing") if child_detail is None
                           else _tag(ecr, env_name, service, repository, child, child_detail, check))
        results.append(_tag(ecr, env_name, service, repository, reference, detail, check, image))
    return results


def main(argv: Sequence[str] | None = None, *, session: Any = None) -> int:
    parser = UsageParser(prog="python -m shared.release_tags", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", metavar="ENV")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when an image lacks its tag")
    try:
        args = parser.parse_args(argv)
        env = load_env(args.env)
        try:
            if session is None:
                import boto3

                # The env's own credentials, as every other command reaches an env (shared.images.SessionClients).
                session = boto3.Session(profile_name=os.environ.get(profile_var(env.name)) or None,
                                        region_name=env.region)
            account = session.client("sts").get_caller_identity()["Account"]
            if account != env.account_id:
                raise ConfigError(f"environments/{env.name}.yaml", "account_id",
                                  f"the credentials in use are for account {account}, not {env.account_id}")
            results = tag_release(session.client("ecr", region_name=env.region), env.release.images, env.name,
                                  check=args.check)
        except aws_errors() as error:  # no credentials, or a call they may not make: a message, not a traceback
            raise AwsAccessError(f"{env.name}: {error}; the credentials for account {env.account_id} need "
                                 "sts:GetCallerIdentity and, on its ml-platform/* repositories, ecr:DescribeImages, "
                                 "ecr:BatchGetImage and (without --check) ecr:PutImage") from None
    except PlatformError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    for result in results:
        print(result.describe(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
