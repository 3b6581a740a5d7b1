"""What an env that protects state (``EnvConfig.protect``, on in prod) marks ``protect``: one type list.

Only resources that hold data or identity are protected: deleting them loses messages, images, logs
(log groups, the gateway's access-log bucket), trained models (the model-artifact bucket), keys or credentials,
or renumbers what everything else resolves through. Everything that can be re-created from the program without
loss (routes, route-table associations, security groups and their rules, endpoints, EIPs, NAT gateways, IAM
roles, ECS services, a bucket's policy and settings...) is never protected, so replacing it (a changed
description, a moved route) simply happens.

Components do not choose: :class:`shared.layer.Layer` registers :func:`protect_stateful_only` as a
stack transformation, which sets ``protect`` on every resource of the layer from its type alone,
overriding whatever the component passed. It sets the option explicitly on each resource, so nothing
inherits ``protect`` from a protected parent (Pulumi's default). The platform policy rules
``prod-protect-stateful`` and ``protect-only-stateful`` check the same list.
"""

from __future__ import annotations

import pulumi

#: Resource types that hold data or identity (the only ones an env that protects state protects).
STATEFUL_TYPES: frozenset[str] = frozenset({
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:mq/broker:Broker",
    "rabbitmq:index/vHost:VHost",
    "rabbitmq:index/queue:Queue",
    "aws:secretsmanager/secret:Secret",
    "aws:kms/key:Key",
    "aws:ecr/repository:Repository",
    "aws:cloudwatch/logGroup:LogGroup",
    # the public gateway's ALB access logs (audit evidence, like a log group's events) and the env's model-artifact
    # bucket (trained models); their configuration resources (policy, public access block, encryption, versioning,
    # lifecycle) hold none and are re-created freely
    "aws:s3/bucket:Bucket",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",
    "aws:servicediscovery/publicDnsNamespace:PublicDnsNamespace",
    "aws:servicediscovery/httpNamespace:HttpNamespace",
})


def is_stateful(resource_type: str) -> bool:
    return resource_type in STATEFUL_TYPES


def protect_stateful_only(env_protects: bool) -> pulumi.ResourceTransformation:
    """A stack transformation: ``protect`` = the env protects state and the type is stateful."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        protect = env_protects and is_stateful(args.type_)
        return pulumi.ResourceTransformationResult(
            props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=protect)))

    return transformation
