"""An ECR repository with every default: mutable tags, no scan on push, AES256, no lifecycle policy."""

import pulumi
import pulumi_aws as aws

repo = aws.ecr.Repository("inference")

pulumi.export("repository_url", repo.repository_url)
