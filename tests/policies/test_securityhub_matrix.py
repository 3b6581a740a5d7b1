"""Security Hub controls x the resource types the stacks create (``tests/fixtures/securityhub_controls.yaml``).

Every `aws:` resource type of every env's synth, and of every pulumi_aws resource class the code constructs (the
types only some env settings create: a public gateway's load balancer, App Mesh), has its row of controls; every
control of the matrix is placed by the policy catalog (a rule's equivalent, or ``anchors_not_covered`` with the
reason); and the README's table of expected findings is exactly the catalog's "not met" controls, the account's,
and those a rule covers that shipped envs still fail (``fail_despite_rule``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.policy_catalog import anchors_not_covered, load_rules
from shared.yamlio import load_yaml_mapping

ROOT = Path(__file__).resolve().parents[2]
MATRIX = load_yaml_mapping(ROOT / "tests" / "fixtures" / "securityhub_controls.yaml")
#: a pulumi_aws resource constructed in code: ``aws.<module>.<Class>(`` (argument classes end in ``Args``)
CONSTRUCTED = re.compile(r"\baws\.([a-z0-9]+)\.([A-Z][A-Za-z0-9]*)\(")


def _synth_types() -> set[str]:
    return {resource["type"] for path in (ROOT / "tests" / "snapshots").glob("*/*.json")
            for resource in json.loads(path.read_text(encoding="utf-8"))["resources"]
            if resource["type"].startswith("aws:")}


def _constructed_types() -> set[str]:
    types = set()
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "stacks").rglob("*.py")]:
        for module, cls in CONSTRUCTED.findall(path.read_text(encoding="utf-8")):
            if not cls.endswith("Args"):
                types.add(f"aws:{module}/{cls[0].lower()}{cls[1:]}:{cls}")
    return types


def _placed() -> set[str]:
    covered = {control for rule in load_rules().values() for control in rule.meta.equivalents.securityhub}
    return covered | {control for (rule_set, control) in anchors_not_covered() if rule_set == "securityhub"}


def test_every_resource_type_the_stacks_create_has_its_controls():
    synth = _synth_types()
    assert len(synth) > 40 and "aws:ecs/service:Service" in synth  # the snapshots were read
    constructed = _constructed_types()
    assert "aws:lb/loadBalancer:LoadBalancer" in constructed and "aws:appmesh/mesh:Mesh" in constructed
    missing = sorted((synth | constructed) - set(MATRIX["resource_types"]))
    assert not missing, f"add these types to tests/fixtures/securityhub_controls.yaml with their controls: {missing}"


def test_every_control_of_the_matrix_is_placed_by_the_catalog():
    controls = {c for rows in ("resource_types", "created_by_aws") for cs in MATRIX[rows].values() for c in cs}
    unplaced = sorted((controls | set(MATRIX["account"])) - _placed())
    assert not unplaced, ("give each a rule's equivalents or an anchors_not_covered reason in policies/catalog.yaml: "
                          f"{unplaced}")


def _readme_findings_table() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- securityhub-findings", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines()[1:] if line.startswith("| ") and not line.startswith("| control")]
    return {control for row in rows for control in re.findall(r"[A-Za-z0-9]+\.\d+", row.split("|")[1])}


def test_the_readme_lists_the_findings_to_expect_and_the_accounts_controls():
    not_met = {control for (rule_set, control), reason in anchors_not_covered().items()
               if rule_set == "securityhub" and reason.startswith("not met")}
    assert {"EC2.10", "SNS.2", "ECS.20"} <= not_met
    account = set(MATRIX["account"])
    assert account <= {control for (rule_set, control), reason in anchors_not_covered().items()
                       if rule_set == "securityhub" and "account-level" in reason}
    covered = {control for rule in load_rules().values() for control in rule.meta.equivalents.securityhub}
    despite_rule = set(MATRIX["fail_despite_rule"])
    assert despite_rule <= covered, "fail_despite_rule names controls a rule covers"
    assert _readme_findings_table() == not_met | account | despite_rule
