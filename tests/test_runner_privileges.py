"""What a job that is not an approved deploy can do in AWS through the deploy runner: the effective grants (each
role's own policy within the env's permissions boundary, tests/iam_eval) of the runner's service roles, computed
from the broker layer's synth.

A CodeBuild-hosted GitHub Actions runner runs every job of the repository that names it, as the project's service
role (``ml-platform-<env>-runner-jobs`` with ``messaging.deploy_runner.github_repository``): a pull request's, any
branch's workflow file, a fork's in a public repository. CodeBuild resolves a SECRETS_MANAGER variable of the project
with that role for every build (CodeBuild user guide, buildspec reference, ``env/secrets-manager``), so a secret the
project takes that way reaches each of those jobs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from shared import dag, deploy_role
from shared.components.alarms import topic_name
from shared.components.deploy_runner import BUILDSPEC, SECRET_NAME_SUFFIX, SECRET_VARIABLES
from shared.envs import load_env
from shared.role_boundary import boundary_document
from shared.synth.engine import synth_env
from tests import iam_eval
from tests.deploy_role_helpers import statements_of
from tests.synth_helpers import of_type

PROJECT = "aws:codebuild/project:Project"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECRETS = {"passphrase_secret": "ml-platform/dev/pulumi-passphrase",
           "access_token_secret": "ml-platform/dev/pulumi-token"}
RUNNER = {"github_repository": "https://github.com/acme/ml-platform", **SECRETS}


def role_statements(document: dict[str, Any], policy_name: str) -> list[dict[str, Any]]:
    """The role's own statements; :func:`may` checks them and the boundary both (a bounded role gets the
    intersection: IAM user guide, "Permissions boundaries for IAM entities")."""
    (policy,) = [r for r in of_type(document, ROLE_POLICY) if r["name"] == policy_name]
    return list(json.loads(policy["inputs"]["policy"])["Statement"])


def may(statements: list[dict[str, Any]], env: Any, action: str, resource: str, **context: Any) -> bool:
    boundary = boundary_document(env)["Statement"]
    return iam_eval.allows(statements, action, resource, context) and iam_eval.allows(boundary, action, resource,
                                                                                       context)


@pytest.fixture
def runner(edit_env: Any) -> tuple[Any, dict[str, Any]]:
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner=dict(RUNNER)))
    return load_env("dev"), synth_env("dev", ["broker"])["broker"]


@pytest.mark.parametrize("role_policy", ["deploy-runner-jobs-role-policy", "deploy-runner-role-policy"],
                         ids=["jobs-role", "start-build-role"])
@pytest.mark.parametrize("key", sorted(SECRETS))
def test_no_role_of_the_runner_reads_a_pulumi_secret(runner: tuple[Any, dict[str, Any]], role_policy: str,
                                                     key: str) -> None:
    """A fork's or any branch's job on the runner has the jobs role's credentials (the build's container
    credentials) and the project's variables: neither may yield the passphrase or the Pulumi access token, which
    decrypt (or fetch) every stack's state, the broker's admin password among them."""
    env, document = runner
    account = env.account_id
    secret = f"arn:aws:secretsmanager:eu-west-1:{account}:secret:{SECRETS[key]}-Ab1Cd2"
    statements = role_statements(document, role_policy)
    assert not may(statements, env, "secretsmanager:GetSecretValue", secret)
    assert not iam_eval.grants_some_context(statements, "kms:Decrypt",
                                            f"arn:aws:kms:eu-west-1:{account}:key/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
    assert not iam_eval.allows(boundary_document(env)["Statement"], "secretsmanager:GetSecretValue", secret), \
        "the boundary would let a role of the stacks be given it"
    (project,) = of_type(document, PROJECT)
    variables = project["inputs"]["environment"]["environmentVariables"]
    assert not [v for v in variables if v.get("type") == "SECRETS_MANAGER"], "resolved for every job on the runner"


@pytest.mark.parametrize("key", sorted(SECRETS))
def test_the_start_build_reads_the_pulumi_secrets_as_the_deploy_role(runner: tuple[Any, dict[str, Any]],
                                                                      key: str) -> None:
    """``start-build`` still deploys with them: the project names each secret in ``<variable>_SECRET_ARN`` (its ARN
    without the random suffix) and the buildspec reads it only after switching to the deploy role's profile, which
    may read it."""
    env, document = runner
    (variable,) = [variable for variable, field in SECRET_VARIABLES.items() if field == key]
    (project,) = of_type(document, PROJECT)
    variables = {v["name"]: v for v in project["inputs"]["environment"]["environmentVariables"]}
    partial_arn = f"arn:aws:secretsmanager:eu-west-1:{env.account_id}:secret:{SECRETS[key]}"
    assert variables[variable + SECRET_NAME_SUFFIX] == {"name": variable + SECRET_NAME_SUFFIX, "value": partial_arn}
    assert variable not in variables
    commands = yaml.safe_load(BUILDSPEC)["phases"]["build"]["commands"]
    switch = commands.index("export AWS_PROFILE=deploy")
    (read,) = [i for i, command in enumerate(commands) if f'--secret-id "${variable}{SECRET_NAME_SUFFIX}"' in command]
    assert switch < read < len(commands) - 1, "read as the deploy role, before the deploy"
    assert f"export {variable}" in commands[read]
    policies = deploy_role.deploy_policies("dev", environ={}, documents=synth_env("dev"))
    secret = f"arn:aws:secretsmanager:eu-west-1:{env.account_id}:secret:{SECRETS[key]}-Ab1Cd2"
    assert iam_eval.allows(statements_of(policies), "secretsmanager:GetSecretValue", secret)


#: The parts of AWS's managed ``ReadOnlyAccess`` (attached to the read-only role, README "CI/CD", step 3) that read
#: data rather than configuration: object and log event reads on every resource.
READ_ONLY_ACCESS_DATA = [{"Effect": "Allow", "Resource": "*", "Action": [
    "s3:Get*", "s3:List*", "logs:Describe*", "logs:Get*", "logs:FilterLogEvents", "logs:StartQuery",
    "logs:StartLiveTail", "sns:Get*", "sns:List*", "ssm:Get*", "ssm:Describe*", "ssm:List*"]}]


def test_a_pull_request_s_preview_reads_the_state_but_no_artifact_and_no_log(edit_env: Any) -> None:
    """The read-only role is assumed by a ``pull_request`` job of any branch. It reads what a preview needs (the
    state's objects, the lock files' absence) and nothing of the platform's data that ``ReadOnlyAccess`` would
    otherwise hand it: the model artifacts in the env's buckets, the services' container logs, the deploy runner's
    build output."""
    edit_env("dev", lambda data: data.update(state={"backend_url": "s3://acme-pulumi-state",
                                                    "secrets_provider": "awskms://alias/pulumi-state"}))
    env, documents = load_env("dev"), synth_env("dev")
    role = [*READ_ONLY_ACCESS_DATA,
            *statements_of(deploy_role.deploy_policies("dev", environ={}, documents=documents, read_only=True))]
    assert iam_eval.allows(role, "s3:GetObject", "arn:aws:s3:::acme-pulumi-state/.pulumi/stacks/network/dev.json")
    assert iam_eval.allows(role, "s3:ListBucket", "arn:aws:s3:::acme-pulumi-state")
    buckets = [str(r["inputs"]["bucket"]) for document in documents.values() for r in document["resources"]
               if r["type"] == "aws:s3/bucket:Bucket"]
    assert buckets
    for bucket in buckets:
        for action in ("s3:GetObject", "s3:GetObjectVersion"):
            assert not iam_eval.allows(role, action, f"arn:aws:s3:::{bucket}/models/inference/v1/model.bin"), bucket
        assert iam_eval.allows(role, "s3:GetBucketPolicy", f"arn:aws:s3:::{bucket}"), "a preview reads configuration"
    account = env.account_id
    for group in ("/platform/dev/inference", "/aws/codebuild/ml-platform-dev-deploy",
                  "/aws/amazonmq/broker/b-0123abcd-4567-89ef-0123-456789abcdef/general"):
        arn = f"arn:aws:logs:eu-west-1:{account}:log-group:{group}"
        for action in ("logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery"):
            assert not iam_eval.allows(role, action, arn) and not iam_eval.allows(
                role, action, f"{arn}:log-stream:ecs/app/0123"), (group, action)
        assert iam_eval.allows(role, "logs:DescribeLogGroups", arn)


def test_a_pull_request_s_job_reads_no_state_that_holds_the_broker_admin_password(edit_env: Any) -> None:
    """The broker's state holds the admin password as generated (its RandomPassword, the broker's users, the
    secret's first version), messaging's as its provider's configuration: the read role, which a pull request's job
    of any branch assumes, reads no object the self-managed backend writes for them (pkg/backend/diy/store.go:
    the checkpoint, compressed or not, its .bak, the history's checkpoints, the backups, an update's journal), of
    any env sharing the bucket, nor any version of one, nor the admin or services' secrets themselves. The other
    layers' states stay readable: their previews run."""
    edit_env("dev", lambda data: data.update(state={"backend_url": "s3://acme-pulumi-state/platform",
                                                    "secrets_provider": "awskms://alias/pulumi-state"}))
    documents = synth_env("dev")
    role = [*READ_ONLY_ACCESS_DATA,
            *statements_of(deploy_role.deploy_policies("dev", environ={}, documents=documents, read_only=True))]
    root = "arn:aws:s3:::acme-pulumi-state/platform/.pulumi"
    for layer in ("broker", "messaging"):
        for env_name in ("dev", "prod"):
            for key in (f"stacks/{layer}/{env_name}.json", f"stacks/{layer}/{env_name}.json.gz",
                        f"stacks/{layer}/{env_name}.json.bak",
                        f"history/{layer}/{env_name}/{env_name}-1764700000000000000.checkpoint.json",
                        f"backups/{layer}/{env_name}/{env_name}.1764700000000000000.json",
                        f"journal/{layer}/{env_name}/0001.json"):
                for action in ("s3:GetObject", "s3:GetObjectVersion"):
                    assert not iam_eval.allows(role, action, f"{root}/{key}"), (action, key)
    for layer in dag.pull_request_layers():
        assert iam_eval.allows(role, "s3:GetObject", f"{root}/stacks/{layer}/dev.json"), layer
    env = load_env("dev")
    base = f"arn:aws:secretsmanager:{env.region}:{env.account_id}:secret:platform/dev"
    for name in ("broker/admin", "messaging/gateway", "messaging-monitor/queue-metrics"):
        assert not iam_eval.grants_some_context(role, "secretsmanager:GetSecretValue", f"{base}/{name}-AbCdEf"), name


def test_a_pull_request_s_job_reads_no_logs_insights_result_of_an_operator_s_query(edit_env: Any) -> None:
    """An operator's Logs Insights query over the container logs (README "Alarms": a crash loop's reasons, then the
    app's own lines) leaves its results readable for days by query id, which DescribeQueries lists (ReadOnlyAccess:
    ``logs:Describe*``). GetQueryResults and GetLogRecord name no log group (their request is a query id, a record
    pointer), and a StartQuery may name none either (its query string's SOURCE command selects groups by prefix,
    botocore logs StartQuery), so no deny on the env's groups covers them: the read role, which no preview or gate
    lets query, is refused them outright."""
    documents = synth_env("dev")
    role = [*READ_ONLY_ACCESS_DATA,
            *statements_of(deploy_role.deploy_policies("dev", environ={}, documents=documents, read_only=True))]
    assert iam_eval.allows(READ_ONLY_ACCESS_DATA, "logs:GetQueryResults"), "ReadOnlyAccess grants it"
    for action in ("logs:GetQueryResults", "logs:GetLogRecord", "logs:StartQuery"):
        assert not iam_eval.allows(role, action, "*"), action
    assert iam_eval.allows(role, "logs:DescribeLogGroups", "*"), "a preview still reads configuration"


def test_a_pull_request_s_job_reads_no_alarm_subscription_s_endpoint() -> None:
    """An https alarm subscription's endpoint carries a credential (README "Alarms": basic auth, which the broker's
    state keeps as a secret). ListSubscriptionsByTopic lists such a URL without its user and password, but
    GetSubscriptionAttributes returns it whole ("HTTPS URLs are only retrievable from the Amazon SNS
    GetSubscriptionAttributes API action": SNS developer guide, "Fanout Amazon SNS notifications to HTTPS
    endpoints"), and ReadOnlyAccess grants ``sns:Get*`` on ``*``: the read role is refused it. No preview it runs
    refreshes a subscription (they are broker's, which pull requests do not preview), and the account preflight,
    which previews run too, lists the topic's subscriptions only."""
    documents = synth_env("dev")
    env = load_env("dev")
    role = [*READ_ONLY_ACCESS_DATA,
            *statements_of(deploy_role.deploy_policies("dev", environ={}, documents=documents, read_only=True))]
    topic = f"arn:aws:sns:{env.region}:{env.account_id}:{topic_name(env.name)}"
    assert iam_eval.allows(READ_ONLY_ACCESS_DATA, "sns:GetSubscriptionAttributes", f"{topic}:0b1c2d3e"), "granted"
    for resource in (f"{topic}:0b1c2d3e", "*"):
        assert not iam_eval.allows(role, "sns:GetSubscriptionAttributes", resource), resource
    assert iam_eval.allows(role, "sns:ListSubscriptionsByTopic", topic), "the account preflight lists them"
    assert "sns:ListSubscriptionsByTopic" in deploy_role.PREFLIGHT_ACTIONS


def test_a_state_bucket_that_is_one_of_the_env_s_buckets_stays_readable() -> None:
    """A state backend in a bucket the stacks name (an operator's choice) is read by every preview: never denied."""
    documents = synth_env("dev")
    env = load_env("dev")
    resources = [r for document in documents.values() for r in document["resources"]]
    (artifacts,) = [str(r["inputs"]["bucket"]) for r in resources if r["type"] == "aws:s3/bucket:Bucket"
                    and str(r["inputs"]["bucket"]).startswith("ml-artifacts-")]
    denied = deploy_role.read_denials(env, resources, artifacts)
    checkpoint = f"arn:aws:s3:::{artifacts}/.pulumi/stacks/network/dev.json"
    assert iam_eval.allows([*READ_ONLY_ACCESS_DATA, *denied], "s3:GetObject", checkpoint)
    assert not iam_eval.allows([*READ_ONLY_ACCESS_DATA, *deploy_role.read_denials(env, resources, "other")],
                               "s3:GetObject", checkpoint)


def test_a_pull_request_s_job_reads_no_parameter_value_but_the_published_contracts() -> None:
    """ReadOnlyAccess grants ``ssm:Get*`` on ``*``, and a SecureString under the account's AWS managed ``aws/ssm`` key
    decrypts for any principal of the account that may call SSM (an AWS managed key's policy allows its use through
    the service): a team's own secrets in Parameter Store would be open to any branch's job. The read role reads the
    published contracts' parts (shared.published) and no other parameter's value; listing and describing stay."""
    from shared.published import parameter_name

    documents = synth_env("dev")
    env = load_env("dev")
    role = [*READ_ONLY_ACCESS_DATA,
            *statements_of(deploy_role.deploy_policies("dev", environ={}, documents=documents, read_only=True))]
    base = f"arn:aws:ssm:{env.region}:{env.account_id}:parameter"
    other = f"{base}/team/db-password"
    assert iam_eval.allows(READ_ONLY_ACCESS_DATA, "ssm:GetParameter", other), "granted"
    for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory", "ssm:GetParametersByPath"):
        assert not iam_eval.allows(role, action, other), action
    for layer in ("broker", "messaging"):
        assert iam_eval.allows(role, "ssm:GetParameter", f"{base}{parameter_name('dev', layer, 3)}"), layer
    assert not iam_eval.allows(role, "ssm:GetParameter", f"{base}{parameter_name('staging', 'broker')}")
    assert iam_eval.allows(role, "ssm:DescribeParameters", "*")
