"""``nox -s bench -- --first-run``: the wall time of a fresh clone's first ``nox -s synth -- dev``.

Clones the committed HEAD of this repository into a temporary folder (no ``.venv``, no ``build/``) and
times ``python -m nox -s synth -- dev`` there with the Python that runs nox: creating ``.venv`` (uv,
whose download cache is warm after any earlier install) plus the synth. Standard library only (it runs
before any ``.venv``). Target: at most :data:`TARGET_S` seconds on the 2-core reference machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0


def first_run(root: Path, out: Path, python: str = sys.executable, env_name: str = "dev") -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="first-run-") as scratch:
        clone = Path(scratch) / "repo"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(root), str(clone)], check=True)
        start = time.perf_counter()
        code = subprocess.call([python, "-m", "nox", "-s", "synth", "--", env_name], cwd=clone)
        elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the first `nox -s synth -- {env_name}` of a fresh clone failed (exit {code})")
    report: dict[str, object] = {"first_run_synth_s": round(elapsed, 2), "target_s": TARGET_S,
                                 "holds": elapsed <= TARGET_S, "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    verdict = "holds" if elapsed <= TARGET_S else "DOES NOT hold"
    print(f"first run of a fresh clone: `nox -s synth -- {env_name}` in {elapsed:.1f} s "
          f"(target <= {TARGET_S:.0f} s: {verdict}); written to {out}")
    return report
