"""Deterministic stand-ins for what AWS (and the other providers) would answer.

Ids and ARNs are derived from a hash of the resource's URN, so the same program gives the same
values on every run and on every machine, and they are well-formed (``vpc-0123…``,
``arn:aws:ecs:eu-west-1:111111111111:cluster/…``) so that inputs built from them look like what
a real deployment would send. Computed outputs that programs commonly read (``arn``,
``repositoryUrl``, broker endpoints, ``defaultSecurityGroupId``…) get plausible values, so inputs
built from them are known rather than unknown. The lookups answered (``call``/``_lookup``) are listed
in the README (Offline synth, "Any program"); any other lookup answers None, which the recording
monitor turns into an unknown result and a warning in ``--program`` runs.

The tables below answer the resource types the platform's components create. A component that
creates a type they do not know registers its answers beside itself with :func:`register_mock`
(README, "Add a layer"); nothing here needs editing for a new layer. A type nobody answers gets
generic values (id ``<name>-<hash>``, ARN ``…:<kind>/<id>``, no computed outputs), and when a
program then fails, the synth error names those types.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.rpc import is_rpc_secret

from shared.regions import REGION_AZS

# id prefixes AWS uses, by resource type token.
_ID_PREFIX: dict[str, str] = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "sgrule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/route:Route": "r-rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/networkAcl:NetworkAcl": "acl",
    "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl": "acl",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": "ns",
    "aws:servicediscovery/httpNamespace:HttpNamespace": "ns",
    "aws:servicediscovery/publicDnsNamespace:PublicDnsNamespace": "ns",
    "aws:servicediscovery/service:Service": "srv",
    "aws:mq/broker:Broker": "b",
}

# Id prefixes followed by a UUID, not hex digits: Amazon MQ's broker (b-<uuid>) and configuration (c-<uuid>) ids
# (pulumi_aws mq Broker and Configuration docs, their import examples).
_UUID_ID_PREFIXES = {"b", "c"}

# ARN resource part, by type token, given (name, id).
_ARN_RESOURCE: dict[str, str] = {
    "aws:ec2/vpc:Vpc": "vpc/{id}",
    "aws:ec2/subnet:Subnet": "subnet/{id}",
    "aws:ec2/securityGroup:SecurityGroup": "security-group/{id}",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "security-group/{id}",
    "aws:ec2/internetGateway:InternetGateway": "internet-gateway/{id}",
    "aws:ec2/natGateway:NatGateway": "natgateway/{id}",
    "aws:ec2/routeTable:RouteTable": "route-table/{id}",
    "aws:ec2/eip:Eip": "elastic-ip/{id}",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "security-group-rule/{id}",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "security-group-rule/{id}",
    "aws:ec2/flowLog:FlowLog": "vpc-flow-log/{id}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpc-endpoint/{id}",
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": "namespace/{id}",
    "aws:servicediscovery/httpNamespace:HttpNamespace": "namespace/{id}",
    "aws:servicediscovery/service:Service": "service/{id}",
    "aws:ecs/cluster:Cluster": "cluster/{name}",
    "aws:ecs/service:Service": "service/{cluster}/{name}",
    "aws:ecs/taskDefinition:TaskDefinition": "task-definition/{family}:1",
    "aws:ecr/repository:Repository": "repository/{name}",
    "aws:cloudwatch/logGroup:LogGroup": "log-group:{name}",
    "aws:cloudwatch/eventRule:EventRule": "rule/{name}",
    "aws:secretsmanager/secret:Secret": "secret:{name}-{suffix6}",
    "aws:mq/broker:Broker": "broker:{name}:{id}",
    "aws:kms/key:Key": "key/{uuid}",
    "aws:kms/alias:Alias": "{name}",  # the alias's name is alias/<name> already
    "aws:lb/loadBalancer:LoadBalancer": "loadbalancer/app/{name}/{hex16}",
    "aws:lb/targetGroup:TargetGroup": "targetgroup/{name}/{hex16}",
    "aws:lb/listener:Listener": "listener/{load_balancer}/{hex16}",
    # botocore application-autoscaling examples (PutScalingPolicy's PolicyARN, RegisterScalableTarget's ARN)
    "aws:appautoscaling/policy:Policy":
        "scalingPolicy:{uuid}:resource/{service_namespace}/{resource_id}:policyName/{name}",
    "aws:appautoscaling/target:Target": "scalable-target/{hex36}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "alarm:{name}",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": "alarm:{name}",
    "aws:sns/topic:Topic": "{name}",
    "aws:codebuild/project:Project": "project/{name}",
    "aws:rds/instance:Instance": "db:{identifier}",
    "aws:rds/cluster:Cluster": "cluster:{identifier}",
    "aws:rds/subnetGroup:SubnetGroup": "subgrp:{name}",
    "aws:sqs/queue:Queue": "{name}",
    "aws:lambda/function:Function": "function:{name}",
    "aws:dynamodb/table:Table": "table/{name}",
    "aws:elasticache/replicationGroup:ReplicationGroup": "replicationgroup:{id}",
}

# Default port of each RDS / Aurora engine when the program sets none (the RDS API reference, CreateDBInstance
# and CreateDBCluster "Port": MySQL/MariaDB/Aurora MySQL 3306, PostgreSQL/Aurora PostgreSQL 5432,
# Oracle 1521, SQL Server 1433, Db2 50000).
_DB_PORTS = (("aurora-postgresql", 5432), ("postgres", 5432), ("aurora-mysql", 3306), ("aurora", 3306),
             ("mysql", 3306), ("mariadb", 3306), ("oracle", 1521), ("sqlserver", 1433), ("db2", 50000))


def default_db_port(engine: Any) -> int | None:
    """The port an RDS engine listens on by default; None for an engine unknown here (or at synth time)."""
    for prefix, port in _DB_PORTS:
        if isinstance(engine, str) and engine.startswith(prefix):
            return port
    return None

# Types whose physical id is their name (AWS identifies them by name).
_ID_IS_NAME = {
    "aws:iam/role:Role", "aws:iam/policy:Policy", "aws:ecr/repository:Repository",
    "aws:cloudwatch/logGroup:LogGroup", "aws:appmesh/mesh:Mesh", "aws:kms/alias:Alias",
    "aws:cloudwatch/eventRule:EventRule", "aws:lambda/function:Function", "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm", "aws:appautoscaling/policy:Policy",
}
# Types whose physical id is their ARN (terraform-provider-aws sets the id to the ARN the create call returns; the
# provider docs import them by ARN: sns Topic "clone of id", secretsmanager Secret, codebuild Project, ecs Cluster and
# Service).
_ID_IS_ARN = {
    "aws:sns/topic:Topic", "aws:secretsmanager/secret:Secret", "aws:codebuild/project:Project",
    "aws:ecs/cluster:Cluster", "aws:ecs/service:Service",
}
# Types that have a ``name`` property Pulumi auto-names when the program does not set one.
_AUTONAMED = {
    "aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:ecr/repository:Repository",
    "aws:cloudwatch/logGroup:LogGroup", "aws:ecs/cluster:Cluster", "aws:ecs/service:Service",
    "aws:ec2/securityGroup:SecurityGroup", "aws:secretsmanager/secret:Secret", "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup", "aws:appmesh/mesh:Mesh", "aws:appmesh/virtualNode:VirtualNode",
    "aws:appmesh/virtualService:VirtualService", "aws:appmesh/virtualRouter:VirtualRouter",
    "aws:appmesh/route:Route", "aws:mq/broker:Broker", "aws:servicediscovery/service:Service",
    "aws:appautoscaling/policy:Policy", "aws:kms/alias:Alias", "aws:sns/topic:Topic",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "rabbitmq:index/vHost:VHost", "rabbitmq:index/exchange:Exchange", "rabbitmq:index/queue:Queue",
    "rabbitmq:index/user:User",
    "aws:sqs/queue:Queue", "aws:lambda/function:Function", "aws:dynamodb/table:Table",
    "aws:rds/subnetGroup:SubnetGroup",
}
# Types whose identifier (not ``name``) Pulumi auto-names, by the property that holds it.
_AUTONAMED_BY = {
    "aws:rds/instance:Instance": "identifier", "aws:rds/cluster:Cluster": "clusterIdentifier",
    "aws:s3/bucket:Bucket": "bucket", "aws:s3/bucketV2:BucketV2": "bucket",
    "aws:elasticache/replicationGroup:ReplicationGroup": "replicationGroupId",
}


@dataclass(frozen=True)
class MockRequest:
    """What a registered ``computed`` function gets: the resource and the account it is created in."""

    name: str
    inputs: dict[str, Any]
    #: a hex digest of (project, stack, type, name): derive ids from it, never from randomness
    digest: str
    region: str
    account_id: str
    partition: str


@dataclass(frozen=True)
class ResourceMock:
    """The offline answers for one resource type (see the tables below for the built-in ones).

    ``arn`` is the ARN's resource part, a template over ``{id}``, ``{name}``, ``{family}``,
    ``{cluster}``, ``{suffix6}``, ``{hex16}``, ``{hex36}`` and ``{uuid}``; ``regional``: whether the ARN names the
    region (a global service's, e.g. AWS Budgets', does not); ``computed`` returns the outputs AWS computes that
    programs read (e.g. a queue's ``url``).
    """

    id_prefix: str | None = None
    arn: str | None = None
    id_is_name: bool = False
    autonamed: bool = False
    computed: Callable[[MockRequest], dict[str, Any]] | None = field(default=None, compare=False)
    regional: bool = True

    @property
    def key(self) -> tuple[Any, ...]:
        origin = (self.computed.__module__, self.computed.__qualname__) if self.computed else None
        return (self.id_prefix, self.arn, self.id_is_name, self.autonamed, origin, self.regional)


_REGISTERED: dict[str, ResourceMock] = {}


def register_mock(type_token: str, mock: ResourceMock) -> None:
    """Answer ``type_token`` offline with ``mock``; called beside the component that creates the type.

    Registering the same answers again (a module imported twice) is a no-op; different answers for a
    type already answered, here or by the built-in tables, are refused so there is one source per type.
    """
    if _builtin(type_token):
        raise ValueError(f"{type_token} is answered by the built-in tables of shared/synth/mocks.py")
    known = _REGISTERED.get(type_token)
    if known is not None and known.key != mock.key:
        raise ValueError(f"{type_token} already has different registered mock answers ({known.key})")
    _REGISTERED[type_token] = mock


def unregister_mock(type_token: str) -> None:
    """Forget ``type_token``'s registered answers (tests that register throwaway ones)."""
    _REGISTERED.pop(type_token, None)


def autonamed_property(type_token: str) -> str | None:
    """The property Pulumi fills from the logical name (a hyphen and 7 random hex digits) when the program omits it,
    None where it fills none (App Mesh's names are the logical name)."""
    if type_token in _AUTONAMED_BY:
        return _AUTONAMED_BY[type_token]
    registered = _REGISTERED.get(type_token)
    autonamed = type_token in _AUTONAMED or (registered is not None and registered.autonamed)
    return "name" if autonamed and not type_token.startswith("aws:appmesh/") else None


def _builtin(type_token: str) -> bool:
    return any(type_token in table for table in (_ID_PREFIX, _ARN_RESOURCE, _ID_IS_NAME, _ID_IS_ARN, _AUTONAMED))


def uuid_of(digest: str) -> str:
    """The first 32 hex digits of ``digest`` in a UUID's 8-4-4-4-12 form (KMS key ids, Amazon MQ ids, version ids)."""
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def generated_tokens(project: str, stack: str, type_: str, name: str) -> tuple[str, str]:
    """What every id, ARN or auto-name the mocks generate for one resource contains: the first 8 hex digits of
    its digest (``<prefix>-0<hex16>``, ``b-<uuid>``, ``key/<uuid>``, ``<name>-<hex8>``) and the 7 of its
    auto-name suffix. A real replacement gets new ones; the mocks, keyed by URN, give the same again, so the
    plan diff finds what referenced a replaced resource by these (shared.plan_diff)."""
    return _digest(project, stack, type_, name)[:8], _digest(project, stack, type_, name, "autoname")[:7]


def _camel_to_kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def policy_document_json(args: dict[str, Any]) -> str:
    """What ``aws.iam.get_policy_document`` returns, built from its arguments (IAM JSON grammar)."""
    statements = []
    for raw in args.get("statements") or []:
        statement: dict[str, Any] = {}
        if raw.get("sid"):
            statement["Sid"] = raw["sid"]
        statement["Effect"] = raw.get("effect") or "Allow"
        for key, iam_key in (("actions", "Action"), ("notActions", "NotAction"), ("resources", "Resource"),
                             ("notResources", "NotResource")):
            values = raw.get(key)
            if values:
                statement[iam_key] = values[0] if len(values) == 1 else sorted(values)
        for key, iam_key in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            principals = raw.get(key)
            if principals:
                grouped: dict[str, list[str]] = {}
                for principal in principals:
                    grouped.setdefault(principal["type"], []).extend(principal.get("identifiers") or [])
                statement[iam_key] = {k: v[0] if len(v) == 1 else sorted(v) for k, v in sorted(grouped.items())}
        conditions = raw.get("conditions")
        if conditions:
            block: dict[str, dict[str, Any]] = {}
            for condition in conditions:
                values = condition.get("values") or []
                value = values[0] if len(values) == 1 else values
                block.setdefault(condition["test"], {})[condition["variable"]] = value
            statement["Condition"] = block
        statements.append(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2, sort_keys=False)


class PlatformMocks(pulumi.runtime.Mocks):
    """Answers for ``new_resource`` and provider invokes, deterministic per (project, stack)."""

    def __init__(
        self,
        *,
        project: str,
        stack: str,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        stack_outputs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.project = project
        self.stack = stack
        self.account_id = account_id
        self.region = region
        self.stack_outputs = stack_outputs or {}
        self.partition = "aws"
        #: types created that got generic answers only (no table entry, no registration, nothing computed)
        self.generic_types: set[str] = set()

    # -- helpers ----------------------------------------------------------------------------
    def _hex(self, *parts: str) -> str:
        return _digest(self.project, self.stack, *parts)

    def physical_id(self, type_: str, name: str, state: dict[str, Any]) -> str:
        h = self._hex(type_, name)
        registered = _REGISTERED.get(type_)
        if registered is not None and registered.id_prefix in _UUID_ID_PREFIXES:
            return f"{registered.id_prefix}-{uuid_of(h)}"
        if registered is not None and registered.id_prefix:
            return f"{registered.id_prefix}-0{h[:16]}"
        if registered is not None and registered.id_is_name:
            return str(state.get("name", name))
        if type_ in _ID_PREFIX:
            prefix = _ID_PREFIX[type_]
            if prefix in ("ns", "srv"):  # Cloud Map: ns-/srv- and 16 characters (botocore servicediscovery examples)
                return f"{prefix}-{h[:16]}"
            if prefix in _UUID_ID_PREFIXES:
                return f"{prefix}-{uuid_of(h)}"
            return f"{prefix}-0{h[:16]}"
        if type_ in _ID_IS_NAME:
            return str(state.get("name", name))
        if type_ in _AUTONAMED_BY:
            return str(state.get(_AUTONAMED_BY[type_], name))
        if type_ == "aws:sqs/queue:Queue":
            return str(state.get("url"))
        if type_ in _ID_IS_ARN:
            return str(state.get("arn"))
        if type_ == "aws:kms/key:Key":  # the key id, a UUID (KMS keys import by it)
            return str(state.get("keyId"))
        if type_ == "aws:ecs/taskDefinition:TaskDefinition":  # terraform-provider-aws: d.SetId(taskDefinition.Family)
            return str(state.get("family", name))
        if type_ == "aws:appautoscaling/target:Target":  # terraform-provider-aws: d.SetId(resourceID)
            return str(state.get("resourceId", name))
        if type_ == "aws:iam/rolePolicy:RolePolicy":  # <role name>:<policy name> (the provider's import id)
            return f"{state.get('role')}:{state.get('name', name)}"
        if type_.startswith("rabbitmq:"):
            vhost = state.get("vhost")
            return f"{state.get('name', name)}@{vhost}" if vhost else str(state.get("name", name))
        if type_.startswith("pulumi:providers:"):
            return uuid_of(h)
        return f"{name}-{h[:8]}"

    def arn(self, type_: str, name: str, rid: str, state: dict[str, Any]) -> str | None:
        package, _, rest = type_.partition(":")
        if package != "aws":
            return None
        module = rest.split("/")[0].split(":")[0]
        service = {"cloudwatch": "logs", "vpc": "ec2", "appautoscaling": "autoscaling",
                   "lb": "elasticloadbalancing"}.get(module, module)
        if type_ == "aws:cloudwatch/eventRule:EventRule":  # EventBridge's, in the cloudwatch module for history
            service = "events"
        if type_ in ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm"):
            service = "cloudwatch"
        if type_ == "aws:appautoscaling/target:Target":  # a scalable target's ARN; a scaling policy's is autoscaling's
            service = "application-autoscaling"
        h = self._hex(type_, name)
        fields = {
            "id": rid, "name": state.get("name", name), "family": state.get("family", name),
            "cluster": str(state.get("cluster", "default")).rsplit("/", 1)[-1],
            "identifier": state.get("identifier", state.get("clusterIdentifier", name)),
            "suffix6": h[:6], "hex16": h[:16], "hex36": h[:36],
            "uuid": uuid_of(h),
            "service_namespace": state.get("serviceNamespace", "ecs"), "resource_id": state.get("resourceId", name),
            # a listener's ARN: its load balancer's, app/<name>/<id>, and an id of its own
            "load_balancer": str(state.get("loadBalancerArn", f"app/{name}/{h[16:32]}")).split(":loadbalancer/")[-1],
        }
        if module == "iam":
            kind = _camel_to_kebab(type_.rsplit(":", 1)[-1])
            return f"arn:{self.partition}:iam::{self.account_id}:{kind}/{state.get('name', name)}"
        if module == "appmesh":
            kind = type_.rsplit(":", 1)[-1]
            mesh = state.get("meshName")
            base = f"arn:{self.partition}:appmesh:{self.region}:{self.account_id}:mesh"
            if kind == "Mesh":
                return f"{base}/{fields['name']}"
            if kind == "Route":
                return f"{base}/{mesh}/virtualRouter/{state.get('virtualRouterName')}/route/{fields['name']}"
            return f"{base}/{mesh}/{kind[0].lower() + kind[1:]}/{fields['name']}"
        if module == "s3" and type_ in _AUTONAMED_BY:
            return f"arn:{self.partition}:s3:::{state.get('bucket', name)}"
        registered = _REGISTERED.get(type_)
        template = (registered.arn if registered is not None and registered.arn else
                    _ARN_RESOURCE.get(type_, _camel_to_kebab(type_.rsplit(":", 1)[-1]) + "/{id}"))
        resource = template.format(**fields)
        region = "" if service in ("s3",) or (registered is not None and not registered.regional) else self.region
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"

    def computed(self, type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Outputs AWS computes, for the types whose computed outputs programs commonly read."""
        h = self._hex(type_, name)
        region, account = self.region, self.account_id
        registered = _REGISTERED.get(type_)
        if registered is not None and registered.computed is not None:
            return registered.computed(MockRequest(name=name, inputs=inputs, digest=h, region=region,
                                                   account_id=account, partition=self.partition))
        n = inputs.get("name", name)
        if type_ == "aws:ec2/vpc:Vpc":
            return {"defaultSecurityGroupId": f"sg-0{_digest(h, 'sg')[:16]}",
                    "mainRouteTableId": f"rtb-0{_digest(h, 'rtb')[:16]}",
                    "defaultNetworkAclId": f"acl-0{_digest(h, 'acl')[:16]}",
                    "defaultRouteTableId": f"rtb-0{_digest(h, 'rtb')[:16]}", "ownerId": account}
        if type_ == "aws:ec2/eip:Eip":
            return {"allocationId": f"eipalloc-0{h[:16]}", "publicIp": f"203.0.113.{int(h[:2], 16) % 254 + 1}"}
        if type_ == "aws:ec2/natGateway:NatGateway":
            return {"publicIp": f"198.51.100.{int(h[:2], 16) % 254 + 1}"}
        if type_ == "aws:ecr/repository:Repository":
            return {"repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{n}", "registryId": account}
        if type_ == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs.get("family", name)
            base = f"arn:{self.partition}:ecs:{region}:{account}:task-definition/{family}"
            return {"revision": 1, "arnWithoutRevision": base}
        if type_ == "aws:mq/broker:Broker":
            broker_id = self.physical_id(type_, name, inputs)
            host = f"{broker_id}.mq.{region}.on.aws"
            return {"instances": [{"consoleUrl": f"https://{host}",
                                   "endpoints": [f"amqps://{host}:5671"],
                                   "ipAddress": ""}]}
        if type_ in ("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",):
            return {"hostedZone": f"Z0{h[:19].upper()}"}
        if type_ == "aws:servicediscovery/httpNamespace:HttpNamespace":
            return {"httpName": n}
        if type_ == "aws:lb/loadBalancer:LoadBalancer":
            # arnSuffix: the LoadBalancer dimension of its CloudWatch metrics, app/<name>/<id>.
            return {"dnsName": f"{n}-{int(h[:8], 16)}.{region}.elb.amazonaws.com", "zoneId": "Z32O12XQLNTSW2",
                    "arnSuffix": f"app/{n}/{h[:16]}"}
        if type_ == "aws:lb/targetGroup:TargetGroup":  # the TargetGroup dimension of its metrics, as in its ARN
            return {"arnSuffix": f"targetgroup/{n}/{h[:16]}"}
        if type_ == "aws:kms/key:Key":
            return {"keyId": uuid_of(h)}
        if type_ == "aws:iam/role:Role":
            return {"uniqueId": "AROA" + h[:17].upper()}
        if type_ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            service = str(inputs.get("serviceName", "")).rsplit(".", 1)[-1]
            if inputs.get("vpcEndpointType") == "Gateway":  # a gateway endpoint has a prefix list, no DNS names
                return {"dnsEntries": [], "prefixListId": f"pl-{h[:8]}"}
            return {"dnsEntries": [{"dnsName": f"vpce-0{h[:16]}.{service}.{region}.vpce.amazonaws.com",
                                    "hostedZoneId": "Z7HUB22UULQXV"}], "prefixListId": None}
        if type_ in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
            cluster = type_ == "aws:rds/cluster:Cluster"
            identifier = inputs.get("clusterIdentifier" if cluster else "identifier", name)
            port = inputs.get("port") or default_db_port(inputs.get("engine", "mysql" if cluster else None))
            host = f"{identifier}.{'cluster-' if cluster else ''}c{h[:11]}.{region}.rds.amazonaws.com"
            values: dict[str, Any] = {"hostedZoneId": "Z2R2ITUGPM61AM", "resourceId": f"db-{h[:26].upper()}"}
            if cluster:
                values.update(endpoint=host, readerEndpoint=host.replace(".cluster-", ".cluster-ro-", 1),
                              clusterResourceId=f"cluster-{h[:26].upper()}")
            else:
                values["address"] = host
            if port is not None:  # else unknown, as an engine this table does not know
                values["port"] = port
                if not cluster:
                    values["endpoint"] = f"{host}:{port}"
            return values
        if type_ == "aws:elasticache/replicationGroup:ReplicationGroup":
            group = inputs.get("replicationGroupId", name)
            short = "".join(part[:1] for part in region.split("-")[:-1]) + region.split("-")[-1]
            return {"primaryEndpointAddress": f"master.{group}.{h[:6]}.{short}.cache.amazonaws.com",
                    "readerEndpointAddress": f"replica.{group}.{h[:6]}.{short}.cache.amazonaws.com",
                    "port": inputs.get("port") or (11211 if inputs.get("engine") == "memcached" else 6379)}
        if type_ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            bucket = inputs.get("bucket", name)
            return {"bucketDomainName": f"{bucket}.s3.amazonaws.com", "region": region,
                    "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com", "hostedZoneId": "Z3AQBSTGFYJSTF"}
        if type_ == "aws:sqs/queue:Queue":
            return {"url": f"https://sqs.{region}.amazonaws.com/{account}/{n}"}
        if type_ == "aws:lambda/function:Function":
            arn = f"arn:{self.partition}:lambda:{region}:{account}:function:{n}"
            invoke = f"arn:{self.partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
            return {"invokeArn": invoke,
                    "qualifiedArn": f"{arn}:$LATEST", "version": "$LATEST"}
        if type_ == "random:index/randomPassword:RandomPassword":
            alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
            length = int(inputs.get("length", 32))
            # New keepers replace the resource (ForceNew in pulumi_random), so a new value: they are part
            # of the seed (without keepers, the seed is the URN's alone).
            keepers = inputs.get("keepers")
            seed = _digest(h, "keepers", json.dumps(keepers, sort_keys=True)) if keepers else h
            stream = _digest(seed, "password") + _digest(seed, "password2")
            result = "".join(alphabet[int(stream[i * 2:i * 2 + 2], 16) % len(alphabet)] for i in range(length))
            return {"result": result, "bcryptHash": "$2a$10$" + _digest(result)[:53]}
        if type_ == "random:index/randomString:RandomString":
            length = int(inputs.get("length", 16))
            return {"result": (_digest(h, "string") * 4)[:length]}
        if type_ == "random:index/randomId:RandomId":
            return {"hex": h[: 2 * int(inputs.get("byteLength", 8))], "b64Url": h[:11]}
        return {}

    # -- pulumi.runtime.Mocks ---------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        type_, name = args.typ, args.name
        inputs = dict(args.inputs)
        if type_ == "pulumi:pulumi:StackReference":
            ref = str(inputs.get("name", name))
            outputs = self.stack_outputs.get(ref, {})
            # As the engine answers: secret outputs stay secret and are named (pulumi/stack_reference.py reads
            # secretOutputNames for get_output's per-name secretness).
            secret = sorted(key for key, value in outputs.items() if is_rpc_secret(value))
            return ref, {"name": ref, "outputs": outputs, "secretOutputNames": secret}
        state = dict(inputs)
        registered = _REGISTERED.get(type_)
        autonamed = autonamed_property(type_)
        if autonamed is not None and autonamed not in state:
            state[autonamed] = f"{name}-{self._hex(type_, name, 'autoname')[:7]}"
        if type_.startswith("aws:appmesh/") and "name" not in state:
            state["name"] = name
        if type_ == "aws:ecs/taskDefinition:TaskDefinition":
            state.setdefault("family", name)
        computed = self.computed(type_, name, state)
        state.update({k: v for k, v in computed.items() if k not in state})
        if type_.startswith("aws:") and not computed and registered is None and not _builtin(type_):
            self.generic_types.add(type_)
        if type_ in _ID_IS_ARN:
            state.setdefault("arn", self.arn(type_, name, "", state))
        rid = self.physical_id(type_, name, state)
        arn = self.arn(type_, name, rid, state)
        if arn is not None:
            state.setdefault("arn", arn)
        if type_.startswith("aws:") and "tags" in state:
            state.setdefault("tagsAll", state["tags"])
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any] | None:  # type: ignore[override]
        token, call_args = args.token, dict(args.args)
        account, region = self.account_id, self.region
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = list(REGION_AZS.get(region, (f"{region}a", f"{region}b", f"{region}c")))
            short = "".join(part[0] for part in region.split("-")[:-1]) + region.split("-")[-1]
            return {"id": region, "names": names, "zoneIds": [f"{short}-az{i + 1}" for i in range(len(names))],
                    "groupNames": [region] * len(names), "state": "available"}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"id": account, "accountId": account, "arn": f"arn:aws:iam::{account}:user/synth",
                    "userId": "AIDASYNTHUSER00000000"}
        if token == "aws:index/getRegion:getRegion":
            return {"id": region, "name": region, "region": region, "description": region,
                    "endpoint": f"ec2.{region}.amazonaws.com"}
        if token == "aws:index/getPartition:getPartition":
            return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com",
                    "reverseDnsPrefix": "com.amazonaws"}
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            document = policy_document_json(call_args)
            return {"id": _digest(document)[:10], "json": document, "minifiedJson": json.dumps(json.loads(document),
                                                                                               separators=(",", ":"))}
        if token == "aws:index/getDefaultTags:getDefaultTags":
            return {"id": "default", "tags": {}}
        if token == "aws:kms/getKey:getKey":
            # the key an alias (or an ARN) names: its own id and key/<id> ARN, never the alias's
            key = str(call_args.get("keyId", "alias/aws/ecr")).rsplit(":key/", 1)[-1]
            if "alias/" in key:
                h = self._hex(token, key)
                key = uuid_of(h)
            return {"id": key, "arn": f"arn:{self.partition}:kms:{region}:{account}:key/{key}", "keyId": key}
        return self._lookup(token, call_args)

    def _lookup(self, token: str, call_args: dict[str, Any]) -> dict[str, Any] | None:
        """Plausible answers for the data sources programs commonly read (looked up, not created)."""
        account, region = self.account_id, self.region
        h = self._hex(token, json.dumps(call_args, sort_keys=True))
        azs = REGION_AZS.get(region, (f"{region}a", f"{region}b"))
        if token == "aws:ec2/getVpc:getVpc":
            vpc_id = call_args.get("id") or f"vpc-0{h[:16]}"
            return {"id": vpc_id, "cidrBlock": call_args.get("cidrBlock") or "172.31.0.0/16",
                    "default": bool(call_args.get("default")), "enableDnsSupport": True, "enableDnsHostnames": True,
                    "arn": f"arn:aws:ec2:{region}:{account}:vpc/{vpc_id}", "ownerId": account,
                    "mainRouteTableId": f"rtb-0{_digest(h, 'rtb')[:16]}"}
        if token == "aws:ec2/getSubnets:getSubnets":
            return {"id": region, "ids": [f"subnet-0{_digest(h, az)[:16]}" for az in azs]}
        if token == "aws:ec2/getSubnet:getSubnet":
            subnet_id = call_args.get("id") or f"subnet-0{h[:16]}"
            return {"id": subnet_id, "availabilityZone": azs[0], "cidrBlock": "172.31.0.0/20",
                    "vpcId": f"vpc-0{_digest(h, 'vpc')[:16]}",
                    "arn": f"arn:aws:ec2:{region}:{account}:subnet/{subnet_id}"}
        if token == "aws:ec2/getSecurityGroup:getSecurityGroup":
            group_id = call_args.get("id") or f"sg-0{h[:16]}"
            return {"id": group_id, "name": call_args.get("name") or "default",
                    "vpcId": f"vpc-0{_digest(h, 'vpc')[:16]}",
                    "arn": f"arn:aws:ec2:{region}:{account}:security-group/{group_id}"}
        if token == "aws:ec2/getAmi:getAmi":
            return {"id": f"ami-0{h[:16]}", "imageId": f"ami-0{h[:16]}", "architecture": "x86_64",
                    "name": "synth-ami", "ownerId": "137112412989"}
        if token == "aws:iam/getRole:getRole":
            name = call_args.get("name", "role")
            return {"id": name, "name": name, "arn": f"arn:aws:iam::{account}:role/{name}",
                    "uniqueId": "AROA" + h[:17].upper()}
        if token == "aws:iam/getPolicy:getPolicy":
            arn = call_args.get("arn") or f"arn:aws:iam::{account}:policy/{call_args.get('name', 'policy')}"
            return {"id": arn, "arn": arn, "name": arn.rsplit("/", 1)[-1],
                    "policy": json.dumps({"Version": "2012-10-17", "Statement": []})}
        if token == "aws:ecr/getRepository:getRepository":
            name = call_args.get("name", "repository")
            return {"id": name, "name": name, "arn": f"arn:aws:ecr:{region}:{account}:repository/{name}",
                    "registryId": account, "repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"}
        if token == "aws:ssm/getParameter:getParameter":
            name = call_args.get("name", "parameter")
            return {"id": name, "name": name, "type": "String", "value": f"synth-value-of-{name.strip('/')}",
                    "arn": f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}", "version": 1}
        if token == "aws:route53/getZone:getZone":
            name = call_args.get("name", "example.internal")
            return {"id": f"Z0{h[:19].upper()}", "zoneId": f"Z0{h[:19].upper()}", "name": name,
                    "arn": f"arn:aws:route53:::hostedzone/Z0{h[:19].upper()}"}
        if token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            # A stand-in value in the common {"username", "password"} shape of credential secrets (the
            # real value is another stack's, unknown offline).
            secret_id = str(call_args.get("secretId", "secret"))
            secret_arn = secret_id  # the version's arn is the secret's, with its random suffix
            if not secret_id.startswith("arn:"):
                secret_arn = f"arn:{self.partition}:secretsmanager:{region}:{account}:secret:{secret_id}-{h[:6]}"
            password = "".join(c for c in _digest(h, "secret-value") if c.isalnum())[:32]
            return {"id": f"{secret_id}|AWSCURRENT", "arn": secret_arn, "secretId": secret_id,
                    "versionId": uuid_of(h), "versionStages": ["AWSCURRENT"],
                    "secretString": json.dumps({"username": "synth-stand-in", "password": password}, sort_keys=True)}
        if token == "aws:secretsmanager/getSecret:getSecret":
            name = call_args.get("name", "secret")
            return {"id": name, "name": name, "arn": f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-{h[:6]}"}
        return None  # not answered: the monitor makes it unknown (and a warning) in --program runs
