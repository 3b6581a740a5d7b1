"""Reads the stack's config: a number, a secret, and the region from aws:region."""

import pulumi
import pulumi_aws as aws

config = pulumi.Config()
retention = config.get_int("queueRetentionDays") or 7
admin_password = config.require_secret("adminPassword")

key = aws.kms.Key("logs", description="log encryption", enable_key_rotation=True, deletion_window_in_days=30)
group = aws.cloudwatch.LogGroup("app", retention_in_days=retention, kms_key_id=key.arn)
secret = aws.secretsmanager.Secret("admin", kms_key_id=key.arn)
aws.secretsmanager.SecretVersion("admin", secret_id=secret.id, secret_string=admin_password)

pulumi.export("log_group_arn", group.arn)
pulumi.export("region", aws.get_region().region)
