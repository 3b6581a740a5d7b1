"""A Python Lambda function packaged from a local folder, with its execution role."""

import json

import pulumi
import pulumi_aws as aws

role = aws.iam.Role("fn", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}]}))
aws.iam.RolePolicyAttachment("fn-logs", role=role.name,
                             policy_arn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
code = pulumi.AssetArchive({"handler.py": pulumi.StringAsset("def main(event, context):\n    return 1\n")})
fn = aws.lambda_.Function("fn", runtime="python3.12", handler="handler.main", role=role.arn, code=code)
aws.cloudwatch.LogGroup("fn", name=fn.name.apply(lambda name: f"/aws/lambda/{name}"), retention_in_days=30)
pulumi.export("invoke_arn", fn.invoke_arn)
