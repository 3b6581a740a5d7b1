"""The packs as the ``pulumi`` CLI runs them (no offline engine: shared.policy.packs.cli_policies).

Under the CLI nothing of the offline engine's own handling is there: its levels come from a ``--policy-pack-config``
file or the pack's defaults, its suppressions from nowhere but that file, and the CLI shows no not-applicable
answer. So a pack run there must fail closed without a config, honour the env's suppressions the file carries, and
say aloud that a rule could not decide.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as pulumi_policy_module

from shared import REPO_ROOT
from shared.policy.enforcement import Enforcement, Suppression, enforcement_for
from shared.policy.engine import _configure_request, _prepare, pack_config
from shared.policy.packs import SUPPRESSED_KEY, UNDECIDED_REASON, cli_policies, load_policies, pack_name, suppressed
from shared.policy_catalog import BASELINES, LEVEL_STRENGTH, PACKS, load_rules
from tests.policies.resources import GOOD_TAGS, UNKNOWN_BOOL, aws_provider, document, res

RULE = "ecr-scan-on-push"


def _servicer(pack: str, under_the_cli: bool = True) -> Any:
    policies = load_policies(REPO_ROOT / "policies" / pack)
    return pulumi_policy_module._PolicyAnalyzerServicer(
        pack_name(pack), "1.0.0", cli_policies(policies) if under_the_cli else policies, EnforcementLevel.ADVISORY)


PROVIDER = aws_provider(tags=GOOD_TAGS)


def _repository(name: str, scan: Any) -> dict[str, Any]:
    return res("aws:ecr/repository:Repository", name,
               {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": scan}},
               custom=True, provider=PROVIDER)


def _diagnostics(servicer: Any, doc: dict[str, Any], settings: Enforcement, config: dict[str, Any] | None
                 ) -> list[Any]:
    if config is not None:
        servicer.Configure(analyzer_pb2.ConfigureAnalyzerRequest.FromString(_configure_request(config)), None)
    found = []
    for _urn, _type, body in _prepare(doc, settings).analyze:
        found += [d for d in servicer.Analyze(analyzer_pb2.AnalyzeRequest.FromString(body), None).diagnostics
                  if d.policyName == RULE]
    return found


@pytest.mark.parametrize("pack", PACKS)
def test_without_a_config_every_rule_runs_at_the_strongest_level_the_catalog_gives_it(pack):
    info = _servicer(pack).GetAnalyzerInfo(None, None)
    levels = {policy.name: policy.enforcementLevel for policy in info.policies}
    rules = load_rules()
    for name, level in levels.items():
        strongest = max((rules[name].level_for(b) for b in BASELINES), key=LEVEL_STRENGTH.__getitem__)
        assert level == getattr(analyzer_pb2, strongest.upper()), name
    assert analyzer_pb2.MANDATORY in levels.values()  # a bare `--policy-pack` run blocks, as some env does


def test_a_suppressed_resource_is_not_reported_and_the_others_still_are():
    settings = Enforcement(env="dev", baseline="dev", levels=enforcement_for("dev").levels,
                           suppressions=(Suppression(RULE, "legacy-*", "scanned by the registry's own setting"),))
    doc = document([_repository("legacy-api", False), _repository("api", False)])
    config = pack_config(settings, "aws", [doc], suppressions=True)
    assert config[RULE][SUPPRESSED_KEY] == ["legacy-*"]
    found = _diagnostics(_servicer("aws"), doc, settings, config)
    assert len(found) == 1 and "'api'" in found[0].message
    # The offline engine's config carries no patterns: it applies suppressions to its findings and keeps them listed.
    assert SUPPRESSED_KEY not in pack_config(settings, "aws", [doc])[RULE]
    assert len(_diagnostics(_servicer("aws"), doc, settings, pack_config(settings, "aws", [doc]))) == 2


def test_suppression_patterns_match_the_urn_or_the_resource_name_as_the_offline_engine_does():
    urn = "urn:pulumi:dev::network::aws:ec2/securityGroup:SecurityGroup::network-services"
    assert suppressed(["network-services"], urn)
    assert suppressed(["network-*"], urn)
    assert suppressed([urn], urn)
    assert not suppressed(["network-broker"], urn)
    assert not suppressed(["network-services"], None)


def test_a_rule_that_cannot_decide_is_an_advisory_diagnostic_the_cli_prints():
    settings = enforcement_for("prod")
    doc = document([_repository("api", UNKNOWN_BOOL)])
    config = pack_config(settings, "aws", [doc])
    (found,) = _diagnostics(_servicer("aws"), doc, settings, config)
    assert found.enforcementLevel == analyzer_pb2.ADVISORY
    assert "can't run policy 'ecr-scan-on-push'" in found.message and "unknown until deployment" in found.message
    # Offline the same answer is a not-applicable record (the engine lists it as "cannot decide").
    assert _diagnostics(_servicer("aws", under_the_cli=False), doc, settings, config) == []


@pytest.mark.parametrize("reason", [
    "ECR repository 'api': imageScanningConfiguration.scanOnPush is unknown until deployment; the rule decides once "
    "it is known",
    "cannot decide: policy 'p' pattern is not known during preview",
    "cannot count 3 rules before deployment",
    "the policy config carries no secretness for urn:pulumi:dev::broker::x",
])
def test_the_reasons_of_a_rule_that_cannot_decide_are_recognised(reason):
    assert UNDECIDED_REASON.search(reason)


def test_the_reason_a_rule_does_not_apply_is_left_alone():
    from shared.policy_support import other_type_reason

    assert not UNDECIDED_REASON.search(other_type_reason("aws:s3/bucket:Bucket"))
    assert not UNDECIDED_REASON.search("no credential input is set")


@pytest.mark.parametrize("pack", PACKS)
def test_a_published_copy_exits_saying_why(pack, tmp_path):
    """`pulumi policy publish` uploads the pack's folder alone; installed from Pulumi Cloud it has no shared/."""
    import subprocess
    import sys

    copy = tmp_path / "pulumi-analyzer-policy" / pack
    copy.mkdir(parents=True)
    (copy / "__main__.py").write_text((REPO_ROOT / "policies" / pack / "__main__.py").read_text())
    done = subprocess.run([sys.executable, "-I", "-S", str(copy / "__main__.py")], cwd=copy, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "a published copy is not supported" in done.stderr and str(copy) in done.stderr


def _not_applicable_reasons() -> list[tuple[str, str]]:
    """Every reason text a rule (or a helper of the rules) hands ``not_applicable``/``undecidable``, as written."""
    import ast

    sources = [*sorted((REPO_ROOT / "policies").glob("*/rules/*.py")), REPO_ROOT / "shared" / "policy_support.py",
               REPO_ROOT / "shared" / "policy_autoscaling.py"]
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            texts = [a for a in node.args if isinstance(a, ast.Constant | ast.JoinedStr)]
            if name in ("not_applicable", "undecidable") and texts:
                found.append((path.name, "undecidable" if name == "undecidable" else ast.unparse(texts[0])))
    return found


def test_every_reason_worded_as_undecided_is_recognised_and_no_other():
    """A rule that says it cannot decide must reach the CLI's output (an advisory line); a rule that does not apply
    must stay silent there. The wording decides, so every reason the rules write is held to it."""
    import re

    undecided_words = re.compile(r"cannot|unknown|not known|before deployment|secretness|yet\b")
    reasons = _not_applicable_reasons()
    assert len(reasons) > 100
    for source, text in reasons:
        if text == "undecidable":
            continue
        assert bool(UNDECIDED_REASON.search(text)) == bool(undecided_words.search(text)), (source, text)
