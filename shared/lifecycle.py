"""When AWS stops creating what the platform names: one table of end-of-support dates, and the check that reads it.

A runtime, engine version or image the code names (not the env file's choice alone) keeps working in a deployed
env past its deprecation, but a first `up` in a fresh account (a new env, a recovery in another account or region)
fails on it from the day AWS blocks creating it. The table says, for each, from which day that happens, and where
the date comes from. The orchestrator's ``up``/``preview`` (:func:`lifecycle_findings`) refuses (exit 2) an env
naming anything whose creation is blocked, and notes anything within :data:`WARN_DAYS` of its first date;
``tests/test_lifecycle.py`` fails :data:`CI_DAYS` ahead of a block date, and fails when the synth names a runtime,
engine, image or platform version the table does not hold.

Standard library and the env schema only (the orchestrator reads it without Pulumi).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.envs import EnvConfig
from shared.errors import PlatformError

#: How long before its first date a named item is a `note:` of `up` and `preview`.
WARN_DAYS = 180
#: How long before a block date the calendar test fails, so CI asks for the move well before `up` breaks.
CI_DAYS = 90

LAMBDA_RUNTIME = "Lambda runtime"
MQ_ENGINE = "Amazon MQ for RabbitMQ engine"
CODEBUILD_IMAGE = "CodeBuild image"
CODEBUILD_PYTHON = "CodeBuild Python runtime"
FARGATE_PLATFORM = "Fargate platform version"
APP_MESH = "AWS App Mesh"

#: What the platform's programs name (their one definition: the components import them from here).
#: The Lambda functions' runtime (broker admin rotation, queue metrics publisher): standard library and boto3 only.
PYTHON_LAMBDA_RUNTIME = "python3.13"
#: The deploy runner's CodeBuild image: Ubuntu, not Amazon Linux, because as a CodeBuild-hosted GitHub Actions
#: runner its jobs run actions/setup-python, which has no builds for Amazon Linux 2023.
DEPLOY_RUNNER_IMAGE = "aws/codebuild/standard:8.0"
#: The deploy runner's Python (buildspec runtime-versions; the platform supports 3.11-3.13: shared/venvcheck.py).
DEPLOY_RUNNER_PYTHON = "3.11"
#: The ECS services name no platform_version, so Fargate runs LATEST.
FARGATE_PLATFORM_VERSION = "LATEST"


@dataclass(frozen=True)
class Lifecycle:
    """One thing the platform names and its dates (None: none announced)."""

    kind: str
    value: str
    #: AWS stops patching it / supporting it (a `note:` from WARN_DAYS before)
    deprecated: date | None
    #: from this day AWS refuses to create it (a first `up` fails; the orchestrator refuses)
    blocks_create: date | None
    #: from this day AWS refuses to update it (any `up` that changes it fails)
    blocks_update: date | None
    #: where the dates come from (the page a maintainer re-reads when bumping)
    source: str

    @property
    def first_date(self) -> date | None:
        dates = [d for d in (self.deprecated, self.blocks_create, self.blocks_update) if d is not None]
        return min(dates) if dates else None


def _mq_engine(version: str, end_of_support: date | None) -> Lifecycle:
    # Amazon MQ developer guide, "Managing Amazon MQ for RabbitMQ engine versions" (version support calendar): no new
    # broker on a version within 30 days of its end of support; at the end, Amazon MQ upgrades brokers itself.
    return Lifecycle(MQ_ENGINE, version, end_of_support,
                     end_of_support - timedelta(days=30) if end_of_support else None, None,
                     "Amazon MQ developer guide, \"Managing Amazon MQ for RabbitMQ engine versions\": version support "
                     "calendar (no end of support listed for 3.13, 4.2 or 4.3 as of 2026-12-01)")


#: (kind, value) -> its dates. Every value the platform's programs name must be here (tests/test_lifecycle.py).
LIFECYCLES: dict[tuple[str, str], Lifecycle] = {(item.kind, item.value): item for item in (
    # Lambda developer guide, "Lambda runtimes", Supported runtimes: python3.13 (Amazon Linux 2023) deprecation
    # 2029-06-30, block function create 2029-07-31, block function update 2029-08-31.
    Lifecycle(LAMBDA_RUNTIME, "python3.13", date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31),
              "Lambda developer guide, \"Lambda runtimes\" (Supported runtimes table) and \"Runtime deprecation "
              "policy\""),
    _mq_engine("4.3", None),
    _mq_engine("4.2", None),
    _mq_engine("3.13", None),
    # standard:8.0 is Ubuntu 24.04 (aws/aws-codebuild-docker-images ubuntu/standard/8.0/Dockerfile), in Canonical's
    # standard support until 2029; 7.0 was Ubuntu 22.04, whose standard support ends in 2027, and CodeBuild stopped
    # updating standard:5.0 after Ubuntu 20.04's ended. CodeBuild user guide, "Deprecated CodeBuild images": 8.0 is
    # not listed; a deprecated image still builds (only no longer cached: slower), so no date blocks it.
    Lifecycle(CODEBUILD_IMAGE, "aws/codebuild/standard:8.0", None, None, None,
              "CodeBuild user guide, \"Docker images provided by CodeBuild\" and \"Deprecated CodeBuild images\"; "
              "aws/aws-codebuild-docker-images README, \"Image maintenance\""),
    # Python 3.11's end of life is 2027-10 (PEP 664). The deploy runner's buildspec names it, and so does CI's
    # setup-python default. CodeBuild keeps a runtime in its images past its end of life (standard:7.0 of 2026-04 still
    # offered 3.9, ended 2025-10; CodeBuild user guide, "Available runtimes": only the default version changes), so no
    # AWS date blocks the runner: a deprecation date, noted from WARN_DAYS before (no fixes after it; boto3 and Pulumi
    # drop a Python some months later).
    Lifecycle(CODEBUILD_PYTHON, "3.11", date(2027, 10, 31), None, None,
              "PEP 664 (3.11 end of life 2027-10); CodeBuild user guide, \"Available runtimes\""),
    # ECS developer guide, "Fargate platform versions for Amazon ECS": a service naming no platform version runs
    # LATEST, which moves to the newest version and has no end of support. Its revisions still retire, stopping the
    # tasks on them ("Task retirement and maintenance for AWS Fargate"): README, "Fargate task retirement".
    Lifecycle(FARGATE_PLATFORM, "LATEST", None, None, None,
              "ECS developer guide, \"Fargate platform versions for Amazon ECS\" and \"Fargate platform version "
              "deprecation\""),
    # App Mesh: no new customers since 2024-09-24, end of support 2026-09-30 (README, "App Mesh end of support"): the
    # env loader's acknowledgement gates it, and a fresh account cannot create a mesh.
    Lifecycle(APP_MESH, "appmesh", date(2026, 9, 30), date(2024, 9, 24), date(2026, 9, 30),
              "AWS App Mesh user guide, \"AWS App Mesh end of support\""),
)}


def named_by(env: EnvConfig) -> list[tuple[str, str, str]]:
    """``(kind, value, where)`` of each lifecycle item ``env``'s layers name (where: the file or key to change)."""
    named = [(LAMBDA_RUNTIME, PYTHON_LAMBDA_RUNTIME, "shared/lifecycle.py PYTHON_LAMBDA_RUNTIME"),
             (CODEBUILD_IMAGE, DEPLOY_RUNNER_IMAGE, "shared/lifecycle.py DEPLOY_RUNNER_IMAGE"),
             (CODEBUILD_PYTHON, DEPLOY_RUNNER_PYTHON, "shared/lifecycle.py DEPLOY_RUNNER_PYTHON"),
             (FARGATE_PLATFORM, FARGATE_PLATFORM_VERSION, "shared/lifecycle.py FARGATE_PLATFORM_VERSION")]
    if env.messaging.broker == "amazon-mq":
        named.append((MQ_ENGINE, env.messaging.engine_version, "messaging.engine_version"))
    if env.mesh.provider == "appmesh":
        named.append((APP_MESH, "appmesh", "mesh.provider"))
    return named


def lifecycle_findings(env: EnvConfig, today: date) -> tuple[list[str], list[str]]:
    """``(refusals, notes)`` for ``env`` on ``today``: a refusal for each named item AWS no longer creates (App Mesh:
    from its end of support, when AWS stops updating it too; before, the env loader's acknowledgement is its gate), a
    note for each within :data:`WARN_DAYS` of a date."""
    refusals: list[str] = []
    notes: list[str] = []
    for kind, value, where in named_by(env):
        item = LIFECYCLES.get((kind, value))
        if item is None:
            refusals.append(f"{kind} {value} ({where}) has no entry in shared/lifecycle.py LIFECYCLES: add its "
                            "deprecation dates and their source first")
            continue
        if kind == APP_MESH and item.blocks_update is not None and today > item.blocks_update:
            # AWS App Mesh user guide, "AWS App Mesh end of support": after that day neither the console nor App Mesh
            # resources are reachable, so `up` would run network and discovery and then fail at the mesh layer.
            refusals.append(f"{kind} ({where} {value}): AWS ended support on {item.blocks_update} ({item.source}); the "
                            "env's mesh can no longer be read or updated, so `up` would stop at the mesh layer after "
                            "changing the layers before it; move the env to service-connect (README, \"Moving an env "
                            "from appmesh to service-connect\")")
        elif item.blocks_create is not None and today >= item.blocks_create and kind != APP_MESH:
            refusals.append(f"{kind} {value} ({where}): AWS blocks creating it since {item.blocks_create} (updates "
                            f"from {item.blocks_update or 'its end of support'}; {item.source}): a first `up` in a "
                            "fresh account fails on it, so move to its successor first")
        elif item.first_date is not None and today >= item.first_date - timedelta(days=WARN_DAYS):
            dates = ", ".join(f"{label} {day}" for label, day in (
                ("deprecated", item.deprecated), ("create blocked", item.blocks_create),
                ("update blocked", item.blocks_update)) if day is not None)
            notes.append(f"{kind} {value} ({where}): {dates} ({item.source}); move to its successor before then")
    return refusals, notes


#: How long before its due date (``rotation-due``) an env's credentials rotation is a `note:` of `up` and `preview`.
ROTATION_WARN_DAYS = 30


def rotation_note(env: EnvConfig, today: date) -> str | None:
    """A note when ``env``'s generated credentials (``messaging.credentials_rotation``) are due within
    :data:`ROTATION_WARN_DAYS` or overdue: nothing rotates them but a new ``epoch`` (README, "Messaging credentials"),
    and the policy does not judge the date (its verdict would change with the calendar). Never a refusal."""
    rotation = env.messaging.credentials_rotation
    if rotation is None or today < rotation.due - timedelta(days=ROTATION_WARN_DAYS):
        return None
    when = f"overdue since {rotation.due}" if today > rotation.due else f"due on {rotation.due}"
    return (f"messaging.credentials_rotation: the service credentials of epoch {rotation.epoch} are {when} (epoch + "
            f"max_age_days {rotation.max_age_days}); set epoch to today and previous_epoch: {rotation.epoch}, then "
            "deploy (README, \"Messaging credentials: encryption and rotation\")")


class EndOfSupportError(PlatformError):
    """An env names something AWS no longer creates: refused before any layer runs (exit 2, like bad input)."""

    exit_code = 2


def check_lifecycle(env: EnvConfig, day: date) -> list[str]:
    """The notes of :func:`lifecycle_findings`; raises :class:`EndOfSupportError` naming every refusal."""
    refusals, notes = lifecycle_findings(env, day)
    if refusals:
        raise EndOfSupportError(f"{env.name} on {day}: nothing was run: " + "; ".join(refusals))
    return notes


def today() -> date:
    """The UTC day the check runs (tests set it): AWS's dates are UTC days, and ``date.today()`` is the local one (a
    laptop at UTC+14 would refuse App Mesh 14 hours before the CI runner)."""
    return datetime.now(UTC).date()
