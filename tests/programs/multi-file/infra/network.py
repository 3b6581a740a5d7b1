"""A VPC with two subnets, as a local component."""

import pulumi
import pulumi_aws as aws


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, cidr: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("example:network:Network", name, None, opts)
        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cidr, enable_dns_hostnames=True,
                               opts=pulumi.ResourceOptions(parent=self))
        self.subnets = [
            aws.ec2.Subnet(f"{name}-{index}", vpc_id=self.vpc.id, cidr_block=f"10.20.{index}.0/24",
                           map_public_ip_on_launch=True, opts=pulumi.ResourceOptions(parent=self))
            for index in range(2)
        ]
        self.register_outputs({"vpc_id": self.vpc.id})
