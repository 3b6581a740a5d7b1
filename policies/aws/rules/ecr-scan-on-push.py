"""ECR repositories scan every image on push.

Why: an image with a known CVE should be flagged the moment it lands in the registry, before any task
runs it; scan-on-push is off by default. Matches checkov CKV_AWS_163 (no cdk-nag equivalent).
A registry-wide ``aws.ecr.RegistryScanningConfiguration`` is not seen by this per-repository rule.
"""

from shared.policy_support import boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:ecr/repository:Repository",
    label="ECR repository", setting="imageScanningConfiguration.scanOnPush", required=True,
    finding="does not scan images on push; set image_scanning_configuration={'scan_on_push': True}.",
)
