"""YAML reading with errors that name the file and the place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConfigError

# libyaml's parser when PyYAML was built with it (the wheels are): the same safe schema, ~10x faster
# than the pure-Python one -- env, catalog and Pulumi project files are read on every synth.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with :data:`SafeLoader`."""
    return yaml.load(text, Loader=SafeLoader)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse ``path`` as YAML whose top level is a mapping (ConfigError otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), "(file)", f"cannot be read: {error.strerror}") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(str(path), where, f"YAML syntax error: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", "must be a mapping of keys to values")
    return data
