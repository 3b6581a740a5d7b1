"""A CI role given everything on S3 and an admin managed policy, as quick-start guides do."""

import json

import pulumi
import pulumi_aws as aws

caller = aws.get_caller_identity()
role = aws.iam.Role("deployer", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{caller.account_id}:root"}}]}))
document = aws.iam.get_policy_document(statements=[aws.iam.GetPolicyDocumentStatementArgs(
    actions=["s3:*"], resources=["*"])])
aws.iam.RolePolicy("deployer-s3", role=role.id, policy=document.json)
aws.iam.RolePolicyAttachment("deployer-admin", role=role.name,
                             policy_arn="arn:aws:iam::aws:policy/AdministratorAccess")
pulumi.export("role_arn", role.arn)
