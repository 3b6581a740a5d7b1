"""Every command of the platform, run from the repo root: ``nox -s <session> -- <args>``.

All sessions share one virtualenv, ``.venv`` (the same one the Pulumi projects name in their
``Pulumi.yaml``), created on first use from ``requirements.lock`` (hashes checked) and re-synced when
``pyproject.toml`` or the lock changes. Sessions
propagate the documented exit codes (0 ok, 1 policy/gate failure, 2 bad input): nox itself would
turn any failure into 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"

sys.path.insert(0, str(ROOT))
from shared import forwarding, venvcheck  # noqa: E402  (standard library only: it runs before .venv exists)

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]


def _python() -> str:
    return str(venvcheck.venv_python(VENV))


def _ensure_venv(session: nox.Session) -> None:
    """Refuse an unsupported Python before touching .venv; repair a missing, stale or broken .venv."""
    refusal = venvcheck.check_python()
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        sys.exit(2)
    version = (sys.version_info[0], sys.version_info[1])
    verdict = venvcheck.inspect_venv(VENV, venvcheck.requirements_digest(ROOT), version)
    if verdict.action == "ready":
        return
    try:
        venvcheck.make_venv(VENV, ROOT, verdict, python=sys.executable, version=version,
                            uv=venvcheck.uv_command(sys.executable), log=session.log)
    except venvcheck.VenvError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


_prepared = False
"""Whether :func:`_prepare` ran in this nox process."""


def _prepare(session: nox.Session, env: dict[str, str]) -> None:
    """.venv usable and the repo byte-compiled, once per nox process (``lint`` runs five commands)."""
    global _prepared
    if _prepared:
        return
    _ensure_venv(session)
    # Byte-compile the repo once (incremental): some machines set PYTHONDONTWRITEBYTECODE, and then
    # every process -- the CLI and each policy pack -- would recompile the same modules on each run.
    subprocess.call([_python(), "-m", "compileall", "-q", "shared", "policies", "stacks"], cwd=ROOT, env=env,
                    stdout=subprocess.DEVNULL)
    _prepared = True


def _exit_with(session: nox.Session, *args: str, tool: str | None = None) -> None:
    """Run ``python args`` (or the .venv tool ``tool`` with ``args``) and end the session with its exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _prepare(session, env)
    command = [str(VENV / "bin" / tool), *args] if tool else [_python(), *args]
    code = forwarding.run_forwarding_signals(command, ROOT, env)
    if code != 0:
        session.log(f"exit code {code}")
        sys.exit(code)


@nox.session
def synth(session: nox.Session) -> None:
    """Offline synth: `-- ENV` or `-- --program DIR [--env ENV] [--out DIR2]`."""
    _exit_with(session, "-m", "shared.synth", *session.posargs)


@nox.session
def policy(session: nox.Session) -> None:
    """Synth + every policy pack: `-- [ENV ...] [--program DIR [--env ENV]] [--json F] [--sarif F] [--explain RULE]`."""
    _exit_with(session, "-m", "shared.policy", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, real-broker tests included."""
    _exit_with(session, "-m", "pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the repo, mypy over shared, stacks, policies and tests (and each program of tests/programs alone),
    actionlint + zizmor over the workflows, and the generated workflows equal to what shared/dag.py generates."""
    _exit_with(session, "-m", "ruff", "check", ".")
    _exit_with(session, "-m", "mypy")
    _exit_with(session, "-m", "shared.typecheck_programs")
    _exit_with(session, tool="actionlint")
    _exit_with(session, "--offline", "--min-severity", "low", ".github", tool="zizmor")
    _exit_with(session, "-m", "shared.workflows", "check")


@nox.session
def lock(session: nox.Session) -> None:
    """Re-lock after changing a pin: requirements.lock from pyproject.toml and .ci/bootstrap-requirements.txt from its
    .in, every package with its hashes (uv, as .ci/bootstrap-requirements.txt installs it; `-- --upgrade`: the newest
    versions of the unpinned dependencies too), then .ci/lock-wheels.txt (the file name of every hash), and exit 1
    naming any package without a wheel for a supported Python on Linux x86_64/arm64 or macOS arm64/x86_64. Then
    `nox -s tests`, and commit the three files."""
    for command in venvcheck.lock_command(ROOT, extra=session.posargs):
        code = subprocess.call(command, cwd=ROOT)
        if code != 0:
            session.log(f"exit code {code}")
            sys.exit(code)


@nox.session
def workflows(session: nox.Session) -> None:
    """Rewrite the generated workflows from shared/dag.py; `-- changed-envs|tried|target|pulumi-login ...`: the
    helpers CI calls."""
    _exit_with(session, "-m", "shared.workflows", *(session.posargs or ["generate"]))


def _orchestrate(session: nox.Session, action: str) -> None:
    _exit_with(session, "-m", "shared.orchestrate", action, *session.posargs)


@nox.session
def preview(session: nox.Session) -> None:
    """`-- ENV [--layers a,b [--exact]] [--parallel N] [--image-ready SERVICE ...]`: pulumi preview of every layer, in
    DAG order."""
    _orchestrate(session, "preview")


@nox.session
def up(session: nox.Session) -> None:
    """`-- ENV [--layers a,b [--exact]] [--parallel N] [--yes] [--local-state] [--allow-replace URN ...]
    [--image-ready SERVICE ...]`: deploy every layer, level by level."""
    _orchestrate(session, "up")


@nox.session
def runner(session: nox.Session) -> None:
    """`-- ENV [--command up|preview|refresh|destroy] [--layers a,b] [--ref REV] [--repository URL]`: run that
    command of ENV on its deploy runner inside the VPC (a build of this commit) and follow the build to its end."""
    _exit_with(session, "-m", "shared.orchestrate.runner_build", *session.posargs)


@nox.session
def preflight(session: nox.Session) -> None:
    """`-- ENV [--layers a,b] [--dry]`: the account check `up` runs first, alone: creates the missing service-linked
    roles (not with --dry) and compares the env's needs with the account's service quotas."""
    _exit_with(session, "-m", "shared.orchestrate.account", *session.posargs)


@nox.session
def roles(session: nox.Session) -> None:
    """`-- ENV [--read-only] [--role NAME] [--json] [--out DIR] [--keep DIR]`: the IAM policies of the deploy role (or
    the read-only role), derived from ENV's synth (`--keep`: and the grants of the policy files attached now)."""
    _exit_with(session, "-m", "shared.deploy_role", *session.posargs)


@nox.session
def destroy(session: nox.Session) -> None:
    """`-- ENV [--layers a,b [--exact]] [--parallel N] [--yes] [--preview-only] [--local-state]`: destroy in reverse
    DAG order."""
    _orchestrate(session, "destroy")


@nox.session
def refresh(session: nox.Session) -> None:
    """`-- ENV [--layers a,b [--exact]] [--parallel N] [--yes] [--preview-only] [--local-state]`: refresh;
    --preview-only reports drift."""
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
    """`-- ENV [ENV ...] [--baseline DIR]`: fresh synth vs the accepted snapshots; exit 1 when a protected resource
    would be replaced."""
    _exit_with(session, "-m", "shared.plan_diff", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Performance figures into build/bench.json; `-- --first-run`: a fresh clone's first synth of dev
    (.venv included) into build/bench-first-run.json."""
    if "--first-run" in session.posargs:
        from shared.firstrun import TARGET_S, first_run

        if unknown := [arg for arg in session.posargs if arg not in ("--first-run", "--strict")]:
            print(f"error: bench --first-run takes --strict alone, not {' '.join(unknown)}", file=sys.stderr)
            sys.exit(2)  # a wrong argument, before minutes of a fresh install (README, exit codes)
        report = first_run(ROOT, ROOT / "build" / "bench-first-run.json")
        if "--strict" in session.posargs and not report["holds"]:
            session.error(f"the first run took longer than {TARGET_S:.0f} s")
        return
    _exit_with(session, "-m", "shared.bench", *session.posargs)
