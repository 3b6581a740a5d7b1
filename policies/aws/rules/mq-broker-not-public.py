"""Amazon MQ brokers are not publicly accessible.

Why: a public broker endpoint exposes the AMQP and management ports to the internet, where only a
password stands between an attacker and every queue; clients in the VPC reach a private broker
directly. Matches checkov CKV_AWS_69; no cdk-nag equivalent.
"""

from shared.policy_support import boolean_setting_rule

POLICY = boolean_setting_rule(
    __file__, "aws:mq/broker:Broker",
    label="MQ broker", setting="publiclyAccessible", required=False,
    finding="is publicly accessible; set publicly_accessible=False and place it in private subnets with a security "
            "group that admits only the services' security groups.",
)
