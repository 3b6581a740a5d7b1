"""ECS tasks started by EventBridge rules, EventBridge Scheduler or EventBridge Pipes do not get public IPs.

Checks ``ecsTarget.networkConfiguration.assignPublicIp`` of ``aws:cloudwatch/eventTarget:EventTarget`` and
``target.ecsParameters.networkConfiguration.assignPublicIp`` of ``aws:scheduler/schedule:Schedule`` (both
booleans, default ``false``), and
``targetParameters.ecsTaskParameters.networkConfiguration.awsVpcConfiguration.assignPublicIp`` of
``aws:pipes/pipe:Pipe`` (``ENABLED`` / ``DISABLED``, default ``DISABLED``: the Pipes API's AwsVpcConfiguration).
Targets that do not start ECS tasks are not applicable.

Why: ``ecs-service-no-public-ip`` covers services; a task started on a schedule, an event or a pipe's source
with a public IP in a public subnet is reachable from the internet the same way, only less often looked at.
Matches the intent of Security Hub ECS.2 / checkov CKV_AWS_333 for tasks outside services; no anchor checks
these targets.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, is_true, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"
PIPE = "aws:pipes/pipe:Pipe"
#: per type: where its ECS parameters are, and where in them the public IP setting is
ECS_PARAMETERS = {
    EVENT_TARGET: (("ecsTarget",), ("networkConfiguration", "assignPublicIp")),
    SCHEDULE: (("target", "ecsParameters"), ("networkConfiguration", "assignPublicIp")),
    PIPE: (("targetParameters", "ecsTaskParameters"), ("networkConfiguration", "awsVpcConfiguration",
                                                         "assignPublicIp")),
}


def _public(value: object) -> bool:
    """A public IP: ``true`` (rules, schedules) or ``ENABLED`` (pipes)."""
    return is_true(value) or (isinstance(value, str) and value.strip().upper() == "ENABLED")


@applies_to(EVENT_TARGET, SCHEDULE, PIPE)
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    path, setting = ECS_PARAMETERS[args.resource_type]
    ecs = get(props, *path)
    if ecs is UNKNOWN:
        undecidable(args, f"{args.resource_type.split(':')[-1]} '{args.name}': {'.'.join(path)}")
    if ecs is None:
        args.not_applicable(f"'{args.name}' does not start ECS tasks")
    value = get(ecs, *setting)
    if value is UNKNOWN:
        undecidable(args, f"'{args.name}': {'.'.join(path + setting)}")
    if _public(value):
        fix = ("network_configuration={'aws_vpc_configuration': {'assign_public_ip': 'DISABLED', 'subnets': "
               "<private subnets>}}" if args.resource_type == PIPE
               else "network_configuration={'assign_public_ip': False, 'subnets': <private subnets>}")
        report_violation(f"'{args.name}' starts ECS tasks with a public IP; set {fix}.")


POLICY = rule_policy(__file__, _validate)
