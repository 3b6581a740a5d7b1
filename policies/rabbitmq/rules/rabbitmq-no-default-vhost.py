"""rabbitmq-no-default-vhost: no topology (exchanges, queues, bindings, permissions, policies...) in vhost ``/``.

Why: ``/`` is the vhost every broker ships with and every client library connects to by default, and
where the default ``guest`` user has full rights. Topology there is shared with anything that
connects without choosing a vhost, cannot be scoped by per-environment permissions and cannot be
removed as a unit. The platform declares its topology in its own vhost (per environment), so a
mis-configured client fails to connect instead of silently publishing into production queues.

Resources: every pulumi_rabbitmq resource with a ``vhost`` input -- Exchange, Queue, Binding,
Permissions, TopicPermissions, Policy, OperatorPolicy, Shovel, FederationUpstream. For Exchange,
Queue, Permissions and TopicPermissions an omitted ``vhost`` means ``/`` (the provider's default) and
fails too. No cdk-nag/checkov equivalent (RabbitMQ vhosts: https://www.rabbitmq.com/docs/vhosts).
"""

from pulumi_policy import ResourceValidationArgs

from shared.policy_support import get, resource_policy, type_label
from shared.policy_typing import ReportViolation

# type -> whether the provider defaults an omitted vhost to "/"
TYPES: dict[str, bool] = {
    "rabbitmq:index/exchange:Exchange": True,
    "rabbitmq:index/queue:Queue": True,
    "rabbitmq:index/permissions:Permissions": True,
    "rabbitmq:index/topicPermissions:TopicPermissions": True,
    "rabbitmq:index/binding:Binding": False,
    "rabbitmq:index/policy:Policy": False,
    "rabbitmq:index/operatorPolicy:OperatorPolicy": False,
    "rabbitmq:index/shovel:Shovel": False,
    "rabbitmq:index/federationUpstream:FederationUpstream": False,
}


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    vhost = get(args.props, "vhost")
    if vhost is None:
        if not TYPES[args.resource_type]:
            args.not_applicable("vhost is not set")
        vhost, implicit = "/", True
    else:
        implicit = False
    if vhost == "/":
        kind = type_label(args.resource_type)
        how = "has no vhost, so it lands in the default vhost '/'" if implicit else "is in the default vhost '/'"
        report(f"{kind} '{args.name}' {how}; create a rabbitmq.VHost for the environment and set "
               "vhost=<that vhost's name>.")


POLICY = resource_policy(__file__, check, types=list(TYPES))
