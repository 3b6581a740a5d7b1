"""Orchestration as a specification: which layers run, in what order, together, and what a failure stops.

These tests inject a recording runner in place of the Pulumi Automation API (the real runner is
exercised against a fake `pulumi` CLI in test_orchestrate_automation.py).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.automation import errors as auto_errors
from pulumi.automation._cmd import CommandResult

from shared.dag import LAYER_UPSTREAMS, LAYERS
from shared.envs import EnvConfig
from shared.orchestrate.cli import main
from shared.orchestrate.model import Action, LayerResult, Operation, OutputSink, Status
from shared.orchestrate.plan import make_plan
from shared.orchestrate.report import DETAIL_LIMIT, describe_changes, failure_detail
from tests.aws_helpers import ReleasedEverywhere
from tests.loopback import Listener


@pytest.fixture(autouse=True)
def management_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """A real management endpoint on loopback that every RecordingRunner's stacks name (the reach probe
    connects to it before messaging runs)."""
    with Listener() as listener:
        monkeypatch.setattr(RecordingRunner, "endpoint", listener.url)
        yield listener


class RecordingRunner:
    """Records what ran, on which thread, when; fails the layers it is told to fail. Every stack's
    outputs name the management endpoint ``endpoint``, and those of a layer in ``deployed`` add its outputs there."""

    endpoint = "https://127.0.0.1:9"

    def __init__(self, fail: Sequence[str] = (), slow: Sequence[str] = (), meet: Sequence[str] = (),
                 delay_s: float = 0.02, deployed: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.fail = set(fail)
        self.deployed = dict(deployed or {})
        # Layers in `slow` finish only after a failing layer has failed (an event, not a race).
        self.slow = set(slow)
        self.failed = threading.Event()
        # Layers in `meet` wait for each other inside run(): that only completes if they run at once.
        self.meeting = threading.Barrier(len(meet), timeout=5) if meet else None
        self.meet = set(meet)
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []  # ("start"|"end", layer)
        self.threads: dict[str, str] = {}
        self.active = 0
        self.max_active = 0
        self.prepared: tuple[str, list[str], Operation] | None = None
        self.interrupts = 0  # asked to terminate the running pulumi at once
        self.told = 0  # interrupts the runner was told of

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> None:
        self.prepared = (env.name, list(layers), operation)

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        return {"management_endpoint": self.endpoint, **self.deployed.get(layer, {})}

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        return self.stack_outputs(layer, env) is not None

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        with self.lock:
            self.events.append(("start", layer))
            self.threads[layer] = threading.current_thread().name
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            on_output(f"{operation.label} {layer} working")
            if self.meeting is not None and layer in self.meet:
                self.meeting.wait()
            if layer in self.slow:
                self.failed.wait(timeout=5)
            time.sleep(self.delay_s)
            if layer in self.fail:
                raise RuntimeError(f"{layer} exploded")
            return LayerResult(layer, Status.SUCCEEDED, {"create": 2, "same": 1})
        finally:
            with self.lock:
                self.active -= 1
                self.events.append(("end", layer))
            if layer in self.fail:
                self.failed.set()

    def interrupt(self, terminate: bool = False) -> None:
        self.told += 1  # every interrupt: start nothing new
        if terminate:
            self.interrupts += 1

    def started(self) -> list[str]:
        return [layer for kind, layer in self.events if kind == "start"]

    def index(self, kind: str, layer: str) -> int:
        return self.events.index((kind, layer))


def run(argv: list[str], runner: RecordingRunner) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, runner=runner, out=out, confirm=lambda prompt: True, images=ReleasedEverywhere())
    return code, out.getvalue()


def refused_up(env: str, runner: RecordingRunner, capsys: pytest.CaptureFixture[str]) -> str:
    """`up ENV --yes` is refused before any layer runs (exit 2, nothing started, "Nothing was run"); what it printed
    to stderr."""
    code, out = run(["up", env, "--yes"], runner)
    assert code == 2 and runner.started() == [], out
    error = capsys.readouterr().err
    assert "Nothing was run" in error
    return error


def summary_rows(output: str) -> dict[str, str]:
    """layer -> its summary-table row (rich draws rows as `│ layer │ result │ ...`)."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if cells and cells[0] in LAYERS:
            rows[cells[0]] = line
    return rows


# -- order -------------------------------------------------------------------------------------------


def test_up_runs_every_layer_after_all_the_layers_it_reads() -> None:
    runner = RecordingRunner()
    code, output = run(["up", "dev", "--yes"], runner)
    assert code == 0
    assert sorted(runner.started()) == sorted(LAYERS)
    for layer, upstreams in LAYER_UPSTREAMS.items():
        for upstream in upstreams:
            assert runner.index("end", upstream) < runner.index("start", layer), f"{layer} before {upstream} ended"
    assert "up dev: network -> discovery + broker -> mesh + messaging -> compute" in output


def test_destroy_runs_in_reverse_every_layer_after_all_its_readers() -> None:
    runner = RecordingRunner()
    code, output = run(["destroy", "dev", "--yes"], runner)
    assert code == 0
    for layer, upstreams in LAYER_UPSTREAMS.items():
        for upstream in upstreams:
            assert runner.index("end", layer) < runner.index("start", upstream), f"{upstream} destroyed before {layer}"
    assert runner.started()[0] == "compute" and runner.started()[-1] == "network"
    assert "destroy dev: compute -> mesh + messaging -> discovery + broker -> network" in output


def test_preview_refresh_and_destroy_preview_need_no_confirmation_and_pass_the_operation() -> None:
    for argv, operation in ((["preview", "staging"], Operation(Action.PREVIEW)),
                            (["refresh", "staging", "--preview-only"], Operation(Action.REFRESH, preview_only=True)),
                            (["destroy", "staging", "--preview-only"], Operation(Action.DESTROY, preview_only=True))):
        runner = RecordingRunner()
        code = main(argv, runner=runner, out=io.StringIO(), confirm=lambda prompt: pytest.fail("asked"))
        assert code == 0
        assert runner.prepared is not None and runner.prepared[0] == "staging"
        assert runner.prepared[2] == operation


# -- concurrency -------------------------------------------------------------------------------------


def test_layers_of_one_level_run_at_the_same_time() -> None:
    # discovery and broker both read only network: they meet inside run(), which would time out
    # (and fail both layers) if one waited for the other to finish.
    runner = RecordingRunner(meet=["discovery", "broker"])
    code, output = run(["up", "dev", "--yes"], runner)
    assert code == 0, output
    assert runner.max_active == 2
    assert runner.threads["discovery"] != runner.threads["broker"]
    both_started = max(runner.index("start", "discovery"), runner.index("start", "broker"))
    first_end = min(runner.index("end", "discovery"), runner.index("end", "broker"))
    assert both_started < first_end


def test_parallel_one_runs_a_level_one_layer_at_a_time() -> None:
    runner = RecordingRunner()
    code, _ = run(["up", "dev", "--yes", "--parallel", "1"], runner)
    assert code == 0
    assert runner.max_active == 1


def test_live_output_lines_carry_their_layer() -> None:
    runner = RecordingRunner()
    _, output = run(["up", "dev", "--yes"], runner)
    assert "[messaging] up messaging working" in output
    assert "[network  ] up network working" in output


# -- failures ----------------------------------------------------------------------------------------


def test_a_failed_layer_skips_its_dependents_while_its_running_sibling_finishes() -> None:
    runner = RecordingRunner(fail=["discovery"], slow=["broker"])
    code, output = run(["up", "dev", "--yes"], runner)
    assert code == 1
    assert "mesh" not in runner.started() and "compute" not in runner.started()
    # broker was running when discovery failed (it waits for that) and was allowed to finish
    assert runner.index("end", "discovery") < runner.index("end", "broker")
    rows = summary_rows(output)
    assert "succeeded" in rows["network"] and "succeeded" in rows["broker"]
    assert "failed" in rows["discovery"] and "discovery exploded" in rows["discovery"]
    assert "skipped" in rows["mesh"] and "needs discovery" in rows["mesh"]
    assert "skipped" in rows["compute"]


def test_a_failure_stops_queued_siblings_that_had_not_started() -> None:
    runner = RecordingRunner(fail=["discovery"])
    code, output = run(["up", "dev", "--yes", "--parallel", "1"], runner)
    assert code == 1
    assert runner.started() == ["network", "discovery"]
    rows = summary_rows(output)
    assert "not-run" in rows["broker"]
    assert "skipped" in rows["mesh"] and "skipped" in rows["compute"]


class ProtectingRunner(RecordingRunner):
    """A RecordingRunner whose states mark resources protect in ``protected`` layers (as prod's exports do)."""

    def __init__(self, protected: Sequence[str]) -> None:
        super().__init__()
        self.protected = set(protected)

    def protected_urns(self, layer: str, env: EnvConfig) -> list[str]:
        return [f"urn:pulumi:{env.name}::{layer}::rabbitmq:index/queue:Queue::q{i}" for i in range(4)] \
            if layer in self.protected else []


def test_a_destroy_whose_layers_hold_protected_resources_deletes_nothing_at_all(
        capsys: pytest.CaptureFixture[str]) -> None:
    # compute (released, or already destroyed) holds nothing protected, messaging does: compute, and mesh beside
    # messaging, were destroyed before messaging's own destroy stopped at its protected queues
    runner = ProtectingRunner(["messaging"])
    code, _ = run(["destroy", "prod", "--yes"], runner)
    assert code == 1
    assert runner.started() == []
    err = capsys.readouterr().err
    assert "destroy prod: nothing was deleted: the state of messaging marks resources protect" in err
    assert ("messaging: 4 protected ('urn:pulumi:prod::messaging::rabbitmq:index/queue:Queue::q0', "
            "'urn:pulumi:prod::messaging::rabbitmq:index/queue:Queue::q1', "
            "'urn:pulumi:prod::messaging::rabbitmq:index/queue:Queue::q2' and 1 more)") in err
    assert "`pulumi state unprotect --stack organization/messaging/prod --all --yes` in stacks/messaging" in err


def test_protected_resources_outside_the_destroy_or_in_its_preview_stop_nothing() -> None:
    runner = ProtectingRunner(["network", "broker"])
    code, output = run(["destroy", "prod", "--yes", "--layers", "mesh"], runner)  # mesh and compute only
    assert code == 0, output
    assert sorted(runner.started()) == ["compute", "mesh"]
    runner = ProtectingRunner(["messaging"])
    code, output = run(["destroy", "prod", "--preview-only"], runner)  # each layer's preview says it itself
    assert code == 0, output


def test_a_failed_destroy_keeps_what_the_layer_reads_and_stops_the_rest() -> None:
    runner = RecordingRunner(fail=["mesh"])
    code, output = run(["destroy", "dev", "--yes", "--parallel", "1"], runner)
    assert code == 1
    assert runner.started() == ["compute", "mesh"]
    rows = summary_rows(output)
    assert "succeeded" in rows["compute"] and "failed" in rows["mesh"]
    # mesh still exists and reads discovery (and, through it, network): destroying those would break it
    assert "skipped" in rows["discovery"] and "skipped" in rows["network"]
    assert "not-run" in rows["messaging"]


def test_a_failed_first_layer_runs_nothing_else() -> None:
    runner = RecordingRunner(fail=["network"])
    code, output = run(["up", "prod", "--yes"], runner)
    assert code == 1
    assert runner.started() == ["network"]
    rows = summary_rows(output)
    assert all("skipped" in rows[layer] for layer in LAYERS if layer != "network")


# -- --layers ----------------------------------------------------------------------------------------


def test_layers_for_up_adds_what_they_read_and_says_why() -> None:
    runner = RecordingRunner()
    code, output = run(["up", "dev", "--yes", "--layers", "mesh"], runner)
    assert code == 0
    assert runner.prepared is not None and runner.prepared[1] == ["network", "discovery", "mesh"]
    assert runner.started() == ["network", "discovery", "mesh"]
    assert "+ network: discovery reads network's outputs" in output
    assert "+ discovery: mesh reads discovery's outputs" in output


def test_layers_for_destroy_adds_what_reads_them_and_destroys_it_first() -> None:
    runner = RecordingRunner()
    code, output = run(["destroy", "dev", "--yes", "--layers", "discovery"], runner)
    assert code == 0
    assert runner.started() == ["compute", "mesh", "discovery"]
    assert "+ mesh: mesh reads discovery, so it is destroyed first" in output
    assert "+ compute:" in output


def test_layers_already_closed_under_the_dag_add_nothing() -> None:
    runner = RecordingRunner()
    code, output = run(["preview", "dev", "--layers", "network,broker,messaging"], runner)
    assert code == 0
    assert runner.started() == ["network", "broker", "messaging"]
    assert "added" not in output


def test_plan_levels_follow_the_dag() -> None:
    plan = make_plan(Operation(Action.UP), None)
    assert plan.levels == (("network",), ("discovery", "broker"), ("mesh", "messaging"), ("compute",))
    assert make_plan(Operation(Action.DESTROY), None).levels == tuple(reversed(plan.levels))


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["up", "dev", "--yes", "--layers", "network,database"], "unknown layer(s) database"),
    (["up", "dev", "--yes", "--layers", " , "], "--layers"),
    (["up", "dev", "--yes", "--parallel", "0"], "--parallel"),
    (["up", "dev", "--preview-only"], "--preview-only"),
    (["preview", "dev", "--yes"], "--yes applies to up, destroy and refresh only"),
    (["preview", "dev", "--local-state"], "--local-state applies to up, destroy and refresh only"),
    (["deploy", "dev"], "invalid choice"),
    (["up", "qa", "--yes"], "unknown environment 'qa'"),
])
def test_bad_input_exits_2_and_runs_nothing(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    runner = RecordingRunner()
    assert main(argv, runner=runner, out=io.StringIO()) == 2
    assert message in capsys.readouterr().err
    assert runner.started() == [] and runner.prepared is None


def test_a_broken_env_file_stops_everything_before_any_runner(edit_env, capsys: pytest.CaptureFixture[str]) -> None:
    edit_env("dev", lambda data: data["network"].update(az_count=0))
    runner = RecordingRunner()
    assert main(["up", "dev", "--yes"], runner=runner, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "dev.yaml" in err and "network.az_count" in err
    assert runner.prepared is None


def _broken_qa(env_dir: Path) -> None:
    """A new env file (README, "Add an environment") with a schema error, taking its images from nobody."""
    data = yaml.safe_load((env_dir / "staging.yaml").read_text())
    data.update(account_id="444444444444")
    data["policy"]["baseline"] = "staging"
    data["network"].update(cidr="10.40.0.0/16", az_count="3")
    data["compute"].pop("image_source", None)
    (env_dir / "qa.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("argv, broken, why", [
    (["up", "dev", "--yes"], "qa",
     "dev replicates its images to each env whose compute.image_source is dev, so it reads every env file: "),
    (["preview", "dev", "--layers", "compute"], "qa", "dev replicates its images"),
    (["preview", "staging"], "dev", "staging receives its images from dev (its compute.image_source): "),
])
def test_an_env_file_compute_reads_for_image_replication_stops_the_run_before_any_runner_saying_why(
        env_dir: Path, edit_env, capsys: pytest.CaptureFixture[str], argv: list[str], broken: str, why: str) -> None:
    """dev's compute reads every other env file (its replication destinations), staging's its image source's: a bad
    one stops the run where a bad env file of its own would, before the backend's, credentials' and account's
    checks, and says why the run reads it."""
    if broken == "qa":
        _broken_qa(env_dir)
    else:
        edit_env(broken, lambda data: data["network"].update(az_count="3"))
    runner = RecordingRunner()
    assert main(argv, runner=runner, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert why in err and f"{broken}.yaml: network.az_count: Input should be a valid integer" in err
    assert runner.prepared is None


def test_a_run_without_compute_does_not_read_the_other_env_files(env_dir: Path) -> None:
    _broken_qa(env_dir)
    runner = RecordingRunner()
    run(["up", "dev", "--yes", "--layers", "network"], runner)
    assert runner.prepared is not None and runner.prepared[1] == ["network"]


def test_a_released_public_service_without_a_public_gateway_is_noted(edit_env: Any) -> None:
    """No shipped env has compute.public_gateway (it needs an ACM certificate of the user's): the catalog's public
    `gateway` then has no load balancer and nothing outside the VPC reaches it. up and preview with compute say so;
    a run without compute, or an env with the gateway, does not."""
    said = "compute.public_gateway is off, so gateway (`public` in the catalog) gets no load balancer"
    for argv in (["up", "staging", "--yes"], ["preview", "staging"]):
        code, output = run(argv, RecordingRunner())
        assert code == 0 and f"staging.yaml: {said}" in output, output
    assert said not in run(["up", "staging", "--yes", "--layers", "network"], RecordingRunner())[1]
    edit_env("staging", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn=f"arn:aws:acm:eu-west-1:{data['account_id']}:certificate/abc-123"))
    assert said not in run(["preview", "staging"], RecordingRunner())[1]


# -- confirmation ------------------------------------------------------------------------------------


def test_changing_infrastructure_asks_first_and_a_no_runs_nothing() -> None:
    runner = RecordingRunner()
    prompts: list[str] = []

    def answer_no(prompt: str) -> bool:
        prompts.append(prompt)
        return False

    out = io.StringIO()
    code = main(["destroy", "dev"], runner=runner, out=out, confirm=answer_no, images=ReleasedEverywhere())
    assert code == 1
    assert runner.started() == []
    assert "destroy changes real infrastructure of dev" in prompts[0]


def test_without_a_terminal_and_without_yes_it_refuses(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO())
    runner = RecordingRunner()
    assert main(["up", "dev"], runner=runner, out=io.StringIO(), images=ReleasedEverywhere()) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert runner.started() == []


# -- reporting ---------------------------------------------------------------------------------------


def test_summary_table_lists_every_layer_with_result_changes_and_duration() -> None:
    runner = RecordingRunner()
    _, output = run(["up", "dev", "--yes"], runner)
    rows = summary_rows(output)
    assert list(rows) == ["network", "discovery", "broker", "mesh", "messaging", "compute"]
    for row in rows.values():
        assert "succeeded" in row and "create 2, same 1" in row and row.rstrip(" │").endswith("s")


def test_refresh_preview_reports_drift_in_words() -> None:
    drift = Operation(Action.REFRESH, preview_only=True)
    assert describe_changes({"same": 9}, drift) == "no drift"
    assert describe_changes({"refresh": 4, "same": 9}, drift) == "no drift"
    assert describe_changes({"update": 2, "delete": 1, "same": 9}, drift) == "drift: update 2, delete 1"
    assert describe_changes({"create": 1, "same": 3}, Operation(Action.UP)) == "create 1, same 3"
    assert describe_changes({}, Operation(Action.PREVIEW)) == "no changes"


def command_error(stdout: str, stderr: str, code: int = 255) -> auto_errors.CommandError:
    """What the Automation API raises when `pulumi` exits non-zero (it classifies by the text, too)."""
    return auto_errors.create_command_error(CommandResult(stdout=stdout, stderr=stderr, code=code))


DIAGNOSTICS = ("Updating (organization/compute/dev)\n\n"
               "Diagnostics:\n  pulumi:pulumi:Stack (compute-dev):\n    error: update failed\n\n"
               "  aws:ecs:Service (api):\n    error: creating ECS Service (api): InvalidParameterException: "
               "The specified platform does not satisfy the task definition's required capabilities.\n\n"
               "Resources:\n    12 unchanged\n\nDuration: 14s\n")


def test_a_failure_the_cli_wrote_only_to_stdout_is_described_by_its_telling_error_line() -> None:
    detail = failure_detail(command_error(DIAGNOSTICS, ""))
    assert detail == ("CommandError: error: creating ECS Service (api): InvalidParameterException: The specified "
                      "platform does not satisfy the task definition's required capabilities.")


def test_stderr_error_lines_come_first_and_the_last_two_are_kept() -> None:
    stderr = "warning: A new version of Pulumi is available\nerror: first\nerror: second\nerror: third\n"
    assert failure_detail(command_error(DIAGNOSTICS, stderr)) == "CommandError: error: second | error: third"
    # the CLI's generic closing line on stderr says less than the diagnostics on stdout
    generic = failure_detail(command_error(DIAGNOSTICS, "error: update failed\n"))
    assert "InvalidParameterException" in generic
    # nothing but generic words anywhere: those are still better than the class name
    assert failure_detail(command_error("", "error: preview failed\n")) == "CommandError: error: preview failed"


def test_a_failure_without_error_lines_falls_back_to_the_last_line_then_the_exit_code() -> None:
    assert failure_detail(command_error("Previewing...\nconnection reset by peer\n", "")) == \
        "CommandError: connection reset by peer"
    assert failure_detail(command_error("", "", code=137)) == \
        "CommandError: pulumi exited with code 137 and printed nothing"
    assert failure_detail(RuntimeError("boom\nthe end")) == "RuntimeError: the end"


def test_the_failure_detail_is_bounded_and_carries_no_secret() -> None:
    stdout = ("Diagnostics:\n    error: " + "x" * 5000 + "\n")
    detail = failure_detail(command_error(stdout, ""))
    assert len(detail) == DETAIL_LIMIT and detail.endswith("\u2026")
    environ = {"PULUMI_CONFIG_PASSPHRASE": "correct horse battery", "HOME": "/home/ci"}
    leaky = ("    error: program failed: passphrase correct horse battery rejected for /home/ci\n"
             "    error: bad config rabbitmq:password=hunter2 url=amqps://admin:pw123@b-1.mq.example.com:5671 "
             "secure value v1:AbCdEfGh12345678:ZYXWvuts98765432+/=\n")
    detail = failure_detail(command_error(leaky, ""), environ=environ)
    for secret in ("correct horse battery", "hunter2", "pw123", "AbCdEfGh12345678"):
        assert secret not in detail, detail
    assert "/home/ci" in detail and "amqps://[redacted]@b-1.mq.example.com:5671" in detail


def test_the_summary_table_shows_a_bracketed_detail_as_written() -> None:
    """rich reads "[secret]" as markup and dropped it from the table."""
    runner = RecordingRunner(fail=["network"])
    runner_run = runner.run

    def run_layer(layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        if layer == "network":
            raise command_error("    error: vpc cidr [secret] overlaps\n", "")
        return runner_run(layer, env, operation, on_output)

    runner.run = run_layer  # type: ignore[method-assign]
    _, output = run(["up", "dev", "--yes"], runner)
    assert "CommandError: error: vpc cidr [secret] overlaps" in summary_rows(output)["network"]
