"""README's Commands table and the commands themselves say the same: every ``nox -s NAME`` the READMEs name is a
session of noxfile.py, and every option a session's program accepts is in the table (a new user reads the table,
not ``--help``). The sessions all README names are listed in tests/test_orchestrate_account.py."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from shared import REPO_ROOT

#: sessions whose options are another tool's (pytest, ruff, uv: lock, ...) or subcommands CI calls (workflows)
NOT_OURS = {"tests", "lint", "workflows", "lock"}


def _sessions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse((REPO_ROOT / "noxfile.py").read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(ast.unparse(decorator) == "nox.session" for decorator in node.decorator_list)}


def _module(session: ast.FunctionDef) -> str:
    """The ``python -m`` module a session runs (the orchestrator's for the ``_orchestrate`` ones)."""
    for node in ast.walk(session):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_orchestrate":
            return "shared.orchestrate"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_exit_with":
            values = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
            if "-m" in values:
                return str(values[values.index("-m") + 1])
    raise AssertionError(f"session {session.name} runs no `python -m` module")


def _commands_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]


def test_every_session_the_readmes_name_exists() -> None:
    sessions = set(_sessions())
    for path in (REPO_ROOT / "README.md", REPO_ROOT / "policies" / "README.md"):
        named = {name for group in re.findall(r"`nox -s ([a-z|\\]+)", path.read_text(encoding="utf-8"))
                 for name in group.replace("\\", "").split("|")}
        assert named - sessions == set(), f"{path.name} names sessions noxfile.py lacks: {sorted(named - sessions)}"


@pytest.mark.parametrize("name", sorted(set(_sessions()) - NOT_OURS))
def test_the_commands_table_names_every_option_of_the_session(name: str) -> None:
    module = _module(_sessions()[name])
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", result.stdout)) - {"--help"}
    table = _commands_section()
    missing = sorted(option for option in options if not re.search(rf"{re.escape(option)}(?![a-z-])", table))
    assert missing == [], f"README's Commands table lacks options of `nox -s {name}` ({module}): {missing}"


def test_every_documented_policy_pack_path_resolves_from_a_layers_folder() -> None:
    """A preview runs in stacks/<layer> (each layer's Pulumi.yaml is there), and the CLI resolves a --policy-pack path
    against that folder: a path written from the repository root fails there ("failed to load Pulumi policy project").
    A documented command also gives each pack its config, without which no env's levels, suppressions or secretness
    apply."""
    places = [REPO_ROOT / "README.md", REPO_ROOT / "policies" / "README.md",
              *sorted((REPO_ROOT / "policies").glob("*/PulumiPolicy.yaml")),
              *sorted((REPO_ROOT / "policies").glob("*/__main__.py"))]
    layer = REPO_ROOT / "stacks" / "compute"
    found = 0
    for place in places:
        text = place.read_text(encoding="utf-8")
        for path in re.findall(r"--policy-pack (\S+?)[`\s]", text):
            found += 1
            pack = layer / path.replace("<pack>", "aws")
            assert (pack / "PulumiPolicy.yaml").is_file(), f"{place.name}: --policy-pack {path} from stacks/<layer>"
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            if "--policy-pack " in block:
                assert block.count("--policy-pack ") == block.count("--policy-pack-config "), (place.name, block)
    assert found >= 7, found
