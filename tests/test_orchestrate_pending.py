"""An update killed mid-way, then the next run (shared/orchestrate/pending.py).

A killed ``pulumi up`` (a CI job past its timeout, the deploy runner's build timing out, a second Ctrl-C, a crash)
leaves the operations in flight in its stack's ``pending_operations``. A pending create is kept by every later update
and its resource is not in the state, so the next ``up`` would create it again: a named resource AWS did create fails
on its name after the layers before it ran. The real runner (AutomationRunner) over the fake `pulumi` of
test_orchestrate_automation.py, whose `stack export` prints the state a test writes (built from the synth snapshots,
as test_orchestrate_identity.py does).
"""

from __future__ import annotations

import inspect
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from shared.orchestrate.pending import (
    ECS_SERVICE,
    IMPORT_ID_INPUT,
    import_command,
    pending_operations,
    refresh_command,
)
from shared.urns import engine_urn
from tests.synth_helpers import spec_document
from tests.test_orchestrate_automation import FakeCli, fake_cli, management_api, run
from tests.test_orchestrate_identity import changed_operations, deploy, state_as_deployed

__all__ = ["fake_cli", "management_api"]  # fixtures

ROLE = "aws:iam/role:Role"
FALLBACK = "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true"
SG = "aws:ec2/securityGroup:SecurityGroup"


def killed_while(cli: FakeCli, layer: str, kinds: dict[str, str], env: str = "dev") -> list[dict[str, Any]]:
    """``layer``'s state as a killed update left it: the first resource of each type in ``kinds`` pending as the
    operation named there (``creating``: not in the resources, as the engine records it; any other kind: still in
    them, as it is while it is updated, deleted or read). Returns the pending resources."""
    state = state_as_deployed(env, layer)
    resources = state["deployment"]["resources"]
    pending: list[dict[str, Any]] = []
    operations = []
    for type_, kind in kinds.items():
        resource = next(r for r in resources if r["type"] == type_)
        if kind == "creating":
            resources.remove(resource)
            resource = {**resource, "id": "", "outputs": {}, **engine_links(env, layer, resource["urn"])}
        operations.append({"resource": resource, "type": kind})
        pending.append(resource)
    state["deployment"]["pending_operations"] = operations
    (cli.state / f"{layer}.{env}.state.json").write_text(json.dumps(state))
    return pending


def engine_links(env: str, layer: str, urn: str) -> dict[str, str]:
    """The ``parent`` (a URN) and ``provider`` (``<URN>::<id>``) the engine records on the resource ``urn`` of
    ``layer``'s state (state_as_deployed keeps neither), from its synth document."""
    document = spec_document(env, layer)
    by_urn = {str(r["urn"]): r for r in document["resources"]}
    resource = next(r for r in document["resources"] if engine_urn(r, by_urn) == urn)
    parent = by_urn.get(resource.get("parent") or "")
    stack_urn = f"urn:pulumi:{env}::{layer}::pulumi:pulumi:Stack::{layer}-{env}"
    provider_name = str(resource["provider"]).rsplit("::", 1)[-1]
    return {"parent": engine_urn(parent, by_urn) if parent else stack_urn,
            "provider": f"urn:pulumi:{env}::{layer}::pulumi:providers:aws::{provider_name}::0c6a1b2d-provider-id"}


def test_an_up_after_a_killed_create_is_refused_before_any_layer_naming_the_refresh_that_resolves_it(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before, the run went on: network and discovery were updated, then the broker's update created the role
    again and failed on EntityAlreadyExists, and the pending create stayed in the state for every later run."""
    deploy(fake_cli, "dev")
    role, group = killed_while(fake_cli, "broker", {ROLE: "creating", SG: "creating"})
    code, _ = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert not changed_operations(fake_cli)
    assert "up dev refused, nothing was run" in error and "2 create(s)" in error
    assert f"{ROLE} named {role['inputs']['name']!r}: {role['urn']}" in error
    # the role's id is its name (pulumi-aws: `pulumi import aws:iam/role:Role example developer_name`); a group's is
    # one AWS gives (sg-...), to be read in the account
    # each resource that exists is taken into the state by `pulumi import` at its own URN (its parent and its
    # provider as the state records them), then the refresh drops every pending-create record
    commands = [line.split("`")[1] for line in error.splitlines() if line.startswith("  in stacks/broker: `")]
    # the backend, and the secrets provider the state records: a checkout without stacks/<layer>/Pulumi.<env>.yaml
    # (a CI runner, the deploy runner) builds a passphrase one otherwise, as the orchestrator's own runs would
    env = [f"PULUMI_BACKEND_URL={(tmp_path / 'backend').as_uri()}", "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true"]
    imports = [shlex.split(command) for command in commands if " import " in command]
    assert [words[:5] for words in imports] == [[*env, "pulumi", "import", "--stack"]] * 2
    for words, resource, id_ in ((imports[0], role, role["inputs"]["name"]), (imports[1], group, "<ID>")):
        assert words[5] == "organization/broker/dev" and words[-3:] == [resource["type"],
                                                                        resource["urn"].rsplit("::", 1)[-1], id_]
        assert f"parent={resource['parent']}" in words and "--protect=false" in words and "--yes" in words
        assert f"provider={resource['provider'].rsplit('::', 1)[0]}" in words
        assert resource_urn(words) == resource["urn"]
    refresh = shlex.split(commands[-1])
    assert refresh == [*env, "pulumi", "refresh", "--stack", "organization/broker/dev", "--clear-pending-creates",
                       "--yes"]
    # the refresh drops an `importing` record without its resource: no command leans on it
    assert not [command for command in commands if "--import-pending-creates" in command]


def resource_urn(import_words: list[str]) -> str:
    """The URN `pulumi import TYPE NAME ID --parent p=URN` gives the resource (pkg/resource/deploy/import.go:
    generateURN(parent, type, name)): the parent's type chain below the root stack, the type, the name."""
    parent = next(word for word in import_words if word.startswith("parent=")).removeprefix("parent=")
    type_, name = import_words[-3], import_words[-2]
    prefix, project, parent_type = parent.split("::")[:3]
    chain = "" if parent_type == "pulumi:pulumi:Stack" else parent_type + "$"
    return f"{prefix}::{project}::{chain}{type_}::{name}"


def test_a_destroy_after_a_killed_create_is_refused_too(fake_cli: FakeCli, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A destroy passes a pending create by: what AWS made stays in the account, unmanaged."""
    deploy(fake_cli, "dev")
    killed_while(fake_cli, "compute", {"aws:ecr/repository:Repository": "creating"})
    code, _ = run(["destroy", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert not changed_operations(fake_cli)
    assert "destroy dev refused, nothing was run" in error and "leave it in the account" in error


def test_a_preview_and_a_refresh_go_on_and_say_so(fake_cli: FakeCli, tmp_path: Path) -> None:
    deploy(fake_cli, "dev")
    role = killed_while(fake_cli, "broker", {ROLE: "creating"})[0]
    for argv in (["preview", "dev"], ["refresh", "dev", "--yes", "--local-state", "--preview-only"]):
        code, output = run(argv, tmp_path)
        assert code == 0, output
        assert "note: up dev" not in output and f"{role['urn']}" in output and "--clear-pending-creates" in output
        # a preview is of an up, which would create it again; a refresh passes it by
        said = "the update would create it again" if argv[0] == "preview" else "would pass it by"
        assert said in " ".join(output.split()), output


def test_messagings_refresh_command_runs_its_program(fake_cli: FakeCli, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The provider messaging's state records holds the broker password of its last up (shared.orchestrate.
    automation._program_options): a refresh through it fails after a rotation."""
    deploy(fake_cli, "dev")
    killed_while(fake_cli, "messaging", {"rabbitmq:index/queue:Queue": "creating"})
    code, _ = run(["up", "dev", "--yes", "--local-state", "--layers", "messaging"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    command = [line for line in error.splitlines() if line.startswith("  in stacks/messaging: `")][-1]
    assert "refresh --stack organization/messaging/dev --run-program --clear-pending-creates --yes`" in command


def test_pending_operations_of_other_kinds_let_the_up_run_with_a_note(fake_cli: FakeCli, tmp_path: Path) -> None:
    """An update or delete in flight: the resource is still in the state, the engine warns and goes on, and the next
    state it writes drops the record (pulumi/pulumi pkg/backend/snapshot.go keeps only pending creates)."""
    deploy(fake_cli, "dev")
    role = killed_while(fake_cli, "broker", {ROLE: "updating"})[0]
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    assert f"updating {role['urn']}" in output and "drops the record" in output
    assert [args[0] for args in changed_operations(fake_cli) if args[0] == "up"]


def test_a_layer_outside_the_run_is_not_held_against_it(fake_cli: FakeCli, tmp_path: Path) -> None:
    """`--exact`: only the run's own stacks matter; compute's pending create is its own run's business."""
    deploy(fake_cli, "dev")
    killed_while(fake_cli, "compute", {"aws:ecr/repository:Repository": "creating"})
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output


def test_an_ecs_service_killed_while_compute_waited_for_it_to_settle_is_named_by_cluster_and_service(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compute waits inside each service's create until it is steady (up to steady_state_timeout_minutes): a job's
    timeout there leaves the service running in ECS and pending in the state; CreateService of that name again is
    refused by ECS ("Creation of service was not idempotent")."""
    deploy(fake_cli, "dev")
    service = killed_while(fake_cli, "compute", {ECS_SERVICE: "creating"})[0]
    code, _ = run(["up", "dev", "--yes", "--local-state", "--layers", "compute"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    cluster = service["inputs"]["cluster"].rsplit("/", 1)[-1]
    command = next(line for line in error.splitlines() if line.startswith("  in stacks/compute: `"))
    name = service["urn"].rsplit("::", 1)[-1]
    assert command.endswith(f" {ECS_SERVICE} {name} {cluster}/{service['inputs']['name']}`")
    source = Path(inspect.getsourcefile(__import__("pulumi_aws").ecs.Service) or "").read_text()
    assert f"$ pulumi import {ECS_SERVICE} imported cluster-name/service-name" in source


def test_the_state_is_read_as_the_cli_exports_it() -> None:
    found = pending_operations({"pending_operations": [
        {"resource": {"urn": "urn:a", "type": ROLE, "inputs": {"name": "r"}}, "type": "creating"},
        {"resource": "not a resource", "type": "creating"},
        {"resource": {"urn": "urn:b", "type": SG, "inputs": {"name": "sg-name-1"}}, "type": "deleting"}]})
    assert [(op.kind, op.urn, op.import_id, op.name) for op in found] == [
        ("creating", "urn:a", "r", "r"), ("deleting", "urn:b", None, "sg-name-1")]
    assert pending_operations(None) == [] and pending_operations({}) == []


def test_each_import_id_input_is_what_the_provider_documents_for_its_import() -> None:
    """The id of each type in IMPORT_ID_INPUT is the input the program names it by: pulumi-aws's docstring of the
    type imports it by that name (`pulumi import <type> <name> <id>` with an id that is not an ARN nor an AWS id)."""
    import importlib

    for type_, key in IMPORT_ID_INPUT.items():
        module_name, _, class_name = type_.split(":")[1].partition("/")
        module = importlib.import_module(f"pulumi_aws.{module_name.replace('lambda', 'lambda_')}")
        cls = getattr(module, class_name[0].upper() + class_name[1:].split(":")[0])
        doc = Path(inspect.getsourcefile(cls) or "").read_text()
        example = next(line.split() for line in doc.splitlines() if line.strip().startswith(f"$ pulumi import {type_}"))
        assert not example[-1].startswith(("arn:", "sg-", "ns-", "b-", "vpc-")), (type_, example)
        assert key in inspect.signature(cls._internal_init).parameters, (type_, key)


def test_the_commands_name_the_stack_and_quote_each_urn() -> None:
    """A URN holds `$` and `::`: unquoted, a shell expands `$aws` to nothing."""
    op = pending_operations({"pending_operations": [{"resource": {
        "urn": "urn:pulumi:dev::broker::a$aws:iam/role:Role::r", "type": ROLE, "inputs": {"name": "n"},
        "parent": "urn:pulumi:dev::broker::a::p",
        "provider": "urn:pulumi:dev::broker::pulumi:providers:aws::aws-dev::9"},
        "type": "creating"}]})[0]
    assert shlex.split(import_command("organization/broker/dev", op, "s3://bucket/state")) == [
        "PULUMI_BACKEND_URL=s3://bucket/state", FALLBACK, "pulumi", "import", "--stack", "organization/broker/dev",
        "--parent",
        "parent=urn:pulumi:dev::broker::a::p", "--provider",
        "provider=urn:pulumi:dev::broker::pulumi:providers:aws::aws-dev",
        "--protect=false", "--generate-code=false", "--yes", ROLE, "r", "n"]
    command = refresh_command("organization/broker/dev", "s3://bucket/state", run_program=False)
    assert shlex.split(command) == ["PULUMI_BACKEND_URL=s3://bucket/state", FALLBACK, "pulumi", "refresh", "--stack",
                                    "organization/broker/dev", "--clear-pending-creates", "--yes"]


def test_a_replacement_killed_in_its_create_gets_no_import_that_would_fail(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A delete-before-replace of an ECS service deleted the old one, then its create was killed: the state keeps the
    old entry at that URN marked pendingReplacement, so `pulumi import` of the URN fails ("resource ... already
    exists"). The refusal says what does work: nothing to import where AWS made none, else delete it there or set the
    entry's id by export and import of the state."""
    deploy(fake_cli, "dev")
    service = killed_while(fake_cli, "compute", {ECS_SERVICE: "creating"})[0]
    path = fake_cli.state / "compute.dev.state.json"
    state = json.loads(path.read_text())
    state["deployment"]["resources"].append({**service, "id": "arn:aws:ecs:old", "pendingReplacement": True})
    path.write_text(json.dumps(state))
    code, _ = run(["up", "dev", "--yes", "--local-state", "--layers", "compute"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert "pulumi import --stack" not in error and "`pulumi stack export --stack" in error, error
    assert "the replacement of one a delete-before-replace already deleted" in error
    assert "delete \"pendingReplacement\"" in error and "--clear-pending-creates" in error


def test_a_dynamic_resource_killed_in_its_create_needs_no_import() -> None:
    """pulumi import cannot take a dynamic resource (pulumi/pulumi#16175); the platform's take over what exists."""
    from shared.orchestrate.pending import pending_creates_refusal

    urn = "urn:pulumi:prod::broker::mlplatform:broker:AmazonMqBroker$pulumi-python:dynamic:Resource::broker-logs"
    ops = pending_operations({"pending_operations": [
        {"resource": {"urn": urn, "type": "pulumi-python:dynamic:Resource", "inputs": {}}, "type": "creating"},
        {"resource": {"urn": "urn:a", "type": ROLE, "inputs": {"name": "r"}}, "type": "creating"}]})
    text = pending_creates_refusal("prod", "up", {"broker": ("organization/broker/prod", ops)}, "s3://b/state")
    assert "nothing to look up or import" in text
    imports = [line for line in text.splitlines() if " pulumi import " in line]
    assert len(imports) == 1 and ROLE in imports[0], imports


def test_a_create_before_delete_replacement_killed_in_its_create_gets_no_import_either() -> None:
    """Its old resource is still in the state at that URN, live: `pulumi import` refuses any URN the state holds
    (pulumi/pulumi step.go ImportStep.Apply), so the refusal names what works: delete the half-made new one."""
    from shared.orchestrate.pending import pending_creates_refusal

    urn = "urn:pulumi:dev::compute::a$aws:iam/role:Role::gateway-task"
    old: dict[str, Any] = {"urn": urn, "type": ROLE, "id": "gateway-task-1a2b3c4"}
    deployment = {"resources": [old],
                  "pending_operations": [{"resource": {"urn": urn, "type": ROLE, "inputs": {"name": "r"}},
                                          "type": "creating"}]}
    (op,) = pending_operations(deployment)
    assert op.replacing_live and not op.replacing
    text = pending_creates_refusal("dev", "up", {"compute": ("organization/compute/dev", [op])}, "s3://b/state")
    assert " pulumi import " not in text and "created before the old one is deleted" in text
    # which copy to delete: the half-made new one, never the old one in use
    assert "delete that one there first (the old one stays, in use)" in text
    assert "--clear-pending-creates" in text
    # an entry marked delete (an old copy awaiting deletion) is no live one at the URN: the import works there
    old["delete"] = True
    (op,) = pending_operations(deployment)
    assert not op.replacing_live and not op.replacing


def test_a_dynamic_resource_of_a_type_named_by_its_subclass_is_known_by_its_provider() -> None:
    """A pulumi.dynamic.Resource subclass may name its type (pulumi-python:dynamic/<module>:<name>); its provider is
    still pulumi-python's."""
    ops = pending_operations({"pending_operations": [{"resource": {
        "urn": "urn:a", "type": "pulumi-python:dynamic/drains:Drain", "inputs": {},
        "provider": "urn:pulumi:dev::broker::pulumi:providers:pulumi-python::default::0a1b"}, "type": "creating"}]})
    assert ops[0].dynamic
    ops = pending_operations({"pending_operations": [{"resource": {
        "urn": "urn:b", "type": "custom:index:Thing", "inputs": {},
        "provider": "urn:pulumi:dev::broker::pulumi:providers:pulumi-python::default::0a1b"}, "type": "creating"}]})
    assert ops[0].dynamic
