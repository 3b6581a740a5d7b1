"""The offline plan diff: what an ``up`` would do, judged against the accepted snapshots."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.envs import env_names
from shared.plan_diff import diff_documents, diff_env
from shared.synth.engine import synth_env
from tests.spec_envs import USER_ENV_DIR, USER_ENVIRON, user_envs
from tests.synth_helpers import write_spec_baseline

#: top-level resources, as the synth names them (the root stack's type before their own; the diff compares the engine's
#: URNs, which drop it: shared.urns)
VPC = "urn:pulumi:prod::network::pulumi:pulumi:Stack$aws:ec2/vpc:Vpc::vpc"
ROUTE = "urn:pulumi:prod::network::aws:ec2/route:Route::default"


def _resource(urn: str, type_: str, inputs: dict[str, Any], protect: bool = False) -> dict[str, Any]:
    return {"urn": urn, "type": type_, "name": urn.rsplit("::", 1)[-1], "custom": True, "inputs": inputs,
            "protect": protect}


def _doc(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resources": list(resources)}


BASE = _doc(_resource(VPC, "aws:ec2/vpc:Vpc", {"cidrBlock": "10.30.0.0/16", "tags": {"a": "1"}}, protect=True),
            _resource(ROUTE, "aws:ec2/route:Route", {"destinationCidrBlock": "0.0.0.0/0", "natGatewayId": "n-1"}))


def _actions(baseline: dict[str, Any], fresh: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(c.action, c.name, c.blocked) for c in diff_documents("network", baseline, fresh).changes]


def test_nothing_changed_is_no_change() -> None:
    assert _actions(BASE, copy.deepcopy(BASE)) == []


def test_a_new_resource_is_an_add() -> None:
    fresh = copy.deepcopy(BASE)
    fresh["resources"].append(_resource("urn:pulumi:prod::network::aws:ec2/eip:Eip::nat", "aws:ec2/eip:Eip", {}))
    assert _actions(BASE, fresh) == [("add", "nat", False)]


def test_a_vanished_resource_is_a_delete() -> None:
    fresh = _doc(BASE["resources"][0])
    assert _actions(BASE, fresh) == [("delete", "default", False)]


def test_a_changed_in_place_input_is_an_update() -> None:
    fresh = copy.deepcopy(BASE)
    fresh["resources"][0]["inputs"]["tags"] = {"a": "2"}
    assert _actions(BASE, fresh) == [("update", "vpc", False)]


def test_a_replace_on_change_input_is_a_replace() -> None:
    fresh = copy.deepcopy(BASE)
    fresh["resources"][1]["inputs"]["destinationCidrBlock"] = "10.0.0.0/8"
    assert _actions(BASE, fresh) == [("replace", "default", False)]


def test_a_protected_resource_that_would_be_replaced_is_blocked() -> None:
    fresh = copy.deepcopy(BASE)
    fresh["resources"][0]["inputs"]["cidrBlock"] = "10.31.0.0/16"
    assert _actions(BASE, fresh) == [("replace", "vpc", True)]


def test_a_renamed_protected_resource_is_a_blocked_delete_plus_an_add() -> None:
    fresh = copy.deepcopy(BASE)
    fresh["resources"][0].update(urn=VPC.replace("::vpc", "::main-vpc"), name="main-vpc")
    assert sorted(_actions(BASE, fresh)) == [("add", "main-vpc", False), ("delete", "vpc", True)]


ALB = "urn:pulumi:prod::compute::aws:lb/loadBalancer:LoadBalancer::gateway-alb"


@pytest.mark.parametrize(("deletion_protection", "blocked"), [(True, True), (False, False)])
def test_a_load_balancer_with_aws_deletion_protection_is_blocked_when_replaced_or_deleted(
        deletion_protection: bool, blocked: bool) -> None:
    # not Pulumi's protect: ELB refuses DeleteLoadBalancer (OperationNotPermitted), after the replacement's new copy
    # has taken the listener, and again on every later up
    alb = _resource(ALB, "aws:lb/loadBalancer:LoadBalancer",
                    {"internal": False, "loadBalancerType": "application",
                     "enableDeletionProtection": deletion_protection})
    internal = copy.deepcopy(alb)
    internal["inputs"]["internal"] = True
    assert _actions(_doc(alb), _doc(internal)) == [("replace", "gateway-alb", blocked)]
    assert _actions(_doc(alb), _doc()) == [("delete", "gateway-alb", blocked)]
    idle = copy.deepcopy(alb)
    idle["inputs"]["idleTimeout"] = 120
    assert _actions(_doc(alb), _doc(idle)) == [("update", "gateway-alb", False)]


def test_a_service_connect_namespace_s_new_description_replaces_it() -> None:
    """terraform-provider-aws updates an HTTP namespace's tags only: its description is set at create, a new one a
    new namespace (whose services ECS then moves to it), not an update."""
    urn = "urn:pulumi:prod::discovery::aws:servicediscovery/httpNamespace:HttpNamespace::discovery-api"
    namespace = _resource(urn, "aws:servicediscovery/httpNamespace:HttpNamespace",
                          {"name": "prod-ml-api", "description": "one"}, protect=True)
    described = copy.deepcopy(namespace)
    described["inputs"]["description"] = "two"
    assert _actions(_doc(namespace), _doc(described)) == [("replace", "discovery-api", True)]


def test_inputs_unknown_at_synth_time_are_not_compared() -> None:
    fresh = copy.deepcopy(BASE)
    fresh["resources"][1]["inputs"]["natGatewayId"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    assert _actions(BASE, fresh) == []


def test_an_ignored_input_keeps_its_deployed_value_so_its_change_alone_is_no_change() -> None:
    """An ECS service ignores desiredCount (autoscaling owns the running count): the engine sends the deployed value
    on an update, so a new count in the env file changes nothing once the service exists, and the diff says so. The
    same service's other inputs still update it."""
    service = "urn:pulumi:prod::compute::aws:ecs/service:Service::gateway"

    def deployed(count: int, image: str) -> dict[str, Any]:
        resource = _resource(service, "aws:ecs/service:Service", {"desiredCount": count, "taskDefinition": image})
        return _doc({**resource, "ignore_changes": ["desiredCount"]})

    assert _actions(deployed(3, "gateway:1"), deployed(6, "gateway:1")) == []
    assert [(c.action, c.inputs) for c in diff_documents("compute", deployed(3, "gateway:1"),
                                                          deployed(6, "gateway:2")).changes] == [
        ("update", ("taskDefinition",))]
    unignored = deployed(6, "gateway:1")
    del unignored["resources"][0]["ignore_changes"]
    assert _actions(deployed(3, "gateway:1"), unignored) == [("update", "gateway", False)]

    # an ignored input the deployed state lacks: the engine has no old value to keep and sends the new one
    without = deployed(3, "gateway:1")
    del without["resources"][0]["inputs"]["desiredCount"]
    assert [(c.action, c.inputs) for c in diff_documents("compute", without, deployed(6, "gateway:1")).changes] == [
        ("update", ("desiredCount",))]


def test_an_alias_naming_a_urn_another_fresh_resource_still_holds_takes_nothing_from_it() -> None:
    # the engine moves a state to the aliasing resource only when nothing of the program holds the old URN; here the
    # VPC keeps its URN and the new one is an add, so the old VPC's change (a replace) still shows
    fresh = copy.deepcopy(BASE)
    fresh["resources"][0]["inputs"]["cidrBlock"] = "10.31.0.0/16"
    second = _resource(VPC.replace("::vpc", "::second-vpc"), "aws:ec2/vpc:Vpc", {"cidrBlock": "10.30.0.0/16"})
    fresh["resources"].append({**second, "aliases": [VPC]})
    assert sorted(_actions(BASE, fresh)) == [("add", "second-vpc", False), ("replace", "vpc", True)]


def test_a_resource_that_keeps_its_urn_takes_no_other_state_through_its_alias() -> None:
    # the engine looks a resource up by its own URN first and by its aliases only where that finds nothing: the VPC
    # keeps its state, and the route its alias names is deleted (shown, so a protected one would block)
    fresh = copy.deepcopy(BASE)
    fresh["resources"] = [{**fresh["resources"][0], "aliases": [ROUTE]}]
    assert _actions(BASE, fresh) == [("delete", "default", False)]


def test_a_replaced_resources_id_in_an_ignored_input_of_a_reader_changes_nothing() -> None:
    # the engine keeps an ignored input's deployed value, so the replaced VPC's new id never reaches the reader
    from shared.plan_diff import diff_layers
    from shared.synth.mocks import generated_tokens

    digest, _ = generated_tokens("network", "prod", "aws:ec2/vpc:Vpc", "vpc")
    vpc_urn = "urn:pulumi:prod::network::aws:ec2/vpc:Vpc::vpc"
    reader_urn = "urn:pulumi:prod::network::aws:ec2/securityGroup:SecurityGroup::reader"
    fresh_vpc = _resource(vpc_urn, "aws:ec2/vpc:Vpc", {"cidrBlock": "10.31.0.0/16"}, protect=False)

    def reader(ignored: list[str]) -> dict[str, Any]:
        return {**_resource(reader_urn, "aws:ec2/securityGroup:SecurityGroup",
                            {"vpcId": f"vpc-0{digest}00000000", "description": "d"}),
                "ignore_changes": ignored}

    def changes(ignored: list[str]) -> list[tuple[str, str]]:
        baseline = {"project": "network", "stack": "prod", **_doc(
            _resource(vpc_urn, "aws:ec2/vpc:Vpc", {"cidrBlock": "10.30.0.0/16"}), reader(ignored))}
        fresh = {"project": "network", "stack": "prod", **_doc(fresh_vpc, reader(ignored))}
        return [(c.action, c.name) for d in diff_layers({"network": baseline}, {"network": fresh}, ["network"])
                for c in d.changes]

    assert changes([]) == [("replace", "reader"), ("replace", "vpc")]  # vpcId forces a new security group
    assert changes(["vpcId"]) == [("replace", "vpc")]


def test_a_reader_replaced_through_a_cascade_is_judged_by_its_deployed_protection() -> None:
    """The same change replaces the VPC and unprotects its reader (prod's protect_stateful turned off, or a load
    balancer's enableDeletionProtection off): the deployed copy is still protected, and it is that copy the up
    deletes (the state's protect, ELB's flag), so the cascade's replacement is blocked."""
    from shared.plan_diff import diff_layers
    from shared.synth.mocks import generated_tokens

    digest, _ = generated_tokens("network", "prod", "aws:ec2/vpc:Vpc", "vpc")
    vpc_urn = "urn:pulumi:prod::network::aws:ec2/vpc:Vpc::vpc"
    reader_urn = "urn:pulumi:prod::network::aws:ec2/securityGroup:SecurityGroup::reader"

    def layer(cidr: str, protect: bool) -> dict[str, Any]:
        return {"project": "network", "stack": "prod", **_doc(
            _resource(vpc_urn, "aws:ec2/vpc:Vpc", {"cidrBlock": cidr}),
            _resource(reader_urn, "aws:ec2/securityGroup:SecurityGroup",
                      {"vpcId": f"vpc-0{digest}00000000", "description": "d"}, protect=protect))}

    def changes(deployed: bool, asked: bool) -> list[tuple[str, str, bool]]:
        return [(c.action, c.name, c.blocked) for d in diff_layers(
            {"network": layer("10.30.0.0/16", deployed)}, {"network": layer("10.31.0.0/16", asked)}, ["network"])
            for c in d.changes]

    assert changes(deployed=True, asked=False) == [("replace", "reader", True), ("replace", "vpc", False)]
    assert changes(deployed=False, asked=True) == [("replace", "reader", False), ("replace", "vpc", False)]


EXCHANGE = "rabbitmq:index/exchange:Exchange"
TOPIC_PERMISSIONS = "rabbitmq:index/topicPermissions:TopicPermissions"


def _deployed_with_a_direct_requests_exchange(fresh: dict[str, Any]) -> dict[str, Any]:
    """``fresh`` (a messaging synth) as deployed before ml.requests was a topic exchange: ml.requests direct, one topic
    permissions resource per event publisher, named after ml.events and holding that entry only."""
    old = copy.deepcopy(fresh)
    resources = []
    for resource in old["resources"]:
        if resource["type"] == EXCHANGE and resource["inputs"]["name"] == "ml.requests":
            resource["inputs"]["settings"]["type"] = "direct"
            resource.pop("delete_before_replace", None)
        # A rotation epoch's user (its name ends in .<epoch>) came after the topic exchange: left as it is.
        if resource["type"] == TOPIC_PERMISSIONS and "aliases" in resource:
            entries = [e for e in resource["inputs"]["permissions"] if e["exchange"] == "ml.events"]
            if not entries:
                continue
            resource["inputs"]["permissions"] = entries
            resource["urn"] = resource.pop("aliases")[0]
        resources.append(resource)
    old["resources"] = resources
    return old


def test_the_requests_exchange_upgrade_replaces_it_with_its_bindings_and_keeps_queues_and_topic_permissions() -> None:
    """A deployed env's next up: the exchange is replaced delete-first and takes its bindings with it (the engine
    replaces a delete_before_replace resource's dependents); the queues stay; the topic permissions, one resource per
    user now, answer to their former URNs (aliases), so preprocess's is updated and none is deleted."""
    fresh = synth_env("dev", ["messaging"])["messaging"]
    changes = [(c.action, c.name, c.inputs) for c in
               diff_documents("messaging", _deployed_with_a_direct_requests_exchange(fresh), fresh).changes]
    shipped = [
        ("replace", "messaging-binding-ml-requests-inference-work-inference-request", ("source",)),
        ("replace", "messaging-binding-ml-requests-preprocess-work-preprocess-request", ("source",)),
        ("replace", "messaging-binding-ml-requests-training-work-training-request", ("source",)),
        ("replace", "messaging-exchange-ml-requests", ("settings",)),
        ("add", "messaging-topic-permissions-gateway", ()),
        ("update", "messaging-topic-permissions-preprocess", ("permissions",)),
    ]
    assert [change for change in changes if change in shipped] == shipped
    # and with a service a user added (README, "Add a service"): its requests bindings replaced too, and the topic
    # permissions of each other service that publishes requests updated in place; nothing else
    benign = (("replace", ("source",), "messaging-binding-ml-requests-"),
              ("update", ("permissions",), "messaging-topic-permissions-"))
    assert all(any(change[0] == action and change[2] == inputs and change[1].startswith(prefix)
                   for action, inputs, prefix in benign) for change in changes if change not in shipped), changes


def test_a_fixed_name_resource_replaced_create_first_leaves_its_readers_alone() -> None:
    """Without delete_before_replace the new exchange exists, with the same name, before the old one goes: a binding
    naming it keeps its input and is not replaced."""
    fresh = synth_env("dev", ["messaging"])["messaging"]
    for resource in fresh["resources"]:
        resource.pop("delete_before_replace", None)
    changes = [(c.action, c.name) for c in
               diff_documents("messaging", _deployed_with_a_direct_requests_exchange(fresh), fresh).changes]
    assert ("replace", "messaging-exchange-ml-requests") in changes
    assert not [change for change in changes if "binding" in change[1]]


SNS_TOPIC = "aws:sns/topic:Topic"


def test_the_alarm_topic_is_replaced_delete_first_with_its_policy_and_subscriptions() -> None:
    """The env's alarm topic has a fixed name and SNS's CreateTopic is idempotent (botocore sns CreateTopic: an owned
    topic of that name is returned, not created): replaced create-first, the replacement would be the old topic, and
    the old resource's delete would then delete it and its subscriptions under the new state. So a change of an input
    that replaces it (fifoTopic here; name and namePrefix too) deletes it first and makes its policy (and subscriptions)
    again after it."""
    fresh = synth_env("prod", ["broker"])["broker"]
    topics = [r for r in fresh["resources"] if r["type"] == SNS_TOPIC]
    assert len(topics) == 1 and topics[0]["delete_before_replace"] is True
    deployed = copy.deepcopy(fresh)
    next(r for r in deployed["resources"] if r["type"] == SNS_TOPIC)["inputs"]["fifoTopic"] = True
    changes = {(c.action, c.type) for c in diff_documents("broker", deployed, fresh).changes}
    assert ("replace", SNS_TOPIC) in changes
    assert ("replace", "aws:sns/topicPolicy:TopicPolicy") in changes  # (the shipped envs have no subscription)


def test_a_component_s_new_type_token_moves_every_descendant_not_only_its_children() -> None:
    """The engine's URN carries every ancestor's type (shared.urns); the synth's, only the parent's. A new type token
    for the broker component (a rename in a refactor) gives its grandchildren new URNs too: the admin secret's version
    (its create would put the first generated password back as AWSCURRENT, which no longer opens a rotated broker)
    is deleted and created again, and prod's protected rotation key and log group block the `up`."""
    deployed = synth_env("prod", ["broker"])["broker"]
    fresh = copy.deepcopy(deployed)
    (component,) = [r for r in fresh["resources"] if r["type"] == "mlplatform:broker:AmazonMqBroker"]
    component["type"] = "mlplatform:broker:RabbitMqBroker"
    grandchildren = {r["urn"] for r in fresh["resources"]
                     if any(p["urn"] == r.get("parent") and p.get("parent") == component["urn"]
                            for p in fresh["resources"])}
    assert grandchildren, "the component has grandchildren"
    changes = diff_documents("broker", deployed, fresh).changes
    version = [(c.action, c.blocked) for c in changes if c.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    assert sorted(version) == [("add", False), ("delete", False)]
    blocked = {c.type for c in changes if c.blocked}
    assert {"aws:kms/key:Key", "aws:cloudwatch/logGroup:LogGroup"} <= blocked
    assert not diff_documents("broker", deployed, copy.deepcopy(deployed)).changes


@pytest.mark.parametrize("renamed", ["type", "name"])
def test_an_alias_on_a_renamed_component_keeps_every_descendant(renamed: str) -> None:
    """The engine gives each child the aliases its parent's aliases imply, all the way down (step_generator.go,
    generateAliases): a component renamed with `Alias(type_=...)` or `Alias(name=...)` (README, "Renaming a resource")
    changes nothing in the cloud, and the diff says so, a child named after the component included."""
    deployed = synth_env("prod", ["broker"])["broker"]
    fresh = copy.deepcopy(deployed)
    (component,) = [r for r in fresh["resources"] if r["type"] == "mlplatform:broker:AmazonMqBroker"]
    component["aliases"] = [component["urn"]]
    old_name = component["urn"].split("::", 3)[3]
    if renamed == "type":
        component["type"] = "mlplatform:broker:RabbitMqBroker"
    else:
        # the SDK's naming convention the engine follows: a child named after its parent is renamed with it
        names = {component["urn"]: (old_name, f"{old_name}-main")}  # synth URN -> (old name, new name)
        grown = True
        while grown:
            grown = False
            for resource in fresh["resources"]:
                if resource["urn"] in names or resource.get("parent") not in names:
                    continue
                old_parent, new_parent = names[resource["parent"]]
                name = resource["urn"].split("::", 3)[3]
                names[resource["urn"]] = (name, new_parent + name[len(old_parent):] if name.startswith(old_parent)
                                          else name)
                grown = True
        renames = {urn: urn.rsplit("::", 1)[0] + f"::{new}" for urn, (_old, new) in names.items()}
        for resource in fresh["resources"]:
            resource["urn"] = renames.get(resource["urn"], resource["urn"])
            resource["parent"] = renames.get(resource.get("parent"), resource.get("parent"))
            resource["name"] = resource["urn"].split("::", 3)[3]
        assert f"{old_name}-main-sg" in {r["name"] for r in fresh["resources"]}, "a child named after the component"
    assert diff_documents("broker", deployed, fresh).changes == []
    component["aliases"] = []
    assert {c.action for c in diff_documents("broker", deployed, fresh).changes} == {"add", "delete"}


@pytest.mark.parametrize("env", env_names(USER_ENV_DIR))
def test_every_protected_resource_keeps_its_urn_and_is_not_replaced(env: str) -> None:
    """URN stability: against the accepted snapshots, nothing protected of the env files that deploy (environments/)
    would be replaced or deleted."""
    with user_envs():
        fresh = synth_env(env)
    blocked = [(d.layer, c.action, c.urn) for d in diff_env(env, fresh) for c in d.changes if c.blocked]
    assert blocked == []


def _cli(*args: str, deploying: bool = False) -> subprocess.CompletedProcess[str]:
    """The command over the example envs and catalog (the suite's), or over what deploys (environments/,
    shared/catalog.yaml)."""
    folder = USER_ENVIRON if deploying else {}
    return subprocess.run([sys.executable, "-m", "shared.plan_diff", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **folder}, check=False)


def test_a_baseline_folder_that_does_not_exist_exits_2_instead_of_showing_everything_as_added(tmp_path: Path) -> None:
    result = _cli("dev", "--baseline", str(tmp_path / "snapshtos"))
    assert result.returncode == 2, result.stdout
    assert "--baseline" in result.stderr and "snapshtos" in result.stderr and "Traceback" not in result.stderr


def test_a_baseline_folder_without_the_env_exits_2_instead_of_checking_nothing(tmp_path: Path) -> None:
    """One level off (the checkout, not its tests/snapshots): every resource showed as added, nothing as replaced,
    and the protected-resource check passed without checking anything (exit 0)."""
    (tmp_path / "tests" / "snapshots" / "prod").mkdir(parents=True)
    (tmp_path / "prod").mkdir()  # a folder of the env's name, but no layer file in it
    result = _cli("prod", "--baseline", str(tmp_path))
    assert result.returncode == 2, result.stdout
    assert f"--baseline {tmp_path}: no baseline of prod (expected {tmp_path}/prod/<layer>.json" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "not a synth document (Expecting property name"),
    (b"", "not a synth document (Expecting value"),
    (b"\xff\xfe", "not a synth document ('utf-8' codec can't decode"),
    (b"[]", "not a synth document (an object with a `resources` list)"),
    (b"{}", "not a synth document (an object with a `resources` list)"),
    (None, "not a file (a baseline layer is the JSON document `nox -s synth` writes)"),
], ids=["syntax", "empty", "not-utf8", "list", "no-resources", "folder"])
def test_a_baseline_layer_that_is_no_synth_document_exits_2_naming_it(
        tmp_path: Path, content: bytes | None, reason: str) -> None:
    """A broken snapshot is not a layer never deployed (every resource added, nothing checked, exit 0), nor a
    traceback's exit 1 (which says a protected resource would be replaced): exit 2 naming the file, nothing shown."""
    write_spec_baseline(tmp_path, "dev")
    layer = tmp_path / "dev" / "compute.json"
    layer.unlink()
    if content is None:
        layer.mkdir()
    else:
        layer.write_bytes(content)
    result = _cli("dev", "--baseline", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"diff: {layer}: {reason}" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_env_without_accepted_snapshots_exits_2_saying_how_they_are_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import plan_diff
    from shared.plan_diff import __main__ as command

    monkeypatch.setattr(command, "BASELINE_DIR", tmp_path)
    assert command.baseline_problem("dev", tmp_path) == (
        f"diff: dev: no accepted snapshots ({tmp_path}/dev/<layer>.json): a new env has none until they are written "
        "(`UPDATE_SNAPSHOTS=1 nox -s tests -- tests/test_synth.py`, then commit them)")
    assert command.baseline_problem("dev", plan_diff.BASELINE_DIR) is None


def test_the_header_names_the_baseline_it_compared_with(tmp_path: Path) -> None:
    write_spec_baseline(tmp_path, "dev")
    result = _cli("dev", "--baseline", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    header = f"plan diff of dev against the baseline in {tmp_path}"  # the table's title wraps at its width
    assert "".join(header.split()) in "".join(result.stdout.split()), result.stdout


def test_the_command_exits_0_on_an_unchanged_tree() -> None:
    """The env files that deploy (environments/) against their accepted snapshots (tests/snapshots/)."""
    result = _cli(*env_names(USER_ENV_DIR), deploying=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_the_command_exits_1_when_a_protected_resource_would_be_replaced(tmp_path: Path) -> None:
    baseline = tmp_path / "snapshots"
    write_spec_baseline(baseline, "prod")
    network = baseline / "prod" / "network.json"
    document = json.loads(network.read_text())
    vpc = next(r for r in document["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["protect"], "prod protects its VPC"
    vpc["inputs"]["cidrBlock"] = "10.99.0.0/16"  # the accepted state had another CIDR: the fresh one replaces it
    network.write_text(json.dumps(document))
    result = _cli("prod", "--baseline", str(baseline))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BLOCKED (protected) replace network" in result.stdout and "cidrBlock" in result.stdout


def test_one_protected_delete_in_the_first_of_several_envs_exits_1(tmp_path: Path) -> None:
    # the accepted state holds a queue the fresh synth no longer declares: up would delete it and its messages. One
    # such change is enough, and a clean env diffed after it does not clear it
    baseline = tmp_path / "snapshots"
    write_spec_baseline(baseline, "prod", "dev")
    messaging = baseline / "prod" / "messaging.json"
    document = json.loads(messaging.read_text())
    queue = next(r for r in document["resources"] if r["type"] == "rabbitmq:index/queue:Queue")
    assert queue["protect"], "prod protects its queues"
    gone = json.loads(json.dumps(queue).replace(queue["name"], "messaging-queue-retired"))
    gone["inputs"]["name"] = "retired"
    document["resources"].append(gone)
    messaging.write_text(json.dumps(document))
    result = _cli("prod", "dev", "--baseline", str(baseline))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("BLOCKED (protected)") == 1, result.stdout
    assert "BLOCKED (protected) delete messaging: messaging-queue-retired" in result.stdout, result.stdout
    assert "FAIL: 1 protected resource(s)" in result.stdout, result.stdout


def test_an_unknown_env_exits_2() -> None:
    assert _cli("nope").returncode == 2


def test_a_new_stack_reference_is_a_read_not_a_change() -> None:
    """A program that starts reading a stack (compute its own last outputs) adds a StackReference to its document:
    the engine reads it and creates nothing, so the plan names no change for it."""
    reference = _resource("urn:pulumi:prod::network::pulumi:pulumi:StackReference::organization/network/prod",
                          "pulumi:pulumi:StackReference", {"name": "organization/network/prod"})
    assert _actions(BASE, _doc(*BASE["resources"], reference)) == []
    assert _actions(_doc(*BASE["resources"], reference), BASE) == []


def test_every_broken_env_file_is_listed_at_once(env_dir: Path) -> None:
    """As synth and policy list them (README, Environments): not the first file's problem, then the next run's."""
    for name in ("dev", "staging"):
        with (env_dir / f"{name}.yaml").open("a") as stream:
            stream.write(f"bogus_{name}: 1\n")
    result = _cli("dev", "staging")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "bogus_dev" in result.stderr and "bogus_staging" in result.stderr and "Traceback" not in result.stderr
