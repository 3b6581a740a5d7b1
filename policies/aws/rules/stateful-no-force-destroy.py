"""A delete of a stateful resource does not take its data with it: no ``force_destroy`` / ``force_delete``
(mandatory in prod).

Checks ``forceDestroy`` of ``aws:s3/bucket:Bucket`` / ``aws:s3/bucketV2:BucketV2`` and of
``aws:servicediscovery/service:Service``, and ``forceDelete`` of ``aws:ecr/repository:Repository`` (each
default ``false``). pulumi_aws: a bucket's flag deletes "all objects (including any locked objects)" when the
bucket is destroyed, and "these objects are *not* recoverable" (the provider deletes every object version and
delete marker, then the bucket); a repository's deletes it "even if it contains images"; a Cloud Map service's
deletes "all instances ... from the service so that the service can be destroyed", instances that are "not
recoverable".

Why: without the flag AWS refuses the delete while the resource holds anything (S3 DeleteBucket
``BucketNotEmpty``, ECR DeleteRepository ``RepositoryNotEmptyException``, Cloud Map DeleteService
``ResourceInUse``), so a ``destroy``, a replacement or a resource dropped from the program by mistake stops at
it with the data still there. With it the same delete empties the bucket for good (every object version: the
trained models, the access logs kept as audit evidence), deletes the released images the services run, or
deregisters the running tasks their callers find them by. It is the AWS-side companion of ``protect``
(``prod-protect-stateful``) and still holds once the state's protection is released. Dev and staging set
``force_destroy`` on purpose (the buckets' and Cloud Map services' components pass ``force_destroy=not
args.protect``) so that their destroy runs to the end; the repositories keep ``force_delete`` off everywhere (a
destroy is refused before it starts while one holds images). No Security Hub, cdk-nag or checkov control matches.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, is_true, known_input, rule_policy
from shared.policy_typing import ReportViolation

#: Per resource type: its label in findings, the input that makes the delete take the data (as sent and as the
#: Python SDK names it) and what that delete destroys.
FORCE_FLAGS: dict[str, tuple[str, str, str, str]] = {
    "aws:s3/bucket:Bucket": ("S3 bucket", "forceDestroy", "force_destroy",
                             "deletes every object version in it for good"),
    "aws:s3/bucketV2:BucketV2": ("S3 bucket", "forceDestroy", "force_destroy",
                                 "deletes every object version in it for good"),
    "aws:ecr/repository:Repository": ("ECR repository", "forceDelete", "force_delete",
                                      "deletes every image in it for good"),
    "aws:servicediscovery/service:Service": ("Cloud Map service", "forceDestroy", "force_destroy",
                                             "deregisters every instance in it"),
}


@applies_to(*FORCE_FLAGS)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    label, setting, python_name, loses = FORCE_FLAGS[args.resource_type]
    if is_true(known_input(args, label, setting)):
        report_violation(f"{label} '{args.name}' has {python_name}=True: its delete (a destroy, a replacement, its "
                         f"removal from the program) {loses} instead of stopping while it holds any; leave "
                         f"{python_name} unset (False) where the env protects state.")


POLICY = rule_policy(__file__, _validate)
