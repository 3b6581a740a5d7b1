"""The packs' analyzer speed-up (shared.policy.fast_analyzer): same answers, fewer conversions, batches."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as pulumi_policy_module
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from shared import REPO_ROOT
from shared.policy import fast_analyzer
from shared.policy.enforcement import enforcement_for
from shared.policy.engine import PolicyEngine, _configure_request, _prepare, evaluate_documents_result, pack_config
from shared.policy.packs import load_policies, pack_name
from shared.policy_catalog import PACKS
from shared.policy_support import UNKNOWN_SENTINELS
from tests.policies.resources import UNKNOWN_STRING, document, res
from tests.synth_helpers import spec_document, spec_documents


def _answers(pack: str, documents: list[dict[str, Any]]) -> list[bytes]:
    """Every Analyze/AnalyzeStack response of ``pack`` for ``documents``, from an in-process servicer."""
    servicer = pulumi_policy_module._PolicyAnalyzerServicer(
        pack_name(pack), "0.0.1", load_policies(REPO_ROOT / "policies" / pack), EnforcementLevel.ADVISORY)
    settings = enforcement_for("dev")
    answers = []
    for doc in documents:
        prepared = _prepare(doc, settings)
        config = _configure_request(pack_config(settings, pack, [doc]))
        servicer.Configure(analyzer_pb2.ConfigureAnalyzerRequest.FromString(config), None)
        for _urn, _type, body in prepared.analyze:
            response = servicer.Analyze(analyzer_pb2.AnalyzeRequest.FromString(body), None)
            answers.append(response.SerializeToString(deterministic=True))
        stack = analyzer_pb2.AnalyzeStackRequest.FromString(prepared.analyze_stack)
        answers.append(servicer.AnalyzeStack(stack, None).SerializeToString(deterministic=True))
    return answers


def _answers_across_configurations(pack: str, doc: dict[str, Any]) -> list[bytes]:
    """Analyze responses for ``doc`` under a sequence of configurations (levels change, a rule is
    disabled then enabled again), from one in-process servicer."""
    servicer = pulumi_policy_module._PolicyAnalyzerServicer(
        pack_name(pack), "0.0.1", load_policies(REPO_ROOT / "policies" / pack), EnforcementLevel.ADVISORY)
    resource_rule = {"aws": "ecs-task-logging", "rabbitmq": "rabbitmq-queue-durable", "platform": "tags-required"}[pack]
    answers = []
    for settings in (enforcement_for("dev"), enforcement_for("prod"),
                     enforcement_for("dev", {resource_rule: "disabled"}), enforcement_for("dev")):
        config = _configure_request(pack_config(settings, pack, [doc]))
        servicer.Configure(analyzer_pb2.ConfigureAnalyzerRequest.FromString(config), None)
        for _urn, _type, body in _prepare(doc, settings).analyze:
            response = servicer.Analyze(analyzer_pb2.AnalyzeRequest.FromString(body), None)
            answers.append(response.SerializeToString(deterministic=True))
    return answers


def _plain_and_fast(answers: Any, *args: Any) -> tuple[list[bytes], list[bytes]]:
    """``answers(*args)`` from plain pulumi_policy, then with the speed-up installed."""
    plain = answers(*args)
    undo = fast_analyzer.patch()
    try:
        return plain, answers(*args)
    finally:
        undo()


@pytest.mark.parametrize("pack", PACKS)
def test_answers_follow_each_new_configuration_as_plain_pulumi_policy(pack):
    doc = spec_document("prod", "messaging" if pack == "rabbitmq" else "compute")
    plain, fast = _plain_and_fast(_answers_across_configurations, pack, doc)
    assert fast == plain
    per_configuration = len(plain) // 4
    assert plain[:per_configuration] != plain[2 * per_configuration:3 * per_configuration]  # the disabled rule


def _with_unknowns(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every other leaf value unknown (as during a preview)."""
    counter = iter(range(10**9))

    def change(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: change(item) for key, item in value.items()}
        if isinstance(value, list):
            return [change(item) for item in value]
        return UNKNOWN_STRING if next(counter) % 2 else value

    return {**doc, "resources": [{**r, "inputs": change(r["inputs"])} for r in doc["resources"]]}


@pytest.fixture(scope="module")
def dev_documents() -> list[dict[str, Any]]:
    docs = [document for _, document in sorted(spec_documents("dev").items())]
    return docs + [_with_unknowns(doc) for doc in docs]


@pytest.mark.parametrize("pack", PACKS)
def test_every_pack_answers_byte_for_byte_as_plain_pulumi_policy(pack, dev_documents):
    plain, fast = _plain_and_fast(_answers, pack, dev_documents)
    assert fast == plain
    # the unknowns were exercised: rules turned them into not-applicable answers
    assert any(b"unknown until deployment" in answer or b"cannot decide" in answer for answer in plain)


def test_properties_are_converted_once_per_request_not_once_per_rule(monkeypatch, dev_documents):
    calls = []
    original = fast_analyzer._original_deserialize

    def counting(props: Any, proxy_secrets: bool = False) -> Any:
        calls.append(1)
        return original(props, proxy_secrets)

    monkeypatch.setattr(fast_analyzer, "_original_deserialize", counting)
    undo = fast_analyzer.patch()
    try:
        _answers("aws", dev_documents[:1])
    finally:
        undo()
    resources = len(dev_documents[0]["resources"])
    rules = len(load_policies(REPO_ROOT / "policies" / "aws"))
    # at most a resource's own properties and its provider's (identical messages share one conversion);
    # plain pulumi_policy converts both once per rule
    assert 0 < len(calls) <= 2 * resources < resources * rules


# -- the lazy proxy ------------------------------------------------------------------------------------


TREE = {"a": {"b": [1, {"c": UNKNOWN_STRING}], "d": UNKNOWN_STRING}, "e": "x"}


def _access(props: Any, steps: list[Any]) -> Any:
    for step in steps:
        props = props[step]
    return props


@pytest.mark.parametrize("steps", [["a", "d"], ["a", "b", 1, "c"], ["e"], ["a", "b", 0]])
def test_the_lazy_proxy_raises_like_pulumi_policy_with_the_same_path(steps):
    eager = unknown_checking_proxy(json.loads(json.dumps(TREE)))
    lazy = fast_analyzer._unknown_checking_proxy(fast_analyzer._Shared(json.loads(json.dumps(TREE))))
    try:
        expected: Any = _access(eager, steps)
    except UnknownValueError as error:
        with pytest.raises(UnknownValueError) as raised:
            _access(lazy, steps)
        assert (raised.value.props, raised.value.message) == (error.props, error.message)
        return
    assert _access(lazy, steps) == expected


def test_the_lazy_proxy_behaves_as_a_read_only_mapping():
    lazy = fast_analyzer._unknown_checking_proxy(fast_analyzer._Shared(json.loads(json.dumps(TREE))))
    assert sorted(lazy) == ["a", "e"] and len(lazy) == 2 and len(lazy["a"]["b"]) == 2
    assert lazy.get("missing") is None and lazy.get("e") == "x"
    with pytest.raises(UnknownValueError):
        "d" in lazy["a"]  # noqa: B015 - as pulumi_policy's proxy: `in` reads the value
    with pytest.raises(UnknownValueError):
        list(lazy["a"]["b"][1].values())
    with pytest.raises(TypeError, match="read-only"):
        lazy["e"] = "changed"
    assert set(UNKNOWN_SENTINELS) >= {UNKNOWN_STRING}


# -- the batch method ------------------------------------------------------------------------------------


def test_batch_framing_round_trips_and_rejects_truncation():
    bodies = [b"", b"one", bytes(range(256)) * 3]
    assert list(fast_analyzer.decode_requests(fast_analyzer.encode_requests(bodies))) == bodies
    items = [(fast_analyzer.BATCH_OK, b"answer"), (fast_analyzer.BATCH_FAILED, "boom ✗".encode())]
    assert fast_analyzer.decode_responses(fast_analyzer.encode_responses(items)) == items
    with pytest.raises(ValueError, match="truncated"):
        list(fast_analyzer.decode_requests(fast_analyzer.encode_requests(bodies)[:-1]))
    with pytest.raises(ValueError, match="truncated"):
        fast_analyzer.decode_responses(fast_analyzer.encode_responses(items)[:-1])


def _queues(count: int) -> dict[str, Any]:
    return document([res("rabbitmq:index/queue:Queue", f"q{i}", {"name": f"s{i}.work", "vhost": "dev",
                                                                 "settings": {"durable": i % 7 != 0}})
                     for i in range(count)])


def _summary(result: Any) -> tuple[list[tuple[str, str | None]], int, int]:
    return ([(f.rule, f.urn) for f in result.findings], len(result.not_applicable), result.resources)


def test_a_pack_without_the_batch_method_is_analyzed_one_resource_at_a_time(tmp_path, monkeypatch):
    pack_dir = tmp_path / "policies" / "rabbitmq"
    shutil.copytree(REPO_ROOT / "policies" / "rabbitmq", pack_dir, ignore=shutil.ignore_patterns("__pycache__"))
    # the pack served by plain pulumi_policy, without shared.policy.fast_analyzer
    (pack_dir / "__main__.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from pathlib import Path\n"
        "from pulumi_policy import EnforcementLevel, PolicyPack\n"
        "from shared.policy.packs import load_policies, pack_name\n"
        "here = Path(__file__).resolve().parent\n"
        "PolicyPack(name=pack_name(here.name), policies=load_policies(here),\n"
        "           enforcement_level=EnforcementLevel.ADVISORY)\n")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    doc = _queues(150)
    with PolicyEngine(packs=["rabbitmq"]) as batching:
        expected = evaluate_documents_result([doc], "dev", engine=batching)
        assert batching.packs["rabbitmq"].batches
    with PolicyEngine(packs=["rabbitmq"], policies_dir=tmp_path / "policies") as plain:
        got = evaluate_documents_result([doc], "dev", engine=plain)
        assert not plain.packs["rabbitmq"].batches
    assert _summary(got) == _summary(expected)
    assert len([f for f in got.findings if f.rule == "rabbitmq-queue-durable"]) == 22


def test_a_rule_is_not_called_for_a_type_it_declared_it_does_not_check():
    from pulumi_policy import ResourceValidationPolicy

    from shared.policy_support import limit_to_types, other_type_reason

    calls: list[str] = []

    def validate(args: Any, report: Any) -> None:
        if args.resource_type != "aws:s3/bucket:Bucket":
            args.not_applicable(other_type_reason(args.resource_type))
        calls.append(args.resource_type)
        report("a finding")

    policy = ResourceValidationPolicy(name="bucket-rule", description="checks buckets",
                                      validate=limit_to_types(validate, frozenset({"aws:s3/bucket:Bucket"})))
    servicer = pulumi_policy_module._PolicyAnalyzerServicer("pack", "0.0.1", [policy], EnforcementLevel.MANDATORY)

    def analyze(type_: str) -> analyzer_pb2.AnalyzeResponse:
        return servicer.Analyze(analyzer_pb2.AnalyzeRequest(type=type_, urn=f"urn:x::{type_}", name="r"), None)

    plain = [analyze(t).SerializeToString() for t in ("aws:s3/bucket:Bucket", "aws:sqs/queue:Queue")]
    assert calls == ["aws:s3/bucket:Bucket"]
    undo = fast_analyzer.patch()
    try:
        fast = [analyze(t).SerializeToString() for t in ("aws:s3/bucket:Bucket", "aws:sqs/queue:Queue")]
    finally:
        undo()
    assert fast == plain
    assert calls == ["aws:s3/bucket:Bucket", "aws:s3/bucket:Bucket"]  # not called for the queue
    other = analyzer_pb2.AnalyzeResponse.FromString(fast[1])
    assert [(n.policy_name, n.reason) for n in other.not_applicable] == [
        ("bucket-rule", "aws:sqs/queue:Queue is not a resource type this rule checks")]


def test_each_stack_rule_gets_its_own_resources_linked_as_pulumi_policy_links_them():
    """AnalyzeStack reads the request once for all stack rules, yet every rule gets fresh
    PolicyResource objects (what one rule changes, the next does not see) whose parent and
    dependencies are objects of that rule's own list."""
    from pulumi_policy import StackValidationPolicy

    seen: list[list[tuple[str, str | None, list[str], dict[str, list[str]]]]] = []
    identities: list[set[int]] = []
    kept: list[Any] = []

    def validate(args: Any, report: Any) -> None:
        own = {id(r) for r in args.resources}
        assert all(id(r.parent) in own for r in args.resources if r.parent is not None)
        assert all(id(d) in own for r in args.resources for d in r.dependencies)
        assert all(id(d) in own for r in args.resources for ds in r.property_dependencies.values() for d in ds)
        identities.append(own)
        kept.append(args.resources)  # alive to the end, so no id is reused by a later run
        seen.append([(r.urn, r.parent.urn if r.parent else None, [d.urn for d in r.dependencies],
                      {k: [d.urn for d in v] for k, v in r.property_dependencies.items()}) for r in args.resources])
        for resource in args.resources:  # a careless rule: the next one must not see this
            resource.dependencies.append(resource)
            resource.parent = None
        report(f"{len(args.resources)} resources", args.resources[1].urn)

    policies = [StackValidationPolicy(name=f"stack-{i}", description="d", validate=validate) for i in range(2)]
    servicer = pulumi_policy_module._PolicyAnalyzerServicer("pack", "0.0.1", policies, EnforcementLevel.MANDATORY)
    resources = [analyzer_pb2.AnalyzerResource(type="t:m:A", urn="urn:a", name="a"),
                 analyzer_pb2.AnalyzerResource(
                     type="t:m:B", urn="urn:b", name="b", parent="urn:a", dependencies=["urn:a", "urn:gone"],
                     propertyDependencies={"x": analyzer_pb2.AnalyzerPropertyDependencies(urns=["urn:a"])})]
    request = analyzer_pb2.AnalyzeStackRequest(resources=resources)
    plain = servicer.AnalyzeStack(request, None).SerializeToString(deterministic=True)
    undo = fast_analyzer.patch()
    try:
        fast = servicer.AnalyzeStack(request, None).SerializeToString(deterministic=True)
    finally:
        undo()
    assert fast == plain
    expected = [("urn:a", None, [], {}), ("urn:b", "urn:a", ["urn:a"], {"x": ["urn:a"]})]
    assert seen == [expected] * 4
    assert len(set.union(*identities)) == 8  # two rules x two runs x two resources, none shared


def test_packs_run_at_the_lowest_priority_so_the_synth_keeps_the_cpu():
    import os

    from shared.policy.engine import PACK_NICENESS

    with PolicyEngine(packs=["platform"]) as engine:
        engine.start()
        process = engine.packs["platform"].process
        assert process is not None
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == PACK_NICENESS == 19
