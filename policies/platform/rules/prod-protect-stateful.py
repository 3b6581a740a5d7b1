"""prod-protect-stateful: in prod, stateful resources are ``protect``ed.

Why: ``pulumi destroy``, a renamed resource or a refactor that changes a URN would otherwise delete a
VPC, the image history of an ECR repository, a broker with its queued messages, a Cloud Map
namespace every service resolves through, or a RabbitMQ vhost/queue with its messages. ``protect``
makes the engine refuse the delete until someone lifts it deliberately. Disabled in dev, advisory
in staging, mandatory in prod (the levels say "in prod"; the layers set ``protect=env.protect``).
Resources: VPCs, ECR repositories, Amazon MQ brokers, Cloud Map namespaces (private DNS, public DNS,
HTTP), RabbitMQ vhosts and queues. No cdk-nag/checkov id: their deletion-protection checks cover
individual data stores; Pulumi's ``protect`` is the IaC-level equivalent for any resource.
"""

from pulumi_policy import ReportViolation, ResourceValidationArgs

from shared.policy_support import resource_policy, type_label

STATEFUL = (
    "aws:ec2/vpc:Vpc",
    "aws:ecr/repository:Repository",
    "aws:mq/broker:Broker",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",
    "aws:servicediscovery/publicDnsNamespace:PublicDnsNamespace",
    "aws:servicediscovery/httpNamespace:HttpNamespace",
    "rabbitmq:index/vHost:VHost",
    "rabbitmq:index/queue:Queue",
)


def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.opts.protect:
        kind = type_label(args.resource_type)
        report(f"{kind} '{args.name}' holds state but is not protected; pass "
               "opts=pulumi.ResourceOptions(protect=env.protect) so a destroy or URN change cannot delete it.")


POLICY = resource_policy(__file__, check, types=STATEFUL)
