"""rabbitmq-exchange-durable: exchanges are durable.

Why: a non-durable (transient) exchange disappears when the broker restarts -- on every Amazon MQ
maintenance window -- and with it every binding; publishers then get ``NOT_FOUND`` channel errors
or, with the default exchange fallback, silently lose messages until something re-declares the
topology. The provider's default is ``durable = false``, so an exchange written without settings
fails this rule. Resource: ``rabbitmq:index/exchange:Exchange`` (``settings.durable``). No
cdk-nag/checkov equivalent (RabbitMQ exchanges: https://www.rabbitmq.com/docs/exchanges#durability).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import get, resource_policy
from shared.policy_typing import ReportViolation

EXCHANGE = "rabbitmq:index/exchange:Exchange"


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    durable = get(args.props, "settings", "durable", default=False)
    if durable is not True:
        name = get(args.props, "name", default=args.name)
        report(f"RabbitMQ exchange '{name}' is not durable and will vanish (with its bindings) on a broker "
               "restart; set settings.durable=True.")


POLICY = resource_policy(__file__, check, types=[EXCHANGE])
