"""What a later change of each env key does to a deployed env: the change matrix, as a specification.

The rows are data, ``tests/fixtures/env_key_changes.yaml``. Each changes one key of one shipped env
file (from its value there, or from the shape ``given`` sets up on both sides) to another valid value,
synthesizes the env with and without the change, and runs the offline plan diff (:mod:`shared.plan_diff`)
between the two. The row states the class of the outcome, and the test fails when the code changes it:

* ``refused by the loader``: the env loader stops the change (exit 2) before any layer runs;
* ``no resource change``: nothing in any layer's synth changes (orchestration or policy settings);
* ``in place``: resources are only added or updated;
* ``replaces stateless only``: resources are replaced or deleted, none of a type in
  :data:`shared.protect.STATEFUL_TYPES` (nothing that holds data is lost);
* ``replaces stateful: gated``: a resource holding data would be replaced or deleted; ``nox -s up``
  refuses it unless the URN is named with ``--allow-replace`` (:mod:`shared.orchestrate.replacements`
  judges by the same type list), and where the env protects state (prod) the resource is ``protect``-ed
  as well (the diff marks it blocked). The row names the stateful types;
* ``identity: a new env``: the loader accepts the change (it cannot know the deployed value), but it
  points the env at other cloud resources or other stacks; README says not to change it.

Every row is also a line of README's "What a change of each key does" table (same key, same outcome),
so the table users read cannot drift from what the code does; and every leaf key of the env schema has a
row, so a key added later needs one.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

import shared.synth.engine as engine
from shared import REPO_ROOT
from shared.deploy_role import deploy_policies
from shared.envs import EnvConfig, active_env_dir, load_env
from shared.errors import ConfigError, ConfigErrors
from shared.plan_diff import Change, diff_layers
from shared.protect import is_stateful
from tests.readme_helpers import assert_readme_block_is
from tests.spec_envs import SPEC_ENV_DIR

REFUSED = "refused by the loader"
NO_CHANGE = "no resource change"
IN_PLACE = "in place"
STATELESS = "replaces stateless only"
STATEFUL = "replaces stateful: gated"
IDENTITY = "identity: a new env"
OUTCOMES = (REFUSED, NO_CHANGE, IN_PLACE, STATELESS, STATEFUL, IDENTITY)

#: Engine objects that are not cloud resources: a StackReference is a read, a provider a configuration (a
#: provider's changed default tags still update every resource in place).
NOT_CLOUD_RESOURCES = ("pulumi:pulumi:StackReference", "pulumi:providers:")

SHIPPED = ("dev", "staging", "prod")
MATRIX_FILE = REPO_ROOT / "tests" / "fixtures" / "env_key_changes.yaml"
TABLE_START = "<!-- env-key-changes: start (tests/test_env_key_changes.py) -->"
TABLE_END = "<!-- env-key-changes: end -->"

Edits = dict[str, Any]  # dotted path -> new value


@dataclass(frozen=True)
class KeyChange:
    key: str                      #: the key's path in the env schema (``<service>`` for a service name)
    env: str                      #: the shipped env it is changed in
    set: Edits                    #: the change
    outcome: str
    effect: str                   #: what the change does, for README's table
    detail: str = ""              #: which change of the key, when the key has rows for several
    stateful: frozenset[str] = frozenset()  #: the stateful types a STATEFUL row replaces or deletes
    given: str | None = None      #: the shape applied to both sides first
    given_edits: Edits = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.key} ({self.detail})" if self.detail else self.key


def _load_matrix() -> tuple[KeyChange, ...]:
    data = yaml.safe_load(MATRIX_FILE.read_text(encoding="utf-8"))
    shapes: dict[str, Edits] = data["shapes"]
    rows = []
    for row in data["rows"]:
        change, given = row.pop("set"), row.get("given")
        rows.append(KeyChange(**{**row, "stateful": frozenset(row.get("stateful", ()))},
                              set=shapes[change] if isinstance(change, str) else change,
                              given_edits=shapes[given] if given else {}))
    return tuple(rows)


MATRIX = _load_matrix()


def _apply_edits(data: dict[str, Any], edits: Edits) -> None:
    for path, value in edits.items():
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = copy.deepcopy(value)


# -- the harness ------------------------------------------------------------------------------------
@contextmanager
def _env_files(*edits: Edits, env: str) -> Iterator[None]:
    """The shipped env files in a scratch folder with ``edits`` applied to ``env``, active for the block."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "environments"
        folder.mkdir()
        for name in SHIPPED:
            shutil.copy2(SPEC_ENV_DIR / f"{name}.yaml", folder)
        path = folder / f"{env}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for edit in edits:
            _apply_edits(data, edit)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        with active_env_dir(folder):
            yield


#: What the deploy role's policies allow: (action, resource) -> the conditions of each Allow naming them, as
#: (operator, key) -> values.
Grants = dict[tuple[str, str], list[dict[tuple[str, str], frozenset[str]]]]

_BASELINES: dict[tuple[str, str], tuple[dict[str, dict[str, Any]], Grants]] = {}


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _grants(env: str, documents: dict[str, dict[str, Any]]) -> Grants:
    """The Allow statements of the deploy role's policies (`nox -s roles`) for the active env files' ``env``."""
    grants: Grants = {}
    for policy in deploy_policies(env, environ={}, documents=documents):
        for statement in policy.document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            condition = {(operator, key): frozenset(_listed(values))
                         for operator, pairs in statement.get("Condition", {}).items() for key, values in pairs.items()}
            for action in _listed(statement["Action"]):
                for resource in _listed(statement["Resource"]):
                    grants.setdefault((action, resource), []).append(condition)
    return grants


def _not_granted(before: Grants, after: Grants) -> list[str]:
    """What the deploy role's policies for ``after`` allow and those for ``before`` do not: an action on a resource
    they lack, or under a condition no old one admits (same keys, each a subset of the old values)."""
    missing = []
    for (action, resource), conditions in sorted(after.items()):
        for condition in conditions:
            if not any(old.keys() == condition.keys() and all(condition[k] <= old[k] for k in condition)
                       for old in before.get((action, resource), [])):
                missing.append(f"{action} on {resource} {dict(condition) or ''}".rstrip())
    return missing


def _baseline(case: KeyChange) -> tuple[dict[str, dict[str, Any]], Grants]:
    """The env before the change (its ``given`` shape), synthesized once per shape, and its deploy role's grants."""
    key = (case.env, case.given or "")
    if key not in _BASELINES:
        with _env_files(case.given_edits, env=case.env):
            documents = engine.synth_env(case.env)
            _BASELINES[key] = documents, _grants(case.env, documents)
    return _BASELINES[key]


@dataclass
class Result:
    refused: ConfigError | None = None
    protects: bool = False  #: whether the changed env protects its stateful resources
    changes: list[tuple[str, Change]] = field(default_factory=list)  # (layer, change) of cloud resources
    #: what the deploy role's policies must newly allow (its policies from before the change deny it)
    not_granted: list[str] = field(default_factory=list)

    @property
    def destroyed(self) -> list[tuple[str, Change]]:
        return [(layer, c) for layer, c in self.changes
                if c.action in ("replace", "delete") and not c.type.startswith(NOT_CLOUD_RESOURCES)]

    @property
    def stateful(self) -> frozenset[str]:
        return frozenset(c.type for _, c in self.destroyed if is_stateful(c.type))


def _apply(case: KeyChange) -> Result:
    before, granted = _baseline(case)
    with _env_files(case.given_edits, case.set, env=case.env):
        try:
            protects = load_env(case.env).protect
        except ConfigError as error:
            return Result(refused=error)
        after = engine.synth_env(case.env)
        needed = _grants(case.env, after)
    components = {r["urn"] for document in (*before.values(), *after.values())
                  for r in document["resources"] if not r.get("custom", True)}
    result = Result(protects=protects, not_granted=_not_granted(granted, needed))
    for layer_diff in diff_layers(dict(before), dict(after), list(after)):
        result.changes += [(layer_diff.layer, change) for change in layer_diff.changes if change.urn not in components]
    return result


def _outcome(result: Result) -> str:
    if result.refused is not None:
        return REFUSED
    if not result.changes:
        return NO_CHANGE
    if result.stateful:
        return STATEFUL
    return STATELESS if result.destroyed else IN_PLACE


def _describe(result: Result) -> str:
    if result.refused is not None:
        return str(result.refused)
    return "\n".join(f"  {layer}: {c.action} {c.type} {c.name} {', '.join(c.inputs)}" for layer, c in result.changes)


# -- the specification --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", MATRIX, ids=[f"{case.label}@{case.env}" for case in MATRIX])
def test_what_a_change_of_the_key_does(case: KeyChange) -> None:
    result = _apply(case)
    if case.outcome == IDENTITY:
        # The loader accepts it (it cannot know what was deployed); README says what it means.
        assert result.refused is None, str(result.refused)
        return
    actual = _outcome(result)
    assert actual == case.outcome, (f"{case.label} in {case.env}: expected {case.outcome}, got {actual}\n"
                                    f"{_describe(result)}")
    if case.outcome == REFUSED:
        assert result.refused is not None
        keys = [p.key for p in result.refused.problems] if isinstance(result.refused, ConfigErrors) else \
            [result.refused.key]
        assert any(key.startswith(case.key.split(" ")[0]) for key in keys), keys
        assert Path(result.refused.file).name == f"{case.env}.yaml"
    if case.outcome == STATEFUL:
        assert result.stateful == case.stateful, _describe(result)
        # Where the env protects state, each stateful loss is also blocked by `protect` (and by `nox -s diff`).
        assert all(c.blocked == result.protects for _, c in result.destroyed if is_stateful(c.type)), \
            _describe(result)
    # The deploy role's policies are the user's (nox -s roles prints them; no stack may write them): a change the old
    # ones do not allow stops `up` with AccessDenied at that call, after the layer's earlier changes went through. So
    # the row tells the user to update them first.
    assert not result.not_granted or "nox -s roles" in case.effect, (
        f"{case.label} in {case.env} needs the deploy role's policies updated (nox -s roles), which the row does not "
        "say; newly needed:\n  " + "\n  ".join(result.not_granted[:10]))


def test_unprotecting_prod_is_refused_by_its_mandatory_policy(tmp_path: Path) -> None:
    """The row "protect_stateful (true to false)": no resource changes, the policy run (and `up`'s) fails."""
    import subprocess
    import sys

    with _env_files({"protect_stateful": False}, env="prod"):
        result = subprocess.run([sys.executable, "-m", "shared.policy", "prod", "--json", str(tmp_path / "f.json")],
                                capture_output=True, text=True, cwd=REPO_ROOT, check=False,
                                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 1, result.stdout + result.stderr
    findings = yaml.safe_load((tmp_path / "f.json").read_text(encoding="utf-8"))
    for rule in ("prod-protect-stateful", "stateful-no-force-destroy"):  # the buckets get force_destroy too
        assert any(f["rule"] == rule and f["enforcement"] == "mandatory" and not f["suppressed"]
                   for f in findings), rule


def test_the_matrix_file_is_well_formed() -> None:
    for case in MATRIX:
        assert case.env in SHIPPED and case.outcome in OUTCOMES, case
        assert bool(case.stateful) == (case.outcome == STATEFUL), f"{case.label}: stateful types iff {STATEFUL!r}"
    labels = [(case.label, case.env) for case in MATRIX]
    assert len(labels) == len(set(labels)), "a row is listed twice"


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        candidates = [annotation, *get_args(annotation)]
        nested = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if get_origin(annotation) is dict:
            value = get_args(annotation)[1]
            if isinstance(value, type) and issubclass(value, BaseModel):
                yield from _leaf_keys(value, f"{key}.<service>.")
                continue
            yield key
        elif nested is not None and get_origin(annotation) is not tuple:
            yield from _leaf_keys(nested, f"{key}.")
        else:
            yield key


def test_every_key_of_the_env_schema_has_a_row() -> None:
    covered = {case.key for case in MATRIX}
    missing = sorted(key for key in _leaf_keys(EnvConfig) if key not in covered)
    assert missing == [], f"env keys without a row in the change matrix: {missing}"


def readme_table() -> str:
    """README's table, as the matrix writes it."""
    lines = ["| key (change) | env | outcome | what it does |", "|---|---|---|---|"]
    for case in MATRIX:
        given = f", {case.given}" if case.given else ""
        stateful = f" ({', '.join(sorted(t.rsplit(':', 1)[-1] for t in case.stateful))})" if case.stateful else ""
        lines.append(f"| `{case.key}`{f' ({case.detail})' if case.detail else ''} | {case.env}{given} | "
                     f"{case.outcome}{stateful} | {case.effect} |")
    return "\n".join(lines)


CHANGES = (IN_PLACE, STATELESS, STATEFUL, NO_CHANGE)
#: how a row says `up` refuses the changed env for what AWS no longer runs
LIFECYCLE_REFUSAL = "(App Mesh ended"


@pytest.mark.parametrize("case", [case for case in MATRIX if case.outcome in CHANGES], ids=lambda case: case.label)
def test_a_change_up_can_no_longer_make_says_so(case: KeyChange) -> None:
    """The outcome is what the plan diff shows; `up` also refuses, before any layer, an env that names what AWS no
    longer runs (shared.lifecycle: App Mesh since its end of support). A row whose changed env `up` refuses today
    says so, or an operator of a not-yet-moved env reads "in place" and gets exit 2."""
    from datetime import date

    from shared.lifecycle import lifecycle_findings

    with _env_files(case.given_edits, case.set, env=case.env):
        refusals, _ = lifecycle_findings(load_env(case.env), date.today())
    assert bool(refusals) == (LIFECYCLE_REFUSAL in case.effect), (case.label, refusals, case.effect)


def test_readme_tells_the_user_what_each_change_does() -> None:
    assert_readme_block_is(TABLE_START, TABLE_END, "env-key table", readme_table(), "the matrix")
