"""An interrupted deploy: Ctrl-C, SIGTERM (a cancelled CI job) or SIGHUP during `nox -s up` prints the
per-layer status (done, interrupted, not started), exits 130, starts nothing new, and waits for the
running `pulumi` to cancel cleanly -- passing SIGTERM/SIGHUP on to it, never a second SIGINT after
a terminal's Ctrl-C (which Pulumi reads as "terminate now")."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Mapping, Sequence
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

    def interrupt(self) -> None:
        self.interrupts += 1
        self.cancel.set()

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: OutputSink) -> LayerResult:
        with self.lock:
            self.started.append(layer)
        if layer == order()[0]:
            return LayerResult(layer, Status.SUCCEEDED, {"create": 1})
        threading.Timer(0.2, lambda: os.kill(os.getpid(), self.signum)).start()
        if self.signum == signal.SIGINT:
            # In a terminal the pulumi processes get Ctrl-C themselves; here: cancel after a moment.
            threading.Timer(0.5, self.cancel.set).start()
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
    assert runner.interrupts == (0 if signum == signal.SIGINT else 1), \
        "SIGTERM/SIGHUP are passed on; Ctrl-C is not doubled"
    assert "Traceback" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handlers are put back"


def test_the_real_runner_passes_the_interrupt_to_its_pulumi_processes_only(tmp_path: Any) -> None:
    import subprocess
    import time

    from shared.orchestrate.automation import AutomationRunner, pulumi_children

    marker = tmp_path / "cancelled"
    script = tmp_path / "pulumi"  # the kernel names a script's process after the script: "pulumi"
    script.write_text(f"#!/bin/sh\ntrap 'echo cancelled > {marker}; exit 0' INT\n"
                      "while :; do sleep 0.05; done\n")
    script.chmod(0o755)
    bystander = subprocess.Popen(["sleep", "30"])
    child = subprocess.Popen([str(script)])
    try:
        deadline = time.monotonic() + 5
        while child.pid not in pulumi_children(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pulumi_children(os.getpid()) == [child.pid]
        AutomationRunner().interrupt()
        assert child.wait(timeout=5) == 0 and marker.read_text().strip() == "cancelled"
        assert bystander.poll() is None, "only pulumi processes get the interrupt"
    finally:
        for process in (child, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()
