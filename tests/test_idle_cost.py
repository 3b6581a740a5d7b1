"""What each shipped env bills while idle, counted from its synth (README, "What runs around the clock").

The README's table is generated here from the synth of every layer of dev, staging and prod, so its counts follow
the code (an alarm, key or endpoint added anywhere shows up as a README diff), and no price is typed anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.catalog import load_catalog
from shared.dag import order
from shared.promote import PROMOTION_ORDER
from shared.rotation.queue_metrics import PUBLISHED_METRICS as QUEUE_METRICS
from tests.readme_helpers import assert_readme_block_is
from tests.synth_helpers import synth_layers

ENVS = ("dev", "staging", "prod")
TABLE_START = "<!-- idle-cost: start (tests/test_idle_cost.py counts it from each shipped env's synth) -->"
TABLE_END = "<!-- idle-cost: end -->"


def resources(env: str) -> Iterator[dict[str, Any]]:
    for document in synth_layers(env, *order()).values():
        yield from document["resources"]


def of_type(env: str, type_: str) -> list[dict[str, Any]]:
    return [r for r in resources(env) if r["type"] == type_]


def _fargate_at_rest(env: str) -> tuple[int, float, float]:
    """Tasks, vCPU and GB of every ECS service at its scalable target's minCapacity (what runs with no load)."""
    families = {r["inputs"]["family"]: r["inputs"] for r in of_type(env, "aws:ecs/taskDefinition:TaskDefinition")}
    services = {r["inputs"]["name"]: r["inputs"] for r in of_type(env, "aws:ecs/service:Service")}
    tasks, vcpu, gb = 0, 0.0, 0.0
    for target in of_type(env, "aws:appautoscaling/target:Target"):
        service = target["inputs"]["resourceId"].rsplit("/", 1)[-1]
        family = services[service]["taskDefinition"].rsplit("/", 1)[-1].rsplit(":", 1)[0]
        definition = families[family]
        count = int(target["inputs"]["minCapacity"])
        tasks += count
        vcpu += count * int(definition["cpu"]) / 1024
        gb += count * int(definition["memory"]) / 1024
    return tasks, vcpu, gb


def _public_ipv4(env: str) -> int:
    """Public IPv4 addresses the stacks hold (AWS bills each by the hour since 2024-02-01, in use or not): the NAT
    gateways' Elastic IPs and an internet-facing load balancer's one per subnet (AZ)."""
    eips = len(of_type(env, "aws:ec2/eip:Eip"))
    balancers = sum(len(r["inputs"].get("subnets") or []) for r in of_type(env, "aws:lb/loadBalancer:LoadBalancer")
                    if not r["inputs"].get("internal"))
    return eips + balancers


def _broker(env: str) -> str:
    (broker,) = of_type(env, "aws:mq/broker:Broker")
    # a RabbitMQ cluster deployment is three brokers, one per AZ (Amazon MQ developer guide, "Cluster deployment")
    nodes = 3 if broker["inputs"]["deploymentMode"] == "CLUSTER_MULTI_AZ" else 1
    return f"{nodes} x `{broker['inputs']['hostInstanceType']}`"


def _interface_endpoints(env: str) -> str:
    interface = [r for r in of_type(env, "aws:ec2/vpcEndpoint:VpcEndpoint")
                 if r["inputs"]["vpcEndpointType"] == "Interface"]
    hours = sum(len(r["inputs"]["subnetIds"]) for r in interface)
    return f"{len(interface)} ({hours} endpoint-AZs)" if interface else "0"


def _retention(env: str) -> str:
    days = sorted({int(r["inputs"]["retentionInDays"]) for r in of_type(env, "aws:cloudwatch/logGroup:LogGroup")}
                  | {int(r["inputs"]["retention_in_days"]) for r in of_type(env, "pulumi-python:dynamic:Resource")
                     if "retention_in_days" in r["inputs"]})
    return "/".join(str(d) for d in days)


def _queue_metrics(env: str) -> int:
    """Custom metrics the queue metrics publisher writes: each of its metrics for each queue it reads."""
    if not of_type(env, "aws:lambda/function:Function"):
        return 0
    return len(of_type(env, "rabbitmq:index/queue:Queue")) * len(QUEUE_METRICS)


def _insights(env: str) -> str:
    (cluster,) = of_type(env, "aws:ecs/cluster:Cluster")
    (setting,) = [s["value"] for s in cluster["inputs"]["settings"] if s["name"] == "containerInsights"]
    return str(setting)


ROWS: tuple[tuple[str, Any], ...] = (
    ("NAT gateways", lambda env: len(of_type(env, "aws:ec2/natGateway:NatGateway"))),
    ("public IPv4 addresses", _public_ipv4),
    ("interface VPC endpoints (each billed per AZ)", _interface_endpoints),
    ("Application Load Balancers", lambda env: len(of_type(env, "aws:lb/loadBalancer:LoadBalancer"))),
    ("Amazon MQ broker nodes", _broker),
    ("Fargate tasks at `min_count` (vCPU, GB)",
     lambda env: "{} ({:g}, {:g})".format(*_fargate_at_rest(env))),
    ("customer managed KMS keys", lambda env: len(of_type(env, "aws:kms/key:Key"))),
    ("Secrets Manager secrets", lambda env: len(of_type(env, "aws:secretsmanager/secret:Secret"))),
    ("CloudWatch alarms", lambda env: len(of_type(env, "aws:cloudwatch/metricAlarm:MetricAlarm"))),
    ("custom metrics of the queue metrics publisher (every minute)", _queue_metrics),
    ("log groups (retention days)", lambda env: "{} ({})".format(
        len(of_type(env, "aws:cloudwatch/logGroup:LogGroup")) + sum(
            1 for r in of_type(env, "pulumi-python:dynamic:Resource") if "retention_in_days" in r["inputs"]),
        _retention(env))),
    ("Container Insights", _insights),
    ("Route 53 private hosted zones (Cloud Map DNS namespace)",
     lambda env: len(of_type(env, "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"))),
)


def readme_table() -> str:
    lines = ["| billed while idle | " + " | ".join(ENVS) + " |", "|---|" + "---|" * len(ENVS)]
    lines += [f"| {label} | " + " | ".join(str(count(env)) for env in ENVS) + " |" for label, count in ROWS]
    return "\n".join(lines)


def test_readme_counts_what_each_env_bills_while_idle() -> None:
    assert_readme_block_is(TABLE_START, TABLE_END, "idle-cost table", readme_table(), "the synth")


@pytest.mark.parametrize("env", ENVS)
def test_only_the_nat_gateways_and_public_balancers_hold_public_ipv4(env: str) -> None:
    """The table's public IPv4 count is complete: no subnet hands out public addresses, no task asks for one, the
    broker is private (each would be another address billed by the hour)."""
    subnets = of_type(env, "aws:ec2/subnet:Subnet")
    assert subnets and not any(r["inputs"].get("mapPublicIpOnLaunch") for r in subnets)
    services = of_type(env, "aws:ecs/service:Service")
    assert services and not any(r["inputs"].get("networkConfiguration", {}).get("assignPublicIp") for r in services)
    assert not any(r["inputs"].get("publiclyAccessible") for r in of_type(env, "aws:mq/broker:Broker"))


@pytest.mark.parametrize("env", ENVS)
def test_every_log_group_expires_its_events(env: str) -> None:
    """A log group without retention keeps (and bills) its events for ever."""
    groups = of_type(env, "aws:cloudwatch/logGroup:LogGroup")
    assert groups and all(r["inputs"].get("retentionInDays") for r in groups), [
        r["name"] for r in groups if not r["inputs"].get("retentionInDays")]


def test_every_env_a_release_is_promoted_from_rests_every_service_at_one_task_at_least() -> None:
    """An env releases are promoted from is where they are first run, and promotion's deployed gate checks what its
    ECS tasks run: a service resting at 0 tasks there runs a new digest in no task (ECS leaves the desired count to the
    scalable target after create), so the shipped envs before the last keep every service at ``min_count`` 1 at least
    (a user's ``min_count: 0`` there is refused by the gate until a task has run the digest, shared.promote)."""
    sources = PROMOTION_ORDER[:-1]
    assert sources == ("dev", "staging")
    for env in sources:
        minimum = {r["inputs"]["resourceId"].rsplit("/", 1)[-1]: r["inputs"]["minCapacity"]
                   for r in of_type(env, "aws:appautoscaling/target:Target")}
        assert set(minimum) == set(load_catalog().services), env
        assert min(minimum.values()) >= 1, (env, minimum)
