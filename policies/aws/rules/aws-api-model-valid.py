"""What each AWS resource sends its API holds to AWS's own model of that call (botocore).

For every resource type :data:`shared.api_model.CALLS` maps to the operation its provider calls, the resource's
inputs are walked against that operation's input shape in botocore's ``service-2.json`` -- the model the AWS SDKs
are generated from: enum values, integer and double ranges, string lengths and patterns, list and map sizes, nested
structures, JSON text of an API structure (an ECS task definition's containers), IAM policy grammar and ECR lifecycle
policies. What is unknown at preview is skipped; what is known is judged.

Why: the provider validates little, so such a value passes ``pulumi preview`` and fails ``pulumi up`` halfway
through a layer, in the account, after other resources were created. The tests hold every shipped env to the same
check (tests/test_api_model.py); this rule brings it to whatever the pack judges: a user's env, a program given to
``nox -s policy -- --program``, a real ``pulumi preview --policy-pack policies/aws``.

Advisory in every env: under the real CLI the engine judges the inputs after the provider's Check, which may fill
defaults the offline synth never sends, and no machine that tests this rule runs the CLI; a finding says what the
model refuses, to be read before the ``up``. Inputs no member takes (gaps of the table, the provider's own settings)
are not reported: only values the model refuses. A finding names no text value, only its length: CrossGuard unwraps
secrets before a rule sees them, so a password the model refuses would otherwise be printed. No cdk-nag/checkov
equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.api_model import CALLS, resource_problems
from shared.policy_support import as_sent, plain, resource_policy
from shared.policy_typing import ReportViolation


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # unknown parts None, which the walk skips (the rest is still judged); redacted: CrossGuard unwraps secrets before
    # a rule sees them, so any text input may be a password
    inputs = as_sent(plain(args.props), unknown=None)
    for problem in resource_problems(args.resource_type, args.name, inputs, gaps=False, redact=True):
        report(f"AWS's model of the call refuses it: {problem}")


POLICY = resource_policy(__file__, check, types=sorted(CALLS))
