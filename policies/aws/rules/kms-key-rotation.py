"""Customer-managed symmetric KMS keys rotate their key material automatically.

Checks ``enableKeyRotation`` of ``aws:kms/key:Key`` (default ``false``). AWS rotates only symmetric
encryption keys whose material AWS generated: asymmetric and HMAC keys (``customerMasterKeySpec`` /
``keySpec`` other than ``SYMMETRIC_DEFAULT``) cannot rotate automatically and are not applicable
(KMS developer guide, "Rotate AWS KMS keys"). ``rotationPeriodInDays`` (90-2560) is AWS's to accept.

Why: a key that never rotates keeps every ciphertext of its lifetime behind the same material;
rotation limits what one compromised backing key decrypts. Matches Security Hub KMS.4, cdk-nag
AwsSolutions-KMS5 / KMSBackingKeyRotationEnabled, checkov CKV_AWS_7.
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, boolean_setting_rule, plain, undecidable


def _symmetric_key_props(args: ResourceValidationArgs) -> dict[str, Any]:
    """The inputs of a symmetric encryption key; asymmetric and HMAC keys are not applicable."""
    props = plain(args.props)
    spec = props.get("keySpec") or props.get("customerMasterKeySpec")
    if spec is UNKNOWN:
        undecidable(args, f"KMS key '{args.name}': keySpec")
    if spec not in (None, "SYMMETRIC_DEFAULT"):
        args.not_applicable(f"KMS key '{args.name}' is a {spec} key: AWS rotates only symmetric encryption keys")
    return props


POLICY = boolean_setting_rule(
    __file__, "aws:kms/key:Key",
    label="KMS key", setting="enableKeyRotation", required=True, inputs=_symmetric_key_props,
    finding="does not rotate its key material; set enable_key_rotation=True.",
)
