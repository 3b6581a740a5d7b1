"""Cloud Map services have a health check: custom (ECS reports task health) or Route 53.

Why: without one, Cloud Map keeps answering DNS/API discovery queries with instances that have died
or never became healthy, so callers are sent to dead tasks. ECS services registered through
``service_registries`` need ``health_check_custom_config`` (an empty block is enough).
No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.aws.support import UNKNOWN, applies_to, plain, undecidable
from shared.policy_support import rule_description, rule_id


@applies_to("aws:servicediscovery/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    custom, route53 = props.get("healthCheckCustomConfig"), props.get("healthCheckConfig")
    # An empty custom config block is serialized as {} -- present, and exactly what ECS needs.
    if (custom is not None and custom is not UNKNOWN) or (route53 is not None and route53 is not UNKNOWN):
        return
    if custom is UNKNOWN or route53 is UNKNOWN:
        undecidable(args, f"Cloud Map service '{args.name}': health check configuration")
    report_violation(
        f"Cloud Map service '{args.name}' has no health check, so it keeps returning dead instances; set "
        "health_check_custom_config={} (ECS reports task health) or health_check_config for a public namespace."
    )


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
