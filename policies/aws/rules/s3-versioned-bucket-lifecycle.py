"""Every versioned S3 bucket of the stack expires noncurrent versions and aborts incomplete multipart uploads.

A stack rule: a bucket is versioned when an ``aws:s3/bucketVersioning:BucketVersioning`` (or the deprecated
``...V2``) whose ``bucket`` names it (``referenced_targets``, as for the other S3 stack rules) sets
``versioningConfiguration.status`` to ``Enabled`` or ``Suspended`` (a suspended bucket keeps the versions it made), or
when the bucket's own ``versioning.enabled`` is true. Such a bucket needs enabled lifecycle rules (an
``aws:s3/bucketLifecycleConfiguration``'s or ``...V2``'s ``rules``, or the bucket's own ``lifecycleRules``) over the
whole bucket (no prefix, tag or size filter) with ``noncurrentVersionExpiration`` (days) and
``abortIncompleteMultipartUpload``. A value unknown at preview leaves that bucket undecided (not applicable) until it
is known.

Why: in a versioned bucket every overwrite and every delete keeps the old object as a noncurrent version, billed
like any object and kept until a lifecycle rule or a versioned delete removes it (S3 user guide, "Retaining multiple
versions of objects with S3 Versioning"); the parts of an upload never completed (a task stopped mid-upload) are
billed until the upload is aborted (S3 user guide, "Configuring a bucket lifecycle configuration to delete
incomplete multipart uploads"). Neither shows in a listing of the bucket's objects. Matches Security Hub S3.10
(versioned buckets have a lifecycle configuration), stricter: it names the two bounds.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    Undecided,
    bucket_companions,
    contains_unknown,
    get,
    report_bucket_problems,
    resource_input,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
#: the deprecated tokens pulumi_aws still ships beside them, same inputs (pulumi_aws/s3/bucket_versioning_v2.py)
VERSIONING_V2 = "aws:s3/bucketVersioningV2:BucketVersioningV2"
LIFECYCLE_V2 = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
#: what each bound is called in a lifecycle rule (the provider's input) and in a program (its argument)
BOUNDS = {"noncurrentVersionExpiration": "noncurrent_version_expiration",
          "abortIncompleteMultipartUpload": "abort_incomplete_multipart_upload"}


def _versioned(bucket: PolicyResource, versionings: list[PolicyResource]) -> bool | None:
    """Whether the bucket keeps versions; ``None`` while that is unknown."""
    statuses = [get(resource_input(v, "versioningConfiguration"), "status") for v in versionings]
    inline = get(resource_input(bucket, "versioning"), "enabled")
    if any(s is UNKNOWN for s in statuses) or inline is UNKNOWN:
        return None
    return inline is True or any(str(s or "").capitalize() in ("Enabled", "Suspended") for s in statuses)


def _whole_bucket(rule: dict[str, Any]) -> bool:
    """The rule applies to every object: no prefix (or an empty one), tag, size or ``and`` filter."""
    if rule.get("prefix"):
        return False
    narrowing = {key: value for key, value in (rule.get("filter") or {}).items() if value not in (None, "", {}, [])}
    return not narrowing


def _bounded(rule: dict[str, Any], key: str) -> bool:
    if key == "noncurrentVersionExpiration":
        return bool(get(rule, key, "noncurrentDays"))
    return bool(get(rule, key, "daysAfterInitiation"))


def _inline(rule: Any) -> Any:
    """A rule of the bucket's own ``lifecycleRules`` (the provider's older shape) in a lifecycle
    configuration's shape."""
    if not isinstance(rule, dict):
        return rule
    return {"status": "Enabled" if rule.get("enabled") is True else "Disabled", "prefix": rule.get("prefix"),
            "filter": {"tags": rule.get("tags")},
            "noncurrentVersionExpiration": {"noncurrentDays": get(rule, "noncurrentVersionExpiration", "days")},
            "abortIncompleteMultipartUpload": {"daysAfterInitiation": rule.get("abortIncompleteMultipartUploadDays")}}


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    buckets, versionings = bucket_companions(args, VERSIONING, VERSIONING_V2)
    _, lifecycles = bucket_companions(args, LIFECYCLE, LIFECYCLE_V2)

    def problems(bucket: PolicyResource) -> list[str]:
        versioned = _versioned(bucket, versionings[bucket.urn])
        rules: Any = [rule for config in lifecycles[bucket.urn] for rule in (resource_input(config, "rules") or [])]
        inline = resource_input(bucket, "lifecycleRules")
        if versioned is None or contains_unknown(rules) or contains_unknown(inline):
            raise Undecided(f"S3 bucket '{bucket.name}': versioning or lifecycle rules")  # decided once known
        if not versioned:
            return []
        rules = [*rules, *(_inline(rule) for rule in inline or [])]
        enabled = [r for r in rules if isinstance(r, dict) and str(r.get("status")).lower() == "enabled"]
        missing = [argument for key, argument in BOUNDS.items()
                   if not any(_whole_bucket(r) and _bounded(r, key) for r in enabled)]
        if not missing:
            return []
        return [f"S3 bucket '{bucket.name}' keeps object versions but no enabled lifecycle rule over the whole bucket "
                f"sets {' or '.join(missing)}: every overwrite and delete leaves a noncurrent version, billed and kept "
                "for ever (and stopped uploads' parts likewise). Add an aws.s3.BucketLifecycleConfiguration rule with "
                "filter={} and noncurrent_version_expiration={'noncurrent_days': N}, "
                "abort_incomplete_multipart_upload={'days_after_initiation': N}."]

    report_bucket_problems(args, report_violation, buckets, problems,
                           none_judged="every S3 bucket's versioning or lifecycle rules are unknown until deployment")


POLICY = stack_rule_policy(__file__, _validate)
