"""SNS topic access policies do not let anyone (``*``) in without a condition.

Checks ``policy`` of ``aws:sns/topicPolicy:TopicPolicy`` and the inline ``policy`` of ``aws:sns/topic:Topic``:
an ``Allow`` statement whose principal is ``*`` / ``{"AWS": "*"}`` (or that uses ``NotPrincipal``) lets every AWS
account publish to the topic, subscribe endpoints to it or change it, whatever the actions, unless its
``Condition`` names its callers with fixed values: a caller key (``aws:SourceAccount``, ``aws:SourceOwner``,
``aws:SourceArn``, ``aws:PrincipalOrgID``...) under a matching operator (``StringEquals``, ``ArnLike``..., not a
negated or ``...IfExists`` one) with values free of wildcards and policy variables (AWS Config's
sns-topic-no-public-access, behind Security Hub SNS.4: a non-public policy grants access to fixed values only).
So ``aws:SourceArn`` ``arn:aws:cloudwatch:*`` (any account's alarms) or ``aws:SecureTransport`` alone fail. A
service principal (``cloudwatch.amazonaws.com``) is not anyone. A topic without an inline policy has SNS's
default one (its own account only) and passes.

Why: a public topic accepts messages injected by anyone (false alarms, or alarms drowned in noise) and hands
its notifications to any subscriber. Matches Security Hub SNS.4 and checkov CKV_AWS_169; no cdk-nag equivalent.
"""

from shared.policy_support import owned_policy_not_public, rule_policy

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"

FIX = ("name the publishing service or account, or add a condition such as aws:SourceAccount or "
       "aws:SourceArn with fixed values.")

POLICY = rule_policy(__file__, owned_policy_not_public("SNS", "topic", TOPIC, TOPIC_POLICY, FIX))
