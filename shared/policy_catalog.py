"""The policy catalog (``policies/catalog.yaml``): the one list of rule ids and their metadata.

Rule ids are public names: they appear in findings, suppressions, env files and CI annotations.
Each id has exactly one implementation, ``policies/<pack>/rules/<id>.py``.

The file has two sections: ``rules`` (pack, summary, default level per baseline) and ``metadata``
(per rule id: severity, the equivalent controls of other rule sets, a documentation link and the
remediation). Every rule has exactly one metadata entry; SARIF, the findings JSON, ``--explain`` and
the rule table of ``policies/README.md`` are built from it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


Severity = Literal["low", "medium", "high", "critical"]

#: GitHub code scanning reads a rule's ``properties.security-severity`` (a number as a string) and
#: buckets it: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 3.9 or less low (GitHub docs, "SARIF
#: support for code scanning", reportingDescriptor object).
SECURITY_SEVERITY: dict[str, str] = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}

#: The id shapes of each rule set named in ``equivalents``: a typo is a catalog error, not a silent miss.
EQUIVALENT_ID = {
    "securityhub": re.compile(r"^[A-Za-z0-9]+\.\d+$"),  # AWS Security Hub FSBP control, e.g. ECR.1
    "cdk_nag": re.compile(r"^(AwsSolutions-[A-Z0-9]+|[A-Za-z0-9]+)$"),  # rule id of a cdk-nag pack
    "checkov": re.compile(r"^CKV2?_AWS_\d+$"),
    "cis": re.compile(r"^\d+(\.\d+)+$"),  # CIS AWS Foundations Benchmark recommendation number
}


class Equivalents(BaseModel):
    """The matching controls of the anchor rule sets (empty: none matches)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    securityhub: tuple[str, ...] = ()
    cdk_nag: tuple[str, ...] = ()
    checkov: tuple[str, ...] = ()
    cis: tuple[str, ...] = ()

    @field_validator("securityhub", "cdk_nag", "checkov", "cis")
    @classmethod
    def _ids(cls, values: tuple[str, ...], info: object) -> tuple[str, ...]:
        field = getattr(info, "field_name", "")
        pattern = EQUIVALENT_ID[field]
        bad = [value for value in values if not pattern.match(value)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not a {field} id (expected {pattern.pattern})")
        return values

    def labelled(self) -> list[str]:
        """``Security Hub ECR.1``, ``cdk-nag AwsSolutions-ECR1``, ``checkov CKV_AWS_163``, ``CIS 1.16``."""
        return ([f"Security Hub {c}" for c in self.securityhub] + [f"cdk-nag {c}" for c in self.cdk_nag]
                + [f"checkov {c}" for c in self.checkov] + [f"CIS {c}" for c in self.cis])


class RuleMeta(BaseModel):
    """A rule's entry of the catalog's ``metadata`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity
    equivalents: Equivalents = Equivalents()
    docs: str = Field(pattern=r"^https://\S+$")
    remediation: str = Field(min_length=20)

    @property
    def security_severity(self) -> str:
        return SECURITY_SEVERITY[self.severity]


class RuleInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    pack: Literal["aws", "rabbitmq", "platform"]
    summary: str
    levels: Levels
    meta: RuleMeta
    #: Per baseline, the values a rule reads from its policy config (e.g. a retention floor): sent with
    #: the rule's level (``shared.policy.engine.pack_config``). Either absent or one entry per baseline.
    parameters: dict[str, dict[str, int | str | bool]] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _every_baseline(cls, value: dict[str, dict[str, int | str | bool]]) -> dict[str, dict[str, int | str | bool]]:
        if value and (set(value) != set(BASELINES) or len({frozenset(v) for v in value.values()}) != 1):
            raise ValueError(f"give the same parameter names for each of {', '.join(BASELINES)}")
        return value

    def level_for(self, baseline: str) -> Level:
        return getattr(self.levels, baseline)

    def parameters_for(self, baseline: str) -> dict[str, int | str | bool]:
        """The rule's parameters for ``baseline`` (empty for a rule without any)."""
        return dict(self.parameters.get(baseline, {}))

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
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        raise ConfigError(str(CATALOG_FILE), "metadata", "must be a mapping of rule id to its metadata")
    strays = [rule_id for rule_id in metadata if rule_id not in rules]
    if strays:
        raise ConfigError(str(CATALOG_FILE), f"metadata.{strays[0]}", "is not a rule id of the rules section")
    result: dict[str, RuleInfo] = {}
    for rule_id, entry in rules.items():
        if rule_id not in metadata:
            raise ConfigError(str(CATALOG_FILE), f"metadata.{rule_id}",
                              "missing: every rule declares severity, equivalents, docs and remediation")
        try:
            meta = RuleMeta.model_validate(metadata[rule_id] or {})
        except ValidationError as error:
            raise _catalog_error(f"metadata.{rule_id}", error) from None
        try:
            result[rule_id] = RuleInfo.model_validate({"id": rule_id, **(entry or {}), "meta": meta})
        except ValidationError as error:
            raise _catalog_error(f"rules.{rule_id}", error) from None
    return result


def _catalog_error(where: str, error: ValidationError) -> ConfigError:
    """The catalog error naming the key (``<where>.<field path>``) of the first validation error."""
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    return ConfigError(str(CATALOG_FILE), f"{where}.{key}", first["msg"])


@lru_cache(maxsize=1)
def anchors_not_covered() -> dict[tuple[str, str], str]:
    """(rule set, control id) -> why no rule covers it: the catalog's ``anchors_not_covered``."""
    from shared.yamlio import load_yaml_mapping

    data = load_yaml_mapping(CATALOG_FILE).get("anchors_not_covered") or {}
    if not isinstance(data, dict):
        raise ConfigError(str(CATALOG_FILE), "anchors_not_covered",
                          "must be a mapping of '<rule set> <id>' to a reason")
    covered = {(rule_set, control) for rule in load_rules().values()
               for rule_set in EQUIVALENT_ID for control in getattr(rule.meta.equivalents, rule_set)}
    result: dict[tuple[str, str], str] = {}
    for key, reason in data.items():
        rule_set, _, control = str(key).partition(" ")
        pattern = EQUIVALENT_ID.get(rule_set)
        if pattern is None or not pattern.match(control):
            raise ConfigError(str(CATALOG_FILE), f"anchors_not_covered.{key}",
                              f"expected '<rule set> <id>' with rule set one of {', '.join(EQUIVALENT_ID)}")
        if (rule_set, control) in covered:
            raise ConfigError(str(CATALOG_FILE), f"anchors_not_covered.{key}",
                              "is an equivalent of a rule in the metadata section: it is covered")
        if not isinstance(reason, str) or len(reason) < 20:
            raise ConfigError(str(CATALOG_FILE), f"anchors_not_covered.{key}", "needs a reason (20+ characters)")
        result[(rule_set, control)] = reason
    return result


def rules_of_pack(pack: str) -> list[RuleInfo]:
    return [rule for rule in load_rules().values() if rule.pack == pack]
