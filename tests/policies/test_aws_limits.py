"""AWS size and count limits a real ``up`` hits as the catalog grows, judged offline by the ``aws`` pack: for each
rule a compliant case, a non-compliant case and a case whose deciding value is unknown at preview (through the
real pack process), and the synthesized layers of a generated catalog (``shared.bench``) that cross the limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.policy.engine import PolicyEngine, evaluate_documents_result
from tests.policies.resources import UNKNOWN_STRING, res
from tests.policies.tokens import ATTACHMENT, FUNCTION, ROLE, ROLE_POLICY, SG
from tests.policies.tokens import EGRESS_RULE as EGRESS
from tests.policies.tokens import INGRESS_RULE as INGRESS
from tests.policies.tokens import MANAGED_POLICY as MANAGED
from tests.policies.tokens import MESH_ROUTE as ROUTE
from tests.policies.tokens import SG_RULE as EC2_RULE
from tests.policies.tokens import VIRTUAL_NODE as NODE
from tests.policies.tokens import VIRTUAL_SERVICE as VSERVICE

LAMBDA_RULE = "lambda-environment-size"
SG_RULE_QUOTA = "security-group-rules-quota"
GROUP_URN = "urn:pulumi:test::test::aws:ec2/securityGroup:SecurityGroup::tasks"
MESH_RULE = "appmesh-mesh-quotas"
IAM_RULE = "iam-policy-size"
ROLE_URN = "urn:pulumi:test::test::aws:iam/role:Role::task"
RESOURCE_POLICY_RULE = "resource-policy-size"


def findings_of(findings: list[dict[str, Any]], rule: str) -> list[str]:
    return [f["message"] for f in findings if f["rule"] == rule]


def the_one(found: list[str], saying: str) -> None:
    """``found`` is one finding, and it says ``saying``."""
    assert len(found) == 1 and saying in found[0], found


def judged(found: list[str], violation: str | None) -> None:
    """No finding where ``violation`` is None, else the one saying it."""
    if violation is None:
        assert found == []
    else:
        the_one(found, violation)


@pytest.fixture
def generated_envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bench's generated catalog of 200 services and env files releasing all of them (``nox -s bench``)."""
    from shared.bench import _scenario_dir
    from shared.catalog import CATALOG_ENV_VAR
    from shared.envs import ENV_DIR_VAR

    catalog, env_dir = _scenario_dir(200, tmp_path)
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog))
    monkeypatch.setenv(ENV_DIR_VAR, str(env_dir))
    return tmp_path


def layer_findings(policy_engine: PolicyEngine, env: str, layer: str) -> list[dict[str, Any]]:
    from shared.synth.engine import synth_env

    document = synth_env(env, [layer])[layer]
    result = evaluate_documents_result([document], env_name=env, engine=policy_engine)
    return [finding.to_json() for finding in result.findings]


# --- ecs-task-definition-size ----------------------------------------------------------------------

TASK_SIZE_RULE = "ecs-task-definition-size"


def task_definition(environment_bytes: int, **extra: Any) -> dict[str, Any]:
    """A Fargate task definition whose one container's single variable holds ``environment_bytes`` of text."""
    container = {"name": "app", "image": "x@sha256:" + "a" * 64, "essential": True,
                 "environment": [{"name": "CALLEES", "value": "x" * environment_bytes}]}
    return res("aws:ecs/taskDefinition:TaskDefinition", "caller", {
        "family": "caller", "containerDefinitions": json.dumps([container]), "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", **extra})


def test_ecs_task_definition_size_refuses_one_past_64_kib_and_passes_one_under(policy_findings: Any) -> None:
    from importlib import import_module

    rule = import_module("policies.aws.rules.ecs-task-definition-size")
    props = {"family": "caller", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256",
             "memory": "512"}
    container = {"name": "app", "image": "x@sha256:" + "a" * 64, "essential": True,
                 "environment": [{"name": "CALLEES", "value": ""}]}
    overhead = rule.measured_bytes(props, [container])
    at_limit = 64 * 1024 - overhead  # the variable's length that makes the definition exactly 64 KiB
    assert findings_of(policy_findings([task_definition(at_limit)]), TASK_SIZE_RULE) == []
    the_one(findings_of(policy_findings([task_definition(at_limit + 1)]), TASK_SIZE_RULE),
            f"measures {64 * 1024 + 1} bytes as compact JSON, more than the 65536 (64 KiB) ECS registers")
    # UTF-8 bytes, not characters
    the_one(findings_of(policy_findings([task_definition(0, tags={"note": "é" * (at_limit // 2 + 1)})]),
                        TASK_SIZE_RULE), "more than the 65536")


def test_ecs_task_definition_size_waits_for_an_unknown_input(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [task_definition(100, executionRoleArn=UNKNOWN_STRING)]
    assert findings_of(policy_findings(resources), TASK_SIZE_RULE) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == TASK_SIZE_RULE]
    assert reasons and "executionRoleArn" in reasons[0]
    # known inputs that already cross the limit decide whatever the unknown one turns out to be
    assert findings_of(policy_findings([task_definition(70_000, executionRoleArn=UNKNOWN_STRING)]), TASK_SIZE_RULE)


def test_the_shipped_envs_task_definitions_fit(policy_engine: PolicyEngine) -> None:
    for env in ("dev", "staging", "prod"):
        assert findings_of(layer_findings(policy_engine, env, "compute"), TASK_SIZE_RULE) == []


# --- lambda-environment-size -------------------------------------------------------------------


def function(variables: dict[str, str]) -> dict[str, Any]:
    return res(FUNCTION, "publisher", {"runtime": "python3.12", "handler": "index.handler", "role": "arn:aws:iam::"
                                       "111111111111:role/publisher", "environment": {"variables": variables}})


@pytest.mark.parametrize(("variables", "violates"), [
    ({"QUEUES": "a" * 4083}, False),  # {"QUEUES":"..."}: 13 + 4083 = 4096 bytes, Lambda's limit exactly
    ({"QUEUES": "a" * 4084}, True),
    ({"QUEUES": "é" * 2042}, True),  # 2042 characters, 4084 bytes in UTF-8: 4097 in all
    ({"A": "x" * 2000, "B": "y" * 2100}, True),  # no variable alone is too long: they count together
    ({}, False),
], ids=["at-the-limit", "one-byte-over", "utf-8-bytes", "together", "none"])
def test_lambda_environment_size(policy_findings: Any, variables: dict[str, str], violates: bool) -> None:
    found = findings_of(policy_findings([function(variables)]), LAMBDA_RULE)
    assert bool(found) is violates
    if violates:
        assert "4096" in found[0] and "code package" in found[0]


def test_lambda_environment_size_waits_for_an_unknown_value(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [function({"QUEUES": "short", "SECRET_ARN": UNKNOWN_STRING})]
    assert findings_of(policy_findings(resources), LAMBDA_RULE) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == LAMBDA_RULE]
    assert reasons and "SECRET_ARN" in reasons[0]
    # known values that already cross the limit decide whatever the unknown one turns out to be
    crossing = [function({"QUEUES": "a" * 5000, "SECRET_ARN": UNKNOWN_STRING})]
    assert findings_of(policy_findings(crossing), LAMBDA_RULE)


def test_the_queue_metrics_publisher_of_the_shipped_dev_fits(policy_engine: PolicyEngine) -> None:
    assert findings_of(layer_findings(policy_engine, "dev", "messaging"), LAMBDA_RULE) == []


def test_200_generated_services_fit_the_queue_metrics_publishers_4_kb(
        generated_envs: Path, policy_engine: PolicyEngine) -> None:
    """The publisher's 400 queues of the bench's 200 services (about 4.8 KB of names) are in its package, not in its
    environment, which keeps the size it has for the shipped dev's 8 queues."""
    from shared.synth.engine import synth_env

    assert findings_of(layer_findings(policy_engine, "dev", "messaging"), LAMBDA_RULE) == []
    [publisher] = [r for r in synth_env("dev", ["messaging"])["messaging"]["resources"]
                   if r["type"] == FUNCTION and r["inputs"]["name"].endswith("-queue-metrics")]
    assert max(len(value) for value in publisher["inputs"]["environment"]["variables"].values()) < 256


# --- security-group-rules-quota ----------------------------------------------------------------


def tasks_group(**inputs: Any) -> dict[str, Any]:
    return res(SG, "tasks", {"vpcId": "vpc-0a1b2c3d4e5f60718", "description": "platform tasks", **inputs})


def port_rule(type_: str, port: int, **peer: Any) -> dict[str, Any]:
    """A standalone rule on the tasks group (recorded as computed from it, as the synth records it)."""
    peer = peer or {"referencedSecurityGroupId": "sg-0peer"}
    return res(type_, f"tasks-{port}", {"securityGroupId": "sg-0tasks", "ipProtocol": "tcp", "fromPort": port,
                                         "toPort": port, "description": f"service port {port}", **peer},
               dependencies=[GROUP_URN], property_dependencies={"securityGroupId": [GROUP_URN]})


@pytest.mark.parametrize(("rules", "violates"), [
    ([port_rule(INGRESS, 8000 + i) for i in range(60)], False),
    ([port_rule(INGRESS, 8000 + i) for i in range(61)], True),
    ([port_rule(EGRESS, 8000 + i) for i in range(61)], True),
    # 40 ingress and 40 egress: each direction has its own 60
    ([port_rule(INGRESS, 8000 + i) for i in range(40)] + [port_rule(EGRESS, 8000 + i) for i in range(40)], False),
    # IPv4 and IPv6 ranges count apart; a group reference counts in both
    ([port_rule(INGRESS, 8000 + i, cidrIpv4="10.0.0.0/16") for i in range(45)]
     + [port_rule(INGRESS, 9000 + i, cidrIpv6="fd00::/56") for i in range(10)]
     + [port_rule(INGRESS, 9500 + i) for i in range(10)], False),
    ([port_rule(INGRESS, 8000 + i, cidrIpv4="10.0.0.0/16") for i in range(51)]
     + [port_rule(INGRESS, 9500 + i) for i in range(10)], True),
], ids=["60-in", "61-in", "61-out", "40-each-way", "ipv4-and-ipv6-apart", "61-ipv4"])
def test_security_group_rules_per_direction(policy_findings: Any, rules: list[dict[str, Any]],
                                            violates: bool) -> None:
    found = findings_of(policy_findings([tasks_group(), *rules]), SG_RULE_QUOTA)
    assert bool(found) is violates, found
    if violates:
        assert "security group 'tasks'" in found[0] and "RulesPerSecurityGroupLimitExceeded" in found[0]


def test_inline_entries_count_each_range_and_group(policy_findings: Any) -> None:
    ranges = [f"10.{i}.0.0/16" for i in range(31)]
    entry = {"protocol": "tcp", "fromPort": 443, "toPort": 443, "description": "HTTPS"}

    def group(second: int) -> dict[str, Any]:
        return tasks_group(ingress=[{**entry, "cidrBlocks": ranges},
                                    {**entry, "cidrBlocks": ranges[:second], "securityGroups": ["sg-0a"]}])

    assert findings_of(policy_findings([group(28)]), SG_RULE_QUOTA) == []  # 31 + 28 + 1 = 60
    found = findings_of(policy_findings([group(30)]), SG_RULE_QUOTA)  # 31 + 30 + 1
    assert len(found) == 1 and "62 IPv4 ingress rules" in found[0], found


def test_rules_of_an_older_rule_type_and_of_a_group_of_another_stack_count(policy_findings: Any) -> None:
    ec2_rules = [res(EC2_RULE, f"legacy-{i}", {"type": "egress", "securityGroupId": "sg-0network", "protocol": "tcp",
                                                "fromPort": 7000 + i, "toPort": 7000 + i, "self": True})
                 for i in range(61)]
    found = findings_of(policy_findings(ec2_rules), SG_RULE_QUOTA)
    assert len(found) == 1 and "sg-0network (of another stack)" in found[0], found


def test_an_unknown_group_or_range_leaves_the_quota_undecided(policy_findings: Any,
                                                                policy_not_applicable: Any) -> None:
    other = res(SG, "other", {"vpcId": "vpc-0a1b2c3d4e5f60718", "description": "another group"})
    undecided = res(INGRESS, "tasks-x", {"securityGroupId": UNKNOWN_STRING, "ipProtocol": "tcp", "fromPort": 1,
                                         "toPort": 1, "cidrIpv4": "10.0.0.0/16", "description": "somewhere"},
                    dependencies=[GROUP_URN, "urn:pulumi:test::test::aws:ec2/securityGroup:SecurityGroup::other"])
    resources = [tasks_group(), other, undecided]
    assert findings_of(policy_findings(resources), SG_RULE_QUOTA) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == SG_RULE_QUOTA]
    assert reasons and "'tasks-x'.securityGroupId" in reasons[0]
    # known rules that already fill the group decide it whatever the unknown one adds
    full = [port_rule(INGRESS, 8000 + i) for i in range(61)]
    assert findings_of(policy_findings([*resources, *full]), SG_RULE_QUOTA)


def test_the_tasks_group_of_the_shipped_envs_fits(policy_engine: PolicyEngine) -> None:
    for env in ("dev", "staging", "prod"):
        assert findings_of(layer_findings(policy_engine, env, "network"), SG_RULE_QUOTA) == [], env


def test_200_generated_services_on_consecutive_ports_fit_the_tasks_group(
        generated_envs: Path, policy_engine: PolicyEngine) -> None:
    """The bench's 199 called services listen on consecutive ports: one range rule each way (it was a rule per called
    service, 199 ingress and 201 egress rules on one group, which up could not create)."""
    assert findings_of(layer_findings(policy_engine, "dev", "network"), SG_RULE_QUOTA) == []


def test_200_generated_services_on_spread_ports_overfill_the_tasks_group(
        generated_envs: Path, policy_engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ports one apart merge into nothing: a rule per called service each way again, past the default 60."""
    import yaml

    from shared.bench import generated_catalog
    from shared.catalog import CATALOG_ENV_VAR

    data = generated_catalog(200)
    for index, spec in enumerate(data["services"].values()):
        spec["port"] = 8000 + 2 * index
    spread = generated_envs / "catalog-spread.yaml"
    spread.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(spread))
    found = findings_of(layer_findings(policy_engine, "dev", "network"), SG_RULE_QUOTA)
    assert len(found) == 2, found
    assert all("security group 'network-services'" in message for message in found)
    assert any("199 IPv4 and 199 IPv6 ingress" in message for message in found)  # a group reference counts in both


# --- appmesh-mesh-quotas -----------------------------------------------------------------------


def node(index: int, backends: int = 0, mesh: str = "dev-ml") -> dict[str, Any]:
    return res(NODE, f"node-{index}" if mesh == "dev-ml" else f"{mesh}-node-{index}", {
        "name": f"svc{index}", "meshName": mesh, "spec": {
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "backends": [{"virtualService": {"virtualServiceName": f"svc{b}.dev.ml.internal"}} for b in range(backends)]}})


def route(name: str, targets: int, router: str = "svc0-weighted") -> dict[str, Any]:
    return res(ROUTE, name, {"name": name, "meshName": "dev-ml", "virtualRouterName": router, "spec": {"httpRoute": {
        "match": {"prefix": "/"}, "action": {"weightedTargets": [
            {"virtualNode": f"svc0-v{i}", "weight": 1} for i in range(targets)]}}}})


@pytest.mark.parametrize(("resources", "violation"), [
    ([node(i) for i in range(200)], None),
    ([node(i) for i in range(201)], "mesh 'dev-ml' gets 201 virtual nodes"),
    # two meshes of 150 nodes each: the quota is per mesh
    ([node(i, mesh="a") for i in range(150)] + [node(i, mesh="b") for i in range(150)], None),
    ([res(VSERVICE, f"vs-{i}", {"name": f"svc{i}.dev.ml.internal", "meshName": "dev-ml"}) for i in range(201)],
     "201 virtual services"),
    ([node(0, backends=50)], None),
    ([node(0, backends=51)], "virtual node 'node-0' has 51 backends"),
    ([route("svc0", 10)], None),
    ([route("svc0", 11)], "11 weighted targets"),
    ([route(f"r{i}", 1) for i in range(51)], "virtual router 'svc0-weighted' of mesh 'dev-ml' has 51 routes"),
], ids=["200-nodes", "201-nodes", "per-mesh", "201-virtual-services", "50-backends", "51-backends",
        "10-weighted-targets", "11-weighted-targets", "51-routes"])
def test_appmesh_mesh_quotas(policy_findings: Any, resources: list[dict[str, Any]], violation: str | None) -> None:
    judged(findings_of(policy_findings(resources), MESH_RULE), violation)


def test_an_unknown_mesh_name_leaves_the_mesh_quotas_undecided(policy_findings: Any,
                                                                 policy_not_applicable: Any) -> None:
    resources = [node(1), res(NODE, "later", {"name": "later", "meshName": UNKNOWN_STRING, "spec": {}})]
    assert findings_of(policy_findings(resources), MESH_RULE) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == MESH_RULE]
    assert reasons and "'later'.meshName" in reasons[0]
    # a known crossing is reported all the same
    assert findings_of(policy_findings([*resources, node(2, backends=51)]), MESH_RULE)


def catalog_scenario(root: Path, monkeypatch: pytest.MonkeyPatch, catalog: dict[str, Any], *,
                     appmesh: bool = False) -> None:
    """``catalog`` with env files that release all of its services (on App Mesh with ``appmesh``)."""
    import yaml

    from shared.bench import _scenario_dir
    from shared.catalog import CATALOG_ENV_VAR
    from shared.envs import ENV_DIR_VAR

    catalog_file, env_dir = _scenario_dir(len(catalog["services"]), root)
    catalog_file.write_text(yaml.safe_dump(catalog, sort_keys=False))
    for path in env_dir.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["release"]["images"] = {name: "sha256:" + "0" * 64 for name in catalog["services"]}
        if appmesh:
            data["mesh"] = {"provider": "appmesh", "appmesh_end_of_support_acknowledged": True}
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(catalog_file))
    monkeypatch.setenv(ENV_DIR_VAR, str(env_dir))


def test_201_generated_services_overfill_an_app_mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     policy_engine: PolicyEngine) -> None:
    """The mesh layer makes a virtual node and a virtual service per catalog service: 201 are one past the mesh's
    default 200 of each."""
    from shared.bench import generated_catalog

    catalog_scenario(tmp_path, monkeypatch, generated_catalog(201), appmesh=True)
    found = findings_of(layer_findings(policy_engine, "dev", "mesh"), MESH_RULE)
    assert sorted(message.split(" from this stack")[0] for message in found) == [
        "mesh 'dev-ml-mesh' gets 201 virtual nodes", "mesh 'dev-ml-mesh' gets 201 virtual services"], found


def test_a_service_calling_51_others_overfills_its_virtual_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                policy_engine: PolicyEngine) -> None:
    from shared.bench import generated_catalog

    catalog = generated_catalog(60)
    catalog["services"]["svc000"]["calls"] = [f"svc{i:03d}" for i in range(1, 52)]
    catalog_scenario(tmp_path, monkeypatch, catalog, appmesh=True)
    the_one(findings_of(layer_findings(policy_engine, "dev", "mesh"), MESH_RULE), "has 51 backends")


# --- iam-policy-size ---------------------------------------------------------------------------

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]})


def policy_of(characters: int) -> str:
    """A policy document of exactly ``characters`` characters without white space (indented: white space is free)."""
    statement: dict[str, str] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}
    shell = {"Version": "2012-10-17", "Statement": [statement]}
    empty = len(json.dumps(shell, separators=(",", ":")))
    statement["Resource"] = "arn:aws:s3:::b/" + "k" * (characters - empty - len("arn:aws:s3:::b/"))
    return json.dumps(shell, indent=4)


def role(**inputs: Any) -> dict[str, Any]:
    return res(ROLE, "task", {"assumeRolePolicy": TRUST, **inputs})


def role_policy(name: str, characters: int) -> dict[str, Any]:
    return res(ROLE_POLICY, name, {"role": "task-0a1b2c3", "policy": policy_of(characters)},
               dependencies=[ROLE_URN], property_dependencies={"role": [ROLE_URN]})


@pytest.mark.parametrize(("resources", "violation"), [
    ([role(), role_policy("a", 5120), role_policy("b", 5120)], None),
    ([role(), role_policy("a", 5120), role_policy("b", 5121)], "inline policies have 10241 characters"),
    ([role(inlinePolicies=[{"name": "x", "policy": policy_of(6000)}]), role_policy("a", 4241)],
     "inline policies have 10241 characters"),
    ([res(MANAGED, "shared", {"policy": policy_of(6144)})], None),
    ([res(MANAGED, "shared", {"policy": policy_of(6145)})], "managed policy 'shared' has 6145 characters"),
    ([role(assumeRolePolicy=policy_of(2049))], "trust policy has 2049 characters"),
    ([role(name="r" * 65)], "has 65 characters; IAM takes at most 64"),
    ([role(managedPolicyArns=[f"arn:aws:iam::111111111111:policy/p{i}" for i in range(10)])], None),
    ([role(managedPolicyArns=[f"arn:aws:iam::111111111111:policy/p{i}" for i in range(10)]),
      res(ATTACHMENT, "extra", {"role": "task-0a1b2c3", "policyArn": "arn:aws:iam::111111111111:policy/q"},
          dependencies=[ROLE_URN], property_dependencies={"role": [ROLE_URN]})], "11 managed policies attached"),
    # a role of another stack: its policies of this stack still add up
    ([res(ROLE_POLICY, f"p{i}", {"role": "shared-role", "policy": policy_of(3500)}) for i in range(3)],
     "role 'shared-role' (of another stack): its inline policies have 10500"),
], ids=["10240-inline", "10241-inline", "inline-and-role-policy", "6144-managed", "6145-managed", "2049-trust",
        "65-name", "10-managed", "11-managed", "role-of-another-stack"])
def test_iam_policy_size(policy_findings: Any, resources: list[dict[str, Any]], violation: str | None) -> None:
    judged(findings_of(policy_findings(resources), IAM_RULE), violation)


def test_an_unknown_policy_is_not_measured(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [role(), res(ROLE_POLICY, "later", {"role": "task-0a1b2c3", "policy": UNKNOWN_STRING},
                             dependencies=[ROLE_URN], property_dependencies={"role": [ROLE_URN]})]
    assert findings_of(policy_findings(resources), IAM_RULE) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == IAM_RULE]
    assert reasons and "'later'.policy" in reasons[0]
    assert findings_of(policy_findings([*resources, role_policy("big", 10241)]), IAM_RULE)


# --- resource-policy-size ----------------------------------------------------------------------


def document_of(size: int, *, indent: int | None = None, character: str = "k") -> str:
    """A policy document of ``size`` characters as sent (``indent`` spaces count: AWS measures what it gets)."""
    statement: dict[str, str] = {"Effect": "Allow", "Action": "s3:GetObject", "Principal": "*", "Resource": ""}
    shell = {"Version": "2012-10-17", "Statement": [statement]}
    empty = len(json.dumps(shell, indent=indent))
    statement["Resource"] = character * (size - empty)
    return json.dumps(shell, indent=indent, ensure_ascii=False)


@pytest.mark.parametrize(("type_", "document", "violation"), [
    ("aws:s3/bucketPolicy:BucketPolicy", document_of(20_480), None),
    ("aws:s3/bucketPolicy:BucketPolicy", document_of(20_481), "S3 bucket policy of 'r' has 20481 bytes"),
    # 10,310 characters, most of them 2 bytes in UTF-8: over 20,480 bytes
    ("aws:s3/bucketPolicy:BucketPolicy", document_of(10_310, character="é"), "S3 bucket policy of 'r' has 20"),
    ("aws:kms/key:Key", document_of(32_768, indent=4), None),
    ("aws:kms/key:Key", document_of(32_769, indent=4), "KMS key policy of 'r' has 32769 bytes"),
    ("aws:ec2/vpcEndpoint:VpcEndpoint", document_of(20_480), None),
    ("aws:ec2/vpcEndpoint:VpcEndpoint", document_of(20_481, indent=2), "20481 characters"),  # white space counts
    ("aws:ecr/repositoryPolicy:RepositoryPolicy", document_of(10_241), "ECR repository policy"),
    ("aws:ecr/registryPolicy:RegistryPolicy", document_of(10_240), None),
    ("aws:secretsmanager/secretPolicy:SecretPolicy", document_of(20_481), "Secrets Manager secret policy"),
], ids=["s3-20480", "s3-20481", "s3-utf8", "kms-32768", "kms-32769", "endpoint-20480", "endpoint-indented",
        "ecr-repository-10241", "ecr-registry-10240", "secret-20481"])
def test_resource_policy_size(policy_findings: Any, type_: str, document: str, violation: str | None) -> None:
    judged(findings_of(policy_findings([res(type_, "r", {"policy": document})]), RESOURCE_POLICY_RULE), violation)


def test_an_unknown_resource_policy_is_undecided(policy_findings: Any, policy_not_applicable: Any) -> None:
    resources = [res("aws:kms/key:Key", "r", {"policy": UNKNOWN_STRING})]
    assert findings_of(policy_findings(resources), RESOURCE_POLICY_RULE) == []
    reasons = [r["reason"] for r in policy_not_applicable(resources) if r["rule"] == RESOURCE_POLICY_RULE]
    assert reasons and "policy" in reasons[0]
