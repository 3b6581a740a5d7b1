"""Amazon MQ brokers ship their general logs to CloudWatch Logs.

Why: connection refusals, authentication failures and blocked publishers only show up in the broker
log; without ``logs.general`` there is nothing to investigate them with. (RabbitMQ brokers support
only general logs, so that is what is required.) Matches checkov CKV_AWS_48.
"""

from shared.policy_support import boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:mq/broker:Broker",
    label="MQ broker", setting="logs.general", required=True,
    finding="does not ship general logs; set logs={'general': True}.",
)
