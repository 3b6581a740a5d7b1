"""A customer managed key created with nothing but a description."""

import pulumi
import pulumi_aws as aws

key = aws.kms.Key("data", description="application data")
aws.kms.Alias("data", name="alias/app-data", target_key_id=key.key_id)
pulumi.export("key_arn", key.arn)
