"""mypy covers every Python package of the repo (the helper package, the layer programs, the policy
packs), not only ``shared/``; ``nox -s lint`` runs it with this configuration."""

from __future__ import annotations

import tomllib

from shared import REPO_ROOT

NOT_TYPECHECKED = {"tests", ".venv", ".git", ".github", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                   "build"}


def test_every_top_level_python_directory_is_in_mypys_files() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    with_python = {path.name for path in REPO_ROOT.iterdir()
                   if path.is_dir() and path.name not in NOT_TYPECHECKED and any(path.rglob("*.py"))}
    assert with_python <= set(config["files"]), f"not type-checked: {sorted(with_python - set(config['files']))}"
    assert {"shared", "stacks", "policies"} <= with_python
    # stack programs are all __main__.py and rule files have hyphens: modules are named from their paths
    assert config["explicit_package_bases"] is True
