"""Which level each rule runs at for an env, and which findings the env acknowledges.

Level of a rule = the catalog's default for the env's baseline (``policy.baseline``, default the env
name), overridden by the env's ``policy.enforcement`` (the env schema refuses to loosen a prod
mandatory rule), overridden by explicit ``enforcement`` given to the API. Suppressions come from the
env's ``policy.suppressions``: a suppressed finding is still reported, with its reason, and never
fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import UsageError
from shared.policy.findings import Finding
from shared.policy.packs import suppressed
from shared.policy_catalog import BASELINES, LEVEL_STRENGTH, load_rules


@dataclass(frozen=True)
class Suppression:
    rule: str
    resource: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        # the packs match the same way under the CLI (shared.policy.packs.cli_policies)
        return finding.rule == self.rule and suppressed([self.resource], finding.urn)


@dataclass(frozen=True)
class Enforcement:
    """The policy settings one document is evaluated with."""

    env: str | None
    baseline: str
    levels: dict[str, str] = field(hash=False)
    suppressions: tuple[Suppression, ...] = ()

    def apply_suppressions(self, finding: Finding) -> Finding:
        for suppression in self.suppressions:
            if suppression.matches(finding):
                return Finding(**{**finding.__dict__, "suppressed": True, "reason": suppression.reason})
        return finding


def _check_overrides(overrides: dict[str, str], source: str) -> None:
    rules = load_rules()
    for rule, level in overrides.items():
        if rule not in rules:
            raise UsageError(f"{source}: unknown rule id {rule!r} (see policies/catalog.yaml)")
        if level not in LEVEL_STRENGTH:
            raise UsageError(f"{source}: {rule}: level must be one of {', '.join(LEVEL_STRENGTH)}, not {level!r}")


def enforcement_for(env_name: str | None, enforcement: dict[str, str] | None = None) -> Enforcement:
    """The settings of ``env_name`` (None: a ``--program`` run with the dev baseline, no suppressions)."""
    overrides: dict[str, str] = {}
    suppressions: tuple[Suppression, ...] = ()
    baseline = "dev"
    if env_name is not None:
        from shared.envs import load_env

        env = load_env(env_name)
        baseline = env.baseline
        overrides.update(env.policy.enforcement)
        suppressions = tuple(Suppression(s.rule, s.resource, s.reason) for s in env.policy.suppressions)
    if enforcement:
        _check_overrides(enforcement, "enforcement")
        overrides.update(enforcement)
    assert baseline in BASELINES
    levels = {rule_id: overrides.get(rule_id, rule.level_for(baseline)) for rule_id, rule in load_rules().items()}
    return Enforcement(env=env_name, baseline=baseline, levels=levels, suppressions=suppressions)
