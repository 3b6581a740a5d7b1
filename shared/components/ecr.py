"""One ECR repository per platform service, with its lifecycle policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

#: Untagged images (superseded pushes, failed builds) are garbage after this many days.
UNTAGGED_EXPIRY_DAYS = 3
REPOSITORY_PREFIX = "ml-platform"


def repository_name(service: str) -> str:
    return f"{REPOSITORY_PREFIX}/{service}"


def lifecycle_policy(keep_last_images: int) -> dict[str, Any]:
    """Expire untagged images after a few days, then keep only the newest ``keep_last_images``.

    ECR evaluates rules by priority and a ``tagStatus: any`` rule must have the highest number. The
    count should cover every release still in use somewhere (promotion runs the same digest in the
    next env's own repository, so this env's count only covers its own rollback window).
    """
    return {"rules": [
        {"rulePriority": 1, "description": f"Expire untagged images after {UNTAGGED_EXPIRY_DAYS} days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": UNTAGGED_EXPIRY_DAYS},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"Keep the last {keep_last_images} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_last_images},
         "action": {"type": "expire"}},
    ]}


@dataclass(frozen=True)
class ServiceRepositoryArgs:
    service: str
    keep_last_images: int
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
            # immutability keeps `v1.2.3` meaning one image forever.
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                encryption_type="KMS", kms_key=args.kms_key_arn)],
            # Deleting a repo with images must be a deliberate act, never a side effect of `destroy`.
            force_delete=False,
            tags={"service": args.service},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.lifecycle_policy = aws.ecr.LifecyclePolicy(
            name,
            repository=self.repository.name,
            policy=json.dumps(lifecycle_policy(args.keep_last_images), sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self.repository),
        )
        self.register_outputs({"repository_url": self.repository.repository_url})
