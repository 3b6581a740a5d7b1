"""The permissions boundary of every IAM role the stacks create: the cap on what the deploy role can hand out.

The deploy role creates roles, puts inline policies on them and passes them to ECS, Lambda, CodeBuild and VPC Flow
Logs; without a cap, whoever can start a deploy could create a role with any policy and use it. AWS's answer (IAM
user guide, "Permissions boundaries for IAM entities", the example "Delegating responsibility to others using a
permissions boundary"): a managed policy that every role the delegate creates must carry as its boundary
(``iam:PermissionsBoundary`` on ``iam:CreateRole`` and the policy writes, :mod:`shared.deploy_role`), which the
delegate can neither change nor remove. A role's effective permissions are then its policies *and* the boundary.

So the boundary is made by whoever makes the deploy role (``nox -s roles -- ENV`` prints it, README "A fresh
account, in order", step 4), never by a stack: a stack deploying with the deploy role would need to write the very
policy that caps it. Every ``aws.iam.Role`` of the stacks names it (``permissions_boundary``; policy rule
``iam-role-permissions-boundary``); it must exist before the first ``up`` (CreateRole with a boundary that does not
exist fails).

What it allows is what the roles' own policies can grant, for any catalog (a service added needs no change), held to
the env's account and region: the statements are built from the same constants as the role policies
(:mod:`shared.components.compute_iam`, the Lambda functions', the deploy runner's and the flow-log role's), and
``tests/test_deploy_role.py`` checks every role policy of the synth against it. A boundary grants nothing by itself.
"""

from __future__ import annotations

from typing import Any


def boundary_policy_name(env_name: str) -> str:
    """The managed policy's name: ``ml-platform-<env>-role-boundary`` (path ``/``)."""
    return f"ml-platform-{env_name}-role-boundary"


def boundary_arn(partition: str, account_id: str, env_name: str) -> str:
    """The boundary's ARN, as GetRole reports it in ``PermissionsBoundary.PermissionsBoundaryArn`` (so the provider's
    read matches what the program sets and a second ``up`` changes nothing)."""
    return f"arn:{partition}:iam::{account_id}:policy/{boundary_policy_name(env_name)}"


def boundary_document(env: Any) -> dict[str, Any]:
    """The boundary policy of ``env`` (an :class:`shared.envs.EnvConfig`): the union of what its roles may be granted,
    on the env's account and region."""
    from shared.artifact_names import artifact_bucket_name
    from shared.cloudwatch_metrics import QUEUE_METRICS_NAMESPACE
    from shared.components.broker_rotation import ENI_DESCRIBE_ACTIONS, ENI_MANAGE_ACTIONS, KEY_ACTIONS, SECRET_ACTIONS
    from shared.components.compute import cluster_name
    from shared.components.compute_containers import partition_of
    from shared.components.compute_iam import (
        ARTIFACT_BUCKET_ACTIONS,
        ARTIFACT_READ_ACTIONS,
        ARTIFACT_WRITE_ACTIONS,
        ECR_PULL_ACTIONS,
        LOG_WRITE_ACTIONS,
    )
    from shared.components.deploy_runner import DESCRIBE_ACTIONS, ENI_ACTIONS, deploy_role_arn
    from shared.components.ecr import REPOSITORY_PREFIX
    from shared.deploy_role import log_group_arns, secret_prefix
    from shared.gateway_names import s3_bucket_arn

    partition, region, account = partition_of(env.region), env.region, env.account_id

    def arn(service: str, resource: str) -> str:
        return f"arn:{partition}:{service}:{region}:{account}:{resource}"

    def allow(sid: str, actions: Any, resources: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)),
                                     "Resource": sorted(set(resources))}
        if condition:
            statement["Condition"] = condition
        return statement

    bucket = s3_bucket_arn(partition, artifact_bucket_name(env.name, account, region))
    statements = [
        # the flow-log role's, the tasks', the functions' and the build's own log groups: the env's, as the deploy role
        # (shared.deploy_role.log_group_arns)
        allow("WriteLogs", LOG_WRITE_ACTIONS, log_group_arns(env)),
        # the flow-log role (VPC guide: DescribeLogGroups and DescribeLogStreams too; DescribeLogGroups is authorized
        # on log-group:*, never one group's ARN)
        allow("DescribeLogs", ["logs:DescribeLogGroups", "logs:DescribeLogStreams"], [arn("logs", "log-group:*")]),
        # execution roles: GetAuthorizationToken takes only "*"
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        # each execution role pulls its own service's repository (compute_iam: PullOwnImage), all ml-platform/*; the
        # deploy role holds no more (shared.deploy_role.named_resource_arns)
        allow("PullImages", ECR_PULL_ACTIONS, [arn("ecr", f"repository/{REPOSITORY_PREFIX}/*")]),
        # execution roles (the services' broker credentials), the rotation function and the queue metrics publisher:
        # the env's secrets only, as the deploy role (shared.deploy_role.secret_statements)
        allow("Secrets", SECRET_ACTIONS, [arn("secretsmanager", f"secret:{secret_prefix(env.name)}*")]),
        allow("GeneratePasswords", ["secretsmanager:GetRandomPassword"], ["*"]),
        # customer keys only through the services that use them for the roles
        allow("KeysThroughSecretsManagerAndS3", KEY_ACTIONS, [arn("kms", "key/*")],
              {"StringEquals": {"kms:ViaService": [f"secretsmanager.{region}.amazonaws.com",
                                                   f"s3.{region}.amazonaws.com"]}}),
        # the VPC functions' and the build's network interfaces
        allow("DescribeNetwork", [*ENI_DESCRIBE_ACTIONS, *DESCRIBE_ACTIONS], ["*"]),
        allow("NetworkInterfaces", [*ENI_ACTIONS, *ENI_MANAGE_ACTIONS],
              [arn("ec2", "network-interface/*"), arn("ec2", "security-group/*"), arn("ec2", "subnet/*")]),
        allow("BuildNetworkInterfacePermission", ["ec2:CreateNetworkInterfacePermission"],
              [arn("ec2", "network-interface/*")],
              {"StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"}}),
        allow("PublishQueueMetrics", ["cloudwatch:PutMetricData"], ["*"],
              {"StringEquals": {"cloudwatch:namespace": QUEUE_METRICS_NAMESPACE}}),
        # task roles
        allow("DiscoverInstances", ["servicediscovery:DiscoverInstances"], ["*"]),
        # in an env without App Mesh too: a move to it then needs no boundary change (one forgotten would fail only
        # when the tasks run, Envoy denied its configuration)
        allow("EnvoyConfiguration", ["appmesh:StreamAggregatedResources"], [arn("appmesh", "mesh/*")]),
        # the env's cluster's tasks only: the deploy role itself holds no other (shared.deploy_role.ECS_IN_CLUSTER)
        allow("TaskProtection", ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"],
              [arn("ecs", f"task/{cluster_name(env.name)}/*")]),
        allow("ArtifactBucket", ARTIFACT_BUCKET_ACTIONS, [bucket]),
        allow("Artifacts", [*ARTIFACT_READ_ACTIONS, *ARTIFACT_WRITE_ACTIONS], [f"{bucket}/*"]),
        # the deploy runner's build runs as the deploy role: no more than the deploy role itself
        allow("AssumeDeployRole", ["sts:AssumeRole"], [deploy_role_arn(env)]),
    ]
    # no DeployRunnerSecrets: the runner's build reads the Pulumi passphrase and access token as the deploy role, and no
    # role of the stacks may read them (shared.components.deploy_runner.SECRET_VARIABLES)
    connection = env.messaging.deploy_runner.github_connection_arn
    if connection:
        service = connection.split(":")[2]
        allow_connection = allow("GitHubConnection", [f"{service}:GetConnection", f"{service}:GetConnectionToken"],
                                 [connection])
        statements.append(allow_connection)
    return {"Version": "2012-10-17", "Statement": statements}


#: The AWS CLI query naming the oldest version of a managed policy that is not its default: the one to delete before a
#: sixth. The CLI hands ``--query`` its timestamps as ISO 8601 strings, so ``sort_by`` on ``CreateDate`` orders them in
#: time (version ids do not sort: ``v10`` < ``v9``).
OLDEST_VERSION_QUERY = "sort_by(Versions[?IsDefaultVersion==`false`], &CreateDate)[0].VersionId"


def update_commands(arn: str, source: str) -> str:
    """The administrator's update of the boundary ``arn`` to the document at ``source`` (``file://...``). IAM keeps 5
    versions of a managed policy and answers a sixth CreatePolicyVersion with LimitExceeded (IAM API reference,
    CreatePolicyVersion: "If the policy has five versions, you must delete an existing version using
    DeletePolicyVersion"); each code upgrade or env-key change that changes the boundary makes one."""
    delete = (f"aws iam delete-policy-version --policy-arn {arn} --version-id \"$(aws iam list-policy-versions "
              f"--policy-arn {arn} --query '{OLDEST_VERSION_QUERY}' --output text)\"")
    return (f"aws iam create-policy-version --policy-arn {arn} --policy-document {source} --set-as-default "
            f"(IAM keeps 5 versions: where it holds 5, that answers LimitExceeded; first delete the oldest "
            f"non-default one: {delete})")
