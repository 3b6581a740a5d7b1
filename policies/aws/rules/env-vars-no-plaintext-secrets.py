"""No credential in a Lambda function's environment variables or a CodeBuild project's plaintext ones.

Checks ``aws:lambda/function:Function`` ``environment.variables`` and the ``PLAINTEXT`` variables (the type when
unset) of ``aws:codebuild/project:Project`` ``environment.environmentVariables`` with the judgement of
ecs-task-no-plaintext-secrets (shared.policy_support.plaintext_credential): a credential-like name (PASSWORD,
PASSPHRASE, SECRET, TOKEN, API_KEY...) whose value is not a reference (an ARN, a path, empty), or a value that
looks like a credential whatever its name (``amqps://user:password@host``, an AWS access key id, a PEM block, a
GitHub/Slack/Stripe token). A CodeBuild variable of type ``SECRETS_MANAGER`` or ``PARAMETER_STORE`` holds the
secret's name, and passes; the AWS key variables themselves are codebuild-project-no-aws-credentials' (CodeBuild.2).

Why: a Lambda function's variables are returned in clear by ``lambda:GetFunctionConfiguration`` (the console shows
them; KMS encrypts them at rest only) and a CodeBuild project's plaintext ones by ``codebuild:BatchGetProjects``;
both are resource inputs kept in the stack state, where Pulumi encrypts a value only when the program made it a
secret. The platform's deploy runner holds only the ARNs of the Pulumi passphrase's and access token's secrets (its
build reads them as the deploy role), and its functions (broker admin rotation, queue metrics) read their
credentials from Secrets Manager by ARN; a change that put one of them in a plain variable would leak it to every
reader of the function or project.
Equivalents: checkov CKV_AWS_45 (secrets in a Lambda environment), Security Hub CodeBuild.2 (AWS keys only).

A variable whose name or value is unknown at preview leaves the rule undecided for that resource, unless a known
variable already fails it.
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, plain, plaintext_credential, rule_policy, undecidable
from shared.policy_typing import ReportViolation

LAMBDA = "aws:lambda/function:Function"
CODEBUILD = "aws:codebuild/project:Project"
#: codebuild-project-no-aws-credentials reports these (any plaintext value): not twice
AWS_KEY_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})


def _lambda_variables(props: Any) -> tuple[list[tuple[Any, Any]], str]:
    variables = get(props, "environment", "variables")
    if variables is UNKNOWN:
        return [(UNKNOWN, UNKNOWN)], "environment.variables"
    if not isinstance(variables, dict):
        return [], "environment.variables"
    return sorted(variables.items()), "environment.variables"


def _codebuild_variables(props: Any) -> tuple[list[tuple[Any, Any]], str]:
    variables = get(props, "environment", "environmentVariables")
    if variables is UNKNOWN:
        return [(UNKNOWN, UNKNOWN)], "environment.environmentVariables"
    found: list[tuple[Any, Any]] = []
    for variable in variables if isinstance(variables, list) else []:
        if variable is UNKNOWN:
            found.append((UNKNOWN, UNKNOWN))
            continue
        if not isinstance(variable, dict):
            continue
        kind, name = variable.get("type"), variable.get("name")
        if kind is UNKNOWN:
            found.append((name, UNKNOWN))  # a reference or the value itself: undecided
        elif str(kind or "PLAINTEXT").upper() == "PLAINTEXT" and str(name).strip() not in AWS_KEY_VARIABLES:
            found.append((name, variable.get("value")))
    return found, "environment.environmentVariables"


@applies_to(LAMBDA, CODEBUILD)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    lambda_function = args.resource_type == LAMBDA
    variables, where = (_lambda_variables if lambda_function else _codebuild_variables)(props)
    kind = "Lambda function" if lambda_function else "CodeBuild project"
    findings: list[str] = []
    undecided = False
    for name, value in variables:
        if name is UNKNOWN or value is UNKNOWN:
            undecided = True
            continue
        if finding := plaintext_credential(str(name), value):
            findings.append(finding)
    if findings:
        fix = ("read it from Secrets Manager or SSM at run time (pass the secret's ARN)" if lambda_function else
               "give it type SECRETS_MANAGER or PARAMETER_STORE with the secret's name as its value")
        report_violation(f"{kind} '{args.name}' holds credentials in plain {where}: {', '.join(findings)}; {fix}.")
    elif undecided:
        undecidable(args, f"{kind} '{args.name}': {where}")


POLICY = rule_policy(__file__, _validate)
