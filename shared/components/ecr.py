"""One ECR repository per platform service, with its lifecycle policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.envs import DIGEST_RE

#: Untagged images (superseded pushes, failed builds) are garbage after this many days.
UNTAGGED_EXPIRY_DAYS = 3
REPOSITORY_PREFIX = "ml-platform"
#: Every image an env's release pins carries ``release_<env>_<digest hex>`` in that env's repository
#: (``shared.release_tags`` adds it); that env's lifecycle policy never expires an image with such a tag. The env is
#: in the tag because tags replicate: dev's retag of what it releases reaches staging's and prod's repositories
#: (ECR replication copies a tag-only push: aws/containers-roadmap #1252), where a tag without the env would count
#: dev's every release against their own rule and, once it passed 9,999, expire their oldest rollback images. An
#: env name has no ``_``, so no env's prefix is another's.
RELEASE_TAG_PREFIX = "release_"
#: The tag of releases before the env was part of it (``release-<digest hex>``): still kept, by a rule of its own
#: (no env's ``up`` writes it now, and dev's new tags replicate as ``release_dev_...``; a build tag of one's own that
#: starts so is kept by it too, as it was before).
LEGACY_RELEASE_TAG_PREFIX = "release-"
#: In an env that receives its images from another (``compute.image_source``), how many images tagged as that env's
#: releases are kept: the candidates for promotion here, from the source env's `up` until this env's `up` tags them
#: as its own (then rule 1 keeps them). ECR stores a multi-platform push with provenance as three images (the index
#: and its manifests, each tagged), so this is about the source's last 50 releases of the service; an older one is
#: still in the source's registry (its rule 1), and a copy brings it (README, Images).
SOURCE_RELEASE_IMAGES_KEPT = 150
#: The "keep" rule's count: ECR has no keep action, only expire. An image that matches the tag
#: selection of a higher-priority rule cannot be expired by a lower-priority rule (ECR user guide,
#: "Lifecycle policy evaluation rules"), so a first rule that selects release tags and expires only
#: beyond this many of them shields every released image from the later rules.
RELEASE_IMAGES_KEPT = 9999
#: Every repository compute creates has these (shared.images.foreign_repositories tells compute's repositories
#: from others by the encryption type, which ECR fixes when a repository is created).
ENCRYPTION_TYPE = "KMS"
TAG_MUTABILITY = "IMMUTABLE"


def repository_name(service: str) -> str:
    return f"{REPOSITORY_PREFIX}/{service}"


def release_tag_prefix(env_name: str) -> str:
    """What every release tag of ``env_name`` starts with, and no other env's."""
    return f"{RELEASE_TAG_PREFIX}{env_name}_"


def release_tag(digest: str, env_name: str) -> str:
    """The tag an image ``env_name`` released carries in its repository: one per digest, so it never has to move
    (tags are IMMUTABLE)."""
    if not DIGEST_RE.match(digest):
        raise ValueError(f"{digest!r} is not an image digest (sha256:<64 hex>)")
    return release_tag_prefix(env_name) + digest.removeprefix("sha256:")


def lifecycle_policy(keep_last_images: int, env_name: str, source_env: str | None = None) -> dict[str, Any]:
    """Keep every image ``env_name`` released; keep the newest of those ``source_env`` (the env it receives images
    from) released, the candidates for promotion; expire untagged images after a few days; of the rest keep the newest
    ``keep_last_images``.

    Rules apply lowest ``rulePriority`` first and the ``tagStatus: any`` rule must have the highest.
    A released image is shielded by rule 1 whether it was pushed with a tag or copied by digest only
    (promotion copies digests): what matters is its ``release_<env>_`` tag; rule 2 shields the releases tagged
    before the env was in the tag. The source env's release tags (replicated with its retag) select the source rule,
    capped at :data:`SOURCE_RELEASE_IMAGES_KEPT`: without it a release awaiting promotion counted under the last rule
    and could expire after a few more pushes to the source; with no cap (one tag for every env, as before) the
    source's every release counted against this env's rule 1. Any other env's release tag is an ordinary tag.
    ``keep_last_images`` counts every image (released ones too), so it bounds the rollback window of unreleased
    builds.
    """
    prefix = release_tag_prefix(env_name)
    rules: list[dict[str, Any]] = [
        {"description": f"Keep {env_name}'s released images (tag {prefix}<digest>): no later rule can expire them",
         "selection": {"tagStatus": "tagged", "tagPrefixList": [prefix],
                       "countType": "imageCountMoreThan", "countNumber": RELEASE_IMAGES_KEPT}},
        {"description": f"Keep images released before the env was in the tag ({LEGACY_RELEASE_TAG_PREFIX}<digest>)",
         "selection": {"tagStatus": "tagged", "tagPrefixList": [LEGACY_RELEASE_TAG_PREFIX],
                       "countType": "imageCountMoreThan", "countNumber": RELEASE_IMAGES_KEPT}},
    ]
    if source_env:
        source = release_tag_prefix(source_env)
        rules.append(
            {"description": f"Keep the newest {SOURCE_RELEASE_IMAGES_KEPT} images {source_env} released (tag "
                            f"{source}<digest>): candidates for promotion here",
             "selection": {"tagStatus": "tagged", "tagPrefixList": [source],
                           "countType": "imageCountMoreThan", "countNumber": SOURCE_RELEASE_IMAGES_KEPT}})
    rules += [
        {"description": f"Expire untagged images after {UNTAGGED_EXPIRY_DAYS} days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": UNTAGGED_EXPIRY_DAYS}},
        {"description": f"Keep the last {keep_last_images} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_last_images}},
    ]
    return {"rules": [{"rulePriority": number, **rule, "action": {"type": "expire"}}
                      for number, rule in enumerate(rules, start=1)]}


@dataclass(frozen=True)
class ServiceRepositoryArgs:
    service: str
    env_name: str
    keep_last_images: int
    #: the env this one receives its images from (``compute.image_source``), whose releases are kept a while
    source_env: str | None
    kms_key_arn: pulumi.Input[str]
    protect: bool


class ServiceRepository(pulumi.ComponentResource):
    """A private image repository: scanned on push, tags immutable, KMS-encrypted, pruned."""

    def __init__(self, name: str, args: ServiceRepositoryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:ServiceRepository", name, None, opts)
        self.repository = aws.ecr.Repository(
            name,
            name=repository_name(args.service),
            # A tag can never be re-pointed at other bytes: the release pins digests anyway, and
            # immutability keeps `v1.2.3` meaning one image forever (release tags are per digest, so
            # they never need to move).
            image_tag_mutability=TAG_MUTABILITY,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                encryption_type=ENCRYPTION_TYPE, kms_key=args.kms_key_arn)],
            # Deleting a repo with images must be a deliberate act, never a side effect of `destroy`.
            force_delete=False,
            tags={"service": args.service},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # Delete before replace: a new policy (compute.ecr_keep_last_images) is a replacement (no update; policy is
        # ForceNew), whose create puts it on the repository and whose delete removes the repository's policy, the
        # new one if it ran last (terraform-provider-aws ecr/lifecycle_policy.go: PutLifecyclePolicy,
        # DeleteLifecyclePolicy by repository name): the repository was left unpruned.
        self.lifecycle_policy = aws.ecr.LifecyclePolicy(
            name,
            repository=self.repository.name,
            policy=json.dumps(lifecycle_policy(args.keep_last_images, args.env_name, args.source_env),
                              sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self.repository, delete_before_replace=True),
        )
        self.register_outputs({"repository_url": self.repository.repository_url})
