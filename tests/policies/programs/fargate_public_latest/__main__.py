"""A Fargate service as tutorials write it: default VPC subnets, a public IP, and ``nginx:latest``."""

import json

import pulumi
import pulumi_aws as aws

cluster = aws.ecs.Cluster("app")

role = aws.iam.Role(
    "task-exec",
    assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"Service": "ecs-tasks.amazonaws.com"}}],
    }),
)
aws.iam.RolePolicyAttachment(
    "task-exec-policy",
    role=role.name,
    policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
)

task = aws.ecs.TaskDefinition(
    "app",
    family="app",
    cpu="256",
    memory="512",
    network_mode="awsvpc",
    requires_compatibilities=["FARGATE"],
    execution_role_arn=role.arn,
    container_definitions=json.dumps([{
        "name": "app",
        "image": "nginx:latest",
        "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
    }]),
)

service = aws.ecs.Service(
    "app",
    cluster=cluster.arn,
    desired_count=1,
    launch_type="FARGATE",
    task_definition=task.arn,
    network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
        assign_public_ip=True,
        subnets=["subnet-0a1b2c3d4e5f60718"],
        security_groups=["sg-0a1b2c3d4e5f60718"],
    ),
)

pulumi.export("service", service.name)
