"""ECR, Fargate, RabbitMQ and networking written to satisfy every rule of the three packs.

The negative control of the acceptance tests: the policy engine must report nothing here, so any
finding is a false positive of a rule (or of the engine).
"""

import json

import pulumi
import pulumi_aws as aws
import pulumi_rabbitmq as rabbitmq
import pulumi_random as random

TAGS = {"env": "dev", "layer": "compute", "team": "ml-platform", "cost-center": "cc-ml-1001"}
DIGEST = "sha256:" + "3b5d7f9a1c3e5b7d" * 4

# every role's cap (iam-role-permissions-boundary)
BOUNDARY = "arn:aws:iam::111111111111:policy/ml-platform-dev-role-boundary"
provider = aws.Provider("aws", region="eu-west-1", default_tags=aws.ProviderDefaultTagsArgs(tags=TAGS))
opts = pulumi.ResourceOptions(provider=provider)

# -- network: a VPC with flow logs, its default SG closed, private subnets, a described SG ----------
vpc = aws.ec2.Vpc("main", cidr_block="10.40.0.0/16", enable_dns_hostnames=True, enable_dns_support=True,
                  opts=opts)
aws.ec2.DefaultSecurityGroup("default", vpc_id=vpc.id, ingress=[], egress=[], opts=opts)
logs_key = aws.kms.Key("logs", description="log encryption", enable_key_rotation=True, opts=opts,
                       policy=json.dumps({"Version": "2012-10-17", "Statement": [
                           {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                            "Action": "kms:*", "Resource": "*"},
                           {"Sid": "CloudWatchLogs", "Effect": "Allow",
                            "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
                            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                       "kms:Describe*"], "Resource": "*"}]}))
flow_log_group = aws.cloudwatch.LogGroup("flow-logs", retention_in_days=30, kms_key_id=logs_key.arn, opts=opts)
flow_log_role = aws.iam.Role(
    "flow-logs",
    assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}),
    permissions_boundary=BOUNDARY,
    opts=opts,
)
flow_log_policy = aws.iam.RolePolicy(
    "flow-logs",
    role=flow_log_role.id,
    policy=flow_log_group.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        "Resource": f"{arn}:*"}]})),
    opts=opts,
)
aws.ec2.FlowLog("main", vpc_id=vpc.id, traffic_type="ALL", log_destination=flow_log_group.arn,
                iam_role_arn=flow_log_role.arn,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[flow_log_policy])))
subnet = aws.ec2.Subnet("private-a", vpc_id=vpc.id, cidr_block="10.40.0.0/20", availability_zone="eu-west-1a",
                        map_public_ip_on_launch=False, opts=opts)
service_sg = aws.ec2.SecurityGroup(
    "inference",
    vpc_id=vpc.id,
    description="inference tasks: HTTP from inside the VPC only",
    ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=8080, to_port=8080,
                                              cidr_blocks=["10.40.0.0/16"], description="HTTP from the VPC")],
    egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
                                            description="HTTPS to AWS APIs")],
    opts=opts,
)

# -- discovery: a namespace and a health-checked service ------------------------------------------
namespace = aws.servicediscovery.PrivateDnsNamespace("internal", name="dev.ml.internal", vpc=vpc.id, opts=opts)
discovery = aws.servicediscovery.Service(
    "inference",
    name="inference",
    dns_config=aws.servicediscovery.ServiceDnsConfigArgs(
        namespace_id=namespace.id,
        dns_records=[aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(type="A", ttl=10)],
        routing_policy="MULTIVALUE",
    ),
    health_check_custom_config={"failure_threshold": 1},  # an empty block is dropped by the provider
    opts=opts,
)

# -- images: an ECR repository done right -----------------------------------------------------------
key_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Sid": "AccountAdministersThroughIam", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]})
key = aws.kms.Key("ecr", description="ECR image encryption", enable_key_rotation=True, policy=key_policy, opts=opts)
repo = aws.ecr.Repository(
    "inference",
    image_tag_mutability="IMMUTABLE",
    image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
    encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS",
                                                                             kms_key=key.arn)],
    opts=opts,
)
aws.ecr.LifecyclePolicy(
    "inference",
    repository=repo.name,
    policy=json.dumps({"rules": [{"rulePriority": 1, "description": "keep the last 20 images",
                                  "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                "countNumber": 20},
                                  "action": {"type": "expire"}}]}),
    opts=opts,
)

# -- compute: a Fargate service in private subnets --------------------------------------------------
cluster = aws.ecs.Cluster("ml", settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
                          opts=opts)
logs = aws.cloudwatch.LogGroup("inference", retention_in_days=14, kms_key_id=logs_key.arn, opts=opts)
assume_ecs_tasks = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]})
execution_role = aws.iam.Role("inference-execution", assume_role_policy=assume_ecs_tasks,
                              permissions_boundary=BOUNDARY, opts=opts)
execution_policy = aws.iam.RolePolicyAttachment(
    "inference-execution",
    role=execution_role.name,
    policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    opts=opts,
)
task_role = aws.iam.Role("inference-task", assume_role_policy=assume_ecs_tasks, permissions_boundary=BOUNDARY,
                         opts=opts)
task = aws.ecs.TaskDefinition(
    "inference",
    family="inference",
    cpu="512",
    memory="1024",
    network_mode="awsvpc",
    requires_compatibilities=["FARGATE"],
    execution_role_arn=execution_role.arn,
    task_role_arn=task_role.arn,
    container_definitions=pulumi.Output.all(repo.repository_url, logs.name).apply(lambda args: json.dumps([{
        "name": "inference",
        "image": f"{args[0]}@{DIGEST}",
        "essential": True,
        "user": "1000:1000",
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
        "environment": [{"name": "PORT", "value": "8080"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": args[1], "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "inference"}},
    }])),
    # ECS starts the first tasks at once: the execution role must hold its policy by then
    opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[execution_policy])),
)
aws.ecs.Service(
    "inference",
    cluster=cluster.arn,
    desired_count=2,
    launch_type="FARGATE",
    task_definition=task.arn,
    deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
    wait_for_steady_state=True,
    network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
        assign_public_ip=False, subnets=[subnet.id], security_groups=[service_sg.id]),
    service_registries=aws.ecs.ServiceServiceRegistriesArgs(registry_arn=discovery.arn),
    opts=opts,
)

# -- messaging: an application user and its topology in the env's own vhost --------------------------
admin_password = random.RandomPassword("broker-admin", length=32, special=False)
rabbit = rabbitmq.Provider("broker", endpoint="https://b-1234.mq.eu-west-1.amazonaws.com", username="platform",
                           password=admin_password.result)
ropts = pulumi.ResourceOptions(provider=rabbit)
vhost = rabbitmq.VHost("dev", name="dev", opts=ropts)
exchange = rabbitmq.Exchange(
    "requests", name="ml.requests", vhost=vhost.name,
    settings=rabbitmq.ExchangeSettingsArgs(type="topic", durable=True, auto_delete=False), opts=ropts)
dead_letters = rabbitmq.Exchange(
    "dead-letters", name="ml.dead-letter", vhost=vhost.name,
    settings=rabbitmq.ExchangeSettingsArgs(type="direct", durable=True, auto_delete=False), opts=ropts)
# Settings that may change are a policy (updated in place), not queue arguments (fixed at declaration).
rabbitmq.Policy(
    "inference-work", name="queue-inference.work", vhost=vhost.name,
    policy=rabbitmq.PolicyPolicyArgs(pattern="^inference\\.work$", priority=10, apply_to="quorum_queues", definition={
        "dead-letter-exchange": "ml.dead-letter", "dead-letter-routing-key": "inference.work", "delivery-limit": "5"}),
    opts=ropts)
rabbitmq.OperatorPolicy(
    "limits", name="limits", vhost=vhost.name,
    policy=rabbitmq.OperatorPolicyPolicyArgs(pattern="^inference\\.(work|dlq)$", priority=10,
                                             apply_to="quorum_queues", definition={"max-length": "100000"}),
    opts=ropts)
rabbitmq.Queue(
    "inference-work", name="inference.work", vhost=vhost.name,
    settings=rabbitmq.QueueSettingsArgs(durable=True, auto_delete=False,
                                        arguments_json=json.dumps({"x-queue-type": "quorum"})),
    opts=ropts)
rabbitmq.Queue(
    "inference-dlq", name="inference.dlq", vhost=vhost.name,
    settings=rabbitmq.QueueSettingsArgs(durable=True, auto_delete=False,
                                        arguments={"x-queue-type": "quorum"}),
    opts=ropts)
password = random.RandomPassword("inference", length=32, special=False)
user = rabbitmq.User("inference", name="dev-inference", password=password.result, tags=[], opts=ropts)
rabbitmq.Permissions(
    "inference", user=user.name, vhost=vhost.name,
    permissions=rabbitmq.PermissionsPermissionsArgs(
        configure="^$", write="^ml\\.requests$", read="^inference\\.work$"),
    opts=ropts)
# The routing keys it may publish on the exchange it writes (RabbitMQ checks them on topic exchanges only).
rabbitmq.TopicPermissions(
    "inference-topics", user=user.name, vhost=vhost.name,
    permissions=[rabbitmq.TopicPermissionsPermissionArgs(exchange=exchange.name, write="^(inference\\.request)$",
                                                         read="^$")],
    opts=ropts)

pulumi.export("repository_url", repo.repository_url)
