"""The env's model-artifact bucket: its name, the one source for the compute layer (which creates it), the network
layer (whose S3 gateway endpoint lets it through, deployed before compute, so without a StackReference) and the
services' ``ARTIFACTS_BUCKET``. No Pulumi SDK here.

The bucket lives in the account's **account regional namespace** (S3 user guide, "Namespaces for general purpose
buckets"): its name ends in ``-<account id>-<region>-an`` and no other account can create a bucket with that
suffix. A deterministic name in the shared global namespace could be taken by anyone while it does not exist (before
the first ``up``, and after every ``destroy``), and the tasks would then write models into a stranger's bucket.

The whole name has at most 63 characters (S3's bucket naming rules), the suffix up to 31 of them (a 14-character
region), so for the longest env names (30 characters) the prefix ``ml-artifacts-<env>`` is cut to what is left: the
env loader lets no two envs share an account and region, and the suffix holds both, so the name stays the env's own.

The bucket's S3 server access logs go to a second bucket of the env, ``ml-artifact-logs-<env>-<account id>-<region>-an``
(:func:`artifact_log_bucket_name`), in the same namespace, named (and cut) the same way: S3 delivers server access
logs only to a bucket of the same account and Region (S3 user guide, "Enabling Amazon S3 server access logging").
"""

from __future__ import annotations

import re

from shared.gateway_names import BUCKET_NAME_MAX

#: The namespace the bucket is created in (aws.s3.Bucket bucket_namespace; botocore s3 CreateBucket
#: x-amz-bucket-namespace, "account-regional" or "global"). Every region an env may pick (shared/regions.py) offers it
#: (tests/test_regions.py).
ARTIFACT_BUCKET_NAMESPACE = "account-regional"
#: The regions without the account-regional namespace (S3 user guide, "Namespaces for general purpose buckets": all
#: Regions "except Middle East (Bahrain) and Middle East (UAE)"): compute's CreateBucket would fail there, after the
#: earlier layers were created.
NO_ACCOUNT_REGIONAL_NAMESPACE = frozenset({"me-south-1", "me-central-1"})
#: S3's bucket naming rules: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def account_regional_suffix(account_id: str, region: str) -> str:
    return f"-{account_id}-{region}-an"


def _account_regional_name(what: str, prefix: str, account_id: str, region: str) -> str:
    """``<prefix>-<account id>-<region>-an``, the prefix cut to fit S3's 63 characters."""
    suffix = account_regional_suffix(account_id, region)
    name = prefix[:BUCKET_NAME_MAX - len(suffix)].rstrip("-.") + suffix
    if not _BUCKET_NAME.match(name) or ".." in name:
        raise ValueError(f"the {what} bucket {name!r} breaks S3's bucket naming rules")
    return name


def artifact_bucket_name(env_name: str, account_id: str, region: str) -> str:
    """``ml-artifacts-<env>-<account id>-<region>-an``, the prefix cut to fit S3's 63 characters."""
    return _account_regional_name("model-artifact", f"ml-artifacts-{env_name}", account_id, region)


def artifact_log_bucket_name(env_name: str, account_id: str, region: str) -> str:
    """The model-artifact bucket's server-access-log bucket: ``ml-artifact-logs-<env>-<account id>-<region>-an``, the
    prefix cut to fit S3's 63 characters."""
    return _account_regional_name("model-artifact log", f"ml-artifact-logs-{env_name}", account_id, region)


def artifact_prefix(service: str) -> str:
    """Where a writing service puts its objects (and the only place its grants let it write): ``<service>/``."""
    return f"{service}/"


#: Days after which S3 expires a payload handed over by reference (README, "Model artifacts"): a message larger than the
#: broker takes is put under its publisher's :func:`handoff_prefix` and the message names the key. No service may
#: delete, so without it every request's payload would be kept, and billed, for good. An expired payload turns
#: noncurrent, recoverable by a person for the bucket's noncurrent window (30 days) like an overwritten model, so a
#: dead letter replayed later still finds it then.
HANDOFF_DAYS = 14


def handoff_prefix(service: str) -> str:
    """Where a writing service puts payloads it hands over by reference, which S3 expires after :data:`HANDOFF_DAYS`:
    ``<service>/handoff/``, inside its own :func:`artifact_prefix`."""
    return f"{artifact_prefix(service)}handoff/"
