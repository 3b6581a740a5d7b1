"""mypy over the policy engine's corpus of user-style programs, one program at a time.

Each folder of ``tests/programs/`` is a Pulumi program as a user writes it: Pulumi runs its ``__main__.py``
from the folder (a multi-file one imports its own top-level package), so every program is the module
``__main__`` and one mypy run over all of them refuses the duplicates. The repo-wide run excludes them
(``[tool.mypy] exclude`` in pyproject.toml); this checks each folder alone, with the same settings and cache.

    python -m shared.typecheck_programs [ROOT]    # ROOT: tests/programs; exit 1 when any program fails
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared import REPO_ROOT

PROGRAMS = REPO_ROOT / "tests" / "programs"


def programs(root: Path = PROGRAMS) -> list[Path]:
    """The program folders below ``root`` (those with a ``__main__.py``), sorted."""
    return sorted(path.parent for path in root.glob("*/__main__.py"))


def typecheck(program: Path) -> int:
    """mypy's exit code for ``program`` checked from its own folder, as Pulumi runs it."""
    return subprocess.call([sys.executable, "-m", "mypy", "--config-file", str(REPO_ROOT / "pyproject.toml"),
                            "--exclude", "^$",  # the config's exclude names these folders; nothing here
                            "--cache-dir", str(REPO_ROOT / ".mypy_cache"), "."], cwd=program)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve() if args else PROGRAMS
    found = programs(root)
    if not found:
        print(f"error: no program (a folder with __main__.py) below {root}", file=sys.stderr)
        return 2
    failed = [program.name for program in found if typecheck(program) != 0]
    if failed:
        print(f"mypy failed for {len(failed)} of {len(found)} programs below {root}: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
