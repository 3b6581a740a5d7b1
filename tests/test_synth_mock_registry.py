"""A component registers the offline answers of a resource type the built-in mock tables do not know
(``register_mock``), so a new layer needs no edit of ``shared/synth/mocks.py``; a program that fails on
a value the mocks could not answer is told which types got generic answers only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.synth.engine import SynthError, synth_program
from shared.synth.mocks import _REGISTERED, MockRequest, ResourceMock, register_mock, unregister_mock

# A type the built-in tables do not answer (a new layer's Kinesis stream); its computed output is read.
QUEUE = "aws:kinesis/stream:Stream"
PROGRAM = '''
import pulumi
import pulumi_aws as aws

queue = aws.kinesis.Stream("audit", shard_count=1)
pulumi.export("queue_arn", queue.arn)
pulumi.export("queue_host", queue.name.apply(lambda name: name.split("-")[0]))
'''


def queue_outputs(request: MockRequest) -> dict[str, Any]:
    return {}


@pytest.fixture
def program(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: audit\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    return tmp_path


@pytest.fixture(autouse=True)
def unregistered() -> Iterator[None]:
    """No answers for QUEUE during a test, whatever a layer's component registered earlier in the run
    (a layer may well use Kinesis: README, "Add a layer"); that registration is restored after."""
    before = _REGISTERED.get(QUEUE)
    unregister_mock(QUEUE)
    yield
    unregister_mock(QUEUE)
    if before is not None:
        register_mock(QUEUE, before)


@pytest.fixture
def registered() -> Iterator[None]:
    # Kinesis stream ARNs: arn:aws:kinesis:<region>:<account>:stream/<name>.
    register_mock(QUEUE, ResourceMock(arn="stream/{name}", autonamed=True, computed=queue_outputs))
    yield
    unregister_mock(QUEUE)


def test_an_unknown_type_read_by_the_program_fails_naming_the_type_and_the_fix(program: Path) -> None:
    with pytest.raises(SynthError, match=r"generic mock answers only .*aws:kinesis/stream:Stream.*register_mock"):
        synth_program(program, region="eu-west-1")


def test_answers_registered_beside_a_component_are_used(program: Path, registered: None) -> None:
    document = synth_program(program, region="eu-west-1", account_id="111111111111")
    # auto-named like the provider does (<name>-<7 hex>), and the ARN ends in that name
    assert re.fullmatch(r"arn:aws:kinesis:eu-west-1:111111111111:stream/audit-[0-9a-f]{7}",
                        document["outputs"]["queue_arn"])
    assert document["outputs"]["queue_host"] == "audit"


def test_registering_again_is_a_no_op_but_different_answers_are_refused(registered: None) -> None:
    register_mock(QUEUE, ResourceMock(arn="stream/{name}", autonamed=True, computed=queue_outputs))
    with pytest.raises(ValueError, match="already has different registered mock answers"):
        register_mock(QUEUE, ResourceMock(arn="queue/{id}"))


def test_a_type_the_built_in_tables_answer_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="built-in tables"):
        register_mock("aws:ec2/vpc:Vpc", ResourceMock(id_prefix="vpc"))


def test_an_upstream_stack_without_outputs_is_not_blamed_on_the_mock_answers(tmp_path: Path) -> None:
    # The upstream's outputs come from its own synth (or its deployed stack), not from this program's mock answers:
    # the error says which layer to deploy first and nothing of the types answered generically here.
    from shared.contracts import StackContractError

    (tmp_path / "Pulumi.yaml").write_text("name: audit\nruntime: python\n")
    (tmp_path / "__main__.py").write_text('''
import pulumi_aws as aws
from shared.contracts import StackContractError

aws.kinesis.Stream("audit", shard_count=1)
raise StackContractError("layer 'audit' reads storage.bucket, but stack organization/storage/dev has no outputs: "
                         "deploy storage first")
''')
    with pytest.raises(StackContractError) as raised:
        synth_program(tmp_path, region="eu-west-1")
    assert "deploy storage first" in str(raised.value) and "generic mock answers" not in str(raised.value)
