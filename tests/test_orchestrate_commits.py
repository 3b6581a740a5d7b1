"""An ``up`` never deploys code older than what a stack was last updated from (shared/orchestrate/commits.py).

GitHub's "Re-run failed jobs" runs the run's original commit: an older failed deploy re-run after a newer one
succeeded would put the older code back, and a stale laptop checkout would do the same. The real runner over the
fake `pulumi` (its `stack history` prints the updates a test writes, with the ``git.head`` the CLI records), and a
scratch git repository for the checkout: main A -> B, and a branch C off A.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from shared.orchestrate.commits import Checkout, DeployedCommit, last_update_commit, parse_history
from tests.test_orchestrate_automation import FakeCli, ReleasedEverywhere, fake_cli, management_api
from tests.test_orchestrate_identity import changed_operations, deploy

__all__ = ["fake_cli", "management_api"]  # fixtures


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, str | Path]:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    commits: dict[str, str | Path] = {"root": root}
    for name in ("A", "B"):
        (root / "file").write_text(name)
        git(root, "add", "file")
        git(root, "commit", "-q", "-m", name)
        commits[name] = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "-b", "side", str(commits["A"]))
    (root / "other").write_text("C")
    git(root, "add", "other")
    git(root, "commit", "-q", "-m", "C")
    commits["C"] = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "main")
    return commits


def updated_from(cli: FakeCli, env: str, layer: str, commit: str, result: str = "succeeded") -> None:
    """``layer``'s stack history: a refresh from no checkout, newest, then an update from ``commit``."""
    def entry(kind: str, day: int, environment: dict[str, str], outcome: str) -> dict[str, object]:
        # every field pulumi.automation's UpdateSummary reads (the Automation API reads the newest after an up)
        return {"kind": kind, "startTime": f"2026-12-0{day}T10:00:00.000Z", "endTime": f"2026-12-0{day}T10:01:00.000Z",
                "message": "", "environment": environment, "config": {}, "result": outcome, "version": 3 - day,
                "resourceChanges": {"same": 1}}

    (cli.state / f"{layer}.{env}.history.json").write_text(json.dumps([
        entry("refresh", 2, {}, "succeeded"),
        entry("update", 1, {"git.head": commit, "git.dirty": "false"}, result),
    ]))


def up(repo_root: Path, tmp_path: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config", checkout=Checkout(repo_root))
    return main(["up", "dev", "--yes", "--local-state", *argv], runner=runner, out=out,
                images=ReleasedEverywhere()), out.getvalue()


def test_the_newest_update_with_a_commit_is_the_one_judged_and_a_failed_one_counts() -> None:
    history = [{"kind": "destroy", "environment": {"git.head": "d" * 40}},
               {"kind": "update", "environment": {}},
               {"kind": "update", "startTime": "t", "result": "failed", "environment": {"git.head": "b" * 40}},
               {"kind": "update", "environment": {"git.head": "a" * 40}}]
    assert last_update_commit(history) == DeployedCommit("b" * 40, "t", "failed")
    assert last_update_commit([]) is None and parse_history("not json") is None
    assert parse_history(json.dumps(history[:2])) is None


def test_a_checkout_tells_an_ancestor_from_a_commit_on_another_line_and_from_one_it_lacks(repo: dict) -> None:
    checkout = Checkout(repo["root"])
    assert checkout.head() == repo["B"]
    assert checkout.contains(repo["A"]) and checkout.contains(repo["B"])
    assert checkout.contains(repo["C"]) is False
    assert checkout.contains("0" * 40) is None
    assert checkout.on_main(repo["B"]) and checkout.on_main(repo["C"]) is False
    assert Checkout(Path("/")).head() is None


def test_an_up_from_a_commit_older_than_the_deployed_one_is_refused_before_any_layer(
        fake_cli: FakeCli, repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A re-run of main's A after B deployed: A does not contain B, so nothing runs."""
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "compute", str(repo["B"]), result="failed")
    git(repo["root"], "checkout", "-q", str(repo["A"]))
    code, _ = up(repo["root"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert changed_operations(fake_cli) == []
    assert f"organization/compute/dev: last updated from {str(repo['B'])[:12]} (failed" in error
    assert "start a new run from main" in error and "git revert" in error


def test_main_s_commit_is_refused_on_another_line_and_a_commit_off_main_is_let_through(
        fake_cli: FakeCli, repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkout of the side line C (off A) lacks main's B: refused. A stack updated from C (a feature branch
    deployed by hand, squash-merged later, or amended since) is never in main's history: main's B runs over it, or
    every later deploy would be refused."""
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "network", str(repo["A"]))
    updated_from(fake_cli, "dev", "compute", str(repo["B"]))
    git(repo["root"], "checkout", "-q", "side")
    code, _ = up(repo["root"], tmp_path)
    error = capsys.readouterr().err
    assert code == 2 and "organization/compute/dev" in error and "organization/network/dev" not in error, error
    git(repo["root"], "checkout", "-q", "main")
    updated_from(fake_cli, "dev", "compute", str(repo["C"]))
    code, output = up(repo["root"], tmp_path)
    assert code == 0, output + capsys.readouterr().err
    assert [args[0] for args in changed_operations(fake_cli) if args[0] == "up"]


def test_a_commit_this_checkout_lacks_is_a_note_not_a_refusal_and_a_preview_reads_no_history(
        fake_cli: FakeCli, repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "broker", "0123456789ab" + "0" * 28)
    code, output = up(repo["root"], tmp_path)
    assert code == 0, capsys.readouterr().err
    assert "organization/broker/dev (0123456789ab) not in this checkout" in output + capsys.readouterr().err
    before = len([c for c in fake_cli.calls() if c["args"][:2] == ["stack", "history"]])
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config", checkout=Checkout(repo["root"]))
    assert main(["preview", "dev", "--local-state"], runner=runner, out=out, images=ReleasedEverywhere()) == 0
    history_calls = [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "history"]]
    assert all("--page-size" not in c["args"] for c in history_calls[before:])
