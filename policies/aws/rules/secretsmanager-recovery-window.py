"""Secrets Manager secrets can be restored after a delete: ``recoveryWindowInDays`` is 7-30 (unset: 30).

Checks ``recoveryWindowInDays`` of ``aws:secretsmanager/secret:Secret``. The provider passes it to DeleteSecret when
the secret is deleted (a ``destroy``, a replacement): 7 to 30 schedules the deletion, and ``aws secretsmanager
restore-secret`` takes the secret back within that time; 0 deletes it at once without recovery
(``ForceDeleteWithoutRecovery``). pulumi_aws ``secretsmanager.Secret``: "This value can be 0 to force deletion
without recovery or range from 7 to 30 days. The default value is 30."

Why: the platform's secrets hold credentials that exist nowhere else once the broker or the stack's state is gone
(the broker admin's rotated password, the services' connection secrets), and a restored secret is what a
recovery imports back into a stack (README, "Disaster recovery"). Envs that do not protect state (dev, staging)
delete theirs at once on purpose, so a re-created stack can take the same names. No cdk-nag/checkov equivalent.
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import applies_to, as_int, known_input, rule_policy
from shared.policy_typing import ReportViolation

AWS_DEFAULT_DAYS = 30
#: Secrets Manager's shortest recovery window (botocore secretsmanager DeleteSecret RecoveryWindowInDays: 7-30)
MINIMUM_DAYS = 7


@applies_to("aws:secretsmanager/secret:Secret")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    window = known_input(args, "Secrets Manager secret", "recoveryWindowInDays")
    days = AWS_DEFAULT_DAYS if window is None else as_int(window)
    if days is None or days < MINIMUM_DAYS:
        report_violation(f"Secrets Manager secret '{args.name}' has recovery_window_in_days={window}: a delete (a "
                         "destroy, a replacement) removes it at once and restore-secret cannot take it back; set "
                         f"recovery_window_in_days between {MINIMUM_DAYS} and 30 (unset is 30).")


POLICY = rule_policy(__file__, _validate)
