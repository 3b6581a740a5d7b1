"""App Mesh meshes drop egress to destinations not modelled in the mesh (``DROP_ALL``).

``DROP_ALL`` is also the default when ``spec.egress_filter`` is left unset, so only an explicit
``ALLOW_ALL`` fails.

Why: with ``ALLOW_ALL`` a compromised or misconfigured service can reach any address through its Envoy
sidecar; with ``DROP_ALL`` every dependency must be a declared virtual service, which keeps the
traffic graph reviewable. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, known_input, rule_policy
from shared.policy_typing import ReportViolation


@applies_to("aws:appmesh/mesh:Mesh")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    egress_type = known_input(args, "mesh", "spec.egressFilter.type")
    if str(egress_type or "DROP_ALL").upper() != "DROP_ALL":
        report_violation(
            f"mesh '{args.name}' allows egress to any destination ({egress_type}); set "
            "spec={'egress_filter': {'type': 'DROP_ALL'}} and declare external dependencies as virtual services."
        )


POLICY = rule_policy(__file__, _validate)
