"""The offline policy engine: packs as processes, levels per env, suppressions, unknowns, output shapes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT
from shared.errors import ConfigError, UsageError
from shared.policy.enforcement import enforcement_for
from shared.policy.engine import (
    PolicyEngine,
    PolicyEngineError,
    evaluate_documents,
    evaluate_documents_result,
    pack_config,
    validate_document,
)
from shared.policy.findings import Finding
from shared.policy.packs import PackDefinitionError, load_policies
from shared.policy.reporting import findings_json, rule_help, sarif
from shared.policy_catalog import PACKS, load_rules, rules_of_pack
from shared.policy_support import UNKNOWN_SENTINELS
from shared.synth.engine import synth_program
from tests.policies.resources import GOOD_TAGS, aws_provider, document, res, rule_ids
from tests.policies.tokens import REPO

PROGRAMS = Path(__file__).parent / "programs"
FINDING_KEYS = ["rule", "pack", "enforcement", "env", "layer", "urn", "resource_type", "message", "suppressed",
                "reason", "severity"]


def bad_repo(name: str = "inference", **opts: Any) -> dict[str, Any]:
    """An ECR repository violating ecr-scan-on-push (M everywhere) and ecr-lifecycle-policy (A, A, M)."""
    return res(REPO, name, {"imageTagMutability": "IMMUTABLE", "tags": GOOD_TAGS,
                            "encryptionConfigurations": [{"encryptionType": "KMS"}]}, **opts)


# -- packs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pack", PACKS)
def test_every_catalog_rule_has_exactly_one_file_in_its_pack(pack):
    files = sorted(p.stem for p in (REPO_ROOT / "policies" / pack / "rules").glob("*.py"))
    assert files == sorted(rule.id for rule in rules_of_pack(pack))
    assert sorted(policy.name for policy in load_policies(REPO_ROOT / "policies" / pack)) == files


def test_no_rule_id_is_in_two_packs():
    all_files = [p.stem for p in (REPO_ROOT / "policies").glob("*/rules/*.py")]
    assert len(all_files) == len(set(all_files)) == len(load_rules())


def test_running_packs_report_the_catalog_ids(policy_engine):
    info = policy_engine.analyzer_info()
    for pack in PACKS:
        assert info[pack].name == f"ml-platform-{pack}"
        assert sorted(p.name for p in info[pack].policies) == sorted(rule.id for rule in rules_of_pack(pack))
        assert all(p.description for p in info[pack].policies)


@pytest.mark.parametrize("pack", PACKS)
def test_pack_files_are_a_real_crossguard_pack(pack):
    directory = REPO_ROOT / "policies" / pack
    project = yaml.safe_load((directory / "PulumiPolicy.yaml").read_text())
    assert project["name"] == f"ml-platform-{pack}" and project["runtime"]["name"] == "python"
    requirements = (directory / "requirements.txt").read_text()
    assert "pulumi==3.272.0" in requirements and "pulumi-policy==1.21.0" in requirements


def test_every_rule_is_exercised_by_the_rule_tests():
    rule_tests = [p for p in Path(__file__).parent.glob("test_*.py") if not p.name.startswith("test_engine")]
    texts = "".join(p.read_text() for p in rule_tests)
    untested = [rule_id for rule_id in load_rules() if f'"{rule_id}"' not in texts]
    assert untested == []


def _pack_copy(tmp_path: Path, pack: str = "rabbitmq") -> Path:
    target = tmp_path / "policies" / pack
    shutil.copytree(REPO_ROOT / "policies" / pack, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_a_missing_rule_file_refuses_to_load(tmp_path):
    pack_dir = _pack_copy(tmp_path)
    (pack_dir / "rules" / "rabbitmq-queue-quorum.py").unlink()
    with pytest.raises(PackDefinitionError, match="without a file: rabbitmq-queue-quorum"):
        load_policies(pack_dir)


def test_a_rule_file_outside_the_catalog_refuses_to_load(tmp_path):
    pack_dir = _pack_copy(tmp_path)
    shutil.copy(pack_dir / "rules" / "rabbitmq-queue-quorum.py", pack_dir / "rules" / "rabbitmq-queue-fast.py")
    with pytest.raises(PackDefinitionError, match=r"not in policies/catalog\.yaml: rabbitmq-queue-fast"):
        load_policies(pack_dir)


def test_a_rule_file_in_another_pack_than_its_catalog_entry_names_both(tmp_path):
    # README, "Add a rule": a file put in policies/rabbitmq/rules/ for a rule the catalog lists under `pack: aws` is
    # not "not in policies/catalog.yaml" (it is there): the error names the file, the catalog key and both packs.
    pack_dir, aws_dir = _pack_copy(tmp_path), _pack_copy(tmp_path, "aws")
    (aws_dir / "rules" / "kms-key-rotation.py").rename(pack_dir / "rules" / "kms-key-rotation.py")
    wrong = (f"{pack_dir / 'rules' / 'kms-key-rotation.py'}: policies/catalog.yaml has rules.kms-key-rotation.pack "
             "'aws', not 'rabbitmq'")
    for loaded in (pack_dir, aws_dir):  # the pack with the stray file, and the pack missing it
        with pytest.raises(PackDefinitionError) as raised:
            load_policies(loaded)
        message = str(raised.value)
        assert wrong in message, message
        assert "not in policies/catalog.yaml" not in message and "without a file" not in message


def test_nox_policy_refuses_rule_files_the_catalog_lacks_with_exit_2_before_starting_a_pack(tmp_path, monkeypatch,
                                                                                            capsys):
    # README, "Add a rule": a rule file written before its catalog entry is named, not a pack's traceback
    import shared.policy.engine
    from shared.cli import run_main
    from shared.policy.__main__ import main

    for pack in ("aws", "platform"):
        _pack_copy(tmp_path, pack)
    pack_dir = _pack_copy(tmp_path, "rabbitmq")
    shutil.copy(pack_dir / "rules" / "rabbitmq-queue-quorum.py", pack_dir / "rules" / "rabbitmq-queue-fast.py")
    monkeypatch.setattr(shared.policy.engine, "POLICIES_DIR", tmp_path / "policies")
    started = []
    monkeypatch.setattr(shared.policy.engine.PolicyEngine, "__enter__", lambda self: started.append(self))
    assert run_main(main, ["dev"]) == 2
    err = capsys.readouterr().err
    assert "rabbitmq-queue-fast" in err and "policies/catalog.yaml" in err and "Traceback" not in err
    assert not started


def test_a_pack_that_fails_to_start_is_an_engine_error_with_its_output(tmp_path, monkeypatch):
    pack_dir = _pack_copy(tmp_path)
    (pack_dir / "rules" / "rabbitmq-queue-quorum.py").unlink()
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # the copy is outside the repo
    with PolicyEngine(packs=["rabbitmq"], policies_dir=tmp_path / "policies") as engine:
        with pytest.raises(PolicyEngineError, match=r"(?s)exited with code 1.*rabbitmq-queue-quorum"):
            engine.analyzer_info()


# -- enforcement levels ------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_levels_are_the_catalog_column_of_the_env_baseline(env):
    levels = enforcement_for(env).levels
    assert levels == {rule_id: rule.level_for(env) for rule_id, rule in load_rules().items()}


def test_program_runs_use_the_dev_baseline_without_suppressions():
    settings = enforcement_for(None)
    assert settings.baseline == "dev" and settings.suppressions == ()
    assert settings.levels["ecr-lifecycle-policy"] == "advisory"


def test_findings_carry_the_level_of_their_env(policy_findings):
    levels = {env: {f["enforcement"] for f in policy_findings([bad_repo()], env=env)
                    if f["rule"] == "ecr-lifecycle-policy"} for env in ("dev", "staging", "prod")}
    assert levels == {"dev": {"advisory"}, "staging": {"advisory"}, "prod": {"mandatory"}}


def test_one_engine_serves_several_envs_with_their_own_levels(policy_engine):
    pids = {pack: process.process.pid for pack, process in policy_engine.packs.items() if process.process}
    dev = evaluate_documents([document([bad_repo()], env="dev", stack="dev")], "dev", engine=policy_engine)
    prod = evaluate_documents([document([bad_repo()], env="prod", stack="prod")], "prod", engine=policy_engine)
    dev_again = evaluate_documents([document([bad_repo()], env="dev", stack="dev")], "dev", engine=policy_engine)
    kms = [[f.enforcement for f in run if f.rule == "ecr-lifecycle-policy"] for run in (dev, prod, dev_again)]
    assert kms == [["advisory"], ["mandatory"], ["advisory"]]
    assert {pack: process.process.pid for pack, process in policy_engine.packs.items() if process.process} == pids


def test_an_env_may_tighten_a_rule(edit_env, policy_findings):
    edit_env("dev", lambda data: data["policy"]["enforcement"].update({"ecr-lifecycle-policy": "mandatory"}))
    [finding] = [f for f in policy_findings([bad_repo()], env="dev") if f["rule"] == "ecr-lifecycle-policy"]
    assert finding["enforcement"] == "mandatory"


def test_a_baseline_selects_another_column(edit_env, policy_findings):
    edit_env("dev", lambda data: data["policy"].update({"baseline": "prod"}))
    assert enforcement_for("dev").baseline == "prod"
    [finding] = [f for f in policy_findings([bad_repo()], env="dev") if f["rule"] == "ecr-lifecycle-policy"]
    assert finding["enforcement"] == "mandatory"


def test_a_rule_disabled_in_a_non_prod_env_is_not_run(edit_env, policy_findings):
    edit_env("dev", lambda data: data["policy"]["enforcement"].update({"ecr-scan-on-push": "disabled"}))
    assert "ecr-scan-on-push" not in rule_ids(policy_findings([bad_repo()], env="dev"))


def test_loosening_a_prod_mandatory_rule_is_bad_input(edit_env):
    edit_env("prod", lambda data: data["policy"]["enforcement"].update({"ecr-scan-on-push": "advisory"}))
    with pytest.raises(ConfigError, match=r"policy\.enforcement\.ecr-scan-on-push"):
        enforcement_for("prod")


def test_explicit_enforcement_overrides_and_is_validated(policy_findings):
    [finding] = [f for f in policy_findings([bad_repo()], env="dev", enforcement={"ecr-lifecycle-policy": "mandatory"})
                 if f["rule"] == "ecr-lifecycle-policy"]
    assert finding["enforcement"] == "mandatory"
    with pytest.raises(UsageError, match="unknown rule id 'no-such-rule'"):
        enforcement_for("dev", {"no-such-rule": "mandatory"})
    with pytest.raises(UsageError, match="level must be one of"):
        enforcement_for("dev", {"ecr-lifecycle-policy": "fatal"})


def test_pack_config_is_the_policy_pack_config_of_the_real_cli():
    config = pack_config(enforcement_for("prod"), "platform", [document([res(
        "rabbitmq:index/user:User", "u", {"password": "p"}, secret_inputs=["password"])])])
    assert set(config) == {rule.id for rule in rules_of_pack("platform")}
    assert config["prod-protect-stateful"] == {"enforcementLevel": "mandatory"}
    secrets = config["no-plaintext-secrets"]
    assert secrets["secretInputs"] == {"urn:pulumi:test::test::rabbitmq:index/user:User::u": ["password"]}
    assert secrets["literalInputs"] == {"urn:pulumi:test::test::rabbitmq:index/user:User::u": ["password"]}
    json.dumps(config)  # written as a --policy-pack-config file


# -- suppressions ------------------------------------------------------------------------------------


REASON = "scanning is done by the registry's enhanced scanning, see ADR-12"


@pytest.mark.parametrize("pattern", ["inference", "infer*", "urn:pulumi:test::test::aws:ecr/repository:Repository::*"])
def test_a_suppressed_finding_stays_reported_with_its_reason_and_never_fails(edit_env, policy_result, pattern):
    edit_env("dev", lambda data: data["policy"]["suppressions"].append(
        {"rule": "ecr-scan-on-push", "resource": pattern, "reason": REASON}))
    result = policy_result([bad_repo("inference"), bad_repo("training")], env="dev")
    scan = {f.resource_name: f for f in result.findings if f.rule == "ecr-scan-on-push"}
    assert scan["inference"].suppressed and scan["inference"].reason == REASON
    assert not scan["inference"].blocking
    if pattern == "inference" or pattern.startswith("infer"):
        assert not scan["training"].suppressed and scan["training"].blocking
    # the suppression is for one rule only
    assert all(not f.suppressed for f in result.findings if f.rule != "ecr-scan-on-push")


def test_suppressing_every_blocking_finding_makes_the_run_pass(edit_env, policy_result):
    edit_env("dev", lambda data: data["policy"]["suppressions"].append(
        {"rule": "ecr-scan-on-push", "resource": "*", "reason": REASON}))
    result = policy_result([bad_repo()], env="dev")
    assert result.findings and result.blocking == [] and result.exit_code == 0


def test_a_short_suppression_reason_is_bad_input(edit_env):
    edit_env("dev", lambda data: data["policy"]["suppressions"].append(
        {"rule": "ecr-scan-on-push", "resource": "*", "reason": "because"}))
    with pytest.raises(ConfigError, match=r"policy\.suppressions\.0\.reason"):
        enforcement_for("dev")


# -- unknown values, missing values, odd documents ----------------------------------------------------


def _unknown_like(value: Any) -> str:
    if isinstance(value, bool):
        return "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
    if isinstance(value, (int, float)):
        return "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
    if isinstance(value, list):
        return "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
    if isinstance(value, dict):
        return "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
    return "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _deep_unknown(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_unknown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_unknown(item) for item in value]
    return _unknown_like(value)


@pytest.fixture(scope="module")
def fixture_resources() -> list[dict[str, Any]]:
    """Every resource of the fixture programs (ECS, ECR, IAM, VPC, Cloud Map, App Mesh, RabbitMQ, MQ...)."""
    resources: list[dict[str, Any]] = []
    for program in sorted(PROGRAMS.iterdir()):
        resources.extend(synth_program(program)["resources"])
    return resources


def _with_inputs(resources: list[dict[str, Any]], change: Any) -> dict[str, Any]:
    changed = [{**r, "inputs": change(r["inputs"])} for r in resources]
    return {"project": "unknowns", "stack": "dev", "layer": None, "env": "dev", "resources": changed}


@pytest.mark.parametrize("mode", ["top-level", "leaves"])
def test_unknown_inputs_are_not_applicable_never_a_crash_or_a_new_finding(policy_engine, fixture_resources, mode):
    def change(inputs: dict[str, Any]) -> dict[str, Any]:
        if mode == "top-level":
            return {key: _unknown_like(value) for key, value in inputs.items()}
        return _deep_unknown(inputs)

    known = evaluate_documents_result([_with_inputs(fixture_resources, dict)], "dev", engine=policy_engine)
    unknown = evaluate_documents_result([_with_inputs(fixture_resources, change)], "dev", engine=policy_engine)
    # An unknown value can hide a violation (not-applicable) but never create one: whatever fires with
    # unknown inputs fires on the known ones too (an omitted input keeps its default, which may violate).
    assert {(f.rule, f.urn) for f in unknown.findings} <= {(f.rule, f.urn) for f in known.findings}
    assert len(unknown.findings) < len(known.findings)
    assert not any(f.message.startswith("can't run policy") for f in unknown.findings)
    undecided = {na.rule for na in unknown.not_applicable if "known" in na.reason}
    assert {"ecs-service-no-public-ip", "rabbitmq-least-privilege", "tags-required"} <= undecided


def test_missing_and_null_inputs_never_crash(policy_engine, fixture_resources):
    emptied = _with_inputs(fixture_resources, lambda inputs: {})
    nulled = _with_inputs(fixture_resources, lambda inputs: {key: None for key in inputs})
    for doc in (emptied, nulled):
        evaluate_documents_result([doc], "dev", engine=policy_engine)  # raises PolicyEngineError on a crash


@pytest.mark.parametrize(("document_", "key"), [
    ([], "(top level)"),
    ({"resources": {}}, "resources"),
    ({"resources": [{"type": "x", "name": "y"}]}, "resources.0.urn"),
    ({"resources": [{"urn": "u", "type": "x", "name": "y", "inputs": []}]}, "resources.0.inputs"),
])
def test_malformed_documents_are_bad_input(document_, key):
    with pytest.raises(ConfigError) as error:
        validate_document(document_)
    assert error.value.key == key


def test_unknown_sentinels_match_pulumi_policy():
    from pulumi_policy import proxy

    assert {value for name, value in vars(proxy).items() if name.startswith("UNKNOWN_") and name.endswith("_VALUE")} \
        == set(UNKNOWN_SENTINELS)


# -- stack rules, providers, output shapes ------------------------------------------------------------


def test_stack_rule_findings_name_the_resource(policy_findings):
    findings = [f for f in policy_findings([bad_repo()]) if f["rule"] == "ecr-lifecycle-policy"]
    assert [(f["urn"], f["resource_type"]) for f in findings] == [
        ("urn:pulumi:test::test::aws:ecr/repository:Repository::inference", REPO)]


def test_findings_json_has_exactly_the_documented_shape(policy_findings):
    provider = aws_provider(tags=GOOD_TAGS)
    findings = policy_findings([bad_repo(provider=provider)], env="staging")
    assert findings
    for finding in findings:
        assert list(finding) == FINDING_KEYS
        assert finding["pack"] in PACKS and finding["enforcement"] in ("advisory", "mandatory")
        assert finding["env"] == "staging" and finding["layer"] is None
        assert finding["suppressed"] is False and finding["reason"] is None
        assert isinstance(finding["message"], str) and finding["message"]
        assert not finding["message"].startswith(load_rules()[finding["rule"]].summary)  # no description prefix
    text = findings_json([Finding(**f) for f in findings])
    assert json.loads(text) == findings


def test_sarif_has_rule_metadata_levels_and_suppressions():
    findings = [
        Finding("ecr-scan-on-push", "aws", "mandatory", "prod", "compute", "urn:pulumi:prod::compute::x::repo", REPO,
                "set scan_on_push", suppressed=True, reason=REASON),
        Finding("tags-required", "platform", "advisory", "dev", "network", "urn:pulumi:dev::network::y::vpc",
                "aws:ec2/vpc:Vpc", "add tags"),
    ]
    log = sarif(findings)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(load_rules())
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "none")
        assert rule["help"]["text"].startswith(rule_help(rule["id"]))  # the rule module's docstring
        assert len(rule["help"]["text"]) > len(rule["shortDescription"]["text"])
    first, second = run["results"]
    assert rules[first["ruleIndex"]]["id"] == "ecr-scan-on-push"
    assert (first["level"], second["level"]) == ("error", "warning")
    assert first["suppressions"] == [{"kind": "external", "status": "accepted", "justification": REASON}]
    assert "suppressions" not in second
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "stacks/compute/__main__.py"
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == findings[0].urn
    assert re.fullmatch(r"[0-9a-f]{64}", first["partialFingerprints"]["policyFinding/v1"])


def test_a_crashing_rule_is_an_engine_error_naming_the_pack_and_resource(tmp_path, monkeypatch):
    pack_dir = _pack_copy(tmp_path)
    rule = pack_dir / "rules" / "rabbitmq-exchange-durable.py"
    rule.write_text(rule.read_text().replace(
        "    durable = get(", "    raise RuntimeError('rule bug: boom')\n    durable = get("))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    exchange = res("rabbitmq:index/exchange:Exchange", "requests", {"name": "ml.requests", "vhost": "dev"})
    with PolicyEngine(packs=["rabbitmq"], policies_dir=tmp_path / "policies") as engine:
        with pytest.raises(PolicyEngineError) as error:
            evaluate_documents([document([exchange])], "dev", engine=engine)
    message = str(error.value)
    assert "pack 'rabbitmq'" in message and "::requests" in message and "boom" in message
    assert "raised by rule rabbitmq-exchange-durable" in message
    assert error.value.exit_code == 1


def test_a_stack_of_thousands_of_resources_is_evaluated(policy_engine):
    """Requests go out in a bounded window: thousands of pending calls once made the packs cancel some."""
    queues = [res("rabbitmq:index/queue:Queue", f"q{i}", {"name": f"s{i}.work", "vhost": "dev",
                                                          "settings": {"durable": i % 500 != 0}})
              for i in range(1500)]
    result = evaluate_documents_result([document(queues)], "dev", engine=policy_engine)
    assert result.resources == 1500
    assert len([f for f in result.findings if f.rule == "rabbitmq-queue-durable"]) == 3


def test_the_table_prints_messages_verbatim():
    from io import StringIO

    from rich.console import Console

    from shared.policy.findings import PolicyResult
    from shared.policy.reporting import render_table

    finding = Finding("ecr-scan-on-push", "aws", "advisory", "dev", "compute", "urn:pulumi:dev::c::t::repo", REPO,
                      "set image_scanning_configuration=[bold]{'scan_on_push': True}[/bold]", suppressed=True,
                      reason="[red]accepted[/red] until the registry scan lands")
    out = StringIO()
    render_table(PolicyResult(findings=[finding], resources=1, documents=1), Console(file=out, width=400))
    text = out.getvalue()
    assert "[bold]{'scan_on_push': True}[/bold]" in text
    assert "[red]accepted[/red] until the registry scan lands" in text
    assert "env dev / layer compute" in text and "PASS" in text
