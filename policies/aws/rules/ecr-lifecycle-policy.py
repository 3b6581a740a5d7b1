"""Every ECR repository in the stack has a lifecycle policy that expires untagged images (stack rule).

Why: without one, every pushed image is kept forever -- storage cost grows without bound and old,
vulnerable images stay pullable. A policy whose rules select tagged images only (``tagStatus: tagged``) still
keeps every image pushed by digest, and the untagged per-platform manifests of multi-platform images, for
ever: a known policy needs an ``expire`` rule selecting ``untagged`` or ``any`` images (ECR user guide,
"Lifecycle policy properties": tagStatus). A policy unknown at preview counts as present. Matches Security Hub
ECR.3 (which asks for a policy only); no cdk-nag/checkov equivalent (cdk-nag has none for ECR lifecycles;
checkov has none for aws_ecr_lifecycle_policy).

How a policy is matched to its repository: ``LifecyclePolicy.repository`` is the repository *name*,
an output of the repository. Stack validation only sees input properties, so the reference is resolved
by ``shared.policy_support.referenced_targets``: the property's recorded dependencies first (the engine
and the CLI fill ``property_dependencies``), then value equality with the repository's explicit
``name`` (or ``id`` where the CLI reports it), then a dependency on exactly one repository. A policy
whose repository cannot be determined makes the rule not applicable for the repositories it could
cover, rather than failing them.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    parse_json,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def _expires_untagged(policy: PolicyResource) -> bool:
    """The policy has an expire rule that selects untagged images (``untagged`` or ``any``); an unknown or
    unreadable policy counts as one (ECR refuses malformed JSON at ``up``)."""
    value = resource_input(policy, "policy")
    if value is UNKNOWN or value is None:
        return True
    try:
        document = parse_json(value)
    except ValueError:
        return True
    rules = document.get("rules") if isinstance(document, dict) else None
    return any(isinstance(rule, dict) and str((rule.get("action") or {}).get("type", "")).lower() == "expire"
               and str((rule.get("selection") or {}).get("tagStatus", "")).lower() in ("untagged", "any")
               for rule in rules or [])


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    repositories = stack_resources(args, REPOSITORY, none_reason="the stack has no ECR repository")
    covered: set[str] = set()
    keeps_untagged: dict[str, PolicyResource] = {}
    unattributed: list[PolicyResource] = []
    for policy in stack_resources(args, LIFECYCLE_POLICY):
        targets = referenced_targets(policy, "repository", repositories, identity_keys=("name", "id"))
        if targets is None:
            unattributed.append(policy)
            continue
        covered.update(t.urn for t in targets)
        if not _expires_untagged(policy):
            keeps_untagged.update({t.urn: policy for t in targets})
    missing = [r for r in repositories if r.urn not in covered]
    if missing and unattributed:
        names = ", ".join(f"'{p.name}'" for p in unattributed)
        args.not_applicable(f"cannot tell which repository lifecycle polic(ies) {names} belong to")
    for repository in missing:
        report_violation(
            f"ECR repository '{repository.name}' has no lifecycle policy; add aws.ecr.LifecyclePolicy("
            f"repository={repository.name}.name, policy=...) that expires untagged and old images.",
            repository.urn,
        )
    for repository in repositories:
        if repository.urn in keeps_untagged:
            report_violation(
                f"ECR repository '{repository.name}': its lifecycle policy '{keeps_untagged[repository.urn].name}' "
                "expires no untagged image (no expire rule with tagStatus 'untagged' or 'any'), so every image "
                "pushed by digest stays for ever; add a rule selecting tagStatus 'untagged' (e.g. sinceImagePushed, "
                "countNumber 3 days).",
                repository.urn,
            )


POLICY = stack_rule_policy(__file__, _validate)
