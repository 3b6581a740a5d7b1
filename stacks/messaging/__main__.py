"""messaging layer: the env's RabbitMQ broker, its topology from the catalog, per-service credentials."""

import sys
from pathlib import Path

import pulumi

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.catalog import load_catalog
from shared.components.alarms import AlarmTopic, AlarmTopicArgs, MetricAlarms, broker_alarms, queue_alarms
from shared.components.broker import AmazonMqBroker, AmazonMqBrokerArgs, external_broker
from shared.components.messaging import DEAD_LETTER_EXCHANGE, RabbitTopology, exchange_name, plan_topology
from shared.layer import Layer

layer = Layer("messaging")
network = layer.upstream("network")

# The env's alarm topic: this is the first layer with alarms (compute reads its ARN from the contract).
alarm_topic = AlarmTopic("alarms", AlarmTopicArgs.from_env(layer.env), opts=layer.opts)

broker_name = None
if layer.env.messaging.broker == "amazon-mq":
    amazon_mq = AmazonMqBroker(
        "broker", AmazonMqBrokerArgs.from_env(layer.env), vpc_id=network["vpc_id"], vpc_cidr=network["vpc_cidr"],
        private_subnet_ids=network["private_subnet_ids"], opts=layer.opts)
    broker, broker_name = amazon_mq.access, amazon_mq.broker.broker_name
    MetricAlarms("broker-alarms", broker_alarms(layer.env.name, layer.env.alarms, broker_name), alarm_topic.arn,
                 opts=pulumi.ResourceOptions(parent=amazon_mq))
else:
    broker = external_broker(layer.env)  # not Amazon MQ: no AWS/AmazonMQ metrics to alarm on

plan = plan_topology(layer.env, load_catalog())
topology = RabbitTopology("messaging", plan, broker, opts=layer.opts)
if broker_name is not None:
    MetricAlarms("queue-alarms", queue_alarms(layer.env.name, layer.env.alarms, broker_name, plan.vhost,
                                              plan.queue_pairs()), alarm_topic.arn,
                 opts=pulumi.ResourceOptions(parent=topology))

layer.export(
    broker_mode=broker.mode,
    amqps_endpoint=broker.amqps_endpoint,
    management_endpoint=broker.management_endpoint,
    broker_security_group_id=broker.security_group_id,
    vhost=topology.vhost.name,
    requests_exchange=exchange_name("requests"),
    events_exchange=exchange_name("events"),
    dead_letter_exchange=DEAD_LETTER_EXCHANGE,
    queues={user.service: queue for user in plan.users if (queue := plan.work_queue(user.service))},
    service_secret_arns={service: secret.arn for service, secret in topology.secrets.items()},
    alarm_topic_arn=alarm_topic.arn,
)
