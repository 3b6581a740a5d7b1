"""Every IAM role the stacks create carries a permissions boundary: a customer managed policy that caps it.

Checks ``permissionsBoundary`` of ``aws:iam/role:Role``: set, to the ARN of a customer managed policy
(``arn:<partition>:iam::<account>:policy/...``; the platform's is the env's ``ml-platform-<env>-role-boundary``,
``shared.role_boundary``). An AWS managed policy (``arn:...:iam::aws:policy/...``) caps nothing the platform chose
(``AdministratorAccess`` caps nothing at all). A service-linked role (path ``/aws-service-role/``) is not applicable:
AWS creates it, and it takes no boundary (IAM API reference, PutRolePermissionsBoundary).

Why: the deploy role creates these roles, writes their policies and passes them to ECS, Lambda and CodeBuild; the
boundary is the cap that keeps whoever can start a deploy from creating a role with any permission and using it (IAM
user guide, "Permissions boundaries for IAM entities", delegating responsibility). The deploy role may create a role
only with that boundary, so a role without it also stops the ``up`` that creates it with AccessDenied. No checkov or
cdk-nag equivalent.
"""

import re

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, not_applicable, rule_policy
from shared.policy_typing import ReportViolation

CUSTOMER_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:policy/.+")


@applies_to("aws:iam/role:Role")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    path = known_input(args, "IAM role", "path")
    if isinstance(path, str) and path.startswith("/aws-service-role/"):
        not_applicable(args, f"IAM role '{args.name}' is a service-linked role: AWS creates it, it takes no boundary")
    boundary = known_input(args, "IAM role", "permissionsBoundary")
    if not boundary:
        report_violation(f"IAM role '{args.name}' has no permissions boundary: nothing caps what its policies may "
                         "grant; set permissions_boundary to the env's boundary policy "
                         "(shared.role_boundary.boundary_arn), the only one the deploy role may create roles with.")
    elif not CUSTOMER_POLICY_ARN.fullmatch(str(boundary)):
        report_violation(f"IAM role '{args.name}' has permissions boundary {boundary}, not a customer managed "
                         "policy of the account; set permissions_boundary to the env's boundary policy "
                         "(shared.role_boundary.boundary_arn).")


POLICY = rule_policy(__file__, _validate)
