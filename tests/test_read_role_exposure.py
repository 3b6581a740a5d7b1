"""What the read-only role of a pull request's preview can read of the broker's admin password.

A pull request's job of any branch assumes the read-only role, which decrypts every state it reads (a preview must).
The broker's own state keeps the generated admin password (the broker's ``users``), which stays the admin's until the
first rotation (the schedule does not rotate at once), and messaging's keeps it as its provider's configuration: the
role may read neither state (shared.dag.SECRET_STATE_LAYERS, shared.deploy_role.secret_state_denials).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.dag import (
    LAYER_UPSTREAMS,
    LAYERS,
    PUBLISHED_LAYERS,
    SECRET_STATE_LAYERS,
    downstream_closure,
    pull_request_layers,
)
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
    # a pull request's preview reads no such state: not its own, not an upstream's by StackReference (an upstream that
    # holds one is read from its published contract, shared.published, with PLATFORM_PUBLISHED_UPSTREAMS=1)
    for layer in pull_request_layers():
        assert layer not in holding, layer
        assert set(LAYER_UPSTREAMS[layer]) & set(holding) <= PUBLISHED_LAYERS, layer
    assert "compute" in pull_request_layers() and "compute" in downstream_closure(holding)
    said = read_role_step()
    assert "the broker's state holds the broker admin password as generated" in said, said
    assert "until the first rotation" in said and "again after a broker replacement" in said, said
    assert "may not read the broker's and messaging's states" in said, said


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_state_the_read_role_reads_holds_a_secret(env: str) -> None:
    """The read role decrypts whatever secret a state it reads holds (a preview needs the secrets provider's key), so
    only a denied state may hold one: a resource's secret input, a secret output, or, in a reader's state, a secret
    output of a stack it references (the state keeps a StackReference's outputs, the secrets as ciphertext of the
    reader's own provider: compute's holds broker's and messaging's outputs, and compute's state is readable)."""
    documents = synth_layers(env, *LAYERS)
    holding = {layer for layer, document in documents.items()
               if document["secret_outputs"] or any(r.get("secret_inputs") for r in document["resources"])}
    assert holding <= SECRET_STATE_LAYERS, sorted(holding - SECRET_STATE_LAYERS)
    for layer, document in documents.items():
        if layer in SECRET_STATE_LAYERS:
            continue
        for reference in document["stack_references"]:
            read = reference.split("/")[1]
            assert not documents[read]["secret_outputs"], (layer, reference, documents[read]["secret_outputs"])


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


def _denied_read(layer: str) -> str:
    """The CLI's line for a checkpoint read S3 refused (gocloud's blob error, S3's AccessDenied)."""
    return (f"error: failed to load checkpoint: blob (key \".pulumi/stacks/{layer}/dev.json\") "
            "(code=PermissionDenied): operation error S3: GetObject, https response error StatusCode: 403, "
            "RequestID: 7QXJ, api error "
            "AccessDenied: User: arn:aws:sts::111111111111:assumed-role/ci-read-only/preview-1 is not authorized to "
            f"perform: s3:GetObject on resource: \"arn:aws:s3:::acme-pulumi-state/.pulumi/stacks/{layer}/dev.json\" "
            "with an explicit deny in an identity-based policy\n")


@pytest.mark.parametrize("layer", sorted(SECRET_STATE_LAYERS))
def test_a_preview_refused_a_secret_state_says_why_and_with_which_role(layer: str) -> None:
    """A preview of broker, messaging or compute (whose StackReferences read both) with the read-only role is refused
    their state: the summary says that is on purpose and which role previews them, not a bare AccessDenied."""
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    from shared.orchestrate.report import DETAIL_LIMIT, failure_detail

    def detail(stack: str) -> str:
        return failure_detail(auto_errors.create_command_error(
            CommandResult(stdout="", stderr=_denied_read(stack), code=255)))

    said = detail(layer)
    assert len(said) <= DETAIL_LIMIT and not said.endswith("\u2026"), said
    assert f"reading the {layer} state was denied" in said and "deploy role" in said, said
    for skipped in set(LAYERS) - set(pull_request_layers()):
        assert skipped in said, (skipped, said)
    assert "was denied: the read-only role" not in detail("network"), "another state's refusal is no such case"


@pytest.mark.parametrize("layer", sorted(SECRET_STATE_LAYERS))
def test_a_state_read_no_policy_allows_keeps_the_cli_s_reason(layer: str) -> None:
    """A deploy role that lacks the state grant (no explicit deny: "no identity-based policy allows") is no pull
    request's preview: the summary keeps S3's own reason instead of blaming the read-only role."""
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    from shared.orchestrate.report import failure_detail

    text = _denied_read(layer).replace("with an explicit deny in an identity-based policy",
                                       "because no identity-based policy allows the s3:GetObject action")
    said = failure_detail(auto_errors.create_command_error(CommandResult(stdout="", stderr=text, code=255)))
    assert "read-only role" not in said and "AccessDenied" in said, said



def test_no_program_takes_a_secret_from_its_stack_s_config() -> None:
    """A stack's settings file (`stacks/<layer>/Pulumi.<env>.yaml`) is committed, and its `secure:` values open with
    the stack's data key, which the read-only role unwraps where the secrets provider is KMS: a secret a program read
    from its config would be readable by any branch's job. The layers read every credential from Secrets Manager
    (an external broker's admin: shared.components.broker.external_admin_secret_name); only the warning that the
    retired keys are still set looks at them (shared.components.broker._warn_of_retired_config)."""
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in sorted([*root.glob("stacks/*/__main__.py"), *(root / "shared").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("require_secret", "get_secret", "require_secret_object", "get_secret_object"):
                found.append(f"{path.relative_to(root)} {_enclosing_function(tree, node.lineno)}")
    assert found == ["shared/components/broker.py _warn_of_retired_config"], found


def _enclosing_function(tree: ast.AST, line: int) -> str:
    return next((node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                 and node.lineno <= line <= (node.end_lineno or node.lineno)), "<module>")
