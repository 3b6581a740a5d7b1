"""SQS queue access policies do not let anyone (``*``) in without a condition.

Checks ``policy`` of ``aws:sqs/queuePolicy:QueuePolicy`` and the inline ``policy`` of ``aws:sqs/queue:Queue``: an
``Allow`` statement whose principal is ``*`` / ``{"AWS": "*"}`` (or that uses ``NotPrincipal``) lets every AWS account
send to the queue, read and delete its messages or change it, whatever the actions, unless its ``Condition`` names its
callers with fixed values (a caller key under a matching operator, values free of wildcards and policy variables: AWS
Config's sqs-queue-no-public-access, behind Security Hub SQS.3, "an SQS policy must grant access only to fixed
values"). A service principal (``events.amazonaws.com``) is not anyone. A queue without an inline policy has SQS's
default (its own account only) and passes.

Why: the platform's queues are the layers' dead-letter queues of undelivered events (shared.components.
undelivered_events): a public one lets anyone read what EventBridge could not deliver (task stops, retirement
notices) or fill it with false ones, whose alarm then pages on call. Matches Security Hub SQS.3; no cdk-nag
equivalent.
"""

from shared.policy_support import owned_policy_not_public, rule_policy

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"

FIX = ("name the sending service or account, or add a condition such as aws:SourceAccount or "
       "aws:SourceArn with fixed values.")

POLICY = rule_policy(__file__, owned_policy_not_public("SQS", "queue", QUEUE, QUEUE_POLICY, FIX))
