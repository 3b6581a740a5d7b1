"""Outputs are checked before any work, options that do not apply are refused, and the policy
report ends with what a CI log reader needs: every env's counts and the blocking findings last."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from shared import REPO_ROOT
from shared.cli import check_output_path
from shared.errors import UsageError
from shared.policy.findings import Finding, PolicyResult
from shared.policy.reporting import render_table
from tests.spec_envs import SPEC_CATALOG

PROGRAM = REPO_ROOT / "tests" / "fixtures" / "programs" / "aws_app"


def run(module: str, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=False)


def test_a_file_shaped_build_folder_exits_2_before_the_synth(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.write_text("not a folder")
    result = run("shared.synth", "dev", "--build-dir", str(build))
    assert result.returncode == 2, result.stderr
    assert str(build) in result.stderr and "is a file" in result.stderr and "Traceback" not in result.stderr


def test_json_pointing_at_a_folder_exits_2_before_the_packs_run(tmp_path: Path) -> None:
    result = run("shared.policy", "dev", "--json", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--json" in result.stderr and "is a folder" in result.stderr
    assert "PASS" not in result.stdout


def test_sarif_under_a_file_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("")
    with pytest.raises(UsageError, match="is a file"):
        check_output_path(blocker / "findings.sarif", "--sarif")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    with pytest.raises(UsageError, match="not writable"):
        check_output_path(folder / "x.json", "--json")


def test_a_missing_nested_output_folder_is_fine(tmp_path: Path) -> None:
    check_output_path(tmp_path / "a" / "b" / "c.json", "--json")
    check_output_path(tmp_path / "new-build", "build folder", directory=True)


def test_bench_refuses_an_unwritable_out_at_once(tmp_path: Path) -> None:
    result = run("shared.bench", "--out", str(tmp_path))
    assert result.returncode == 2 and "--out" in result.stderr and "is a folder" in result.stderr


@pytest.mark.parametrize("option", [["--out", "x"], ["--env", "prod"]])
def test_synth_refuses_program_options_for_env_runs(option: list[str], tmp_path: Path) -> None:
    result = run("shared.synth", "dev", *option, "--build-dir", str(tmp_path / "b"))
    assert result.returncode == 2 and option[0] in result.stderr and "only applies with --program" in result.stderr
    assert not (tmp_path / "b").exists()


def empty_program(tmp_path: Path) -> Path:
    """A program that exports a value and declares no resource."""
    program = tmp_path / "empty"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: empty\nruntime: python\n")
    (program / "__main__.py").write_text("import pulumi\npulumi.export('x', 1)\n")
    return program


def test_a_program_with_no_resources_is_a_warning(tmp_path: Path) -> None:
    result = run("shared.synth", "--program", str(empty_program(tmp_path)), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "declared no cloud resources" in result.stdout


def test_policy_over_a_program_with_no_resources_warns_too(tmp_path: Path) -> None:
    # a PASS over 0 resources (a wrong folder, resources behind `if __name__ == "__main__"`) must not look clean
    result = run("shared.policy", "--program", str(empty_program(tmp_path)), "--sarif", str(tmp_path / "out.sarif"))
    assert result.returncode == 0, result.stderr
    assert "declared no cloud resources" in result.stdout
    (invocation,) = json.loads((tmp_path / "out.sarif").read_text())["runs"][0]["invocations"]
    assert any("declared no cloud resources" in n["message"]["text"] for n in invocation["toolExecutionNotifications"])


def _finding(env: str, rule: str, enforcement: str, suppressed: bool = False) -> Finding:
    return Finding(rule=rule, pack="aws", enforcement=enforcement, env=env, layer="network",
                   urn=f"urn:pulumi:{env}::network::aws:ec2/vpc:Vpc::main", resource_type="aws:ec2/vpc:Vpc",
                   message=f"{rule} says so", suppressed=suppressed, reason=None)


def test_the_report_lists_every_env_and_ends_with_the_blocking_findings() -> None:
    result = PolicyResult(envs=["dev", "staging", "prod"], resources=3, documents=3)
    result.findings = [_finding("dev", f"advisory-{i}", "advisory") for i in range(18)]
    result.findings.append(_finding("staging", "the-blocker", "mandatory"))
    stream = io.StringIO()
    render_table(result, Console(file=stream, width=200))
    text = stream.getvalue()
    summary = text[text.index("summary per env"):]
    for env in ("dev", "staging", "prod"):
        assert f"│ {env}" in summary
    tail = text.rstrip().splitlines()
    assert "the-blocker" in tail[-1] and tail[-1].startswith("FAIL")
    assert "the-blocker [staging/network]" in text[text.index("blocking findings"):]


def test_a_suppression_that_matched_nothing_is_a_warning(env_dir: Path) -> None:
    dev = env_dir / "dev.yaml"
    dev.write_text(dev.read_text().replace(
        "  suppressions: []",
        "  suppressions:\n    - {rule: ecr-scan-on-push, resource: gone-repo, reason: the repo was removed}"))
    result = PolicyResult(envs=["dev"])
    stream = io.StringIO()
    render_table(result, Console(file=stream, width=200))
    assert "suppression of ecr-scan-on-push for 'gone-repo' matched no finding" in stream.getvalue()


def test_an_error_in_a_program_shows_its_own_file_and_line(tmp_path: Path) -> None:
    program = tmp_path / "typo"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: typo\nruntime: python\n")
    (program / "settings.py").write_text("def lookup(table):\n    return table['nme']\n")
    (program / "__main__.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent))\n"
        "import pulumi\nfrom settings import lookup\n\npulumi.export('name', lookup({'name': 'x'}))\n")
    result = run("shared.synth", "--program", str(program), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "KeyError: 'nme'" in result.stderr
    assert f"{program / 'settings.py'}:2 in lookup" in result.stderr
    assert f"{program / '__main__.py'}:6" in result.stderr
    assert "site-packages" not in result.stderr and "Traceback" not in result.stderr


def test_a_routing_key_nobody_consumes_is_a_warning(tmp_path: Path) -> None:
    from shared.catalog import CATALOG_ENV_VAR

    catalog = tmp_path / "catalog.yaml"
    text = SPEC_CATALOG.read_text()
    catalog.write_text(text.replace("      requests: [inference.request]\n",
                                    "      requests: [inference.request, inference.batch]\n", 1))
    result = subprocess.run([sys.executable, "-m", "shared.synth", "dev", "--build-dir", str(tmp_path / "b")],
                            capture_output=True, text=True, cwd=REPO_ROOT, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), CATALOG_ENV_VAR: str(catalog)})
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())  # rich wraps long lines
    assert "services.preprocess.publishes.requests: 'inference.batch' is consumed by no service" in shown


def test_the_shipped_catalog_has_no_warnings() -> None:
    from shared.catalog import load_catalog
    from tests.spec_envs import user_envs

    with user_envs():  # shared/catalog.yaml, the catalog that deploys
        assert load_catalog().warnings() == []


@pytest.mark.parametrize("module", ["shared.synth", "shared.policy"])
def test_an_empty_env_with_a_program_is_an_unknown_env(module: str, tmp_path: Path) -> None:
    """``--env "$ENV"`` with ENV unset in a CI step: the program is not synthesized with no env's account."""
    out = ["--out", str(tmp_path / "out")] if module == "shared.synth" else []
    result = run(module, "--program", str(PROGRAM), "--env", "", *out)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown environment ''" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_policy_refuses_an_empty_env_without_a_program() -> None:
    result = run("shared.policy", "--env", "")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--env is for --program runs" in result.stderr


def test_an_advisory_rules_many_findings_of_a_layer_are_one_row_and_a_mandatory_ones_stay_apart() -> None:
    """Staging's prod-protect-stateful was 55 rows of the same words: the table folds an advisory rule's findings of
    one layer (from FOLDED_ADVISORIES on) into one row naming every resource; the summary still counts each, and
    every mandatory or suppressed finding keeps its own row."""
    from shared.policy.reporting import FOLDED_ADVISORIES

    def named(rule: str, enforcement: str, name: str, suppressed: bool = False) -> Finding:
        return Finding(rule=rule, pack="aws", enforcement=enforcement, env="staging", layer="network",
                       urn=f"urn:pulumi:staging::network::aws:ec2/subnet:Subnet::{name}",
                       resource_type="aws:ec2/subnet:Subnet", message=f"'{name}' is not protected",
                       suppressed=suppressed, reason="known" if suppressed else None)

    many = [named("noisy", "advisory", f"subnet-{i}") for i in range(FOLDED_ADVISORIES + 2)]
    few = [named("rare", "advisory", f"few-{i}") for i in range(FOLDED_ADVISORIES - 1)]
    blockers = [named("strict", "mandatory", f"strict-{i}") for i in range(FOLDED_ADVISORIES + 1)]
    result = PolicyResult(envs=["staging"], resources=20, documents=1)
    result.findings = [*many, *few, *blockers, named("noisy", "advisory", "quiet", suppressed=True)]
    stream = io.StringIO()
    render_table(result, Console(file=stream, width=400))
    text = stream.getvalue()
    table = text[:text.index("summary per env")]
    assert f"{len(many)} resources: " in table and all(f"subnet-{i} (" in table for i in range(len(many)))
    assert table.count("'subnet-") == 1 and f"(the same for the other {len(many) - 1})" in table
    assert all(table.count(f"'few-{i}'") == 1 for i in range(len(few)))  # below the fold: a row each
    assert all(table.count(f"'strict-{i}'") == 1 for i in range(len(blockers)))  # mandatory: a row each
    assert "'quiet'" in table  # suppressed: its own row, with its reason
    assert f"{len(many) + len(few)} advisory, 1 suppressed" in text  # the summary counts every finding
