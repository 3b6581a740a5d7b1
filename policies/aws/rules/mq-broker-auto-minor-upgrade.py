"""Amazon MQ brokers upgrade to new minor engine versions automatically.

Checks ``autoMinorVersionUpgrade`` of ``aws:mq/broker:Broker`` (unset is ``false`` in the provider).
The upgrade runs in the broker's ``maintenanceWindowStartTime``.

Why: minor versions carry the engine's security fixes; a broker pinned to an old minor version keeps
its known vulnerabilities until someone remembers to upgrade it. Matches Security Hub MQ.3, checkov
CKV_AWS_207; no cdk-nag equivalent.
"""

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from shared.policy_support import (
    applies_to,
    is_true,
    known_input,
    rule_description,
    rule_id,
)
from shared.policy_typing import ReportViolation


@applies_to("aws:mq/broker:Broker")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    value = known_input(args, "broker", "autoMinorVersionUpgrade")
    if not is_true(value):
        report_violation(f"broker '{args.name}' does not upgrade minor versions automatically; set "
                         "auto_minor_version_upgrade=True and a maintenance_window_start_time.")


POLICY = ResourceValidationPolicy(name=rule_id(__file__), description=rule_description(__file__), validate=_validate)
