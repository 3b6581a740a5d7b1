"""A VPC whose flow logs go to a CloudWatch log group, with the default security group closed."""

import json

import pulumi
import pulumi_aws as aws

vpc = aws.ec2.Vpc("main", cidr_block="10.0.0.0/16", enable_dns_support=True, enable_dns_hostnames=True)
aws.ec2.DefaultSecurityGroup("default", vpc_id=vpc.id)
group = aws.cloudwatch.LogGroup("flow", retention_in_days=365)
role = aws.iam.Role("flow", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}))
aws.iam.RolePolicy("flow", role=role.id, policy=group.arn.apply(lambda arn: json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": f"{arn}:*",
                                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"]}]})))
aws.ec2.FlowLog("main", vpc_id=vpc.id, traffic_type="ALL", log_destination=group.arn, iam_role_arn=role.arn)
pulumi.export("vpc_id", vpc.id)
