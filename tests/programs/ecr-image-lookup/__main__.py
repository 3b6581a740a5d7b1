"""A task definition whose image digest comes from an ECR lookup (not answered offline)."""

import json

import pulumi
import pulumi_aws as aws

image = aws.ecr.get_image_output(repository_name="api", image_tag="release")
role = aws.iam.Role("api-exec", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))

aws.ecs.TaskDefinition(
    "api", family="api", cpu="256", memory="512", network_mode="awsvpc", requires_compatibilities=["FARGATE"],
    execution_role_arn=role.arn,
    container_definitions=image.image_uri.apply(lambda uri: json.dumps([{
        "name": "api", "image": uri, "essential": True,
    }])),
)
pulumi.export("image", image.image_uri)
