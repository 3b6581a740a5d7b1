"""Environments are validated before anything runs: a bad file stops everything with exit 2,
one message naming the file, the key path and the reason, and nothing written to build/."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.envs import load_env
from shared.errors import ConfigError


def synth_cli(*args: str, build_dir: Path, env_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLATFORM_ENV_DIR": str(env_dir), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "shared.synth", *args, "--build-dir", str(build_dir)],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)


class TestTheShippedEnvironments:
    def test_dev_has_two_azs_and_one_nat(self) -> None:
        env = load_env("dev")
        assert env.network.az_count == 2 and env.network.nat == "single"

    def test_staging_has_three_azs(self) -> None:
        assert load_env("staging").network.az_count == 3

    def test_prod_has_three_azs_and_a_nat_per_az(self) -> None:
        env = load_env("prod")
        assert env.network.az_count == 3 and env.network.nat == "per-az"
        assert env.protect, "prod protects its stateful resources"

    def test_only_prod_protects_its_stateful_resources_by_name(self) -> None:
        assert [name for name in ("dev", "staging", "prod") if load_env(name).protect] == ["prod"]

    def test_cidrs_do_not_overlap(self) -> None:
        networks = [load_env(name).network.cidr for name in ("dev", "staging", "prod")]
        assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])

    def test_every_release_pins_every_catalog_service_by_digest(self) -> None:
        from shared.catalog import load_catalog
        from shared.envs import is_digest

        for name in ("dev", "staging", "prod"):
            images = load_env(name).release.images
            assert set(images) == set(load_catalog().names())
            assert all(is_digest(ref) for ref in images.values())


def _set(path: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


def _both(*changes: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        for one in changes:
            one(data)
    return change


def _delete(path: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    return change


MALFORMED = [
    # (what, change, key in the message, words of the reason)
    ("invalid CIDR", _set("network.cidr", "10.10.0.0/33"), "network.cidr", "not a valid IPv4 CIDR"),
    ("CIDR with host bits", _set("network.cidr", "10.10.1.0/16"), "network.cidr", "not a valid IPv4 CIDR"),
    # the subnets are carved /20 to /26 below it: a /23 leaves no room for them, a /15 is more than AWS gives a VPC
    *((f"CIDR {cidr}", _set("network.cidr", cidr), "network.cidr", "the VPC prefix must be between /16 and /22")
      for cidr in ("10.10.0.0/23", "10.10.0.0/15")),
    ("overlapping CIDR", _set("network.cidr", "10.20.0.0/16"), "network.cidr", "overlaps 10.20.0.0/16"),
    # not only the same block: one inside another env's overlaps as much for peering and routes
    ("CIDR inside another env's", _set("network.cidr", "10.20.128.0/17"), "network.cidr", "overlaps 10.20.0.0/16"),
    # RFC 1918 only: loopback, link-local and reserved ranges Python's is_private admits are no VPC's
    *((f"CIDR {cidr}", _set("network.cidr", cidr), "network.cidr", "not inside a private (RFC 1918) range")
      for cidr in ("127.0.0.0/16", "169.254.0.0/16", "198.18.0.0/16", "240.0.0.0/16", "8.8.0.0/16")),
    # AWS VPC guide: some AWS services use 172.17.0.0/16 (Docker's bridge); not for a VPC
    ("CIDR over Docker's bridge", _set("network.cidr", "172.17.128.0/20"), "network.cidr", "overlaps 172.17.0.0/16"),
    ("zero AZs", _set("network.az_count", 0), "network.az_count", "greater than or equal to 1"),
    ("more AZs than the region has", _set("network.az_count", 4), "network.az_count", "offers 3 availability zones"),
    ("unknown key", _set("network.nat_gateways", 2), "network.nat_gateways", "unknown key"),
    # an ML team asking for a GPU is told Fargate has none, not only that the key is unknown
    ("a GPU asked of Fargate", _set("services.training.gpu", 1), "services.training.gpu", "Fargate has no GPU"),
    # AZ names are the account's own; the loader checks their form, the preflight the account (test_orchestrate_account)
    ("an AZ of another region", _set("network.availability_zones", ["eu-west-1a", "us-west-1b"]),
     "network.availability_zones", "us-west-1b: not an availability zone name of eu-west-1"),
    ("a Local Zone", _set("network.availability_zones", ["eu-west-1a", "eu-west-1-lhr-1a"]),
     "network.availability_zones", "eu-west-1-lhr-1a: not an availability zone name"),
    ("an AZ twice", _set("network.availability_zones", ["eu-west-1a", "eu-west-1a"]),
     "network.availability_zones", "listed twice"),
    ("fewer AZs than az_count", _set("network.availability_zones", ["eu-west-1b"]),
     "network.availability_zones", "lists 1 availability zones, but network.az_count is 2"),
    ("wrong type", _set("network.az_count", "two"), "network.az_count", "valid integer"),
    ("missing required key", _delete("account_id"), "account_id", "required key is missing"),
    ("unknown mesh provider", _set("mesh.provider", "istio"), "mesh.provider", "'service-connect' or 'appmesh'"),
    ("unknown NAT strategy", _set("network.nat", "double"), "network.nat", "'none', 'single' or 'per-az'"),
    # App Mesh's alone: a service-connect env would believe its egress filtered or its proxy pinned
    ("App Mesh egress filter in a service-connect env", _set("mesh.egress_filter", "DROP_ALL"), "mesh.egress_filter",
     "provider service-connect has none of"),
    ("unknown service in release", _set("release.images.billing", "sha256:" + "a" * 64), "release.images.billing",
     "unknown service"),
    # a digest pasted without "sha256:" would be read as a tag and resolved against the registry at up
    ("digest without its algorithm", _set("release.images.gateway", "A" * 64), "release.images",
     f"is a digest without its algorithm: write sha256:{'a' * 64}"),
    ("short suppression reason", _set("policy.suppressions", [{"rule": "ecr-kms-encryption", "resource": "x",
                                                                "reason": "because"}]),
     "policy.suppressions.0.reason", "at least 10 characters"),
    ("unknown rule id", _set("policy.enforcement", {"no-such-rule": "mandatory"}), "policy.enforcement.no-such-rule",
     "unknown rule id"),
    # an env-wide version tag would reach the stable units' tasks and fail their scale-in protection grant
    ("env-wide version tag", _set("tags.version", "2"), "tags.version", "a tag the platform sets per resource"),
    ("env-wide service tag", _set("tags.service", "ml"), "tags.service", "a tag the platform sets per resource"),
    # IAM role tag keys are case-insensitive: CreateRole fails on the duplicate, TagRole overwrites the scope tag
    ("platform tag in another case", _set("tags.Env", "x"), "tags.Env", "the platform's own 'env' tag to IAM"),
    ("platform tag's own key", _set("tags.managed-by", "me"), "tags.managed-by", "the platform's own 'managed-by'"),
    ("per-resource tag in another case", _set("tags.Version", "2"), "tags.Version", "the platform's own 'version'"),
    # default tags land on every IAM role, ECS service, log group and load balancer, whose tag keys and values are
    # [\p{L}\p{Z}\p{N}_.:/=+\-@], keys 1-128 and values 0-256 characters, at most 50 (botocore iam tagKeyType,
    # tagValueType, tagListType): otherwise a layer's first create fails mid-up, after the earlier layers applied
    ("YAML boolean as a tag value", _set("tags.critical", True), "tags.critical", "not a string"),
    ("YAML number as a tag value", _set("tags.code", 1.1), "tags.code", "put the value in quotes"),
    ("empty tag value", _set("tags.note", None), "tags.note", "not a string"),
    ("mapping as a tag value", _set("tags.owner", {"a": 1}), "tags.owner", "not a string"),
    # AWS takes an empty value, but the AWS provider's default tags do not apply one reliably: a change to "" leaves
    # every resource with the old value, the second up reports nothing to do (hashicorp/terraform-provider-aws#37297)
    ("empty string as a tag value", _set("tags.owner", ""), "tags.owner", "remove the key instead"),
    ("blank team", _set("tags.team", "  "), "tags.team", "remove the key instead"),
    ("tag value with a comma", _set("tags.owner", "a,b"), "tags.owner", "',' is not a character AWS takes in a tag"),
    ("team with a semicolon", _set("tags.team", "ml;ops"), "tags.team", "';' is not a character AWS takes"),
    ("tag value over 256 characters", _set("tags.note", "x" * 257), "tags.note", "257 characters; AWS takes 256"),
    ("tag key over 128 characters", _set("tags." + "k" * 129, "x"), "tags." + "k" * 129,
     "129 characters; AWS takes 128"),
    ("tag key with AWS's prefix", _set("tags.aws:owner", "x"), "tags.aws:owner", "reserved for AWS"),
    # YAML 1.1 reads an unquoted on/off/yes/no/true/false key as a boolean (pydantic named it by its index, "1.[key]")
    ("unquoted on as a service name", lambda data: data["services"].update({True: {"desired_count": 1}}),
     "services.True", "a key YAML read as the bool True"),
    ("unquoted no as a rule id", _set("policy.enforcement", {False: "advisory"}), "policy.enforcement.False",
     "quote it"),
    # IAM tagKeyType (and ecs, elbv2, logs TagKey) is 1-128 characters: an empty key fails every role's CreateRole
    ("empty tag key", lambda data: data["tags"].update({"": "x"}), "tags.", "the key is empty"),
    # a key of an extra="allow" model pydantic names by its index ("tags.1: Keys should be strings")
    ("unquoted on as a tag key", lambda data: data["tags"].update({True: "x"}), "tags.True",
     "a key YAML read as the bool True"),
    ("more tags than a resource takes", lambda data: data["tags"].update({f"t{n}": "x" for n in range(42)}), "tags",
     "at most 41 of its own"),
    # CPU target tracking does not scale on insufficient data, and a service with no task has no CPU metric; a
    # service called over HTTP fails its callers at 0 tasks, whatever its backlog (tests/layers/test_autoscaling.py)
    # Application Auto Scaling's range is min..max (RegisterScalableTarget), and the first deployment's count within it
    *((f"counts {counts}", _set("services.training", counts), "services.training",
       "counts must satisfy min_count <= desired_count <= max_count")
      for counts in ({"min_count": 1, "desired_count": 3, "max_count": 2},
                     {"min_count": 2, "desired_count": 1, "max_count": 3})),
    ("min_count 0 for a service others call", _set("services.inference", {"desired_count": 0, "min_count": 0,
                                                                           "max_count": 2}),
     "services.inference.min_count", "HTTP requests from gateway, preprocess would fail while it has no task"),
    ("min_count 0 for a public service", _set("services.gateway", {"desired_count": 1, "min_count": 0,
                                                                   "max_count": 2}),
     "services.gateway.min_count", "HTTP requests from the load balancer would fail"),
    # its queue alone scales a consumer no HTTP request reaches: it has no CPU policy for the value to set
    ("cpu target for a consumer no request reaches", _set("services.training.cpu_target_percent", 70),
     "services.training.cpu_target_percent", "has no effect: training scales on its queue alone"),
    # nor where the env publishes no queue metrics: only its queue brings it work, its CPU never scales it
    ("cpu target for a queue-only consumer on an external broker",
     _both(_set("services.training.cpu_target_percent", 70),
           _set("messaging", {"broker": "external", "external": {
               "amqps_endpoint": "amqps://mq.example.internal:5671",
               "management_endpoint": "https://mq.example.internal:15671"}})),
     "services.training.cpu_target_percent", "has no effect: training runs between min_count and max_count"),
    # the deploy and read roles are granted the key; gocloud's role= makes the CLI's KMS calls as another role
    ("KMS provider making its calls as another role",
     _set("state", {"secrets_provider": "awskms://alias/pulumi-state?region=eu-west-1&role=arn:aws:iam::1:role/x"}),
     "state.secrets_provider", "role= parameter makes every KMS call as that role"),
    ("KMS key ARN asked of another region's KMS",
     _set("state", {"secrets_provider": "awskms:///arn:aws:kms:eu-west-1:111111111111:alias/pulumi-state"
                                        "?region=us-east-1"}),
     "state.secrets_provider", "is not the region of the key ARN (eu-west-1)"),
    ("KMS key ARN of another region without region=",
     _set("state", {"secrets_provider": "awskms:///arn:aws:kms:us-east-1:111111111111:alias/pulumi-state"}),
     "state.secrets_provider", "add ?region=us-east-1"),
    # RabbitMQ counts ready messages only against max-length, and the depth alarms read ready messages
    ("queue depth alarm above the queue's length limit", _set("messaging.max_length", 500),
     "alarms.queue_depth", "1000 is above messaging.max_length (500)"),
    ("DLQ depth alarm above the DLQ's length limit", _both(_set("alarms.dead_letter_depth", 20),
                                                           _set("messaging.dead_letter_max_length", 10)),
     "alarms.dead_letter_depth", "20 is above messaging.dead_letter_max_length (10)"),
    # a delivery returned to its queue keeps its first expiry (RabbitMQ, "Time-To-Live and Expiration"): past the
    # TTL a stopped job is dead-lettered as expired, not tried again (tests/test_queue_ttl_change.py shows it)
    ("message TTL shorter than the retries of the longest job", _set("messaging.message_ttl_ms", 3_600_000),
     "messaging.message_ttl_ms", "shorter than 6 deliveries (the first and messaging.delivery_limit 5 more) of "
                                 "training's longest job (21600000 ms"),
    ("message TTL that one more try no longer fits", _set("messaging.delivery_limit", 6),
     "messaging.message_ttl_ms", "give at least 151200000 (42 hours)"),
    ("message TTL past what RabbitMQ takes", _set("messaging.message_ttl_ms", 4_294_967_296),
     "messaging.message_ttl_ms", "less than or equal to 4294967295"),
    # PutMetricAlarm refuses it midway through an up (botocore cloudwatch: period x evaluation periods <= 1 day)
    ("alarm window over a day", _both(_set("alarms.period_seconds", 1800), _set("alarms.evaluation_periods", 49)),
     "alarms", "88200 s; CloudWatch allows at most 86400 s"),
]


@pytest.mark.parametrize(("what", "change", "key", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_env_exits_2_naming_file_key_and_reason(
    what: str, change: Any, key: str, reason: str, edit_env: Any, env_dir: Path, tmp_path: Path
) -> None:
    edit_env("dev", change)
    build = tmp_path / "build"
    result = synth_cli("dev", build_dir=build, env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert "dev.yaml" in message and key in message and reason in message, message
    assert len(message.splitlines()) == 1, "one message, not a traceback"
    assert not build.exists(), "nothing written to build/"


def test_the_accounts_availability_zones_stand_in_for_the_regions_table(edit_env: Any) -> None:
    """A us-west-1 account has two of us-west-1a/b/c, which two is the account's own (AWS Regions and Availability
    Zones guide, "AZ IDs"): the env file names them, and the network layer's subnets are there."""
    from shared.catalog import load_catalog
    from shared.components.network import VpcNetworkArgs

    edit_env("dev", lambda data: data.update(region="us-west-1"))
    assert load_env("dev").availability_zones == ["us-west-1a", "us-west-1c"]  # shared/regions.py's
    edit_env("dev", lambda data: data["network"].update(availability_zones=["us-west-1c", "us-west-1b"]))
    env = load_env("dev")
    assert env.availability_zones == ["us-west-1c", "us-west-1b"]  # in the file's order (each AZ's CIDR block)
    assert VpcNetworkArgs.from_env(env, load_catalog()).availability_zones == ["us-west-1c", "us-west-1b"]


def test_a_cluster_in_a_region_of_two_azs_is_told_to_change_mode_or_region(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    # us-west-1 has two AZs in any account: raising network.az_count cannot give a CLUSTER_MULTI_AZ broker its three
    edit_env("prod", _set("region", "us-west-1"))
    result = synth_cli("prod", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "network.az_count: us-west-1 offers 2 availability zones, not 3" in result.stderr, result.stderr
    assert ("messaging.deployment_mode: CLUSTER_MULTI_AZ runs three nodes in 3 availability zones, and us-west-1 "
            "offers 2: use SINGLE_INSTANCE, or a region with 3") in result.stderr, result.stderr
    assert "raise it" not in result.stderr and "az_count is 2" not in result.stderr, result.stderr

    # az_count above the region's, a single broker: the count's own reason only
    edit_env("prod", _set("messaging.deployment_mode", "SINGLE_INSTANCE"))
    result = synth_cli("prod", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "network.az_count: us-west-1 offers 2" in result.stderr and "deployment_mode" not in result.stderr
    assert not (tmp_path / "build").exists()


def test_prod_cannot_loosen_a_mandatory_rule(edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    edit_env("prod", _set("policy.enforcement", {"ecr-immutable-tags": "advisory"}))
    result = synth_cli("prod", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "policy.enforcement.ecr-immutable-tags" in result.stderr and "suppression" in result.stderr


def test_yaml_syntax_error_names_the_line(env_dir: Path, tmp_path: Path) -> None:
    path = env_dir / "dev.yaml"
    path.write_text(path.read_text() + "\nnetwork: [unclosed\n")
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "dev.yaml" in result.stderr and "line" in result.stderr and "YAML syntax error" in result.stderr
    assert not (tmp_path / "build").exists()


def test_unknown_env_name_lists_the_known_ones(env_dir: Path, tmp_path: Path) -> None:
    result = synth_cli("qa", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "qa.yaml" in result.stderr and "unknown environment 'qa'" in result.stderr and "dev" in result.stderr
    assert not (tmp_path / "build").exists()


def test_a_top_level_list_is_refused(env_dir: Path, tmp_path: Path) -> None:
    (env_dir / "dev.yaml").write_text("- just\n- a list\n")
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2 and "must be a mapping" in result.stderr


def test_a_new_env_file_ending_in_yml_is_named_when_its_env_is_unknown(env_dir: Path, tmp_path: Path) -> None:
    # README, "Add an environment": environments/<name>.yaml; a copy saved as qa.yml is read by no command.
    (env_dir / "qa.yml").write_text((env_dir / "staging.yaml").read_text())
    result = synth_cli("qa", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "qa.yaml: (file): unknown environment 'qa'" in result.stderr
    assert "qa.yml is not read: rename it qa.yaml" in result.stderr
    assert not (tmp_path / "build").exists()


def test_a_new_env_names_the_policy_column_it_follows(env_dir: Path, tmp_path: Path) -> None:
    """README, "Add an environment": copy staging, give it its own account, CIDR and a policy baseline."""
    text = (env_dir / "staging.yaml").read_text().replace("10.20.0.0/16", "10.40.0.0/16")
    text = text.replace('account_id: "222222222222"', 'account_id: "444444444444"')
    (env_dir / "qa.yaml").write_text(text)
    refused = synth_cli("qa", build_dir=tmp_path / "refused", env_dir=env_dir)
    assert refused.returncode == 2 and "qa.yaml: policy.baseline: required" in refused.stderr
    (env_dir / "qa.yaml").write_text(text.replace("policy:\n", "policy:\n  baseline: staging\n", 1))
    accepted = synth_cli("qa", build_dir=tmp_path / "build", env_dir=env_dir)
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "build" / "qa" / "compute.json").is_file()


# -- every error at once, before anything runs -----------------------------------------------------------


def orchestrate_cli(*args: str, env_dir: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **extra_env, "PLATFORM_ENV_DIR": str(env_dir), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "shared.orchestrate", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, check=False, timeout=120)


def _three_cross_layer_problems(data: dict[str, Any]) -> None:
    """Each of these passed the env loader before and failed only in the layer that uses it."""
    data["mesh"]["canaries"] = {"inference": [{"version": "stable", "weight": 90},
                                              {"version": "next", "weight": 10}]}  # mesh layer
    data["messaging"]["deployment_mode"] = "CLUSTER_MULTI_AZ"  # broker layer: dev has 2 AZs
    data["services"]["inference"].update(cpu=2048, memory=2048)  # compute layer: not a Fargate pair


CROSS_LAYER = [
    ("mesh.canaries", "need provider 'appmesh'"),
    ("messaging.deployment_mode", "CLUSTER_MULTI_AZ runs three nodes in 3 availability zones"),
    ("services.inference.cpu", "memory 2048 does not go with cpu 2048"),
]


def _assert_lists_every_problem(stderr: str, expected: list[tuple[str, str]]) -> None:
    assert f"{len(expected)} problems in" in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == len(expected) + 1, "a header line, then one line per problem"
    for key, reason in expected:
        assert any(f"dev.yaml: {key}: " in line and reason in line for line in lines), (key, stderr)
    assert "Traceback" not in stderr


def _assert_dev_synth_refused(edit_env: Any, env_dir: Path, tmp_path: Path,
                              change: Callable[[dict[str, Any]], None], expected: list[tuple[str, str]]) -> None:
    """Synth of dev, its env file edited by ``change``, exits 2 listing exactly ``expected`` and writes nothing."""
    edit_env("dev", change)
    build = tmp_path / "build"
    result = synth_cli("dev", build_dir=build, env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    _assert_lists_every_problem(result.stderr, expected)
    assert not build.exists(), "nothing written to build/"


def test_synth_lists_every_cross_layer_problem_and_writes_nothing(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    _assert_dev_synth_refused(edit_env, env_dir, tmp_path, _three_cross_layer_problems, CROSS_LAYER)


def test_up_lists_every_cross_layer_problem_before_any_pulumi_call(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    from tests.test_orchestrate_automation import FAKE_CLI

    edit_env("dev", _three_cross_layer_problems)
    bin_dir, state = tmp_path / "bin", tmp_path / "fake-state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "pulumi").write_text(f"#!{sys.executable}\n" + FAKE_CLI.read_text())
    (bin_dir / "pulumi").chmod(0o755)
    result = orchestrate_cli("up", "dev", "--yes", env_dir=env_dir, extra_env={
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_PULUMI_DIR": str(state),
        "PULUMI_BACKEND_URL": (tmp_path / "backend").as_uri(), "PULUMI_CONFIG_PASSPHRASE": "not a secret"})
    assert result.returncode == 2, result.stderr
    _assert_lists_every_problem(result.stderr, CROSS_LAYER)
    assert not (state / "calls.jsonl").exists(), "no pulumi call was made"
    assert not (tmp_path / "backend").exists()


def test_the_loader_refuses_what_the_layers_refused_one_at_a_time(edit_env: Any) -> None:
    """The same three, as the ConfigErrors the loader raises (file, key and reason of each)."""
    from shared.errors import ConfigErrors

    edit_env("dev", _three_cross_layer_problems)
    with pytest.raises(ConfigErrors) as raised:
        load_env("dev")
    problems = raised.value.problems
    assert [p.key for p in problems] == [key for key, _ in CROSS_LAYER]
    assert all(Path(p.file).name == "dev.yaml" for p in problems)


def test_a_catalog_default_fargate_does_not_offer_is_blamed_on_the_catalog(
        env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from shared.catalog import CATALOG_ENV_VAR
    from tests.spec_envs import SPEC_CATALOG

    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    catalog["services"]["training"]["memory"] = 3000
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    result = synth_cli("staging", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "catalog.yaml: services.training.cpu: memory 3000 does not go with cpu" in result.stderr
    assert not (tmp_path / "build").exists()


def test_schema_errors_are_all_listed_and_strings_are_never_coerced(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    def quoted(data: dict[str, Any]) -> None:
        data["network"]["az_count"] = "1"
        data["compute"]["container_insights"] = "yes"
        data["protect_stateful"] = "off"
        data["services"]["gateway"]["desired_count"] = "1"
    _assert_dev_synth_refused(edit_env, env_dir, tmp_path, quoted, [
        ("network.az_count", "valid integer (got str '1')"),
        ("compute.container_insights", "valid boolean (got str 'yes')"),
        ("protect_stateful", "valid boolean (got str 'off')"),
        ("services.gateway.desired_count", "valid integer (got str '1')"),
    ])


def test_yaml_native_integers_and_booleans_are_accepted(edit_env: Any) -> None:
    # Unquoted, YAML itself reads these as an integer and booleans (YAML 1.1: yes/off are booleans).
    path = edit_env("dev", lambda data: None)
    text = path.read_text().replace("compute:\n", "protect_stateful: off\ncompute:\n  container_insights: yes\n")
    path.write_text(text)
    env = load_env("dev")
    assert env.protect_stateful is False and env.compute.container_insights is True and env.network.az_count == 2


# -- broker engine x instance type x deployment mode -----------------------------------------------------


BROKERS = [
    # (engine_version, instance_type, deployment_mode, key, words of the reason) -- AWS's own refusals
    ("4.2", "mq.m5.large", "SINGLE_INSTANCE", "messaging.instance_type",
     "RabbitMQ 4.2 runs only on mq.m7g.*, not mq.m5.large (valid with SINGLE_INSTANCE: mq.m7g.medium, "
     "mq.m7g.large"),
    ("4.2", "mq.t3.micro", "SINGLE_INSTANCE", "messaging.instance_type",
     "or keep mq.t3.micro with engine_version 3.13"),
    ("3.13", "mq.t3.micro", "CLUSTER_MULTI_AZ", "messaging.deployment_mode",
     "mq.t3.micro is offered only as SINGLE_INSTANCE; a CLUSTER_MULTI_AZ broker on RabbitMQ 3.13 needs one of: "
     "mq.m5.large"),
    ("3.12", "mq.m5.large", "SINGLE_INSTANCE", "messaging.engine_version", "offers engine versions 4.3, 4.2, 3.13"),
    ("4.2", "mq.m7g.huge", "SINGLE_INSTANCE", "messaging.instance_type", "not an Amazon MQ for RabbitMQ instance type"),
]


@pytest.mark.parametrize(("engine", "instance", "mode", "key", "reason"), BROKERS,
                         ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BROKERS])
def test_a_broker_amazon_mq_does_not_offer_exits_2_naming_the_valid_choices(
        engine: str, instance: str, mode: str, key: str, reason: str,
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    edit_env("prod", lambda data: data["messaging"].update(engine_version=engine, instance_type=instance,
                                                           deployment_mode=mode))
    result = synth_cli("prod", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert f"prod.yaml: {key}: " in result.stderr and reason in result.stderr, result.stderr
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(("engine", "instance", "mode"), [
    ("3.13", "mq.t3.micro", "SINGLE_INSTANCE"), ("3.13", "mq.m5.large", "CLUSTER_MULTI_AZ"),
    ("3.13", "mq.m7g.large", "SINGLE_INSTANCE"), ("4.2", "mq.m7g.medium", "SINGLE_INSTANCE"),
    ("4.2", "mq.m7g.16xlarge", "CLUSTER_MULTI_AZ"),
])
def test_the_combinations_amazon_mq_offers_are_accepted(engine: str, instance: str, mode: str, edit_env: Any) -> None:
    edit_env("prod", lambda data: data["messaging"].update(engine_version=engine, instance_type=instance,
                                                           deployment_mode=mode))
    messaging = load_env("prod").messaging
    assert (messaging.engine_version, messaging.instance_type, messaging.deployment_mode) == (engine, instance, mode)


def test_an_external_broker_is_not_held_to_the_amazon_mq_matrix(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(
        broker="external", instance_type="mq.m5.large", engine_version="3.8",
        external={"amqps_endpoint": "amqps://mq.example.internal:5671",
                  "management_endpoint": "https://mq.example.internal"}))
    assert load_env("dev").messaging.broker == "external"


def test_the_platform_defaults_to_what_aws_recommends() -> None:
    from shared.amazonmq import broker_problems
    from shared.envs import MessagingConfig

    default = MessagingConfig(broker="amazon-mq")
    assert (default.engine_version, default.instance_type) == ("4.2", "mq.m7g.large")
    assert broker_problems(default.engine_version, default.instance_type, "CLUSTER_MULTI_AZ") == []
    for name in ("dev", "staging", "prod"):
        assert load_env(name).messaging.engine_version == "4.2"


# -- App Mesh needs an acknowledgement -------------------------------------------------------------------


def test_appmesh_without_the_acknowledgement_exits_2_pointing_at_the_migration(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh"))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2
    assert "dev.yaml: mesh.appmesh_end_of_support_acknowledged: must be true" in result.stderr
    assert "2026-09-30" in result.stderr and "Moving an env from appmesh to service-connect" in result.stderr
    assert not (tmp_path / "build").exists()


def test_appmesh_with_the_acknowledgement_is_accepted(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    assert load_env("dev").mesh.provider == "appmesh"


def test_the_acknowledgement_must_be_a_real_boolean(edit_env: Any) -> None:
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged="true"))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "mesh.appmesh_end_of_support_acknowledged" and "valid boolean" in raised.value.reason


@pytest.mark.parametrize("name", ["rôle-deployer", "deployer\u0663", "two words", "x" * 65])
def test_a_deploy_role_name_iam_refuses_is_refused(edit_env: Any, name: str) -> None:
    """IAM role names are ASCII (CreateRole RoleName: "upper and lowercase alphanumeric characters with no spaces" and
    _+=,.@-; botocore's ``[\\w+=,.@-]+`` is Java's ASCII \\w): Python's and pydantic's Unicode \\w took 'rôle', whose
    role no one can create, so the runner's builds could never assume it."""
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data["messaging"].setdefault("deploy_runner", {}).update(deploy_role_name=name))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "messaging.deploy_runner.deploy_role_name"


@pytest.mark.parametrize("url", ["https://github.com/acmé/platform", "https://github.com/acme/plätform",
                                 "https://github.com/acme/platform/extra"])
def test_a_github_repository_github_cannot_name_is_refused(edit_env: Any, url: str) -> None:
    """GitHub owner and repository names are ASCII letters, digits, '-', '_' and '.': Python's Unicode \\w took
    'acmé', whose CodeBuild source no webhook can ever reach, so the runner would wait for jobs that never come."""
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data["messaging"].setdefault("deploy_runner", {}).update(github_repository=url))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "messaging.deploy_runner.github_repository"


def test_several_bad_env_files_are_reported_together(edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh"))
    edit_env("staging", lambda data: data["services"]["training"].update(memory=300))
    result = synth_cli("dev", "staging", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "2 problems in" in result.stderr
    assert "dev.yaml: mesh.appmesh_end_of_support_acknowledged: " in result.stderr
    assert "staging.yaml: services.training.memory: memory 300 does not go with cpu 2048" in result.stderr
    assert not (tmp_path / "build").exists()


def test_a_schema_error_does_not_hide_the_rules_the_other_sections_break(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["compute"]["log_retention_days"] = "14"  # schema: a string where an integer is due
        data["mesh"]["provider"] = "appmesh"  # rule: no acknowledgement
        data["network"]["az_count"] = "2"  # schema; the cluster rule reads network, so it stays silent
        data["messaging"]["deployment_mode"] = "CLUSTER_MULTI_AZ"
    _assert_dev_synth_refused(edit_env, env_dir, tmp_path, change, [
        ("network.az_count", "valid integer (got str '2')"),
        ("compute.log_retention_days", "valid integer (got str '14')"),
        ("mesh.appmesh_end_of_support_acknowledged", "must be true"),
    ])


CERTIFICATE = "arn:aws:acm:{region}:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_a_public_gateway_needs_two_azs_and_a_certificate_from_its_region(edit_env: Any) -> None:
    from shared.errors import ConfigErrors

    def change(data: dict[str, Any]) -> None:
        data["network"]["az_count"] = 1
        data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE.format(region="us-east-1"))
    edit_env("dev", change)
    with pytest.raises(ConfigErrors) as raised:
        load_env("dev")
    problems = {p.key: p.reason for p in raised.value.problems}
    assert "at least 2 availability zones, but network.az_count is 1" in problems["compute.public_gateway"]
    assert "in us-east-1, but the load balancer is in eu-west-1" in problems["compute.certificate_arn"]


def test_a_public_gateway_certificate_of_another_account_is_refused(edit_env: Any) -> None:
    """A load balancer uses a certificate of its own account (ACM certificates are not shared: CreateListener answers
    CertificateNotFound after the load balancer was created), e.g. staging's ARN left in prod's file."""
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn=CERTIFICATE.format(region="eu-west-1").replace("111111111111",
                                                                                           "222222222222")))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "compute.certificate_arn"
    assert "account 222222222222, but the env's account_id is 111111111111" in str(raised.value)


@pytest.mark.parametrize("arn", [
    "arn:aws:acm:",  # the old pattern's prefix alone
    "arn:aws:acm:eu-west-1:111111111111:certificate",
    "arn:aws:acm:eu-west-1:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 ",
])
def test_a_certificate_arn_of_another_shape_is_refused_when_loaded(edit_env: Any, arn: str) -> None:
    """botocore acm Arn: arn:<partition>:acm:<region>:<account>:certificate/<id>; anything else fails the listener
    (ValidationError) after the load balancer was created, and the preflight could not read it either."""
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data["compute"].update(public_gateway=True, certificate_arn=arn))
    with pytest.raises(ConfigError) as raised:
        load_env("dev")
    assert raised.value.key == "compute.certificate_arn", str(raised.value)


@pytest.mark.parametrize(("partition", "region"), [("aws", "eu-west-1"), ("aws-cn", "cn-north-1"),
                                                  ("aws-us-gov", "us-gov-west-1")])
def test_a_certificate_arn_of_every_partition_has_the_shape(partition: str, region: str) -> None:
    """botocore acm Arn (``arn:[\\w+=/,.@-]+:acm:...``): ACM's ARNs in China and GovCloud name their partition."""
    from shared.envs import ComputeConfig

    arn = f"arn:{partition}:acm:{region}:111111111111:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert ComputeConfig(certificate_arn=arn).certificate_arn == arn


def test_a_public_gateway_with_two_azs_and_a_local_certificate_is_accepted(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True,
                                                        certificate_arn=CERTIFICATE.format(region="eu-west-1")))
    assert load_env("dev").compute.public_gateway


@pytest.mark.parametrize(("value", "reason"), [
    ({"epoch": "2026-13-01", "max_age_days": 90}, "'2026-13-01' is not a date (YYYY-MM-DD)"),
    ({"epoch": 20261101, "max_age_days": 90}, "20261101 is not a date (YYYY-MM-DD)"),
    ({"epoch": "2026-11-01", "max_age_days": 400}, "less than or equal to 365"),
    ({"epoch": "2026-11-01"}, "max_age_days"),
])
def test_credentials_rotation_is_a_date_and_a_bounded_age(edit_env: Any, value: dict[str, Any], reason: str) -> None:
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation=value))
    with pytest.raises(ConfigError) as raised:  # one problem: exactly one ConfigError
        load_env("dev")
    problem = raised.value
    assert Path(problem.file).name == "dev.yaml" and problem.key.startswith("messaging.credentials_rotation")
    assert reason in str(problem)


def test_credentials_rotation_accepts_a_yaml_date_or_its_quoted_form(edit_env: Any) -> None:
    import datetime

    edit_env("dev", lambda data: data["messaging"].update(credentials_rotation={"epoch": "2027-02-01",
                                                                                "max_age_days": 30}))
    rotation = load_env("dev").messaging.credentials_rotation
    assert rotation is not None and rotation.due == datetime.date(2027, 3, 3)


def _refusals(name: str) -> list[Any]:
    """The problems ``load_env(name)`` refuses the env with (one ConfigError, or each of a ConfigErrors)."""
    from shared.errors import ConfigError, ConfigErrors

    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env(name)
    error = raised.value
    return list(error.problems) if isinstance(error, ConfigErrors) else [error]


def _public_service_with_gateway(edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 service: str) -> None:
    """The shipped catalog plus a public ``service``, and dev with its public gateway (so ``service`` gets an ALB)."""
    import yaml

    from shared.catalog import CATALOG_ENV_VAR
    from tests.spec_envs import SPEC_CATALOG

    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    catalog["services"][service] = {"port": 8099, "health_path": "/healthz", "public": True}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True,
                                                        certificate_arn=CERTIFICATE.format(region="eu-west-1")))


@pytest.mark.parametrize(("service", "limit"), [("public-inference-api", 18), ("public-inference-api-v2", 18)])
def test_a_public_service_whose_gateway_names_would_not_fit_is_refused_naming_the_catalog(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str, limit: int) -> None:
    # Pulumi auto-names the target group "<service>-tasks-" plus 7 random characters and fails the `up` past
    # ELB's 32 characters; the catalog allows 32-character names, so the env rules refuse it before any run.

    _public_service_with_gateway(edit_env, tmp_path, monkeypatch, service)
    found = _refusals("dev")
    assert {(Path(p.file).name, p.key) for p in found} == {("catalog.yaml", f"services.{service}")}
    reasons = " / ".join(p.reason for p in found)
    assert f"'{service}-tasks' plus 8 characters" in reasons and f"has at most {limit} characters" in reasons


def test_a_public_service_named_internal_something_is_refused_before_its_load_balancer_is(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore elbv2 CreateLoadBalancer.Name: "must not begin with 'internal-'"; Pulumi names the ALB
    # "<service>-alb-" plus 7 random characters, so compute's `up` would fail after every other layer ran.

    _public_service_with_gateway(edit_env, tmp_path, monkeypatch, "internal-api")
    found = _refusals("dev")
    assert [(Path(p.file).name, p.key) for p in found] == [("catalog.yaml", "services.internal-api")]
    assert "auto-named 'internal-api-alb' plus 8 characters" in found[0].reason
    assert "refuses a load balancer name that begins with 'internal-'" in found[0].reason
    # not public, or public without a gateway in the env: no load balancer, nothing to refuse
    edit_env("dev", lambda data: data["compute"].update(public_gateway=False))
    assert load_env("dev").name == "dev"


def test_a_public_service_of_18_characters_gets_its_gateway(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _public_service_with_gateway(edit_env, tmp_path, monkeypatch, "public-inference-a")
    assert load_env("dev").compute.public_gateway


# -- names the broker layer derives from the env's name ---------------------------------------------------


def _new_env(env_dir: Path, name: str) -> None:
    """README, "Add an environment": a copy of staging with its own account, CIDR and a policy baseline."""
    text = (env_dir / "staging.yaml").read_text().replace("10.20.0.0/16", "10.40.0.0/16")
    text = text.replace('account_id: "222222222222"', 'account_id: "444444444444"')
    (env_dir / f"{name}.yaml").write_text(text.replace("policy:\n", "policy:\n  baseline: staging\n", 1))


def test_an_env_name_too_long_for_the_broker_layers_aws_names_exits_2_before_anything_runs(
        env_dir: Path, tmp_path: Path) -> None:
    # botocore: a plain Lambda function name and an IAM role name are at most 64 characters; the rotation
    # function and its role are ml-platform-<env>-broker-admin-rotation (34 + len(env)), so 31 is one too many.
    name = "customer-analytics-sandbox-eu-1"
    _new_env(env_dir, name)
    result = synth_cli(name, build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert f"{name}.yaml: name: env name '{name}' (31 characters) makes the Lambda function name" in result.stderr
    assert f"'ml-platform-{name}-broker-admin-rotation' 65 characters long, over AWS's 64" in result.stderr
    assert "IAM role name of the broker admin rotation" in result.stderr
    assert "name the env with at most 30 characters" in result.stderr
    assert not (tmp_path / "build").exists()


def test_an_env_name_that_fits_every_derived_aws_name_is_accepted(env_dir: Path) -> None:
    name = "customer-analytics-sandbox-eu1"  # 30 characters: the rotation function's name is exactly 64
    _new_env(env_dir, name)
    assert load_env(name).name == name


def test_a_relative_ca_file_missing_from_the_repository_exits_2_before_anything_runs(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    # The RabbitMQ provider would fail on it only at messaging's up, after network and broker were deployed.
    edit_env("dev", lambda data: data["messaging"].update(management={"ca_file": "certs/broker-ca.pem"}))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "dev.yaml: messaging.management.ca_file: certs/broker-ca.pem is not a file" in result.stderr
    assert "relative to the repository root" in result.stderr
    assert not (tmp_path / "build").exists()


def test_a_ca_file_in_the_repository_or_an_absolute_one_is_accepted(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(management={"ca_file": "tests/fixtures/broker-ca.pem"}))
    assert load_env("dev").messaging.management.ca_file == "tests/fixtures/broker-ca.pem"
    # an absolute path is the deploying machine's own (e.g. its system trust store): not checked here
    edit_env("dev", lambda data: data["messaging"].update(management={"ca_file": "/etc/ssl/broker-ca.pem"}))
    assert load_env("dev").messaging.management.ca_file == "/etc/ssl/broker-ca.pem"


@pytest.mark.parametrize("endpoint", ["https://localhost:15671", "https://127.0.0.1:15671", "https://127.9.9.9",
                                      "https://[::1]:15671", "https://[::ffff:127.0.0.1]:8443",
                                      "https://tunnel.localhost:15671"])
def test_a_loopback_management_endpoint_without_a_tls_server_name_exits_2_before_anything_runs(
        endpoint: str, edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    # The messaging layer would refuse it only after network and broker were deployed.
    edit_env("dev", lambda data: data["messaging"].update(management={"endpoint": endpoint}))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert f"dev.yaml: messaging.management.tls_server_name: required with the loopback endpoint {endpoint}" \
        in result.stderr
    assert "TLS to the broker's host name cannot verify against localhost" in result.stderr
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("management", [
    {"endpoint": "https://localhost:15671", "tls_server_name": "b-1.mq.eu-west-1.on.aws"},
    {"endpoint": "https://rabbit-admin.vpn.example.com"},  # not loopback: verified against its own name
    {"endpoint": "https://127.example.com"},  # a name that merely starts like a loopback address
    {"proxy": "socks5h://localhost:1080"},  # the proxy is on loopback, the endpoint is the broker's own
])
def test_a_management_endpoint_that_verifies_by_name_is_accepted(management: dict[str, str], edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].update(management=management))
    assert load_env("dev").messaging.management.endpoint == management.get("endpoint")


@pytest.mark.parametrize(("key", "change"), [
    ("messaging.external.amqps_endpoint", {"broker": "external", "external": {
        "amqps_endpoint": "amqps://admin:Hunter2Secret@rabbit.example.internal:5671",
        "management_endpoint": "https://rabbit.example.internal:15671"}}),
    ("messaging.external.management_endpoint", {"broker": "external", "external": {
        "amqps_endpoint": "amqps://rabbit.example.internal:5671",
        "management_endpoint": "https://admin:Hunter2Secret@rabbit.example.internal:15671"}}),
    ("messaging.management.endpoint", {"management": {
        "endpoint": "https://admin:Hunter2Secret@rabbit-admin.vpn.example.com"}}),
    ("messaging.management.proxy", {"management": {"proxy": "http://bob:Hunter2Secret@proxy.corp.example:3128"}}),
])
def test_a_url_with_a_password_in_the_env_file_exits_2_without_repeating_it(
        key: str, change: dict[str, Any], edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    # The broker layer exports messaging.external's URLs as stack outputs and the RabbitMQ provider keeps endpoint and
    # proxy in the messaging state, none of them a Pulumi secret: a password there is in clear (and in git).
    edit_env("dev", lambda data: data["messaging"].update(change))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert f"dev.yaml: {key}: carries credentials (user:password@ before the host)" in result.stderr
    assert "Hunter2Secret" not in result.stderr + result.stdout
    assert not (tmp_path / "build").exists()


def test_a_wrong_alarm_endpoint_is_named_without_its_password(edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    edit_env("dev", lambda data: data.update(alarms={"subscriptions": [
        {"protocol": "https", "endpoint": "http://alarms:Hunter2Secret@hooks.example.com/sns"}]}))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "'http://[redacted]@hooks.example.com/[redacted]' is not a https endpoint" in result.stderr
    assert "Hunter2Secret" not in result.stderr + result.stdout


def test_the_messaging_layer_refuses_it_with_the_loaders_rule() -> None:
    from shared.envs import EnvConfig, ManagementAccess, management_endpoint_problem
    from shared.errors import ConfigError
    from shared.management_api import management_url

    env = load_env("dev")
    management = ManagementAccess(endpoint="https://localhost:15671")
    # an env built without the loader (as a program could): the layer says exactly what the loader says
    unchecked = EnvConfig.model_construct(**{**dict(env), "messaging": env.messaging.model_copy(
        update={"management": management})})
    with pytest.raises(ConfigError) as error:
        management_url(unchecked, None)
    assert error.value.key == "messaging.management.tls_server_name"
    assert error.value.reason == management_endpoint_problem(management)


def test_a_public_service_whose_access_log_bucket_s3_would_refuse_is_refused(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from shared.catalog import CATALOG_ENV_VAR
    from shared.components.gateway import access_log_bucket_name
    from shared.errors import ConfigError
    from tests.spec_envs import SPEC_CATALOG

    public = "gateway-for-external-api-clients"  # 32 characters: a valid catalog name
    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    catalog["services"][public] = catalog["services"].pop("gateway")
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(tmp_path / "catalog.yaml"))

    def change(data: dict[str, Any]) -> None:
        for section in (data["services"], data["release"]["images"]):
            section[public] = section.pop("gateway")
        data["compute"].update(public_gateway=True, certificate_arn=CERTIFICATE.format(region="eu-west-1"))
    edit_env("staging", change)
    with pytest.raises(ValueError) as component:  # what the compute layer would raise at its synth / up
        access_log_bucket_name("staging", public, "222222222222")
    with pytest.raises(ConfigError) as raised:
        load_env("staging")
    problems = getattr(raised.value, "problems", [raised.value])
    reasons = [p.reason for p in problems if p.key == f"services.{public}" and Path(p.file).name == "catalog.yaml"]
    assert any(f"ml-staging-{public}-alb-logs-222222222222" in reason and "S3's 63" in reason for reason in reasons)
    assert public in str(component.value)

def test_two_envs_in_one_account_and_region_are_refused(env_dir: Path, tmp_path: Path) -> None:
    # ECR repositories are named ml-platform/<service> and the registry's policy is one per account and
    # region: the second env's compute layer would fail (RepositoryAlreadyExistsException) or overwrite the
    # first's policy, after its other layers were deployed
    text = (env_dir / "staging.yaml").read_text().replace("10.20.0.0/16", "10.40.0.0/16")
    (env_dir / "perf.yaml").write_text(text.replace("policy:\n", "policy:\n  baseline: staging\n", 1))
    refused = synth_cli("perf", build_dir=tmp_path / "refused", env_dir=env_dir)
    assert refused.returncode == 2, refused.stderr
    assert "perf.yaml: account_id:" in refused.stderr and "staging.yaml" in refused.stderr
    assert not (tmp_path / "refused").exists()
    # the same account in another region is fine (README, Images)
    (env_dir / "perf.yaml").write_text(text.replace("policy:\n", "policy:\n  baseline: staging\n", 1)
                                       .replace("region: eu-west-1", "region: eu-central-1"))
    accepted = synth_cli("perf", build_dir=tmp_path / "build", env_dir=env_dir)
    assert accepted.returncode == 0, accepted.stderr


def test_an_external_broker_publishes_no_backlog_to_wake_a_consumer_at_zero(
        edit_env: Any, env_dir: Path, tmp_path: Path) -> None:
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: (data["messaging"].update(broker="external", external=external),
                                  data["services"]["training"].update(desired_count=0, min_count=0)))
    result = synth_cli("dev", build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert "services.training.min_count" in result.stderr and "no queue metrics publisher" in result.stderr


def test_a_cpu_target_applies_where_the_service_has_a_cpu_policy(edit_env: Any) -> None:
    """A service others call keeps CPU target tracking, with or without published queue metrics (here an external
    broker): the key is its to set. (A consumer no request reaches has none anywhere: the refusals above.)"""
    external = {"amqps_endpoint": "amqps://rabbit.example.internal:5671",
                "management_endpoint": "https://rabbit.example.internal:15671"}
    edit_env("dev", lambda data: (data["messaging"].update(broker="external", external=external),
                                  data["services"]["inference"].update(cpu_target_percent=70)))
    assert load_env("dev").service_settings("inference").cpu_target_percent == 70


def test_a_consumer_no_request_reaches_may_rest_at_zero_where_its_backlog_is_published(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["services"]["training"].update(desired_count=0, min_count=0))
    assert load_env("dev").service_settings("training").min_count == 0


# -- several envs in one account ---------------------------------------------------------------------------


def _public_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *public: str) -> None:
    import yaml

    from shared.catalog import CATALOG_ENV_VAR
    from tests.spec_envs import SPEC_CATALOG

    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    for port, service in enumerate(public, start=8090):
        catalog["services"][service] = {"port": port, "health_path": "/healthz", "public": True}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))


def _second_env_in_devs_account(env_dir: Path, name: str, region: str, *, gateway: bool) -> None:
    """A copy of dev in dev's account but another region (the loader refuses one account and region twice)."""
    import yaml

    data = yaml.safe_load((env_dir / "dev.yaml").read_text())
    data.update(region=region)
    data["network"]["cidr"] = "10.50.0.0/16"
    data["policy"]["baseline"] = "dev"
    data["compute"].update(public_gateway=gateway, certificate_arn=CERTIFICATE.format(region=region))
    (env_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_two_envs_of_one_account_whose_access_log_buckets_coincide_are_refused_naming_both(
        edit_env: Any, env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ml-<env>-<service>-alb-logs-<account>: dev's eu-gateway and dev-eu's gateway are one S3 name (S3's global
    # namespace); the second env's compute `up` would fail on it after its other layers were deployed.

    _public_catalog(tmp_path, monkeypatch, "eu-gateway")
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True,
                                                        certificate_arn=CERTIFICATE.format(region="eu-west-1")))
    _second_env_in_devs_account(env_dir, "dev-eu", "eu-central-1", gateway=True)
    for name, service, other, its in (("dev-eu", "gateway", "dev", "eu-gateway"),
                                      ("dev", "eu-gateway", "dev-eu", "gateway")):
        found = _refusals(name)
        assert [(Path(p.file).name, p.key) for p in found] == [(f"{name}.yaml", "name")]
        assert (f"the access-log bucket 'ml-dev-eu-gateway-alb-logs-111111111111' of public service {service} is "
                f"also {other}'s, for its service {its} (same account 111111111111)") in found[0].reason


def test_envs_of_one_account_in_other_regions_with_distinct_names_load(
        edit_env: Any, env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _public_catalog(tmp_path, monkeypatch, "eu-gateway")
    edit_env("dev", lambda data: data["compute"].update(public_gateway=True,
                                                        certificate_arn=CERTIFICATE.format(region="eu-west-1")))
    _second_env_in_devs_account(env_dir, "dev-eu", "eu-central-1", gateway=False)  # no load balancer, no bucket
    assert [env.name for env in (load_env("dev"), load_env("dev-eu"))] == ["dev", "dev-eu"]
    _second_env_in_devs_account(env_dir, "sandbox", "eu-central-1", gateway=True)  # ml-sandbox-...: no collision
    (env_dir / "dev-eu.yaml").unlink()
    assert [env.name for env in (load_env("dev"), load_env("sandbox"))] == ["dev", "sandbox"]


def test_a_second_env_in_an_account_and_region_already_taken_is_refused_naming_the_other(env_dir: Path) -> None:
    # compute's ECR repositories ml-platform/<service> and the registry's policy and replication settings exist once
    # per account and region: the second env's compute `up` would fail on (or overwrite) the first env's.

    _second_env_in_devs_account(env_dir, "dev-two", "eu-west-1", gateway=False)
    found = _refusals("dev-two")
    assert [(Path(p.file).name, p.key) for p in found] == [("dev-two.yaml", "account_id")]
    assert "dev.yaml already deploys to account 111111111111 in eu-west-1" in found[0].reason


@pytest.mark.parametrize("name", ["sandbox-", "dev_eu", "Sandbox"])
def test_an_env_file_whose_name_is_no_env_name_exits_2_saying_why(env_dir: Path, tmp_path: Path, name: str) -> None:
    # The name makes S3 bucket names (no '_' or upper case) and the first label of <name>.ml.internal (a DNS label
    # does not end with '-', as discovery.namespace's pattern holds): refused by name, not as an unknown env.
    _new_env(env_dir, name)
    result = synth_cli(name, build_dir=tmp_path / "build", env_dir=env_dir)
    assert result.returncode == 2, result.stderr
    assert f"{name}.yaml: name: {name!r} (the file's name) is not an env name" in result.stderr
    assert "ending with a letter or digit" in result.stderr and "unknown environment" not in result.stderr
    assert not (tmp_path / "build").exists()


def test_the_platform_tag_keys_are_the_default_tags_it_sets() -> None:
    """The rule on extra tag keys knows every key :meth:`EnvConfig.common_tags` sets."""
    from shared.envs import PLATFORM_TAG_KEYS

    env = load_env("dev")
    assert set(env.common_tags("compute")) - set(env.tags.model_extra or {}) == set(PLATFORM_TAG_KEYS)


def test_a_consumer_that_protects_its_jobs_is_refused_canaries(
        edit_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each canary version is its own ECS service (scalable target) consuming the one work queue, and each one's
    backlog-in alarm reads that queue's IdleConsumers: one idle consumer would take a task from every version, those
    whose tasks all work too (their desired count below their protected tasks, ECS refusing new protection)."""
    from shared.envs import env_problems
    from shared.errors import ConfigError
    from tests.catalog_helpers import write_catalog

    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(protects_jobs=True))
    path = edit_env("dev", lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True,
        canaries={"training": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}))
    with pytest.raises(ConfigError) as refused:
        load_env("dev")
    assert "mesh.canaries.training" in str(refused.value) and "IdleConsumers" in str(refused.value)
    edit_env("dev", lambda data: data["mesh"].update(canaries={}))
    assert not [p for p in env_problems(path, load_env("dev")) if "protects_jobs" in str(p)]


class _Undeclared:
    """An env section a rule did not declare: any use of it fails the test."""

    def __init__(self, section: str) -> None:
        self.section = section

    def _used(self, *_: Any, **__: Any) -> Any:
        raise AssertionError(f"reads {self.section!r}, which it does not declare in shared.envs.RULES")

    __getattr__ = __bool__ = __iter__ = __eq__ = __ne__ = __hash__ = __len__ = __str__ = __getitem__ = _used  # type: ignore[assignment]
    __contains__ = __lt__ = __gt__ = __le__ = __ge__ = _used  # type: ignore[assignment]


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_each_env_rule_reads_only_the_sections_it_declares(name: str) -> None:
    """The loader runs a rule on an env whose other sections failed the schema only where the rule declares none of
    them (shared.envs.env_problems): a rule reading an undeclared section would meet a missing one there and crash
    the loader (and every synth that reads that env file) instead of naming the broken key."""
    from shared.catalog import load_catalog
    from shared.envs import RULES, EnvConfig

    env = load_env(name)
    path = REPO_ROOT / "environments" / f"{name}.yaml"
    undeclared = []
    for rule, sections in RULES:
        values: dict[str, Any] = {field: getattr(env, field) if field in sections else _Undeclared(field)
                                  for field in EnvConfig.model_fields}
        try:
            list(rule(path, EnvConfig.model_construct(**values), load_catalog()))
        except AssertionError as error:
            undeclared.append(f"{rule.__name__} {error}")
    assert not undeclared


def test_an_env_in_a_region_the_platform_does_not_know_is_refused_naming_the_region(edit_env: Any) -> None:
    """A copy of staging (which receives dev's images) with a region shared/regions.py does not list: the loader
    names the region, not a traceback from a rule that read it (which stopped every env's synth)."""
    from shared.errors import ConfigError

    edit_env("staging", lambda data: data.update(region="ap-southeast-3"))
    with pytest.raises(ConfigError) as refused:
        load_env("staging")
    assert "region: region 'ap-southeast-3' is not one the platform has checked yet" in str(refused.value)
    assert "add it to shared/regions.py" in str(refused.value)


@pytest.mark.parametrize(("region", "reason"), [
    ("cn-north-1", "is in the AWS partition 'aws-cn'; the platform runs in the 'aws' partition only"),
    ("us-gov-west-1", "is in the AWS partition 'aws-us-gov'; the platform runs in the 'aws' partition only"),
    ("eu-mars-1", "unknown region 'eu-mars-1' (known: "),
])
def test_a_region_of_another_partition_or_none_is_refused_saying_so(edit_env: Any, region: str, reason: str) -> None:
    from shared.errors import ConfigError

    edit_env("dev", lambda data: data.update(region=region))
    with pytest.raises(ConfigError) as refused:
        load_env("dev")
    assert f"region: {reason}" in str(refused.value) if reason.startswith("unknown") else (
        f"region: region '{region}' {reason}" in str(refused.value))


def test_a_folder_in_an_env_files_place_and_a_missing_env_folder_are_named_as_such(
        env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not "unknown environment 'dev' (known: dev, ...)", which contradicts itself, nor "(known: none)" for a folder
    that is not there."""
    from shared.envs import ENV_DIR_VAR
    from shared.errors import ConfigError

    (env_dir / "dev.yaml").unlink()
    (env_dir / "dev.yaml").mkdir()
    with pytest.raises(ConfigError) as refused:
        load_env("dev")
    assert refused.value.reason == "is not a file: an env is the YAML file environments/<name>.yaml"
    monkeypatch.setenv(ENV_DIR_VAR, str(env_dir / "moved"))
    with pytest.raises(ConfigError) as refused:
        load_env("dev")
    assert refused.value.reason.startswith(f"the env folder {env_dir / 'moved'} does not exist")


@pytest.mark.parametrize(("count", "refused"), [(10, False), (11, True)])
def test_a_canary_has_at_most_the_weighted_targets_an_app_mesh_route_takes(edit_env: Any, count: int,
                                                                          refused: bool) -> None:
    # App Mesh service quotas: 10 weighted targets per route, not adjustable: an eleventh version fails the mesh's up
    from shared.errors import ConfigError

    weights = [100 - 10 * (count - 1)] + [10] * (count - 1) if count <= 10 else [100 - (count - 1)] + [1] * (count - 1)
    edit_env("dev", lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True,
        canaries={"inference": [{"version": f"v{n}", "weight": weight} for n, weight in enumerate(weights)]}))
    if refused:
        with pytest.raises(ConfigError, match="inference: 11 versions; App Mesh routes to at most 10 weighted targets"):
            load_env("dev")
    else:
        assert len(load_env("dev").mesh.canaries["inference"]) == 10


@pytest.mark.parametrize(("ttl", "refused"), [(129_600_000, False), (129_599_999, True), (None, False)])
def test_the_message_ttl_must_cover_every_try_of_the_longest_job(edit_env: Any, ttl: int | None,
                                                                   refused: bool) -> None:
    """training's jobs last up to 6 hours (catalog max_job_seconds) and are delivered up to 6 times (the first and
    messaging.delivery_limit 5 more): a TTL of 36 hours or more is taken, one of less refused, and no TTL (messages
    never expire) needs no rule."""
    edit_env("dev", _set("messaging.message_ttl_ms", ttl))
    if not refused:
        assert load_env("dev").messaging.message_ttl_ms == ttl
        return
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert error.value.key == "messaging.message_ttl_ms"
    assert "(also preprocess, inference, gateway)" not in str(error.value), "those need 3 hours: covered"
    edit_env("dev", _set("messaging.message_ttl_ms", 3_600_000))
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert "(also preprocess, inference, gateway)" in str(error.value), "6 x 30 minutes each: not covered either"


def test_a_retry_budget_no_ttl_can_cover_says_to_unset_the_key(edit_env: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """RabbitMQ takes a TTL of at most 2^32 - 1 ms (about 49 days): 31 deliveries of a 48-hour job need more, and the
    refusal says what can be done instead of a value RabbitMQ would refuse."""
    from tests.catalog_helpers import write_catalog

    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(max_job_seconds=172_800))
    edit_env("dev", _set("messaging.delivery_limit", 30))
    with pytest.raises(ConfigError) as error:
        load_env("dev")
    assert error.value.key == "messaging.message_ttl_ms"
    assert "no TTL RabbitMQ takes covers them (at most 4294967295 ms" in str(error.value)
    assert "give at least" not in str(error.value)
