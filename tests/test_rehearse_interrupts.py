"""An interrupted rehearsal leaves nothing behind: Ctrl-C, SIGTERM (how CI cancels a job) or SIGHUP
at any point stops the broker and the epmd it started (never another one), removes its temporary
folder, prints no traceback and exits 130. A rehearsal killed outright (SIGKILL) takes its broker
with it, and its folder is swept by the next rehearsal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from shared import REPO_ROOT
from shared.rehearse.broker import DIR_PREFIX, OWNER_FILE, sweep_abandoned_directories

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("own_tempdir")]


def _folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"))


def _processes_of(folder: Path) -> set[int]:
    """Live processes whose command line or environment names ``folder``: the node (its mnesia and
    log paths), its epmd and helpers (HOME and RABBITMQ_* point into it). Other rehearsals running
    on the machine at the same time have folders of their own."""
    marker = str(folder).encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
                named = marker in (entry / "cmdline").read_bytes() or marker in (entry / "environ").read_bytes()
                if named and "State:\tZ" not in status:
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _start() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shared.rehearse", "dev"], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def _owned_by(folder: Path, pid: int) -> bool:
    try:
        return (folder / OWNER_FILE).read_text(encoding="utf-8").strip() == str(pid)
    except OSError:
        return False  # not written yet, or gone


def _wait_for_new_folder(before: set[Path], timeout: float, owner: int, needs: str | None = None) -> Path:
    """The folder of the rehearsal ``owner``: other rehearsals on the machine (another checkout's tests)
    make folders of their own at the same time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for folder in _folders() - before:
            if not _owned_by(folder, owner):
                continue
            if needs is None:
                return folder
            logs = [*folder.glob("log/*.log"), folder / "server.out"]
            if any(path.is_file() and needs in path.read_text(errors="replace") for path in logs):
                return folder
        time.sleep(0.05)
    raise AssertionError(f"no rehearsal folder{' with ' + repr(needs) if needs else ''} within {timeout}s")


@pytest.mark.parametrize(("signum", "point"), [
    (signal.SIGINT, "folder"),        # while epmd / the node start
    (signal.SIGTERM, "booting"),      # the node is booting
    (signal.SIGTERM, "up"),           # the checks are running
    (signal.SIGHUP, "up"),
    (signal.SIGINT, "up"),
])
def test_an_interrupted_rehearsal_leaves_nothing_behind(signum: int, point: str) -> None:
    folders_before = _folders()
    process = _start()
    try:
        if point == "folder":
            folder = _wait_for_new_folder(folders_before, 120, process.pid)
        elif point == "booting":
            folder = _wait_for_new_folder(folders_before, 120, process.pid, needs="")
            time.sleep(1.0)
        else:
            folder = _wait_for_new_folder(folders_before, 180, process.pid, needs="Server startup complete")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not folder.exists(), "the temporary folder is removed"
    assert not _processes_of(folder), "no broker or epmd of this rehearsal is left running"


def test_a_killed_rehearsal_takes_its_broker_with_it_and_its_folder_is_swept() -> None:
    folders_before = _folders()
    process = _start()
    try:
        folder = _wait_for_new_folder(folders_before, 180, process.pid, needs="Server startup complete")
        assert _processes_of(folder)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _node_processes(folder):
        time.sleep(0.2)
    assert not _node_processes(folder), "the node dies with the rehearsal (parent-death signal)"
    # No handler sees SIGKILL: the folder (and an epmd the dying node may have started) stay until the
    # next rehearsal sweeps what belongs to a rehearsal process that no longer exists.
    assert folder.exists() and (folder / OWNER_FILE).is_file()
    assert folder in sweep_abandoned_directories()
    assert not folder.exists() and not _processes_of(folder)


def _node_processes(folder: Path) -> set[int]:
    marker = str(folder).encode()
    found = set()
    for pid in _processes_of(folder):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except OSError:
            continue  # ended meanwhile
    return found


def test_an_interrupt_whose_cleanup_had_to_kill_processes_still_reports_the_interrupt(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # A node interrupted mid-boot can leave processes that LocalBroker.stop kills (and then says so with
    # BrokerUnavailable, raised from its __exit__ in place of the interrupt): the run was still interrupted.
    import shared.rehearse
    import shared.rehearse.__main__ as cli
    from shared.rehearse.broker import BrokerUnavailable

    def interrupted_boot(*_: object, **__: object) -> None:
        cli._received.append("SIGINT")
        raise BrokerUnavailable("had to kill left-over broker processes [4242]")

    monkeypatch.setattr(cli, "_received", [])
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    monkeypatch.setattr(shared.rehearse, "synthesized_topology", lambda env: None)
    monkeypatch.setattr(shared.rehearse, "write_artifacts", lambda env, topology: Path("build/dev/x.json"))
    monkeypatch.setattr(shared.rehearse, "rehearse", interrupted_boot)
    assert cli.main(["dev"]) == 130
    stderr = capsys.readouterr().err
    assert "interrupted (SIGINT); the local broker was stopped" in stderr and "[4242]" in stderr
