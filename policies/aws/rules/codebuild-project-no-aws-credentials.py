"""CodeBuild projects hold no AWS access keys in plaintext environment variables.

Checks ``environment.environmentVariables`` of ``aws:codebuild/project:Project``: a variable named
``AWS_ACCESS_KEY_ID`` or ``AWS_SECRET_ACCESS_KEY`` of type ``PLAINTEXT`` (the type when unset) fails, whatever its
value; one of type ``PARAMETER_STORE`` or ``SECRETS_MANAGER`` holds a reference, not the key, and passes. A
variable list or name unknown at preview is undecided (not applicable).

Why: a plaintext variable is readable by anyone who may read the project (``codebuild:BatchGetProjects``), in the
console and in the stack's state; a build gets its AWS credentials from the project's service role. Matches
Security Hub CodeBuild.2 and cdk-nag CodeBuildProjectEnvVarAwsCred.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, as_list, get, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@applies_to("aws:codebuild/project:Project")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    variables = get(plain(args.props), "environment", "environmentVariables")
    if variables is UNKNOWN:
        undecidable(args, f"CodeBuild project '{args.name}': environment.environmentVariables")
    found: list[str] = []
    for index, variable in enumerate(as_list(variables)):
        name, kind = get(variable, "name"), get(variable, "type")
        if name is UNKNOWN or kind is UNKNOWN:
            undecidable(args, f"CodeBuild project '{args.name}': environment.environmentVariables[{index}]")
        if str(name).strip() in CREDENTIAL_NAMES and str(kind or "PLAINTEXT").upper() == "PLAINTEXT":
            found.append(str(name).strip())
    if found:
        report_violation(f"CodeBuild project '{args.name}' holds {', '.join(found)} in plaintext environment "
                         "variables; give the project a service role with the permissions the build needs and "
                         "remove them (or store a value in Secrets Manager, type SECRETS_MANAGER).")


POLICY = rule_policy(__file__, _validate)
