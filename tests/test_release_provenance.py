"""A pull request's env files as the release-provenance check judges them: a staging or prod digest the change sets
was a release of that env or one before it in the base's history (a promotion, a rollback), or it is refused."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from shared import workflows
from shared.errors import UsageError
from shared.release_provenance import report, unvetted
from tests.test_ci import load, steps_of

ORDER = ("dev", "staging", "prod")
A, B, C = ("sha256:" + digit * 64 for digit in "abc")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def release(repo: Path, **images: dict[str, str]) -> None:
    """Each env's file with its ``release.images``, committed."""
    folder = repo / "environments"
    folder.mkdir(exist_ok=True)
    for env, services in images.items():
        lines = "".join(f"    {service}: '{digest}'\n" for service, digest in services.items())
        (folder / f"{env}.yaml").write_text(f"name: {env}\nrelease:\n  images:\n{lines}")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "release")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    release(tmp_path, dev={"gateway": A}, staging={"gateway": A}, prod={"gateway": A})
    release(tmp_path, dev={"gateway": B})  # dev deploys a new build
    return tmp_path


def judged(repo: Path, base: str, **images: dict[str, str]) -> list[str]:
    release(repo, **images)
    return unvetted(base, ORDER, repo / "environments", repo)


def test_a_promotion_of_what_dev_released_passes(repo: Path) -> None:
    assert judged(repo, git(repo, "rev-parse", "HEAD"), staging={"gateway": B}) == []


def test_a_digest_no_env_before_released_is_refused_naming_the_promotion(repo: Path) -> None:
    (problem,) = judged(repo, git(repo, "rev-parse", "HEAD"), prod={"gateway": C})
    assert problem.startswith(f"prod.yaml: release.images.gateway: {C} was never gateway's release in staging or "
                              "prod")
    assert "`nox -s promote -- staging prod`" in problem and "`nox -s promote -- prod@<revision> prod`" in problem


def test_a_rollback_to_the_env_s_own_earlier_release_and_a_release_once_upstream_pass(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    release(repo, staging={"gateway": B})  # staging moved on; main now holds it
    newer = git(repo, "rev-parse", "HEAD")
    assert judged(repo, newer, staging={"gateway": A}) == []  # staging's own release before
    # prod takes B, staging's release on the base (the promote workflow's branch was cut before staging moved again)
    assert judged(repo, newer, prod={"gateway": B}) == []
    assert base != newer


def test_prod_does_not_get_a_release_staging_rolled_back_from(repo: Path) -> None:
    """A prod promotion opened while staging ran B (its deployed gate passed then) stays open while staging rolls back
    from B to A; brought up to date, the change still sets B, which staging has withdrawn: refused, naming what staging
    runs. Moving staging on to a newer release withdraws nothing, and a release promoted again vouches again."""
    release(repo, staging={"gateway": B})
    release(repo, staging={"gateway": A})  # `nox -s promote -- staging@<revision> staging`, merged
    base = git(repo, "rev-parse", "HEAD")
    (problem,) = judged(repo, base, prod={"gateway": B})
    assert problem.startswith(f"prod.yaml: release.images.gateway: {B} was gateway's release in staging, which has "
                              f"since rolled back from it to {A}")
    assert "`nox -s promote -- staging prod`" in problem
    release(repo, prod={"gateway": A})  # back to prod's own (the change above was not merged)
    release(repo, staging={"gateway": B})  # staging gets B again (promoted again from dev)
    assert judged(repo, git(repo, "rev-parse", "HEAD"), prod={"gateway": B}) == []


def test_a_release_staging_moved_on_from_still_reaches_prod(repo: Path) -> None:
    release(repo, dev={"gateway": C})
    release(repo, staging={"gateway": B})
    release(repo, staging={"gateway": C})  # forward, not back
    assert judged(repo, git(repo, "rev-parse", "HEAD"), prod={"gateway": B}) == []


def test_prod_may_roll_back_to_its_own_release_that_staging_withdrew(repo: Path) -> None:
    release(repo, staging={"gateway": B})
    release(repo, prod={"gateway": B})
    release(repo, staging={"gateway": A})
    release(repo, prod={"gateway": A})
    assert judged(repo, git(repo, "rev-parse", "HEAD"), prod={"gateway": B}) == []


def test_a_digest_only_dev_ever_released_does_not_skip_staging_into_prod(repo: Path) -> None:
    """promote refuses to skip into prod (its baseline): neither may a hand edit, with dev's digest."""
    (problem,) = judged(repo, git(repo, "rev-parse", "HEAD"), prod={"gateway": B})
    assert f"{B} was never gateway's release in staging or prod" in problem
    assert "`nox -s promote -- staging prod`" in problem


def test_a_digest_a_merged_branch_held_on_the_way_vouches_for_nothing(repo: Path) -> None:
    """A push to a promotion branch after its gates ran set staging to C (refused), a later one back to B; the branch
    was merged with a merge commit. C never was staging's release on main: main's first-parent line says so."""
    git(repo, "checkout", "-qb", "promote/dev-to-staging")
    release(repo, staging={"gateway": C})
    release(repo, staging={"gateway": B})
    git(repo, "checkout", "-q", "-")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "merge", "-q", "--no-ff",
        "promote/dev-to-staging", "-m", "merge")
    base = git(repo, "rev-parse", "HEAD")
    (problem,) = judged(repo, base, staging={"gateway": C})
    assert f"{C} was never gateway's release in dev or staging" in problem
    assert judged(repo, base, staging={"gateway": A}) == []  # staging's own release before the merge


def test_a_tag_and_the_first_env_s_changes_are_judged_as_they_should_be(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    assert judged(repo, base, dev={"gateway": C}) == []  # dev's release is what CI builds: no env before it
    (problem,) = judged(repo, base, staging={"gateway": "v1.2"})
    assert "'v1.2' is no digest" in problem


def test_a_base_the_clone_lacks_exits_2_naming_the_fetch(repo: Path) -> None:
    with pytest.raises(UsageError, match="fetch-depth 0"):
        unvetted("0" * 40, ORDER, repo / "environments", repo)


def test_env_files_outside_the_repository_exit_2(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("envs")
    with pytest.raises(UsageError, match="outside the repository"):
        unvetted(git(repo, "rev-parse", "HEAD"), ORDER, elsewhere, repo)


def test_the_report_exits_1_on_a_problem_and_0_without() -> None:
    out = io.StringIO()
    assert report(["x"], out) == 1 and out.getvalue() == "x\n"
    assert report([], io.StringIO()) == 0


def test_every_pull_request_runs_it_in_a_required_job_with_the_base_s_history() -> None:
    job = load(workflows.WORKFLOW_DIR / "pull-request.yml")["jobs"]["policy"]
    steps = steps_of(job)
    (step,) = [step for step in steps if "release-provenance" in step.get("run", "")]
    # the merge ref's first parent: the base the checked-out tree was merged onto, whatever the event's base.sha says
    assert step["run"] == 'python3 -m nox -s workflows -- release-provenance --base "$(git rev-parse HEAD^1)"'
    assert step["if"] == "${{ !cancelled() }}"  # shown beside a policy failure, not only after the next push
    checkout = next(step for step in steps if "actions/checkout" in step.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0
    assert job["name"] == "policy packs over every env"  # a required check (README, CI/CD step 6)
