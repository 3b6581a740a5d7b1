"""README's list of env keys (section "Environments") names every key of the env schema: a key added to
``shared/envs.py`` without a word in the README fails here (its change-matrix row is checked separately, in
tests/test_env_key_changes.py)."""

from __future__ import annotations

import fnmatch
import re
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from shared import REPO_ROOT
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


SECRET_TYPE = "aws:secretsmanager/secret:Secret"
SECRET_VERSION_TYPE = "aws:secretsmanager/secretVersion:SecretVersion"


def _read_role_step() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    step = re.search(r"^3\. Read-only role per env.*?(?=^4\. )", text, re.MULTILINE | re.DOTALL)
    assert step is not None, "README lacks the read-only role step of the CI set-up"
    return " ".join(step.group(0).split())


def _secret_reads_of_a_preview(env: str) -> dict[str, str]:
    """Secret name -> the alias of the key it is encrypted with, for every secret value a preview of ``env`` reads:
    the broker admin secret (messaging's program, ``broker_access``: GetSecretValue) and, in each layer whose preview
    refreshes first (``REFRESHED_LAYERS``: messaging), the secret of every SecretVersion, whose refresh is a
    GetSecretValue (terraform-provider-aws secretsmanager resourceSecretVersionRead: findSecretVersionByTwoPartKey)."""
    from shared.components.broker import admin_secret_name
    from shared.orchestrate.automation import REFRESHED_LAYERS
    from tests.synth_helpers import by_urn, of_type, synth_layers

    documents = synth_layers(env, *sorted(REFRESHED_LAYERS))
    reads: dict[str, str] = {}
    for layer, document in documents.items():
        aliases = {str(alias["inputs"]["targetKeyId"]): str(alias["inputs"]["name"])
                   for alias in of_type(document, "aws:kms/alias:Alias")}

        def alias_of(secret: dict[str, Any], aliases: dict[str, str] = aliases) -> str:
            key = str(secret["inputs"].get("kmsKeyId") or "").rsplit("/", 1)[-1]
            return aliases.get(key, f"(key {key or 'aws/secretsmanager'})")

        resources = by_urn(document)
        if layer == "broker":
            for secret in of_type(document, SECRET_TYPE):
                if secret["inputs"]["name"] == admin_secret_name(env):
                    reads[admin_secret_name(env)] = alias_of(secret)
        if layer in REFRESHED_LAYERS:
            for version in of_type(document, SECRET_VERSION_TYPE):
                secret = resources[version["parent"]]
                assert secret["type"] == SECRET_TYPE, version["urn"]
                reads[str(secret["inputs"]["name"])] = alias_of(secret)
    return reads


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_readme_read_role_grants_every_secret_value_a_preview_reads(env: str) -> None:
    """``ReadOnlyAccess`` grants no secret value (AWS ships secret reads as ``AWSSecretsManagerClientReadOnlyAccess``),
    so the README's read-role step must name each secret a preview reads (as an ARN pattern of its name) and the key
    that decrypts it (by alias): else messaging's preview on the in-VPC runner fails with AccessDenied."""
    from shared.components.broker import admin_secret_name

    step = _read_role_step()
    granted = re.findall(r"arn:aws:secretsmanager:<region>:<account_id>:secret:([^`\s]+)", step)
    assert "secretsmanager:GetSecretValue" in step and "kms:Decrypt" in step
    reads = _secret_reads_of_a_preview(env)
    assert admin_secret_name(env) in reads and any("/messaging/" in name for name in reads)  # the test sees both
    missing = [name for name in reads
               if not any(fnmatch.fnmatchcase(name + "-AbCdEf", pattern.replace("<env>", env)) for pattern in granted)]
    assert missing == [], f"README's read-only role step grants no GetSecretValue on {missing} (granted: {granted})"
    keys = sorted({alias.removeprefix("alias/").replace(f"/{env}/", "/<env>/") for alias in reads.values()})
    assert [alias for alias in keys if f"alias `{alias}`" not in step] == [], \
        f"README's read-only role step must name the keys {keys} (kms:Decrypt)"


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
