"""The public entry of a `public: true` service: an internet-facing ALB speaking HTTPS only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: TLS 1.2+ with TLS 1.3 preferred; the ELB default policy still allows TLS 1.0.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class PublicGatewayArgs:
    env_name: str
    service: str
    port: int
    health_path: str
    certificate_arn: str
    vpc_id: pulumi.Input[str]
    #: the ECS tasks' security group (network layer): the ALB reaches the tasks by reference to it
    service_security_group_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    protect: bool


class PublicGateway(pulumi.ComponentResource):
    """ALB in the public subnets -> target group of the service's task IPs (tasks stay private)."""

    def __init__(self, name: str, args: PublicGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:PublicGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.security_group = aws.ec2.SecurityGroup(
            f"{args.service}-alb",
            vpc_id=args.vpc_id,
            description=f"Public HTTPS entry of {args.service} in {args.env_name}",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], ipv6_cidr_blocks=["::/0"],
                description="HTTPS from the internet (the only open port)")],
            # Forwarded requests and target health checks both go to the service port of the tasks'
            # group, nowhere else. Inline rules: nothing else adds rules to this group.
            egress=[aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=args.port, to_port=args.port,
                security_groups=[args.service_security_group_id],
                description=f"To {args.service} tasks on their service port")],
            # security-group-no-open-ingress accepts 0.0.0.0/0 on 443 only for SGs declared public.
            tags={"Name": f"{args.env_name}-{args.service}-alb", "exposure": "public"},
            opts=child,
        )
        # The tasks' side: their group takes rules as separate resources (the network layer owns the
        # group and its other rules), this one admitting the ALB on the service port only.
        self.task_ingress = aws.vpc.SecurityGroupIngressRule(
            f"{args.service}-alb-to-tasks",
            security_group_id=args.service_security_group_id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp", from_port=args.port, to_port=args.port,
            description=f"{args.service} requests and health checks from its public ALB",
            opts=pulumi.ResourceOptions(parent=self.security_group),
        )
        self.load_balancer = aws.lb.LoadBalancer(
            f"{args.service}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[self.security_group.id],
            # Requests with malformed headers are a request-smuggling vector; drop them at the edge.
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.protect,
            tags={"Name": f"{args.env_name}-{args.service}", "exposure": "public"},
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{args.service}-tasks",
            # awsvpc tasks register by IP.
            target_type="ip",
            protocol="HTTP",
            port=args.port,
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True, path=args.health_path, matcher="200-399", interval=15, timeout=5,
                healthy_threshold=2, unhealthy_threshold=3),
            tags={"Name": f"{args.env_name}-{args.service}"},
            opts=pulumi.ResourceOptions(parent=self.load_balancer),
        )
        self.listener = aws.lb.Listener(
            f"{args.service}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)],
            opts=pulumi.ResourceOptions(parent=self.load_balancer),
        )
        self.register_outputs({"dns_name": self.load_balancer.dns_name})
