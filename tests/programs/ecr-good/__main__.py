"""An ECR repository with immutable tags, scanning, a CMK and a lifecycle policy."""

import json

import pulumi
import pulumi_aws as aws

key = aws.kms.Key("ecr", description="ECR images", enable_key_rotation=True, deletion_window_in_days=30)
repo = aws.ecr.Repository(
    "api",
    image_tag_mutability="IMMUTABLE",
    image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
    encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS",
                                                                             kms_key=key.arn)],
    tags={"env": "dev", "layer": "app", "team": "api", "cost-center": "cc-1"},
)
aws.ecr.LifecyclePolicy("api", repository=repo.name, policy=json.dumps({"rules": [{
    "rulePriority": 1, "description": "keep 50", "selection": {
        "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
    "action": {"type": "expire"}}]}))
pulumi.export("url", repo.repository_url)
