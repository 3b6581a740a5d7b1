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
    assert "repo:<org>/<repo>:environment:dev" in step and "repo:<org>/<repo>:environment:staging" in step
    assert f"`{deploy_runner_role_name('<env>')}`" in step and "sts:AssumeRole`" in step
