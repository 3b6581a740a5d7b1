"""The ``aws`` rules that cover the anchor rule sets' controls (KMS, Secrets Manager, IAM, ECR, Amazon
MQ, ECS, network, load balancer, CloudWatch Logs): for each, a compliant case, a non-compliant case
and a case whose deciding value is unknown at preview -- all through the real pack process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.resources import UNKNOWN_ARRAY, UNKNOWN_BOOL, UNKNOWN_NUMBER, UNKNOWN_OBJECT, UNKNOWN_STRING, res
from tests.policies.tokens import (
    BUCKET,
    EGRESS_RULE,
    LAMBDA_PERMISSION,
    LISTENER,
    ROLE,
    ROLE_POLICY,
    SECRET,
    SECRET_VERSION,
    SG,
    SG_RULE,
    TASK,
    TOPIC_POLICY,
    VPC_ENDPOINT,
)
from tests.policies.tokens import FUNCTION as LAMBDA_FUNCTION
from tests.policies.tokens import KMS_KEY as KEY
from tests.policies.tokens import KMS_KEY_POLICY as KEY_POLICY
from tests.policies.tokens import LOAD_BALANCER as LB
from tests.policies.tokens import PROJECT as CODEBUILD
from tests.policies.tokens import SECRET_ROTATION as ROTATION

PASSWORD = "random:index/randomPassword:RandomPassword"


def codebuild(logsConfig: Any = None, **environment: Any) -> dict[str, Any]:
    """A CodeBuild project named "r" with ``environment`` inputs (and ``logsConfig`` when given)."""
    inputs: dict[str, Any] = {"environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:8.0",
                                              "computeType": "BUILD_GENERAL1_SMALL", **environment},
                              "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"}}
    if logsConfig is not None:
        inputs["logsConfig"] = logsConfig
    return res(CODEBUILD, "r", inputs)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ACCOUNT_ADMIN = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                 "Action": "kms:*", "Resource": "*"}
PUBLIC = {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
PUBLIC_IN_ORG = {**PUBLIC, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}
ECS_TRUST = {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}


GITHUB_PROVIDER = "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"
GITHUB_SUB = "token.actions.githubusercontent.com:sub"
GITHUB_AUD = "token.actions.githubusercontent.com:aud"


def github_trust(condition: dict[str, Any] | None, provider: str = GITHUB_PROVIDER) -> dict[str, Any]:
    """A trust statement for GitHub Actions' OIDC provider (or ``provider``) with ``condition``."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Federated": provider},
                                 "Action": "sts:AssumeRoleWithWebIdentity"}
    return {**statement, "Condition": condition} if condition is not None else statement


def task(command: list[str] | None = None, entry_point: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "cache", "image": "redis@sha256:" + "a" * 64, "essential": True}
    if command is not None:
        container["command"] = command
    if entry_point is not None:
        container["entryPoint"] = entry_point
    return res(TASK, "r", {"containerDefinitions": json.dumps([container]), "networkMode": "awsvpc"})


def secret_with_version(keepers: dict[str, str] | None, tags: Any = None) -> list[dict[str, Any]]:
    inputs: dict[str, Any] = {"name": "platform/dev/messaging/app"}
    inputs.update({"tags": tags if tags is not None else {"rotation-max-age-days": "90"}} if tags != {} else {})
    secret = res(SECRET, "r", inputs)
    password = res(PASSWORD, "pw", {"length": 32, **({"keepers": keepers} if keepers is not None else {})})
    version = res(SECRET_VERSION, "v", {"secretId": "arn:secret", "secretString": UNKNOWN_STRING},
                  property_dependencies={"secretId": [secret], "secretString": [password]},
                  dependencies=[secret, password])
    return [secret, password, version]


def secret_with_rotation(rules: Any) -> list[dict[str, Any]]:
    secret = res(SECRET, "r", {"name": "platform/dev/app"})
    rotation = res(ROTATION, "rot", {"secretId": "arn:secret", "rotationLambdaArn": "arn:aws:lambda:x",
                                     "rotationRules": rules}, property_dependencies={"secretId": [secret]})
    return [secret, rotation]


def listener(protocol: Any, **inputs: Any) -> dict[str, Any]:
    return res(LISTENER, "r", {"loadBalancerArn": "arn:lb", "protocol": protocol, **inputs})


BOUNDARY = "arn:aws:iam::111111111111:policy/ml-platform-prod-role-boundary"
ALB_GOOD = {"loadBalancerType": "application", "internal": False, "dropInvalidHeaderFields": True,
            "enableDeletionProtection": True, "accessLogs": {"enabled": True, "bucket": "lb-logs"}}

# (rule, resources of the compliant case, of the non-compliant case and part of its message,
#  of the unknown case and what the not-applicable reason names). The judged resource is named "r".
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], str, list[dict[str, Any]], str]] = [
    ("kms-key-rotation",
     [res(KEY, "r", {"enableKeyRotation": True})],
     [res(KEY, "r", {})], "does not rotate",
     [res(KEY, "r", {"enableKeyRotation": UNKNOWN_BOOL})], "enableKeyRotation"),
    ("kms-key-policy",
     [res(KEY, "r", {"policy": doc(ACCOUNT_ADMIN, PUBLIC_IN_ORG)})],
     [res(KEY, "r", {"policy": doc(ACCOUNT_ADMIN, PUBLIC)})], "statement Anyone allows any principal",
     [res(KEY, "r", {"policy": UNKNOWN_STRING})], "policy"),
    ("kms-key-deletion-window",
     [res(KEY, "r", {"deletionWindowInDays": 30})],
     [res(KEY, "r", {"deletionWindowInDays": 7})], "at least 30",  # prod's floor
     [res(KEY, "r", {"deletionWindowInDays": UNKNOWN_NUMBER})], "deletionWindowInDays"),
    ("secretsmanager-cmk",
     [res(SECRET, "r", {"kmsKeyId": "arn:aws:kms:eu-west-1:111111111111:key/abc"})],
     [res(SECRET, "r", {"kmsKeyId": "alias/aws/secretsmanager"})], "AWS-managed key",
     [res(SECRET, "r", {"kmsKeyId": UNKNOWN_STRING})], "kmsKeyId"),
    ("secretsmanager-rotation",
     secret_with_version({"rotation_epoch": "2026-11"}),
     secret_with_version(None), "never rotates",
     [res(SECRET, "r", {}), res(SECRET_VERSION, "v", {"secretId": UNKNOWN_STRING}),
      res(SECRET, "other", {})], "secretId"),
    ("iam-no-star-resource-write",
     [res(ROLE_POLICY, "r", {"role": "t", "policy": doc(
         {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
         {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "logs:Describe*"], "Resource": "*"},
         {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:eu-west-1:1:q"})})],
     [res(ROLE_POLICY, "r", {"role": "t", "policy": doc(
         {"Sid": "Wide", "Effect": "Allow", "Action": ["sqs:SendMessage", "secretsmanager:GetSecretValue",
                                                       "s3:Put*"], "Resource": "*"})})],
     "statement Wide allows 'sqs:SendMessage', 'secretsmanager:GetSecretValue', 's3:Put*' on '*'",
     [res(ROLE_POLICY, "r", {"role": "t", "policy": UNKNOWN_STRING})], "policy"),
    ("iam-trust-no-wildcard-principal",
     [res(ROLE, "r", {"assumeRolePolicy": doc(ECS_TRUST)})],
     [res(ROLE, "r", {"assumeRolePolicy": doc({"Effect": "Allow", "Principal": {"AWS": "*"},
                                                "Action": "sts:AssumeRole"})})], "lets any principal assume",
     [res(ROLE, "r", {"assumeRolePolicy": UNKNOWN_STRING})], "assumeRolePolicy"),
    ("iam-trust-oidc-subject",
     [res(ROLE, "r", {"assumeRolePolicy": doc(github_trust(
         {"StringEquals": {GITHUB_AUD: "sts.amazonaws.com", GITHUB_SUB: "repo:acme/ml-platform:environment:prod"}}))})],
     [res(ROLE, "r", {"assumeRolePolicy": doc(github_trust({"StringEquals": {GITHUB_AUD: "sts.amazonaws.com"}}))})],
     "without a condition on token.actions.githubusercontent.com:sub",
     [res(ROLE, "r", {"assumeRolePolicy": UNKNOWN_STRING})], "assumeRolePolicy"),
    ("iam-role-permissions-boundary",
     [res(ROLE, "r", {"assumeRolePolicy": doc(ECS_TRUST), "permissionsBoundary": BOUNDARY})],
     [res(ROLE, "r", {"assumeRolePolicy": doc(ECS_TRUST)})], "has no permissions boundary",
     [res(ROLE, "r", {"assumeRolePolicy": doc(ECS_TRUST), "permissionsBoundary": UNKNOWN_STRING})],
     "permissionsBoundary"),
    ("iam-no-user-policies",
     [res("aws:iam/policyAttachment:PolicyAttachment", "r", {"policyArn": "arn:p", "roles": ["app"]})],
     [res("aws:iam/policyAttachment:PolicyAttachment", "r", {"policyArn": "arn:p", "users": ["alice"]})],
     "to user(s) alice",
     [res("aws:iam/policyAttachment:PolicyAttachment", "r", {"policyArn": "arn:p", "users": UNKNOWN_ARRAY})],
     "users"),
    ("ecr-repository-policy-not-public",
     [res("aws:ecr/repositoryPolicy:RepositoryPolicy", "r", {"repository": "app", "policy": doc(
         {**PUBLIC_IN_ORG, "Action": "ecr:BatchGetImage"})})],
     [res("aws:ecr/repositoryPolicy:RepositoryPolicy", "r", {"repository": "app", "policy": doc(
         {**PUBLIC, "Action": "ecr:BatchGetImage"})})], "allows any principal without a condition",
     [res("aws:ecr/repositoryPolicy:RepositoryPolicy", "r", {"repository": "app", "policy": UNKNOWN_STRING})],
     "policy"),
    ("codebuild-project-no-aws-credentials",
     [codebuild(environmentVariables=[{"name": "PLATFORM_ENV", "value": "prod"},
                                      {"name": "AWS_SECRET_ACCESS_KEY", "value": "ci/key",
                                       "type": "SECRETS_MANAGER"}])],
     [codebuild(environmentVariables=[{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA" + "ABCDEFGHIJKLMNOP"},
                                      {"name": "AWS_SECRET_ACCESS_KEY", "value": "x", "type": "PLAINTEXT"}])],
     "holds AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY in plaintext",
     [codebuild(environmentVariables=UNKNOWN_ARRAY)], "environmentVariables"),
    ("codebuild-project-logging",
     [codebuild(), res(CODEBUILD, "s3-only", {"environment": {"type": "LINUX_CONTAINER"}, "logsConfig": {
         "cloudwatchLogs": {"status": "DISABLED"}, "s3Logs": {"status": "ENABLED", "location": "b/p"}}})],
     [codebuild(logsConfig={"cloudwatchLogs": {"status": "DISABLED"}})], "keeps no build log",
     [codebuild(logsConfig={"cloudwatchLogs": {"status": UNKNOWN_STRING}})], "cloudwatchLogs.status"),
    ("codebuild-project-not-privileged",
     [codebuild(), {**codebuild(privilegedMode=False), "name": "r2"}],
     [codebuild(privilegedMode=True)], "runs in privileged mode",
     [codebuild(privilegedMode=UNKNOWN_BOOL)], "privilegedMode"),
    ("env-vars-no-plaintext-secrets",
     [res(LAMBDA_FUNCTION, "r", {"environment": {"variables": {
         "MANAGEMENT_ENDPOINT": "https://b-1.mq.eu-west-1.on.aws", "SECRET_ARN": "arn:aws:secretsmanager:x",
         "ROUTING_KEY": "jobs.train"}}}),
      codebuild(environmentVariables=[{"name": "PLATFORM_ENV", "value": "prod"},
                                      {"name": "PULUMI_CONFIG_PASSPHRASE", "value": "ml-platform/prod/passphrase",
                                       "type": "SECRETS_MANAGER"}])],
     [res(LAMBDA_FUNCTION, "r", {"environment": {"variables": {
         "ADMIN_PASSWORD": "hunter2hunter2", "BROKER_URL": "amqps://admin:hunter2hunter2@b-1.mq.on.aws:5671"}}})],
     "holds credentials in plain environment.variables: ADMIN_PASSWORD (credential-like name), BROKER_URL (value is "
     "a URL with an embedded password)",
     [res(LAMBDA_FUNCTION, "r", {"environment": {"variables": {"ADMIN_PASSWORD": UNKNOWN_STRING}}})],
     "environment.variables"),
    ("sns-topic-policy-not-public",
     [res("aws:sns/topicPolicy:TopicPolicy", "r", {"arn": "arn:aws:sns:eu-west-1:1:alarms", "policy": doc(
         {**PUBLIC, "Action": "sns:Publish", "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}},
         {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish",
          "Resource": "*"})})],
     [res("aws:sns/topic:Topic", "r", {"name": "alarms", "policy": doc({**PUBLIC, "Action": "sns:Subscribe"})})],
     "statement Anyone allows any principal without a condition",
     [res("aws:sns/topicPolicy:TopicPolicy", "r", {"arn": "arn:t", "policy": UNKNOWN_STRING})], "policy"),
    ("sqs-queue-policy-not-public",
     [res("aws:sqs/queuePolicy:QueuePolicy", "r", {"queueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q", "policy": doc(
         {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
          "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}},
         {**PUBLIC, "Action": "sqs:SendMessage",
          "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}})}),
      res("aws:sqs/queue:Queue", "q", {"name": "q", "sqsManagedSseEnabled": True})],
     [res("aws:sqs/queue:Queue", "r", {"name": "q", "policy": doc({**PUBLIC, "Action": "sqs:ReceiveMessage"})})],
     "statement Anyone allows any principal without a condition",
     [res("aws:sqs/queuePolicy:QueuePolicy", "r", {"queueUrl": "https://q", "policy": UNKNOWN_STRING})], "policy"),
    ("lambda-permission-not-public",
     [res(LAMBDA_PERMISSION, "r", {"action": "lambda:InvokeFunction", "function": "f",
                                   "principal": "events.amazonaws.com", "sourceArn": UNKNOWN_STRING})],
     [res(LAMBDA_PERMISSION, "r", {"action": "lambda:InvokeFunction", "function": "f", "principal": "*"})],
     "lets any principal invoke the function",
     [res(LAMBDA_PERMISSION, "r", {"action": "lambda:InvokeFunction", "function": "f",
                                   "principal": UNKNOWN_STRING})], "principal"),
    ("mq-broker-auto-minor-upgrade",
     [res("aws:mq/broker:Broker", "r", {"engineType": "RabbitMQ", "autoMinorVersionUpgrade": True})],
     [res("aws:mq/broker:Broker", "r", {"engineType": "RabbitMQ"})], "auto_minor_version_upgrade=True",
     [res("aws:mq/broker:Broker", "r", {"autoMinorVersionUpgrade": UNKNOWN_BOOL})], "autoMinorVersionUpgrade"),
    ("mq-broker-activemq-cmk",
     [res("aws:mq/broker:Broker", "r", {"engineType": "ActiveMQ", "encryptionOptions": {
         "useAwsOwnedKey": False, "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k"}})],
     [res("aws:mq/broker:Broker", "r", {"engineType": "ActiveMQ"})], "AWS-owned key",
     [res("aws:mq/broker:Broker", "r", {"engineType": "ActiveMQ", "encryptionOptions": UNKNOWN_OBJECT})],
     "encryptionOptions"),
    ("ecs-service-fargate-platform-version",
     [res("aws:ecs/service:Service", "r", {"launchType": "FARGATE", "platformVersion": "1.4.0"})],
     [res("aws:ecs/service:Service", "r", {"launchType": "FARGATE", "platformVersion": "1.3.0"})],
     "pinned to Fargate platform version 1.3.0",
     [res("aws:ecs/service:Service", "r", {"launchType": "FARGATE", "platformVersion": UNKNOWN_STRING})],
     "platformVersion"),
    ("ecs-task-no-secrets-in-command",
     [task(command=["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD"'])],
     [task(command=["redis-server", "--requirepass", "hunter2"])], "--requirepass <literal>",
     [res(TASK, "r", {"containerDefinitions": UNKNOWN_STRING})], "containerDefinitions"),
    ("ecs-scheduled-task-no-public-ip",
     [res("aws:scheduler/schedule:Schedule", "r", {"target": {"arn": "arn:cluster", "ecsParameters": {
         "taskDefinitionArn": "arn:td", "networkConfiguration": {"assignPublicIp": False, "subnets": ["s"]}}}})],
     [res("aws:cloudwatch/eventTarget:EventTarget", "r", {"rule": "nightly", "arn": "arn:cluster", "ecsTarget": {
         "taskDefinitionArn": "arn:td", "networkConfiguration": {"assignPublicIp": True, "subnets": ["s"]}}})],
     "starts ECS tasks with a public IP",
     [res("aws:cloudwatch/eventTarget:EventTarget", "r", {"rule": "nightly", "ecsTarget": {
         "taskDefinitionArn": "arn:td", "networkConfiguration": {"assignPublicIp": UNKNOWN_BOOL}}})],
     "assignPublicIp"),
    ("ecs-cluster-exec-logging",
     [res("aws:ecs/cluster:Cluster", "r", {"configuration": {"executeCommandConfiguration": {
         "logging": "OVERRIDE", "logConfiguration": {"cloudWatchLogGroupName": "/ecs/exec"}}}})],
     [res("aws:ecs/cluster:Cluster", "r", {"configuration": {"executeCommandConfiguration": {"logging": "NONE"}}})],
     "logging='NONE'",
     [res("aws:ecs/cluster:Cluster", "r", {"configuration": {"executeCommandConfiguration": {
         "logging": UNKNOWN_STRING}}})], "executeCommandConfiguration"),
    ("security-group-no-open-egress",
     [res(SG, "r", {"description": "https out", "egress": [
         {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]})],
     [res(SG, "r", {"description": "all out", "egress": [
         {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]})],
     "allows egress to 0.0.0.0/0 on all ports",
     [res(EGRESS_RULE, "r", {"securityGroupId": "sg-1", "ipProtocol": "-1", "cidrIpv4": UNKNOWN_STRING})],
     "cidrIpv4"),
    ("vpc-endpoint-policy",
     [res("aws:ec2/vpcEndpoint:VpcEndpoint", "r", {"vpcId": "vpc-1", "serviceName": "com.amazonaws.eu-west-1.s3",
                                                   "policy": doc({**PUBLIC, "Action": "s3:*", "Condition": {
                                                       "StringEquals": {"aws:PrincipalAccount": "111111111111"}}})})],
     [res("aws:ec2/vpcEndpoint:VpcEndpoint", "r", {"vpcId": "vpc-1", "serviceName": "com.amazonaws.eu-west-1.s3"})],
     "default full-access policy",
     [res("aws:ec2/vpcEndpoint:VpcEndpoint", "r", {"vpcId": "vpc-1", "policy": UNKNOWN_STRING})], "policy"),
    ("lb-access-logs",
     [res(LB, "r", ALB_GOOD)],
     [res(LB, "r", {**ALB_GOOD, "accessLogs": {"enabled": False, "bucket": "lb-logs"}})], "writes no access logs",
     [res(LB, "r", {**ALB_GOOD, "accessLogs": UNKNOWN_OBJECT})], "accessLogs"),
    ("lb-drop-invalid-headers",
     [res(LB, "r", ALB_GOOD)],
     [res(LB, "r", {**ALB_GOOD, "dropInvalidHeaderFields": False})], "drop_invalid_header_fields=True",
     [res(LB, "r", {**ALB_GOOD, "dropInvalidHeaderFields": UNKNOWN_BOOL})], "dropInvalidHeaderFields"),
    ("lb-deletion-protection",
     [res(LB, "r", ALB_GOOD)],
     [res(LB, "r", {**ALB_GOOD, "enableDeletionProtection": False})], "enable_deletion_protection=True",
     [res(LB, "r", {**ALB_GOOD, "enableDeletionProtection": UNKNOWN_BOOL})], "enableDeletionProtection"),
    ("stateful-no-force-destroy",
     [res(BUCKET, "r", {"forceDestroy": False})],
     [res(BUCKET, "r", {"forceDestroy": True})], "force_destroy=True",
     [res(BUCKET, "r", {"forceDestroy": UNKNOWN_BOOL})], "forceDestroy"),
    ("lb-listener-https",
     [listener("HTTP", defaultActions=[{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443",
                                                                          "statusCode": "HTTP_301"}}])],
     [listener("HTTP", defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}])], "serves plain HTTP",
     [listener(UNKNOWN_STRING)], "protocol"),
    ("lb-tls-policy",
     [listener("HTTPS", sslPolicy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06", certificateArn="arn:cert")],
     [listener("HTTPS", certificateArn="arn:cert")], "ELBSecurityPolicy-2016-08 (the default)",
     [listener("HTTPS", sslPolicy=UNKNOWN_STRING, certificateArn="arn:cert")], "sslPolicy"),
    ("lb-waf-associated",
     [res(LB, "r", ALB_GOOD), res("aws:wafv2/webAclAssociation:WebAclAssociation", "waf", {
         "resourceArn": UNKNOWN_STRING, "webAclArn": "arn:acl"}, property_dependencies={"resourceArn": []})],
     [res(LB, "r", ALB_GOOD)], "has no AWS WAF web ACL",
     [res(LB, "r", {**ALB_GOOD, "internal": UNKNOWN_BOOL})], "internal"),
    ("logs-retention-floor",
     [res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": 365})],
     [res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": 90})], "at least 365",  # prod's floor
     [res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": UNKNOWN_NUMBER})], "retentionInDays"),
    ("logs-kms-encryption",
     [res("aws:cloudwatch/logGroup:LogGroup", "r", {"kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k"})],
     [res("aws:cloudwatch/logGroup:LogGroup", "r", {})], "not encrypted with a customer-managed key",
     [res("aws:cloudwatch/logGroup:LogGroup", "r", {"kmsKeyId": UNKNOWN_STRING})], "kmsKeyId"),
    ("lb-desync-mitigation",
     [res(LB, "r", ALB_GOOD)],
     [res(LB, "r", {**ALB_GOOD, "desyncMitigationMode": "monitor"})], "desync_mitigation_mode='monitor'",
     [res(LB, "r", {**ALB_GOOD, "desyncMitigationMode": UNKNOWN_STRING})], "desyncMitigationMode"),
    ("lb-multi-az",
     [res(LB, "r", {**ALB_GOOD, "subnets": ["subnet-a", "subnet-b"]})],
     [res(LB, "r", {**ALB_GOOD, "loadBalancerType": "network", "subnets": ["subnet-a"]})], "in 1 subnet(s)",
     [res(LB, "r", {**ALB_GOOD, "subnets": UNKNOWN_ARRAY})], "subnets"),
]
# The WAF association in the compliant case refers to the ALB through its dependencies.
CASES[[c[0] for c in CASES].index("lb-waf-associated")][1][1]["dependencies"] = [
    CASES[[c[0] for c in CASES].index("lb-waf-associated")][1][0]]
IDS = [case[0] for case in CASES]


def judged(findings: list[dict[str, Any]], rule: str) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == rule and (f["urn"] or "").endswith("::r")]


@pytest.mark.parametrize(("rule", "good", "bad", "message", "unknown", "what"), CASES, ids=IDS)
def test_compliant_case_passes(policy_findings, rule, good, bad, message, unknown, what):
    assert not judged(policy_findings(good, env="prod"), rule)


@pytest.mark.parametrize(("rule", "good", "bad", "message", "unknown", "what"), CASES, ids=IDS)
def test_non_compliant_case_fails_with_its_fix(policy_findings, rule, good, bad, message, unknown, what):
    found = judged(policy_findings(bad, env="prod"), rule)
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize(("rule", "good", "bad", "message", "unknown", "what"), CASES, ids=IDS)
def test_unknown_at_preview_is_not_applicable(policy_result, rule, good, bad, message, unknown, what):
    result = policy_result(unknown, env="prod")
    assert not [f for f in result.findings if f.rule == rule]
    reasons = [na.reason for na in result.not_applicable if na.rule == rule
               and "is not a resource type this rule checks" not in na.reason]
    assert reasons and any(what in reason for reason in reasons), reasons


# -- rule-specific details ----------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "resource", "env", "fails"), [
    ("kms-key-deletion-window", res(KEY, "r", {"deletionWindowInDays": 7}), "dev", False),
    ("kms-key-deletion-window", res(KEY, "r", {"deletionWindowInDays": 7}), "staging", True),
    ("kms-key-deletion-window", res(KEY, "r", {}), "prod", False),  # AWS's default is 30
    ("kms-key-deletion-window", res(KEY, "r", {"deletionWindowInDays": 29}), "prod", True),  # one day short of 30
    ("kms-key-deletion-window", res(KEY, "r", {"deletionWindowInDays": "seven"}), "dev", True),  # not a number
    ("logs-retention-floor", res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": 14}), "dev", False),
    ("logs-retention-floor", res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": 14}), "staging", True),
    ("logs-retention-floor", res("aws:cloudwatch/logGroup:LogGroup", "r", {"retentionInDays": 1}), "dev", True),
])
def test_floors_come_from_the_envs_baseline(policy_findings, rule, resource, env, fails):
    assert bool(judged(policy_findings([resource], env=env), rule)) is fails


def test_pack_config_sends_the_baselines_parameters():
    from shared.policy.enforcement import enforcement_for
    from shared.policy.engine import pack_config

    assert pack_config(enforcement_for("dev"), "aws")["logs-retention-floor"] == {
        "enforcementLevel": "mandatory", "minimumDays": 7}
    assert pack_config(enforcement_for("prod"), "aws")["kms-key-deletion-window"]["minimumDays"] == 30


def test_a_rabbitmq_broker_is_not_applicable_to_the_activemq_cmk_rule_with_awss_reason(policy_not_applicable):
    broker = res("aws:mq/broker:Broker", "r", {"engineType": "RabbitMQ"})
    reasons = [r["reason"] for r in policy_not_applicable([broker]) if r["rule"] == "mq-broker-activemq-cmk"]
    assert reasons and "do not apply to RabbitMQ brokers" in reasons[0]


@pytest.mark.parametrize(("rules", "fails"), [
    ({"automaticallyAfterDays": 30}, False),
    ({"scheduleExpression": "rate(10 days)"}, False),
    ({"scheduleExpression": "rate(12 hours)"}, False),  # Secrets Manager rotates as often as every four hours
    ({"scheduleExpression": "rate(4 hours)"}, False),
    ({"scheduleExpression": "rate(4320 hours)"}, True),  # 180 days
    ({"scheduleExpression": "cron(0 4 1 * ? *)"}, False),
    ({"automaticallyAfterDays": 180}, True),  # prod: at most 90
])
def test_a_rotation_schedule_within_max_days_passes(policy_findings, rules, fails):
    found = judged(policy_findings(secret_with_rotation(rules), env="prod"), "secretsmanager-rotation")
    assert bool(found) is fails
    if fails:
        assert "rotates only every 180 days (at most 90)" in found[0]


@pytest.mark.parametrize(("tags", "message"), [
    ({"rotation-max-age-days": "90"}, None),
    ({"rotation-max-age-days": "180"}, "declares rotation-max-age-days=180"),  # prod: at most 90
    ({}, "declares no positive rotation-max-age-days"),
    ({"rotation-max-age-days": "0"}, "declares no positive rotation-max-age-days"),
])
def test_an_epoch_rotated_secret_declares_a_max_age_within_max_days(policy_findings, tags, message):
    found = judged(policy_findings(secret_with_version({"rotation_epoch": "2026-11-01"}, tags), env="prod"),
                   "secretsmanager-rotation")
    if message is None:
        assert not found
    else:
        assert found and message in found[0]


def test_an_epoch_rotated_secret_with_unknown_tags_is_decided_later(policy_not_applicable):
    resources = secret_with_version({"rotation_epoch": "2026-11-01"}, UNKNOWN_OBJECT)
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == "secretsmanager-rotation"]
    assert reasons and "secret 'r': tags" in reasons[0]


def test_a_generated_password_without_epoch_keeper_does_not_count_as_rotation(policy_findings):
    found = judged(policy_findings(secret_with_version({"length": "32"}), env="prod"), "secretsmanager-rotation")
    assert found and "never rotates" in found[0]


def test_kms_key_without_policy_passes_when_a_key_policy_resource_sets_it(policy_findings):
    key = res(KEY, "r", {"enableKeyRotation": True})
    key_policy = res(KEY_POLICY, "kp", {"keyId": UNKNOWN_STRING, "policy": doc(ACCOUNT_ADMIN)},
                     property_dependencies={"keyId": [key]})
    assert not judged(policy_findings([key, key_policy], env="prod"), "kms-key-policy")
    assert judged(policy_findings([res(KEY, "r", {"enableKeyRotation": True})], env="prod"), "kms-key-policy")


@pytest.mark.parametrize(("condition", "fails"), [
    # AWS Config's kms-key-policy-no-public-access (Security Hub KMS.5): a non-public key policy grants access to
    # fixed values only (no wildcard, no policy variable)
    ({"StringEquals": {"kms:CallerAccount": "111111111111"}}, False),
    ({"StringEquals": {"kms:CallerAccount": "111111111111", "kms:ViaService": "s3.eu-west-1.amazonaws.com"}}, False),
    ({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, False),
    ({"StringLike": {"kms:CallerAccount": "*"}}, True),
    ({"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}, True),  # any account's requests via S3
    ({"Bool": {"kms:GrantIsForAWSResource": "true"}}, True),
], ids=["caller-account", "caller-account-via-service", "org", "any-caller-account", "via-service-only",
        "grant-for-aws-resource"])
def test_kms_key_policy_narrowing_counts_only_fixed_callers(policy_findings, condition, fails):
    anyone = {**PUBLIC, "Condition": condition}
    key = res(KEY, "r", {"policy": doc(ACCOUNT_ADMIN, anyone)})
    assert bool(judged(policy_findings([key], env="prod"), "kms-key-policy")) is fails
    key_policy = res(KEY_POLICY, "r", {"keyId": "k", "policy": doc(ACCOUNT_ADMIN, anyone)})
    assert bool(judged(policy_findings([key_policy], env="prod"), "kms-key-policy")) is fails


@pytest.mark.parametrize("key_type", ["aws:kms/replicaKey:ReplicaKey", "aws:kms/externalKey:ExternalKey"])
def test_replica_and_imported_keys_are_held_to_the_key_policy_rule(policy_findings, key_type):
    # Both carry a key policy of their own (pulumi_aws kms.ReplicaKey / kms.ExternalKey ``policy``): a replica
    # does not inherit its primary's policy, and AWS's default policy applies where none is set.
    assert not judged(policy_findings([res(key_type, "r", {"policy": doc(ACCOUNT_ADMIN)})], env="prod"),
                      "kms-key-policy")
    public = judged(policy_findings([res(key_type, "r", {"policy": doc(ACCOUNT_ADMIN, PUBLIC)})], env="prod"),
                    "kms-key-policy")
    assert public and "allows any principal" in public[0]
    assert judged(policy_findings([res(key_type, "r", {})], env="prod"), "kms-key-policy")


@pytest.mark.parametrize(("spec", "applies"), [("SYMMETRIC_DEFAULT", True), ("RSA_2048", False), ("HMAC_256", False)])
def test_only_symmetric_keys_must_rotate(policy_findings, spec, applies):
    found = judged(policy_findings([res(KEY, "r", {"keySpec": spec})], env="prod"), "kms-key-rotation")
    assert bool(found) is applies


@pytest.mark.parametrize(("argument", "fails"), [
    (["redis-server", "--requirepass=hunter2"], True),
    (["sh", "-c", "redis-server --requirepass hunter2"], True),
    (["app", "--broker", "amqps://app:hunter2@broker:5671"], True),
    (["app", "--token", "--verbose"], False),  # an option without a value
    (["app", "--password-file", "/run/secrets/pw"], False),
    (["app", "--requirepass", "${REDIS_PASSWORD}"], False),
])
def test_command_secret_shapes(policy_findings, argument, fails):
    assert bool(judged(policy_findings([task(entry_point=argument)], env="prod"),
                       "ecs-task-no-secrets-in-command")) is fails


@pytest.mark.parametrize(("entry", "fails"), [
    ({"protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["0.0.0.0/0"]}, True),
    ({"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}, True),
    ({"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/16"]}, False),
])
def test_egress_shapes(policy_findings, entry, fails):
    group = res(SG, "r", {"description": "egress test", "egress": [entry]})
    assert bool(judged(policy_findings([group], env="prod"), "security-group-no-open-egress")) is fails


@pytest.mark.parametrize(("protocol", "from_port", "to_port", "fails"), [
    ("tcp", 443, 443, False),   # the services SG: HTTPS through the NAT to AWS APIs without an endpoint
    ("-1", None, None, True),
    ("tcp", 0, 65535, True),
    ("tcp", 1, 65535, True),  # every usable TCP port: port 0 is reserved, as the ingress all-ports rule counts it
    ("udp", 1, 65535, True),
    ("tcp", 1024, 65535, False),
])
def test_standalone_egress_rule_to_the_world_fails_only_on_all_ports(policy_findings, protocol, from_port, to_port,
                                                                      fails):
    props: dict[str, Any] = {"securityGroupId": "sg-1", "ipProtocol": protocol, "cidrIpv4": "0.0.0.0/0",
                             "description": "egress"}
    props.update({k: v for k, v in (("fromPort", from_port), ("toPort", to_port)) if v is not None})
    found = policy_findings([res(EGRESS_RULE, "r", props)], env="prod")
    assert bool(judged(found, "security-group-no-open-egress")) is fails


def test_an_ingress_security_group_rule_is_not_judged_by_the_egress_rule(policy_findings):
    rule = res(SG_RULE, "r", {"type": "ingress", "protocol": "-1", "fromPort": 0, "toPort": 0,
                              "cidrBlocks": ["0.0.0.0/0"], "securityGroupId": "sg-1"})
    assert not judged(policy_findings([rule], env="prod"), "security-group-no-open-egress")


@pytest.mark.parametrize(("name", "value", "fails"), [
    ("DB_PWD", "hunter2", True),
    ("BASIC_AUTH", "app:hunter2", True),
    ("ECS_ENGINE_AUTH_DATA", '{"https://index.docker.io/v1/": {"auth": "x"}}', True),
    ("STRIPE_KEY", "sk_test_abc", True),
    ("AWS_ACCESS_KEY_ID", "AKIA" + "ABCDEFGHIJKLMNOP", True),  # by its value
    ("AWS_ACCESS_KEY_ID", "", False),
    ("ROUTING_KEY", "inference.request", False),
    ("PARTITION_KEY", "user_id", False),
    ("AUTH_URL", "https://auth.example", False),
])
def test_credential_names_of_security_hub_ecs8(policy_findings, name, value, fails):
    container = {"name": "app", "image": "app@sha256:" + "a" * 64, "essential": True,
                 "environment": [{"name": name, "value": value}]}
    definition = res(TASK, "r", {"containerDefinitions": json.dumps([container]), "networkMode": "awsvpc"})
    assert bool(judged(policy_findings([definition], env="prod"), "ecs-task-no-plaintext-secrets")) is fails


@pytest.mark.parametrize(("policy", "passes"), [
    # Security Hub ELB.17's fixed list
    ("ELBSecurityPolicy-TLS13-1-3-2021-06", True),
    ("ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04", True),
    ("ELBSecurityPolicy-TLS13-1-2-Res-2021-06", True),
    ("ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09", True),
    ("ELBSecurityPolicy-TLS13-1-3-PQ-2025-09", True),
    # TLS 1.2 with CBC ciphers, or older
    ("ELBSecurityPolicy-TLS13-1-2-2021-06", False),
    ("ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06", False),
    ("ELBSecurityPolicy-FS-1-2-Res-2020-10", False),
    ("ELBSecurityPolicy-TLS-1-2-2017-01", False),
    ("ELBSecurityPolicy-2016-08", False),
])
@pytest.mark.parametrize("protocol", ["HTTPS", "TLS"])  # TLS: a Network Load Balancer's listener negotiates too
def test_tls_policies_are_those_security_hub_elb17_accepts(policy_findings, policy, passes, protocol):
    found = judged(policy_findings([listener(protocol, sslPolicy=policy, certificateArn="arn:cert")], env="prod"),
                   "lb-tls-policy")
    assert not found if passes else found


@pytest.mark.parametrize(("inputs", "fails"), [
    ({"principal": "*", "sourceAccount": "111111111111"}, False),
    ({"principal": "*", "principalOrgId": "o-abc123"}, False),
    ({"principal": "*", "sourceArn": "arn:aws:events:eu-west-1:111111111111:rule/r"}, False),
    ({"principal": "*"}, True),
    ({"principal": "*", "action": "lambda:InvokeFunctionUrl", "functionUrlAuthType": "NONE",
      "sourceAccount": "111111111111"}, True),  # a public URL: the narrowing does not apply to its callers
    ({"principal": "*", "action": "lambda:InvokeFunctionUrl", "functionUrlAuthType": "AWS_IAM",
      "sourceAccount": "111111111111"}, False),
    ({"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::uploads"}, True),  # any account's "uploads"
    ({"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::uploads", "sourceAccount": "111111111111"}, False),
    ({"principal": "secretsmanager.amazonaws.com"}, False),
    ({"principal": "arn:aws:iam::111111111111:root"}, False),
], ids=["star-source-account", "star-org", "star-source-arn", "star", "public-url", "iam-url", "s3-any-account",
        "s3-own-account", "service", "account"])
def test_lambda_permission_shapes_of_security_hub_lambda1(policy_findings, inputs, fails):
    permission = res(LAMBDA_PERMISSION, "r", {"action": "lambda:InvokeFunction", "function": "f", **inputs})
    assert bool(judged(policy_findings([permission], env="prod"), "lambda-permission-not-public")) is fails


@pytest.mark.parametrize(("inputs", "fails"), [
    # AWS Config's lambda-function-public-access-prohibited (Security Hub Lambda.1): a statement is non-public only
    # when it grants access to fixed values, without wildcards or policy variables.
    ({"principal": "*", "sourceArn": "arn:aws:events:eu-west-1:111111111111:rule/*"}, True),
    ({"principal": "*", "sourceArn": "arn:aws:sns:eu-west-1:111111111111:alarm?"}, True),
    ({"principal": "*", "sourceArn": "arn:aws:events:eu-west-1:${aws:PrincipalAccount}:rule/r"}, True),
    ({"principal": "*", "sourceArn": "arn:aws:events:*:*:rule/r", "sourceAccount": "111111111111"}, False),
    # invoked from S3: a bucket ARN names no account, so without source_account any account's bucket of that name
    ({"principal": "*", "sourceArn": "arn:aws:s3:::uploads"}, True),
    ({"principal": "*", "sourceArn": "arn:aws:s3:::uploads", "sourceAccount": "111111111111"}, False),
    ({"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::uploads", "sourceAccount": UNKNOWN_STRING},
     False),  # decided at up, when the account is known
], ids=["star-wildcard-arn", "star-question-mark-arn", "star-variable-arn", "wildcard-arn-fixed-account",
        "star-s3-any-account", "star-s3-own-account", "s3-unknown-account"])
def test_lambda_permission_narrowing_counts_only_fixed_values(policy_findings, inputs, fails):
    permission = res(LAMBDA_PERMISSION, "r", {"action": "lambda:InvokeFunction", "function": "f", **inputs})
    assert bool(judged(policy_findings([permission], env="prod"), "lambda-permission-not-public")) is fails


@pytest.mark.parametrize(("inputs", "undecided"), [
    ({"principal": "*", "sourceArn": UNKNOWN_STRING}, "sourceArn"),  # may be a wildcard, or a bucket's ARN
    ({"principal": "*", "principalOrgId": "o-abc123", "sourceArn": UNKNOWN_STRING}, "sourceArn"),  # a bucket's?
    ({"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::uploads", "sourceAccount": UNKNOWN_STRING},
     "sourceAccount"),
    ({"principal": "*", "sourceAccount": "111111111111", "sourceArn": UNKNOWN_STRING}, None),  # narrowed anyway
    ({"principal": "*", "sourceArn": "arn:aws:events:eu-west-1:111111111111:rule/r", "principalOrgId":
      UNKNOWN_STRING}, None),
    ({"principal": "*", "sourceAccount": "111111111111", "functionUrlAuthType": UNKNOWN_STRING},
     "functionUrlAuthType"),  # NONE would make the URL public whatever narrows it
    ({"principal": "events.amazonaws.com", "functionUrlAuthType": UNKNOWN_STRING}, None),  # a service: no URL
], ids=["star-unknown-arn", "star-org-unknown-arn", "s3-unknown-account", "star-account-unknown-arn",
        "star-arn-unknown-org", "star-unknown-auth-type", "service-unknown-auth-type"])
def test_a_lambda_permission_input_unknown_at_preview_is_undecided_only_where_it_decides(policy_result, inputs,
                                                                                        undecided):
    permission = res(LAMBDA_PERMISSION, "r", {"action": "lambda:InvokeFunction", "function": "f", **inputs})
    result = policy_result([permission], env="prod")
    assert not [f for f in result.findings if f.rule == "lambda-permission-not-public"]
    reasons = [na.reason for na in result.not_applicable if na.rule == "lambda-permission-not-public"]
    if undecided is None:
        assert not reasons
    else:
        assert any(f"{undecided} is unknown until deployment" in reason for reason in reasons), reasons




@pytest.mark.parametrize(("condition", "fails"), [
    # AWS Config's sns-topic-no-public-access (Security Hub SNS.4): a non-public policy grants access to fixed values
    # only (no wildcard, no policy variable); a condition on how (TLS, time, agent) names no caller.
    ({"StringEquals": {"aws:SourceAccount": "111111111111"}}, False),
    ({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, False),
    ({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:a"}}, False),
    ({"StringEquals": {"AWS:SourceOwner": ["111111111111", "222222222222"]}}, False),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*"}}, True),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:*"}}, True),
    ({"StringLike": {"aws:SourceAccount": "11111111111?"}}, True),
    ({"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, True),
    ({"StringNotEquals": {"aws:SourceAccount": "111111111111"}}, True),
    ({"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}}, True),  # absent key: the statement applies
    ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*"}, "StringEquals": {"aws:SourceAccount": "111111111111"}},
     False),  # conditions are ANDed: the fixed account narrows it
], ids=["source-account", "org", "source-arn", "source-owner-list", "any-cloudwatch-arn", "wildcard-arn",
        "wildcard-account", "policy-variable", "tls-only", "negated", "if-exists", "wildcard-arn-and-account"])
def test_sns_topic_policy_narrowing_counts_only_fixed_values(policy_findings, condition, fails):
    topic_policy = res(TOPIC_POLICY, "r", {"arn": "arn:aws:sns:eu-west-1:111111111111:alarms", "policy": doc(
        {**PUBLIC, "Action": "sns:Publish", "Condition": condition})})
    assert bool(judged(policy_findings([topic_policy], env="prod"), "sns-topic-policy-not-public")) is fails


@pytest.mark.parametrize(("inputs", "fails"), [
    ({"permissionsBoundary": BOUNDARY}, False),
    ({"permissionsBoundary": "arn:aws-cn:iam::111111111111:policy/ml-platform-dev-role-boundary"}, False),
    ({}, True),
    ({"permissionsBoundary": ""}, True),
    ({"permissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"}, True),  # caps nothing
    ({"permissionsBoundary": "ml-platform-prod-role-boundary"}, True),  # a name, not an ARN
    ({"path": "/aws-service-role/ecs.amazonaws.com/"}, False),  # AWS's, takes no boundary
], ids=["env-boundary", "china", "none", "empty", "aws-managed", "name", "service-linked"])
def test_a_role_is_capped_by_a_customer_managed_boundary(policy_findings, inputs, fails):
    role = res(ROLE, "r", {"assumeRolePolicy": doc(ECS_TRUST), **inputs})
    assert bool(judged(policy_findings([role], env="prod"), "iam-role-permissions-boundary")) is fails


def ecr_repository_policy(condition: dict[str, Any]) -> dict[str, Any]:
    return res("aws:ecr/repositoryPolicy:RepositoryPolicy", "r", {"repository": "app", "policy": doc(
        {**PUBLIC, "Action": "ecr:BatchGetImage", "Condition": condition})})


def role_trusting_anyone(condition: dict[str, Any]) -> dict[str, Any]:
    return res(ROLE, "r", {"assumeRolePolicy": doc({"Effect": "Allow", "Principal": {"AWS": "*"},
                                                    "Action": "sts:AssumeRole", "Condition": condition})})


@pytest.mark.parametrize(("rule", "resource"), [
    ("ecr-repository-policy-not-public", ecr_repository_policy),
    ("iam-trust-no-wildcard-principal", role_trusting_anyone),
], ids=["ecr", "iam-trust"])
@pytest.mark.parametrize(("condition", "fails"), [
    # The ECR and trust rules hold to the same meaning of "public" as the SNS and KMS ones: only a condition that
    # names the callers with fixed values narrows an anyone-Allow.
    ({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, False),
    ({"StringEquals": {"aws:PrincipalAccount": ["111111111111", "222222222222"]}}, False),
    ({"StringLike": {"aws:PrincipalOrgID": "o-*"}}, True),  # every organization
    ({"StringEquals": {"sts:ExternalId": "shared-value"}}, True),  # a shared value, not a caller
    ({"Bool": {"aws:SecureTransport": "true"}}, True),
    ({"StringNotEquals": {"aws:PrincipalAccount": "111111111111"}}, True),
], ids=["org", "accounts", "any-org", "external-id-only", "tls-only", "negated"])
def test_ecr_and_trust_policies_are_narrowed_only_by_fixed_callers(policy_findings, rule, resource, condition, fails):
    assert bool(judged(policy_findings([resource(condition)], env="prod"), rule)) is fails


EKS_PROVIDER = "arn:aws:iam::111111111111:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
EKS_SUB = "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"


@pytest.mark.parametrize(("statement", "fails"), [
    (github_trust({"StringEquals": {GITHUB_SUB: "repo:acme/ml-platform:environment:prod"}}), False),
    # every job of every branch and pull request, or every environment (those without reviewers too): too wide
    (github_trust({"StringLike": {GITHUB_SUB: "repo:acme/ml-platform:*"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:acme/ml-platform:environment:*"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:acme/ml-platform:ref:refs/heads/release-*"}}), False),
    (github_trust({"StringEquals": {GITHUB_SUB: "repo:acme/ml-platform:pull_request"}}), False),
    (github_trust({"StringEquals": {GITHUB_SUB: ["repo:acme@1/ml@2:ref:refs/heads/main"]}}), False),  # GitHub ids
    (github_trust({"StringEquals": {GITHUB_SUB: "repository_owner_id:1:repository_id:2"}}), False),  # fixed custom
    (github_trust({"StringLike": {GITHUB_SUB: "repo:acme/*"}}), True),  # every repository of the organization
    # a well-formed subject with a pattern in the repository or the owner: any repository of the organization (one any
    # member may create) on its main branch, or a same-named repository of any owner
    (github_trust({"StringLike": {GITHUB_SUB: "repo:acme/*:ref:refs/heads/main"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:acme/ml-?:environment:prod"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:*/ml-platform:ref:refs/heads/main"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:*"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "*"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:${aws:PrincipalTag/o}/x:*"}}), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repository_owner_id:1:*"}}), True),  # custom format, a pattern
    (github_trust({"StringNotEquals": {GITHUB_SUB: "repo:evil/x:ref:refs/heads/main"}}), True),  # names no subject
    (github_trust({"StringEqualsIfExists": {GITHUB_SUB: "repo:acme/ml:ref:refs/heads/main"}}), True),
    (github_trust(None), True),
    (github_trust({"StringLike": {GITHUB_SUB: "repo:*"}, "StringEquals": {GITHUB_SUB: "repo:acme/ml:pull_request"}}),
     False),  # ANDed: the fixed entry holds it to one repository
    (github_trust({"StringEquals": {GITHUB_SUB: "repo:acme/ml:ref:refs/heads/main"}},
                  provider=GITHUB_PROVIDER + "/acme-enterprise"), True),  # another issuer's claim names nothing
    (github_trust({"StringEquals": {EKS_SUB: "system:serviceaccount:ml:trainer"}}, provider=EKS_PROVIDER), False),
    (github_trust({"StringLike": {EKS_SUB: "system:serviceaccount:ml:*"}}, provider=EKS_PROVIDER), False),
    (github_trust({"StringLike": {EKS_SUB: "*"}}, provider=EKS_PROVIDER), True),
    (github_trust({"StringEquals": {f"{EKS_PROVIDER.split('/', 1)[1]}:aud": "sts.amazonaws.com"}},
                  provider=EKS_PROVIDER), True),
    (ECS_TRUST, False),  # a service principal is no OIDC provider
], ids=["environment", "every-job", "every-environment", "release-branches", "pull-requests", "immutable-ids",
        "custom-fixed", "whole-org", "any-repo-of-org-on-main",
        "repo-name-pattern", "any-owner", "any-repo", "bare-wildcard",
        "policy-variable", "custom-pattern", "negated", "if-exists", "no-condition", "anded-fixed",
        "enterprise-issuer-needs-its-own-key", "eks-service-account", "eks-namespace", "eks-anyone", "eks-aud-only",
        "service-principal"])
def test_a_role_trusting_an_oidc_provider_names_its_subjects(policy_findings, statement, fails):
    role = res(ROLE, "r", {"assumeRolePolicy": doc(statement)})
    assert bool(judged(policy_findings([role], env="prod"), "iam-trust-oidc-subject")) is fails


@pytest.mark.parametrize("logs", [
    {"cloudwatchLogs": {"status": "ENABLED"}, "s3Logs": {"status": UNKNOWN_STRING, "location": "b/p"}},
    {"cloudwatchLogs": {"status": UNKNOWN_STRING}, "s3Logs": {"status": "ENABLED", "location": "b/p"}},
    {"s3Logs": {"status": UNKNOWN_STRING}},  # CloudWatch Logs on by default
], ids=["cloudwatch-on", "s3-on", "cloudwatch-default"])
def test_a_codebuild_project_with_one_known_log_on_is_decided_at_preview(policy_result, logs):
    """CodeBuild.4 asks for at least one log: one known to be on decides, whatever the other will be."""
    result = policy_result([codebuild(logsConfig=logs)], env="prod")
    assert not [f for f in result.findings if f.rule == "codebuild-project-logging"]
    assert not [na for na in result.not_applicable if na.rule == "codebuild-project-logging"]


@pytest.mark.parametrize(("variables", "fails", "undecided"), [
    ([{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA" + "ABCDEFGHIJKLMNOP"}, {"name": UNKNOWN_STRING, "value": "x"}],
     True, False),  # a known plaintext key fails whatever the unknown variable will be
    ([{"name": "PLATFORM_ENV", "value": "prod", "type": UNKNOWN_STRING}], False, False),  # not a key, whatever type
    ([{"name": "AWS_SECRET_ACCESS_KEY", "value": "ci/key", "type": UNKNOWN_STRING}], False, True),
    ([{"name": UNKNOWN_STRING, "value": "x"}], False, True),
], ids=["known-key-and-unknown-name", "unknown-type-of-other", "unknown-type-of-key", "unknown-name"])
def test_a_codebuild_variable_unknown_at_preview_is_undecided_only_where_it_decides(policy_result, variables, fails,
                                                                                     undecided):
    result = policy_result([codebuild(environmentVariables=variables)], env="prod")
    assert bool([f for f in result.findings if f.rule == "codebuild-project-no-aws-credentials"]) is fails
    assert any(na.rule == "codebuild-project-no-aws-credentials" and "environmentVariables[" in na.reason
               for na in result.not_applicable) is undecided


@pytest.mark.parametrize(("variables", "found"), [
    # the deploy runner's passphrase as plaintext: in the project (BatchGetProjects) and in the state in clear
    ([{"name": "PULUMI_CONFIG_PASSPHRASE", "value": "correct horse battery staple"}],
     "PULUMI_CONFIG_PASSPHRASE (credential-like name)"),
    ([{"name": "PULUMI_ACCESS_TOKEN", "value": "pul-0123456789abcdef", "type": "PLAINTEXT"}],
     "PULUMI_ACCESS_TOKEN (credential-like name)"),
    ([{"name": "BROKER", "value": "https://admin:hunter2hunter2@b-1.mq.on.aws"}],
     "BROKER (value is a URL with an embedded password)"),
    # by reference: the value is the secret's name
    ([{"name": "PULUMI_CONFIG_PASSPHRASE", "value": "ml-platform/prod/passphrase", "type": "SECRETS_MANAGER"},
      {"name": "API_TOKEN", "value": "/ml/prod/token", "type": "PARAMETER_STORE"}], None),
    # codebuild-project-no-aws-credentials' own: reported once, by that rule
    ([{"name": "AWS_SECRET_ACCESS_KEY", "value": "x", "type": "PLAINTEXT"}], None),
], ids=["passphrase", "token", "url", "references", "aws-key-is-the-other-rule"])
def test_codebuild_plaintext_credentials_fail_and_references_pass(policy_findings, variables, found):
    messages = judged(policy_findings([codebuild(environmentVariables=variables)], env="prod"),
                      "env-vars-no-plaintext-secrets")
    assert messages == ([] if found is None else [
        f"CodeBuild project 'r' holds credentials in plain environment.environmentVariables: {found}; give it type "
        "SECRETS_MANAGER or PARAMETER_STORE with the secret's name as its value."])
    assert not any(value in message for message in messages for value in ("hunter2", "battery", "pul-0123"))


def test_the_deploy_runner_s_secret_arns_are_references(policy_findings, edit_env):
    """The runner's project names the Pulumi passphrase's and token's secrets in plain variables (their values are
    read by the build as the deploy role, shared.components.deploy_runner.SECRET_VARIABLES): ``..._SECRET_ARN`` with
    the secret's ARN, references the mandatory rule passes though the names say PASSPHRASE and TOKEN (else the
    broker layer's preview of an env that names them would fail)."""
    from shared.synth.engine import synth_env

    edit_env("prod", lambda data: data["messaging"].update(deploy_runner={
        "passphrase_secret": "pulumi-passphrase", "access_token_secret": "pulumi-token"}))
    (project,) = [r for r in synth_env("prod", ["broker"])["broker"]["resources"] if r["type"] == CODEBUILD]
    variables = project["inputs"]["environment"]["environmentVariables"]
    assert {v["name"] for v in variables} >= {"PULUMI_CONFIG_PASSPHRASE_SECRET_ARN", "PULUMI_ACCESS_TOKEN_SECRET_ARN"}
    assert not judged(policy_findings([codebuild(environmentVariables=variables)], env="prod"),
                      "env-vars-no-plaintext-secrets")


@pytest.mark.parametrize("variable", [{"name": "DB_PASSWORD", "value": "x", "type": UNKNOWN_STRING},
                                      {"name": UNKNOWN_STRING, "value": "x"}], ids=["type", "name"])
def test_a_codebuild_variable_unknown_at_preview_leaves_the_secrets_rule_undecided(policy_result, variable):
    result = policy_result([codebuild(environmentVariables=[variable])], env="prod")
    assert not [f for f in result.findings if f.rule == "env-vars-no-plaintext-secrets"]
    assert any(na.rule == "env-vars-no-plaintext-secrets" and "environment.environmentVariables" in na.reason
               for na in result.not_applicable)


def test_a_topic_without_an_inline_policy_is_not_judged_by_the_sns_rule(policy_result):
    result = policy_result([res("aws:sns/topic:Topic", "r", {"name": "alarms"})], env="prod")
    assert not [f for f in result.findings if f.rule == "sns-topic-policy-not-public"]
    assert any(na.rule == "sns-topic-policy-not-public" and "no inline policy" in na.reason
               for na in result.not_applicable)


def pipe(vpc: dict[str, Any] | None, target: str = "arn:aws:ecs:eu-west-1:1:cluster/c") -> dict[str, Any]:
    """An EventBridge pipe from a queue to an ECS target (task parameters with ``vpc`` as awsVpcConfiguration)."""
    ecs: dict[str, Any] = {"taskDefinitionArn": "arn:td", "launchType": "FARGATE"}
    if vpc is not None:
        ecs["networkConfiguration"] = {"awsVpcConfiguration": vpc}
    return res("aws:pipes/pipe:Pipe", "r", {"source": "arn:aws:sqs:eu-west-1:1:q", "target": target,
                                            "roleArn": "arn:role", "targetParameters": {"ecsTaskParameters": ecs}})


@pytest.mark.parametrize(("resource", "fails"), [
    (pipe({"assignPublicIp": "ENABLED", "subnets": ["s"]}), True),
    (pipe({"assignPublicIp": "enabled", "subnets": ["s"]}), True),
    (pipe({"assignPublicIp": "DISABLED", "subnets": ["s"]}), False),
    (pipe({"subnets": ["s"]}), False),  # the Pipes API's default: DISABLED
    (pipe(None), False),
], ids=["enabled", "enabled-lowercase", "disabled", "default", "no-network-configuration"])
def test_a_pipe_that_starts_ecs_tasks_gets_no_public_ip(policy_findings, resource, fails):
    messages = judged(policy_findings([resource], env="prod"), "ecs-scheduled-task-no-public-ip")
    assert bool(messages) is fails
    if fails:
        assert "'assign_public_ip': 'DISABLED'" in messages[0]


def test_a_pipe_unknown_at_preview_or_without_an_ecs_target_is_not_applicable(policy_result):
    unknown = pipe({"assignPublicIp": UNKNOWN_STRING, "subnets": ["s"]})
    lambda_target = res("aws:pipes/pipe:Pipe", "r", {"source": "arn:q", "target": "arn:aws:lambda:f",
                                                     "roleArn": "arn:role"})
    for resource, what in ((unknown, "awsVpcConfiguration.assignPublicIp is unknown"),
                           (lambda_target, "does not start ECS tasks")):
        result = policy_result([resource], env="prod")
        assert not [f for f in result.findings if f.rule == "ecs-scheduled-task-no-public-ip"]
        assert any(na.rule == "ecs-scheduled-task-no-public-ip" and what in na.reason for na in result.not_applicable)


def test_an_unknown_cloudmap_address_is_not_applicable_and_a_known_bad_port_still_fails(policy_result):
    # cloudmap-instance-valid is a stack rule: it reads the instance's service for what is required.
    instance = res("aws:servicediscovery/instance:Instance", "r", {"serviceId": "srv-1", "attributes": {
        "AWS_INSTANCE_IPV4": UNKNOWN_STRING, "AWS_INSTANCE_PORT": "70000"}})
    result = policy_result([instance], env="prod")
    assert next(f.message for f in result.findings if f.rule == "cloudmap-instance-valid").count("70000") == 1
    reasons = [na.reason for na in result.not_applicable if na.rule == "cloudmap-instance-valid"]
    assert any("AWS_INSTANCE_IPV4" in reason for reason in reasons)


@pytest.mark.parametrize(("same_role", "violates"), [(True, True), (False, False)], ids=["same-role", "two-roles"])
def test_separate_roles_compares_the_role_resources_behind_unknown_arns(policy_findings, same_role, violates):
    task_role = res(ROLE, "task-role", {"assumeRolePolicy": doc(ECS_TRUST)})
    execution_role = task_role if same_role else res(ROLE, "exec-role", {"assumeRolePolicy": doc(ECS_TRUST)})
    definition = res(TASK, "r", {"taskRoleArn": UNKNOWN_STRING, "executionRoleArn": UNKNOWN_STRING},
                     property_dependencies={"taskRoleArn": [task_role], "executionRoleArn": [execution_role]})
    roles = [task_role] if same_role else [task_role, execution_role]
    found = judged(policy_findings([*roles, definition], env="prod"), "ecs-task-separate-roles")
    assert bool(found) is violates
    if violates:
        assert "uses the same role (task-role)" in found[0]


def test_separate_roles_without_traceable_unknown_arns_is_not_applicable(policy_result):
    definition = res(TASK, "r", {"taskRoleArn": UNKNOWN_STRING, "executionRoleArn": UNKNOWN_STRING})
    result = policy_result([definition], env="prod")
    assert not [f for f in result.findings if f.rule == "ecs-task-separate-roles"]
    assert any(na.rule == "ecs-task-separate-roles" and "taskRoleArn/executionRoleArn" in na.reason
               for na in result.not_applicable)


# -- unknown-at-preview cases of the older rules that had none -------------------------------------

OLDER_UNKNOWN_CASES = [
    ("rabbitmq-exchange-durable", [res("rabbitmq:index/exchange:Exchange", "r", {
        "name": "ml.events", "vhost": "dev", "settings": {"type": "topic", "durable": UNKNOWN_BOOL}})], "durable"),
    ("rabbitmq-queue-dead-letter", [res("rabbitmq:index/queue:Queue", "r", {
        "name": "a.work", "vhost": "dev", "settings": {"durable": True, "arguments": UNKNOWN_OBJECT}})], "arguments"),
    ("rabbitmq-no-default-vhost", [res("rabbitmq:index/queue:Queue", "r", {
        "name": "a.work", "vhost": UNKNOWN_STRING, "settings": {"durable": True}})], "vhost"),
    ("vpc-default-security-group-closed", [
        res("aws:ec2/vpc:Vpc", "v", {"cidrBlock": "10.0.0.0/16"}),
        res("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "r", {"vpcId": UNKNOWN_STRING, "ingress": [],
                                                                        "egress": []})], "vpcId"),
    ("ecr-lifecycle-policy", [
        res("aws:ecr/repository:Repository", "r", {}), res("aws:ecr/repository:Repository", "r2", {}),
        res("aws:ecr/lifecyclePolicy:LifecyclePolicy", "lp", {"repository": UNKNOWN_STRING, "policy": "{}"})], "'lp'"),
]


@pytest.mark.parametrize(("rule", "resources", "what"), OLDER_UNKNOWN_CASES, ids=[c[0] for c in OLDER_UNKNOWN_CASES])
def test_older_rules_are_not_applicable_on_unknown_values(policy_result, rule, resources, what):
    result = policy_result(resources, env="prod")
    assert not [f for f in result.findings if f.rule == rule]
    assert any(na.rule == rule and what in na.reason for na in result.not_applicable)


@pytest.mark.parametrize(("rule", "resource"), [
    ("appmesh-discontinued", res("aws:appmesh/mesh:Mesh", "r", {"name": UNKNOWN_STRING})),
    ("prod-protect-stateful", res("aws:ecr/repository:Repository", "r", {"name": UNKNOWN_STRING})),
    ("protect-only-stateful", res("aws:ec2/route:Route", "r", {"routeTableId": UNKNOWN_STRING}, protect=True)),
])
def test_rules_that_read_no_input_value_decide_even_when_every_input_is_unknown(policy_findings, rule, resource):
    # appmesh-discontinued judges the type, prod-protect-stateful and protect-only-stateful the protect
    # option: no unknown can stop them.
    assert judged(policy_findings([resource], env="prod"), rule)


@pytest.mark.parametrize(("action", "fails"), [
    ("sqs:sendmessage", True),  # IAM action names are case-insensitive (IAM user guide, "Action" element)
    ("SQS:SendMessage", True),
    ("secretsmanager:getsecretvalue", True),
    ("ECR:getauthorizationtoken", False),  # supports only '*' in any spelling
    ("ec2:describeinstances", False),
])
def test_star_resource_actions_are_matched_whatever_their_case(policy_findings, action, fails):
    policy = res(ROLE_POLICY, "r", {"role": "t", "policy": doc({"Effect": "Allow", "Action": action, "Resource": "*"})})
    assert bool(judged(policy_findings([policy], env="prod"), "iam-no-star-resource-write")) is fails


def test_a_gateway_load_balancer_listener_is_not_judged_as_plain_http(policy_findings, policy_not_applicable):
    # a GWLB listener has neither protocol nor port (pulumi_aws lb.Listener: "Not valid for Gateway Load
    # Balancers"); it forwards GENEVE-encapsulated packets to appliances, it does not serve HTTP
    gateway = res(LISTENER, "r", {"loadBalancerArn": "arn:gwlb",
                                  "defaultActions": [{"type": "forward", "targetGroupArn": "arn:geneve-tg"}]})
    assert not judged(policy_findings([gateway], env="prod"), "lb-listener-https")
    assert any(na["rule"] == "lb-listener-https" and "Gateway Load Balancer" in na["reason"]
               for na in policy_not_applicable([gateway], env="prod"))
    # an ALB listener that leaves protocol unset is HTTP (the provider's default) and still judged
    alb = res(LISTENER, "r", {"loadBalancerArn": "arn:alb", "port": 80,
                              "defaultActions": [{"type": "forward", "targetGroupArn": "arn:tg"}]})
    assert judged(policy_findings([alb], env="prod"), "lb-listener-https")


PARTNER_SERVICE = "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"


def test_an_endpoint_to_an_endpoint_service_is_not_held_to_a_policy(policy_findings, policy_not_applicable):
    # AWS allows full access to an endpoint of an endpoint service other than an AWS service and refuses any
    # other policy ("Service com.amazonaws.vpce...vpce-svc-... only supports the full-access endpoint policy")
    partner = res(VPC_ENDPOINT, "r", {"vpcId": "vpc-1", "vpcEndpointType": "Interface", "serviceName": PARTNER_SERVICE})
    assert not judged(policy_findings([partner], env="prod"), "vpc-endpoint-policy")
    assert any(na["rule"] == "vpc-endpoint-policy" and "endpoint service" in na["reason"]
               for na in policy_not_applicable([partner], env="prod"))
    # an unknown service name (a VpcEndpointService of the same stack) with no policy waits for the name
    unknown = res(VPC_ENDPOINT, "r", {"vpcId": "vpc-1", "vpcEndpointType": "Interface", "serviceName": UNKNOWN_STRING})
    assert not judged(policy_findings([unknown], env="prod"), "vpc-endpoint-policy")
    # an AWS service's endpoint is still judged
    aws_service = res(VPC_ENDPOINT, "r", {"vpcId": "vpc-1", "vpcEndpointType": "Interface",
                                          "serviceName": "com.amazonaws.eu-west-1.ecr.api"})
    assert judged(policy_findings([aws_service], env="prod"), "vpc-endpoint-policy")


@pytest.mark.parametrize("type_", ["aws:kms/replicaKey:ReplicaKey", "aws:kms/externalKey:ExternalKey"])
def test_replica_and_imported_keys_keep_the_deletion_window_floor(policy_findings, type_):
    # multi-Region replica keys and keys of imported material are KMS keys with their own deletion window
    # (pulumi_aws kms.ReplicaKey / kms.ExternalKey: deletion_window_in_days, 7-30, default 30)
    short = res(type_, "r", {"deletionWindowInDays": 7})
    assert judged(policy_findings([short], env="prod"), "kms-key-deletion-window")
    assert not judged(policy_findings([res(type_, "r", {})], env="prod"), "kms-key-deletion-window")


@pytest.mark.parametrize(("key", "fails"), [
    ("arn:aws:kms:eu-west-1:111111111111:key/0d6a1c2e-1111-2222-3333-444455556666", False),
    ("arn:aws:kms:eu-west-1:111111111111:alias/broker", False),  # a customer alias names a customer key
    ("alias/aws/mq", True),  # Amazon MQ's AWS-managed key, whose policy nobody can change
    ("arn:aws:kms:eu-west-1:111111111111:alias/aws/mq", True),
])
def test_an_activemq_broker_on_the_aws_managed_key_is_not_on_a_customer_key(policy_findings, key, fails):
    broker = res("aws:mq/broker:Broker", "r", {"engineType": "ActiveMQ",
                                                "encryptionOptions": {"useAwsOwnedKey": False, "kmsKeyId": key}})
    assert bool(judged(policy_findings([broker], env="prod"), "mq-broker-activemq-cmk")) is fails


def test_a_waf_classic_regional_association_protects_the_alb_too(policy_findings):
    # Security Hub ELB.16 accepts an AWS WAF Classic (regional) or an AWS WAF web ACL
    alb = res(LB, "r", ALB_GOOD)
    classic = res("aws:wafregional/webAclAssociation:WebAclAssociation", "waf",
                  {"resourceArn": UNKNOWN_STRING, "webAclId": "acl-1"},
                  property_dependencies={"resourceArn": [alb]}, dependencies=[alb])
    assert not judged(policy_findings([alb, classic], env="prod"), "lb-waf-associated")
    assert judged(policy_findings([res(LB, "r", ALB_GOOD)], env="prod"), "lb-waf-associated")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_platforms_deploy_runner_lambdas_and_topic_pass_the_new_coverage_rules(policy_engine, env):
    """The deploy runner (CodeBuild), the rotation and queue-metrics functions' permissions and the alarm topic's
    policy of each shipped env, as synthesized (the snapshots), pass the rules that guard them; each decides."""
    from shared.policy.engine import evaluate_documents_result
    from tests.synth_helpers import spec_document

    docs = [spec_document(env, layer) for layer in ("broker", "messaging")]
    rules = {"codebuild-project-no-aws-credentials", "codebuild-project-logging", "lambda-permission-not-public",
             "sns-topic-policy-not-public", "env-vars-no-plaintext-secrets"}
    result = evaluate_documents_result(docs, env_name=env, engine=policy_engine)
    assert [f.to_json() for f in result.findings if f.rule in rules] == []
    assert [(na.rule, na.urn, na.reason) for na in result.not_applicable
            if na.rule in rules and "is not a resource type this rule checks" not in na.reason
            and "has no inline policy" not in na.reason] == []  # the topic's policy is its TopicPolicy
