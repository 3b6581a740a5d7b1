"""The offline synth: real programs under Pulumi's mock runtime, deterministic JSON in the documented
schema, upstream outputs fed into downstream StackReference reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT
from shared.dag import order
from shared.envs import env_names
from shared.synth.engine import dumps, synth_env, synth_program
from tests.spec_envs import USER_ENV_DIR, user_envs
from tests.synth_helpers import of_type

PROGRAMS = Path(__file__).parent / "fixtures" / "programs"
SNAPSHOTS = Path(__file__).parent / "snapshots"
# Every env file that deploys (environments/, not the suite's examples: tests/spec_envs.py), not only the shipped
# three: an env a user adds (README, "Add an environment") gets its snapshots from the refresh that step asks for, and
# `nox -s diff -- <env>` and test_plan_diff's URN check compare against them (without them every resource is "added"
# and a protected one replaced goes unnoticed).
ENVS = env_names(USER_ENV_DIR)
RESOURCE_KEYS = ["urn", "type", "name", "custom", "parent", "provider", "dependencies", "inputs", "secret_inputs",
                 "protect", "property_dependencies"]


def run_cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "shared.synth", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)


def test_document_follows_the_documented_schema() -> None:
    document = synth_env("dev", ["network"])["network"]
    assert list(document)[:8] == ["project", "stack", "layer", "env", "resources", "outputs", "secret_outputs",
                                  "stack_references"]
    assert (document["project"], document["stack"], document["layer"], document["env"]) == (
        "network", "dev", "network", "dev")
    for resource in document["resources"]:
        # custom_timeouts only where the program set them (the private subnets and the rotation group), aliases only
        # where the resource answers to former URNs (the tasks' group's port-range rules), delete_before_replace only
        # where the program set it (the flow log)
        optional = [key for key in ("custom_timeouts", "aliases", "additional_secret_outputs", "delete_before_replace")
                    if key in resource]
        assert list(resource) == [*RESOURCE_KEYS, *optional]
        assert set(resource.get("custom_timeouts", {})) <= {"create", "update", "delete"}
        assert resource["urn"].startswith("urn:pulumi:dev::network::")
    components = [r for r in document["resources"] if not r["custom"]]
    assert [c["type"] for c in components] == ["mlplatform:network:VpcNetwork"]


def test_ids_and_arns_are_well_formed() -> None:
    document = synth_env("dev", ["network"])["network"]
    assert document["outputs"]["vpc_id"].startswith("vpc-0")
    assert all(s.startswith("subnet-0") for s in document["outputs"]["private_subnet_ids"])
    (flow_log,) = of_type(document, "aws:ec2/flowLog:FlowLog")
    assert flow_log["inputs"]["iamRoleArn"].startswith("arn:aws:iam::111111111111:role/")
    assert flow_log["inputs"]["logDestination"].startswith("arn:aws:logs:eu-west-1:111111111111:log-group:")


def test_synth_twice_gives_identical_files(tmp_path: Path) -> None:
    first = run_cli("dev", "--build-dir", str(tmp_path / "a"))
    second = run_cli("dev", "--build-dir", str(tmp_path / "b"))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    names = sorted(p.name for p in (tmp_path / "a" / "dev").iterdir())
    assert names == sorted(f"{layer}.json" for layer in order())
    for name in names:
        assert (tmp_path / "a" / "dev" / name).read_bytes() == (tmp_path / "b" / "dev" / name).read_bytes(), name


def test_chained_synth_hands_network_outputs_to_a_downstream_reader() -> None:
    network = synth_env("dev", ["network"])["network"]
    reader = synth_program(PROGRAMS / "reader", stack="dev",
                           stack_outputs={"organization/network/dev": network["outputs"]})
    (sg,) = of_type(reader, "aws:ec2/securityGroup:SecurityGroup")
    assert sg["inputs"]["vpcId"] == network["outputs"]["vpc_id"]
    assert reader["outputs"]["subnets_seen"] == network["outputs"]["private_subnet_ids"]
    assert reader["stack_references"] == ["organization/network/dev"]


def test_every_downstream_layer_reads_its_upstreams_real_outputs() -> None:
    documents = synth_env("dev")
    network_vpc = documents["network"]["outputs"]["vpc_id"]
    for layer in ("discovery", "broker"):
        text = json.dumps(documents[layer]["resources"])
        assert network_vpc in text or any(s in text for s in documents["network"]["outputs"]["private_subnet_ids"]), \
            f"{layer} uses the network layer's synthesized values"


@pytest.mark.parametrize("program", ["bad_reader", "bad_field_reader"])  # upstream["name"] and upstream.field("name")
def test_reading_an_undeclared_output_fails_at_synth_time(tmp_path: Path, program: str) -> None:
    result = run_cli("--program", str(PROGRAMS / program), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "nat_gateway_ids" in result.stderr and "NetworkContract does not declare" in result.stderr
    assert "(declared: vpc_id, " in result.stderr
    assert "KeyError" not in result.stderr and "mock answers" not in result.stderr
    assert not tmp_path.joinpath(program.replace("_", "-") + ".json").exists()


def test_an_invalid_env_file_dev_reads_for_its_replication_says_why_dev_reads_it(env_dir: Path) -> None:
    """dev's compute reads every env file for the envs it replicates images to: a new env file with a schema error
    stops dev's synth (its account and region would be a guess), saying why dev reads it."""
    data = yaml.safe_load((env_dir / "staging.yaml").read_text())
    data.update(account_id="444444444444")
    data["policy"]["baseline"] = "staging"
    data["network"].update(cidr="10.40.0.0/16", az_count="3")
    (env_dir / "qa.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("dev")
    assert result.returncode == 2, result.stderr
    assert ("error: dev replicates its images to each env whose compute.image_source is dev, so it reads every env "
            f"file: {env_dir / 'qa.yaml'}: network.az_count: Input should be a valid integer") in result.stderr
    assert "Traceback" not in result.stderr


def test_a_repo_file_a_layer_program_names_is_shown_from_the_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """A program runs from stacks/<layer>: the env file or catalog it names is shown as from the root, where the
    commands run (not as an absolute path)."""
    from shared.errors import ConfigError, display_path

    monkeypatch.chdir(REPO_ROOT / "stacks" / "compute")
    assert display_path(str(REPO_ROOT / "environments" / "qa.yaml")) == "environments/qa.yaml"
    assert display_path(str(REPO_ROOT / "stacks" / "compute" / "Pulumi.yaml")) == "Pulumi.yaml"
    assert display_path("/elsewhere/qa.yaml") == "/elsewhere/qa.yaml"
    assert str(ConfigError(str(REPO_ROOT / "environments" / "qa.yaml"), "name", "x")) == "environments/qa.yaml: name: x"


def test_a_producer_must_export_exactly_its_contract() -> None:
    from shared.contracts import export_contract
    from shared.errors import ContractError

    with pytest.raises(ContractError, match=r"missing .*vpc_cidr.*not declared nat_ids"):
        export_contract("network", vpc_id="vpc-1", availability_zones=[], public_subnet_ids=[],
                        private_subnet_ids=[], service_security_group_id="sg-1", nat_ids=[])


def test_a_layer_cannot_read_a_layer_the_dag_does_not_give_it() -> None:
    from shared.contracts import Upstream
    from shared.errors import ContractError

    with pytest.raises(ContractError, match=r"reads only nothing"):
        Upstream("network", "compute", "organization", "dev")


class TestAnyProgram:
    def test_a_plain_pulumi_aws_program(self, tmp_path: Path) -> None:
        result = run_cli("--program", str(PROGRAMS / "aws_app"), "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
        document = json.loads((tmp_path / "aws-app.json").read_text())
        assert document["layer"] is None and document["env"] is None
        (task,) = of_type(document, "aws:ecs/taskDefinition:TaskDefinition")
        image = json.loads(task["inputs"]["containerDefinitions"])[0]["image"]
        assert image.startswith("123456789012.dkr.ecr.us-west-2.amazonaws.com/app-") and image.endswith(":latest")
        (version,) = of_type(document, "aws:secretsmanager/secretVersion:SecretVersion")
        assert version["secret_inputs"] == ["secretString"], "a secret config value stays secret"
        assert document["outputs"]["zones"] == ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]

    def test_a_plain_pulumi_rabbitmq_program(self, tmp_path: Path) -> None:
        result = run_cli("--program", str(PROGRAMS / "rabbitmq_app"), "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
        document = json.loads((tmp_path / "rabbitmq-app.json").read_text())
        (user,) = of_type(document, "rabbitmq:index/user:User")
        assert user["secret_inputs"] == ["password"]
        (permissions,) = of_type(document, "rabbitmq:index/permissions:Permissions")
        assert permissions["inputs"]["permissions"]["read"] == "^svc\\.work$"
        assert permissions["dependencies"], "dependencies are recorded"

    def test_with_an_env_the_program_gets_its_account_region_and_stack(self, tmp_path: Path) -> None:
        result = run_cli("--program", str(PROGRAMS / "rabbitmq_app"), "--env", "prod", "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / "rabbitmq-app.json").read_text())["stack"] == "prod"

    def test_common_data_sources_get_plausible_answers(self) -> None:
        document = synth_program(PROGRAMS / "lookups", stack="dev")
        (group,) = of_type(document, "aws:ec2/securityGroup:SecurityGroup")
        assert group["inputs"]["vpcId"].startswith("vpc-0")
        assert document["outputs"]["cidr"] == "172.31.0.0/16"
        assert len(document["outputs"]["subnets"]) == 6 and all(s.startswith("subnet-0")
                                                                for s in document["outputs"]["subnets"])

    def test_a_directory_that_is_not_a_pulumi_project(self, tmp_path: Path) -> None:
        result = run_cli("--program", str(tmp_path), "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and "Pulumi.yaml" in result.stderr


@pytest.fixture(scope="module")
def synthesized() -> dict[str, dict[str, Any]]:
    """The synth of the env files that deploy (environments/): the snapshots are theirs."""
    with user_envs():
        return {env: synth_env(env) for env in ENVS}


@pytest.mark.parametrize("env", ENVS)
def test_no_security_group_admits_every_port_from_the_vpc_cidr(
        env: str, synthesized: dict[str, dict[str, Any]]) -> None:
    import ipaddress

    # IPv4 both: a VPC's primary CIDR and the cidrBlocks/cidrIpv4 peers (IPv6 peers have fields of their own)
    vpc = ipaddress.IPv4Network(synthesized[env]["network"]["outputs"]["vpc_cidr"])
    resources = [r for document in synthesized[env].values() for r in document["resources"]]
    entries = []  # (resource name, protocol, from, to, cidrs)
    for r in resources:
        inputs = r["inputs"]
        if r["type"] in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
            entries += [(r["name"], e["protocol"], e["fromPort"], e["toPort"], e.get("cidrBlocks", []))
                        for e in inputs.get("ingress", [])]
        elif r["type"] == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
            entries.append((r["name"], inputs["ipProtocol"], inputs.get("fromPort", 0), inputs.get("toPort", 65535),
                            [inputs["cidrIpv4"]] if "cidrIpv4" in inputs else []))
        else:
            assert r["type"] != "aws:ec2/securityGroupRule:SecurityGroupRule", "not used by the platform"
    assert entries, "the platform's security groups admit something"
    for name, protocol, low, high, cidrs in entries:
        covers_vpc = any(vpc.subnet_of(ipaddress.IPv4Network(c)) for c in cidrs)
        all_ports = str(protocol) == "-1" or (low <= 1 and high >= 65535)
        assert not (covers_vpc and all_ports), f"{name} admits every port from {cidrs}"
    assert not any(r["type"] == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
                   and r["inputs"].get("cidrIpv4") for r in resources), "in-VPC peers are referenced by their SG"
    # EC2 takes exactly one peer per rule (botocore ec2 model, SecurityGroupRuleRequest).
    for r in resources:
        if r["type"].startswith("aws:vpc/securityGroup"):
            peers = [k for k in ("cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId")
                     if r["inputs"].get(k)]
            assert len(peers) == 1, f"{r['name']}: {peers}"


@pytest.mark.parametrize("env", ENVS)
def test_every_layer_protects_exactly_the_stateful_types_where_the_env_protects_state(
        env: str, synthesized: dict[str, dict[str, Any]]) -> None:
    from shared.envs import load_env
    from shared.protect import STATEFUL_TYPES

    with user_envs():
        protects = load_env(env).protect
    resources = [r for document in synthesized[env].values() for r in document["resources"]]
    wrong = sorted(f"{r['type']} {r['name']}" for r in resources
                   if r["protect"] is not (protects and r["type"] in STATEFUL_TYPES))
    assert wrong == []
    by_type = {r["type"] for r in resources}
    for stateless in ("aws:ec2/route:Route", "aws:ec2/routeTableAssociation:RouteTableAssociation"):
        assert stateless in by_type and not any(r["protect"] for r in resources if r["type"] == stateless)
    if protects:
        for stateful in ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:mq/broker:Broker",
                         "rabbitmq:index/vHost:VHost", "rabbitmq:index/queue:Queue", "aws:s3/bucket:Bucket",
                         "aws:secretsmanager/secret:Secret", "aws:kms/key:Key",
                         "aws:ecr/repository:Repository", "aws:cloudwatch/logGroup:LogGroup",
                         "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"):
            matching = [r for r in resources if r["type"] == stateful]
            assert matching and all(r["protect"] for r in matching), stateful


@pytest.mark.parametrize("env", ENVS)
def test_every_role_is_deleted_with_the_policies_attached_to_it_out_of_band(
        env: str, synthesized: dict[str, dict[str, Any]]) -> None:
    """IAM refuses DeleteRole while a managed or inline policy the stacks do not own is on the role (DeleteConflict:
    one a security team or AWS Config remediation attached). The provider removes them first only where the role
    sets forceDetachPolicies; without it a destroy, or an `up` replacing the role, stops at the role half-way."""
    roles = [r for document in synthesized[env].values() for r in document["resources"]
             if r["type"] == "aws:iam/role:Role"]
    assert len({r["urn"].split("::")[2] for r in roles}) > 1, "roles of several layers are checked"
    assert [r["name"] for r in roles if r["inputs"].get("forceDetachPolicies") is not True] == []


def test_the_types_that_hold_data_are_written_out_here_not_read_from_the_code() -> None:
    """The layers' protect, the rules prod-protect-stateful and protect-only-stateful and the test above read one
    list: a type dropped from it would pass them all (and a snapshot refresh). Changing it is a decision taken here."""
    from shared.protect import STATEFUL_TYPES

    assert STATEFUL_TYPES == {
        "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:mq/broker:Broker", "rabbitmq:index/vHost:VHost",
        "rabbitmq:index/queue:Queue", "aws:secretsmanager/secret:Secret", "aws:kms/key:Key",
        "aws:ecr/repository:Repository", "aws:cloudwatch/logGroup:LogGroup", "aws:s3/bucket:Bucket",
        "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",
        "aws:servicediscovery/publicDnsNamespace:PublicDnsNamespace",
        "aws:servicediscovery/httpNamespace:HttpNamespace",
    }


@pytest.mark.parametrize("layer", order())
@pytest.mark.parametrize("env", ENVS)
def test_snapshot(env: str, layer: str, synthesized: dict[str, dict[str, Any]]) -> None:
    """A change in synthesized output shows as a reviewable diff of tests/snapshots/.

    After an intended change: ``UPDATE_SNAPSHOTS=1 nox -s tests -- tests/test_synth.py`` and review
    the diff in git like any other code change.
    """
    path = SNAPSHOTS / env / f"{layer}.json"
    actual = dumps(synthesized[env][layer])
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    refresh = (f"read `nox -s diff -- {env}` first, then after an intended change: "
               "`UPDATE_SNAPSHOTS=1 nox -s tests -- tests/test_synth.py`, and review the diff in git")
    assert path.exists(), f"{path} is missing: {refresh}"
    assert actual == path.read_text(), f"{path} is out of date: {refresh}"
