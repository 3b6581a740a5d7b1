"""The identity guard (shared/orchestrate/identity.py): before any layer runs, the env file's region and account_id
against what each existing stack was deployed with, read from its state through the Automation API.

The runner is the real one (AutomationRunner) over the fake `pulumi` of test_orchestrate_automation.py, whose
`stack export` prints the state a test writes. That state is built from the accepted synth snapshots
(tests/snapshots/<env>/<layer>.json): the resources, and the AWS provider's inputs, exactly as the layer programs
send them to the engine, under the URNs the engine gives them.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.dag import LAYERS
from shared.envs import load_env
from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from shared.orchestrate.identity import (
    Deployed,
    UnreadableState,
    check_identity,
    deployed_from_state,
    deployed_secrets_provider,
    mismatches,
    provider_name,
)
from shared.urns import engine_urn
from tests.aws_helpers import ReleasedEverywhere
from tests.conftest import EnvEditor
from tests.synth_helpers import spec_document
from tests.test_orchestrate_automation import FakeCli, fake_cli, management_api, run

__all__ = ["fake_cli", "management_api"]  # fixtures

STACK_TYPE = "pulumi:pulumi:Stack"


def state_as_deployed(env: str, layer: str) -> dict[str, Any]:
    """The ``pulumi stack export`` of ``layer``'s stack after an `up` of the example ``env`` file: every resource
    of its synth document under its engine URN, inputs as the program sent them."""
    document = spec_document(env, layer)
    by_urn = {str(r["urn"]): r for r in document["resources"]}
    resources: list[dict[str, Any]] = [{"urn": f"urn:pulumi:{env}::{layer}::{STACK_TYPE}::{layer}-{env}",
                                        "custom": False, "type": STACK_TYPE}]
    for resource in document["resources"]:
        resources.append({"urn": engine_urn(resource, by_urn), "custom": resource["custom"],
                          "id": f"id-{len(resources)}", "type": resource["type"],
                          "inputs": resource["inputs"], "outputs": resource["inputs"]})
    return {"version": 3, "deployment": {"manifest": {"time": "2026-11-30T00:00:00Z", "magic": "",
                                                      "version": "v3.272.0"}, "resources": resources}}


def deploy(cli: FakeCli, env: str, layers: Sequence[str] = LAYERS) -> None:
    """``layers`` of ``env`` deployed (elsewhere: the stacks and their state in the backend)."""
    cli.create_stacks(env, tuple(layers))
    for layer in layers:
        (cli.state / f"{layer}.{env}.state.json").write_text(json.dumps(state_as_deployed(env, layer)))


def changed_operations(cli: FakeCli) -> list[list[str]]:
    """Every `pulumi` call that previews or changes infrastructure, or creates a stack."""
    verbs = (["up"], ["preview"], ["refresh"], ["destroy"])
    return [c["args"] for c in cli.calls()
            if c["event"] == "call" and (c["args"][:1] in verbs or c["args"][:2] == ["stack", "init"])]


def exported(cli: FakeCli) -> list[str]:
    return [c["layer"] for c in cli.calls() if c["event"] == "call" and c["args"][:2] == ["stack", "export"]]


# -- where the guard reads: the program's own provider -------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_layer_records_its_region_and_account_in_the_provider_the_guard_reads(env: str) -> None:
    config = load_env(env)
    for layer in LAYERS:
        deployment = state_as_deployed(env, layer)["deployment"]
        stack = f"organization/{layer}/{env}"
        assert deployed_from_state(deployment, layer, config, stack) == \
            Deployed(layer, stack, config.region, (config.account_id,)), layer


def provider(env: str, region: object, accounts: object, **extra: object) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:{env}::network::pulumi:providers:aws::{provider_name(env)}",
            "type": "pulumi:providers:aws", "custom": True, "inputs": {"region": region, "allowedAccountIds": accounts},
            **extra}


def test_the_live_provider_counts_not_an_old_copy_pending_deletion_and_a_list_is_read_too() -> None:
    env = load_env("dev")
    deployment = {"resources": [provider("dev", "us-east-1", '["999999999999"]', delete=True),
                                provider("dev", "eu-west-1", ["111111111111"])]}
    assert deployed_from_state(deployment, "network", env, "s") == Deployed("network", "s", "eu-west-1",
                                                                            ("111111111111",))


def test_a_secret_wrapped_value_is_read_from_its_plaintext() -> None:
    env = load_env("dev")
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
              "plaintext": json.dumps('["111111111111"]')}
    found = deployed_from_state({"resources": [provider("dev", "eu-west-1", secret)]}, "network", env, "s")
    assert found is not None and found.account_ids == ("111111111111",)


def test_a_secret_read_without_its_plaintext_is_not_compared() -> None:
    """The state as stored (`pulumi stack export` without --show-secrets) holds a secret as ciphertext: unknown."""
    env = load_env("dev")
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "AAABAJ+x"}
    found = deployed_from_state({"resources": [provider("dev", secret, secret)]}, "network", env, "s")
    assert found == Deployed("network", "s", None, None)
    assert mismatches(env, [found]) == []


def test_a_stack_without_the_layers_provider_has_nothing_to_compare() -> None:
    env = load_env("dev")
    assert deployed_from_state(None, "network", env, "s") is None
    assert deployed_from_state({"manifest": {}}, "network", env, "s") is None
    other = provider("dev", "us-east-1", '["111111111111"]')
    other["urn"] = "urn:pulumi:dev::network::pulumi:providers:aws::default_7_0_0"
    assert deployed_from_state({"resources": [other]}, "network", env, "s") is None


@pytest.mark.parametrize("accounts", ["[111111111111", '{"a": 1}', 7])
def test_a_provider_entry_of_another_shape_is_refused_by_name(accounts: object) -> None:
    with pytest.raises(UnreadableState, match="allowedAccountIds"):
        deployed_from_state({"resources": [provider("dev", "eu-west-1", accounts)]}, "network", load_env("dev"), "s")


# -- the guard in a run ------------------------------------------------------------------------------------


def test_an_env_file_as_deployed_runs(fake_cli: FakeCli, tmp_path: Path) -> None:
    deploy(fake_cli, "dev")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    assert sorted(exported(fake_cli)) == sorted(LAYERS)
    assert len([args for args in changed_operations(fake_cli) if args[0] == "up"]) == len(LAYERS)


def test_a_changed_region_is_refused_before_anything_runs(fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    deploy(fake_cli, "dev")
    edit_env("dev", lambda data: data.update(region="eu-central-1"))
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert changed_operations(fake_cli) == []
    assert "dev.yaml" in error and "region: is 'eu-central-1'" in error and "deployed with 'eu-west-1'" in error
    assert "organization/network/dev" in error and "organization/compute/dev" in error
    assert "new env file" in error and "nox -s destroy -- dev" in error
    assert "Traceback" not in error


def test_a_changed_account_is_refused_and_a_preview_too(fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    deploy(fake_cli, "dev")
    edit_env("dev", lambda data: data.update(account_id="444444444444"))
    code, output = run(["preview", "dev"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert changed_operations(fake_cli) == []
    assert "account_id: is '444444444444'" in error and "deployed with '111111111111'" in error


def test_a_destroy_with_a_changed_region_is_refused(fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    deploy(fake_cli, "dev")
    edit_env("dev", lambda data: data.update(region="eu-central-1"))
    code, output = run(["destroy", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert changed_operations(fake_cli) == []
    assert "destroy dev refused" in capsys.readouterr().err


def test_only_the_layers_of_the_run_are_read(fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor) -> None:
    """CI runs one layer per job (--exact): each job checks its own stack."""
    deploy(fake_cli, "dev", ["network"])
    code, output = run(["preview", "dev", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert exported(fake_cli) == ["network"]


def test_a_first_up_has_no_stack_to_compare_and_runs(fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor) -> None:
    edit_env("dev", lambda data: data.update(region="eu-central-1"))  # never deployed: any region is the first
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    assert sorted(exported(fake_cli)) == sorted(LAYERS)  # each answered "no stack named ... found"
    assert len([args for args in changed_operations(fake_cli) if args[0] == "up"]) == len(LAYERS)


def test_reading_a_stack_costs_one_pulumi_command(fake_cli: FakeCli, tmp_path: Path) -> None:
    """On every run, before the first layer: one `pulumi stack export` per layer of the run, deployed or not, and at
    most one `pulumi version` for them all -- not a workspace per stack (`pulumi version`, `pulumi stack select`, then
    the export: three processes a stack)."""
    deploy(fake_cli, "dev", ["network", "discovery"])  # the other stacks do not exist
    env = load_env("dev")
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    runner.prepare_read(LAYERS, env)
    for _ in range(2):  # a second check (another run of this runner) needs no further `pulumi version`
        before = len(fake_cli.calls())
        check_identity(env, LAYERS, runner.deployed_identity, "preview")
        calls = [c["args"] for c in fake_cli.calls()[before:] if c["event"] == "call"]
        reads = sorted(args for args in calls if args != ["version"])
        assert reads == sorted(["stack", "export", "--stack", f"organization/{layer}/dev"] for layer in LAYERS), calls
        assert calls.count(["version"]) <= (1 if _ == 0 else 0), calls


def test_a_stack_created_but_never_deployed_has_nothing_to_compare(fake_cli: FakeCli, tmp_path: Path,
                                                                   edit_env: EnvEditor) -> None:
    fake_cli.create_stacks("dev")  # `stack init` only: the export holds no resources
    edit_env("dev", lambda data: data.update(region="eu-central-1"))
    code, output = run(["preview", "dev"], tmp_path)
    assert code == 0, output
    assert sorted(exported(fake_cli)) == sorted(LAYERS)


def test_the_state_is_read_as_stored_without_decrypting_its_secrets(fake_cli: FakeCli, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's region and allowedAccountIds are not secrets. `pulumi stack export --show-secrets` (the
    Automation API's export_stack) decrypts every secret of the state (stack_export.go: DeserializeUntypedDeployment
    with the stack's secrets provider, then a secrets-decryption audit event): the check would need the decrypt right
    and bring every stack's plaintext secrets into this process on every run. It reads the state as stored."""
    deploy(fake_cli, "dev", ["network"])
    env = load_env("dev")
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    runner.prepare_read(["network"], env)
    monkeypatch.setenv("FAKE_PULUMI_NO_DECRYPT", "1")  # may read the backend, may not decrypt
    stack = "organization/network/dev"
    assert runner.deployed_identity("network", env) == Deployed("network", stack, env.region, (env.account_id,))
    exports = [c["args"] for c in fake_cli.calls() if c["event"] == "call" and c["args"][:2] == ["stack", "export"]]
    assert exports and all("--show-secrets" not in args for args in exports), exports


def test_a_state_that_cannot_be_read_stops_the_run_with_its_reason(fake_cli: FakeCli, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    deploy(fake_cli, "dev")
    monkeypatch.setenv("FAKE_PULUMI_EXPORT_FAIL", "broker")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert changed_operations(fake_cli) == []
    assert "the state of stack organization/broker/dev could not be read" in error and "AccessDenied" in error
    assert "no run creates an S3 bucket or KMS key for state" in error
    assert "Traceback" not in error


def test_a_state_that_is_not_json_stops_the_run(fake_cli: FakeCli, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    deploy(fake_cli, "dev")
    (fake_cli.state / "mesh.dev.state.json").write_text("<html>502 Bad Gateway</html>")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert changed_operations(fake_cli) == []
    assert "the state of stack organization/mesh/dev could not be read" in error and "Traceback" not in error


# -- the secrets provider the stacks keep against state.secrets_provider ---------------------------------------

KMS = "awskms://alias/pulumi-state?region=eu-west-1"


@pytest.mark.parametrize(("entry", "read"), [
    ({"type": "passphrase", "state": {"salt": "v1:abc"}}, "passphrase"),
    ({"type": "service", "state": {"url": "https://api.pulumi.com", "owner": "acme", "project": "network",
                                   "stack": "dev"}}, "service"),
    ({"type": "cloud", "state": {"url": KMS, "encryptedkey": "ZGF0YWtleQ=="}}, KMS),
    (None, None),
])
def test_the_secrets_provider_is_read_from_the_state_as_pulumi_writes_it(entry: object, read: str | None) -> None:
    deployment = {"manifest": {}} if entry is None else {"manifest": {}, "secrets_providers": entry}
    assert deployed_secrets_provider(deployment) == read


@pytest.mark.parametrize("entry", [{"state": {}}, "passphrase", {"type": "cloud", "state": {"encryptedkey": "x"}}])
def test_a_secrets_provider_entry_of_another_shape_is_refused_by_name(entry: object) -> None:
    with pytest.raises(UnreadableState):
        deployed_secrets_provider({"secrets_providers": entry})


def test_an_up_after_state_secrets_provider_changed_on_deployed_stacks_is_refused_naming_the_migration(
        fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor, capsys: pytest.CaptureFixture[str]) -> None:
    """The stacks were created with a passphrase (the self-managed default); the env file now names a KMS key. An
    existing stack keeps its provider (`--secrets-provider` is read by `stack init` only), so the up would go on
    encrypting with the old passphrase, unsaid, and create any new stack on the key."""
    deploy(fake_cli, "dev")
    edit_env("dev", lambda data: data.update(state={"secrets_provider": KMS}))
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert changed_operations(fake_cli) == []
    assert f"dev.yaml: state.secrets_provider is '{KMS}'" in error
    assert "organization/network/dev" in error and "with 'passphrase'" in error and "up dev refused" in error
    assert f"pulumi stack change-secrets-provider --stack organization/compute/dev '{KMS}'" in error
    assert "put back state.secrets_provider: 'passphrase'" in error and "Traceback" not in error
    assert all(fake_cli.secrets_provider(layer, "dev") == "passphrase" for layer in LAYERS
               if (fake_cli.state / f"{layer}.dev.secrets").exists())


def test_the_printed_moves_name_the_backend_profile_and_region_this_run_gives_pulumi(
        fake_cli: FakeCli, tmp_path: Path, edit_env: EnvEditor, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """change-secrets-provider run from the operator's shell must reach the same backend and key with the env's
    credentials (PLATFORM_AWS_PROFILE_<ENV> is the orchestrator's, not the shell's) and, for a key URL without
    region=, the region the roles grant it in; PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER plays no part in that
    command (stack_change_secrets_provider.go builds its loader without fallback), so it is not asked for."""
    deploy(fake_cli, "dev", ["network"])
    monkeypatch.setenv("PLATFORM_AWS_PROFILE_DEV", "dev-admin")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERACCOUNT")  # which the Go SDK prefers to a bare AWS_PROFILE
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aws-config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", "aws-config")  # relative: not found after the printed `cd stacks/<layer>`
    edit_env("dev", lambda data: data.update(state={"secrets_provider": "awskms://alias/pulumi-state"}))
    code, _ = run(["up", "dev", "--yes", "--local-state", "--layers", "network", "--exact"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2
    assert "AWS_PROFILE=dev-admin" in error and "AWS_REGION=eu-west-1" in error and "PULUMI_BACKEND_URL=" in error
    assert "AWS_ACCESS_KEY_ID=''" in error and f"AWS_CONFIG_FILE={tmp_path / 'aws-config'}" in error
    assert "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER" not in error


def test_a_preview_with_a_changed_secrets_provider_runs_and_says_so(fake_cli: FakeCli, tmp_path: Path,
                                                                    edit_env: EnvEditor) -> None:
    deploy(fake_cli, "dev", ["network"])
    edit_env("dev", lambda data: data.update(state={"secrets_provider": KMS}))
    code, output = run(["preview", "dev", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "note: " in output and "state.secrets_provider is" in output and "preview goes on" in output
    assert [args[0] for args in changed_operations(fake_cli)] == ["preview"]


def test_stacks_on_the_provider_the_env_file_names_run_without_a_word_about_it(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: EnvEditor) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state/platform?region=eu-west-1")
    edit_env("staging", lambda data: data.update(state={"secrets_provider": KMS}))
    deploy(fake_cli, "staging", ["network"])
    (fake_cli.state / "network.staging.secrets").write_text(KMS)
    code, output = run(["up", "staging", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "secrets_provider" not in output


def test_on_pulumi_cloud_an_unset_secrets_provider_is_the_services_own_and_a_kms_key_is_another(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: EnvEditor,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    edit_env("dev", lambda data: data.update(pulumi_org="acme"))
    fake_cli.create_stacks("dev", ("network",), org="acme")
    (fake_cli.state / "network.dev.state.json").write_text(json.dumps(state_as_deployed("dev", "network")))
    code, output = run(["up", "dev", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    edit_env("dev", lambda data: data.update(pulumi_org="acme", state={"secrets_provider": KMS}))
    code, output = run(["up", "dev", "--yes", "--layers", "network", "--exact"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert "acme/network/dev with 'service'" in error
    assert f"pulumi stack change-secrets-provider --stack acme/network/dev '{KMS}'" in error


def stacks_copy(tmp_path: Path) -> Path:
    """The layers' project folders (their Pulumi.yaml), where a test leaves a stack settings file of its own."""
    target = tmp_path / "stacks"
    for layer in LAYERS:
        (target / layer).mkdir(parents=True)
        shutil.copy(REPO_ROOT / "stacks" / layer / "Pulumi.yaml", target / layer / "Pulumi.yaml")
    return target


def run_in(stacks: Path, argv: list[str], tmp_path: Path) -> tuple[int, str]:
    out = io.StringIO()
    runner = AutomationRunner(stacks_dir=stacks, policy_config_dir=tmp_path / "policy-config")
    return main(argv, runner=runner, out=out, images=ReleasedEverywhere()), out.getvalue()


@pytest.fixture
def kms_staging(fake_cli: FakeCli, monkeypatch: pytest.MonkeyPatch, edit_env: EnvEditor) -> FakeCli:
    """staging on S3 with a KMS key, its network stack deployed (moved to the key by change-secrets-provider)."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state/platform?region=eu-west-1")
    edit_env("staging", lambda data: data.update(state={"secrets_provider": KMS}))
    deploy(fake_cli, "staging", ["network"])
    (fake_cli.state / "network.staging.secrets").write_text(KMS)
    return fake_cli


def test_a_stale_settings_file_naming_the_old_provider_refuses_up_and_the_state_keeps_its_key(
        kms_staging: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file a passphrase-era `stack init` left on this machine comes before the state's provider, and the up would
    write the state back under that passphrase: the move to the key undone, unsaid."""
    stacks = stacks_copy(tmp_path)
    (stacks / "network" / "Pulumi.staging.yaml").write_text("encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2lwaGVy\n")
    code, output = run_in(stacks, ["up", "staging", "--yes", "--layers", "network", "--exact"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert changed_operations(kms_staging) == []
    assert kms_staging.secrets_provider("network", "staging") == KMS
    assert "network/Pulumi.staging.yaml: 'passphrase', but organization/network/staging keeps its secrets with " \
           f"'{KMS}'" in error
    assert "up staging refused" in error and "encryptionsalt" in error and "Traceback" not in error


def test_a_preview_with_a_stale_settings_file_runs_and_says_so(kms_staging: FakeCli, tmp_path: Path) -> None:
    stacks = stacks_copy(tmp_path)
    (stacks / "network" / "Pulumi.staging.yaml").write_text("encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2lwaGVy\n")
    code, output = run_in(stacks, ["preview", "staging", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "note: a stack settings file on this machine names another secrets provider" in output


@pytest.mark.parametrize("settings", [f"secretsprovider: {KMS}\nencryptedkey: ZGF0YWtleQ==\n", "config: {}\n", ""])
def test_a_settings_file_agreeing_with_the_state_or_naming_no_provider_changes_nothing(
        kms_staging: FakeCli, tmp_path: Path, settings: str) -> None:
    stacks = stacks_copy(tmp_path)
    (stacks / "network" / "Pulumi.staging.yaml").write_text(settings)
    code, output = run_in(stacks, ["up", "staging", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "settings file" not in output
    assert kms_staging.secrets_provider("network", "staging") == KMS


def test_the_runner_knows_each_layer_s_log_groups_once_it_read_the_state(fake_cli: FakeCli, tmp_path: Path) -> None:
    """A destroy refuses a protected log group only where the layer's state holds it (what its destroy deletes): not
    read yet is unknown (None: refused on its name, the safe side), no stack holds none."""
    deploy(fake_cli, "dev", ["network"])
    env = load_env("dev")
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    runner.prepare_read(["network", "compute"], env)
    assert runner.state_log_groups("network", env) is None and runner.state_log_groups("compute", env) is None
    runner.deployed_identity("network", env)
    runner.deployed_identity("compute", env)  # never deployed: no stack
    state = json.loads((fake_cli.state / "network.dev.state.json").read_text())
    groups = [r["id"] for r in state["deployment"]["resources"] if r["type"] == "aws:cloudwatch/logGroup:LogGroup"]
    assert len(groups) == 1 and runner.state_log_groups("network", env) == groups  # the flow logs' (a group's id)
    assert runner.state_log_groups("compute", env) == []
