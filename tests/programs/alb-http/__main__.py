"""An internet-facing ALB in the default VPC forwarding HTTP to a target group."""

import pulumi
import pulumi_aws as aws

vpc = aws.ec2.get_vpc(default=True)
subnets = aws.ec2.get_subnets(filters=[aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc.id])])
sg = aws.ec2.SecurityGroup("lb", vpc_id=vpc.id, description="public HTTP",
                           ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=80, to_port=80,
                                                                     cidr_blocks=["0.0.0.0/0"])])
lb = aws.lb.LoadBalancer("web", load_balancer_type="application", security_groups=[sg.id], subnets=subnets.ids)
target = aws.lb.TargetGroup("web", port=8080, protocol="HTTP", target_type="ip", vpc_id=vpc.id)
aws.lb.Listener("http", load_balancer_arn=lb.arn, port=80, protocol="HTTP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target.arn)])
pulumi.export("url", lb.dns_name.apply(lambda name: f"http://{name}"))
