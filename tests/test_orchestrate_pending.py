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

from shared.orchestrate.pending import ECS_SERVICE, IMPORT_ID_INPUT, pending_operations, refresh_command
from tests.test_orchestrate_automation import FakeCli, fake_cli, management_api, run
from tests.test_orchestrate_identity import changed_operations, deploy, state_as_deployed

__all__ = ["fake_cli", "management_api"]  # fixtures

ROLE = "aws:iam/role:Role"
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
            resource = {**resource, "id": "", "outputs": {}}
        operations.append({"resource": resource, "type": kind})
        pending.append(resource)
    state["deployment"]["pending_operations"] = operations
    (cli.state / f"{layer}.{env}.state.json").write_text(json.dumps(state))
    return pending


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
    command = next(line for line in error.splitlines() if line.startswith("  in stacks/broker: `"))
    words = shlex.split(command.split("`")[1])
    assert words[:5] == [f"PULUMI_BACKEND_URL={(tmp_path / 'backend').as_uri()}", "pulumi", "refresh", "--stack",
                         "organization/broker/dev"]
    pairs = [words[i + 1] for i, word in enumerate(words) if word == "--import-pending-creates"]
    assert pairs == [role["urn"], role["inputs"]["name"], group["urn"], "<ID>"]
    assert words[-2:] == ["--clear-pending-creates", "--yes"] and "--run-program" not in words


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


def test_messagings_refresh_command_runs_its_program(fake_cli: FakeCli, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The provider messaging's state records holds the broker password of its last up (shared.orchestrate.
    automation._program_options): a refresh through it fails after a rotation."""
    deploy(fake_cli, "dev")
    killed_while(fake_cli, "messaging", {"rabbitmq:index/queue:Queue": "creating"})
    code, _ = run(["up", "dev", "--yes", "--local-state", "--layers", "messaging"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    command = next(line for line in error.splitlines() if line.startswith("  in stacks/messaging: `"))
    assert "--run-program --clear-pending-creates --yes`" in command


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
    assert f"--import-pending-creates {cluster}/{service['inputs']['name']} " in command
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


def test_the_refresh_command_names_the_stack_and_quotes_each_urn() -> None:
    op = pending_operations({"pending_operations": [{"resource": {
        "urn": "urn:pulumi:dev::broker::a$aws:iam/role:Role::r", "type": ROLE, "inputs": {"name": "n"}},
        "type": "creating"}]})
    command = refresh_command("organization/broker/dev", op, "s3://bucket/state", run_program=False)
    assert shlex.split(command) == ["PULUMI_BACKEND_URL=s3://bucket/state", "pulumi", "refresh", "--stack",
                                    "organization/broker/dev", "--import-pending-creates",
                                    "urn:pulumi:dev::broker::a$aws:iam/role:Role::r", "--import-pending-creates", "n",
                                    "--clear-pending-creates", "--yes"]
