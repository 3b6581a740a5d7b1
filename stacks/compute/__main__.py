"""compute layer: ECR, the ECS cluster and the platform's Fargate services, wired into the mesh."""

import sys
from pathlib import Path

import pulumi

# The repo root, so the program can import our helper package `shared` (the CLI runs it from here).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.catalog import load_catalog
from shared.components.alarms import MetricAlarms, compute_alarms, event_delivery_alarms
from shared.components.compute import ComputeArgs, ComputePlatform, targeted_records
from shared.components.compute_wiring import ComputeUpstreams
from shared.components.task_stops import TaskStops, TaskStopsArgs
from shared.components.undelivered_events import undelivered_events_alarms
from shared.layer import Layer
from shared.port_retirement import CALLED_PORTS_OUTPUT, called_service_ports
from shared.rotation_continuity import recorded_secret_versions

layer = Layer("compute")
# Its own last outputs first: the artifact bucket keeps the handoff rule of a writer that left the catalog (or reads
# only now), or what it handed over would never expire.
catalog = load_catalog()
last = layer.last_outputs()
args = ComputeArgs.from_env(layer.env, catalog, last)
compute = ComputePlatform(
    "compute",
    args,
    ComputeUpstreams.from_upstreams(layer.upstreams),
    opts=layer.opts,
)
# Alarms next to what they watch; the topic is the broker layer's (one of the fields it publishes for a pull request's
# preview, shared.published: compute reads no other broker field than the tasks' egress group).
alarm_topic_arn = layer.upstream("broker").field("alarm_topic_arn")
MetricAlarms("alarms", compute_alarms(layer.env, compute), alarm_topic_arn,
             opts=pulumi.ResourceOptions(parent=compute))
# The tasks that stop unasked, which the task-stops alarms count (a crash loop tasks-below-desired cannot see).
task_stops = TaskStops("task-stops",
                       TaskStopsArgs.from_env(layer.env, compute.logs_key.arn if compute.logs_key else None),
                       compute.cluster.arn, opts=pulumi.ResourceOptions(parent=compute))
# EventBridge refused by the log group's resource policy or key would silence those alarms: that failure notifies.
MetricAlarms("task-stops-alarms",
             [*event_delivery_alarms(layer.env.name, layer.env.alarms, {"ecs-task-stops": task_stops.rule.name}),
              *undelivered_events_alarms(layer.env.name, layer.env.alarms, "compute")],
             alarm_topic_arn, opts=pulumi.ResourceOptions(parent=task_stops))

# What runs, which the orchestrator's checks read: as this up leaves it, or, in a targeted update (the image gate's
# registry step), which changes none of it, the last up's record.
running = targeted_records(last) if layer.targeted else dict(
    # with the secret version its tasks hold, which the next credentials rotation checks (its last record's where ECS
    # rolled a service back)
    services=compute.contract_services(recorded_secret_versions(last)),
    handoff_writers=compute.handoff_writers(args),
    subnet_ids=compute.subnet_ids(),
    # the ports its tasks call, which the network layer admits until compute's `up` after a change moved them off (its
    # last record's too where ECS rolled a service back)
    called_service_ports=compute.called_service_ports(called_service_ports(catalog),
                                                      (last or {}).get(CALLED_PORTS_OUTPUT) or {}),
)
layer.export(
    cluster_name=compute.cluster.name,
    cluster_arn=compute.cluster.arn,
    repository_urls=compute.repository_urls(),
    **running,
)
