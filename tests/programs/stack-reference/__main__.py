"""A service placed in subnets another stack exports (unknown offline: no such stack is given)."""

import pulumi
import pulumi_aws as aws

network = pulumi.StackReference(f"acme/network/{pulumi.get_stack()}")
subnet_ids = network.get_output("private_subnet_ids")
vpc_id = network.require_output("vpc_id")

sg = aws.ec2.SecurityGroup("svc", vpc_id=vpc_id, description="service",
                           egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                                   cidr_blocks=["10.0.0.0/8"])])
pulumi.export("sg", sg.id)
pulumi.export("subnets", subnet_ids)
