"""The policy catalog (``policies/catalog.yaml``): the one list of rule ids.

Rule ids are public names: they appear in findings, suppressions, env files and CI annotations.
Each id has exactly one implementation, ``policies/<pack>/rules/<id>.py``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from shared import REPO_ROOT
from shared.errors import ConfigError

CATALOG_FILE = REPO_ROOT / "policies" / "catalog.yaml"
PACKS: tuple[str, ...] = ("aws", "rabbitmq", "platform")
BASELINES: tuple[str, ...] = ("dev", "staging", "prod")

Level = Literal["mandatory", "advisory", "disabled"]
LEVEL_STRENGTH: dict[str, int] = {"disabled": 0, "advisory": 1, "mandatory": 2}


class Levels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dev: Level
    staging: Level
    prod: Level


class RuleInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    pack: Literal["aws", "rabbitmq", "platform"]
    summary: str
    levels: Levels

    def level_for(self, baseline: str) -> Level:
        return getattr(self.levels, baseline)

    @property
    def path(self) -> Path:
        return REPO_ROOT / "policies" / self.pack / "rules" / f"{self.id}.py"


@lru_cache(maxsize=1)
def load_rules() -> dict[str, RuleInfo]:
    """rule id -> its catalog entry, in catalog order."""
    from shared.yamlio import load_yaml_mapping

    data = load_yaml_mapping(CATALOG_FILE)
    rules = data.get("rules")
    if not isinstance(rules, dict):
        raise ConfigError(str(CATALOG_FILE), "rules", "must be a mapping of rule id to entry")
    result: dict[str, RuleInfo] = {}
    for rule_id, entry in rules.items():
        try:
            result[rule_id] = RuleInfo.model_validate({"id": rule_id, **(entry or {})})
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(str(CATALOG_FILE), f"rules.{rule_id}.{key}", first["msg"]) from None
    return result


def rules_of_pack(pack: str) -> list[RuleInfo]:
    return [rule for rule in load_rules().values() if rule.pack == pack]
