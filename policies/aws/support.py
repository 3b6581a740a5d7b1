"""Kept so rule files written against it keep working: every helper lives in :mod:`shared.policy_support`.

New rules import from ``shared.policy_support``; this module defines nothing of its own (a test keeps
it that way) and goes once no rule imports it.
"""

from shared.policy_support import (
    UNKNOWN,
    applies_to,
    as_int,
    as_list,
    container_definitions,
    container_label,
    contains_unknown,
    describe_ports,
    get,
    identity_values,
    is_public_statement,
    is_true,
    is_world,
    parse_json,
    plain,
    policy_statements,
    principal_values,
    protocol_name,
    referenced_targets,
    undecidable,
)

__all__ = [
    "UNKNOWN",
    "applies_to",
    "as_int",
    "as_list",
    "container_definitions",
    "container_label",
    "contains_unknown",
    "describe_ports",
    "get",
    "identity_values",
    "is_public_statement",
    "is_true",
    "is_world",
    "parse_json",
    "plain",
    "policy_statements",
    "principal_values",
    "protocol_name",
    "referenced_targets",
    "undecidable",
]
