"""Every S3 bucket of the stack blocks public access at the bucket level, with all four settings on.

A stack rule: for every ``aws:s3/bucket:Bucket`` (and ``aws:s3/bucketV2:BucketV2``), an
``aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock`` whose ``bucket`` names it (found through
``referenced_targets``: the property's dependency, its value, or the one bucket it depends on) sets
``blockPublicAcls``, ``blockPublicPolicy``, ``ignorePublicAcls`` and ``restrictPublicBuckets`` to true (the
provider sends an unset one as false). A setting known to be off fails at preview already; otherwise a setting
unknown at preview, or a block whose bucket cannot yet be told apart between several buckets, leaves the rule
undecided (not applicable) until it is known.

Why: with the four settings on, no ACL or bucket policy can make the bucket or its objects public, whatever
a later policy or upload says (S3 user guide, "Blocking public access to your Amazon S3 storage"). S3 turns
them on for new buckets by default, but a setting the stack does not declare is one that a console change or
an older bucket keeps off unseen; declared, every ``up`` restores it. The account-level block (Security Hub
S3.1) is account configuration, outside a stack. Matches Security Hub S3.8 (bucket-level block: fails if any
of the four is false) and checkov CKV2_AWS_6.
"""

from pulumi_policy import PolicyResource

from shared.policy_support import (
    UNKNOWN,
    Undecided,
    bucket_companion_check,
    resource_input,
    stack_rule_policy,
)

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
#: the inputs, as the provider names them, and the argument a program sets
SETTINGS = {"blockPublicAcls": "block_public_acls", "blockPublicPolicy": "block_public_policy",
            "ignorePublicAcls": "ignore_public_acls", "restrictPublicBuckets": "restrict_public_buckets"}


def _problems(bucket: PolicyResource, blocks: list[PolicyResource]) -> list[str]:
    values = [{key: resource_input(block, key) for key in SETTINGS} for block in blocks]
    # several blocks of one bucket overwrite each other in S3 (PutPublicAccessBlock): each must hold all four;
    # one known to be off fails whatever the unknown ones will be
    off = sorted({arg for settings in values for key, arg in SETTINGS.items()
                  if settings[key] is not True and settings[key] is not UNKNOWN})
    if not off and any(value is UNKNOWN for settings in values for value in settings.values()):
        raise Undecided(f"S3 bucket '{bucket.name}': public access block")  # decided once the settings are known
    if not off:
        return []
    return [f"S3 bucket '{bucket.name}': its public access block leaves {', '.join(off)} off (an unset one is false); "
            "set all four to True."]


POLICY = stack_rule_policy(__file__, bucket_companion_check(
    PUBLIC_ACCESS_BLOCK, problems_of=_problems,
    missing=("has no bucket-level public access block; add an aws.s3.BucketPublicAccessBlock(bucket=<bucket>.id, "
             "block_public_acls=True, block_public_policy=True, ignore_public_acls=True, "
             "restrict_public_buckets=True)."),
    none_judged="every S3 bucket's public access block settings are unknown until deployment"))
