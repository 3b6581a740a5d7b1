"""An ``up`` never deploys code older than what a stack was last updated from (shared/orchestrate/commits.py).

GitHub's "Re-run failed jobs" runs the run's original commit: an older failed deploy re-run after a newer one
succeeded would put the older code back, and a stale laptop checkout would do the same. The real runner over the
fake `pulumi` (its `stack history` prints the updates a test writes, with the ``git.head`` the CLI records), and a
scratch git repository for the checkout: main A -> B, and a branch C off A.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from shared.dag import LAYERS
from shared.errors import ConfigError
from shared.orchestrate import commits
from shared.orchestrate.automation import AutomationRunner
from shared.orchestrate.cli import main
from shared.orchestrate.commits import (
    MAIN_REMOTE_VAR,
    NOT_CHECKED,
    Checkout,
    DeployedCommit,
    check_commits,
    last_update_commit,
    parse_history,
)
from tests.loopback import canned_answer, http_server
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


def entry(kind: str, day: int, environment: dict[str, str], outcome: str) -> dict[str, object]:
    """One update of a stack's history, with every field pulumi.automation's UpdateSummary reads (the Automation API
    reads the newest after an up)."""
    return {"kind": kind, "startTime": f"2026-12-0{day}T10:00:00.000Z", "endTime": f"2026-12-0{day}T10:01:00.000Z",
            "message": "", "environment": environment, "config": {}, "result": outcome, "version": 3 - day,
            "resourceChanges": {"same": 1}}


def updated_from(cli: FakeCli, env: str, layer: str, commit: str, result: str = "succeeded") -> None:
    """``layer``'s stack history: a refresh from no checkout, newest, then an update from ``commit``."""
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
    assert last_update_commit([]) is None and parse_history("[]") is None


def test_a_history_without_a_commit_says_why_and_only_a_stack_never_updated_is_nothing_to_judge() -> None:
    """An update run from outside a git checkout records no ``git.head``; a page of refreshes hides the update
    before it. Either leaves a deployed stack unjudged, which a note must say; a short history without any update
    is a stack no ``up`` has changed yet."""
    refresh = {"kind": "refresh", "environment": {}}
    assert parse_history(json.dumps([refresh, {"kind": "update", "environment": {}}])) \
        == "its update records no commit (git.head: run from outside a git checkout)"
    assert parse_history(json.dumps([{"kind": "update"}, {"kind": "update", "environment": {"git.dirty": "true"}}])) \
        == "none of its 2 newest updates records one (git.head: run from outside a git checkout)"
    assert "none of its newest 20 history entries is an update" in str(parse_history(json.dumps([refresh] * 20)))
    assert parse_history(json.dumps([refresh] * 3)) is None
    assert parse_history("not json") == "its history is not JSON"
    assert parse_history('{"kind": "update"}') == "its history is not a list of updates"


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
    everything = output + capsys.readouterr().err
    assert "organization/broker/dev (0123456789ab) not in this checkout" in everything
    assert "'origin' does not appear to be a git repository" in everything  # the fetch's error: no origin
    before = len([c for c in fake_cli.calls() if c["args"][:2] == ["stack", "history"]])
    out = io.StringIO()
    runner = AutomationRunner(policy_config_dir=tmp_path / "policy-config", checkout=Checkout(repo["root"]))
    assert main(["preview", "dev"], runner=runner, out=out, images=ReleasedEverywhere()) == 0
    history_calls = [c for c in fake_cli.calls() if c["args"][:2] == ["stack", "history"]]
    assert all("--page-size" not in c["args"] for c in history_calls[before:])


# -- what this checkout does not know: main fetched from origin first ------------------------------------------------


@pytest.fixture
def origin(repo: dict, tmp_path: Path) -> Path:
    """A bare ``origin`` whose main is A: B reaches it when a test pushes it (what CI deployed after a checkout was
    made)."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo["root"], "push", "-q", str(bare), f"{repo['A']}:refs/heads/main")
    return bare


def clone(origin: Path, to: Path, *options: str) -> Path:
    """A clone of ``origin`` (file://, so that ``--depth`` makes a shallow one)."""
    subprocess.run(["git", "clone", "-q", *options, f"file://{origin}", str(to)], check=True, capture_output=True)
    return to


def all_updated_from(cli: FakeCli, env: str, commit: str) -> None:
    """Every layer's stack last updated from ``commit``: any note then is about it."""
    for layer in LAYERS:
        updated_from(cli, env, layer, commit)


def push_b(repo: dict, origin: Path) -> None:
    git(repo["root"], "push", "-q", str(origin), f"{repo['B']}:refs/heads/main")


def test_a_stale_checkout_fetches_main_and_is_refused_for_what_ci_deployed_since(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A laptop cloned at A that never fetched since CI deployed B does not know B: judged only after main is
    fetched from origin, where B is main's, so the run is refused instead of undoing B."""
    laptop = clone(origin, tmp_path / "laptop")
    push_b(repo, origin)
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "compute", str(repo["B"]))
    code, _ = up(laptop, tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert changed_operations(fake_cli) == []
    assert f"organization/compute/dev: last updated from {str(repo['B'])[:12]}" in error
    assert git(laptop, "rev-parse", "refs/remotes/origin/main") == repo["B"]
    assert "fetching main from origin to judge the commits the stacks were last updated from" in error  # said first


def test_a_shallow_clone_of_an_older_commit_is_made_complete_and_refused(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The deploy runner's depth-1 clone of an older CI run's commit A, B deployed since: B is unknown there until
    the fetch (``--unshallow``, the clone's history cut off) brings main."""
    runner = clone(origin, tmp_path / "runner", "--depth", "1")
    push_b(repo, origin)
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "compute", str(repo["B"]))
    code, _ = up(runner, tmp_path)
    error = capsys.readouterr().err
    assert code == 2 and "organization/compute/dev: last updated from" in error, error
    assert git(runner, "rev-parse", "--is-shallow-repository") == "false"


def test_a_shallow_clone_of_a_newer_commit_runs_without_a_note(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A depth-1 clone of B lacks A, which it contains: once its history is fetched, A is judged and the run goes on
    with nothing to say."""
    push_b(repo, origin)
    runner = clone(origin, tmp_path / "runner", "--depth", "1")
    deploy(fake_cli, "dev")
    all_updated_from(fake_cli, "dev", str(repo["A"]))
    code, output = up(runner, tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert NOT_CHECKED not in everything and "let through" not in everything


def test_a_shallow_clone_that_cannot_fetch_judges_nothing_it_does_not_contain(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = clone(origin, tmp_path / "runner", "--depth", "1")
    git(runner, "remote", "remove", "origin")
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "compute", str(repo["B"]))
    code, output = up(runner, tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert f"organization/compute/dev ({str(repo['B'])[:12]}) not in this shallow clone's history" in everything
    assert "'origin' does not appear to be a git repository" in everything


def test_a_commit_not_on_origin_s_main_after_the_fetch_is_let_through_with_a_note(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unpushed commit deployed from a laptop, or one amended since: origin's main never contains it, as a commit
    off main."""
    push_b(repo, origin)
    laptop = clone(origin, tmp_path / "laptop")
    deploy(fake_cli, "dev")
    all_updated_from(fake_cli, "dev", str(repo["B"]))
    updated_from(fake_cli, "dev", "broker", "0123456789ab" + "0" * 28)
    code, output = up(laptop, tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert "let through, as commits off main: organization/broker/dev (0123456789ab)" in everything
    assert NOT_CHECKED not in everything


def test_a_fork_s_clone_judges_against_the_remote_platform_main_remote_names(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork's clone: ``origin`` is the fork, whose main is stale (A), ``upstream`` the repository CI deploys from
    (B). Judged against origin, B looks unpushed and is let through, with a note naming the variable and the other
    remote; with PLATFORM_MAIN_REMOTE=upstream the run is refused instead of undoing B."""
    fork = tmp_path / "fork.git"
    git(tmp_path, "clone", "-q", "--bare", f"file://{origin}", str(fork))
    laptop = clone(fork, tmp_path / "laptop")
    git(laptop, "remote", "add", "upstream", f"file://{origin}")
    push_b(repo, origin)
    deploy(fake_cli, "dev")
    updated_from(fake_cli, "dev", "compute", str(repo["B"]))
    monkeypatch.delenv(MAIN_REMOTE_VAR, raising=False)
    code, output = up(laptop, tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert "nor on origin's main, fetched just now" in everything
    assert f"if origin is your fork, name the remote of the repository CI deploys from in {MAIN_REMOTE_VAR} (this " \
           "checkout also has upstream)" in everything

    monkeypatch.setenv(MAIN_REMOTE_VAR, "upstream")
    before = len(changed_operations(fake_cli))
    code, _ = up(laptop, tmp_path)
    error = capsys.readouterr().err
    assert code == 2, error
    assert len(changed_operations(fake_cli)) == before
    assert f"organization/compute/dev: last updated from {str(repo['B'])[:12]}" in error
    assert git(laptop, "rev-parse", "refs/remotes/upstream/main") == repo["B"]


@pytest.mark.parametrize("remote", ["--upload-pack=x", "up stream", "-u"])
def test_a_main_remote_that_is_no_remote_name_is_refused_naming_the_variable(
        remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAIN_REMOTE_VAR, remote)
    with pytest.raises(ConfigError, match=MAIN_REMOTE_VAR):
        Checkout(tmp_path)


def test_a_ci_job_s_complete_clone_lets_a_commit_off_main_through_without_a_fetch(
        fake_cli: FakeCli, repo: dict, origin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deploy job's checkout (fetch-depth 0) holds main as of the job's start, and no credentials
    (persist-credentials: false): a stack updated from a feature branch is off main, said quietly, as a fetch would
    fail in a private repository and learn nothing in a public one. A laptop's clone still fetches first."""
    git(repo["root"], "push", "-q", str(origin), f"{repo['C']}:refs/heads/side")
    job = clone(origin, tmp_path / "job")
    git(job, "remote", "set-url", "origin", str(tmp_path / "private-without-credentials.git"))
    deploy(fake_cli, "dev")
    all_updated_from(fake_cli, "dev", str(repo["A"]))
    updated_from(fake_cli, "dev", "compute", str(repo["C"]))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, output = up(job, tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert NOT_CHECKED not in everything and "fetching main" not in everything
    monkeypatch.delenv("GITHUB_ACTIONS")
    code, output = up(job, tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert f"organization/compute/dev ({str(repo['C'])[:12]}) not in this checkout's main, which may be behind " \
           "origin's; main could not be fetched from origin" in everything


#: what a git server wanting credentials answers
_ASKS_FOR_CREDENTIALS = canned_answer(401, {"WWW-Authenticate": 'Basic realm="git"', "Content-Length": "0"})


def test_a_fetch_that_wants_credentials_fails_without_a_prompt_and_one_that_hangs_is_cut_short(
        repo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """git asks for a username on the terminal when origin wants one (a private repository without credentials):
    the gate never waits for an answer, and a fetch that does not finish ends at its timeout. Neither note shows
    credentials an origin's URL holds."""
    deployed = {"organization/compute/dev": DeployedCommit("0123456789ab" + "0" * 28, "t", "succeeded")}
    checkout = Checkout(repo["root"])
    with http_server(_ASKS_FOR_CREDENTIALS) as server:
        git(repo["root"], "remote", "add", "origin", f"http://127.0.0.1:{server.server_port}/repo.git")
        [note] = check_commits("dev", "up", deployed, checkout)
        assert "terminal prompts disabled" in note and "organization/compute/dev (0123456789ab)" in note, note
        # a token as the URL's user (as GitHub takes one): git asks for the password, naming the URL
        git(repo["root"], "remote", "set-url", "origin", f"http://ghp_t0ken@127.0.0.1:{server.server_port}/repo.git")
        [note] = check_commits("dev", "up", deployed, checkout)
        assert "http://[redacted]@127.0.0.1" in note and "ghp_t0ken" not in note, note
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        git(repo["root"], "remote", "set-url", "origin", f"http://deployer:s3cret@127.0.0.1:{port}/repo.git")
        monkeypatch.setattr(commits, "FETCH_TIMEOUT", 1)
        [note] = check_commits("dev", "up", deployed, checkout)
        # git's helper (git-remote-http, waiting on the socket) went with it: the whole session was killed
        deadline = time.monotonic() + 5
        while _processes_naming(f"127.0.0.1:{port}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_naming(f"127.0.0.1:{port}") == []
    assert "`git fetch` did not finish within 1 s" in note and "s3cret" not in note, note


def _processes_naming(text: str) -> list[int]:
    """The live processes whose command line holds ``text`` (Linux's /proc; none elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (entry / "cmdline").read_bytes() and \
                    not (entry / "status").read_text().split("State:")[1].strip().startswith("Z"):
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


# -- git that cannot read the checkout --------------------------------------------------------------------------------


def test_git_that_cannot_read_the_checkout_is_a_note_naming_its_error(
        repo: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout owned by another user (containers, CI) is refused by git ("dubious ownership"), and without git
    nothing can be judged: each a note with git's reason, the first with the fix. Outside a git checkout, a note
    says so; with nothing deployed, git is not asked."""
    deployed = {"organization/compute/dev": DeployedCommit(str(repo["B"]), "t", "succeeded")}
    plain = tmp_path / "plain"
    plain.mkdir()
    [note] = check_commits("dev", "up", deployed, Checkout(plain))
    assert note == f"{NOT_CHECKED} (organization/compute/dev): {plain} is not a git checkout"
    # git's own switch for its ownership check (git t/: GIT_TEST_ASSUME_DIFFERENT_OWNER)
    monkeypatch.setenv("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1")
    [note] = check_commits("dev", "up", deployed, Checkout(repo["root"]))
    assert "detected dubious ownership in repository" in note, note
    assert f"git config --global --add safe.directory {repo['root']}" in note
    monkeypatch.delenv("GIT_TEST_ASSUME_DIFFERENT_OWNER")
    nothing = tmp_path / "no-git"
    nothing.mkdir()
    monkeypatch.setenv("PATH", str(nothing))
    [note] = check_commits("dev", "up", deployed, Checkout(repo["root"]))
    assert note.startswith(f"{NOT_CHECKED} (organization/compute/dev), git in {repo['root']}: git could not be run"), \
        note
    assert check_commits("dev", "up", {}, Checkout(repo["root"])) == []


def test_a_stack_whose_history_names_no_commit_is_a_note(
        fake_cli: FakeCli, repo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compute's updates ran outside a git checkout, broker's newest page is all refreshes: neither can be judged,
    and the note names them and why, instead of passing them by."""
    deploy(fake_cli, "dev")
    all_updated_from(fake_cli, "dev", str(repo["B"]))
    (fake_cli.state / "compute.dev.history.json").write_text(json.dumps([entry("update", 1, {}, "succeeded")]))
    (fake_cli.state / "broker.dev.history.json").write_text(json.dumps([entry("refresh", 2, {}, "succeeded")] * 20))
    code, output = up(repo["root"], tmp_path)
    everything = output + capsys.readouterr().err
    assert code == 0, everything
    assert "organization/compute/dev: its update records no commit (git.head: run from outside a git checkout)" \
        in everything
    assert "organization/broker/dev: none of its newest 20 history entries is an update" in everything
