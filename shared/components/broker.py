"""Where the RabbitMQ broker of an environment lives, and how the platform administers it.

Two modes, chosen by ``messaging.broker`` in the env file:

- ``amazon-mq``: an Amazon MQ for RabbitMQ broker in the env's private subnets, never publicly
  accessible, reachable on AMQPS (5671) and the management API (443) from inside the VPC only,
  general logs to CloudWatch, admin credentials generated (or taken from secret config).
- ``external``: a broker that already exists; its endpoints come from the env file and its admin
  credentials from the stack's secret config (``messaging:adminUsername`` / ``messaging:adminPassword``,
  set with ``pulumi config set --secret``).

Either way the result is a :class:`BrokerAccess`: what the topology's explicit ``pulumi_rabbitmq``
provider and the services' connection secrets are built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError

AMQPS_PORT = 5671
MANAGEMENT_PORT = 443
CONFIG_NAMESPACE = "messaging"
ADMIN_USERNAME_KEY = "adminUsername"
ADMIN_PASSWORD_KEY = "adminPassword"
DEFAULT_ADMIN_USERNAME = "platform-admin"


@dataclass(frozen=True)
class BrokerAccess:
    """Endpoints and administrator credentials of the env's broker (password always a secret)."""

    mode: str
    amqps_endpoint: pulumi.Output[str]
    management_endpoint: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    security_group_id: pulumi.Output[str] | None


@dataclass(frozen=True)
class AmazonMqBrokerArgs:
    env_name: str
    engine_version: str
    instance_type: str
    deployment_mode: str
    protect: bool

    @classmethod
    def from_env(cls, env: EnvConfig) -> AmazonMqBrokerArgs:
        messaging = env.messaging
        if messaging.deployment_mode == "CLUSTER_MULTI_AZ" and env.network.az_count < 2:
            # A RabbitMQ cluster spreads its nodes over several AZs; it needs a private subnet in each.
            raise ConfigError(str(env_path(env.name)), "messaging.deployment_mode",
                              f"CLUSTER_MULTI_AZ needs private subnets in at least 2 AZs, but network.az_count is "
                              f"{env.network.az_count}")
        return cls(env_name=env.name, engine_version=messaging.engine_version,
                   instance_type=messaging.instance_type, deployment_mode=messaging.deployment_mode,
                   protect=env.protect)


def broker_subnets(deployment_mode: str, private_subnet_ids: list[str]) -> list[str]:
    """Amazon MQ takes exactly one subnet for SINGLE_INSTANCE and one per AZ for a cluster."""
    if not private_subnet_ids:
        raise ValueError("the network layer exports no private subnets")
    return private_subnet_ids[:1] if deployment_mode == "SINGLE_INSTANCE" else list(private_subnet_ids)


class AmazonMqBroker(pulumi.ComponentResource):
    """An Amazon MQ for RabbitMQ broker: private, VPC-only security group, logs on, generated admin."""

    def __init__(
        self,
        name: str,
        args: AmazonMqBrokerArgs,
        *,
        vpc_id: pulumi.Input[str],
        vpc_cidr: pulumi.Input[str],
        private_subnet_ids: pulumi.Input[list[str]],
        config: pulumi.Config | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:messaging:AmazonMqBroker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        env = args.env_name
        config = config or pulumi.Config(CONFIG_NAMESPACE)

        cidr = pulumi.Output.from_input(vpc_cidr)
        # Clients are the ECS tasks in this VPC; nothing outside the VPC (and nothing on 5672, the
        # plaintext AMQP port) may reach the broker. No egress rule: the broker never initiates
        # connections into the VPC, and security groups are stateful for the replies.
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=vpc_id,
            description=f"RabbitMQ broker of {env}: AMQPS and management API from inside the VPC only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=AMQPS_PORT, to_port=AMQPS_PORT, cidr_blocks=[cidr],
                    description="AMQPS (TLS) from services inside the VPC"),
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=MANAGEMENT_PORT, to_port=MANAGEMENT_PORT, cidr_blocks=[cidr],
                    description="RabbitMQ management API (HTTPS) from inside the VPC, for provisioning"),
            ],
            egress=[],
            tags={"Name": f"{env}-broker"},
            opts=child,
        )

        self.admin_username: pulumi.Output[str] = pulumi.Output.from_input(
            config.get(ADMIN_USERNAME_KEY) or DEFAULT_ADMIN_USERNAME)
        configured_password = config.get_secret(ADMIN_PASSWORD_KEY)
        if configured_password is not None:
            self.admin_password: pulumi.Output[str] = pulumi.Output.secret(configured_password)
        else:
            # Amazon MQ wants 12-250 characters, at least 4 distinct, and no commas, colons or '=':
            # letters and digits only satisfy that and never need escaping in an AMQP URL.
            generated = random.RandomPassword(
                f"{name}-admin-password", length=32, special=False, min_lower=4, min_upper=4, min_numeric=4,
                opts=child)
            self.admin_password = pulumi.Output.secret(generated.result)

        self.broker = aws.mq.Broker(
            f"{name}-broker",
            broker_name=f"ml-{env}",
            engine_type="RabbitMQ",
            engine_version=args.engine_version,
            # Amazon MQ requires automatic minor upgrades for RabbitMQ 3.13 and later.
            auto_minor_version_upgrade=True,
            host_instance_type=args.instance_type,
            deployment_mode=args.deployment_mode,
            subnet_ids=pulumi.Output.from_input(private_subnet_ids).apply(
                lambda ids: broker_subnets(args.deployment_mode, ids)),
            security_groups=[self.security_group.id],
            publicly_accessible=False,
            logs=aws.mq.BrokerLogsArgs(general=True),
            users=[aws.mq.BrokerUserArgs(username=self.admin_username, password=self.admin_password)],
            maintenance_window_start_time=aws.mq.BrokerMaintenanceWindowStartTimeArgs(
                day_of_week="SUNDAY", time_of_day="03:00", time_zone="UTC"),
            tags={"Name": f"ml-{env}"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        instance = self.broker.instances.apply(_first_instance)
        self.amqps_endpoint: pulumi.Output[str] = instance.apply(_amqps_endpoint)
        self.management_endpoint: pulumi.Output[str] = instance.apply(lambda i: str(i["console_url"]))
        self.register_outputs({
            "amqps_endpoint": self.amqps_endpoint,
            "management_endpoint": self.management_endpoint,
            "security_group_id": self.security_group.id,
        })

    @property
    def access(self) -> BrokerAccess:
        return BrokerAccess(
            mode="amazon-mq", amqps_endpoint=self.amqps_endpoint, management_endpoint=self.management_endpoint,
            admin_username=self.admin_username, admin_password=self.admin_password,
            security_group_id=self.security_group.id,
        )


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


def external_broker(env: EnvConfig, config: pulumi.Config | None = None) -> BrokerAccess:
    """An existing broker: endpoints from the env file, admin credentials from secret stack config.

    ``require_secret`` fails the program (``pulumi up`` and offline synth alike) when the stack
    config lacks either key, so a missing credential is never replaced by a default.
    """
    external = env.messaging.external
    if external is None:  # the env schema already guarantees this; kept for the type checker
        raise ConfigError(str(env_path(env.name)), "messaging.external", "required for broker 'external'")
    config = config or pulumi.Config(CONFIG_NAMESPACE)
    return BrokerAccess(
        mode="external",
        amqps_endpoint=pulumi.Output.from_input(external.amqps_endpoint),
        management_endpoint=pulumi.Output.from_input(external.management_endpoint),
        admin_username=config.require_secret(ADMIN_USERNAME_KEY),
        admin_password=config.require_secret(ADMIN_PASSWORD_KEY),
        security_group_id=None,
    )
