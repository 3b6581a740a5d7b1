"""The synth's Pulumi SDK fast paths (shared.synth.speedups) give the SDK's own answers.

These pin the behaviour the synth relies on: run them when pulumi is upgraded.
"""

from __future__ import annotations

import asyncio
import random
import typing
from typing import Any

import pulumi
import pytest
from pulumi import _types as pulumi_types
from pulumi import log as pulumi_log
from pulumi.output import UNKNOWN
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import resource_cycle_breaker, rpc
from pulumi.runtime import settings as pulumi_settings

from shared.synth import speedups


def _cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {"a": [1, 2]}
    value["self"] = value
    return value


def _shared_unknown() -> dict[str, Any]:
    inner = [UNKNOWN]
    return {"x": inner, "y": inner}


VALUES = [None, "s", 1, 2.5, True, UNKNOWN, [], {}, [1, [2, [3, UNKNOWN]]], {"a": {"b": "c"}},
          {"a": ({"b": UNKNOWN},)}, (UNKNOWN,), _cyclic(), _shared_unknown(), {"k": [None, {"z": [UNKNOWN]}]}]


@pytest.mark.parametrize("value", VALUES)
def test_contains_unknowns_agrees_with_the_sdk(value):
    assert speedups.contains_unknowns(value) is speedups._original_contains_unknowns(value)


def _resolve(output: pulumi.Output[Any]) -> tuple[Any, bool, bool, set[Any]]:
    async def read() -> tuple[Any, bool, bool, set[Any]]:
        data = await output._data
        return data.value, data.is_known, data.is_secret, data.resources

    return asyncio.get_event_loop().run_until_complete(read())


@pytest.fixture
def loop():
    """A private event loop; the outputs the test leaves tracked by the SDK are dropped with it."""
    loop = asyncio.new_event_loop()
    # Outputs a test leaves unresolved, and the SDK's failed is_known/is_secret futures nobody awaits,
    # make asyncio log "Task was destroyed but it is pending" / "exception was never retrieved" when
    # collected; what a test checks, it awaits.
    loop.set_exception_handler(lambda _loop, _context: None)
    asyncio.set_event_loop(loop)
    yield loop
    with pulumi_settings.SETTINGS.lock:
        pulumi_settings.SETTINGS.outputs.clear()
    loop.close()
    asyncio.set_event_loop(None)


PLAIN = [
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]},
    [{"name": "app", "portMappings": [{"containerPort": 8080}], "essential": True, "cpu": 0.5}, None],
    ("a", ("b", 1), [2, {"c": None}]),
    {"nested": {"unknown": UNKNOWN}},
]


@pytest.mark.parametrize("value", PLAIN)
def test_from_input_of_a_plain_container_is_what_the_sdk_deep_lift_gives(loop, value):
    expected = _resolve(pulumi.Output.from_input(value))
    with speedups.sdk_fast_paths():
        output = pulumi.Output.from_input(value)
    got = _resolve(output)
    assert got == expected
    assert type(got[0]) is type(expected[0])
    assert got[0] is not value  # a copy, as the deep lift builds new containers


def test_a_dict_with_a_non_string_key_fails_as_in_the_sdk(loop):
    with pytest.raises(TypeError, match="keywords must be strings"):
        _resolve(pulumi.Output.from_input({1: "int key"}))
    with speedups.sdk_fast_paths():
        output = pulumi.Output.from_input({1: "int key"})
    with pytest.raises(TypeError, match="keywords must be strings"):
        _resolve(output)


def test_from_input_still_lifts_outputs_secrets_and_dependencies_inside_containers(loop):
    secret = pulumi.Output.secret("s3cret")
    value = {"plain": "x", "list": [pulumi.Output.from_input("y"), {"deep": secret}], "tuple": (1, secret)}
    expected = _resolve(pulumi.Output.from_input(value))
    with speedups.sdk_fast_paths():
        got = _resolve(pulumi.Output.from_input(value))
    assert got == expected
    assert got[0] == {"plain": "x", "list": ["y", {"deep": "s3cret"}], "tuple": (1, "s3cret")}
    assert got[2] is True  # the secret is still secret


def test_an_output_of_a_plain_dict_is_lifted_once_with_its_own_flags(loop):
    source = pulumi.Output.secret({"a": [1, {"b": "c"}]})
    expected = _resolve(pulumi.Output.from_input(source))
    with speedups.sdk_fast_paths():
        got = _resolve(pulumi.Output.from_input(source))
    assert got == expected and got[2] is True


def test_the_sdk_is_restored_after_the_synth():
    before = (pulumi.Output.__dict__["from_input"], rpc.contains_unknowns, pulumi_resource._get_stack_trace,
              pulumi_log.debug, rpc.declare_dependency)
    with speedups.sdk_fast_paths():
        assert rpc.contains_unknowns is speedups.contains_unknowns
        assert pulumi_resource._get_stack_trace() == pulumi_resource.source_pb2.StackTrace()
        assert rpc.declare_dependency is speedups.declare_dependency
    after = (pulumi.Output.__dict__["from_input"], rpc.contains_unknowns, pulumi_resource._get_stack_trace,
             pulumi_log.debug, rpc.declare_dependency)
    assert after == before


class _Resource:
    """Stands in for a resource: transfer_properties only sets attributes and adds it to dependencies."""


@pytest.mark.parametrize(("value", "known", "secret", "deps"), [
    ({"arn": "arn:aws:x"}, True, False, None),
    ("v", False, True, {"other"}),
    (None, True, False, set()),
])
def test_transfer_properties_resolves_what_the_sdk_resolves(loop, value, known, secret, deps):
    props = {"urn": None, "id": None, "name": "n", "policy": "{}"}
    results = []
    for transfer in (rpc.transfer_properties, speedups.transfer_properties):
        res = _Resource()
        resolvers = transfer(res, props, True)
        assert sorted(resolvers) == ["name", "policy"]  # urn and id are resolved elsewhere
        resolvers["name"](value, known, secret, deps, None)
        data = _resolve(res.name)
        results.append((data[0], data[1], data[2], {d for d in data[3] if d is not res}, res in data[3]))
    assert results[0] == results[1]


def test_transfer_properties_fails_like_the_sdk(loop):
    failures = []
    for transfer in (rpc.transfer_properties, speedups.transfer_properties):
        res = _Resource()
        transfer(res, {"name": "n"}, True)["name"](None, False, False, None, RuntimeError("engine said no"))
        with pytest.raises(RuntimeError) as raised:
            _resolve(res.name)
        failures.append(str(raised.value))
    assert failures == ["engine said no", "engine said no"]


def _edge_sequences() -> list[list[tuple[int, int]]]:
    """Edge requests (dependent, dependency) over small graphs: random ones (dense enough to form
    cycles), chains declared in both directions, and a diamond closed into a cycle."""
    rng = random.Random(20261130)
    sequences = [[(rng.randrange(12), rng.randrange(12)) for _ in range(60)] for _ in range(200)]
    sequences.append([(i + 1, i) for i in range(30)] + [(0, 30)])  # a chain, then the edge closing it
    sequences.append([(i, i + 1) for i in range(30)] + [(30, 0)])  # the same, declared top-down
    sequences.append([(1, 0), (2, 0), (3, 1), (3, 2), (0, 3), (4, 3), (0, 4), (4, 4)])
    return sequences


@pytest.mark.parametrize("sequence", _edge_sequences())
def test_declare_dependency_answers_and_records_what_the_sdk_does(sequence):
    """Same answer for every request (False when the edge would close a cycle) and the same
    dependency sets, whatever order the edges come in (the order forces re-orderings)."""
    graphs = []
    for declare in (resource_cycle_breaker.declare_dependency, speedups.declare_dependency):
        nodes = [_Resource() for _ in range(31)]
        answers = [declare(nodes[a], nodes[b]) for a, b in sequence]
        deps = [{nodes.index(d) for d in resource_cycle_breaker._deps(node)} for node in nodes]
        graphs.append((answers, deps))
    assert graphs[0] == graphs[1]


def test_declare_dependency_falls_back_to_the_sdk_for_edges_it_did_not_record(monkeypatch):
    monkeypatch.setattr(speedups._Counters, "untracked", False)
    a, b, c = _Resource(), _Resource(), _Resource()
    resource_cycle_breaker.declare_dependency(b, a)  # recorded by the SDK's own function
    resource_cycle_breaker.declare_dependency(c, b)
    assert speedups.declare_dependency(a, c) is False  # a <- b <- c: would close a cycle
    assert speedups._Counters.untracked is True
    assert speedups.declare_dependency(c, a) is True


# pulumi.Input is a generic Union alias: mypy subscripts it in annotations only, and these are runtime objects.
INPUT: Any = pulumi.Input


# The spellings the providers' generated code uses (typing.Optional/Union), hence the noqa.
@pytest.mark.parametrize("annotation", [
    str, int, dict, pulumi.Output[str], INPUT[str], INPUT[int], str | None,
    typing.Optional[str],  # noqa: UP045
    INPUT[typing.Sequence[INPUT[str]]],
    typing.Optional[INPUT[typing.Mapping[str, str]]],  # noqa: UP045
    typing.Union[str, None],  # noqa: UP007
    typing.Annotated[int, {"unhashable": []}],
])
def test_unwrap_type_answers_what_the_sdk_answers(annotation):
    expected = pulumi_types.unwrap_type(annotation)
    with speedups.sdk_fast_paths():
        assert pulumi_types.unwrap_type is speedups.unwrap_type
        assert pulumi_types.unwrap_type(annotation) == expected
        assert pulumi_types.unwrap_type(annotation) == expected  # the remembered answer
    assert pulumi_types.unwrap_type is not speedups.unwrap_type
