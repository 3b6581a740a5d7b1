"""mypy covers every Python package of the repo (the helper package, the layer programs, the policy
packs, the tests), not only ``shared/``; ``nox -s lint`` runs it with this configuration.

The source lists below are mypy's own (``mypy.find_sources``, the code ``mypy`` runs before it checks
anything), computed from pyproject.toml as ``nox -s lint`` computes them."""

from __future__ import annotations

import importlib.util
import io
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mypy.config_parser import parse_config_file
from mypy.find_sources import create_source_list
from mypy.modulefinder import BuildSource
from mypy.options import Options

from shared import REPO_ROOT

NOT_TYPECHECKED = {".venv", ".git", ".github", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build"}
# Run by Pulumi as `__main__` from their own hyphenated folders: see [tool.mypy] exclude.
PROGRAM_CORPUS = REPO_ROOT / "tests" / "programs"


def config() -> dict[str, Any]:
    mypy: dict[str, Any] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return mypy


@pytest.fixture
def options(monkeypatch: pytest.MonkeyPatch) -> Options:
    """mypy's options from pyproject.toml, read from the repo root (where `nox -s lint` runs mypy)."""
    monkeypatch.chdir(REPO_ROOT)
    parsed = Options()
    errors = io.StringIO()
    parse_config_file(parsed, lambda: None, "pyproject.toml", stdout=io.StringIO(), stderr=errors)
    assert errors.getvalue() == ""
    return parsed


def sources(options: Options, paths: list[str] | None = None) -> list[BuildSource]:
    return create_source_list(paths if paths is not None else options.files or [], options)


def test_every_top_level_python_directory_is_in_mypys_files() -> None:
    with_python = {path.name for path in REPO_ROOT.iterdir()
                   if path.is_dir() and path.name not in NOT_TYPECHECKED and any(path.rglob("*.py"))}
    files = set(config()["files"])
    assert with_python <= files, f"not type-checked: {sorted(with_python - files)}"
    assert {"shared", "stacks", "policies", "tests"} <= with_python
    # stack programs are all __main__.py and rule files have hyphens: modules are named from their paths
    assert config()["explicit_package_bases"] is True


def test_every_test_file_is_checked_but_the_program_corpus(options: Options) -> None:
    checked = {(REPO_ROOT / source.path).resolve() for source in sources(options) if source.path}
    in_tests = {path.resolve() for path in (REPO_ROOT / "tests").rglob("*.py")}
    left_out = {path for path in in_tests - checked if not path.is_relative_to(PROGRAM_CORPUS.resolve())}
    assert not left_out, f"not type-checked: {sorted(str(p.relative_to(REPO_ROOT)) for p in left_out)}"
    assert (REPO_ROOT / "tests" / "policies" / "programs" / "compliant" / "__main__.py").resolve() in checked


def test_no_two_files_are_the_same_module(options: Options) -> None:
    """mypy stops at the first duplicate module name, before it checks anything."""
    names = Counter(source.module for source in sources(options))
    assert [name for name, count in names.items() if count > 1] == []


def test_no_file_takes_the_name_of_an_installed_package(options: Options) -> None:
    """A file mypy names after an installed package hides that package from every file it checks (the
    fake `pulumi` CLI, when it was tests/fixtures/fake-pulumi/pulumi.py, made `pulumi.Output` unknown)."""
    shadowing = []
    for source in sources(options):
        spec = importlib.util.find_spec(source.module.split(".")[0])
        origins = [spec.origin, *(spec.submodule_search_locations or [])] if spec else []
        if any(origin and "site-packages" in Path(origin).parts for origin in origins):
            shadowing.append(f"{source.path} (module {source.module})")
    assert shadowing == []


def test_the_program_corpus_is_left_out_because_its_programs_would_all_be_main(options: Options) -> None:
    """Why [tool.mypy] exclude names tests/programs/: one mypy run cannot hold its programs (each folder
    name has a hyphen, so each folder is a module root and each program the module `__main__`)."""
    assert any(re.search(pattern, "tests/programs/") for pattern in options.exclude)
    options.exclude = []
    corpus = sources(options, ["tests/programs"])
    mains = [source for source in corpus if source.module == "__main__"]
    assert len(mains) == len(list(PROGRAM_CORPUS.glob("*/__main__.py"))) > 1
