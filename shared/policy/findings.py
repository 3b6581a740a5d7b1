"""What an evaluation produces: findings (violations) and not-applicable records.

A :class:`Finding` serializes to exactly the findings JSON (README, File formats); that shape is a
public interface (CI, suppressions and outside checks read it), so fields are only ever added to the
dataclass, never to :meth:`Finding.to_json` without updating the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.dag import LAYERS
from shared.policy_catalog import load_rules
from shared.urns import ROOT_STACK_TYPE

STACK_TYPE = ROOT_STACK_TYPE


def resource_name(urn: str | None) -> str | None:
    """The logical name of a URN (the part after the last ``::``)."""
    if not urn:
        return None
    return urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class Finding:
    rule: str
    pack: str
    enforcement: str
    env: str | None
    layer: str | None
    urn: str | None
    resource_type: str | None
    message: str
    suppressed: bool = False
    reason: str | None = None
    #: The rule's severity from the catalog's metadata (filled in when not given).
    severity: str = ""
    #: ``(path, line)`` where a ``--program`` run's program created the resource (path relative to the
    #: program directory); None for the platform's layers and for resources no program line created.
    location: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if not self.severity:
            rule = load_rules().get(self.rule)
            object.__setattr__(self, "severity", rule.meta.severity if rule is not None else "")

    @property
    def blocking(self) -> bool:
        """An unsuppressed mandatory finding: it fails the run (exit 1)."""
        return self.enforcement == "mandatory" and not self.suppressed

    @property
    def resource_name(self) -> str | None:
        return resource_name(self.urn)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "pack": self.pack,
            "enforcement": self.enforcement,
            "env": self.env,
            "layer": self.layer,
            "urn": self.urn,
            "resource_type": self.resource_type,
            "message": self.message,
            "suppressed": self.suppressed,
            "reason": self.reason,
            "severity": self.severity,
            # Added for --program runs only (absent elsewhere, so layer findings keep their bytes).
            **({"location": {"path": self.location[0], "line": self.location[1]}} if self.location else {}),
        }

    def sort_key(self) -> tuple[Any, ...]:
        layer_index = LAYERS.index(self.layer) if self.layer in LAYERS else len(LAYERS)
        return (self.env or "", layer_index, self.layer or "", self.rule, self.urn or "", self.message)


@dataclass(frozen=True)
class NotApplicable:
    """A rule that could not decide for a resource (unknown value) or does not apply to its type."""

    rule: str
    pack: str
    env: str | None
    layer: str | None
    urn: str | None
    reason: str


# What PolicyResult keeps of not-applicable answers until someone reads them: a record, or
# (pack, env, layer, urn, the repeated PolicyNotApplicable field of a pack's response).
_NotApplicablePart = NotApplicable | tuple[str, str | None, str | None, str | None, Any]


@dataclass
class PolicyResult:
    """Everything one engine run returned, findings sorted deterministically."""

    findings: list[Finding] = field(default_factory=list)
    resources: int = 0
    documents: int = 0
    envs: list[str] = field(default_factory=list)
    #: What a --program run could not judge or answer offline (the synth document's ``warnings``).
    warnings: list[str] = field(default_factory=list)
    _not_applicable: list[_NotApplicablePart] = field(default_factory=list, repr=False)

    @property
    def not_applicable(self) -> list[NotApplicable]:
        """Every not-applicable answer, in the order the packs gave them.

        Built on first use: a run over thousands of resources gets hundreds of thousands (mostly "not
        a type this rule checks") and the commands never list them.
        """
        if any(not isinstance(part, NotApplicable) for part in self._not_applicable):
            records: list[_NotApplicablePart] = []
            for part in self._not_applicable:
                if isinstance(part, NotApplicable):
                    records.append(part)
                else:
                    pack, env, layer, urn, items = part
                    records.extend(NotApplicable(item.policy_name, pack, env, layer, urn, item.reason)
                                   for item in items)
            self._not_applicable = records
        return self._not_applicable  # type: ignore[return-value]

    def add_not_applicable(self, part: _NotApplicablePart) -> None:
        self._not_applicable.append(part)

    def absorb(self, other: PolicyResult) -> None:
        """Add ``other``'s findings, not-applicable answers and counts to this result."""
        self.findings.extend(other.findings)
        self._not_applicable.extend(other._not_applicable)
        self.resources += other.resources
        self.documents += other.documents

    @property
    def blocking(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.blocking]

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0
