"""Where the RabbitMQ broker of an environment lives, and how the platform administers it.

Two modes, chosen by ``messaging.broker`` in the env file:

- ``amazon-mq`` (broker layer): an Amazon MQ for RabbitMQ broker in the env's private subnets, never
  publicly accessible, AMQPS (5671) from the services' security group and the management API (443)
  from the deploy runner's only, general logs to CloudWatch, a generated admin credential kept in
  Secrets Manager.
- ``external``: a broker that already exists; the broker layer exports its endpoints from the env file
  and the messaging layer takes its admin credentials from the Secrets Manager secret its operator keeps,
  ``platform/<env>/broker/external-admin`` (:func:`external_admin_secret_name`), read at each run.

The messaging layer turns the broker layer's contract into a :class:`BrokerAccess` (:func:`broker_access`):
what the topology's explicit ``pulumi_rabbitmq`` provider and the services' connection secrets are built from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from shared import REPO_ROOT
from shared.amazonmq import (
    BROKER_WAIT_MINUTES,
    CLUSTER_AZS,
    amazon_mq_rabbitmq_conf,
    broker_consumer_timeout_ms,
    broker_problems,
    cluster_zones_problem,
    engine_at_least,
    per_queue_consumer_timeout,
)
from shared.broker_names import broker_name
from shared.catalog import CONSUMER_TIMEOUT_DEFAULT_MS, load_catalog
from shared.cloudwatch_metrics import BROKER_LOGS_NAMESPACE, RESOURCE_ALARMS_METRIC
from shared.components.alarms import AlarmTopic
from shared.components.broker_logs import BrokerLogGroup
from shared.components.broker_rotation import BrokerAdminRotation, BrokerAdminRotationArgs, rotation_days
from shared.components.building_blocks import customer_key, generated_password, log_group_arn
from shared.components.compute_containers import InRegion
from shared.components.compute_iam import customer_key_policy
from shared.contracts import BrokerOutputs, StackContractError, required
from shared.envs import EnvConfig, MaintenanceWindow, MessagingConfig, env_path
from shared.errors import ConfigError
from shared.management_api import management_url
from shared.rotation.broker_admin import check_admin_password  # Amazon MQ's rule, shared with the rotation
from shared.synth.mocks import MockRequest, ResourceMock, register_mock

AMQPS_PORT = 5671
MANAGEMENT_PORT = 443
CONFIG_NAMESPACE = "messaging"
#: Where an external broker's admin credentials were kept before they moved to Secrets Manager: read only to warn
#: that they are left in the stack's settings (:func:`_warn_of_retired_config`).
ADMIN_USERNAME_KEY = "adminUsername"
ADMIN_PASSWORD_KEY = "adminPassword"
DEFAULT_ADMIN_USERNAME = "platform-admin"
#: A staging label the admin secret's first version keeps (a version without labels is deprecated and
#: eventually removed by Secrets Manager); botocore secretsmanager SecretVersionStageType: 1-256 characters.
INITIAL_STAGE = "platform-initial"


@dataclass(frozen=True)
class BrokerAccess:
    """Endpoints and administrator credentials of the env's broker (password always a secret)."""

    mode: str
    amqps_endpoint: pulumi.Output[str]
    management_endpoint: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    #: PEM bundle the provider verifies the management API with (``messaging.management.ca_file``)
    ca_file: str | None = None
    #: proxy for the management API only (``messaging.management.proxy``), e.g. socks5://localhost:1080
    proxy: str | None = None


@dataclass(frozen=True)
class AmazonMqBrokerArgs(InRegion):
    env_name: str
    engine_version: str
    instance_type: str
    deployment_mode: str
    protect: bool
    region: str
    account_id: str
    log_retention_days: int
    kms_encrypted_logs: bool
    admin_username: str = DEFAULT_ADMIN_USERNAME
    #: days between rotations of the admin by its Secrets Manager rotation function; None: no rotation
    #: (shared.components.broker_rotation.rotation_days)
    admin_rotation_days: int | None = None
    #: RabbitMQ's broker-wide consumer_timeout (ms): how long a consumer may hold a delivery unacked before the
    #: broker closes its channel, for queues without their own consumer-timeout policy key (the work queues have
    #: one: shared.amazonmq.broker_consumer_timeout_ms)
    consumer_timeout_ms: int = CONSUMER_TIMEOUT_DEFAULT_MS
    #: the layer's default tags, for what the AWS provider does not create (the broker's own log group, a dynamic
    #: resource: the provider's default_tags never reach it)
    tags: dict[str, str] = field(default_factory=dict)
    #: when Amazon MQ may restart the broker each week (``messaging.maintenance_window``, its own time zone)
    maintenance_window: MaintenanceWindow = MessagingConfig.model_fields["maintenance_window"].default

    def __post_init__(self) -> None:
        # The env loader's rule (shared.amazonmq.broker_problems: engine version as major.minor, instance type,
        # deployment mode), so args built without an env file are refused for the same reasons.
        problems = broker_problems(self.engine_version, self.instance_type, self.deployment_mode)
        if problems:
            raise ValueError("; ".join(f"AmazonMqBrokerArgs.{key}: {reason}" for key, reason in problems))

    @classmethod
    def from_env(cls, env: EnvConfig) -> AmazonMqBrokerArgs:
        """The args of a loaded env: the loader has refused every broker its rules reject (file, key, reason)."""
        messaging = env.messaging
        return cls(env_name=env.name, engine_version=messaging.engine_version,
                   instance_type=messaging.instance_type, deployment_mode=messaging.deployment_mode,
                   protect=env.protect, region=env.region, account_id=env.account_id,
                   log_retention_days=messaging.broker_log_retention_days,
                   kms_encrypted_logs=env.compute.kms_encrypted_logs, admin_rotation_days=rotation_days(env),
                   consumer_timeout_ms=broker_consumer_timeout_ms(load_catalog(), messaging.engine_version),
                   maintenance_window=messaging.maintenance_window, tags=env.common_tags("broker"))


def broker_subnets(deployment_mode: str, private_subnet_ids: list[str]) -> list[str]:
    """One subnet for SINGLE_INSTANCE, the first three AZs' for a cluster (three nodes in three AZs).

    Always the first ones: subnet_ids forces a new broker (terraform-provider-aws mq/broker.go, ForceNew), so
    raising network.az_count in a region with more AZs must not add a subnet to a running cluster.

    The subnets are what the network stack holds (an env that raised network.az_count with the mode in one change,
    run before network is deployed: a preview, ``--layers broker``): a StackContractError, which ``pulumi`` prints as
    the error line (a ValueError in an apply is a traceback)."""
    if not private_subnet_ids:
        raise StackContractError("layer 'broker' needs private subnets, but 'network' exports none (deploy the network "
                                 "layer first)")
    problem = cluster_zones_problem(deployment_mode, len(private_subnet_ids), "the number of private subnets")
    if problem:  # the env loader's rule (on network.az_count, one private subnet per AZ); what to do first
        raise StackContractError(f"layer 'broker' reads {len(private_subnet_ids)} private subnets from the network "
                                 f"stack: deploy the network layer first (network.az_count {CLUSTER_AZS}). {problem}")
    return private_subnet_ids[:1] if deployment_mode == "SINGLE_INSTANCE" else private_subnet_ids[:CLUSTER_AZS]


def admin_secret_name(env_name: str) -> str:
    return f"platform/{env_name}/broker/admin"


def external_admin_secret_name(env_name: str) -> str:
    """The secret an ``external`` broker's operator keeps its admin credentials in (JSON ``username`` and
    ``password``), in the env's account and region. Not the Amazon MQ admin's name: a move between the modes would
    find the other's secret in the way (or, deleted with a recovery window, still scheduled for deletion). Under the
    env's ``platform/<env>/`` prefix, which the deploy role reads (shared.deploy_role, secret_statements) and the
    read-only role of the pull-request jobs does not: the credentials are in no file of the repository."""
    return f"platform/{env_name}/broker/external-admin"


#: Amazon MQ for RabbitMQ user names: letters, digits, '-', '.', '_' (no '~'), 2-100 characters, never
#: ``guest`` (botocore mq model, ``User.Username``).
_ADMIN_USERNAME = re.compile(r"^[A-Za-z0-9._-]{2,100}$")


def check_admin_username(username: str) -> str:
    if not _ADMIN_USERNAME.match(username) or username == "guest":
        raise ValueError(f"{username!r} is not an Amazon MQ for RabbitMQ user name (letters, digits, '-', '.', '_', "
                         "2-100 characters, not 'guest')")
    return username


def auto_minor_version_upgrade(engine_version: str) -> bool:
    """RabbitMQ 3.13 and later on Amazon MQ are versioned ``major.minor`` and patched by AWS: CreateBroker
    requires AutoMinorVersionUpgrade=true for them (botocore mq model, ``AutoMinorVersionUpgrade``). The env names
    only ``major.minor`` (the loader refuses a patch version), and with auto upgrade on the provider reads the
    broker's patched version back as ``major.minor`` (terraform-provider-aws mq/broker.go, normalizeEngineVersion),
    so the ``up`` after AWS patched the broker finds no difference and never asks for the older patch."""
    return engine_at_least(engine_version, (3, 13))


CONFIGURATION_TYPE = "aws:mq/configuration:Configuration"


def _configuration_answers(request: MockRequest) -> dict[str, Any]:
    # The provider creates the configuration (revision 1, Amazon MQ's defaults), then writes `data` as
    # revision 2 (terraform-provider-aws mq/configuration.go: CreateConfiguration, then UpdateConfiguration).
    return {"latestRevision": 2}


# Offline answers for the synth: Amazon MQ configuration ids are c-<uuid>, ARNs ...:configuration:<id>.
register_mock(CONFIGURATION_TYPE, ResourceMock(id_prefix="c", arn="configuration:{id}",
                                               computed=_configuration_answers))


def configuration_name(env_name: str, engine_version: str) -> str:
    """The broker configuration's name (1-150 of letters, digits, '-', '.', '_', '~': botocore mq
    CreateConfigurationRequest.Name). It names the engine version: a configuration belongs to one engine
    version (a new one replaces it), and the replacement is created beside the old one before the broker moves."""
    return f"{broker_name(env_name)}-rabbitmq-{engine_version}"


def _network_group(purpose: str, output: str) -> Callable[[str | None], str]:
    """The check of a network output the broker's security group admits: ``output`` unset fails, naming why
    (``purpose``) the broker needs it."""
    def require(group_id: str | None) -> str:
        if not group_id:
            raise StackContractError(f"layer 'broker' {purpose} but 'network' exports no {output} (deploy the network "
                                     "layer first)")
        return group_id
    return require


_require_queue_metrics_group = _network_group("admits the queue metrics publisher", "queue_metrics_security_group_id")
_require_rotation_group = _network_group("rotates the broker admin", "broker_rotation_security_group_id")


class AmazonMqBroker(pulumi.ComponentResource):
    """An Amazon MQ for RabbitMQ broker: private, SG-referenced ingress only, logs on, generated admin
    kept in Secrets Manager and rotated there by a rotation function (where ``admin_rotation_days`` is
    set), ``users`` ignored after creation."""

    def __init__(
        self,
        name: str,
        args: AmazonMqBrokerArgs,
        *,
        vpc_id: pulumi.Input[str],
        private_subnet_ids: pulumi.Input[list[str]],
        service_security_group_id: pulumi.Input[str],
        runner_security_group_id: pulumi.Input[str],
        rotation_security_group_id: pulumi.Input[str | None] = None,
        queue_metrics_security_group_id: pulumi.Input[str | None] = None,
        alarm_topic: AlarmTopic | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if args.admin_rotation_days is not None and alarm_topic is None:
            raise ValueError(f"AmazonMqBroker {name!r}: an admin secret that rotates needs the alarm_topic its "
                             "rotation failures are sent to")
        super().__init__("mlplatform:broker:AmazonMqBroker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        env = args.env_name
        rotation_group: pulumi.Output[str] | None = None
        if args.admin_rotation_days is not None:
            rotation_group = pulumi.Output.from_input(rotation_security_group_id).apply(_require_rotation_group)

        # Security-group references, not CIDRs: AMQPS only from the services' security group (the
        # network layer's), the management API only from the deploy runner's (and the admin's rotation
        # function's, where it rotates). No egress rule: the broker never initiates connections into the
        # VPC, and security groups are stateful.
        rotation_ingress = [aws.ec2.SecurityGroupIngressArgs(
            protocol="tcp", from_port=MANAGEMENT_PORT, to_port=MANAGEMENT_PORT, security_groups=[rotation_group],
            description="RabbitMQ management API (HTTPS) from the broker admin rotation function (Lambda)",
        )] if rotation_group is not None else []
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=vpc_id,
            description=f"RabbitMQ broker of {env}: AMQPS from the services, management API from the deploy runner",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=AMQPS_PORT, to_port=AMQPS_PORT,
                    security_groups=[service_security_group_id],
                    description="AMQPS (TLS) from the platform services"),
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=MANAGEMENT_PORT, to_port=MANAGEMENT_PORT,
                    security_groups=[runner_security_group_id],
                    description="RabbitMQ management API (HTTPS) from the deploy runner, for provisioning"),
                *rotation_ingress,
                # The messaging layer's queue metrics publisher reads the queues' figures
                # (shared.components.queue_metrics).
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=MANAGEMENT_PORT, to_port=MANAGEMENT_PORT,
                    security_groups=[pulumi.Output.from_input(queue_metrics_security_group_id).apply(
                        _require_queue_metrics_group)],
                    description="RabbitMQ management API (HTTPS) from the queue metrics publisher (Lambda)"),
            ],
            egress=[],
            tags={"Name": f"{env}-broker"},
            opts=child,
        )

        self.admin_username: pulumi.Output[str] = pulumi.Output.from_input(check_admin_username(args.admin_username))
        self.admin_password: pulumi.Output[str] = generated_password(f"{name}-admin-password", opts=child)

        # The admin credential's only source after creation: the messaging layer reads AWSCURRENT from
        # here, and the rotation function (through the management API) writes each new password here.
        # Its own customer-managed key: the policy delegates use to IAM, so only principals whose IAM
        # policy allows kms:Decrypt on it (the deployer) read the admin credential, and each use is logged.
        self.secrets_key = customer_key(
            f"{name}-secrets", description=f"RabbitMQ broker administrator credential ({env})",
            alias=f"{env}/broker-secrets",
            policy=json.dumps(customer_key_policy(partition=args.partition, account_id=args.account_id,
                                                  region=args.region), sort_keys=True),
            opts=stateful)
        self.admin_secret = aws.secretsmanager.Secret(
            f"{name}-admin",
            name=admin_secret_name(env),
            description=f"Administrator of the {env} RabbitMQ broker (rotated by Secrets Manager where the env rotates "
                        "credentials; README, Broker admin rotation)",
            recovery_window_in_days=30 if args.protect else 0,
            # A new key is an in-place UpdateSecret; Secrets Manager re-encrypts the current versions.
            kms_key_id=self.secrets_key.arn,
            opts=stateful,
        )
        admin_json: pulumi.Output[str] = pulumi.Output.all(self.admin_username, self.admin_password).apply(
            lambda values: json.dumps({"username": values[0], "password": check_admin_password(values[1])},
                                      sort_keys=True))
        secret_string: pulumi.Output[str] = pulumi.Output.secret(admin_json)

        # The broker's RabbitMQ settings: how long a consumer may hold a delivery unacked (consumer_timeout: the bound
        # of the short jobs; each work queue's policy carries its own, the catalog's max_job_seconds). A new value is
        # a new revision of the same configuration (UpdateConfiguration), which the broker is pointed at in place
        # (UpdateBroker); Amazon MQ applies it at the broker's next reboot, its maintenance window or
        # `aws mq reboot-broker` (Amazon MQ developer guide, "Amazon MQ broker configuration lifecycle").
        # engine_type, engine_version and name force a new configuration (terraform-provider-aws
        # mq/configuration.go, ForceNew); the broker then moves to the new one in place.
        # retain_on_delete: a replaced configuration is still the broker's current one until that reboot, so it is
        # left in the account (configurations cost nothing) rather than deleted under the broker. The one way back,
        # 4.2 to 3.13 out of a refused upgrade (shared.broker_upgrade.going_back), replaces it by a new 3.13 one of
        # the name the first, retained, still has: Amazon MQ configuration names need not be unique (README, what a
        # destroy leaves behind; IaC re-creating a broker's configuration of one name on every spin piles them up:
        # aws/aws-sdk#758, hashicorp/terraform-provider-aws#47193), and the broker is pointed at the new one's id.
        # authentication_strategy is left unset here and on the broker: both take Amazon MQ's default, simple
        # (botocore mq CreateConfigurationRequest and CreateBrokerRequest, AuthenticationStrategy), so they agree.
        self.configuration = aws.mq.Configuration(
            f"{name}-config",
            name=configuration_name(env, args.engine_version),
            # In place (botocore mq UpdateConfigurationRequest: Description, Data).
            description=f"RabbitMQ settings of the {env} broker (consumer_timeout: for queues without their own "
                        "consumer-timeout policy)",
            engine_type="RabbitMQ",
            engine_version=args.engine_version,
            data=amazon_mq_rabbitmq_conf(args.consumer_timeout_ms),  # and lets messaging manage operator policies
            tags={"Name": configuration_name(env, args.engine_version)},
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        self.broker = aws.mq.Broker(
            f"{name}-broker",
            broker_name=broker_name(env),  # its length is checked with the env (shared.broker_names)
            engine_type="RabbitMQ",
            engine_version=args.engine_version,
            auto_minor_version_upgrade=auto_minor_version_upgrade(args.engine_version),
            host_instance_type=args.instance_type,
            deployment_mode=args.deployment_mode,
            subnet_ids=pulumi.Output.from_input(private_subnet_ids).apply(
                lambda ids: broker_subnets(args.deployment_mode, ids)),
            security_groups=[self.security_group.id],
            publicly_accessible=False,
            logs=aws.mq.BrokerLogsArgs(general=True),
            # No encryption_options: Amazon MQ encrypts a RabbitMQ broker with an AWS owned key (botocore mq
            # EncryptionOptions.UseAwsOwnedKey, true by default "for RabbitMQ brokers"), so the deploy role needs no
            # KMS permission for it. A customer managed key added here (ForceNew: a new broker) would need
            # kms:CreateGrant and kms:DescribeKey on it for the UpdateBroker of a 3.13 cluster's upgrade to 4.2,
            # which otherwise answers 403 (Amazon MQ developer guide, "In-place upgrade from RabbitMQ 3 to 4",
            # step 3): add them to shared/deploy_role.py with it.
            # In place (UpdateBroker); no apply_immediately: a new revision waits for the maintenance window
            # instead of rebooting the broker during `up` (README, "Changing the broker").
            configuration=aws.mq.BrokerConfigurationArgs(id=self.configuration.id,
                                                         revision=self.configuration.latest_revision),
            users=[aws.mq.BrokerUserArgs(username=self.admin_username, password=self.admin_password)],
            # The env's own window, in its own time zone (README, "Maintenance window"); changed in place, no reboot
            # (terraform-provider-aws mq/broker.go: UpdateBroker with MaintenanceWindowStartTime alone).
            maintenance_window_start_time=aws.mq.BrokerMaintenanceWindowStartTimeArgs(
                day_of_week=args.maintenance_window.day_of_week, time_of_day=args.maintenance_window.time_of_day,
                time_zone=args.maintenance_window.time_zone),
            tags={"Name": broker_name(env)},
            # For RabbitMQ, Amazon MQ creates the one admin user when the broker is first provisioned and
            # every later user through the RabbitMQ API (botocore mq model, CreateBrokerRequest.Users);
            # a change to `users` would recreate the broker and lose its queues. The admin is rotated
            # through the management API and the secret above instead.
            # Delete before replace: a replacement (a new subnet set, deployment mode or name) cannot be
            # created beside the old broker, whose name must be unique in the account (botocore mq
            # CreateBroker, BrokerName). Replacing loses the broker's queues: prod protects it, and the
            # README says what to run after a replacement elsewhere.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, ignore_changes=["users"],
                                        delete_before_replace=True, custom_timeouts=pulumi.CustomTimeouts(
                                            create=f"{BROKER_WAIT_MINUTES}m", update=f"{BROKER_WAIT_MINUTES}m",
                                            delete=f"{BROKER_WAIT_MINUTES}m")),
        )

        # Which broker the admin secret's first version was written for. A broker deleted outside Pulumi, which a
        # refresh then drops from the state, comes back as a create, not a replacement: replace_with=[broker] alone
        # would leave a rotated password as AWSCURRENT, which the new broker (created with the generated one, its
        # `users`) refuses, and messaging could not log in. Its id is this marker's keeper (pulumi_random keepers
        # are ForceNew: "Arbitrary map of values that, when changed, will trigger recreation of resource"), so a
        # new broker id replaces the marker, and the version with it (README, "Disaster recovery").
        self.broker_generation = random.RandomId(f"{name}-broker-generation", byte_length=4,
                                                 keepers={"broker_id": self.broker.id}, opts=child)

        # The secret's first version, written once the broker holds that password.
        # - ignore_changes: after a rotation the secret holds a newer version (AWSCURRENT moved), and neither
        #   the first value nor its labels are ever written back over it;
        # - INITIAL_STAGE keeps a label on it for good: Secrets Manager removes unlabelled versions beyond the
        #   100 most recent (botocore secretsmanager, PutSecretValue), and the provider drops a version it can
        #   no longer read from the state, so the next `up` would put the first password back as AWSCURRENT;
        # - replace_with: a replaced (or re-created: broker_generation) broker starts with the generated password
        #   again (its `users`), so the version is written again with it and becomes AWSCURRENT (PutSecretValue
        #   moves both labels), which the messaging layer and the rotation function then use (Pulumi
        #   ResourceOptions.replace_with: "replaced whenever any of the provided resources are replaced");
        # - retain_on_delete: the replaced version is left to Secrets Manager; the provider's delete would try
        #   to take labels off it that have moved on (AWSPREVIOUS, INITIAL_STAGE) and fail.
        self.admin_version = aws.secretsmanager.SecretVersion(
            f"{name}-admin",
            secret_id=self.admin_secret.id,
            secret_string=secret_string,
            version_stages=["AWSCURRENT", INITIAL_STAGE],
            opts=pulumi.ResourceOptions(parent=self.admin_secret, ignore_changes=["secretString", "versionStages"],
                                        depends_on=[self.broker],
                                        replace_with=[self.broker, self.broker_generation],
                                        retain_on_delete=True),
        )

        instance = self.broker.instances.apply(_first_instance)
        self.amqps_endpoint: pulumi.Output[str] = instance.apply(_amqps_endpoint)
        self.management_endpoint: pulumi.Output[str] = instance.apply(lambda i: str(i["console_url"]))
        # Where Amazon MQ writes the broker's general logs (Amazon MQ developer guide, logging). Amazon MQ
        # creates this group itself while it creates the broker, so it cannot be pre-created under a name
        # known only afterwards: BrokerLogGroup adopts it (see shared.components.broker_logs).
        self.log_group_name: pulumi.Output[str] = self.broker.id.apply(broker_log_group_name)
        self.logs_key: aws.kms.Key | None = None
        if args.kms_encrypted_logs:
            # For every broker group of the account, not this broker's only: a replaced broker's group is kept with
            # its events, and CloudWatch Logs needs the key for every read of them (pulumi_aws LogGroup kms_key_id:
            # "requires permissions for the CMK whenever the encrypted data is requested").
            self.logs_key = customer_key(
                f"{name}-logs", description=f"RabbitMQ broker logs ({env})", alias=f"{env}/broker-logs",
                policy=json.dumps(customer_key_policy(
                    partition=args.partition, account_id=args.account_id, region=args.region,
                    logs_arn_pattern=log_group_arn(args.partition, args.region, args.account_id,
                                                   broker_log_group_name(BROKER_ID_PATTERN))), sort_keys=True),
                opts=stateful)
        self.log_group = BrokerLogGroup(
            f"{name}-logs", log_group_name=self.log_group_name, region=args.region, account_id=args.account_id,
            retention_in_days=args.log_retention_days, kms_key_arn=self.logs_key.arn if self.logs_key else None,
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        # A node's memory or disk alarm blocks every publisher of the cluster (RabbitMQ docs, "Memory and Disk
        # Alarms"), while Amazon MQ's broker-wide figures, which the memory and disk alarms read, are sums over the
        # nodes: one node at its limit can stay under their thresholds. RabbitMQ logs each alarm it sets
        # (rabbit_alarm.erl handle_set_resource_alarm: "~s resource limit alarm set on node ~p."); counted here,
        # alarmed in shared.components.alarms.broker_resource_alarms.
        self.resource_alarms = aws.cloudwatch.LogMetricFilter(
            f"{name}-resource-alarms", name=f"{env}-ml-broker-resource-alarms", log_group_name=self.log_group_name,
            pattern=RESOURCE_ALARM_PATTERN,
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=RESOURCE_ALARMS_METRIC, namespace=BROKER_LOGS_NAMESPACE, value="1", unit="Count"),
            opts=pulumi.ResourceOptions(parent=self.log_group, depends_on=[self.log_group]))
        self.admin_rotation: BrokerAdminRotation | None = None
        if args.admin_rotation_days is not None and rotation_group is not None and alarm_topic is not None:
            self.admin_rotation = BrokerAdminRotation(
                f"{name}-admin-rotation",
                BrokerAdminRotationArgs(env_name=env, region=args.region, account_id=args.account_id,
                                        rotation_days=args.admin_rotation_days,
                                        log_retention_days=args.log_retention_days,
                                        kms_encrypted_logs=args.kms_encrypted_logs, protect=args.protect),
                secret_arn=self.admin_secret.arn, secrets_key_arn=self.secrets_key.arn,
                management_endpoint=self.management_endpoint, private_subnet_ids=private_subnet_ids,
                security_group_id=rotation_group, broker_security_group_id=self.security_group.id,
                ready=[self.admin_version, self.broker], alarm_topic=alarm_topic, opts=child)
        self.register_outputs({
            "amqps_endpoint": self.amqps_endpoint,
            "management_endpoint": self.management_endpoint,
            "security_group_id": self.security_group.id,
            "admin_secret_arn": self.admin_secret.arn,
        })


#: The broker log's line for a resource alarm a node sets (a CloudWatch Logs term match of the quoted phrase)
RESOURCE_ALARM_PATTERN = '"resource limit alarm set on node"'

#: Every Amazon MQ broker id (``b-<uuid>``), as an IAM wildcard.
BROKER_ID_PATTERN = "b-*"


def broker_log_group_name(broker_id: str) -> str:
    return f"/aws/amazonmq/broker/{broker_id}/general"


def _first_instance(instances: Any) -> dict[str, Any]:
    # A cluster (CLUSTER_MULTI_AZ) also reports a single instance: the load-balanced cluster endpoint.
    if not instances:
        raise ValueError("the broker reports no instances")
    first = instances[0]
    if not isinstance(first, dict):
        first = {"console_url": first.console_url, "endpoints": first.endpoints}
    return {"console_url": first.get("console_url") or first.get("consoleUrl"), "endpoints": first.get("endpoints")}


def _amqps_endpoint(instance: dict[str, Any]) -> str:
    for endpoint in instance.get("endpoints") or []:
        if str(endpoint).startswith("amqps://"):
            return str(endpoint)
    raise ValueError(f"the broker reports no amqps:// endpoint (got {instance.get('endpoints')})")


def external_endpoints(env: EnvConfig) -> tuple[str, str]:
    """(amqps_endpoint, management_endpoint) of an ``external`` broker, from the env file."""
    external = env.messaging.external
    if external is None:  # the env schema already guarantees this; kept for the type checker
        raise ConfigError(str(env_path(env.name)), "messaging.external", "required for broker 'external'")
    return external.amqps_endpoint, external.management_endpoint


def external_consumer_timeout_warning(env: EnvConfig) -> str:
    """What an ``external`` broker's operator must set: the platform configures only the brokers it creates."""
    catalog = load_catalog()
    version = env.messaging.engine_version
    if per_queue_consumer_timeout(version):
        longest = max((spec.queue_consumer_timeout_ms for spec in catalog if spec.queue), default=0)
        return (f"{env.name}: messaging.broker is external: each work queue's policy carries its consumer-timeout "
                f"(the catalog's max_job_seconds, up to {longest} ms), which RabbitMQ 3.12 and later apply instead "
                f"of the broker-wide consumer_timeout; run that broker on RabbitMQ {version} "
                "(messaging.engine_version) or later: an older one refuses the policy key, and `up` fails on the "
                "messaging layer (README, \"Add a service\")")
    needed = broker_consumer_timeout_ms(catalog, version)
    return (f"{env.name}: messaging.broker is external on RabbitMQ {version}, which has no per-queue consumer "
            f"timeout: set consumer_timeout to at least {needed} ms (the catalog's longest max_job_seconds) in that "
            "broker's rabbitmq.conf, or a consumer holding a delivery longer than the broker's timeout loses its "
            "channel and the job starts over (README, \"Add a service\")")


def admin_password_from_secret(secret_string: str) -> str:
    try:
        value = json.loads(secret_string)
        return str(value["password"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("the broker admin secret is not JSON with a 'password' key (see README, "
                         "\"Rotate the broker admin\")") from None


def external_admin_from_secret(secret_string: str, secret_name: str) -> tuple[str, str]:
    """(username, password) of an external broker's admin secret; a ValueError naming the secret and what is
    wrong with it (never its value)."""
    try:
        value = json.loads(secret_string)
    except ValueError:
        value = None
    fields = [value.get(key) if isinstance(value, dict) else None for key in ("username", "password")]
    missing = [key for key, given in zip(("username", "password"), fields, strict=True)
               if not isinstance(given, str) or not given]
    if missing:
        raise ValueError(f"the secret {secret_name} is not JSON with a non-empty {' and '.join(missing)} (the "
                         "external broker's admin: {\"username\": ..., \"password\": ...}; README, \"Messaging "
                         "(RabbitMQ) and its rehearsal\")")
    return str(fields[0]), str(fields[1])


def broker_access(env: EnvConfig, broker: BrokerOutputs, *, aws_provider: pulumi.ProviderResource,
                  config: pulumi.Config | None = None) -> BrokerAccess:
    """How the messaging layer administers the broker the broker layer describes.

    Both modes read the admin credential from a Secrets Manager secret at deploy time, its current version (so a
    rotated password is picked up): ``amazon-mq`` from the one the broker layer keeps, ``external`` from the one
    its operator keeps (:func:`external_admin_secret_name`; a missing secret, or one without both keys, fails the
    program, so a missing credential is never replaced by a default).
    ``messaging.management.endpoint`` (a tunnel) replaces the broker's own management endpoint.
    """
    management = env.messaging.management
    endpoint = provider_endpoint(env, broker.management_endpoint)
    if env.messaging.broker == "external":
        _warn_of_retired_config(config or pulumi.Config(CONFIG_NAMESPACE))
        name = external_admin_secret_name(env.name)
        external = aws.secretsmanager.get_secret_version_output(
            secret_id=name, opts=pulumi.InvokeOutputOptions(provider=aws_provider))
        credentials = external.secret_string.apply(lambda text: external_admin_from_secret(text, name))
        username: pulumi.Output[str] = pulumi.Output.secret(credentials.apply(lambda pair: pair[0]))
        password: pulumi.Output[str] = pulumi.Output.secret(credentials.apply(lambda pair: pair[1]))
    else:
        username = broker.admin_username.apply(
            lambda name: required(name, "broker.admin_username", "an amazon-mq broker has an admin"))
        secret = aws.secretsmanager.get_secret_version_output(
            secret_id=broker.admin_secret_arn, opts=pulumi.InvokeOutputOptions(provider=aws_provider))
        password = pulumi.Output.secret(secret.secret_string.apply(admin_password_from_secret))
    return BrokerAccess(mode=env.messaging.broker, amqps_endpoint=broker.amqps_endpoint,
                        management_endpoint=endpoint, admin_username=username, admin_password=password,
                        ca_file=provider_ca_file(management.ca_file), proxy=management.proxy)


def _warn_of_retired_config(config: pulumi.Config) -> None:
    """An external broker's admin credentials came from the messaging stack's secret config until they moved to
    Secrets Manager: where the stack's settings file still holds them, say that they are read no more and are to be
    removed and changed (the file is committed, and its secrets provider's key may be one more reader's)."""
    left = [key for key in (ADMIN_USERNAME_KEY, ADMIN_PASSWORD_KEY) if config.get_secret(key) is not None]
    if left:
        pulumi.log.warn(
            f"the messaging stack's config still holds {', '.join(f'{CONFIG_NAMESPACE}:{key}' for key in left)}, "
            "which no run reads any more (the external broker's admin credentials are read from Secrets Manager): "
            f"remove {'them' if len(left) > 1 else 'it'} (`pulumi config rm`) and change the broker admin's password "
            "(README, Upgrading an existing deployment)")


#: The RabbitMQ provider's working directory: Pulumi starts a provider plugin in the project's folder.
MESSAGING_PROJECT_DIR = REPO_ROOT / "stacks" / "messaging"


def provider_ca_file(ca_file: str | None) -> str | None:
    """``messaging.management.ca_file`` as the provider must get it. An env file's relative path is relative to
    the repository root (where nox runs; the env loader checks the file is there), but the provider opens
    ``cacert_file`` from its own working directory, so the path is re-based on the messaging project's folder.
    Kept relative, it is the same on every checkout (a CodeBuild source folder differs from build to build), so
    the provider's configuration does not change from one run to the next. An absolute path is kept as is."""
    if ca_file is None or Path(ca_file).is_absolute():
        return ca_file
    return os.path.relpath(REPO_ROOT / ca_file, MESSAGING_PROJECT_DIR)


def provider_endpoint(env: EnvConfig, broker_endpoint: pulumi.Input[str]) -> pulumi.Output[str]:
    """:func:`management_url` for the program: decided by the env file alone, or from the broker's endpoint."""
    decided = management_url(env, None)  # raises at once on a loopback endpoint without a server name
    if decided is not None:
        return pulumi.Output.from_input(decided)
    return pulumi.Output.from_input(broker_endpoint).apply(lambda own: management_url(env, own) or own)
