"""The ``.venv`` every nox session shares: is it usable, and how to (re)make it. Standard library only:
the noxfile imports this before ``.venv`` exists.

A venv is *ready* when its ``pyvenv.cfg`` names the Python that runs nox (major.minor), its python
binary runs, and its stamp (written last, after a successful install) names that Python and the
sha256 of ``pyproject.toml`` and ``requirements.lock``. Anything else is repaired: a missing stamp (an interrupted
install) or a changed ``pyproject.toml`` or lock re-syncs the packages; a venv of another Python, one without
``pyvenv.cfg`` or with a python that does not run is deleted and made again. A venv that is a
symlink (shared with another checkout) is never deleted from here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SUPPORTED: tuple[tuple[int, int], ...] = ((3, 11), (3, 12), (3, 13))
"""Python versions every pinned package ships wheels for (kept equal to ``requires-python``)."""

STAMP_NAME = ".platform-stamp.json"
LEGACY_STAMP_NAME = ".pyproject-sha256"
"""The stamp of earlier noxfiles (the digest alone, for the Python that made the venv)."""


class VenvError(Exception):
    """The venv cannot be made usable from here (exit 2, with what to do)."""


def supported_names() -> str:
    return ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED)


def free_threaded() -> bool:
    """Whether this interpreter is a free-threaded build (``python3.13t``: PEP 703, ``Py_GIL_DISABLED``)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def check_python(version: Sequence[int] = tuple(sys.version_info[:2]), gil_disabled: bool | None = None) -> str | None:
    """None when ``version`` is supported, else the message that refuses it (before .venv is touched).
    ``gil_disabled`` (default: this interpreter's): a free-threaded build installs ``cp313t`` wheels only, and
    the lock has none (grpcio, pydantic-core, PyYAML and the rest ship them for the standard build only), so
    ``.venv``'s install would build every compiled package from source."""
    major, minor = int(version[0]), int(version[1])
    threaded = free_threaded() if gil_disabled is None else gil_disabled
    if (major, minor) in SUPPORTED and not threaded:
        return None
    build = " (a free-threaded build)" if threaded else ""
    return (f"Python {major}.{minor}{build} runs nox, but this platform supports Python {supported_names()} only, "
            f"their standard builds (pyproject.toml requires-python; every pinned package has wheels for those). Run "
            f"nox with one of them, from a virtualenv of its own (README, Quick start), e.g. `python3.12 -m venv "
            f"--clear ~/.venvs/ml-platform-nox && ~/.venvs/ml-platform-nox/bin/python -m pip install --require-hashes "
            f"-r .ci/bootstrap-requirements.txt`, then `~/.venvs/ml-platform-nox/bin/nox ...`. .venv was not touched.")


LOCK_NAME = "requirements.lock"
"""Every package ``.venv`` holds (the pins of ``pyproject.toml`` and all they depend on, the ``dev`` extra included),
each at one version with the sha256 of each of its files on PyPI: what every machine installs, a laptop, CI and the
in-VPC deploy runner alike, so a deploy of prod runs the very packages the tests and dev's deploy ran, and a file
PyPI serves that differs from the locked one stops the install instead of running with the deploy role."""


def lock_command(root: Path, python: str = sys.executable, extra: Sequence[str] = ()) -> list[list[str]]:
    """``nox -s lock``: compile ``requirements.lock`` from ``pyproject.toml`` and ``.ci/bootstrap-requirements.txt``
    from its ``.in`` (universal: one file for Python 3.11-3.13 on Linux, macOS and Windows; an existing lock keeps
    its versions unless a pin moves, ``extra`` ``--upgrade`` takes the newest), then record the file name of every
    hash in ``.ci/lock-wheels.txt`` and refuse (exit 1) a lock with a package that has no wheel for a promised Python
    and platform (:mod:`shared.lockfiles`)."""
    common = ["--universal", "--generate-hashes", "--python-version", "{}.{}".format(*SUPPORTED[0]),
              "--custom-compile-command", "nox -s lock", "--quiet", *extra]
    return [
        [python, "-m", "uv", "pip", "compile", str(root / "pyproject.toml"), "--extra", "dev", *common,
         "-o", str(root / LOCK_NAME)],
        [python, "-m", "uv", "pip", "compile", str(root / ".ci" / "bootstrap-requirements.in"), *common,
         "-o", str(root / ".ci" / "bootstrap-requirements.txt")],
        [python, "-m", "shared.lockfiles", "record"],
        [python, "-m", "shared.lockfiles", "check"],
    ]


def requirements_digest(root: Path) -> str:
    """sha256 over ``pyproject.toml`` and ``requirements.lock``: a change of either re-syncs ``.venv``."""
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes())
    lock = root / LOCK_NAME
    if lock.is_file():
        digest.update(b"\0" + lock.read_bytes())
    return digest.hexdigest()


def normalize_name(name: str) -> str:
    """A package name as PyPI compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins(pyproject: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` requirement of ``pyproject.toml`` (dependencies and every
    extra), names normalized (:func:`shared.patch_guard.pinned_versions` is this, cached, for the repo's)."""
    import tomllib  # Python 3.11+: imported here, so that an older Python reaches check_python's refusal

    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    requirements = [*project.get("dependencies", []),
                    *(item for extra in project.get("optional-dependencies", {}).values() for item in extra)]
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)\s*(;.*)?", requirement)
        if match:
            pins[normalize_name(match.group(1))] = match.group(2)
    return pins


def locked_versions(lock: Path) -> dict[str, str]:
    """``name -> version`` of each ``name==version`` line of a requirements lock (names normalized)."""
    return _versions_in(lock.read_text(encoding="utf-8"))


def _versions_in(text: str) -> dict[str, str]:
    return {entry.name: entry.version for entry in lock_entries(text)}


@dataclass(frozen=True)
class LockEntry:
    """One ``name==version ; marker`` of a requirements file, with its hashes (name normalized)."""

    name: str
    version: str
    marker: str
    hashes: frozenset[str]


def lock_entries(text: str) -> list[LockEntry]:
    """Every ``name==version`` of a requirements file (a lock: the hashes on its continuation lines)."""
    entries = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)[ \t]*(?:;([^\\\n]*))?", block)
        if match:
            entries.append(LockEntry(normalize_name(match.group(1)), match.group(2), (match.group(3) or "").strip(),
                                     frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))))
    return entries


def lock_problems(root: Path) -> list[str]:
    """Why ``requirements.lock`` cannot be installed as the packages ``pyproject.toml`` pins: missing, a pin
    (``name==version``, dependencies and every extra) absent or at another version, a package without a hash."""
    lock = root / LOCK_NAME
    if not lock.is_file():
        return [f"{lock} is missing"]
    text = lock.read_text(encoding="utf-8")
    locked = _versions_in(text)
    problems = []
    for name, version in pyproject_pins(root / "pyproject.toml").items():
        if locked.get(name) != version:
            problems.append(f"pyproject.toml pins {name}=={version}, {LOCK_NAME} has "
                            f"{name + '==' + locked[name] if name in locked else 'no ' + name}")
    problems += [f"{LOCK_NAME} has no hash for {entry.name}" for entry in lock_entries(text) if not entry.hashes]
    return problems


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def pyvenv_version(venv: Path) -> tuple[int, int] | None:
    """major.minor of the Python that made ``venv`` (``version_info`` or ``version`` in pyvenv.cfg)."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    raw = values.get("version_info") or values.get("version")
    if not raw:
        return None
    parts = raw.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Verdict:
    action: str
    """``ready``, ``sync`` (install the pins into it) or ``rebuild`` (delete and make again)."""
    reason: str


def _runs(python: Path) -> tuple[int, int] | None:
    """major.minor the venv's python reports, or None when it does not run."""
    try:
        result = subprocess.run([str(python), "-I", "-c", "import sys; print(*sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    if result.returncode != 0:
        return None
    try:
        major, minor = result.stdout.split()
        return int(major), int(minor)
    except ValueError:
        return None


def inspect_venv(venv: Path, digest: str, version: tuple[int, int]) -> Verdict:
    """What ``venv`` needs before a session may use it with the Python ``version`` and this ``digest``."""
    wanted = f"{version[0]}.{version[1]}"
    if not venv.exists():
        return Verdict("rebuild", "there is no .venv yet")
    made_with = pyvenv_version(venv)
    if made_with is None:
        return Verdict("rebuild", ".venv has no readable pyvenv.cfg (not a finished virtualenv)")
    if made_with != version:
        return Verdict("rebuild", f".venv was made with Python {made_with[0]}.{made_with[1]}, nox runs {wanted}")
    python = venv_python(venv)
    reports = _runs(python)
    if reports is None:
        return Verdict("rebuild", f"{python} is missing or does not run")
    if reports != version:
        return Verdict("rebuild", f"{python} is Python {reports[0]}.{reports[1]}, nox runs {wanted}")
    stamp = venv / STAMP_NAME
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if isinstance(recorded, dict):
        if recorded.get("python") != wanted:
            return Verdict("rebuild", f".venv's packages were installed for Python {recorded.get('python')}")
        if recorded.get("pyproject_sha256") == digest:
            return Verdict("ready", ".venv is up to date")
        return Verdict("sync", "pyproject.toml changed since .venv was installed")
    try:
        legacy = (venv / LEGACY_STAMP_NAME).read_text(encoding="utf-8").strip()
    except OSError:
        legacy = ""
    if legacy == digest:
        return Verdict("ready", ".venv is up to date (stamp of an earlier noxfile)")
    return Verdict("sync", "the last install of .venv did not finish (no stamp) or pyproject.toml changed")


REPO_PTH = "_ml_platform_repo.pth"


def link_repo(venv: Path, root: Path, version: tuple[int, int]) -> Path:
    """A ``.pth`` naming the repo root, so the venv's python imports ``shared`` from any folder: what an
    editable install gives, without building the project (a setuptools build in an isolated env cost
    more than the whole uv install of the pins)."""
    site = venv / "lib" / f"python{version[0]}.{version[1]}" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    path = site / REPO_PTH
    path.write_text(f"{root}\n", encoding="utf-8")
    return path


def write_stamp(venv: Path, digest: str, version: tuple[int, int]) -> None:
    """Written last, atomically: its presence means the install finished. ``digest``: :func:`requirements_digest`
    (the key keeps its first name, ``pyproject_sha256``, so a venv stamped before the lock re-syncs once, no more)."""
    stamp = venv / STAMP_NAME
    partial = stamp.with_suffix(".tmp")
    partial.write_text(json.dumps({"python": f"{version[0]}.{version[1]}", "pyproject_sha256": digest}) + "\n",
                       encoding="utf-8")
    os.replace(partial, stamp)


def uv_command(python: str = sys.executable) -> list[str] | None:
    """How to call uv: the module of nox's Python, else ``uv`` on PATH, else None (pip is used)."""
    if importlib.util.find_spec("uv") is not None:
        return [python, "-m", "uv"]
    found = shutil.which("uv")
    return [found] if found else None


Runner = Callable[[list[str]], int]


def _run(command: list[str]) -> int:
    print("+ " + " ".join(command), file=sys.stderr, flush=True)
    return subprocess.call(command)


def make_venv(venv: Path, root: Path, verdict: Verdict, *, python: str = sys.executable,
              version: tuple[int, int] = (sys.version_info[0], sys.version_info[1]),
              uv: list[str] | None = None, run: Runner = _run,
              log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> None:
    """Bring ``venv`` to ``ready`` (uv when available, pip otherwise); VenvError when it cannot."""
    if verdict.action == "ready":
        return
    problems = lock_problems(root)
    if problems:
        raise VenvError(f"{root / LOCK_NAME} does not hold the packages pyproject.toml pins: " + "; ".join(problems)
                        + ". Run `nox -s lock` and commit requirements.lock (.venv was not touched)")
    digest = requirements_digest(root)
    rebuild = verdict.action == "rebuild"
    for attempt in (1, 2):
        if rebuild and venv.is_symlink():
            raise VenvError(f"{venv} must be made again ({verdict.reason}), but it is a symlink to "
                            f"{os.path.realpath(venv)} (shared with another checkout): rebuild that one, "
                            "or remove the link to get a .venv of this checkout")
        if rebuild and venv.exists():
            log(f"removing {venv}: {verdict.reason}")
            shutil.rmtree(venv)
        (venv / STAMP_NAME).unlink(missing_ok=True)  # an interrupted install stays detectable
        tool = "uv" if uv else "pip"
        log(f"{'creating' if rebuild else 'syncing'} .venv with {tool} ({verdict.reason}); "
            f"the packages of {LOCK_NAME} follow")
        # The lock, never pyproject.toml alone: its pins name the direct packages only, so every dependency of theirs
        # would resolve to whatever PyPI has newest on the day (a prod deploy weeks after dev's ran other packages),
        # unchecked against any hash. The repo itself is linked by a .pth, not built (no setuptools build at run).
        lock = str(root / LOCK_NAME)
        if uv:
            # No --seed: uv would install PyPI's newest pip, setuptools and wheel, unhashed; pip (which Pulumi's
            # language host runs in .venv) and setuptools come from the lock with their hashes.
            steps = ([[*uv, "venv", "--python", python, str(venv)]] if rebuild else []) + [
                [*uv, "pip", "install", "--python", str(venv_python(venv)), "--require-hashes", "-r", lock]]
        else:
            steps = ([[python, "-m", "venv", str(venv)]] if rebuild else []) + [
                [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
                 "--progress-bar", "on", "--require-hashes", "-r", lock]]
        if all(run(step) == 0 for step in steps):
            link_repo(venv, root, version)
            write_stamp(venv, digest, version)
            log(f".venv ready (Python {version[0]}.{version[1]})")
            return
        if rebuild or attempt == 2:
            break
        rebuild, verdict = True, Verdict("rebuild", "installing into the existing .venv failed")
    raise VenvError(f"could not install the packages of {LOCK_NAME} into {venv} with {'uv' if uv else 'pip'} (see the "
                    "output above); nothing is stamped, so the next session tries again")
