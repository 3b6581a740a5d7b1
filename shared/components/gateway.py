"""The public entry of a `public: true` service: an internet-facing ALB speaking HTTPS only, writing
access logs to a bucket of its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.catalog import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    TARGET_HEALTH_INTERVAL_SECONDS,
    TARGET_HEALTH_TIMEOUT_SECONDS,
    TARGET_HEALTHY_THRESHOLD,
    alb_idle_timeout,
    deregistration_delay,
)
from shared.components.artifacts import ServerAccessLogTarget
from shared.components.building_blocks import BUCKET_SETTINGS_OF_THEIR_OWN
from shared.components.compute_iam import deny_insecure_transport
from shared.gateway_names import (
    BUCKET_NAME_MAX,
    access_log_bucket_candidate,
    load_balancer_resource_name,
    s3_bucket_arn,
    target_group_resource_name,
)

#: TLS 1.3, and TLS 1.2 with forward-secret AEAD ciphers only: one of the policies Security Hub ELB.17 accepts
#: (ELBSecurityPolicy-TLS13-1-2-2021-06 also offers TLS 1.2 CBC ciphers and fails it); the ELB default policy still
#: allows TLS 1.0. A change of policy is an in-place listener update.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
#: Where in the bucket the ALB writes (ELB adds ``/AWSLogs/<account>/elasticloadbalancing/...``).
ACCESS_LOG_PREFIX = "alb"
#: The Elastic Load Balancing account that delivers access logs in each Region opened before August
#: 2022 (ELB guide, "Enable access logs for your Application Load Balancer", step "Attach a policy to
#: your S3 bucket"; the same table as the AWS provider's aws.elb.get_service_account). Regions opened
#: since then take the service principal LOG_DELIVERY_PRINCIPAL instead. Every region an env may pick
#: (shared/regions.py) is in this table or in ELB_LOG_DELIVERY_BY_PRINCIPAL (tests/test_regions.py).
ELB_LOG_DELIVERY_ACCOUNTS: dict[str, str] = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "ca-central-1": "985666609251", "sa-east-1": "507241528517",
    "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-west-3": "009996457667",
    "eu-central-1": "054676820928", "eu-north-1": "897822967062", "eu-south-1": "635631232127",
    "ap-south-1": "718504428378", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864", "ap-northeast-2": "600734575887", "ap-northeast-3": "383597477331",
    "ap-east-1": "754344448648", "af-south-1": "098369216593", "me-south-1": "076674570225",
}
LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
#: The regions an env may pick that opened in or after August 2022, for which ELB's guide names no account: the bucket
#: policy grants LOG_DELIVERY_PRINCIPAL. A decision per region, so that an older region is never left out of the
#: account table by mistake (ELB would then be refused the bucket when compute turns the access logs on).
ELB_LOG_DELIVERY_BY_PRINCIPAL: frozenset[str] = frozenset()


def access_log_bucket_name(env_name: str, service: str, account_id: str) -> str:
    name = access_log_bucket_candidate(env_name, service, account_id)
    if len(name) > BUCKET_NAME_MAX:  # the env rules refuse such a service or env first (gateway_name_problems)
        raise ValueError(f"access-log bucket name {name!r} is longer than S3's {BUCKET_NAME_MAX} characters")
    return name


def access_log_bucket_policy(*, bucket: str, partition: str, region: str, account_id: str) -> dict[str, Any]:
    """ELB may put objects under the platform's prefix for this account only; nothing is readable
    over plain HTTP."""
    account = ELB_LOG_DELIVERY_ACCOUNTS.get(region)
    principal = ({"AWS": f"arn:{partition}:iam::{account}:root"} if account
                 else {"Service": LOG_DELIVERY_PRINCIPAL})
    bucket_arn = s3_bucket_arn(partition, bucket)
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ElbDeliversAccessLogs", "Effect": "Allow", "Principal": principal, "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/{ACCESS_LOG_PREFIX}/AWSLogs/{account_id}/*"},
        deny_insecure_transport(bucket_arn),
    ]}


@dataclass(frozen=True)
class PublicGatewayArgs:
    env_name: str
    service: str
    port: int
    health_path: str
    certificate_arn: str
    vpc_id: pulumi.Input[str]
    #: the ECS tasks' security group (network layer): the ALB reaches the tasks by reference to it
    service_security_group_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    protect: bool
    account_id: str
    region: str
    partition: str
    #: days the access logs are kept (the env's compute.log_retention_days)
    log_retention_days: int
    #: the catalog's request_timeout_seconds of the service: how long the ALB waits for one response, and
    #: how long in-flight requests may take to finish while a task leaves (the catalog keeps it <= 3600)
    request_timeout_seconds: int = DEFAULT_REQUEST_TIMEOUT_SECONDS
    #: the catalog's load_balancing: how the target group picks a task for a request
    load_balancing: str = "round_robin"
    #: the env's server-access-log bucket (the artifact store's), where the access-log bucket logs its own requests
    #: (Security Hub S3.9); None where the env has no artifact store, and the bucket logs nothing
    server_access_logs: ServerAccessLogTarget | None = None


class PublicGateway(pulumi.ComponentResource):
    """ALB in the public subnets -> target group of the service's task IPs (tasks stay private)."""

    def __init__(self, name: str, args: PublicGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:compute:PublicGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.security_group = aws.ec2.SecurityGroup(
            f"{args.service}-alb",
            vpc_id=args.vpc_id,
            description=f"Public HTTPS entry of {args.service} in {args.env_name}",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                # IPv4 only, as the load balancer (ip_address_type below) and the VPC: an IPv6 opening would go live
                # unreviewed the day the load balancer turned dual-stack.
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
                description="HTTPS from the internet (the only open port)")],
            # Forwarded requests and target health checks both go to the service port of the tasks'
            # group, nowhere else. Inline rules: nothing else adds rules to this group.
            egress=[aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=args.port, to_port=args.port,
                security_groups=[args.service_security_group_id],
                description=f"To {args.service} tasks on their service port")],
            # security-group-no-open-ingress accepts 0.0.0.0/0 on 443 only for SGs declared public.
            tags={"Name": f"{args.env_name}-{args.service}-alb", "exposure": "public"},
            opts=child,
        )
        # The tasks' side: their group takes rules as separate resources (the network layer owns the
        # group and its other rules), this one admitting the ALB on the service port only.
        self.task_ingress = aws.vpc.SecurityGroupIngressRule(
            f"{args.service}-alb-to-tasks",
            security_group_id=args.service_security_group_id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp", from_port=args.port, to_port=args.port,
            description=f"{args.service} requests and health checks from its public ALB",
            opts=pulumi.ResourceOptions(parent=self.security_group),
        )
        self._access_log_bucket(args, child)
        self.load_balancer = aws.lb.LoadBalancer(
            load_balancer_resource_name(args.service),
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[self.security_group.id],
            ip_address_type="ipv4",
            # Requests with malformed headers are a request-smuggling vector; drop them at the edge. The desync
            # mode is stated, not left to AWS's default (`defensive`, the provider's docstring), so that the state
            # holds what runs whatever AWS's default becomes (policy lb-desync-mitigation; Security Hub ELB.12).
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            # The ALB closes a connection on which nothing arrived for this long (default 60 s, 1-4000 s):
            # it must wait as long as the service may take to answer, its callees' answers included, and a
            # little longer than the proxy in the task, which then ends an over-long request (alb_idle_timeout).
            idle_timeout=alb_idle_timeout(args.request_timeout_seconds),
            enable_deletion_protection=args.protect,
            # ELB checks that it may write to the bucket when logging is turned on, so the policy comes first.
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=self.access_log_bucket.bucket, prefix=ACCESS_LOG_PREFIX, enabled=True),
            tags={"Name": f"{args.env_name}-{args.service}", "exposure": "public"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.access_log_policy]),
        )
        self.target_group = aws.lb.TargetGroup(
            target_group_resource_name(args.service),
            # awsvpc tasks register by IP.
            target_type="ip",
            protocol="HTTP",
            port=args.port,
            vpc_id=args.vpc_id,
            # A leaving task (deploy, scale-in) drains this long before ECS sends it SIGTERM: a request in flight
            # gets its whole request timeout before the ALB breaks its connection (deregistration_delay).
            deregistration_delay=deregistration_delay(args.request_timeout_seconds),
            # Always set, the default too: removing the catalog key then moves the target group back to round_robin
            # (ModifyTargetGroupAttributes, in place), not to whatever the provider makes of an unset attribute.
            load_balancing_algorithm_type=args.load_balancing,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True, path=args.health_path, matcher="200-399", interval=TARGET_HEALTH_INTERVAL_SECONDS,
                timeout=TARGET_HEALTH_TIMEOUT_SECONDS, healthy_threshold=TARGET_HEALTHY_THRESHOLD,
                unhealthy_threshold=3),
            tags={"Name": f"{args.env_name}-{args.service}"},
            opts=pulumi.ResourceOptions(parent=self.load_balancer),
        )
        self.listener = aws.lb.Listener(
            f"{args.service}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)],
            opts=pulumi.ResourceOptions(parent=self.load_balancer),
        )
        self.register_outputs({"dns_name": self.load_balancer.dns_name})

    def _access_log_bucket(self, args: PublicGatewayArgs, child: pulumi.ResourceOptions) -> None:
        """The ALB's access-log bucket: private, owner-enforced, SSE-S3 (the only server-side
        encryption ELB access logs support: ELB guide, access-log bucket requirements), expiring
        logs after the env's log retention.

        Deleted as the model-artifact store's buckets are (shared.components.artifacts): ``force_destroy`` exactly
        where the env does not protect state. The ALB writes logs for as long as it runs, so without it every
        ``destroy`` of compute (and the ``up`` that removes a public service) deleted everything else and then stopped
        at this bucket (BucketNotEmpty), half-way. Where the env protects state (prod) the logs are audit evidence: the
        bucket is protected and has no ``force_destroy``, and the destroy is refused before anything is deleted
        (shared.orchestrate). ELB delivers a log object up to some minutes late, so one may land after the delete
        emptied the bucket: the provider's delete then meets BucketNotEmpty, empties the bucket again and retries until
        it is empty (terraform-provider-aws internal/service/s3/bucket.go, resourceBucketDelete). The provider applies
        the flag only once an ``up`` has stored it (pulumi_aws s3.Bucket force_destroy)."""
        name = access_log_bucket_name(args.env_name, args.service, args.account_id)
        self.access_log_bucket = aws.s3.Bucket(
            f"{args.service}-alb-logs", bucket=name,
            force_destroy=not args.protect,
            tags={"Name": name, "service": args.service},
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=list(BUCKET_SETTINGS_OF_THEIR_OWN))))
        bucket_child = pulumi.ResourceOptions(parent=self.access_log_bucket)
        block = aws.s3.BucketPublicAccessBlock(
            f"{args.service}-alb-logs", bucket=self.access_log_bucket.id, block_public_acls=True,
            block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True, opts=bucket_child)
        ownership = aws.s3.BucketOwnershipControls(
            f"{args.service}-alb-logs", bucket=self.access_log_bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=bucket_child)
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{args.service}-alb-logs", bucket=self.access_log_bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"))],
            opts=bucket_child)
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{args.service}-alb-logs", bucket=self.access_log_bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-access-logs", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{ACCESS_LOG_PREFIX}/"),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.log_retention_days))],
            opts=bucket_child)
        self.access_log_policy = aws.s3.BucketPolicy(
            f"{args.service}-alb-logs", bucket=self.access_log_bucket.id,
            policy=json.dumps(access_log_bucket_policy(bucket=name, partition=args.partition, region=args.region,
                                                       account_id=args.account_id), sort_keys=True),
            # S3 refuses a policy while the public access block is being written (409 conflicts).
            opts=pulumi.ResourceOptions(parent=self.access_log_bucket, depends_on=[block]))
        target = args.server_access_logs
        if target is not None:
            # S3 server access logging of the log bucket itself (who read or deleted the ALB's logs), into the env's
            # log bucket under a prefix of its own; the bucket's last setting, after the others (S3 answers 409 to a
            # configuration call while another is in progress) and after the log bucket's policy lets S3's logging
            # service write for it (pulumi_aws s3.BucketLogging's example orders the two so).
            aws.s3.BucketLogging(
                f"{args.service}-alb-logs", bucket=self.access_log_bucket.id, target_bucket=target.bucket,
                target_prefix=f"{target.prefix}{name}/",
                opts=pulumi.ResourceOptions(parent=self.access_log_bucket, depends_on=[
                    block, ownership, encryption, lifecycle, self.access_log_policy, target.ready]))
