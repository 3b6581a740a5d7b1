"""README's list of env keys (section "Environments") names every key of the env schema: a key added to
``shared/envs.py`` without a word in the README fails here (its change-matrix row is checked separately, in
tests/test_env_key_changes.py)."""

from __future__ import annotations

import re

from shared import REPO_ROOT
from shared.envs import EnvConfig
from tests.test_env_key_changes import _leaf_keys

START, END = "<!-- env-keys: start", "<!-- env-keys: end -->"


def readme_key_list() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert START in text and END in text, "README lacks the env-keys list markers"
    return text[text.index(START):text.index(END)]


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


def test_readme_read_role_covers_the_admin_secret_messagings_preview_reads() -> None:
    """messaging's preview reads the broker admin password (``broker_access``: GetSecretValue, decrypted with the
    broker's key); ReadOnlyAccess grants neither, so the README's read-role step must name both, by the secret's
    real name."""
    from shared.components.broker import admin_secret_name

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    step = re.search(r"^3\. Read-only role per env.*?(?=^4\. )", text, re.MULTILINE | re.DOTALL)
    assert step is not None, "README lacks the read-only role step of the CI set-up"
    for needed in ("secretsmanager:GetSecretValue", f"secret:{admin_secret_name('<env>')}-*", "kms:Decrypt"):
        assert needed in step.group(0), f"README's read-only role step does not name {needed}"
