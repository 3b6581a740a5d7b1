"""ECS tasks started by EventBridge rules or EventBridge Scheduler do not get public IPs.

Checks ``ecsTarget.networkConfiguration.assignPublicIp`` of ``aws:cloudwatch/eventTarget:EventTarget``
and ``target.ecsParameters.networkConfiguration.assignPublicIp`` of ``aws:scheduler/schedule:Schedule``
(both default to ``false``). Targets that do not start ECS tasks are not applicable.

Why: ``ecs-service-no-public-ip`` covers services; a scheduled task with a public IP in a public
subnet is reachable from the internet the same way, only less often looked at. Matches the intent of
Security Hub ECS.2 / checkov CKV_AWS_333 for tasks outside services; no anchor checks these targets.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, is_true, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"


@applies_to(EVENT_TARGET, SCHEDULE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    path = ("ecsTarget",) if args.resource_type == EVENT_TARGET else ("target", "ecsParameters")
    ecs = get(props, *path)
    if ecs is UNKNOWN:
        undecidable(args, f"{args.resource_type.split(':')[-1]} '{args.name}': {'.'.join(path)}")
    if ecs is None:
        args.not_applicable(f"'{args.name}' does not start ECS tasks")
    value = get(ecs, "networkConfiguration", "assignPublicIp")
    if value is UNKNOWN:
        undecidable(args, f"'{args.name}': {'.'.join(path)}.networkConfiguration.assignPublicIp")
    if is_true(value):
        report_violation(f"'{args.name}' starts ECS tasks with a public IP; set network_configuration="
                         "{'assign_public_ip': False, 'subnets': <private subnets>}.")


POLICY = rule_policy(__file__, _validate)
