"""An interrupted deploy: Ctrl-C, SIGTERM or SIGHUP (to the orchestrator, or to its whole process group) during
`nox -s up` prints the per-layer status (done, interrupted, not started), exits 130, starts nothing new, and waits
for the running `pulumi` to cancel cleanly. `pulumi` runs in a process group of its own and gets the interrupt from
the orchestrator only, once, as a Ctrl-C; a second SIGINT (which Pulumi reads as "terminate now") only for the
operator's second Ctrl-C."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from shared.dag import order
from shared.envs import EnvConfig
from shared.orchestrate.cli import main
from shared.orchestrate.model import LayerResult, Operation, OutputSink, Status
from tests.aws_helpers import ReleasedEverywhere
from tests.test_orchestrate import management_api, summary_rows  # noqa: F401 - the fixture is autouse there

SECOND = order()[1]


class HangingRunner:
    """The first layer succeeds; the layers of the second level hang until cancelled (as a `pulumi up`
    does until it gets SIGINT); nothing else may start. Raises the signal itself once they hang."""

    def __init__(self, signum: int, endpoint: str) -> None:
        self.signum = signum
        self.endpoint = endpoint
        self.cancel = threading.Event()
        self.interrupts = 0
        self.started: list[str] = []
        self.lock = threading.Lock()

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> None:
        return None

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        return {"management_endpoint": self.endpoint}

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        return self.stack_outputs(layer, env) is not None

    def interrupt(self, terminate: bool = False) -> None:
        self.interrupts += 1
        self.cancel.set()

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        with self.lock:
            self.started.append(layer)
        if layer == order()[0]:
            return LayerResult(layer, Status.SUCCEEDED, {"create": 1})
        threading.Timer(0.2, lambda: os.kill(os.getpid(), self.signum)).start()
        assert self.cancel.wait(10), "pulumi was never asked to cancel"
        raise RuntimeError("update canceled")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_interrupted_up_reports_each_layer_and_exits_130(signum: int, management_api: Any,  # noqa: F811
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    runner = HangingRunner(signum, management_api.url)
    out = io.StringIO()
    code = main(["up", "dev", "--yes", "--parallel", "1"], runner=runner, out=out, confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 130
    rows = {layer: row.split("│")[2].strip() for layer, row in summary_rows(out.getvalue()).items()}
    assert rows[order()[0]] == "succeeded"
    assert rows[SECOND] == "interrupted"
    assert all(rows[layer] == "not-run" for layer in order()[2:]), rows
    assert runner.started == order()[:2], "nothing starts after the interrupt"
    assert runner.interrupts == 1, "the interrupt is passed on once, whichever the signal"
    assert "Traceback" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handlers are put back"


@contextlib.contextmanager
def _pulumi_and_bystander(tmp_path: Any) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """A child process named ``pulumi`` (a script: the kernel names its process after it) that writes
    ``cancelled`` to ``tmp_path/cancelled`` on SIGINT and exits 0, and a ``sleep`` beside it; both killed after."""
    marker = tmp_path / "cancelled"
    script = tmp_path / "pulumi"
    script.write_text(f"#!/bin/sh\ntrap 'echo cancelled > {marker}; exit 0' INT\nwhile :; do sleep 0.05; done\n")
    script.chmod(0o755)
    bystander = subprocess.Popen(["sleep", "30"])
    child = subprocess.Popen([str(script)])
    try:
        yield child, bystander
    finally:
        for process in (child, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()


def _interrupt_reaches_only(child: subprocess.Popen[bytes], bystander: subprocess.Popen[bytes],
                            tmp_path: Any) -> None:
    from shared.orchestrate.automation import AutomationRunner

    AutomationRunner().interrupt()
    assert child.wait(timeout=5) == 0 and (tmp_path / "cancelled").read_text().strip() == "cancelled"
    assert bystander.poll() is None, "only pulumi processes get the interrupt"


def test_the_real_runner_passes_the_interrupt_to_its_pulumi_processes_only(tmp_path: Any) -> None:
    from shared.orchestrate.automation import pulumi_children

    with _pulumi_and_bystander(tmp_path) as (child, bystander):
        deadline = time.monotonic() + 5
        while child.pid not in pulumi_children(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pulumi_children(os.getpid()) == [child.pid]
        _interrupt_reaches_only(child, bystander, tmp_path)


def _without_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The orchestrator's view of a machine without /proc (macOS): ``/proc`` names a folder that does not exist."""
    from pathlib import Path

    from shared.orchestrate import automation

    def path(*parts: Any) -> Path:
        return tmp_path / "no-proc" if parts == ("/proc",) else Path(*parts)

    monkeypatch.setattr(automation, "Path", path)


def _bsd_ps(tmp_path: Any, rows: str) -> str:
    """A PATH whose ``ps`` answers as macOS's BSD ps does to ``ps -A -o pid= -o ppid= -o comm=`` (right-aligned
    numbers, the executable's full path as comm) and refuses any GNU-only option; the rest of PATH as it was."""
    fake_bin = tmp_path / "bsd-bin"
    fake_bin.mkdir()
    (fake_bin / "ps").write_text(
        '#!/bin/sh\n[ "$*" = "-A -o pid= -o ppid= -o comm=" ] || { echo "ps: illegal option" >&2; exit 1; }\n'
        f"cat <<'ROWS'\n{rows}ROWS\n")
    (fake_bin / "ps").chmod(0o755)
    return f"{fake_bin}{os.pathsep}{os.environ['PATH']}"


def test_on_a_machine_without_proc_the_interrupt_still_reaches_the_pulumi_processes(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no /proc: a SIGTERM or SIGHUP (a closed terminal window, `kill`) made the relay raise
    FileNotFoundError('/proc') in the signal path, so the pulumi processes were never asked to cancel and the run ended
    in a traceback instead of waiting for them. Without /proc the children come from POSIX ``ps`` options, which
    BSD's ps takes too."""
    from shared.orchestrate import automation

    me = os.getpid()
    _without_proc(monkeypatch, tmp_path)
    with _pulumi_and_bystander(tmp_path) as (child, bystander):
        monkeypatch.setenv("PATH", _bsd_ps(tmp_path, f"    1     0 /sbin/launchd\n{child.pid:5d} {me:5d} "
                                                       f"/opt/homebrew/Cellar/pulumi/3.272.0/bin/pulumi\n"
                                                       f"{bystander.pid:5d} {me:5d} /bin/sleep\n"
                                                       f"{child.pid + 1:5d} {me:5d} <defunct>\n"))
        assert automation.pulumi_children(me) == [child.pid]
        time.sleep(0.2)  # the script's trap is set
        _interrupt_reaches_only(child, bystander, tmp_path)


def test_without_proc_the_real_ps_finds_the_pulumi_children(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from shared.orchestrate import automation

    pulumi = tmp_path / "pulumi"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", pulumi)  # a binary: comm is its file name everywhere
    child = subprocess.Popen([str(pulumi), "30"])
    _without_proc(monkeypatch, tmp_path)
    try:
        deadline = time.monotonic() + 5
        while child.pid not in automation.pulumi_children(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert automation.pulumi_children(os.getpid()) == [child.pid]
    finally:
        child.kill()
        child.wait()


# -- an interrupt between two pulumi commands (failure review F3) -------------------------------------------------


class SignalDuringChecks(ReleasedEverywhere):
    """compute's image checks, during which the operator presses Ctrl-C (or a SIGTERM arrives): no release tag is
    written, no pulumi runs."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum
        self.tagged = False

    def oversized(self, env: EnvConfig, images: Mapping[str, str]) -> list[Any]:
        # the last read before the release tags; prepare() asks it too, in the main thread, before any layer runs
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.2)  # as a real read takes a round trip: the scheduler is waiting for the layer by then
            os.kill(os.getpid(), self.signum)
            time.sleep(0.5)  # the main thread takes the signal and tells the runner
        return []

    def tag_release(self, env: EnvConfig, stop: Callable[[], bool] | None = None) -> list[Any]:
        self.tagged = True
        return []


class SignalDuringTagging(ReleasedEverywhere):
    """The interrupt arrives once gateway's release tag is written (ECR PutImage), before the next image's."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum
        self.stopped_before: list[str] = []

    def tag_release(self, env: EnvConfig, stop: Callable[[], bool] | None = None) -> list[Any]:
        from shared.release_tags import TagResult

        digest = env.release.images["gateway"]
        written = TagResult("gateway", "ml-platform/gateway", digest, digest, f"release_dev_{digest[7:]}", "tagged")
        # Real tagging takes network round trips: by then the scheduler waits for the layer, where it takes the signal
        # (one that arrived while it was still starting compute's thread would count compute as not started at all).
        time.sleep(0.2)
        os.kill(os.getpid(), self.signum)
        time.sleep(0.5)
        assert stop is not None
        self.stopped_before = [service for service in sorted(env.release.images) if service != "gateway" and stop()]
        return [written]


class RecordingRunner:
    """Runs nothing; records which layers were run and whether it was told of an interrupt."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.started: list[str] = []
        self.told: list[bool] = []

    def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> None:
        return None

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        return {"management_endpoint": self.endpoint}

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        return True

    def interrupt(self, terminate: bool = False) -> None:
        self.told.append(terminate)

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        self.started.append(layer)
        return LayerResult(layer, Status.SUCCEEDED, {"same": 1})


def _interrupted_compute_up(checks: ReleasedEverywhere, endpoint: str) -> tuple[RecordingRunner, str]:
    """compute's `up` alone, which ``checks`` interrupt: exit 130 and no update run; the runner and the output."""
    runner = RecordingRunner(endpoint)
    out = io.StringIO()
    code = main(["up", "dev", "--yes", "--layers", "compute", "--exact"], runner=runner, out=out,
                confirm=lambda prompt: True, images=checks)
    assert code == 130
    assert runner.started == []
    return runner, out.getvalue()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_compute_s_image_checks_starts_no_update(signum: int, management_api: Any,  # noqa: F811
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Before, the full update of compute started after the interrupt (nobody signalled it) and ran to its end."""
    checks = SignalDuringChecks(signum)
    runner, output = _interrupted_compute_up(checks, management_api.url)
    assert not checks.tagged  # nothing written to ECR by a layer reported not run
    assert runner.told == [False]  # told once, to cancel cleanly
    rows = {layer: row.split("│")[3].strip() for layer, row in summary_rows(output).items()}
    assert rows["compute"].startswith("interrupted (not-run: the run was interrupted during the image checks, before "
                                      "any"), rows  # "release tag was written; ..." on the table's next lines
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_the_release_tagging_says_which_tags_it_wrote(
        signum: int, management_api: Any, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """Before, the tagging went on through every image after the interrupt, and compute was reported "not run: ... the
    update did not start" although ECR had been written to."""
    checks = SignalDuringTagging(signum)
    _, output = _interrupted_compute_up(checks, management_api.url)
    assert checks.stopped_before == ["inference", "preprocess", "training"]  # no tag written after the interrupt
    live = [line for line in output.splitlines() if line.startswith("[compute") and "after" in line]
    assert live and "interrupted after" in live[-1] and "FAILED" not in live[-1], live
    assert "1 release tag(s) were written to dev's registry (ml-platform/gateway@sha256:" in " ".join(output.split())
    rows = {layer: row.split("│")[3].strip() for layer, row in summary_rows(output).items()}
    assert rows["compute"].startswith("interrupted (interrupted: interrupted before the update: 1 release tag"), rows
    assert "Traceback" not in capsys.readouterr().err


def test_the_real_runner_starts_no_pulumi_command_once_interrupted(tmp_path: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.envs import load_env
    from shared.orchestrate.automation import AutomationRunner
    from shared.orchestrate.model import Action
    from tests.test_orchestrate_automation import install_fake_cli

    cli = install_fake_cli(tmp_path, monkeypatch)
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    runner.interrupt()
    for action in (Action.UP, Action.PREVIEW, Action.DESTROY, Action.REFRESH):
        result = runner.run("network", load_env("dev"), Operation(action), lambda line: None)
        assert result.status is Status.NOT_RUN and "interrupted before" in result.detail, result
    assert cli.calls() == []


def test_a_second_ctrl_c_terminates_and_a_signal_delivered_twice_does_not() -> None:
    """nox passes a SIGTERM/SIGHUP on to this process again, so one group-wide signal arrives twice: not a second
    request. A second Ctrl-C is the operator's "stop now", which pulumi takes a second SIGINT for
    (cancellation_scope.go), as it would in a terminal."""
    from shared.orchestrate.model import RunInterrupted
    from shared.orchestrate.scheduler import Interruption

    class Quiet:
        def line(self, layer: str, text: str) -> None:
            return None

    def told(*errors: KeyboardInterrupt) -> list[bool]:
        runner = RecordingRunner("https://127.0.0.1:9")
        interruption = Interruption(runner, Quiet())  # type: ignore[arg-type]
        for error in errors:
            interruption.record(error, ["compute"])
        return runner.told

    assert told(RunInterrupted("SIGTERM"), RunInterrupted("SIGTERM")) == [False, False]
    assert told(KeyboardInterrupt(), RunInterrupted("SIGHUP")) == [False, False]  # the terminal closed after a Ctrl-C
    assert told(KeyboardInterrupt(), KeyboardInterrupt()) == [False, True]
    assert told(RunInterrupted("SIGTERM"), KeyboardInterrupt()) == [False, True]


def test_progress_to_a_terminal_that_hung_up_loses_the_lines_not_the_run() -> None:
    """The lines come from the threads that drain pulumi's output: one raising EIO would stop draining, and pulumi
    would block on a full pipe mid-update instead of finishing its cancel."""
    from shared.orchestrate.scheduler import Progress

    class HungUp(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

    progress = Progress(HungUp(), ["network"])
    sink = progress.sink("network")
    for _ in range(3):
        sink("update of network (dev) started")
    assert isinstance(progress.lost, OSError) and progress.lost.errno == 5


def test_a_run_started_with_sighup_ignored_keeps_it_ignored() -> None:
    """`nohup nox -s up ...`: the run is meant to outlive the session; its SIGHUP handler would cancel it at logout."""
    from shared.orchestrate.cli import signals_interrupt

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- a signal to the whole process group (a terminal, GNU timeout, a closed SSH session) ------------------------

_ORCHESTRATOR = """\
import sys
from pathlib import Path

from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from tests.aws_helpers import AccountReady, ReleasedEverywhere

sys.exit(main(sys.argv[2:], runner=AutomationRunner(policy_config_dir=Path(sys.argv[1])),
              images=ReleasedEverywhere(), account=AccountReady(), confirm=lambda prompt: True))
"""


_NOX = """\
import os
import sys
from pathlib import Path

from shared.forwarding import run_forwarding_signals

sys.exit(run_forwarding_signals(sys.argv[1:], Path.cwd(), os.environ))
"""


@pytest.mark.parametrize(("signals", "via_nox"), [
    (["SIGTERM"], False), (["SIGHUP"], False), (["SIGINT"], False), (["SIGTERM", "SIGTERM"], False),
    (["SIGINT", "SIGINT"], False), (["SIGTERM"], True), (["SIGHUP"], True), (["SIGINT"], True)],
    ids=lambda value: "+".join(value) if isinstance(value, list) else ("under nox" if value else "alone"))
def test_a_signal_to_the_whole_process_group_reaches_pulumi_once_as_a_ctrl_c(signals: list[str], via_nox: bool,
                                                                              tmp_path: Any) -> None:
    """The orchestrator, started as a terminal starts a job (a process group, here a session, of its own), runs a
    real `up` through the fake CLI, whose preview hangs; each signal then goes to the whole group, as a terminal's
    Ctrl-C, a closed terminal's SIGHUP or GNU timeout's SIGTERM do. Before, the CLI got the group's signal and the
    relay's SIGINT: two signals, "terminate now" (cancellation_scope.go), and SIGHUP killed it outright. Now it
    gets one SIGINT and cancels cleanly; only the operator's second Ctrl-C terminates it. Under nox (its forwarding,
    shared.forwarding) a SIGTERM/SIGHUP reaches the orchestrator twice, a millisecond apart: the second arrived while
    the first was being handled, and its exception kept the runner from ever being told (pulumi got no signal and
    the layer's update started after the hang-up)."""
    import json
    import sys

    from shared import REPO_ROOT
    from tests.test_orchestrate_automation import FAKE_CLI

    bin_dir, state = tmp_path / "bin", tmp_path / "fake-state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "pulumi").write_text(f"#!{sys.executable}\n" + FAKE_CLI.read_text())
    (bin_dir / "pulumi").chmod(0o755)
    environ = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_PULUMI_DIR": str(state),
               "FAKE_PULUMI_DELAY": "60", "PULUMI_BACKEND_URL": (tmp_path / "backend").as_uri(),
               "PULUMI_CONFIG_PASSPHRASE": "correct horse battery staple", "PYTHONPATH": str(REPO_ROOT)}
    for name in ("PULUMI_CONFIG_PASSPHRASE_FILE", "FAKE_PULUMI_FAIL", "FAKE_PULUMI_FAIL_STDOUT"):
        environ.pop(name, None)
    log = state / "calls.jsonl"

    def events() -> list[dict[str, Any]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def up_events() -> list[str]:  # of the update's preview: the first command that takes FAKE_PULUMI_DELAY
        return [e["event"] for e in events() if e["args"][:1] in (["preview"], ["up"])]

    command = [sys.executable, "-c", _ORCHESTRATOR, str(tmp_path / "policy-config"), "up", "dev", "--yes",
               "--local-state", "--layers", "network", "--exact"]
    orchestrator = subprocess.Popen([sys.executable, "-c", _NOX, *command] if via_nox else command, cwd=REPO_ROOT,
                                    env=environ, start_new_session=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while "cancellable" not in up_events() and orchestrator.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "cancellable" in up_events(), orchestrator.communicate(timeout=30)[0] \
            if orchestrator.poll() is not None else "network's preview never started"
        for name in signals:
            os.killpg(orchestrator.pid, getattr(signal, name))
            time.sleep(0.2)
        output = orchestrator.communicate(timeout=60)[0]
    finally:
        if orchestrator.poll() is None:
            os.killpg(orchestrator.pid, signal.SIGKILL)
            orchestrator.wait()
    assert orchestrator.returncode == 130, output
    received = [event for event in up_events() if event.startswith("signal")]
    if signals == ["SIGINT", "SIGINT"]:
        assert received == ["signal SIGINT", "signal SIGINT"] and "terminated" in up_events(), (up_events(), output)
    else:
        assert received == ["signal SIGINT"] and "cancelled" in up_events(), (up_events(), output)
        assert "terminated" not in up_events()
    assert "Traceback" not in output, output


def test_a_ctrl_c_during_the_checks_before_any_layer_ends_the_run_without_a_traceback(
        management_api: Any, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    class InterruptedWhilePreparing(RecordingRunner):
        def prepare(self, env: EnvConfig, layers: Sequence[str], operation: Operation) -> None:
            raise KeyboardInterrupt

    runner = InterruptedWhilePreparing(management_api.url)
    code = main(["up", "dev", "--yes"], runner=runner, out=io.StringIO(), confirm=lambda prompt: True,
                images=ReleasedEverywhere())
    assert code == 130 and runner.started == []
    assert "interrupted before any layer ran: nothing was changed" in capsys.readouterr().err


def test_a_sigterm_or_sighup_after_the_first_interrupt_raises_nothing() -> None:
    """The second copy of a group-wide signal (nox passes it on a millisecond later) arrives while the first is being
    handled: raised there, it would escape before the runner was told. Every Ctrl-C raises (a second: "stop now")."""
    from shared.orchestrate.cli import signals_interrupt
    from shared.orchestrate.model import RunInterrupted

    with signals_interrupt():
        handler = signal.getsignal(signal.SIGTERM)
        ctrl_c = signal.getsignal(signal.SIGINT)
        assert callable(handler) and callable(ctrl_c)
        with pytest.raises(RunInterrupted):
            handler(signal.SIGTERM, None)
        handler(signal.SIGTERM, None)
        handler(signal.SIGHUP, None)
        for _ in range(2):
            with pytest.raises(KeyboardInterrupt):
                ctrl_c(signal.SIGINT, None)
    with signals_interrupt():  # after a Ctrl-C, a hang-up is no second request either
        ctrl_c, hang_up = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGHUP)
        assert callable(ctrl_c) and callable(hang_up)
        with pytest.raises(KeyboardInterrupt):
            ctrl_c(signal.SIGINT, None)
        hang_up(signal.SIGHUP, None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
