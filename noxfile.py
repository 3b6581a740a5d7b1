"""Every command of the platform, run from the repo root: ``nox -s <session> -- <args>``.

All sessions share one virtualenv, ``.venv`` (the same one the Pulumi projects name in their
``Pulumi.yaml``), created on first use and re-synced when ``pyproject.toml`` changes. Sessions
propagate the documented exit codes (0 ok, 1 policy/gate failure, 2 bad input): nox itself would
turn any failure into 1.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".pyproject-sha256"

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]


def _python() -> str:
    return str(VENV / "bin" / "python")


def _ensure_venv(session: nox.Session) -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == digest and Path(_python()).exists():
        return
    session.log("installing the platform's pinned dependencies into .venv (first run or pyproject.toml changed)")
    if not Path(_python()).exists():
        session.run(sys.executable, "-m", "venv", str(VENV), external=True)
    session.run(_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "-e", f"{ROOT}[dev]", external=True)
    STAMP.write_text(digest)


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` and let it end on its own terms when interrupted: SIGTERM and SIGHUP sent to
    nox are passed on, and on Ctrl-C (which the child receives too, being in the terminal's process
    group) nox waits for it instead of killing it as ``subprocess.call`` would -- the command's own
    cleanup (stopping a local broker, cancelling a running ``pulumi``) and summary then happen."""
    child = subprocess.Popen(command, cwd=ROOT, env=env)

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


def _exit_with(session: nox.Session, *args: str) -> None:
    """Run ``python args`` in .venv and end the session with its exact exit code."""
    _ensure_venv(session)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Byte-compile the repo once (incremental): some machines set PYTHONDONTWRITEBYTECODE, and then
    # every process -- the CLI and each policy pack -- would recompile the same modules on each run.
    subprocess.call([_python(), "-m", "compileall", "-q", "shared", "policies", "stacks"], cwd=ROOT, env=env,
                    stdout=subprocess.DEVNULL)
    code = _run_forwarding_signals([_python(), *args], env)
    if code != 0:
        session.log(f"exit code {code}")
        sys.exit(code)


@nox.session
def synth(session: nox.Session) -> None:
    """Offline synth: `-- ENV` or `-- --program DIR [--env ENV] [--out DIR2]`."""
    _exit_with(session, "-m", "shared.synth", *session.posargs)


@nox.session
def policy(session: nox.Session) -> None:
    """Synth + every policy pack: `-- [ENV ...] [--program DIR] [--json F] [--sarif F]`."""
    _exit_with(session, "-m", "shared.policy", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, real-broker tests included."""
    _exit_with(session, "-m", "pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the repo, mypy over the helper package."""
    _exit_with(session, "-m", "ruff", "check", ".")
    _exit_with(session, "-m", "mypy")


def _orchestrate(session: nox.Session, action: str) -> None:
    _exit_with(session, "-m", "shared.orchestrate", action, *session.posargs)


@nox.session
def preview(session: nox.Session) -> None:
    """`-- ENV [--layers a,b] [--parallel N]`: pulumi preview of every layer, in DAG order."""
    _orchestrate(session, "preview")


@nox.session
def up(session: nox.Session) -> None:
    """`-- ENV [--layers a,b] [--parallel N] [--yes]`: deploy every layer, level by level."""
    _orchestrate(session, "up")


@nox.session
def destroy(session: nox.Session) -> None:
    """`-- ENV [--layers a,b] [--parallel N] [--yes] [--preview-only]`: destroy in reverse DAG order."""
    _orchestrate(session, "destroy")


@nox.session
def refresh(session: nox.Session) -> None:
    """`-- ENV [--layers a,b] [--parallel N] [--yes] [--preview-only]`: refresh; --preview-only reports drift."""
    _orchestrate(session, "refresh")


@nox.session
def promote(session: nox.Session) -> None:
    """`-- FROM TO [--services a,b] [--check] [--allow-skip]`: gated promotion of the release."""
    _exit_with(session, "-m", "shared.promote", *session.posargs)


@nox.session
def rehearse(session: nox.Session) -> None:
    """`-- ENV`: the messaging topology on a real local RabbitMQ."""
    _exit_with(session, "-m", "shared.rehearse", *session.posargs)


@nox.session
def diff(session: nox.Session) -> None:
    """`-- ENV [ENV ...]`: fresh synth vs the accepted snapshots; exit 1 when a protected resource would be replaced."""
    _exit_with(session, "-m", "shared.plan_diff", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Performance figures into build/bench.json."""
    _exit_with(session, "-m", "shared.bench", *session.posargs)
