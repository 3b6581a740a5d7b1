"""The web tier's security group."""

import pulumi_aws as aws

from infra.network import Network


def web_security_group(net: Network) -> aws.ec2.SecurityGroup:
    return aws.ec2.SecurityGroup(
        "web",
        vpc_id=net.vpc.id,
        description="web tier",
        ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=22, to_port=22,
                                                  cidr_blocks=["0.0.0.0/0"])],
    )
