"""Every S3 bucket of the stack has ACLs disabled: object ownership ``BucketOwnerEnforced``.

A stack rule: for every ``aws:s3/bucket:Bucket`` (and ``aws:s3/bucketV2:BucketV2``), an
``aws:s3/bucketOwnershipControls:BucketOwnershipControls`` whose ``bucket`` names it (found through
``referenced_targets``, as for the other bucket rules) sets ``rule.objectOwnership`` to ``BucketOwnerEnforced``.
``BucketOwnerPreferred`` and ``ObjectWriter`` keep ACLs working and fail. An ownership known to be another one
fails at preview already; otherwise an ownership unknown at preview, or ownership controls whose bucket cannot yet
be told apart between several buckets, leave the rule undecided.

Why: with ``BucketOwnerEnforced`` S3 ignores every ACL and refuses requests that set one other than the
owner's full control, so access is what the bucket policy and IAM say, and the bucket owner owns every object
(S3 user guide, "Controlling ownership of objects and disabling ACLs for your bucket"). S3 sets it on new buckets
by default; declared, a later change is undone by the next ``up``. Matches Security Hub S3.12 and checkov
CKV2_AWS_65.
"""

from pulumi_policy import PolicyResource

from shared.policy_support import (
    UNKNOWN,
    Undecided,
    bucket_companion_check,
    get,
    resource_input,
    stack_rule_policy,
)

OWNERSHIP_CONTROLS = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ENFORCED = "BucketOwnerEnforced"


def _problems(bucket: PolicyResource, controls: list[PolicyResource]) -> list[str]:
    ownerships = {get(resource_input(control, "rule"), "objectOwnership") for control in controls}
    # several controls of one bucket overwrite each other in S3: one known to be other than enforced fails
    # whatever the unknown ones will be
    others = ", ".join(sorted(str(o or "unset") for o in ownerships - {ENFORCED, UNKNOWN}))
    if not others and UNKNOWN in ownerships:
        raise Undecided(f"S3 bucket '{bucket.name}': object ownership")  # decided once known
    if not others:
        return []
    return [f"S3 bucket '{bucket.name}' keeps ACLs: object ownership {others}; set object_ownership to "
            f"'{ENFORCED}'."]


POLICY = stack_rule_policy(__file__, bucket_companion_check(
    OWNERSHIP_CONTROLS, problems_of=_problems,
    missing=("keeps ACLs: no ownership controls; add an aws.s3.BucketOwnershipControls(bucket=<bucket>.id, "
             f"rule={{'object_ownership': '{ENFORCED}'}})."),
    none_judged="every S3 bucket's object ownership is unknown until deployment"))
