"""KMS keys wait at least the env's floor of days between a scheduled deletion and the deletion.

Checks ``deletionWindowInDays`` (AWS: 7-30, default 30) of ``aws:kms/key:Key``,
``aws:kms/replicaKey:ReplicaKey`` (a multi-Region replica) and ``aws:kms/externalKey:ExternalKey`` (imported
key material) against the rule's ``minimumDays`` parameter, per baseline in ``policies/catalog.yaml``
(sent with the rule's level; a real CLI run without ``--policy-pack-config`` uses the prod value). An
unset window is AWS's 30.

Why: deleting a KMS key makes every ciphertext under it unreadable for good; the waiting period is
the only time in which a mistaken ``pulumi destroy`` or a compromised admin can be undone
(``CancelKeyDeletion``). Related: Security Hub KMS.3 (keys not unintentionally deleted). No
cdk-nag/checkov equivalent.
"""

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from shared.policy_support import (
    applies_to,
    as_int,
    known_input,
    rule_parameter,
    rule_policy,
)
from shared.policy_typing import ReportViolation

AWS_DEFAULT_DAYS = 30


@applies_to("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey", "aws:kms/externalKey:ExternalKey")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    window = known_input(args, "KMS key", "deletionWindowInDays")
    days = AWS_DEFAULT_DAYS if window is None else as_int(window)
    minimum = int(rule_parameter(args, __file__, "minimumDays"))
    if days is None or days < minimum:
        report_violation(f"KMS key '{args.name}' has deletion_window_in_days={window}; this env requires at least "
                         f"{minimum} days (AWS accepts 7-30): set deletion_window_in_days={max(minimum, 7)} or more.")


POLICY = rule_policy(
    __file__, _validate,
    config_schema=PolicyConfigSchema(properties={"minimumDays": {"type": "integer", "minimum": 7, "maximum": 30}}),
)
