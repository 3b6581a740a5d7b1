"""Fargate services are not pinned to an old platform version.

Checks ``platformVersion`` of ``aws:ecs/service:Service`` with ``launchType`` FARGATE (or a capacity
provider strategy of FARGATE / FARGATE_SPOT): unset or ``LATEST`` passes, and so does a pin to the
current version of the OS family (Linux ``1.4.0``, Windows ``1.0.0``: :data:`CURRENT`); anything older
(``1.3.0``...) fails. Services that are not on Fargate are not applicable.

Why: platform versions carry the Fargate runtime's security fixes and features (1.4.0: ephemeral
storage encryption, the task metadata v4 endpoint); an old pin keeps tasks on an unpatched runtime.
Matches Security Hub ECS.10, checkov CKV_AWS_332 (which accepts only ``LATEST``; a pin to the current
version passes here and must be moved on when AWS releases the next one). No cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_list,
    contains_unknown,
    get,
    known_input,
    plain,
    rule_policy,
    undecidable,
)
from shared.policy_typing import ReportViolation

#: The newest platform version of each OS family (ECS developer guide, "Fargate platform versions").
CURRENT = {"1.4.0", "1.0.0"}


@applies_to("aws:ecs/service:Service")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    launch_type, strategy = props.get("launchType"), props.get("capacityProviderStrategies")
    if launch_type is UNKNOWN or contains_unknown(strategy):
        undecidable(args, f"service '{args.name}': launchType/capacityProviderStrategies")
    providers = {str(get(item, "capacityProvider") or "").upper() for item in as_list(strategy)}
    if str(launch_type or "").upper() != "FARGATE" and not providers & {"FARGATE", "FARGATE_SPOT"}:
        args.not_applicable(f"service '{args.name}' does not run on Fargate")
    version = known_input(args, "service", "platformVersion", props)
    text = str(version or "LATEST").strip()
    if text.upper() != "LATEST" and text not in CURRENT:
        report_violation(f"service '{args.name}' is pinned to Fargate platform version {text}; set "
                         "platform_version='LATEST' (or leave it unset).")


POLICY = rule_policy(__file__, _validate)
