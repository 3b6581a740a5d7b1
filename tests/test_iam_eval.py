"""The tests' IAM evaluator (tests/iam_eval.py) against the IAM user guide: "Policy evaluation logic", "IAM JSON
policy elements: Action / Resource / Condition", "Condition operators" and "Conditions with multiple context keys
or values". The examples are the guide's where it gives one."""

from __future__ import annotations

from typing import Any

import pytest

from tests import iam_eval
from tests.iam_eval import Decision, allows, condition_holds, decide, grants_some_context

BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"


def allow(action: Any = "s3:*", resource: Any = "*", condition: dict[str, Any] | None = None,
          **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition:
        statement["Condition"] = condition
    return statement


def deny(action: Any = "s3:*", resource: Any = "*", condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**allow(action, resource, condition), "Effect": "Deny"}


def holds(operator: str, key: str, wanted: Any, context: dict[str, Any]) -> bool:
    return condition_holds(operator, key, wanted, context)


# -- evaluation: explicit deny, allow, implicit deny ------------------------------------------------------------------

def test_no_applicable_statement_is_an_implicit_deny() -> None:
    assert decide([], "s3:GetObject", f"{BUCKET}/k") is Decision.IMPLICIT_DENY
    assert decide([allow("sqs:*")], "s3:GetObject", f"{BUCKET}/k") is Decision.IMPLICIT_DENY


def test_an_applicable_deny_wins_over_any_allow_in_any_order() -> None:
    """"If policies that apply to a request include an Allow statement and a Deny statement, the Deny statement
    trumps the Allow statement" (The difference between explicit and implicit denies)."""
    statements = [allow("iam:Get*"), allow("iam:List*"), deny("iam:*Report*")]
    assert decide(statements, "iam:GetRole") is Decision.ALLOW
    for ordered in (statements, statements[::-1]):
        assert decide(ordered, "iam:GetOrganizationsAccessReport") is Decision.EXPLICIT_DENY
    assert decide(statements, "iam:CreatePolicy") is Decision.IMPLICIT_DENY


def test_a_deny_whose_condition_fails_does_not_apply() -> None:
    statements = [allow(), deny(condition={"Bool": {"aws:SecureTransport": "false"}})]
    assert allows(statements, "s3:GetObject", f"{BUCKET}/k", {"aws:SecureTransport": True})
    assert decide(statements, "s3:GetObject", f"{BUCKET}/k", {"aws:SecureTransport": False}) is \
        Decision.EXPLICIT_DENY


# -- Action / NotAction -------------------------------------------------------------------------------------------

def test_actions_are_case_insensitive_with_wildcards() -> None:
    """"The prefix and the action name are case insensitive. For example, iam:ListAccessKeys is the same as
    IAM:listaccesskeys" (IAM JSON policy elements: Action)."""
    assert allows([allow("iam:ListAccessKeys")], "IAM:listaccesskeys")
    assert allows([allow("IAM:LISTACCESSKEYS")], "iam:ListAccessKeys")
    assert allows([allow("iam:*AccessKey*")], "iam:CreateAccessKey")
    assert not allows([allow("iam:*AccessKey*")], "iam:CreateRole")
    assert allows([allow("s3:Get?bject")], "s3:GetObject")
    assert not allows([allow("s3:Get?bject")], "s3:GetObjectVersion")
    assert allows([allow("*")], "kms:Decrypt")


def test_not_action_applies_to_every_other_action() -> None:
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    assert allows(statements, "s3:GetObject")
    assert not allows(statements, "iam:CreateRole")
    assert not allows(statements, "IAM:createrole")  # NotAction's patterns are case-insensitive too
    guard = [allow("*"), {"Effect": "Deny", "NotAction": ["s3:Get*"], "Resource": "*"}]
    assert allows(guard, "s3:GetObject") and not allows(guard, "s3:PutObject")


# -- Resource / NotResource --------------------------------------------------------------------------------------------

def test_resources_are_case_sensitive() -> None:
    """"In the Resource element, the IAM user name is case sensitive" (IAM JSON policy elements: Resource)."""
    statements = [allow("iam:GetUser", "arn:aws:iam::111122223333:user/Bob")]
    assert allows(statements, "iam:GetUser", "arn:aws:iam::111122223333:user/Bob")
    assert not allows(statements, "iam:GetUser", "arn:aws:iam::111122223333:user/bob")
    assert not allows([allow(resource=f"{BUCKET}/*")], "s3:GetObject", "arn:aws:s3:::AMZN-S3-DEMO-BUCKET/k")


def test_resource_wildcards_stay_in_their_segment_unless_they_end_it() -> None:
    """Wildcards stand within the colon-separated segments; "If the * wildcard is the last character of a resource
    ARN segment, it can expand to match beyond colon boundaries" (IAM JSON policy elements: Resource)."""
    group = "arn:aws:logs:eu-west-1:111122223333:log-group"
    assert allows([allow("logs:*", f"{group}:/app/*")], "logs:PutLogEvents", f"{group}:/app/x:log-stream:s")
    assert allows([allow("logs:*", f"{group}:*:log-stream:*")], "logs:PutLogEvents", f"{group}:g:log-stream:s")
    # a * inside a segment does not swallow a colon
    assert not allows([allow("logs:*", f"{group}:*-app")], "logs:PutLogEvents", f"{group}:a:b-app")
    assert allows([allow("logs:*", f"{group}:*-app")], "logs:PutLogEvents", f"{group}:a/b-app")
    assert not allows([allow("logs:*", f"{group}:a?b")], "logs:PutLogEvents", f"{group}:a:b")
    assert allows([allow("logs:*", f"{group}:a?b")], "logs:PutLogEvents", f"{group}:a/b")
    role = "arn:aws:iam::111122223333:role/gateway-task-???????"
    assert allows([allow("iam:PassRole", role)], "iam:PassRole", "arn:aws:iam::111122223333:role/gateway-task-0a1b2c3")
    assert not allows([allow("iam:PassRole", role)], "iam:PassRole",
                      "arn:aws:iam::111122223333:role/gateway-task-0a1b2c3d")
    assert allows([allow()], "s3:ListAllMyBuckets", "*")
    assert not allows([allow(resource=BUCKET)], "s3:ListAllMyBuckets", "*")


def test_not_resource_applies_to_every_other_resource() -> None:
    statements = [allow(), {"Effect": "Deny", "Action": "s3:*", "NotResource": [BUCKET, f"{BUCKET}/*"]}]
    assert allows(statements, "s3:GetObject", f"{BUCKET}/k")
    assert not allows(statements, "s3:GetObject", "arn:aws:s3:::other-bucket/k")


# -- Condition: the string operators -----------------------------------------------------------------------------------

def test_string_equals_is_exact_and_case_sensitive_ignore_case_is_not() -> None:
    """The guide's example: StringEquals "johndoe" matches only johndoe, StringEqualsIgnoreCase JohnDoe too
    (IAM JSON policy elements: Condition)."""
    assert holds("StringEquals", "aws:username", "johndoe", {"aws:username": "johndoe"})
    assert not holds("StringEquals", "aws:username", "johndoe", {"aws:username": "JohnDoe"})
    assert holds("StringEqualsIgnoreCase", "aws:username", "johndoe", {"aws:username": "JohnDoe"})
    # no wildcards in StringEquals: a * is a character
    assert not holds("StringEquals", "aws:username", "john*", {"aws:username": "johndoe"})
    assert holds("StringEquals", "aws:username", "john*", {"aws:username": "john*"})


def test_string_like_has_wildcards_and_is_case_sensitive() -> None:
    assert holds("StringLike", "s3:prefix", ["", "home/", "home/*"], {"s3:prefix": "home/alice/"})
    assert holds("StringLike", "s3:prefix", "home/?", {"s3:prefix": "home/a"})
    assert not holds("StringLike", "s3:prefix", "home/*", {"s3:prefix": "HOME/alice/"})
    assert not holds("StringLike", "s3:prefix", "home/", {"s3:prefix": "home/alice/"})  # wildcards or exact
    assert holds("StringNotLike", "s3:prefix", "home/*", {"s3:prefix": "HOME/alice/"})


def test_values_of_a_key_are_ored_and_nored_when_negated() -> None:
    """"If a single condition operator includes multiple values for a context key, those values are evaluated
    using a logical OR. If a single negated matching condition operator includes multiple values for a context
    key, those values are evaluated using a logical NOR" (Conditions with multiple context keys or values)."""
    roles = ["audit", "security"]
    assert holds("StringEquals", "aws:PrincipalTag/role", roles, {"aws:PrincipalTag/role": "security"})
    assert not holds("StringEquals", "aws:PrincipalTag/role", roles, {"aws:PrincipalTag/role": "dev"})
    assert not holds("StringNotEquals", "aws:PrincipalTag/role", roles, {"aws:PrincipalTag/role": "audit"})
    assert holds("StringNotEquals", "aws:PrincipalTag/role", roles, {"aws:PrincipalTag/role": "dev"})


def test_operators_and_keys_are_anded() -> None:
    condition = {"StringEquals": {"aws:PrincipalAccount": "111122223333", "aws:ResourceAccount": "111122223333"},
                 "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/deploy*"}}
    statements = [allow(condition=condition)]
    context = {"aws:PrincipalAccount": "111122223333", "aws:ResourceAccount": "111122223333",
               "aws:PrincipalArn": "arn:aws:iam::111122223333:role/deployer"}
    assert allows(statements, "s3:GetObject", f"{BUCKET}/k", context)
    for key, other in (("aws:ResourceAccount", "444455556666"),
                       ("aws:PrincipalArn", "arn:aws:iam::111122223333:role/reader")):
        assert not allows(statements, "s3:GetObject", f"{BUCKET}/k", {**context, key: other}), key


def test_context_key_names_are_case_insensitive() -> None:
    """"Context key names are not case-sensitive. For example, including the aws:SourceIP context key is equivalent
    to testing for AWS:SourceIp" (IAM JSON policy elements: Condition)."""
    assert holds("StringEquals", "aws:SourceIP", "203.0.113.7", {"AWS:SourceIp": "203.0.113.7"})
    assert holds("StringEquals", "iam:ResourceTag/env", "dev", {"iam:ResourceTag/ENV": "dev"})
    with pytest.raises(ValueError, match="twice"):  # a request cannot carry both: which one IAM sees is undefined
        holds("StringEquals", "aws:RequestTag/env", "dev", {"aws:RequestTag/env": "dev", "aws:RequestTag/ENV": "x"})


# -- a key missing from the request; IfExists; Null ----------------------------------------------------------------

@pytest.mark.parametrize(("operator", "holds_without_the_key"), [
    ("StringEquals", False), ("StringLike", False), ("ArnLike", False), ("ArnEquals", False), ("Bool", False),
    ("StringNotEquals", True), ("StringNotLike", True), ("ArnNotLike", True), ("StringNotEqualsIgnoreCase", True),
    ("StringEqualsIfExists", True), ("StringNotEqualsIfExists", True), ("ArnLikeIfExists", True),
])
def test_a_key_missing_from_the_request(operator: str, holds_without_the_key: bool) -> None:
    """"If the key that you specify in a policy condition is not present in the request context, the values do not
    match and the condition is false. If the policy condition requires that the key is not matched, such as
    StringNotLike or ArnNotLike, and the right key is not present, the condition is true"; "...IfExists": "If the
    key is not present, evaluate the condition element as true" (Condition operators)."""
    value = "arn:aws:sns:eu-west-1:111122223333:alarms" if "Arn" in operator else "true"
    assert holds(operator, "aws:SourceArn", value, {}) is holds_without_the_key
    assert holds(operator, "aws:SourceArn", value, {"aws:SourceArn": None}) is holds_without_the_key  # None: absent


def test_if_exists_checks_a_key_that_is_there() -> None:
    assert holds("StringLikeIfExists", "ec2:InstanceType", ["t1.*", "t2.*"], {"ec2:InstanceType": "t2.micro"})
    assert not holds("StringLikeIfExists", "ec2:InstanceType", ["t1.*", "t2.*"], {"ec2:InstanceType": "m5.large"})


def test_null_tests_whether_the_key_is_there() -> None:
    """"true (the key doesn't exist — it is null) or false (the key exists and its value is not null)"."""
    assert holds("Null", "aws:TokenIssueTime", "true", {})
    assert not holds("Null", "aws:TokenIssueTime", "true", {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"})
    assert holds("Null", "aws:ResourceTag/version", "false", {"aws:ResourceTag/version": "v1"})
    assert not holds("Null", "aws:ResourceTag/version", "false", {})
    assert holds("Null", "aws:ResourceTag/version", True, {})  # a JSON boolean in the policy


def test_bool_compares_true_and_false() -> None:
    assert holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": "false"})
    assert holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": False})
    assert holds("Bool", "aws:SecureTransport", False, {"aws:SecureTransport": "FALSE"})
    assert not holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": True})


# -- ARN operators ---------------------------------------------------------------------------------------------------

def test_arn_equals_and_arn_like_match_each_component_with_wildcards_alike() -> None:
    """"Each of the six colon-delimited components of the ARN is checked separately and each can include
    multi-character match wildcards (*) or single-character match wildcards (?). The ArnEquals and ArnLike
    condition operators behave identically"; the guide's example where StringLike matches and ArnLike does not."""
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    assert holds("StringLike", "aws:SourceArn", pattern, {"aws:SourceArn": value})
    for operator in ("ArnLike", "ArnEquals"):
        assert not holds(operator, "aws:SourceArn", pattern, {"aws:SourceArn": value})
        assert holds(operator, "aws:SourceArn", pattern,
                     {"aws:SourceArn": "arn:aws:someservice:us-east-2:111122223333:finance/a:b"})
        assert not holds(operator, "aws:SourceArn", pattern,
                         {"aws:SourceArn": "arn:aws:someservice:us-east-2:111122223333:FINANCE/a"})
        assert not holds(operator, "aws:SourceArn", pattern, {"aws:SourceArn": "not-an-arn"})
    assert holds("ArnNotEquals", "aws:SourceArn", pattern, {"aws:SourceArn": value})


# -- set operators on multivalued keys -------------------------------------------------------------------------------

def test_for_all_values_and_for_any_value() -> None:
    """The guide's DynamoDB examples; "If the key values in the request resolve to an empty data set ..., a
    condition operator modified by ForAllValues returns true, and a condition operator modified by ForAnyValue
    returns false" (Conditions with multiple context keys or values)."""
    allowed = ["PostDateTime", "Message", "Tags"]
    key = "dynamodb:requestedAttributes"
    assert holds("ForAllValues:StringLike", key, allowed, {key: ["PostDateTime", "Message"]})
    assert not holds("ForAllValues:StringLike", key, allowed, {key: ["PostDateTime", "UserName"]})
    assert holds("ForAnyValue:StringLike", key, ["ID", "PostDateTime"], {key: ["UserName", "Message", "PostDateTime"]})
    assert not holds("ForAnyValue:StringLike", key, ["ID", "PostDateTime"], {key: ["UserName"]})
    empty: list[dict[str, Any]] = [{key: []}, {}]
    for context in empty:
        assert holds("ForAllValues:StringLike", key, allowed, context)
        assert not holds("ForAnyValue:StringLike", key, allowed, context)
    # one value given for a set: a set of one
    assert holds("ForAnyValue:StringEquals", "kms:ResourceAliases", "alias/a", {"kms:ResourceAliases": "alias/a"})


def test_for_all_values_of_a_negated_operator_keeps_every_value_out_of_the_set() -> None:
    """The deploy role's retag guard: no tag key of the request may be a scope key, in any case."""
    scope = ["env", "layer", "managed-by"]
    operator = "ForAllValues:StringNotEqualsIgnoreCase"
    assert holds(operator, "aws:TagKeys", scope, {"aws:TagKeys": ["owner", "team"]})
    assert not holds(operator, "aws:TagKeys", scope, {"aws:TagKeys": ["owner", "ENV"]})
    assert holds(operator, "aws:TagKeys", scope, {})
    assert not holds("ForAllValues:StringNotEquals", "aws:TagKeys", scope, {"aws:TagKeys": ["env"]})
    assert holds("ForAllValues:StringNotEquals", "aws:TagKeys", scope, {"aws:TagKeys": ["ENV"]})
    assert holds("ForAnyValue:StringNotEquals", "aws:TagKeys", scope, {"aws:TagKeys": ["env", "owner"]})


# -- what it does not model fails loudly -------------------------------------------------------------------------------

@pytest.mark.parametrize(("operator", "key", "wanted", "context"), [
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "203.0.113.7"}),
    ("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": "5"}),
    ("NullIfExists", "aws:TokenIssueTime", "true", {}),
    ("ForAnyValue:Null", "aws:TagKeys", "true", {}),
    ("SomeValues:StringEquals", "aws:TagKeys", "x", {}),
    ("StringEquals", "s3:prefix", "home/${aws:username}/", {"s3:prefix": "home/alice/"}),
    ("StringEquals", "aws:TagKeys", "env", {"aws:TagKeys": ["env", "owner"]}),  # multivalued: needs a set operator
])
def test_what_it_does_not_model_is_refused(operator: str, key: str, wanted: str, context: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        holds(operator, key, wanted, context)


@pytest.mark.parametrize(("statement", "error"), [
    ({"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"}, ValueError),
    ({"Effect": "Allow", "Action": "s3:*"}, ValueError),
    ({"Action": "s3:*", "Resource": "*"}, ValueError),
    ({"Effect": "allow", "Action": "s3:*", "Resource": "*"}, ValueError),
    ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:*", "Resource": "*"},
     NotImplementedError),
    ({"Effect": "Deny", "NotPrincipal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*"}, NotImplementedError),
])
def test_a_statement_it_cannot_read_is_refused(statement: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        decide([statement], "s3:GetObject", f"{BUCKET}/k")
    with pytest.raises(error):
        grants_some_context([statement], "s3:GetObject", f"{BUCKET}/k")


def test_an_endpoint_policys_principal_star_applies_to_everyone() -> None:
    for principal in ("*", {"AWS": "*"}):
        assert allows([allow(Principal=principal)], "s3:GetObject", f"{BUCKET}/k")


# -- the upper bound for a context that is not modelled ---------------------------------------------------------------

def test_grants_some_context_takes_allow_conditions_to_hold_and_conditional_denies_not_to() -> None:
    via_s3 = {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    key = "arn:aws:kms:eu-west-1:111122223333:key/k"
    assert grants_some_context([allow("kms:Decrypt", key, via_s3)], "kms:Decrypt", key)
    assert not allows([allow("kms:Decrypt", key, via_s3)], "kms:Decrypt", key)  # no context: the condition fails
    assert not grants_some_context([allow("kms:Decrypt", key, via_s3)], "kms:Encrypt", key)
    assert grants_some_context([allow("kms:*"), deny("kms:*", "*", via_s3)], "kms:Decrypt", key)
    assert not grants_some_context([allow("kms:*"), deny("kms:Decrypt")], "kms:Decrypt", key)
    assert not grants_some_context([], "kms:Decrypt", key)


# -- where the two evaluators this one replaces disagreed (tests/egress_model.py, tests/test_deploy_role.py) -------

def test_where_the_replaced_evaluators_disagreed() -> None:
    """Each case the guide settles: the deploy role tests' evaluator took a Deny for an allow and a * in a
    StringEquals value for a wildcard; the egress model's matched resources and StringLike values in any case,
    took ArnEquals for exact (no wildcards), looked condition keys up case-sensitively, and skipped a NotAction
    statement of a role policy."""
    # Effect: a Deny statement that matches is no grant
    assert not allows([deny("s3:GetObject")], "s3:GetObject", f"{BUCKET}/k")
    # StringEquals has no wildcards
    assert not allows([allow(condition={"StringEquals": {"aws:PrincipalTag/team": "ml-*"}})], "s3:GetObject",
                      f"{BUCKET}/k", {"aws:PrincipalTag/team": "ml-platform"})
    # resources and StringLike values are case-sensitive
    assert not allows([allow(resource="arn:aws:s3:::bucket/*")], "s3:GetObject", "arn:aws:s3:::Bucket/k")
    assert not allows([allow(condition={"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Deploy*"}})],
                      "s3:GetObject", f"{BUCKET}/k", {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/deployer"})
    # ArnEquals takes wildcards
    assert allows([allow(condition={"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}})],
                  "s3:GetObject", f"{BUCKET}/k", {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/deployer"})
    # condition key names in any case
    assert allows([allow(condition={"StringEquals": {"AWS:PrincipalAccount": "111122223333"}})], "s3:GetObject",
                  f"{BUCKET}/k", {"aws:PrincipalAccount": "111122223333"})
    # a NotAction Allow of a role policy grants what it does not name
    assert grants_some_context([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "s3:GetObject")


def test_as_list() -> None:
    assert iam_eval.as_list("s3:*") == ["s3:*"]
    assert iam_eval.as_list(["a", "b"]) == ["a", "b"]
    assert iam_eval.as_list(("a",)) == ["a"]
