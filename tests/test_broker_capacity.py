"""Would the env's broker hold what the env runs at its peak? Amazon MQ's limits per engine major version,
deployment mode and instance type, the env's need at max_count by the image contract, the loader's refusal
(exit 2, naming the file and key) and the notes of a close peak (the capacity alarms: tests/layers/test_alarms.py)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from shared.amazonmq import (
    BROKER_NODES,
    RABBITMQ4_DEFAULT_LIMITS,
    RABBITMQ_ENGINE_FAMILIES,
    RABBITMQ_INSTANCE_TYPES,
    RABBITMQ_MAXIMUM_LIMITS,
    broker_limits,
    family_of,
)
from shared.broker_capacity import (
    CHANNELS_PER_CONNECTION,
    NOTE_PERCENT,
    broker_need,
    capacity_notes,
    capacity_problems,
)
from shared.catalog import Catalog, load_catalog
from shared.envs import load_env
from shared.errors import ConfigError
from tests.test_envs import synth_cli

EnvEditor = Callable[[str, Callable[[dict[str, Any]], None]], Path]


# -- the limits, as AWS tables them -----------------------------------------------------------------------------


def test_every_broker_amazon_mq_offers_has_its_limits() -> None:
    for engine, families in RABBITMQ_ENGINE_FAMILIES.items():
        for instance_type, modes in RABBITMQ_INSTANCE_TYPES.items():
            for mode in modes:
                if family_of(instance_type) in families:
                    assert broker_limits(engine, instance_type, mode) is not None, (engine, instance_type, mode)
    assert broker_limits("4.2", "mq.m5.large", "SINGLE_INSTANCE") is None, "4.2 does not run on m5"


def test_rabbitmq_4_runs_the_defaults_and_3_the_maximum() -> None:
    # Amazon MQ "Default resource limits": m7g.large cluster 500 connections and 1,500 channels per node, 1,000
    # queues, 10 consumers per channel, 50 vhosts; "maximum resource limit": 5,000 / 15,000 / 10,000 / 1,000.
    default = broker_limits("4.2", "mq.m7g.large", "CLUSTER_MULTI_AZ")
    maximum = broker_limits("3.13", "mq.m7g.large", "CLUSTER_MULTI_AZ")
    assert default is not None and maximum is not None
    assert (default.connections, default.channels, default.queues, default.consumers_per_channel, default.vhosts) == (
        500, 1_500, 1_000, 10, 50)
    assert (maximum.connections, maximum.channels, maximum.queues, maximum.consumers_per_channel) == (
        5_000, 15_000, 10_000, 1_000)
    single = broker_limits("4.2", "mq.m7g.medium", "SINGLE_INSTANCE")
    assert single is not None and (single.connections, single.channels, single.queues) == (100, 500, 500)
    micro = broker_limits("3.13", "mq.t3.micro", "SINGLE_INSTANCE")  # "sizing guidelines"
    assert micro is not None and (micro.connections, micro.channels, micro.queues) == (500, 1_500, 2_500)


def test_the_maximum_of_the_smallest_m7g_is_the_current_table() -> None:
    """mq.m7g.medium on RabbitMQ 3.13: the current "maximum resource limit" table (300 connections and 900 channels,
    2,500 queues single, 500 in a cluster), not the older sizing-guidelines version (100 / 500, a cluster 100
    queues), whose figures are now RabbitMQ 4.2's defaults."""
    single = broker_limits("3.13", "mq.m7g.medium", "SINGLE_INSTANCE")
    cluster = broker_limits("3.13", "mq.m7g.medium", "CLUSTER_MULTI_AZ")
    assert single is not None and (single.connections, single.channels, single.queues) == (300, 900, 2_500)
    assert cluster is not None and (cluster.connections, cluster.channels, cluster.queues) == (300, 900, 500)


def test_no_default_is_above_its_maximum() -> None:
    """A default above the configurable maximum would be a typo in one of the tables."""
    assert set(RABBITMQ4_DEFAULT_LIMITS) <= set(RABBITMQ_MAXIMUM_LIMITS)
    for key, default in RABBITMQ4_DEFAULT_LIMITS.items():
        maximum = RABBITMQ_MAXIMUM_LIMITS[key]
        for field in fields(default):
            low, high = getattr(default, field.name), getattr(maximum, field.name)
            assert low is None or high is None or low <= high, (key, field.name, low, high)


def test_the_limits_grow_with_the_size_of_the_instance() -> None:
    for table in (RABBITMQ_MAXIMUM_LIMITS, RABBITMQ4_DEFAULT_LIMITS):
        for mode in BROKER_NODES:
            for family in ("mq.m7g", "mq.m5"):
                rows = [limits for (row_mode, name), limits in table.items()
                        if row_mode == mode and family_of(name) == family]
                for smaller, bigger in itertools.pairwise(rows):
                    assert smaller.connections < bigger.connections and smaller.channels < bigger.channels


# -- the need, by the image contract ----------------------------------------------------------------------------


def _max_counts(counts: dict[str, int]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for service, count in counts.items():
            data["services"][service]["max_count"] = count
    return change


def test_each_task_at_max_count_opens_a_connection_to_publish_and_one_to_consume(edit_env: EnvEditor) -> None:
    edit_env("dev", _max_counts({"gateway": 3, "preprocess": 4, "inference": 5, "training": 1}))
    catalog = load_catalog()
    need = broker_need(load_env("dev"), catalog)
    by_service = {service.service: service for service in need.services}
    for spec in catalog:
        expected = int(bool(spec.publishes)) + int(bool(spec.consumes))
        assert by_service[spec.name].connections_per_task == expected
    shipped = {"gateway": 3, "preprocess": 4, "inference": 5, "training": 1}
    assert {name: by_service[name].tasks for name in shipped} == shipped  # a service a user adds: its own count
    assert need.connections == sum(s.tasks * s.connections_per_task for s in need.services)
    assert need.channels == need.connections * CHANNELS_PER_CONNECTION
    assert need.queues == 2 * sum(1 for spec in catalog if spec.consumes), "a work queue and a DLQ per consumer"


def test_each_app_mesh_canary_version_is_an_ecs_service_at_max_count(edit_env: EnvEditor) -> None:
    def canary(data: dict[str, Any]) -> None:
        data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True,
                        "canaries": {"inference": [{"version": "stable", "weight": 90},
                                                   {"version": "next", "weight": 10}]}}
    edit_env("dev", canary)
    need = broker_need(load_env("dev"), load_catalog())
    inference = next(service for service in need.services if service.service == "inference")
    assert inference.tasks == 2 * load_env("dev").services["inference"].max_count


def test_an_unreleased_service_runs_no_task_but_its_queues_exist(edit_env: EnvEditor) -> None:
    edit_env("dev", lambda data: data["release"]["images"].pop("training"))
    need = broker_need(load_env("dev"), load_catalog())
    assert "training" not in {service.service for service in need.services}
    assert need.queues == 2 * sum(1 for spec in load_catalog() if spec.consumes)


def test_the_peak_notes_count_a_rolling_deployment_with_the_share_the_ecs_services_run() -> None:
    """One number for a rolling deployment's share of the tasks: the compute layer's ECS services run it, and the
    broker capacity note and the account preflight's Fargate vCPU note count their peaks with it."""
    from shared import broker_capacity, fargate
    from shared.orchestrate import account
    from tests.synth_helpers import of_type, synth_layers

    services = of_type(synth_layers("prod", "compute")["compute"], "aws:ecs/service:Service")
    assert services, "prod runs ECS services"
    assert {service["inputs"]["deploymentMaximumPercent"] for service in services} == {
        fargate.DEPLOYMENT_MAXIMUM_PERCENT}
    assert broker_capacity.DEPLOYMENT_MAXIMUM_PERCENT == account.DEPLOYMENT_MAXIMUM_PERCENT == (
        fargate.DEPLOYMENT_MAXIMUM_PERCENT)


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_the_queues_and_vhosts_counted_are_every_one_the_layers_declare(name: str) -> None:
    """The need's queues and vhosts are what the synthesized layers declare on the broker (every layer's RabbitMQ
    queues; its vhosts and Amazon MQ's own ``/``), so a queue a layer adds is counted or this fails."""
    from tests.synth_helpers import of_type, synth_layers

    documents = synth_layers(name, "broker", "messaging", "compute").values()
    need = broker_need(load_env(name), load_catalog())
    assert need.queues == sum(len(of_type(document, "rabbitmq:index/queue:Queue")) for document in documents) > 0
    assert need.vhosts == 1 + sum(len(of_type(document, "rabbitmq:index/vHost:VHost")) for document in documents)


# -- the loader refuses what the broker certainly cannot hold ---------------------------------------------------


def test_a_single_broker_smaller_than_the_peak_exits_2_naming_the_instance_type(
        edit_env: EnvEditor, env_dir: Path, tmp_path: Path) -> None:
    # dev: mq.m7g.medium SINGLE_INSTANCE on 4.2, Amazon MQ's default 100 connections
    edit_env("dev", _max_counts({"inference": 50}))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    line = next(line for line in result.stderr.splitlines() if "dev.yaml: messaging.instance_type: " in line)
    assert "holds 100 AMQP connections" in line and "inference 50 tasks x 2" in line, line
    assert "bigger messaging.instance_type" in line and "max_count" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "build").exists(), "nothing written"


def test_the_same_peak_fits_the_maximum_of_rabbitmq_3(edit_env: EnvEditor) -> None:
    """RabbitMQ 3.13 on the same instance runs Amazon MQ's maximum (300 connections on mq.m7g.medium)."""
    edit_env("dev", _max_counts({"inference": 50}))
    edit_env("dev", lambda data: data["messaging"].update(engine_version="3.13"))
    env = load_env("dev")
    assert capacity_problems(env, load_catalog()) == []


def _besides_inference(env: str, *also: str) -> int:
    """The connections of every service but inference (and ``also``) at the env's max_counts."""
    need = broker_need(load_env(env), load_catalog())
    return sum(service.connections for service in need.services if service.service not in {"inference", *also})


def _inference_for(env: str, connections: int) -> tuple[int, int]:
    """inference's max_count that brings the env's connections at max_count to ``connections`` (or one below it:
    inference opens 2 per task), and the total it brings: relative to the other services, whatever they are."""
    others = _besides_inference(env)
    count = (connections - others) // 2
    return count, others + 2 * count


def test_a_cluster_is_refused_only_past_what_its_three_nodes_hold(edit_env: EnvEditor) -> None:
    # prod: mq.m7g.large CLUSTER_MULTI_AZ on 4.2, 500 connections per node
    limits = broker_limits("4.2", "mq.m7g.large", "CLUSTER_MULTI_AZ")
    assert limits is not None
    others = _besides_inference("prod", "preprocess")
    fits = (limits.connections * 3 - others) // 2  # inference and preprocess tasks (2 connections each) that fit
    # over two services: one service's tasks stop at 500 (the env loader: its Cloud Map service's 1,000 instances)
    edit_env("prod", _max_counts({"inference": fits // 2, "preprocess": fits - fits // 2}))
    assert broker_need(load_env("prod"), load_catalog()).connections > limits.connections, "above one node"
    assert capacity_problems(load_env("prod"), load_catalog()) == []
    edit_env("prod", _max_counts({"inference": fits // 2 + 1, "preprocess": fits - fits // 2}))
    with pytest.raises(ConfigError, match=r"prod\.yaml: messaging\.instance_type: .*500 AMQP connections per node x "
                                        r"3 nodes"):
        load_env("prod")


def test_more_queues_than_the_broker_holds_are_refused(edit_env: EnvEditor) -> None:
    """51 consumers need 102 queues; a 4.2 mq.m7g.medium cluster holds 100 by default."""
    catalog = Catalog.model_validate({"services": {
        f"s{index:02d}": {"port": 9000 + index, "health_path": "/health",
                          "consumes": {"requests": [f"s{index:02d}.request"]}}
        for index in range(51)}})
    edit_env("prod", lambda data: data["messaging"].update(instance_type="mq.m7g.medium"))
    problems = capacity_problems(load_env("prod"), catalog)
    assert ("messaging.instance_type", problems[0][1]) == problems[0] and len(problems) == 1
    assert "holds 100 queues" in problems[0][1] and "need 102" in problems[0][1]


def test_an_external_broker_is_its_operators(edit_env: EnvEditor) -> None:
    edit_env("dev", _max_counts({"inference": 500}))  # 1,000 connections: ten times dev's mq.m7g.medium
    edit_env("dev", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.internal:5671",
                                     "management_endpoint": "https://mq.example.internal"}))
    env = load_env("dev")
    assert capacity_problems(env, load_catalog()) == [] and capacity_notes(env, load_catalog()) == []


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_the_shipped_envs_fit_their_brokers_without_a_note(name: str) -> None:
    env = load_env(name)
    assert capacity_problems(env, load_catalog()) == []
    assert capacity_notes(env, load_catalog()) == []


# -- notes: a peak close to the limits --------------------------------------------------------------------------


def test_a_peak_above_80_percent_is_a_note_and_synth_goes_on(
        edit_env: EnvEditor, env_dir: Path, tmp_path: Path) -> None:
    count, total = _inference_for("dev", 90)  # shipped: (2 + 2 + 40 + 1) x 2 = 90 of 100 connections
    edit_env("dev", _max_counts({"inference": count}))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 0, result.stderr
    assert (f"dev.yaml: messaging.instance_type: the services at max_count open {total} AMQP connections, {total}% of "
            "the 100") in " ".join(result.stdout.split()), result.stdout
    assert (tmp_path / "build" / "dev" / "broker.json").is_file()


def test_a_rolling_deployment_past_the_limit_is_a_note(edit_env: EnvEditor) -> None:
    count, total = _inference_for("dev", 70)  # 70 connections at max_count, 140 while every service rolls
    edit_env("dev", _max_counts({"inference": count}))
    notes = capacity_notes(load_env("dev"), load_catalog())
    assert len(notes) == 1 and "rolling deployment" in notes[0] and f"{2 * total} AMQP connections" in notes[0], notes


def test_a_cluster_is_noted_as_if_one_node_were_down(edit_env: EnvEditor) -> None:
    limits = broker_limits("4.2", "mq.m7g.large", "CLUSTER_MULTI_AZ")
    assert limits is not None
    others = _besides_inference("prod")
    inference = (limits.connections * 2 * NOTE_PERCENT // 100 - others) // 2 + 1  # just above 80% of two nodes
    edit_env("prod", _max_counts({"inference": inference}))
    notes = capacity_notes(load_env("prod"), load_catalog())
    assert any("AMQP connections" in note and "(2 of 3 nodes: one may be down)" in note for note in notes), notes


@pytest.mark.parametrize(("argv", "noted"), [
    (["preview", "dev", "--layers", "network"], True),
    (["up", "dev", "--layers", "network", "--yes"], True),
    (["destroy", "dev", "--layers", "compute", "--yes"], False),
    (["refresh", "dev", "--layers", "network", "--yes"], False),
])
def test_the_orchestrator_notes_a_close_peak_on_up_and_preview_only(
        edit_env: EnvEditor, argv: list[str], noted: bool) -> None:
    """up and preview note it before the first layer runs; destroy and refresh, which start no task, do not. The
    same env, so a run that prints nothing for destroy is not one that would print nothing at all."""
    from shared.orchestrate.cli import main
    from tests.aws_helpers import ReleasedEverywhere
    from tests.test_orchestrate import RecordingRunner

    count, total = _inference_for("dev", 90)
    edit_env("dev", _max_counts({"inference": count}))
    note = f"messaging.instance_type: the services at max_count open {total} AMQP connections"

    def noted_lines(command: list[str]) -> tuple[list[str], list[str]]:
        out, runner = io.StringIO(), RecordingRunner()
        assert main(command, runner=runner, out=out, images=ReleasedEverywhere()) == 0
        assert runner.events, "a layer ran"
        lines = out.getvalue().splitlines()
        return lines, [line for line in lines if note in line]

    if not noted:  # the control: this env's peak is noted, where the orchestrator notes it
        assert noted_lines(["preview", "dev", "--layers", "network"])[1]
    lines, printed = noted_lines(argv)
    assert len(printed) == (1 if noted else 0), lines
    for line in printed:
        assert line.startswith("note: ") and line.split(": ")[1].endswith("dev.yaml"), line
        layer = argv[argv.index("--layers") + 1]
        assert lines.index(line) < next(i for i, text in enumerate(lines) if layer in text and note not in text), (
            "the note comes before the plan and its layers")


def test_the_readme_states_the_contract_the_need_is_counted_on() -> None:
    """The image contract in the README and the constants the loader counts with say the same."""
    from shared import REPO_ROOT
    from shared.broker_capacity import CONSUMERS_PER_CHANNEL

    contract = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert f"at most {CHANNELS_PER_CONNECTION} channels on each" in contract
    assert CONSUMERS_PER_CHANNEL == 1 and "and one consumer, on its own work queue" in contract


def test_the_image_contract_states_the_largest_message_the_broker_takes() -> None:
    """Amazon MQ's RabbitMQ 4.2 brokers refuse a message above 512 KiB by default ("Default resource limits":
    524,288 bytes on every m7g row), 3.x brokers above 128 MiB ("maximum resource limit"); the image contract, in
    the README and the catalog's header, gives the default engine's figure."""
    from shared import REPO_ROOT
    from shared.amazonmq import DEFAULT_ENGINE_VERSION, RABBITMQ_ENGINE_FAMILIES, max_message_bytes
    from shared.catalog import catalog_path

    assert {version: max_message_bytes(version) for version in RABBITMQ_ENGINE_FAMILIES} == {
        "4.3": 524_288, "4.2": 524_288, "3.13": 134_217_728}
    kib = max_message_bytes(DEFAULT_ENGINE_VERSION) // 1024
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert f"It publishes no message larger than {kib} KiB" in readme
    header = " ".join(catalog_path().read_text().replace("#", " ").split())
    assert f"no message larger than {kib} KiB" in header


def test_each_broker_limit_is_refused_one_past_it_and_not_at_it() -> None:
    from shared.amazonmq import BROKER_NODES, BrokerLimits
    from shared.broker_capacity import CHANNELS_PER_CONNECTION, BrokerNeed, ServiceNeed, _problems

    dev = load_env("dev")
    nodes = BROKER_NODES[dev.messaging.deployment_mode]
    limits = BrokerLimits(connections=10, channels=10 * CHANNELS_PER_CONNECTION, queues=4,
                          consumers_per_channel=1, vhosts=2)
    at = BrokerNeed(services=(ServiceNeed("a", 10 * nodes, 1),), queues=4, vhosts=2)
    assert _problems(dev, limits, at) == []
    past = BrokerNeed(services=(ServiceNeed("a", 10 * nodes + 1, 1),), queues=5, vhosts=3)
    assert len(_problems(dev, limits, past)) == 4  # connections, channels, queues, vhosts
