"""Subnets do not give instances a public IP on launch, unless the subnet is tagged ``tier=public``.

Why: with ``map_public_ip_on_launch`` every ENI started in the subnet (tasks, instances, endpoints) is
reachable from the internet as soon as a security group allows it. Public subnets (load balancers,
NAT gateways) say so with the ``tier=public`` tag (resource or provider default tags).
Matches checkov CKV_AWS_130 / cdk-nag VPCSubnetAutoAssignPublicIpDisabled (NIST 800-53 packs).
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


@applies_to("aws:ec2/subnet:Subnet")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    map_public_ip = known_input(args, "subnet", "mapPublicIpOnLaunch")
    if not is_true(map_public_ip):
        return
    if str(effective_tags(args).get("tier", "")).lower() == "public":
        return
    report_violation(
        f"subnet '{args.name}' maps public IPs on launch but is not tagged tier=public; "
        "set map_public_ip_on_launch=False (or tag it tier=public if it is meant to be a public subnet)."
    )


POLICY = rule_policy(__file__, _validate)
