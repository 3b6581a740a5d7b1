"""Every ECR repository in the stack has a lifecycle policy (stack rule).

Why: without one, every pushed image is kept forever -- storage cost grows without bound and old,
vulnerable images stay pullable. Matches Security Hub ECR.3; no cdk-nag/checkov equivalent (cdk-nag has
none for ECR lifecycles; checkov has none for aws_ecr_lifecycle_policy).

How a policy is matched to its repository: ``LifecyclePolicy.repository`` is the repository *name*,
an output of the repository. Stack validation only sees input properties, so the reference is resolved
by ``shared.policy_support.referenced_targets``: the property's recorded dependencies first (the engine
and the CLI fill ``property_dependencies``), then value equality with the repository's explicit
``name`` (or ``id`` where the CLI reports it), then a dependency on exactly one repository. A policy
whose repository cannot be determined makes the rule not applicable for the repositories it could
cover, rather than failing them.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import referenced_targets, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    repositories = stack_resources(args, REPOSITORY, none_reason="the stack has no ECR repository")
    covered: set[str] = set()
    unattributed: list[PolicyResource] = []
    for policy in stack_resources(args, LIFECYCLE_POLICY):
        targets = referenced_targets(policy, "repository", repositories, identity_keys=("name", "id"))
        if targets is None:
            unattributed.append(policy)
            continue
        covered.update(t.urn for t in targets)
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


POLICY = stack_rule_policy(__file__, _validate)
