"""The README's way from `git clone` to `nox -s up -- dev` works on a laptop: macOS (zsh, Homebrew's or python.org's
Python) or Linux without root (the distribution's Python)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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


#: Collects the test files given with ``-m 'not broker'`` and prints each selected test that starts a real RabbitMQ
#: (its own code or a fixture of its closure calls ``LocalBroker(``).
_REAL_BROKER_COLLECTOR = """
import inspect, sys
import pytest

class Report:
    def pytest_collection_finish(self, session):
        for item in session.items:
            defs = [d for ds in item._fixtureinfo.name2fixturedefs.values() for d in ds]
            sources = [inspect.getsource(item.function)] if hasattr(item, "function") else []
            sources += [inspect.getsource(d.func) for d in defs if callable(d.func)]
            if any("LocalBroker(" in source for source in sources):
                print("REAL-BROKER", item.nodeid)

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not broker", *sys.argv[1:]],
                     plugins=[Report()]))
"""


def test_not_broker_leaves_out_every_test_that_starts_a_real_rabbitmq() -> None:
    """The laptop section's `nox -s tests -- -q -m 'not broker'` (no Debian rabbitmq-server on a Mac): a real-broker
    test without the mark is selected and fails there (BrokerUnavailable, rabbitmq-server not installed)."""
    import subprocess
    import sys

    assert "`nox -s tests -- -q -m 'not broker'`" in _section("On a laptop (macOS, Linux without root)")
    files = sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "tests").rglob("test_*.py")
                   if path.name != Path(__file__).name and "LocalBroker(" in path.read_text(encoding="utf-8"))
    assert len(files) >= 5, files  # the real-broker test files are still found
    done = subprocess.run([sys.executable, "-c", _REAL_BROKER_COLLECTOR, *files], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: every test of the files deselected
    unmarked = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("REAL-BROKER ")]
    assert unmarked == [], "real-broker tests without @pytest.mark.broker:\n" + "\n".join(unmarked)


def test_the_quick_start_names_the_command_of_every_supported_python() -> None:
    """The Quick start's first line is `python3.12 -m venv ...`; a laptop with another supported Python only (Debian
    12's `python3.11`, Homebrew's or Fedora's `python3.13`) gets "command not found" unless the README says which
    command takes its place."""
    from shared.venvcheck import SUPPORTED

    quick_start = _section("Quick start (offline, nothing but Python)")
    missing = [f"python{major}.{minor}" for major, minor in SUPPORTED if f"`python{major}.{minor}`" not in quick_start]
    assert missing == [], f"the Quick start does not name {missing} as the command for the nox virtualenv"
