"""Every listener of an App Mesh virtual node has a health check.

Why: Envoy only stops routing to an unhealthy endpoint it has been told how to probe; a listener
without ``health_check`` keeps receiving traffic after the app behind it has hung. A virtual node
without listeners (a pure client) is not applicable. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, as_list, get, known_input, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:appmesh/virtualNode:VirtualNode")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    listeners = as_list(known_input(args, "virtual node", "spec.listeners"))
    if not listeners:
        args.not_applicable(f"virtual node '{args.name}' has no listeners")
    missing, unknown = [], []
    for index, listener in enumerate(listeners):
        health_check = get(listener, "healthCheck")
        port = get(listener, "portMapping", "port")
        label = f"port {int(port)}" if isinstance(port, int | float) else f"listener #{index}"
        if health_check is UNKNOWN:
            unknown.append(label)
        elif not health_check:
            missing.append(label)
    if missing:
        report_violation(
            f"virtual node '{args.name}' has listener(s) without a health check ({', '.join(missing)}); add "
            "health_check={'protocol': 'http', 'path': <health path>, 'healthy_threshold': 2, "
            "'unhealthy_threshold': 2, 'timeout_millis': 2000, 'interval_millis': 5000} to each listener."
        )
    if unknown:
        undecidable(args, f"virtual node '{args.name}': health check of {', '.join(unknown)}")


POLICY = rule_policy(__file__, _validate)
