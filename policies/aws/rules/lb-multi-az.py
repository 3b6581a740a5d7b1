"""Load balancers span at least two Availability Zones (two subnets).

Checks ``subnets`` / ``subnetMappings`` of ``aws:lb/loadBalancer:LoadBalancer`` /
``aws:alb/loadBalancer:LoadBalancer``: fewer than two subnets fails (an ALB needs two at creation; an
NLB or GWLB accepts one, and then an AZ outage takes the entry point down). The subnets are taken to be
in different AZs -- one subnet per AZ is how the network layer builds its tiers; the rule cannot see a
subnet's AZ from here.

Why: the entry point is the one component every request crosses. Matches Security Hub ELB.13; no
cdk-nag/checkov equivalent for ALB/NLB (cdk-nag ELB4 is Classic only).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, as_list, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    subnets, mappings = props.get("subnets"), props.get("subnetMappings")
    if subnets is UNKNOWN or mappings is UNKNOWN:
        undecidable(args, f"load balancer '{args.name}': subnets/subnetMappings")
    count = len(as_list(subnets)) + len(as_list(mappings))
    if count < 2:
        report_violation(f"load balancer '{args.name}' is in {count} subnet(s); give it one subnet in each of at "
                         "least two Availability Zones.")


POLICY = rule_policy(__file__, _validate)
