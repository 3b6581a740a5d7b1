"""Consumers read upstream contracts as typed objects: a typed view per contract (each field a
``pulumi.Output`` of the contract's type, checked by mypy) or the whole contract as one validated model.
A value that breaks the contract, or a missing one, fails at synth naming the layer and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pulumi
import pytest

from shared import REPO_ROOT
from shared.contracts import VIEWS, ContractOutputs, NetworkContract, NetworkOutputs, view_mismatches
from shared.errors import ContractError
from shared.synth.engine import synth_program
from tests.layers.compute_helpers import platform

UPSTREAMS = ("network", "discovery", "mesh", "broker", "messaging")


def compute_with(edit: Any) -> dict[str, Any]:
    """Synthesize dev's compute layer on the committed upstream outputs, after ``edit(outputs)``."""
    outputs = {layer: json.loads(json.dumps(platform("dev")[layer]["outputs"])) for layer in UPSTREAMS}
    edit(outputs)
    return synth_program(REPO_ROOT / "stacks/compute", stack="dev", layer="compute", env="dev",
                         account_id="111111111111", region="eu-west-1",
                         stack_outputs={f"organization/{layer}/dev": values for layer, values in outputs.items()})


def test_every_view_mirrors_its_contract_field_for_field() -> None:
    for view in VIEWS.values():
        assert view_mismatches(view) == []


def test_a_view_that_drifts_from_its_contract_is_named() -> None:
    class Drifted(ContractOutputs):
        model = NetworkContract
        vpc_id: pulumi.Output[int]  # wrong type; every other field missing

    wrong = view_mismatches(Drifted)
    assert "vpc_id" in wrong and "private_subnet_ids" in wrong


def test_a_value_of_the_wrong_type_fails_at_synth_naming_layer_and_field() -> None:
    def break_port(outputs: dict[str, Any]) -> None:
        outputs["mesh"]["services"]["inference"]["client_alias_port"] = "eighty"

    with pytest.raises(ContractError, match=r"mesh\.services\.inference\.client_alias_port.*MeshContract") as caught:
        compute_with(break_port)
    assert isinstance(caught.value, pulumi.RunError)


def test_a_missing_network_field_fails_at_synth_naming_it() -> None:
    missing = r"network\.private_subnet_ids, which stack organization/network/dev does not export"
    with pytest.raises(ContractError, match=missing):
        compute_with(lambda outputs: outputs["network"].pop("private_subnet_ids"))


def test_float_ports_from_a_stack_reference_read_back_as_ints() -> None:
    # A StackReference hands numbers back as floats; the contract model makes them ints again.
    def floats(outputs: dict[str, Any]) -> None:
        for entry in outputs["mesh"]["services"].values():
            entry["client_alias_port"] = float(entry["client_alias_port"])

    as_floats = {r["urn"]: r["inputs"] for r in compute_with(floats)["resources"]}
    assert as_floats == {r["urn"]: r["inputs"] for r in platform("dev")["compute"]["resources"]}


def test_mypy_checks_the_field_names_a_consumer_reads(tmp_path: Any) -> None:
    program = tmp_path / "consumer.py"
    program.write_text(
        "from shared.contracts import NetworkOutputs, Upstream\n"
        "def read(upstream: Upstream) -> None:\n"
        "    network = upstream.contract(NetworkOutputs)\n"
        "    network.vpc_idd\n"
        "    subnets: int = network.private_subnet_ids\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
                             "--no-incremental", str(program)], capture_output=True, text=True, cwd=REPO_ROOT,
                            check=False)
    assert result.returncode == 1, result.stdout
    assert '"NetworkOutputs" has no attribute "vpc_idd"' in result.stdout
    assert 'expression has type "Output[list[str]]", variable has type "int"' in result.stdout


def test_a_view_of_another_layers_contract_is_refused() -> None:
    from shared.contracts import DiscoveryOutputs, Upstream

    upstream = Upstream.__new__(Upstream)
    upstream.consumer, upstream.layer, upstream.model = "compute", "network", NetworkContract
    with pytest.raises(ContractError, match="reads 'network' as DiscoveryContract"):
        upstream.contract(DiscoveryOutputs)
    assert NetworkOutputs.model is NetworkContract


# -- an upstream stack that lacks a field its contract now requires (consumer run before its producer) ------------

def test_a_field_the_upstream_stack_lacks_names_the_stack_and_the_layer_to_deploy() -> None:
    # A release added a required field; compute's `up --exact` (or a per-layer `pulumi up`) runs before broker's.
    # The SDK's require_output would raise a bare KeyError: 'alarm_topic_arn'.
    with pytest.raises(ContractError) as caught:
        compute_with(lambda outputs: outputs["broker"].pop("alarm_topic_arn"))
    # a RunError: `pulumi` prints its message as the `error:` line, not "Program failed with an unhandled exception"
    assert isinstance(caught.value, pulumi.RunError)
    message = str(caught.value)
    assert "compute' reads broker.alarm_topic_arn" in message
    assert "which stack organization/broker/dev does not export: deploy broker first" in message
    assert "BrokerContract has no such field (an older one, or a newer one that removed or renamed it)" in message
    assert "(`nox -s up -- dev --layers broker`)" in message


def test_an_upstream_never_deployed_says_so() -> None:
    # The first preview of a new env: the orchestrator created network's stack empty for its preview, and the next
    # level's preview reads that stack, which has no outputs yet.
    with pytest.raises(ContractError) as caught:
        synth_program(REPO_ROOT / "stacks/discovery", stack="dev", layer="discovery", env="dev",
                      account_id="111111111111", region="eu-west-1", stack_outputs={})
    assert isinstance(caught.value, pulumi.RunError)
    message = str(caught.value)
    assert "discovery' reads network." in message
    assert "but stack organization/network/dev has no outputs: deploy network first" in message
    assert "(`nox -s up -- dev --layers network`). network was never deployed to dev" in message


def test_an_optional_field_the_upstream_stack_lacks_reads_as_none() -> None:
    # queue_metrics_security_group_id is optional in the contract (a stack deployed before it existed)
    expected = platform("dev")["compute"]["resources"]
    document = compute_with(lambda outputs: outputs["network"].pop("queue_metrics_security_group_id", None))
    assert [r["urn"] for r in document["resources"]] == [r["urn"] for r in expected]


#: What the engine's StackReference read returns for a network stack whose vpc_cidr is secret: the secret value wrapped
#: in the outputs map and its name in secretOutputNames (pkg/resource/deploy/builtins.go, readStackReference). The
#: SDK then marks the whole ``outputs`` Output secret (pulumi/runtime/rpc.py deserialize_property pushes a nested
#: secret up; pulumi/pulumi#2744), so only the per-name answer (secret_output_names, pulumi/pulumi#3071) keeps the
#: other fields non-secret.
_SECRET_CIDR_READ: dict[str, Any] = {
    "outputs": {"vpc_id": "vpc-1", "availability_zones": [], "public_subnet_ids": [], "private_subnet_ids": [],
                "service_security_group_id": "sg-1", "deploy_runner_security_group_id": "sg-2",
                "vpc_cidr": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                             "value": "10.0.0.0/16"}},
    "secretOutputNames": ["vpc_cidr"],
}


def _read_network_with_a_secret() -> None:
    from shared.contracts import Upstream

    network = Upstream("discovery", "network", "organization", "dev")
    pulumi.export("vpc_id", network["vpc_id"])
    pulumi.export("vpc_cidr", network.field("vpc_cidr"))
    pulumi.export("vpc", network.resolved(NetworkContract).apply(lambda contract: contract.vpc_id))
    # the mock reads as the engine's: the map as a whole is secret
    pulumi.export("whole_map", network.reference.outputs.apply(len))


def test_an_upstream_secret_output_stays_secret_and_only_that_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.synth.engine import synth_function
    from shared.synth.mocks import PlatformMocks

    def new_resource(self: PlatformMocks, args: Any) -> tuple[str, dict[str, Any]]:
        assert args.typ == "pulumi:pulumi:StackReference"
        return args.inputs["name"], {"name": args.inputs["name"], **_SECRET_CIDR_READ}

    monkeypatch.setattr(PlatformMocks, "new_resource", new_resource)
    document = synth_function(_read_network_with_a_secret)
    assert document["outputs"] == {"vpc_id": "vpc-1", "vpc_cidr": "10.0.0.0/16", "vpc": "vpc-1", "whole_map": 7}
    # resolved() reads every field, vpc_cidr among them: secret as a whole, as Output.all makes it
    assert document["secret_outputs"] == ["vpc", "vpc_cidr", "whole_map"]


@pytest.mark.usefixtures("own_event_loop")
def test_an_upstream_secret_output_stays_secret_and_only_that_one_with_the_sdks_own_mocks() -> None:
    # The same read through the SDK's own mock monitor (pulumi.runtime.set_mocks), none of the synth's fast paths:
    # the SDK's StackReference, deserialization and resolvers as `pulumi up` and `pulumi preview` run them.
    from pulumi.runtime import mocks, settings
    from pulumi.runtime.sync_await import _sync_await

    from shared.contracts import Upstream

    class EngineRead(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            assert args.typ == "pulumi:pulumi:StackReference"
            return args.inputs["name"], {"name": args.inputs["name"], **_SECRET_CIDR_READ}

        def call(self, args: mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
            return {}, None

    for preview in (False, True):
        settings.ROOT.set(None)
        try:
            pulumi.runtime.set_mocks(EngineRead(), project="discovery", stack="dev", preview=preview)
            network = Upstream("discovery", "network", "organization", "dev")
            secret = {name: _sync_await(network[name].is_secret()) for name in ("vpc_id", "vpc_cidr")}
            known = {name: _sync_await(network[name].is_known()) for name in ("vpc_id", "vpc_cidr")}
            whole = _sync_await(network.reference.outputs.is_secret())
        finally:
            settings.ROOT.set(None)
        assert (whole, secret, known) == (True, {"vpc_id": False, "vpc_cidr": True},
                                          {"vpc_id": True, "vpc_cidr": True}), f"preview={preview}"


# -- a new required field breaks every consumer run before its producer -----------------------------------------

#: The fields each contract read by another layer requires (top level: not ``X | None``, which Upstream reads as None
#: when absent; nested models: no default, which their validation requires), as deployed stacks in every env hold them.
REQUIRED_FIELDS: dict[str, list[str]] = {
    "NetworkContract": ["availability_zones", "deploy_runner_security_group_id", "private_subnet_ids",
                        "public_subnet_ids", "service_security_group_id", "vpc_cidr", "vpc_id"],
    "DiscoveryContract": ["http_namespace_arn", "http_namespace_id", "http_namespace_name", "private_namespace_arn",
                          "private_namespace_id", "private_namespace_name", "services"],
    "DiscoveryService": ["arn", "id", "name"],
    "MeshContract": ["provider", "services"],
    "MeshService": ["client_alias_dns", "client_alias_port", "discovery_name", "port_name"],
    "MeshVersion": ["cloud_map_attributes", "virtual_node_name", "weight"],
    "BrokerContract": ["alarm_topic_arn", "amqps_endpoint", "broker_mode", "deploy_runner_project_name",
                       "deploy_runner_security_group_id", "management_endpoint"],
    "MessagingContract": ["amqps_endpoint", "broker_mode", "dead_letter_exchange", "events_exchange", "queues",
                          "requests_exchange", "service_secret_arns", "vhost"],
}


def _required_fields() -> dict[str, list[str]]:
    import typing

    from shared.contracts import CONTRACTS, Contract
    from shared.dag import LAYER_UPSTREAMS

    found: dict[str, list[str]] = {}

    def walk(model: type[Contract], top: bool) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = sorted(
            name for name, field in model.model_fields.items()
            if (type(None) not in typing.get_args(field.annotation) if top else field.is_required()))
        for field in model.model_fields.values():
            pending = [field.annotation]
            while pending:
                annotation = pending.pop()
                if isinstance(annotation, type) and issubclass(annotation, Contract):
                    walk(annotation, top=False)
                pending.extend(typing.get_args(annotation))

    for layer in sorted({up for ups in LAYER_UPSTREAMS.values() for up in ups}):
        walk(CONTRACTS[layer], top=True)
    return found


def test_a_new_contract_field_that_consumers_read_is_optional() -> None:
    # A release's consumers run before its producers in a per-layer `pulumi up`, an `--exact` run and every pull
    # request's preview (a preview reads what the upstream stacks have deployed), and each of them would fail until
    # the producer is deployed with the new field. Declare it `X | None = None` (a nested model's: with a default),
    # and where the consumer needs it, say so with shared.contracts.required(); list it here as required only once
    # every env's producer stack holds it.
    added = {model: sorted(set(fields) - set(REQUIRED_FIELDS.get(model, [])))
             for model, fields in _required_fields().items()}
    assert {model: fields for model, fields in added.items() if fields} == {}
    assert _required_fields() == REQUIRED_FIELDS  # a field made optional or removed: drop it from the list


def test_a_consumer_check_of_what_an_upstream_stack_holds_is_a_pulumi_error_line() -> None:
    # A catalog service mesh has not been deployed with yet (README: "compute needs mesh.services['<service>'] ...").
    # Raised in an apply, it must be a RunError for `pulumi` to print it as the error (not a traceback).
    def forget(outputs: dict[str, Any]) -> None:
        outputs["mesh"]["services"].pop("inference")

    with pytest.raises(ContractError, match=r"compute needs mesh\.services\['inference'\]") as caught:
        compute_with(forget)
    assert isinstance(caught.value, pulumi.RunError)


def test_a_cluster_broker_over_a_network_stack_with_too_few_subnets_is_a_pulumi_error_line() -> None:
    # prod's env asks for a CLUSTER_MULTI_AZ broker (and network.az_count 3) while its network stack still holds two
    # private subnets (a change of both in one commit: the pull request's preview of broker, or `--layers broker`,
    # reads the network deployed before). Raised in an apply on network's outputs, it must be a RunError for `pulumi`
    # to print it as the error line (a ValueError was "Program failed with an unhandled exception:" and a traceback).
    network = json.loads(json.dumps(platform("prod")["network"]["outputs"]))
    network["private_subnet_ids"] = network["private_subnet_ids"][:2]
    from shared.contracts import StackContractError

    with pytest.raises(StackContractError) as caught:
        synth_program(REPO_ROOT / "stacks/broker", stack="prod", layer="broker", env="prod",
                      account_id="333333333333", region="eu-west-1",
                      stack_outputs={"organization/network/prod": network})
    assert isinstance(caught.value, pulumi.RunError)
    assert str(caught.value).startswith("layer 'broker' reads 2 private subnets from the network stack: deploy the "
                                        "network layer first")


#: One program run by the SDK's own run_in_stack and wait_for_rpcs (the synth replaces the latter) under its own mock
#: monitor, in a process of its own as pulumi-language-python-exec runs it, whose `except pulumi.RunError as e:
#: pulumi.log.error(str(e))` prints the message as the error line; any other exception is "Program failed with an
#: unhandled exception:" and a traceback. Prints what reached it.
_LANGUAGE_HOST = """
import sys
import pulumi
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await
from shared.contracts import Upstream

use, preview = sys.argv[1], sys.argv[2] == "preview"

class NetworkWithoutCidr(mocks.Mocks):
    def new_resource(self, args):
        if args.typ == "pulumi:pulumi:StackReference":
            return args.inputs["name"], {"name": args.inputs["name"], "outputs": {"vpc_id": "vpc-1"},
                                         "secretOutputNames": []}
        return args.name + "-id", dict(args.inputs)

    def call(self, args):
        return {}, None

def program():
    cidr = Upstream("discovery", "network", "organization", "dev")["vpc_cidr"]
    if use == "resource input":
        pulumi.CustomResource("test:index:Thing", "thing", {"cidr": cidr})
    elif use == "export":
        pulumi.export("cidr", cidr)
    else:
        cidr.apply(str)

pulumi.runtime.set_mocks(NetworkWithoutCidr(), project="discovery", stack="dev", preview=preview)
settings.ROOT.set(None)
try:
    _sync_await(run_in_stack(program))
    print("no error")
except pulumi.RunError as error:
    print("error:", type(error).__name__, error)
except Exception as error:
    print("Program failed with an unhandled exception:", type(error).__name__, error)
"""


@pytest.mark.parametrize("use", ["resource input", "export", "unused apply"])
@pytest.mark.parametrize("preview", ["up", "preview"])
def test_a_missing_upstream_field_reaches_the_language_host_as_a_run_error(use: str, preview: str) -> None:
    # The SDK re-raises a ValueError met serializing an input as "While processing input: ...": the error must reach
    # the language host unwrapped however the program uses the value.
    run = subprocess.run([sys.executable, "-c", _LANGUAGE_HOST, use, preview], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=False)
    assert run.stdout.startswith("error: StackContractError layer 'discovery' reads network.vpc_cidr, which stack "
                                 "organization/network/dev does not export"), run.stdout + run.stderr
