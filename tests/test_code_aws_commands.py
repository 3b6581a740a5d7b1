"""Every ``aws <service> <command> --option ...`` the code tells an operator to run (a refusal's remedy, a note, a
printed runbook step, a buildspec line) names an operation of that service and options of its input, checked against
botocore's service models as the README's commands are (tests/test_readme_aws_commands.py): the message is read at
the moment something failed, the worst one to learn that its command fails with "Invalid choice" too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared import REPO_ROOT
from tests.aws_cli import cli_problem, cli_services

#: the code that prints or runs commands (the tests' own strings are not read)
SOURCES = ("shared", "stacks", "policies", "noxfile.py")
#: ``aws <service> <command>``, not inside a word or a path (``pulumi_aws``, ``terraform-provider-aws``)
_HEAD = re.compile(r"(?<![\w./-])aws\s+([a-z0-9][a-z0-9-]*)\s+([a-z0-9][a-z0-9-]*)")
#: where a command's options end: a code span, a shell operator, a closing parenthesis, a line's end
_END = re.compile(r"[`;|&)\n]")
#: a command substitution, whose own command is read on its own
_SUBSTITUTION = re.compile(r"\$\([^()]*\)")
#: a formatted value of an f-string, in the text the test reads
_VALUE = "{…}"


def _texts(tree: ast.AST) -> list[str]:
    """Each string literal's text (an f-string's with its values as ``{…}``), implicit concatenations joined."""
    inner = {id(value) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for value in node.values}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(str(value.value) if isinstance(value, ast.Constant) else _VALUE
                                 for value in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inner:
            texts.append(node.value)
    return texts


def _files() -> list[Path]:
    return sorted(path for source in SOURCES for path in (
        [REPO_ROOT / source] if source.endswith(".py") else (REPO_ROOT / source).rglob("*.py")))


def code_commands() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(CLI service, command, its --options, where) of every ``aws`` command in the code's strings, once each.
    A word after ``aws`` that is no CLI service is prose ("the aws pack ..."), unless the next one is hyphenated
    like a command: then a misspelt service fails instead of being passed over."""
    found: dict[tuple[str, str, tuple[str, ...]], str] = {}
    for path in _files():
        for text in _texts(ast.parse(path.read_text(encoding="utf-8"))):
            for command in commands_in(text):
                found.setdefault(command, str(path.relative_to(REPO_ROOT)))
    return [(*key, where) for key, where in found.items()]


def commands_in(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(CLI service, command, its --options) of each ``aws`` command in ``text``."""
    services = cli_services()
    text = re.sub(r"\\\n\s*", " ", text)  # a shell line continued on the next
    commands = []
    for head in _HEAD.finditer(text):
        service, command = head.group(1), head.group(2)
        if service not in services and "-" not in command:
            continue
        rest = _END.split(_SUBSTITUTION.sub("…", text[head.end():]), maxsplit=1)[0]
        commands.append((service, command, tuple(sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest))))))
    return commands


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_start_build_the_reach_refusal_prints_is_a_codebuild_call_with_those_options(env: str) -> None:
    """Built from a list of words, which the reader above sees apart: its whole text, as printed."""
    from shared.envs import load_env
    from shared.orchestrate.reach import runner_build_command

    printed = runner_build_command(load_env(env))
    (start,) = [command for command in commands_in(printed) if command[1] == "start-build"]
    assert "--service-role-override" in start[2] and "--source-version" in start[2]
    assert [problem for command in commands_in(printed) if (problem := cli_problem(*command))] == []


def test_the_code_names_aws_commands() -> None:
    """The reader finds the commands the refusals name (a broken reader would pass the test below vacuously)."""
    commands = {(service, command) for service, command, _, _ in code_commands()}
    assert {("mq", "reboot-broker"), ("iam", "create-service-linked-role"), ("secretsmanager", "restore-secret"),
            ("elbv2", "modify-load-balancer-attributes"), ("codebuild", "batch-get-builds")} <= commands


@pytest.mark.parametrize(("service", "command", "options", "where"), code_commands(),
                         ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_each_aws_command_the_code_prints_is_an_operation_with_those_options(
        service: str, command: str, options: tuple[str, ...], where: str) -> None:
    problem = cli_problem(service, command, options)
    assert problem is None, f"{where}: {problem}"


def test_the_reader_takes_f_strings_concatenations_and_prose_as_an_operator_reads_them() -> None:
    tree = ast.parse('x = ("run `aws mq reboot-broker --broker-id " f"{b}` then" " aws ecs wait services-stable")\n'
                     'y = "the aws pack lists rules; aws secretmanager get-secret-value"\n')
    texts = _texts(tree)
    assert texts == ["run `aws mq reboot-broker --broker-id {…}` then aws ecs wait services-stable",
                     "the aws pack lists rules; aws secretmanager get-secret-value"]
    heads = [(m.group(1), m.group(2)) for text in texts for m in _HEAD.finditer(text)]
    assert heads == [("mq", "reboot-broker"), ("ecs", "wait"), ("pack", "lists"),
                     ("secretmanager", "get-secret-value")]
    assert cli_problem("secretmanager", "get-secret-value", ()) == (
        "`aws secretmanager get-secret-value`: botocore has no service model 'secretmanager'")
