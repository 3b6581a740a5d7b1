"""ActiveMQ brokers encrypt their data with a customer-managed KMS key.

Checks ``encryptionOptions`` of ``aws:mq/broker:Broker`` with ``engineType`` ActiveMQ: it must set
``useAwsOwnedKey: false`` and a ``kmsKeyId`` (unset means an AWS-owned key; ``useAwsOwnedKey: false``
without a key, or the alias ``aws/mq``, is Amazon MQ's AWS-managed key, whose policy nobody can change).
RabbitMQ brokers are not applicable: AWS documents that customer-managed keys for encryption at rest "does not apply to
RabbitMQ brokers" (Amazon MQ developer guide, encryption at rest), so checkov CKV_AWS_209, which
asks it of every broker, is a false positive there.

Why: with an AWS-owned key there are no key-usage records in CloudTrail and no way to revoke access
to the broker's stored messages. Matches checkov CKV_AWS_209 (ActiveMQ only).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import UNKNOWN, applies_to, get, known_input, plain, rule_policy, undecidable
from shared.policy_typing import ReportViolation


@applies_to("aws:mq/broker:Broker")
def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    engine = known_input(args, "broker", "engineType", props)
    if str(engine).lower() != "activemq":
        args.not_applicable(f"broker '{args.name}' is {engine}: customer-managed keys for encryption at rest do "
                            "not apply to RabbitMQ brokers")
    options = props.get("encryptionOptions")
    aws_owned, key = get(options, "useAwsOwnedKey"), get(options, "kmsKeyId")
    if UNKNOWN in (options, aws_owned, key):
        undecidable(args, f"broker '{args.name}': encryptionOptions")
    if aws_owned is not False or not key or str(key).strip().endswith("alias/aws/mq"):
        report_violation(f"ActiveMQ broker '{args.name}' is encrypted with an AWS-owned key or the AWS-managed aws/mq "
                         "key; set encryption_options={'use_aws_owned_key': False, 'kms_key_id': <key arn>} "
                         "(creation-only).")


POLICY = rule_policy(__file__, _validate)
