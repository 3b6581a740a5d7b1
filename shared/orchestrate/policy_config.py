"""``--policy-pack-config`` files: each rule's enforcement level for one environment, and what the packs need from
the synth and the env file that the CLI cannot give them.

The files hold what the offline engine sends its packs with ``Configure`` (:func:`shared.policy.engine.pack_config`
over :func:`shared.policy.enforcement.enforcement_for`: the catalog default for the env's baseline, tightened by the
env's ``policy.enforcement``), so a real ``pulumi preview`` runs every rule at the level ``nox -s policy`` used, and:

- no-plaintext-secrets' ``secretInputs``/``literalInputs``, from the env's offline synth (the same programs and
  stack names), keyed by the URNs the engine gives the resources (:func:`engine_urns`): CrossGuard unwraps secrets
  before a rule sees the inputs, and without them the rule could not decide under the CLI;
- each rule's suppressed resources (``policy.suppressions``), which the packs honour under the CLI
  (:func:`shared.policy.packs.cli_policies`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared import REPO_ROOT
from shared.policy_catalog import PACKS

POLICIES_DIR = REPO_ROOT / "policies"


def synth_documents(env_name: str, layers: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The env's layers (``layers`` and what they read; default all), synthesized offline now."""
    from shared.synth.engine import synth_env

    return list(synth_env(env_name, list(layers) if layers else None).values())


def pack_configs(env_name: str, documents: Sequence[dict[str, Any]] = ()) -> dict[str, dict[str, dict[str, Any]]]:
    """pack -> ``{rule: {"enforcementLevel": level, ...}}`` for ``env_name`` (``documents``: its synth, for
    no-plaintext-secrets)."""
    from shared.policy.enforcement import enforcement_for
    from shared.policy.engine import pack_config

    enforcement = enforcement_for(env_name)
    configs = {pack: pack_config(enforcement, pack, documents, suppressions=True) for pack in PACKS}
    engine = engine_urns(documents)
    for config in configs.values():
        for entry in config.values():
            for key in ("secretInputs", "literalInputs"):
                if isinstance(entry.get(key), dict):
                    entry[key] = {engine.get(urn, urn): names for urn, names in entry[key].items()}
    return configs


def engine_urns(documents: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each synth URN -> the URN the engine gives the same resource, which the CLI sends the packs: the synth's mock
    runtime keeps only a parent's last type where the engine chains every ancestor's
    (:func:`shared.urns.engine_urn`)."""
    from shared.urns import engine_urns_of

    mapping: dict[str, str] = {}
    for document in documents:
        mapping.update(engine_urns_of(document))
    return mapping


def write_pack_configs(env_name: str, out_dir: Path, policies_dir: Path = POLICIES_DIR,
                       documents: Sequence[dict[str, Any]] = ()) -> list[tuple[Path, Path]]:
    """Write one config per pack; returns (pack directory, config file) pairs, in pack order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for pack, config in pack_configs(env_name, documents).items():
        config_file = out_dir / f"{pack}.json"
        # whole or not at all: another run of the env may be reading it (a preview beside an up)
        scratch = out_dir / f".{pack}.json.{os.getpid()}"
        scratch.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.replace(scratch, config_file)
        pairs.append((policies_dir / pack, config_file))
    return pairs
