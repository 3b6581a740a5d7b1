"""A reachability model of one env's VPC, built from the synthesized layers, for the egress tests.

Every runtime principal the stacks put in the VPC (each ECS service's Fargate tasks, the deploy runner, the
Lambda functions) makes a declared list of network calls (:func:`declared_calls`): the DNS name it resolves, the
port, and for an AWS API the IAM action, resource and signing principal. :func:`check` follows each call the way
the VPC would carry it and returns the reasons any of them would fail:

1. **DNS**: a name an interface endpoint with private DNS answers for (:data:`PRIVATE_DNS`) resolves to that
   endpoint's network interfaces; the broker's and Cloud Map's names to in-VPC interfaces; anything else to a
   public address (AWS PrivateLink guide, "Access an AWS service using an interface VPC endpoint", private DNS).
2. **Route**: a public address of S3 in the VPC's region leaves through the S3 gateway endpoint where it is on the
   subnet's route table (its prefix-list route is more specific than the NAT's 0.0.0.0/0: VPC guide, "Gateway
   endpoints", routing), any other public address through the 0.0.0.0/0 route, which must reach a NAT gateway in a
   subnet routed to the internet gateway.
3. **Security groups**: an egress rule of the principal's group admits the port to the peer (its group, the
   gateway endpoint's prefix list, or an address range holding the peer), and for an in-VPC peer an ingress rule
   of the peer's group admits the principal's group (or its subnet's range) on that port.
4. **Endpoint policy**: a call through an endpoint must be allowed by the endpoint's policy, evaluated for the
   call's action, resource and principal (:func:`policy_allows`, tests/iam_eval.py; an endpoint policy narrows,
   never grants: AWS PrivateLink guide, "Control access to VPC endpoints using endpoint policies").

5. **IAM** (:func:`iam_failures`): the signing role's own inline policies have a statement for each action on the
   call's resource (conditions are the layers' tests'; the deploy role is made outside the platform).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.broker_names import deploy_runner_role_name
from shared.catalog import load_catalog
from shared.components.compute_iam import (
    ARTIFACT_BUCKET_ACTIONS,
    ARTIFACT_READ_ACTIONS,
    ARTIFACT_WRITE_ACTIONS,
    ECR_PULL_ACTIONS,
    LOG_WRITE_ACTIONS,
)
from shared.components.deploy_runner import SECRET_NAME_SUFFIX
from shared.components.network import ACTION_NAMESPACES
from shared.envs import EnvConfig
from shared.synth.mocks import PlatformMocks
from tests import iam_eval

#: The names an interface endpoint's private DNS answers for, per service (ECR user guide, "Amazon ECR interface VPC
#: endpoints": ``api.ecr.<region>.amazonaws.com`` and ``*.dkr.ecr.<region>.amazonaws.com``); any other service's is
#: ``<service>.<region>.amazonaws.com``, its botocore endpointPrefix.
PRIVATE_DNS = {"ecr.api": ("api.ecr.{region}.amazonaws.com",), "ecr.dkr": ("*.dkr.ecr.{region}.amazonaws.com",)}
#: Where a CodeBuild-hosted build downloads its tools (the buildspec in shared/components/deploy_runner.py: the
#: Pulumi CLI and its checksums file from get.pulumi.com, a CDN (.ci/install-pulumi); nox and the project's packages
#: from PyPI (hash-checked); the source and
#: the provider plugins' GitHub release assets from GitHub). None is an AWS API; all are HTTPS.
RUNNER_TOOL_HOSTS = ("get.pulumi.com", "api.pulumi.com", "pypi.org", "files.pythonhosted.org", "github.com",
                     "api.github.com", "codeload.github.com", "objects.githubusercontent.com")
#: A CodeBuild-hosted GitHub Actions runner's (``messaging.deploy_runner.github_repository``) way to its jobs and their
#: results (GitHub docs, "Communication between self-hosted runners and GitHub": ``*.actions.githubusercontent.com``;
#: job logs, summaries and actions/cache's entries in Azure blob storage,
#: ``productionresultssa*.blob.core.windows.net``: GitHub changelog 2026-10-22, "Meta API endpoints updated for
#: Actions blob storage"). Not declared, as its host is
#: documented nowhere: the GitHub Actions runner (actions-runner-*.tar.gz) CodeBuild's agent downloads before the job,
#: which aws/aws-codebuild-docker-images #765 shows answered by S3 (README, Ways into the VPC: what to check).
ACTIONS_RUNNER_HOSTS = ("pipelines.actions.githubusercontent.com", "results-receiver.actions.githubusercontent.com",
                        "productionresultssa0.blob.core.windows.net")
#: What the AWS provider does to a bucket the layers create, from the in-VPC runner as the deploy role (create, each
#: setting's Put/Get, a force_destroy's version deletes, the delete).
BUCKET_LIFECYCLE_ACTIONS = (
    "s3:CreateBucket", "s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:DeleteObject", "s3:DeleteObjectVersion",
    "s3:GetBucketLocation", "s3:GetBucketLogging", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration", "s3:ListBucket", "s3:ListBucketVersions", "s3:PutBucketLogging",
    "s3:PutBucketOwnershipControls", "s3:PutBucketPolicy", "s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging",
    "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration")
#: The Pulumi diy backend's object calls on an S3 state bucket (locks, checkpoints, history, backups).
STATE_BUCKET_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject")
#: The AWS provider's package -> the botocore service whose API it calls (aws:cloudwatch is three APIs: by type).
PROVIDER_SERVICES = {
    "ec2": "ec2", "vpc": "ec2", "iam": "iam", "ecs": "ecs", "lambda": "lambda", "mq": "mq", "codebuild": "codebuild",
    "secretsmanager": "secretsmanager", "kms": "kms", "ecr": "ecr", "s3": "s3", "servicediscovery": "servicediscovery",
    "appautoscaling": "application-autoscaling", "sns": "sns", "lb": "elbv2", "alb": "elbv2", "appmesh": "appmesh",
    "sqs": "sqs", "ssm": "ssm", "acm": "acm", "route53": "route53", "budgets": "budgets",
}
#: The dynamic providers' own calls (shared/components/broker_logs.py: sts and logs; service_connect_drain.py:
#: servicediscovery; lambda_eni_drain.py: ec2), made by the program on the machine that deploys.
DYNAMIC_PROVIDER_SERVICES = ("sts", "logs", "servicediscovery", "ec2")
#: An address no VPC holds, standing for "a public address" when a rule's range must hold it.
PUBLIC_ADDRESS = ipaddress.IPv4Address("192.0.2.1")
#: The resource account of an AWS-owned bucket (ECR's layer bucket): never the env's.
AWS_OWNED = "aws-owned"


@dataclass(frozen=True)
class Rule:
    """One security-group rule: tcp (or all, ``-1``) ``from_port``-``to_port`` with one peer."""

    protocol: str
    from_port: int
    to_port: int
    group: str | None = None
    cidr: str | None = None
    prefix_list: str | None = None

    def admits_port(self, port: int) -> bool:
        return self.protocol == "-1" or (self.protocol in ("tcp", "6") and self.from_port <= port <= self.to_port)


@dataclass
class Group:
    ingress: list[Rule] = field(default_factory=list)
    egress: list[Rule] = field(default_factory=list)


@dataclass(frozen=True)
class Endpoint:
    service: str
    kind: str  # Interface | Gateway
    policy: dict[str, Any] | None
    groups: tuple[str, ...] = ()
    private_dns: bool = False
    route_tables: tuple[str, ...] = ()
    prefix_list: str | None = None


@dataclass(frozen=True)
class Principal:
    name: str
    groups: tuple[str, ...]
    subnets: tuple[str, ...]
    #: the IAM principal its AWS calls are signed as unless a call names another
    arn: str


@dataclass(frozen=True)
class Call:
    principal: str
    purpose: str
    host: str
    port: int = 443
    #: IAM actions of an AWS API call (empty: not an AWS API, or no endpoint policy can apply)
    actions: tuple[str, ...] = ()
    resource: str = "*"
    resource_account: str | None = None
    #: the IAM principal the call is signed as, where it is not the principal's own (an assumed role)
    signer: str | None = None
    #: a URL another service presigned (ECR's layer URLs): signed by that service, no principal of the account
    presigned: bool = False


@dataclass
class Network:
    env: str
    region: str
    account: str
    vpc_cidr: str
    groups: dict[str, Group]
    subnet_cidrs: dict[str, str]
    subnet_tables: dict[str, str]
    routes: dict[str, dict[str, tuple[str, str]]]  # table -> destination -> (kind, target id)
    nat_subnets: dict[str, str]
    internet_gateways: set[str]
    endpoints: dict[str, Endpoint]
    #: in-VPC names -> the groups of the network interfaces they resolve to
    vpc_hosts: dict[str, tuple[str, ...]]
    principals: dict[str, Principal] = field(default_factory=dict)


def _ids(document: dict[str, Any]) -> PlatformMocks:
    return PlatformMocks(project=document["project"], stack=document["stack"])


def _resources(docs: dict[str, dict[str, Any]], type_: str) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for document in docs.values():
        for resource in document["resources"]:
            if resource["type"] == type_:
                yield document, resource


def _id(document: dict[str, Any], resource: dict[str, Any]) -> str:
    return _ids(document).physical_id(resource["type"], resource["name"], resource["inputs"])


def _inline_rules(rules: list[dict[str, Any]] | None) -> list[Rule]:
    made: list[Rule] = []
    for rule in rules or []:
        base = (str(rule.get("protocol")), int(rule.get("fromPort", 0)), int(rule.get("toPort", 0)))
        made += [Rule(*base, group=group) for group in rule.get("securityGroups") or []]
        made += [Rule(*base, cidr=cidr) for cidr in rule.get("cidrBlocks") or []]
        made += [Rule(*base, prefix_list=pl) for pl in rule.get("prefixListIds") or []]
        if rule.get("self"):
            raise NotImplementedError("inline self rules: name the group instead")
    return made


def _separate_rule(inputs: dict[str, Any]) -> Rule:
    protocol = str(inputs["ipProtocol"])
    return Rule(protocol, int(inputs.get("fromPort", 0)), int(inputs.get("toPort", 65535)),
                group=inputs.get("referencedSecurityGroupId"), cidr=inputs.get("cidrIpv4"),
                prefix_list=inputs.get("prefixListId"))


def build(env: EnvConfig, docs: dict[str, dict[str, Any]]) -> Network:
    """The env's network from the synth documents of its layers (shared.synth; ids as the mocks give them)."""
    net = docs["network"]
    outputs = net["outputs"]
    region = env.region
    groups: dict[str, Group] = {}
    inline: dict[str, tuple[str, set[str]]] = {}  # group id -> (its resource name, the rule lists it has inline)
    for document, resource in _resources(docs, "aws:ec2/securityGroup:SecurityGroup"):
        inputs = resource["inputs"]
        # A group made without inline egress has none: the provider deletes AWS's default allow-all egress rule
        # (pulumi-aws ec2.SecurityGroup, "NOTE on Egress rules").
        groups[_id(document, resource)] = Group(_inline_rules(inputs.get("ingress")),
                                                _inline_rules(inputs.get("egress")))
        inline[_id(document, resource)] = (resource["name"], {d for d in ("ingress", "egress") if d in inputs})
    for document, resource in _resources(docs, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        inline[_id(document, resource)] = (resource["name"], {d for d in ("ingress", "egress")
                                                              if d in resource["inputs"]})
    for type_, direction in (("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "ingress"),
                             ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "egress")):
        for _, resource in _resources(docs, type_):
            group_id = resource["inputs"]["securityGroupId"]
            owner, declared = inline.get(group_id, ("", set()))
            if declared:
                # A group that lists rules inline owns its rule set: a later `up` revokes what a rule resource added
                # and the rule resource adds it back (pulumi-aws ec2.SecurityGroup, WARNING: in-line rules with
                # vpc.SecurityGroup{Ingress,Egress}Rule "may cause rule conflicts, perpetual differences").
                raise ValueError(f"{resource['name']}: a separate {direction} rule of {owner}, which lists "
                                 f"{' and '.join(sorted(declared))} rules inline: they would fight on every later up")
            group = groups.setdefault(group_id, Group())
            getattr(group, direction).append(_separate_rule(resource["inputs"]))
    subnet_cidrs = {_id(net, r): r["inputs"]["cidrBlock"] for _, r in _resources({"n": net}, "aws:ec2/subnet:Subnet")}
    subnet_tables = {r["inputs"]["subnetId"]: r["inputs"]["routeTableId"]
                     for _, r in _resources({"n": net}, "aws:ec2/routeTableAssociation:RouteTableAssociation")}
    routes: dict[str, dict[str, tuple[str, str]]] = {}
    for _, resource in _resources({"n": net}, "aws:ec2/route:Route"):
        inputs = resource["inputs"]
        target = (("nat", inputs["natGatewayId"]) if inputs.get("natGatewayId") else
                  ("igw", inputs["gatewayId"]) if inputs.get("gatewayId") else ("other", ""))
        routes.setdefault(inputs["routeTableId"], {})[inputs["destinationCidrBlock"]] = target
    nat_subnets = {_id(net, r): r["inputs"]["subnetId"]
                   for _, r in _resources({"n": net}, "aws:ec2/natGateway:NatGateway")}
    gateways = {_id(net, r) for _, r in _resources({"n": net}, "aws:ec2/internetGateway:InternetGateway")}
    endpoints: dict[str, Endpoint] = {}
    for _, resource in _resources({"n": net}, "aws:ec2/vpcEndpoint:VpcEndpoint"):
        inputs = resource["inputs"]
        service = inputs["serviceName"].removeprefix(f"com.amazonaws.{region}.")
        computed = _ids(net).computed(resource["type"], resource["name"], inputs)
        endpoints[service] = Endpoint(
            service, inputs["vpcEndpointType"], json.loads(inputs["policy"]) if inputs.get("policy") else None,
            groups=tuple(inputs.get("securityGroupIds") or ()), private_dns=bool(inputs.get("privateDnsEnabled")),
            route_tables=tuple(inputs.get("routeTableIds") or ()), prefix_list=computed.get("prefixListId"))
    network = Network(env.name, region, env.account_id, outputs["vpc_cidr"], groups, subnet_cidrs, subnet_tables,
                      routes, nat_subnets, gateways, endpoints, {})
    network.vpc_hosts = _vpc_hosts(docs)
    network.principals = _principals(docs)
    return network


def _host(url: str) -> str:
    return urlsplit(url if "://" in url else f"x://{url}").hostname or ""


def _vpc_hosts(docs: dict[str, dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    """The names that resolve to network interfaces in the VPC: the Amazon MQ broker's (its AMQPS and management
    endpoints), and every Service Connect name, which the tasks' proxies answer."""
    hosts: dict[str, tuple[str, ...]] = {}
    for document, resource in _resources(docs, "aws:mq/broker:Broker"):
        outputs = document["outputs"]
        for key in ("amqps_endpoint", "management_endpoint"):
            if outputs.get(key):
                hosts[_host(outputs[key])] = tuple(resource["inputs"]["securityGroups"])
    for _, service in _resources(docs, "aws:ecs/service:Service"):
        hosts[f"tasks-of:{_family(service)}"] = tuple(service["inputs"]["networkConfiguration"]["securityGroups"])
        for alias in _service_connect_services(service):
            for client in alias.get("clientAlias") or []:
                hosts[client["dnsName"]] = tuple(service["inputs"]["networkConfiguration"]["securityGroups"])
    return hosts


def _family(service: dict[str, Any]) -> str:
    """The task definition family of an ECS service (its ``taskDefinition`` is ``...:task-definition/<family>:<n>``)."""
    return str(service["inputs"]["taskDefinition"]).rsplit("/", 1)[-1].split(":")[0]


def _service_connect_services(service: dict[str, Any]) -> list[dict[str, Any]]:
    config = service["inputs"].get("serviceConnectConfiguration") or {}
    return list(config.get("services") or []) if config.get("enabled") else []


def _principals(docs: dict[str, dict[str, Any]]) -> dict[str, Principal]:
    principals: dict[str, Principal] = {}
    definitions = {r["inputs"]["family"]: r for _, r in _resources(docs, "aws:ecs/taskDefinition:TaskDefinition")}
    for _, service in _resources(docs, "aws:ecs/service:Service"):
        family = _family(service)
        network = service["inputs"]["networkConfiguration"]
        principals[f"tasks:{family}"] = Principal(f"tasks:{family}", tuple(network["securityGroups"]),
                                                  tuple(network["subnets"]),
                                                  definitions[family]["inputs"]["executionRoleArn"])
    for _, project in _resources(docs, "aws:codebuild/project:Project"):
        vpc = project["inputs"].get("vpcConfig")
        if vpc:
            principals["deploy-runner"] = Principal("deploy-runner", tuple(vpc["securityGroupIds"]),
                                                    tuple(vpc["subnets"]), project["inputs"]["serviceRole"])
    for _, function in _resources(docs, "aws:lambda/function:Function"):
        vpc = function["inputs"].get("vpcConfig")
        if vpc:
            name = f"lambda:{function['inputs']['name']}"
            principals[name] = Principal(name, tuple(vpc["securityGroupIds"]), tuple(vpc["subnetIds"]),
                                         function["inputs"]["role"])
    for _, balancer in _resources(docs, "aws:lb/loadBalancer:LoadBalancer"):
        name = f"alb:{balancer['name']}"
        principals[name] = Principal(name, tuple(balancer["inputs"]["securityGroups"]),
                                     tuple(balancer["inputs"]["subnets"]), "")
    return principals


def _arn(network: Network, document: dict[str, Any], resource: dict[str, Any]) -> str:
    """A resource's ARN as the mocks gave it (a listener names its load balancer and target group by ARN)."""
    from types import SimpleNamespace

    mocks = PlatformMocks(project=document["project"], stack=document["stack"], account_id=network.account,
                          region=network.region)
    args = SimpleNamespace(typ=resource["type"], name=resource["name"], inputs=resource["inputs"])
    return str(mocks.new_resource(args)[1]["arn"])  # type: ignore[arg-type]


# -- the calls ------------------------------------------------------------------------------------------------------

@cache
def _service_metadata(service: str) -> dict[str, Any]:
    import botocore.loaders

    return dict(botocore.loaders.create_loader().load_service_model(service, "service-2")["metadata"])


def api_host(service: str, region: str) -> str:
    """The name botocore (and the Go SDK) call for ``service`` in ``region``:
    ``<endpointPrefix>.<region>.amazonaws.com``, or the service's global endpoint (IAM)."""
    metadata = _service_metadata(service)
    if service == "iam":
        return str(metadata["globalEndpoint"])
    return f"{metadata['endpointPrefix']}.{region}.amazonaws.com"


def action_namespace(service: str) -> str:
    """The IAM namespace of a botocore service's actions (cloudwatch's endpoint is monitoring, its actions
    cloudwatch:*; ecr's endpoint is api.ecr, its actions ecr:*)."""
    metadata = _service_metadata(service)
    prefix = str(metadata.get("signingName") or metadata["endpointPrefix"])
    return {"elbv2": "elasticloadbalancing"}.get(service, ACTION_NAMESPACES.get(prefix, prefix))


@cache
def _operations(service: str) -> tuple[str, ...]:
    import botocore.loaders

    return tuple(sorted(botocore.loaders.create_loader().load_service_model(service, "service-2")["operations"]))


def all_actions(service: str) -> tuple[str, ...]:
    """Every action of ``service`` (its botocore operations, under its IAM namespace)."""
    return tuple(f"{action_namespace(service)}:{operation}" for operation in _operations(service))


def s3_host(bucket: str, region: str) -> str:
    return f"{bucket}.s3.{region}.amazonaws.com"


def _secret_arn(value_from: str) -> str:
    """A task secret's ``valueFrom`` without its JSON key, version stage and id (``arn:...:secret:<name>``)."""
    return ":".join(value_from.split(":")[:7])


def _provider_service(type_: str) -> str | None:
    package, _, rest = type_.partition(":")
    if package != "aws":
        return None
    module, _, kind = rest.partition("/")
    if module == "cloudwatch":
        kind = kind.split(":")[0]
        return "logs" if kind.startswith("log") else "events" if kind.startswith("event") else "cloudwatch"
    if module not in PROVIDER_SERVICES:
        raise KeyError(f"{type_}: which AWS API does the provider call for it? add it to PROVIDER_SERVICES")
    return PROVIDER_SERVICES[module]


def declared_calls(network: Network, docs: dict[str, dict[str, Any]], env_config: EnvConfig) -> list[Call]:
    """Every call of every principal in the VPC."""
    calls: list[Call] = []
    calls += _task_calls(network, docs)
    calls += _function_calls(network, docs)
    calls += _runner_calls(network, docs, env_config)
    calls += _balancer_calls(network, docs)
    return list(dict.fromkeys(calls))


def _balancer_calls(network: Network, docs: dict[str, dict[str, Any]]) -> list[Call]:
    """A public ALB forwards requests and sends its target health checks to its service's tasks (target type ip) on
    the target group's container port (ELB user guide, "Target groups": health checks use the target's port)."""
    balancers = {_arn(network, d, r): f"alb:{r['name']}"
                 for d, r in _resources(docs, "aws:lb/loadBalancer:LoadBalancer")}
    groups = {_arn(network, d, r): r for d, r in _resources(docs, "aws:lb/targetGroup:TargetGroup")}
    forwards = {action["targetGroupArn"]: balancers[listener["inputs"]["loadBalancerArn"]]
                for _, listener in _resources(docs, "aws:lb/listener:Listener")
                for action in listener["inputs"].get("defaultActions") or [] if action.get("targetGroupArn")}
    calls: list[Call] = []
    for _, service in _resources(docs, "aws:ecs/service:Service"):
        for attachment in service["inputs"].get("loadBalancers") or []:
            target_group = attachment["targetGroupArn"]
            port = groups[target_group]["inputs"].get("port") or attachment["containerPort"]
            calls.append(Call(forwards[target_group], f"requests and health checks to {_family(service)}",
                              f"tasks-of:{_family(service)}", int(attachment["containerPort"])))
            assert int(port) == int(attachment["containerPort"]), (port, attachment)
    return calls


def _task_calls(network: Network, docs: dict[str, dict[str, Any]]) -> list[Call]:
    region, calls = network.region, []
    definitions = {r["inputs"]["family"]: r for _, r in _resources(docs, "aws:ecs/taskDefinition:TaskDefinition")}
    ports = _service_connect_ports(docs, definitions)
    for _, service in _resources(docs, "aws:ecs/service:Service"):
        family = _family(service)
        who, definition = f"tasks:{family}", definitions[family]["inputs"]
        task_role = definition.get("taskRoleArn")
        containers = json.loads(definition["containerDefinitions"])
        log_configs = [c["logConfiguration"] for c in containers if c.get("logConfiguration")]
        connect = service["inputs"].get("serviceConnectConfiguration") or {}
        if connect.get("logConfiguration"):
            log_configs.append(connect["logConfiguration"])
        if connect.get("enabled"):
            # The Service Connect proxy's configuration comes from ECS's Service Connect endpoint (botocore ecs
            # DiscoverPollEndpointResponse.serviceConnectEndpoint, "https://ecs-sc.<region>.api.aws" in the AWS CLI's
            # example); where the agent in the task polls it, that is HTTPS out of the task's interface.
            calls.append(Call(who, "Service Connect proxy configuration", f"ecs-sc.{region}.api.aws"))
        for container in containers:
            calls += _image_calls(who, container["image"], region)
            for secret in container.get("secrets") or []:
                arn = _secret_arn(secret["valueFrom"])
                calls.append(Call(who, f"Fargate fetches {secret['name']} ({container['name']})",
                                  api_host("secretsmanager", arn.split(":")[3]),
                                  actions=("secretsmanager:GetSecretValue",), resource=arn,
                                  resource_account=arn.split(":")[4]))
            environment = {e["name"]: e["value"] for e in container.get("environment") or []}
            if "AMQP_ENDPOINT" in environment:
                endpoint = urlsplit(environment["AMQP_ENDPOINT"])
                calls.append(Call(who, "AMQPS to the broker", endpoint.hostname or "", endpoint.port or 5671))
            if "ARTIFACTS_BUCKET" in environment:
                bucket = environment["ARTIFACTS_BUCKET"]
                # a reader or writer of models (catalog `artifacts`, compute's record of the service); the others have
                # the bucket for handoffs only (README, "Model artifacts")
                record = ((docs.get("compute") or {}).get("outputs") or {}).get("services") or {}
                if container["name"] not in record or (record[container["name"]] or {}).get("artifacts"):
                    calls.append(Call(who, "model artifacts (reads)", s3_host(bucket, region),
                                      actions=ARTIFACT_READ_ACTIONS, resource=f"arn:aws:s3:::{bucket}/x",
                                      resource_account=network.account, signer=task_role))
                    calls.append(Call(who, "model artifacts (listing)", s3_host(bucket, region),
                                      actions=ARTIFACT_BUCKET_ACTIONS, resource=f"arn:aws:s3:::{bucket}",
                                      resource_account=network.account, signer=task_role))
                if "ARTIFACTS_PREFIX" in environment:  # writes under its own prefix
                    calls.append(Call(who, "model artifacts (writes)", s3_host(bucket, region),
                                      actions=ARTIFACT_WRITE_ACTIONS,
                                      resource=f"arn:aws:s3:::{bucket}/{environment['ARTIFACTS_PREFIX']}x",
                                      resource_account=network.account, signer=task_role))
                if "ARTIFACTS_HANDOFF_PREFIX" in environment:  # a publisher's payload too large for a message
                    calls.append(Call(who, "handoff (writes)", s3_host(bucket, region),
                                      actions=ARTIFACT_WRITE_ACTIONS,
                                      resource=f"arn:aws:s3:::{bucket}/{environment['ARTIFACTS_HANDOFF_PREFIX']}x",
                                      resource_account=network.account, signer=task_role))
                for source in load_catalog().handoff_sources(container["name"]):  # the publishers it consumes from
                    calls.append(Call(who, f"handoff of {source} (reads)", s3_host(bucket, region),
                                      actions=ARTIFACT_READ_ACTIONS,
                                      resource=f"arn:aws:s3:::{bucket}/{source}/handoff/x",
                                      resource_account=network.account, signer=task_role))
            label = (container.get("dockerLabels") or {}).get("platform.service-connect-endpoints")
            for name, endpoint in json.loads(label or "{}").items():
                host = endpoint["client_alias"].rsplit(":", 1)[0]
                calls.append(Call(who, f"Service Connect to {name}", host, ports[endpoint["discovery_name"]]))
            if any(c["name"] == "envoy" for c in containers) and container["name"] == "envoy":
                # Envoy's xDS: App Mesh's Envoy management service (App Mesh user guide, "Envoy image":
                # appmesh-envoy-management.<region>.amazonaws.com on 443), as the task role.
                calls.append(Call(who, "App Mesh Envoy management", f"appmesh-envoy-management.{region}.amazonaws.com",
                                  actions=("appmesh:StreamAggregatedResources",), signer=task_role,
                                  resource=environment["APPMESH_RESOURCE_ARN"], resource_account=network.account))
        for options in (config["options"] for config in log_configs if config["logDriver"] == "awslogs"):
            group_arn = (f"arn:aws:logs:{options['awslogs-region']}:{network.account}:"
                         f"log-group:{options['awslogs-group']}")
            calls.append(Call(who, f"awslogs to {options['awslogs-group']}",
                              api_host("logs", options["awslogs-region"]), actions=LOG_WRITE_ACTIONS,
                              resource=f"{group_arn}:log-stream:x", resource_account=network.account))
    return calls


def _service_connect_ports(docs: dict[str, dict[str, Any]], definitions: dict[str, Any]) -> dict[str, int]:
    """Service Connect discovery name -> the port its server-side proxy listens on: the named port mapping's
    container port, or its ingressPortOverride (ECS API reference, ServiceConnectService)."""
    ports: dict[str, int] = {}
    for _, service in _resources(docs, "aws:ecs/service:Service"):
        family = _family(service)
        mappings = {m.get("name"): m["containerPort"] for c in json.loads(
            definitions[family]["inputs"]["containerDefinitions"]) for m in c.get("portMappings") or []}
        for connect in _service_connect_services(service):
            ports[connect["discoveryName"]] = int(connect.get("ingressPortOverride") or mappings[connect["portName"]])
    return ports


def _image_calls(who: str, image: str, region: str) -> list[Call]:
    """A Fargate image pull: ECR's token and manifest APIs and its layer bucket in the registry's region (ECR user
    guide, "Amazon ECR interface VPC endpoints"), as the execution role; any other registry over HTTPS."""
    registry = image.split("/", 1)[0]
    parts = registry.split(".")
    if len(parts) >= 6 and parts[1:3] == ["dkr", "ecr"]:
        account, ecr_region = parts[0], parts[3]
        repository = image.split("/", 1)[1].split("@")[0].split(":")[0]
        bucket = f"prod-{ecr_region}-starport-layer-bucket"
        return [
            Call(who, f"ECR token ({image})", api_host("ecr", ecr_region), actions=("ecr:GetAuthorizationToken",)),
            Call(who, f"ECR manifest ({image})", registry, actions=ECR_PULL_ACTIONS,
                 resource=f"arn:aws:ecr:{ecr_region}:{account}:repository/{repository}", resource_account=account),
            # the layer URLs GetDownloadUrlForLayer hands out are presigned by ECR: no principal of the account
            Call(who, f"ECR layers ({image})", s3_host(bucket, ecr_region), actions=("s3:GetObject",),
                 resource=f"arn:aws:s3:::{bucket}/x", resource_account=AWS_OWNED, presigned=True),
        ]
    return [Call(who, f"image {image}", registry)]


def _function_calls(network: Network, docs: dict[str, dict[str, Any]]) -> list[Call]:
    """shared/rotation/broker_admin.py (Secrets Manager's rotation steps, the management API) and
    shared/rotation/queue_metrics.py (its secret, the management API, CloudWatch PutMetricData)."""
    from shared.components.broker_rotation import SECRET_ACTIONS

    calls: list[Call] = []
    rotated = {r["inputs"]["rotationLambdaArn"].rsplit(":", 1)[-1]: r["inputs"]["secretId"]
               for _, r in _resources(docs, "aws:secretsmanager/secretRotation:SecretRotation")}
    for _, function in _resources(docs, "aws:lambda/function:Function"):
        if not function["inputs"].get("vpcConfig"):
            continue
        name = function["inputs"]["name"]
        who = f"lambda:{name}"
        variables = (function["inputs"].get("environment") or {}).get("variables") or {}
        secret = rotated.get(name) or variables.get("SECRET_ARN")
        actions = (*SECRET_ACTIONS, "secretsmanager:GetRandomPassword") if name in rotated else (
            "secretsmanager:GetSecretValue",)
        if secret:
            calls.append(Call(who, "its secret", api_host("secretsmanager", network.region), actions=actions,
                              resource=secret, resource_account=network.account))
        if "NAMESPACE" in variables:
            calls.append(Call(who, "PutMetricData", api_host("cloudwatch", network.region),
                              actions=("cloudwatch:PutMetricData",)))
        if "MANAGEMENT_ENDPOINT" in variables:
            endpoint = urlsplit(variables["MANAGEMENT_ENDPOINT"])
            calls.append(Call(who, "the broker's management API", endpoint.hostname or "", endpoint.port or 443))
    return calls


def _runner_calls(network: Network, docs: dict[str, dict[str, Any]], env_config: EnvConfig) -> list[Call]:
    """The deploy runner: its tools, CodeBuild's own calls as the service role, then every layer's `up` as the
    deploy role (README, Ways into the VPC: staging's and prod's `up` runs every layer there)."""
    if "deploy-runner" not in network.principals:
        return []
    who, region, account = "deploy-runner", network.region, network.account
    (project,) = [r for _, r in _resources(docs, "aws:codebuild/project:Project")]
    variables = {v["name"]: v for v in project["inputs"]["environment"].get("environmentVariables") or []}
    deploy_role = variables["DEPLOY_ROLE_ARN"]["value"]
    hosts = RUNNER_TOOL_HOSTS + (ACTIONS_RUNNER_HOSTS if env_config.messaging.deploy_runner.github_repository else ())
    calls = [Call(who, f"tools from {host}", host) for host in hosts]
    log_group = project["inputs"]["logsConfig"]["cloudwatchLogs"]["groupName"]
    calls.append(Call(who, "CodeBuild build logs", api_host("logs", region), actions=LOG_WRITE_ACTIONS,
                      resource=f"arn:aws:logs:{region}:{account}:log-group:{log_group}:log-stream:x",
                      resource_account=account))
    # as the deploy-runner role: start-build's (a GitHub Actions runner's jobs role may not; its deploy jobs take the
    # deploy role by OIDC, AssumeRoleWithWebIdentity, which no policy of the caller grants)
    start_build_role = f"arn:aws:iam::{account}:role/{deploy_runner_role_name(env_config.name)}"
    calls.append(Call(who, "assume the deploy role", api_host("sts", region), actions=("sts:AssumeRole",),
                      resource=deploy_role, resource_account=account, signer=start_build_role))
    for name, variable in variables.items():
        if name.endswith(SECRET_NAME_SUFFIX):  # the buildspec reads it after switching to the deploy role
            secret = f"{variable['value']}-abcdef"
            calls.append(Call(who, f"the build reads {name.removesuffix(SECRET_NAME_SUFFIX)}",
                              api_host("secretsmanager", region), actions=("secretsmanager:GetSecretValue",),
                              resource=secret, resource_account=account, signer=deploy_role))
    services = {service for document in docs.values() for resource in document["resources"]
                if (service := _provider_service(resource["type"])) is not None}
    services |= {"sts", *DYNAMIC_PROVIDER_SERVICES}
    for service in sorted(services - {"s3"}):
        calls.append(Call(who, f"the AWS provider's {service} calls", api_host(service, region),
                          actions=all_actions(service), resource=f"arn:aws:{action_namespace(service)}:{region}:"
                                                                 f"{account}:x", resource_account=account,
                          signer=deploy_role))
    for _, bucket in _resources(docs, "aws:s3/bucket:Bucket"):
        name = bucket["inputs"]["bucket"]
        for arn in (f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/x"):
            calls.append(Call(who, f"the AWS provider manages bucket {name}", s3_host(name, region),
                              actions=BUCKET_LIFECYCLE_ACTIONS, resource=arn, resource_account=account,
                              signer=deploy_role))
    backend = env_config.state.backend_url
    if backend and backend.startswith("s3://"):
        parts = urlsplit(backend)
        bucket_region = (parse_qs(parts.query).get("region") or [region])[0]
        for arn in (f"arn:aws:s3:::{parts.netloc}", f"arn:aws:s3:::{parts.netloc}/x"):
            calls.append(Call(who, f"Pulumi state in s3://{parts.netloc}", s3_host(parts.netloc, bucket_region),
                              actions=STATE_BUCKET_ACTIONS, resource=arn, resource_account="another-account",
                              signer=deploy_role))
    # No call as the read-only role: a pull request's preview runs on a GitHub-hosted runner outside the VPC and
    # previews no layer that needs reach into it (tests/test_ci.py, the pull-request workflow's preview job)
    if any(True for _ in _resources(docs, "aws:mq/broker:Broker")):
        endpoint = docs["broker"]["outputs"]["management_endpoint"]
        calls.append(Call(who, "the RabbitMQ provider (management API)", _host(endpoint),
                          urlsplit(endpoint).port or 443))
    external = env_config.messaging.external
    if env_config.messaging.broker == "external" and external is not None:
        endpoint = urlsplit(external.management_endpoint)
        calls.append(Call(who, "the RabbitMQ provider (external management API)", endpoint.hostname or "",
                          endpoint.port or 443))
    return calls


# -- following a call -----------------------------------------------------------------------------------------------

def _matches(pattern: str, value: str) -> bool:
    """A DNS name against a private DNS name pattern (``*.dkr.ecr...``): names are case-insensitive."""
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


#: The condition keys of the request context the model gives an endpoint policy (:func:`_policy_failures`); a
#: condition on any other fails the model loudly: evaluated on a context that lacks it, a Deny on it would never
#: apply and an Allow never match, and the model must not take that for the endpoint's answer.
CONDITION_KEYS = ("aws:PrincipalAccount", "aws:ResourceAccount", "aws:PrincipalArn")


def policy_allows(policy: dict[str, Any] | None, action: str, resource: str, context: dict[str, str | None]) -> bool:
    """Whether an endpoint policy lets ``action`` on ``resource`` through for the principal of ``context``
    (tests/iam_eval.py; no policy: AWS's default, full access)."""
    if policy is None:
        return True
    known = {key.lower() for key in CONDITION_KEYS}
    for statement in policy["Statement"]:
        for pairs in (statement.get("Condition") or {}).values():
            unknown = sorted(key for key in pairs if key.lower() not in known)
            if unknown:
                raise NotImplementedError(f"statement {statement.get('Sid')}: condition keys {unknown}")
    return iam_eval.allows(policy["Statement"], action, resource, context)


def _interface_endpoint_for(network: Network, host: str) -> Endpoint | None:
    for endpoint in network.endpoints.values():
        if endpoint.kind != "Interface" or not endpoint.private_dns:
            continue
        names = PRIVATE_DNS.get(endpoint.service, ("{service}.{region}.amazonaws.com",))
        if any(_matches(name.format(service=endpoint.service, region=network.region), host) for name in names):
            return endpoint
    return None


def _s3_region(host: str) -> str | None:
    """The region of an S3 regional name (``<bucket>.s3.<region>.amazonaws.com``, ``s3.<region>...``)."""
    labels = host.split(".")
    if labels[-2:] != ["amazonaws", "com"] or "s3" not in labels:
        return None
    after = labels[labels.index("s3") + 1:-2]
    after = [label for label in after if label != "dualstack"]
    return after[0] if after else "us-east-1"


def _egress_admits(network: Network, principal: Principal, port: int, *, groups: tuple[str, ...] = (),
                   address: ipaddress.IPv4Network | None = None, prefix_list: str | None = None) -> bool:
    for group_id in principal.groups:
        for rule in network.groups.get(group_id, Group()).egress:
            if not rule.admits_port(port):
                continue
            if rule.group is not None and rule.group in groups:
                return True
            if rule.prefix_list is not None and rule.prefix_list == prefix_list:
                return True
            if rule.cidr is not None and address is not None and address.subnet_of(ipaddress.IPv4Network(rule.cidr)):
                return True
    return False


def _ingress_admits(network: Network, peer_groups: tuple[str, ...], principal: Principal, subnet: str,
                    port: int) -> bool:
    source = ipaddress.IPv4Network(network.subnet_cidrs[subnet])
    for group_id in peer_groups:
        for rule in network.groups.get(group_id, Group()).ingress:
            if not rule.admits_port(port):
                continue
            if rule.group is not None and rule.group in principal.groups:
                return True
            if rule.cidr is not None and source.subnet_of(ipaddress.IPv4Network(rule.cidr)):
                return True
    return False


def _policy_failures(endpoint: Endpoint, call: Call, principal: Principal, network: Network) -> list[str]:
    context: dict[str, str | None] = {"aws:PrincipalAccount": None if call.presigned else network.account,
                                      "aws:PrincipalArn": None if call.presigned else call.signer or principal.arn,
                                      "aws:ResourceAccount": call.resource_account}
    refused = [action for action in call.actions
               if not policy_allows(endpoint.policy, action, call.resource, context)]
    if not refused:
        return []
    return [f"the {endpoint.service} endpoint's policy refuses {', '.join(refused[:4])}"
            f"{' ...' if len(refused) > 4 else ''} on {call.resource} as {context['aws:PrincipalArn']}"]


def follow(network: Network, call: Call) -> list[str]:
    """Why ``call`` would not get through from each of its principal's subnets (empty: it does)."""
    principal = network.principals[call.principal]
    problems: list[str] = []
    for subnet in principal.subnets:
        table = network.subnet_tables.get(subnet)
        if table is None:
            problems.append(f"subnet {subnet} has no route table")
            continue
        problems += [f"{subnet}: {reason}" for reason in _follow_from(network, call, principal, subnet, table)]
    return sorted(set(problems))


def _follow_from(network: Network, call: Call, principal: Principal, subnet: str, table: str) -> list[str]:
    vpc = ipaddress.IPv4Network(network.vpc_cidr)
    if call.host in network.vpc_hosts:
        peer = network.vpc_hosts[call.host]
        reasons = []
        if not _egress_admits(network, principal, call.port, groups=peer, address=vpc):
            reasons.append(f"no egress rule of {principal.groups} admits port {call.port} to {peer}")
        if not _ingress_admits(network, peer, principal, subnet, call.port):
            reasons.append(f"no ingress rule of {peer} admits {principal.groups} on port {call.port}")
        return reasons
    endpoint = _interface_endpoint_for(network, call.host)
    if endpoint is not None:
        reasons = []
        if not _egress_admits(network, principal, call.port, groups=endpoint.groups, address=vpc):
            reasons.append(f"no egress rule admits port {call.port} to the {endpoint.service} endpoint "
                           f"{endpoint.groups} (its private DNS answers {call.host})")
        if not _ingress_admits(network, endpoint.groups, principal, subnet, call.port):
            reasons.append(f"the {endpoint.service} endpoint's group {endpoint.groups} does not admit "
                           f"{principal.groups} on {call.port} (its private DNS answers {call.host}: a timeout)")
        return reasons + _policy_failures(endpoint, call, principal, network)
    gateway = network.endpoints.get("s3")
    if (_s3_region(call.host) == network.region and gateway is not None and gateway.kind == "Gateway"
            and table in gateway.route_tables):
        reasons = []
        if not _egress_admits(network, principal, call.port, prefix_list=gateway.prefix_list,
                              address=ipaddress.IPv4Network(f"{PUBLIC_ADDRESS}/32")):
            reasons.append(f"no egress rule admits port {call.port} to S3 ({gateway.prefix_list})")
        return reasons + _policy_failures(gateway, call, principal, network)
    return _through_nat(network, call, principal, table)


def _through_nat(network: Network, call: Call, principal: Principal, table: str) -> list[str]:
    try:
        address = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(call.host)}/32")
    except ValueError:
        address = ipaddress.IPv4Network(f"{PUBLIC_ADDRESS}/32")
    reasons = []
    if not _egress_admits(network, principal, call.port, address=address):
        reasons.append(f"no egress rule admits port {call.port} to {call.host} (a public address)")
    kind, target = network.routes.get(table, {}).get("0.0.0.0/0", ("none", ""))
    if kind != "nat":
        return [*reasons, f"route table {table} has no NAT route for {call.host}"]
    public_table = network.subnet_tables.get(network.nat_subnets.get(target, ""), "")
    kind, gateway = network.routes.get(public_table, {}).get("0.0.0.0/0", ("", ""))
    if kind != "igw" or gateway not in network.internet_gateways:
        reasons.append(f"NAT {target} sits in a subnet without an internet gateway route")
    return reasons


def check(network: Network, calls: list[Call]) -> dict[str, list[str]]:
    """``principal: purpose (host:port)`` -> why it fails, for every call that does."""
    failures: dict[str, list[str]] = {}
    for call in calls:
        problems = follow(network, call)
        if problems:
            failures[f"{call.principal}: {call.purpose} ({call.host}:{call.port})"] = problems
    return failures


# -- IAM: the signer's own policies -------------------------------------------------------------------------------

def role_policies(docs: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Role name -> the statements of its inline policies (every platform role's permissions are inline)."""
    policies: dict[str, list[dict[str, Any]]] = {}
    for _, resource in _resources(docs, "aws:iam/rolePolicy:RolePolicy"):
        policy = json.loads(resource["inputs"]["policy"])
        policies.setdefault(resource["inputs"]["role"], []).extend(policy["Statement"])
    return policies


def iam_failures(network: Network, docs: dict[str, dict[str, Any]], calls: list[Call]) -> dict[str, list[str]]:
    """``principal: purpose`` -> the actions its signer's own policies grant it nowhere, for every AWS call signed by
    a role the stacks make (the deploy role is made outside the platform: not here)."""
    policies = role_policies(docs)
    failures: dict[str, list[str]] = {}
    for call in calls:
        signer = call.signer or network.principals[call.principal].arn
        role = signer.rsplit("/", 1)[-1]
        if not call.actions or call.presigned or role not in policies:
            continue
        # conditions are not evaluated (the layers' tests hold them): a call its signer has no statement for at all
        missing = [action for action in call.actions
                   if not iam_eval.grants_some_context(policies[role], action, call.resource)]
        if missing:
            failures[f"{call.principal}: {call.purpose} as {role}"] = missing
    return failures
