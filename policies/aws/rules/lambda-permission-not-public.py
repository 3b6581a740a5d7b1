"""Lambda function policies do not let anyone invoke the function.

Checks ``aws:lambda/permission:Permission`` (one statement of the function's resource-based policy):

* ``principal`` ``*`` (any AWS account, or anyone on the internet through a function URL) fails unless the
  statement is narrowed by ``source_account``, ``source_arn`` or ``principal_org_id`` with a fixed value: one
  with a wildcard (``*``, ``?``) or a policy variable (``${...}``) narrows nothing (AWS Config's
  lambda-function-public-access-prohibited, behind Lambda.1: a non-public policy grants access to fixed values
  only). A function URL with ``function_url_auth_type`` ``NONE`` is public whatever narrows it, and fails too.
* ``principal`` ``s3.amazonaws.com``, or ``*`` narrowed by an S3 bucket ARN, fails without ``source_account``: a
  bucket ARN names no account, so a ``source_arn`` alone lets a bucket of that name in any account invoke the
  function (the case Security Hub Lambda.1 fails explicitly).

Other service principals (``events.amazonaws.com``, ``secretsmanager.amazonaws.com``, ``sns.amazonaws.com``...)
and account principals pass. A principal unknown at preview is undecided (not applicable); so is, for principal
``*``, an unknown ``function_url_auth_type`` and an unknown narrowing value where it decides: a ``source_arn``
that may be a bucket's while ``source_account`` is not fixed, or the only narrowing (for ``s3.amazonaws.com``: an
unknown ``source_account``).

Why: a public function runs, with its role's permissions, for whoever calls it. Matches Security Hub Lambda.1,
checkov CKV_AWS_301 (principal ``*``) and cdk-nag LambdaFunctionPublicAccessProhibited.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, fixed_value, known_input, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

#: the inputs that narrow a statement to known callers, when set to a fixed value (:func:`fixed_value`)
NARROWING = ("sourceAccount", "sourceArn", "principalOrgId")
#: the ARN prefix of an S3 bucket (no Region, no account)
S3_ARN = ("arn:aws:s3:::", "arn:aws-cn:s3:::", "arn:aws-us-gov:s3:::")
LABEL = "Lambda permission"


@applies_to("aws:lambda/permission:Permission")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    principal = str(known_input(args, LABEL, "principal", props) or "").strip().lower()
    # the auth type decides only for principal "*" (a function URL open to anyone)
    url_auth = known_input(args, LABEL, "functionUrlAuthType", props) if principal == "*" else None
    narrowing = {key: props.get(key) for key in NARROWING}
    fixed = {key for key, value in narrowing.items() if fixed_value(value)}
    unknown = [key for key, value in narrowing.items() if value is UNKNOWN]
    source_arn = narrowing["sourceArn"]
    from_s3 = isinstance(source_arn, str) and source_arn.strip().startswith(S3_ARN)
    if principal == "*" and str(url_auth or "").upper() == "NONE":
        report_violation(f"Lambda permission '{args.name}' makes the function URL public (principal '*', auth type "
                         "NONE); use function_url_auth_type='AWS_IAM' and name the callers.")
    elif principal == "*" and not fixed and not unknown:
        report_violation(f"Lambda permission '{args.name}' lets any principal invoke the function; name the "
                         "caller's account or service as principal, or set source_account / source_arn / "
                         "principal_org_id to a fixed value (no wildcard or policy variable).")
    elif principal == "s3.amazonaws.com" or (principal == "*" and from_s3):
        if narrowing["sourceAccount"] is UNKNOWN:
            undecidable(args, f"{LABEL} '{args.name}': sourceAccount")
        if "sourceAccount" not in fixed:
            report_violation(f"Lambda permission '{args.name}' lets S3 invoke the function for a bucket of any "
                             "account (a bucket ARN names no account); set source_account to the bucket owner's "
                             "account.")
    elif principal == "*" and "sourceAccount" not in fixed and (not fixed or source_arn is UNKNOWN):
        # narrowed by nothing known yet, or by an org or ARN while the ARN may turn out to be a bucket's
        undecidable(args, f"{LABEL} '{args.name}': {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
