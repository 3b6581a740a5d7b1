"""The network of one environment: a VPC with its subnets, routing, flow logs and endpoints."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws

from shared.artifact_names import artifact_bucket_name, artifact_log_bucket_name
from shared.aws_limits import SUBNET_PREFIX_DIFF
from shared.broker_names import flow_log_role_name
from shared.catalog import Catalog
from shared.components.building_blocks import log_group_with_key, role_with_policy
from shared.components.compute_containers import InRegion
from shared.components.compute_iam import (
    ARTIFACT_BUCKET_ACTIONS,
    ARTIFACT_READ_ACTIONS,
    ARTIFACT_WRITE_ACTIONS,
    service_trust_policy,
)
from shared.components.deploy_runner import deploy_role_arn as env_deploy_role_arn
from shared.envs import EnvConfig
from shared.gateway_names import access_log_bucket_pattern, s3_bucket_arn
from shared.port_retirement import called_service_ports, retiring_service_ports
from shared.role_boundary import boundary_arn

NatStrategy = Literal["none", "single", "per-az"]
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring")
#: an interface endpoint's service name -> the IAM namespace of its actions, where they differ (CloudWatch's
#: API is the endpoint com.amazonaws.<region>.monitoring: AWS PrivateLink guide, "AWS services that integrate
#: with AWS PrivateLink"; its actions are cloudwatch:*)
ACTION_NAMESPACES = {"monitoring": "cloudwatch"}
HTTPS_PORT = 443


#: What the S3 gateway endpoint lets the private subnets' workloads (and the deploy runner) do with the
#: env account's own buckets (the Pulumi state backend, for instance): objects and listings, nothing that
#: changes a bucket's configuration or policy.
OWN_BUCKET_ACTIONS = ("s3:DeleteObject", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:PutObject")


def endpoint_policy(service: str, *, partition: str, region: str, account_id: str,
                    artifact_bucket: str | None = None, platform_buckets: tuple[str, ...] = (),
                    deploy_role_arn: str | None = None, state_bucket: str | None = None) -> dict[str, object]:
    """The endpoint policy of the env's VPC endpoint for ``service`` (``s3`` or an interface service).

    An endpoint policy does not grant anything; it narrows what may pass through the endpoint (AWS
    PrivateLink guide, "Control access to VPC endpoints using endpoint policies"). Here only the env
    account's principals may use an interface endpoint, so stolen credentials of another account cannot
    use it to move data out. The S3 gateway endpoint carries every S3 request of the private subnets to the
    env's Region, so it admits ECR's image-layer bucket (read only; ECR user guide, "Amazon ECR interface VPC
    endpoints", minimum Amazon S3 bucket permissions: ``prod-<region>-starport-layer-bucket``) and, for
    the account's own principals, the account's own buckets; no other account's bucket of the Region is reachable
    through it. A request to another Region's S3 (no endpoint takes a cross-Region request) or to any other host
    leaves through the NAT, where one exists, past every endpoint policy (README, "What the endpoint policies do not
    stop").
    ``artifact_bucket`` (the env's model-artifact bucket, where the catalog has ``artifacts`` services) passes for
    the account's principals with exactly the actions the task roles are granted on it (versions and multipart
    aborts included, which the own-bucket statement does not carry). ``platform_buckets`` (the buckets the layers
    create) pass for ``deploy_role_arn`` with every S3 action (:func:`deploy_bucket_statement`). ``state_bucket``
    (the env file's ``state.backend_url`` on S3) passes for the account's principals with the own-bucket actions
    wherever it lives: one state bucket serves several envs' accounts, and the in-VPC runner reads and writes it
    through this endpoint when it is in the env's region.
    """
    account = {"aws:PrincipalAccount": account_id}
    if service == "s3":
        return {"Version": "2012-10-17", "Statement": [
            # Fargate pulls layers from the URLs ECR hands out; AWS documents this statement without a
            # principal condition.
            {"Sid": "EcrImageLayers", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"{s3_bucket_arn(partition, f'prod-{region}-starport-layer-bucket')}/*"},
            # No other AWS-owned bucket is admitted: none is shown to be needed (the GitHub Actions runner a
            # github_repository runner downloads has no documented source: README, Ways into the VPC, what to check).
            {"Sid": "OwnAccountBuckets", "Effect": "Allow", "Principal": "*", "Action": list(OWN_BUCKET_ACTIONS),
             "Resource": "*",
             "Condition": {"StringEquals": {**account, "aws:ResourceAccount": account_id}}},
            *([artifact_endpoint_statement(artifact_bucket, partition=partition, account_id=account_id)]
              if artifact_bucket else []),
            *([deploy_bucket_statement(platform_buckets, partition=partition, account_id=account_id,
                                       deploy_role_arn=deploy_role_arn)]
              if platform_buckets and deploy_role_arn else []),
            *([state_bucket_statement(state_bucket, partition=partition, account_id=account_id)]
              if state_bucket else []),
        ]}
    # ecr.api and ecr.dkr are both the ecr API's IAM namespace; monitoring is cloudwatch's
    prefix = ACTION_NAMESPACES.get(service, service.split(".", 1)[0])
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "OwnAccountPrincipals", "Effect": "Allow", "Principal": "*", "Action": f"{prefix}:*",
         "Resource": "*", "Condition": {"StringEquals": account}},
    ]}


def artifact_endpoint_statement(bucket: str, *, partition: str, account_id: str) -> dict[str, object]:
    """The S3 gateway endpoint's statement for the model-artifact bucket: what any task role may be granted on it
    (compute_iam's ARTIFACT_* actions, one source), for the account's own principals only."""
    return account_bucket_statement(
        "ModelArtifacts", bucket, sorted({*ARTIFACT_BUCKET_ACTIONS, *ARTIFACT_READ_ACTIONS, *ARTIFACT_WRITE_ACTIONS}),
        partition=partition, account_id=account_id)


def state_bucket_statement(bucket: str, *, partition: str, account_id: str) -> dict[str, object]:
    """The Pulumi state bucket of the env file (``state.backend_url``), for the account's principals, wherever the
    bucket lives: the own-bucket statement holds requests to the account's own buckets (``aws:ResourceAccount``),
    so a state bucket shared by several envs' accounts was refused here for all but its own, and every `up` or
    preview on the in-VPC runner stopped at its first state read. The diy backend reads, writes, lists and deletes
    objects (locks, checkpoints, backups by CopyObject: GetObject and PutObject)."""
    return account_bucket_statement("PulumiStateBucket", bucket, list(OWN_BUCKET_ACTIONS), partition=partition,
                                    account_id=account_id)


def account_bucket_statement(sid: str, bucket: str, actions: list[str], *, partition: str,
                             account_id: str) -> dict[str, object]:
    """An S3 gateway endpoint statement letting the account's own principals (``aws:PrincipalAccount``) do
    ``actions`` on one bucket and its objects, whichever account owns the bucket."""
    arn = s3_bucket_arn(partition, bucket)
    return {"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": actions, "Resource": [arn, f"{arn}/*"],
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_id}}}


def state_bucket_of(backend_url: str | None) -> str | None:
    """The bucket of an ``s3://<bucket>/<prefix>?<query>`` state backend URL; None for any other backend."""
    if not backend_url or not backend_url.startswith("s3://"):
        return None
    return urlsplit(backend_url).netloc or None


def deploy_bucket_statement(buckets: tuple[str, ...], *, partition: str, account_id: str,
                            deploy_role_arn: str) -> dict[str, object]:
    """The deploy role manages the buckets the layers create through the S3 gateway endpoint: staging's and prod's
    `up` runs every layer on the in-VPC runner (CodeBuild in these private subnets, as the env's deploy role), so
    the AWS provider's bucket calls (CreateBucket, Put/GetBucket* of each setting, force_destroy's version deletes)
    pass the endpoint too, and the own-bucket statement admits object calls only. Those buckets only (a name may be
    a pattern: ``*`` for the service in the access-log buckets' names), that role only (``aws:PrincipalArn`` of an
    assumed role is the role's ARN: IAM user guide, "AWS global condition context keys")."""
    arns = [arn for bucket in sorted(buckets) for arn in (s3_bucket_arn(partition, bucket),
                                                          f"{s3_bucket_arn(partition, bucket)}/*")]
    return {"Sid": "DeployRoleManagesPlatformBuckets", "Effect": "Allow", "Principal": "*", "Action": "s3:*",
            "Resource": arns,
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_id, "aws:PrincipalArn": deploy_role_arn}}}


def flow_log_role_policy(log_group_arn: str, *, partition: str, region: str, account_id: str) -> dict[str, object]:
    """What VPC Flow Logs does with its role (VPC guide, "IAM role for publishing flow logs to CloudWatch Logs":
    CreateLogStream, PutLogEvents, DescribeLogGroups, DescribeLogStreams; its log group exists, so no CreateLogGroup).
    DescribeLogGroups lists the account's groups: IAM authorizes it on ``log-group:*``, never on one group's ARN
    (CloudWatch Logs guide, "Logs sent to CloudWatch Logs": set its Resource to ``log-group:*``, "instead of specifying
    only a single log group name"), so it gets a statement of its own; the rest stays on this group."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteFlowLogGroup", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
         "Resource": [log_group_arn, f"{log_group_arn}:*"]},
        {"Sid": "FindFlowLogGroup", "Effect": "Allow", "Action": "logs:DescribeLogGroups",
         "Resource": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"},
    ]}


@dataclass(frozen=True)
class ManagementPeer:
    """Where the deploy runner reaches an ``external`` broker's management API when it is not on 443."""

    port: int
    #: the /32 of an IPv4 literal host, else 0.0.0.0/0 (a DNS name is not the platform's to pin; only the port is)
    cidr_ipv4: str


def external_management_peer(env: EnvConfig) -> ManagementPeer | None:
    """The port (and address) of ``messaging.external.management_endpoint`` where it is not 443, the one port the
    runner's group sends to anyway: staging's and prod's ``up`` runs messaging on the in-VPC runner, whose RabbitMQ
    provider calls that endpoint (RabbitMQ's management API over TLS listens on 15671 by default)."""
    external = env.messaging.external
    if env.messaging.broker != "external" or external is None:
        return None
    parts = urlsplit(external.management_endpoint)
    port = parts.port or HTTPS_PORT
    if port == HTTPS_PORT:
        return None
    try:
        cidr = f"{ipaddress.IPv4Address(parts.hostname or '')}/32"
    except ValueError:
        cidr = "0.0.0.0/0"
    return ManagementPeer(port=port, cidr_ipv4=cidr)


def https_from(group_id: pulumi.Input[str], description: str) -> aws.ec2.SecurityGroupIngressArgs:
    """An inline rule: HTTPS in from the members of one security group."""
    return aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=HTTPS_PORT, to_port=HTTPS_PORT,
                                            security_groups=[group_id], description=description)


def https_egress(resource_name: str, group: aws.ec2.SecurityGroup, *, description: str,
                 referenced_security_group_id: pulumi.Input[str] | None = None, cidr_ipv4: str | None = None,
                 prefix_list_id: pulumi.Input[str] | None = None) -> aws.vpc.SecurityGroupEgressRule:
    """HTTPS out of ``group`` to one peer (EC2 takes exactly one of CIDR, prefix list or referenced group per
    rule: botocore ec2 model, SecurityGroupRuleRequest); the rule is a child of the group."""
    return aws.vpc.SecurityGroupEgressRule(
        resource_name, security_group_id=group.id, referenced_security_group_id=referenced_security_group_id,
        cidr_ipv4=cidr_ipv4, prefix_list_id=prefix_list_id, ip_protocol="tcp", from_port=HTTPS_PORT,
        to_port=HTTPS_PORT, description=description, opts=pulumi.ResourceOptions(parent=group))


def function_group(resource_name: str, vpc_id: pulumi.Input[str], tag_name: str, description: str,
                   opts: pulumi.ResourceOptions) -> aws.ec2.SecurityGroup:
    """A Lambda function's security group, its rules separate resources. Lambda keeps a deleted function's network
    interfaces for up to ~20 minutes after its deletion; the provider's delete waits for and removes them within
    its timeout, so destroy gets 45 minutes."""
    return aws.ec2.SecurityGroup(
        resource_name, vpc_id=vpc_id, description=description, tags={"Name": tag_name},
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(
            delete="45m"))))


@dataclass(frozen=True)
class PortRangeRule:
    """One rule each way on the tasks' group for called services' ports that follow each other (:func:`port_ranges`)."""

    from_port: int
    to_port: int
    #: the called service listening on ``from_port``: its rule of the per-port design is this rule's alias; None
    #: where ``from_port`` is a retiring port only (its service's alias belongs to the rule of its port now)
    first_service: str | None


def port_ranges(service_ports: Mapping[str, int], retiring: Iterable[int] = ()) -> tuple[PortRangeRule, ...]:
    """The called services' ports, and the ``retiring`` ports admitted one more `up` (shared.port_retirement), merged
    into ranges of consecutive ports (equal ports count once), lowest first.

    The tasks share one group, so a rule per port isolates no caller: a range of consecutive service ports admits
    exactly the same ports in one rule, where EC2 allows 60 rules per direction by default (Amazon VPC quotas).
    Each range rule is named after its ``from_port`` (stable while the range grows or shrinks at its top end, an
    in-place ModifySecurityGroupRules: only ``security_group_id`` forces a new rule) and never repeats another
    rule's ``from_port``, so no rule is created with the peer, protocol and ports of one still present, which EC2
    refuses ("InvalidPermission.Duplicate: the specified rule ... already exists")."""
    first: dict[int, str | None] = {}
    for service, port in sorted(service_ports.items(), key=lambda item: (item[1], item[0])):
        first.setdefault(port, service)
    for port in retiring:
        first.setdefault(port, None)
    ranges: list[PortRangeRule] = []
    for port in sorted(first):
        if ranges and port == ranges[-1].to_port + 1:
            ranges[-1] = PortRangeRule(ranges[-1].from_port, port, ranges[-1].first_service)
        else:
            ranges.append(PortRangeRule(port, port, first[port]))
    return tuple(ranges)


@dataclass(frozen=True)
class SubnetPlan:
    availability_zone: str
    public_cidr: str
    private_cidr: str


def plan_subnets(cidr: ipaddress.IPv4Network, availability_zones: list[str]) -> list[SubnetPlan]:
    """Carve one private and one public subnet per AZ out of the VPC CIDR, without overlap.

    The VPC is split into 16 equal blocks (/20s of a /16): blocks 0-7 are private, 8-15 public, so
    subnets never move when an AZ is added (up to 8 AZs) and private ranges stay contiguous for
    routing and NACLs.
    """
    if len(availability_zones) > 8:
        raise ValueError("at most 8 availability zones fit the subnet plan")
    blocks = list(cidr.subnets(prefixlen_diff=SUBNET_PREFIX_DIFF))
    return [
        SubnetPlan(az, public_cidr=str(blocks[8 + index]), private_cidr=str(blocks[index]))
        for index, az in enumerate(availability_zones)
    ]


def interface_endpoints(endpoints: Iterable[str]) -> list[str]:
    """The interface endpoints among an env's ``network.endpoints``, in :data:`INTERFACE_ENDPOINTS` order (``s3`` is
    the gateway endpoint: no network interface, no security group, no interface-endpoint quota)."""
    chosen = set(endpoints)
    return [service for service in INTERFACE_ENDPOINTS if service in chosen]


def nat_gateway_count(strategy: NatStrategy, az_count: int) -> int:
    return {"none": 0, "single": 1, "per-az": az_count}[strategy]


@dataclass(frozen=True)
class VpcNetworkArgs(InRegion):
    env_name: str
    region: str
    cidr: ipaddress.IPv4Network
    availability_zones: list[str]
    nat: NatStrategy
    endpoints: tuple[str, ...]
    flow_log_retention_days: int
    account_id: str
    #: called service -> its port (the services' security group admits itself on these ports only)
    service_ports: dict[str, int]
    #: encrypt the flow-log group with a customer managed key (the env's ``compute.kms_encrypted_logs``,
    #: which asks for every platform log group to be KMS-encrypted)
    kms_encrypted_logs: bool
    #: the env's model-artifact bucket (shared.artifact_names), where the catalog has ``artifacts`` services: the
    #: S3 gateway endpoint lets it through (compute creates it, after this layer)
    artifact_bucket: str | None = None
    #: the buckets the layers create or may still have to delete (the artifact bucket, even where the catalog has
    #: no ``artifacts`` any more; every public gateway access-log bucket of the env, by pattern) and the env's deploy
    #: role, which manages them through the S3 gateway endpoint from the in-VPC runner
    platform_buckets: tuple[str, ...] = ()
    deploy_role_arn: str | None = None
    #: an ``external`` broker's management API where it is not on 443 (:func:`external_management_peer`)
    runner_management_peer: ManagementPeer | None = None
    #: the env file's S3 state bucket (``state.backend_url``), which may be another account's
    state_bucket: str | None = None
    #: the last of ``availability_zones``, being dropped: their subnets stay, but the endpoints and the exports
    #: (so every later layer) leave them (``network.retiring_availability_zones``)
    retiring_availability_zones: tuple[str, ...] = ()
    #: service -> a port the network's last `up` admitted for the catalog of then and the catalog's ``service_ports``
    #: no longer hold: admitted one more `up`, while compute moves the tasks off it (shared.port_retirement)
    retiring_service_ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: EnvConfig, catalog: Catalog,
                 last_outputs: Mapping[str, Any] | None = None) -> VpcNetworkArgs:
        """``last_outputs``: the network's own, from its last deployment (the ports it admitted then)."""
        service_ports = called_service_ports(catalog)
        store = artifact_bucket_name(env.name, env.account_id, env.region)
        artifact = store if catalog.needs_artifact_bucket else None  # artifacts, or a publisher's handoffs
        return cls(
            env_name=env.name, region=env.region, cidr=env.network.cidr,
            availability_zones=env.availability_zones, nat=env.network.nat,
            endpoints=env.network.endpoints, flow_log_retention_days=env.network.flow_log_retention_days,
            account_id=env.account_id, kms_encrypted_logs=env.compute.kms_encrypted_logs,
            service_ports=service_ports,
            # The deploy role's statement names the artifact bucket whether or not the catalog uses one: on the `up`
            # that removes the last `artifacts`, this layer updates the endpoint before compute (after it in the
            # DAG) deletes the bucket (ListObjectVersions, DeleteObjectVersion, DeleteBucket of force_destroy), and
            # from the in-VPC runner those calls pass this endpoint. The name is in the account's own namespace.
            # The store's access-log bucket likewise (created and deleted with the store, on the same runner). S3's
            # logging service writes the logs from inside S3, not through this endpoint, whose policy applies only to
            # requests sent through it (AWS PrivateLink guide, "Control access to VPC endpoints using endpoint
            # policies"). The public gateway's access-log buckets by their pattern, for the same reason: the `up`
            # that turns compute.public_gateway off, or a service's `public`, or removes a public service, deletes
            # its bucket in compute after this layer has dropped it from the catalog's list.
            artifact_bucket=artifact, platform_buckets=(
                store, artifact_log_bucket_name(env.name, env.account_id, env.region),
                access_log_bucket_pattern(env.name, env.account_id)),
            deploy_role_arn=env_deploy_role_arn(env),
            runner_management_peer=external_management_peer(env),
            state_bucket=state_bucket_of(env.state.backend_url),
            retiring_availability_zones=env.network.retiring_availability_zones,
            retiring_service_ports=retiring_service_ports(service_ports, last_outputs),
        )

    @property
    def flow_log_group_name(self) -> str:
        return f"/platform/{self.env_name}/vpc-flow-logs"


class VpcNetwork(pulumi.ComponentResource):
    """VPC (DNS on), public + private subnets per AZ, IGW, NAT per strategy, route tables,
    flow logs to CloudWatch, a closed default SG, a service SG and VPC endpoints."""

    def __init__(self, name: str, args: VpcNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:network:VpcNetwork", name, None, opts)
        env = args.env_name

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(args.cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,  # Cloud Map private DNS and interface endpoints need both
            tags={"Name": f"{env}-vpc"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        vpc_child = pulumi.ResourceOptions(parent=self.vpc)

        # The default SG allows all traffic between its members; managing it with no rules closes it,
        # so nothing lands in an open group by accident (CIS 5.4).
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=self.vpc.id, ingress=[], egress=[],
            tags={"Name": f"{env}-default-closed"}, opts=vpc_child,
        )

        self.plan = plan_subnets(args.cidr, args.availability_zones)
        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        for planned in self.plan:
            suffix = planned.availability_zone[-1]
            self.public_subnets.append(aws.ec2.Subnet(
                f"{name}-public-{suffix}", vpc_id=self.vpc.id, cidr_block=planned.public_cidr,
                availability_zone=planned.availability_zone,
                # Nothing launched here gets a public IP implicitly: the ALB and NAT gateways get
                # theirs explicitly, tasks never run in public subnets.
                map_public_ip_on_launch=False,
                tags={"Name": f"{env}-public-{planned.availability_zone}", "tier": "public"},
                opts=vpc_child,
            ))
            self.private_subnets.append(aws.ec2.Subnet(
                f"{name}-private-{suffix}", vpc_id=self.vpc.id, cidr_block=planned.private_cidr,
                availability_zone=planned.availability_zone, map_public_ip_on_launch=False,
                tags={"Name": f"{env}-private-{planned.availability_zone}", "tier": "private"},
                # a deleted Lambda function's network interfaces linger here for up to ~20 minutes
                # (pulumi-aws#2642); the provider's delete waits for them within this timeout
                opts=pulumi.ResourceOptions.merge(vpc_child, pulumi.ResourceOptions(
                    custom_timeouts=pulumi.CustomTimeouts(delete="45m"))),
            ))

        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{env}-igw"}, opts=vpc_child)
        self.public_route_table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id, tags={"Name": f"{env}-public", "tier": "public"},
            opts=vpc_child)
        aws.ec2.Route(
            f"{name}-public-default", route_table_id=self.public_route_table.id,
            destination_cidr_block="0.0.0.0/0", gateway_id=self.internet_gateway.id,
            opts=pulumi.ResourceOptions(parent=self.public_route_table))
        for subnet, planned in zip(self.public_subnets, self.plan):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{planned.availability_zone[-1]}", subnet_id=subnet.id,
                route_table_id=self.public_route_table.id, opts=pulumi.ResourceOptions(parent=subnet))

        self.nat_gateways: list[aws.ec2.NatGateway] = []
        for index in range(nat_gateway_count(args.nat, len(self.plan))):
            az = self.plan[index].availability_zone
            eip = aws.ec2.Eip(f"{name}-nat-{az[-1]}", domain="vpc", tags={"Name": f"{env}-nat-{az}"},
                              opts=vpc_child)
            self.nat_gateways.append(aws.ec2.NatGateway(
                f"{name}-nat-{az[-1]}", allocation_id=eip.allocation_id, subnet_id=self.public_subnets[index].id,
                tags={"Name": f"{env}-nat-{az}"},
                opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[self.internet_gateway])))

        # One private route table per AZ: with per-az NAT each AZ egresses through its own gateway,
        # so losing an AZ never cuts the others off.
        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (subnet, planned) in enumerate(zip(self.private_subnets, self.plan)):
            az = planned.availability_zone
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{az[-1]}", vpc_id=self.vpc.id,
                tags={"Name": f"{env}-private-{az}", "tier": "private"}, opts=vpc_child)
            self.private_route_tables.append(table)
            if self.nat_gateways:
                nat = self.nat_gateways[index] if args.nat == "per-az" else self.nat_gateways[0]
                aws.ec2.Route(
                    f"{name}-private-default-{az[-1]}", route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id,
                    opts=pulumi.ResourceOptions(parent=table))
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az[-1]}", subnet_id=subnet.id, route_table_id=table.id,
                opts=pulumi.ResourceOptions(parent=subnet))

        # What later layers place things in: a retiring AZ's subnets stay until a lower az_count drops them, once
        # no network interface is left there (EC2 DeleteSubnet: DependencyViolation while one is).
        serving = [planned.availability_zone not in args.retiring_availability_zones for planned in self.plan]
        self.serving_private_subnets = [subnet for subnet, kept in zip(self.private_subnets, serving) if kept]
        self.serving_public_subnets = [subnet for subnet, kept in zip(self.public_subnets, serving) if kept]

        self._flow_logs(name, args, vpc_child)

        # The ECS tasks' group. Its rules are separate rule resources (never inline ``ingress``/``egress``,
        # which would fight them): the compute layer adds its own (load balancer in, broker out) to it.
        # The provider removes AWS's default allow-all egress when it creates a group (pulumi-aws
        # ec2.SecurityGroup, "NOTE on Egress rules"), so only the rules below exist. The description is
        # kept as it was: changing it replaces the group, which fails while tasks still use it. A group
        # deployed with the former inline rules keeps them (removing inline arguments does not revoke
        # them: same docstring, "Removing All Ingress and Egress Rules"); the README says how to revoke.
        self.service_security_group = aws.ec2.SecurityGroup(
            f"{name}-services",
            vpc_id=self.vpc.id,
            description=f"ECS services of {env}: reachable only from inside the VPC",
            tags={"Name": f"{env}-services"},
            opts=vpc_child,
        )
        # The deploy runner's group (its CodeBuild project lives in the broker layer): created here, with
        # the VPC's other groups, so the interface endpoints below can admit it -- inside a VPC with
        # private DNS on, AWS API names resolve to those endpoints, for the runner as for the tasks.
        # No ingress: nothing connects to a build. Egress HTTPS only: AWS APIs, the Pulumi backend,
        # package registries, GitHub and the broker's management API (all 443).
        self.deploy_runner_security_group = aws.ec2.SecurityGroup(
            f"{name}-deploy-runner", vpc_id=self.vpc.id,
            description=f"Deploy runner of {env} (CodeBuild): HTTPS out only, nothing in",
            ingress=[],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=HTTPS_PORT, to_port=HTTPS_PORT, cidr_blocks=["0.0.0.0/0"],
                description="HTTPS to AWS APIs, the state backend, registries and the broker management API"),
                *self._runner_management_egress(args)],
            tags={"Name": f"{env}-deploy-runner"}, opts=vpc_child)
        # The broker admin's rotation function (a Lambda function of the broker layer), likewise: the
        # Secrets Manager endpoint admits it here. No ingress (nothing connects to a function); egress as
        # separate rules (_broker_rotation_rules here, the broker's management API in the broker layer).
        # Made in every env, whether or not the broker layer runs a function in it: network deploys before
        # broker, so a group made only while the admin rotates would be deleted (turning rotation off, an
        # external broker) while the broker's group and the function's network interfaces still use it,
        # and EC2 refuses that (DeleteSecurityGroup: DependencyViolation). An unused group costs nothing.
        # (function_group: destroy waits out Lambda's release of the function's network interfaces.)
        self.broker_rotation_security_group = function_group(
            f"{name}-broker-rotation", self.vpc.id, f"{env}-broker-rotation",
            f"Broker admin rotation function of {env} (Lambda): HTTPS to broker and Secrets Manager", vpc_child)
        # The messaging layer's queue metrics publisher (a Lambda function reading the broker's management API
        # and writing CloudWatch metrics), likewise made in every env: the interface endpoints admit it here,
        # its egress is _queue_metrics_rules here and the broker's management API in the messaging layer.
        self.queue_metrics_security_group = function_group(
            f"{name}-queue-metrics", self.vpc.id, f"{env}-queue-metrics",
            f"Queue metrics publisher of {env} (Lambda): HTTPS to broker, Secrets Manager, CloudWatch", vpc_child)
        self._endpoints(name, args, vpc_child)
        self._service_rules(name, args)
        self._broker_rotation_rules(name, args)
        self._queue_metrics_rules(name)
        self.register_outputs({
            "vpc_id": self.vpc.id,
            "private_subnet_ids": [s.id for s in self.serving_private_subnets],
            "public_subnet_ids": [s.id for s in self.serving_public_subnets],
        })

    def _flow_logs(self, name: str, args: VpcNetworkArgs, opts: pulumi.ResourceOptions) -> None:
        """All VPC traffic to CloudWatch Logs, for incident response (CIS 3.9, AwsSolutions-VPC7)."""
        self.flow_log_key, self.flow_log_group = log_group_with_key(
            f"{name}-flow-logs", group_name=args.flow_log_group_name, retention_days=args.flow_log_retention_days,
            encrypted=args.kms_encrypted_logs, key_description=f"VPC flow logs of the ML platform ({args.env_name})",
            key_alias=f"{args.env_name}/vpc-flow-logs", partition=args.partition, region=args.region,
            account_id=args.account_id, opts=opts)
        # Only VPC Flow Logs acting for this account's flow logs may assume the role (the confused-deputy
        # guard of the VPC guide, "IAM role for publishing flow logs to CloudWatch Logs"; the flow log's
        # id is not known before the role exists, hence the wildcard the guide allows).
        assume = json.dumps(service_trust_policy(
            "vpc-flow-logs.amazonaws.com", source_account=args.account_id,
            source_arn=f"arn:{args.partition}:ec2:{args.region}:{args.account_id}:vpc-flow-log/*"))
        self.flow_log_role, self.flow_log_role_policy = role_with_policy(
            f"{name}-flow-logs", policy_resource_name=f"{name}-flow-logs", assume_role_policy=assume,
            role_name=flow_log_role_name(args.env_name),
            description="Lets VPC Flow Logs write to its log group",
            permissions_boundary=boundary_arn(args.partition, args.account_id, args.env_name),
            policy=self.flow_log_group.arn.apply(lambda arn: json.dumps(flow_log_role_policy(
                arn, partition=args.partition, region=args.region, account_id=args.account_id))),
            opts=opts)
        self.flow_log = aws.ec2.FlowLog(
            f"{name}-flow-log", vpc_id=self.vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn, iam_role_arn=self.flow_log_role.arn,
            max_aggregation_interval=60, tags={"Name": f"{args.env_name}-flow-log"},
            # Flow Logs writes with the role from its first delivery on: created before the role's policy, those
            # deliveries are denied (DeliverLogsStatus FAILED, "Access error") until IAM has the policy. Replaced
            # (every input but tags is replace-on-change), the old one goes first: EC2 refuses a second flow log of
            # the VPC with the same traffic type and destination (CreateFlowLogs FlowLogAlreadyExists).
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.flow_log_role_policy],
                                                                           delete_before_replace=True)))

    def _endpoints(self, name: str, args: VpcNetworkArgs, opts: pulumi.ResourceOptions) -> None:
        """Private paths to AWS APIs so tasks in private subnets pull images, ship logs and read
        secrets without a NAT (and without crossing the internet)."""
        self.endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        self.endpoint_security_group: aws.ec2.SecurityGroup | None = None
        if "s3" in args.endpoints:
            # ECR stores image layers in S3: the gateway endpoint is free and carries the bulk bytes.
            self.endpoints["s3"] = aws.ec2.VpcEndpoint(
                f"{name}-s3", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
                vpc_endpoint_type="Gateway", route_table_ids=[t.id for t in self.private_route_tables],
                policy=self._endpoint_policy_json("s3", args),
                tags={"Name": f"{args.env_name}-s3"}, opts=opts)
        interface = interface_endpoints(args.endpoints)
        if not interface:
            return
        self.endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints", vpc_id=self.vpc.id,
            description=f"Interface endpoints of {args.env_name}: HTTPS from inside the VPC",
            # Only the platform's tasks and its deploy runner call AWS APIs from inside the VPC. Inline
            # rules: nothing else adds rules to this group.
            ingress=[https_from(self.service_security_group.id, "HTTPS to AWS APIs from the platform ECS tasks"),
                     https_from(self.deploy_runner_security_group.id,
                                "HTTPS to AWS APIs from the deploy runner (CodeBuild)"),
                     *self._rotation_endpoint_ingress(interface),
                     *self._queue_metrics_endpoint_ingress(interface)],
            tags={"Name": f"{args.env_name}-endpoints"}, opts=opts)
        for service in interface:
            self.endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}", vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}", vpc_endpoint_type="Interface",
                private_dns_enabled=True, subnet_ids=[s.id for s in self.serving_private_subnets],
                security_group_ids=[self.endpoint_security_group.id],
                policy=self._endpoint_policy_json(service, args),
                tags={"Name": f"{args.env_name}-{service}"}, opts=opts)

    @staticmethod
    def _runner_management_egress(args: VpcNetworkArgs) -> list[aws.ec2.SecurityGroupEgressArgs]:
        """The runner's way to an ``external`` broker's management API on a port other than 443 (an inline rule
        like the group's other one: a change is an in-place update of the group)."""
        peer = args.runner_management_peer
        if peer is None:
            return []
        return [aws.ec2.SecurityGroupEgressArgs(
            protocol="tcp", from_port=peer.port, to_port=peer.port, cidr_blocks=[peer.cidr_ipv4],
            description="RabbitMQ management API of the external broker (messaging.external.management_endpoint)")]

    def _rotation_endpoint_ingress(self, interface: list[str]) -> list[aws.ec2.SecurityGroupIngressArgs]:
        if "secretsmanager" not in interface:
            return []
        return [https_from(self.broker_rotation_security_group.id,
                           "HTTPS to Secrets Manager from the broker admin rotation function (Lambda)")]

    def _queue_metrics_endpoint_ingress(self, interface: list[str]) -> list[aws.ec2.SecurityGroupIngressArgs]:
        if not {"secretsmanager", "monitoring"} & set(interface):
            return []
        return [https_from(self.queue_metrics_security_group.id,
                           "HTTPS to Secrets Manager and CloudWatch from the queue metrics publisher (Lambda)")]

    def _queue_metrics_rules(self, name: str) -> None:
        """The publisher's way to Secrets Manager and CloudWatch (``monitoring``): the interface endpoints where
        the env has both, else the NAT for whichever it lacks (the env loader guarantees a NAT: shared.envs,
        private egress); the broker's management API is the messaging layer's rule."""
        self.queue_metrics_rules = self._function_egress(
            f"{name}-queue-metrics", self.queue_metrics_security_group, ("secretsmanager", "monitoring"),
            lambda through: f"HTTPS to the {' and '.join(through)} interface endpoints",
            # The public API endpoints through the NAT; their addresses are not the platform's to pin.
            "HTTPS through the NAT to Secrets Manager or CloudWatch (no interface endpoint)")

    def _broker_rotation_rules(self, name: str, args: VpcNetworkArgs) -> None:
        """The rotation function's way to Secrets Manager: the interface endpoint where the env has one
        (private DNS resolves the API's name to it), else the NAT; nothing else leaves the group here."""
        self.broker_rotation_rules = self._function_egress(
            f"{name}-broker-rotation", self.broker_rotation_security_group, ("secretsmanager",),
            lambda _: "HTTPS to the Secrets Manager interface endpoint",
            # Secrets Manager's public endpoint through the NAT; its addresses are not the platform's to pin.
            "HTTPS through the NAT to Secrets Manager (no interface endpoint in this env)")
        # else (no NAT, no secretsmanager endpoint): no way out; the env loader refuses such an env
        # (shared.envs, private egress), and a component used alone gets a group a function could not use.

    def _function_egress(self, prefix: str, group: aws.ec2.SecurityGroup, apis: tuple[str, ...],
                         endpoint_description: Callable[[list[str]], str],
                         nat_description: str) -> list[aws.vpc.SecurityGroupEgressRule]:
        """A Lambda function's egress to the AWS ``apis`` it calls: one rule to the interface endpoints the env has
        of them (``<prefix>-out-endpoints``), one through the NAT where it lacks any (``<prefix>-out-https``)."""
        rules: list[aws.vpc.SecurityGroupEgressRule] = []
        through = [service for service in apis if service in self.endpoints]
        if through and self.endpoint_security_group is not None:
            rules.append(https_egress(
                f"{prefix}-out-endpoints", group, referenced_security_group_id=self.endpoint_security_group.id,
                description=endpoint_description(through)))
        if len(through) < len(apis) and self.nat_gateways:
            rules.append(https_egress(f"{prefix}-out-https", group, cidr_ipv4="0.0.0.0/0",
                                      description=nat_description))
        return rules

    @staticmethod
    def _endpoint_policy_json(service: str, args: VpcNetworkArgs) -> str:
        # A policy change is an in-place ModifyVpcEndpoint (botocore ec2 model, PolicyDocument).
        return json.dumps(endpoint_policy(service, partition=args.partition, region=args.region,
                                          account_id=args.account_id, artifact_bucket=args.artifact_bucket,
                                          platform_buckets=args.platform_buckets,
                                          deploy_role_arn=args.deploy_role_arn, state_bucket=args.state_bucket),
                          sort_keys=True)

    def _service_rules(self, name: str, args: VpcNetworkArgs) -> None:
        """What the tasks may send and receive, by security-group reference wherever the peer has one.

        Traffic to the Amazon DNS server, the ECS task metadata endpoint and the Time Sync service is
        never filtered by security groups (VPC guide, "Security group rules"), so it needs no rule.
        With Service Connect (and App Mesh's Envoy) the server-side proxy listens on the service's own
        container port in awsvpc mode (ECS API reference, ServiceConnectService.ingressPortOverride),
        so the called services' ports are all that service-to-service traffic needs.
        """
        # One peer per rule resource: EC2 takes exactly one of CIDR v4/v6, prefix list or referenced
        # group per rule (botocore ec2 model, SecurityGroupRuleRequest).
        group = self.service_security_group
        self.service_rules: list[aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule] = []
        # Highest range first, each lower one after it: where a change splits a range, the new upper range's rule
        # is created before the lower one shrinks, so no port in use is refused in between. Rules no longer in the
        # program (a per-port rule of the earlier design, a range that now starts elsewhere) are deleted after
        # every create and update of the run.
        above: dict[str, pulumi.Resource] = {}
        for rule in reversed(port_ranges(args.service_ports, args.retiring_service_ports.values())):
            ports = (f"port {rule.from_port}" if rule.from_port == rule.to_port
                     else f"ports {rule.from_port}-{rule.to_port}")
            for direction, kind, text in (("in", aws.vpc.SecurityGroupIngressRule, "Platform services called on"),
                                          ("out", aws.vpc.SecurityGroupEgressRule, "Calls to platform services on")):
                # The alias takes over the per-port rule of the range's first service, updated in place to the range.
                aliases = [pulumi.Alias(name=f"{name}-services-{direction}-{rule.first_service}")] \
                    if rule.first_service else None
                made = kind(
                    f"{name}-services-{direction}-{rule.from_port}", security_group_id=group.id,
                    referenced_security_group_id=group.id, ip_protocol="tcp", from_port=rule.from_port,
                    to_port=rule.to_port, description=f"{text} service {ports}",
                    opts=pulumi.ResourceOptions(parent=group, aliases=aliases,
                                                depends_on=[above[direction]] if direction in above else None))
                above[direction] = made
                self.service_rules.append(made)
        # Fargate (platform 1.4+) pulls images, fetches secrets and ships logs through the task's own
        # network interface, so these egress rules carry the task start-up too.
        if self.endpoint_security_group is not None:
            self.service_rules.append(https_egress(
                f"{name}-services-out-endpoints", group, referenced_security_group_id=self.endpoint_security_group.id,
                description="HTTPS to the interface VPC endpoints (ECR, logs, Secrets Manager)"))
        if "s3" in self.endpoints:
            # ECR image layers (and the model-artifact bucket) are S3, through the gateway endpoint: its prefix list
            # is S3's ranges. A new description is modified in place (only the group is ForceNew).
            uses = "ECR image layers, model artifacts" if args.artifact_bucket else "ECR image layers"
            self.service_rules.append(https_egress(
                f"{name}-services-out-s3", group, prefix_list_id=self.endpoints["s3"].prefix_list_id,
                description=f"HTTPS to S3 through the gateway endpoint ({uses})"))
        if self.nat_gateways:
            # AWS APIs without an endpoint here (in dev: ECR, logs, Secrets Manager too) are public HTTPS
            # endpoints reached through the NAT; their addresses are not the platform's to pin.
            self.service_rules.append(https_egress(
                f"{name}-services-out-https", group, cidr_ipv4="0.0.0.0/0",
                description="HTTPS through the NAT to AWS APIs without a VPC endpoint"))
