"""``--program`` runs judge any Pulumi Python program as a preview would: the corpus in tests/programs/.

Each program is written in a shape public Pulumi Python programs take (lookups, an RDS address and
port in a container definition, a secret's JSON through ``json.loads``, stack config and secrets,
several modules, a multi-language component...). Each must run (exit 0 or 1) and report exactly the
rule ids listed here: every true finding, and no false positive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.cli import run_main
from shared.policy.__main__ import main as policy_main
from shared.policy.engine import PolicyEngine, evaluate_documents_result
from shared.policy.findings import PolicyResult
from shared.synth.engine import UNKNOWN, synth_program
from tests.synth_helpers import of_type

CORPUS = Path(__file__).parent / "programs"

# program -> (rule ids it violates under the dev baseline, exit code of `nox -s policy -- --program`); a role
# without a customer managed permissions boundary is a mandatory finding there (iam-role-permissions-boundary)
EXPECTED: dict[str, tuple[set[str], int]] = {
    "alb-http": ({"lb-access-logs", "lb-drop-invalid-headers", "lb-listener-https", "lb-waf-associated",
                  "security-group-described", "security-group-no-open-ingress", "tags-required"}, 1),
    "ecr-good": ({"kms-key-policy", "tags-required"}, 1),
    "ecr-image-lookup": ({"ecs-task-separate-roles", "iam-role-permissions-boundary", "tags-required"}, 1),
    "iam-wildcard": ({"iam-no-admin-managed-policy", "iam-no-star-resource-write", "iam-no-wildcard-actions",
                      "iam-role-permissions-boundary", "tags-required"}, 1),
    "kms-defaults": ({"kms-key-policy", "kms-key-rotation", "tags-required"}, 1),
    "lambda-fn": ({"iam-role-permissions-boundary", "iam-role-policy-before-use", "logs-kms-encryption",
                   "tags-required"}, 1),
    "log-groups": ({"logs-kms-encryption", "logs-retention-set", "tags-required"}, 1),
    "mq-public": ({"mq-broker-logging", "mq-broker-multi-az", "mq-broker-not-public", "tags-required"}, 1),
    "multi-file": ({"security-group-described", "security-group-no-open-ingress", "subnet-no-public-ip-on-launch",
                    "tags-required", "vpc-default-security-group-closed", "vpc-flow-logs-enabled"}, 1),
    "plain-lookup": ({"iam-role-permissions-boundary", "tags-required"}, 1),
    "rabbitmq-classic": ({"rabbitmq-queue-dead-letter", "rabbitmq-queue-length-limit", "rabbitmq-queue-quorum"}, 0),
    "rds-fargate": ({"ecs-task-image-pinned", "iam-role-permissions-boundary", "iam-role-policy-before-use",
                     "logs-kms-encryption", "tags-required"}, 1),
    "remote-component": ({"tags-required"}, 0),
    "secret-json": ({"tags-required"}, 0),
    "sg-from-db-port": ({"tags-required"}, 0),
    "stack-config": ({"kms-key-policy", "logs-kms-key-usable", "secretsmanager-rotation", "tags-required"}, 1),
    "stack-reference": ({"security-group-described", "tags-required"}, 1),
    "vpc-flow-logs": ({"iam-role-permissions-boundary", "iam-role-policy-before-use", "logs-kms-encryption",
                       "tags-required"}, 1),
}


@pytest.fixture(scope="module")
def engine() -> Iterator[PolicyEngine]:
    with PolicyEngine() as running:
        yield running


@pytest.fixture(scope="module")
def judged(engine: PolicyEngine) -> dict[str, tuple[dict[str, Any], PolicyResult]]:
    results = {}
    for program in sorted(EXPECTED):
        document = synth_program(CORPUS / program, preview=True)
        results[program] = (document, evaluate_documents_result([document], env_name=None, engine=engine))
    return results


def test_the_corpus_is_every_program_in_the_folder() -> None:
    assert len(EXPECTED) >= 15
    assert sorted(p.name for p in CORPUS.iterdir() if (p / "Pulumi.yaml").is_file()) == sorted(EXPECTED)


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_each_program_reports_exactly_its_violations(program: str, judged: dict[str, Any]) -> None:
    _document, result = judged[program]
    rules, exit_code = EXPECTED[program]
    assert {finding.rule for finding in result.findings} == rules
    assert result.exit_code == exit_code
    # Every finding points at the program line that created its resource.
    assert all(finding.location is not None for finding in result.findings)


def test_rds_address_and_port_are_plausible_and_apply_runs_on_them(judged: dict[str, Any]) -> None:
    document, result = judged["rds-fargate"]
    assert document["outputs"]["db_port"] == 5432  # db.port.apply(int) ran on PostgreSQL's default port
    assert document["outputs"]["db_endpoint"].endswith(".us-east-1.rds.amazonaws.com:5432")
    (task,) = of_type(document, "aws:ecs/taskDefinition:TaskDefinition")
    environment = json.loads(task["inputs"]["containerDefinitions"])[0]["environment"]
    host = next(item["value"] for item in environment if item["name"] == "DB_HOST")
    assert host.startswith("db-") and host.endswith(".rds.amazonaws.com")
    # The address in `environment` is no credential: no plaintext-secret finding (mandatory before).
    assert not [f for f in result.findings if "secret" in f.rule]


def test_outputs_nobody_computes_are_unknown_and_apply_does_not_run(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: unknowns\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(
        "import pulumi\nimport pulumi_aws as aws\n"
        "db = aws.rds.Instance('db', engine='postgres', instance_class='db.t4g.micro', allocated_storage=20)\n"
        "calls = []\n"
        "ca = db.ca_cert_identifier.apply(lambda value: calls.append(value) or value)\n"
        "pulumi.export('ca', ca)\n"
        "pulumi.export('calls', pulumi.Output.from_input(0).apply(lambda _: len(calls)))\n")
    document = synth_program(tmp_path, preview=True)
    assert document["outputs"]["ca"] == UNKNOWN  # not None
    assert document["outputs"]["calls"] == 0  # the callback never saw the unknown


@pytest.mark.parametrize(("file", "content", "key", "reason"), [
    ("Pulumi.yaml", b"name: x\xff\nruntime: python\n", "(file)", "not UTF-8 text"),
    ("Pulumi.dev.yaml", b"- config\n", "(top level)", "a stack settings file is a mapping, not a list"),
    ("Pulumi.dev.yaml", b"config: [a, b]\n", "config", "is a list; give a mapping of key: value"),
    ("Pulumi.dev.yaml", b"config:\n  x: \xff\n", "(file)", "not UTF-8 text"),
], ids=["project-not-utf8", "settings-a-list", "config-a-list", "settings-not-utf8"])
def test_a_malformed_project_or_stack_settings_file_is_refused_naming_it(
        tmp_path: Path, file: str, content: bytes, key: str, reason: str) -> None:
    """Exit 2's ConfigError naming the file and the key (as a YAML syntax error in them already was), not a
    traceback from reading it."""
    from shared.errors import ConfigError

    (tmp_path / "Pulumi.yaml").write_text("name: settings\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("import pulumi\n")
    (tmp_path / file).write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        synth_program(tmp_path, preview=True)
    assert (refused.value.file, refused.value.key) == (str(tmp_path / file), key)
    assert reason in refused.value.reason


def test_unanswered_lookups_are_unknown_and_warned_with_their_line(judged: dict[str, Any]) -> None:
    document, result = judged["ecr-image-lookup"]
    assert document["warnings"] == ["__main__.py:8: lookup aws:ecr/getImage:getImage is not answered offline; "
                                    "its result is unknown, so what depends on it is undecided"]
    (task,) = of_type(document, "aws:ecs/taskDefinition:TaskDefinition")
    assert task["inputs"]["containerDefinitions"] == UNKNOWN
    assert any(na.rule == "ecs-task-image-pinned" for na in result.not_applicable if na.urn == task["urn"])
    # Answered lookups (the documented table) give plausible values and no warning.
    assert judged["rds-fargate"][0]["warnings"] == []


def test_an_unanswered_plain_lookup_gives_unknown_text_not_made_up_values(judged: dict[str, Any]) -> None:
    document, result = judged["plain-lookup"]
    assert document["warnings"] == ["__main__.py:9: lookup aws:ecr/getImage:getImage is not answered offline; its "
                                    "text fields are unknown and its other fields None (a plain invoke returns "
                                    "values, not Outputs)"]
    (task,) = of_type(document, "aws:ecs/taskDefinition:TaskDefinition")
    # json.dumps of a definition holding the unknown digest is unknown as a whole, as in a preview.
    assert task["inputs"]["containerDefinitions"] == UNKNOWN and document["outputs"]["image"] == UNKNOWN
    assert any(na.rule == "ecs-task-image-pinned" for na in result.not_applicable if na.urn == task["urn"])


def test_a_secret_read_from_secrets_manager_is_not_written_in_clear(judged: dict[str, Any]) -> None:
    document, result = judged["secret-json"]
    (broker,) = of_type(document, "aws:mq/broker:Broker")
    assert broker["lookup_inputs"] == ["users"]
    assert broker["inputs"]["users"][0]["username"] == "synth-stand-in"  # json.loads ran on the stand-in
    assert "no-plaintext-secrets" not in {finding.rule for finding in result.findings}


def test_the_programs_own_region_wins_over_an_env() -> None:
    document = synth_program(CORPUS / "stack-config", preview=True, region="eu-west-1", account_id="111111111111")
    assert document["outputs"]["region"] == "eu-central-1"
    assert ":eu-central-1:111111111111:" in document["outputs"]["log_group_arn"]


def test_fix_hints_name_platform_settings_only_for_platform_layers(engine: PolicyEngine,
                                                                    judged: dict[str, Any]) -> None:
    document, result = judged["log-groups"]
    program_hints = [f.message for f in result.findings if f.rule == "tags-required"]
    assert program_hints and not any("common_tags" in message for message in program_hints)
    as_layer = evaluate_documents_result([{**document, "layer": "compute", "env": "dev"}], env_name="dev",
                                         engine=engine)
    assert all("env.common_tags(layer)" in f.message for f in as_layer.findings if f.rule == "tags-required")
    # under the CLI a layer's stack carries no platform tag, only the CLI's own: its project is named after the layer
    for project, hinted in (("compute", True), ("billing-api", False)):
        under_cli = evaluate_documents_result([{**document, "stack_tags": {"pulumi:project": project}}],
                                              env_name="dev", engine=engine)
        messages = [f.message for f in under_cli.findings if f.rule == "tags-required"]
        assert messages and all(("env.common_tags(layer)" in message) is hinted for message in messages), project


def test_prod_levels_for_a_program_speak_of_its_own_code(engine: PolicyEngine, judged: dict[str, Any]) -> None:
    document, _result = judged["log-groups"]
    prod = evaluate_documents_result([document], env_name="prod", engine=engine)
    (unprotected, *_) = [f for f in prod.findings if f.rule == "prod-protect-stateful"]
    assert "pulumi.ResourceOptions(protect=True)" in unprotected.message and "shared." not in unprotected.message
    assert not [f.message for f in prod.findings if "shared." in f.message or "env file" in f.message]


def test_locations_point_into_each_module(judged: dict[str, Any]) -> None:
    _document, result = judged["multi-file"]
    where = {(f.rule, f.resource_name): f.location for f in result.findings}
    assert where[("security-group-no-open-ingress", "web")] == ("infra/service.py", 9)
    assert where[("vpc-flow-logs-enabled", "app-vpc")] == ("infra/network.py", 10)


def test_remote_components_are_reported_as_not_judged(judged: dict[str, Any]) -> None:
    document, _result = judged["remote-component"]
    assert document["warnings"] == ["not judged offline: components of multi-language packages, whose resources "
                                    "only their provider plugin creates: awsx:ecs:FargateService (web)"]


def test_unavailable_stack_references_are_unknown_not_key_errors(judged: dict[str, Any]) -> None:
    document, _result = judged["stack-reference"]
    assert document["outputs"]["subnets"] == UNKNOWN
    assert document["warnings"] == ["__main__.py:6: stack reference acme/network/dev is not available offline; "
                                    "its outputs are unknown"]


def test_cli_json_and_sarif_carry_locations_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, sarif_file = tmp_path / "findings.json", tmp_path / "out.sarif"
    code = run_main(policy_main, ["--program", str(CORPUS / "ecr-image-lookup"), "--json", str(out),
                                  "--sarif", str(sarif_file)])
    stdout = capsys.readouterr().out
    assert code == 1 and "lookup aws:ecr/getImage:getImage" in stdout
    findings = json.loads(out.read_text())
    assert {"path": "__main__.py", "line": 12} in [f["location"] for f in findings]
    run = json.loads(sarif_file.read_text())["runs"][0]
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in run["results"])
    assert run["invocations"][0]["executionSuccessful"] is True
    assert "getImage" in run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]


def test_a_failing_program_exits_2_and_still_writes_json_and_sarif(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "broken"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (program / "__main__.py").write_text(
        "import pulumi_aws as aws\n\naws.s3.BucketV2('data')\nraise ValueError('boom')\n")
    out, sarif_file = tmp_path / "findings.json", tmp_path / "out.sarif"
    code = run_main(policy_main, ["--program", str(program), "--json", str(out), "--sarif", str(sarif_file)])
    stderr = capsys.readouterr().err
    assert code == 2 and f"{program / '__main__.py'}:4 in <module>" in stderr and "ValueError: boom" in stderr
    (record,) = json.loads(out.read_text())
    assert record["enforcement"] == "error" and record["rule"] is None
    assert record["location"] == {"path": "__main__.py", "line": 4}
    assert record["error"]["exception"] == "ValueError: boom"
    run = json.loads(sarif_file.read_text())["runs"][0]
    assert run["results"] == []
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    failure = invocation["toolExecutionNotifications"][-1]
    assert failure["level"] == "error" and "ValueError: boom" in failure["message"]["text"]
    assert failure["locations"][0]["physicalLocation"]["region"]["startLine"] == 4


@pytest.mark.parametrize("source, line, exception", [
    ("import pulumi_aws as aws\nx = aws.s3.Bucket('b',\n", 2, "SyntaxError: '(' was never closed"),
    ("import pulumi\n\nif True:\npulumi.export('a', 1)\n", 4, "IndentationError: expected an indented block"),
])
def test_a_program_that_does_not_compile_gets_the_line_in_json_and_sarif(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, line: int, exception: str) -> None:
    """README (File formats): the error record's ``location`` and SARIF's notification at the failing line, for the
    most common program error too, whose traceback holds no frame of the program (the compiler raised it)."""
    program = tmp_path / "broken"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (program / "__main__.py").write_text(source)
    out, sarif_file = tmp_path / "findings.json", tmp_path / "out.sarif"
    code = run_main(policy_main, ["--program", str(program), "--json", str(out), "--sarif", str(sarif_file)])
    stderr = capsys.readouterr().err
    assert code == 2 and f"{program / '__main__.py'}:{line} in <module>" in stderr
    (record,) = json.loads(out.read_text())
    assert record["error"]["exception"].startswith(exception)
    assert record["location"] == {"path": "__main__.py", "line": line}
    failure = json.loads(sarif_file.read_text())["runs"][0]["invocations"][0]["toolExecutionNotifications"][-1]
    assert failure["level"] == "error" and exception in failure["message"]["text"]
    (location,) = failure["locations"]
    assert location["physicalLocation"]["region"]["startLine"] == line
    assert location["physicalLocation"]["artifactLocation"]["uri"].endswith("broken/__main__.py")
