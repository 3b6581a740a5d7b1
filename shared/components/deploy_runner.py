"""The platform's deploy runner: an AWS CodeBuild project inside the env's VPC.

The messaging layer's RabbitMQ provider talks to the broker's management API, which answers only
inside the VPC. The runner is the supported way in: a CodeBuild project in the private subnets, with
its own security group (which the broker admits on 443), its own service role and its own log group.

Least privilege: the service role may only do what CodeBuild needs to run a build in a VPC (create
and delete the build's network interface in these subnets, write the build's log group and use the GitHub App
connection ``messaging.deploy_runner.github_connection_arn`` where the env names it) and assume one deploy role.
The deploy itself runs as that deploy role (``deploy_role_name`` in the env file), which exists before
the platform does (a stack cannot create the role it is deployed with); it also reads the Pulumi passphrase and
access token secrets ``messaging.deploy_runner.passphrase_secret`` and ``access_token_secret`` in the build.

With ``messaging.deploy_runner.github_repository`` set, the project's source is that repository and a
webhook on ``WORKFLOW_JOB_QUEUED`` makes it a CodeBuild-hosted GitHub Actions runner (jobs select it with
``runs-on: codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}``). Any job of the repository may
select it, so the project's service role is then a second role, ``ml-platform-<env>-runner-jobs``, that may not
assume the deploy role (the deploy jobs assume it by OIDC); ``start-build`` names the deploy-runner role with
``--service-role-override``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.broker_names import (
    default_log_group_name,
    deploy_project_name,
    deploy_runner_role_name,
    runner_jobs_role_name,
)
from shared.components.building_blocks import own_log_group, role_with_policy
from shared.components.compute_containers import InRegion, partition_of
from shared.components.compute_iam import service_trust_policy, write_own_logs
from shared.envs import EnvConfig
from shared.lifecycle import DEPLOY_RUNNER_IMAGE, DEPLOY_RUNNER_PYTHON
from shared.role_boundary import boundary_arn

#: CodeBuild's managed Ubuntu image (AWS CLI v2, git, Python 3.10-3.14 as runtime versions; CodeBuild user
#: guide, "Docker images provided by CodeBuild"). Ubuntu, not Amazon Linux: as a CodeBuild-hosted GitHub
#: Actions runner its jobs run actions/setup-python, which has no builds for Amazon Linux 2023
#: (actions/setup-python #460). Defined with its deprecation dates in shared/lifecycle.py.
BUILD_IMAGE = DEPLOY_RUNNER_IMAGE
#: The build's Python (the platform supports 3.11-3.13; CodeBuild's standard:8.0 offers 3.10 to 3.14).
BUILD_PYTHON = DEPLOY_RUNNER_PYTHON
# What CodeBuild needs to run a build in a VPC (CodeBuild user guide, "Allow CodeBuild to access AWS
# services required to create a VPC network interface"). The Describe calls support only Resource "*"
# (Service Authorization Reference, EC2); creating and deleting the build's interface are scoped to
# interfaces, the private subnets and security groups of this account and region.
DESCRIBE_ACTIONS = (
    "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets", "ec2:DescribeVpcs",
)
ENI_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface")
VPC_ACTIONS = ENI_ACTIONS + DESCRIBE_ACTIONS


def _pin(package: str) -> str:
    """The version ``pyproject.toml`` pins (the one place versions are chosen)."""
    from shared.patch_guard import pinned_versions

    return pinned_versions()[package]


#: The build's Pulumi secrets: each variable with the DeployRunnerArgs field (the ``messaging.deploy_runner`` key)
#: naming the Secrets Manager secret it is read from. The Pulumi passphrase (passphrase-encrypted stack secrets) and
#: the Pulumi access token (a Pulumi Cloud backend: the CLI's non-interactive login reads PULUMI_ACCESS_TOKEN). The
#: project holds only the secret's ARN without its random suffix, in ``<variable>_SECRET_ARN``
#: (:data:`SECRET_NAME_SUFFIX`; Secrets Manager finds a secret by such a partial ARN, and the env loader refuses a name
#: that ends like a suffix; a reference, which the policy rule env-vars-no-plaintext-secrets admits in a plain
#: variable), and the build reads the value as the deploy role (:data:`BUILDSPEC`): not as a SECRETS_MANAGER variable,
#: which CodeBuild resolves with the project's service role for every build, a GitHub Actions job of any branch or fork
#: on the runner's included.
SECRET_VARIABLES: dict[str, str] = {
    "PULUMI_CONFIG_PASSPHRASE": "passphrase_secret",
    "PULUMI_ACCESS_TOKEN": "access_token_secret",
}
SECRET_NAME_SUFFIX = "_SECRET_ARN"


def _fetch_secret(variable: str) -> str:
    """The buildspec command that sets ``variable`` from the secret its ``_SECRET_ARN`` variable names, as the deploy
    role (AWS_PROFILE=deploy), where the project names one; a read that fails fails the build (the if's status is the
    assignment's)."""
    named = variable + SECRET_NAME_SUFFIX
    return (f'      - if [ -n "${{{named}:-}}" ]; then {variable}="$(aws secretsmanager get-secret-value --secret-id '
            f'"${named}" --query SecretString --output text)" && export {variable}; fi\n')


BUILDSPEC = f"""\
version: 0.2
env:
  shell: bash
phases:
  install:
    runtime-versions:
      python: "{BUILD_PYTHON}"
    commands:
      # The CLI at the SDK's pinned version, its release tarball checked against the release's sha256 (no installer
      # script fetched and run at deploy time): the script CI's jobs run too.
      - bash .ci/install-pulumi {_pin("pulumi")}
      - export PATH="$HOME/.pulumi/bin:$PATH"
      # nox and uv with every dependency at its locked version and hash; nox then makes .venv from requirements.lock
      - python3 -m pip install --quiet --disable-pip-version-check --require-hashes -r .ci/bootstrap-requirements.txt
  build:
    commands:
      # The build's own credentials (the service role) may only assume the deploy role.
      - aws configure set profile.deploy.role_arn "$DEPLOY_ROLE_ARN"
      - aws configure set profile.deploy.credential_source EcsContainer
      - export AWS_PROFILE=deploy
      # The Pulumi passphrase and access token the env names (messaging.deploy_runner.passphrase_secret,
      # access_token_secret), read as the deploy role: the service roles may read no secret
{"".join(_fetch_secret(variable) for variable in SECRET_VARIABLES)}\
      # PLATFORM_LAYERS (optional, e.g. messaging): --layers for the run; a destroy on the runner is one of the
      # layers that need the VPC (the orchestrator refuses one that would delete the runner itself). --yes for a run
      # that changes something: a preview refuses it (exit 2)
      - python3 -m nox -s "${{PLATFORM_COMMAND:-up}}" -- "$PLATFORM_ENV" \
$([ "${{PLATFORM_COMMAND:-up}}" = preview ] || echo --yes) ${{PLATFORM_LAYERS:+--layers "$PLATFORM_LAYERS"}}
"""


@dataclass(frozen=True)
class DeployRunnerArgs(InRegion):
    env_name: str
    region: str
    account_id: str
    deploy_role_name: str
    github_repository: str | None
    compute_type: str
    timeout_minutes: int
    log_retention_days: int
    kms_encrypted_logs: bool
    protect: bool
    #: ``messaging.deploy_runner.passphrase_secret``: the secret CodeBuild reads PULUMI_CONFIG_PASSPHRASE from
    passphrase_secret: str | None = None
    #: ``messaging.deploy_runner.access_token_secret``: the secret CodeBuild reads PULUMI_ACCESS_TOKEN from
    access_token_secret: str | None = None
    #: ``messaging.deploy_runner.github_connection_arn``: the GitHub App connection the source is checked out with
    github_connection_arn: str | None = None

    @classmethod
    def from_env(cls, env: EnvConfig) -> DeployRunnerArgs:
        runner = env.messaging.deploy_runner
        return cls(env_name=env.name, region=env.region, account_id=env.account_id,
                   deploy_role_name=runner.deploy_role_name, github_repository=runner.github_repository,
                   compute_type=runner.compute_type, timeout_minutes=runner_timeout_minutes(env),
                   log_retention_days=runner.log_retention_days,
                   kms_encrypted_logs=env.compute.kms_encrypted_logs, protect=env.protect,
                   passphrase_secret=runner.passphrase_secret, access_token_secret=runner.access_token_secret,
                   github_connection_arn=runner.github_connection_arn)

    @property
    def deploy_role_arn(self) -> str:
        return role_arn(self.partition, self.account_id, self.deploy_role_name)

    @property
    def concurrent_build_limit(self) -> int | None:
        """One build at a time where only start-build (nox -s runner) starts them: a second StartBuild is refused
        while one runs ("builds return an error if the number of running builds reaches the concurrent build limit
        for the project": CodeBuild user guide, "Builds in AWS CodeBuild"), so two deploys of the env never run in
        the VPC at once, their layers interleaved. None with a webhook: each GitHub Actions job is a build of its
        own, and the workflows' concurrency groups already order the deploys."""
        return None if self.github_repository else 1

    @property
    def project_arn(self) -> str:
        project = deploy_project_name(self.env_name)
        return f"arn:{self.partition}:codebuild:{self.region}:{self.account_id}:project/{project}"

    @property
    def secret_variables(self) -> dict[str, str]:
        """The build's Pulumi secrets (:data:`SECRET_VARIABLES`), each with the name of the secret the env names for
        it."""
        named = {variable: getattr(self, key) for variable, key in SECRET_VARIABLES.items()}
        return {variable: name for variable, name in named.items() if name is not None}

    def secret_arn(self, name: str) -> str:
        """A secret's ARN as IAM matches a secret named but not yet known by its full ARN: Secrets Manager appends
        ``-`` and 6 random characters to every secret's name (Secrets Manager user guide, "ARN of a secret": use
        ``<name>-??????`` in a policy)."""
        return f"{self.secret_partial_arn(name)}-??????"

    def secret_partial_arn(self, name: str) -> str:
        """The secret ``name``'s ARN without the 6 characters Secrets Manager appends: what GetSecretValue takes as
        its SecretId (Secrets Manager user guide, "Find secrets from a partial ARN")."""
        return f"arn:{self.partition}:secretsmanager:{self.region}:{self.account_id}:secret:{name}"


def role_arn(partition: str, account_id: str, name: str) -> str:
    """The ARN of the IAM role ``name`` (no path) of ``account_id``."""
    return f"arn:{partition}:iam::{account_id}:role/{name}"


def deploy_role_arn(env: EnvConfig) -> str:
    """The env's deploy role (``messaging.deploy_runner.deploy_role_name``), without working out the rest of the
    runner's arguments (its build limit reads the catalog)."""
    return role_arn(partition_of(env.region), env.account_id, env.messaging.deploy_runner.deploy_role_name)


def runner_timeout_minutes(env: EnvConfig) -> int:
    """The build limit: ``messaging.deploy_runner.timeout_minutes``, or shared.workflows.needed_build_minutes (the
    env loader refuses a shorter one)."""
    from shared.catalog import load_catalog
    from shared.workflows import needed_build_minutes

    configured = env.messaging.deploy_runner.timeout_minutes
    return configured if configured is not None else needed_build_minutes(env, load_catalog())


def trust_policy(args: DeployRunnerArgs) -> dict[str, Any]:
    """CodeBuild may assume the role for this project only (confused-deputy guard, CodeBuild user guide
    "Cross-service confused deputy prevention")."""
    return service_trust_policy("codebuild.amazonaws.com", source_account=args.account_id,
                                source_arn=args.project_arn)


def service_role_policy(args: DeployRunnerArgs, *, log_group_arn: str, subnet_ids: list[str],
                        assume_deploy_role: bool = True) -> dict[str, Any]:
    """What a build of the project needs: its network interface, its logs, the GitHub connection and
    (``assume_deploy_role``: the role ``start-build`` runs as, not the webhook's jobs role) the deploy role. No
    secret: the build reads the Pulumi passphrase and access token as the deploy role (:data:`BUILDSPEC`), so a
    GitHub Actions job of any branch or fork on the runner, which runs as the jobs role, reads neither."""
    subnet_arns = sorted(f"arn:{args.partition}:ec2:{args.region}:{args.account_id}:subnet/{subnet}"
                         for subnet in subnet_ids)
    return {"Version": "2012-10-17", "Statement": [
        write_own_logs(log_group_arn, sid="WriteOwnBuildLogs"),
        {"Sid": "BuildNetworkInterface", "Effect": "Allow", "Action": list(DESCRIBE_ACTIONS), "Resource": "*"},
        {"Sid": "ManageBuildNetworkInterface", "Effect": "Allow", "Action": list(ENI_ACTIONS),
         "Resource": [f"arn:{args.partition}:ec2:{args.region}:{args.account_id}:network-interface/*",
                      f"arn:{args.partition}:ec2:{args.region}:{args.account_id}:security-group/*",
                      *subnet_arns]},
        {"Sid": "BuildNetworkInterfaceInPrivateSubnets", "Effect": "Allow",
         "Action": "ec2:CreateNetworkInterfacePermission",
         "Resource": f"arn:{args.partition}:ec2:{args.region}:{args.account_id}:network-interface/*",
         "Condition": {"StringEquals": {"ec2:Subnet": subnet_arns,
                                        "ec2:AuthorizedService": "codebuild.amazonaws.com"}}},
        *([{"Sid": "AssumeDeployRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": args.deploy_role_arn}]
          if assume_deploy_role else []),
        *connection_statements(args),
    ]}


def connection_statements(args: DeployRunnerArgs) -> list[dict[str, Any]]:
    """What CodeBuild needs to check GitHub out through a GitHub App connection (the project's repository, or
    a start-build source override with the account's default credential or ``--source-auth-override``): the
    project's service role gets the connection's GitHub token (CodeBuild user guide, "GitHub App connections",
    step 2: ``GetConnectionToken`` and ``GetConnection`` on the connection). The actions' prefix is the ARN's
    service: a connection made before the rename is ``codestar-connections``, a newer one ``codeconnections``.
    ``GetConnectionToken`` is a permission CodeBuild checks, not an API a job on the runner could call with the role
    (botocore's codeconnections and codestar-connections models have GetConnection and no GetConnectionToken)."""
    arn = args.github_connection_arn
    if arn is None:
        return []
    service = arn.split(":")[2]
    return [{"Sid": "UseGitHubConnection", "Effect": "Allow",
             "Action": [f"{service}:GetConnection", f"{service}:GetConnectionToken"], "Resource": arn}]


def environment_variables(args: DeployRunnerArgs) -> list[aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs]:
    """The build's variables: the env, the deploy role, and the partial ARNs of the Pulumi passphrase's and access
    token's secrets (plain text, ``<variable>_SECRET_ARN``: the buildspec reads their values as the deploy role). Not
    type SECRETS_MANAGER: CodeBuild would resolve it with the service role for every build, a webhook's GitHub
    Actions job of any branch or fork included, and put the value in that job's environment (CodeBuild user guide,
    buildspec reference, ``env/secrets-manager``: the service role needs ``secretsmanager:GetSecretValue``)."""
    variables = [
        aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name="PLATFORM_ENV", value=args.env_name),
        aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name="DEPLOY_ROLE_ARN", value=args.deploy_role_arn),
    ]
    variables += [aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name=variable + SECRET_NAME_SUFFIX,
                                                                           value=args.secret_partial_arn(name))
                  for variable, name in args.secret_variables.items()]
    return variables


class DeployRunner(pulumi.ComponentResource):
    """CodeBuild project in the private subnets + its security group, service role and log group."""

    def __init__(self, name: str, args: DeployRunnerArgs, *, vpc_id: pulumi.Input[str],
                 private_subnet_ids: pulumi.Input[list[str]], security_group_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:broker:DeployRunner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        env = args.env_name

        # The runner's security group is the network layer's (the interface endpoints admit it there).
        self.security_group_id = security_group_id

        # Build logs can hold deploy output: encrypted with the runner's own key where the env asks for
        # encrypted logs (compute.kms_encrypted_logs), usable by CloudWatch Logs for this log group only.
        # Pre-created so retention (and KMS) apply from the first build.
        self.logs_key, self.log_group = own_log_group(
            self, f"{name}-logs", args, group_name=default_log_group_name("codebuild", deploy_project_name(env)),
            key_description=f"Deploy runner build logs ({env})", key_alias=f"{env}/deploy-runner-logs")

        self.role, self.role_policy = role_with_policy(
            f"{name}-role", role_name=deploy_runner_role_name(env),
            description=f"CodeBuild service role of the {env} deploy runner: VPC build, own logs, deploy role",
            permissions_boundary=boundary_arn(args.partition, args.account_id, env),
            assume_role_policy=json.dumps(trust_policy(args), sort_keys=True),
            policy=pulumi.Output.all(self.log_group.arn, private_subnet_ids).apply(
                lambda values: json.dumps(service_role_policy(args, log_group_arn=values[0], subnet_ids=values[1]),
                                          sort_keys=True)),
            opts=child)

        github = args.github_repository
        # A project with a WORKFLOW_JOB_QUEUED webhook runs, as its service role, every job of the repository that
        # names it in runs-on: a pull request's or any branch's (a workflow file of that branch), which the GitHub
        # environments and the deploy role's OIDC subjects never see (CodeBuild user guide, "Best practices for
        # using webhooks": builds a webhook triggers use the project's service role; the webhook's filters for
        # WORKFLOW_JOB_QUEUED cannot require main). So that role may not assume the deploy role: the deploy jobs
        # on the runner assume it by OIDC through their environment, and start-build runs as the deploy-runner role
        # with --service-role-override (CodeBuild API StartBuild serviceRoleOverride).
        if github:
            self.jobs_role, self.jobs_role_policy = role_with_policy(
                f"{name}-jobs-role", role_name=runner_jobs_role_name(env),
                description=f"CodeBuild service role of the {env} deploy runner's GitHub Actions jobs: VPC build, "
                            "own logs; no deploy role",
                permissions_boundary=boundary_arn(args.partition, args.account_id, env),
                assume_role_policy=json.dumps(trust_policy(args), sort_keys=True),
                policy=pulumi.Output.all(self.log_group.arn, private_subnet_ids).apply(
                    lambda values: json.dumps(service_role_policy(args, log_group_arn=values[0],
                                                                  subnet_ids=values[1], assume_deploy_role=False),
                                              sort_keys=True)),
                opts=child)
        project_role, project_role_policy = (self.jobs_role, self.jobs_role_policy) if github \
            else (self.role, self.role_policy)
        self.project = aws.codebuild.Project(
            f"{name}-project", name=deploy_project_name(env),
            description=f"Runs `nox -s up -- {env}` from inside the {env} VPC (and GitHub Actions jobs)",
            service_role=project_role.arn,
            build_timeout=args.timeout_minutes,
            concurrent_build_limit=args.concurrent_build_limit,
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                compute_type=args.compute_type, image=BUILD_IMAGE, type="LINUX_CONTAINER",
                image_pull_credentials_type="CODEBUILD",
                environment_variables=environment_variables(args)),
            # A full clone (gitCloneDepth 0: pulumi_aws ProjectSource "Use 0 for a Full checkout"): the older-commit
            # gate (shared.orchestrate.commits) judges a build's commit against main's history, and a depth-1 clone
            # has none; fetching it from inside the build needs GitHub credentials a private repository may not
            # give the build's git.
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB", location=github, buildspec=BUILDSPEC, git_clone_depth=0,
                # botocore codebuild SourceAuth: type CODECONNECTIONS, resource the connection's ARN
                auth=aws.codebuild.ProjectSourceAuthArgs(type="CODECONNECTIONS", resource=args.github_connection_arn)
                if args.github_connection_arn else None)
            if github else aws.codebuild.ProjectSourceArgs(type="NO_SOURCE", buildspec=BUILDSPEC),
            # botocore codebuild VpcConfig: vpcId, subnets (max 16), securityGroupIds (max 5).
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=vpc_id, subnets=private_subnet_ids, security_group_ids=[security_group_id]),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=self.log_group.name)),
            tags={"Name": deploy_project_name(env)},
            # CodeBuild validates the VPC configuration with the role when the project is created, so the
            # role's permissions must exist first (aws-cdk #2662 hit exactly this).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[project_role_policy]),
        )
        if github:
            aws.codebuild.Webhook(
                f"{name}-github-actions", project_name=self.project.name, build_type="BUILD",
                filter_groups=[aws.codebuild.WebhookFilterGroupArgs(filters=[
                    aws.codebuild.WebhookFilterGroupFilterArgs(type="EVENT", pattern="WORKFLOW_JOB_QUEUED")])],
                opts=pulumi.ResourceOptions(parent=self.project))
        self.register_outputs({"project_name": self.project.name, "security_group_id": security_group_id})
