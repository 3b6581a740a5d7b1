"""messaging layer: the RabbitMQ topology from the catalog on the broker layer's broker, per-service credentials."""

import sys
from pathlib import Path

import pulumi

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.catalog import load_catalog
from shared.components.alarms import MetricAlarms, publisher_alarms, queue_alarms, starts_from_zero
from shared.components.broker import broker_access
from shared.components.messaging import DEAD_LETTER_EXCHANGE, RabbitTopology, exchange_name, plan_topology
from shared.components.queue_metrics import METRICS_NAMESPACE, QueueMetricsArgs, QueueMetricsPublisher
from shared.contracts import BrokerOutputs, NetworkOutputs, required
from shared.envs import publishes_queue_metrics
from shared.image_readiness import publish_grants
from shared.layer import Layer
from shared.rotation_continuity import check_rotation, exported_epoch, kept_epochs

layer = Layer("messaging")
# Before any resource: a rotation that would delete the users the running tasks hold is refused (exit 2) here too,
# for a `pulumi up` run in this folder without the orchestrator's own check.
rotation = layer.env.messaging.credentials_rotation
check_rotation(layer.env.name, rotation, layer.last_outputs())
broker_layer = layer.upstream("broker").contract(BrokerOutputs)
network = layer.upstream("network").contract(NetworkOutputs)
broker = broker_access(layer.env, broker_layer, aws_provider=layer.aws)

catalog = load_catalog()
plan = plan_topology(layer.env, catalog)
topology = RabbitTopology("messaging", plan, broker, opts=layer.opts)
if publishes_queue_metrics(layer.env):  # the queues' backlog, which Amazon MQ does not publish for RabbitMQ 4
    publisher = QueueMetricsPublisher(
        "queue-metrics",
        QueueMetricsArgs.from_env(layer.env, plan.vhost, tuple(q.name for q in plan.queues)),
        provider=topology.provider, vhost=topology.vhost.name, ready=list(topology.queues.values()),
        secrets_key_arn=topology.secrets_key.arn,
        # the broker's own management URL, reached from the private subnets (not the deployer's tunnel)
        management_endpoint=broker_layer.management_endpoint, private_subnet_ids=network.private_subnet_ids,
        security_group_id=network.queue_metrics_security_group_id.apply(
            lambda group: required(group, "network.queue_metrics_security_group_id",
                                   "the queue metrics publisher needs it (deploy the network layer first)")),
        broker_security_group_id=broker_layer.broker_security_group_id.apply(
            lambda group: required(group, "broker.broker_security_group_id", "an amazon-mq broker has a group")),
        opts=pulumi.ResourceOptions(parent=topology))
    MetricAlarms("queue-metrics-alarms", publisher_alarms(layer.env.name, layer.env.alarms, publisher.function.name),
                 broker_layer.alarm_topic_arn, opts=pulumi.ResourceOptions(parent=publisher), after=[publisher.target])
if layer.env.messaging.broker == "amazon-mq":  # an external broker publishes no AWS/AmazonMQ metrics
    broker_name = broker_layer.broker_name.apply(
        lambda name: required(name, "broker.broker_name", "an amazon-mq broker has a name"))
    MetricAlarms("queue-alarms", queue_alarms(layer.env.name, layer.env.alarms, broker_name, plan.vhost,
                                              plan.queue_pairs(), layer.env.messaging.engine_version,
                                              METRICS_NAMESPACE if publishes_queue_metrics(layer.env) else None,
                                              starts_from_zero(layer.env, catalog, plan.queue_pairs())),
                 broker_layer.alarm_topic_arn, opts=pulumi.ResourceOptions(parent=topology))

layer.export(
    broker_mode=broker.mode,
    amqps_endpoint=broker.amqps_endpoint,
    vhost=topology.vhost.name,
    requests_exchange=exchange_name("requests"),
    events_exchange=exchange_name("events"),
    dead_letter_exchange=DEAD_LETTER_EXCHANGE,
    queues={user.service: queue for user in plan.users if (queue := plan.work_queue(user.service))},
    service_secret_arns={service: secret.arn for service, secret in topology.secrets.items()},
    service_secret_versions={service: version.version_id for service, version in topology.secret_versions.items()},
    credentials_epoch=exported_epoch(rotation),
    credentials_kept_epochs=kept_epochs(rotation),
    publish_grants=publish_grants(catalog),
    # the queue metrics function's network interfaces (none without it)
    subnet_ids=network.private_subnet_ids if publishes_queue_metrics(layer.env) else [],
)
