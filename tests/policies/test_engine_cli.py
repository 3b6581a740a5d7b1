"""``python -m shared.policy`` (``nox -s policy``): acceptance on fixture programs, output files, exit codes.

The fixture programs (tests/policies/programs/) are written the way people usually write them; each
must report exactly the catalog ids it violates -- every one of them, and none it does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import REPO_ROOT
from shared.cli import run_main
from shared.dag import LAYERS
from shared.envs import env_names
from shared.policy.__main__ import main

PROGRAMS = Path(__file__).parent / "programs"

# What each program violates under the dev baseline (the default of a --program run).
VIOLATIONS: dict[str, set[str]] = {
    "ecr_defaults": {"ecr-scan-on-push", "ecr-immutable-tags", "ecr-kms-encryption", "ecr-lifecycle-policy",
                     "tags-required"},
    "fargate_public_latest": {"ecs-service-no-public-ip", "ecs-task-image-pinned", "ecs-task-logging",
                              "ecs-task-separate-roles", "ecs-task-read-only-root-fs", "ecs-task-non-root-user",
                              "ecs-service-circuit-breaker", "ecs-service-steady-state",
                              "ecs-cluster-container-insights", "iam-role-permissions-boundary",
                              "iam-role-policy-before-use", "tags-required"},
    "rabbitmq_admin": {"rabbitmq-no-admin-users", "rabbitmq-least-privilege", "rabbitmq-no-default-vhost",
                       "no-plaintext-secrets"},
    "appmesh_allow_all": {"appmesh-egress-filter-drop-all", "appmesh-discontinued", "tags-required"},
    "compliant": set(),
}
BLOCKING = {"ecr_defaults": 1, "fargate_public_latest": 1, "rabbitmq_admin": 1, "appmesh_allow_all": 0, "compliant": 0}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_main(main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("program", sorted(VIOLATIONS))
def test_program_reports_exactly_the_ids_it_violates(program, tmp_path, capsys):
    out = tmp_path / "out.json"
    code, stdout, _ = run(["--program", str(PROGRAMS / program), "--json", str(out)], capsys)
    findings = json.loads(out.read_text())
    assert {f["rule"] for f in findings} == VIOLATIONS[program]
    assert code == BLOCKING[program]
    assert all(f["env"] is None and f["layer"] is None for f in findings)  # a program is not a layer of an env
    assert ("FAIL" if code else "PASS") in stdout


def test_program_with_env_uses_that_envs_levels(tmp_path, capsys):
    out = tmp_path / "out.json"
    code, _, _ = run(["--program", str(PROGRAMS / "ecr_defaults"), "--env", "prod", "--json", str(out)], capsys)
    findings = json.loads(out.read_text())
    levels = {f["rule"]: f["enforcement"] for f in findings}
    assert levels["ecr-kms-encryption"] == levels["ecr-lifecycle-policy"] == "mandatory"
    assert levels["prod-protect-stateful"] == "mandatory"  # disabled in dev, so only with --env prod
    assert levels["tags-required"] == levels["ecr-scan-on-push"] == "mandatory"
    assert code == 1


def test_table_groups_by_env_layer_rule_and_sarif_is_written(tmp_path, capsys):
    sarif_file = tmp_path / "out.sarif"
    code, stdout, _ = run(["--program", str(PROGRAMS / "rabbitmq_admin"), "--sarif", str(sarif_file)], capsys)
    assert code == 1
    for rule in VIOLATIONS["rabbitmq_admin"]:
        assert rule in stdout
    log = json.loads(sarif_file.read_text())
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == VIOLATIONS["rabbitmq_admin"]
    assert {r["level"] for r in results} == {"error"}
    uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "tests/policies/programs/rabbitmq_admin/__main__.py"


@pytest.mark.parametrize(("argv", "message"), [
    (["no-such-env"], "unknown environment 'no-such-env'"),
    (["dev", "--program", "tests/policies/programs/compliant"], "either ENV names or --program"),
    (["--env", "dev"], "--env is for --program runs"),
    (["--program", "tests/policies/programs/does-not-exist"], "not a directory"),
    (["--program", "tests/policies/programs/compliant", "--env", "nope"], "unknown environment 'nope'"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_bad_input_exits_2_with_one_paragraph(argv, message, capsys):
    code, _, stderr = run(argv, capsys)
    assert code == 2
    assert message in stderr
    assert stderr.strip().count("\n") <= 1


def test_bad_env_file_exits_2(edit_env, capsys):
    edit_env("dev", lambda data: data["policy"]["enforcement"].update({"no-such-rule": "mandatory"}))
    code, _, stderr = run(["dev"], capsys)
    assert code == 2 and "policy.enforcement.no-such-rule" in stderr


def test_a_bad_catalog_anchor_stops_the_run_before_any_work(tmp_path, monkeypatch, capsys):
    """A reason given as a mapping (or any catalog entry the docs would refuse) is exit 2 naming the key, as the
    rest of the catalog is, not a PASS that the rule docs later refuse."""
    import yaml

    import shared.policy_catalog as catalog
    from shared.yamlio import load_yaml_mapping

    data = load_yaml_mapping(catalog.CATALOG_FILE)
    data["anchors_not_covered"]["checkov CKV_AWS_999"] = {"a": 1}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setattr(catalog, "CATALOG_FILE", path)
    catalog.load_rules.cache_clear()
    catalog.anchors_not_covered.cache_clear()
    monkeypatch.setattr("shared.policy.__main__.PolicyEngine",
                        lambda **_: pytest.fail("the packs started before the catalog was checked"))
    try:
        code, _, stderr = run(["dev"], capsys)
    finally:
        monkeypatch.undo()
        catalog.load_rules.cache_clear()
        catalog.anchors_not_covered.cache_clear()
    assert code == 2
    assert "anchors_not_covered.checkov CKV_AWS_999" in stderr and "needs a reason" in stderr


def test_the_real_process_exit_code_and_json(tmp_path):
    out = tmp_path / "findings.json"
    completed = subprocess.run(
        [sys.executable, "-m", "shared.policy", "--program", str(PROGRAMS / "rabbitmq_admin"), "--json", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "HOME": str(tmp_path)},
    )
    assert completed.returncode == 1, completed.stderr
    assert {f["rule"] for f in json.loads(out.read_text())} == VIOLATIONS["rabbitmq_admin"]


def test_all_envs_have_no_unsuppressed_mandatory_finding(tmp_path, capsys):
    """`nox -s policy` over dev, staging and prod exits 0 (the layers own this; the engine reports it)."""
    out = tmp_path / "all.json"
    code, stdout, _ = run(["--json", str(out)], capsys)
    findings = json.loads(out.read_text())
    blocking = [f for f in findings if f["enforcement"] == "mandatory" and not f["suppressed"]]
    assert blocking == [] and code == 0, blocking
    envs = env_names()  # the example envs (tests/spec_envs.py); CI's `nox -s policy` judges environments/
    assert {"dev", "staging", "prod"} <= set(envs) and {f["env"] for f in findings} <= set(envs)
    assert all(f["layer"] in LAYERS for f in findings)
    assert f"{len(envs) * len(LAYERS)} stack(s)" in stdout.replace("\n", " ")
