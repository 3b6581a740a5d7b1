"""What the read-only role of a pull request's preview can read of the broker's admin password, as the README says.

The role decrypts every stack's state (a preview must), so whatever a layer's state holds as a secret, a job of any
branch holds too. The README's trust statement (CI/CD, step 3) must name each place the synth puts the admin
password, not messaging's alone: the broker's own state keeps the generated password (the broker's ``users``), and
that password stays the admin's until the first rotation, since the schedule does not rotate at once.
"""

from __future__ import annotations

import pytest

from tests.readme_helpers import readme_rendered
from tests.synth_helpers import of_type, synth_layers

BROKER = "aws:mq/broker:Broker"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
PASSWORD = "random:index/randomPassword:RandomPassword"


def trust_statement() -> str:
    """The README's paragraph on whom the read-only role trusts and what such a job reads."""
    text = readme_rendered()
    start = text.index("Mind whom this trusts")
    return text[start:text.index("preview from `main` only", start)]


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
    said = trust_statement()
    assert "The broker's own state holds the admin password as generated" in said, said
    assert "until the first rotation" in said and "again after a broker replacement" in said, said
    assert "as long as this role reads the broker's and messaging's states" in said, said
