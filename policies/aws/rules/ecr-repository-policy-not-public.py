"""ECR repository policies do not let anyone (``*``) in without a condition.

Checks ``policy`` of ``aws:ecr/repositoryPolicy:RepositoryPolicy``: an ``Allow`` statement whose
principal is ``*`` / ``{"AWS": "*"}`` (or that uses ``NotPrincipal``) and has no ``Condition`` makes the
repository's images pullable -- or pushable -- by every AWS account. A condition such as
``aws:PrincipalOrgID`` narrows it and passes.

Why: a public repository leaks the images (code, baked-in configuration) and, with push actions,
lets anyone replace them. Matches cdk-nag AwsSolutions-ECR1 / ECROpenAccess, checkov CKV_AWS_32.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, report_public_policy, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:ecr/repositoryPolicy:RepositoryPolicy")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    report_public_policy(args, "policy", f"ECR repository policy '{args.name}'", report_violation,
                         "name the accounts or roles that pull, or add a condition such as aws:PrincipalOrgID.")


POLICY = rule_policy(__file__, _validate)
