"""`nox -s lint` type-checks every program of the policy engine's corpus (tests/programs/<name>/) alone,
from its own folder, as Pulumi runs it: the repo-wide mypy run has to exclude them (each is `__main__`)."""

from pathlib import Path

import pytest

from shared.typecheck_programs import PROGRAMS, main, programs


def write_program(root: Path, name: str, body: str, extra: dict[str, str] | None = None) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__main__.py").write_text(body)
    for path, text in (extra or {}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)


def test_every_corpus_program_is_checked() -> None:
    names = {program.name for program in programs()}
    assert names == {path.parent.name for path in PROGRAMS.glob("*/__main__.py")}
    assert {"multi-file", "ecr-good"} <= names


def test_a_type_error_in_one_program_fails_and_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # two programs, both `__main__` with their own top-level package `infra`: checked together, mypy would refuse
    write_program(tmp_path, "good-one", "from infra import size\n\ncount: int = size()\n",
                  {"infra/__init__.py": "def size() -> int:\n    return 1\n"})
    write_program(tmp_path, "bad-one", "from infra import size\n\ncount: int = size()\n",
                  {"infra/__init__.py": "def size() -> str:\n    return 'one'\n"})
    assert main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "mypy failed for 1 of 2 programs" in err and err.rstrip().endswith(": bad-one")


def test_programs_that_type_check_pass(tmp_path: Path) -> None:
    write_program(tmp_path, "a", "from infra import size\n\ncount: int = size()\n",
                  {"infra/__init__.py": "def size() -> int:\n    return 1\n"})
    write_program(tmp_path, "b", "from infra import name\n\nlabel: str = name()\n",
                  {"infra/__init__.py": "def name() -> str:\n    return 'b'\n"})
    assert main([str(tmp_path)]) == 0


def test_a_folder_without_programs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no program" in capsys.readouterr().err
