"""Lambda function policies do not let anyone invoke the function.

Checks ``aws:lambda/permission:Permission`` (one statement of the function's resource-based policy):

* ``principal`` ``*`` (any AWS account, or anyone on the internet through a function URL) fails unless the
  statement is narrowed by ``source_account``, ``source_arn`` or ``principal_org_id``; a function URL with
  ``function_url_auth_type`` ``NONE`` is public whatever narrows it, and fails too.
* ``principal`` ``s3.amazonaws.com`` fails without ``source_account``: a bucket ARN names no account, so a
  ``source_arn`` alone lets a bucket of that name in any account invoke the function (the case Security Hub
  Lambda.1 fails explicitly).

Other service principals (``events.amazonaws.com``, ``secretsmanager.amazonaws.com``, ``sns.amazonaws.com``...)
and account principals pass. A principal or narrowing value unknown at preview is undecided (not applicable).

Why: a public function runs, with its role's permissions, for whoever calls it. Matches Security Hub Lambda.1,
checkov CKV_AWS_301 (principal ``*``) and cdk-nag LambdaFunctionPublicAccessProhibited.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

#: the inputs that narrow a statement to known callers (a present value counts, even unknown at preview)
NARROWING = ("sourceAccount", "sourceArn", "principalOrgId")


@applies_to("aws:lambda/permission:Permission")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    principal, url_auth = props.get("principal"), props.get("functionUrlAuthType")
    for key, value in (("principal", principal), ("functionUrlAuthType", url_auth)):
        if value is UNKNOWN:
            undecidable(args, f"Lambda permission '{args.name}': {key}")
    narrowed = [key for key in NARROWING if props.get(key) not in (None, "")]
    principal = str(principal or "").strip().lower()
    if principal == "*" and str(url_auth or "").upper() == "NONE":
        report_violation(f"Lambda permission '{args.name}' makes the function URL public (principal '*', auth type "
                         "NONE); use function_url_auth_type='AWS_IAM' and name the callers.")
    elif principal == "*" and not narrowed:
        report_violation(f"Lambda permission '{args.name}' lets any principal invoke the function; name the "
                         "caller's account or service as principal, or set source_account / source_arn / "
                         "principal_org_id.")
    elif principal == "s3.amazonaws.com" and "sourceAccount" not in narrowed:
        report_violation(f"Lambda permission '{args.name}' lets S3 invoke the function for a bucket of any account "
                         "(a bucket ARN names no account); set source_account to the bucket owner's account.")


POLICY = rule_policy(__file__, _validate)
