"""When the platform may replace functions inside ``pulumi`` / ``pulumi_policy`` (and when it must not).

Two speed-ups swap private functions of those packages: the synth's SDK fast paths
(:mod:`shared.synth.speedups`, the linear output wait and the inline monitor executor of
:mod:`shared.synth.engine`) and the packs' analyzer (:mod:`shared.policy.fast_analyzer`). Both were
written against, and are tested with, the exact versions pinned in ``pyproject.toml``. So:

* the analyzer replacement is installed only when the offline engine starts a pack (it sets
  :data:`OFFLINE_ENGINE_ENV`); under ``pulumi preview/up --policy-pack`` the packs run plain
  ``pulumi_policy``: the deploy gate never depends on our patches;
* when an installed version differs from the pin, nothing is patched and one warning says so;
  the results stay right, only slower (``tests/test_patch_tripwires.py`` then fails on purpose:
  re-derive the patches as the README's "Upgrading Pulumi" section says).

Standard library only: it runs inside policy packs too.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from shared.venvcheck import normalize_name as _normalize
from shared.venvcheck import pyproject_pins

OFFLINE_ENGINE_ENV = "ML_PLATFORM_OFFLINE_POLICY_ENGINE"
"""Set to ``1`` by the offline policy engine in the environment of the packs it starts."""

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

SYNTH_PATCHED = ("pulumi",)
"""Packages whose internals the synth's fast paths replace."""

ANALYZER_PATCHED = ("pulumi", "pulumi-policy", "protobuf")
"""Packages whose internals the analyzer speed-up replaces or copies (``json_format`` is protobuf's)."""

_warned: set[str] = set()


@cache
def pinned_versions(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` requirement in ``pyproject.toml`` (the one
    place versions are pinned), names normalized as PyPI does."""
    return pyproject_pins(pyproject)


def version_mismatches(packages: tuple[str, ...]) -> list[str]:
    """``"pulumi 3.300.0 (tested: 3.272.0)"`` for each of ``packages`` installed at another version
    than the pin (or not pinned, or not installed)."""
    pins = pinned_versions()
    found = []
    for package in packages:
        pinned = pins.get(_normalize(package))
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed = None
        if pinned is None or installed != pinned:
            found.append(f"{package} {installed or 'not installed'} (tested: {pinned or 'not pinned'})")
    return found


def patches_allowed(what: str, packages: tuple[str, ...]) -> bool:
    """Whether ``what`` may patch ``packages``: only at the tested versions. Otherwise warns once per
    ``what`` on stderr and answers False (the caller then runs the packages as they are)."""
    mismatches = version_mismatches(packages)
    if not mismatches:
        return True
    if what not in _warned:
        _warned.add(what)
        print(f"warning: {what} disabled: {', '.join(mismatches)} differ from the versions pinned in "
              "pyproject.toml that it was written for; running unpatched (correct, slower). See README, "
              "'Upgrading Pulumi'.", file=sys.stderr)
    return False


def started_by_offline_engine() -> bool:
    """True in a pack process the offline engine started; False under the ``pulumi`` CLI."""
    return os.environ.get(OFFLINE_ENGINE_ENV) == "1"
