"""Resource-based policies fit the size their service takes; it refuses a longer one.

The policy document as sent (white space included), against:

* an S3 bucket policy (``aws:s3/bucketPolicy``, ``aws:s3/bucket`` ``policy``): 20 KB, 20,480 bytes (S3 user
  guide, bucket policies: "Bucket policies are limited to 20 KB in size");
* a KMS key policy (``aws:kms/key``, ``aws:kms/keyPolicy``): 32 KB, 32,768 bytes (KMS developer guide, resource
  quotas: "Key policy document size", not adjustable);
* a VPC endpoint policy (``aws:ec2/vpcEndpoint``, ``aws:ec2/vpcEndpointPolicy``): 20,480 characters including white
  space (Amazon VPC quotas: "VPC endpoint policy size", not adjustable);
* an ECR repository or registry policy (``aws:ecr/repositoryPolicy``, ``aws:ecr/registryPolicy``): 10,240
  characters (botocore ecr ``RepositoryPolicyText`` / ``RegistryPolicyText``: max 10240);
* a Secrets Manager secret policy (``aws:secretsmanager/secretPolicy``): 20,480 characters (botocore
  secretsmanager ``NonEmptyResourcePolicyType``: max 20480).

Why: a policy that lists a principal or a resource per service grows with the catalog; past the limit the Put*Policy
call fails during ``up`` with the resources before it already changed. A policy unknown at preview is undecided.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rule_policy
from shared.policy_typing import ReportViolation

#: resource type -> (what, the limit, counted in bytes (else characters))
LIMITS: dict[str, tuple[str, int, bool]] = {
    "aws:s3/bucketPolicy:BucketPolicy": ("S3 bucket policy", 20_480, True),
    "aws:s3/bucket:Bucket": ("S3 bucket policy", 20_480, True),
    "aws:s3/bucketV2:BucketV2": ("S3 bucket policy", 20_480, True),
    "aws:kms/key:Key": ("KMS key policy", 32_768, True),
    "aws:kms/keyPolicy:KeyPolicy": ("KMS key policy", 32_768, True),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("VPC endpoint policy", 20_480, False),
    "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy": ("VPC endpoint policy", 20_480, False),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": ("ECR repository policy", 10_240, False),
    "aws:ecr/registryPolicy:RegistryPolicy": ("ECR registry policy", 10_240, False),
    "aws:secretsmanager/secretPolicy:SecretPolicy": ("Secrets Manager secret policy", 20_480, False),
}


@applies_to(*LIMITS)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    what, limit, in_bytes = LIMITS[args.resource_type]
    document = known_input(args, what, "policy")
    if not isinstance(document, str) or not document:
        return
    size = len(document.encode()) if in_bytes else len(document)
    if size > limit:
        unit = "bytes" if in_bytes else "characters"
        report_violation(
            f"{what} of '{args.name}' has {size} {unit}, more than the {limit} AWS takes (white space included): up "
            "fails when it is set. Grant by tag, prefix or account condition instead of listing every principal or "
            "resource, and send the document without indentation.")


POLICY = rule_policy(__file__, _validate)
