"""Two log groups: one kept forever (no retention), one with a retention."""

import pulumi
import pulumi_aws as aws

forever = aws.cloudwatch.LogGroup("audit")
aws.cloudwatch.LogGroup("app", retention_in_days=14)
pulumi.export("audit", forever.name)
