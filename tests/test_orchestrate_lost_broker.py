"""A broker deleted outside Pulumi (README, "Disaster recovery"): the broker layer's ``up`` reads no AWS state, so it
would change nothing, and messaging's refresh would call the deleted broker. ``up`` is refused before any layer
(exit 2) naming the refresh that drops it from the state; ``preview`` notes it. Amazon MQ is moto's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from shared.amazonmq import BROKER_WAIT_MINUTES
from shared.envs import EnvConfig, load_env
from tests.aws_helpers import MotoAccounts
from tests.test_orchestrate import RecordingRunner, management_api
from tests.test_orchestrate_account import Clients, checker, roomy, up

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback


class BrokerStackRunner(RecordingRunner):
    """The recording runner whose broker stack records ``broker_id`` (None: a stack without that output), and the
    outputs of ``recorded`` besides."""

    recorded: Mapping[str, str] = {}

    def __init__(self, broker_id: str | None) -> None:
        super().__init__()
        self.broker_id = broker_id

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "broker" and self.broker_id is not None:
            outputs.update(broker_id=self.broker_id, broker_mode="amazon-mq", **self.recorded)
        return outputs


def _broker(env: EnvConfig, instance_type: str = "mq.m7g.large", mode: str = "CLUSTER_MULTI_AZ") -> str:
    mq = MotoAccounts.client(env.account_id, env.region, "mq")
    return str(mq.create_broker(
        BrokerName=f"ml-{env.name}", EngineType="RABBITMQ", EngineVersion="4.2", HostInstanceType=instance_type,
        DeploymentMode=mode, PubliclyAccessible=False, AutoMinorVersionUpgrade=True,
        Users=[{"Username": "platform-admin", "Password": "Abcd1234efgh"}])["BrokerId"])


@pytest.mark.parametrize("layers", ["broker", "messaging"])
def test_up_is_refused_when_the_recorded_broker_is_gone(moto_aws: None, capsys: pytest.CaptureFixture[str],
                                                       layers: str) -> None:
    prod = load_env("prod")
    _broker(prod)  # another broker of the account: not the one the stack records
    code, out, runner = up(["up", "prod", "--yes", "--layers", layers, "--exact"], checker(Clients(roomy())),
                           BrokerStackRunner("b-00000000-0000-0000-0000-000000000000"))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "records the Amazon MQ broker b-00000000-0000-0000-0000-000000000000" in error
    assert "`nox -s refresh -- prod --layers broker --exact`" in error and "messages are lost" in error
    assert "environments/prod.yaml" in error and "Nothing was run" in error


def test_a_preview_notes_the_lost_broker_and_goes_on(moto_aws: None) -> None:
    code, out, runner = up(["preview", "prod", "--layers", "broker", "--exact"], checker(Clients(roomy())),
                           BrokerStackRunner("b-00000000-0000-0000-0000-000000000000"))
    assert code == 0 and runner.started() == ["broker"], out
    assert "up would be refused" in out and "no longer holds" in out


def test_up_goes_on_when_the_recorded_broker_exists_or_none_is_recorded(moto_aws: None) -> None:
    prod = load_env("prod")
    broker_id = _broker(prod)
    for recorded in (broker_id, None):  # the broker is there; a first up (no broker stack output yet)
        code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"], checker(Clients(roomy())),
                               BrokerStackRunner(recorded))
        assert code == 0 and runner.started() == ["broker"], out


def test_an_external_broker_is_not_looked_for(moto_aws: None, edit_env: Any) -> None:
    edit_env("prod", lambda data: data["messaging"].update(
        broker="external", external={"amqps_endpoint": "amqps://mq.example.com:5671",
                                     "management_endpoint": "https://mq.example.com"}))
    clients = Clients(roomy())
    code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"], checker(clients),
                           BrokerStackRunner("b-00000000-0000-0000-0000-000000000000"))
    assert code == 0 and runner.started() == ["broker"] and ("prod", "mq") not in clients.moto.calls, out


class PendingBrokerStack(BrokerStackRunner):
    """The broker stack recording a 3.13 broker on mq.m7g.large: the instance type step of AWS's 3-to-4 upgrade."""

    recorded = {"engine_version": "3.13", "instance_type": "mq.m7g.large", "deployment_mode": "CLUSTER_MULTI_AZ"}


class PendingClients(Clients):
    """moto's Amazon MQ applies an update at once; this one answers DescribeBroker with what a real broker still
    has pending until its reboot or maintenance window (botocore mq DescribeBrokerResponse)."""

    def __init__(self, pending: dict[str, Any]) -> None:
        super().__init__(roomy())
        self.pending = pending

    def __call__(self, env: EnvConfig, service: str) -> Any:
        client = super().__call__(env, service)
        if service != "mq":
            return client
        pending = self.pending

        class Mq:
            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

            def describe_broker(self, **kwargs: Any) -> dict[str, Any]:
                return {**client.describe_broker(**kwargs), **pending}

        return Mq()


def test_an_engine_move_waits_until_the_instance_type_move_is_applied(moto_aws: None,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # AWS's "In-place upgrade from RabbitMQ 3 to 4": step 1 (mq.m7g) must be applied (reboot or maintenance window)
    # before step 2 (4.2); the env file and the stack record step 1 as done the moment its `up` ends.
    prod = load_env("prod")
    broker_id = _broker(prod)
    code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"],
                           checker(PendingClients({"PendingHostInstanceType": "mq.m7g.large"})),
                           PendingBrokerStack(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "messaging.engine_version: is 4.2" in error and "instance_type mq.m7g.large" in error
    assert f"aws mq reboot-broker --broker-id {broker_id} --region {prod.region}" in error
    # nothing pending, or the pending move is the one asked for: the run goes on
    for pending in ({}, {"PendingEngineVersion": "4.2"}):
        code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"],
                               checker(PendingClients(pending)), PendingBrokerStack(broker_id))
        assert code == 0 and runner.started() == ["broker"], (pending, out)


class BrokerStateRunner(BrokerStackRunner):
    """A broker stack whose outputs record ``broker_id`` and whose state holds the brokers ``held`` (as the runner's
    export of it reads them: AutomationRunner.state_broker_ids)."""

    def __init__(self, broker_id: str | None, held: list[str]) -> None:
        super().__init__(broker_id)
        self.held = held

    def state_broker_ids(self, layer: str, env: EnvConfig) -> list[str]:
        return list(self.held) if layer == "broker" else []


GONE = "b-00000000-0000-0000-0000-000000000000"


def test_up_goes_on_once_the_state_holds_the_lost_broker_no_more(moto_aws: None) -> None:
    """The refresh the refusal asks for drops the broker from the state, not from the stack's outputs (a refresh never
    changes the stack's own resource), and a replacement that failed or was killed between deleting the old broker
    and creating the new one keeps the outputs of the last update that finished: refused on the output alone, the
    next up was refused again forever. With no broker in its state (or one the account holds, imported after a killed
    create), the broker layer's up creates or keeps it and records it."""
    prod = load_env("prod")
    existing = _broker(prod)
    for held in ([], [existing]):
        code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"], checker(Clients(roomy())),
                               BrokerStateRunner(GONE, held))
        assert code == 0 and runner.started() == ["broker"], (held, out)


def test_up_is_refused_while_the_state_holds_a_broker_the_account_does_not(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"], checker(Clients(roomy())),
                           BrokerStateRunner(None, [GONE]))
    assert code == 2 and runner.started() == [], out
    assert f"records the Amazon MQ broker {GONE}" in capsys.readouterr().err


def test_the_runner_reads_the_brokers_of_the_state_as_exported() -> None:
    from shared.orchestrate.automation import broker_ids

    deployment = {"resources": [
        {"urn": "urn:a", "type": "aws:mq/broker:Broker", "id": "b-live"},
        {"urn": "urn:a", "type": "aws:mq/broker:Broker", "id": "b-old", "delete": True},
        {"urn": "urn:b", "type": "aws:mq/configuration:Configuration", "id": "c-1"}]}
    assert broker_ids(deployment) == ["b-live"] and broker_ids(None) == []


def test_a_broker_a_delete_before_replace_already_deleted_is_not_held() -> None:
    """A replacement of the broker deletes the old one first (a fixed name: delete-before-replace); where its create
    then fails or is killed, Pulumi keeps the old entry, its id and all, marked ``pendingReplacement``, and a refresh
    leaves it so (pulumi/pulumi step.go). Taken for the live broker, it was "lost" on every run and the refresh the
    refusal names could not drop it: not held, the next up creates the replacement."""
    from shared.orchestrate.automation import broker_ids

    urn = "urn:pulumi:prod::broker::mlplatform:broker:AmazonMqBroker$aws:mq/broker:Broker::broker-broker"
    pending = {"resources": [{"urn": urn, "type": "aws:mq/broker:Broker", "id": GONE, "pendingReplacement": True}]}
    assert broker_ids(pending) == []



def _single_broker(env: EnvConfig) -> str:
    return _broker(env, "mq.m7g.medium", "SINGLE_INSTANCE")


REBOOTING = {"BrokerState": "REBOOT_IN_PROGRESS"}


def test_messaging_waits_while_a_single_instance_broker_restarts(moto_aws: None,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """In its maintenance window (or after `aws mq reboot-broker`) a single-instance broker answers nothing ("Version
    upgrades": offline while rebooted): messaging's provider would fail, half-way or at the reach probe, which blames
    the network. ``up`` is refused before any layer, naming the window and how to see the state."""
    dev = load_env("dev")
    broker_id = _single_broker(dev)
    code, out, runner = up(["up", "dev", "--yes", "--layers", "messaging", "--exact"],
                           checker(PendingClients(REBOOTING)), BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert f"the broker {broker_id} is restarting (REBOOT_IN_PROGRESS" in error and "Nothing was run" in error
    assert "messaging.maintenance_window WEDNESDAY 03:00 Europe/Dublin" in error
    assert f"aws mq describe-broker --broker-id {broker_id} --region {dev.region} --query BrokerState" in error
    # running again; or a run without messaging (the broker layer talks to AWS's API only)
    for pending, argv in (({"BrokerState": "RUNNING"}, ["--layers", "messaging", "--exact"]),
                          (REBOOTING, ["--layers", "broker", "--exact"])):
        code, out, runner = up(["up", "dev", "--yes", *argv], checker(PendingClients(pending)),
                               BrokerStackRunner(broker_id))
        assert code == 0 and runner.started() == [argv[1]], (pending, out)


def test_a_restarting_cluster_is_a_note(moto_aws: None) -> None:
    """A cluster restarts one node at a time, two running ("Scheduling the maintenance window"): it still answers."""
    broker_id = _broker(load_env("prod"))
    code, out, runner = up(["up", "prod", "--yes", "--layers", "messaging", "--exact"],
                           checker(PendingClients(REBOOTING)), BrokerStackRunner(broker_id))
    assert code == 0 and runner.started() == ["messaging"], out
    assert f"note: tests/fixtures/environments/prod.yaml: the broker {broker_id} is restarting" in out
    assert "still answers" in out


def test_a_cluster_restarting_into_rabbitmq_4_is_waited_for(moto_aws: None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A cluster that runs RabbitMQ 3 while the env asks for 4 may be restarting to apply the upgrade, and "During the
    upgrade, Amazon MQ blocks all connections to the broker" ("Upgrading Amazon MQ for RabbitMQ 3 broker to 4"): its
    nodes do not take turns, so messaging waits as for a single instance."""
    prod = load_env("prod")
    broker_id = _broker(prod)
    upgrading = {**REBOOTING, "EngineVersion": "3.13.7"}
    code, out, runner = up(["up", "prod", "--yes", "--layers", "messaging", "--exact"],
                           checker(PendingClients(upgrading)), BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert (f"it runs RabbitMQ 3.13.7 and messaging.engine_version asks for {prod.messaging.engine_version}: a 3 -> 4 "
            "upgrade, which Amazon MQ applies with every connection to the broker blocked, a cluster's too") in error
    assert "Nothing was run" in error and "still answers" not in error
    # preview says the up would be refused, and runs
    code, out, runner = up(["preview", "prod", "--layers", "messaging", "--exact"],
                           checker(PendingClients(upgrading)), BrokerStackRunner(broker_id))
    assert code == 0 and "note: up would be refused: " in out and "a 3 -> 4 upgrade" in out, out


def test_compute_waits_until_the_bigger_instance_type_is_applied(moto_aws: None, edit_env: Any,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The env loader sizes the broker on ``messaging.instance_type``, but Amazon MQ applies a new type at a reboot or
    in the maintenance window ("Upgrading an Amazon MQ broker instance type"). Raising max_count with the type (what
    the loader's refusal suggests) would let compute scale past what the broker still running holds."""
    edit_env("dev", lambda data: (data["messaging"].update(instance_type="mq.m7g.large"),
                                  data.setdefault("services", {}).setdefault("inference", {}).update(max_count=60)))
    dev = load_env("dev")
    broker_id = _single_broker(dev)  # mq.m7g.medium: 100 connections on RabbitMQ 4.2 (Amazon MQ's default)
    pending = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large"}
    code, out, runner = up(["up", "dev", "--yes"], checker(PendingClients(pending)), BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "messaging.instance_type mq.m7g.large is not applied yet: the broker runs mq.m7g.medium" in error
    assert "holds 100 AMQP connections" in error and "Nothing was run" in error
    assert "`nox -s up -- dev --layers broker --exact`" in error
    assert f"aws mq reboot-broker --broker-id {broker_id} --region {dev.region}" in error
    # the broker layer alone (it asks for the type); or the type applied: the run goes on
    for running, argv, ran in (("mq.m7g.medium", ["--layers", "broker", "--exact"], "broker"),
                               ("mq.m7g.large", [], "compute")):
        code, out, runner = up(["up", "dev", "--yes", *argv], checker(PendingClients({"HostInstanceType": running})),
                               BrokerStackRunner(broker_id))
        assert code == 0 and ran in runner.started(), (running, out)


def _bigger_type_pending(edit_env: Any) -> str:
    """dev asks for mq.m7g.large and a peak (inference at 60 tasks) its mq.m7g.medium, still running, does not hold."""
    edit_env("dev", lambda data: (data["messaging"].update(instance_type="mq.m7g.large"),
                                  data.setdefault("services", {}).setdefault("inference", {}).update(max_count=60)))
    return _single_broker(load_env("dev"))


def test_compute_alone_waits_too(moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The deploy workflows run each layer as its own job (`up <env> --layers compute --exact`, after the broker job
    asked for the type): the run that scales the services is compute alone, and the broker is read for it too."""
    broker_id = _bigger_type_pending(edit_env)
    pending = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large"}
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(PendingClients(pending)), BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    assert "messaging.instance_type mq.m7g.large is not applied yet" in capsys.readouterr().err
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(PendingClients({"HostInstanceType": "mq.m7g.large"})), BrokerStackRunner(broker_id))
    assert code == 0 and runner.started() == ["compute"], out


def test_a_new_broker_runs_the_type_at_once(moto_aws: None, edit_env: Any) -> None:
    """Another deployment mode is a new broker (the broker layer replaces it, README env key table): CreateBroker runs
    the env's type before compute, in the same `up`. DescribeBroker still describes the old single instance."""
    edit_env("dev", lambda data: (data["messaging"].update(instance_type="mq.m7g.large",
                                                           deployment_mode="CLUSTER_MULTI_AZ"),
                                  data["network"].update(az_count=3),
                                  # 310 connections: more than an mq.m7g.medium cluster's 3 x 100
                                  data.setdefault("services", {}).setdefault("inference", {}).update(max_count=150)))
    broker_id = _single_broker(load_env("dev"))  # SINGLE_INSTANCE mq.m7g.medium
    code, out, runner = up(["up", "dev", "--yes"], checker(PendingClients({})), BrokerStackRunner(broker_id))
    assert code == 0 and "compute" in runner.started(), out
    assert "is not applied yet" not in out


def test_the_limits_are_those_of_the_engine_running(moto_aws: None, edit_env: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """RabbitMQ 3.13 runs with its type's maximum limits (300 connections on mq.m7g.medium), 4.2 with Amazon MQ's
    defaults (100): until a pending 4.2 applies, with the bigger type, the broker holds what 3.13 holds."""
    broker_id = _bigger_type_pending(edit_env)
    pending = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large"}
    for engine, refused in (("3.13.7", False), ("4.2.1", True)):
        code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                               checker(PendingClients({**pending, "EngineVersion": engine})),
                               BrokerStackRunner(broker_id))
        assert (code, runner.started()) == ((2, []) if refused else (0, ["compute"])), (engine, out)
    assert "mq.m7g.medium SINGLE_INSTANCE on RabbitMQ 4.2 holds 100 AMQP connections" in capsys.readouterr().err


def test_a_broker_that_requires_action_is_not_sent_to_reboot(moto_aws: None, edit_env: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """"Broker Reboot": "You can reboot only a broker with the RUNNING status", and Amazon MQ restarts no broker that
    raises a high memory alarm (RebootBroker returns an exception): the refusal names the actions required instead."""
    broker_id = _bigger_type_pending(edit_env)
    pending = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large",
               "BrokerState": "CRITICAL_ACTION_REQUIRED",
               "ActionsRequired": [{"ActionRequiredCode": "RABBITMQ_MEMORY_ALARM"}]}
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                           checker(PendingClients(pending)), BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert f"--broker-id {broker_id} --region eu-west-1 --query ActionsRequired" in error
    assert "reboots only a RUNNING broker" in error and "then run `aws mq reboot-broker" in error
    assert "Apply the instance type first" not in error


@pytest.mark.parametrize("state", ["CREATION_IN_PROGRESS", "CREATION_FAILED", "DELETION_IN_PROGRESS"])
@pytest.mark.parametrize("layers", ["broker", "messaging"])
def test_a_broker_that_does_not_run_stops_the_layers_that_need_it(moto_aws: None, capsys: pytest.CaptureFixture[str],
                                                                  state: str, layers: str) -> None:
    """botocore mq BrokerState: a broker being created or deleted, or whose creation failed, answers nothing on its
    management API (messaging's reach probe would blame the network), and ListBrokers still lists it, so the lost
    broker refusal does not see it; the broker layer's `up` reads no AWS state and changes nothing about it."""
    dev = load_env("dev")
    broker_id = _single_broker(dev)
    code, out, runner = up(["up", "dev", "--yes", "--layers", layers, "--exact"],
                           checker(PendingClients({"BrokerState": state})), BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert f"{layers} needs the env's broker, but {broker_id} " in error and f"({state}" in error
    assert "Nothing was run" in error and "environments/dev.yaml" in error
    assert f"aws mq describe-broker --broker-id {broker_id} --region {dev.region} --query BrokerState" in error
    if state == "CREATION_FAILED":
        assert f"`aws mq delete-broker --broker-id {broker_id} --region {dev.region}`" in error
    if state == "CREATION_IN_PROGRESS":  # the wait the broker's create gets (shared.amazonmq)
        assert f"outlasted up's {BROKER_WAIT_MINUTES}-minute wait" in error and BROKER_WAIT_MINUTES == 60


def test_a_broker_that_does_not_run_is_noted_by_a_preview_and_left_to_compute(moto_aws: None) -> None:
    """compute reads the broker for its instance type alone (its services reconnect once the broker runs)."""
    broker_id = _single_broker(load_env("dev"))
    failed = PendingClients({"BrokerState": "CREATION_FAILED"})
    code, out, runner = up(["preview", "dev", "--layers", "messaging", "--exact"], checker(failed),
                           BrokerStackRunner(broker_id))
    assert code == 0 and "note: up would be refused" in out and "(CREATION_FAILED" in out, out
    code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"], checker(failed),
                           BrokerStackRunner(broker_id))
    assert code == 0 and runner.started() == ["compute"], out


def test_a_pending_instance_type_is_not_withdrawn_by_setting_the_running_one_back(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """An up asked for mq.m7g.large (pending until the window); the env file went back to mq.m7g.medium, which the
    broker runs. The provider sends the running type where the state records the pending one (Amazon MQ documents no
    withdrawal), and nothing once a refresh recorded the running type: the broker would move in the window anyway."""
    dev = load_env("dev")
    broker_id = _single_broker(dev)
    pending = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large"}
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], checker(PendingClients(pending)),
                           BrokerStackRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "messaging.instance_type is mq.m7g.medium, the type the broker" in error
    assert "asked Amazon MQ for mq.m7g.large, which it still has pending" in error and "Nothing was run" in error
    where = f"--broker-id {broker_id} --region {dev.region}"
    assert f"`aws mq update-broker {where} --host-instance-type mq.m7g.medium`" in error
    assert f"`aws mq describe-broker {where} --query PendingHostInstanceType`" in error
    # the withdrawal is not documented: tried and checked, with the documented way left where it did not take
    assert "try to withdraw it yourself (Amazon MQ documents no withdrawal, so check that it took)" in error
    assert "while it still names mq.m7g.large, the first way is the one left" in error
    # withdrawn (pending the running type, or nothing), or a run without the broker layer: the run goes on
    for answer, layer in (({**pending, "PendingHostInstanceType": "mq.m7g.medium"}, "broker"),
                          ({"HostInstanceType": "mq.m7g.medium"}, "broker"), (pending, "messaging")):
        code, out, runner = up(["up", "dev", "--yes", "--layers", layer, "--exact"],
                               checker(PendingClients(answer)), BrokerStackRunner(broker_id))
        assert code == 0 and runner.started() == [layer], (answer, out)


def test_a_third_instance_type_replaces_the_pending_one(moto_aws: None, edit_env: Any) -> None:
    """Neither the running type nor the pending one: the provider asks UpdateBroker for it in either case."""
    edit_env("dev", lambda data: data["messaging"].update(instance_type="mq.m7g.xlarge"))
    broker_id = _single_broker(load_env("dev"))
    pending = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large"}
    code, out, runner = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], checker(PendingClients(pending)),
                           BrokerStackRunner(broker_id))
    assert code == 0 and runner.started() == ["broker"], out


class HandingRunner(BrokerStackRunner):
    """Records what the orchestrator hands the layer programs (AutomationRunner.program_environment)."""

    handed: dict[str, str] | None = None

    def program_environment(self, values: Mapping[str, str]) -> None:
        self.handed = dict(values)


def test_the_broker_program_is_handed_what_the_broker_runs(moto_aws: None, edit_env: Any) -> None:
    """The capacity alarms keep to the broker running until Amazon MQ applies the env's type (the window): the
    preflight's DescribeBroker is handed to the broker program (shared.broker_capacity.RUNNING_BROKER_VARIABLE), the
    engine as major.minor; nothing for a broker the run replaces (another deployment mode) or one not read."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE

    edit_env("dev", lambda data: data["messaging"].update(instance_type="mq.m7g.large"))
    broker_id = _single_broker(load_env("dev"))
    for answer, handed in (({"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large",
                             "EngineVersion": "4.2.1"}, {RUNNING_BROKER_VARIABLE: "mq.m7g.medium 4.2"}),
                           ({"DeploymentMode": "CLUSTER_MULTI_AZ"}, {})):
        runner = HandingRunner(broker_id)
        code, out, _ = up(["up", "dev", "--yes", "--layers", "broker", "--exact"], checker(PendingClients(answer)),
                          runner)
        assert code == 0 and runner.handed == handed, (answer, out)


def test_the_reboot_that_applies_the_type_names_the_engine_upgrade_it_applies_too(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A reboot applies everything pending ("Upgrading an Amazon MQ broker engine version": at the next maintenance
    window or reboot): a 3.13 broker on mq.m7g.medium asked for 4.2 with mq.m7g.large in one up (a broker already on
    mq.m7g may change its size with the engine) is upgraded by the reboot the refusal suggests, and it says so."""
    edit_env("dev", lambda data: (data["messaging"].update(instance_type="mq.m7g.large"),
                                  # 400+ connections: more than the 300 a 3.13 mq.m7g.medium holds
                                  data.setdefault("services", {}).setdefault("inference", {}).update(max_count=200)))
    broker_id = _single_broker(load_env("dev"))
    running = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large",
               "EngineVersion": "3.13.7"}
    for answer, says in ((running, False), ({**running, "PendingEngineVersion": "4.2"}, True)):
        code, out, runner = up(["up", "dev", "--yes", "--layers", "compute", "--exact"],
                               checker(PendingClients(answer)), BrokerStackRunner(broker_id))
        error = capsys.readouterr().err
        assert code == 2 and runner.started() == [], out
        assert (f"`aws mq reboot-broker --broker-id {broker_id} --region eu-west-1` (which also upgrades the engine "
                "to its pending 4.2, PendingEngineVersion: no way back once applied; from RabbitMQ 3 to 4 it blocks "
                "all connections to the broker until it is done, longer the more messages the queues hold: drain "
                "them first)" in error) is says, error


def test_a_preview_is_handed_what_the_broker_runs_as_up_is(moto_aws: None, edit_env: Any) -> None:
    """A preview (a pull request's, with the read role: ReadOnlyAccess reads DescribeBroker) shows the capacity alarms
    `up` would set: handed the same running broker, it neither shows the thresholds moving to the env's figures,
    which `up` would not do, nor hides the lowering `up` would make."""
    edit_env("dev", lambda data: data["messaging"].update(instance_type="mq.m7g.large"))
    broker_id = _single_broker(load_env("dev"))
    answer = {"HostInstanceType": "mq.m7g.medium", "PendingHostInstanceType": "mq.m7g.large", "EngineVersion": "4.2.1"}
    handed = []
    for action in (["up", "dev", "--yes"], ["preview", "dev"]):
        runner = HandingRunner(broker_id)
        code, out, _ = up([*action, "--layers", "broker", "--exact"], checker(PendingClients(answer)), runner)
        assert code == 0, out
        handed.append(runner.handed)
    assert handed[0] and handed[1] == handed[0], handed


def test_an_answer_the_broker_program_would_refuse_is_not_handed_over() -> None:
    """What the orchestrator hands is of the variable's form (shared.broker_capacity.running_broker), the engine as
    major.minor; a DescribeBroker answer of no such form (no version numbers) hands nothing, so the broker program
    takes the env's figures instead of failing the run."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE, running_broker
    from shared.orchestrate.account import RunningBroker
    from shared.orchestrate.cli import program_environment

    dev = load_env("dev")
    mode = dev.messaging.deployment_mode
    handed = program_environment(dev, RunningBroker("b-1", "RUNNING", "mq.m7g.medium", mode, "4.2.1"))
    assert handed == {RUNNING_BROKER_VARIABLE: "mq.m7g.medium 4.2"}
    assert running_broker(handed) == ("mq.m7g.medium", "4.2")
    assert program_environment(dev, RunningBroker("b-1", "RUNNING", "mq.m7g.medium", mode, "latest")) == {}


class RefusedUpgradeRunner(HandingRunner):
    """The broker stack whose last up asked for 4.2 on prod's mq.m7g.large cluster."""

    recorded = {"engine_version": "4.2", "instance_type": "mq.m7g.large", "deployment_mode": "CLUSTER_MULTI_AZ"}


def _refused_upgrade(codes: list[str]) -> dict[str, Any]:
    """DescribeBroker of a 3.13 broker Amazon MQ did not upgrade to 4.2 ("Broker not upgradeable to version 4": it
    stays available, CRITICAL_ACTION_REQUIRED, with the 4.2 an up asked for)."""
    return {"EngineVersion": "3.13.7", "PendingEngineVersion": "4.2", "BrokerState": "CRITICAL_ACTION_REQUIRED",
            "ActionsRequired": [{"ActionRequiredCode": code, "ActionRequiredInfo": "see the developer guide"}
                                for code in codes]}


def test_the_way_back_from_a_refused_upgrade_to_rabbitmq_4_is_run(moto_aws: None, edit_env: Any) -> None:
    """"You can clear the CRITICAL_ACTION_REQUIRED state by updating the broker engine version back to 3.13 using the
    UpdateBroker API operation": set back to the version the broker runs while it reports
    RABBITMQ_BROKER_NOT_UPGRADEABLE_TO_V4, the broker layer runs (the 4.2 still pending is no refusal), and its
    program is handed the code with what the broker runs (it checks the move again)."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE
    from shared.broker_upgrade import ACTIONS_VARIABLE, NOT_UPGRADEABLE_TO_V4

    edit_env("prod", lambda data: data["messaging"].update(engine_version="3.13"))
    broker_id = _broker(load_env("prod"))
    for action in (["up", "prod", "--yes"], ["preview", "prod"]):
        runner = RefusedUpgradeRunner(broker_id)
        code, out, _ = up([*action, "--layers", "broker", "--exact"],
                          checker(PendingClients(_refused_upgrade([NOT_UPGRADEABLE_TO_V4]))), runner)
        assert code == 0 and runner.started() == ["broker"], out
        assert runner.handed == {RUNNING_BROKER_VARIABLE: "mq.m7g.large 3.13 pending 4.2",
                                 ACTIONS_VARIABLE: NOT_UPGRADEABLE_TO_V4}
        assert "major version upgrade" not in out


def _gone_back(state: str) -> dict[str, Any]:
    """DescribeBroker after the way back's UpdateBroker to 3.13 was made: it cleared the code and the pending 4.2."""
    return {"EngineVersion": "3.13.7", "BrokerState": state, "ActionsRequired": []}


def test_the_way_back_an_up_made_and_did_not_finish_is_run_again(moto_aws: None, edit_env: Any) -> None:
    """The `up` that made the way back's UpdateBroker stopped before its end (a later resource failed, the job timed
    out): the stack's export still says 4.2, written at the program's end, and the broker runs 3.13 with no code and
    nothing pending. The next `up` runs the broker layer (its broker resource holds 3.13 already) instead of refusing
    it as a downgrade on every later run."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE

    edit_env("prod", lambda data: data["messaging"].update(engine_version="3.13"))
    broker_id = _broker(load_env("prod"))
    runner = RefusedUpgradeRunner(broker_id)
    code, out, _ = up(["up", "prod", "--yes", "--layers", "broker", "--exact"],
                      checker(PendingClients(_gone_back("RUNNING"))), runner)
    assert code == 0 and runner.started() == ["broker"], out
    assert runner.handed == {RUNNING_BROKER_VARIABLE: "mq.m7g.large 3.13"}


def test_a_restarting_broker_on_the_version_is_not_taken_for_the_way_back(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """REBOOT_IN_PROGRESS with nothing pending may be the upgrade to 4.2 being applied: not the way back."""
    edit_env("prod", lambda data: data["messaging"].update(engine_version="3.13"))
    broker_id = _broker(load_env("prod"))
    code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"],
                           checker(PendingClients(_gone_back("REBOOT_IN_PROGRESS"))), RefusedUpgradeRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    assert "is 3.13, but the broker runs 3.13 and has 4.2 pending" in capsys.readouterr().err


@pytest.mark.parametrize("codes", [[], ["RABBITMQ_MEMORY_ALARM"]])
def test_a_way_back_without_the_refused_upgrade_is_refused_naming_aws_way_out(
        moto_aws: None, edit_env: Any, capsys: pytest.CaptureFixture[str], codes: list[str]) -> None:
    """No such code: a downgrade, which Amazon MQ refuses; the refusal names the one way back there is, and that this
    broker does not report it."""
    edit_env("prod", lambda data: data["messaging"].update(engine_version="3.13"))
    broker_id = _broker(load_env("prod"))
    code, out, runner = up(["up", "prod", "--yes", "--layers", "broker", "--exact"],
                           checker(PendingClients(_refused_upgrade(codes))), RefusedUpgradeRunner(broker_id))
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "messaging.engine_version: is 3.13, but the broker runs 3.13 and has 4.2 pending" in error
    assert "Amazon MQ only upgrades" in error
    assert f"--broker-id {broker_id} --region eu-west-1 --query ActionsRequired" in error
    assert "RABBITMQ_BROKER_NOT_UPGRADEABLE_TO_V4" in error and "this broker reports no such code" in error


def test_the_way_back_is_handed_only_with_the_code() -> None:
    from shared.broker_upgrade import ACTIONS_VARIABLE, NOT_UPGRADEABLE_TO_V4
    from shared.orchestrate.account import RunningBroker
    from shared.orchestrate.cli import program_environment

    prod = load_env("prod")
    mode = prod.messaging.deployment_mode
    handed = program_environment(prod, RunningBroker("b-1", "CRITICAL_ACTION_REQUIRED", "mq.m7g.large", mode,
                                                     "3.13.7", ("RABBITMQ_MEMORY_ALARM", NOT_UPGRADEABLE_TO_V4)))
    assert handed[ACTIONS_VARIABLE] == f"{NOT_UPGRADEABLE_TO_V4},RABBITMQ_MEMORY_ALARM"
    assert ACTIONS_VARIABLE not in program_environment(prod, RunningBroker("b-1", "RUNNING", "mq.m7g.large", mode,
                                                                           "3.13.7"))


class ConvergingRecorder(BrokerStackRunner):
    """The broker stack runner that records what the run hands on as changes in flight (expect_converging)."""

    def __init__(self, broker_id: str | None) -> None:
        super().__init__(broker_id)
        self.converging: dict[str, list[Any]] = {}

    def expect_converging(self, env_name: str, changes: Mapping[str, Any]) -> None:
        self.converging = {layer: list(items) for layer, items in changes.items()}


def test_a_settle_check_is_told_what_the_broker_has_pending(moto_aws: None) -> None:
    """A new configuration revision, instance type or engine version waits for a reboot or the maintenance window
    (DescribeBroker Configurations.Pending, PendingHostInstanceType, PendingEngineVersion), and the provider reads back
    what the broker runs until then: `preview --expect-no-changes` right after the up that asked gets them as changes
    in flight (shared.orchestrate.settled), not as a broker that does not settle."""
    prod = load_env("prod")
    broker_id = _broker(prod)
    pending = {"Configurations": {"Current": {"Id": "c-1", "Revision": 2}, "Pending": {"Id": "c-1", "Revision": 3}},
               "PendingHostInstanceType": "mq.m7g.large"}
    runner = ConvergingRecorder(broker_id)
    code, out, _ = up(["preview", "prod", "--layers", "broker", "--exact", "--expect-no-changes"],
                      checker(PendingClients(pending)), runner)
    assert code == 0, out
    (broker,) = [item for item in runner.converging["broker"] if "aws:mq/broker:Broker" in item.types]
    assert broker.keys == {"configuration", "hostInstanceType"}
    assert "configuration c-1 revision 3" in broker.why and "hostInstanceType mq.m7g.large" in broker.why
    # the revision the broker runs is no change pending; and a plain preview is told nothing
    for answer, argv in (({"Configurations": {"Current": {"Id": "c-1", "Revision": 2},
                                              "Pending": {"Id": "c-1", "Revision": 2}}}, ["--expect-no-changes"]),
                         (pending, [])):
        runner = ConvergingRecorder(broker_id)
        code, out, _ = up(["preview", "prod", "--layers", "broker", "--exact", *argv], checker(PendingClients(answer)),
                          runner)
        assert code == 0 and not any("aws:mq/broker:Broker" in item.types
                                     for item in runner.converging.get("broker", [])), (answer, out)
        assert bool(runner.converging) == bool(argv)


def test_compute_alone_waits_for_a_new_mode_and_type_the_broker_layer_has_not_applied(edit_env: Any) -> None:
    """A compute-only job after a change of the broker's mode and type would scale past what the old single-instance
    broker holds; with broker in the run, broker applies it first."""
    from shared.orchestrate.account import RunningBroker
    from shared.orchestrate.cli import unapplied_type_refusal

    edit_env("dev", lambda data: (data["messaging"].update(instance_type="mq.m7g.large",
                                                           deployment_mode="CLUSTER_MULTI_AZ"),
                                  data["network"].update(az_count=3),
                                  data.setdefault("services", {}).setdefault("inference", {}).update(max_count=150)))
    dev = load_env("dev")
    old = RunningBroker("b-1", "RUNNING", "mq.m7g.medium", "SINGLE_INSTANCE", "4.2.1")
    assert unapplied_type_refusal(dev, ["compute"], old) is not None
    assert unapplied_type_refusal(dev, ["broker", "compute"], old) is None
