"""Editing the service catalog in tests: a changed copy of the example catalog ``tests/fixtures/catalog.yaml`` that the
code under test reads (through ``CATALOG_ENV_VAR``) for the rest of the test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR
from tests.spec_envs import SPEC_CATALOG


def write_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  change: Callable[[dict[str, Any]], None]) -> Path:
    """Writes the example catalog (tests/fixtures/catalog.yaml) with ``change`` applied to its ``services`` to
    ``tmp_path``, points ``CATALOG_ENV_VAR`` at it, and returns its path."""
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    change(data["services"])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    return path


def remove_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Callable[..., Path], name: str,
                   envs: tuple[str, ...] = ("dev", "staging", "prod")) -> None:
    """``name`` removed as a user removes it (README, "Remove a service"): its catalog entry, the other entries' calls
    of it and the routing keys only it consumed or published (the catalog stays free of warnings), and its settings and
    release in each of ``envs`` (scratch copies: the ``edit_env`` fixture)."""
    def drop(services: dict[str, Any]) -> None:
        gone = services.pop(name)
        for spec in services.values():
            spec["calls"] = [callee for callee in spec.get("calls", []) if callee != name] or None
            for side, theirs in (("publishes", gone.get("consumes") or {}), ("consumes", gone.get("publishes") or {})):
                others = {key for other in services.values() if other is not spec
                          for keys in (other.get("consumes" if side == "publishes" else "publishes") or {}).values()
                          for key in keys}
                for exchange, keys in list((spec.get(side) or {}).items()):
                    kept = [key for key in keys if key not in theirs.get(exchange, []) or key in others]
                    spec[side][exchange] = kept
                    if not kept:
                        del spec[side][exchange]
                if side in spec and not spec[side]:
                    del spec[side]
            if spec["calls"] is None:
                del spec["calls"]

    write_catalog(tmp_path, monkeypatch, drop)

    def drop_env(data: dict[str, Any]) -> None:
        data.get("services", {}).pop(name, None)
        data.get("release", {}).get("images", {}).pop(name, None)

    for env in envs:
        edit_env(env, drop_env)


def stop_consuming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``name`` stays but consumes nothing: its ``consumes`` dropped, and the routing keys only it consumed no longer
    published by the others (the catalog stays free of warnings)."""
    def drop(services: dict[str, Any]) -> None:
        theirs = services[name].pop("consumes")
        others = {key for other, spec in services.items() if other != name
                  for keys in (spec.get("consumes") or {}).values() for key in keys}
        for spec in services.values():
            for exchange, keys in list((spec.get("publishes") or {}).items()):
                kept = [key for key in keys if key not in theirs.get(exchange, []) or key in others]
                spec["publishes"][exchange] = kept
                if not kept:
                    del spec["publishes"][exchange]
            if "publishes" in spec and not spec["publishes"]:
                del spec["publishes"]

    write_catalog(tmp_path, monkeypatch, drop)


SHIPPED_SERVICES = ("gateway", "preprocess", "inference", "training")


def shipped_services_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Callable[..., Path],
                          envs: tuple[str, ...] = ("dev", "staging", "prod")) -> None:
    """The catalog and the scratch copies of ``envs`` without any service a user added (README, "Add a service"): for a
    test whose figures count every service (its tasks' addresses), as the env_dir fixture leaves out an added env."""
    def keep(services: dict[str, Any]) -> None:
        for name in [name for name in services if name not in SHIPPED_SERVICES]:
            del services[name]
        for spec in services.values():
            if "calls" in spec:
                spec["calls"] = [callee for callee in spec["calls"] if callee in SHIPPED_SERVICES]

    write_catalog(tmp_path, monkeypatch, keep)

    def drop_env(data: dict[str, Any]) -> None:
        for section in (data.get("services") or {}, (data.get("release") or {}).get("images") or {}):
            for name in [name for name in section if name not in SHIPPED_SERVICES]:
                del section[name]

    for env in envs:
        edit_env(env, drop_env)
