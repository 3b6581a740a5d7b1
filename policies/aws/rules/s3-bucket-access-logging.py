"""Every S3 bucket of the stack logs its requests (S3 server access logging), unless it is itself a log target.

A stack rule over ``aws:s3/bucket:Bucket`` (and the deprecated ``...V2``): a bucket passes with an
``aws:s3/bucketLogging:BucketLogging`` (or ``...V2``) whose ``bucket`` names it (``referenced_targets``, as for the
other S3 stack rules) or with its own ``logging.targetBucket``. A bucket another bucket's logging of the stack writes
to (``targetBucket``) is exempt: a log target should not log its own log writes (S3 user guide, "Enabling Amazon S3
server access logging"), and it is where the other logs are. A value unknown at preview leaves that bucket
undecided.

Why: without server access logs nobody can tell who read, overwrote or deleted an object (a model, the load
balancer's access logs): the audit trail of the data itself. Matches Security Hub S3.9 (which fails a log target
too) and checkov CKV_AWS_18.
"""

from __future__ import annotations

from pulumi_policy import StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    bucket_companions,
    get,
    not_applicable,
    referenced_targets,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

LOGGING = "aws:s3/bucketLogging:BucketLogging"
#: the deprecated token pulumi_aws still ships beside it, same inputs (pulumi_aws/s3/bucket_logging_v2.py)
LOGGING_V2 = "aws:s3/bucketLoggingV2:BucketLoggingV2"


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    buckets, loggings = bucket_companions(args, LOGGING, LOGGING_V2)
    targets: set[str] = set()
    undecided = False
    for logging in stack_resources(args, LOGGING, LOGGING_V2):
        found = referenced_targets(logging, "targetBucket", buckets, identity_keys=("id", "bucket"))
        if found is None:
            undecided = True
        targets.update(bucket.urn for bucket in found or ())
    judged = 0
    for bucket in buckets:
        inline = get(resource_input(bucket, "logging"), "targetBucket")
        if inline is UNKNOWN:
            continue
        judged += 1
        if loggings[bucket.urn] or inline or bucket.urn in targets:
            continue
        if undecided:
            continue  # it may be the target of a logging whose target is unknown yet
        report_violation(
            f"S3 bucket '{bucket.name}' has no server access logging: who read, overwrote or deleted its objects "
            "is not recorded. Add an aws.s3.BucketLogging(bucket=<bucket>.id, target_bucket=<a log bucket of the "
            "same account and Region>, target_prefix=...) whose target's policy lets logging.s3.amazonaws.com write.",
            bucket.urn,
        )
    if not judged:
        not_applicable(args, "every S3 bucket's logging is unknown until deployment")


POLICY = stack_rule_policy(__file__, _validate)
