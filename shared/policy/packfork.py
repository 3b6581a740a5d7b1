"""Pack processes forked from the ``nox -s policy`` process instead of started from a fresh interpreter.

A pack started the way the ``pulumi`` CLI starts it (``python -u -m pulumi.policy <engine> .``) spends
most of its start-up importing what the engine process has already imported: pulumi and its
runtime, grpc, protobuf, pulumi_policy, pydantic and the policy catalog (0.3 s of CPU per pack, three
packs, on a run of ~1 s of useful work for a 100-resource ``--program``). The one-shot policy command
forks each pack from its own process right after those imports and before it does anything else (no
thread, no grpc channel, no Pulumi runtime state yet); the child then does exactly what the CLI's shim
does from that point: ``pulumi.policy``'s ``__main__`` with the same arguments, working directory and
environment, its stdout (the port line) and stderr on their own pipe and file, at the packs'
scheduling priority. The rules, ``pulumi_policy`` and the analyzer speed-up run unchanged.

Only :class:`shared.policy.engine.PolicyEngine` ``(fork=True)`` uses this, and only when the process
has a single thread; anything else (tests, the bench's per-stack runs, which imitate the CLI) starts
packs as fresh interpreters.
"""

from __future__ import annotations

import gc
import io
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO


class _State:
    grpc_used = False  # a channel was opened in this process: grpc's core and its threads are live


def note_grpc_use() -> None:
    """Called before this process opens a grpc channel: from then on packs are never forked from it."""
    _State.grpc_used = True


def can_fork() -> bool:
    """Forking is safe here: POSIX, no other Python thread whose locks the child could inherit held,
    and grpc's core (whose threads the threading module does not see) not started by the engine."""
    return hasattr(os, "fork") and threading.active_count() == 1 and not _State.grpc_used


class ForkedPack:
    """The part of :class:`subprocess.Popen` the engine uses, for a forked pack process."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], stderr: IO[bytes], niceness: int) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()  # nothing buffered in this process may be written twice
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            os.close(read_fd)
            _run_pack(argv, cwd, env, write_fd, stderr.fileno(), niceness)
        os.close(write_fd)
        self.pid = pid
        self.args = argv
        self.stdout: IO[bytes] | None = os.fdopen(read_fd, "rb", buffering=0)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _run_pack(argv: list[str], cwd: Path, env: dict[str, str], stdout_fd: int, stderr_fd: int,
              niceness: int) -> None:
    """In the forked child: become ``python -u -m pulumi.policy <argv>`` run in ``cwd``; never returns."""
    code = 1
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.closerange(3, 65536)  # no descriptor of the engine (other packs' pipes, its outputs) stays open
        # -u: unbuffered stdout and stderr, as the CLI starts a pack.
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", write_through=True,
                                      errors="backslashreplace")
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["-m", *argv]
        sys.path[0] = str(cwd)  # what `python -m` puts first: the working directory
        gc.freeze()  # what the engine had imported is shared, not re-scanned by every collection
        gc.enable()  # the one-shot command runs without the collector; a fresh pack has it
        runpy.run_module("pulumi.policy", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 -- reported on the pack's stderr, like an uncaught exception
        traceback.print_exc()
    finally:
        with_flush = (sys.stdout, sys.stderr)
        for stream in with_flush:
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 -- nothing left to report it to
                pass
        os._exit(code)
