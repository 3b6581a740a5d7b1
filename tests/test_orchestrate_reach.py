"""The VPC-reach probe: a layer whose provider talks to the broker's management API runs only when
that API answers from here. Every probe here is a real TCP connection on loopback: a listener that
accepts (reachable) or a port nothing listens on (refused)."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.dag import LAYERS, NEEDS_VPC_REACH
from shared.envs import EnvConfig, load_env
from shared.management_api import management_url
from shared.orchestrate.cli import main
from shared.orchestrate.model import Action, Operation, Status
from shared.orchestrate.plan import Plan
from shared.orchestrate.reach import PROBE_TIMEOUT_S, ReachCheck, ReachError, endpoint_layer, host_port, tcp_probe
from shared.orchestrate.scheduler import Progress, execute
from tests.aws_helpers import ReleasedEverywhere
from tests.loopback import Listener, closed_port
from tests.test_orchestrate import RecordingRunner
from tests.test_orchestrate_automation import ENDPOINT_LAYER, FakeCli, install_fake_cli


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as server:
        yield server


class StackRunner(RecordingRunner):
    """A RecordingRunner whose stacks' outputs are given per layer (None: the stack does not exist)."""

    def __init__(self, outputs: Mapping[str, Mapping[str, Any] | None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outputs = dict(outputs or {})
        self.reads: list[str] = []

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        self.reads.append(layer)
        return self.outputs.get(layer)


def run_cli(argv: list[str], runner: RecordingRunner) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, runner=runner, out=out, confirm=lambda prompt: True, images=ReleasedEverywhere()), out.getvalue()


# -- the probe itself -------------------------------------------------------------------------------


def test_tcp_probe_connects_for_real(listener: Listener) -> None:
    assert tcp_probe("127.0.0.1", listener.port, PROBE_TIMEOUT_S) is None
    assert listener.accepted >= 0  # the connection was opened (accept runs on its own thread)
    why = tcp_probe("127.0.0.1", closed_port(), PROBE_TIMEOUT_S)
    assert why is not None and "refused" in why.lower()


def test_endpoints_and_proxies_default_their_ports() -> None:
    assert host_port("https://b-1.mq.eu-west-1.amazonaws.com") == ("b-1.mq.eu-west-1.amazonaws.com", 443)
    assert host_port("https://localhost:15671/") == ("localhost", 15671)
    assert host_port("http://proxy.corp") == ("proxy.corp", 80)
    assert host_port("socks5h://127.0.0.1") == ("127.0.0.1", 1080)


def test_the_layers_that_need_reach_read_their_endpoint_from_the_layer_that_exports_it() -> None:
    assert NEEDS_VPC_REACH <= set(LAYERS)
    from shared.contracts import CONTRACTS

    for layer in NEEDS_VPC_REACH:
        assert "management_endpoint" in CONTRACTS[endpoint_layer(layer)].model_fields


# -- before anything runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["up", "dev", "--yes"], ["preview", "dev"], ["refresh", "dev", "--yes"],
                                  ["destroy", "dev", "--yes"], ["refresh", "dev", "--preview-only"]])
def test_an_unreachable_management_api_exits_2_before_any_layer_runs(
        argv: list[str], edit_env, capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()  # a tunnel that is not open; "localhost" stands for the broker's name mapped in /etc/hosts
    edit_env("dev", lambda data: data["messaging"].update(
        management={"endpoint": f"https://127.0.0.1:{port}", "tls_server_name": "localhost"}))
    endpoint = f"https://localhost:{port}"  # what the provider calls
    runner = RecordingRunner()
    code, _ = run_cli(argv, runner)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: messaging cannot run from here")
    assert endpoint in err and "messaging.management.endpoint" in err  # the endpoint and where it came from
    assert "deploy runner inside the env's VPC" in err and "SSM port-forwarding" in err  # the ways in
    assert "tls_server_name" in err and "Nothing was created in messaging" in err
    assert len(err.strip().splitlines()) == 1  # one paragraph
    assert runner.started() == []


def test_a_reachable_override_lets_the_run_go_and_says_what_answered(edit_env, listener: Listener) -> None:
    edit_env("dev", lambda data: data["messaging"].update(
        management={"endpoint": listener.url, "tls_server_name": "localhost"}))
    runner = StackRunner()  # no stack has an output: only the override can make this pass
    code, output = run_cli(["up", "dev", "--yes"], runner)
    assert code == 0, output
    assert f"reach messaging: https://localhost:{listener.port} answers on localhost:{listener.port}" in output
    assert "messaging" in runner.started()


def test_with_a_proxy_the_proxy_is_probed_and_named(edit_env, listener: Listener,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # the broker host itself is never dialled: the provider goes through the proxy
    edit_env("dev", lambda data: data["messaging"].update(
        management={"endpoint": "https://b-1.mq.eu-west-1.amazonaws.com", "proxy": f"http://127.0.0.1:{listener.port}"}))
    code, output = run_cli(["preview", "dev"], RecordingRunner())
    assert code == 0, output
    assert f"the proxy http://127.0.0.1:{listener.port} (the provider connects through it) answers" in output
    dead_proxy = f"socks5h://127.0.0.1:{closed_port()}"
    edit_env("dev", lambda data: data["messaging"]["management"].update(proxy=dead_proxy))
    runner = RecordingRunner()
    code, _ = run_cli(["preview", "dev"], runner)
    assert code == 2
    err = capsys.readouterr().err
    assert f"the proxy {dead_proxy}" in err and "https://b-1.mq.eu-west-1.amazonaws.com" in err
    assert runner.started() == []


def test_an_external_broker_is_probed_at_its_own_endpoint(edit_env, listener: Listener,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    def external(endpoint: str) -> Any:
        return lambda data: data["messaging"].update(
            broker="external", external={"amqps_endpoint": "amqps://127.0.0.1:5671", "management_endpoint": endpoint},
            instance_type="mq.m5.large")

    edit_env("dev", external(listener.url))
    runner = StackRunner()
    code, output = run_cli(["up", "dev", "--yes"], runner)
    assert code == 0, output
    assert "endpoint from messaging.external.management_endpoint" in output
    # the endpoint comes from the env file (the message above); the broker stack is read only for whether an Amazon MQ
    # broker is still deployed (shared.broker_upgrade.external_move_refusal); messaging's own outputs are, for the
    # rotation continuity check; compute's for the services it runs: shared.service_removal, and its repositories;
    # network's for the AZs it serves: shared.zone_retirement)
    assert set(runner.reads) <= {"broker", "messaging", "compute", "network"}
    edit_env("dev", external(f"https://127.0.0.1:{closed_port()}"))
    code, _ = run_cli(["up", "dev", "--yes"], StackRunner())
    assert code == 2
    assert "messaging.external.management_endpoint" in capsys.readouterr().err


def test_the_endpoint_comes_from_the_broker_stack_output(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"https://127.0.0.1:{closed_port()}"
    runner = StackRunner({ENDPOINT_LAYER: {"management_endpoint": endpoint}})
    code, _ = run_cli(["destroy", "dev", "--yes", "--layers", "messaging"], runner)
    assert code == 2
    err = capsys.readouterr().err
    assert f"{endpoint} (from output management_endpoint of stack organization/{ENDPOINT_LAYER}/dev)" in err
    assert runner.started() == []  # not even compute, which destroy would have run first


def test_a_destroy_that_cannot_reach_names_the_runner_for_messaging_only(capsys: pytest.CaptureFixture[str]) -> None:
    runner = StackRunner({ENDPOINT_LAYER: {"management_endpoint": f"https://127.0.0.1:{closed_port()}"}})
    assert run_cli(["destroy", "dev", "--yes"], runner)[0] == 2
    assert "a destroy: only `nox -s destroy -- dev --layers messaging` there, then the rest from here" in \
        capsys.readouterr().err
    assert run_cli(["up", "dev", "--yes"], runner)[0] == 2
    assert "a destroy:" not in capsys.readouterr().err


# -- inside the env's deploy runner -----------------------------------------------------------------


@pytest.mark.parametrize("layers", [[], ["--layers", "broker"], ["--layers", "network"],
                                    ["--layers", "broker", "--exact"]])
def test_a_destroy_inside_the_envs_deploy_runner_that_would_delete_the_runner_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], listener: Listener,
        layers: list[str]) -> None:
    # CodeBuild's CODEBUILD_BUILD_ID is "<project>:<build uuid>"; the broker layer holds the project, its role and
    # log group, network the security group and subnets the build's interface holds
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "ml-platform-dev-deploy:b1e6661e-e4f2-4156-9ab9-82a19example")
    runner = StackRunner({layer: {"management_endpoint": listener.url} for layer in LAYERS})
    code, _ = run_cli(["destroy", "dev", "--yes", *layers], runner)
    assert code == 2
    assert runner.started() == []  # nothing ran, compute included
    err = capsys.readouterr().err
    assert "runs inside dev's deploy runner (CodeBuild project ml-platform-dev-deploy)" in err
    assert "`nox -s destroy -- dev --layers messaging` (compute and messaging; a build started with " \
        "PLATFORM_COMMAND=destroy gets it with PLATFORM_LAYERS=messaging)" in err


def test_inside_the_runner_the_layers_that_need_the_vpc_are_destroyed(
        monkeypatch: pytest.MonkeyPatch, listener: Listener) -> None:
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "ml-platform-dev-deploy:b1e6661e-e4f2-4156-9ab9-82a19example")
    runner = StackRunner({layer: {"management_endpoint": listener.url} for layer in LAYERS})
    code, output = run_cli(["destroy", "dev", "--yes", "--layers", "messaging"], runner)
    assert code == 0, output
    assert sorted(runner.started()) == ["compute", "messaging"]
    # another env's runner, a preview, or an up are not this case
    for argv, variable in ((["destroy", "dev", "--yes"], "ml-platform-staging-deploy:1"),
                           (["destroy", "dev", "--preview-only"], "ml-platform-dev-deploy:1"),
                           (["up", "dev", "--yes"], "ml-platform-dev-deploy:1")):
        monkeypatch.setenv("CODEBUILD_BUILD_ID", variable)
        assert run_cli(argv, StackRunner({layer: {"management_endpoint": listener.url} for layer in LAYERS}))[0] == 0


# -- after the broker's level, on the first up ------------------------------------------------------


BROKER_PLAN = Plan(levels=(("network",), ("broker",), ("messaging",), ("compute",)), requested=())


class FirstUpRunner(StackRunner):
    """The broker stack exists (with its endpoint) only once `broker` has run."""

    def __init__(self, endpoint: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_after_up = endpoint

    def run(self, layer: str, env: EnvConfig, operation: Operation, on_output: Any) -> Any:
        result = super().run(layer, env, operation, on_output)
        if layer == "broker":
            self.outputs["broker"] = ({} if self.endpoint_after_up is None
                                      else {"management_endpoint": self.endpoint_after_up})
        return result


def first_up(endpoint: str | None, action: Action = Action.UP) -> tuple[FirstUpRunner, ReachCheck, list[Any], str]:
    env = load_env("dev")
    runner = FirstUpRunner(endpoint)
    out = io.StringIO()
    operation = Operation(action)
    reach = ReachCheck(env, operation, BROKER_PLAN, runner.stack_outputs, out=out,
                       endpoint_layer_of=lambda layer: "broker")
    reach.preflight()
    results = execute(BROKER_PLAN, env, operation, runner, Progress(out, list(BROKER_PLAN.layers)), parallel=2,
                      gate=reach.before_level)
    return runner, reach, results, out.getvalue()


def test_first_up_probes_after_the_broker_level_and_stops_before_messaging() -> None:
    endpoint = f"https://127.0.0.1:{closed_port()}"
    runner, reach, results, output = first_up(endpoint)
    assert "the management endpoint is not known yet (broker has no management_endpoint output)" in output
    assert runner.started() == ["network", "broker"]
    by_layer = {result.layer: result for result in results}
    assert by_layer["messaging"].status is Status.SKIPPED and endpoint in by_layer["messaging"].detail
    assert by_layer["compute"].status is Status.SKIPPED and "needs messaging" in by_layer["compute"].detail
    (refusal,) = reach.refusals
    assert refusal.startswith("messaging cannot run from here") and "output management_endpoint of stack" in refusal


def test_first_up_runs_messaging_once_the_new_broker_answers(listener: Listener) -> None:
    runner, reach, results, output = first_up(listener.url)
    assert runner.started() == ["network", "broker", "messaging", "compute"]
    assert all(result.status is Status.SUCCEEDED for result in results)
    assert reach.refusals == []
    assert f"reach messaging: {listener.url} answers" in output
    answered = output.index(f"reach messaging: {listener.url} answers")
    assert output.index("[broker   ] succeeded") < answered < output.index("[messaging] up dev: started")


def test_a_broker_that_exports_no_endpoint_stops_up_but_not_preview() -> None:
    runner, reach, _, _ = first_up(None)
    assert "messaging" not in runner.started()
    assert "has no management_endpoint output" in reach.refusals[0]
    runner, reach, _, output = first_up(None, Action.PREVIEW)
    assert "messaging" in runner.started() and reach.refusals == []
    assert "reach messaging: not probed, broker has no management_endpoint output yet" in output


def test_a_known_endpoint_is_probed_up_front_and_again_after_the_broker_level(listener: Listener) -> None:
    env = load_env("dev")
    runner = FirstUpRunner(listener.url, outputs={"broker": {"management_endpoint": listener.url}})
    reach = ReachCheck(env, Operation(Action.UP), BROKER_PLAN, runner.stack_outputs, out=io.StringIO(),
                       endpoint_layer_of=lambda layer: "broker")
    reach.preflight()
    assert reach.pending == {"messaging": "broker"}
    dead = f"https://127.0.0.1:{closed_port()}"
    runner.outputs["broker"] = {"management_endpoint": dead}  # e.g. the broker was replaced
    assert reach.before_level(["network"]) == {}
    refused = reach.before_level(["messaging"])
    assert dead in refused["messaging"]


def test_a_failing_read_of_the_endpoint_is_an_exit_2_message_not_a_traceback() -> None:
    class Broken(StackRunner):
        def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
            raise RuntimeError("code: 255\n stdout: \n stderr: error: could not reach the backend")

    reach = ReachCheck(load_env("dev"), Operation(Action.UP), BROKER_PLAN, Broken().stack_outputs,
                       endpoint_layer_of=lambda layer: "broker")
    with pytest.raises(ReachError) as error:
        reach.preflight()
    assert "could not reach the backend" in str(error.value) and "organization/broker/dev" in str(error.value)


def test_first_up_through_the_cli_stops_before_messaging_when_the_new_broker_does_not_answer(
        capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"https://127.0.0.1:{closed_port()}"
    runner = FirstUpRunner(endpoint)
    code, _ = run_cli(["up", "dev", "--yes"], runner)
    assert code == 2
    assert "broker" in runner.started() and "messaging" not in runner.started()
    assert endpoint in capsys.readouterr().err


def test_first_up_says_the_runner_build_that_runs_the_rest_and_that_mesh_was_not_run_for_messaging(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The expected stop of a first `up` from outside the VPC: the message gives the build to start, as the runner's
    role that may assume the deploy role (without --service-role-override a runner build can run as the jobs role,
    which may not), and the summary says mesh waited for messaging's refusal, not that a layer failed."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state")
    runner = FirstUpRunner(f"https://127.0.0.1:{closed_port()}")
    code, out = run_cli(["up", "dev", "--yes"], runner)
    err = capsys.readouterr().err
    assert code == 2
    assert ("aws codebuild start-build --region eu-west-1 --project-name ml-platform-dev-deploy "
            "--service-role-override arn:aws:iam::111111111111:role/ml-platform-dev-deploy-runner") in err
    assert "name=PLATFORM_COMMAND,value=up,type=PLAINTEXT" in err
    assert "name=PULUMI_BACKEND_URL,value=s3://acme-pulumi-state,type=PLAINTEXT" in err
    assert "stops here by design" in err
    mesh = next(line for line in out.splitlines() if line.lstrip("│| ").startswith("mesh"))
    assert "messaging was refused" in mesh and "failed" not in mesh, mesh


@pytest.mark.parametrize("backend", ["s3://acme-state?region=eu-west-1&awssdk=v2", None],
                         ids=["url-with-query", "unknown"])
def test_the_runner_build_command_survives_a_shell(monkeypatch: pytest.MonkeyPatch, backend: str | None) -> None:
    """Pulumi's S3 backend URLs carry ``?region=...&awssdk=v2``: pasted unquoted, bash would start the build in the
    background at ``&`` with a cut-off URL; a ``<placeholder>`` would be read as a redirection."""
    import shlex

    from shared.envs import load_env
    from shared.orchestrate.reach import runner_build_command

    if backend is None:
        monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    else:
        monkeypatch.setenv("PULUMI_BACKEND_URL", backend)
    said = runner_build_command(load_env("dev"))
    command = said.split("`")[1]
    argv = shlex.split(command)
    assert argv[:3] == ["aws", "codebuild", "start-build"]
    assert not {"&", "<", ">", "|", ";"} & set("".join(part for part in re.split(r"'[^']*'|\"[^\"]*\"", command)))
    value = backend or "<the state backend URL>"
    assert f"name=PULUMI_BACKEND_URL,value={value},type=PLAINTEXT" in argv
    assert argv[argv.index("--source-location-override") + 1] == "https://github.com/<org>/<repo>"
    assert argv[argv.index("--git-clone-depth-override") + 1] == "0"  # the older-commit gate reads main's history
    # this checkout's commit, not main: main may move on before the build checks it out
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert argv[argv.index("--source-version") + 1] == head
    assert "import-source-credentials" in said and (backend is not None or "replace <the state backend URL>" in said)


# -- through the Automation API and the fake CLI ---------------------------------------------------


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    return install_fake_cli(tmp_path, monkeypatch)


def test_the_real_runner_reads_the_endpoint_from_the_stack_and_refuses_before_any_destroy(
        fake_cli: FakeCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shared.orchestrate.automation import AutomationRunner

    fake_cli.create_stacks("dev", (ENDPOINT_LAYER, "messaging", "compute"))
    # a deployed messaging stack: its destroy deletes the vhost through the provider (an emptied stack is not probed)
    (fake_cli.state / "messaging.dev.state.json").write_text(json.dumps({"version": 3, "deployment": {"resources": [
        {"urn": "urn:pulumi:dev::messaging::pulumi:pulumi:Stack::messaging-dev", "type": "pulumi:pulumi:Stack"},
        {"urn": "urn:pulumi:dev::messaging::rabbitmq:index/vHost:VHost::messaging-vhost",
         "type": "rabbitmq:index/vHost:VHost"}]}}))
    endpoint = f"https://127.0.0.1:{closed_port()}"
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").write_text(json.dumps({"management_endpoint": endpoint}))
    runner = AutomationRunner(policy_config_dir=tmp_path / "cfg")
    code = main(["destroy", "dev", "--yes", "--local-state", "--layers", "messaging"], runner=runner,
                out=io.StringIO(), images=ReleasedEverywhere())
    assert code == 2
    assert f"{endpoint} (from output management_endpoint of stack organization/{ENDPOINT_LAYER}/dev)" in \
        capsys.readouterr().err
    outputs = [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "output"]]
    assert {(c["layer"], c["stack"]) for c in outputs} == {(ENDPOINT_LAYER, f"organization/{ENDPOINT_LAYER}/dev")}
    assert not fake_cli.operations("destroy")


def test_the_probe_is_injectable_and_gets_the_name_the_provider_calls_and_the_timeout(edit_env) -> None:
    edit_env("dev", lambda data: data["messaging"].update(management={
        "endpoint": "https://localhost:15671", "tls_server_name": "b-1a2b3c4d.mq.eu-west-1.amazonaws.com"}))
    dialled: list[tuple[str, int, float]] = []

    def probe(host: str, port: int, timeout_s: float) -> str | None:
        dialled.append((host, port, timeout_s))
        return "connection refused"

    runner = RecordingRunner()
    code = main(["preview", "dev"], runner=runner, out=io.StringIO(), probe=probe)
    assert code == 2
    # the provider calls https://<tls_server_name>:15671 (mapped to the tunnel in /etc/hosts): that is dialled
    assert dialled == [("b-1a2b3c4d.mq.eu-west-1.amazonaws.com", 15671, PROBE_TIMEOUT_S)]
    assert runner.started() == []


def test_a_preview_refused_for_reach_names_the_preview_of_the_other_layers_from_here(
        capsys: pytest.CaptureFixture[str]) -> None:
    """From outside the VPC a whole preview is refused (exit 2); the refusal says how to preview what needs no
    reach from here, as CI does without an in-VPC runner."""
    runner = RecordingRunner()
    code = main(["preview", "dev"], runner=runner, out=io.StringIO(), probe=recording_probe([]))
    assert code == 2 and runner.started() == []
    err = " ".join(capsys.readouterr().err.split())
    assert "nox -s preview -- dev --layers network,discovery,mesh,broker,compute --exact" in err, err


def recording_probe(dialled: list[tuple[str, int]]) -> Any:
    def probe(host: str, port: int, timeout_s: float) -> str | None:
        dialled.append((host, port))
        return "connection refused"

    return probe


@pytest.mark.parametrize("proxy", [None, "socks5h://127.0.0.1:1080"])
def test_an_external_broker_with_a_server_name_is_probed_where_the_provider_calls(
        edit_env, proxy: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    # tls_server_name without endpoint: the provider calls the name on the external broker's own port (15671)
    management: dict[str, str] = {"tls_server_name": "rabbit-admin.example.internal"}
    if proxy:
        management["proxy"] = proxy
    edit_env("dev", lambda data: data["messaging"].update(
        broker="external", instance_type="mq.m5.large", management=management,
        external={"amqps_endpoint": "amqps://10.0.0.7:5671", "management_endpoint": "https://10.0.0.7:15671"}))
    env = load_env("dev")
    called = management_url(env, None)
    assert called == "https://rabbit-admin.example.internal:15671"
    dialled: list[tuple[str, int]] = []
    code = main(["preview", "dev"], runner=RecordingRunner(), out=io.StringIO(), probe=recording_probe(dialled))
    assert code == 2
    # with a proxy the proxy is dialled (the provider connects through it), else what the provider calls
    assert dialled == [host_port(proxy or called)]
    err = capsys.readouterr().err
    assert called in err and "messaging.external.management_endpoint" in err and "tls_server_name" in err


def test_the_broker_output_is_probed_under_the_server_name_on_its_own_port(edit_env) -> None:
    edit_env("dev", lambda data: data["messaging"].update(management={"tls_server_name": "b-1.mq.eu-west-1.on.aws"}))
    env = load_env("dev")
    own = "https://b-1.mq.eu-west-1.amazonaws.com"
    dialled: list[tuple[str, int]] = []
    reach = ReachCheck(env, Operation(Action.PREVIEW), BROKER_PLAN,
                       StackRunner({"broker": {"management_endpoint": own}}).stack_outputs,
                       probe=recording_probe(dialled), endpoint_layer_of=lambda layer: "broker")
    target = reach.resolve("messaging")
    assert target is not None and target.endpoint == management_url(env, own) == "https://b-1.mq.eu-west-1.on.aws"
    with pytest.raises(ReachError):
        reach.preflight()
    assert dialled == [("b-1.mq.eu-west-1.on.aws", 443)]


def test_a_broker_the_state_no_longer_holds_is_not_probed_up_front_but_after_its_replacement(
        listener: Listener) -> None:
    """The broker stack's endpoint output names a broker that is gone while its state holds none: the refresh after a
    broker deleted outside Pulumi dropped it (a refresh leaves the stack's outputs as they were), or a replacement
    (delete before replace) failed or was killed after deleting the old one. Probed up front, that endpoint refused
    the run whose broker layer creates the new broker, every time."""
    env = load_env("dev")
    dead = f"https://127.0.0.1:{closed_port()}"
    # no broker in the state; another one than the output's (the new broker imported after a killed create); the
    # output's own broker (its endpoint is the one the provider will call)
    for held, refused_up_front in (([], False), (["b-new"], False), (["b-old"], True)):
        runner = FirstUpRunner(listener.url, outputs={"broker": {"management_endpoint": dead, "broker_id": "b-old"}})
        out = io.StringIO()

        def brokers(layer: str, env: EnvConfig, held: list[str] = held) -> list[str]:
            return held if layer == "broker" else []

        reach = ReachCheck(env, Operation(Action.UP), BROKER_PLAN, runner.stack_outputs, out=out,
                           endpoint_layer_of=lambda layer: "broker", brokers=brokers)
        if refused_up_front:
            with pytest.raises(ReachError):
                reach.preflight()
            continue
        reach.preflight()
        assert "reach messaging: not probed yet, broker's management_endpoint output is of a broker its state no " \
            "longer holds" in out.getvalue()
        results = execute(BROKER_PLAN, env, Operation(Action.UP), runner, Progress(out, list(BROKER_PLAN.layers)),
                          parallel=2, gate=reach.before_level)
        assert runner.started() == ["network", "broker", "messaging", "compute"], out.getvalue()
        assert all(result.status is Status.SUCCEEDED for result in results) and reach.refusals == []


def test_the_real_runner_tells_the_probe_which_brokers_the_broker_state_holds(
        fake_cli: FakeCli, tmp_path: Path) -> None:
    """Through the Automation API: the broker stack's state (its `stack export`) without a broker, its output naming
    a gone one: the broker layer runs (and the probe waits for it), where before the run stopped before any layer."""
    from shared.orchestrate.automation import AutomationRunner
    from tests.test_orchestrate_identity import deploy, state_as_deployed

    deploy(fake_cli, "dev")
    state = state_as_deployed("dev", ENDPOINT_LAYER)
    state["deployment"]["resources"] = [r for r in state["deployment"]["resources"]
                                        if r["type"] != "aws:mq/broker:Broker"]
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.state.json").write_text(json.dumps(state))
    dead = f"https://127.0.0.1:{closed_port()}"
    (fake_cli.state / f"{ENDPOINT_LAYER}.dev.outputs.json").write_text(json.dumps({"management_endpoint": dead}))
    out = io.StringIO()
    code = main(["up", "dev", "--yes", "--local-state"], runner=AutomationRunner(policy_config_dir=tmp_path / "cfg"),
                out=out, images=ReleasedEverywhere())
    ran = [c["layer"] for c in fake_cli.operations("up")]
    assert ENDPOINT_LAYER in ran and "messaging" not in ran, out.getvalue()  # the fake's up leaves the output dead
    assert code == 2 and "not probed yet" in out.getvalue()
