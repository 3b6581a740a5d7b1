"""The ECS tasks' one way to the env's RabbitMQ broker: AMQPS out of the tasks' security group.

The network layer owns the tasks' group and its other rules; the broker's group (broker layer,
shared.components.broker) admits the tasks' group on AMQPS. This is the tasks' side, in the compute layer, which
reads both.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared.components.broker import AMQPS_PORT
from shared.contracts import StackContractError
from shared.envs import EnvConfig


@dataclass(frozen=True)
class BrokerTarget:
    """Where AMQPS goes: the Amazon MQ broker's security group, or an external broker's address."""

    mode: str
    port: int
    #: external broker: the /32 of an IPv4 literal host, else 0.0.0.0/0 (a DNS name is not the
    #: platform's to pin; only the port is)
    cidr_ipv4: str | None

    @classmethod
    def from_env(cls, env: EnvConfig) -> BrokerTarget:
        messaging = env.messaging
        if messaging.broker == "amazon-mq" or messaging.external is None:
            return cls(mode=messaging.broker, port=AMQPS_PORT, cidr_ipv4=None)
        host, _, port = messaging.external.amqps_endpoint.removeprefix("amqps://").rpartition(":")
        try:
            cidr = f"{ipaddress.IPv4Address(host)}/32"
        except ValueError:
            cidr = "0.0.0.0/0"
        return cls(mode=messaging.broker, port=int(port), cidr_ipv4=cidr)


def _require_group(group_id: str | None) -> str:
    if not group_id:
        raise StackContractError("layer 'compute' needs broker_security_group_id from 'broker' for an amazon-mq "
                            "broker, but the broker stack exports none")
    return group_id


def services_to_broker(
    name: str,
    target: BrokerTarget,
    *,
    service_security_group_id: pulumi.Input[str],
    broker_security_group_id: pulumi.Input[str | None],
    opts: pulumi.ResourceOptions,
) -> aws.vpc.SecurityGroupEgressRule:
    """One egress rule on the tasks' group: AMQPS (TLS) to the broker, nothing else of it."""
    if target.mode == "amazon-mq":
        return aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-to-broker", security_group_id=service_security_group_id,
            referenced_security_group_id=pulumi.Output.from_input(broker_security_group_id).apply(_require_group),
            ip_protocol="tcp", from_port=target.port, to_port=target.port,
            description="AMQPS (TLS) to the Amazon MQ broker of the env", opts=opts)
    return aws.vpc.SecurityGroupEgressRule(
        f"{name}-tasks-to-broker", security_group_id=service_security_group_id, cidr_ipv4=target.cidr_ipv4,
        ip_protocol="tcp", from_port=target.port, to_port=target.port,
        description="AMQPS (TLS) to the env's external broker", opts=opts)
