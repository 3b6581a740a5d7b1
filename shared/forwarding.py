"""How ``nox`` runs a command: to its end on its own terms when interrupted.

Standard library only: the noxfile imports it before ``.venv`` exists.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path


def run_forwarding_signals(command: list[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run ``command`` and let it end on its own terms when interrupted: SIGTERM and SIGHUP sent to this process are
    passed on, and on Ctrl-C (which the child receives too, being in the terminal's process group) this process waits
    for it instead of killing it as ``subprocess.call`` would -- the command's own cleanup (stopping a local broker,
    cancelling a running ``pulumi``) and summary then happen. A signal sent to the whole process group (a closed
    terminal's SIGHUP, GNU ``timeout``'s SIGTERM) so reaches the child twice, a millisecond apart: the orchestrator
    takes the second for the same event (shared.orchestrate.cli)."""
    child = subprocess.Popen(command, cwd=cwd, env=dict(env))

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same SIGINT; its exit code (130) tells the rest
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
