"""The AWS names the broker layer (and the network layer, for its flow-log role) derives from an env's name, and the
length limits AWS puts on them.

Free of Pulumi imports: the env loader checks these names (``shared.envs``, rule on ``name``) before any
layer runs, so an env whose name is too long stops with exit 2 instead of failing the broker layer's
``up`` after the network layer was deployed; the broker layer's components take their names from here,
so the check and the names cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


def broker_name(env_name: str) -> str:
    return f"ml-{env_name}"


def service_secret_name(env_name: str, service: str) -> str:
    """The Secrets Manager secret holding a service's RabbitMQ credentials (the messaging layer's)."""
    return f"platform/{env_name}/messaging/{service}"


def rotation_function_name(env_name: str) -> str:
    """The broker admin's rotation function, and its execution role (same name)."""
    return f"ml-platform-{env_name}-broker-admin-rotation"


def deploy_project_name(env_name: str) -> str:
    return f"ml-platform-{env_name}-deploy"


def deploy_runner_role_name(env_name: str) -> str:
    return f"ml-platform-{env_name}-deploy-runner"


def runner_jobs_role_name(env_name: str) -> str:
    """The service role of the deploy runner's project where it is a GitHub Actions runner (its webhook builds):
    it may not assume the deploy role (shared.components.deploy_runner)."""
    return f"ml-platform-{env_name}-runner-jobs"


def flow_log_role_name(env_name: str) -> str:
    """The network layer's role VPC Flow Logs writes with: named after the env, so that the deploy role's IAM grants,
    which name the roles the stacks create, admit no other env's role of the account (an auto-name,
    ``network-flow-logs-???????``, would match every env's)."""
    return f"ml-platform-{env_name}-flow-logs"


def default_log_group_name(service: str, resource_name: str) -> str:
    """The group AWS ``service`` writes a named resource's logs to by default, ``/aws/<service>/<name>``
    (Lambda developer guide, "Sending Lambda function logs to CloudWatch Logs"; CodeBuild's build logs)."""
    return f"/aws/{service}/{resource_name}"


class NameLimit(NamedTuple):
    what: str
    name: Callable[[str], str]
    max_length: int
    #: where the limit is stated
    source: str


#: Every name above with the longest one AWS accepts.
NAME_LIMITS: tuple[NameLimit, ...] = (
    NameLimit("Amazon MQ broker name", broker_name, 50, "botocore mq CreateBrokerRequest.BrokerName: 1-50 characters"),
    NameLimit("Lambda function name of the broker admin rotation", rotation_function_name, 64,
              "botocore lambda CreateFunctionRequest.FunctionName: a plain function name is limited to 64 characters"),
    NameLimit("IAM role name of the broker admin rotation", rotation_function_name, 64,
              "botocore iam roleNameType: at most 64 characters"),
    NameLimit("IAM role name of the deploy runner", deploy_runner_role_name, 64,
              "botocore iam roleNameType: at most 64 characters"),
    NameLimit("IAM role name of the VPC flow logs", flow_log_role_name, 64,
              "botocore iam roleNameType: at most 64 characters"),
    NameLimit("CodeBuild project name of the deploy runner", deploy_project_name, 150,
              "botocore codebuild ProjectName: 2-150 characters"),
)


def longest_env_name() -> int:
    """The longest env name whose every derived name fits its limit."""
    return min(limit.max_length - len(limit.name("")) for limit in NAME_LIMITS)


def name_problems(env_name: str) -> list[str]:
    """One reason for each derived name of ``env_name`` longer than AWS allows (empty: all fit)."""
    return [f"env name {env_name!r} ({len(env_name)} characters) makes the {limit.what} {limit.name(env_name)!r} "
            f"{len(limit.name(env_name))} characters long, over AWS's {limit.max_length} ({limit.source}); "
            f"name the env with at most {longest_env_name()} characters"
            for limit in NAME_LIMITS if len(limit.name(env_name)) > limit.max_length]
