"""The real runner (Pulumi Automation API) up to the `pulumi` CLI, and what it needs before it starts.

No test here needs the real CLI: a fake `pulumi` (tests/fixtures/fake-pulumi/pulumi.py) on PATH
records every call the Automation API makes and answers just enough for it to carry on.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from shared import REPO_ROOT
from shared.dag import LAYER_UPSTREAMS, LAYERS
from shared.errors import ConfigError
from shared.orchestrate.automation import INSTALL_URL, AutomationRunner, check_passphrase, check_project
from shared.orchestrate.cli import main
from shared.orchestrate.policy_config import write_pack_configs
from shared.policy_catalog import PACKS, rules_of_pack
from tests.aws_helpers import ReleasedEverywhere

FAKE_CLI = Path(__file__).parent / "fixtures" / "fake-pulumi" / "pulumi.py"


class FakeCli:
    def __init__(self, state: Path) -> None:
        self.state = state

    def calls(self) -> list[dict[str, Any]]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def operations(self, verb: str) -> list[dict[str, Any]]:
        return [c for c in self.calls() if c["event"] == "call" and c["args"][:1] == [verb]]

    def create_stacks(self, env: str, layers: tuple[str, ...] = LAYERS) -> None:
        for layer in layers:
            (self.state / f"{layer}.{env}").touch()


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
    monkeypatch.delenv("FAKE_PULUMI_DELAY", raising=False)
    return FakeCli(state)


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    return install_fake_cli(tmp_path, monkeypatch)


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
    code, output = run(["up", "dev", "--yes"], tmp_path)
    assert code == 0, output

    # one stack named after the env, in each layer's own project folder, through the file backend
    assert sorted(work_dir for _, work_dir, _ in selected) == sorted(str(REPO_ROOT / "stacks" / x) for x in LAYERS)
    assert {stack for stack, _, _ in selected} == {"dev"}
    assert all(env_vars["PULUMI_BACKEND_URL"] == (tmp_path / "backend").as_uri() for _, _, env_vars in selected)

    calls = fake_cli.calls()
    # create_or_select: `stack select` found nothing, so `stack init dev` created it
    for layer in LAYERS:
        verbs = [c["args"][:2] for c in calls if c["layer"] == layer and c["event"] == "call"]
        assert verbs.index(["stack", "select"]) < verbs.index(["stack", "init"]) < verbs.index(["up", "--yes"])

    # every call of a layer comes after the last call of every layer it reads
    def first(layer: str) -> int:
        return next(i for i, c in enumerate(calls) if c["layer"] == layer)

    def last(layer: str) -> int:
        return max(i for i, c in enumerate(calls) if c["layer"] == layer)

    for layer, upstreams in LAYER_UPSTREAMS.items():
        for upstream in upstreams:
            assert last(upstream) < first(layer), f"{layer} started before {upstream} finished"

    ups = fake_cli.operations("up")
    assert sorted(c["layer"] for c in ups) == sorted(LAYERS)
    for call in ups:
        assert call["cwd"] == str(REPO_ROOT / "stacks" / call["layer"])
        assert option_values(call["args"], "--stack") == ["dev"]
        assert call["pythonpath"].split(os.pathsep)[0] == str(REPO_ROOT)
        assert option_values(call["args"], "--policy-pack") == [str(REPO_ROOT / "policies" / p) for p in PACKS]
        configs = option_values(call["args"], "--policy-pack-config")
        assert [Path(c).name for c in configs] == [f"{p}.json" for p in PACKS]
    aws_config = json.loads((tmp_path / "policy-config" / "dev" / "aws.json").read_text())
    assert aws_config["ecs-task-image-pinned"] == {"enforcementLevel": "advisory"}  # dev's catalog column
    assert aws_config["ecr-scan-on-push"] == {"enforcementLevel": "mandatory"}

    assert "[compute  ] up of compute (dev) done" in output  # live output, prefixed by its layer
    assert output.count("create 3, same 1") >= len(LAYERS)  # the change summary from `stack history`


def test_a_level_really_runs_concurrently_through_the_cli(fake_cli: FakeCli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PULUMI_DELAY", "0.5")
    code, output = run(["up", "dev", "--yes", "--layers", "discovery,messaging"], tmp_path)
    assert code == 0, output
    span = {}
    for layer in ("discovery", "messaging"):
        start = next(c["time"] for c in fake_cli.calls() if c["layer"] == layer and c["args"][:1] == ["up"])
        end = next(c["time"] for c in fake_cli.calls() if c["layer"] == layer and c["event"] == "end")
        span[layer] = (start, end)
    assert span["discovery"][0] < span["messaging"][1] and span["messaging"][0] < span["discovery"][1]


def test_a_failing_layer_stops_its_dependents_before_the_cli_is_called_for_them(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PULUMI_FAIL", "discovery")
    code, output = run(["up", "staging", "--yes"], tmp_path)
    assert code == 1
    touched = {c["layer"] for c in fake_cli.calls() if c["args"] != ["version"]}  # `version` runs anywhere
    assert touched == {"network", "discovery", "messaging"}
    assert "discovery failed on purpose" in output
    assert "needs discovery, which failed" in output


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
    code, output = run(["destroy", "dev", "--yes"], tmp_path)
    assert code == 0, output
    assert "nothing to destroy" in output
    assert not fake_cli.operations("destroy")
    code, output = run(["refresh", "dev", "--yes", "--layers", "network"], tmp_path)
    assert code == 1
    assert "run `nox -s up -- dev` first" in output
    assert not [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "init"]]


def test_stack_outputs_come_from_the_stack(fake_cli: FakeCli) -> None:
    fake_cli.create_stacks("dev", ("compute",))
    (fake_cli.state / "compute.dev.outputs.json").write_text(json.dumps({"cluster_name": "ml-dev"}))
    runner = AutomationRunner()
    runner.prepare_read(["compute"])
    assert runner.stack_outputs("compute", "dev") == {"cluster_name": "ml-dev"}
    assert runner.stack_outputs("compute", "staging") is None


# -- what a real run needs before it starts ----------------------------------------------------------


def test_without_the_cli_up_exits_2_saying_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi anywhere
    assert main(["up", "dev", "--yes"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "Pulumi CLI" in err and INSTALL_URL in err
    assert "nox -s synth" in err and "nox -s policy" in err


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
    assert main(["up", "dev", "--yes"], runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"),
                out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "PULUMI_CONFIG_PASSPHRASE" in err and "PULUMI_CONFIG_PASSPHRASE_FILE" in err
    assert fake_cli.calls() == []


def test_a_passphrase_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError) as error:
        check_passphrase("file:///state", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(missing)})
    assert error.value.key == "PULUMI_CONFIG_PASSPHRASE_FILE" and str(missing) in error.value.reason
    missing.write_text("secret\n")
    check_passphrase("file:///state", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(missing)})


def test_self_managed_backends_need_a_passphrase_pulumi_cloud_does_not() -> None:
    for url in ("file:///repo/.pulumi-state", "s3://bucket/state", "gs://bucket", "azblob://container"):
        with pytest.raises(ConfigError):
            check_passphrase(url, {})
        check_passphrase(url, {"PULUMI_CONFIG_PASSPHRASE": ""})  # set, even empty, is a choice
    check_passphrase("https://api.pulumi.com", {})


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
    (select,) = [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "select"]]
    assert select["backend"] == (repo / ".pulumi-state").as_uri()
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
    for pack in PACKS:
        assert list(configs[pack]) == [rule.id for rule in rules_of_pack(pack)]
