"""A Service Connect service's ``timeout`` sets both of its timeouts, and the idle one does not cut a request short.

Checks each ``serviceConnectConfiguration.services[*].timeout`` of an ``aws:ecs/service:Service``. A block
that sets only one of ``idleTimeoutSeconds`` and ``perRequestTimeoutSeconds`` is flagged: the AWS provider
sends the other as 0 (terraform-provider-aws ecs ``expandTimeout`` reads an unset integer as 0), and ECS
reads 0 as "no timeout" (ECS API, TimeoutConfiguration), so the service silently loses that timeout. A
block on a ``tcp`` port (no ``appProtocol``) cannot carry a timeout at all through the provider: ECS takes no
per-request timeout there, and refuses the 0 sent for an unset one (pulumi_aws docstring: "Can only be set
when appProtocol isn't TCP"); the finding says so. A block whose idle timeout is shorter than its per-request
timeout is flagged too: ECS closes the connection when the idle timeout is reached and not the per-request one
(same reference), so the longer request wait never takes effect. No ``timeout`` block at all passes (ECS's
defaults apply). No cdk-nag/checkov equivalent.
"""

from typing import Any

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, contains_unknown, get, is_true, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation

FIELDS = ("idleTimeoutSeconds", "perRequestTimeoutSeconds")


def _problem(timeout: dict[str, Any]) -> str | None:
    idle, per_request = (timeout.get(field) for field in FIELDS)
    if (idle is None) != (per_request is None):
        unset = FIELDS[0] if idle is None else FIELDS[1]
        # A port whose appProtocol is tcp (or unset) takes no per-request timeout, 0 included ("Per request
        # timeout 0 can't be set for tcp application", as users of the provider report): there an idle timeout
        # cannot be sent alone, and the block must go (the rule cannot see the task definition's appProtocol).
        tcp = (" (on a tcp port, which ECS refuses any per-request timeout, 0 included, drop the timeout block: "
               "the provider cannot send an idle timeout alone)" if per_request is None else "")
        return (f"sets no {unset}: the AWS provider sends it as 0, which turns that timeout off; set both "
                f"idle_timeout_seconds and per_request_timeout_seconds{tcp}")
    if idle is not None and per_request is not None and 0 < int(idle) < int(per_request):
        # Numbers reach the pack as floats; the API takes whole seconds.
        return (f"has idleTimeoutSeconds {int(idle)} below perRequestTimeoutSeconds {int(per_request)}: ECS closes the "
                "connection at the idle timeout first; make the idle timeout at least the per-request one")
    return None


@applies_to("aws:ecs/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    connect = get(plain(args.props), "serviceConnectConfiguration")
    if connect is UNKNOWN:
        undecidable(args, f"ECS service '{args.name}': serviceConnectConfiguration")
    if not connect:
        return
    enabled, services = get(connect, "enabled"), get(connect, "services")
    if enabled is UNKNOWN or services is UNKNOWN:
        undecidable(args, f"ECS service '{args.name}': serviceConnectConfiguration")
    if not is_true(enabled):
        return
    for index, entry in enumerate(services or []):
        timeout = get(entry, "timeout")
        if contains_unknown(timeout):
            undecidable(args, f"ECS service '{args.name}': serviceConnectConfiguration.services[{index}].timeout")
        if not timeout:
            continue
        problem = _problem(timeout)
        if problem:
            port = get(entry, "portName") or f"services[{index}]"
            report_violation(f"ECS service '{args.name}': the Service Connect timeout of '{port}' {problem}.")


POLICY = rule_policy(__file__, _validate)
