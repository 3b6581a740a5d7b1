"""Every key of a shipped env file and of the catalog, set to each value of the wrong shape YAML can give (and
removed): the loaders either accept the file or refuse it with a ConfigError (exit 2) naming the file, never
another exception (a traceback). What each refusal says is tested key by key in test_envs.py and test_catalog.py."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.catalog import _load_cached as catalog_cache
from shared.envs import _load_cached as env_cache
from shared.envs import load_env
from shared.errors import ConfigError
from tests.spec_envs import SPEC_CATALOG

#: what an unquoted or mistyped YAML value can be, where the schema expects something else
WRONG = [None, True, -1, 10**30, 1.5, "", "no", "../x", [], {}, [None], {"": 1}, date(2026, 12, 1), "é" * 300]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def mutations(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in paths(data):
        for value in [*WRONG, "delete"]:
            copied = copy.deepcopy(data)
            parent = copied
            for part in path[:-1]:
                parent = parent[part]
            if value == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            yield f"{'.'.join(map(str, path))}={value!r:.20}", copied


def refused_or_loaded(load: Any, file: Path, cases: Iterator[tuple[str, dict[str, Any]]],
                      named: tuple[str, ...] = ()) -> list[str]:
    """What of ``cases`` written to ``file`` ``load`` neither accepts nor refuses with a ConfigError naming ``file``
    (or one of ``named``)."""
    unexpected = []
    for what, data in cases:
        file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        env_cache.cache_clear()
        catalog_cache.cache_clear()
        try:
            load()
        except ConfigError as error:
            if not any(name in str(error) for name in (file.name, *named)):
                unexpected.append(f"{what}: the message does not name {file.name}: {error}")
        except Exception as error:  # noqa: BLE001 -- what the test is looking for
            unexpected.append(f"{what}: {type(error).__name__}: {error}")
    return unexpected


def test_every_env_key_set_wrong_is_a_config_error(env_dir: Path) -> None:
    data = yaml.safe_load((env_dir / "dev.yaml").read_text())
    assert refused_or_loaded(lambda: load_env("dev"), env_dir / "dev.yaml", mutations(data)) == []


def test_every_catalog_key_set_wrong_is_a_config_error(env_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(SPEC_CATALOG.read_text())
    file = tmp_path / "catalog.yaml"
    monkeypatch.setenv(CATALOG_ENV_VAR, str(file))

    def load() -> None:
        load_catalog()
        load_env("dev")  # the env rules read the catalog too

    # a catalog without a service the env's release names: the env file is refused for it
    assert refused_or_loaded(load, file, mutations(data), named=("dev.yaml",)) == []
