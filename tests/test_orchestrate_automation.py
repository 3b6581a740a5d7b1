"""The real runner (Pulumi Automation API) up to the `pulumi` CLI, and what it needs before it starts.

No test here needs the real CLI: a fake `pulumi` (tests/fixtures/fake-pulumi/fake_pulumi.py) on PATH
records every call the Automation API makes and answers just enough for it to carry on.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from shared import REPO_ROOT
from shared.dag import LAYER_UPSTREAMS, LAYERS
from shared.envs import EnvConfig
from shared.errors import ConfigError
from shared.orchestrate.account import AccountReport
from shared.orchestrate.automation import (
    INSTALL_URL,
    MIN_CLI_VERSION,
    AutomationRunner,
    Backend,
    check_access_token,
    check_layout,
    check_passphrase,
    check_project,
)
from shared.orchestrate.cli import main
from shared.orchestrate.policy_config import write_pack_configs
from shared.orchestrate.reach import endpoint_layer
from shared.orchestrate.report import mask_url_credentials, redact_stream
from shared.policy_catalog import PACKS, rules_of_pack
from shared.workflows import pulumi_version
from tests.aws_helpers import AccountReady, ReleasedEverywhere
from tests.loopback import Listener

FAKE_CLI = Path(__file__).parent / "fixtures" / "fake-pulumi" / "fake_pulumi.py"
ENDPOINT_LAYER = endpoint_layer("messaging")  # the broker layer (messaging itself before the broker had one)


class FakeCli:
    def __init__(self, state: Path) -> None:
        self.state = state

    def calls(self) -> list[dict[str, Any]]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def stack_calls(self) -> list[dict[str, Any]]:
        """Every call but `pulumi version`, which the runner makes first (check_cli_version) and which touches no
        stack, state or credential: a run refused by the backend's or the passphrase's checks made none of these."""
        return [c for c in self.calls() if c["args"] != ["version"]]

    def operations(self, verb: str) -> list[dict[str, Any]]:
        return [c for c in self.calls() if c["event"] == "call" and c["args"][:1] == [verb]]

    def create_stacks(self, env: str, layers: tuple[str, ...] = LAYERS, org: str = "organization",
                      secrets_provider: str | None = None) -> None:
        """Stacks created elsewhere (an earlier CI job): in the backend, without a config file on this machine."""
        for layer in layers:
            (self.state / f"{layer}.{env}").write_text(org)
            if secrets_provider:
                (self.state / f"{layer}.{env}.secrets").write_text(secrets_provider)

    def secrets_provider(self, layer: str, env: str) -> str:
        """The secrets provider the stack's state records."""
        return (self.state / f"{layer}.{env}.secrets").read_text()

    def stacks_named(self) -> set[str]:
        """Every stack name any call selected, created or ran (`stack init NAME`, `--stack NAME`)."""
        return {c["stack"] for c in self.calls() if c["event"] == "call" and c["stack"] is not None}


def install_fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    """Put the fake `pulumi` first on PATH, with a scratch backend and a passphrase set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(f"#!{sys.executable}\n" + FAKE_CLI.read_text())
    script.chmod(0o755)
    state = tmp_path / "fake-state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_DIR", str(state))
    monkeypatch.setenv("PULUMI_BACKEND_URL", (tmp_path / "backend").as_uri())
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("FAKE_PULUMI_FAIL", raising=False)
    monkeypatch.delenv("FAKE_PULUMI_FAIL_STDOUT", raising=False)
    monkeypatch.delenv("FAKE_PULUMI_DELAY", raising=False)
    return FakeCli(state)


@pytest.fixture
def management_api() -> Iterator[Listener]:
    with Listener() as listener:
        yield listener


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, management_api: Listener) -> FakeCli:
    """The fake CLI; once created, the broker's stack of every env names a management endpoint that
    answers (a real listener on loopback), so the reach probe lets messaging run."""
    cli = install_fake_cli(tmp_path, monkeypatch)
    for env in ("dev", "staging", "prod"):
        (cli.state / f"{ENDPOINT_LAYER}.{env}.outputs.json").write_text(
            json.dumps({"management_endpoint": management_api.url}))
    return cli


def run(argv: list[str], tmp_path: Path) -> tuple[int, str]:
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    return main(argv, runner=runner, out=out, images=ReleasedEverywhere()), out.getvalue()


def option_values(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, word in enumerate(args) if word == name]


# -- acceptance: the real runner reaches the Automation API calls in DAG order -------------------------


def test_up_drives_the_automation_api_layer_by_layer_in_dag_order(fake_cli: FakeCli, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    selected: list[tuple[str, str, dict[str, str]]] = []
    real_create_or_select = auto.create_or_select_stack

    def spy(**kwargs: Any) -> auto.Stack:
        selected.append((kwargs["stack_name"], kwargs["work_dir"], dict(kwargs["opts"].env_vars)))
        return real_create_or_select(**kwargs)

    monkeypatch.setattr(auto, "create_or_select_stack", spy)
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output

    # one stack per layer, `organization/<project>/dev`, in each layer's own project folder, file backend
    assert sorted(work_dir for _, work_dir, _ in selected) == sorted(str(REPO_ROOT / "stacks" / x) for x in LAYERS)
    assert all(stack == f"organization/{Path(work_dir).name}/dev" for stack, work_dir, _ in selected)
    assert all(env_vars["PULUMI_BACKEND_URL"] == (tmp_path / "backend").as_uri() for _, _, env_vars in selected)

    calls = fake_cli.calls()
    # create_or_select: `stack select` found nothing, so `stack init dev` created it
    for layer in LAYERS:
        verbs = [c["args"][:2] for c in calls if c["layer"] == layer and c["event"] == "call"]
        assert verbs.index(["stack", "select"]) < verbs.index(["stack", "init"]) < verbs.index(["up", "--yes"])

    # a layer's run (from its `stack init`) comes after the last call of every layer it reads; only
    # read-only calls (`stack select`/`stack output`, the reach probe reading the broker's endpoint) may
    # come earlier
    def first(layer: str) -> int:
        return next(i for i, c in enumerate(calls) if c["layer"] == layer and c["args"][:2] == ["stack", "init"])

    def last(layer: str) -> int:
        return max(i for i, c in enumerate(calls) if c["layer"] == layer)

    for layer, upstreams in LAYER_UPSTREAMS.items():
        for upstream in upstreams:
            assert last(upstream) < first(layer), f"{layer} started before {upstream} finished"

    ups = fake_cli.operations("up")
    assert sorted(c["layer"] for c in ups) == sorted(LAYERS)
    for call in ups:
        assert call["cwd"] == str(REPO_ROOT / "stacks" / call["layer"])
        assert option_values(call["args"], "--stack") == [f"organization/{call['layer']}/dev"]
        assert call["pythonpath"].split(os.pathsep)[0] == str(REPO_ROOT)
        assert option_values(call["args"], "--policy-pack") == [str(REPO_ROOT / "policies" / p) for p in PACKS]
        configs = option_values(call["args"], "--policy-pack-config")
        assert [Path(c).name for c in configs] == [f"{p}.json" for p in PACKS]
    aws_config = json.loads((tmp_path / "policy-config" / "dev" / "aws.json").read_text())
    assert aws_config["ecs-task-image-pinned"] == {"enforcementLevel": "advisory"}  # dev's catalog column
    assert aws_config["ecr-scan-on-push"] == {"enforcementLevel": "mandatory"}
    # no-plaintext-secrets sees secretness under the CLI through the config, from the env's synth, keyed by the URNs
    # the engine gives the resources (every ancestor's type below the stack, where the synth's mocks keep the parent's)
    secrets = json.loads((tmp_path / "policy-config" / "dev" / "platform.json").read_text())["no-plaintext-secrets"]
    version = "aws:secretsmanager/secret:Secret$aws:secretsmanager/secretVersion:SecretVersion"
    assert secrets["secretInputs"][
        f"urn:pulumi:dev::broker::mlplatform:broker:AmazonMqBroker${version}::broker-admin"] == ["secretString"]
    assert secrets["secretInputs"][
        f"urn:pulumi:dev::messaging::mlplatform:messaging:RabbitTopology${version}::messaging-secret-gateway"] == [
        "secretString"]
    assert not any("pulumi:pulumi:Stack$" in urn for urn in secrets["secretInputs"])
    assert secrets["literalInputs"] == {}

    assert "[compute  ] up of compute (dev) done" in output  # live output, prefixed by its layer
    assert output.count("create 3, same 1") >= len(LAYERS)  # the change summary from `stack history`


def test_an_update_by_another_run_after_the_preview_stops_the_layer_before_its_up(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replacement check judged the preview; an up recomputes its plan against the state it then finds, so an
    update another run made in between (a preview takes no lock) would have the up apply what nobody judged."""
    monkeypatch.setenv("FAKE_PULUMI_UPDATED_DURING_PREVIEW", "messaging")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1, output
    ups = {c["layer"] for c in fake_cli.operations("up")}
    assert "messaging" not in ups and "compute" not in ups  # stopped before its up; compute reads it: skipped
    assert {"network", "discovery", "mesh", "broker"} <= ups
    assert "another run updated organization/messaging/dev between this run's preview of it and its update" in output


def test_a_level_really_runs_concurrently_through_the_cli(fake_cli: FakeCli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PULUMI_DELAY", "0.5")
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "discovery,broker"], tmp_path)
    assert code == 0, output
    span = {}
    for layer in ("discovery", "broker"):
        start = next(c["time"] for c in fake_cli.calls() if c["layer"] == layer and c["args"][:1] == ["up"])
        end = next(c["time"] for c in fake_cli.calls()
                   if c["layer"] == layer and c["event"] == "end" and c["args"][:1] == ["up"])
        span[layer] = (start, end)
    assert span["discovery"][0] < span["broker"][1] and span["broker"][0] < span["discovery"][1]


def test_a_failing_layer_stops_its_dependents_before_the_cli_is_called_for_them(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PULUMI_FAIL", "discovery")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1
    # `version` runs anywhere; `stack export` is the identity check's read of every layer before the first runs
    touched = {c["layer"] for c in fake_cli.calls()
               if c["args"] != ["version"] and c["args"][:2] not in (["stack", "select"], ["stack", "export"])}
    assert touched == {"network", "discovery", "broker"}
    assert "discovery failed on purpose" in output
    assert "needs discovery, which failed" in output


def summary_cells(output: str, layer: str) -> str:
    """The summary table's "changes" cell of ``layer``, its wrapped lines joined."""
    rows = [line.split("\u2502") for line in output[output.rindex("\u2503 layer"):].splitlines()
            if line.count("\u2502") == 5]
    cells: list[str] = []
    for row in rows:
        if row[1].strip() == layer or (cells and not row[1].strip()):
            cells.append(row[3].strip())
        elif cells:
            break
    return " ".join(cells)


def test_a_layer_whose_cli_writes_its_error_only_to_stdout_shows_that_error_in_the_summary(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pulumi` prints a resource's error in the Diagnostics section of stdout and leaves stderr empty: the
    summary said only "CommandError". It shows the telling error line now, the broker password redacted."""
    monkeypatch.setenv("FAKE_PULUMI_FAIL_STDOUT", "discovery")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1, output
    cell = summary_cells(output, "discovery")
    assert cell.startswith("CommandError: error: creating vhost ml: dial tcp: lookup"), output
    assert "no such host" in cell and "amqps://[redacted]@b-1.mq.example.com" in cell
    assert "update failed" not in cell  # the CLI's closing words say nothing a reader can act on
    failed = [line for line in output.splitlines() if "FAILED after" in line]
    assert len(failed) == 1 and "error: creating vhost ml" in failed[0]
    assert "s3cret-pw" not in summary_cells(output, "discovery") + failed[0]


def test_the_live_output_carries_no_url_credentials_nor_this_runs_secret_variables(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live stream is what a CI log keeps: the broker password in the provider's error was printed there as the
    CLI wrote it, though the summary redacted it."""
    monkeypatch.setenv("FAKE_PULUMI_FAIL_STDOUT", "discovery")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1, output
    assert "s3cret-pw" not in output
    assert "[discovery] " in output and "amqps://[redacted]@b-1.mq.example.com: no such host" in output


def test_a_urls_credentials_are_masked_whether_a_user_and_password_or_a_token_alone() -> None:
    line = "fatal: could not read Password for 'https://ghp_t0ken@github.com': x; amqps://ml:pw@b-1.mq:5671 https://h/p@x"
    assert mask_url_credentials(line) == ("fatal: could not read Password for 'https://[redacted]@github.com': x; "
                                          "amqps://[redacted]@b-1.mq:5671 https://h/p@x")
    assert redact_stream(line, {}) == mask_url_credentials(line)


def test_the_live_output_keeps_resource_types_and_hides_secret_variable_values() -> None:
    environ = {"PULUMI_CONFIG_PASSPHRASE": "correct horse battery staple", "AWS_REGION": "eu-west-1"}
    line = "    + aws:secretsmanager/secret:Secret gateway create (eu-west-1) "
    assert redact_stream(line + "correct horse battery staple", environ) == line + "[redacted]"


def test_the_live_output_hides_a_secret_containing_another_and_each_line_of_a_multi_line_one() -> None:
    """The live stream reaches the sink a line at a time, so a PEM key in a variable is met line by line; a token
    containing a shorter secret must not be cut around it (leaving its ends readable)."""
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7r9Yq2\n-----END RSA PRIVATE KEY-----"
    environ = {"PULUMI_CONFIG_PASSPHRASE": "hunter22", "PULUMI_ACCESS_TOKEN": "pul-0a1b2chunter22f9e8d7",
               "DEPLOY_PRIVATE_KEY": key}
    assert redact_stream("token pul-0a1b2chunter22f9e8d7 sent", environ) == "token [redacted] sent"
    assert redact_stream("  MIIEowIBAAKCAQEAx7r9Yq2", environ) == "  [redacted]"


def test_the_live_output_keeps_true_and_false_of_a_switch_named_like_a_secret() -> None:
    """PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true (exported for a by-hand `pulumi` run, README) is a switch,
    not a secret: every `true` of a diff must stay readable."""
    environ = {"PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true"}
    assert redact_stream("    ~ protect: false => true", environ) == "    ~ protect: false => true"


def test_preview_reads_the_change_summary_from_the_engine_event_stream(fake_cli: FakeCli, tmp_path: Path) -> None:
    code, output = run(["preview", "prod", "--layers", "network"], tmp_path)
    assert code == 0, output
    (call,) = fake_cli.operations("preview")
    assert option_values(call["args"], "--policy-pack")  # policy packs on preview too
    prod_aws = json.loads((tmp_path / "policy-config" / "prod" / "aws.json").read_text())
    assert prod_aws["ecr-kms-encryption"] == {"enforcementLevel": "mandatory"}
    assert "create 5" in output


def test_refresh_preview_only_reports_drift_per_layer_and_passes_no_policy(fake_cli: FakeCli,
                                                                           tmp_path: Path) -> None:
    fake_cli.create_stacks("dev")
    code, output = run(["refresh", "dev", "--preview-only"], tmp_path)
    assert code == 0, output
    refreshes = fake_cli.operations("refresh")
    assert sorted(c["layer"] for c in refreshes) == sorted(LAYERS)
    assert all("--preview-only" in c["args"] and "--policy-pack" not in c["args"] for c in refreshes)
    assert not fake_cli.operations("up")
    assert output.count("drift: update 1") >= len(LAYERS)


def test_refresh_and_destroy_never_create_a_stack(fake_cli: FakeCli, tmp_path: Path) -> None:
    code, output = run(["destroy", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    assert "nothing to destroy" in output
    assert not fake_cli.operations("destroy")
    code, output = run(["refresh", "dev", "--yes", "--local-state", "--layers", "network"], tmp_path)
    assert code == 1
    assert "run `nox -s up -- dev` first" in output
    assert not [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "init"]]


def test_a_destroy_that_meets_a_protected_resource_deletes_nothing(fake_cli: FakeCli, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine refuses a protected resource's delete only when that step runs, and the Automation API's
    destroy passes --skip-preview: without a preview first, prod's compute lost its services, load balancer
    and roles before its protected repositories stopped the destroy."""
    fake_cli.create_stacks("dev")
    monkeypatch.setenv("FAKE_PULUMI_PROTECTED", "compute")
    code, output = run(["destroy", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1, output
    assert not [c for c in fake_cli.calls() if c["event"] == "deleted-unprotected"]
    assert "nothing of compute was deleted" in output and "marked for protection" in output
    # the command that releases one names the stack: elsewhere (another machine, CI) none is selected in stacks/compute
    assert "`pulumi state unprotect --stack organization/compute/dev '<URN>'` in stacks/compute" in output
    # compute went first (it reads every other layer), so nothing else was destroyed either
    assert not [c for c in fake_cli.operations("destroy") if "--preview-only" not in c["args"]]
    assert "compute failed to destroy and still reads it" in output


def test_stack_outputs_come_from_the_stack(fake_cli: FakeCli) -> None:
    fake_cli.create_stacks("dev", ("compute",))
    (fake_cli.state / "compute.dev.outputs.json").write_text(json.dumps({"cluster_name": "ml-dev"}))
    runner = AutomationRunner()
    runner.prepare_read(["compute"])
    assert runner.stack_outputs("compute", "dev") == {"cluster_name": "ml-dev"}
    assert runner.stack_outputs("compute", "staging") is None


def test_whether_a_stack_exists_is_read_without_its_secrets_manager(fake_cli: FakeCli,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The account preflight asks whether the network stack exists: `pulumi stack select`, never `stack output
    --show-secrets`, which builds the stack's secrets manager and decrypts (FAKE_PULUMI_NO_DECRYPT: credentials that
    may read the backend but not decrypt)."""
    fake_cli.create_stacks("dev", ("network",))
    monkeypatch.setenv("FAKE_PULUMI_NO_DECRYPT", "1")
    from shared.envs import load_env

    runner = AutomationRunner()
    runner.prepare_read(["network"])
    assert runner.stack_exists("network", load_env("dev")) is True
    assert runner.stack_exists("network", load_env("staging")) is False
    reads = [c["args"][:2] for c in fake_cli.operations("stack")]
    assert ["stack", "select"] in reads and ["stack", "output"] not in reads


# -- what a real run needs before it starts ----------------------------------------------------------


def test_without_the_cli_up_exits_2_saying_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi anywhere
    assert main(["up", "dev", "--yes"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "Pulumi CLI" in err and INSTALL_URL in err
    assert "nox -s synth" in err and "nox -s policy" in err
    # The pinned version, the way README's "On a laptop" installs it (checked against its sha256), and no
    # unversioned installer script piped to a shell (tests/test_supply_chain.py says why).
    pin = pulumi_version()
    assert f"bash .ci/install-pulumi {pin}" in " ".join(err.split()) and "brew install pulumi/tap/pulumi" in err
    assert "| sh" not in err and "curl" not in err


def test_a_cli_older_than_the_orchestrator_needs_exits_2_before_any_layer_runs(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """messaging's preview and up pass --run-program (CLI 3.169); with an older CLI the run deployed network,
    discovery, broker and mesh and then failed on messaging with "unknown flag". A CLI that takes the flag
    but is older than 3.207 is refused too: its ``up`` ignored it (until 3.172), panicked on the objects a
    replaced broker no longer holds (until 3.186/3.187) or crashed with "concurrent map writes" in the parallel
    program-based refresh (until 3.191: pulumi/pulumi #20337, reported on 3.187 and 3.189; CLI changelog);
    messaging's ``destroy --run-program`` deleted a provider whose resource failed to delete, an integrity error
    (until 3.204), and a program-based refresh hung on an object pending replacement (until 3.205) or ``up``
    created its replacement twice (until 3.206); the broker's admin secret uses the replace_with resource option, which
    an engine before 3.207 lacks (the SDK then raises in the middle of the broker layer)."""
    for old in ("v3.160.0", "v3.171.0", "v3.186.0", "v3.187.0", "v3.190.0", "v3.191.0", "v3.203.0", "v3.205.9",
                "v3.206.0"):
        monkeypatch.setenv("FAKE_PULUMI_VERSION", old)
        code, _ = run(["up", "dev", "--yes", "--local-state"], tmp_path)
        assert code == 2, old
        err = capsys.readouterr().err
        assert old.lstrip("v") in err and "3.207.0" in err and INSTALL_URL in err
        assert f".ci/install-pulumi {pulumi_version()}" in " ".join(err.split())
        assert not fake_cli.operations("up") and not fake_cli.operations("preview")
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.207.0")
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output


@pytest.mark.parametrize("argv, unset", [
    (["up", "dev", "--yes"], ()),  # a local file backend without --local-state
    (["up", "dev", "--yes", "--local-state"], ("PULUMI_CONFIG_PASSPHRASE",)),  # no passphrase
    (["preview", "dev"], ("PULUMI_CONFIG_PASSPHRASE",)),
])
def test_a_too_old_cli_is_reported_before_the_backend_and_passphrase_checks(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], unset: tuple[str, ...]) -> None:
    """A CLI to replace is said first: a user does not fix --local-state and the passphrase to learn it then."""
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.100.0")
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    code, _ = run(argv, tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert "is 3.100.0; real runs need 3.207.0 or later" in err
    assert "--local-state" not in err and "PULUMI_CONFIG_PASSPHRASE" not in err
    assert [c["args"] for c in fake_cli.calls()] == [["version"]]


#: Resource options an older engine does not honour, with the CLI release that brought each (pulumi CHANGELOG.md:
#: "Add `ReplaceWith` resource option" 3.207.0, "Add a `replacement_trigger` resource option" 3.208.0, DeletedWith
#: fixed in 3.52.0); the Python SDK raises "The Pulumi CLI does not support the ... option" mid-layer without one.
ENGINE_OPTIONS_SINCE = {"replace_with": (3, 207, 0), "replacement_trigger": (3, 208, 0), "deleted_with": (3, 52, 0)}


def test_the_oldest_cli_admitted_honours_every_resource_option_the_layers_use() -> None:
    sources = "\n".join(path.read_text(encoding="utf-8") for folder in ("shared", "stacks")
                        for path in sorted((REPO_ROOT / folder).rglob("*.py")))
    used = {option: since for option, since in ENGINE_OPTIONS_SINCE.items() if f"{option}=" in sources}
    assert "replace_with" in used  # the broker's admin secret (shared/components/broker.py)
    for option, since in used.items():
        assert MIN_CLI_VERSION >= since, f"{option} needs a Pulumi CLI {since}; MIN_CLI_VERSION is older"


def test_the_module_entry_point_exits_2_without_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "shared.orchestrate", "up", "dev", "--yes"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert INSTALL_URL in done.stderr


def test_a_local_backend_without_a_passphrase_exits_2_before_calling_pulumi(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    assert main(["up", "dev", "--yes", "--local-state"], runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"),
                out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "PULUMI_CONFIG_PASSPHRASE" in err and "PULUMI_CONFIG_PASSPHRASE_FILE" in err
    assert fake_cli.stack_calls() == []


def test_a_passphrase_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError) as error:
        check_passphrase("file:///state", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(missing)})
    assert error.value.key == "PULUMI_CONFIG_PASSPHRASE_FILE" and str(missing) in error.value.reason
    missing.write_text("secret\n")
    check_passphrase("file:///state", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(missing)})


def test_a_relative_passphrase_file_is_found_by_every_layer(fake_cli: FakeCli, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The check reads the file relative to where the run starts; each `pulumi` runs in stacks/<layer> and
    reads it relative to that (os.ReadFile), so the runner hands it on as an absolute path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "passphrase.txt").write_text("correct horse battery staple\n")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "passphrase.txt")
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "network"], tmp_path)
    assert code == 0, output
    assert [c["layer"] for c in fake_cli.operations("up")] == ["network"]


def test_a_relative_file_backend_is_one_folder_for_every_layer(fake_cli: FakeCli, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    """The CLI makes a file:// path absolute against its own working directory (massageBlobPath,
    filepath.Abs), which is stacks/<layer>: each layer would get a state folder of its own, and no
    StackReference would find the stack it reads. The runner hands pulumi one absolute URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PULUMI_BACKEND_URL", "file://rel-state")
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "discovery"], tmp_path)
    assert code == 0, output
    assert {c["backend"] for c in fake_cli.calls() if c["args"] != ["version"]} == {f"file://{tmp_path}/rel-state"}
    # an env file's state.backend_url is relative to the repo root
    monkeypatch.delenv("PULUMI_BACKEND_URL")
    edit_env("dev", lambda data: data.update(state={"backend_url": "file://./state?no_tmp_dir=false"}))
    repo = tmp_path / "repo"
    runner = AutomationRunner(repo_root=repo, policy_config_dir=tmp_path / "cfg")
    code = main(["preview", "dev", "--layers", "network"], runner=runner, out=io.StringIO(),
                images=ReleasedEverywhere())
    assert code == 0
    assert fake_cli.calls()[-1]["backend"] == f"file://{repo}/state?no_tmp_dir=false"


def test_a_preview_that_may_not_create_a_missing_stack_says_why_the_layer_failed(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer never deployed has no stack, and its preview creates an empty one first (`stack init`), which a
    read-only role (the pull request's previews) may not: the layer's row says so instead of a bare AccessDenied.
    The deployed layers are previewed as always, and nothing is written for them."""
    fake_cli.create_stacks("dev", ("network", "discovery"))
    monkeypatch.setenv("FAKE_PULUMI_READ_ONLY", "1")
    code, output = run(["preview", "dev", "--layers", "network,discovery,mesh", "--exact"], tmp_path)
    assert code == 1, output
    assert [c["layer"] for c in fake_cli.operations("preview")] == ["network", "discovery"]
    cell = summary_cells(output, "mesh")
    assert "no stack organization/mesh/dev yet" in cell and "stack init" in cell and "first up" in cell, cell
    assert "AccessDenied" in cell  # what the backend said


def test_on_pulumi_cloud_a_preview_that_may_not_create_a_missing_stack_names_the_access_token(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    """On Pulumi Cloud `stack init` is a call to the service with PULUMI_ACCESS_TOKEN (a token whose role has Stack
    Read may preview, not create stacks: Pulumi Cloud RBAC permission sets), not one the AWS read role makes: the
    row names the token, where it named the pull request's read role, whose grants change nothing there."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    edit_env("dev", lambda data: data.update(pulumi_org="acme"))
    fake_cli.create_stacks("dev", ("network", "discovery"), org="acme")
    monkeypatch.setenv("FAKE_PULUMI_READ_ONLY", "1")
    code, output = run(["preview", "dev", "--layers", "network,discovery,mesh", "--exact"], tmp_path)
    assert code == 1, output
    cell = summary_cells(output, "mesh")
    assert "no stack acme/mesh/dev yet" in cell and "PULUMI_ACCESS_TOKEN" in cell and "read role" not in cell, cell


def test_self_managed_backends_need_a_passphrase_pulumi_cloud_does_not() -> None:
    for url in ("file:///repo/.pulumi-state", "s3://bucket/state", "gs://bucket", "azblob://container"):
        with pytest.raises(ConfigError):
            check_passphrase(url, {})
        check_passphrase(url, {"PULUMI_CONFIG_PASSPHRASE": ""})  # set, even empty, is a choice
    check_passphrase("https://api.pulumi.com", {})


def test_an_empty_passphrase_from_an_unset_ci_secret_or_shadowing_a_file_is_refused(tmp_path: Path) -> None:
    # pulumi reads PULUMI_CONFIG_PASSPHRASE, even empty, before PULUMI_CONFIG_PASSPHRASE_FILE; a GitHub secret
    # that does not exist reaches the step as ""; either way the stacks' secrets would use an empty passphrase
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    with pytest.raises(ConfigError, match="would be ignored"):
        check_passphrase("s3://bucket/state", {"PULUMI_CONFIG_PASSPHRASE": "",
                                               "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase)})
    with pytest.raises(ConfigError, match="secret PULUMI_CONFIG_PASSPHRASE is not set"):
        check_passphrase("s3://bucket/state", {"PULUMI_CONFIG_PASSPHRASE": "", "GITHUB_ACTIONS": "true"})
    check_passphrase("s3://bucket/state", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase), "GITHUB_ACTIONS": "true"})
    check_passphrase("s3://bucket/state", {"PULUMI_CONFIG_PASSPHRASE": "s3cret", "GITHUB_ACTIONS": "true"})
    # where no passphrase is used, the empty variable the workflows always set is harmless
    check_passphrase("https://api.pulumi.com", {"PULUMI_CONFIG_PASSPHRASE": "", "GITHUB_ACTIONS": "true"})
    check_passphrase("s3://bucket/state", {"PULUMI_CONFIG_PASSPHRASE": "", "GITHUB_ACTIONS": "true"},
                     "awskms://alias/state")


def test_a_pull_request_preview_of_passphrase_encrypted_stacks_is_refused_naming_the_kms_provider(
        tmp_path: Path) -> None:
    # a passphrase could reach a pull request's job only as a repository secret, which any branch's workflow reads
    for event in ("pull_request", "pull_request_target"):
        for environ in ({}, {"PULUMI_CONFIG_PASSPHRASE": ""}):
            with pytest.raises(ConfigError, match=r"state\.secrets_provider") as error:
                check_passphrase("s3://bucket/state", {**environ, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event})
            assert "repository secret" in error.value.reason and "change-secrets-provider" in error.value.reason
            # it judges the env file, not the states: a branch from before the stacks moved is told to merge main
            assert "names no KMS key" in error.value.reason and "merge main into it" in error.value.reason
    # a KMS provider or Pulumi Cloud needs none; a deploy (push, workflow_dispatch) reads its environment's secret
    pull_request = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"}
    check_passphrase("s3://bucket/state", pull_request, "awskms://alias/state?region=eu-west-1")
    check_passphrase("https://api.pulumi.com", pull_request)
    with pytest.raises(ConfigError, match="not set in the job's GitHub environment"):
        check_passphrase("s3://bucket/state", {"PULUMI_CONFIG_PASSPHRASE": "", "GITHUB_ACTIONS": "true",
                                               "GITHUB_EVENT_NAME": "push"})
    # a passphrase the user wired in by hand is theirs to give
    check_passphrase("s3://bucket/state", {**pull_request, "PULUMI_CONFIG_PASSPHRASE": "s3cret"})


def test_an_empty_pulumi_cloud_token_in_a_github_job_names_the_secret_to_set(tmp_path: Path) -> None:
    """An unset secret reaches a step as "": the CLI's own error names no secret. A deploy's token is an environment
    secret (a repository secret would reach any branch's workflow), a pull request's preview has its own."""
    cloud = "https://api.pulumi.com"
    job = {"GITHUB_ACTIONS": "true", "PULUMI_HOME": str(tmp_path)}  # no CLI logged in there
    with pytest.raises(ConfigError, match=r"job's GitHub environment.*variable PULUMI_OIDC_SCOPE"):
        check_access_token(cloud, {**job, "GITHUB_EVENT_NAME": "push", "PULUMI_ACCESS_TOKEN": ""})
    with pytest.raises(ConfigError, match=r"PULUMI_PREVIEW_ACCESS_TOKEN.*variable PULUMI_OIDC_PREVIEW_SCOPE"):
        check_access_token(cloud, {**job, "GITHUB_EVENT_NAME": "pull_request"})
    check_access_token(cloud, {"GITHUB_ACTIONS": "true", "PULUMI_ACCESS_TOKEN": "pul-0123"})
    # a CLI logged in before (`pulumi login --oidc-token ...`) takes its stored token when the variable is empty
    (tmp_path / "credentials.json").write_text("{}")
    check_access_token(cloud, {"GITHUB_ACTIONS": "true", "PULUMI_HOME": str(tmp_path), "PULUMI_ACCESS_TOKEN": ""})
    check_access_token(cloud, {})  # a laptop: `pulumi login` keeps its own credentials
    check_access_token("s3://bucket/state", {"GITHUB_ACTIONS": "true", "PULUMI_ACCESS_TOKEN": ""})


def test_the_default_backend_is_a_state_folder_inside_the_repo(fake_cli: FakeCli, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL")
    repo = tmp_path / "repo"
    stacks = repo / "stacks" / "network"
    stacks.mkdir(parents=True)
    (stacks / "Pulumi.yaml").write_text("name: network\nruntime: python\n")
    runner = AutomationRunner(stacks_dir=repo / "stacks", repo_root=repo, policy_config_dir=tmp_path / "cfg")
    out = io.StringIO()
    assert main(["refresh", "dev", "--preview-only", "--layers", "network"], runner=runner, out=out) == 1
    selects = [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "select"]]  # refresh's
    assert selects and {select["backend"] for select in selects} == {(repo / ".pulumi-state").as_uri()}
    assert (repo / ".pulumi-state").is_dir()


def test_a_project_must_be_named_after_its_layer(tmp_path: Path) -> None:
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "Pulumi.yaml").write_text("name: service-mesh\nruntime: python\n")
    with pytest.raises(ConfigError) as error:
        check_project(tmp_path, "mesh")
    assert error.value.key == "name" and "StackReferences" in error.value.reason
    with pytest.raises(ConfigError):
        check_project(tmp_path, "compute")


def test_policy_pack_configs_follow_the_env_enforcement(edit_env, tmp_path: Path) -> None:
    edit_env("dev", lambda data: data["policy"].update(enforcement={"ecs-task-image-pinned": "mandatory"}))
    pairs = write_pack_configs("dev", tmp_path)
    assert [pack_dir.name for pack_dir, _ in pairs] == list(PACKS)
    configs = {pack_dir.name: json.loads(config.read_text()) for pack_dir, config in pairs}
    assert configs["aws"]["ecs-task-image-pinned"] == {"enforcementLevel": "mandatory"}  # tightened
    assert configs["aws"]["ecs-task-non-root-user"] == {"enforcementLevel": "advisory"}  # dev default
    assert configs["platform"]["prod-protect-stateful"] == {"enforcementLevel": "disabled"}
    assert "secretInputs" not in configs["platform"]["no-plaintext-secrets"]  # no synth given
    for pack in PACKS:
        assert list(configs[pack]) == [rule.id for rule in rules_of_pack(pack)]


def test_policy_pack_configs_carry_the_env_suppressions_for_the_packs_to_honour(edit_env, tmp_path: Path) -> None:
    edit_env("dev", lambda data: data["policy"].update(suppressions=[
        {"rule": "security-group-rules-quota", "resource": "network-services", "reason": "quota raised to 120"}]))
    pairs = write_pack_configs("dev", tmp_path)
    configs = {pack_dir.name: json.loads(config.read_text()) for pack_dir, config in pairs}
    assert configs["aws"]["security-group-rules-quota"]["suppressedResources"] == ["network-services"]
    assert all("suppressedResources" not in entry for rule, entry in configs["aws"].items()
               if rule != "security-group-rules-quota")


# -- stack names: <org>/<project>/<env>, the names StackReferences read ------------------------------


def test_on_pulumi_cloud_every_stack_is_created_selected_and_run_as_org_project_env(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")  # Pulumi Cloud encrypts secrets itself
    edit_env("dev", lambda data: data.update(pulumi_org="acme"))
    expected = {f"acme/{layer}/dev" for layer in LAYERS}
    code, output = run(["up", "dev", "--yes"], tmp_path)
    assert code == 0, output
    assert fake_cli.stacks_named() == expected
    inits = [c["args"][2] for c in fake_cli.operations("stack") if c["args"][1] == "init"]
    assert sorted(inits) == sorted(expected)
    for argv in (["preview", "dev"], ["refresh", "dev", "--yes"], ["destroy", "dev", "--yes"]):
        code, output = run(argv, tmp_path)
        assert code == 0, output
    assert fake_cli.stacks_named() == expected
    destroys = [c for c in fake_cli.operations("destroy") if "--preview-only" not in c["args"]]
    assert sorted(c["layer"] for c in destroys) == sorted(LAYERS)
    runner = AutomationRunner()
    runner.prepare_read(["network"])
    (fake_cli.state / "network.dev.outputs.json").write_text(json.dumps({"vpc_id": "vpc-1"}))
    assert runner.stack_outputs("network", "dev") == {"vpc_id": "vpc-1"}
    assert fake_cli.stacks_named() == expected


def test_consumers_read_exactly_the_stacks_the_orchestrator_creates(edit_env) -> None:
    from shared.contracts import stack_reference_name
    from shared.envs import load_env

    edit_env("dev", lambda data: data.update(pulumi_org="acme"))
    env = load_env("dev")
    for layer in LAYERS:
        assert AutomationRunner.stack_name(layer, env) == stack_reference_name("acme", layer, "dev")
        assert AutomationRunner.stack_name(layer, env) == f"acme/{layer}/dev"


def test_every_layer_is_a_project_named_after_it() -> None:
    stacks = REPO_ROOT / "stacks"
    assert sorted(p.name for p in stacks.iterdir() if (p / "Pulumi.yaml").is_file()) == sorted(LAYERS)
    for layer in LAYERS:
        check_project(stacks, layer)  # raises unless Pulumi.yaml's name is the layer's


@pytest.mark.parametrize("backend, org, reason", [
    ("https://api.pulumi.com", "organization", "is Pulumi Cloud"),
    ("file://{tmp}/backend", "acme", "accept only the org 'organization'"),
    ("s3://state-bucket/platform", "acme", "accept only the org 'organization'"),
    # Pulumi Cloud's owner names (pkg/backend/httpstate/backend.go stackOwnerRegexp, checked by `pulumi stack init`:
    # "invalid stack owner"): 3 to 40 letters, digits, '-' or '_', starting and ending with a letter or digit. Loaded,
    # a first up would run every preflight and stop at network's `stack init` with that word alone.
    ("https://api.pulumi.com", "acme.io", "String should match pattern"),
    ("https://api.pulumi.com", "ab", "String should match pattern"),
    ("https://api.pulumi.com", "acme-", "String should match pattern"),
    ("https://api.pulumi.com", "a" * 41, "String should match pattern"),
])
def test_an_org_the_backend_does_not_accept_exits_2_before_any_pulumi_call(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env,
        capsys: pytest.CaptureFixture[str], backend: str, org: str, reason: str) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", backend.format(tmp=tmp_path))
    edit_env("dev", lambda data: data.update(pulumi_org=org))
    assert main(["preview", "dev"], runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"),
                out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "dev.yaml: pulumi_org:" in err and reason in err
    assert fake_cli.stack_calls() == []


def _backend_with(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "backend"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("files, legacy_var, named", [
    ({".pulumi/meta.yaml": "version: 0\n"}, None, "meta.yaml: version"),
    ({".pulumi/stacks/dev.json": "{}"}, None, "dev.json directly in .pulumi/stacks"),
    ({".pulumi/stacks/dev.json.gz": ""}, None, "dev.json.gz"),
    ({}, "PULUMI_DIY_BACKEND_LEGACY_LAYOUT", "PULUMI_DIY_BACKEND_LEGACY_LAYOUT"),
])
def test_a_legacy_layout_file_backend_is_refused_with_the_upgrade_hint(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        files: dict[str, str], legacy_var: str | None, named: str) -> None:
    root = _backend_with(tmp_path, files)
    if legacy_var:
        monkeypatch.setenv(legacy_var, "true")
    assert main(["preview", "dev"], runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"),
                out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert named in err and str(root) in err
    assert "pulumi state upgrade" in err or legacy_var
    assert fake_cli.stack_calls() == []


@pytest.mark.parametrize("files", [
    {".pulumi/meta.yaml": "version: 1\n", ".pulumi/stacks/network/dev.json": "{}"},  # project-scoped
    {},  # empty: the CLI creates it project-scoped (version 1)
])
def test_a_project_scoped_or_new_file_backend_is_used(fake_cli: FakeCli, tmp_path: Path,
                                                      files: dict[str, str]) -> None:
    _backend_with(tmp_path, files)
    code, output = run(["preview", "dev", "--layers", "network"], tmp_path)
    assert code == 0, output
    assert fake_cli.stacks_named() == {"organization/network/dev"}


def test_a_damaged_meta_yaml_is_named(tmp_path: Path) -> None:
    _backend_with(tmp_path, {".pulumi/meta.yaml": "layout: 1\n"})
    with pytest.raises(ConfigError) as error:
        check_layout(Backend((tmp_path / "backend").as_uri(), "test"), {})
    assert error.value.key == "version" and "meta.yaml" in error.value.file


def test_a_cloud_storage_backend_gets_a_note_since_its_layout_cannot_be_read_here() -> None:
    backend = Backend("s3://state-bucket/platform?region=eu-west-1", "PULUMI_BACKEND_URL")
    note = check_layout(backend, {})
    assert note is not None and "project-scoped" in note and "pulumi state upgrade" in note
    with pytest.raises(ConfigError) as error:
        check_layout(backend, {"PULUMI_SELF_MANAGED_STATE_LEGACY_LAYOUT": "1"})
    assert error.value.key == "PULUMI_SELF_MANAGED_STATE_LEGACY_LAYOUT"
    assert check_layout(Backend("https://api.pulumi.com", "PULUMI_BACKEND_URL"), {}) is None


# -- durable state -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["up", "staging", "--yes"],
    ["up", "staging", "--yes", "--local-state"],
    ["destroy", "prod", "--yes", "--local-state"],
    ["refresh", "prod", "--yes"],
])
def test_staging_and_prod_never_write_local_state_and_no_pulumi_is_called(
        fake_cli: FakeCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        argv: list[str]) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL")  # no backend configured: the repo's .pulumi-state
    monkeypatch.chdir(tmp_path)
    runner = AutomationRunner(repo_root=tmp_path / "repo", policy_config_dir=tmp_path / "cfg")
    assert main(argv, runner=runner, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "state.backend_url" in err and "never runs on local state" in err and "Pulumi Cloud" in err
    assert fake_cli.stack_calls() == []
    assert not (tmp_path / "repo").exists()  # not even the state folder was created


def test_the_up_session_refuses_staging_on_local_state_before_any_pulumi_call(fake_cli: FakeCli) -> None:
    # exactly what `nox -s up -- staging --yes` runs (noxfile: python -m shared.orchestrate up ARGS)
    env = {k: v for k, v in os.environ.items() if k != "PULUMI_BACKEND_URL"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run([sys.executable, "-m", "shared.orchestrate", "up", "staging", "--yes"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "never runs on local state" in done.stderr
    assert fake_cli.stack_calls() == []


def test_writing_local_state_needs_local_state_and_preview_does_not(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["up", "dev", "--yes", "--layers", "network"], tmp_path)
    assert code == 2
    assert "--local-state" in capsys.readouterr().err
    assert fake_cli.stack_calls() == []
    for argv in (["preview", "staging", "--layers", "network"],
                 ["refresh", "prod", "--preview-only", "--layers", "network"],
                 ["up", "dev", "--yes", "--local-state", "--layers", "network"]):
        code, output = run(argv, tmp_path)
        assert code in (0, 1), output  # refresh of a stack never created fails per layer, not up front
        assert fake_cli.calls()


def test_local_state_with_a_durable_backend_is_a_contradiction(fake_cli: FakeCli, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://state-bucket/platform")
    code, _ = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2
    assert "--local-state: the state backend is s3://state-bucket/platform" in capsys.readouterr().err
    assert fake_cli.stack_calls() == []


def test_the_env_file_names_its_backend_and_secrets_provider(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")  # KMS encrypts the secrets: no passphrase needed
    edit_env("staging", lambda data: data.update(state={
        "backend_url": "s3://acme-pulumi-state/platform?region=eu-west-1",
        "secrets_provider": "awskms://alias/pulumi-state?region=eu-west-1"}))
    code, output = run(["up", "staging", "--yes", "--layers", "network"], tmp_path)
    assert code == 0, output
    assert "note: the state backend s3://acme-pulumi-state/platform?region=eu-west-1" in output
    calls = [c for c in fake_cli.calls() if c["args"] != ["version"]]
    assert {c["backend"] for c in calls} == {"s3://acme-pulumi-state/platform?region=eu-west-1"}
    (init,) = [c for c in calls if c["args"][:2] == ["stack", "init"]]
    assert init["args"][2] == "organization/network/staging"
    assert option_values(init["args"], "--secrets-provider") == ["awskms://alias/pulumi-state?region=eu-west-1"]
    # PULUMI_BACKEND_URL still wins over the env file
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    edit_env("staging", lambda data: data.update(pulumi_org="acme"))
    code, output = run(["preview", "staging", "--layers", "network"], tmp_path)
    assert code == 0, output
    assert fake_cli.calls()[-1]["backend"] == "https://api.pulumi.com"
    assert "note: PULUMI_BACKEND_URL (https://api.pulumi.com) is used for this preview, not " in output


@pytest.mark.parametrize("argv", [["up", "staging", "--yes"], ["refresh", "staging", "--yes"],
                                  ["destroy", "staging", "--yes"]])
def test_a_backend_variable_that_contradicts_the_env_file_refuses_runs_that_write_state(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env, argv: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """A repository variable meant for another env (or a shell's leftover export) would put staging's stacks on a
    backend holding none of them: each layer a first up beside the deployed resources, the state split in two."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    edit_env("staging", lambda data: data.update(pulumi_org="acme", state={
        "backend_url": "s3://acme-pulumi-state/platform?region=eu-west-1"}))
    code, output = run(argv, tmp_path)
    error = capsys.readouterr().err
    assert code == 2, output
    assert fake_cli.stack_calls() == []
    assert "staging.yaml" in error and "state.backend_url: is s3://acme-pulumi-state/platform?region=eu-west-1, " \
        "but PULUMI_BACKEND_URL is https://api.pulumi.com" in error
    assert "Unset PULUMI_BACKEND_URL" in error


# The CLI keeps a bucket's stacks under its path with one trailing slash (pkg/backend/diy/backend.go: TrimLeft "/",
# then "/" appended before blob.PrefixedBucket): these name the env file's backend, and refusing them blocks a run.
@pytest.mark.parametrize("variable", ["s3://acme-pulumi-state/platform?region=eu-west-1",
                                      "s3://acme-pulumi-state/platform/?region=eu-west-1",
                                      "s3://acme-pulumi-state//platform/?region=eu-west-1"])
def test_a_backend_variable_naming_the_env_files_backend_is_no_contradiction(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env, variable: str) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", variable)
    edit_env("staging", lambda data: data.update(state={
        "backend_url": "s3://acme-pulumi-state/platform?region=eu-west-1"}))
    code, output = run(["up", "staging", "--yes", "--layers", "network", "--exact"], tmp_path)
    assert code == 0, output
    assert "PULUMI_BACKEND_URL (" not in output


KMS = "awskms://alias/pulumi-state?region=eu-west-1"


@pytest.mark.parametrize("passphrase", [None, ""])  # "": what CI's ${{ secrets.X }} gives for an unset secret
def test_a_kms_stack_created_elsewhere_keeps_its_secrets_provider(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env, passphrase: str | None) -> None:
    """Pulumi.<stack>.yaml (the KMS data key, or a passphrase salt) is written where the stack was created; a
    CI runner loses it. Without PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true the CLI then builds the
    backend's default secrets manager (a passphrase, self-managed): no passphrase fails every layer, an
    empty one silently re-encrypts the stack's secrets with it (pulumi/pulumi PR 17236; CLI docs,
    "Environment variables")."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state/platform?region=eu-west-1")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    if passphrase is not None:
        monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", passphrase)
    edit_env("staging", lambda data: data.update(state={"secrets_provider": KMS}))
    fake_cli.create_stacks("staging", ("network",), secrets_provider=KMS)
    for argv in (["preview", "staging", "--layers", "network"], ["up", "staging", "--yes", "--layers", "network"],
                 ["refresh", "staging", "--yes", "--layers", "network"]):
        code, output = run(argv, tmp_path)
        assert code == 0, output
        assert fake_cli.secrets_provider("network", "staging") == KMS
    assert not [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "init"]]


def test_pulumi_takes_the_env_profile_the_checks_take(fake_cli: FakeCli, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """PLATFORM_AWS_PROFILE_<ENV> names the credentials of the preflight and the image gate (boto3's
    Session(profile_name=...), which then ignores AWS_ACCESS_KEY_ID: botocore create_credential_resolver); every
    `pulumi` of the run (the AWS provider, the S3/KMS backend) takes the same profile, not the shell's default chain,
    whose exported keys the Go SDK prefers over a bare AWS_PROFILE (aws-sdk-go #2727)."""
    monkeypatch.setenv("PLATFORM_AWS_PROFILE_DEV", "dev-admin")
    monkeypatch.setenv("AWS_PROFILE", "some-other-account")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERACCOUNT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other-secret")
    # the legacy names the Go SDK (not botocore) falls back to once AWS_ACCESS_KEY_ID is empty (env_config.go)
    monkeypatch.setenv("AWS_ACCESS_KEY", "AKIALEGACYACCOUNT")
    monkeypatch.setenv("AWS_SECRET_KEY", "legacy-secret")
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "network"], tmp_path)
    assert code == 0, output
    calls = [c for c in fake_cli.calls() if c["event"] == "call" and c["args"] != ["version"]]  # version: no AWS
    assert calls and {(c["aws_profile"], c["aws_access_key_id"]) for c in calls} == {("dev-admin", None)}
    monkeypatch.delenv("AWS_ACCESS_KEY")
    monkeypatch.delenv("AWS_SECRET_KEY")

    # Unset: the shell's chain, untouched.
    monkeypatch.delenv("PLATFORM_AWS_PROFILE_DEV")
    (fake_cli.state / "calls.jsonl").unlink()
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "network"], tmp_path)
    assert code == 0, output
    assert {(c["aws_profile"], c["aws_access_key_id"]) for c in fake_cli.calls() if c["event"] == "call"} == {
        ("some-other-account", "AKIAOTHERACCOUNT")}


def test_a_kms_key_without_a_region_is_asked_of_the_region_the_roles_grant_it_in(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    """`awskms://alias/pulumi-state` has no region=: the CLI's KMS client takes the SDK's default region (gocloud
    aws.go LoadDefaultConfig: AWS_REGION, else the profile's), where a laptop's profile may hold no such alias, or one
    naming another key. The deploy and read roles are granted the key in the env's region, so every `pulumi` of the
    run gets that region; a URL naming its region, or none at all, leaves the shell's AWS_REGION alone."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state/platform?region=eu-west-1")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")

    def regions(provider: str) -> set[str | None]:
        edit_env("staging", lambda data: data.update(state={"secrets_provider": provider}))
        (fake_cli.state / "calls.jsonl").unlink(missing_ok=True)
        code, output = run(["preview", "staging", "--layers", "network", "--exact"], tmp_path)
        assert code == 0, output
        return {c["aws_region"] for c in fake_cli.calls() if c["event"] == "call" and c["args"] != ["version"]}

    assert regions("awskms://alias/pulumi-state") == {"eu-west-1"}
    assert regions("awskms:///arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab") == {
        "eu-west-1"}
    assert regions("awskms://alias/pulumi-state?region=eu-west-1") == {"us-east-1"}


def test_pulumi_gets_no_rabbitmq_provider_defaults_from_the_shell(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The RabbitMQ provider takes RABBITMQ_CACERT, RABBITMQ_PROXY, RABBITMQ_CLIENTCERT/KEY from the environment where
    the program sets none (pulumi_rabbitmq Provider, terraform-provider-rabbitmq EnvDefaultFunc): one left in a shell
    by a local broker would check Amazon MQ's certificate against that CA alone, or send the admin calls through a
    proxy the reach probe does not know. Only the env file's messaging.management says; pulumi gets none of them."""
    monkeypatch.setenv("RABBITMQ_CACERT", str(tmp_path / "local-ca.pem"))
    monkeypatch.setenv("RABBITMQ_PROXY", "http://127.0.0.1:3128")
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "network"], tmp_path)
    assert code == 0, output
    # `pulumi version` (the CLI check, before any stack) runs no program
    calls = [c for c in fake_cli.calls() if c["event"] == "call" and c["args"] != ["version"]]
    assert calls and [c["args"] for c in calls if c["rabbitmq_vars"]] == []


def test_a_relative_aws_file_is_the_same_file_for_pulumi(fake_cli: FakeCli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 (the preflight, the image gate) opens a relative AWS_CONFIG_FILE from where nox runs; each `pulumi` runs in
    stacks/<layer>, where the Go SDK opened the same relative path and found no file: the profile the checks used was
    then unknown to the provider and the S3 backend ("failed to get shared config profile")."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aws").mkdir()
    files = {"AWS_CONFIG_FILE": "aws/config", "AWS_SHARED_CREDENTIALS_FILE": "aws/credentials",
             "AWS_CA_BUNDLE": "aws/ca.pem"}
    for name, relative in files.items():
        (tmp_path / relative).write_text("")
        monkeypatch.setenv(name, relative)
    monkeypatch.setenv("PLATFORM_AWS_PROFILE_DEV", "dev-admin")
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "network"], tmp_path)
    assert code == 0, output
    calls = [c for c in fake_cli.calls() if c["event"] == "call" and c["args"] != ["version"]]
    assert calls and all(c["aws_files"] == dict.fromkeys(files, True) for c in calls), calls[0]["aws_files"]


def test_a_passphrase_is_needed_only_where_it_encrypts() -> None:
    check_passphrase("s3://bucket", {}, "awskms://alias/state")
    check_passphrase("https://api.pulumi.com", {}, None)
    with pytest.raises(ConfigError):
        check_passphrase("s3://bucket", {}, "passphrase")
    with pytest.raises(ConfigError):
        check_passphrase("https://api.pulumi.com", {}, "passphrase")


# -- no stateful resource is replaced or deleted unless named; messaging refreshes -----------------

BROKER = "aws:mq/broker:Broker"
BROKER_URN = f"urn:pulumi:dev::broker::mlplatform:broker:AmazonMqBroker${BROKER}::broker"
REPLACE_STEPS = ("delete-replaced", "replace", "create-replacement")  # delete_before_replace's order


def preview_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  steps: Mapping[str, Sequence[Mapping[str, str | list[str]]]]) -> None:
    path = tmp_path / "preview-steps.json"
    path.write_text(json.dumps(steps))
    monkeypatch.setenv("FAKE_PULUMI_PREVIEW_STEPS", str(path))


def replaced(urn: str, type_: str) -> list[dict[str, str]]:
    return [{"op": op, "urn": urn, "type": type_} for op in REPLACE_STEPS]


def test_an_up_that_would_replace_the_broker_is_refused_with_yes_naming_the_urn(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. messaging.deployment_mode changed in a dev or staging env, where nothing is `protect`-ed
    preview_steps(monkeypatch, tmp_path, {"broker": replaced(BROKER_URN, BROKER)})
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1
    assert f"replace {BROKER} {BROKER_URN}" in output and f"--allow-replace '{BROKER_URN}'" in output
    assert "Nothing was changed" in output
    # previewed, never updated; what reads the broker never ran; the rest of the env did
    assert [c["layer"] for c in fake_cli.operations("preview")].count("broker") == 1
    ups = {c["layer"] for c in fake_cli.operations("up")}
    assert "broker" not in ups and not {"messaging", "compute"} & ups
    assert {"network", "discovery"} <= ups


def test_a_preview_says_the_up_would_refuse_a_stateful_replacement(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pull request whose change replaces the broker: its preview shows a replace among the changes, but the up
    after the merge is refused (exit 1, CI has no --allow-replace). The preview says so, in the output and in the
    broker's row (the job summary); the preview itself succeeds."""
    preview_steps(monkeypatch, tmp_path, {"broker": replaced(BROKER_URN, BROKER)})
    code, output = run(["preview", "dev"], tmp_path)
    assert code == 0, output
    assert f"up refuses without --allow-replace: replace {BROKER} {BROKER_URN}" in output
    cell = summary_cells(output, "broker")
    assert "up refuses: it destroys stateful aws:mq/broker:Broker (--allow-replace, above)" in cell, cell
    assert "up refuses" not in summary_cells(output, "network")


# -- preview --expect-no-changes: does each layer settle after its up? -----------------------------------------

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
TASK_DEFINITION_URN = ("urn:pulumi:dev::compute::mlplatform:compute:FargateService$aws:ecs/taskDefinition:"
                       "TaskDefinition::gateway")
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
ROTATION_URN = f"urn:pulumi:dev::broker::mlplatform:broker:AmazonMqBroker${ROTATION}::broker-admin-rotation"


def test_a_layer_whose_preview_proposes_a_change_right_after_its_up_does_not_settle(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the provider reads back differs from what the program sends (an empty list AWS drops, a default it fills
    in): no synth can tell, and every up repeats the change, for a task definition a replacement that rolls the
    service. Previewed right after an up with --expect-no-changes, such a layer fails naming the resource and the
    property; the other layers are still previewed (their previews hold as much), and the run exits 1."""
    preview_steps(monkeypatch, tmp_path, {
        "compute": [{"op": op, "urn": TASK_DEFINITION_URN, "type": TASK_DEFINITION, "diffs": ["containerDefinitions"],
                     "keys": ["containerDefinitions"]} for op in ("create-replacement", "replace", "delete-replaced")],
        "broker": [{"op": "update", "urn": ROTATION_URN, "type": ROTATION, "diffs": ["rotationRules"]},
                   {"op": "same", "urn": BROKER_URN, "type": BROKER},
                   {"op": "read", "urn": BROKER_URN, "type": BROKER}],
    })
    code, output = run(["preview", "dev", "--expect-no-changes"], tmp_path)
    assert code == 1, output
    compute = summary_cells(output, "compute")
    assert "does not settle: its preview proposes 1 change(s) where none was expected" in compute, compute
    assert f"create-replacement/replace/delete-replaced {TASK_DEFINITION} gateway (containerDefinitions)" in compute
    assert "not settled: create-replacement/replace/delete-replaced" in output  # live, in the layer's output
    broker = summary_cells(output, "broker")
    assert f"update {ROTATION} broker-admin-rotation (rotationRules)" in broker, broker
    assert BROKER not in broker  # a resource kept (same) or read changes nothing
    # every layer was previewed, the unsettled ones and those reading them alike
    assert sorted(c["layer"] for c in fake_cli.operations("preview")) == sorted(LAYERS)
    assert "does not settle" not in summary_cells(output, "network")
    assert output.count("not settled: ") == 2  # the task definition's steps, the rotation's update
    assert "::error" not in output
    # without the flag the same previews succeed (a pull request's preview shows changes: that is what it is for)
    code, output = run(["preview", "dev"], tmp_path)
    assert code == 0 and "does not settle" not in output, output
    # in a GitHub Actions job each such layer is an annotation of the run too (deploy-promoted's step may not fail)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, output = run(["preview", "dev", "--expect-no-changes"], tmp_path)
    assert code == 1 and "::error title=dev compute does not settle::does not settle" in output, output
    assert "::error title=dev broker does not settle::" in output and "::error title=dev network" not in output


def test_a_layer_that_settles_passes_expect_no_changes(fake_cli: FakeCli, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    preview_steps(monkeypatch, tmp_path, {"compute": [{"op": "same", "urn": TASK_DEFINITION_URN,
                                                       "type": TASK_DEFINITION},
                                                      {"op": "refresh", "urn": TASK_DEFINITION_URN,
                                                       "type": TASK_DEFINITION}]})
    code, output = run(["preview", "dev", "--expect-no-changes"], tmp_path)
    assert code == 0, output
    assert "does not settle" not in output


RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
RULE_URN = f"urn:pulumi:dev::network::mlplatform:network:VpcNetwork$aws:ec2/securityGroup:SecurityGroup${RULE}::"


def test_a_port_retiring_by_design_is_in_flight_and_anything_else_still_fails(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """network keeps a port the tasks were moved off for one more up (shared.port_retirement): right after that up
    its outputs name the port retiring and its preview proposes the drop. That is noted as in flight; an update of
    another resource of the layer in the same preview still fails it."""
    fake_cli.create_stacks("dev", ("network",))
    (fake_cli.state / "network.dev.outputs.json").write_text(json.dumps({
        "called_service_ports": {"inference": 8090}, "retiring_service_ports": {"inference": 8082}}))
    drop = [{"op": "delete", "urn": f"{RULE_URN}network-services-in-8082", "type": RULE}]
    preview_steps(monkeypatch, tmp_path, {"network": drop})
    code, output = run(["preview", "dev", "--layers", "network", "--exact", "--expect-no-changes"], tmp_path)
    assert code == 0, output
    assert f"in flight: delete {RULE} network-services-in-8082: the ports the tasks were moved off (inference " \
           "8082)" in output
    assert "changes in flight" in summary_cells(output, "network")
    tagged: dict[str, str | list[str]] = {"op": "update", "urn": f"{RULE_URN}network-endpoints-in-https",
                                          "type": RULE, "diffs": ["tags"]}
    preview_steps(monkeypatch, tmp_path, {"network": [*drop, tagged]})
    code, output = run(["preview", "dev", "--layers", "network", "--exact", "--expect-no-changes"], tmp_path)
    assert code == 1, output
    cell = summary_cells(output, "network")
    assert "proposes 1 change(s)" in cell and "network-endpoints-in-https (tags)" in cell, cell
    assert "network-services-in-8082" not in cell.split("changes in flight")[0]


@pytest.mark.parametrize("action", ["up", "refresh", "destroy"])
def test_expect_no_changes_is_for_preview_only(action: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run([action, "dev", "--expect-no-changes"], tmp_path)
    assert code == 2
    assert "--expect-no-changes applies to preview only" in capsys.readouterr().err


ALB = "aws:lb/loadBalancer:LoadBalancer"
ALB_URN = "urn:pulumi:dev::compute::mlplatform:compute:PublicGateway$aws:lb/loadBalancer:LoadBalancer::gateway-alb"
ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/app/gateway-alb-1a2b3c4/50dc6c495c0c9188"


class ProtectedEverywhere(ReleasedEverywhere):
    """compute's program keeps its gateway's ALB, and ELB says every load balancer asked about has its deletion
    protection on."""

    def program_load_balancers(self, env: Any) -> list[str]:
        return ["gateway-alb"]

    def deletion_protected(self, env: Any, load_balancers: Any) -> list[str]:
        return list(load_balancers)


#: an old copy a failed create-before-delete replacement left: the same URN, marked delete, deleted by the next up
PENDING_DELETE = [{"op": "delete", "urn": ALB_URN, "type": ALB}]


@pytest.mark.parametrize("steps", [replaced(ALB_URN, ALB), [], PENDING_DELETE],
                         ids=["replaced", "kept", "old-copy-deleted"])
def test_an_up_whose_preview_replaces_a_load_balancer_aws_protects_stops_before_its_update(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[dict[str, str]]) -> None:
    """A kept gateway ALB whose force-new input changed (`internal`): the replacement creates the new copy, moves the
    listener, then Elastic Load Balancing refuses the old copy's delete (OperationNotPermitted) while its deletion
    protection is on, on this up and every later one. ELB is asked before compute runs; the up's own preview decides
    whether it is replaced. Refused with the command that lifts the protection; a preview keeping it goes on, and so
    does one deleting only the old copy a failed replacement left (its own protection lifted, as that refusal said):
    refusing it would print the command that lifts the live copy's protection."""
    fake_cli.create_stacks("dev")
    (fake_cli.state / "compute.dev.state.json").write_text(json.dumps({"version": 3, "deployment": {"resources": [
        {"urn": "urn:pulumi:dev::compute::pulumi:pulumi:Stack::compute-dev", "type": "pulumi:pulumi:Stack"},
        {"urn": ALB_URN, "type": ALB, "id": ALB_ARN, "outputs": {"arn": ALB_ARN, "enableDeletionProtection": True}},
    ]}}))
    preview_steps(monkeypatch, tmp_path, {"compute": steps})
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    code = main(["up", "dev", "--yes", "--local-state", "--layers", "compute", "--exact"], runner=runner, out=out,
                images=ProtectedEverywhere())
    output = out.getvalue()
    if not any(step["op"] == "replace" for step in steps):
        assert code == 0, output
        assert [c["layer"] for c in fake_cli.operations("up")] == ["compute"]
        return
    assert code == 1, output
    assert fake_cli.operations("up") == [] and [c["layer"] for c in fake_cli.operations("preview")] == ["compute"]
    assert f"refused: replace {ALB} {ALB_URN}" in output and f"AWS deletion protection on ({ALB_ARN})" in output
    assert "nothing of compute was changed: its up would replace the load balancer(s) gateway-alb" in output
    assert f"--load-balancer-arn {ALB_ARN} --attributes Key=deletion_protection.enabled,Value=false" in output


def test_allow_replace_names_the_urn_the_refusal_gave_and_the_up_goes_on(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preview_steps(monkeypatch, tmp_path, {"broker": replaced(BROKER_URN, BROKER)})
    code, output = run(["up", "dev", "--yes", "--local-state", "--allow-replace", BROKER_URN], tmp_path)
    assert code == 0, output
    assert f"allowed by --allow-replace: replace {BROKER} {BROKER_URN}" in output
    assert sorted(c["layer"] for c in fake_cli.operations("up")) == sorted(LAYERS)


def test_replacing_what_holds_no_data_needs_no_permission(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = "aws:ec2/securityGroup:SecurityGroup"
    role_deleted = {"op": "delete", "urn": "urn:pulumi:dev::broker::aws:iam/role:Role::x", "type": "aws:iam/role:Role"}
    preview_steps(monkeypatch, tmp_path,
                  {"broker": [*replaced(f"urn:pulumi:dev::broker::{group}::broker", group), role_deleted]})
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    assert "refused" not in output
    assert "broker" in {c["layer"] for c in fake_cli.operations("up")}


def test_deleting_a_queue_is_refused_too_and_an_allowance_for_another_resource_does_not_cover_it(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = "rabbitmq:index/queue:Queue"
    urn = f"urn:pulumi:dev::messaging::mlplatform:messaging:RabbitTopology${queue}::messaging-queue-ml-old"
    preview_steps(monkeypatch, tmp_path, {"messaging": [{"op": "delete", "urn": urn, "type": queue}]})
    code, output = run(["up", "dev", "--yes", "--local-state", "--allow-replace", BROKER_URN], tmp_path)
    assert code == 1
    assert f"delete {queue} {urn}" in output
    assert f"note: --allow-replace {BROKER_URN}: the preview neither replaces nor deletes it" in output
    assert "messaging" not in {c["layer"] for c in fake_cli.operations("up")}


def test_replacing_the_gateways_access_log_bucket_is_refused_and_its_settings_are_not(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Any) -> None:
    # The ALB's access logs are audit evidence: the bucket is gated like a log group (its name, bucket, forces a
    # new one). Its public access block holds nothing and is replaced freely. URNs as the synth gives them.
    from shared.synth.engine import synth_env
    from tests.synth_helpers import by_name

    edit_env("dev", lambda data: data["compute"].update(
        public_gateway=True, certificate_arn="arn:aws:acm:eu-west-1:111111111111:certificate/one"))
    compute = synth_env("dev")["compute"]
    bucket = by_name(compute, "aws:s3/bucket:Bucket", "gateway-alb-logs")
    block = by_name(compute, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "gateway-alb-logs")
    preview_steps(monkeypatch, tmp_path, {"compute": replaced(block["urn"], block["type"])})
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0 and "refused" not in output, output
    preview_steps(monkeypatch, tmp_path, {"compute": replaced(bucket["urn"], bucket["type"])})
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 1
    assert f"replace {bucket['type']} {bucket['urn']}" in output and f"--allow-replace '{bucket['urn']}'" in output


def test_messaging_previews_and_updates_with_a_refresh_through_the_programs_provider(
        fake_cli: FakeCli, tmp_path: Path) -> None:
    """After a broker replacement the new broker is empty: the refresh drops the vanished vhost, queues and
    users from messaging's state so the same up recreates them (through the new broker's endpoint)."""
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    for verb in ("preview", "up"):
        for call in fake_cli.operations(verb):
            refreshed = "--refresh" in call["args"] and "--run-program=true" in call["args"]
            assert refreshed == (call["layer"] in ("messaging", "compute")), (verb, call["layer"], call["args"])
    code, output = run(["preview", "dev", "--layers", "messaging"], tmp_path)
    assert code == 0, output
    (preview,) = [c for c in fake_cli.operations("preview") if c["layer"] == "messaging"][-1:]
    assert "--refresh" in preview["args"] and "--run-program=true" in preview["args"]


def test_compute_previews_and_updates_with_a_refresh_so_a_rolled_back_service_is_deployed_again(
        fake_cli: FakeCli, tmp_path: Path) -> None:
    """ECS's circuit breaker rolls a failed deployment back and the provider fails the update, recording the task
    definition it asked for, not the one ECS went back to: without a refresh the next up found no change and left the
    service on the old revision while its callers rolled onto the new release."""
    code, output = run(["up", "dev", "--yes", "--local-state", "--layers", "compute", "--exact"], tmp_path)
    assert code == 0, output
    for verb in ("preview", "up"):
        (call,) = [c for c in fake_cli.operations(verb) if c["layer"] == "compute"]
        assert "--refresh" in call["args"] and "--run-program=true" in call["args"], (verb, call["args"])
    # refresh and destroy of compute keep their own options: they act through the provider its state records
    code, output = run(["refresh", "dev", "--yes", "--local-state", "--layers", "compute", "--exact"], tmp_path)
    assert code == 0, output
    (refresh,) = [c for c in fake_cli.operations("refresh") if c["layer"] == "compute"]
    assert "--run-program=true" not in refresh["args"]


#: messaging's state as exported once deployed: the root stack, its providers and what they manage
MESSAGING_STATE: dict[str, Any] = {"version": 3, "deployment": {"resources": [
    {"urn": "urn:pulumi:dev::messaging::pulumi:pulumi:Stack::messaging-dev", "type": "pulumi:pulumi:Stack"},
    {"urn": "urn:pulumi:dev::messaging::pulumi:providers:rabbitmq::messaging-rabbitmq",
     "type": "pulumi:providers:rabbitmq"},
    {"urn": "urn:pulumi:dev::messaging::mlplatform:messaging:RabbitTopology$rabbitmq:index/vHost:VHost::"
            "messaging-vhost",
     "type": "rabbitmq:index/vHost:VHost"},
]}}


#: refresh and destroy of dev, each run for real (on local state) and as a preview
REFRESH_AND_DESTROY_RUNS = [
    ["refresh", "dev", "--yes", "--local-state"],
    ["refresh", "dev", "--preview-only"],
    ["destroy", "dev", "--yes", "--local-state"],
    ["destroy", "dev", "--preview-only"],
]


@pytest.mark.parametrize("argv", REFRESH_AND_DESTROY_RUNS)
def test_messaging_refreshes_and_destroys_through_the_programs_provider(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """messaging's provider in the state holds the broker admin password of the last up: after a rotation it is
    refused, so refresh and destroy run the program (which reads the current one) instead of using it."""
    fake_cli.create_stacks("dev")
    (fake_cli.state / "messaging.dev.state.json").write_text(json.dumps(MESSAGING_STATE))
    monkeypatch.setenv("FAKE_PULUMI_STALE_PROVIDER", "messaging")
    code, output = run(argv, tmp_path)
    assert code == 0, output
    calls = fake_cli.operations(argv[0])
    assert {call["layer"] for call in calls} == set(LAYERS)
    for call in calls:
        assert ("--run-program=true" in call["args"]) == (call["layer"] == "messaging"), (call["layer"], call["args"])


@pytest.mark.parametrize("argv", [
    ["destroy", "dev", "--yes", "--local-state"],
    ["refresh", "dev", "--yes", "--local-state"],
])
def test_an_emptied_messaging_stack_is_destroyed_or_refreshed_again_without_its_program(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str]) -> None:
    """After a destroy every stack is empty and the broker's has no outputs: messaging's program could not run (its
    StackReference requires them), and there is nothing to act on, so a second destroy (or a refresh) succeeds."""
    fake_cli.create_stacks("dev")
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").unlink()
    code, output = run(argv, tmp_path)
    assert code == 0, output
    (call,) = [call for call in fake_cli.operations(argv[0]) if call["layer"] == "messaging"][-1:]
    assert "--run-program=true" not in call["args"]


@pytest.mark.parametrize("argv", [
    ["destroy", "dev", "--yes", "--local-state"],
    ["destroy", "dev", "--preview-only"],
    ["refresh", "dev", "--yes", "--local-state"],
])
def test_an_emptied_messaging_stack_is_not_refused_for_the_reach_of_a_deleted_broker(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str]) -> None:
    """A first destroy emptied messaging, deleted the broker, then failed before the broker's stack was emptied (a
    security group still in use by the broker's lingering network interfaces): the broker's stack still names the
    deleted broker's management endpoint, which answers no more. messaging's stack holds nothing, so its refresh or
    destroy calls no RabbitMQ provider: the second destroy must not stop (exit 2, nothing run) on the reach of that
    endpoint. While messaging holds resources, the probe still refuses the run."""
    fake_cli.create_stacks("dev")
    closed = "https://127.0.0.1:1"  # nothing listens on port 1: the connection is refused, like a deleted host's
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").write_text(json.dumps({"management_endpoint": closed}))
    code, output = run(argv, tmp_path)
    assert code == 0, output
    assert "messaging" in {call["layer"] for call in fake_cli.operations(argv[0])}
    assert "reach messaging: not probed, its stack holds no resources" in output

    (fake_cli.state / "messaging.dev.state.json").write_text(json.dumps(MESSAGING_STATE))
    code, output = run(argv, tmp_path)
    assert code == 2, output


class BrokersOfTheAccount(AccountReady):
    """The account's Amazon MQ brokers are ``held`` (ListBrokers), those of ``deleting`` being deleted, everything else
    ready."""

    def __init__(self, *held: str, deleting: tuple[str, ...] = ()) -> None:
        self.held, self.deleting = held, deleting

    def brokers(self, env: EnvConfig) -> AccountReport:
        return AccountReport(brokers={broker_id: f"ml-{env.name}" for broker_id in (*self.held, *self.deleting)},
                             deleting_brokers=frozenset(self.deleting))


GONE_BROKER = "b-00000000-0000-0000-0000-00000000dead"
VHOST_URN = MESSAGING_STATE["deployment"]["resources"][-1]["urn"]
#: an AWS resource of messaging that depends on a RabbitMQ object, as each connection secret's version does on its user
#: and the vhost (tests/snapshots/*/messaging.json): `pulumi state delete` of the vhost would be refused
MESSAGING_SECRET_VERSION = {
    "urn": "urn:pulumi:dev::messaging::aws:secretsmanager/secretVersion:SecretVersion::messaging-secret-gateway",
    "type": "aws:secretsmanager/secretVersion:SecretVersion", "id": "platform/dev/messaging/gateway|v1",
    "dependencies": [VHOST_URN], "propertyDependencies": {"secretString": [VHOST_URN]}}


def _broker_deleted_by_hand(fake_cli: FakeCli) -> Path:
    """The broker stack records GONE_BROKER (its endpoint answers no more); messaging's state (its file, returned)
    holds its RabbitMQ vhost and provider and a secret version that depends on the vhost."""
    fake_cli.create_stacks("dev")
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").write_text(json.dumps(
        {"management_endpoint": "https://127.0.0.1:1", "broker_id": GONE_BROKER, "broker_mode": "amazon-mq"}))
    state = json.loads(json.dumps(MESSAGING_STATE))
    state["deployment"]["resources"].append(MESSAGING_SECRET_VERSION)
    path = fake_cli.state / "messaging.dev.state.json"
    path.write_text(json.dumps(state))
    return path


def _run_with(argv: list[str], tmp_path: Path, account: AccountReady) -> tuple[int, str]:
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    return main(argv, runner=runner, out=out, images=ReleasedEverywhere(), account=account), out.getvalue()


def _printed_commands(error: str) -> list[str]:
    return [line.strip() for line in error.splitlines() if line.startswith("  ") and (
        "pulumi " in line or "state_drop" in line or line.strip().startswith("mkdir"))]


@pytest.mark.parametrize("argv", REFRESH_AND_DESTROY_RUNS)
def test_a_teardown_after_the_broker_was_deleted_by_hand_takes_the_objects_out_of_the_state_first(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Deleted outside Pulumi, the broker took its RabbitMQ objects with it, and no deploy runner or tunnel reaches
    it: a refresh or destroy that would call it for messaging's objects is refused before any layer, naming how to
    take them out of the state (export, state_drop, import on the env's backend: `pulumi state delete` refuses an
    object an AWS resource depends on) and the way back for an env to keep. A preview-only run too: its preview
    would call the deleted broker as well."""
    _broker_deleted_by_hand(fake_cli)
    code, output = _run_with(argv, tmp_path, BrokersOfTheAccount())
    error = capsys.readouterr().err
    assert code == 2 and not fake_cli.operations(argv[0]), output + error
    commands = _printed_commands(error)
    assert len(commands) == 4 and commands[0] == "mkdir -p build", commands
    export, drop, load = commands[1:]
    backend = "PULUMI_BACKEND_URL="
    assert backend in export and "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true" in export and backend in load
    assert " pulumi -C stacks/messaging stack export --stack organization/messaging/dev --file " in export
    assert " pulumi -C stacks/messaging stack import --stack organization/messaging/dev --file " in load
    assert drop.startswith(".venv/bin/python -m shared.orchestrate.state_drop rabbitmq ")
    assert "state delete --stack" not in error
    assert f"records the Amazon MQ broker {GONE_BROKER}, which account" in error
    assert "`nox -s refresh -- dev --layers broker --exact`" in error and "Nothing was run" in error
    assert "deploy runner" not in error.replace("no deploy runner or tunnel", "") and "port-forwarding" not in error


@pytest.mark.parametrize("argv", [argv for argv in REFRESH_AND_DESTROY_RUNS if "--preview-only" not in argv])
def test_the_printed_state_edit_lets_the_teardown_run_without_the_probe(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """What the refusal asks for done (its state_drop step on the stack's exported state; the export and import
    carry the file as it is): messaging's state holds AWS resources alone, the secret version that depended on the
    vhost kept without the reference, and its refresh or destroy acts from anywhere without probing the deleted
    broker's endpoint."""
    from shared.orchestrate import state_drop

    state = _broker_deleted_by_hand(fake_cli)
    _run_with(argv, tmp_path, BrokersOfTheAccount())
    drop = _printed_commands(capsys.readouterr().err)[2]
    assert state_drop.main(["rabbitmq", str(state)]) == 0, drop
    resources = json.loads(state.read_text())["deployment"]["resources"]
    assert not [r for r in resources if r["type"].startswith("rabbitmq:")]
    (version,) = [r for r in resources if r["type"] == MESSAGING_SECRET_VERSION["type"]]
    assert version["dependencies"] == [] and version["propertyDependencies"] == {"secretString": []}

    code, output = _run_with(argv, tmp_path, BrokersOfTheAccount())
    assert code == 0, output
    assert "reach messaging: not probed, its stack holds no RabbitMQ object" in output
    assert "messaging" in {call["layer"] for call in fake_cli.operations(argv[0])}


def test_a_broker_amazon_mq_is_deleting_is_taken_for_gone(fake_cli: FakeCli, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """ListBrokers lists a broker until its delete ends (BrokerState DELETION_IN_PROGRESS): its endpoint already
    answers no more, so the teardown is refused as for a gone one, not sent to a runner or tunnel."""
    _broker_deleted_by_hand(fake_cli)
    code, output = _run_with(["destroy", "dev", "--yes", "--local-state"], tmp_path,
                             BrokersOfTheAccount(deleting=(GONE_BROKER,)))
    error = capsys.readouterr().err
    assert code == 2 and "shared.orchestrate.state_drop rabbitmq" in error, output + error


def test_a_broker_the_account_still_holds_is_probed_as_before(fake_cli: FakeCli, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The broker is there but answers only inside the VPC: the refusal names the ways in (runner, tunnel)."""
    _broker_deleted_by_hand(fake_cli)
    code, output = _run_with(["destroy", "dev", "--yes", "--local-state"], tmp_path, BrokersOfTheAccount(GONE_BROKER))
    error = capsys.readouterr().err
    assert code == 2 and "state_drop" not in error, output + error
    assert "cannot run from here" in error and "deploy runner" in error


@pytest.mark.parametrize("argv", REFRESH_AND_DESTROY_RUNS)
def test_messaging_holding_resources_on_a_destroyed_broker_stack_stops_before_its_program_runs(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str]) -> None:
    """The broker's stack was emptied (`destroy --layers broker --exact`, or by hand) while messaging's still holds
    its objects. messaging's refresh and destroy run its program, whose StackReference then finds none of the
    broker's outputs, and the provider its state records calls the deleted broker: neither way can act. The run
    says so and what to do, without a program error dressed as a protect hint, and runs nothing of messaging."""
    fake_cli.create_stacks("dev")
    (fake_cli.state / "messaging.dev.state.json").write_text(json.dumps(MESSAGING_STATE))
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").unlink()  # emptied: no outputs, no resources
    code, output = run(argv, tmp_path)
    assert code == 1, output
    assert not [call for call in fake_cli.calls() if call["event"] == "call" and call["layer"] == "messaging"
                and call["args"][:1] in (["refresh"], ["destroy"])]
    assert f"stack of {ENDPOINT_LAYER} (organization/{ENDPOINT_LAYER}/dev) holds none" in output, output
    assert f"`nox -s up -- dev --layers {ENDPOINT_LAYER},messaging`" in output
    assert "unprotect" not in output
    if argv[0] == "destroy":  # what messaging reads stays: nothing else was destroyed
        assert not [call for call in fake_cli.operations("destroy") if "--preview-only" not in call["args"]
                    and call["layer"] in LAYER_UPSTREAMS["messaging"]]


@pytest.mark.parametrize("argv", [
    ["destroy", "dev", "--yes", "--local-state"],
    ["destroy", "dev", "--preview-only"],
])
def test_messaging_resources_protected_in_the_state_stop_its_destroy_whatever_the_env_file_says_now(
        fake_cli: FakeCli, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`destroy --run-program` deletes each resource as the program registers it now, its ``protect`` included
    (the engine's destroy mode same-steps the program's new state and DeleteStep checks that one): an env file
    whose protect_stateful was turned off (not yet deployed, or edited locally) would delete messaging's queues,
    vhost, secrets and key although the state protects them, where every other layer's destroy is refused. The
    state's protect stops messaging's destroy before anything of it is deleted, naming the command that releases
    one."""
    fake_cli.create_stacks("dev")
    state = json.loads(json.dumps(MESSAGING_STATE))
    vhost = state["deployment"]["resources"][-1]
    vhost["protect"] = True
    (fake_cli.state / "messaging.dev.state.json").write_text(json.dumps(state))
    code, output = run(argv, tmp_path)
    assert code == 1, output
    assert not [call for call in fake_cli.operations("destroy") if call["layer"] == "messaging"
                and "--preview-only" not in call["args"]]
    # the destroy is refused before any layer runs (the state's export, read first, says so); its preview by
    # messaging's own
    said = (output + capsys.readouterr().err).replace("\n", "")
    assert f"`pulumi state unprotect --stack organization/messaging/dev '{vhost['urn']}'`" in said
    # what messaging reads stays, and what reads it too (compute holds nothing protected here)
    assert not [call for call in fake_cli.operations("destroy") if "--preview-only" not in call["args"]]


def test_an_exact_destroy_of_a_layer_that_deployed_layers_read_is_refused_before_anything_runs(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`destroy --layers broker --exact` deleted the broker under a deployed messaging (and compute): messaging's
    program then finds no broker outputs and its stored provider calls the deleted broker, so messaging could be
    neither refreshed, updated nor destroyed any more. Refused (exit 2, nothing run) while a reader is deployed;
    allowed once the readers are gone, and as a preview (which deletes nothing)."""
    fake_cli.create_stacks("dev")
    for reader in ("messaging", "compute"):
        (fake_cli.state / f"{reader}.dev.outputs.json").write_text(json.dumps({"vhost": "ml"}))
    code, _ = run(["destroy", "dev", "--layers", "broker", "--exact", "--yes", "--local-state"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert "messaging, compute" in error and "--exact" in error and "nothing was run" in error
    assert not fake_cli.operations("destroy")

    code, output = run(["destroy", "dev", "--layers", "broker", "--exact", "--preview-only"], tmp_path)
    assert code == 0, output
    for reader in ("messaging", "compute"):
        (fake_cli.state / f"{reader}.dev.outputs.json").unlink()
    code, output = run(["destroy", "dev", "--layers", "broker", "--exact", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    assert {call["layer"] for call in fake_cli.operations("destroy") if "--preview-only" not in call["args"]} == \
        {"broker"}


@pytest.mark.parametrize("argv, message", [
    (["up", "dev", "--yes", "--allow-replace", "broker"], "not a Pulumi URN"),
    (["up", "dev", "--yes", "--allow-replace", BROKER_URN.replace(":dev::", ":prod::")], "names stack 'prod'"),
    (["up", "dev", "--yes", "--layers", "network", "--allow-replace", BROKER_URN], "names layer 'broker'"),
    (["preview", "dev", "--allow-replace", BROKER_URN], "applies to up only"),
])
def test_an_allow_replace_that_cannot_match_is_refused_before_any_pulumi_call(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _ = run([*argv, "--local-state"] if argv[0] == "up" else argv, tmp_path)
    assert code == 2
    assert message in capsys.readouterr().err
    assert fake_cli.calls() == []


def test_what_the_preflight_hands_the_programs_reaches_their_workspace_under_the_backend_s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker program reads what the broker runs from its environment (shared.broker_capacity): every workspace
    of the runner's later operations carries it, and never over a variable the backend set (PULUMI_BACKEND_URL)."""
    from shared.broker_capacity import RUNNING_BROKER_VARIABLE

    install_fake_cli(tmp_path, monkeypatch)  # a workspace's options name the runner's `pulumi`
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    runner._env_vars = {"PULUMI_BACKEND_URL": "file:///backend"}
    runner.program_environment({RUNNING_BROKER_VARIABLE: "mq.m7g.medium 4.2", "PULUMI_BACKEND_URL": "file:///x"})
    env_vars = runner._options().env_vars or {}
    assert env_vars[RUNNING_BROKER_VARIABLE] == "mq.m7g.medium 4.2"
    assert env_vars["PULUMI_BACKEND_URL"] == "file:///backend"
    runner.program_environment({})
    assert RUNNING_BROKER_VARIABLE not in (runner._options().env_vars or {})


def test_the_readme_says_a_pending_broker_change_shows_again_only_after_a_refresh() -> None:
    """`up` does not refresh the broker layer (REFRESHED_LAYERS), and the provider's update of a broker reads nothing
    back (terraform-provider-aws mq/broker.go resourceBrokerUpdate), so the state records what `up` asked for: a
    pending configuration or instance type shows as an update again only once a refresh read what the broker runs.
    Each README sentence saying it shows again says after a refresh."""
    import re

    from shared.orchestrate.automation import REFRESHED_LAYERS
    from tests.readme_helpers import readme_rendered

    assert "broker" not in REFRESHED_LAYERS
    text = readme_rendered()
    claims = [match.start() for match in re.finditer(r"shows the broker's `configuration` as an update", text)]
    assert claims
    for at in claims:
        sentence = text[text.rfind(". ", 0, at):at]
        assert "refresh" in sentence, f"README says without a refresh: ...{text[at - 200:at + 80]}"


def test_every_pulumi_command_of_a_run_starts_in_a_group_of_its_own_with_sighup_ignored(fake_cli: FakeCli,
                                                                                         tmp_path: Path) -> None:
    """A signal to the orchestrator's whole process group (a terminal's Ctrl-C, a closed terminal's SIGHUP, GNU
    timeout's SIGTERM) would reach the CLI besides the orchestrator's relay: two signals, "terminate now"
    (pkg/backend/cancellation_scope.go); SIGHUP the CLI does not handle at all. In a group of its own, with SIGHUP
    ignored (Go keeps it ignored), only the relay reaches it; stdin from /dev/null (a background group reading the
    terminal would be stopped), SIGTTOU ignored (so would one writing to it under `stty tostop`)."""
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    # but the version check before any (check_cli_version: `pulumi version`, which touches no stack)
    calls = [c for c in fake_cli.calls() if c["event"] == "call" and c["args"] != ["version"]]
    assert {c["args"][0] for c in calls} >= {"up", "preview", "stack"}
    for key in ("sighup_ignored", "own_process_group", "stdin_null", "sigttou_ignored"):
        assert all(c[key] for c in calls), (key, [c["args"] for c in calls if not c[key]])


def test_the_shim_passes_every_argument_and_the_exit_code_through(tmp_path: Path) -> None:
    from shared.orchestrate.automation import pulumi_shim

    target = tmp_path / "real pulumi"  # a path with a space: quoted in the shim
    target.write_text('#!/bin/sh\nprintf "%s|" "$@"\nexit 3\n')
    target.chmod(0o755)
    root = pulumi_shim(str(target), tmp_path / "shim root")
    done = subprocess.run([str(root / "bin" / "pulumi"), "a b", "--flag=$HOME", ""], capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout == "a b|--flag=$HOME||"


def test_a_pulumi_command_started_after_the_interrupt_starts_no_cli(tmp_path: Path) -> None:
    """The race the runner's own check cannot close: a layer checked just before the interrupt, and its `pulumi`
    starts just after the relay looked for processes. The shim finds the marker the runner wrote before looking."""
    from shared.orchestrate.automation import INTERRUPTED_MARKER, pulumi_shim

    ran = tmp_path / "ran"
    target = tmp_path / "pulumi-cli"
    target.write_text(f"#!/bin/sh\ntouch {ran}\n")
    target.chmod(0o755)
    root = pulumi_shim(str(target), tmp_path / "shim")
    (root / INTERRUPTED_MARKER).touch()
    done = subprocess.run([str(root / "bin" / "pulumi"), "up"], capture_output=True, text=True)
    assert done.returncode == 130 and not ran.exists() and done.stderr == ""


def test_the_runner_marks_its_shim_interrupted_whenever_the_shim_is_made(fake_cli: FakeCli, tmp_path: Path) -> None:
    from shared.orchestrate.automation import INTERRUPTED_MARKER

    before = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    before.interrupt()
    with pytest.raises(subprocess.CalledProcessError):  # not even the Automation API's `pulumi version` starts
        before._pulumi_cli()
    assert before._shim_root is not None and (before._shim_root / INTERRUPTED_MARKER).exists()
    assert fake_cli.calls() == []
    after = AutomationRunner(policy_config_dir=tmp_path / "policy-config")
    after._pulumi_cli()
    assert after._shim_root is not None and not (after._shim_root / INTERRUPTED_MARKER).exists()
    after.interrupt()
    assert (after._shim_root / INTERRUPTED_MARKER).exists()
