"""Fixtures of the layer tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR, Catalog, load_catalog
from tests.layers.compute_helpers import CatalogEditor
from tests.spec_envs import SPEC_CATALOG


@pytest.fixture
def edit_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogEditor:
    """``edit_catalog(change)``: a scratch copy of the shipped catalog, edited by ``change`` and active through
    CATALOG_ENV_VAR for this test; returns it loaded."""

    def edit(change: Callable[[dict[str, Any]], None]) -> Catalog:
        data = yaml.safe_load(SPEC_CATALOG.read_text())
        change(data)
        path = tmp_path / "catalog.yaml"
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
        return load_catalog()

    return edit
