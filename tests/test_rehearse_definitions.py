"""The rehearsal's offline half: the synthesized topology as RabbitMQ definitions, and a clear message
when no broker can be had. (The real-broker checks are in test_rehearse.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path

import pytest

from shared.catalog import load_catalog
from shared.rehearse import broker as broker_module
from shared.rehearse import local_credentials, synthesized_topology, write_artifacts
from shared.rehearse.__main__ import main
from shared.rehearse.broker import BrokerUnavailable, ensure_rabbitmq
from shared.rehearse.definitions import (
    HASHING_ALGORITHM,
    Topology,
    TopologyError,
    dumps_definitions,
    password_hash,
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
        ("ml.requests", "direct"), ("ml.events", "topic"), ("ml.dead-letter", "direct")}
    assert len(definitions["bindings"]) == len(topology().bindings)
    users = {u["name"] for u in definitions["users"]}
    assert users == {f"ml-dev-{s.name}" for s in load_catalog() if s.publishes or s.consumes}
    assert {p["user"] for p in definitions["permissions"]} == users
    assert all(u["tags"] == [] and u["hashing_algorithm"] == HASHING_ALGORITHM for u in definitions["users"])
    assert all("password" not in u for u in definitions["users"]), "only password hashes are written"
    assert not any(u.password in json.dumps(definitions) for u in topology().users)


def test_queue_arguments_keep_their_json_types() -> None:
    work = next(q for q in to_definitions(topology())["queues"] if q["name"] == "training.work")
    assert work["arguments"]["x-queue-type"] == "quorum"
    assert isinstance(work["arguments"]["x-delivery-limit"], int)
    assert isinstance(work["arguments"]["x-message-ttl"], int)


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
        assert credentials.username == f"ml-dev-{service}" and credentials.vhost == "ml-dev"
        assert passwords[credentials.username] == credentials.password


def test_artifacts_are_written_under_the_build_directory(tmp_path: Path) -> None:
    path = write_artifacts("dev", topology(), tmp_path)
    assert path == tmp_path / "rabbitmq-definitions.json"
    assert json.loads(path.read_text()) == to_definitions(topology())
    credentials = tmp_path / "rabbitmq-credentials.json"
    assert json.loads(credentials.read_text()) == local_credentials(topology())
    assert credentials.stat().st_mode & 0o077 == 0, "the local credentials file is private"


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
