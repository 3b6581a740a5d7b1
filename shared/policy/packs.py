"""Loading and serving a CrossGuard pack: one module per rule, the file name is the rule id.

Used by ``policies/<pack>/__main__.py`` under the real ``pulumi`` CLI as well as under the offline
engine, so it imports nothing but the standard library, ``pulumi_policy``, the policy catalog and
(to serve, offline only) :mod:`shared.policy.fast_analyzer`.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import Any

from pulumi_policy import EnforcementLevel, Policy, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError

from shared.errors import PlatformError
from shared.policy_catalog import BASELINES, LEVEL_STRENGTH, PACKS, load_rules, rules_of_pack


class PackDefinitionError(PlatformError):
    """A pack's rule files and ``policies/catalog.yaml`` disagree, or a rule module is malformed
    (bad input of the repo: exit 2 where a command checks it before starting the packs)."""

    exit_code = 2


def _load_module(pack: str, path: Path) -> ModuleType:
    # Rule ids contain hyphens, so they cannot be imported by name; load each file by path under a
    # private, unique module name.
    module_name = f"_policy_rules_{pack}_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PackDefinitionError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rule_files(pack_dir: Path) -> dict[str, Path]:
    """rule id -> ``<pack_dir>/rules/<id>.py``, in catalog order; PackDefinitionError unless the rule
    files are exactly the catalog's ids for that pack (a rule can neither be forgotten nor exist
    outside the catalog)."""
    pack_dir = Path(pack_dir).resolve()
    pack = pack_dir.name
    if pack not in PACKS:
        # a published copy (`pulumi policy publish`) lands in ~/.pulumi/policies/<org>/pulumi-analyzer-<name>-v<version>
        raise PackDefinitionError(f"{pack_dir}: {pack!r} is not a pack of the catalog ({', '.join(PACKS)}); a pack "
                                  "runs from its folder policies/<pack> of this repository (it reads shared/ and "
                                  "policies/catalog.yaml): a published copy is not supported")
    expected = [rule.id for rule in rules_of_pack(pack)]
    files = {path.stem: path for path in sorted((pack_dir / "rules").glob("*.py")) if path.stem != "__init__"}
    missing = sorted(set(expected) - set(files))
    extra = sorted(set(files) - set(expected))
    if missing or extra:
        parts = []
        # A rule whose file is in another pack's folder is a wrong `pack` (or a file in the wrong folder), neither a
        # missing file nor a missing entry: name the file and the catalog key, or the user finds both and is stuck.
        misplaced = {rule_id: found for rule_id in missing
                     for found in sorted(pack_dir.parent.glob(f"*/rules/{rule_id}.py"))[:1]}
        if absent := [rule_id for rule_id in missing if rule_id not in misplaced]:
            parts.append(f"catalog rules without a file: {', '.join(absent)}")
        parts += [f"{found}: policies/catalog.yaml has rules.{rule_id}.pack {pack!r}, not "
                  f"{found.parent.parent.name!r} (move the file to policies/{pack}/rules/ or correct the pack)"
                  for rule_id, found in misplaced.items()]
        elsewhere = {rule.id: rule.pack for rule in load_rules().values() if rule.id in extra}
        unlisted = [rule_id for rule_id in extra if rule_id not in elsewhere]
        if unlisted:
            parts.append(f"rule files not in policies/catalog.yaml: {', '.join(unlisted)}")
        parts += [f"{files[rule_id]}: policies/catalog.yaml has rules.{rule_id}.pack {other!r}, not {pack!r} "
                  f"(move the file to policies/{other}/rules/ or correct the pack)"
                  for rule_id, other in sorted(elsewhere.items())]
        raise PackDefinitionError(f"pack {pack!r} ({pack_dir / 'rules'}): " + "; ".join(parts))
    return {rule_id: files[rule_id] for rule_id in expected}


def load_policies(pack_dir: Path) -> list[Policy]:
    """Every ``POLICY`` of ``<pack_dir>/rules/*.py``, in catalog order (see :func:`rule_files`)."""
    files = rule_files(pack_dir)
    pack = Path(pack_dir).resolve().name
    expected = list(files)
    policies: list[Policy] = []
    for rule_id in expected:
        module = _load_module(pack, files[rule_id])
        policy = getattr(module, "POLICY", None)
        if not isinstance(policy, (ResourceValidationPolicy, StackValidationPolicy)):
            raise PackDefinitionError(f"{files[rule_id]}: POLICY must be a ResourceValidationPolicy or "
                                      f"StackValidationPolicy, got {type(policy).__name__}")
        if policy.name != rule_id:
            raise PackDefinitionError(f"{files[rule_id]}: POLICY.name is {policy.name!r}, expected {rule_id!r} "
                                      "(use name=rule_id(__file__))")
        if not (module.__doc__ or "").strip():
            raise PackDefinitionError(f"{files[rule_id]}: the rule module needs a docstring "
                                      "(what, why, cdk-nag/checkov id)")
        policies.append(policy)
    return policies


#: The policy config property under which ``nox -s preview|up`` hands a rule the resources its env suppresses it for
#: (``policy.suppressions``: URN or resource-name patterns, ``fnmatch`` style, as :class:`shared.policy.enforcement
#: .Suppression` matches them). The offline engine does not send it: it applies suppressions to the findings itself.
SUPPRESSED_KEY = "suppressedResources"

#: A not-applicable reason that says the rule could not decide (a value unknown until deployment, secretness the
#: config did not carry), as the rules' helpers word it (shared.policy_support.undecidable and its kin).
UNDECIDED_REASON = re.compile(r"cannot (decide|count|measure|tell)|unknown until deployment|not known during "
                              r"preview|before deployment|secretness")


def suppressed(patterns: Sequence[str], urn: str | None) -> bool:
    """Whether a finding on ``urn`` matches one of ``patterns`` (the URN itself, or its resource name)."""
    candidates = [c for c in (urn, urn.rsplit("::", 1)[-1] if urn else None) if c]
    return any(fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates)


class _Undecided(UnknownValueError):
    """A rule that could not decide, raised so that pulumi_policy reports it as its "can't run policy ... during
    preview" advisory diagnostic, which the CLI prints (it prints no not-applicable answer)."""

    def __init__(self, reason: str) -> None:
        Exception.__init__(self, reason)  # not UnknownValueError's: it words the message from a sentinel and a path
        self.unknown_type_sentinel = ""
        self.props: list[str] = []
        self.message = reason


def _as_under_the_cli(policy: ResourceValidationPolicy | StackValidationPolicy) -> None:
    """``policy`` as a pack under the ``pulumi`` CLI needs it (:func:`serve`): suppressions honoured, an undecided
    rule said aloud."""
    original = policy.validate

    def validate(args: Any, report_violation: Any) -> Any:
        config = args.get_config() or {}
        patterns = [str(p) for p in config.get(SUPPRESSED_KEY) or ()]
        report = report_violation
        if patterns:
            def report(message: str, urn: str | None = None) -> None:
                if not suppressed(patterns, urn or getattr(args, "urn", None)):
                    report_violation(message, urn)
        try:
            return original(args, report)
        except _NotApplicableError as error:
            if error.reason and UNDECIDED_REASON.search(error.reason):
                raise _Undecided(error.reason) from None
            raise

    policy.validate = validate  # type: ignore[method-assign,assignment]


def cli_policies(policies: list[Policy]) -> list[Policy]:
    """The pack's rules as the ``pulumi`` CLI runs them, where the offline engine's own handling is missing:

    - a rule's level when no ``--policy-pack-config`` names it is the strongest any baseline of the catalog gives it
      (a bare ``pulumi preview --policy-pack`` blocks what some env blocks; the config files of ``nox -s
      preview|up`` set every rule's level for the env);
    - a finding on a resource the env suppresses the rule for (the config's :data:`SUPPRESSED_KEY`) is not
      reported, as ``nox -s policy`` does not fail on it (it lists it with its reason);
    - a rule that cannot decide (:data:`UNDECIDED_REASON`) is an advisory "can't run policy" diagnostic, as
      ``pulumi_policy`` reports an unknown value itself, instead of a not-applicable answer the CLI never shows.
    """
    rules = load_rules()
    for policy in policies:
        assert isinstance(policy, ResourceValidationPolicy | StackValidationPolicy)  # load_policies refuses others
        strongest = max((rules[policy.name].level_for(baseline) for baseline in BASELINES),
                        key=LEVEL_STRENGTH.__getitem__)
        policy.enforcement_level = EnforcementLevel(strongest)
        _as_under_the_cli(policy)
    return policies


def pack_name(pack: str) -> str:
    """The ``PolicyPack`` name of a pack (what ``pulumi preview --policy-pack`` reports)."""
    return f"ml-platform-{pack}"


def serve(pack_dir: Path) -> None:
    """Run the pack in ``pack_dir`` as a CrossGuard analyzer: what every ``policies/<pack>/__main__.py`` does.

    The ``pulumi`` CLI runs that file (``python -u -m pulumi.policy <engine> <pack dir>``) with the pack
    directory as working directory; the offline engine (``nox -s policy``) starts it the same way.
    Which rules exist, their ids and descriptions come from ``rules/<rule-id>.py`` and
    ``policies/catalog.yaml``.

    The analyzer speed-up (each resource converted once, not once per rule; the ``AnalyzeBatch``
    method) is installed only when the offline engine started this process and the installed
    ``pulumi_policy`` is the tested one (:mod:`shared.patch_guard`); under the ``pulumi`` CLI the pack
    is plain ``pulumi_policy`` with :func:`cli_policies`' three changes (levels fail closed, suppressions, an
    undecided rule said aloud). The offline engine, or a ``--policy-pack-config`` file written from
    ``shared.policy.engine.pack_config()`` (``nox -s preview|up`` write them), sets each rule's level for the env.
    """
    from pulumi_policy import PolicyPack

    from shared.patch_guard import ANALYZER_PATCHED, patches_allowed, started_by_offline_engine

    offline = started_by_offline_engine()
    if offline and patches_allowed("the policy packs' analyzer speed-up", ANALYZER_PATCHED):
        from shared.policy.fast_analyzer import install

        install()
    policies = load_policies(pack_dir)
    PolicyPack(name=pack_name(pack_dir.name), policies=policies if offline else cli_policies(policies),
               enforcement_level=EnforcementLevel.ADVISORY)
