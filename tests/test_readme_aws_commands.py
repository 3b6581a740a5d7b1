"""Every ``aws <service> <command> --option ...`` the README tells an operator to run names an operation of that
service and options of its input, checked against botocore's service models (the AWS CLI is generated from the
same models: an operation ``UpdateService`` is ``update-service``, a member ``ForceNewDeployment`` is
``--force-new-deployment``, a boolean also ``--no-force-new-deployment``). A misspelt command or option fails on
call with "Invalid choice" or "Unknown options", which on call is the wrong moment to learn it."""

from __future__ import annotations

import re

import pytest

from tests.aws_cli import cli_problem
from tests.readme_helpers import README

#: Where a command starts in a snippet: at its start, a line's or a command substitution's (``$(aws ...``), not in
#: prose that a code span happens to hold. Then the CLI service and the command (lower-case words and hyphens).
_START = re.compile(r"(?:^|\n)[ \t]*(?:\$ )?(?=aws\s)|\$\((?=aws\s)")
_HEAD = re.compile(r"aws\s+([a-z0-9][a-z0-9-]*)\s+([a-z0-9][a-z0-9-]*)")


def _snippets(text: str) -> list[str]:
    """The README's code: fenced blocks (continued lines joined) and inline code spans (which may wrap)."""
    fence = r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```"  # a list item's block is indented
    fenced = re.findall(fence, text, flags=re.DOTALL | re.MULTILINE)
    rest = re.sub(fence, "", text, flags=re.DOTALL | re.MULTILINE)
    inline = re.findall(r"`([^`]+)`", rest)
    return [block.replace("\\\n", " ") for block in fenced] + [" ".join(span.split()) for span in inline]


def readme_commands() -> list[tuple[str, str, tuple[str, ...]]]:
    """(CLI service, command, its --options) of every ``aws`` command in the README's code, once each."""
    found: dict[tuple[str, str, tuple[str, ...]], None] = {}
    for snippet in _snippets(README.read_text(encoding="utf-8")):
        starts = [match.end() for match in _START.finditer(snippet)]
        for start, end in zip(starts, [*starts[1:], len(snippet)][:len(starts)], strict=True):
            head = _HEAD.match(snippet, start)
            if head is None:
                continue
            # a command ends at its line's end (a fenced block's continued lines are joined above): the next line's
            # options are another command's
            rest = re.split(r"[`;|&)\n]", snippet[head.end():end], maxsplit=1)[0]
            options = tuple(sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest))))
            found[(head.group(1), head.group(2), options)] = None
    return list(found)


def test_the_readme_names_aws_commands() -> None:
    commands = {(service, command) for service, command, _ in readme_commands()}
    assert {("ecs", "update-service"), ("ssm", "start-session"), ("secretsmanager", "rotate-secret")} <= commands


@pytest.mark.parametrize(("service", "command", "options"), readme_commands(),
                         ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_each_readme_aws_command_is_an_operation_with_those_options(service: str, command: str,
                                                                    options: tuple[str, ...]) -> None:
    assert cli_problem(service, command, options) is None


def test_each_readme_start_build_runs_as_the_role_that_may_assume_the_deploy_role() -> None:
    """With messaging.deploy_runner.github_repository the runner's project runs as ml-platform-<env>-runner-jobs,
    which may not assume the deploy role (any job of the repository runs as it): a build the README starts must name
    ml-platform-<env>-deploy-runner as its service role (StartBuild serviceRoleOverride), or it stops at its first
    AWS call with AccessDenied on sts:AssumeRole."""
    from shared.broker_names import deploy_runner_role_name

    starts = [" ".join(snippet[match.start():].split()) for snippet in _snippets(README.read_text(encoding="utf-8"))
              for match in re.finditer(r"aws codebuild start-build\b", snippet)]
    assert starts, "the README starts no build of the deploy runner"
    for start in starts:
        project = re.search(r"--project-name (\S+)-deploy\b", start)
        assert project is not None, start
        env = project.group(1).removeprefix("ml-platform-")
        role = re.search(r"--service-role-override \S+:role/(\S+)", start)
        assert role is not None and role.group(1) == deploy_runner_role_name(env), start
