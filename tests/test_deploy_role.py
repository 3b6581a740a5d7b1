"""The deploy role's policy (shared/deploy_role.py, `nox -s roles`): everything an env's `up`, `refresh` and `destroy`
call is granted, IAM only on the stacks' own roles, and the documents are valid IAM within its size quotas."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pulumi.dynamic
import pytest

from shared import REPO_ROOT, deploy_role
from shared.envs import load_env
from shared.orchestrate.account import account_wide_roles, linked_roles, roles_declared
from shared.synth.engine import synth_env
from tests import iam_eval
from tests.iam_eval import as_list
from tests.synth_helpers import synth_layers

ENVS = ("dev", "staging", "prod")

#: IAM prefix -> botocore service whose signingName (else endpointPrefix) it must be. CloudWatch's API is
#: "monitoring" to botocore, "cloudwatch" to IAM (Service Authorization Reference, Amazon CloudWatch).
BOTOCORE_SERVICE = {
    "acm": "acm", "application-autoscaling": "application-autoscaling", "appmesh": "appmesh", "budgets": "budgets",
    "cloudwatch": "cloudwatch",
    "codebuild": "codebuild", "codeconnections": "codeconnections", "codestar-connections": "codestar-connections",
    "ec2": "ec2", "ecr": "ecr", "ecs": "ecs", "elasticloadbalancing": "elbv2", "events": "events", "iam": "iam",
    "kms": "kms", "lambda": "lambda", "logs": "logs", "mq": "mq", "route53": "route53", "s3": "s3",
    "secretsmanager": "secretsmanager", "servicediscovery": "servicediscovery", "servicequotas": "service-quotas",
    "sms-voice": "pinpoint-sms-voice-v2", "sns": "sns", "sqs": "sqs", "ssm": "ssm", "sts": "sts",
}
IAM_PREFIX_EXCEPTIONS = {"cloudwatch": "monitoring"}
#: actions that are permissions only, no API operation (Service Authorization Reference: IAM's PassRole, AWS
#: CodeConnections' PassConnection and UseConnection; KMS's ReEncrypt operation authorizes kms:ReEncryptFrom on the
#: source key and kms:ReEncryptTo on the destination; CloudWatch Logs' vended-log delivery actions, which the services
#: that deliver logs check on the caller, with no API operation of their own)
PERMISSION_ONLY = {"iam:PassRole", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                   # AWS Cloud Map's namespace sharing through AWS RAM (held to the env's tags)
                   "servicediscovery:DeleteResourcePolicy", "servicediscovery:PutResourcePolicy",
                   *(f"logs:{action}" for action in ("CreateLogDelivery", "DeleteLogDelivery", "GetLogDelivery",
                                                     "ListLogDeliveries", "UpdateLogDelivery")),
                   *(f"{prefix}:{action}" for prefix in ("codeconnections", "codestar-connections")
                     for action in ("GetConnectionToken", "PassConnection", "UseConnection"))}


# -- the policies' statements, judged by the tests' IAM evaluator (tests/iam_eval.py) --------------------------------

def statements(policies: list[deploy_role.ManagedPolicy]) -> Iterator[dict[str, Any]]:
    for policy in policies:
        yield from policy.document["Statement"]


def allowed(policies: list[deploy_role.ManagedPolicy], action: str, resource: str = "*",
            context: dict[str, Any] | None = None) -> bool:
    """Whether the policies allow ``action`` on ``resource`` for the request context ``context``."""
    return iam_eval.allows(statements(policies), action, resource, context)


def tagged(env: Any, extra: dict[str, Any] | None = None, *, request: bool = False,
           resource: bool = True) -> dict[str, Any]:
    """The request context of a call on a role the env's compute stack created (its default tags on the role, and
    with ``request`` in the request too, as CreateRole sends them)."""
    tags = env.common_tags("compute")
    context: dict[str, Any] = dict(extra or {})
    if resource:
        context.update({f"iam:ResourceTag/{key}": value for key, value in tags.items()})
    if request:
        context.update({f"aws:RequestTag/{key}": value for key, value in tags.items()})
        context["aws:TagKeys"] = sorted(tags)
    return context


# -- the envs: the shipped ones, and one with every optional feature on ---------------------------------------------

def _everything_on(data: dict[str, Any]) -> None:
    data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True,
                    "canaries": {"inference": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}}
    data["compute"].update(public_gateway=True, image_source=None,
                           certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/0f0e0d0c-0b0a-0908-0706-050403020100")
    data["discovery"] = {"static_instances": [{"service": "inference", "instance_id": "legacy-1", "ipv4": "10.10.1.10",
                                               "port": 8080}]}
    data["alarms"] = {"subscriptions": [{"protocol": "https", "endpoint": "https://hooks.example.com/alarms"}],
                      "monthly_cost_usd": 500}
    data["messaging"]["deploy_runner"] = {
        "github_repository": "https://github.com/acme/platform",
        # the deploy role reads them in the runner's build (its DeployRunnerSecrets statement); no runner role does
        "passphrase_secret": "ml-platform/dev/pulumi-passphrase", "access_token_secret": "ml-platform/dev/pulumi-token",
        "github_connection_arn": "arn:aws:codeconnections:eu-west-1:111111111111:connection/"
                                 "0f0e0d0c-0b0a-0908-0706-050403020100"}


@pytest.fixture(scope="module")
def shipped() -> dict[str, tuple[Any, dict[str, Any], list[deploy_role.ManagedPolicy]]]:
    found = {}
    for name in ENVS:
        documents = synth_layers(name)
        found[name] = (load_env(name), documents, deploy_role.deploy_policies(name, environ={}, documents=documents))
    return found


@pytest.fixture
def everything(edit_env: Any) -> tuple[Any, dict[str, Any], list[deploy_role.ManagedPolicy]]:
    edit_env("dev", _everything_on)
    documents = synth_env("dev")
    return load_env("dev"), documents, deploy_role.deploy_policies("dev", environ={}, documents=documents)


def _all_cases(shipped: dict[str, Any], everything: Any) -> list[tuple[str, Any, dict[str, Any], list[Any]]]:
    return [*((name, *case) for name, case in shipped.items()), ("dev with every feature", *everything)]


def _resources(documents: dict[str, Any]) -> list[dict[str, Any]]:
    return [resource for document in documents.values() for resource in document["resources"]]


def _role_arn(env: Any, name: str) -> str:
    return f"arn:aws:iam::{env.account_id}:role/{name}"


# -- every resource type maps to what it calls ----------------------------------------------------------------------

def test_every_synthesized_resource_type_is_granted_its_services(shipped: Any, everything: Any) -> None:
    for label, _env, documents, policies in _all_cases(shipped, everything):
        for resource in _resources(documents):
            for prefix in deploy_role.services_of_type(resource["type"]):
                if prefix in ("iam", "s3", "route53", "kms", "ecs", "secretsmanager", "logs", "cloudwatch", "mq",
                          "elasticloadbalancing",
                          *deploy_role.NAMED_STAR_ACTIONS):
                    continue  # scoped: the tests below
                assert allowed(policies, f"{prefix}:AnyAction"), f"{label}: {resource['type']} needs {prefix}"


def test_the_feature_env_synthesizes_the_optional_types(everything: Any) -> None:
    """The wide env really exercises what the shipped envs do not (else the test above proves nothing of them)."""
    types = {resource["type"] for resource in _resources(everything[1])}
    assert {"aws:appmesh/mesh:Mesh", "aws:lb/loadBalancer:LoadBalancer", "aws:servicediscovery/instance:Instance",
            "aws:sns/topicSubscription:TopicSubscription", "aws:codebuild/webhook:Webhook"} <= types
    # and the role statements the shipped envs lack (checked against the role boundary below)
    sids = {statement.get("Sid") for _policy, statement in _role_statements(everything[1])}
    assert "UseGitHubConnection" in sids, sids
    assert "DeployRunnerSecrets" in {statement["Sid"] for policy in everything[2]
                                     for statement in policy.document["Statement"]}


def test_a_type_without_a_mapping_fails_naming_it() -> None:
    documents = {"network": {"resources": [{"type": "aws:opensearch/domain:Domain", "name": "search", "urn": "u",
                                             "inputs": {}}]}}
    with pytest.raises(deploy_role.UnmappedTypeError, match=r"aws:opensearch/domain:Domain .*TYPE_SERVICES"):
        deploy_role.deploy_statements(load_env("dev"), documents, backend_url="file:///tmp/state")


def _constructed_types() -> dict[str, str]:
    """Every ``aws.<module>.<Resource>(...)`` and ``aws.<module>.get_<x>(...)`` the components and stacks call ->
    its type (or function) token, read from pulumi_aws's source."""
    import pulumi_aws as aws

    found: dict[str, str] = {}
    files = [*sorted((REPO_ROOT / "shared" / "components").glob("*.py")),
             *sorted((REPO_ROOT / "stacks").glob("*/__main__.py")), REPO_ROOT / "shared" / "layer.py"]
    for path in files:
        for module, name in re.findall(r"\baws\.([a-z0-9_]+)\.([A-Za-z][A-Za-z0-9_]*)\(", path.read_text()):
            target = getattr(getattr(aws, module), name)
            if inspect.isclass(target) and issubclass(target, __import__("pulumi").CustomResource):
                source = inspect.getsource(target._internal_init)  # type: ignore[attr-defined]
            elif inspect.isfunction(target) and name.startswith("get_"):
                source = inspect.getsource(target)
            else:
                continue
            tokens = re.findall(r"'(aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)'", source)
            found[f"{path.relative_to(REPO_ROOT)}: aws.{module}.{name}"] = tokens[0]
    return found


def test_every_resource_and_data_source_the_code_declares_is_mapped() -> None:
    """Also the types no shipped env synthesizes: a new ``aws.x.Y(...)`` anywhere in the programs needs its entry."""
    constructed = _constructed_types()
    assert len(constructed) > 50
    unmapped = sorted(f"{where} ({token})" for where, token in constructed.items()
                      if token not in deploy_role.TYPE_SERVICES and token not in deploy_role.INVOKE_SERVICES)
    assert unmapped == [], f"add these to TYPE_SERVICES / INVOKE_SERVICES in shared/deploy_role.py: {unmapped}"


# -- IAM: the stacks' roles, and only them ---------------------------------------------------------------------------

def test_the_preflight_knows_every_role_a_layer_names_after_the_env(shipped: Any, everything: Any) -> None:
    # IAM names are account-wide: a role a layer names that the preflight does not look for lets an `up` of a layer
    # whose stack does not exist here (an env of this name deployed to another region of the account) stop at
    # CreateRole (EntityAlreadyExists) midway through the layer, instead of being refused before anything ran.
    for label, env, documents, _policies in _all_cases(shipped, everything):
        for layer, document in documents.items():
            named = sorted(str(resource["inputs"]["name"]) for resource in document["resources"]
                           if resource["type"] == "aws:iam/role:Role" and resource["inputs"].get("name"))
            known = sorted(role.role_name for role in account_wide_roles(env, [layer]))
            assert named == known, f"{label}, {layer}: shared.orchestrate.account.account_wide_roles"
            # and how many roles it creates in all, which the preflight holds against the account's IAM quota
            created = sum(1 for resource in document["resources"] if resource["type"] == "aws:iam/role:Role")
            assert roles_declared(env, [layer]).get(layer, 0) == created, f"{label}, {layer}: roles_declared"


def test_every_role_the_synth_creates_is_manageable_and_nothing_else(shipped: Any, everything: Any) -> None:
    for label, env, documents, policies in _all_cases(shipped, everything):
        resources = _resources(documents)
        # the role names as created: a RolePolicy's role input is the mock's name for it (auto-named: 7 characters)
        names = {str(r["inputs"]["role"]) for r in resources if r["type"] == "aws:iam/rolePolicy:RolePolicy"}
        names |= {str(r["inputs"]["name"]) for r in resources
                  if r["type"] == "aws:iam/role:Role" and r["inputs"].get("name")}
        names |= {role.role_name for role in account_wide_roles(env, ["broker", "messaging"])}
        assert names
        boundary = {"iam:PermissionsBoundary": _boundary_arn(env)}  # every role carries it (its create sends it)
        for name in names:
            # the compute layer's roles carry the env's default tags, sent in CreateRole's request too
            context = tagged(env, boundary, request=True) if re.search(r"-(execution|task)-.{7}$", name) else boundary
            for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:DeleteRole",
                           "iam:TagRole", "iam:GetRole", "iam:ListInstanceProfilesForRole",
                           # the role's delete removes what others attached (forceDetachPolicies) before DeleteRole
                           "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"):
                assert allowed(policies, action, _role_arn(env, name), context), f"{label}: {action} on role {name}"
            foreign = {**context, "iam:PolicyARN": f"arn:aws:iam::{env.account_id}:policy/security-team-audit"}
            assert allowed(policies, "iam:DetachRolePolicy", _role_arn(env, name), foreign), f"{label}: {name}"
        for other in ("admin", "OrganizationAccountAccessRole", "ml-platform-deployer", "gateway-execution-12345678",
                      "gateway-execution-x-1234567"):
            for context in ({}, tagged(env, request=True), boundary, tagged(env, boundary, request=True)):
                assert not allowed(policies, "iam:PutRolePolicy", _role_arn(env, other), context), f"{label}: {other}"
                assert not allowed(policies, "iam:PassRole", _role_arn(env, other),
                                   {**context, "iam:PassedToService": "ecs-tasks.amazonaws.com"}), f"{label}: {other}"


def test_each_role_may_be_passed_only_to_the_service_it_trusts(shipped: Any, everything: Any) -> None:
    for label, env, documents, policies in _all_cases(shipped, everything):
        resources = _resources(documents)
        by_urn = {r["urn"]: r for r in resources}
        # every role is checked: by its RolePolicy's name for it, or by its own name
        with_policy = {p["property_dependencies"]["role"][0] for p in resources
                       if p["type"] == "aws:iam/rolePolicy:RolePolicy"}
        for role in (r for r in resources if r["type"] == "aws:iam/role:Role" and r["urn"] not in with_policy):
            assert role["inputs"].get("name"), f"{label}: {role['name']} has neither a name nor an inline policy"
            for service in deploy_role.trusted_services(role):
                assert allowed(policies, "iam:PassRole", _role_arn(env, role["inputs"]["name"]),
                               {"iam:PassedToService": service}), (label, role["name"], service)
        for policy in (r for r in resources if r["type"] == "aws:iam/rolePolicy:RolePolicy"):
            role = by_urn[policy["property_dependencies"]["role"][0]]
            services = deploy_role.trusted_services(role)
            arn = _role_arn(env, str(policy["inputs"]["role"]))
            assert services, f"{label}: {role['name']} trusts no service"
            for service in services:
                assert allowed(policies, "iam:PassRole", arn, tagged(env, {"iam:PassedToService": service})), \
                    (label, arn, service)
            assert not allowed(policies, "iam:PassRole", arn,
                               tagged(env, {"iam:PassedToService": "ec2.amazonaws.com"}))
            assert not allowed(policies, "iam:PassRole", arn), f"{label}: PassRole of {arn} without a condition"


def test_service_linked_roles_only_for_the_preflights_services(shipped: Any, everything: Any) -> None:
    from shared.dag import order

    for label, env, _documents, policies in _all_cases(shipped, everything):
        arn = f"arn:aws:iam::{env.account_id}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
        for role in linked_roles(env, order()):
            assert allowed(policies, "iam:CreateServiceLinkedRole", arn, {"iam:AWSServiceName": role.service}), role
            assert allowed(policies, "iam:GetRole", arn)
            # a missing role's read is authorized without its path (IAM knows none): still a read, not AccessDenied
            assert allowed(policies, "iam:GetRole", _role_arn(env, role.role_name)), role
        assert not allowed(policies, "iam:CreateServiceLinkedRole", arn,
                           {"iam:AWSServiceName": "ec2scheduled.amazonaws.com"}), label
    services = {role.service for role in linked_roles(everything[0], order())}
    assert {"appmesh.amazonaws.com", "elasticloadbalancing.amazonaws.com"} <= services


def test_no_iam_action_on_every_resource_and_no_admin(shipped: Any, everything: Any) -> None:
    for label, _env, _documents, policies in _all_cases(shipped, everything):
        for statement in statements(policies):
            actions = as_list(statement["Action"])
            assert "*" not in actions and "*:*" not in actions, label
            assert not any(action.startswith("iam:") and "*" in action for action in actions), (label, statement)
            # an IAM read with no resource type (the account's count of roles) is the one exception
            if any(action.startswith(("iam:", "s3:")) and action not in deploy_role.STAR_ONLY_IAM_READS
                   for action in actions):
                assert "*" not in as_list(statement["Resource"]), f"{label}: {statement['Sid']} on *"


#: What terraform-provider-aws calls on aws_kms_key (internal/service/kms/key.go: resourceKeyCreate, findKeyInfo,
#: resourceKeyUpdate, updateTags, resourceKeyDelete) and aws_kms_alias (alias.go: CreateAlias, FindAliasByName's
#: ListAliases, UpdateAlias, DeleteAlias), create to import (the import is a read); and what the services that
#: encrypt with the stacks' keys ask of the caller (ECR's CreateRepository: CreateGrant, RetireGrant, DescribeKey;
#: Secrets Manager's CreateSecret, PutSecretValue and GetSecretValue: GenerateDataKey, Decrypt; Amazon MQ and
#: Lambda: CreateGrant, Encrypt)
KMS_KEY_CALLS = (
    "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags",
    "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription",
    "kms:PutKeyPolicy", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CreateAlias",
    "kms:UpdateAlias", "kms:DeleteAlias", "kms:CreateGrant", "kms:RetireGrant", "kms:Encrypt", "kms:Decrypt",
    "kms:GenerateDataKey")
KMS_ALIAS_CALLS = ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias")
#: Actions the provider never calls on these types that a stolen role must not have on any key (a copy of the key in
#: another region under another policy, a key of foreign material, a custom key store)
KMS_NEVER = ("kms:ReplicateKey", "kms:ImportKeyMaterial", "kms:CreateCustomKeyStore", "kms:GenerateDataKeyPair",
             "kms:Sign", "kms:UpdatePrimaryRegion")


def test_kms_only_the_provider_calls_on_the_envs_keys_and_aliases(shipped: Any, everything: Any) -> None:
    """KMS is not service-wide: every call the provider (and the services using the stacks' keys for the caller)
    makes on a key of the env's account and region and on each alias the synth creates is allowed; a key of another
    account or region, another env's or team's alias, and an action the provider never calls are not."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        region, account = env.region, env.account_id
        key = f"arn:aws:kms:{region}:{account}:key/0f0e0d0c-0b0a-0908-0706-050403020100"
        aliases = [str(r["inputs"]["name"]) for r in _resources(documents) if r["type"] == "aws:kms/alias:Alias"]
        assert aliases, label
        for action in ("kms:CreateKey", "kms:ListAliases"):  # Service Authorization Reference, KMS: "*" only
            assert allowed(policies, action), (label, action)
        for action in KMS_KEY_CALLS:
            assert allowed(policies, action, key), (label, action)
            assert not allowed(policies, action, key.replace(account, "999999999999")), (label, action)
            assert not allowed(policies, action, key.replace(region, "us-east-2")), (label, action)
        for alias in aliases:
            for action in KMS_ALIAS_CALLS:
                assert allowed(policies, action, f"arn:aws:kms:{region}:{account}:{alias}"), (label, alias, action)
        other_env = "prod" if env.name != "prod" else "dev"
        for alias in (f"alias/ml-platform/{other_env}/alarms", "alias/payments", f"alias/ml-platform/{env.name}x/a"):
            for action in KMS_ALIAS_CALLS:
                assert not allowed(policies, action, f"arn:aws:kms:{region}:{account}:{alias}"), (label, alias)
        for action in KMS_NEVER:
            assert not iam_eval.grants_some_context(statements(policies), action, key), (label, action)
            assert not iam_eval.grants_some_context(statements(policies), action), (label, action)


def test_the_deploy_roles_key_actions_are_what_every_key_of_the_stacks_delegates_to_iam(
        shipped: Any, everything: Any) -> None:
    """On the stacks' keys the deploy role holds exactly what their policies let IAM grant (more would be dead, less
    would deny the provider a call the key allows), and every alias the synth creates is under the granted prefix."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        key = f"arn:aws:kms:{env.region}:{env.account_id}:key/0f0e0d0c-0b0a-0908-0706-050403020100"
        for resource in _resources(documents):
            if resource["type"] != "aws:kms/key:Key":
                continue
            policy = json.loads(resource["inputs"]["policy"])
            root = f"arn:aws:iam::{env.account_id}:root"
            delegated = {action for statement in policy["Statement"]
                         if statement["Effect"] == "Allow" and statement.get("Principal") == {"AWS": root}
                         for action in as_list(statement["Action"])}
            assert delegated == set(deploy_role.KMS_KEY_ACTIONS), (label, resource["name"])
            assert all(allowed(policies, action, key) for action in delegated), (label, resource["name"])
        prefix = f"alias/ml-platform/{env.name}/"
        for resource in _resources(documents):
            if resource["type"] == "aws:kms/alias:Alias":
                assert str(resource["inputs"]["name"]).startswith(prefix), (label, resource["inputs"]["name"])


#: What terraform-provider-aws calls on aws_ecs_cluster (cluster.go: CreateCluster, DescribeClusters, UpdateCluster,
#: PutClusterCapacityProviders, DeleteCluster, updateTags), aws_ecs_service (service.go: CreateService, DescribeServices
#: in every read and wait, UpdateService, the drain's UpdateService and DeleteService; tags; the steady-state wait's
#: deployment reads) and aws_ecs_task_definition (task_definition.go: RegisterTaskDefinition, DescribeTaskDefinition,
#: DeregisterTaskDefinition, DeleteTaskDefinitions; tags), by the resource the Service Authorization Reference names
#: for each; the orchestrator's image check calls DescribeServices and DescribeTaskDefinition, and
#: ListServiceDeployments on each service (shared/images.py: running_images, rolled_back_deployments)
ECS_CLUSTER_CALLS = ("ecs:CreateCluster", "ecs:DescribeClusters", "ecs:UpdateCluster", "ecs:UpdateClusterSettings",
                     "ecs:PutClusterCapacityProviders", "ecs:DeleteCluster", "ecs:TagResource", "ecs:UntagResource",
                     "ecs:ListTagsForResource")
ECS_SERVICE_CALLS = ("ecs:CreateService", "ecs:DescribeServices", "ecs:UpdateService", "ecs:DeleteService",
                     "ecs:TagResource", "ecs:UntagResource", "ecs:ListTagsForResource", "ecs:ListServiceDeployments",
                     "ecs:DescribeServiceDeployments")
ECS_TASK_DEFINITION_CALLS = ("ecs:RegisterTaskDefinition", "ecs:TagResource", "ecs:UntagResource",
                             "ecs:ListTagsForResource", "ecs:DeleteTaskDefinitions")
ECS_STAR_CALLS = ("ecs:DescribeTaskDefinition", "ecs:DeregisterTaskDefinition")


def test_ecs_only_the_envs_cluster_services_tasks_and_task_definitions(shipped: Any, everything: Any) -> None:
    """ECS is not service-wide: every call the provider and the orchestrator make on the env's cluster, services
    (canary units too) and task definitions is allowed; Application Auto Scaling's checks of the caller
    (DescribeServices, UpdateService) on ``*``, where the synth has a scaling policy; any other action on another
    cluster's services and tasks (CreateService, DeleteService, ExecuteCommand, StopTask), another family's task
    definitions, a run of the env's task definition in another cluster and the account's ECS settings are not."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        base = f"arn:aws:ecs:{env.region}:{env.account_id}:"

        def arn(resource: str, base: str = base) -> str:
            return base + resource

        resources = _resources(documents)
        [cluster] = [str(r["inputs"]["name"]) for r in resources if r["type"] == "aws:ecs/cluster:Cluster"]
        services = [str(r["inputs"]["name"]) for r in resources if r["type"] == "aws:ecs/service:Service"]
        families = [str(r["inputs"]["family"]) for r in resources
                    if r["type"] == "aws:ecs/taskDefinition:TaskDefinition"]
        assert services and families, label
        on_cluster = {"ecs:cluster": arn(f"cluster/{cluster}")}
        for action in ECS_CLUSTER_CALLS:
            assert allowed(policies, action, arn(f"cluster/{cluster}")), (label, action)
        for service in services:
            for action in ECS_SERVICE_CALLS:
                assert allowed(policies, action, arn(f"service/{cluster}/{service}"), on_cluster), (label, action)
        for family in families:
            for action in ECS_TASK_DEFINITION_CALLS:
                assert allowed(policies, action, arn(f"task-definition/{family}:7")), (label, action)
                assert allowed(policies, action, arn(f"task-definition/{family}")), (label, action)
        for action in ECS_STAR_CALLS:
            assert allowed(policies, action), (label, action)
        task = arn(f"task/{cluster}/0123456789abcdef0123456789abcdef")
        assert allowed(policies, "ecs:DescribeTasks", task, on_cluster), label

        other = "payments"
        elsewhere = {"ecs:cluster": arn(f"cluster/{other}")}
        # RegisterScalableTarget checks the caller's DescribeServices and UpdateService (ECS developer guide, "IAM
        # permissions required for Amazon ECS service auto scaling") on a resource no source names (Application Auto
        # Scaling user guide, "Permissions validation for API calls on target resources": no parameters, or made-up
        # ARNs in account 12345): whatever it names, held to the env's cluster it fails every compute up
        assert any(resource["type"] == deploy_role.SCALING_POLICY_TYPE for resource in resources), label
        for action in deploy_role.ECS_AUTOSCALING_ACTIONS:
            for resource in ("*", arn(f"service/{other}/api"), arn("service/default/x").replace(env.account_id,
                                                                                                "12345")):
                assert allowed(policies, action, resource), (label, action, resource)
        for action in ("ecs:CreateService", "ecs:DeleteService", "ecs:TagResource", "ecs:ListServiceDeployments"):
            assert not allowed(policies, action, arn(f"service/{other}/api"), elsewhere), (label, action)
        for action in ("ecs:ExecuteCommand", "ecs:StopTask", "ecs:DescribeTasks"):
            assert not allowed(policies, action, arn(f"task/{other}/0123456789abcdef0123456789abcdef"),
                               elsewhere), (label, action)
        for action in ("ecs:DeleteCluster", "ecs:UpdateCluster", "ecs:ExecuteCommand"):
            assert not allowed(policies, action, arn(f"cluster/{other}")), (label, action)
        # RegisterTaskDefinition holds whichever resource ECS authorizes it against (the family's ARN or "*"); another
        # family's revision cannot be tagged, run or deleted by its ARN
        assert allowed(policies, "ecs:RegisterTaskDefinition"), label
        for action in ("ecs:TagResource", "ecs:RunTask", "ecs:DeleteTaskDefinitions"):
            assert not allowed(policies, action, arn("task-definition/payments-api:3")), (label, action)
        assert not allowed(policies, "ecs:RunTask", arn(f"task-definition/{families[0]}:3"), elsewhere), label
        assert allowed(policies, "ecs:RunTask", arn(f"task-definition/{families[0]}:3"), on_cluster), label
        for action in ("ecs:PutAccountSetting", "ecs:PutAccountSettingDefault", "ecs:DeleteAccountSetting"):
            assert not iam_eval.grants_some_context(statements(policies), action), (label, action)
        key = arn(f"cluster/{cluster}").replace(env.account_id, "999999999999")
        assert not allowed(policies, "ecs:DeleteCluster", key), label


def test_without_a_scaling_policy_no_other_service_is_updated(shipped: Any) -> None:
    """Only Application Auto Scaling's checks put DescribeServices and UpdateService on ``*``: a synth without a
    scaling policy describes and updates only the env's cluster's services, and the checks' grant widens nothing
    else."""
    from shared.components.compute import cluster_name

    env = shipped["dev"][0]
    cluster = cluster_name(env.name)
    base = f"arn:aws:ecs:{env.region}:{env.account_id}:"
    for scaling in (False, True):
        document = {"Version": "2012-10-17", "Statement": deploy_role.ecs_statements(env, scaling=scaling)}
        policies = [deploy_role.ManagedPolicy("p", document)]
        for action in deploy_role.ECS_AUTOSCALING_ACTIONS:
            assert allowed(policies, action, f"{base}service/{cluster}/api"), (scaling, action)
            assert allowed(policies, action, f"{base}service/payments/api") is scaling, (scaling, action)
            assert allowed(policies, action, "*") is scaling, (scaling, action)
        for action in ("ecs:CreateService", "ecs:DeleteService", "ecs:TagResource"):
            assert not allowed(policies, action, f"{base}service/payments/api"), (scaling, action)
        for action in ("ecs:StopTask", "ecs:ExecuteCommand", "ecs:DescribeTasks"):
            assert not allowed(policies, action, f"{base}task/payments/0123456789abcdef0123456789abcdef"), \
                (scaling, action)
        for action in ("ecs:DeleteCluster", "ecs:UpdateCluster", "ecs:ExecuteCommand"):
            assert not allowed(policies, action, f"{base}cluster/payments"), (scaling, action)
        assert not iam_eval.grants_some_context(statements(policies), "ecs:PutAccountSetting"), scaling


def test_the_envs_ecs_names_are_the_ones_the_deploy_role_names(shipped: Any, everything: Any) -> None:
    """Every cluster and family the synth creates is the one the ECS statements name (a rename would deny the first
    up), and a service's cluster is the env's."""
    from shared.components.compute import cluster_name

    for label, env, documents, _policies in _all_cases(shipped, everything):
        for resource in _resources(documents):
            inputs = resource.get("inputs") or {}
            if resource["type"] == "aws:ecs/cluster:Cluster":
                assert inputs["name"] == cluster_name(env.name), label
            elif resource["type"] == "aws:ecs/taskDefinition:TaskDefinition":
                assert str(inputs["family"]).startswith(deploy_role.task_family_prefix(env.name)), label
            elif resource["type"] == "aws:ecs/service:Service":
                assert str(inputs["cluster"]).endswith(f":cluster/{cluster_name(env.name)}"), label


#: What terraform-provider-aws calls on each resource of CodeBuild (aws_codebuild_project: CreateProject,
#: BatchGetProjects, UpdateProject, UpdateProjectVisibility, DeleteProject; aws_codebuild_webhook: Create/Update/
#: DeleteWebhook), Lambda (aws_lambda_function with its tags, versions and code signing read; aws_lambda_permission;
#: aws_lambda_function_event_invoke_config; Secrets Manager's RotateSecret invokes with the caller's rights), SNS
#: (aws_sns_topic, _topic_policy, Subscribe of aws_sns_topic_subscription, the preflight's ListSubscriptionsByTopic)
#: and EventBridge (aws_cloudwatch_event_rule, _target), each on the resource the Service Authorization Reference names
NAMED_CALLS = {
    "codebuild": ("CreateProject", "BatchGetProjects", "UpdateProject", "UpdateProjectVisibility", "DeleteProject",
                  "CreateWebhook", "UpdateWebhook", "DeleteWebhook"),
    "lambda": ("CreateFunction", "GetFunction", "GetFunctionConfiguration", "GetFunctionCodeSigningConfig",
               "ListVersionsByFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion",
               "DeleteFunction", "TagResource", "UntagResource", "ListTags", "AddPermission", "RemovePermission",
               "GetPolicy", "PutFunctionEventInvokeConfig", "GetFunctionEventInvokeConfig",
               "UpdateFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig", "InvokeFunction"),
    "ecr": ("CreateRepository", "DescribeRepositories", "ListTagsForResource", "TagResource", "UntagResource",
            "PutImageScanningConfiguration", "PutImageTagMutability", "DeleteRepository", "PutLifecyclePolicy",
            "GetLifecyclePolicy", "DeleteLifecyclePolicy", "DescribeImages", "BatchGetImage", "GetDownloadUrlForLayer",
            "PutImage", "ListImages", "DescribeImageReplicationStatus"),
    "sns": ("CreateTopic", "GetTopicAttributes", "SetTopicAttributes", "DeleteTopic", "TagResource", "UntagResource",
            "ListTagsForResource", "Subscribe", "ListSubscriptionsByTopic", "GetDataProtectionPolicy"),
    "events": ("PutRule", "DescribeRule", "DeleteRule", "EnableRule", "DisableRule", "TagResource", "UntagResource",
               "ListTagsForResource", "PutTargets", "RemoveTargets", "ListTargetsByRule"),
    # terraform-provider-aws internal/service/ssm/parameter.go: PutParameter, GetParameter, DescribeParameters (on
    # "*"), the tags, DeleteParameter
    "ssm": ("PutParameter", "GetParameter", "GetParameters", "DeleteParameter", "AddTagsToResource",
            "RemoveTagsFromResource", "ListTagsForResource"),
}
#: the synth's resources of those services -> (IAM prefix, the input naming the resource, its ARN's resource part)
NAMED_TYPES = {
    "aws:codebuild/project:Project": ("codebuild", "name", "project/{}"),
    "aws:codebuild/webhook:Webhook": ("codebuild", "projectName", "project/{}"),
    "aws:lambda/function:Function": ("lambda", "name", "function:{}"),
    "aws:lambda/permission:Permission": ("lambda", "function", "function:{}"),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": ("lambda", "functionName", "function:{}"),
    "aws:ecr/repository:Repository": ("ecr", "name", "repository/{}"),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ("ecr", "repository", "repository/{}"),
    "aws:sns/topic:Topic": ("sns", "name", "{}"),
    "aws:cloudwatch/eventRule:EventRule": ("events", "name", "rule/{}"),
    "aws:cloudwatch/eventTarget:EventTarget": ("events", "rule", "rule/{}"),
    "aws:ssm/parameter:Parameter": ("ssm", "name", "parameter{}"),  # the name starts with "/"
}


def _named_arns(env: Any, documents: dict[str, Any]) -> list[tuple[str, str]]:
    """(IAM prefix, ARN) of every CodeBuild project, Lambda function, ECR repository, SNS topic and EventBridge rule
    the synth creates or names."""
    found = []
    for resource in _resources(documents):
        if resource["type"] in NAMED_TYPES:
            prefix, key, shape = NAMED_TYPES[resource["type"]]
            name = str(resource["inputs"][key])
            found.append((prefix, f"arn:aws:{prefix}:{env.region}:{env.account_id}:{shape.format(name)}"))
    return found


def test_codebuild_lambda_ecr_sns_and_events_only_the_envs(shipped: Any, everything: Any) -> None:
    """CodeBuild, Lambda, ECR, SNS and EventBridge are not service-wide: every call the provider (and the orchestrator)
    makes on each project, function (and its versions), repository, topic and rule the synth creates is allowed; the
    same call on another team's or env's project, function, repository, topic or rule, or in another account or region,
    is not."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        named = _named_arns(env, documents)
        assert {prefix for prefix, _arn in named} == set(NAMED_CALLS), label
        for prefix, arn in named:
            for action in NAMED_CALLS[prefix]:
                assert allowed(policies, f"{prefix}:{action}", arn), (label, arn, action)
                if f"{prefix}:{action}" not in deploy_role.PREFLIGHT_ACTIONS:  # the preflight's reads: "*"
                    assert not allowed(policies, f"{prefix}:{action}",
                                       arn.replace(env.account_id, "999999999999")), (label, action)
        for prefix, arn in named:
            if prefix == "lambda":
                assert allowed(policies, "lambda:InvokeFunction", f"{arn}:7"), (label, arn)
        for actions in deploy_role.NAMED_STAR_ACTIONS.values():
            for action in actions:
                assert allowed(policies, action), (label, action)
        other_env = "prod" if env.name != "prod" else "dev"
        base = f"{env.region}:{env.account_id}:"
        others = {
            "codebuild": [f"arn:aws:codebuild:{base}project/payments-deploy",
                          f"arn:aws:codebuild:{base}project/ml-platform-{other_env}-deploy"],
            "lambda": [f"arn:aws:lambda:{base}function:payments-api",
                       f"arn:aws:lambda:{base}function:ml-platform-{other_env}-queue-metrics",
                       f"arn:aws:lambda:{base}function:ml-platform-{env.name}-queue-metrics-x"],
            "ecr": [f"arn:aws:ecr:{base}repository/payments/api", f"arn:aws:ecr:{base}repository/ml-platformx/a",
                    f"arn:aws:ecr:us-east-2:{env.account_id}:repository/ml-platform/inference"],
            "sns": [f"arn:aws:sns:{base}payments-alerts", f"arn:aws:sns:{base}{other_env}-ml-alarms"],
            "events": [f"arn:aws:events:{base}rule/payments-nightly", f"arn:aws:events:{base}rule/{other_env}-ml-x",
                       f"arn:aws:events:{base}rule/ml-platform-{other_env}-queue-metrics"],
            "ssm": [f"arn:aws:ssm:{base}parameter/payments/db-password",
                    f"arn:aws:ssm:{base}parameter/platform/{other_env}/contracts/broker/part-0",
                    f"arn:aws:ssm:{base}parameter/platform/{env.name}/contracts/compute"],
        }
        for prefix, arns in others.items():
            for arn in arns:
                for action in NAMED_CALLS[prefix]:
                    if f"{prefix}:{action}" not in deploy_role.PREFLIGHT_ACTIONS:
                        assert not allowed(policies, f"{prefix}:{action}", arn), (label, arn, action)
        for action in ("codebuild:ImportSourceCredentials", "codebuild:DeleteSourceCredentials",
                       "lambda:CreateEventSourceMapping", "ecr:PutAccountSetting", "ecr:CreatePullThroughCacheRule",
                       "sns:SetSMSAttributes"):
            assert not iam_eval.grants_some_context(statements(policies), action), (label, action)


def test_the_envs_named_resources_are_the_ones_the_deploy_role_names(shipped: Any, everything: Any) -> None:
    """Every CodeBuild project, Lambda function, ECR repository, SNS topic and EventBridge rule the synth creates is one
    the deploy role's statements name (a rename would deny the first up), by the names the stacks' own functions
    make."""
    for label, env, documents, _policies in _all_cases(shipped, everything):
        granted = deploy_role.named_resource_arns(env)
        for prefix, arn in _named_arns(env, documents):
            assert any(re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), arn) for pattern in granted[prefix]), \
                (label, arn)


#: What terraform-provider-aws calls on a log group, its metric filters and tags (internal/service/logs: group.go
#: CreateLogGroup with tags, DescribeLogGroups, ListTagsForResource, PutRetentionPolicy/DeleteRetentionPolicy,
#: AssociateKmsKey/DisassociateKmsKey, DeleteLogGroup; metric_filter.go PutMetricFilter, DescribeMetricFilters,
#: DeleteMetricFilter) and the legacy tag actions
LOG_GROUP_CALLS = ("CreateLogGroup", "DescribeLogGroups", "ListTagsForResource", "ListTagsLogGroup", "TagResource",
                   "TagLogGroup", "UntagResource", "UntagLogGroup", "PutRetentionPolicy", "DeleteRetentionPolicy",
                   "AssociateKmsKey", "DisassociateKmsKey", "DeleteLogGroup", "PutMetricFilter",
                   "DescribeMetricFilters", "DeleteMetricFilter")
#: What a stolen deploy role must not do to a log group that is not the env's: read, export or subscribe to its events,
#: cut its retention, drop its key, delete it
LOG_GROUP_ABUSE = ("GetLogEvents", "FilterLogEvents", "StartQuery", "CreateExportTask", "PutSubscriptionFilter",
                   "PutRetentionPolicy", "DisassociateKmsKey", "DeleteLogGroup", "DeleteLogStream", "PutLogEvents",
                   "TagResource", "PutDataProtectionPolicy")
LOG_GROUP_TYPES = {"aws:cloudwatch/logGroup:LogGroup": "name", "aws:cloudwatch/logMetricFilter:LogMetricFilter":
                   "logGroupName"}


def _log_groups(documents: dict[str, Any]) -> set[str]:
    """The names of the log groups the synth creates or puts a metric filter on, but Amazon MQ's (it creates and
    writes them; the broker log-group provider adopts them: :func:`_broker_log_groups`)."""
    return {str(resource["inputs"][key]) for resource in _resources(documents)
            for type_, key in LOG_GROUP_TYPES.items() if resource["type"] == type_} - _broker_log_groups(documents)


def _broker_log_groups(documents: dict[str, Any]) -> set[str]:
    """The broker groups the broker log-group provider adopts (the synth's broker id is the mock's)."""
    return {str(resource["inputs"]["log_group_name"]) for resource in _resources(documents)
            if resource["type"] == deploy_role.DYNAMIC_TYPE and "log_group_name" in resource["inputs"]}


def test_logs_only_the_envs_log_groups(shipped: Any, everything: Any) -> None:
    """CloudWatch Logs is not service-wide: every call the provider makes on each log group the synth creates (as the
    group's ARN and with ``:*``, the form several actions authorize) is allowed, the broker log-group provider's on
    Amazon MQ's groups; another env's or team's group, or one in another account, can be neither read, subscribed to,
    nor deleted; the account's resource policies (task stops' policy, the preflight's count) stay on ``*``."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        base = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:"
        groups = _log_groups(documents)
        assert {f"/platform/{env.name}/vpc-flow-logs", f"/platform/{env.name}/compute/ecs/task-stops",
                f"/aws/codebuild/ml-platform-{env.name}-deploy"} <= groups, label
        for group in groups:
            for arn in (f"{base}{group}", f"{base}{group}:*", f"{base}{group}:log-stream:x"):
                for action in LOG_GROUP_CALLS:
                    assert allowed(policies, f"logs:{action}", arn), (label, arn, action)
            other = f"arn:aws:logs:{env.region}:999999999999:log-group:{group}"
            for action in LOG_GROUP_ABUSE:
                assert not allowed(policies, f"logs:{action}", other), (label, other, action)
        brokers = _broker_log_groups(documents)
        assert brokers, label
        for group in brokers:
            for action in deploy_role.DYNAMIC_ACTIONS["shared.components.broker_logs:BrokerLogGroupProvider"]:
                if action.startswith("logs:"):
                    assert allowed(policies, action, f"{base}{group}"), (label, group, action)
            # its resource-alarm metric filter (shared.components.broker): created, updated, read and deleted
            for action in ("PutMetricFilter", "DeleteMetricFilter", "DescribeMetricFilters"):
                assert allowed(policies, f"logs:{action}", f"{base}{group}"), (label, group, action)
            filters = [r["inputs"] for r in _resources(documents)
                       if r["type"] == "aws:cloudwatch/logMetricFilter:LogMetricFilter"
                       and r["inputs"]["logGroupName"] == group]
            assert filters, (label, group)
            for action in ("GetLogEvents", "FilterLogEvents", "PutSubscriptionFilter", "DeleteLogGroup"):
                assert not allowed(policies, f"logs:{action}", f"{base}{group}"), (label, group, action)
        for action in ("PutResourcePolicy", "DescribeResourcePolicies", "DeleteResourcePolicy", "DescribeLogGroups"):
            assert allowed(policies, f"logs:{action}"), (label, action)
        other_env = "prod" if env.name != "prod" else "dev"
        for group in (f"/platform/{other_env}/compute/inference", f"/platform/{env.name}x/vpc-flow-logs",
                      "/aws/lambda/payments-api", f"/aws/lambda/ml-platform-{other_env}-queue-metrics",
                      f"/aws/lambda/ml-platform-{env.name}-queue-metrics-x",
                      f"/aws/codebuild/ml-platform-{other_env}-deploy", "/aws/eks/payments/cluster"):
            for arn in (f"{base}{group}", f"{base}{group}:*"):
                for action in LOG_GROUP_ABUSE:
                    assert not allowed(policies, f"logs:{action}", arn), (label, arn, action)
        for action in ("logs:PutDestination", "logs:PutAccountPolicy", "logs:DeleteAccountPolicy"):
            assert not iam_eval.grants_some_context(statements(policies), action), (label, action)


def test_the_envs_log_groups_are_the_ones_the_deploy_role_and_boundary_name(shipped: Any, everything: Any) -> None:
    """Every log group the synth creates is one the deploy role's statements name, by the names the stacks' own
    functions make (a rename would deny the first up), and the role boundary lets the stacks' roles write to those
    groups only."""
    for label, env, documents, _policies in _all_cases(shipped, everything):
        granted = deploy_role.log_group_arns(env)
        for group in _log_groups(documents):
            arn = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:{group}"
            assert any(re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), arn) for pattern in granted), \
                (label, arn)
        boundary = deploy_role.boundary_policy(env).document["Statement"]
        base = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:"
        for group in _log_groups(documents):
            assert iam_eval.allows(boundary, "logs:PutLogEvents", f"{base}{group}:log-stream:x"), (label, group)
        for group in ("/aws/lambda/payments-api", f"/platform/{'prod' if env.name != 'prod' else 'dev'}/compute/x"):
            assert not iam_eval.allows(boundary, "logs:PutLogEvents", f"{base}{group}:log-stream:x"), (label, group)
        assert iam_eval.allows(boundary, "logs:DescribeLogGroups", f"{base}*"), label


#: What terraform-provider-aws calls on aws_cloudwatch_metric_alarm (internal/service/cloudwatch/metric_alarm.go:
#: PutMetricAlarm with tags, DescribeAlarms, ListTagsForResource, TagResource/UntagResource, DeleteAlarms)
ALARM_CALLS = ("PutMetricAlarm", "DescribeAlarms", "ListTagsForResource", "TagResource", "UntagResource",
               "DeleteAlarms")
#: What a stolen deploy role must not do to an alarm that is not the env's: silence it
ALARM_ABUSE = ("SetAlarmState", "DisableAlarmActions", "TagResource", "UntagResource")


def test_cloudwatch_only_the_envs_alarms(shipped: Any, everything: Any) -> None:
    """CloudWatch is not service-wide: every call the provider makes on each alarm the synth creates is allowed; no
    other alarm can be silenced; no dashboard, metric stream or insight rule written, no metric published outside
    the queue metrics' namespace; Application Auto Scaling's checks of the caller (PutMetricAlarm, DescribeAlarms,
    DeleteAlarms, on resources of its own choosing) stay on ``*`` where the synth has a scaling policy."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        alarms = [str(resource["inputs"]["name"]) for resource in _resources(documents)
                  if resource["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"]
        assert alarms, label
        base = f"arn:aws:cloudwatch:{env.region}:{env.account_id}:alarm:"
        for name in alarms:
            for action in ALARM_CALLS:
                assert allowed(policies, f"cloudwatch:{action}", f"{base}{name}"), (label, name, action)
        assert any(resource["type"] == deploy_role.SCALING_POLICY_TYPE for resource in _resources(documents)), label
        for action in deploy_role.AUTOSCALING_ALARM_ACTIONS:
            assert allowed(policies, action, f"{base}TargetTracking-service/{env.name}-ml-platform/x-AlarmHigh-1"), \
                (label, action)
            # its check sends PutMetricAlarm and DeleteAlarms with no alarm name (Application Auto Scaling user guide,
            # "Permissions validation for API calls on target resources"): an alarm-name pattern, even TargetTracking-*,
            # fails every compute up with ValidationException "User is missing the following permissions"
            for resource in ("*", base):
                assert allowed(policies, action, resource), (label, action, resource)
        other_env = "prod" if env.name != "prod" else "dev"
        for name in ("payments-5xx", f"{other_env}-ml-broker-disk", f"{env.name}x-ml-broker-disk"):
            for action in ALARM_ABUSE:
                assert not allowed(policies, f"cloudwatch:{action}", f"{base}{name}"), (label, name, action)
        for action in ALARM_ABUSE:
            assert not allowed(policies, f"cloudwatch:{action}",
                               f"arn:aws:cloudwatch:{env.region}:999999999999:alarm:{alarms[0]}"), (label, action)
        for action in ("cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards", "cloudwatch:PutMetricStream",
                       "cloudwatch:PutInsightRule", "cloudwatch:PutCompositeAlarm"):
            assert not iam_eval.grants_some_context(statements(policies), action), (label, action)
        assert allowed(policies, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "MLPlatform/RabbitMQ"})
        assert not allowed(policies, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/ECS"}), label


def test_without_a_scaling_policy_no_other_alarm_is_written(shipped: Any) -> None:
    """Only Application Auto Scaling's checks put PutMetricAlarm and DeleteAlarms on ``*``: a synth without a scaling
    policy writes and deletes only the env's alarms."""
    env = shipped["dev"][0]
    document = {"Version": "2012-10-17", "Statement": deploy_role.cloudwatch_statements(env, scaling=False)}
    policies = [deploy_role.ManagedPolicy("p", document)]
    base = f"arn:aws:cloudwatch:{env.region}:{env.account_id}:alarm:"
    for action in ("PutMetricAlarm", "DeleteAlarms"):
        assert allowed(policies, f"cloudwatch:{action}", f"{base}dev-ml-broker-disk"), action
        assert not allowed(policies, f"cloudwatch:{action}", f"{base}payments-5xx"), action
    assert allowed(policies, "cloudwatch:DescribeAlarms"), "DescribeAlarms stays on *"


#: What terraform-provider-aws calls on aws_mq_broker (internal/service/mq/broker.go: CreateBroker, DescribeBroker,
#: ListTags/CreateTags/DeleteTags, UpdateBroker, RebootBroker, the users' Create/Describe/Update/DeleteUser and
#: ListUsers, DeleteBroker) and aws_mq_configuration (configuration.go: CreateConfiguration, DescribeConfiguration,
#: DescribeConfigurationRevision, UpdateConfiguration, DeleteConfiguration, the tags)
MQ_BROKER_CALLS = ("DescribeBroker", "ListTags", "CreateTags", "DeleteTags", "UpdateBroker", "RebootBroker",
                   "CreateUser", "DescribeUser", "UpdateUser", "DeleteUser", "ListUsers", "DeleteBroker")
MQ_CONFIGURATION_CALLS = ("DescribeConfiguration", "DescribeConfigurationRevision", "ListConfigurationRevisions",
                          "UpdateConfiguration", "DeleteConfiguration", "ListTags", "CreateTags", "DeleteTags")
#: What a stolen deploy role must not do to another broker of the account
MQ_BROKER_ABUSE = ("UpdateBroker", "RebootBroker", "DeleteBroker", "CreateUser", "UpdateUser", "DeleteUser",
                   "CreateTags", "DeleteTags", "Promote", "UpdateBrokerAccessConfiguration")


def test_mq_only_the_envs_broker(shipped: Any, everything: Any) -> None:
    """Amazon MQ is not service-wide: every call the provider makes on the env's broker (whatever id Amazon MQ gives
    it) and its configuration is allowed, the creates and lists on ``*``; another env's or team's broker, or one in
    another account, can be neither updated, rebooted, deleted nor given a user."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        names = {str(resource["inputs"]["brokerName"]) for resource in _resources(documents)
                 if resource["type"] == "aws:mq/broker:Broker"}
        assert names == {f"ml-{env.name}"}, label
        base = f"arn:aws:mq:{env.region}:{env.account_id}:"
        for name in names:
            for action in MQ_BROKER_CALLS:
                assert allowed(policies, f"mq:{action}", f"{base}broker:{name}:b-0f1e2d3c"), (label, action)
        for action in MQ_CONFIGURATION_CALLS:
            assert allowed(policies, f"mq:{action}", f"{base}configuration:c-0f1e2d3c"), (label, action)
        for action in deploy_role.MQ_STAR_ACTIONS:
            assert allowed(policies, action), (label, action)
        other_env = "prod" if env.name != "prod" else "dev"
        for arn in (f"{base}broker:ml-{other_env}:b-1", f"{base}broker:payments:b-1",
                    f"{base}broker:ml-{env.name}x:b-1",
                    f"arn:aws:mq:{env.region}:999999999999:broker:ml-{env.name}:b-1"):
            for action in MQ_BROKER_ABUSE:
                assert not allowed(policies, f"mq:{action}", arn), (label, arn, action)
        assert not allowed(policies, "mq:UpdateConfiguration",
                           f"arn:aws:mq:{env.region}:999999999999:configuration:c-1"), label


#: What terraform-provider-aws calls on aws_lb and aws_lb_target_group after the create (internal/service/elbv2:
#: load_balancer.go ModifyLoadBalancerAttributes, SetSecurityGroups, SetSubnets, SetIpAddressType, DeleteLoadBalancer;
#: target_group.go ModifyTargetGroup, ModifyTargetGroupAttributes, DeleteTargetGroup; the tags' AddTags/RemoveTags)
ELB_WRITE_CALLS = ("ModifyLoadBalancerAttributes", "SetSecurityGroups", "SetSubnets", "SetIpAddressType",
                   "DeleteLoadBalancer", "ModifyTargetGroup", "ModifyTargetGroupAttributes", "DeleteTargetGroup",
                   "AddTags", "RemoveTags")
#: aws_lb_listener (listener.go: CreateListener, ModifyListener, DeleteListener, the certificates)
ELB_LISTENER_CALLS = ("CreateListener", "ModifyListener", "DeleteListener", "AddListenerCertificates",
                      "RemoveListenerCertificates")


def test_elb_load_balancers_and_target_groups_only_by_the_envs_tag(shipped: Any, everything: Any) -> None:
    """Elastic Load Balancing is not service-wide: the gateway's load balancer and target group are created only with
    the env's tag, tagged at their create, and changed or deleted only while they carry it; another team's or env's
    load balancer or target group (auto-named alike, no env in the name) can be neither changed, deleted nor retagged
    into the env; a shipped env without the public gateway gets no ELB write at all."""
    env, documents, policies = everything
    base = f"arn:aws:elasticloadbalancing:{env.region}:{env.account_id}:"
    balancers = [f"{base}loadbalancer/app/{resource['name']}-a1b2c3d/0123456789abcdef"
                 for resource in _resources(documents) if resource["type"] == "aws:lb/loadBalancer:LoadBalancer"]
    groups = [f"{base}targetgroup/{resource['name']}-a1b2c3d/0123456789abcdef"
              for resource in _resources(documents) if resource["type"] == "aws:lb/targetGroup:TargetGroup"]
    assert balancers and groups
    tags = env.common_tags("compute")  # the provider's default tags of the gateway's layer
    mine = {f"aws:ResourceTag/{key}": value for key, value in tags.items()}
    request = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    # another team tagging its own load balancer env: <env> (a common value) is not the env's
    theirs = {"aws:ResourceTag/env": env.name, "aws:ResourceTag/team": "payments"}
    for action in deploy_role.ELB_TAGGED_CREATES:
        assert allowed(policies, action, "*", {**request, "aws:TagKeys": sorted(tags)}), action
        assert not allowed(policies, action, "*", {**request, "aws:RequestTag/env": "prod"}), action
        assert not allowed(policies, action, "*", {"aws:RequestTag/env": env.name}), action
        assert not allowed(policies, action, "*", {}), action
    for arn, create in [*((arn, "CreateLoadBalancer") for arn in balancers),
                        *((arn, "CreateTargetGroup") for arn in groups)]:
        assert allowed(policies, "elasticloadbalancing:AddTags", arn, {
            **request, "elasticloadbalancing:CreateAction": create}), arn
        for action in ELB_WRITE_CALLS:
            assert allowed(policies, f"elasticloadbalancing:{action}", arn, mine), (arn, action)
            for other in ({**mine, "aws:ResourceTag/env": "prod"}, theirs, {}):
                assert not allowed(policies, f"elasticloadbalancing:{action}", arn, other), (arn, action, other)
        # another team's: no tag on it may be put there under a create that is not one
        assert not allowed(policies, "elasticloadbalancing:AddTags", arn, {**request, **theirs}), arn
        assert not allowed(policies, "elasticloadbalancing:ModifyLoadBalancerAttributes",
                           arn.replace(env.account_id, "999999999999"), mine), arn
    listener = f"{base}listener/app/gateway-alb-a1b2c3d/0123456789abcdef/0123456789abcdef"
    for action in ELB_LISTENER_CALLS:
        assert allowed(policies, f"elasticloadbalancing:{action}", listener), action
    assert allowed(policies, "elasticloadbalancing:AddTags", listener, {
        **request, "elasticloadbalancing:CreateAction": "CreateListener"})
    for action in ("DescribeLoadBalancers", "DescribeTargetGroups", "DescribeListeners", "DescribeTags",
                   "DescribeLoadBalancerAttributes", "DescribeTargetGroupAttributes", "DescribeTargetHealth"):
        assert allowed(policies, f"elasticloadbalancing:{action}"), action
    for name, _env, _documents, shipped_policies in _all_cases(shipped, everything)[:-1]:
        for action in ELB_WRITE_CALLS:
            assert not iam_eval.grants_some_context(statements(shipped_policies), f"elasticloadbalancing:{action}",
                                                    balancers[0]), (name, action)


#: What terraform-provider-aws calls on aws_lambda_permission (internal/service/lambda/permission.go: AddPermission;
#: the read and the delete's wait GetPolicy; RemovePermission), on the function named as given (a qualified ARN too)
PERMISSION_CALLS = ("lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission")


def test_an_alarm_subscribers_function_gets_its_permission_and_nothing_else(edit_env: Any) -> None:
    """A ``lambda`` alarm subscription in the env's account and region makes the broker layer add a statement to that
    function's resource policy (shared.components.alarms.AlarmTopic): the deploy role may add, read and remove it on
    every such function the synth names, and do nothing else there (no code or configuration write, no invoke); a
    function of another account gets no permission from the stack and none from the deploy role."""
    mine = "arn:aws:lambda:eu-west-1:111111111111:function:oncall-pager"
    alias = "arn:aws:lambda:eu-west-1:111111111111:function:oncall-router:live"
    foreign = "arn:aws:lambda:eu-west-1:999999999999:function:their-pager"
    edit_env("dev", lambda data: data.update(alarms={"subscriptions": [
        {"protocol": "lambda", "endpoint": endpoint} for endpoint in (mine, alias, foreign)]}))
    documents = synth_env("dev")
    policies = deploy_role.deploy_policies("dev", environ={}, documents=documents)
    functions = {str(resource["inputs"]["function"]) for resource in _resources(documents)
                 if resource["type"] == "aws:lambda/permission:Permission"
                 and str(resource["inputs"]["function"]).startswith("arn:")}
    assert functions == {mine, alias}
    for function in functions:
        for action in PERMISSION_CALLS:
            assert allowed(policies, action, function), (function, action)
        for action in ("lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:InvokeFunction",
                       "lambda:DeleteFunction"):
            assert not allowed(policies, action, function), (function, action)
    for action in PERMISSION_CALLS:
        assert not allowed(policies, action, foreign), action
        assert not allowed(policies, action, "arn:aws:lambda:eu-west-1:111111111111:function:payments-api"), action


#: What terraform-provider-aws calls on aws_secretsmanager_secret (CreateSecret, DescribeSecret, GetResourcePolicy,
#: PutResourcePolicy, DeleteResourcePolicy, UpdateSecret, tags, DeleteSecret), _secret_version (PutSecretValue,
#: GetSecretValue, ListSecretVersionIds, UpdateSecretVersionStage) and _secret_rotation (RotateSecret,
#: CancelRotateSecret), and the program's getSecretVersion (GetSecretValue), each on the secret
SECRET_CALLS = tuple(f"secretsmanager:{action}" for action in (
    "CreateSecret", "DescribeSecret", "GetResourcePolicy", "PutResourcePolicy", "DeleteResourcePolicy", "UpdateSecret",
    "TagResource", "UntagResource", "DeleteSecret", "PutSecretValue", "GetSecretValue", "ListSecretVersionIds",
    "UpdateSecretVersionStage", "RotateSecret", "CancelRotateSecret"))


def test_secrets_only_the_envs(shipped: Any, everything: Any) -> None:
    """Secrets Manager is not service-wide: every call on each secret the synth creates (its ARN: name, "-" and 6
    random characters) is allowed, the preflight's DescribeSecret of any name too; another env's or team's secret is
    neither read nor written."""
    for label, env, documents, policies in _all_cases(shipped, everything):
        base = f"arn:aws:secretsmanager:{env.region}:{env.account_id}:secret:"
        names = [str(r["inputs"]["name"]) for r in _resources(documents)
                 if r["type"] == "aws:secretsmanager/secret:Secret"]
        assert names, label
        for name in names:
            assert name.startswith(deploy_role.secret_prefix(env.name)), (label, name)
            for action in SECRET_CALLS:
                assert allowed(policies, action, f"{base}{name}-AbC123"), (label, name, action)
        assert allowed(policies, "secretsmanager:GetRandomPassword"), label
        assert allowed(policies, "secretsmanager:DescribeSecret", f"{base}platform/{env.name}/messaging/gone"), label
        other_env = "prod" if env.name != "prod" else "dev"
        for other in (f"platform/{other_env}/broker/admin", "payments/db-password", f"platform/{env.name}x/a"):
            for action in ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                           "secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy"):
                assert not allowed(policies, action, f"{base}{other}-AbC123"), (label, other, action)
        assert not allowed(policies, "secretsmanager:GetSecretValue",
                           f"{base}{names[0]}-AbC123".replace(env.account_id, "999999999999")), label


def test_the_boundary_reads_only_the_envs_secrets(shipped: Any, everything: Any) -> None:
    """A role the deploy role creates reads no secret the deploy role may not: the env's only (else the deploy role
    could read any secret of the account through a role it makes), not the deploy runner's named passphrase or token,
    which the deploy role itself reads in the build (a runner role given them would hand them to any job on it)."""
    for label, env, _documents, _policies in _all_cases(shipped, everything):
        boundary = deploy_role.boundary_policy(env).document["Statement"]
        base = f"arn:aws:secretsmanager:{env.region}:{env.account_id}:secret:"
        own = f"{base}platform/{env.name}/broker/admin-AbC123"
        assert iam_eval.allows(boundary, "secretsmanager:GetSecretValue", own), label
        for other in ("payments/db-password", f"platform/{'prod' if env.name != 'prod' else 'dev'}/broker/admin"):
            assert not iam_eval.grants_some_context(boundary, "secretsmanager:GetSecretValue",
                                                    f"{base}{other}-AbC123"), (label, other)
        runner = env.messaging.deploy_runner
        for name in (runner.passphrase_secret, runner.access_token_secret):
            if name:
                assert not iam_eval.grants_some_context(boundary, "secretsmanager:GetSecretValue",
                                                        f"{base}{name}-AbC123"), label


def test_buckets_only_the_stacks_and_the_state(shipped: Any) -> None:
    _env, documents, policies = shipped["dev"]
    buckets = [str(r["inputs"]["bucket"]) for r in _resources(documents) if r["type"] == "aws:s3/bucket:Bucket"]
    assert buckets
    for bucket in buckets:
        for action in ("s3:CreateBucket", "s3:PutBucketPolicy", "s3:DeleteBucket", "s3:GetBucketTagging"):
            assert allowed(policies, action, f"arn:aws:s3:::{bucket}"), (action, bucket)
        assert allowed(policies, "s3:DeleteObject", f"arn:aws:s3:::{bucket}/2026/model.bin")
    assert not allowed(policies, "s3:DeleteBucket", "arn:aws:s3:::acme-pulumi-state")


# -- state backend, preflight, dynamic providers ---------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "resource", "condition"), [
    ("awskms://alias/pulumi-state?region=eu-west-1", "arn:aws:kms:eu-west-1:111111111111:key/*",
     {"kms:ResourceAliases": "alias/pulumi-state"}),
    ("awskms://1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-central-1",
     "arn:aws:kms:eu-central-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", {}),
    ("awskms:///arn:aws:kms:eu-west-1:444444444444:key/1234abcd-12ab-34cd-56ef-1234567890ab",
     "arn:aws:kms:eu-west-1:444444444444:key/1234abcd-12ab-34cd-56ef-1234567890ab", {}),
    # an alias ARN in Resource governs the alias only, never Encrypt/Decrypt (KMS developer guide, "Use aliases to
    # control access to KMS keys"): the key it names, in the ARN's account and region
    ("awskms:///arn:aws:kms:eu-central-1:444444444444:alias/pulumi-state?region=eu-central-1",
     "arn:aws:kms:eu-central-1:444444444444:key/*", {"kms:ResourceAliases": "alias/pulumi-state"}),
])
def test_the_state_bucket_and_key(edit_env: Any, provider: str, resource: str, condition: dict[str, str]) -> None:
    edit_env("dev", lambda data: data.update(state={"backend_url": "s3://acme-pulumi-state/platform?region=eu-west-1",
                                                    "secrets_provider": provider}))
    env = load_env("dev")
    policies = deploy_role.deploy_policies("dev", environ={}, documents=synth_layers("dev"))
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert allowed(policies, action, "arn:aws:s3:::acme-pulumi-state/platform/.pulumi/stacks/network/dev.json")
        assert not allowed(policies, action, "arn:aws:s3:::acme-pulumi-state/other-team/x.json")
    assert allowed(policies, "s3:ListBucket", "arn:aws:s3:::acme-pulumi-state")
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"):
        assert [s for s in statements(policies) if s["Sid"] == "StateKey"], "the state key is listed on its own"
        assert any(s["Sid"] == "StateKey" and resource in s["Resource"]
                   and s.get("Condition", {}).get("ForAnyValue:StringEquals", {}) == condition
                   and action in s["Action"] for s in statements(policies)), (action, provider)
    # the environment's PULUMI_BACKEND_URL wins, as in the orchestrator
    other = deploy_role.deploy_policies("dev", environ={"PULUMI_BACKEND_URL": "s3://elsewhere"},
                                        documents=synth_layers("dev"))
    assert allowed(other, "s3:PutObject", "arn:aws:s3:::elsewhere/.pulumi/stacks/network/dev.json")
    assert env.state.secrets_provider == provider


@pytest.mark.parametrize("provider", [None, "passphrase", "awskms://alias/pulumi-state?region=eu-west-1"])
def test_a_state_bucket_encrypted_with_another_key_is_still_read_and_written(
        edit_env: Any, provider: str | None) -> None:
    """The state bucket's default encryption need not use the secrets provider's key (a passphrase provider with an
    SSE-KMS bucket, or a bucket of another region or account): S3 then uses that key for each checkpoint and lock with
    the caller's permissions, so the deploy role may use any key, but only through S3 and only for the state bucket's
    objects (the read-only role: decrypt only)."""
    edit_env("dev", lambda data: data.update(state={"backend_url": "s3://acme-pulumi-state/platform?region=us-east-1",
                                                    "secrets_provider": provider}))
    env = load_env("dev")
    documents = synth_layers("dev")
    key = "arn:aws:kms:us-east-1:555555555555:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}

    def on(arn: str) -> dict[str, Any]:
        return {**via_s3, "kms:EncryptionContext:aws:s3:arn": arn}

    checkpoint = on("arn:aws:s3:::acme-pulumi-state/platform/.pulumi/stacks/network/dev.json")
    bucket_key = on("arn:aws:s3:::acme-pulumi-state")  # an S3 Bucket Key's context is the bucket's ARN
    policies = deploy_role.deploy_policies("dev", environ={}, documents=documents)
    read = deploy_role.read_statements(env, documents, backend_url="s3://acme-pulumi-state/platform?region=us-east-1")
    for context in (checkpoint, bucket_key):
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert allowed(policies, action, key, context), (provider, action, context)
        assert iam_eval.allows(read, "kms:Decrypt", key, context), provider
        assert not iam_eval.allows(read, "kms:GenerateDataKey", key, context), provider
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert not allowed(policies, action, key), action  # directly: no
        assert not allowed(policies, action, key, on("arn:aws:s3:::other-bucket/x.json")), action
        assert not allowed(policies, action, key, {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                                                   "kms:EncryptionContext:aws:s3:arn": checkpoint[
                                                       "kms:EncryptionContext:aws:s3:arn"]}), action


def _readme_preflight_actions() -> set[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("The deploying identity needs ", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", paragraph)) - {"iam:AWSServiceName"}  # a condition key


def test_the_preflight_reads_the_readme_lists_are_granted(shipped: Any) -> None:
    actions = _readme_preflight_actions()
    assert {"iam:GetRole", "mq:DescribeBroker", "servicequotas:GetServiceQuota"} <= actions
    for name, (env, _documents, policies) in shipped.items():
        boundary_reads = {"iam:GetPolicy", "iam:GetPolicyVersion"}  # of the role boundary alone
        for action in sorted(actions - {"iam:GetRole", "iam:CreateServiceLinkedRole", "kms:DescribeKey",
                                        *boundary_reads}):
            assert allowed(policies, action), (name, action)
        # the key of an external broker's admin secret: the env's own keys only (a foreign one is refused unasked)
        key = f"arn:aws:kms:{env.region}:{env.account_id}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        assert allowed(policies, "kms:DescribeKey", key), name
        assert not allowed(policies, "kms:DescribeKey", key.replace(env.account_id, "210987654321")), name
        assert boundary_reads <= actions
        for action in boundary_reads:
            assert allowed(policies, action, _boundary_arn(env))
            assert not allowed(policies, action, _boundary_arn(env).replace("role-boundary", "other"))
        assert allowed(policies, "iam:GetRole", f"arn:aws:iam::{env.account_id}:role/aws-service-role/mq.amazonaws.com/"
                                                "AWSServiceRoleForAmazonMQ")


def _preflight_calls() -> set[str]:
    """``<IAM prefix>:<Operation>`` of every AWS call of the account preflight (shared/orchestrate/account.py): each
    method called on ``self.clients(env, "<service>")``, on a name assigned from it (or a parameter of that name), and
    each operation name a ``getattr`` on such a client may take (the module's string constants)."""
    source = Path(importlib.import_module("shared.orchestrate.account").__file__ or "").read_text()
    tree = ast.parse(source)
    session = botocore.session.get_session()

    def service_of(node: ast.AST) -> str | None:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                    inner.func.attr == "clients" and len(inner.args) == 2 and isinstance(inner.args[1], ast.Constant):
                return str(inner.args[1].value)
        return None

    clients = {node.targets[0].id: service for node in ast.walk(tree)
               if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
               and (service := service_of(node.value)) is not None}
    constants = {str(node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str)}

    def client_service(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return clients.get(node.id)
        return service_of(node) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr == "clients" else None

    calls: set[str] = set()
    for node in ast.walk(tree):
        methods: set[str] = set()
        service = None
        if isinstance(node, ast.Attribute) and (service := client_service(node.value)) is not None:
            methods = {node.attr}  # called, or handed on (every_page(mq.describe_broker_instance_options, ...))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_paginator" \
                and (service := client_service(node.func.value)) is not None:
            methods = {str(ast.literal_eval(node.args[0]))}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and \
                (service := client_service(node.args[0])) is not None:
            methods = constants
        if service is None:
            continue
        model = session.get_service_model(service)
        prefix = model.metadata.get("signingName") or model.metadata["endpointPrefix"]
        snake = {botocore.xform_name(op): op for op in model.operation_names}  # boto3's method names
        calls.update(f"{prefix}:{snake[method]}" for method in methods if method in snake)
    return calls


def test_every_call_of_the_preflight_is_in_the_readme_list() -> None:
    """A preflight call the deploy role may not make turns its check into an 'unknown' note: each call is listed in
    README's paragraph (which test_the_preflight_reads_the_readme_lists_are_granted holds the policies to)."""
    calls = _preflight_calls()
    assert {"acm:DescribeCertificate", "ec2:DescribeAddresses", "iam:GetRole", "mq:DescribeBrokerInstanceOptions",
            "servicequotas:GetAWSDefaultServiceQuota", "logs:DescribeResourcePolicies"} <= calls, sorted(calls)
    missing = calls - _readme_preflight_actions()
    assert not missing, f"the preflight calls {sorted(missing)}: list them in README and PREFLIGHT_ACTIONS"


def _dynamic_providers() -> list[type]:
    for path in sorted((REPO_ROOT / "shared" / "components").glob("*.py")):
        importlib.import_module(f"shared.components.{path.stem}")
    found: list[type] = []
    bases: list[type] = [pulumi.dynamic.ResourceProvider]
    while bases:  # the concrete providers: the leaves below ResourceProvider (a shared base class makes no call)
        below: list[type] = bases.pop().__subclasses__()
        bases.extend(cls for cls in below if cls.__subclasses__())
        found.extend(cls for cls in below if not cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__module__)


def _boto3_calls(module: str) -> set[str]:
    """``<IAM prefix>:<Operation>`` of every call on a ``_client("<service>", ...)`` in the module's source."""
    tree = ast.parse(Path(importlib.import_module(module).__file__ or "").read_text())
    session = botocore.session.get_session()
    clients: dict[str, str] = {}
    calls: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                and node.value.func.id == "_client" and isinstance(node.targets[0], ast.Name):
            clients[node.targets[0].id] = str(ast.literal_eval(node.value.args[0]))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        service = None
        if isinstance(target, ast.Name) and target.id in clients:
            service = clients[target.id]
        elif isinstance(target, ast.Call) and isinstance(target.func, ast.Name) and target.func.id == "_client":
            service = str(ast.literal_eval(target.args[0]))
        if service is None or node.func.attr == "exceptions":
            continue
        method = str(ast.literal_eval(node.args[0])) if node.func.attr == "get_paginator" else node.func.attr
        model = session.get_service_model(service)
        operation = next(op for op in model.operation_names if re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower() == method)
        prefix = model.metadata.get("signingName") or model.metadata["endpointPrefix"]
        calls.add(f"{prefix}:{operation}")
    return calls


def test_every_dynamic_provider_and_its_boto3_calls_are_granted(shipped: Any) -> None:
    providers = _dynamic_providers()
    assert len(providers) >= 3  # the broker's log group, the Service Connect and the Lambda ENI drains
    for provider in providers:
        key = f"{provider.__module__}:{provider.__name__}"
        assert key in deploy_role.DYNAMIC_ACTIONS, f"add {key} and the actions its boto3 calls to DYNAMIC_ACTIONS"
        calls = _boto3_calls(provider.__module__)
        assert calls, key
        assert calls <= set(deploy_role.DYNAMIC_ACTIONS[key]), f"{key} calls {sorted(calls)}"
        for env, _documents, policies in shipped.values():
            for action in calls:
                # CloudWatch Logs only on Amazon MQ's broker groups (the one this provider adopts), the rest on "*"
                resource = (f"arn:aws:logs:{env.region}:{env.account_id}:log-group:/aws/amazonmq/broker/b-1/general"
                            if action.startswith("logs:") else "*")
                assert allowed(policies, action, resource), action


# -- valid IAM, within the quotas, deterministic ---------------------------------------------------------------------

def test_documents_are_valid_iam_within_the_size_quotas(shipped: Any, everything: Any) -> None:
    session = botocore.session.get_session()
    for label, env, _documents, policies in _all_cases(shipped, everything):
        assert 1 <= len(policies) <= deploy_role.MANAGED_POLICIES_PER_ROLE
        sids: list[str] = []
        for policy in policies:
            text = json.dumps(policy.document, separators=(",", ":"))
            assert len(text) == policy.size <= deploy_role.MANAGED_POLICY_MAX_CHARS, (label, policy.name)
            assert re.fullmatch(r"[\w+=,.@-]{1,128}", policy.name)
            assert set(policy.document) == {"Version", "Statement"} and policy.document["Version"] == "2012-10-17"
            for statement in policy.document["Statement"]:
                assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
                assert as_list(statement["Action"]), ("a statement with no action", statement["Sid"])
                # Deny: only the boundary's protection (deploy_role.boundary_denials) and the writes held to the env's
                # tags (deploy_role.tag_held_denials, in every region and account)
                held = statement["Sid"].startswith("DenyUnlessEnvTagged") or statement["Sid"] == "DenyEc2NeverCalled"
                assert statement["Effect"] == "Allow" or statement["Sid"].startswith("DenyBoundary") or held, \
                    statement["Sid"]
                assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"])
                sids.append(statement["Sid"])
                for resource in as_list(statement["Resource"]):
                    if held:
                        assert resource == "*" or re.fullmatch(r"arn:aws:[a-z0-9-]+:\*:\*:[a-z0-9-]+/\*", resource), \
                            resource
                        continue
                    arn = r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12}|aws)?:.+"
                    assert resource == "*" or re.fullmatch(arn, resource), resource
                    # global: IAM, S3, Route 53 (hostedzone/<id>: no region or account in the ARN) and AWS Budgets
                    if resource != "*" and not any(part in resource for part in (":iam::", ":s3:::", ":route53:::",
                                                                                   ":budgets::")):
                        assert f":{env.region}:" in resource or ":kms:" in resource or "connection/" in resource
                for action in as_list(statement["Action"]):
                    prefix, _, name = action.partition(":")
                    assert prefix in BOTOCORE_SERVICE, f"{action}: no botocore model named for prefix {prefix}"
                    model = session.get_service_model(BOTOCORE_SERVICE[prefix])
                    metadata = model.metadata
                    assert (metadata.get("signingName") or metadata["endpointPrefix"]) == \
                        IAM_PREFIX_EXCEPTIONS.get(prefix, prefix), f"{prefix} is not botocore's {model.service_name}"
                    assert name == "*" or name in model.operation_names or action in PERMISSION_ONLY, action
        assert len(sids) == len(set(sids)), f"{label}: duplicate Sids {sids}"


def test_statements_split_over_policies_within_the_quota_in_order() -> None:
    many = [deploy_role._statement(f"S{index}", [f"ec2:Describe{'X' * 40}{index}" for _ in range(1)],
                                   [f"arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-{index:0>17}" for _ in range(20)])
            for index in range(30)]
    for statement in many:
        statement["Resource"] = [f"{statement['Resource'][0]}{n}" for n in range(20)]
    policies = deploy_role.split_policies(many, "p")
    assert len(policies) > 1 and [s["Sid"] for s in statements(policies)] == [s["Sid"] for s in many]
    assert all(policy.size <= deploy_role.MANAGED_POLICY_MAX_CHARS for policy in policies)
    assert [policy.name for policy in policies] == [f"p-{n}" for n in range(1, len(policies) + 1)]
    with pytest.raises(deploy_role.PlatformError, match="10 by default"):
        deploy_role.split_policies(many * 5, "p")


def test_output_is_deterministic() -> None:
    first = deploy_role.deploy_policies("staging", environ={}, documents=synth_layers("staging"))
    second = deploy_role.deploy_policies("staging", environ={}, documents=synth_env("staging"))
    assert [json.dumps(p.document) for p in first] == [json.dumps(p.document) for p in second]


# -- the read-only role ----------------------------------------------------------------------------------------------

def test_the_read_role_reads_the_state_with_its_key_and_writes_nothing(edit_env: Any) -> None:
    edit_env("dev", lambda data: data.update(state={"backend_url": "s3://acme-pulumi-state",
                                                    "secrets_provider": "awskms://alias/pulumi-state"}))
    documents = synth_env("dev")
    policies = deploy_role.deploy_policies("dev", environ={}, documents=documents, read_only=True)
    key = "arn:aws:kms:eu-west-1:111111111111:key/0289301b-54bf-6f69-0200-000000000000"
    # no pull request previews messaging (shared.dag.pull_request_layers): not the broker secrets' key
    assert not allowed(policies, "kms:Decrypt", key, {"kms:ResourceAliases": "alias/ml-platform/dev/broker-secrets"})
    assert allowed(policies, "kms:Decrypt", key, {"kms:ResourceAliases": "alias/pulumi-state"})
    assert allowed(policies, "s3:GetObject", "arn:aws:s3:::acme-pulumi-state/.pulumi/stacks/network/dev.json")
    # a preview takes no lock (pkg/backend/diy/backend.go: Preview, unlike Update, Refresh and Destroy, never calls
    # b.Lock): the role any branch's job assumes writes nothing, so it cannot delete a running deploy's lock
    assert not allowed(policies, "s3:PutObject", "arn:aws:s3:::acme-pulumi-state/.pulumi/locks/organization/x.json")
    assert not allowed(policies, "s3:DeleteObject", "arn:aws:s3:::acme-pulumi-state/.pulumi/locks/organization/x.json")
    assert not allowed(policies, "s3:PutObject", "arn:aws:s3:::acme-pulumi-state/.pulumi/stacks/network/dev.json")
    assert not allowed(policies, "kms:Encrypt", key, {"kms:ResourceAliases": "alias/pulumi-state"})
    assert not allowed(policies, "kms:GenerateDataKey", key, {"kms:ResourceAliases": "alias/pulumi-state"})
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    step = readme.split("3. Read-only role per env", 1)[1].split("\n4. ", 1)[0]
    assert "nox -s roles -- <env> --read-only" in step and "broker admin password" in step


# -- the command -----------------------------------------------------------------------------------------------------

def test_the_command_prints_json_writes_files_and_refuses_an_unknown_env(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.cli import run_main

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)

    assert run_main(deploy_role.main, ["dev", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["role"] == "ml-platform-deployer" and printed["policies"][0]["name"] == "ml-platform-dev-deploy-1"
    # --json prints every document: with --out the files would silently not be written
    assert run_main(deploy_role.main, ["dev", "--json", "--out", str(tmp_path / "policies")]) == 2
    assert "--out and --json do not go together" in capsys.readouterr().err
    assert not (tmp_path / "policies").exists()
    assert run_main(deploy_role.main, ["dev", "--out", str(tmp_path / "policies")]) == 0
    out = capsys.readouterr().out
    written = sorted((tmp_path / "policies").glob("*.json"))
    assert [path.stem for path in written] == sorted(
        [printed["boundary"]["name"], *(policy["name"] for policy in printed["policies"])])
    assert json.loads((tmp_path / "policies" / "ml-platform-dev-deploy-1.json").read_text()) \
        == printed["policies"][0]["document"]
    assert json.loads((tmp_path / "policies" / "ml-platform-dev-role-boundary.json").read_text()) \
        == printed["boundary"]["document"]
    assert printed["boundary"]["arn"] == "arn:aws:iam::111111111111:policy/ml-platform-dev-role-boundary"
    assert "aws iam create-policy --policy-name ml-platform-dev-deploy-1" in out
    assert "aws iam create-policy --policy-name ml-platform-dev-role-boundary" in out
    assert "no shared state backend" in str(printed["note"])
    assert run_main(deploy_role.main, ["nope"]) == 2
    assert "unknown environment 'nope'" in capsys.readouterr().err


def test_the_github_connection_is_usable_and_no_other(everything: Any) -> None:
    env, _documents, policies = everything
    arn = str(env.messaging.deploy_runner.github_connection_arn)
    for action in ("codeconnections:UseConnection", "codeconnections:GetConnectionToken"):
        assert allowed(policies, action, arn)
        assert not allowed(policies, action, arn[:-1] + "f")


# -- a change that removes resources --------------------------------------------------------------------------------

def test_kept_policies_hold_the_deletes_of_a_change_that_removes_resources(
        edit_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An `up` that ends a canary and moves App Mesh to Service Connect (or drops a catalog service, the public
    gateway, an Amazon MQ broker) deletes what the env's synth no longer declares: the policies of the new synth
    alone deny those deletes (appmesh, the canary versions' roles), so the `up` stops halfway with AccessDenied.
    ``--keep DIR`` adds the grants of the policy files attached now; the result allows both the old resources'
    deletes and the new ones' creates."""
    from shared.cli import run_main

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    edit_env("dev", _everything_on)
    before = deploy_role.deploy_policies("dev", environ={}, documents=synth_env("dev"))
    attached = tmp_path / "attached"
    attached.mkdir()
    for policy in before:
        (attached / f"{policy.name}.json").write_text(json.dumps(policy.document), encoding="utf-8")
    (attached / "ml-platform-dev-read-1.json").write_text('{"Statement": [{"Effect": "Deny"}]}', encoding="utf-8")
    edit_env("dev", lambda data: data.update(mesh={"provider": "service-connect"}, discovery={}))
    after = synth_env("dev")
    old_role = _role_arn(load_env("dev"), "inference-v1-task-1a2b3c4")  # a canary version's, ended by the change
    removed = {"appmesh:DeleteMesh": "*"}

    fresh = deploy_role.deploy_policies("dev", environ={}, documents=after)
    for action, resource in removed.items():
        assert not allowed(fresh, action, resource), action

    kept = deploy_role.deploy_policies("dev", environ={}, documents=after, keep=attached)
    for action, resource in removed.items():
        assert allowed(kept, action, resource), action
    # a removed canary version's roles need no kept grant: they carry the env's tags
    env = load_env("dev")
    for policies in (fresh, kept):
        assert allowed(policies, "iam:DeleteRole", old_role, tagged(env))
        assert not allowed(policies, "iam:DeleteRole", old_role)
        for service, passed in (("ecs-tasks.amazonaws.com", True), ("lambda.amazonaws.com", False)):
            assert allowed(policies, "iam:PassRole", old_role, tagged(env, {"iam:PassedToService": service})) is passed
    for statement in statements(fresh):  # everything the new synth needs stays granted (and denied)
        if statement["Effect"] == "Deny":
            assert statement in list(statements(kept))
            continue
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                context = {key: as_list(value)[0] for operator, pairs in statement.get("Condition", {}).items()
                           if "NotEquals" not in operator for key, value in pairs.items()}
                assert allowed(kept, action.replace("*", "Any"), resource.replace("*", "x").replace("?", "x"),
                               context), (action, resource)
    sids = [statement["Sid"] for statement in statements(kept)]
    assert len(sids) == len(set(sids))
    assert all(policy.size <= deploy_role.MANAGED_POLICY_MAX_CHARS for policy in kept)

    # the command: --keep reads the folder --out wrote (the same folder may be both) and refuses a broken file
    assert run_main(deploy_role.main, ["dev", "--keep", str(attached), "--out", str(attached)]) == 0
    # attached policies are updated by a new version, not created again (create-policy: EntityAlreadyExists)
    assert ("aws iam create-policy-version --policy-arn arn:aws:iam::111111111111:policy/ml-platform-dev-deploy-1"
            in capsys.readouterr().out)
    written = [json.loads(path.read_text()) for path in sorted(attached.glob("ml-platform-dev-deploy-*.json"))]
    assert any("appmesh:*" in statement["Action"] for document in written for statement in document["Statement"])
    (attached / "ml-platform-dev-deploy-1.json").write_text('{"Statement": [{"Effect": "Allow", '
                                                            '"NotAction": "iam:*", "Resource": "*"}]}')
    assert run_main(deploy_role.main, ["dev", "--keep", str(attached)]) == 2
    assert "ml-platform-dev-deploy-1.json" in capsys.readouterr().err
    assert run_main(deploy_role.main, ["dev", "--keep", str(tmp_path / "missing")]) == 2
    # what `aws iam get-policy-version` prints of an attached policy is read as well
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    (fetched / "ml-platform-dev-deploy-1.json").write_text(json.dumps(
        {"PolicyVersion": {"Document": before[0].document, "VersionId": "v3", "IsDefaultVersion": True}}))
    from_aws = deploy_role.deploy_policies("dev", environ={}, documents=after, keep=fetched)
    assert allowed(from_aws, "appmesh:DeleteMesh")


def _add_scoring(services: dict[str, Any]) -> None:
    port = max(spec["port"] for spec in services.values()) + 1  # one of its own beside any service a user added
    services["scoring"] = {"description": "A service the policies were not generated for.", "port": port,
                           "health_path": "/health", "cpu": 256, "memory": 512}


def test_a_new_catalog_services_roles_are_covered_by_the_policies_made_without_it(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README, "Add a service": the compute `up` of a new service creates `<service>-execution-???????` and
    `<service>-task-???????`, puts their inline policies and passes them to ECS, with the deploy role's policies as
    generated before the service existed (nobody regenerated them)."""
    from tests.catalog_helpers import write_catalog

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    env = load_env("dev")
    old = deploy_role.deploy_policies("dev", environ={}, documents=synth_env("dev"))
    write_catalog(tmp_path, monkeypatch, _add_scoring)

    def add(data: dict[str, Any]) -> None:
        data["services"]["scoring"] = {"desired_count": 1, "min_count": 1, "max_count": 1}
        data["release"]["images"]["scoring"] = "sha256:" + "5d" * 32

    edit_env("dev", add)
    documents = synth_env("dev")
    resources = _resources(documents)
    new_roles = {str(r["inputs"]["role"]): r for r in resources if r["type"] == "aws:iam/rolePolicy:RolePolicy"
                 and str(r["inputs"]["role"]).startswith("scoring-")}
    assert {name.rsplit("-", 1)[0] for name in new_roles} == {"scoring-execution"}  # no task policy: calls nothing
    roles = [r for r in resources if r["type"] == "aws:iam/role:Role" and r["name"].startswith("scoring-")]
    assert {r["name"] for r in roles} == {"scoring-execution", "scoring-task"}
    new = deploy_role.deploy_policies("dev", environ={}, documents=documents)
    assert [policy.document for policy in new] == [policy.document for policy in old]  # no policy change
    for role in roles:
        name = f"{role['name']}-0a1b2c3"  # what Pulumi's auto-naming makes of it
        arn = _role_arn(env, name)
        boundary = {"iam:PermissionsBoundary": _boundary_arn(env)}
        assert role["inputs"]["permissionsBoundary"] == boundary["iam:PermissionsBoundary"]
        assert allowed(old, "iam:CreateRole", arn, tagged(env, boundary, request=True, resource=False)), name
        assert not allowed(old, "iam:CreateRole", arn, boundary), f"{name}: CreateRole without the env's tags"
        for action in ("iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole",
                       "iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
                       "iam:ListInstanceProfilesForRole"):
            assert allowed(old, action, arn, tagged(env, boundary)), (name, action)
        for service in deploy_role.trusted_services(role):
            assert allowed(old, "iam:PassRole", arn, tagged(env, {"iam:PassedToService": service})), name


def test_a_role_without_the_envs_tags_is_not_admitted(shipped: Any) -> None:
    """Another team's role with a name of the same shape, or another env's role in the same account, or one whose
    scope tags the deploy role would rewrite: no write, no pass."""
    env, _documents, policies = shipped["dev"]
    arn = _role_arn(env, "billing-task-9f8e7d6")
    prod = {f"iam:ResourceTag/{key}": value for key, value in load_env("prod").common_tags("compute").items()}
    network = {f"iam:ResourceTag/{key}": value for key, value in env.common_tags("network").items()}
    for context in ({}, prod, network, {"iam:ResourceTag/env": "dev"}):
        for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRole", "iam:UpdateAssumeRolePolicy",
                       "iam:UntagRole"):
            assert not allowed(policies, action, arn, {**context, "aws:TagKeys": ["owner"]}), (action, context)
        assert not allowed(policies, "iam:PassRole", arn, {**context, "iam:PassedToService": "ecs-tasks.amazonaws.com"})
    # nor taken into the scope by a TagRole carrying the env's tags (what CreateRole's own tagging sends): another
    # env of the account (envs of one account in other regions share IAM) or layer keeps its role
    mine = tagged(env, request=True, resource=False)
    for context in (prod, network):
        assert not allowed(policies, "iam:TagRole", arn, {**context, **mine}), context
    assert allowed(policies, "iam:TagRole", arn, mine)  # the create's, no resource tag yet
    assert allowed(policies, "iam:TagRole", arn, tagged(env, request=True))  # were they seen on the new role
    # an own role may take other tags, but never lose or change the ones that scope it
    assert allowed(policies, "iam:TagRole", arn, tagged(env, {"aws:TagKeys": ["owner"]}))
    assert allowed(policies, "iam:UntagRole", arn, tagged(env, {"aws:TagKeys": ["owner"]}))
    # IAM takes a role's tag keys case-insensitively (IAM user guide, "Tagging IAM resources"): ENV is env
    for key in (*deploy_role.SCOPE_TAG_KEYS, *(k.upper() for k in deploy_role.SCOPE_TAG_KEYS), "Managed-By"):
        assert not allowed(policies, "iam:UntagRole", arn, tagged(env, {"aws:TagKeys": [key]})), key
        assert not allowed(policies, "iam:TagRole", arn, tagged(env, {"aws:TagKeys": [key],
                                                                         f"aws:RequestTag/{key}": "other"})), key
    # created with another env's tags: no
    other = {f"aws:RequestTag/{key}": value for key, value in load_env("prod").common_tags("compute").items()}
    assert not allowed(policies, "iam:CreateRole", arn, other)


def _condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key for pairs in statement.get("Condition", {}).values() for key in pairs}


def test_the_role_statements_use_only_the_condition_keys_iam_supports(shipped: Any, everything: Any) -> None:
    """IAM ignores no unsupported key: a condition on a key the action does not carry never matches, the grant is
    dead and `up` stops with AccessDenied. Every key on an IAM action is one the reference lists for it."""
    iam_model = botocore.session.get_session().get_service_model("iam")
    assert set(deploy_role.IAM_ACTION_CONDITION_KEYS) - {"iam:PassRole"} <= {
        f"iam:{name}" for name in iam_model.operation_names}
    writes = set(deploy_role.ROLE_ACTIONS) - set(deploy_role.ROLE_READ_ACTIONS)
    assert writes <= set(deploy_role.IAM_ACTION_CONDITION_KEYS)
    for label, _env, _documents, policies in _all_cases(shipped, everything):
        for statement in statements(policies):
            keys = {deploy_role.key_template(key) for key in _condition_keys(statement)}
            for action in (a for a in statement["Action"] if a.startswith("iam:") and keys):
                if action in ("iam:CreateServiceLinkedRole",):
                    assert keys == {"iam:AWSServiceName"}, (label, statement["Sid"])
                    continue
                assert keys <= deploy_role.condition_keys_allowed(action), (label, statement["Sid"], action, keys)
    # CreateRole cannot see a resource tag (the role does not exist yet)
    assert "iam:ResourceTag/${TagKey}" not in deploy_role.condition_keys_allowed("iam:CreateRole")
    assert deploy_role.key_template("aws:RequestTag/managed-by") == "aws:RequestTag/${TagKey}"


def test_the_scope_tags_are_the_compute_providers_default_tags(shipped: Any) -> None:
    for name, (env, documents, _policies) in shipped.items():
        providers = [r for r in documents["compute"]["resources"] if r["type"] == "pulumi:providers:aws"]
        assert providers, name
        for provider in providers:
            default = provider["inputs"]["defaultTags"]
            tags = (json.loads(default) if isinstance(default, str) else default)["tags"]
            assert {key: tags[key] for key in deploy_role.SCOPE_TAG_KEYS} == deploy_role.scope_tags(env), name
        # a role's own tags are merged over the provider's: none may override a scope key (its role would be denied)
        for role in (r for r in documents["compute"]["resources"] if r["type"] == "aws:iam/role:Role"):
            assert not set(role["inputs"].get("tags") or {}) & set(deploy_role.SCOPE_TAG_KEYS), (name, role["name"])


# -- the command's output: the read-only role's name, and a policy --keep leaves unused -----------------------------

@pytest.mark.parametrize("name", ["", "two words", "x" * 65, "rôle"])  # IAM names are ASCII
def test_a_role_that_is_no_iam_role_name_is_refused(name: str, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`--role ''` (an unset shell variable) printed the commands for the default role as if it were asked for."""
    from shared.cli import run_main

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    for extra in ([], ["--read-only"]):
        assert run_main(deploy_role.main, ["dev", *extra, "--role", name]) == 2
        captured = capsys.readouterr()
        assert "--role" in captured.err and "not an IAM role name" in captured.err and captured.out == ""
        # leaving --role out names the deploy role only without --read-only (the read-only role has no env key)
        assert ("deploy_role_name" in captured.err) == (not extra), captured.err


def test_the_read_only_commands_name_a_real_role_or_say_it_is_needed(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.cli import run_main

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    assert run_main(deploy_role.main, ["dev", "--read-only"]) == 0
    out = capsys.readouterr().out
    assert "<" not in "".join(line for line in out.splitlines() if line.startswith("#"))  # no placeholder to paste
    assert "attach-role-policy" not in out and "--role NAME" in out
    assert run_main(deploy_role.main, ["dev", "--read-only", "--role", "ml-platform-preview"]) == 0
    out = capsys.readouterr().out
    assert "aws iam attach-role-policy --role-name ml-platform-preview --policy-arn " \
           "arn:aws:iam::111111111111:policy/ml-platform-dev-read-1" in out
    assert "--role-name ml-platform-preview --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess" in out
    assert run_main(deploy_role.main, ["dev", "--read-only", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["role"] is None


def test_a_kept_policy_the_new_split_no_longer_fills_is_named_for_detaching(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--keep` merges the attached policies' grants into as few policies as fit: when they fit in fewer than are
    attached, `<base>-N` stays attached with its old grants unless the output says to detach and delete it."""
    from shared.cli import run_main

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    attached = tmp_path / "attached"
    assert run_main(deploy_role.main, ["dev", "--out", str(attached)]) == 0
    capsys.readouterr()
    count = len(list(attached.glob("ml-platform-dev-deploy-*.json")))
    extra = f"ml-platform-dev-deploy-{count + 1}"
    (attached / f"{extra}.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Services", "Effect": "Allow", "Action": ["sns:*"], "Resource": ["*"]}]}))
    assert run_main(deploy_role.main, ["dev", "--keep", str(attached), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [policy["name"] for policy in printed["policies"]] == [f"ml-platform-dev-deploy-{i}"
                                                                  for i in range(1, count + 1)]
    arn = f"arn:aws:iam::111111111111:policy/{extra}"
    assert printed["detach"] == [{"name": extra, "arn": arn}]
    assert run_main(deploy_role.main, ["dev", "--keep", str(attached), "--out", str(attached)]) == 0
    out = capsys.readouterr().out
    assert f"aws iam detach-role-policy --role-name ml-platform-deployer --policy-arn {arn}" in out
    assert f"aws iam delete-policy --policy-arn {arn}" in out
    assert not (attached / f"{extra}.json").exists()  # the next --keep of this folder does not keep it again
    assert deploy_role.stale_policies([attached / "ml-platform-dev-deploy-1.json"], []) == ["ml-platform-dev-deploy-1"]


def test_keeping_the_policies_of_an_unchanged_synth_changes_nothing(shipped: Any, tmp_path: Path) -> None:
    """`--keep` of the policies attached now, when the synth did not change: the same documents, not each statement
    again under a `Kept...` Sid (which doubled the characters, split them over more policies than attached and
    could pass IAM's 10 per role)."""
    for name, (_env, documents, policies) in shipped.items():
        folder = tmp_path / name
        folder.mkdir()
        for policy in policies:
            (folder / f"{policy.name}.json").write_text(json.dumps(policy.document))
        kept = deploy_role.deploy_policies(name, environ={}, documents=documents, keep=folder)
        assert [policy.document for policy in kept] == [policy.document for policy in policies], name


# -- the permissions boundary of every role the stacks create (shared/role_boundary.py) ------------------------------

def _boundary_arn(env: Any) -> str:
    return f"arn:aws:iam::{env.account_id}:policy/ml-platform-{env.name}-role-boundary"


def _role_statements(documents: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role policy resource name, statement) of every inline role policy the synth declares."""
    for resource in _resources(documents):
        if resource["type"] == "aws:iam/rolePolicy:RolePolicy":
            policy = resource["inputs"]["policy"]
            document = json.loads(policy) if isinstance(policy, str) else policy
            for statement in as_list(document["Statement"]):
                yield resource["name"], statement


def _contexts(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """The request contexts a statement grants under: one per combination of the values its string and ARN
    conditions name (a boundary must allow each; the Null and negated ones only narrow the grant further)."""
    pairs = [(key, as_list(values)) for operator, condition in statement.get("Condition", {}).items()
             if operator in ("StringEquals", "StringLike", "ArnLike", "ArnEquals") for key, values in condition.items()]
    return [dict(zip([key for key, _ in pairs], chosen)) for chosen in itertools.product(*(v for _, v in pairs))]


def test_every_role_the_stacks_create_carries_the_envs_boundary(shipped: Any, everything: Any) -> None:
    """Without it the deploy role (which may create roles only with it) could not create them; and a role without a
    cap is what made the deploy role an administrator."""
    for name, env, documents, _policies in _all_cases(shipped, everything):
        roles = [resource for resource in _resources(documents) if resource["type"] == "aws:iam/role:Role"]
        assert roles, name
        assert {role["name"]: role["inputs"].get("permissionsBoundary") for role in roles} \
            == {role["name"]: _boundary_arn(env) for role in roles}, name


def test_every_role_policy_is_within_the_boundary(shipped: Any, everything: Any) -> None:
    """A boundary too tight breaks the running system silently (the grant is written, the call is denied at run
    time): every action on every resource each role policy grants is allowed by the boundary."""
    for name, env, documents, _policies in _all_cases(shipped, everything):
        boundary = [deploy_role.boundary_policy(env)]
        assert not [resource for resource in _resources(documents)
                    if resource["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"], name
        outside = [(policy, action, resource, context)
                   for policy, statement in _role_statements(documents) if statement["Effect"] == "Allow"
                   for action in as_list(statement["Action"]) for resource in as_list(statement["Resource"])
                   for context in _contexts(statement) if not allowed(boundary, action, resource, context)]
        assert outside == [], name


def test_the_boundary_grants_no_more_than_the_deploy_role_itself(shipped: Any, everything: Any) -> None:
    """The point of the cap: a role the deploy role creates can do nothing the deploy role cannot. Two exceptions: the
    deploy runner's role assumes the deploy role itself, and Envoy's read of its App Mesh configuration is in the
    boundary of an env without App Mesh too (a move to App Mesh then needs no boundary change, which, forgotten, would
    fail only when the tasks run)."""
    for name, env, _documents, policies in _all_cases(shipped, everything):
        boundary = deploy_role.boundary_policy(env)
        assert boundary.size <= deploy_role.MANAGED_POLICY_MAX_CHARS
        beyond = [(action, resource) for statement in boundary.document["Statement"]
                  for action in as_list(statement["Action"]) for resource in as_list(statement["Resource"])
                  for context in _contexts(statement) or [{}]
                  if not allowed(policies, action, resource, context)
                  and (action, resource) != ("sts:AssumeRole", _role_arn(env, "ml-platform-deployer"))
                  and not (action == "appmesh:StreamAggregatedResources" and env.mesh.provider != "appmesh")]
        assert beyond == [], name


def test_the_deploy_role_creates_and_grants_only_under_the_boundary(shipped: Any) -> None:
    """IAM user guide, "Permissions boundaries for IAM entities", delegating responsibility: CreateRole and every
    write that grants permissions only with the boundary (the request's, or the role's)."""
    for env, documents, policies in shipped.values():
        with_boundary = {"iam:PermissionsBoundary": _boundary_arn(env)}
        other = {"iam:PermissionsBoundary": f"arn:aws:iam::{env.account_id}:policy/AdministratorAccess"}
        # the roles as created (a RolePolicy's role input: network's flow-log role too), but compute's
        named = sorted({str(policy["inputs"]["role"]) for policy in _resources(documents)
                        if policy["type"] == "aws:iam/rolePolicy:RolePolicy"
                        and not re.search(r"-(execution|task)-.{7}$", str(policy["inputs"]["role"]))})
        assert f"ml-platform-{env.name}-flow-logs" in named and len(named) >= 4, named
        tagged_role = _role_arn(env, "gateway-task-0123abc")
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"):
            request = action == "iam:CreateRole"
            for role in named:
                assert allowed(policies, action, _role_arn(env, role), with_boundary), (action, role)
                assert not allowed(policies, action, _role_arn(env, role)), (action, role)
                assert not allowed(policies, action, _role_arn(env, role), other), (action, role)
            assert allowed(policies, action, tagged_role,
                           tagged(env, with_boundary, request=request, resource=not request)), action
            assert not allowed(policies, action, tagged_role, tagged(env, request=request, resource=not request))
            assert not allowed(policies, action, tagged_role,
                               tagged(env, other, request=request, resource=not request)), action


def test_every_role_the_deploy_role_may_change_is_its_envs(shipped: Any) -> None:
    """Envs share an account's IAM (another region, another env): a role grant names the env (``ml-platform-<env>-``)
    or holds to its tags. The network layer's flow-log role once had an auto-name, ``network-flow-logs-???????``,
    which matched every env's: each env's deploy role could delete or rewrite the others'."""
    for env, _documents, policies in shipped.values():
        for other in ("network-flow-logs-abcdefg", f"ml-platform-{env.name}x-flow-logs", "ml-platform-qa-flow-logs"):
            for action in ("iam:DeleteRole", "iam:DeleteRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole"):
                assert not allowed(policies, action, _role_arn(env, other),
                                   {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}), (env.name, action, other)
        own = _role_arn(env, f"ml-platform-{env.name}-flow-logs")
        assert allowed(policies, "iam:DeleteRole", own)
        assert allowed(policies, "iam:PassRole", own, {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"})
        writes = (s for policy in policies for s in policy.document["Statement"] if s["Effect"] == "Allow"
                  and any(str(a).startswith("iam:") and not str(a).startswith(("iam:Get", "iam:List"))
                          for a in as_list(s["Action"])))
        for statement in writes:
            for resource in as_list(statement["Resource"]):
                if ":role/" in resource and "aws-service-role" not in resource:
                    name = resource.split(":role/", 1)[1]
                    assert f"-{env.name}-" in name or "Condition" in statement or name == "ml-platform-deployer", (
                        env.name, statement["Sid"], resource)


def test_the_deploy_role_may_not_remove_or_change_the_boundary(shipped: Any) -> None:
    """Explicitly denied, so no other grant of the role (an administrator's policy attached beside) lifts it."""
    admin = deploy_role.ManagedPolicy("admin", {"Version": "2012-10-17", "Statement": [
        {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}]})
    for env, _documents, policies in shipped.values():
        arn = _boundary_arn(env)
        for action in ("iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                       "iam:SetDefaultPolicyVersion"):
            assert not allowed([*policies, admin], action, arn), action
        for role in ("ml-platform-dev-queue-metrics", "gateway-task-0123abc", "someone-elses"):
            assert not allowed([*policies, admin], "iam:DeleteRolePermissionsBoundary", _role_arn(env, role))
        assert allowed([*policies, admin], "iam:CreatePolicyVersion", arn.replace("role-boundary", "deploy-1"))


def test_keeping_policies_of_before_the_boundary_grants_no_role_write_without_it(shipped: Any, tmp_path: Path) -> None:
    # --keep of the policies attached before the boundary existed (CreateRole and PutRolePolicy on the named roles
    # and the tagged ones with no iam:PermissionsBoundary condition) for the up that sets the boundary: the deletes of
    # removed resources need none of those writes, so the union must not re-open them
    env, documents, _policies = shipped["dev"]
    named = _role_arn(env, "ml-platform-dev-queue-metrics")
    tagged_role = _role_arn(env, "gateway-task-0123abc")
    old = [{"Sid": "PlatformRoles", "Effect": "Allow", "Action": ["iam:CreateRole", "iam:DeleteRole",
                                                                  "iam:PutRolePolicy", "iam:AttachRolePolicy"],
            "Resource": [named]},
           {"Sid": "ServiceRolesCreate", "Effect": "Allow", "Action": ["iam:CreateRole"],
            "Resource": [_role_arn(env, "*-task-???????")],
            "Condition": {"StringEquals": {f"aws:RequestTag/{key}": value
                                           for key, value in deploy_role.scope_tags(env).items()}}}]
    (tmp_path / "ml-platform-dev-deploy-1.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": old}))
    kept = deploy_role.deploy_policies("dev", environ={}, documents=documents, keep=tmp_path)
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"):
        assert not allowed(kept, action, named), action
        assert allowed(kept, action, named, {"iam:PermissionsBoundary": _boundary_arn(env)}), action
    assert not allowed(kept, "iam:CreateRole", tagged_role, tagged(env, request=True, resource=False))
    assert allowed(kept, "iam:DeleteRole", named)


def test_the_boundary_is_a_valid_policy_of_real_actions(shipped: Any, everything: Any) -> None:
    # permissions that are no operation's name (Service Authorization Reference): App Mesh's StreamAggregatedResources
    # (Envoy's), S3's ListBucket (ListObjects, ListObjectsV2) and GetObjectVersion (GetObject with a versionId)
    permission_only = PERMISSION_ONLY | {"appmesh:StreamAggregatedResources", "s3:ListBucket", "s3:GetObjectVersion"}
    session = botocore.session.get_session()
    for label, env, _documents, _policies in _all_cases(shipped, everything):
        boundary = deploy_role.boundary_policy(env)
        assert re.fullmatch(r"[\w+=,.@-]{1,128}", boundary.name) and boundary.name.endswith("-role-boundary")
        assert set(boundary.document) == {"Version", "Statement"} and boundary.document["Version"] == "2012-10-17"
        sids = [statement["Sid"] for statement in boundary.document["Statement"]]
        assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids), label
        for statement in boundary.document["Statement"]:
            assert statement["Effect"] == "Allow" and set(statement) <= {"Sid", "Effect", "Action", "Resource",
                                                                          "Condition"}
            for resource in as_list(statement["Resource"]):
                assert resource == "*" or re.fullmatch(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+", resource), \
                    resource
            for action in as_list(statement["Action"]):
                prefix, _, name = action.partition(":")
                model = session.get_service_model(BOTOCORE_SERVICE[prefix])
                assert name in model.operation_names or action in permission_only, action


def test_the_printed_boundary_update_makes_room_under_iams_five_versions(
        moto_aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # IAM keeps 5 versions of a managed policy and answers a sixth CreatePolicyVersion with LimitExceeded (IAM API
    # reference, CreatePolicyVersion); the boundary takes one per code upgrade or env-key change that changes it, so
    # its printed update deletes the oldest non-default version first. The CLI runs --query over ISO 8601 strings.
    import jmespath

    from shared.cli import run_main
    from tests.aws_helpers import MotoAccounts

    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    assert run_main(deploy_role.main, ["dev", "--out", str(tmp_path)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines()
                if "create-policy-version" in line and "role-boundary" in line)
    env = load_env("dev")
    arn, source = _boundary_arn(env), f"file://{tmp_path / 'ml-platform-dev-role-boundary.json'}"
    assert f"aws iam create-policy-version --policy-arn {arn} --policy-document {source} --set-as-default" in line
    delete = re.search(r"aws iam delete-policy-version --policy-arn (\S+) --version-id \"\$\(aws iam "
                       r"list-policy-versions --policy-arn (\S+) --query '([^']+)' --output text\)\"", line)
    assert delete and delete[1] == delete[2] == arn, line
    iam = MotoAccounts.client(env.account_id, env.region, "iam")
    document = json.dumps(deploy_role.boundary_policy(env).document)
    for default in (False, False, True, False):  # v1 (the fixture's) to v5: v4 the default, v1 the oldest other
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=default)
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    versions = [dict(version, CreateDate=version["CreateDate"].isoformat())
                for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]]
    oldest = jmespath.search(delete[3], {"Versions": versions})
    assert oldest == "v1"
    iam.delete_policy_version(PolicyArn=arn, VersionId=oldest)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v6"


def test_a_role_several_envs_share_is_told_to_trust_each_one_s_jobs(
        edit_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Envs of one account deploying with one role: the GitHub OIDC token's sub names the job's environment
    (<repo-subject>:environment:<env>), so a trust made from the README's one-env example refuses the other env's
    every deploy job at its credential step (STS: Not authorized to perform sts:AssumeRoleWithWebIdentity), and the
    other env's deploy runner role as well. The printed role says which subjects and runner roles it must name."""
    dev = load_env("dev")
    edit_env("staging", lambda data: data.update(account_id=dev.account_id, region="eu-central-1"))
    assert deploy_role.main(["staging"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "trust policy" in line]
    assert "<repo-subject>:environment:dev, <repo-subject>:environment:staging (<repo-subject>: " \
        "repo:<org>@<org_id>/<repo>@<repo_id> on GitHub's immutable subject claims, else repo:<org>/<repo>" in line
    for name in ("dev", "staging"):
        assert f"arn:aws:iam::{dev.account_id}:role/ml-platform-{name}-deploy-runner" in line
    assert deploy_role.main(["prod"]) == 0  # an env with a role of its own: nothing to add to its trust
    assert "trust policy" not in capsys.readouterr().out


def test_the_scp_advice_exempts_every_global_service_the_deploy_role_calls(
        shipped: Any, everything: tuple[Any, dict[str, Any], list[deploy_role.ManagedPolicy]]) -> None:
    """A region-deny SCP denies what a global service's single endpoint (us-east-1) is asked unless it is exempted:
    README's Organizations section names each service the deploy role's policies grant whose botocore endpoint is not
    regionalized (IAM, and Route 53 for Cloud Map's private hosted zones), so an administrator who follows it does
    not stop discovery midway."""
    endpoints = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
    (aws,) = [partition for partition in endpoints["partitions"] if partition["partition"] == "aws"]
    global_services = {name for name, service in aws["services"].items() if service.get("isRegionalized") is False}
    granted: set[str] = set()
    for policies in [policies for _env, _documents, policies in shipped.values()] + [everything[2]]:
        for statement in statements(policies):
            actions = statement.get("Action", [])
            granted.update(action.split(":", 1)[0] for action in ([actions] if isinstance(actions, str) else actions))
    needed = granted & global_services
    assert {"iam", "route53"} <= needed, sorted(granted)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    advice = readme.split("- **The deploy role's policies.**", 1)[1].split("\n- **", 1)[0]
    assert all(f"`{prefix}:*`" in advice for prefix in needed), (sorted(needed), advice)
