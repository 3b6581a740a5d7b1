"""CodeBuild projects hold no AWS access keys in plaintext environment variables.

Checks ``environment.environmentVariables`` of ``aws:codebuild/project:Project``: a variable named
``AWS_ACCESS_KEY_ID`` or ``AWS_SECRET_ACCESS_KEY`` of type ``PLAINTEXT`` (the type when unset) fails, whatever its
value; one of type ``PARAMETER_STORE`` or ``SECRETS_MANAGER`` holds a reference, not the key, and passes. The
variable list, a variable's name or a key variable's type unknown at preview leaves the rule undecided (not
applicable), unless a known plaintext key already fails it.

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
    unknown: list[str] = []
    for index, variable in enumerate(as_list(variables)):
        name, kind = get(variable, "name"), get(variable, "type")
        if name is not UNKNOWN and str(name).strip() not in CREDENTIAL_NAMES:
            continue  # not a credential, whatever its type
        if name is UNKNOWN or kind is UNKNOWN:
            unknown.append(f"environment.environmentVariables[{index}]")
        elif str(kind or "PLAINTEXT").upper() == "PLAINTEXT":
            found.append(str(name).strip())
    if unknown and not found:  # one known plaintext key fails whatever the unknown ones will be
        undecidable(args, f"CodeBuild project '{args.name}': {', '.join(unknown)}")
    if found:
        report_violation(f"CodeBuild project '{args.name}' holds {', '.join(found)} in plaintext environment "
                         "variables; give the project a service role with the permissions the build needs and "
                         "remove them (or store a value in Secrets Manager, type SECRETS_MANAGER).")


POLICY = rule_policy(__file__, _validate)
