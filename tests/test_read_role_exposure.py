"""What the read-only role of a pull request's preview can read of the broker's admin password.

A pull request's job of any branch assumes the read-only role, which decrypts every state it reads (a preview must).
The broker's own state keeps the generated admin password (the broker's ``users``), which stays the admin's until the
first rotation (the schedule does not rotate at once), and messaging's keeps it as its provider's configuration: the
role may read neither state (shared.dag.SECRET_STATE_LAYERS, shared.deploy_role.secret_state_denials).
"""

from __future__ import annotations

import pytest

from shared.dag import LAYERS, SECRET_STATE_LAYERS, downstream_closure, pull_request_layers
from tests.readme_helpers import readme_rendered
from tests.synth_helpers import of_type, synth_layers

BROKER = "aws:mq/broker:Broker"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
PASSWORD = "random:index/randomPassword:RandomPassword"


def read_role_step() -> str:
    """The README's step on the read-only role (CI/CD, step 3)."""
    text = readme_rendered()
    start = text.index("3. Read-only role per env")
    return " ".join(text[start:text.index("4. GitHub environments", start)].split())


#: Inputs that carry a RabbitMQ password into a state: the broker's users (Amazon MQ takes the admin at creation),
#: the RabbitMQ provider's configuration, a secret version's value.
PASSWORD_INPUTS = {BROKER: "users", "pulumi:providers:rabbitmq": "password",
                   "aws:secretsmanager/secretVersion:SecretVersion": "secretString"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_read_role_reads_no_state_that_holds_a_rabbitmq_password(env: str) -> None:
    documents = synth_layers(env, *LAYERS)
    holding = sorted({layer for layer, document in documents.items() for type_, key in PASSWORD_INPUTS.items()
                      if any(key in (r.get("inputs") or {}) for r in of_type(document, type_))})
    assert holding == sorted(SECRET_STATE_LAYERS), "the read role's denied states are exactly those holding one"
    assert not set(pull_request_layers()) & set(downstream_closure(holding))
    said = read_role_step()
    assert "the broker's state holds the broker admin password as generated" in said, said
    assert "until the first rotation" in said and "again after a broker replacement" in said, said
    assert "may not read the broker's and messaging's states" in said, said


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_broker_state_holds_the_admin_password_until_the_first_rotation(env: str) -> None:
    broker = synth_layers(env, "broker")["broker"]
    (generated,) = [r for r in of_type(broker, PASSWORD) if r["name"].endswith("-admin-password")]
    (mq,) = of_type(broker, BROKER)
    users = mq["inputs"]["users"]
    # The generated password is an input of the broker (Amazon MQ takes the RabbitMQ admin at creation only), so the
    # broker stack's state holds it, as it holds the RandomPassword's result.
    assert generated["inputs"]["length"] == len(users[0]["password"])
    rotations = of_type(broker, ROTATION)
    assert rotations, f"{env}: the broker admin rotates (messaging.credentials_rotation)"
    # Not rotated at once (botocore secretsmanager RotateSecretRequest.RotateImmediately): the generated password is
    # the admin's until the first scheduled rotation.
    assert all(r["inputs"]["rotateImmediately"] is False for r in rotations)
    assert "broker" in SECRET_STATE_LAYERS
