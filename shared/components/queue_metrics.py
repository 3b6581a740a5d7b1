"""Per-queue backlog metrics where Amazon MQ publishes none: a scheduled publisher (messaging layer).

Amazon MQ publishes no per-queue CloudWatch metric for RabbitMQ 4 (every shipped env), so neither a
consumer's autoscaling nor a per-queue alarm has a series to use. This component runs a small Lambda
function (``shared/rotation/queue_metrics.py``, shipped inline: standard library and boto3 only, with the list
of the queues it publishes, ``queues.json``, beside it in the package) every minute that reads the env vhost's
work queues and DLQs from the broker's management API and writes
``MessagesReady``, ``MessagesUnacknowledged``, ``Messages`` and ``Consumers`` per queue to :data:`METRICS_NAMESPACE`
(dimensions ``VirtualHost``, ``Queue``). It runs for every ``amazon-mq`` env, RabbitMQ 3.13 included, so
autoscaling and alarms read one series whatever the engine.

Why the messaging layer owns it: the publisher signs in as a RabbitMQ user, which only a layer with the
management API (the RabbitMQ provider, deployed from inside the VPC) can create, and it must know the vhost
and its queues, which this layer plans. The broker layer knows the broker but deploys from anywhere through
AWS APIs only, and creates its one RabbitMQ user (the admin) at broker creation. The network layer makes the
function's security group (the interface endpoints admit it there) and the broker layer's group admits it
on the management port; the function's egress to the broker is made here.

An ``external`` broker gets no publisher: the platform neither runs it nor knows whether its management API is
reachable from the private subnets, and such a broker publishes no AWS metric either; its consumers are
therefore never allowed to scale to zero (shared.envs, min_count) and scale on CPU only.

What it creates, all named after ``ml-platform-<env>-queue-metrics``:

- the RabbitMQ user ``ml-<env>.queue-metrics`` with the tag ``management`` and permissions on the vhost that
  match nothing: it lists the vhost's queues and their figures, and can neither publish, consume nor
  configure (the ``monitoring`` tag would also show every connection and the nodes, which the publisher does
  not need; tests/rotation/test_queue_metrics_publisher.py proves both on a real broker); its generated
  password in a secret on the layer's secrets key, rotated with the services' by the env's epoch;
- the function in the private subnets, its role (that secret, its key through Secrets Manager,
  ``cloudwatch:PutMetricData`` held to the namespace, its log group, its network interfaces), its log group
  (retention, KMS where the env encrypts logs), pre-created;
- an EventBridge rule ``rate(1 minute)`` and its target, the function; the target (what makes EventBridge
  invoke it) is created last: after the user, its permissions, the secret's value and the queues exist and the
  network path is open, so the first run on the first ``up`` succeeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_rabbitmq as rabbitmq

from shared.broker_names import default_log_group_name
from shared.cloudwatch_metrics import QUEUE_METRICS_NAMESPACE
from shared.components.broker_rotation import ManagementFunctionSpec, management_function, vpc_function_statements
from shared.components.building_blocks import generated_password, log_group_arn
from shared.components.compute_containers import InRegion
from shared.components.compute_iam import secret_encryption_context, via_secrets_manager, write_own_logs
from shared.components.messaging import rotation_keepers, rotation_tags
from shared.envs import CredentialsRotation, EnvConfig
from shared.rotation.queue_metrics import (
    ENDPOINT_VAR,
    NAMESPACE_VAR,
    QUEUES_DIGEST_VAR,
    QUEUES_FILE,
    SECRET_VAR,
    VHOST_VAR,
)

METRICS_NAMESPACE = QUEUE_METRICS_NAMESPACE
#: The file the function's code is made of, and the module Lambda imports it as.
SOURCE_PATH = Path(__file__).resolve().parents[1] / "rotation" / "queue_metrics.py"
HANDLER_MODULE = "queue_metrics"
# The package's list of the queues to publish (QUEUES_FILE), beside the module (the function reads it there), and the
# variable holding its SHA-256 (QUEUES_DIGEST_VAR), named once in the function's own module: Lambda holds a
# function's environment to 4 KB in all, not adjustable (Lambda developer guide, "Lambda quotas"), which a list of
# every work queue and DLQ passes at about 160 services (50 with 32-character names); the package takes 50 MB zipped.
#: The least a user needs to list a vhost's queues with their figures (RabbitMQ management plugin, "Permissions":
#: the management tag sees the vhosts it has a permissions entry on).
MONITOR_TAGS = ("management",)
#: Its permissions entry on the vhost: nothing to configure, write or read over AMQP.
MONITOR_PERMISSIONS = {"configure": "^$", "write": "^$", "read": "^$"}
SCHEDULE = "rate(1 minute)"
#: A run is superseded by the next one a minute later: neither EventBridge (RetryPolicy: up to 185 attempts over 24 h
#: by default) nor Lambda's asynchronous invocation (2 retries, events kept up to 6 h by default) retries or keeps it
#: (botocore events RetryPolicy and lambda PutFunctionEventInvokeConfig: the least age either takes is 60 s).
MAX_EVENT_AGE_SECONDS = 60
#: One run: a secret read, one management API call (10 s bound) and a few PutMetricData calls.
TIMEOUT_SECONDS = 30


def publisher_source() -> str:
    """The function's code: the publisher module's text, as is."""
    return SOURCE_PATH.read_text(encoding="utf-8")


def queues_document(queues: tuple[str, ...]) -> str:
    """``queues.json``: the queues' names, sorted, one JSON list (the same queues give the same bytes)."""
    return json.dumps(sorted(set(queues)), indent=0) + "\n"


def queues_digest(queues: tuple[str, ...]) -> str:
    """The SHA-256 of :func:`queues_document`, in the function's environment: fixed in size whatever the catalog,
    and changed with the list, so a change of the catalog changes the function's configuration (and its package)."""
    return hashlib.sha256(queues_document(queues).encode()).hexdigest()


def publisher_name(env_name: str) -> str:
    """The function, its role, its rule and its log group's last part."""
    return f"ml-platform-{env_name}-queue-metrics"


def monitor_user_name(env_name: str) -> str:
    """A dot, which neither an env nor a catalog service name may hold: no service's user (``ml-<env>-<service>``,
    shared.components.messaging.user_name) can be named so."""
    return f"ml-{env_name}.queue-metrics"


def monitor_secret_name(env_name: str) -> str:
    return f"platform/{env_name}/messaging-monitor/queue-metrics"


@dataclass(frozen=True)
class QueueMetricsArgs(InRegion):
    env_name: str
    region: str
    account_id: str
    vhost: str
    #: every queue whose figures are published: the work queues and their DLQs
    queues: tuple[str, ...]
    log_retention_days: int
    kms_encrypted_logs: bool
    protect: bool
    credentials_rotation: CredentialsRotation | None = None

    @classmethod
    def from_env(cls, env: EnvConfig, vhost: str, queues: tuple[str, ...]) -> QueueMetricsArgs:
        return cls(env_name=env.name, region=env.region, account_id=env.account_id, vhost=vhost,
                   queues=tuple(sorted(queues)), log_retention_days=env.messaging.broker_log_retention_days,
                   kms_encrypted_logs=env.compute.kms_encrypted_logs, protect=env.protect,
                   credentials_rotation=env.messaging.credentials_rotation)

    @property
    def log_group_name(self) -> str:
        return default_log_group_name("lambda", publisher_name(self.env_name))

    @property
    def log_group_arn(self) -> str:
        return log_group_arn(self.partition, self.region, self.account_id, self.log_group_name)


def execution_policy(args: QueueMetricsArgs, *, secret_arn: str, key_arn: str, subnet_ids: list[str],
                     security_group_id: str) -> dict[str, Any]:
    """The publisher's permissions, each statement on named resources where the action allows it."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheMonitorSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": secret_arn},
        {"Sid": "UseTheSecretsKeyThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": key_arn, "Condition": {"StringEquals": {
             **via_secrets_manager(args.region), **secret_encryption_context(secret_arn)}}},
        # PutMetricData supports no resource but "*"; the cloudwatch:namespace condition key holds it to the
        # platform's namespace (Service Authorization Reference, Amazon CloudWatch: PutMetricData).
        {"Sid": "PublishQueueMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}},
        write_own_logs(args.log_group_arn),
        *vpc_function_statements(args.partition, args.region, args.account_id, subnet_ids=subnet_ids,
                                 security_group_id=security_group_id),
    ]}


def secret_json(username: pulumi.Input[str], password: pulumi.Input[str]) -> pulumi.Output[str]:
    """What the function reads from its secret (JSON ``username``/``password``)."""
    values: pulumi.Output[list[str]] = pulumi.Output.all(username, password)
    return values.apply(lambda pair: json.dumps({"username": pair[0], "password": pair[1]}, sort_keys=True))


class QueueMetricsPublisher(pulumi.ComponentResource):
    """The publisher's RabbitMQ user and secret, its function, role, log group and schedule.

    First ``up``: user, permissions and secret value, then the schedule (``depends_on``), so the first run
    signs in. The alarms on its series (shared.components.alarms) start INSUFFICIENT_DATA until the first run.
    A later ``up`` with no change changes nothing (the code is the file's text and the queue list, hashed by the
    provider); a change of the catalog's queues updates the package and ``QUEUES_SHA256`` in place; a new
    rotation epoch updates the password, the user and the secret in place (the function reads the secret on
    each run, so at most one run between the two updates is refused and counted in ``Errors``).
    """

    def __init__(
        self,
        name: str,
        args: QueueMetricsArgs,
        *,
        provider: rabbitmq.Provider,
        vhost: pulumi.Input[str],
        ready: list[pulumi.Resource],
        secrets_key_arn: pulumi.Input[str],
        management_endpoint: pulumi.Input[str],
        private_subnet_ids: pulumi.Input[list[str]],
        security_group_id: pulumi.Input[str],
        broker_security_group_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:messaging:QueueMetricsPublisher", name, None, opts)
        env = args.env_name
        child = pulumi.ResourceOptions(parent=self)

        password = generated_password(f"{name}-password", opts=child,
                                      keepers=rotation_keepers(args.credentials_rotation))
        self.user = rabbitmq.User(f"{name}-user", name=monitor_user_name(env), password=password,
                                  tags=list(MONITOR_TAGS), opts=pulumi.ResourceOptions(parent=self, provider=provider))
        self.permissions = rabbitmq.Permissions(
            f"{name}-permissions", user=self.user.name, vhost=vhost,
            permissions=rabbitmq.PermissionsPermissionsArgs(**MONITOR_PERMISSIONS),
            opts=pulumi.ResourceOptions(parent=self.user, provider=provider))
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret", name=monitor_secret_name(env),
            description=f"RabbitMQ credentials of the {env} queue metrics publisher (read-only, vhost {args.vhost})",
            recovery_window_in_days=30 if args.protect else 0, kms_key_id=secrets_key_arn,
            tags=rotation_tags(args.credentials_rotation), opts=child)
        secret_string: pulumi.Output[str] = pulumi.Output.secret(secret_json(self.user.name, password))
        self.secret_version = aws.secretsmanager.SecretVersion(
            f"{name}-secret", secret_id=self.secret.id, secret_string=secret_string,
            opts=pulumi.ResourceOptions(parent=self.secret))

        made = management_function(
            self, name, args, ManagementFunctionSpec(
                function_name=publisher_name(env),
                description=f"Publishes the {env} RabbitMQ queues' backlog to CloudWatch ({METRICS_NAMESPACE})",
                role_description=f"Queue metrics publisher of {env}: its secret, its key, its metrics, its logs, "
                                 "its ENIs",
                source=publisher_source(), handler_module=HANDLER_MODULE, timeout_seconds=TIMEOUT_SECONDS,
                log_key_description=f"Queue metrics publisher logs ({env})",
                log_key_alias=f"{env}/queue-metrics-logs",
                package_files=((QUEUES_FILE, queues_document(args.queues)),)),
            execution_policy=execution_policy, secret_arn=self.secret.arn, secrets_key_arn=secrets_key_arn,
            # The broker's own management URL, never the deployer's tunnel of messaging.management.
            variables={ENDPOINT_VAR: management_endpoint, SECRET_VAR: self.secret.arn,
                       VHOST_VAR: args.vhost, QUEUES_DIGEST_VAR: queues_digest(args.queues),
                       NAMESPACE_VAR: METRICS_NAMESPACE},
            private_subnet_ids=private_subnet_ids, security_group_id=security_group_id,
            broker_security_group_id=broker_security_group_id)
        self.broker_egress, self.logs_key, self.log_group = made.broker_egress, made.logs_key, made.log_group
        self.role, self.role_policy, self.function = made.role, made.role_policy, made.function

        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-schedule", name=publisher_name(env), schedule_expression=SCHEDULE,
            description=f"Runs the {env} queue metrics publisher every minute", opts=child)
        # A failed or throttled run is counted in Errors (its alarm notifies) and left to the next minute's run:
        # retries would multiply Errors and pile stale runs up behind a throttled account.
        self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async", function_name=self.function.name, maximum_retry_attempts=0,
            maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS, opts=pulumi.ResourceOptions(parent=self.function))
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke", action="lambda:InvokeFunction", function=self.function.name,
            principal="events.amazonaws.com", source_arn=self.schedule.arn,
            opts=pulumi.ResourceOptions(parent=self.function))
        # The target is what makes EventBridge invoke the function: last, once it can sign in and reach the broker.
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-schedule", rule=self.schedule.name, arn=self.function.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=0, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS),
            opts=pulumi.ResourceOptions(parent=self.schedule, depends_on=[
                self.invoke_config, self.permission, self.permissions, self.secret_version, self.broker_egress,
                *ready]))
        self.register_outputs({"function_name": self.function.name, "namespace": METRICS_NAMESPACE})
