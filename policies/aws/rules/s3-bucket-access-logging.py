"""Every S3 bucket of the stack logs its requests (S3 server access logging), unless it is itself a log target.

A stack rule over ``aws:s3/bucket:Bucket`` (and the deprecated ``...V2``): a bucket passes with an
``aws:s3/bucketLogging:BucketLogging`` (or ``...V2``) whose ``bucket`` names it (``referenced_targets``, as for the
other S3 stack rules) or with its own ``logging.targetBucket`` (a ``BucketV2``: ``loggings[].targetBucket``). A
bucket another bucket's logging of the stack writes to (``targetBucket``, of a BucketLogging or inline, by name) is
exempt: a log target should not log its own log writes (S3 user guide, "Enabling Amazon S3 server access logging"),
and it is where the other logs are. A value unknown at preview leaves that bucket undecided, and an unlogged bucket
too while some logging's target is unknown (it may be that target).

Why: without server access logs nobody can tell who read, overwrote or deleted an object (a model, the load
balancer's access logs): the audit trail of the data itself. Matches Security Hub S3.9 (which fails a log target
too) and checkov CKV_AWS_18.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    Undecided,
    bucket_companions,
    get,
    referenced_targets,
    report_bucket_problems,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

LOGGING = "aws:s3/bucketLogging:BucketLogging"
#: the deprecated token pulumi_aws still ships beside it, same inputs (pulumi_aws/s3/bucket_logging_v2.py)
LOGGING_V2 = "aws:s3/bucketLoggingV2:BucketLoggingV2"


def _inline_targets(bucket: PolicyResource) -> list[Any]:
    """The ``targetBucket`` of the bucket's own logging: ``logging`` of a Bucket, the list ``loggings`` of a BucketV2
    (pulumi_aws s3/bucket_v2.py); [UNKNOWN] while unknown."""
    if bucket.resource_type == "aws:s3/bucketV2:BucketV2":
        entries = resource_input(bucket, "loggings")
        if entries is UNKNOWN:
            return [UNKNOWN]
        return [get(entry, "targetBucket") for entry in entries or ()]
    return [get(resource_input(bucket, "logging"), "targetBucket")]


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    buckets, loggings = bucket_companions(args, LOGGING, LOGGING_V2)
    targets: set[str] = set()
    undecided = False
    for logging in stack_resources(args, LOGGING, LOGGING_V2):
        found = referenced_targets(logging, "targetBucket", buckets, identity_keys=("id", "bucket"))
        if found is None:
            undecided = True
        targets.update(bucket.urn for bucket in found or ())
    inline = {bucket.urn: _inline_targets(bucket) for bucket in buckets}
    # a bucket's own logging into another bucket of the stack, by that bucket's name
    names = {name for targets_of in inline.values() for name in targets_of if isinstance(name, str) and name}
    targets.update(bucket.urn for bucket in buckets if resource_input(bucket, "bucket") in names)
    undecided = undecided or any(UNKNOWN in targets_of for targets_of in inline.values())

    def problems(bucket: PolicyResource) -> list[str]:
        if UNKNOWN in inline[bucket.urn]:
            raise Undecided(f"S3 bucket '{bucket.name}': logging")  # decided once known
        if loggings[bucket.urn] or any(inline[bucket.urn]) or bucket.urn in targets:
            return []
        if undecided:
            return []  # it may be the target of a logging whose target is unknown yet
        return [f"S3 bucket '{bucket.name}' has no server access logging: who read, overwrote or deleted its objects "
                "is not recorded. Add an aws.s3.BucketLogging(bucket=<bucket>.id, target_bucket=<a log bucket of the "
                "same account and Region>, target_prefix=...) whose target's policy lets logging.s3.amazonaws.com "
                "write."]

    report_bucket_problems(args, report_violation, buckets, problems,
                           none_judged="every S3 bucket's logging is unknown until deployment")


POLICY = stack_rule_policy(__file__, _validate)
