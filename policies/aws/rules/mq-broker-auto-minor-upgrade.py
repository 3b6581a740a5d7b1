"""Amazon MQ brokers upgrade to new minor engine versions automatically.

Checks ``autoMinorVersionUpgrade`` of ``aws:mq/broker:Broker`` (unset is ``false`` in the provider).
The upgrade runs in the broker's ``maintenanceWindowStartTime``.

Why: minor versions carry the engine's security fixes; a broker pinned to an old minor version keeps
its known vulnerabilities until someone remembers to upgrade it. Matches Security Hub MQ.3, checkov
CKV_AWS_207; no cdk-nag equivalent.
"""

from shared.policy_support import boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:mq/broker:Broker",
    label="broker", setting="autoMinorVersionUpgrade", required=True,
    finding="does not upgrade minor versions automatically; set auto_minor_version_upgrade=True and a "
            "maintenance_window_start_time.",
)
