"""Secrets Manager rotation of the Amazon MQ broker's RabbitMQ administrator (broker layer).

Amazon MQ takes the RabbitMQ administrator only when it creates the broker (later ``users`` are
ignored), so the credential rotates the way Secrets Manager rotates any credential its service cannot
rotate itself: a rotation function (``shared/rotation/broker_admin.py``, shipped inline: standard library
and boto3 only) changes the password through the broker's management API and moves ``AWSCURRENT``.

What this component creates, all named ``ml-platform-<env>-broker-admin-rotation``:

- the function (Python 3.13) in the env's private subnets with the network layer's rotation security
  group, whose egress to the broker's group on 443 is added here (the broker's group admits it);
- its execution role: the rotation actions on this secret only, ``kms:Decrypt``/``kms:GenerateDataKey`` on
  the broker's secrets key through Secrets Manager only, its network interfaces, its own log group;
- its log group (retention, KMS where the env asks for encrypted logs), pre-created;
- Secrets Manager's permission to invoke it (this account only) and the rotation schedule
  (``messaging.credentials_rotation.max_age_days``), without rotating at creation (see
  :class:`BrokerAdminRotation`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from shared.broker_names import default_log_group_name, rotation_function_name
from shared.components.alarms import AlarmTopic, rotation_failed_notification
from shared.components.building_blocks import log_group_arn, own_log_group, role_with_policy
from shared.components.compute_containers import InRegion
from shared.components.compute_iam import (
    secret_encryption_context,
    service_trust_policy,
    via_secrets_manager,
    write_own_logs,
)
from shared.components.lambda_eni_drain import LambdaEniDrain
from shared.envs import EnvConfig
from shared.lifecycle import PYTHON_LAMBDA_RUNTIME
from shared.role_boundary import boundary_arn

if TYPE_CHECKING:
    from shared.components.queue_metrics import QueueMetricsArgs

HTTPS_PORT = 443
#: The file the function's code is made of, and the module Lambda imports it as.
SOURCE_PATH = Path(__file__).resolve().parents[1] / "rotation" / "broker_admin.py"
HANDLER_MODULE = "broker_admin"
#: A runtime Lambda supports (botocore lambda model ``Runtime``; Lambda.2 of Security Hub) whose boto3 and
#: standard library are all the function uses; defined with its deprecation dates in shared/lifecycle.py.
RUNTIME = PYTHON_LAMBDA_RUNTIME
#: Each step makes a few calls to the broker (10 s each at most) and to Secrets Manager (17 s each at most, retry
#: included: shared/rotation/broker_admin.py, AWS_CONNECT_TIMEOUT_SECONDS), each failing with its own error.
TIMEOUT_SECONDS = 60
MEMORY_MB = 128
#: What Lambda needs to attach the function to the VPC (Lambda developer guide, "Giving Lambda functions
#: access to resources in an Amazon VPC", the actions of AWSLambdaVPCAccessExecutionRole). The Describe
#: calls support only Resource "*" (Service Authorization Reference, EC2).
ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
ENI_MANAGE_ACTIONS = ("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses")
#: The steps' calls (Secrets Manager user guide, "Lambda rotation function execution role permissions").
SECRET_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                  "secretsmanager:UpdateSecretVersionStage")
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def rotation_source() -> str:
    """The function's code: the rotation module's text, as is."""
    return SOURCE_PATH.read_text(encoding="utf-8")


def rotation_days(env: EnvConfig) -> int | None:
    """Days between rotations of the broker admin, or None where it does not rotate: an ``external``
    broker (its admin is not the platform's), or an env without ``messaging.credentials_rotation`` (no
    platform credential rotates there; policy ``secretsmanager-rotation`` reports it)."""
    messaging = env.messaging
    if messaging.broker != "amazon-mq" or messaging.credentials_rotation is None:
        return None
    return messaging.credentials_rotation.max_age_days


@dataclass(frozen=True)
class BrokerAdminRotationArgs(InRegion):
    env_name: str
    region: str
    account_id: str
    #: days between rotations (``messaging.credentials_rotation.max_age_days``)
    rotation_days: int
    log_retention_days: int
    kms_encrypted_logs: bool
    protect: bool

    @property
    def log_group_arn(self) -> str:
        group = default_log_group_name("lambda", rotation_function_name(self.env_name))
        return log_group_arn(self.partition, self.region, self.account_id, group)


def execution_policy(args: BrokerAdminRotationArgs, *, secret_arn: str, key_arn: str, subnet_ids: list[str],
                     security_group_id: str) -> dict[str, Any]:
    """The rotation function's permissions, each statement on named resources where the action allows it."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "RotateTheBrokerAdminSecret", "Effect": "Allow", "Action": list(SECRET_ACTIONS),
         "Resource": secret_arn},
        # GetRandomPassword takes no resource (Service Authorization Reference, Secrets Manager).
        {"Sid": "GeneratePasswords", "Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        # The secret's key delegates use to IAM (customer_key_policy); the function may use it only through
        # Secrets Manager, which serves it only the secret above.
        {"Sid": "UseTheSecretsKeyThroughSecretsManager", "Effect": "Allow", "Action": list(KEY_ACTIONS),
         "Resource": key_arn,
         "Condition": {"StringEquals": {
             **via_secrets_manager(args.region), **secret_encryption_context(secret_arn)}}},
        write_own_logs(args.log_group_arn),
        *vpc_function_statements(args.partition, args.region, args.account_id, subnet_ids=subnet_ids,
                                 security_group_id=security_group_id),
    ]}


def vpc_function_statements(partition: str, region: str, account_id: str, *, subnet_ids: list[str],
                            security_group_id: str) -> list[dict[str, Any]]:
    """What a Lambda function attached to the env's private subnets with one security group needs: its network
    interfaces, created only in those subnets with that group (the rotation function, the queue metrics one)."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    return [
        {"Sid": "DescribeNetworkInterfaces", "Effect": "Allow", "Action": list(ENI_DESCRIBE_ACTIONS), "Resource": "*"},
        {"Sid": "CreateOwnNetworkInterfaces", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
         "Resource": [f"{ec2}:network-interface/*", f"{ec2}:security-group/{security_group_id}",
                      *sorted(f"{ec2}:subnet/{subnet}" for subnet in subnet_ids)]},
        {"Sid": "ManageOwnNetworkInterfaces", "Effect": "Allow", "Action": list(ENI_MANAGE_ACTIONS),
         "Resource": f"{ec2}:network-interface/*"},
    ]


@dataclass(frozen=True)
class ManagementFunctionSpec:
    """What differs between the platform's functions that call the broker's management API from the VPC."""

    function_name: str
    description: str
    role_description: str
    #: the module's text and the name Lambda imports it as (``<module>.handler``)
    source: str
    handler_module: str
    timeout_seconds: int
    log_key_description: str
    log_key_alias: str
    #: further files of the package beside the module: (name, text)
    package_files: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ManagementFunction:
    broker_egress: aws.vpc.SecurityGroupEgressRule
    logs_key: aws.kms.Key | None
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    role_policy: aws.iam.RolePolicy
    #: deleted after the function and before its role: waits for Lambda to delete the function's network interfaces
    eni_drain: LambdaEniDrain
    function: aws.lambda_.Function


def management_function(component: pulumi.ComponentResource, name: str,
                        args: BrokerAdminRotationArgs | QueueMetricsArgs, spec: ManagementFunctionSpec, *,
                        execution_policy: Callable[..., dict[str, Any]], secret_arn: pulumi.Input[str],
                        secrets_key_arn: pulumi.Input[str], variables: dict[str, pulumi.Input[str]],
                        private_subnet_ids: pulumi.Input[list[str]], security_group_id: pulumi.Input[str],
                        broker_security_group_id: pulumi.Input[str]) -> ManagementFunction:
    """A Python function (``spec``) in every private subnet with ``security_group_id``, its egress to the broker's
    management API, its pre-created log group, its role with ``execution_policy(args, secret_arn=, key_arn=,
    subnet_ids=, security_group_id=)``; children of ``component``, named ``<name>-to-broker``, ``-logs``,
    ``-role`` and ``-function``."""
    child = pulumi.ResourceOptions(parent=component)
    # The function's side of the management API path; the broker's group admits the function's group.
    egress = aws.vpc.SecurityGroupEgressRule(
        f"{name}-to-broker", security_group_id=security_group_id,
        referenced_security_group_id=broker_security_group_id, ip_protocol="tcp",
        from_port=HTTPS_PORT, to_port=HTTPS_PORT,
        description="RabbitMQ management API (HTTPS) of the env broker", opts=child)
    # Pre-created so retention (and KMS) apply from the first invocation.
    logs_key, log_group = own_log_group(
        component, f"{name}-logs", args, group_name=default_log_group_name("lambda", spec.function_name),
        key_description=spec.log_key_description, key_alias=spec.log_key_alias)
    role, role_policy = role_with_policy(
        f"{name}-role", role_name=spec.function_name, description=spec.role_description,
        permissions_boundary=boundary_arn(args.partition, args.account_id, args.env_name),
        assume_role_policy=json.dumps(service_trust_policy("lambda.amazonaws.com"), sort_keys=True),
        policy=pulumi.Output.all(secret_arn, secrets_key_arn, private_subnet_ids, security_group_id).apply(
            lambda values: json.dumps(execution_policy(args, secret_arn=values[0], key_arn=values[1],
                                                       subnet_ids=values[2], security_group_id=values[3]),
                                      sort_keys=True)),
        opts=child)
    # Lambda deletes the function's network interfaces minutes after the function, with this role: the role stays
    # until they are gone (lambda_eni_drain), or they could never be deleted, nor the network's group and subnets.
    eni_drain = LambdaEniDrain(f"{name}-eni-drain", security_group_id=security_group_id, region=args.region,
                               function_name=spec.function_name,
                               opts=pulumi.ResourceOptions(parent=component, depends_on=[role, role_policy]))
    function = aws.lambda_.Function(
        f"{name}-function", name=spec.function_name, description=spec.description,
        runtime=RUNTIME, handler=f"{spec.handler_module}.handler", role=role.arn,
        code=pulumi.AssetArchive({f"{spec.handler_module}.py": pulumi.StringAsset(spec.source),
                                  **{file: pulumi.StringAsset(text) for file, text in spec.package_files}}),
        timeout=spec.timeout_seconds, memory_size=MEMORY_MB,
        # No reserved concurrency: a fresh account's limit can be 10, all of which Lambda keeps unreserved
        # (PutFunctionConcurrency refuses to go below it).
        # Every private subnet: one per AZ the env has (Security Hub Lambda.5, multi-AZ).
        vpc_config=aws.lambda_.FunctionVpcConfigArgs(subnet_ids=private_subnet_ids,
                                                     security_group_ids=[security_group_id]),
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=log_group.name),
        tags={"Name": spec.function_name},
        # Lambda checks the role's network-interface permissions when it attaches the function to the VPC.
        opts=pulumi.ResourceOptions(parent=component, depends_on=[role_policy, log_group, eni_drain]))
    return ManagementFunction(egress, logs_key, log_group, role, role_policy, eni_drain, function)


class BrokerAdminRotation(pulumi.ComponentResource):
    """The rotation function of the broker admin's secret and its schedule.

    First ``up``: the schedule is created after the secret's first version, the broker (which the provider
    creates only once it is RUNNING) and the network path (the function's egress rule, the broker's
    ingress), with ``rotate_immediately`` off: the first password is brand new, and a rotation racing the
    messaging layer's first ``up`` (which reads ``AWSCURRENT``) could leave it holding a password the broker
    no longer accepts. Secrets Manager then only tests the function (its testSecret step) and rotates first
    after ``rotation_days``. A failed test is reported once, as ``TestRotationFailed``
    (:func:`~shared.components.alarms.rotation_failed_notification`): the rule that sends it to ``alarm_topic``
    and its target are this component's children and the schedule is created after both, so that report is not
    lost on the first ``up``. A later ``up`` with no change changes nothing here; a new
    ``max_age_days`` is an in-place update of the schedule.
    """

    def __init__(
        self,
        name: str,
        args: BrokerAdminRotationArgs,
        *,
        secret_arn: pulumi.Input[str],
        secrets_key_arn: pulumi.Input[str],
        management_endpoint: pulumi.Input[str],
        private_subnet_ids: pulumi.Input[list[str]],
        security_group_id: pulumi.Input[str],
        broker_security_group_id: pulumi.Input[str],
        ready: list[pulumi.Resource],
        alarm_topic: AlarmTopic,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:broker:BrokerAdminRotation", name, None, opts)
        env = args.env_name
        # Before the schedule: configuring it runs the function's testSecret step at once (rotate_immediately off:
        # botocore secretsmanager RotateSecretRequest.RotateImmediately), whose failure is reported only then. That
        # step's AWSPENDING version holds the current value (moto #8547, matched to AWS: "we should have the existing
        # value when only invoking the testSecret-step"), so the test logs in with the admin's password as it is.
        self.failed_notification = rotation_failed_notification(env, secret_arn, alarm_topic,
                                                                opts=pulumi.ResourceOptions(parent=self))
        made = management_function(
            self, name, args, ManagementFunctionSpec(
                rotation_function_name(env),
                f"Rotates the {env} RabbitMQ broker admin through its management API (Secrets Manager)",
                f"Rotation function of the {env} broker admin secret: that secret, its key, its logs, its ENIs",
                rotation_source(), HANDLER_MODULE, TIMEOUT_SECONDS, f"Broker admin rotation function logs ({env})",
                f"{env}/broker-admin-rotation-logs"),
            execution_policy=execution_policy, secret_arn=secret_arn, secrets_key_arn=secrets_key_arn,
            # The broker's own console URL (public certificate: the runtime's trust store verifies it); never
            # the deployer's tunnel of messaging.management, which only the deployer's machine has.
            variables={"MANAGEMENT_ENDPOINT": management_endpoint},
            private_subnet_ids=private_subnet_ids, security_group_id=security_group_id,
            broker_security_group_id=broker_security_group_id)
        self.broker_egress, self.logs_key, self.log_group = made.broker_egress, made.logs_key, made.log_group
        self.role, self.role_policy, self.function = made.role, made.role_policy, made.function
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke", action="lambda:InvokeFunction", function=self.function.name,
            principal="secretsmanager.amazonaws.com", source_account=args.account_id,
            # only Secrets Manager rotating this secret (confused deputy: Secrets Manager user guide,
            # "Permissions for rotation": aws:SourceArn is the secret's ARN)
            source_arn=secret_arn,
            opts=pulumi.ResourceOptions(parent=self.function))
        self.rotation = aws.secretsmanager.SecretRotation(
            f"{name}-schedule", secret_id=secret_arn, rotation_lambda_arn=self.function.arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=args.rotation_days),
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                self.permission, self.broker_egress, self.failed_notification.rule, self.failed_notification.target,
                *ready]))
        self.register_outputs({"function_name": self.function.name, "rotation_days": args.rotation_days})
