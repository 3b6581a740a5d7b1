"""Log groups encrypted with a KMS key of their stack can use it: the key's policy lets CloudWatch Logs in for
that group (stack rule).

For every ``aws:cloudwatch/logGroup:LogGroup`` whose ``kmsKeyId`` refers to an ``aws:kms/key:Key`` of the stack (and
every dynamic resource with a ``log_group_name``, whose ``kms_key_arn`` does: a group an AWS service writes to, which
the platform creates or adopts, such as Amazon MQ's ``/aws/amazonmq/broker/<id>/general``),
the key's policy (its ``policy`` input, or that of an ``aws:kms/keyPolicy:KeyPolicy`` of the stack for the key,
which replaces it; a key without either gets AWS's default policy, for the account's IAM principals only) needs
an ``Allow`` statement for the CloudWatch Logs service principal (``logs.<region>.amazonaws.com``) with
``kms:Encrypt``, ``kms:Decrypt`` and ``kms:GenerateDataKey``. A ``kms:EncryptionContext:aws:logs:arn`` condition
(``ArnLike``/``ArnEquals``/``StringLike``/``StringEquals``) counts only if one of its ARNs matches the group's
(``log-group:<name>``; an ARN operator part by part, ``StringLike`` the whole ARN); other conditions are accepted
as written. A key the group cannot be traced to in the stack (another stack's, by ARN) is not judged; an unknown
key policy, key reference or group name (a generated one: ``namePrefix``) makes the rule not applicable.

Why: CloudWatch Logs calls KMS as its service principal with the group's ARN as encryption context, which no
IAM policy can allow (CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS").
Without the statement, or with a condition whose ARN misses the group's name, CreateLogGroup (and
AssociateKmsKey) fail with AccessDeniedException "The specified KMS key does not exist or is not allowed to
be used with Arn ..." in the middle of the ``up``, after what came before it was created; a policy narrowed
later leaves the group's stored events unreadable ("CloudWatch Logs requires permissions for the CMK whenever
the encrypted data is requested": pulumi_aws LogGroup ``kms_key_id``). No cdk-nag or checkov equivalent
(both only ask for a key: ``logs-kms-encryption``).
"""

import re
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from shared.policy_support import (
    KMS_KEY,
    KMS_KEY_POLICY,
    Undecided,
    admits_arn,
    condition_values,
    key_policy_problems,
    not_applicable,
    report_problems,
    resource_input,
    service_grants,
    stack_resources,
    stack_rule_policy,
)
from shared.policy_typing import ReportViolation

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
#: A group an AWS service writes to (Amazon MQ's ``/aws/amazonmq/broker/<id>/general``), created or adopted by a
#: dynamic resource (shared.components.broker_logs): its name and key are its ``log_group_name``/``kms_key_arn``.
DYNAMIC = "pulumi-python:dynamic:Resource"
#: resource type -> (its group-name input, its key input)
_INPUTS = {LOG_GROUP: ("name", "kmsKeyId"), DYNAMIC: ("log_group_name", "kms_key_arn")}
#: What CloudWatch Logs calls on a group's key to write and read its events (the guide's statement grants
#: kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe*).
KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
CONTEXT_KEY = "kms:EncryptionContext:aws:logs:arn"
#: The CloudWatch Logs service principal of any region (``logs.<region>.amazonaws.com``; ``.com.cn`` in China).
_LOGS = re.compile(r"logs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")


def _admits_group(statement: dict[str, Any], group: PolicyResource, group_name: Any) -> bool:
    """Every encryption-context condition of the statement names an ARN the group's matches."""
    contexts = list(condition_values(statement, CONTEXT_KEY))
    if contexts and not isinstance(group_name, str):
        raise Undecided(f"log group '{group.name}': name")
    return all(any(admits_arn(value, operator, "logs", f"log-group:{group_name}") for value in values)
               for values, operator in contexts)


def _problems(group: PolicyResource, keys: list[PolicyResource], key_policies: list[PolicyResource]) -> list[str]:
    name_input, key_input = _INPUTS[group.resource_type]
    if resource_input(group, key_input) is None:
        return []
    name = resource_input(group, name_input)
    return list(key_policy_problems(
        group, key_input, "log group", keys, key_policies,
        grants=lambda document: service_grants(document, _LOGS, KEY_ACTIONS,
                                               lambda s: _admits_group(s, group, name)),
        denied=(f"logs.<region>.amazonaws.com call {', '.join(KEY_ACTIONS)} for it (a {CONTEXT_KEY} condition must "
                f"match the group's ARN, log-group:{name})")))


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    groups = [group for group in stack_resources(args, LOG_GROUP, DYNAMIC)
              if group.resource_type == LOG_GROUP or "log_group_name" in group.props]
    if not groups:
        not_applicable(args, "the stack has no log group")
    keys = stack_resources(args, KMS_KEY, none_reason="the stack has no KMS key a log group could use")
    key_policies = stack_resources(args, KMS_KEY_POLICY)
    report_problems(args, groups, lambda group: _problems(group, keys, key_policies), lambda group, problem: (
        report_violation(f"log group '{group.name}': {problem}. CreateLogGroup fails with AccessDeniedException in "
                         "the middle of the up, or the stored events become unreadable.", group.urn)))


POLICY = stack_rule_policy(__file__, _validate)
