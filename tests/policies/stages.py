"""Every rule judges a stack the same whatever the engine sends it (``shared.policy.stages``).

The packs' tests build documents of inputs, which the offline engine sends to both calls; a real ``up`` sends
``AnalyzeStack`` the outputs, and a first preview sends both calls unknowns for what AWS computes. Each evaluation
of the rule tests is therefore made in all three stages (tests/policies/conftest.py), and held to:

* ``up``: the same findings (rule and resource) as offline -- a rule that reads a property the outputs lack, or
  misreads one they add (``id``, ``arn``, ``tagsAll``), would pass or fail a real ``up`` unlike ``nox -s policy``;
* ``first-preview``: no finding offline lacks (an unknown must never fail the first preview in an empty
  account), and each offline finding either still found or its rule saying it cannot decide (never a silent pass).
"""

from __future__ import annotations

from shared.policy.findings import PolicyResult

STAGED = ("up", "first-preview")


def _judged(result: PolicyResult) -> set[tuple[str, str | None]]:
    return {(finding.rule, finding.urn) for finding in result.findings}


def stage_differences(offline: PolicyResult, staged: PolicyResult, stage: str) -> list[str]:
    """What ``staged`` (the evaluation in ``stage``) judges unlike ``offline``; empty: the same."""
    base, got = _judged(offline), _judged(staged)
    if stage == "up":
        return ([f"{rule} finds {urn} in an up, not offline" for rule, urn in sorted(got - base, key=str)]
                + [f"{rule} finds {urn} offline, not in an up" for rule, urn in sorted(base - got, key=str)])
    undecided = {(record.rule, record.urn) for record in staged.not_applicable}
    problems = [f"{rule} finds {urn} in a first preview, not offline" for rule, urn in sorted(got - base, key=str)]
    for rule, urn in sorted(base - got, key=str):
        if (rule, urn) not in undecided and (rule, None) not in undecided:
            problems.append(f"{rule} finds {urn} offline, but passes it in a first preview without saying it "
                            f"cannot decide")
    return problems
