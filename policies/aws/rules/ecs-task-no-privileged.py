"""No privileged containers and no sharing of the host's PID or IPC namespace.

Why: a privileged container, or one that sees the host's processes (``pid_mode='host'``) or shared
memory (``ipc_mode='host'``), can take over the instance and every other task on it.
Matches Security Hub ECS.4 (privileged) and ECS.3 (host PID). checkov names CKV_AWS_334 (privileged)
and CKV_AWS_335 (host PID) for the same controls, but in checkov's source (3.3.x) CKV_AWS_334 reads a
container key ``privilege`` (ECS's key is ``privileged``) and CKV_AWS_335 reads ``pidMode`` inside each
container (it is a task definition setting, ``pid_mode``): both pass a privileged container and a
``pid_mode='host'`` task. No cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    is_true,
    plain,
    rule_policy,
    task_containers,
    undecidable,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:ecs/taskDefinition:TaskDefinition")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    for mode in ("pidMode", "ipcMode"):
        value = props.get(mode)
        if value is UNKNOWN:
            undecidable(args, f"task definition '{args.name}': {mode}")
        if str(value).lower() == "host":
            setting = "pid_mode" if mode == "pidMode" else "ipc_mode"
            report_violation(
                f"task definition '{args.name}' shares the host's {mode[:3].upper()} namespace; "
                f"remove {setting}='host' (or use 'task')."
            )
    privileged = [label for label, c in task_containers(args) if is_true(c.get("privileged"))]
    if privileged:
        report_violation(
            f"task definition '{args.name}' runs privileged container(s) {', '.join(privileged)}; remove "
            "privileged=true and grant only the Linux capabilities needed via linuxParameters.capabilities."
        )


POLICY = rule_policy(__file__, _validate)
