"""The plan diff's replace-on-change table against the providers, for the inputs the platform sets.

Each case is one input of one resource type, changed between an accepted and a fresh synth, and what
the provider does with that change (its schema: ``ForceNew`` in terraform-provider-aws, which pulumi-aws
bridges, or in terraform-provider-rabbitmq; the platform's own dynamic providers' ``diff``). A missing
entry makes the offline diff call a replacement an update, and a protected resource's replacement then
passes ``nox -s diff`` unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.components.broker_logs import BrokerLogGroupProvider
from shared.components.lambda_eni_drain import LambdaEniDrainProvider
from shared.components.service_connect_drain import ServiceConnectDrainProvider
from shared.plan_diff import REPLACE_ON_CHANGE, diff_documents


def _action(type_: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    urn = f"urn:pulumi:prod::layer::{type_}::thing"

    def document(inputs: dict[str, Any]) -> dict[str, Any]:
        return {"resources": [{"urn": urn, "type": type_, "name": "thing", "custom": True, "inputs": inputs,
                               "protect": False}]}

    changes = diff_documents("layer", document(before), document(after)).changes
    assert len(changes) == 1, changes
    return changes[0].action


ARN = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:platform/dev/broker/admin-AbCdEf"
OTHER_ARN = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:platform/dev/broker/admin-AbCdEf"
ROTATION = {"secretId": ARN, "rotationRules": {"automaticallyAfterDays": 90}}
PERMISSION = {"action": "lambda:InvokeFunction", "function": "f", "principal": "secretsmanager.amazonaws.com",
              "sourceArn": ARN, "sourceAccount": "111111111111"}

SG_RULE = {"securityGroupId": "sg-0aaaaaaaaaaaaaaaa", "referencedSecurityGroupId": "sg-0dddddddddddddddd",
           "ipProtocol": "tcp", "fromPort": 5671, "toPort": 5671}
MQ_CONFIGURATION = {"name": "ml-dev-rabbitmq-3.13", "engineType": "RabbitMQ", "engineVersion": "3.13",
                    "data": "consumer_timeout = 1800000\n"}
SUBSCRIPTION = {"topic": "arn:aws:sns:eu-west-1:111111111111:prod-ml-alarms", "protocol": "https",
                "endpoint": "https://hooks.example.com/alarms"}
CLOUD_MAP_DNS = {"namespaceId": "ns-0aaaaaaaaaaaaaaaa", "routingPolicy": "MULTIVALUE",
                 "dnsRecords": [{"ttl": 10, "type": "A"}, {"ttl": 10, "type": "SRV"}]}

LB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/app/gateway-alb/0123456789abcdef"
CERT_ARN = "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
ALB: dict[str, Any] = {
    "name": "gateway-alb", "internal": False, "loadBalancerType": "application",
    "subnets": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"], "securityGroups": ["sg-0aaaaaaaaaaaaaaaa"],
    "accessLogs": {"bucket": "ml-prod-gateway-alb-logs-111111111111", "prefix": "alb", "enabled": True}}
LISTENER = {"loadBalancerArn": LB_ARN, "port": 443, "protocol": "HTTPS", "certificateArn": CERT_ARN,
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}
BUCKET = {"bucket": "ml-prod-gateway-alb-logs-111111111111", "tags": {"service": "gateway"}}
OWNERSHIP = {"bucket": "b", "rule": {"objectOwnership": "BucketOwnerEnforced"}}
SSE = {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
LIFECYCLE: dict[str, Any] = {
    "bucket": "b",
    "rules": [{"id": "expire-access-logs", "status": "Enabled", "filter": {"prefix": "alb/"},
               "expiration": {"days": 30}}]}
VERSIONING = {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}}
ECS_SERVICE = {"name": "gateway", "cluster": "arn:aws:ecs:eu-west-1:111111111111:cluster/ml", "launchType": "FARGATE",
               "taskDefinition": "gateway:7", "desiredCount": 1}
TASK = {"family": "prod-gateway", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "tags": {"service": "gateway"}}

#: (type, unchanged inputs, the input that changes, its new value, what the provider does)
CASES: list[tuple[str, dict[str, Any], str, Any, str]] = [
    # terraform-provider-aws secretsmanager/secret_version.go: secret_string is ForceNew (a new value is a
    # new version); version_stages is the only argument it updates.
    ("aws:secretsmanager/secretVersion:SecretVersion", {"secretId": ARN, "secretString": "{}"},
     "secretString", '{"password": "new"}', "replace"),
    ("aws:secretsmanager/secretVersion:SecretVersion", {"secretId": ARN, "secretString": "{}"},
     "secretId", OTHER_ARN, "replace"),
    ("aws:secretsmanager/secretVersion:SecretVersion", {"secretId": ARN, "secretString": "{}",
                                                        "versionStages": ["AWSCURRENT"]},
     "versionStages", ["AWSCURRENT", "mine"], "update"),
    # secretsmanager/secret_rotation.go: secret_id is ForceNew; the rules and the function update in place.
    ("aws:secretsmanager/secretRotation:SecretRotation", ROTATION, "secretId", OTHER_ARN, "replace"),
    ("aws:secretsmanager/secretRotation:SecretRotation", ROTATION, "rotationRules", {"automaticallyAfterDays": 30},
     "update"),
    # lambda/permission.go: no Update at all, every argument ForceNew.
    ("aws:lambda/permission:Permission", PERMISSION, "sourceArn", OTHER_ARN, "replace"),
    ("aws:lambda/permission:Permission", PERMISSION, "sourceAccount", "222222222222", "replace"),
    # sns/topic_policy.go: arn is ForceNew; the policy is put in place.
    ("aws:sns/topicPolicy:TopicPolicy", {"arn": "arn:aws:sns:eu-west-1:111111111111:alarms", "policy": "{}"},
     "arn", "arn:aws:sns:eu-west-1:222222222222:alarms", "replace"),
    ("aws:sns/topicPolicy:TopicPolicy", {"arn": "arn:aws:sns:eu-west-1:111111111111:alarms", "policy": "{}"},
     "policy", '{"Statement": []}', "update"),
    # ecr/lifecycle_policy.go: no Update, policy and repository ForceNew.
    ("aws:ecr/lifecyclePolicy:LifecyclePolicy", {"repository": "ml-platform/gateway", "policy": '{"rules": []}'},
     "policy", '{"rules": [{"rulePriority": 1}]}', "replace"),
    # mq/broker.go: authentication_strategy is not ForceNew (UpdateBroker takes it); ldap_server_metadata is.
    ("aws:mq/broker:Broker", {"brokerName": "b", "authenticationStrategy": "simple"},
     "authenticationStrategy", "config_managed", "update"),
    ("aws:mq/broker:Broker", {"brokerName": "b", "ldapServerMetadata": {"hosts": ["a"]}},
     "ldapServerMetadata", {"hosts": ["b"]}, "replace"),
    ("aws:mq/broker:Broker", {"brokerName": "b", "hostInstanceType": "mq.m7g.large"},
     "hostInstanceType", "mq.m7g.xlarge", "update"),
    ("aws:mq/broker:Broker", {"brokerName": "b", "deploymentMode": "SINGLE_INSTANCE"},
     "deploymentMode", "CLUSTER_MULTI_AZ", "replace"),
    # mq/configuration.go: engine_type, engine_version and name are ForceNew; data (a new revision) is not; the
    # broker's configuration block is not ForceNew (UpdateBroker takes a configuration id and revision).
    ("aws:mq/configuration:Configuration", MQ_CONFIGURATION, "engineVersion", "4.2", "replace"),
    ("aws:mq/configuration:Configuration", MQ_CONFIGURATION, "name", "ml-dev-rabbitmq-4.2", "replace"),
    ("aws:mq/configuration:Configuration", MQ_CONFIGURATION, "engineType", "ActiveMQ", "replace"),
    ("aws:mq/configuration:Configuration", MQ_CONFIGURATION, "data", "consumer_timeout = 7200000\n", "update"),
    ("aws:mq/broker:Broker", {"brokerName": "b", "configuration": {"id": "c-1", "revision": 2}},
     "configuration", {"id": "c-1", "revision": 3}, "update"),
    # terraform-provider-rabbitmq resource_policy.go / resource_operator_policy.go / resource_user.go: the
    # policy body and a user's password change in place.
    ("rabbitmq:index/policy:Policy", {"name": "p", "vhost": "/", "policy": {"priority": 0}},
     "policy", {"priority": 1}, "update"),
    ("rabbitmq:index/operatorPolicy:OperatorPolicy", {"name": "p", "vhost": "/", "policy": {"priority": 0}},
     "policy", {"priority": 1}, "update"),
    ("rabbitmq:index/user:User", {"name": "gateway", "password": "a"}, "password", "b", "update"),
    ("rabbitmq:index/queue:Queue", {"name": "q", "vhost": "/", "settings": {"durable": True}},
     "settings", {"durable": True, "arguments": {"x-queue-type": "quorum"}}, "replace"),
    # iam/role_policy.go, cloudwatch/metric_alarm.go, appautoscaling/target.go: names and what is scaled are
    # ForceNew, the documents, thresholds and capacities are not.
    # iam/role.go: name, name_prefix and path are ForceNew; permissions_boundary is not (the update sets it with
    # PutRolePermissionsBoundary): the boundary added to every existing role is an update
    ("aws:iam/role:Role", {"name": "ml-platform-dev-queue-metrics", "assumeRolePolicy": "{}"}, "name",
     "ml-platform-dev-queue-metrics-2", "replace"),
    ("aws:iam/role:Role", {"name": "ml-platform-dev-queue-metrics", "assumeRolePolicy": "{}"}, "permissionsBoundary",
     "arn:aws:iam::111111111111:policy/ml-platform-dev-role-boundary", "update"),
    ("aws:iam/rolePolicy:RolePolicy", {"role": "gateway-task-1a2b3c4", "policy": "{}"}, "role", "gateway-task-5d6e7f8",
     "replace"),
    ("aws:iam/rolePolicy:RolePolicy", {"role": "gateway-task-1a2b3c4", "policy": "{}"}, "policy", '{"Statement": []}',
     "update"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"name": "prod-ml-broker-disk", "threshold": 2}, "name",
     "prod-ml-broker-disk-free", "replace"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"name": "prod-ml-broker-disk", "threshold": 2}, "threshold", 3,
     "update"),
    ("aws:appautoscaling/target:Target", {"resourceId": "service/c/gateway", "maxCapacity": 4}, "resourceId",
     "service/c/gateway-v1", "replace"),
    ("aws:appautoscaling/target:Target", {"resourceId": "service/c/gateway", "maxCapacity": 4}, "maxCapacity", 9,
     "update"),
    # ec2/vpc_security_group_egress_rule.go: the group is RequiresReplace, and so is a switch of the rule's source
    # kind (ModifyPlan); another CIDR or another referenced group is modified in place.
    ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", SG_RULE, "securityGroupId", "sg-0bbbbbbbbbbbbbbbb",
     "replace"),
    ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", SG_RULE, "referencedSecurityGroupId",
     "sg-0cccccccccccccccc", "update"),
    ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", {**SG_RULE, "referencedSecurityGroupId": None},
     "cidrIpv4", "10.30.0.0/16", "replace"),
    # elbv2/target_group.go: a target group's port or VPC forces a new one, its health check does not.
    ("aws:lb/targetGroup:TargetGroup", {"port": 8080, "vpcId": "vpc-0aaaaaaaaaaaaaaaa", "healthCheck": {"path": "/"}},
     "vpcId", "vpc-0bbbbbbbbbbbbbbbb", "replace"),
    ("aws:lb/targetGroup:TargetGroup", {"port": 8080, "vpcId": "vpc-0aaaaaaaaaaaaaaaa", "healthCheck": {"path": "/"}},
     "healthCheck", {"path": "/healthz"}, "update"),
    # elbv2/load_balancer.go: internal (the scheme), the type and the name are ForceNew; an ALB's subnets, security
    # groups and access logs change in place.
    ("aws:lb/loadBalancer:LoadBalancer", ALB, "internal", True, "replace"),
    ("aws:lb/loadBalancer:LoadBalancer", ALB, "loadBalancerType", "network", "replace"),
    ("aws:lb/loadBalancer:LoadBalancer", ALB, "name", "gateway-alb-2", "replace"),
    ("aws:lb/loadBalancer:LoadBalancer", ALB, "subnets", ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0cccccccccccccccc"],
     "update"),
    ("aws:lb/loadBalancer:LoadBalancer", ALB, "accessLogs", {**ALB["accessLogs"], "enabled": False}, "update"),
    # elbv2/listener.go: moving a listener to another load balancer forces a new one; its certificate does not.
    ("aws:lb/listener:Listener", LISTENER, "loadBalancerArn", f"{LB_ARN}-2", "replace"),
    ("aws:lb/listener:Listener", LISTENER, "certificateArn", f"{CERT_ARN}-2", "update"),
    ("aws:lb/listener:Listener", LISTENER, "sslPolicy", "ELBSecurityPolicy-TLS13-1-3-2021-06", "update"),
    # s3/bucket.go: the name is ForceNew, tags are not; each configuration resource is ForceNew on its bucket only.
    ("aws:s3/bucket:Bucket", BUCKET, "bucket", "ml-prod-gateway-alb-logs-222222222222", "replace"),
    ("aws:s3/bucket:Bucket", BUCKET, "objectLockEnabled", True, "replace"),
    ("aws:s3/bucket:Bucket", BUCKET, "bucketNamespace", "account-regional", "replace"),
    ("aws:s3/bucket:Bucket", BUCKET, "tags", {"service": "gateway", "team": "ml"}, "update"),
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {"bucket": "b", "blockPublicAcls": True}, "bucket",
     "b2", "replace"),
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {"bucket": "b", "blockPublicAcls": True},
     "blockPublicAcls", False, "update"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", OWNERSHIP, "bucket", "b2", "replace"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", OWNERSHIP, "rule",
     {"objectOwnership": "BucketOwnerPreferred"}, "update"),
    ("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b", "policy": "{}"}, "bucket", "b2", "replace"),
    ("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b", "policy": "{}"}, "policy", '{"Statement": []}', "update"),
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", SSE, "bucket", "b2",
     "replace"),
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", SSE,
     "expectedBucketOwner", "222222222222", "replace"),
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", SSE, "rules",
     [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}], "update"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", LIFECYCLE, "bucket", "b2", "replace"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", LIFECYCLE, "rules",
     [{**LIFECYCLE["rules"][0], "expiration": {"days": 90}}], "update"),
    # s3/bucket_versioning.go: bucket and expected_bucket_owner ForceNew, the versioning status and mfa in place; the
    # bucket's force_destroy is the provider's own flag (no AWS call).
    ("aws:s3/bucketVersioning:BucketVersioning", VERSIONING, "bucket", "b2", "replace"),
    ("aws:s3/bucketVersioning:BucketVersioning", VERSIONING, "expectedBucketOwner", "222222222222", "replace"),
    ("aws:s3/bucketVersioning:BucketVersioning", VERSIONING, "versioningConfiguration", {"status": "Suspended"},
     "update"),
    ("aws:s3/bucket:Bucket", {**BUCKET, "forceDestroy": True}, "forceDestroy", False, "update"),
    # ecs/service.go: name, cluster, launch_type, scheduling_strategy and iam_role are ForceNew; load balancers,
    # the task definition and the network configuration change in place (UpdateService).
    ("aws:ecs/service:Service", ECS_SERVICE, "launchType", "EC2", "replace"),
    ("aws:ecs/service:Service", ECS_SERVICE, "cluster", "arn:aws:ecs:eu-west-1:111111111111:cluster/other", "replace"),
    ("aws:ecs/service:Service", ECS_SERVICE, "loadBalancers",
     [{"containerName": "gateway", "containerPort": 8080, "targetGroupArn": f"{LB_ARN}-tg"}], "update"),
    ("aws:ecs/service:Service", ECS_SERVICE, "taskDefinition", "gateway:8", "update"),
    # ecs/task_definition.go: a revision is immutable; every argument but tags is ForceNew.
    ("aws:ecs/taskDefinition:TaskDefinition", TASK, "pidMode", "task", "replace"),
    ("aws:ecs/taskDefinition:TaskDefinition", TASK, "ipcMode", "none", "replace"),
    ("aws:ecs/taskDefinition:TaskDefinition", TASK, "placementConstraints",
     [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}], "replace"),
    ("aws:ecs/taskDefinition:TaskDefinition", TASK, "enableFaultInjection", True, "replace"),
    ("aws:ecs/taskDefinition:TaskDefinition", TASK, "cpu", "512", "replace"),
    ("aws:ecs/taskDefinition:TaskDefinition", TASK, "tags", {"service": "gateway", "team": "ml"}, "update"),
    # servicediscovery/service.go: inside dns_config, namespace_id, routing_policy and a record's type are ForceNew,
    # a record's TTL is not.
    ("aws:servicediscovery/service:Service", {"name": "gateway", "dnsConfig": CLOUD_MAP_DNS},
     "dnsConfig", {**CLOUD_MAP_DNS, "namespaceId": "ns-0bbbbbbbbbbbbbbbb"}, "replace"),
    ("aws:servicediscovery/service:Service", {"name": "gateway", "dnsConfig": CLOUD_MAP_DNS},
     "dnsConfig", {**CLOUD_MAP_DNS, "dnsRecords": [{"ttl": 10, "type": "A"}, {"ttl": 10, "type": "AAAA"}]},
     "replace"),
    ("aws:servicediscovery/service:Service", {"name": "gateway", "dnsConfig": CLOUD_MAP_DNS},
     "dnsConfig", {**CLOUD_MAP_DNS, "dnsRecords": [{"ttl": 30, "type": "A"}, {"ttl": 30, "type": "SRV"}]},
     "update"),
    # sns/topic_subscription.go: topic_arn, protocol and endpoint are ForceNew (a new subscription, confirmed again).
    ("aws:sns/topicSubscription:TopicSubscription", SUBSCRIPTION, "topic",
     "arn:aws:sns:eu-west-1:111111111111:other-alarms", "replace"),
    ("aws:sns/topicSubscription:TopicSubscription", SUBSCRIPTION, "endpoint", "https://hooks.example.com/other",
     "replace"),
    ("aws:sns/topicSubscription:TopicSubscription", SUBSCRIPTION, "rawMessageDelivery", True, "update"),
    # budgets/budget.go: the name (and account) ForceNew; the amount updates in place (UpdateBudget).
    ("aws:budgets/budget:Budget", {"name": "prod-ml-cost", "limitAmount": "2000"}, "name", "prod-ml-cost-2",
     "replace"),
    ("aws:budgets/budget:Budget", {"name": "prod-ml-cost", "limitAmount": "2000"}, "limitAmount", "3000", "update"),
    # sns/topic.go: name and fifo_topic are ForceNew; the key and the policy update in place.
    ("aws:sns/topic:Topic", {"name": "prod-ml-alarms"}, "name", "prod-ml-alarms-2", "replace"),
    ("aws:sns/topic:Topic", {"name": "prod-ml-alarms"}, "kmsMasterKeyId", "alias/other", "update"),
    # terraform-provider-random resource_id.go: keepers RequiresReplace (the broker-generation marker).
    ("random:index/randomId:RandomId", {"byteLength": 4, "keepers": {"broker": "b-1"}}, "keepers",
     {"broker": "b-2"}, "replace"),
    # ec2/vpc_default_security_group.go: vpc_id is ForceNew; ec2/vpc_internet_gateway.go: vpc_id attaches in place.
    ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", {"vpcId": "vpc-0aaaaaaaaaaaaaaaa", "ingress": []},
     "vpcId", "vpc-0bbbbbbbbbbbbbbbb", "replace"),
    ("aws:ec2/internetGateway:InternetGateway", {"vpcId": "vpc-0aaaaaaaaaaaaaaaa"}, "vpcId", "vpc-0bbbbbbbbbbbbbbbb",
     "update"),
    # events/rule.go: name is ForceNew, the pattern is not; events/target.go: rule is ForceNew, the ARN is not.
    ("aws:cloudwatch/eventRule:EventRule", {"name": "r", "eventPattern": "{}"}, "name", "r2", "replace"),
    ("aws:cloudwatch/eventRule:EventRule", {"name": "r", "eventPattern": "{}"}, "eventPattern",
     '{"source": ["aws.ecs"]}', "update"),
    ("aws:cloudwatch/eventTarget:EventTarget", {"rule": "r", "arn": ARN}, "rule", "r2", "replace"),
    ("aws:cloudwatch/eventTarget:EventTarget", {"rule": "r", "arn": ARN}, "arn", OTHER_ARN, "update"),
    # logs/metric_filter.go: log_group_name is ForceNew; logs/resource_policy.go: policy_name is ForceNew.
    ("aws:cloudwatch/logMetricFilter:LogMetricFilter", {"name": "f", "logGroupName": "/a", "pattern": ""},
     "logGroupName", "/b", "replace"),
    ("aws:cloudwatch/logMetricFilter:LogMetricFilter", {"name": "f", "logGroupName": "/a", "pattern": ""},
     "pattern", "{ $.x = 1 }", "update"),
    ("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", {"policyName": "p", "policyDocument": "{}"},
     "policyName", "p2", "replace"),
    # lambda/function.go: function_name is ForceNew; lambda/function_event_invoke_config.go: function_name too.
    ("aws:lambda/function:Function", {"name": "f", "memorySize": 128}, "name", "f2", "replace"),
    ("aws:lambda/function:Function", {"name": "f", "memorySize": 128}, "memorySize", 256, "update"),
    ("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", {"functionName": "f",
                                                                        "maximumRetryAttempts": 0},
     "functionName", "f2", "replace"),
    # codebuild/project.go and webhook.go: the project's name is ForceNew for both.
    ("aws:codebuild/project:Project", {"name": "p", "buildTimeout": 60}, "name", "p2", "replace"),
    ("aws:codebuild/webhook:Webhook", {"projectName": "p", "buildType": "BUILD"}, "projectName", "p2", "replace"),
    # s3/bucket_logging.go: bucket is ForceNew, the target prefix is not.
    ("aws:s3/bucketLogging:BucketLogging", {"bucket": "b", "targetBucket": "t", "targetPrefix": "x/"}, "bucket", "c",
     "replace"),
    ("aws:s3/bucketLogging:BucketLogging", {"bucket": "b", "targetBucket": "t", "targetPrefix": "x/"},
     "targetPrefix", "y/", "update"),
    # servicediscovery/instance.go: instance_id and service_id are ForceNew, attributes are registered again.
    ("aws:servicediscovery/instance:Instance", {"instanceId": "legacy-1", "serviceId": "srv-1",
                                                "attributes": {"AWS_INSTANCE_IPV4": "10.10.1.10"}},
     "serviceId", "srv-2", "replace"),
    ("aws:servicediscovery/instance:Instance", {"instanceId": "legacy-1", "serviceId": "srv-1",
                                                "attributes": {"AWS_INSTANCE_IPV4": "10.10.1.10"}},
     "attributes", {"AWS_INSTANCE_IPV4": "10.10.1.11"}, "update"),
    # appmesh/route.go: virtual_router_name is ForceNew, the spec (a canary's weights) is not.
    ("aws:appmesh/route:Route", {"name": "r", "meshName": "m", "virtualRouterName": "v", "spec": {"priority": 1}},
     "virtualRouterName", "v2", "replace"),
    ("aws:appmesh/route:Route", {"name": "r", "meshName": "m", "virtualRouterName": "v", "spec": {"priority": 1}},
     "spec", {"priority": 2}, "update"),
]


@pytest.mark.parametrize(("type_", "inputs", "key", "value", "expected"), CASES,
                         ids=[f"{case[0].rsplit(':', 1)[-1]}.{case[2]}->{case[4]}" for case in CASES])
def test_a_changed_input_is_classified_as_the_provider_does(type_: str, inputs: dict[str, Any], key: str, value: Any,
                                                            expected: str) -> None:
    assert _action(type_, inputs, {**inputs, key: value}) == expected


BROKER_LOGS = {"log_group_name": "/aws/amazonmq/broker/b-1/general", "region": "eu-west-1",
               "account_id": "111111111111", "retention_in_days": 30, "kms_key_arn": "arn:aws:kms:eu-west-1:1:key/k",
               "tags": {"env": "prod", "team": "ml-platform"}}
DRAIN = {"namespace_id": "ns-1", "namespace_name": "dev-ml-api", "region": "eu-west-1"}
ENI_DRAIN = {"security_group_id": "sg-1", "region": "eu-west-1", "function_name": "ml-platform-dev-queue-metrics"}
CHANGED = {"log_group_name": "/aws/amazonmq/broker/b-2/general", "region": "eu-central-1",
           "account_id": "222222222222", "retention_in_days": 365, "kms_key_arn": None,
           "namespace_id": "ns-2", "namespace_name": "dev2-ml-api", "tags": {"env": "prod", "team": "ml-infra"},
           "security_group_id": "sg-2", "function_name": "ml-platform-dev2-queue-metrics"}


@pytest.mark.parametrize(("provider", "inputs"), [(BrokerLogGroupProvider(), BROKER_LOGS),
                                                  (ServiceConnectDrainProvider(), DRAIN),
                                                  (LambdaEniDrainProvider(), ENI_DRAIN)],
                         ids=["broker-logs", "service-connect-drain", "lambda-eni-drain"])
def test_the_dynamic_resources_replace_where_their_providers_diff_says(provider: Any, inputs: dict[str, Any]) -> None:
    """The platform's dynamic providers decide for themselves (their ``diff``); the table, which knows one type
    for all of them, must agree input by input."""
    for key in inputs:
        news = {**inputs, key: CHANGED[key]}
        replaces = bool(provider.diff("id", inputs, news).replaces)
        expected = "replace" if replaces else "update"
        assert _action("pulumi-python:dynamic:Resource", inputs, news) == expected, key
        assert (key in REPLACE_ON_CHANGE["pulumi-python:dynamic:Resource"]) == replaces, key


def _layer(project: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {"project": project, "stack": "prod", "resources": list(resources)}


def _res(project: str, type_: str, name: str, inputs: dict[str, Any], protect: bool = False) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:prod::{project}::{type_}::{name}", "type": type_, "name": name, "custom": True,
            "inputs": inputs, "protect": protect}


def test_what_reads_a_replaced_resource_is_replaced_where_that_input_forces_it() -> None:
    """A subnet's new CIDR replaces the subnet; the broker in it (another layer, subnet_ids ForceNew) goes with
    it, while a VPC endpoint in it only updates (subnet_ids changes in place). The mocks give the replacement
    the same id; the diff still knows the real one will differ."""
    from shared.plan_diff import diff_layers
    from shared.synth.mocks import PlatformMocks

    subnet_type, broker_type = "aws:ec2/subnet:Subnet", "aws:mq/broker:Broker"
    subnet_id = PlatformMocks(project="network", stack="prod").physical_id(subnet_type, "private-a", {})
    endpoint = _res("network", "aws:ec2/vpcEndpoint:VpcEndpoint", "logs", {"subnetIds": [subnet_id]})
    broker = _res("broker", broker_type, "broker", {"subnetIds": [subnet_id], "hostInstanceType": "mq.m7g.large"},
                  protect=True)
    unrelated = _res("broker", "aws:sns/topic:Topic", "alarms", {"name": "alarms"})

    def network(cidr: str) -> dict[str, Any]:
        return _layer("network", _res("network", subnet_type, "private-a", {"cidrBlock": cidr}, protect=True),
                      endpoint)

    baseline = {"network": network("10.30.0.0/20"), "broker": _layer("broker", broker, unrelated)}
    fresh = {"network": network("10.40.0.0/20"), "broker": _layer("broker", broker, unrelated)}
    diffs = diff_layers(dict(baseline), dict(fresh), ["network", "broker"])
    actions = {change.name: (change.action, change.inputs, change.blocked) for d in diffs for change in d.changes}
    assert actions == {"private-a": ("replace", ("cidrBlock",), True),
                       "logs": ("update", ("subnetIds",), False),
                       "broker": ("replace", ("subnetIds",), True)}


def test_a_cloud_map_service_in_a_replaced_namespace_is_replaced_with_it() -> None:
    """The namespace's id sits inside the service's dns_config (ForceNew there): a new namespace, new services."""
    from shared.plan_diff import diff_layers
    from shared.synth.mocks import PlatformMocks

    namespace_type = "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"
    namespace_id = PlatformMocks(project="discovery", stack="prod").physical_id(namespace_type, "private", {})
    service = _res("discovery", "aws:servicediscovery/service:Service", "gateway",
                   {"name": "gateway", "dnsConfig": {**CLOUD_MAP_DNS, "namespaceId": namespace_id}})

    def discovery(name: str) -> dict[str, Any]:
        return _layer("discovery", _res("discovery", namespace_type, "private", {"name": name}), service)

    diffs = diff_layers({"discovery": discovery("prod.ml.internal")}, {"discovery": discovery("prod.ml.example")},
                        ["discovery"])
    assert {change.name: (change.action, change.inputs) for change in diffs[0].changes} == {
        "private": ("replace", ("name",)), "gateway": ("replace", ("dnsConfig",))}


def _custom_types(documents: Any) -> set[str]:
    return {resource["type"] for document in documents for resource in document["resources"]
            if resource.get("custom") and not resource["type"].startswith("pulumi:providers:")
            and resource["type"] != "pulumi:pulumi:StackReference"}


def test_every_resource_type_the_platform_creates_has_its_replace_on_change_inputs(everything: Any) -> None:
    """Each type the shipped envs and an env with every optional feature create has an entry (an empty one where
    the provider forces no new resource): a type without one has every change called an update, its replacement
    (a rule, topic or subscription recreated, the broker-generation marker) included."""
    from tests.synth_helpers import synth_layers

    _label, _env, documents, _policies = everything
    types = _custom_types(documents.values())
    for name in ("dev", "staging", "prod"):
        types |= _custom_types(synth_layers(name).values())
    assert sorted(types - set(REPLACE_ON_CHANGE)) == []


def _nested(keys: frozenset[str]) -> dict[str, Any]:
    """The table's entries as inputs (a dotted entry is an input nested in a block)."""
    inputs: dict[str, Any] = {}
    for key in sorted(keys):
        *blocks, last = key.split(".")
        level = inputs
        for block in blocks:
            level = level.setdefault(block, {})
        level.setdefault(last, None)
    return inputs


@pytest.mark.parametrize("type_", sorted(t for t in REPLACE_ON_CHANGE if t != "pulumi-python:dynamic:Resource"))
def test_each_replace_on_change_input_is_an_input_of_its_type(type_: str) -> None:
    """An entry that names no input of the installed SDK never matches a change (pulumi-aws names a subscription's
    topic_arn ``topic``; v7 dropped an Eip's ``vpc`` and a task definition's ``inferenceAccelerators``), so the
    replacement it was meant to catch is shown as an update. Deprecated inputs still count (shared.provider_schema
    reports those of the layers' own inputs)."""
    from shared.provider_schema import resource_problems

    assert [problem for problem in resource_problems(type_, _nested(REPLACE_ON_CHANGE[type_]))
            if "deprecated" not in problem] == []


#: Resources with a fixed name and an input whose change replaces them, replaced create-before-delete (no
#: delete_before_replace), each with why its replacement never runs into its own name: where it does, the create of
#: the new one fails on the name the old one still holds (ResourceAlreadyExists, RepositoryAlreadyExistsException),
#: on every run, after the layers before it.
CREATE_FIRST_WITH_A_FIXED_NAME: dict[tuple[str, str], str] = {
    ("aws:cloudwatch/logMetricFilter:LogMetricFilter", "logGroupName"):
        "a filter's name is per log group: the new one is on another group, where it is free",
    ("aws:ecr/repository:Repository", "encryptionConfigurations"):
        "only a new compute KMS key changes it (the key's inputs are constant), and the stateful-replacement gate "
        "refuses replacing a repository, which holds images, before any layer",
    ("aws:mq/configuration:Configuration", "engineVersion"):
        "its name carries the engine version (ml-<env>-rabbitmq-<version>): a new version is a new name",
    ("aws:mq/configuration:Configuration", "engineType"): "always RABBITMQ",
    ("aws:s3/bucket:Bucket", "bucketNamespace"): "always the account-regional namespace",
    ("aws:servicediscovery/httpNamespace:HttpNamespace", "description"): "a constant",
    ("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "vpc"):
        "a new VPC is a CIDR change, which the orchestrator only takes with the layers on it destroyed first",
    ("aws:servicediscovery/service:Service", "dnsConfig.namespaceId"):
        "a service's name is per namespace: the new one is in the new namespace, where it is free",
    ("aws:servicediscovery/service:Service", "dnsConfig.dnsRecords.type"): "a constant (A records)",
    ("aws:servicediscovery/service:Service", "dnsConfig.routingPolicy"): "a constant (MULTIVALUE)",
    ("aws:servicediscovery/service:Service", "healthCheckCustomConfig"): "a constant",
    ("aws:appmesh/route:Route", "meshName"): "the env's one mesh (App Mesh ended: no env creates one any more)",
    ("aws:appmesh/route:Route", "virtualRouterName"): "one router per service, named after it",
    ("aws:appmesh/virtualNode:VirtualNode", "meshName"): "the env's one mesh",
    ("aws:appmesh/virtualRouter:VirtualRouter", "meshName"): "the env's one mesh",
    ("aws:appmesh/virtualService:VirtualService", "meshName"): "the env's one mesh",
    ("rabbitmq:index/policy:Policy", "vhost"): "the env's one vhost, ml-<env>",
    ("rabbitmq:index/operatorPolicy:OperatorPolicy", "vhost"): "the env's one vhost, ml-<env>",
    ("rabbitmq:index/queue:Queue", "vhost"): "the env's one vhost, ml-<env>",
    ("rabbitmq:index/queue:Queue", "settings"):
        "constant by design: what changes of a queue is in its policies (shared.components.messaging)",
}


def test_a_fixed_name_resource_replaced_create_first_never_meets_its_own_name(everything: Any) -> None:
    """Create-before-delete (Pulumi's default) of a resource with a fixed name creates the new one while the old one
    holds the name: each such replace-on-change input is either behind delete_before_replace or listed with why no
    change of it ever reaches AWS with the name taken."""
    from shared.orchestrate.pending import NAME_INPUTS
    from tests.synth_helpers import synth_layers

    _label, _env, documents, _policies = everything
    all_documents = [*documents.values()]
    for name in ("dev", "staging", "prod"):
        all_documents.extend(synth_layers(name).values())
    unexplained: set[tuple[str, str]] = set()
    listed_and_seen: set[tuple[str, str]] = set()
    for document in all_documents:
        for resource in document["resources"]:
            inputs = resource.get("inputs") or {}
            names = {key for key in NAME_INPUTS if key != "namePrefix" and isinstance(inputs.get(key), str)}
            if not names or resource.get("delete_before_replace"):
                continue
            for key in REPLACE_ON_CHANGE.get(resource["type"], frozenset()) - names:
                if key.split(".")[0] in inputs:
                    pair = (resource["type"], key)
                    (listed_and_seen if pair in CREATE_FIRST_WITH_A_FIXED_NAME else unexplained).add(pair)
    assert not unexplained, f"replaced create-first onto their own name: {sorted(unexplained)}"
    assert listed_and_seen == set(CREATE_FIRST_WITH_A_FIXED_NAME), sorted(set(CREATE_FIRST_WITH_A_FIXED_NAME)
                                                                          - listed_and_seen)
