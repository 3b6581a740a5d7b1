"""ECS clusters enable Container Insights (``enabled`` or ``enhanced``).

Why: without it there are no per-task CPU/memory/network metrics -- nothing to size tasks with, to alarm
on, or to explain an OOM-killed task afterwards. An account-level default is not visible to this
rule; the cluster says so itself. Matches cdk-nag AwsSolutions-ECS4 / checkov CKV_AWS_65.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_list,
    contains_unknown,
    known_input,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/cluster:Cluster")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    settings = known_input(args, "ECS cluster", "settings")
    value = None
    for setting in as_list(settings):
        if isinstance(setting, dict) and setting.get("name") == "containerInsights":
            value = setting.get("value")
    if contains_unknown(value) or any(isinstance(s, dict) and s.get("name") is UNKNOWN for s in as_list(settings)):
        undecidable(args, f"ECS cluster '{args.name}': the containerInsights setting")
    if str(value).lower() not in ("enabled", "enhanced"):
        state = f"set to {value!r}" if value is not None else "not set"
        report_violation(
            f"ECS cluster '{args.name}' has Container Insights {state}; "
            "set settings=[{'name': 'containerInsights', 'value': 'enabled'}] (or 'enhanced')."
        )


POLICY = rule_policy(__file__, _validate)
