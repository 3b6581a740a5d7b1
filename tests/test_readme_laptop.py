"""The README's way from `git clone` to `nox -s up -- dev` works on a laptop: macOS (zsh, Homebrew's or python.org's
Python) or Linux without root (the distribution's Python)."""

from __future__ import annotations

import re
import shlex

from shared import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

#: The sections whose command blocks a user pastes on the way to `up` (each up to the next heading of any level).
ON_THE_WAY_TO_UP = ("Quick start (offline, nothing but Python)", "On a laptop (macOS, Linux without root)",
                    "Real runs against AWS (needs the Pulumi CLI)", "Where state lives")


def _section(title: str) -> str:
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def _shell_blocks(text: str) -> list[str]:
    """The ```bash blocks of ``text``, their backslash-continued lines joined."""
    blocks = re.findall(r"^ *```(?:bash|sh|zsh|shell)\n(.*?)^ *```", text, re.M | re.S)
    return [block.replace("\\\n", " ") for block in blocks]


def test_the_blocks_on_the_way_to_up_paste_into_zsh_as_they_run_in_bash() -> None:
    """zsh, macOS's login shell, reads `#` in an interactive line as a word unless `setopt interactivecomments` (off by
    default): `nox -s synth -- dev  # ... build/dev/<layer>.json` failed there with "no such file or directory: layer",
    and the apostrophe of a comment's "env's" left the rest of the pasted lines inside an open quote. A line splits
    the same with and without comments only when it has none."""
    lines = [(title, line) for title in ON_THE_WAY_TO_UP for block in _shell_blocks(_section(title))
             for line in block.splitlines()]
    assert len(lines) >= 10  # the sections still hold their blocks
    commented = [f"{title}: {line.strip()}" for title, line in lines
                 if shlex.split(line, comments=True) != shlex.split(line, comments=False)]
    assert commented == [], "README lines a default zsh would run with their comment as arguments:\n" + \
        "\n".join(commented)


def test_nox_is_installed_into_a_virtualenv_never_into_python3_itself() -> None:
    """Homebrew's Python and Debian's and Ubuntu's python3 are externally managed (PEP 668): `python3 -m pip install`
    outside a virtualenv stops with "error: externally-managed-environment", the README's first command on a Mac."""
    assert not re.search(r"python3(\.\d+)? -m pip install", README)
    quick_start = _shell_blocks(_section("Quick start (offline, nothing but Python)"))[0].splitlines()
    venv = re.fullmatch(r"python3\.1[123] -m venv (\S+)", quick_start[0])
    assert venv, quick_start
    assert quick_start[1:3] == [f". {venv.group(1)}/bin/activate",
                                "python -m pip install --require-hashes -r .ci/bootstrap-requirements.txt"]
    real_runs = _shell_blocks(_section("Real runs against AWS (needs the Pulumi CLI)"))[0].splitlines()
    assert real_runs[0] == f". {venv.group(1)}/bin/activate"
