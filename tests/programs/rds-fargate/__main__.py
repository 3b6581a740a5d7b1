"""A web container that reads its database from an RDS instance's address and port."""

import json

import pulumi
import pulumi_aws as aws

vpc = aws.ec2.get_vpc(default=True)
subnets = aws.ec2.get_subnets(filters=[aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc.id])])

db = aws.rds.Instance(
    "db",
    engine="postgres",
    engine_version="16.3",
    instance_class="db.t4g.micro",
    allocated_storage=20,
    db_name="app",
    username="app",
    manage_master_user_password=True,
    skip_final_snapshot=True,
)
db_port = db.port.apply(int)  # a real preview knows the port; the callback must run on a number

cluster = aws.ecs.Cluster("cluster", settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")])
logs = aws.cloudwatch.LogGroup("web", retention_in_days=30)
assume = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]})
execution = aws.iam.Role("web-exec", assume_role_policy=assume)
aws.iam.RolePolicyAttachment("web-exec", role=execution.name,
                             policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
task_role = aws.iam.Role("web-task", assume_role_policy=assume)

containers = pulumi.Output.all(db.address, db_port, logs.name).apply(lambda args: json.dumps([{
    "name": "web",
    "image": "public.ecr.aws/nginx/nginx:1.27.0",
    "essential": True,
    "user": "101",
    "readonlyRootFilesystem": True,
    "portMappings": [{"containerPort": 8080}],
    "environment": [{"name": "DB_HOST", "value": args[0]}, {"name": "DB_PORT", "value": str(args[1])}],
    "logConfiguration": {"logDriver": "awslogs", "options": {
        "awslogs-group": args[2], "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}},
}]))

task = aws.ecs.TaskDefinition(
    "web", family="web", cpu="256", memory="512", network_mode="awsvpc", requires_compatibilities=["FARGATE"],
    execution_role_arn=execution.arn, task_role_arn=task_role.arn, container_definitions=containers)

aws.ecs.Service(
    "web", cluster=cluster.arn, task_definition=task.arn, desired_count=2, launch_type="FARGATE",
    wait_for_steady_state=True,
    deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
    network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(subnets=subnets.ids, assign_public_ip=False))

pulumi.export("db_endpoint", db.endpoint)
pulumi.export("db_port", db_port)
