"""Every customer managed key of every layer of every shipped env, seen together: what each key's users need
from its policy, its alias, its protection.

The layers' own tests check their keys one by one; these hold what only the whole env shows (an alias another
layer also takes) and what every key needs whoever uses it: the account's IAM principals (deploy role,
task and function roles, the CI read role) reach a key only where its policy delegates to IAM (AWS KMS developer
guide, "Default key policy": the account root statement), ECR creates its grants with the caller's
kms:CreateGrant/DescribeKey/RetireGrant (ECR user guide, "Encryption at rest"), and CreateKey refuses a policy
that would not let the caller PutKeyPolicy again (KMS API reference, CreateKey: BypassPolicyLockoutSafetyCheck).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.envs import load_env
from shared.policy_support import allows_action, principal_values
from tests.synth_helpers import of_type, synth_layers

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
LAYERS = ("network", "broker", "messaging", "compute")
#: what the account's IAM principals call on the platform's keys through the root statement
IAM_DELEGATED = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant",
                 "kms:RetireGrant", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource")


def keys_and_aliases(env: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    documents = synth_layers(env, *LAYERS)
    found = []
    for layer in LAYERS:
        document = documents[layer]
        for key in of_type(document, KEY):
            found.append((layer, key, [a for a in of_type(document, ALIAS) if a.get("parent") == key["urn"]]))
    return found


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_key_delegates_to_the_accounts_iam_and_names_no_other_principal_of_it(env: str) -> None:
    account = load_env(env).account_id
    keys = keys_and_aliases(env)
    assert len(keys) >= 10
    for layer, key, _ in keys:
        statements = json.loads(key["inputs"]["policy"])["Statement"]
        root = [s for s in statements if principal_values(s) == [f"arn:aws:iam::{account}:root"]]
        assert len(root) == 1 and "Condition" not in root[0], f"{layer}/{key['name']}: one root statement"
        missing = [action for action in IAM_DELEGATED if not allows_action(root[0], action)]
        assert missing == [], f"{layer}/{key['name']}: the root statement lacks {missing}"
        # a role (or user) of the account named in a key policy would be created in the same up that needs the key,
        # and KMS refuses a policy naming a principal that does not exist yet (MalformedPolicyDocumentException)
        others = [p for s in statements for p in principal_values(s)
                  if str(p).startswith("arn:") and p != f"arn:aws:iam::{account}:root"]
        assert others == [], f"{layer}/{key['name']}: names {others}"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_key_has_one_alias_of_its_env_unique_across_the_layers_and_is_protected_as_the_env(env: str) -> None:
    protect = load_env(env).protect
    names: dict[str, str] = {}
    for layer, key, aliases in keys_and_aliases(env):
        assert len(aliases) == 1, f"{layer}/{key['name']}: {len(aliases)} aliases"
        name = aliases[0]["inputs"]["name"]
        assert name.startswith(f"alias/ml-platform/{env}/"), name
        assert name not in names, f"{name}: {names.get(name)} and {layer}/{key['name']}"
        names[name] = f"{layer}/{key['name']}"
        assert key["protect"] is protect, f"{layer}/{key['name']}: protect {key['protect']}"
        assert key["inputs"]["enableKeyRotation"] is True and key["inputs"]["deletionWindowInDays"] == 30
