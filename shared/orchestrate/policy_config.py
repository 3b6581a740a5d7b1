"""``--policy-pack-config`` files: each rule's enforcement level for one environment.

The files hold exactly what the offline engine sends its packs with ``Configure``
(:func:`shared.policy.engine.pack_config` over :func:`shared.policy.enforcement.enforcement_for`:
the catalog default for the env's baseline, tightened by the env's ``policy.enforcement``), so a
real ``pulumi preview`` runs every rule at the level ``nox -s policy`` used. Suppressions are per
resource, which a CrossGuard config cannot express: the offline engine honours them, the real CLI
reports a suppressed finding at the rule's level (see README).
"""

from __future__ import annotations

import json
from pathlib import Path

from shared import REPO_ROOT
from shared.policy_catalog import PACKS

POLICIES_DIR = REPO_ROOT / "policies"


def pack_configs(env_name: str) -> dict[str, dict[str, dict[str, str]]]:
    """pack -> ``{rule: {"enforcementLevel": level}}`` for ``env_name``."""
    from shared.policy.enforcement import enforcement_for
    from shared.policy.engine import pack_config

    enforcement = enforcement_for(env_name)
    return {pack: pack_config(enforcement, pack) for pack in PACKS}


def write_pack_configs(env_name: str, out_dir: Path, policies_dir: Path = POLICIES_DIR) -> list[tuple[Path, Path]]:
    """Write one config per pack; returns (pack directory, config file) pairs, in pack order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for pack, config in pack_configs(env_name).items():
        config_file = out_dir / f"{pack}.json"
        config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        pairs.append((policies_dir / pack, config_file))
    return pairs
