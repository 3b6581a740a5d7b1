"""The one rule-authoring helper module, ``shared.policy_support``: ``get``/``as_list`` behave the same
on CrossGuard's proxies and on plain data, and every rule imports it (there is no second module)."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from shared import REPO_ROOT
from shared.policy_support import UNKNOWN, Unknown, as_list, get, known_input, opens_all_ports, plain

SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def test_get_on_plain_data():
    data = {"a": {"b": [10, {"c": UNKNOWN}]}, "s": "text", "n": None}
    assert get(data, "a", "b", 0) == 10
    assert get(data, "a", "b", 1, "c") is UNKNOWN
    assert get(data, "a", "b", 1, "c", "deeper") is UNKNOWN  # an unknown on the way stays unknown
    assert get(data, "a", "missing") is None and get(data, "a", "missing", default=3) == 3
    assert get(data, "a", "b", 5) is None  # out of range
    assert get(data, "s", 0) is None  # a string is not a list
    assert get(data, "n", default="d") == "d"
    with pytest.raises(Unknown):
        get({"x": SENTINEL}, "x")


def test_get_on_a_crossguard_proxy_raises_for_unknown_values():
    proxy = unknown_checking_proxy({"known": {"v": 1}, "unknown": SENTINEL})
    assert get(proxy, "known", "v") == 1
    with pytest.raises(UnknownValueError):
        get(proxy, "unknown")
    assert plain(proxy) == {"known": {"v": 1}, "unknown": UNKNOWN}


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), ("one", ["one"]), ({"k": 1}, [{"k": 1}]), ([1, 2], [1, 2]), (3, [3]), (UNKNOWN, [UNKNOWN]),
])
def test_as_list(value, expected):
    assert list(as_list(value)) == expected


def test_as_list_of_an_unknown_sentinel_raises():
    with pytest.raises(Unknown):
        as_list(SENTINEL)


def test_every_rule_imports_the_one_helper_module():
    rules = sorted((REPO_ROOT / "policies").glob("*/rules/*.py"))
    assert rules
    assert not (REPO_ROOT / "policies" / "aws" / "support.py").exists(), "one helper module, not two"
    for path in rules:
        imports = [node.module for node in ast.parse(path.read_text()).body if isinstance(node, ast.ImportFrom)]
        assert not any(module and module.startswith("policies.") for module in imports), path.name


@pytest.mark.parametrize(("protocol", "low", "high", "lowest", "expected"), [
    ("-1", 0, 0, 0, True), ("all", None, None, 0, True), ("tcp", 0.0, 65535.0, 0, True),
    ("tcp", 1, 65535, 0, False), ("tcp", 1, 65535, 1, True), ("6", "0", "65535", 0, True),
    ("udp", 0, 65534, 0, False), ("icmp", 0, 65535, 0, False), ("tcp", None, 65535, 0, False),
])
def test_opens_all_ports(protocol: object, low: object, high: object, lowest: int, expected: bool) -> None:
    assert opens_all_ports(protocol, low, high, lowest=lowest) is expected


class _Undecided(Exception):
    pass


class _Args:
    """What known_input reads of CrossGuard's ResourceValidationArgs; not_applicable raises as the SDK's does."""

    name = "res"

    def __init__(self, props: dict[str, object]) -> None:
        self.props = unknown_checking_proxy(props)

    def not_applicable(self, reason: str) -> None:
        raise _Undecided(reason)


def test_known_input_reads_a_dotted_path_and_names_it_while_unknown() -> None:
    args: Any = _Args({"logs": {"general": True}, "spec": {"listeners": SENTINEL}})
    assert known_input(args, "broker", "logs.general") is True
    assert known_input(args, "broker", "logs.audit") is None
    with pytest.raises(_Undecided, match=r"^virtual node 'res': spec\.listeners is unknown until deployment"):
        known_input(args, "virtual node", "spec.listeners")


ANYONE_FROM_A_BUCKET = {"Effect": "Allow", "Principal": "*", "Action": "sns:Publish", "Resource": "*",
                        "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::my-bucket"}}}


@pytest.mark.parametrize(("condition", "public"), [
    ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::my-bucket"}}, True),  # a bucket of that name in any account
    ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::my-bucket"},
      "StringEquals": {"aws:SourceAccount": "111111111111"}}, False),  # as AWS asks: both keys
    ({"ArnLike": {"aws:SourceArn": ["arn:aws:events:eu-west-1:111111111111:rule/a", "arn:aws:s3:::b"]}}, True),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:events:eu-west-1:111111111111:rule/a"}}, False),  # names the account
])
def test_a_source_arn_without_an_account_names_no_caller_alone(condition: dict[str, object], public: bool) -> None:
    """IAM user guide, aws:SourceArn, and EventBridge's confused-deputy page: where the ARN holds no account ID (an S3
    bucket's), use aws:SourceAccount beside it; the Lambda rule already judged so, the shared helper did not."""
    from shared.policy_support import is_public_statement

    assert is_public_statement({**ANYONE_FROM_A_BUCKET, "Condition": condition}) is public
