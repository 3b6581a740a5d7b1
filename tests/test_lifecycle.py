"""What the platform names that AWS retires (Lambda runtime, Amazon MQ engine, CodeBuild image and Python, Fargate
platform version, App Mesh): one table with dates and sources (shared/lifecycle.py), checked three ways.

* Coverage: every such value the shipped envs' synth names has an entry, and the preflight checks exactly those.
* Calendar: CI fails ``CI_DAYS`` before AWS blocks creating anything the shipped envs name (this test reads the real
  date on purpose: it is the alarm that goes off before a first `up` in a fresh account breaks).
* Preflight: ``nox -s up``/``preview`` refuses (exit 2, before any layer) on and after a block date, and notes what is
  close to one.
"""

from __future__ import annotations

import ast
import io
import json
import sys
import tomllib
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT, lifecycle, venvcheck
from shared.envs import env_names, load_env
from shared.lifecycle import (
    CI_DAYS,
    CODEBUILD_IMAGE,
    CODEBUILD_PYTHON,
    FARGATE_PLATFORM,
    LAMBDA_RUNTIME,
    LIFECYCLES,
    MQ_ENGINE,
    WARN_DAYS,
    lifecycle_findings,
    named_by,
)
from shared.orchestrate.cli import main
from tests.aws_helpers import ReleasedEverywhere
from tests.conftest import SHIPPED_ENVS
from tests.spec_envs import USER_ENV_DIR, user_envs
from tests.synth_helpers import spec_documents
from tests.test_orchestrate import RecordingRunner, management_api  # noqa: F401 - its fixture: the reach probe's endpoint

# every env file that deploys, with its accepted snapshots (a fork's own envs: their engines and images are theirs)
ENVS = env_names(USER_ENV_DIR)
SNAPSHOTS = REPO_ROOT / "tests" / "snapshots"


def named_in_synth(env: str) -> set[tuple[str, str]]:
    """(kind, value) of every lifecycle item the synthesized layers of the env file ``env`` that deploys name (its
    snapshots, which test_synth keeps equal to the code)."""
    return named_in(json.loads(path.read_text(encoding="utf-8")) for path in sorted((SNAPSHOTS / env).glob("*.json")))


def named_in(documents: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """(kind, value) of every lifecycle item ``documents`` (synth documents) name."""
    found: set[tuple[str, str]] = set()
    for document in documents:
        for resource in document["resources"]:
            inputs: dict[str, Any] = resource["inputs"]
            kind = resource["type"]
            if kind == "aws:lambda/function:Function":
                found.add((LAMBDA_RUNTIME, inputs["runtime"]))
            elif kind == "aws:mq/broker:Broker":
                found.add((MQ_ENGINE, inputs["engineVersion"]))
            elif kind == "aws:codebuild/project:Project":
                found.add((CODEBUILD_IMAGE, inputs["environment"]["image"]))
                buildspec = yaml.safe_load(inputs["source"]["buildspec"])
                found.add((CODEBUILD_PYTHON, str(buildspec["phases"]["install"]["runtime-versions"]["python"])))
            elif kind == "aws:ecs/service:Service":
                found.add((FARGATE_PLATFORM, inputs.get("platformVersion") or "LATEST"))  # unset: ECS runs LATEST
    return found


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_the_examples_name_every_kind_of_item_with_dates(env: str) -> None:
    """The example envs run a Lambda function, an Amazon MQ broker, the CodeBuild deploy runner and ECS services, so
    the check below sees every kind (an env file of a fork may have fewer: an external broker has no engine here)."""
    assert {kind for kind, _ in named_in(spec_documents(env).values())} >= {
        LAMBDA_RUNTIME, MQ_ENGINE, CODEBUILD_IMAGE, CODEBUILD_PYTHON, FARGATE_PLATFORM}


@pytest.mark.parametrize("env", ENVS)
def test_every_runtime_engine_image_and_platform_the_synth_names_has_dates(env: str) -> None:
    named = named_in_synth(env)
    assert named <= set(LIFECYCLES), f"no lifecycle entry: {sorted(named - set(LIFECYCLES))}"
    # the preflight checks exactly what the programs name
    with user_envs():
        assert {(kind, value) for kind, value, _ in named_by(load_env(env))} == named


@pytest.mark.parametrize("env", ENVS)
def test_nothing_a_shipped_env_names_is_within_ci_days_of_a_block_date(env: str) -> None:
    """The real date: fails CI_DAYS before AWS blocks creating a runtime, engine or image an env file that deploys
    names."""
    horizon = date.today() + timedelta(days=CI_DAYS)
    with user_envs():
        named = named_by(load_env(env))
    for kind, value, where in named:
        blocked = LIFECYCLES[(kind, value)].blocks_create
        assert blocked is None or blocked > horizon, (
            f"{kind} {value} ({where}): AWS blocks creating it on {blocked}; move to its successor now (this test "
            f"reads today's date on purpose and fails {CI_DAYS} days ahead: README, \"AWS end-of-support dates\")")


def test_every_entry_names_its_source_and_dates_in_order() -> None:
    for item in LIFECYCLES.values():
        assert item.source
        if item.blocks_create and item.blocks_update:
            assert item.blocks_create <= item.blocks_update


def test_an_engine_with_an_announced_end_stops_taking_new_brokers_30_days_before() -> None:
    item = lifecycle._mq_engine("3.13", date(2027, 3, 17))
    assert item.blocks_create == date(2027, 2, 15)


# -- the preflight -----------------------------------------------------------------------------------


def run(action: str, runner: RecordingRunner, out: io.StringIO) -> int:
    return main([action, "dev", *([] if action == "preview" else ["--yes"])],  # preview refuses --yes
                runner=runner, out=out, confirm=lambda prompt: True,
                images=ReleasedEverywhere())


@pytest.mark.parametrize("action", ["up", "preview"])
def test_up_is_refused_once_aws_blocks_creating_the_lambda_runtime(action: str, env_dir: Any,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(lifecycle, "today", lambda: date(2029, 7, 31))
    runner = RecordingRunner()
    assert run(action, runner, io.StringIO()) == 2 and runner.started() == []
    error = capsys.readouterr().err
    assert "python3.13" in error and "since 2029-07-31" in error and "nothing was run" in error


def test_up_notes_what_comes_within_warn_days_and_runs(env_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 6, 1))
    runner = RecordingRunner()
    out = io.StringIO()
    assert run("up", runner, out) == 0 and runner.started()
    assert "note: dev:" in out.getvalue() and "3.11" in out.getvalue() and "deprecated 2027-10-31" in out.getvalue()


def test_the_runner_s_python_past_its_end_of_life_is_a_note_not_a_refusal(env_dir: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """CodeBuild keeps a runtime in its images past its end of life (standard:7.0 of 2026-04 still offered 3.9): no
    AWS date blocks the runner, so up says so and runs; no refusal may claim an AWS block that is not one."""
    monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 11, 15))
    runner = RecordingRunner()
    out = io.StringIO()
    assert run("up", runner, out) == 0 and runner.started()
    assert "3.11" in out.getvalue() and "deprecated 2027-10-31" in out.getvalue()
    assert LIFECYCLES[(CODEBUILD_PYTHON, "3.11")].blocks_create is None


def test_the_note_starts_warn_days_before_the_first_date_to_the_day() -> None:
    """The runner's Python (3.11) ends its life on 2027-10-31: the note comes on the first day of the WARN_DAYS
    before it, and not the day before that."""
    dev = load_env("dev")
    first = date(2027, 10, 31) - timedelta(days=WARN_DAYS)

    def noted(day: date) -> bool:
        return any("3.11" in note for note in lifecycle_findings(dev, day)[1])

    assert noted(first) and not noted(first - timedelta(days=1))


def _appmesh(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))


def test_an_app_mesh_env_is_only_noted_until_its_end_of_support(edit_env: Any) -> None:
    _appmesh(edit_env)
    refusals, notes = lifecycle_findings(load_env("dev"), date(2026, 9, 30))
    assert refusals == [] and any("AWS App Mesh" in note for note in notes)


@pytest.mark.parametrize("action", ["up", "preview"])
def test_an_app_mesh_env_is_refused_after_its_end_of_support(action: str, edit_env: Any,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """After 2026-09-30 AWS serves no App Mesh resource: `up` would change network and discovery, then fail at mesh."""
    _appmesh(edit_env)
    monkeypatch.setattr(lifecycle, "today", lambda: date(2026, 10, 1))
    runner = RecordingRunner()
    assert run(action, runner, io.StringIO()) == 2 and runner.started() == []
    error = capsys.readouterr().err
    assert "mesh.provider appmesh" in error and "service-connect" in error and "nothing was run" in error


def test_credentials_due_within_a_month_or_overdue_are_a_note_of_up(env_dir: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing rotates the generated credentials but a new epoch, and the policy does not judge the date: `up` says
    when dev's (epoch 2026-11-01, max_age_days 180: due 2027-04-30) come due, and still runs."""
    rotation = load_env("dev").messaging.credentials_rotation
    assert rotation is not None and rotation.due == date(2027, 4, 30)
    for day, expected in ((date(2027, 3, 30), None), (date(2027, 4, 1), "due on 2027-04-30"),
                          (date(2027, 5, 2), "overdue since 2027-04-30")):
        monkeypatch.setattr(lifecycle, "today", lambda day=day: day)
        runner, out = RecordingRunner(), io.StringIO()
        assert run("up", runner, out) == 0 and runner.started()
        notes = [line for line in out.getvalue().splitlines() if "credentials_rotation" in line]
        if expected is None:
            assert notes == [], notes
        else:
            assert len(notes) == 1 and expected in notes[0] and "previous_epoch: 2026-11-01" in notes[0], notes


def test_a_value_without_an_entry_is_refused(env_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "PYTHON_LAMBDA_RUNTIME", "python3.99")
    refusals, _ = lifecycle_findings(load_env("dev"), date(2026, 12, 1))
    assert refusals == ["Lambda runtime python3.99 (shared/lifecycle.py PYTHON_LAMBDA_RUNTIME) has no entry in "
                        "shared/lifecycle.py LIFECYCLES: add its deprecation dates and their source first"]


def test_a_broker_engine_past_its_end_is_refused_naming_the_env_key(env_dir: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LIFECYCLES, (MQ_ENGINE, "4.2"), lifecycle._mq_engine("4.2", date(2027, 1, 1)))
    refusals, _ = lifecycle_findings(load_env("dev"), date(2026, 12, 15))
    assert len(refusals) == 1 and "messaging.engine_version" in refusals[0] and "since 2026-12-02" in refusals[0]


# -- the deployer's Python, the Lambda runtime's Python ----------------------------------------------


def _minor(text: str) -> tuple[int, int]:
    major, minor = text.removeprefix("python").split(".")[:2]
    return int(major), int(minor)


def test_the_lambda_and_runner_pythons_are_ones_the_platform_is_tested_on() -> None:
    """The functions' code and the deploy runner run on Pythons `nox` accepts (shared/venvcheck.py SUPPORTED,
    pyproject requires-python), so CI can run the tests on each."""
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    for version in (_minor(lifecycle.PYTHON_LAMBDA_RUNTIME), _minor(lifecycle.DEPLOY_RUNNER_PYTHON)):
        assert version in venvcheck.SUPPORTED, (version, requires)


#: Modules removed from the standard library in 3.12 (distutils, imp, asynchat, asyncore, smtpd: PEP 632, "What's New
#: In Python 3.12") and 3.13 (PEP 594's dead batteries, lib2to3: "What's New In Python 3.13"): present on the 3.11
#: the tests may run on, absent from the Lambda runtime.
REMOVED_BY_313 = frozenset({
    "distutils", "imp", "asynchat", "asyncore", "smtpd",
    "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis", "nntplib",
    "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib", "lib2to3",
})


@pytest.mark.parametrize("source", ["broker_admin.py", "queue_metrics.py"])
def test_each_function_imports_only_what_its_runtime_ships(source: str) -> None:
    """The Lambda runtime ships the standard library of its Python and boto3/botocore, nothing else."""
    tree = ast.parse((REPO_ROOT / "shared" / "rotation" / source).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    allowed = (set(sys.stdlib_module_names) - REMOVED_BY_313) | {"boto3", "botocore", "__future__"}
    assert imported <= allowed, sorted(imported - allowed)


def test_ci_runs_the_deploy_runners_python() -> None:
    """CI's jobs (setup-platform's default) and the in-VPC runner deploy with the same Python, the one the table dates
    (its end of life is a note of `up`)."""
    action = yaml.safe_load((REPO_ROOT / ".github" / "actions" / "setup-platform" / "action.yml").read_text())
    assert action["inputs"]["python-version"]["default"] == lifecycle.DEPLOY_RUNNER_PYTHON


@pytest.mark.parametrize("zone", ["Etc/GMT-14", "Etc/GMT+12"])
def test_today_is_the_utc_day_wherever_up_runs(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's dates (App Mesh ended 2026-09-30) are UTC days: a laptop at UTC+14 or UTC-12 (26 hours apart, so their
    local dates always differ) must refuse or note on the same day as the CI runner in UTC."""
    import time
    from datetime import UTC, datetime

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        before = datetime.now(UTC).date()
        day = lifecycle.today()
        assert day in (before, datetime.now(UTC).date()), (zone, day, before)
    finally:
        monkeypatch.undo()
        time.tzset()
