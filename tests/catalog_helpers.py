"""Editing the service catalog in tests: a changed copy of the committed ``shared/catalog.yaml`` that the code
under test reads (through ``CATALOG_ENV_VAR``) for the rest of the test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR, CATALOG_FILE


def write_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  change: Callable[[dict[str, Any]], None]) -> Path:
    """Writes the committed catalog with ``change`` applied to its ``services`` to ``tmp_path``, points
    ``CATALOG_ENV_VAR`` at it, and returns its path."""
    data = yaml.safe_load(CATALOG_FILE.read_text())
    change(data["services"])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    return path
