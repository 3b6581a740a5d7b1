"""Subnets do not give instances a public IP on launch, unless the subnet is tagged ``tier=public``.

Why: with ``map_public_ip_on_launch`` every ENI started in the subnet (tasks, instances, endpoints) is
reachable from the internet as soon as a security group allows it. Public subnets (load balancers,
NAT gateways) say so with the ``tier=public`` tag (resource or provider default tags). Checks
``aws:ec2/subnet`` (unset is ``false``) and ``aws:ec2/defaultSubnet``, an adopted default subnet, where
unset is ``true``: AWS's default subnets map public IPs, and Security Hub EC2.15 fails them too.
Matches Security Hub EC2.15, checkov CKV_AWS_130 / cdk-nag VPCSubnetAutoAssignPublicIpDisabled (NIST 800-53 packs).
EC2.15 knows no tier: it fails a ``tier=public`` subnet that maps public IPs too. The platform's public subnets map
none (its NAT gateways take Elastic IPs, a load balancer its own addresses), so the exception only spares a user's
program, which Security Hub will still flag.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    effective_tags,
    is_true,
    known_input,
    rule_policy,
)
from shared.policy_typing import ReportViolation

DEFAULT_SUBNET = "aws:ec2/defaultSubnet:DefaultSubnet"


@applies_to("aws:ec2/subnet:Subnet", DEFAULT_SUBNET)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    map_public_ip = known_input(args, "subnet", "mapPublicIpOnLaunch")
    if map_public_ip is None:
        # unset: a new subnet does not map public IPs; an adopted default subnet does (pulumi_aws DefaultSubnet)
        map_public_ip = args.resource_type == DEFAULT_SUBNET
    if not is_true(map_public_ip):
        return
    if str(effective_tags(args).get("tier", "")).lower() == "public":
        return
    report_violation(
        f"subnet '{args.name}' maps public IPs on launch but is not tagged tier=public; "
        "set map_public_ip_on_launch=False (or tag it tier=public if it is meant to be a public subnet)."
    )


POLICY = rule_policy(__file__, _validate)
