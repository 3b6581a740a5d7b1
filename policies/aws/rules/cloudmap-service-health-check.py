"""Cloud Map services have a health check: custom (ECS reports task health) or Route 53.

Why: without one, Cloud Map keeps answering DNS/API discovery queries with instances that have died
or never became healthy, so callers are sent to dead tasks. ECS services registered through
``service_registries`` need ``health_check_custom_config``, and it must carry ``failure_threshold``
(1, the only value AWS uses): pulumi-aws drops an empty block, so the service is created without a
custom check and the provider then plans a forced replacement on every run (pulumi/pulumi-aws#6289,
hashicorp/terraform-provider-aws#44285). No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:servicediscovery/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    custom, route53 = props.get("healthCheckCustomConfig"), props.get("healthCheckConfig")
    if route53 is not None and route53 is not UNKNOWN:
        return
    if custom is UNKNOWN or (custom is None and route53 is UNKNOWN):
        undecidable(args, f"Cloud Map service '{args.name}': health check configuration")
    if custom is None:
        report_violation(
            f"Cloud Map service '{args.name}' has no health check, so it keeps returning dead instances; set "
            "health_check_custom_config={'failure_threshold': 1} (ECS reports task health) or health_check_config "
            "for a public namespace."
        )
        return
    threshold = get(custom, "failureThreshold")
    if threshold is UNKNOWN:
        undecidable(args, f"Cloud Map service '{args.name}': healthCheckCustomConfig.failureThreshold")
    if threshold is None:
        report_violation(
            f"Cloud Map service '{args.name}' has an empty health_check_custom_config, which the AWS provider drops "
            "(no custom health check is created, and every run plans a replacement); set "
            "health_check_custom_config={'failure_threshold': 1}."
        )


POLICY = rule_policy(__file__, _validate)
