"""A role that trusts an OIDC identity provider names the subjects it trusts; GitHub's, one repository.

Checks ``assumeRolePolicy`` of ``aws:iam/role:Role``: every ``Allow`` statement whose ``Federated`` principal
is an IAM OIDC provider (``arn:<partition>:iam::<account>:oidc-provider/<issuer>``) needs a condition on the
issuer's ``sub`` claim (``<issuer>:sub``) under a matching operator (``StringEquals``, ``StringLike``...; not a
negated or ``...IfExists`` one), and no value of it may be a bare wildcard. For GitHub Actions
(``token.actions.githubusercontent.com``, and a GitHub Enterprise issuer below it) each value must name one
repository: ``repo:<owner>/<repo>:...`` with owner and repository free of wildcards and policy variables; what
follows (branch, environment, ``pull_request``) may be a pattern, but not one of wildcards alone (``repo:o/r:*``:
every job of every branch and pull request of the repository) nor an environment of any name
(``repo:o/r:environment:*``: every environment, those without required reviewers too). A subject in a customized
format (GitHub's OIDC
subject templates) passes when it is a fixed value. ``aud`` alone does not narrow: every
workflow of every repository on GitHub gets a token with audience ``sts.amazonaws.com``.

Why: IAM checks the token's signature and audience, not who the workflow is. A deploy role trusted without a
subject (or with ``repo:*`` or ``repo:my-org/*``) can be assumed by any repository on GitHub (or any repository
of the organization, made by any member), which then deploys to the account. GitHub's and AWS's guides ask for
the ``sub`` condition (GitHub Docs, "Configuring OpenID Connect in Amazon Web Services"). Matches checkov
CKV_AWS_358; no cdk-nag equivalent.
"""

import re
from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    NARROWING_OPERATORS,
    NOT_FIXED_MARKS,
    allow_statements,
    applies_to,
    as_list,
    known_policy_document,
    rule_policy,
)
from shared.policy_typing import ReportViolation

OIDC_PROVIDER = re.compile(r"^arn:[^:]+:iam::[^:]*:oidc-provider/(?P<issuer>.+)$")
GITHUB_ISSUER = "token.actions.githubusercontent.com"
#: ``repo:<owner>/<repo>:`` at the start of a GitHub subject (owner and repository may carry GitHub's ``@<id>``).
GITHUB_REPOSITORY = re.compile(r"^repo:(?P<owner>[^/:]+)/(?P<repo>[^/:]+):")


def _issuers(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    federated = principal.get("Federated") if isinstance(principal, dict) else None
    return [match["issuer"] for value in as_list(federated)
            if isinstance(value, str) and (match := OIDC_PROVIDER.match(value.strip()))]


def _is_github(issuer: str) -> bool:
    return issuer.lower() == GITHUB_ISSUER or issuer.lower().startswith(f"{GITHUB_ISSUER}/")


def _subject_bounds(statement: dict[str, Any], issuer: str) -> list[list[Any]]:
    """The values of each ``<issuer>:sub`` entry under a narrowing operator; conditions are ANDed, so each entry
    is a bound of its own and the statement is as narrow as its narrowest entry."""
    condition = statement.get("Condition")
    key = f"{issuer}:sub".lower()
    if not isinstance(condition, dict):
        return []
    return [list(as_list(values)) for operator, entries in condition.items()
            if str(operator).lower() in NARROWING_OPERATORS and isinstance(entries, dict)
            for name, values in entries.items() if str(name).lower() == key]


def _too_wide(issuer: str, value: Any) -> bool:
    if not isinstance(value, str) or value.strip("*? ") == "":
        return True
    if not _is_github(issuer):
        return False
    match = GITHUB_REPOSITORY.match(value)
    if match is None:  # a customized subject format: only a fixed value names its subjects
        return any(mark in value for mark in NOT_FIXED_MARKS)
    if any(mark in match["owner"] + match["repo"] for mark in NOT_FIXED_MARKS):
        return True
    rest = value[match.end():]
    # every job of the repository, or of any of its environments: no branch or environment protection holds them
    return rest.strip("*?") == "" or (rest.startswith("environment:") and rest[len("environment:"):].strip("*?") == "")


@applies_to("aws:iam/role:Role")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    document = known_policy_document(args, "assumeRolePolicy", f"IAM role '{args.name}': assumeRolePolicy",
                                     report_violation, f"IAM role '{args.name}': assume_role_policy is not valid "
                                                       "JSON; fix the trust policy.")
    if document is None:
        return
    for label, statement in allow_statements(document):
        for issuer in _issuers(statement):
            bounds = _subject_bounds(statement, issuer)
            if not bounds:
                report_violation(f"IAM role '{args.name}': trust policy {label} trusts the OIDC provider {issuer} "
                                 f"without a condition on {issuer}:sub, so every identity the provider issues "
                                 "tokens to may assume the role; add StringEquals (or StringLike) on "
                                 f"{issuer}:sub naming the subjects, e.g. "
                                 "'repo:<owner>/<repo>:environment:<env>' for GitHub Actions.")
                continue
            wide = min(([value for value in values if _too_wide(issuer, value)] for values in bounds), key=len)
            if wide:
                what = ("names no single repository (repo:<owner>/<repo>:..., owner and repository without "
                        "wildcards) or no branch, environment or event of it (not only wildcards after the "
                        "repository, nor environment:*)" if _is_github(issuer) else "is a bare wildcard")
                report_violation(f"IAM role '{args.name}': trust policy {label}: {issuer}:sub "
                                 f"{', '.join(repr(v) for v in wide)} {what}; name the subjects that may assume "
                                 "the role.")


POLICY = rule_policy(__file__, _validate)
