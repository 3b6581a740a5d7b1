"""The README's "Upgrading an existing deployment" tells what the first `up` after the code change does and which env
files the loader now refuses: an operator reads it before that `up`, and a refusal or a new notification it does not
name is a surprise in a running env."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.envs import ExternalBroker, ManagementAccess, load_env, tag_problem
from tests.readme_helpers import readme_section
from tests.synth_helpers import spec_document, spec_documents

ROOT = Path(__file__).resolve().parents[1]


def upgrade_section() -> str:
    """The section as Markdown renders it (a wrapped line is one)."""
    return " ".join(readme_section("## Upgrading an existing deployment").split())


def test_the_upgrade_notes_name_the_env_tags_the_loader_now_refuses() -> None:
    """An env file with `tags: {owner: ""}` (or an empty key) loaded before; now every `nox` session refuses it, exit
    2, before any layer runs."""
    assert tag_problem("owner", "") is not None and tag_problem("", "x") is not None
    section = upgrade_section()
    assert "an empty tag value" in section and "an empty tag key" in section


def test_the_upgrade_notes_name_the_new_event_notifications_and_their_delivery_alarms() -> None:
    """Every EventBridge rule on the alarm topic and every event-delivery alarm the stacks now make is named (as
    ``<env>-ml-...``), with the topic's and key's policies that let EventBridge publish."""
    env = "prod"
    snapshots = spec_documents(env)
    topic = snapshots["broker"]["outputs"]["alarm_topic_arn"]
    names: set[str] = set()
    for document in snapshots.values():
        for resource in document["resources"]:
            inputs = resource.get("inputs") or {}
            if resource["type"] == "aws:cloudwatch/eventTarget:EventTarget" and inputs.get("arn") == topic:
                names.add(str(inputs["rule"]))
            if (resource["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"
                    and inputs.get("namespace") == "AWS/Events"):
                names.add(str(inputs["name"]))
    assert f"{env}-ml-admin-rotation-failed" in names and len(names) >= 3
    section = upgrade_section()
    for name in sorted(names):
        assert name.replace(f"{env}-ml-", "<env>-ml-", 1) in section, name
    assert "events.amazonaws.com" in section


def test_the_upgrade_notes_say_the_brokers_log_group_is_tagged_in_place() -> None:
    section = upgrade_section()
    assert "/aws/amazonmq/broker/<broker-id>/general" in section and "TagResource" in section


def _snapshots(env: str) -> dict[str, dict[str, Any]]:
    return spec_documents(env)


@pytest.mark.parametrize(("key", "model", "fields"), [
    ("messaging.external.amqps_endpoint", ExternalBroker,
     {"amqps_endpoint": "amqps://admin:pw@rabbit.example:5671", "management_endpoint": "https://rabbit.example"}),
    ("messaging.external.management_endpoint", ExternalBroker,
     {"amqps_endpoint": "amqps://rabbit.example:5671", "management_endpoint": "https://admin:pw@rabbit.example"}),
    ("messaging.management.endpoint", ManagementAccess, {"endpoint": "https://admin:pw@rabbit.example"}),
    ("messaging.management.proxy", ManagementAccess, {"proxy": "http://bob:pw@proxy.example:3128"}),
])
def test_the_upgrade_notes_name_each_broker_url_the_loader_now_refuses_with_a_password(
        key: str, model: type[BaseModel], fields: dict[str, str]) -> None:
    """An env file with ``user:password@`` in one of these URLs loaded before; now it exits 2 before any layer."""
    with pytest.raises(ValidationError, match="carries credentials"):
        model(**fields)
    section = upgrade_section()
    leaf = key.rsplit(".", 1)[1]
    assert "`user:password@`" in section and (f"`{key}`" in section or f"`{leaf}`" in section), key


def test_the_upgrade_notes_name_compute_s_new_service_output_and_the_rollback_checks() -> None:
    """compute's first `up` after the change records each service's task definition and from then on fails on a
    rollback; an operator must know a compute `up` that passed before can now fail."""
    section = upgrade_section()
    for env in ("dev", "staging", "prod"):
        services = _snapshots(env)["compute"]["outputs"]["services"]
        keys = set.intersection(*(set(entry) for entry in services.values()))
        assert "task_definition_arn" in keys, env
    assert "`task_definition_arn`" in section and "ListServiceDeployments" in section


def test_the_upgrade_notes_name_the_refusal_of_a_digest_no_resting_task_ran() -> None:
    """The deployed gate now refuses a digest a service resting at 0 tasks in FROM has not run: the notes quote the
    refusal as shared/promote.py words it, and no shipped env that images are promoted from rests a service."""
    from shared.promote import PROMOTION_ORDER

    section = upgrade_section()
    quoted = "rests at 0 tasks (desired count 0)"
    assert quoted in section and quoted in (ROOT / "shared" / "promote.py").read_text(encoding="utf-8")
    assert all(settings.min_count >= 1 for env in PROMOTION_ORDER[:-1]
               for settings in load_env(env).services.values())


def test_the_upgrade_notes_name_the_lock_and_the_tried_gate_of_the_generated_workflows() -> None:
    """The workflows of this change install the CLI without pulumi/actions and gate each promoted env on the env
    before it; the notes say what an operator must allow and expect (read from the generated files)."""
    from shared.promote import PROMOTION_ORDER
    from shared.venvcheck import LOCK_NAME

    workflows = {path.name: path.read_text(encoding="utf-8")
                 for path in (ROOT / ".github" / "workflows").glob("*.yml")}
    assert not any("pulumi/actions" in text for text in workflows.values())
    promoted = workflows["deploy-promoted.yml"]
    for env in PROMOTION_ORDER[1:]:
        assert f"  tried-{env}:" in promoted
    assert "actions: read" in promoted and "deploy_untried_reason:" in promoted
    section = upgrade_section()
    for words in (LOCK_NAME, "`nox -s lock`", "--require-hashes", ".ci/install-pulumi", "`pulumi/actions`",
                  "`tried-<env>`", "`actions: read`", "`deploy_untried_reason`"):
        assert words in section, words


def test_the_upgrade_notes_name_the_serve_gated_services_and_their_alarms_periods() -> None:
    """The services whose tasks now run the serve gate roll for it, and their tasks-below-desired alarms wait longer:
    the notes name those services and the alarms' evaluation periods as the shipped envs' compute synthesizes them."""
    from shared.components.compute_containers import SERVE_GATE_CONTAINER

    section = upgrade_section()
    gated: set[str] = set()
    periods: set[int] = set()
    for env in ("dev", "staging", "prod"):
        resources = _snapshots(env)["compute"]["resources"]
        for resource in resources:
            inputs = resource.get("inputs") or {}
            if (resource["type"] == "aws:ecs/taskDefinition:TaskDefinition" and SERVE_GATE_CONTAINER in
                    {container["name"] for container in json.loads(inputs["containerDefinitions"])}):
                service = str(inputs["family"]).removeprefix(f"{env}-")
                # the notes are of that upgrade: the shipped four's, not a service a user added since
                if service in ("gateway", "preprocess", "inference", "training"):
                    gated.add(service)
        for service in gated:
            alarm = next(resource["inputs"] for resource in resources
                         if resource["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"
                         and resource["inputs"].get("name") == f"{env}-ml-tasks-below-desired-{service}")
            periods.add(int(alarm["evaluationPeriods"]))
    assert gated and len(periods) == 1, (gated, periods)
    assert "`serve-gate` container ([Slow starters](#slow-starters)), and their app container" in section
    named = section.split("the services others call (", 1)[1].split(")", 1)[0]
    assert set(named.replace(" and ", ", ").split(", ")) == gated, named
    assert f"alarms wait {periods.pop()} periods" in section


def test_the_upgrade_notes_count_the_deploy_roles_policies_of_the_shipped_envs() -> None:
    """Each `-N` policy beyond those attached before is a `create-policy` and an `attach-role-policy` the operator
    must run, and IAM's 10 managed policies per role bound how many envs can share one role: the notes give the
    count `nox -s roles` prints for the shipped envs."""
    from shared import deploy_role
    from tests.synth_helpers import synth_layers

    counts = {len(deploy_role.deploy_policies(env, environ={}, documents=synth_layers(env)))
              for env in ("dev", "staging", "prod")}
    assert len(counts) == 1, counts
    count = counts.pop()
    section = upgrade_section()
    assert f"in the shipped envs ({count} instead of 3)" in section
    assert f"three such envs ({3 * count})" in section and 3 * count > 10


def test_the_upgrade_notes_name_the_new_mandatory_role_policy_rule_for_own_programs() -> None:
    """`iam-role-policy-before-use` is mandatory in every baseline: a `--program` run that passed before can now exit
    1, so the notes name the rule, the runs it fails and each resource type it judges."""
    import yaml

    catalog = yaml.safe_load((ROOT / "policies" / "catalog.yaml").read_text(encoding="utf-8"))
    rule = next(entry for rules in catalog.values() if isinstance(rules, dict)
                for rule_id, entry in rules.items() if rule_id == "iam-role-policy-before-use"
                and isinstance(entry, dict) and "levels" in entry)
    assert set(rule["levels"].values()) == {"mandatory"}, rule
    section = upgrade_section()
    note = section.split("**A new mandatory policy rule, `iam-role-policy-before-use`**", 1)[1].split(" - **", 1)[0]
    assert "every env" in note and "--program DIR" in note and "exit 1" in note
    for kind in ("Lambda function", "CodeBuild project", "ECS task definition", "flow log", "EventBridge target",
                 "state machine"):
        assert kind in note, kind


def test_the_upgrade_notes_name_the_new_prod_force_destroy_rule_for_own_programs() -> None:
    """`stateful-no-force-destroy` is mandatory in prod only: a `--program` run against prod that passed before can now
    exit 1, so the notes name the rule, its levels, the runs it fails and each resource type it judges."""
    from shared.policy_catalog import load_rules

    levels = load_rules()["stateful-no-force-destroy"].levels
    assert (levels.dev, levels.staging, levels.prod) == ("disabled", "disabled", "mandatory")
    section = upgrade_section()
    note = section.split("**A new policy rule, `stateful-no-force-destroy`**", 1)[1].split(" - **", 1)[0]
    assert "mandatory in prod, off in dev and staging" in note and "--program DIR --env prod" in note
    assert "exit 1" in note
    for kind in ("S3 bucket", "ECR repository", "Cloud Map service", "`force_destroy`", "`force_delete`"):
        assert kind in note, kind


def test_the_upgrade_notes_say_what_the_runner_jobs_role_asks_of_an_operator() -> None:
    """With github_repository the broker layer now makes a role of its own the project's service role: the deploy
    role's policies must grant its create first, and an operator's own start-build must name the deploy-runner role,
    or it stops at AccessDenied (README, Ways into the VPC)."""
    from shared.broker_names import deploy_runner_role_name, runner_jobs_role_name

    section = upgrade_section()
    assert f"`{runner_jobs_role_name('<env>')}`" in section
    assert f"--service-role-override arn:aws:iam::<account_id>:role/{deploy_runner_role_name('<env>')}" in section
    assert "iam:CreateRole" in section and "nox -s roles -- ENV" in section


def test_the_upgrade_notes_name_the_refusals_this_change_adds() -> None:
    """compute runs now read the broker (an unapplied smaller type refuses them), a move back to mq.t3.micro and a run
    with messaging during a single instance's restart are refused: each may stop the first `up` of a running env."""
    from shared.broker_upgrade import NO_MOVE_BACK
    from shared.dag import NEEDS_VPC_REACH

    section = upgrade_section()
    assert "compute's `up` reads the env's broker" in section and "DescribeBroker" in section
    for family, sources in NO_MOVE_BACK.items():
        assert f"`messaging.instance_type: {family}.micro`" in section
        assert "/".join(f"`{source}`" for source in sources) in section
    assert "messaging" in NEEDS_VPC_REACH and "`REBOOT_IN_PROGRESS`" in section


def _raw_upgrade_section() -> str:
    return readme_section("## Upgrading an existing deployment")


def _notes_from_release() -> tuple[str, str]:
    """The commit the notes' "From a deployment of" paragraph names, and that paragraph up to the next bullet list."""
    section = _raw_upgrade_section()
    match = re.search(r"\*\*From a deployment of `([0-9a-f]{7,40})`\*\*(.*?)\n- \*\*", section, re.S)
    assert match, "the upgrade notes name no release to upgrade from (**From a deployment of `<commit>`**)"
    return match.group(1), match.group(2)


_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen").split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}


def _number(words: str) -> int:
    """An English number below a hundred, as the notes write it ("seventy-two")."""
    tens, _, unit = words.partition("-")
    if tens in _TENS:
        return _TENS[tens] + (_UNITS.index(unit) if unit else 0)
    return _UNITS.index(words)


def _snapshot_at(commit: str, env: str, layer: str) -> dict[str, Any] | None:
    shown = subprocess.run(["git", "show", f"{commit}:tests/snapshots/{env}/{layer}.json"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        if "exists on disk, but not in" in shown.stderr or "does not exist in" in shown.stderr:
            return None  # a layer the release did not have: every resource of it is an add
        pytest.skip(f"{commit} is not in this clone (a shallow checkout): {shown.stderr.strip()}")
    return dict(json.loads(shown.stdout))


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_notes_from_the_last_release_name_every_resource_its_first_up_changes(env: str) -> None:
    """An operator on the release the notes name reads them before the first `up` of the new code: its table lists each
    resource that `up` changes in the shipped env, as `nox -s diff --baseline` against that release's snapshots shows
    it (the snapshots are the synth: tests/test_synth.py), no more and no fewer; and what the paragraph promises (no
    add, replace or delete; no service rolls) holds."""
    from shared.dag import order
    from shared.plan_diff import diff_layers

    commit, paragraph = _notes_from_release()
    layers = order()
    baseline = {layer: _snapshot_at(commit, env, layer) for layer in layers}
    # the example env's synth now (its snapshot at that commit was the synth of the same example env then)
    fresh: dict[str, dict[str, Any] | None] = {layer: spec_document(env, layer) for layer in layers}
    changes = [(layer_diff.layer, change) for layer_diff in diff_layers(baseline, fresh, layers)
               for change in layer_diff.changes]
    assert changes, f"nothing changes from {commit}: move the notes' release to the one deployed now"
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:3])
            for line in paragraph.splitlines() if line.startswith("| ") and not line.startswith("| layer ")}
    named = {(layer, cells.split("`")[1].replace("<env>", env), kind.split(" ")[0]) for layer, cells, kind in rows}
    changed = {(layer, change.name, change.action) for layer, change in changes}
    assert named == changed, f"the table names {sorted(named - changed)}; the first up does {sorted(changed - named)}"
    # the count the paragraph gives in words is the diff's (a role and its inline policy share a row)
    said = re.search(r"these ([a-z]+(?:-[a-z]+)?)\s+resources and nothing else", paragraph)
    assert said and _number(said.group(1)) == len(changes), (said and said.group(1), len(changes))
    for layer, cells, kind in rows:
        resource = cells.split("`")[1].replace("<env>", env)
        # a role and its inline policy may share a resource name: the row names the inputs of one of them
        candidates = [change.inputs for name, change in changes
                      if name == layer and change.name == resource and change.action == kind.split(" ")[0]]
        assert any(all(f"`{name}`" in kind for name in inputs) for inputs in candidates), (layer, cells, kind,
                                                                                          candidates)
    words = " ".join(paragraph.split())
    if "Nothing is added, replaced or deleted" in words:
        assert {change.action for _, change in changes} == {"update"}
    if "no task definition changes and no service rolls" in words:
        assert not [change for _, change in changes if change.type == "aws:ecs/taskDefinition:TaskDefinition"
                    or change.type == "aws:ecs/service:Service"]


def test_the_upgrade_notes_update_the_role_boundary_only_after_broker_moved_the_runner_off_secret_variables(
        edit_env: Any) -> None:
    """Until broker's `up` updates the project, CodeBuild resolves its SECRETS_MANAGER variables with the runner's
    service role for every build, within the role boundary; the new boundary admits no secret read, so a boundary
    updated first fails every build (the one meant to run the `up` too) before its first command."""
    from shared.role_boundary import boundary_document
    from tests import iam_eval

    secret = "ml-platform/dev/pulumi-passphrase"
    edit_env("dev", lambda data: data["messaging"].update(deploy_runner={"passphrase_secret": secret}))
    env = load_env("dev")
    arn = f"arn:aws:secretsmanager:{env.region}:{env.account_id}:secret:{secret}-Ab1Cd2"
    assert not iam_eval.allows(boundary_document(env)["Statement"], "secretsmanager:GetSecretValue", arn)
    note = " ".join(_raw_upgrade_section().split("**A deploy runner with `messaging.deploy_runner.passphrase_secret`",
                                                1)[1].split("\n- **", 1)[0].split())
    assert "only after broker's `up` has updated the project" in note
    assert "fails before its first command" in note and "`nox -s up -- ENV --layers broker --exact`" in note


def test_the_upgrade_notes_name_the_broker_refusals_and_the_capacity_alarms_of_this_change() -> None:
    """States a broker may be left in at the upgrade now stop its first `up`, and a pending type or engine moves the
    capacity alarms back: the notes name each state as DescribeBroker spells it, and the alarms."""
    from shared.orchestrate.cli import BROKER_NOT_RUNNING

    section = upgrade_section()
    for state in BROKER_NOT_RUNNING:
        assert f"`{state}`" in section, state
    assert "`PendingHostInstanceType`" in section
    for suffix in ("connections", "channels", "queues"):
        assert f"-{suffix}`" in section or f"`<env>-ml-broker-capacity-{suffix}`" in section, suffix


def test_the_upgrade_notes_name_the_free_threaded_refusal_and_the_self_resyncing_venv(tmp_path: Path) -> None:
    """nox on python3.13t ran before and is refused now (exit 2); a changed lock re-syncs an existing .venv by
    itself (its stamp's digest covers requirements.lock)."""
    from shared.venvcheck import check_python, requirements_digest

    assert check_python((3, 13), gil_disabled=True) is not None and check_python((3, 13), gil_disabled=False) is None
    for name in ("pyproject.toml", "requirements.lock"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    before = requirements_digest(tmp_path)
    (tmp_path / "requirements.lock").write_text("y\n", encoding="utf-8")
    assert requirements_digest(tmp_path) != before
    section = upgrade_section()
    assert "free-threaded Python (`python3.13t`) is now refused, exit 2" in section
    assert "re-syncs `.venv` by itself" in section


def test_the_upgrade_notes_say_to_turn_the_deploy_jobs_on_before_merging() -> None:
    """The generated deploy jobs now wait for DEPLOY_ENABLED_<ENV> (shared.workflows.deploy_enabled): an existing
    repository that merges this change without it skips every deploy, green, and nothing says so but the notes."""
    from shared import workflows

    section = upgrade_section()
    assert "Set `DEPLOY_ENABLED_<ENV>=true` before merging this change" in section
    rendered = workflows.render_deploy_dev() + workflows.render_deploy_promoted()
    assert all(workflows.deploy_enabled_variable(env) in rendered for env in ("dev", "staging", "prod"))
    assert "`sqs-queue-policy-not-public`" in section
