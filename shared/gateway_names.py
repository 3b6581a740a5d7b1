"""The names of a public service's gateway resources and the limits they must fit: one place for the
compute layer (``shared.components.gateway``) and the env rules, which check them without the Pulumi SDK."""

from __future__ import annotations

from collections.abc import Iterable

#: A load balancer's or target group's name has at most 32 characters (botocore elbv2 CreateLoadBalancer.Name,
#: CreateTargetGroup.Name). Pulumi auto-names both "<resource name>-" plus 7 random characters and fails the
#: `up` when that is longer ("name '...' plus 7 random chars is longer than maximum length 32").
ELB_NAME_MAX = 32
AUTONAME_SUFFIX = len("-") + 7
#: botocore elbv2 CreateLoadBalancer.Name: a load balancer's name "must not begin with 'internal-'" (the prefix
#: of an internal load balancer's DNS name); the catalog's DNS-label service names allow one.
ELB_RESERVED_PREFIX = "internal-"
#: S3 bucket names are 3-63 characters (S3 user guide, bucket naming rules).
BUCKET_NAME_MAX = 63


def s3_bucket_arn(partition: str, bucket: str) -> str:
    """The ARN of an S3 bucket (S3 has no region or account in its ARNs); ``/*`` appended names its objects."""
    return f"arn:{partition}:s3:::{bucket}"


def load_balancer_resource_name(service: str) -> str:
    return f"{service}-alb"


def target_group_resource_name(service: str) -> str:
    return f"{service}-tasks"


#: what names a bucket as a load balancer's access-log bucket
ALB_LOG_BUCKET_MARK = "-alb-logs-"


def access_log_bucket_candidate(env_name: str, service: str, account_id: str) -> str:
    return f"ml-{env_name}-{service}{ALB_LOG_BUCKET_MARK}{account_id}"


def access_log_bucket_owners(env_name: str, services: Iterable[str], account_id: str) -> dict[str, str]:
    """The env's access-log buckets, each with the public service it is for. Their names are in S3's global
    namespace and joined with ``-``, which env and service names may contain too: two envs of one account can
    arrive at one name (``dev`` with ``eu-gateway``, ``dev-eu`` with ``gateway``), and S3 holds one bucket of a name
    (botocore s3 CreateBucket: BucketAlreadyOwnedByYou), so the second env's compute `up` fails."""
    return {access_log_bucket_candidate(env_name, service, account_id): service for service in services}


def access_log_bucket_pattern(env_name: str, account_id: str) -> str:
    """Every public service's access-log bucket of the env, as an ARN pattern's bucket part (``*`` for the
    service): the ones the catalog has now and the ones it had, which an ``up`` may still have to delete."""
    return access_log_bucket_candidate(env_name, "*", account_id)


def gateway_name_problems(env_name: str, service: str, account_id: str) -> list[str]:
    """Why the public gateway of ``service`` cannot be named in ``env_name`` (empty: it can)."""
    problems = [
        f"its gateway's {what} is auto-named {resource!r} plus {AUTONAME_SUFFIX} characters, longer than the "
        f"{ELB_NAME_MAX} characters Elastic Load Balancing allows: a public service's name has at most "
        f"{ELB_NAME_MAX - AUTONAME_SUFFIX - (len(resource) - len(service))} characters"
        for what, resource in (("load balancer", load_balancer_resource_name(service)),
                               ("target group", target_group_resource_name(service)))
        if len(resource) + AUTONAME_SUFFIX > ELB_NAME_MAX]
    if load_balancer_resource_name(service).startswith(ELB_RESERVED_PREFIX):
        problems.append(f"its gateway's load balancer is auto-named {load_balancer_resource_name(service)!r} plus "
                        f"{AUTONAME_SUFFIX} characters, and Elastic Load Balancing refuses a load balancer name that "
                        f"begins with {ELB_RESERVED_PREFIX!r}: rename the service")
    bucket = access_log_bucket_candidate(env_name, service, account_id)
    if len(bucket) > BUCKET_NAME_MAX:
        problems.append(f"its gateway's access-log bucket {bucket!r} is longer than S3's {BUCKET_NAME_MAX} characters")
    return problems
