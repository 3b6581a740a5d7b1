"""The ``platform`` pack, rule by rule, through the real pack process (Analyzer protocol)."""

from __future__ import annotations

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from shared.policy.taggable import TAGGABLE_FILE, load_taggable, render, scan_pulumi_aws
from tests.policies.resources import (
    GOOD_TAGS,
    UNKNOWN_OBJECT,
    UNKNOWN_STRING,
    aws_provider,
    document,
    of_rule,
    rabbitmq_provider,
    res,
    rule_ids,
)
from tests.policies.tokens import BROKER, DYNAMIC, REPO, SECRET_VERSION, USER, VPC

# -- tags-required ------------------------------------------------------------------------------------


def test_untagged_resource_is_reported_with_the_missing_keys(policy_findings):
    repo = res(REPO, "inference", {"tags": {"env": "dev", "team": "ml-platform"}})
    [finding] = of_rule(policy_findings([repo]), "tags-required")
    assert finding["enforcement"] == "advisory"  # dev baseline
    assert "layer, cost-center" in finding["message"]
    assert "default_tags" in finding["message"]
    [staging] = of_rule(policy_findings([repo], env="staging"), "tags-required")
    assert staging["enforcement"] == "mandatory"


def test_provider_default_tags_count(policy_findings):
    provider = aws_provider(tags=GOOD_TAGS)
    tagged_by_provider = res(REPO, "inference", {}, provider=provider)
    assert "tags-required" not in rule_ids(policy_findings([tagged_by_provider]))


def test_resource_tags_complete_provider_defaults(policy_findings):
    provider = aws_provider(tags={"env": "dev", "team": "ml-platform"})
    completed = res(VPC, "main", {"cidrBlock": "10.0.0.0/16", "tags": {"layer": "network", "cost-center": "cc-1"}},
                    provider=provider)
    incomplete = res(VPC, "other", {"cidrBlock": "10.1.0.0/16"}, provider=provider)
    findings = of_rule(policy_findings([completed, incomplete]), "tags-required")
    assert [f["urn"].rsplit("::", 1)[1] for f in findings] == ["other"]


def test_empty_tag_value_does_not_count(policy_findings):
    repo = res(REPO, "inference", {"tags": {**GOOD_TAGS, "cost-center": " "}})
    [finding] = of_rule(policy_findings([repo]), "tags-required")
    assert "cost-center" in finding["message"]


ADOPTED = {"log_group_name": "/aws/amazonmq/broker/b-1/general", "region": "eu-west-1", "account_id": "111111111111",
           "retention_in_days": 30}


def test_a_dynamic_log_group_carries_the_tags_itself(policy_findings, policy_not_applicable):
    """The provider's default tags never reach a dynamic resource: a log group it creates or adopts
    (shared.components.broker_logs) is tagged only by its own ``tags``."""
    provider = aws_provider(tags=GOOD_TAGS)
    untagged = res(DYNAMIC, "broker-logs", ADOPTED, provider=provider)
    [finding] = of_rule(policy_findings([untagged]), "tags-required")
    assert "env, layer, team, cost-center" in finding["message"] and "broker-logs" in finding["message"]
    tagged = res(DYNAMIC, "broker-logs", {**ADOPTED, "tags": GOOD_TAGS})
    assert "tags-required" not in rule_ids(policy_findings([tagged]))
    unknown = res(DYNAMIC, "broker-logs", {**ADOPTED, "tags": UNKNOWN_OBJECT})
    assert "tags-required" not in rule_ids(policy_findings([unknown]))
    assert any(na["rule"] == "tags-required" for na in policy_not_applicable([unknown]))
    drain = res(DYNAMIC, "drain", {"namespace_id": "ns-1", "region": "eu-west-1"})
    assert "tags-required" not in rule_ids(policy_findings([drain]))
    assert any(na["rule"] == "tags-required" for na in policy_not_applicable([drain]))


def test_untaggable_types_are_not_checked(policy_findings):
    # aws:ecr/lifecyclePolicy has no tags at all: asking for tags there would be a false positive.
    policy = res("aws:ecr/lifecyclePolicy:LifecyclePolicy", "p", {"repository": "inference", "policy": "{}"})
    assert "tags-required" not in rule_ids(policy_findings([policy]))


def test_unknown_tags_are_not_applicable(policy_findings, policy_not_applicable):
    repo = res(REPO, "inference", {"tags": UNKNOWN_OBJECT})
    assert "tags-required" not in rule_ids(policy_findings([repo]))
    assert any(na["rule"] == "tags-required" for na in policy_not_applicable([repo]))


def test_taggable_type_list_matches_installed_pulumi_aws():
    """policies/platform/data/taggable-aws-types.txt is generated; regenerate after bumping pulumi-aws."""
    assert TAGGABLE_FILE.read_text(encoding="utf-8") == render(scan_pulumi_aws()), \
        "run `python -m shared.policy.taggable` to regenerate the list"
    taggable = load_taggable()
    assert {REPO, VPC, BROKER, "aws:ecs/taskDefinition:TaskDefinition"} <= taggable
    assert "aws:ecr/lifecyclePolicy:LifecyclePolicy" not in taggable


# -- no-plaintext-secrets ---------------------------------------------------------------------------------


def test_plain_credential_is_reported(policy_findings):
    provider = rabbitmq_provider(password="guest", secret=False)
    [finding] = of_rule(policy_findings([provider]), "no-plaintext-secrets")
    assert finding["enforcement"] == "mandatory"
    assert "rabbitmq.Provider" in finding["message"] and "not a Pulumi secret" in finding["message"]


def test_literal_password_is_reported_even_when_the_sdk_made_it_secret(policy_findings):
    # pulumi_rabbitmq's User wraps its password in Output.secret itself: secret in state, yet written
    # in clear in the program -- no dependency, not a secure config value.
    user = res(USER, "app", {"name": "app", "password": "hunter2", "tags": []}, secret_inputs=["password"])
    [finding] = of_rule(policy_findings([user]), "no-plaintext-secrets")
    assert "written in clear" in finding["message"]


def test_literal_password_on_a_resource_with_other_dependencies_is_reported(policy_findings):
    # The synth records which resources each input came from: the user depends on its vhost, but
    # its password comes from nowhere -- it was written in the program.
    vhost = res("rabbitmq:index/vHost:VHost", "ml", {"name": "ml"})
    user = res(USER, "app", {"name": "app", "password": "hunter2", "tags": []}, secret_inputs=["password"],
               dependencies=[vhost], property_dependencies={"name": [vhost]})
    generator = res("random:index/randomPassword:RandomPassword", "pw", {"length": 32})
    derived = res(USER, "derived", {"name": "d", "password": "Xy9..."}, secret_inputs=["password"],
                  dependencies=[vhost, generator], property_dependencies={"password": [generator]})
    findings = of_rule(policy_findings([vhost, user, generator, derived]), "no-plaintext-secrets")
    assert [f["urn"].rsplit("::", 1)[1] for f in findings] == ["app"]


def test_generated_or_secure_config_passwords_pass(policy_findings):
    generator = res("random:index/randomPassword:RandomPassword", "pw", {"length": 32})
    generated = res(USER, "generated", {"name": "a", "password": "Xy9..."}, secret_inputs=["password"],
                    dependencies=[generator])
    from_config = res(USER, "configured", {"name": "b", "password": "synth-placeholder-secret"},
                      secret_inputs=["password"])
    provider = rabbitmq_provider(password="synth-placeholder-secret", secret=True)
    assert "no-plaintext-secrets" not in rule_ids(policy_findings([generator, generated, from_config, provider]))


def test_broker_users_and_secret_versions_are_checked(policy_findings):
    generator = res("random:index/randomPassword:RandomPassword", "pw", {"length": 32})
    plain_broker = res(BROKER, "plain", {"brokerName": "b", "users": [{"username": "admin", "password": "p"}]},
                       dependencies=[generator])
    secret_broker = res(BROKER, "secret", {"brokerName": "c", "users": [{"username": "admin", "password": "p"}]},
                        secret_inputs=["users"], dependencies=[generator])
    literal_version = res(SECRET_VERSION, "literal", {"secretId": "arn:x", "secretString": "{\"password\": \"p\"}"},
                          secret_inputs=["secretString"])
    findings = of_rule(policy_findings([generator, plain_broker, secret_broker, literal_version]),
                       "no-plaintext-secrets")
    assert sorted(f["urn"].rsplit("::", 1)[1] for f in findings) == ["literal", "plain"]


def test_unknown_credential_value_is_still_decided_by_secretness(policy_findings):
    # The rule reads only input names and their secretness, so an unknown value is no obstacle.
    provider = res("pulumi:providers:rabbitmq", "r", {"endpoint": "https://x", "password": UNKNOWN_STRING})
    assert len(of_rule(policy_findings([provider]), "no-plaintext-secrets")) == 1


def test_without_secretness_config_the_rule_is_not_applicable():
    """Under the real CLI without --policy-pack-config the rule cannot see secretness: it says so."""
    provider = rabbitmq_provider(password="guest", secret=False)
    with PolicyEngine(packs=["platform"], carry_secretness=False) as engine:
        result = evaluate_documents_result([document([provider])], env_name="dev", engine=engine)
    assert "no-plaintext-secrets" not in {f.rule for f in result.findings}
    [na] = [na for na in result.not_applicable if na.rule == "no-plaintext-secrets"]
    assert "--policy-pack-config" in na.reason


# -- appmesh-discontinued --------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "level"), [("dev", "advisory"), ("staging", "mandatory"), ("prod", "mandatory")])
def test_any_app_mesh_resource_is_reported_advisory_in_dev_and_mandatory_beyond(policy_findings, env, level):
    mesh = res("aws:appmesh/mesh:Mesh", "apps", {"spec": {"egressFilter": {"type": "DROP_ALL"}}})
    node = res("aws:appmesh/virtualNode:VirtualNode", "node", {"meshName": "apps"})
    findings = of_rule(policy_findings([mesh, node], env=env), "appmesh-discontinued")
    assert len(findings) == 2
    assert {f["enforcement"] for f in findings} == {level}
    assert all("Service Connect" in f["message"] and "2026-09-30" in f["message"] for f in findings)


def test_service_connect_is_not_reported(policy_findings):
    namespace = res("aws:servicediscovery/httpNamespace:HttpNamespace", "ns", {"name": "dev.ml.internal"})
    assert "appmesh-discontinued" not in rule_ids(policy_findings([namespace]))


# -- prod-protect-stateful -------------------------------------------------------------------------------


def test_unprotected_stateful_resource_is_mandatory_in_prod_advisory_in_staging_off_in_dev(policy_findings):
    resources = [res(VPC, "main", {"cidrBlock": "10.30.0.0/16"}),
                 res("rabbitmq:index/queue:Queue", "q", {"name": "q.work", "vhost": "prod"})]
    prod = of_rule(policy_findings(resources, env="prod"), "prod-protect-stateful")
    staging = of_rule(policy_findings(resources, env="staging"), "prod-protect-stateful")
    dev = of_rule(policy_findings(resources, env="dev"), "prod-protect-stateful")
    assert {f["enforcement"] for f in prod} == {"mandatory"} and len(prod) == 2
    assert {f["enforcement"] for f in staging} == {"advisory"}
    assert dev == []
    assert "protect" in prod[0]["message"]


def test_protected_stateful_and_stateless_resources_pass(policy_findings):
    resources = [res(VPC, "main", {"cidrBlock": "10.30.0.0/16"}, protect=True),
                 res("aws:ecs/cluster:Cluster", "ml", {})]
    assert "prod-protect-stateful" not in rule_ids(policy_findings(resources, env="prod"))


@pytest.mark.parametrize("type_", ["aws:ec2/subnet:Subnet", "aws:secretsmanager/secret:Secret", "aws:kms/key:Key",
                                   "aws:cloudwatch/logGroup:LogGroup"])
def test_subnets_secrets_keys_and_log_groups_hold_state_too(policy_findings, type_):
    [finding] = of_rule(policy_findings([res(type_, "x", {})], env="prod"), "prod-protect-stateful")
    assert finding["enforcement"] == "mandatory"


# -- protect-only-stateful --------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("type_", ["aws:ec2/route:Route", "aws:ec2/routeTableAssociation:RouteTableAssociation",
                                   "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/natGateway:NatGateway",
                                   "aws:ec2/eip:Eip", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:kms/alias:Alias"])
def test_a_protected_stateless_resource_is_mandatory_everywhere(policy_findings, env, type_):
    route = res(type_, "r", {}, protect=True)
    [finding] = of_rule(policy_findings([route], env=env), "protect-only-stateful")
    assert finding["enforcement"] == "mandatory"
    assert "protect" in finding["message"] and "'r'" in finding["message"]


def test_protected_stateful_and_unprotected_stateless_resources_pass_protect_only_stateful(policy_findings):
    resources = [res(VPC, "main", {"cidrBlock": "10.30.0.0/16"}, protect=True),
                 res("rabbitmq:index/queue:Queue", "q", {"name": "q.work", "vhost": "prod"}, protect=True),
                 res("aws:ec2/route:Route", "default", {}, protect=False),
                 res("aws:ec2/securityGroup:SecurityGroup", "services", {})]
    assert "protect-only-stateful" not in rule_ids(policy_findings(resources, env="prod"))

