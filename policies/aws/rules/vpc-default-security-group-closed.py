"""Every VPC's default security group is managed and carries no rules (stack rule).

Why: AWS creates each VPC's default SG allowing all traffic between its members and all egress, and
anything launched without an explicit SG lands in it. Adopting it with ``aws.ec2.DefaultSecurityGroup``
and no ``ingress``/``egress`` makes the provider strip those rules. Matches cdk-nag
VPCDefaultSecurityGroupClosed (NIST 800-53 packs) / checkov CKV2_AWS_12.

Findings: a VPC without a managed default SG; a DefaultSecurityGroup with inline rules; a standalone
rule (``aws:ec2/securityGroupRule``, ``aws:vpc/securityGroupIngressRule``/``EgressRule``) attached to a
default SG. ``DefaultSecurityGroup.vpcId`` and a rule's ``securityGroupId`` are outputs, so they are
resolved with ``shared.policy_support.referenced_targets`` (recorded property dependencies, then value,
then a unique dependency); what cannot be attributed makes the rule not applicable instead of failing.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import UNKNOWN, as_list, plain, referenced_targets, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

VPC = "aws:ec2/vpc:Vpc"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
STANDALONE_RULES = (
    "aws:ec2/securityGroupRule:SecurityGroupRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
)


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    vpcs, default_sgs = stack_resources(args, VPC), stack_resources(args, DEFAULT_SG)
    if not vpcs and not default_sgs:
        args.not_applicable("the stack has no VPC and no default security group")
    undecided: list[str] = []

    for sg in default_sgs:
        props = plain(sg.props)
        counts: dict[str, int] = {}
        for direction in ("ingress", "egress"):
            rules = props.get(direction)
            if rules is UNKNOWN:
                undecided.append(f"'{sg.name}'.{direction}")
                continue
            counts[direction] = len(as_list(rules))
        if any(counts.values()):
            report_violation(
                f"default security group '{sg.name}' has {counts.get('ingress', 0)} ingress and "
                f"{counts.get('egress', 0)} egress rule(s); remove them (leave ingress/egress unset) and give "
                "workloads their own security groups.",
                sg.urn,
            )

    for rule in stack_resources(args, *STANDALONE_RULES):
        targets = referenced_targets(rule, "securityGroupId", default_sgs)
        if targets is None:
            undecided.append(f"'{rule.name}'.securityGroupId")
        elif targets:
            report_violation(
                f"security group rule '{rule.name}' adds a rule to default security group '{targets[0].name}'; "
                "attach it to a dedicated security group instead.",
                rule.urn,
            )

    covered: set[str] = set()
    unattributed: list[PolicyResource] = []
    for sg in default_sgs:
        targets = referenced_targets(sg, "vpcId", vpcs)
        if targets is None:
            unattributed.append(sg)
        else:
            covered.update(t.urn for t in targets)
    missing = [v for v in vpcs if v.urn not in covered]
    if missing and unattributed:
        undecided.extend(f"'{sg.name}'.vpcId" for sg in unattributed)
    else:
        for vpc in missing:
            report_violation(
                f"VPC '{vpc.name}' leaves its default security group unmanaged (AWS allows all traffic within it); "
                f"add aws.ec2.DefaultSecurityGroup(vpc_id={vpc.name}.id) with no ingress/egress.",
                vpc.urn,
            )
    if undecided:
        args.not_applicable(f"cannot decide {', '.join(undecided)} before deployment")


POLICY = stack_rule_policy(__file__, _validate)
