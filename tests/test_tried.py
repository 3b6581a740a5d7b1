"""The "tried" gate of deploy-promoted.yml: a promoted env deploys only platform code that the env it is promoted
from has deployed successfully (shared.tried), checked offline against a temp git repo and a fake GitHub API."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT, tried, workflows
from shared.cli import run_main
from shared.dag import order
from shared.errors import UsageError
from shared.promote import PROMOTION_ORDER


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def shipped_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped promotion order, for a test of prod's gate that names staging as the env prod is promoted from (an
    env a user adds to the order, README "Add an environment" step 4, may come between them)."""
    monkeypatch.setattr("shared.promote.PROMOTION_ORDER", ("dev", "staging", "prod"))


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    git(tmp_path, "init", "-q")
    base = commit(tmp_path, {"stacks/compute/__main__.py": "v1\n", "shared/x.py": "v1\n", "requirements.lock": "a==1\n",
                             "environments/staging.yaml": "release: 1\n", "README.md": "doc\n"}, "base")
    envs_only = commit(tmp_path, {"environments/staging.yaml": "release: 2\n", "README.md": "doc 2\n",
                                  "tests/test_x.py": "t\n"}, "promote")
    code = commit(tmp_path, {"shared/x.py": "v2\n"}, "code")
    lock = commit(tmp_path, {"requirements.lock": "a==2\n"}, "lock")
    return {"path": tmp_path, "base": base, "envs_only": envs_only, "code": code, "lock": lock}


DEV_JOBS = [f"up dev {layer}" for layer in order()]


class FakeApi:
    def __init__(self, runs: dict[str, list[dict[str, Any]]], jobs: dict[int, list[dict[str, Any]]]) -> None:
        self._runs, self._jobs = runs, jobs
        self.asked: list[str] = []

    def runs(self, workflow: str, page: int) -> list[dict[str, Any]]:
        self.asked.append(workflow)
        return self._runs.get(workflow, []) if page == 1 else []

    def jobs(self, run_id: int) -> list[dict[str, Any]]:
        return self._jobs[run_id]


class DownApi:
    def runs(self, workflow: str, page: int) -> list[dict[str, Any]]:
        raise tried.ApiUnreachable("GET https://api.github.com/...: <urlopen error timed out>")

    def jobs(self, run_id: int) -> list[dict[str, Any]]:
        raise AssertionError("not reached")


def run(run_id: int, sha: str, conclusion: str | None = "success", status: str = "completed") -> dict[str, Any]:
    return {"id": run_id, "head_sha": sha, "status": status, "conclusion": conclusion,
            "html_url": f"https://github.com/o/r/actions/runs/{run_id}"}


def jobs(names: list[str], conclusion: str = "success", **others: str) -> list[dict[str, Any]]:
    return [{"name": name, "status": "completed", "conclusion": others.get(name, conclusion)} for name in names]


def dev_ran(sha: str, conclusion: str = "success", **job_conclusions: str) -> FakeApi:
    return FakeApi({"deploy-dev.yml": [run(7, sha, conclusion)]}, {7: jobs(DEV_JOBS, **job_conclusions)})


def gate(repo: dict[str, Any], env: str, sha: str, api: Any, reason: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = tried.check(env, sha, api, repo["path"], reason, "alice", out)
    return code, out.getvalue()


def test_code_that_dev_deployed_successfully_passes(repo: dict[str, Any]) -> None:
    api = dev_ran(repo["base"])
    code, out = gate(repo, "staging", repo["base"], api)
    assert code == 0 and "runs/7" in out
    assert api.asked == ["deploy-dev.yml"]  # staging is promoted from dev (PROMOTION_ORDER)


def test_a_commit_differing_only_in_env_files_docs_and_tests_counts_as_tried(repo: dict[str, Any]) -> None:
    assert gate(repo, "staging", repo["envs_only"], dev_ran(repo["base"]))[0] == 0


@pytest.mark.parametrize("deployed, changed", [("base", "code"), ("code", "lock")])
def test_code_or_a_lock_dev_never_deployed_is_refused(repo: dict[str, Any], deployed: str, changed: str) -> None:
    with pytest.raises(tried.Untried) as refused:
        gate(repo, "staging", repo[changed], dev_ran(repo[deployed]))
    message = str(refused.value)
    assert refused.value.exit_code == 2
    assert repo[changed][:12] in message and "dev" in message and "deploy-dev.yml" in message
    assert "deploy_untried_reason" in message and "re-run" in message


@pytest.mark.parametrize("conclusion, job_conclusions", [
    ("failure", {"up dev compute": "failure"}),
    ("cancelled", {"up dev compute": "cancelled"}),
    ("success", {"up dev compute": "skipped"}),  # a run is not proof: every deploy job of dev must have succeeded
])
def test_a_failed_or_incomplete_dev_deploy_of_that_code_is_refused(repo: dict[str, Any], conclusion: str,
                                                                   job_conclusions: dict[str, str]) -> None:
    with pytest.raises(tried.Untried, match=r"did not all succeed.*runs/7.*" + conclusion):
        gate(repo, "staging", repo["code"], dev_ran(repo["code"], conclusion, **job_conclusions))


def test_a_dev_deploy_still_running_is_refused_until_it_succeeds(repo: dict[str, Any]) -> None:
    api = FakeApi({"deploy-dev.yml": [run(8, repo["code"], None, "in_progress"), run(7, repo["base"])]},
                  {8: jobs(DEV_JOBS[:2]), 7: jobs(DEV_JOBS)})
    with pytest.raises(tried.Untried, match="in_progress"):
        gate(repo, "staging", repo["code"], api)


def test_prod_asks_for_a_successful_staging_job_whatever_the_rest_of_its_run_did(
        repo: dict[str, Any], shipped_order: None) -> None:
    staging_ok = FakeApi({"deploy-promoted.yml": [run(9, repo["base"], "failure")]},
                         {9: jobs(["up staging", "up prod"], **{"up prod": "failure"})})
    assert gate(repo, "prod", repo["envs_only"], staging_ok)[0] == 0
    assert staging_ok.asked == ["deploy-promoted.yml"]
    # a run of deploy-promoted.yml that only deployed prod: its staging job was skipped
    prod_only = FakeApi({"deploy-promoted.yml": [run(9, repo["base"])]},
                        {9: jobs(["up staging", "up prod"], **{"up staging": "skipped"})})
    with pytest.raises(tried.Untried, match="to staging, the env prod is promoted from"):
        gate(repo, "prod", repo["base"], prod_only)
    dev_only = dev_ran(repo["base"])  # dev having run it does not count for prod
    with pytest.raises(tried.Untried, match=r"no run of deploy-promoted\.yml"):
        gate(repo, "prod", repo["base"], dev_only)


def test_prod_refused_for_code_staging_never_ran_says_to_deploy_staging_by_hand(
        repo: dict[str, Any], shipped_order: None) -> None:
    """staging deploys only when its env file changes (or by hand), never because code merged: a code change merged
    after staging's last promotion is refused for prod, and waiting for a staging deploy of the commit (what the
    message said, as it does for dev, which deploys every merge) waits for ever. The way is deploy-promoted.yml by
    hand for staging (README, Promotion)."""
    staging_ran_base = FakeApi({"deploy-promoted.yml": [run(9, repo["base"])]}, {9: jobs(["up staging"])})
    with pytest.raises(tried.Untried) as refused:
        gate(repo, "prod", repo["code"], staging_ran_base)
    message = str(refused.value)
    assert "deploy-promoted.yml by hand for staging" in message
    assert "Wait for staging's deploy" not in message and "which staging deploys first" not in message
    with pytest.raises(tried.Untried) as refused:  # dev deploys every merge: waiting is right for staging's gate
        gate(repo, "staging", repo["code"], dev_ran(repo["base"]))
    assert "Wait for dev's deploy" in str(refused.value) and "which dev deploys first" in str(refused.value)


def test_an_unreachable_api_is_refused_with_a_clear_message(repo: dict[str, Any]) -> None:
    with pytest.raises(tried.Untried, match=r"cannot tell whether dev has deployed.*GitHub API did not answer"):
        gate(repo, "staging", repo["base"], DownApi())
    # the real client against a port nothing listens on
    api = tried.GitHubApi("o/r", "token", "http://127.0.0.1:9", timeout_s=5)
    with pytest.raises(tried.Untried, match=r"GitHub API did not answer.*127\.0\.0\.1:9"):
        gate(repo, "staging", repo["base"], api)


def test_an_answer_cut_short_is_refused_with_a_clear_message(repo: dict[str, Any]) -> None:
    """A connection GitHub closes mid-body raises http.client.IncompleteRead, an HTTPException and no OSError: the gate
    says the API did not answer (exit 2), not a traceback."""
    from tests.loopback import canned_answer, http_server

    cut_short = canned_answer(200, {"Content-Type": "application/json", "Content-Length": "1000"},
                              b'{"workflow_runs": [')
    with http_server(cut_short) as server:
        api = tried.GitHubApi("o/r", "token", f"http://127.0.0.1:{server.server_port}", timeout_s=5)
        with pytest.raises(tried.Untried, match=r"GitHub API did not answer.*IncompleteRead"):
            gate(repo, "staging", repo["base"], api)


def test_the_override_deploys_untried_code_with_a_logged_warning(repo: dict[str, Any]) -> None:
    code, out = gate(repo, "staging", repo["code"], DownApi(), reason="hotfix INC-42")
    assert code == 0
    assert out.startswith("::warning title=untried code deployed to staging::")
    assert "alice" in out and "INC-42" in out and repo["code"][:12] in out and "GitHub API did not answer" in out
    code, out = gate(repo, "staging", repo["base"], dev_ran(repo["base"]), reason="  ")  # blank: no override
    assert code == 0 and "::warning" not in out
    with pytest.raises(tried.Untried):
        gate(repo, "staging", repo["code"], dev_ran(repo["base"]), reason="  ")


def test_the_override_names_who_re_ran_the_run_not_only_who_started_it(repo: dict[str, Any]) -> None:
    """A re-run keeps the dispatch's inputs, the override too, and GITHUB_ACTOR stays the user who started the first
    attempt; the user who re-ran it is GITHUB_TRIGGERING_ACTOR (GitHub changelog 2022-07-19, "Differentiating
    triggering actor from executing actor"). The warning is the override's audit record: it names the one who did."""
    def warning(environ: dict[str, str]) -> str:
        out = io.StringIO()
        assert tried.main("staging", repo["code"], "INC-9", environ, out, repo=repo["path"], api=DownApi()) == 0
        return out.getvalue()

    rerun = warning({"GITHUB_ACTOR": "alice", "GITHUB_TRIGGERING_ACTOR": "mallory"})
    assert "override by mallory (re-running a run alice started)" in rerun
    assert "override by alice:" in warning({"GITHUB_ACTOR": "alice", "GITHUB_TRIGGERING_ACTOR": "alice"})
    assert "override by alice:" in warning({"GITHUB_ACTOR": "alice"})  # GHES before 3.7: no triggering actor


def test_dev_has_no_upstream_and_an_unknown_commit_is_bad_input(repo: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="not a promoted env"):
        gate(repo, PROMOTION_ORDER[0], repo["base"], dev_ran(repo["base"]))
    with pytest.raises(UsageError, match="not a commit"):
        gate(repo, "staging", "f" * 40, dev_ran(repo["base"]))
    with pytest.raises(UsageError, match="not a commit"):
        gate(repo, "staging", "--output=x", dev_ran(repo["base"]))


def test_the_cli_without_a_token_exits_2_naming_what_is_missing(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    head = git(REPO_ROOT, "rev-parse", "HEAD")
    assert run_main(workflows.main, ["tried", "staging", "--commit", head]) == 2
    assert "GITHUB_TOKEN not set" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_ACTOR", "bob")
    monkeypatch.delenv("GITHUB_TRIGGERING_ACTOR", raising=False)  # set when the suite itself runs in Actions
    assert run_main(workflows.main, ["tried", "prod", "--commit", head, "--untried-reason=INC-7"]) == 0
    assert "override by bob: 'INC-7'" in capsys.readouterr().out


def test_every_tracked_path_is_platform_code_or_declared_not_to_be() -> None:
    """A new folder a deploy runs (say `lib/`) must join PLATFORM_CODE, or the gate would let it reach prod
    untried; one a deploy never runs is declared in NOT_PLATFORM_CODE with why."""
    declared = (*workflows.PLATFORM_CODE, *tried.NOT_PLATFORM_CODE)
    unclassified = [path for path in git(REPO_ROOT, "ls-files").splitlines() if not path.startswith(declared)]
    assert unclassified == []
    assert not set(workflows.PLATFORM_CODE) & set(tried.NOT_PLATFORM_CODE)
    assert set(workflows.PLATFORM_INPUTS) == {"environments/", *workflows.PLATFORM_CODE}


def test_every_promoted_deploy_waits_for_its_tried_gate_which_asks_github_with_actions_read_only() -> None:
    data = yaml.safe_load((workflows.WORKFLOW_DIR / workflows.DEPLOY_PROMOTED).read_text(encoding="utf-8"))
    inputs = data[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads `on` as True
    assert inputs["deploy_untried_reason"]["type"] == "string"
    for env in PROMOTION_ORDER[1:]:
        deploy, gate_job = data["jobs"][f"deploy-{env}"], data["jobs"][f"tried-{env}"]
        assert f"tried-{env}" in deploy["needs"] and deploy["if"] == gate_job["if"]
        assert deploy["name"] in workflows.deploy_job_names(env)
        assert gate_job["permissions"] == {"contents": "read", "actions": "read"}
        steps = gate_job["steps"]
        assert steps[0]["with"]["fetch-depth"] == 0
        assert steps[-1]["run"] == (f'python3 -m nox -s workflows -- tried {env} --commit "$GITHUB_SHA" '
                                    '--untried-reason="$UNTRIED_REASON"')
        assert steps[-1]["env"]["UNTRIED_REASON"] == "${{ inputs.deploy_untried_reason }}"  # never inline
    dev_jobs = yaml.safe_load((workflows.WORKFLOW_DIR / workflows.DEPLOY_DEV).read_text(encoding="utf-8"))["jobs"]
    # every up job of dev; not its settle check (a layer that does not settle is no failed deploy: test_ci)
    assert sorted(job["name"] for job_id, job in dev_jobs.items() if job_id != workflows.SETTLED_JOB) == sorted(
        workflows.deploy_job_names("dev"))


def test_the_readme_names_every_path_of_platform_code_where_it_explains_the_gate() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    promotion = text[text.index("\n## Promotion\n"):text.index("\n## Image retention")]
    assert "deploy_untried_reason" in promotion and "tried-<TO>" in promotion
    for path in workflows.PLATFORM_CODE:
        assert f"`{path}`" in promotion, path


@pytest.mark.parametrize("path", ["requirements.lock", "noxfile.py", ".ci/install-pulumi",
                                  ".github/actions/setup-platform/action.yml", "shared/dag.py"])
def test_a_change_of_any_platform_code_previews_every_env(path: str) -> None:
    """The pull-request previews and the gate read the same list: a lock that moves a package changes what every
    env's preview runs, as it changes what the gate compares."""
    assert workflows.envs_touched([path], ["dev", "prod", "staging"]) == ["dev", "prod", "staging"]
