"""Every VPC in the stack has a VPC-level flow log (stack rule).

Why: without flow logs there is no record of which addresses talked to what -- nothing to investigate
an incident or a blocked connection with. Flow logs on single subnets or ENIs do not count, nor does one
with ``traffic_type='ACCEPT'``: it leaves out the rejected packets that Security Hub EC2.6 (trafficType
REJECT) and CIS ask for.
Matches cdk-nag AwsSolutions-VPC7 / checkov CKV2_AWS_11.

How a flow log is matched to its VPC: ``FlowLog.vpcId`` is the VPC's id, an output the VPC's input
properties never contain. ``shared.policy_support.referenced_targets`` resolves it from the recorded
``property_dependencies`` of ``vpcId`` first, then by value (the VPC's ``id`` where the CLI reports
it), then from ``dependencies`` naming exactly one VPC. A flow log that cannot be attributed makes the
rule not applicable for the uncovered VPCs instead of failing them.
"""

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import referenced_targets, resource_input, stack_resources, stack_rule_policy
from shared.policy_typing import ReportViolation

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    vpcs = stack_resources(args, VPC, none_reason="the stack has no VPC")
    covered: set[str] = set()
    accept_only: set[str] = set()
    unattributed: list[PolicyResource] = []
    for flow_log in stack_resources(args, FLOW_LOG):
        if resource_input(flow_log, "vpcId") is None:
            continue  # a subnet/ENI/transit gateway flow log: not a VPC flow log
        targets = referenced_targets(flow_log, "vpcId", vpcs)
        if targets is None:
            unattributed.append(flow_log)
            continue
        if str(resource_input(flow_log, "trafficType")).upper() == "ACCEPT":
            accept_only.update(t.urn for t in targets)  # no rejected packets: what EC2.6 and CIS ask for
            continue
        covered.update(t.urn for t in targets)
    missing = [v for v in vpcs if v.urn not in covered]
    if missing and unattributed:
        names = ", ".join(f"'{f.name}'" for f in unattributed)
        args.not_applicable(f"cannot tell which VPC flow log(s) {names} belong to")
    for vpc in missing:
        what = "records only accepted traffic" if vpc.urn in accept_only else "has no flow log"
        report_violation(
            f"VPC '{vpc.name}' {what}; add aws.ec2.FlowLog(vpc_id={vpc.name}.id, traffic_type='ALL', "
            "log_destination=<log group arn>, iam_role_arn=<role arn>).",
            vpc.urn,
        )


POLICY = stack_rule_policy(__file__, _validate)
