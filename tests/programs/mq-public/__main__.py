"""A RabbitMQ broker the way a first try looks: public, a generated password, the deployment mode left to
its default (one instance)."""

import pulumi
import pulumi_aws as aws
import pulumi_random as random

password = random.RandomPassword("admin", length=24, special=False)
broker = aws.mq.Broker(
    "queue",
    engine_type="RabbitMQ",
    engine_version="3.13",
    host_instance_type="mq.t3.micro",
    publicly_accessible=True,
    auto_minor_version_upgrade=True,  # RabbitMQ 3.13+ brokers must take minor versions automatically
    users=[aws.mq.BrokerUserArgs(username="admin", password=password.result)],
)
pulumi.export("console", broker.instances.apply(lambda instances: instances[0].console_url))
