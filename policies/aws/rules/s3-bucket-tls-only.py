"""Every S3 bucket of the stack refuses requests that do not use TLS.

A stack rule: for every ``aws:s3/bucket:Bucket`` (and ``aws:s3/bucketV2:BucketV2``), a bucket policy -- an
``aws:s3/bucketPolicy:BucketPolicy`` whose ``bucket`` names it (found through ``referenced_targets``: the property's
dependency, its value, or the one bucket it depends on), or the bucket's own (deprecated) ``policy`` input -- has a
``Deny`` statement for every principal (``"*"`` or ``{"AWS": "*"}``) and every S3 action (``s3:*`` or ``*``) on the
bucket and its objects (``arn:<partition>:s3:::<bucket>`` and ``.../*``, or ``*``) under the condition
``{"Bool": {"aws:SecureTransport": "false"}}``. A policy unknown at preview, or a bucket policy that cannot yet be
told apart between several buckets, leaves the rule undecided (not applicable) until it is known.

Why: S3 answers plain HTTP as well as HTTPS, and IAM grants do not care which a request used; only a policy
that denies ``aws:SecureTransport`` false keeps objects (trained models, access logs) off unencrypted
connections (S3 user guide, "Amazon S3 bucket policy examples", enforcing encryption in transit). Matches Security
Hub S3.5 and cdk-nag AwsSolutions-S10 / S3BucketSSLRequestsOnly.
"""

from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    UNKNOWN,
    Undecided,
    as_list,
    contains_unknown,
    iam_wildcard,
    not_applicable,
    parse_json,
    policy_statements,
    principal_values,
    referenced_targets,
    report_bucket_problems,
    resource_input,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def _only_without_tls(condition: Any) -> bool:
    """``{"Bool": {"aws:SecureTransport": "false"}}`` (a boolean or a one-value list too; keys are case-insensitive
    in IAM), and nothing else."""
    if not isinstance(condition, dict) or [k.lower() for k in condition] != ["bool"]:
        return False
    (tests,) = condition.values()
    if not isinstance(tests, dict) or [k.lower() for k in tests] != ["aws:securetransport"]:
        return False
    (value,) = tests.values()
    values = as_list(value)
    return len(values) == 1 and str(values[0]).lower() == "false"


def _denies_plain_http(statement: dict[str, Any], bucket_arn: str) -> bool:
    """Whether ``statement`` denies everyone every S3 action on the bucket and any object of it without TLS."""
    if str(statement.get("Effect", "")).lower() != "deny" or not any(
            isinstance(p, str) and p.strip() == "*" for p in principal_values(statement)):
        return False
    if not {"s3:*", "*"} & {a.strip().lower() for a in as_list(statement.get("Action")) if isinstance(a, str)}:
        return False
    if not _only_without_tls(statement.get("Condition")):
        return False  # another condition would narrow the deny (to some callers, some requests)
    patterns = [iam_wildcard(r.strip()) for r in as_list(statement.get("Resource")) if isinstance(r, str)]
    # the bucket itself (ListBucket...) and every object: a key the policy cannot have singled out
    return all(any(p.fullmatch(arn) for p in patterns) for arn in (bucket_arn, f"{bucket_arn}/any-object-key"))


def _tls_only(document: Any, name: str) -> bool:
    arns = [f"arn:{partition}:s3:::{name}" for partition in ("aws", "aws-cn", "aws-us-gov")]
    return any(_denies_plain_http(s, arn) for s in policy_statements(document) for arn in arns)


def _problems(bucket: PolicyResource, found: list[Any] | None) -> list[str]:
    """``found``: the bucket's policy documents, None while one is unknown at preview."""
    name = resource_input(bucket, "bucket")
    if found is None:
        raise Undecided(f"S3 bucket '{bucket.name}': policy")  # decided once it is known
    if found and (not isinstance(name, str) or not name):
        # generated or unknown name: which ARN the policy must name is known only after deployment
        raise Undecided(f"S3 bucket '{bucket.name}': bucket")
    parsed = []
    for raw in found:
        try:
            parsed.append(parse_json(raw))
        except ValueError:
            continue  # not JSON: no statement of it denies anything (S3 refuses such a policy anyway)
    if any(_tls_only(document, str(name)) for document in parsed):
        return []
    return [f"S3 bucket '{bucket.name}' accepts requests without TLS: no bucket policy of it denies "
            "aws:SecureTransport false; add an aws.s3.BucketPolicy with a Deny of s3:* on the bucket and its "
            "objects (arn:...:s3:::<bucket> and .../*) for Principal '*' under "
            "{'Bool': {'aws:SecureTransport': 'false'}}."]


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    buckets = stack_resources(args, *BUCKETS, none_reason="the stack has no S3 bucket")
    #: bucket URN -> the policy documents that apply to it (None: one of them is unknown at preview)
    documents: dict[str, list[Any] | None] = {bucket.urn: [] for bucket in buckets}
    undecided: list[str] = []
    for policy in stack_resources(args, BUCKET_POLICY):
        targets = referenced_targets(policy, "bucket", buckets, identity_keys=("id", "bucket"))
        if targets is None:
            undecided.append(f"bucket policy '{policy.name}': bucket")
            continue
        raw = resource_input(policy, "policy")
        for bucket in targets:
            found = documents[bucket.urn]
            if raw is UNKNOWN or contains_unknown(raw) or found is None:
                documents[bucket.urn] = None
            else:
                found.append(raw)
    for bucket in buckets:
        inline = resource_input(bucket, "policy")
        found = documents[bucket.urn]
        if inline is UNKNOWN or contains_unknown(inline):
            documents[bucket.urn] = None
        elif inline and found is not None:
            found.append(inline)
    if undecided:
        not_applicable(args, f"{', '.join(undecided)} unknown until deployment; the rule decides once it is known")
    report_bucket_problems(args, report_violation, buckets, lambda bucket: _problems(bucket, documents[bucket.urn]),
                           none_judged=("every S3 bucket's policy, or the name it must name, is unknown until "
                                        "deployment"))


POLICY = stack_rule_policy(__file__, _validate)
