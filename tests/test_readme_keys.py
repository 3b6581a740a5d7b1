"""README's list of env keys (section "Environments") names every key of the env schema: a key added to
``shared/envs.py`` without a word in the README fails here (its change-matrix row is checked separately, in
tests/test_env_key_changes.py)."""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from shared.envs import EnvConfig
from tests.readme_helpers import readme_block
from tests.test_env_key_changes import _leaf_keys

START, END = "<!-- env-keys: start", "<!-- env-keys: end -->"


def readme_key_list() -> str:
    return readme_block(START, END, "env-keys list")


def test_readme_names_every_key_of_the_env_schema() -> None:
    listed = readme_key_list()
    missing = []
    for key in _leaf_keys(EnvConfig):
        if "." not in key:  # a top-level key: named in backticks
            if f"`{key}`" not in listed:
                missing.append(key)
            continue
        section, *_, leaf = key.split(".")
        # the section in backticks opens its bullet; the key itself is named in that section's text
        bullet = re.search(rf"^- `{re.escape(section)}[`.].*?(?=^- |\Z)", listed, re.MULTILINE | re.DOTALL)
        if bullet is None or not re.search(rf"(?<![\w-]){re.escape(leaf)}(?![\w-])", bullet.group(0)):
            missing.append(key)
    assert missing == [], f"env keys README's key list (Environments) does not name: {missing}"


# -- the defaults below the list: generated from the schema ------------------------------------------------------

DEFAULTS_START = "<!-- env-defaults: start"
DEFAULTS_END = "<!-- env-defaults: end -->"


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list | dict) and not value:
        return "`[]`" if not isinstance(value, dict) else "`{}`"
    return f"`{value}`"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _defaults(model: type[BaseModel]) -> list[str]:
    """``key default`` for each key of ``model``, a nested section's keys in parentheses after its name."""
    parts = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        nested = _model_of(info.annotation)
        if nested is not None and get_origin(info.annotation) not in (tuple, dict):
            inner = ", ".join(_defaults(nested))
            optional = not info.is_required() and info.get_default(call_default_factory=True) is None
            parts.append(f"{key} unset, or ({inner})" if optional else f"{key} ({inner})")
            continue
        default = "required" if info.is_required() else _value(info.get_default(call_default_factory=True))
        parts.append(f"{key} {default}")
    return parts


def defaults_block() -> str:
    """README's list of every env key's default, as the schema has it."""
    lines = []
    top = []
    for name, info in EnvConfig.model_fields.items():
        nested = _model_of(info.annotation)
        if name == "name":
            continue  # the file's name
        if get_origin(info.annotation) is dict:  # services: settings per catalog service
            value = get_args(info.annotation)[1]
            lines.append(f"- `{name}.<service>`: {', '.join(_defaults(value))}")
            continue
        if nested is None:
            top.append(f"{name} {'required' if info.is_required() else _value(info.get_default())}")
            continue
        lines.append(f"- `{name}`{' (required)' if info.is_required() else ''}: {', '.join(_defaults(nested))}")
    return "\n".join([f"- top level: {', '.join(top)}", *lines])


def test_readme_gives_every_keys_default_as_the_schema_has_it() -> None:
    block = readme_block(DEFAULTS_START, DEFAULTS_END, "env-defaults")
    shown = block[block.index("\n- top level") + 1:].rstrip("\n")
    assert shown == defaults_block(), (
        "README's env key defaults (Environments) differ from shared/envs.py; replace the list with:\n"
        + defaults_block())


def test_readme_names_no_key_the_env_schema_lacks() -> None:
    """The reverse of the first test: a key removed from (or renamed in) the schema leaves no mention in the list.
    Checked for the multi-word keys (snake_case), the ones a reader copies into an env file."""
    listed = re.sub(r"\]\(#[^)]*\)", "]", readme_key_list())  # not the links' anchors
    named = set(re.findall(r"(?<![\w/.<-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/>-])", listed))
    known = {part for key in _leaf_keys(EnvConfig) for part in key.split(".")}
    known |= set(EnvConfig.model_fields)
    assert named - known == set(), f"README's env key list names keys the schema lacks: {sorted(named - known)}"
