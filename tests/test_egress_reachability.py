"""Every network call of every principal the stacks put in the VPC is admitted end to end (tests/egress_model.py).

Per env (the shipped ones and variants of their keys: `network.endpoints`, the mesh, a public gateway, an external
broker, the runner's secrets and an S3 state backend), from the synthesized layers: the name each call resolves,
its route (interface endpoint, S3 gateway endpoint, NAT, in-VPC peer), the security-group egress and the peer's
ingress, and the endpoint policy. A change to a group, a rule, a route or an endpoint policy that cuts a path fails
here, naming the principal, the call and why. The last tests prove the model refuses what a real VPC would.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from shared.envs import load_env
from shared.synth.engine import synth_env
from tests import egress_model as model
from tests.synth_helpers import synth_layers

LAYERS = ("network", "discovery", "broker", "mesh", "messaging", "compute")
CERTIFICATE = "arn:aws:acm:eu-west-1:{account}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def modelled(env: str, *, fresh: bool = False, layers: tuple[str, ...] = LAYERS,
             ) -> tuple[model.Network, list[model.Call]]:
    docs = synth_env(env, list(layers)) if fresh else synth_layers(env, *layers)
    config = load_env(env)
    network = model.build(config, docs)
    return network, model.declared_calls(network, docs, config)


def calls_of(calls: list[model.Call], principal_prefix: str) -> list[model.Call]:
    return [call for call in calls if call.principal.startswith(principal_prefix)]


def path_of(network: model.Network, call: model.Call) -> str:
    if call.host in network.vpc_hosts:
        return "vpc"
    endpoint = model._interface_endpoint_for(network, call.host)
    if endpoint is not None:
        return f"endpoint:{endpoint.service}"
    if model._s3_region(call.host) == network.region and "s3" in network.endpoints:
        return "endpoint:s3"
    return "nat"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_call_of_every_principal_in_the_vpc_is_admitted(env: str) -> None:
    network, calls = modelled(env)
    assert model.check(network, calls) == {}
    # every principal the stacks put in the VPC makes calls the model follows
    assert {call.principal for call in calls} == set(network.principals)
    kinds = {principal.split(":")[0] for principal in network.principals}
    assert kinds == {"tasks", "deploy-runner", "lambda"}


@pytest.mark.parametrize(("env", "private"), [
    ("dev", set()),
    ("staging", {"ecr.api", "ecr.dkr", "logs", "secretsmanager"}),
    ("prod", {"ecr.api", "ecr.dkr", "logs", "secretsmanager"}),
])
def test_each_envs_endpoints_carry_the_calls_their_private_dns_answers(env: str, private: set[str]) -> None:
    """The paths themselves: a task's pull, secrets and logs take the interface endpoints where the env has them
    (the NAT in dev), its image layers and artifacts the S3 gateway endpoint in every env, and the deploy runner's
    ECR, logs and Secrets Manager calls the same endpoints (their private DNS answers for it too)."""
    network, calls = modelled(env)
    paths = {(call.principal.split(":")[0], call.host.split(".")[0] if "amazonaws" in call.host else call.host,
              path_of(network, call)) for call in calls}
    for service, host in (("ecr.api", "api"), ("logs", "logs"), ("secretsmanager", "secretsmanager")):
        expected = f"endpoint:{service}" if service in private else "nat"
        assert ("tasks", host, expected) in paths
        assert ("deploy-runner", host, expected) in paths
    layer_bucket = {path for principal, host, path in paths if host.startswith("prod-eu-west-1-starport")}
    assert layer_bucket == {"endpoint:s3"}
    assert ("lambda", "monitoring", "nat") in paths  # no shipped env has a monitoring endpoint


def _edit_variant(edit_env: Any, variant: str) -> str:
    if variant == "public gateway":
        edit_env("staging", lambda data: data["compute"].update(
            public_gateway=True, certificate_arn=CERTIFICATE.format(account="222222222222")))
        return "staging"
    if variant == "app mesh":
        edit_env("dev", lambda data: data["mesh"].update(provider="appmesh",
                                                         appmesh_end_of_support_acknowledged=True))
        return "dev"
    if variant == "monitoring endpoint":
        edit_env("prod", lambda data: data["network"].update(
            endpoints=["s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring"]))
        return "prod"
    if variant == "monitoring without secretsmanager":
        edit_env("dev", lambda data: data["network"].update(endpoints=["s3", "monitoring"]))
        return "dev"
    if variant == "interface endpoints without s3":
        edit_env("staging", lambda data: data["network"].update(
            endpoints=["ecr.api", "ecr.dkr", "logs", "secretsmanager"]))
        return "staging"
    if variant == "external broker":
        external = {"amqps_endpoint": "amqps://10.99.0.9:5671", "management_endpoint": "https://10.99.0.10:15671"}
        edit_env("staging", lambda data: data.update(messaging={"broker": "external", "external": external}))
        return "staging"
    if variant == "the runner as a GitHub Actions runner, its secrets, an S3 state bucket of another account":
        edit_env("prod", lambda data: (
            data.update(state={"backend_url": "s3://acme-pulumi-state/platform?region=eu-west-1",
                               "secrets_provider": "awskms://alias/pulumi-state?region=eu-west-1"}),
            data["messaging"].setdefault("deploy_runner", {}).update(
                passphrase_secret="ml-platform/prod/pulumi-passphrase",
                github_repository="https://github.com/acme/ml-platform")))
        return "prod"
    raise AssertionError(variant)


VARIANTS = ["public gateway", "app mesh", "monitoring endpoint", "monitoring without secretsmanager",
            "interface endpoints without s3", "external broker",
            "the runner as a GitHub Actions runner, its secrets, an S3 state bucket of another account"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_call_is_admitted_in_variants_of_the_env_keys(edit_env: Any, variant: str) -> None:
    env = _edit_variant(edit_env, variant)
    # an external broker's messaging layer needs its admin in the stack's secret config, which synth has not: the
    # runner's side is the broker layer's (tests/layers/test_messaging.py synthesizes that program with it)
    layers = ("network", "broker") if variant == "external broker" else LAYERS
    docs = synth_env(env, list(layers))
    network = model.build(load_env(env), docs)
    calls = model.declared_calls(network, docs, load_env(env))
    assert model.check(network, calls) == {}
    assert model.iam_failures(network, docs, calls) == {}
    hosts = {call.host for call in calls}
    if variant == "public gateway":
        (alb,) = [call for call in calls if call.principal.startswith("alb:")]
        assert (alb.host, alb.port) == ("tasks-of:staging-gateway", 8080)
    if variant == "app mesh":
        assert "appmesh-envoy-management.eu-west-1.amazonaws.com" in hosts and "public.ecr.aws" in hosts
    if variant == "monitoring endpoint":
        (metrics,) = [call for call in calls if call.purpose == "PutMetricData"]
        assert path_of(network, metrics) == "endpoint:monitoring"
    if variant == "monitoring without secretsmanager":
        secrets = [call for call in calls if call.principal.startswith("lambda:") and call.purpose == "its secret"]
        assert len(secrets) == 2 and {path_of(network, call) for call in secrets} == {"nat"}
    if variant == "interface endpoints without s3":
        pulls = [call for call in calls if "starport" in call.host]
        assert pulls and {path_of(network, call) for call in pulls} == {"nat"}
    if variant == "external broker":
        assert ("10.99.0.10", 15671) in {(call.host, call.port) for call in calls_of(calls, "deploy-runner")}
    if variant.startswith("the runner as"):
        purposes = {call.purpose for call in calls_of(calls, "deploy-runner")}
        assert {"the build reads PULUMI_CONFIG_PASSPHRASE", "Pulumi state in s3://acme-pulumi-state",
                "tools from pipelines.actions.githubusercontent.com"} <= purposes
        assert not {purpose for purpose in purposes if purpose.startswith("preview:")}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_call_signed_by_a_platform_role_is_in_that_roles_policy(env: str) -> None:
    network, calls = modelled(env)
    docs = synth_layers(env, *LAYERS)
    assert model.iam_failures(network, docs, calls) == {}
    signers = {(call.signer or network.principals[call.principal].arn).rsplit("/", 1)[-1]
               for call in calls if call.actions and not call.presigned}
    assert len(signers & set(model.role_policies(docs))) >= 6  # the tasks' roles, the functions', the runner's


# -- the model refuses what a real VPC would ---------------------------------------------------------------------------

def test_an_endpoint_group_that_does_not_admit_the_runner_times_its_calls_out() -> None:
    """Private DNS answers the runner's ECR, logs and Secrets Manager names with the endpoints' addresses whatever
    their group admits: a group without the runner's leaves its calls hanging, never falling back to the NAT."""
    network, calls = modelled("staging")
    network = dataclasses.replace(network, groups=dict(network.groups))
    runner = network.principals["deploy-runner"].groups
    (key,) = network.endpoints["secretsmanager"].groups
    group = network.groups[key]
    network.groups[key] = model.Group([r for r in group.ingress if r.group not in runner], group.egress)
    failures = model.check(network, calls)
    assert {key.split(" (")[0] for key in failures} == {
        "deploy-runner: CodeBuild build logs", "deploy-runner: the AWS provider's ecr calls",
        "deploy-runner: the AWS provider's logs calls", "deploy-runner: the AWS provider's secretsmanager calls"}
    assert all("a timeout" in reason for reasons in failures.values() for reason in reasons)


def test_an_s3_endpoint_policy_without_ecrs_layer_bucket_stops_every_pull() -> None:
    network, calls = modelled("dev")
    s3 = network.endpoints["s3"]
    assert s3.policy is not None
    statements = [s for s in s3.policy["Statement"] if s["Sid"] != "EcrImageLayers"]
    network.endpoints["s3"] = dataclasses.replace(s3, policy={**s3.policy, "Statement": statements})
    failures = model.check(network, calls)
    assert failures and all("ECR layers" in key for key in failures)
    assert len(failures) == len({c.principal for c in calls if "starport" in c.host})


def test_a_bucket_the_deploy_role_may_not_manage_through_the_gateway_is_refused() -> None:
    network, calls = modelled("staging")
    stranger = model.Call("deploy-runner", "a bucket of no layer", model.s3_host("someone-elses-bucket", "eu-west-1"),
                          actions=("s3:CreateBucket",), resource="arn:aws:s3:::someone-elses-bucket",
                          resource_account="222222222222", signer=calls_of(calls, "deploy-runner")[-1].signer)
    (reasons,) = model.check(network, [stranger]).values()
    assert all("the s3 endpoint's policy refuses s3:CreateBucket" in reason for reason in reasons)


def test_a_private_subnet_without_its_nat_route_cuts_the_public_calls() -> None:
    network, calls = modelled("prod")
    runner_subnet = network.principals["deploy-runner"].subnets[0]
    table = network.subnet_tables[runner_subnet]
    network.routes = {**network.routes, table: {}}
    failures = model.check(network, calls)
    assert "deploy-runner: tools from get.pulumi.com (get.pulumi.com:443)" in failures
    assert all(reason.startswith(runner_subnet) for reasons in failures.values() for reason in reasons)
    assert not any("starport" in key or "secretsmanager" in key for key in failures)  # the endpoints still carry those


def test_a_broker_group_that_does_not_admit_the_publisher_cuts_its_management_calls() -> None:
    network, calls = modelled("dev")
    publisher = network.principals["lambda:ml-platform-dev-queue-metrics"].groups
    broker = network.vpc_hosts[next(c.host for c in calls if c.purpose == "AMQPS to the broker")]
    network.groups = {**network.groups, broker[0]: model.Group(
        [r for r in network.groups[broker[0]].ingress if r.group not in publisher], [])}
    assert list(model.check(network, calls)) == [
        next(f"{c.principal}: {c.purpose} ({c.host}:{c.port})" for c in calls
             if c.principal == "lambda:ml-platform-dev-queue-metrics" and c.port == 443 and ".mq." in c.host)]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_readmes_tunnel_instance_reaches_ssm_and_the_broker_but_not_amazon_linuxs_repositories(env: str) -> None:
    """README, Ways into the VPC: an SSM-managed instance in a private subnet with the runner's group. Its agent's
    channels (Systems Manager, its messages services: HTTPS) and the broker's management API pass; Amazon Linux
    2023's package repository (``al2023-repos-<region>-de612dc2.s3.dualstack...``, an AWS-owned bucket) is S3 of
    the region, carried by the gateway endpoint whose policy refuses it: the README says to install nothing."""
    network, calls = modelled(env)
    runner = network.principals["deploy-runner"]
    network.principals["tunnel"] = dataclasses.replace(runner, name="tunnel",
                                                       arn=f"arn:aws:iam::{network.account}:role/tunnel-instance")
    broker = next(c for c in calls if c.purpose == "the RabbitMQ provider (management API)")
    reachable = [model.Call("tunnel", f"SSM agent ({service})", f"{service}.eu-west-1.amazonaws.com")
                 for service in ("ssm", "ssmmessages", "ec2messages")]
    reachable.append(dataclasses.replace(broker, principal="tunnel"))
    assert model.check(network, reachable) == {}
    bucket = "al2023-repos-eu-west-1-de612dc2"
    dnf = model.Call("tunnel", "dnf", f"{bucket}.s3.dualstack.eu-west-1.amazonaws.com", actions=("s3:GetObject",),
                     resource=f"arn:aws:s3:::{bucket}/core/mirrors/latest/x86_64/mirror.list",
                     resource_account=model.AWS_OWNED)
    (reasons,) = model.check(network, [dnf]).values()
    assert all("the s3 endpoint's policy refuses s3:GetObject" in reason for reason in reasons)


def test_a_role_without_the_statement_for_a_call_is_reported() -> None:
    import copy
    import json

    network, calls = modelled("dev")
    docs = copy.deepcopy(synth_layers("dev", *LAYERS))  # the cached documents stay as synthesized
    publisher = "ml-platform-dev-queue-metrics"
    for resource in docs["messaging"]["resources"]:
        if resource["type"] == "aws:iam/rolePolicy:RolePolicy" and resource["inputs"]["role"] == publisher:
            policy = json.loads(resource["inputs"]["policy"])
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "PublishQueueMetrics"]
            resource["inputs"]["policy"] = json.dumps(policy)
    assert model.iam_failures(network, docs, calls) == {
        f"lambda:{publisher}: PutMetricData as {publisher}": ["cloudwatch:PutMetricData"]}


def test_the_policy_evaluator_honours_deny_and_refuses_what_it_does_not_know() -> None:
    allow = {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:PrincipalAccount": "1"}}}
    deny = {"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::b/*"}
    policy = {"Statement": [allow, deny]}
    context: dict[str, str | None] = {"aws:PrincipalAccount": "1"}
    assert model.policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/k", context)
    assert not model.policy_allows(policy, "s3:DeleteObject", "arn:aws:s3:::b/k", context)
    assert not model.policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:PrincipalAccount": "2"})
    assert not model.policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/k", {})
    with pytest.raises(NotImplementedError):
        model.policy_allows({"Statement": [{**allow, "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}]},
                            "s3:GetObject", "arn:aws:s3:::b/k", context)


def test_a_rule_resource_on_a_group_with_inline_rules_is_refused() -> None:
    """The model counts each rule once and for good, which holds only where a group's rules are either inline or rule
    resources (a compute-layer rule added to the broker layer's group, which lists its ingress inline, would be revoked
    by the broker layer's next up and added back by compute's): it refuses the mix instead of modelling it."""
    docs = copy.deepcopy(synth_layers("dev", *LAYERS))
    broker = next(r for r in docs["broker"]["resources"] if r["type"] == "aws:ec2/securityGroup:SecurityGroup")
    broker_id = model._id(docs["broker"], broker)
    rule = next(r for r in docs["compute"]["resources"]
                if r["type"] == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    docs["compute"]["resources"].append({
        **rule, "type": "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "name": "compute-broker-in",
        "inputs": {**rule["inputs"], "securityGroupId": broker_id}})
    with pytest.raises(ValueError, match="compute-broker-in: a separate ingress rule of broker-sg, which lists egress "
                                         "and ingress rules inline"):
        model.build(load_env("dev"), docs)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_endpoint_policies_stop_another_accounts_bucket_on_their_own_paths_only(env: str) -> None:
    """What README's "Endpoint policies" promises, and where it ends: a task's write to another account's bucket in the
    env's Region takes the S3 gateway endpoint, whose policy refuses it; the same write to S3 of another Region or to
    S3 Transfer Acceleration, which no gateway endpoint carries (VPC endpoints take no cross-Region requests), leaves
    through the NAT past every endpoint policy (the tasks' 443 to anywhere, which the Service Connect agent's
    `ecs-sc.<region>.api.aws` needs). A domain allow-list on the NAT path would turn the last two into refusals:
    then this test and the README change together."""
    network, _ = modelled(env)
    tasks = next(name for name in network.principals if name.startswith("tasks:"))
    foreign = "arn:aws:iam::444455556666:role/someone-else"

    def put(host: str) -> model.Call:
        return model.Call(tasks, "another account's bucket", host, actions=("s3:PutObject",),
                          resource="arn:aws:s3:::their-bucket/data", resource_account="444455556666", signer=foreign)

    (same_region,) = model.check(network, [put(model.s3_host("their-bucket", network.region))]).values()
    assert all("the s3 endpoint's policy refuses s3:PutObject" in reason for reason in same_region)
    for host in (model.s3_host("their-bucket", "us-east-1"), "their-bucket.s3-accelerate.amazonaws.com"):
        assert model.check(network, [put(host)]) == {}, host
        assert path_of(network, put(host)) == "nat"
