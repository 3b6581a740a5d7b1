"""broker layer: the env's RabbitMQ broker (AWS APIs only, so it deploys from anywhere) and the deploy runner."""

import os
import sys
from pathlib import Path

import pulumi

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.components.alarms import (
    TOPIC_LAYER,
    AlarmTopic,
    AlarmTopicArgs,
    MetricAlarms,
    broker_alarms,
    broker_resource_alarms,
    capacity_alarms,
    event_delivery_alarms,
    notification_delivery_alarms,
    rotation_alarms,
    task_retirement_notification,
)
from shared.components.broker import (
    AmazonMqBroker,
    AmazonMqBrokerArgs,
    external_consumer_timeout_warning,
    external_endpoints,
)
from shared.broker_capacity import pending_engine, running_broker
from shared.broker_upgrade import actions_required, check_engine_move
from shared.components.deploy_runner import DeployRunner, DeployRunnerArgs
from shared.components.undelivered_events import undelivered_events_alarms
from shared.contracts import NetworkOutputs
from shared.layer import Layer

layer = Layer("broker")
# Before any resource: an engine version / instance type move Amazon MQ cannot apply to the deployed broker (a
# downgrade, the instance family and the major version at once, or back to mq.t3.micro) is refused (exit 2) here too,
# for a `pulumi up` run in this folder without the orchestrator's own check. An engine version set back to the one
# the broker runs is accepted where the orchestrator hands over that the broker reports AWS's code for a refused
# upgrade to RabbitMQ 4, or no longer does with nothing pending (shared.broker_upgrade.going_back).
check_engine_move(layer.env, layer.last_outputs(), running_broker(os.environ), actions_required(os.environ),
                  pending_engine(os.environ))
network = layer.upstream("network").contract(NetworkOutputs)

runner = DeployRunner("deploy-runner", DeployRunnerArgs.from_env(layer.env), vpc_id=network.vpc_id,
                      private_subnet_ids=network.private_subnet_ids,
                      security_group_id=network.deploy_runner_security_group_id, opts=layer.opts)
# The env's alarm topic: this is the first layer with alarms (messaging and compute read its ARN).
alarm_topic = AlarmTopic("alarms", AlarmTopicArgs.from_env(layer.env), opts=layer.opts)
# what the topic fails to deliver to a subscription, whatever the broker
# AWS's notice of Fargate tasks it will stop (a retiring platform revision), whatever the broker
retirement = task_retirement_notification(layer.env.name, alarm_topic,
                                          opts=pulumi.ResourceOptions(parent=alarm_topic))
MetricAlarms("alarm-topic-alarms", [
    *notification_delivery_alarms(layer.env.name, layer.env.alarms, alarm_topic.topic.name),
    *event_delivery_alarms(layer.env.name, layer.env.alarms, {"fargate-task-retirement": retirement.rule.name}),
    *undelivered_events_alarms(layer.env.name, layer.env.alarms, TOPIC_LAYER)],
    alarm_topic.arn, opts=pulumi.ResourceOptions(parent=alarm_topic))
runner_outputs = dict(deploy_runner_project_name=runner.project.name,
                      deploy_runner_security_group_id=runner.security_group_id, alarm_topic_arn=alarm_topic.arn,
                      # the runner's builds, the broker and its rotation function: all in the private subnets
                      subnet_ids=network.private_subnet_ids)

if layer.env.messaging.broker == "amazon-mq":
    broker = AmazonMqBroker(
        "broker", AmazonMqBrokerArgs.from_env(layer.env), vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        service_security_group_id=network.service_security_group_id,
        runner_security_group_id=runner.security_group_id,
        rotation_security_group_id=network.broker_rotation_security_group_id,
        queue_metrics_security_group_id=network.queue_metrics_security_group_id, alarm_topic=alarm_topic,
        opts=layer.opts)
    specs = broker_alarms(layer.env.name, layer.env.alarms, broker.broker.broker_name)
    specs += broker_resource_alarms(layer.env.name, layer.env.alarms)
    messaging = layer.env.messaging
    # until Amazon MQ applies a new type or engine (the window), the alarms keep to what the broker runs too
    specs += capacity_alarms(layer.env.name, layer.env.alarms, broker.broker.broker_name, messaging.engine_version,
                             messaging.instance_type, messaging.deployment_mode, running_broker(os.environ))
    if broker.admin_rotation is not None:
        specs += rotation_alarms(layer.env.name, layer.env.alarms, broker.admin_rotation.function.name)
        # The rule reporting a failed rotation (and the test of the schedule) is the rotation component's own.
        specs += event_delivery_alarms(layer.env.name, layer.env.alarms,
                                       {"admin-rotation-failed": broker.admin_rotation.failed_notification.rule.name})
    MetricAlarms("broker-alarms", specs, alarm_topic.arn, opts=pulumi.ResourceOptions(parent=broker))
    layer.export(
        broker_mode="amazon-mq",
        amqps_endpoint=broker.amqps_endpoint,
        management_endpoint=broker.management_endpoint,
        admin_username=broker.admin_username,
        admin_secret_arn=broker.admin_secret.arn,
        broker_id=broker.broker.id,
        broker_arn=broker.broker.arn,
        broker_name=broker.broker.broker_name,
        broker_security_group_id=broker.security_group.id,
        broker_log_group_name=broker.log_group_name,
        engine_version=messaging.engine_version,
        instance_type=messaging.instance_type,
        deployment_mode=messaging.deployment_mode,
        **runner_outputs,
    )
else:
    amqps_endpoint, management_endpoint = external_endpoints(layer.env)
    pulumi.log.warn(external_consumer_timeout_warning(layer.env))  # not ours to configure: its operator's
    layer.export(
        broker_mode="external", amqps_endpoint=amqps_endpoint, management_endpoint=management_endpoint,
        admin_username=None, admin_secret_arn=None, broker_id=None, broker_arn=None, broker_name=None,
        broker_security_group_id=None, broker_log_group_name=None, engine_version=None, instance_type=None,
        deployment_mode=None, **runner_outputs,
    )
