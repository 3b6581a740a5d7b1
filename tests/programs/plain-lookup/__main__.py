"""A task pinned by digest, the digest read with the plain form of an ECR lookup (not answered offline)."""

import json

import pulumi
import pulumi_aws as aws

repository = aws.ecr.get_repository(name="worker")
image = aws.ecr.get_image(repository_name=repository.name, image_tag="stable")

assume = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]})
execution = aws.iam.Role("worker-exec", assume_role_policy=assume)
task_role = aws.iam.Role("worker-task", assume_role_policy=assume)
aws.ecs.TaskDefinition(
    "worker", family="worker", cpu="256", memory="512", network_mode="awsvpc", requires_compatibilities=["FARGATE"],
    execution_role_arn=execution.arn, task_role_arn=task_role.arn,
    container_definitions=json.dumps([{
        "name": "worker", "image": f"{repository.repository_url}@{image.image_digest}", "essential": True,
    }]),
)
pulumi.export("image", f"{repository.repository_url}@{image.image_digest}")
