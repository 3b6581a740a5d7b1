"""A broker user whose password comes from an existing Secrets Manager secret (a JSON document)."""

import json

import pulumi
import pulumi_aws as aws

secret = aws.secretsmanager.get_secret(name="prod/app/db")
version = aws.secretsmanager.get_secret_version(secret_id=secret.id)
credentials = json.loads(version.secret_string)

# The output form of the same lookup, parsed inside apply.
password = aws.secretsmanager.get_secret_version_output(secret_id=secret.arn).apply(
    lambda v: json.loads(v.secret_string)["password"])

broker = aws.mq.Broker(
    "events",
    engine_type="RabbitMQ",
    engine_version="3.13",
    host_instance_type="mq.m5.large",
    deployment_mode="CLUSTER_MULTI_AZ",
    publicly_accessible=False,
    auto_minor_version_upgrade=True,
    logs=aws.mq.BrokerLogsArgs(general=True),
    users=[aws.mq.BrokerUserArgs(username=credentials["username"], password=pulumi.Output.secret(password))],
)
pulumi.export("broker", broker.arn)
