"""One synth cannot change the outcome of another in the same process.

``pulumi up`` runs one program per process; the synth runs many (``nox -s synth -- dev staging``, the policy run of
every env, a test session). A program that fails leaves work behind -- outputs that failed, which the SDK keeps to
"pick up at program exit", and tasks still pending -- and that work must end with its own synth: run by the next one,
it failed that synth with the earlier program's error, even when the later program was fine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

from shared.synth.engine import SynthError, synth_function


def failing(message: str) -> Callable[[], None]:
    """A program that fails in an apply, with an output made while the engine waits for the program's outputs (a
    component whose children an apply creates), which fails after the first failure ended the wait."""

    def program() -> None:
        def fail(_: str) -> str:
            raise ValueError(message)

        def later(_: str) -> pulumi.Output[str]:
            return pulumi.Output.from_input("y").apply(fail)

        failed: pulumi.Output[str] = pulumi.Output.from_input("x").apply(fail)
        failed_later: pulumi.Output[str] = pulumi.Output.from_input("x").apply(later)
        del failed, failed_later  # the program does not use them: the engine waits for them all the same

    return program


def fine() -> None:
    pulumi.export("answer", pulumi.Output.from_input("fine").apply(str.upper))


def test_a_program_after_a_failed_one_gets_its_own_outcome() -> None:
    with pytest.raises(SynthError, match="ValueError: first program"):
        synth_function(failing("first program"))
    assert synth_function(fine)["outputs"] == {"answer": "FINE"}
    with pytest.raises(SynthError, match="ValueError: first program"):
        synth_function(failing("first program"))
    with pytest.raises(SynthError, match="ValueError: second program"):
        synth_function(failing("second program"))


def test_a_failed_program_leaves_no_task_on_the_callers_loop(own_event_loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(SynthError):
        synth_function(failing("failed"))
    assert asyncio.all_tasks(own_event_loop) == set()


@pytest.mark.usefixtures("own_event_loop")
def test_the_callers_pulumi_runtime_is_left_as_it_was() -> None:
    # A test that runs a program with the SDK's own mocks (pulumi.runtime.set_mocks) around a synth keeps its settings,
    # its root stack and its tracked outputs: the synth's runtime lives in a context of its own.
    class Nothing(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, object]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, object], None]:
            return {}, None

    pulumi_settings.ROOT.set(None)
    try:
        pulumi.runtime.set_mocks(Nothing(), project="callers-project", stack="callers-stack")
        before = (pulumi.get_project(), pulumi.get_stack(), pulumi_settings.ROOT.get(),
                  pulumi_settings.SETTINGS.outputs, pulumi_settings.SETTINGS.monitor)
        tracked = set(pulumi_settings.SETTINGS.outputs)
        with pytest.raises(SynthError):
            synth_function(failing("failed"), project="synth-project", stack="synth-stack")
        synth_function(fine, project="synth-project", stack="synth-stack")
        after = (pulumi.get_project(), pulumi.get_stack(), pulumi_settings.ROOT.get(),
                 pulumi_settings.SETTINGS.outputs, pulumi_settings.SETTINGS.monitor)
        assert after == before
        assert pulumi_settings.SETTINGS.outputs <= tracked  # none of the synths' (the caller's own may have resolved)
    finally:
        pulumi_settings.ROOT.set(None)


def test_a_program_that_fails_in_several_outputs_reports_the_first_every_time() -> None:
    # discovery run before network was ever deployed: every network field it reads fails. The error names the first it
    # made (the contract's first field), not whichever failed output a set of tasks ordered by address held first.
    from shared import REPO_ROOT
    from shared.contracts import NetworkContract
    from shared.errors import ContractError
    from shared.synth.engine import synth_program

    first = next(iter(NetworkContract.model_fields))
    for _ in range(4):
        with pytest.raises(ContractError) as caught:
            synth_program(REPO_ROOT / "stacks/discovery", stack="dev", layer="discovery", env="dev",
                          account_id="111111111111", region="eu-west-1", stack_outputs={})
        assert f"reads network.{first}, but stack organization/network/dev has no outputs" in str(caught.value)
        with pytest.raises(SynthError):
            synth_function(failing("in between"))
