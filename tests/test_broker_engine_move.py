"""A change of ``messaging.engine_version`` / ``instance_type`` is one Amazon MQ can apply, or it is refused before
anything changes.

The env loader knows only the env file: 4.2 back to 3.13, or m5 + 3.13 to m7g + 4.2 in one `up`, are both valid
files. The broker stack exports the engine version and instance type it asked for, and the layer program (a
``pulumi up`` in stacks/broker) and the orchestrator (before any layer runs) compare the env with them
(:mod:`shared.broker_upgrade`). Without that check the broker layer's `up` replaced the configuration (a new one per
engine version) and then failed at ``UpdateBroker``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pytest

from shared.broker_upgrade import (
    ACTIONS_VARIABLE,
    NOT_UPGRADEABLE_TO_V4,
    actions_required,
    engine_move_refusal,
    major_upgrade_note,
)
from shared.envs import EnvConfig, load_env
from shared.errors import ConfigError
from shared.orchestrate.cli import main
from shared.synth.engine import layer_dir, synth_env, synth_program
from tests.aws_helpers import ReleasedEverywhere
from tests.test_orchestrate import RecordingRunner, management_api  # noqa: F401 - its fixture: the reach probe's endpoint

ENGINE = "messaging.engine_version"
TYPE = "messaging.instance_type"
SELF = "organization/broker/dev"


def deployed(engine: str, instance_type: str) -> dict[str, Any]:
    """A deployed amazon-mq broker stack's outputs."""
    return {"broker_mode": "amazon-mq", "engine_version": engine, "instance_type": instance_type}


def set_broker(edit_env: Any, engine: str, instance_type: str) -> None:
    edit_env("dev", lambda data: data["messaging"].update(engine_version=engine, instance_type=instance_type))


# -- the rule ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("outputs", "engine", "instance_type", "key", "says"), [
    # no downgrade: Amazon MQ upgrades only ("Upgrading an Amazon MQ broker engine version")
    (deployed("4.2", "mq.m7g.large"), "3.13", "mq.m7g.large", ENGINE, "only upgrades"),
    # the instance type and the major version in one `up`: AWS's steps are the type first, then the version
    (deployed("3.13", "mq.m5.large"), "4.2", "mq.m7g.large", ENGINE, f"first `{TYPE}: mq.m7g.large`"),
    (deployed("3.13", "mq.m5.xlarge"), "4.2", "mq.m7g.xlarge", ENGINE, f"first `{TYPE}: mq.m7g.xlarge`"),
    # no way back to mq.t3.micro ("Amazon MQ for RabbitMQ sizing guidelines": "You cannot downgrade a broker from an
    # mq.m5 or mq.m7g instance type to an mq.t3.micro instance type"), with the engine unchanged or not
    (deployed("3.13", "mq.m5.large"), "3.13", "mq.t3.micro", TYPE, "never moves back to mq.t3.micro"),
    (deployed("3.13", "mq.m7g.medium"), "3.13", "mq.t3.micro", TYPE, f"`{TYPE}: mq.m7g.medium`"),
    (deployed("4.2", "mq.m7g.medium"), "3.13", "mq.t3.micro", TYPE, "never moves back to mq.t3.micro"),
    # one version at a time: 4.3 only from 4.2 (AWS "RabbitMQ 4.3": "You cannot upgrade directly from RabbitMQ 3.13
    # to 4.3"), and no way back from 4.3
    (deployed("3.13", "mq.m7g.large"), "4.3", "mq.m7g.large", ENGINE, f"the next one is 4.2; nothing was changed. "
                                                                      f"Set `{ENGINE}: \"4.2\"` first"),
    (deployed("4.3", "mq.m7g.large"), "4.2", "mq.m7g.large", ENGINE, "only upgrades"),
])
def test_a_move_amazon_mq_cannot_apply_is_refused(outputs: dict[str, Any], engine: str, instance_type: str,
                                                  key: str, says: str, edit_env: Any) -> None:
    set_broker(edit_env, engine, instance_type)
    refusal = engine_move_refusal(load_env("dev"), outputs)
    assert refusal is not None
    assert refusal.file.endswith("environments/dev.yaml") and refusal.key == key
    assert says in refusal.reason and "nothing was changed" in refusal.reason


# What the broker stack's output holds is what its last `up` set: DescribeBroker may show it as the broker's
# EngineVersion / HostInstanceType, or only as PendingEngineVersion / PendingHostInstanceType until a reboot or the
# maintenance window applies it. The refusal says which where it knows what runs (the orchestrator hands the broker
# program PLATFORM_BROKER_RUNNING), and both where it does not (the orchestrator's check runs before DescribeBroker).
@pytest.mark.parametrize(("running", "pending", "says"), [
    (("mq.m7g.large", "4.2"), None, "is 3.13, but the broker runs 4.2:"),
    (("mq.m7g.large", "3.13"), "4.2", "is 3.13, but the broker runs 3.13 and has 4.2 pending:"),
    (None, None, "is 3.13, but the broker was last set to 4.2 (it runs it, or has it pending until a reboot or its "
                 "maintenance window):"),
])
def test_the_refusal_says_whether_the_broker_runs_the_version_or_has_it_pending(
        running: tuple[str, str] | None, pending: str | None, says: str, edit_env: Any) -> None:
    set_broker(edit_env, "3.13", "mq.m7g.large")
    refusal = engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large"), running, None, pending)
    assert refusal is not None and refusal.key == ENGINE and says in refusal.reason


@pytest.mark.parametrize(("running", "says"), [
    (("mq.m5.large", "3.13"), "is mq.t3.micro, but the broker runs mq.m5.large:"),
    (("mq.t3.micro", "3.13"), "is mq.t3.micro, but the broker runs mq.t3.micro and has mq.m5.large pending:"),
])
def test_the_instance_type_refusal_says_whether_the_type_is_pending(running: tuple[str, str], says: str,
                                                                    edit_env: Any) -> None:
    set_broker(edit_env, "3.13", "mq.t3.micro")
    refusal = engine_move_refusal(load_env("dev"), deployed("3.13", "mq.m5.large"), running)
    assert refusal is not None and refusal.key == TYPE and says in refusal.reason


def test_the_program_words_the_refusal_from_what_the_broker_runs(edit_env: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer program passes what the orchestrator read (PLATFORM_BROKER_RUNNING: what runs, what is pending) to
    the refusal, and accepts the way back an `up` made and did not finish (3.13 runs, nothing pending)."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE

    first = synth_broker(None)  # dev as shipped: 4.2 on mq.m7g.medium, which this up leaves pending
    monkeypatch.setenv(RUNNING_BROKER_VARIABLE, "mq.m7g.medium 3.13.7 pending 4.2.1")
    set_broker(edit_env, "3.13", "mq.m7g.medium")
    with pytest.raises(ConfigError) as refused:
        synth_broker(first["outputs"])
    assert "the broker runs 3.13 and has 4.2 pending" in refused.value.reason
    monkeypatch.setenv(RUNNING_BROKER_VARIABLE, "mq.m7g.medium 3.13.7")
    assert synth_broker(first["outputs"])["outputs"]["engine_version"] == "3.13"


@pytest.mark.parametrize(("outputs", "engine", "instance_type"), [
    (None, "3.13", "mq.m5.large"),                                     # no stack yet: a first `up`
    ({}, "3.13", "mq.m5.large"),                                       # a stack never deployed
    (deployed("3.13", "mq.m7g.large"), "4.2", "mq.m7g.large"),         # the major upgrade, on m7g already
    (deployed("4.2", "mq.m7g.large"), "4.3", "mq.m7g.large"),          # 4.2 to 4.3 (AWS "RabbitMQ 4")
    # a broker already on mq.m7g skips AWS's step 1 ("In-place upgrade from RabbitMQ 3 to 4": "If your broker is
    # already running on an mq.m7g instance type, move to Step 2"): a size change with the upgrade is no family move
    (deployed("3.13", "mq.m7g.large"), "4.2", "mq.m7g.xlarge"),
    (deployed("3.13", "mq.m5.large"), "3.13", "mq.m7g.large"),         # step one: the instance type
    (deployed("4.2", "mq.m7g.large"), "4.2", "mq.m7g.xlarge"),         # a bigger size, same version
    (deployed("4.2", "mq.m7g.large"), "4.2", "mq.m7g.large"),          # no change
    (deployed("3.13", "mq.t3.micro"), "3.13", "mq.t3.micro"),          # already there: no move
    (deployed("3.13", "mq.t3.micro"), "3.13", "mq.m5.large"),          # up from mq.t3.micro: in place
    # a new deployment mode is a new broker: CreateBroker takes mq.t3.micro (a single instance) again
    ({**deployed("3.13", "mq.m5.large"), "deployment_mode": "CLUSTER_MULTI_AZ"}, "3.13", "mq.t3.micro"),
    # a patch Amazon MQ applied (it reports major.minor.patch; the provider suppresses that diff: terraform-provider-aws
    # "RabbitMQ 3.13 and ActiveMQ 5.18 Version Mismatch") is no move
    (deployed("3.13.7", "mq.m5.large"), "3.13", "mq.m5.large"),
    ({"broker_mode": "amazon-mq"}, "3.13", "mq.m7g.large"),            # a stack from before these outputs
    ({"broker_mode": "external", "engine_version": None}, "3.13", "mq.m7g.large"),  # external until now
    # a new deployment mode is a new broker (CreateBroker: any version, any type), so no upgrade path applies
    ({**deployed("4.2", "mq.m7g.large"), "deployment_mode": "CLUSTER_MULTI_AZ"}, "3.13", "mq.m5.large"),
])
def test_a_move_amazon_mq_applies_passes(outputs: dict[str, Any] | None, engine: str, instance_type: str,
                                         edit_env: Any) -> None:
    set_broker(edit_env, engine, instance_type)
    assert engine_move_refusal(load_env("dev"), outputs) is None


# -- AWS's way out of a refused upgrade to RabbitMQ 4 ("Broker not upgradeable to version 4") ---------------------
# A 3.13 broker with classic queues or the Khepri feature flag is not upgraded: it stays available on 3.13, state
# CRITICAL_ACTION_REQUIRED, ActionsRequired holding RABBITMQ_BROKER_NOT_UPGRADEABLE_TO_V4, and "You can clear the
# CRITICAL_ACTION_REQUIRED state by updating the broker engine version back to 3.13 using the UpdateBroker API
# operation". That is the one downgrade accepted, and only while the broker reports the code and runs the version.


def test_the_version_the_broker_runs_is_accepted_back_while_it_reports_the_refused_upgrade(edit_env: Any) -> None:
    set_broker(edit_env, "3.13", "mq.m7g.large")
    refused_upgrade = {NOT_UPGRADEABLE_TO_V4}
    assert engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large"), ("mq.m7g.large", "3.13"),
                               refused_upgrade) is None
    # the code among others (a memory alarm too) still accepts it
    assert engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large"), ("mq.m7g.large", "3.13"),
                               {NOT_UPGRADEABLE_TO_V4, "RABBITMQ_MEMORY_ALARM"}) is None


def test_the_way_back_made_by_an_up_that_did_not_finish_is_accepted(edit_env: Any) -> None:
    """UpdateBroker back to 3.13 clears the code ("You can clear the CRITICAL_ACTION_REQUIRED state by updating the
    broker engine version back to 3.13"); an `up` stopped after it (a later resource failed, the job timed out) leaves
    the stack's export at 4.2, written at the program's end. The broker then runs 3.13 with no code and nothing
    pending: the next `up` is accepted (its broker resource already holds 3.13), not refused as a downgrade forever."""
    set_broker(edit_env, "3.13", "mq.m7g.large")
    assert engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large"), ("mq.m7g.large", "3.13"),
                               set()) is None
    assert engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large"), ("mq.m7g.large", "3.13.7"),
                               {"RABBITMQ_MEMORY_ALARM"}) is None
    # the broker program is handed no codes where the broker reports none (None): what runs decides the same
    assert engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large"), ("mq.m7g.large", "3.13")) is None


@pytest.mark.parametrize(("running", "actions", "pending", "says"), [
    # the broker runs 3.13 and has the upgrade to 4.2 still pending: a plain downgrade of what the last up asked for
    (("mq.m7g.large", "3.13"), set(), "4.2",
     "; this broker reports no such code: it runs 3.13 with 4.2 pending, which Amazon MQ applies in its maintenance "
     "window or at a reboot (or refuses, with the code)"),
    (("mq.m7g.large", "3.13"), {"RABBITMQ_MEMORY_ALARM"}, "4.2", "; this broker reports no such code"),
    # not read (the layer program run without the orchestrator, a DescribeBroker that failed)
    (None, None, None, "Whether this broker reports it was not read here (`nox -s up` reads it with DescribeBroker"),
    # the code, but what runs unknown, or another version than the env's
    (None, {NOT_UPGRADEABLE_TO_V4}, None, "this broker reports it, but what it runs was not read"),
    (("mq.m7g.large", "4.2"), {NOT_UPGRADEABLE_TO_V4}, None,
     f"this broker reports it and runs 4.2: set `{ENGINE}: \"4.2\"`"),
    # it runs 4.2 now: the upgrade was applied, whatever it reports
    (("mq.m7g.large", "4.2"), set(), None, "; this broker reports no such code"),
])
def test_any_other_way_back_is_refused_naming_aws_way_out(running: tuple[str, str] | None, actions: set[str] | None,
                                                          pending: str | None, says: str, edit_env: Any) -> None:
    set_broker(edit_env, "3.13", "mq.m7g.large")
    refusal = engine_move_refusal(load_env("dev"), {**deployed("4.2", "mq.m7g.large"), "broker_id": "b-1"}, running,
                                  actions, pending)
    assert refusal is not None and refusal.key == ENGINE
    assert "only upgrades" in refusal.reason and "nothing was changed" in refusal.reason
    assert (f"the action-required code {NOT_UPGRADEABLE_TO_V4} (`aws mq describe-broker --broker-id b-1 --region "
            "eu-west-1 --query ActionsRequired`)") in refusal.reason
    assert "set back to the version it runs is what clears it" in refusal.reason and says in refusal.reason


def test_no_way_out_is_named_within_a_major_version(edit_env: Any) -> None:
    """AWS's way out is from a refused upgrade to RabbitMQ 4 only: 4.3 never goes back to 4.2, code or not."""
    set_broker(edit_env, "4.2", "mq.m7g.large")
    refusal = engine_move_refusal(load_env("dev"), deployed("4.3", "mq.m7g.large"), ("mq.m7g.large", "4.2"),
                                  {NOT_UPGRADEABLE_TO_V4})
    assert refusal is not None and "only upgrades" in refusal.reason
    assert NOT_UPGRADEABLE_TO_V4 not in refusal.reason


def test_the_action_codes_handed_to_the_program_are_read_or_refused() -> None:
    assert actions_required({}) is None and actions_required({ACTIONS_VARIABLE: " "}) is None
    assert actions_required({ACTIONS_VARIABLE: f"RABBITMQ_MEMORY_ALARM,{NOT_UPGRADEABLE_TO_V4}"}) == {
        "RABBITMQ_MEMORY_ALARM", NOT_UPGRADEABLE_TO_V4}
    with pytest.raises(ConfigError) as refused:
        actions_required({ACTIONS_VARIABLE: "not upgradeable"})
    assert refused.value.file == ACTIONS_VARIABLE and "'not upgradeable'" in refused.value.reason


# -- the outage of a major upgrade ("Upgrading Amazon MQ for RabbitMQ 3 broker to 4": "During the upgrade, Amazon MQ
# blocks all connections to the broker ... The downtime depends on queue depth") ----------------------------------


def test_a_new_major_version_is_noted_as_a_full_outage(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["messaging"].update(engine_version="4.2"))
    note = major_upgrade_note(load_env("prod"), {**deployed("3.13", "mq.m7g.large"), "broker_id": "b-9"})
    assert note is not None
    assert note.startswith(f"{ENGINE}: 3.13 to 4.2 is a major version upgrade")
    assert "messaging.maintenance_window SUNDAY 03:00 Europe/Dublin" in note
    assert "blocks all connections to the broker for the whole upgrade, on a CLUSTER_MULTI_AZ broker too" in note
    assert "for longer the more messages the queues hold" in note and "Drain the queues first" in note
    assert "`aws mq reboot-broker --broker-id b-9 --region eu-west-1`" in note


@pytest.mark.parametrize(("outputs", "engine", "instance_type"), [
    (deployed("4.2", "mq.m7g.large"), "4.3", "mq.m7g.large"),    # a minor move: no major upgrade
    (deployed("4.2", "mq.m7g.large"), "4.2", "mq.m7g.large"),    # no move
    (deployed("3.13", "mq.m5.large"), "4.2", "mq.m7g.large"),    # refused (the type first): its refusal says why
    (None, "4.2", "mq.m7g.large"),                               # a first up: a new broker
    ({**deployed("3.13", "mq.m7g.large"), "deployment_mode": "CLUSTER_MULTI_AZ"}, "4.2", "mq.m7g.large"),  # new one
])
def test_no_outage_note_without_a_major_upgrade(outputs: dict[str, Any] | None, engine: str, instance_type: str,
                                                edit_env: Any) -> None:
    set_broker(edit_env, engine, instance_type)
    assert major_upgrade_note(load_env("dev"), outputs) is None


@pytest.mark.parametrize(("outputs", "engine", "noted"), [
    (deployed("4.2", "mq.m7g.large"), "4.3", True),
    (deployed("4.3", "mq.m7g.large"), "4.3", False),   # already there
    (deployed("3.13", "mq.m7g.large"), "4.2", False),  # 4.2 keeps the channel-closing timeout
    (None, "4.3", False),                              # a new broker: nothing its consumers were written for
])
def test_a_move_to_rabbitmq_4_3_says_its_consumer_timeout_cancels_and_does_not_count(
        outputs: dict[str, Any] | None, engine: str, noted: bool, edit_env: Any) -> None:
    """On 4.3 a quorum queue's consumer timeout cancels the consumer (basic.cancel) instead of closing its channel,
    and the delivery taken back does not count towards the delivery limit (RabbitMQ 4.3.0 release notes;
    rabbitmq-server discussion #18226): a consumer written for 4.2 sits idle, and a job that always hangs loops."""
    from shared.broker_upgrade import consumer_timeout_note

    set_broker(edit_env, engine, "mq.m7g.large")
    note = consumer_timeout_note(load_env("dev"), outputs)
    assert (note is not None) is noted
    if note is not None:
        assert note.startswith(f"{ENGINE}: 4.2 to 4.3: from RabbitMQ 4.3")
        assert "cancels the consumer (basic.cancel" in note and "no longer counts towards messaging.delivery_limit" \
            in note and "basic.reject and requeue" in note


def test_an_external_broker_is_not_checked(edit_env: Any) -> None:
    """The platform does not upgrade an external broker; its operator does."""
    edit_env("dev", lambda data: data["messaging"].update(
        broker="external", engine_version="3.13", instance_type="mq.m7g.large",
        external={"amqps_endpoint": "amqps://mq.example.com:5671", "management_endpoint": "https://mq.example.com"}))
    assert engine_move_refusal(load_env("dev"), deployed("4.2", "mq.m7g.large")) is None


# -- the layer program (pulumi up / preview in stacks/broker) -----------------------------------------


def synth_broker(own: dict[str, Any] | None) -> dict[str, Any]:
    outputs = {"organization/network/dev": synth_env("dev", ["network"])["network"]["outputs"]}
    if own is not None:
        outputs[SELF] = own
    return synth_program(layer_dir("broker"), stack="dev", layer="broker", env="dev",
                         account_id="111111111111", region="eu-west-1", stack_outputs=outputs)


def test_the_program_exports_what_it_asked_for_and_reads_its_own_stack(env_dir: Any) -> None:
    document = synth_broker(None)
    assert document["outputs"]["engine_version"] == "4.2" and document["outputs"]["instance_type"] == "mq.m7g.medium"
    assert document["outputs"]["deployment_mode"] == "SINGLE_INSTANCE"
    assert SELF in document["stack_references"]


def test_the_program_refuses_a_downgrade(edit_env: Any) -> None:
    first = synth_broker(None)  # dev as shipped: 4.2 on mq.m7g.medium
    set_broker(edit_env, "3.13", "mq.m7g.medium")
    with pytest.raises(ConfigError) as refused:
        synth_broker(first["outputs"])
    assert refused.value.key == ENGINE and "4.2" in refused.value.reason


def test_the_program_goes_back_where_the_orchestrator_hands_it_the_refused_upgrade(
        edit_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's way out in the program: handed what the broker runs and its code (as the orchestrator's preflight reads
    them), engine_version 3.13 after 4.2 is accepted, and its configuration is a new one for 3.13 (the first one's
    name: Amazon MQ configuration names need not be unique), the broker asked for 3.13 with it."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE

    first = synth_broker(None)  # dev as shipped: 4.2 on mq.m7g.medium, which Amazon MQ refused to apply
    monkeypatch.setenv(RUNNING_BROKER_VARIABLE, "mq.m7g.medium 3.13.7 pending 4.2")
    set_broker(edit_env, "3.13", "mq.m7g.medium")
    with pytest.raises(ConfigError) as refused:  # the code not handed over: a downgrade
        synth_broker(first["outputs"])
    assert NOT_UPGRADEABLE_TO_V4 in refused.value.reason
    monkeypatch.setenv(ACTIONS_VARIABLE, NOT_UPGRADEABLE_TO_V4)
    back = synth_broker(first["outputs"])
    assert back["outputs"]["engine_version"] == "3.13"
    resources = {resource["type"]: resource["inputs"] for resource in back["resources"]}
    assert resources["aws:mq/configuration:Configuration"]["engineVersion"] == "3.13"
    assert resources["aws:mq/configuration:Configuration"]["name"].endswith("-rabbitmq-3.13")
    assert resources["aws:mq/broker:Broker"]["engineVersion"] == "3.13"


def test_the_program_takes_the_two_steps_one_up_each(edit_env: Any) -> None:
    set_broker(edit_env, "3.13", "mq.m5.large")
    first = synth_broker(None)
    set_broker(edit_env, "3.13", "mq.m7g.large")
    second = synth_broker(first["outputs"])
    set_broker(edit_env, "4.2", "mq.m7g.large")
    third = synth_broker(second["outputs"])
    assert third["outputs"]["engine_version"] == "4.2"
    assert synth_broker(third["outputs"])["outputs"] == third["outputs"]  # the next up, no change


# -- the orchestrator (nox -s up / preview), before any layer runs -----------------------------------


class DeployedBrokerRunner(RecordingRunner):
    """Every stack deployed; the broker stack asked for ``engine`` on ``instance_type``."""

    def __init__(self, engine: str, instance_type: str) -> None:
        super().__init__()
        self.broker = deployed(engine, instance_type)

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        outputs = dict(super().stack_outputs(layer, env) or {})
        if layer == "broker":
            outputs.update(self.broker)
        return outputs


@pytest.mark.parametrize("action", ["up", "preview"])
def test_the_orchestrator_refuses_before_any_layer_runs(edit_env: Any, action: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    set_broker(edit_env, "3.13", "mq.m7g.medium")
    runner = DeployedBrokerRunner("4.2", "mq.m7g.medium")
    code = main([action, "dev", *([] if action == "preview" else ["--yes"])],  # preview refuses --yes
                runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 2 and runner.started() == []
    assert f"environments/dev.yaml: {ENGINE}: is 3.13, but the broker was last set to 4.2 (it runs it, or has it " \
           "pending" in capsys.readouterr().err


def test_the_orchestrator_refuses_a_move_back_to_t3_micro(edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The engine unchanged: the refusal is about the instance type alone, before any layer runs (the broker layer
    would otherwise move the capacity alarms to mq.t3.micro's limits and then fail at UpdateBroker)."""
    set_broker(edit_env, "3.13", "mq.t3.micro")
    runner = DeployedBrokerRunner("3.13", "mq.m5.large")
    code = main(["up", "dev", "--yes"], runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 2 and runner.started() == []
    said = capsys.readouterr().err
    assert f"environments/dev.yaml: {TYPE}: is mq.t3.micro, but the broker was last set to mq.m5.large" in said


@pytest.mark.parametrize("action", ["up", "preview"])
def test_the_orchestrator_runs_the_major_upgrade_on_m7g_and_notes_the_outage(edit_env: Any, action: str) -> None:
    set_broker(edit_env, "4.2", "mq.m7g.medium")
    runner = DeployedBrokerRunner("3.13", "mq.m7g.medium")
    out = io.StringIO()
    code = main([action, "dev", *(["--yes"] if action == "up" else [])], runner=runner, out=out,
                confirm=lambda prompt: True, images=ReleasedEverywhere())
    assert code == 0 and "broker" in runner.started()
    notes = [line for line in out.getvalue().splitlines() if "major version upgrade" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")
    assert (f"environments/dev.yaml: {ENGINE}: 3.13 to 4.2 is a major version upgrade: Amazon MQ applies it in the "
            "broker's next maintenance window") in notes[0]
    assert "blocks all connections to the broker for the whole upgrade: every publisher" in notes[0]  # dev: single


def test_the_orchestrator_notes_no_outage_for_a_minor_move(edit_env: Any) -> None:
    set_broker(edit_env, "4.3", "mq.m7g.medium")
    out = io.StringIO()
    code = main(["up", "dev", "--yes"], runner=DeployedBrokerRunner("4.2", "mq.m7g.medium"), out=out,
                confirm=lambda prompt: True, images=ReleasedEverywhere())
    assert code == 0 and "major version upgrade" not in out.getvalue()
