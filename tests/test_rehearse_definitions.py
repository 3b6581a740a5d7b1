"""The rehearsal's offline half: the synthesized topology as RabbitMQ definitions, and a clear message
when no broker can be had. (The real-broker checks are in test_rehearse.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
import sys
from functools import cache
from pathlib import Path

import pytest

from shared.catalog import load_catalog
from shared.envs import load_env
from shared.rehearse import broker as broker_module
from shared.rehearse import local_credentials, synthesized_topology, write_artifacts
from shared.rehearse.__main__ import main
from shared.rehearse.broker import (
    BrokerUnavailable,
    definition_for_version,
    ensure_rabbitmq,
    for_version,
    version_divergences,
)
from shared.rehearse.definitions import (
    HASHING_ALGORITHM,
    Topology,
    TopologyError,
    dumps_definitions,
    password_hash,
    provider_value,
    to_definitions,
    topology_from_synth,
)
from shared.synth.engine import synth_env


@cache
def topology() -> Topology:
    return synthesized_topology("dev")


def test_definitions_describe_the_synthesized_vhost_objects_and_users() -> None:
    definitions = to_definitions(topology())
    (vhost,) = definitions["vhosts"]
    assert (vhost["name"], vhost["default_queue_type"]) == ("ml-dev", "quorum")
    assert {q["name"] for q in definitions["queues"]} == {
        q for spec in load_catalog() if spec.queue for q in (spec.queue, spec.dead_letter_queue)}
    assert {(e["name"], e["type"]) for e in definitions["exchanges"]} == {
        ("ml.requests", "topic"), ("ml.events", "topic"), ("ml.dead-letter", "direct")}
    assert len(definitions["bindings"]) == len(topology().bindings)
    users = {u["name"] for u in definitions["users"]}
    # the services' users, and the queue metrics publisher's (shared.components.queue_metrics): tag management,
    # nothing to configure, write or read on the vhost
    # (two per service: the current generation's, and the previous one's: shared.components.messaging.Generation)
    assert users == {f"ml-dev-{s.name}{suffix}" for s in load_catalog() if s.publishes or s.consumes
                     for suffix in ("", ".2026-11-01")} | {"ml-dev.queue-metrics"}
    assert {p["user"] for p in definitions["permissions"]} == users
    assert {u["name"]: u["tags"] for u in definitions["users"] if u["tags"]} == {
        "ml-dev.queue-metrics": ["management"]}
    monitor = next(p for p in definitions["permissions"] if p["user"] == "ml-dev.queue-metrics")
    assert (monitor["configure"], monitor["write"], monitor["read"]) == ("^$", "^$", "^$")
    assert all(u["hashing_algorithm"] == HASHING_ALGORITHM for u in definitions["users"])
    assert all("password" not in u for u in definitions["users"]), "only password hashes are written"
    assert not any(u.password in json.dumps(definitions) for u in topology().users)


def test_queues_carry_only_their_type_and_policies_carry_the_rest_as_the_provider_sends_it() -> None:
    definitions = to_definitions(topology())
    assert {json.dumps(q["arguments"]) for q in definitions["queues"]} == {'{"x-queue-type": "quorum"}'}
    policy = next(p for p in definitions["policies"] if re.search(p["pattern"], "training.work"))
    assert policy["vhost"] == "ml-dev" and policy["apply-to"] == "quorum_queues"
    definition = policy["definition"]
    assert definition["dead-letter-exchange"] == "ml.dead-letter"
    assert definition["dead-letter-routing-key"] == "training.work"
    # The provider's inputs are strings; it sends integer strings as integers, and so do the definitions.
    assert isinstance(definition["delivery-limit"], int) and isinstance(definition["message-ttl"], int)
    # Operator policies are runtime parameters of the operator_policy component (RabbitMQ's own export).
    limits = {p["name"]: p["value"] for p in definitions["parameters"] if p["component"] == "operator_policy"}
    assert set(limits) == {"limits-work-queues", "limits-dead-letter-queues"}
    assert limits["limits-work-queues"]["definition"] == {"max-length": load_env("dev").messaging.max_length}
    assert re.search(limits["limits-dead-letter-queues"]["pattern"], "training.dlq")
    assert not re.search(limits["limits-dead-letter-queues"]["pattern"], "training.work")


def test_provider_value_sends_integer_strings_as_integers() -> None:
    assert provider_value("3600000") == 3600000 and provider_value("reject-publish") == "reject-publish"
    assert provider_value("training.work") == "training.work" and provider_value(5) == 5


def test_an_older_local_broker_gets_queues_for_apply_to_and_nothing_else_changes() -> None:
    definitions = to_definitions(topology())
    old = for_version(definitions, (3, 10, 8))
    assert {p["apply-to"] for p in old["policies"]} == {"queues"}
    assert {p["value"]["apply-to"] for p in old["parameters"]} == {"queues"}
    assert old["queues"] == definitions["queues"] and old["users"] == definitions["users"]
    assert for_version(definitions, (3, 13, 7)) is definitions
    assert {p["apply-to"] for p in definitions["policies"]} == {"quorum_queues"}, "the input is untouched"


def test_an_older_local_broker_gets_no_consumer_timeout_and_the_rehearsal_lists_what_it_left_out() -> None:
    # RabbitMQ before 3.12 refuses the policy key ("not recognised policy settings"): it is left out on such a
    # node, and each key left out is a line of the report, never a silent difference.
    definitions = to_definitions(topology())
    timeouts = {p["name"]: p["definition"]["consumer-timeout"] for p in definitions["policies"]
                if "consumer-timeout" in p["definition"]}
    consumers = sum(1 for spec in load_catalog() if spec.consumes)  # 4 shipped: a work queue each
    assert timeouts["queue-training.work"] == 21_600_000 and len(timeouts) == consumers
    old = for_version(definitions, (3, 10, 8))
    assert not [p for p in old["policies"] if "consumer-timeout" in p["definition"]]
    assert {p["name"]: p["definition"]["delivery-limit"] for p in old["policies"]} == {
        p["name"]: p["definition"]["delivery-limit"] for p in definitions["policies"]}, "the rest stays"
    lines = version_divergences(definitions, (3, 10, 8))
    assert len(lines) == consumers and lines[-1] == (
        "policy queue-training.work: consumer-timeout 21600000 left out: RabbitMQ 3.10.8 refuses the key (known "
        "from 3.12.0; the deployed broker applies it)")
    assert version_divergences(definitions, (3, 12, 0)) == [] and version_divergences(definitions, (4, 2, 1)) == []
    # 3.11.x never got the key (its last release, 3.11.28, has no consumer-timeout policy validator)
    assert len(version_divergences(definitions, (3, 11, 28))) == consumers
    assert for_version(definitions, (4, 2, 1)) is definitions
    assert definition_for_version({"consumer-timeout": 5, "message-ttl": 1}, (3, 10, 8)) == {"message-ttl": 1}


def test_with_vhost_moves_the_policies_too() -> None:
    moved = topology().with_vhost("ml-dev-copy")
    assert {p.vhost for p in moved.policies} == {"ml-dev-copy"} and len(moved.policies) == len(topology().policies)


def test_the_definitions_file_is_byte_stable() -> None:
    again = topology_from_synth(synth_env("dev", ["messaging"])["messaging"])
    assert dumps_definitions(to_definitions(again)) == dumps_definitions(to_definitions(topology()))


def test_password_hash_is_rabbitmqs_salted_sha256() -> None:
    salt = bytes.fromhex("908dc60a")
    decoded = base64.b64decode(password_hash("test12", salt))
    assert decoded[:4] == salt and decoded[4:] == hashlib.sha256(salt + b"test12").digest()


def test_credentials_come_from_each_services_secret_and_match_its_user() -> None:
    passwords = {u.name: u.password for u in topology().users}
    for service, credentials in topology().credentials.items():
        assert credentials.username == f"ml-dev-{service}.2026-11-01" and credentials.vhost == "ml-dev"
        assert passwords[credentials.username] == credentials.password


def test_artifacts_are_written_under_the_build_directory(tmp_path: Path) -> None:
    path = write_artifacts("dev", topology(), tmp_path)
    assert path == tmp_path / "rabbitmq-definitions.json"
    assert json.loads(path.read_text()) == to_definitions(topology())
    credentials = tmp_path / "rabbitmq-credentials.json"
    assert json.loads(credentials.read_text()) == local_credentials(topology())
    assert credentials.stat().st_mode & 0o077 == 0, "the local credentials file is private"


def test_a_folder_where_an_artifact_goes_writes_neither_and_names_it(tmp_path: Path) -> None:
    from shared.errors import UsageError

    (tmp_path / "rabbitmq-definitions.json").mkdir()
    with pytest.raises(UsageError, match=r"rabbitmq-definitions\.json: a folder stands where the output file goes"):
        write_artifacts("dev", topology(), tmp_path)
    assert not (tmp_path / "rabbitmq-credentials.json").exists()


def test_a_document_without_the_messaging_contract_is_refused() -> None:
    with pytest.raises(TopologyError, match="vhost"):
        topology_from_synth({"resources": [], "outputs": {}})


def test_without_rabbitmq_and_without_root_the_message_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "rabbitmq_installed", lambda: False)
    monkeypatch.setattr(broker_module.os, "geteuid", lambda: 1000)
    with pytest.raises(BrokerUnavailable, match=r"apt-get install -y rabbitmq-server"):
        ensure_rabbitmq()


def test_an_unknown_env_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nowhere"]) == 2
    assert "unknown environment 'nowhere'" in capsys.readouterr().err


def test_a_run_puts_back_the_signal_handlers_and_hook_it_found(capsys: pytest.CaptureFixture[str]) -> None:
    # While it runs, SIGINT/SIGTERM/SIGHUP raise so the local broker is stopped; after it, whoever called it in the
    # same process (the test session) has its own handlers again.
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    hook = sys.unraisablehook
    assert main(["nowhere"]) == 2
    assert {signum: signal.getsignal(signum) for signum in before} == before
    assert sys.unraisablehook is hook
    capsys.readouterr()


@pytest.mark.parametrize(("argv", "said"), [([], "the following arguments are required: env"),
                                            (["dev", "prod"], "unrecognized arguments: prod")])
def test_a_wrong_argument_is_one_line_naming_it_with_exit_2(
        argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    # As every other command: one message line, no argparse usage block, exit 2.
    assert main(argv) == 2
    assert capsys.readouterr().err == f"rehearse: {said}\n"


def test_a_build_path_that_cannot_hold_the_definitions_exits_2_before_any_broker_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shared.rehearse

    blocker = tmp_path / "build"
    blocker.write_text("a file where the build folder goes\n")
    monkeypatch.setattr(shared.rehearse, "build_dir", lambda env: blocker / env)
    started: list[str] = []
    monkeypatch.setattr(shared.rehearse, "rehearse", lambda *args, **kwargs: started.append("broker"))
    assert main(["dev"]) == 2
    assert "is a file" in capsys.readouterr().err and not started
