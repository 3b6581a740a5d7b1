"""Rule metadata (``policies/catalog.yaml`` section ``metadata``) and what is built from it: the
catalog's validation, SARIF's rule descriptors, the findings JSON's severity, ``--explain`` and the
generated rule table of ``policies/README.md``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.cli import run_main
from shared.errors import ConfigError
from shared.policy import ruledocs
from shared.policy.__main__ import main
from shared.policy.findings import Finding
from shared.policy.reporting import explain, sarif
from shared.policy_catalog import SECURITY_SEVERITY, load_rules
from shared.yamlio import load_yaml_mapping
from tests.policies.tokens import REPO


def test_every_rule_has_severity_docs_and_remediation():
    for rule_id, rule in load_rules().items():
        assert rule.meta.severity in SECURITY_SEVERITY, rule_id
        assert rule.meta.docs.startswith("https://"), rule_id
        assert len(rule.meta.remediation) >= 20, rule_id


def test_security_severity_follows_githubs_buckets():
    # GitHub: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 3.9 or less low.
    bucket = {"critical": (9.0, 10.0), "high": (7.0, 8.9), "medium": (4.0, 6.9), "low": (0.1, 3.9)}
    for severity, number in SECURITY_SEVERITY.items():
        low, high = bucket[severity]
        assert low < float(number) <= high or low <= float(number) <= high


def _catalog_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Any) -> None:
    import yaml

    import shared.policy_catalog as catalog

    data = load_yaml_mapping(catalog.CATALOG_FILE)
    edit(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setattr(catalog, "CATALOG_FILE", path)
    catalog.load_rules.cache_clear()


@pytest.mark.parametrize(("edit", "key", "reason"), [
    (lambda d: d["metadata"].pop("ecr-scan-on-push"), "metadata.ecr-scan-on-push", "missing"),
    (lambda d: d["metadata"].__setitem__("no-such-rule", d["metadata"]["ecr-scan-on-push"]),
     "metadata.no-such-rule", "not a rule id"),
    (lambda d: d["metadata"]["ecr-scan-on-push"].__setitem__("severity", "severe"),
     "metadata.ecr-scan-on-push.severity", "low"),
    (lambda d: d["metadata"]["ecr-scan-on-push"]["equivalents"].__setitem__("checkov", ["CKV_AWS163"]),
     "metadata.ecr-scan-on-push.equivalents.checkov", "not a checkov id"),
    (lambda d: d["metadata"]["ecr-scan-on-push"].__setitem__("docs", "docs.aws.amazon.com/ecr"),
     "metadata.ecr-scan-on-push.docs", "pattern"),
    (lambda d: d["rules"]["logs-retention-floor"]["parameters"].pop("staging"),
     "rules.logs-retention-floor.parameters", "same parameter names"),
], ids=["missing", "stray", "severity", "checkov-id", "docs-not-https", "parameters-per-baseline"])
def test_the_catalog_refuses_bad_metadata_naming_the_key(tmp_path, monkeypatch, edit, key, reason):
    import shared.policy_catalog as catalog

    _catalog_with(tmp_path, monkeypatch, edit)
    try:
        with pytest.raises(ConfigError) as error:
            catalog.load_rules()
        assert key in str(error.value) and reason in str(error.value)
        assert error.value.exit_code == 2
    finally:
        monkeypatch.undo()
        catalog.load_rules.cache_clear()


# -- SARIF ------------------------------------------------------------------------------------------

SARIF_LEVELS = {"none", "note", "warning", "error"}


def _check_sarif_2_1_0(log: dict[str, Any]) -> None:
    """The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) our log uses: required
    properties, enums, types and the uniqueness the schema demands."""
    assert log["version"] == "2.1.0" and isinstance(log["runs"], list)
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert isinstance(driver["name"], str) and driver["name"]
        ids = [rule["id"] for rule in driver["rules"]]
        assert len(ids) == len(set(ids))
        for rule in driver["rules"]:
            assert isinstance(rule["id"], str)
            for message in ("shortDescription", "fullDescription", "help"):
                assert isinstance(rule[message]["text"], str)  # multiformatMessageString requires text
            assert re.fullmatch(r"https://\S+", rule["helpUri"])  # "format": "uri"
            assert rule["defaultConfiguration"]["level"] in SARIF_LEVELS
            tags = rule["properties"]["tags"]  # propertyBag.tags: unique strings
            assert all(isinstance(tag, str) for tag in tags) and len(tags) == len(set(tags))
        for result in run["results"]:
            assert isinstance(result["message"]["text"], str)
            assert result["level"] in SARIF_LEVELS
            assert 0 <= result["ruleIndex"] < len(ids) and ids[result["ruleIndex"]] == result["ruleId"]
            for suppression in result.get("suppressions", []):
                assert suppression["kind"] in ("inSource", "external")
                assert suppression["status"] in ("accepted", "underReview", "rejected")


def test_sarif_rules_carry_help_uri_severity_and_tags():
    findings = [Finding("ecr-scan-on-push", "aws", "mandatory", "prod", "compute",
                        "urn:pulumi:prod::compute::x::repo", REPO, "set scan_on_push")]
    log = sarif(findings)
    _check_sarif_2_1_0(log)
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert set(rules) == set(load_rules())
    for rule_id, info in load_rules().items():
        descriptor = rules[rule_id]
        assert descriptor["helpUri"] == info.meta.docs
        assert descriptor["properties"]["security-severity"] == SECURITY_SEVERITY[info.meta.severity]
        assert "security" in descriptor["properties"]["tags"]
        assert info.meta.remediation in descriptor["help"]["text"]
        assert f"({info.meta.docs})" in descriptor["help"]["markdown"]
    scan = rules["ecr-scan-on-push"]
    assert scan["properties"]["security-severity"] == "8.0"
    assert {"Security Hub ECR.1", "checkov CKV_AWS_163"} <= set(scan["properties"]["tags"])


def test_sarif_written_by_a_real_run_validates(tmp_path, capsys):
    programs = Path(__file__).parent / "programs"
    out = tmp_path / "out.sarif"
    run_main(main, ["--program", str(programs / "ecr_defaults"), "--sarif", str(out)])
    capsys.readouterr()
    log = json.loads(out.read_text())
    _check_sarif_2_1_0(log)
    assert log["runs"][0]["results"]


# -- findings JSON ----------------------------------------------------------------------------------


def test_findings_carry_their_rules_severity(policy_findings):
    from tests.policies.resources import res

    repo = res(REPO, "inference", {"imageScanningConfiguration": {"scanOnPush": False}})
    findings = policy_findings([repo])
    assert findings
    for finding in findings:
        assert finding["severity"] == load_rules()[finding["rule"]].meta.severity
    scan = [f for f in findings if f["rule"] == "ecr-scan-on-push"]
    assert scan and scan[0]["severity"] == "high"


# -- --explain --------------------------------------------------------------------------------------


def test_explain_prints_the_rules_documentation(capsys):
    code = run_main(main, ["--explain", "ecs-task-separate-roles"])
    out = capsys.readouterr().out
    assert code == 0
    assert out == explain("ecs-task-separate-roles")
    rule = load_rules()["ecs-task-separate-roles"]
    for part in (rule.summary, rule.meta.docs, rule.meta.remediation, "checkov CKV_AWS_249", "severity:     medium",
                 "policies/aws/rules/ecs-task-separate-roles.py"):
        assert part in out


@pytest.mark.parametrize("argv", [["--explain", "no-such-rule"], ["--explain", "ecr-scan-on-push", "dev"]])
def test_explain_refuses_an_unknown_rule_or_extra_arguments(argv, capsys):
    code = run_main(main, argv)
    captured = capsys.readouterr()
    assert code == 2
    assert "--explain" in captured.err + captured.out


# -- the README's rule table ------------------------------------------------------------------------


def test_the_readme_rule_table_is_the_generated_one():
    text = ruledocs.README.read_text(encoding="utf-8")
    assert ruledocs.render(text) == text, "run `python -m shared.policy.ruledocs` and commit policies/README.md"
    for rule_id, rule in load_rules().items():
        assert f"| [`{rule_id}`]({rule.meta.docs}) | {rule.pack} | {rule.meta.severity} |" in text


def test_render_refuses_a_readme_without_markers():
    with pytest.raises(ValueError, match="markers"):
        ruledocs.render("# no table here\n")


@pytest.mark.parametrize("rule_id", ["ecr-kms-encryption", "security-group-described", "mq-broker-not-public",
                                     "mq-broker-activemq-cmk"])
def test_settings_chosen_only_at_creation_are_mandatory_in_every_baseline(rule_id):
    # Changing them later replaces the resource (an ECR repository with its images, a security group
    # every ENI uses, a broker with its messages): a dev-only exception would reach prod as a replacement.
    rule = load_rules()[rule_id]
    assert (rule.levels.dev, rule.levels.staging, rule.levels.prod) == ("mandatory",) * 3


#: The rules whose breach in prod exposes data or the network, or loses it: never advisory there. Named here, not
#: read from the catalog, so that loosening one in policies/catalog.yaml fails this test (the README's rule table is
#: generated from the catalog, and would follow it).
PROD_MANDATORY = ("security-group-no-open-ingress", "security-group-no-all-ports-from-cidr",
                  "s3-bucket-public-access-block", "s3-bucket-tls-only", "mq-broker-not-public", "ecr-scan-on-push",
                  "ecr-immutable-tags", "secretsmanager-recovery-window", "prod-protect-stateful",
                  "stateful-no-force-destroy", "vpc-default-security-group-closed", "iam-no-wildcard-actions",
                  "iam-trust-no-wildcard-principal", "kms-key-policy", "ecs-task-no-plaintext-secrets",
                  "no-plaintext-secrets", "rabbitmq-least-privilege", "rabbitmq-no-admin-users")


@pytest.mark.parametrize("rule_id", PROD_MANDATORY)
def test_security_and_data_rules_are_mandatory_in_prod(rule_id):
    from shared.policy.enforcement import enforcement_for

    assert load_rules()[rule_id].level_for("prod") == "mandatory"
    assert enforcement_for("prod").levels[rule_id] == "mandatory"  # the shipped prod env loosens none of them


@pytest.mark.parametrize(("edit", "key", "reason"), [
    (lambda d: d["anchors_not_covered"].__setitem__("checkov CKV_AWS_7", "rotation is not something we check"),
     "anchors_not_covered.checkov CKV_AWS_7", "it is covered"),
    (lambda d: d["anchors_not_covered"].__setitem__("tfsec aws-ecr-1", "a rule set the catalog does not name"),
     "anchors_not_covered.tfsec aws-ecr-1", "rule set one of"),
    (lambda d: d["anchors_not_covered"].__setitem__("checkov CKV_AWS_999", "short"),
     "anchors_not_covered.checkov CKV_AWS_999", "needs a reason"),
], ids=["covered-and-not", "unknown-rule-set", "no-reason"])
def test_the_catalog_refuses_bad_anchor_entries(tmp_path, monkeypatch, edit, key, reason):
    import shared.policy_catalog as catalog

    _catalog_with(tmp_path, monkeypatch, edit)
    catalog.anchors_not_covered.cache_clear()
    try:
        with pytest.raises(ConfigError) as error:
            catalog.anchors_not_covered()
        assert key in str(error.value) and reason in str(error.value)
    finally:
        monkeypatch.undo()
        catalog.load_rules.cache_clear()
        catalog.anchors_not_covered.cache_clear()


def test_the_anchor_table_names_every_equivalent_and_every_uncovered_control():
    table = ruledocs.anchor_table()
    for rule_id, rule in load_rules().items():
        for label in rule.meta.equivalents.labelled():
            rule_set, control = label.rsplit(" ", 1)
            assert re.search(rf"\| {re.escape(rule_set)} \| {re.escape(control)} \| [^\n]*`{rule_id}`", table), label
    from shared.policy_catalog import anchors_not_covered

    for (_, control), reason in anchors_not_covered().items():
        assert f"| {control} |" in table and reason.split(";")[0][:40] in table


@pytest.mark.parametrize(("reason", "applies"), [
    ("not met: the bucket has no server access logging", True),
    ("not met by design: the log bucket is SSE-S3, all ELB supports", True),
    ("partly by some-rule: the rest is not checked", True),
    ("not covered yet: the resources meet it, no rule guards it", True),
    ("the platform creates no such resource at all", False),
], ids=["not-met", "not-met-by-design", "partly", "not-covered-yet", "does-not-apply"])
def test_the_anchor_table_says_not_applicable_only_for_controls_that_do_not_apply(monkeypatch, reason, applies):
    # A control the platform fails (an open gap, "not met: ...") must not read "not applicable" in the table.
    monkeypatch.setattr(ruledocs, "anchors_not_covered", lambda: {("securityhub", "S3.999"): reason})
    row = next(line for line in ruledocs.anchor_table().splitlines() if "| S3.999 |" in line)
    assert ("not applicable" not in row) is applies, row
    assert reason in row
