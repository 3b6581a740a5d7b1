"""ECR repository policies do not let anyone (``*``) in unless a condition names the callers.

Checks ``policy`` of ``aws:ecr/repositoryPolicy:RepositoryPolicy``: an ``Allow`` statement whose
principal is ``*`` / ``{"AWS": "*"}`` (or that uses ``NotPrincipal``) makes the repository's images
pullable -- or pushable -- by every AWS account unless its ``Condition`` names the callers with fixed
values: ``aws:PrincipalOrgID``, ``aws:PrincipalAccount``, ``aws:SourceAccount``... under a matching
operator, without wildcards or policy variables (:func:`shared.policy_support.is_public_statement`). So
``aws:PrincipalOrgID`` ``o-*`` (every organization) or ``aws:SecureTransport`` alone fail.

Why: a public repository leaks the images (code, baked-in configuration) and, with push actions,
lets anyone replace them. Matches cdk-nag AwsSolutions-ECR1 / ECROpenAccess, checkov CKV_AWS_32.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, report_public_policy, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:ecr/repositoryPolicy:RepositoryPolicy")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    report_public_policy(args, "policy", f"ECR repository policy '{args.name}'", report_violation,
                         "name the accounts or roles that pull, or add a condition such as aws:PrincipalOrgID "
                         "with fixed values.")


POLICY = rule_policy(__file__, _validate)
