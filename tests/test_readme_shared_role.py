"""A deploy role several envs share (README, CI/CD "Set up once", step 2) must trust every one's GitHub environment
and every one's deploy runner role (what `nox -s roles` prints: tests/test_deploy_role.py); a README that names only
the subjects leaves the other env's runner builds at AccessDenied."""

from __future__ import annotations

from shared.broker_names import deploy_runner_role_name
from tests.readme_helpers import readme_rendered

README = readme_rendered()


def test_the_shared_role_step_names_every_env_s_subject_and_runner_role() -> None:
    start = README.index("Envs that share one deploy role")
    step = README[start:README.index("The `sub` condition", start)]
    assert "<repo-subject>:environment:dev" in step and "<repo-subject>:environment:staging" in step
    assert f"`{deploy_runner_role_name('<env>')}`" in step and "sts:AssumeRole`" in step


def test_the_subject_of_the_repository_s_tokens_is_told_in_both_of_github_s_forms() -> None:
    """GitHub's OIDC tokens name a repository created, renamed or transferred from 2026-07-15 by its immutable ids
    (repo:<org>@<org_id>/<repo>@<repo_id>): a trust written for repo:<org>/<repo> refuses every job of such a
    repository. The setup defines <repo-subject> with both forms and the command that prints the immutable one, and
    every subject it asks for is written with it."""
    start = README.index("**Set up once**")
    setup = README[start:README.index("## Messaging (RabbitMQ)", start)]
    definition = setup[:setup.index("1. IAM OIDC provider")]
    assert "`repo:<org>@<org_id>/<repo>@<repo_id>`" in definition and "`repo:<org>/<repo>`" in definition
    assert "2026-07-15" in definition and "(.owner.id)" in definition and "(.id)" in definition
    subjects = [line for line in setup.splitlines() if ":environment:" in line or ":pull_request" in line]
    assert subjects and all("<repo-subject>:" in line or "repo:<owner>/<repo>:*" in line for line in subjects), [
        line for line in subjects if "<repo-subject>:" not in line]
