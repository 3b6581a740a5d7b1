"""Packs forked from the one-shot policy command (shared.policy.packfork) answer exactly what packs
started as fresh interpreters answer, fail the same way, and leave nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from shared import REPO_ROOT
from tests.synth_helpers import write_spec_baseline

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from shared.policy.engine import PolicyEngine, evaluate_documents_result
    from shared.policy.packfork import ForkedPack

    documents = [json.loads(Path(p).read_text()) for p in sys.argv[1:]]

    def run(fork):
        with PolicyEngine(fork=fork) as engine:
            kinds = {type(p.process).__name__ for p in engine.packs.values()}
            pids = [p.process.pid for p in engine.packs.values()]
            result = evaluate_documents_result(documents, "staging", engine=engine)
        return kinds, pids, result

    kinds, pids, forked = run(True)  # first: this process has one thread and no grpc channel yet
    for pid in pids:  # every forked pack was stopped and reaped
        try:
            os.waitpid(pid, os.WNOHANG)
            raise SystemExit(f"pack {pid} was not reaped")
        except ChildProcessError:
            pass
    fresh_kinds, _, fresh = run(True)  # threads now exist (grpc, drains): fresh interpreters instead
    print(json.dumps({
        "kinds": sorted(kinds), "fresh_kinds": sorted(fresh_kinds),
        "same_findings": forked.findings == fresh.findings,
        "same_not_applicable": forked.not_applicable == fresh.not_applicable,
        "findings": len(forked.findings), "not_applicable": len(forked.not_applicable),
    }))
""")


def test_forked_packs_answer_what_fresh_packs_answer(tmp_path):
    # the example staging: it has findings (unprotected stateful resources, advisory there) and not-applicable answers
    snapshots = sorted(str(path) for path in (write_spec_baseline(tmp_path, "staging") / "staging").glob("*.json"))
    done = subprocess.run([sys.executable, "-c", SCRIPT, *snapshots], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kinds"] == ["ForkedPack"] and report["fresh_kinds"] == ["Popen"]
    assert report["same_findings"] and report["same_not_applicable"]
    assert report["findings"] > 0 and report["not_applicable"] > 0


def test_a_forked_pack_that_fails_to_start_reports_its_exit_code_and_output(tmp_path):
    policies = tmp_path / "policies"
    (policies / "rabbitmq").mkdir(parents=True)
    (policies / "rabbitmq" / "__main__.py").write_text("raise RuntimeError('no rules here')\n")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from shared.policy.engine import PolicyEngine, PolicyEngineError
        with PolicyEngine(packs=["rabbitmq"], policies_dir=Path({str(policies)!r}), fork=True) as engine:
            assert type(engine.packs["rabbitmq"].process).__name__ == "ForkedPack"
            try:
                engine.analyzer_info()
            except PolicyEngineError as error:
                print(error)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "exited with code 1 before printing its port" in done.stdout
    assert "RuntimeError: no rules here" in done.stdout


def test_the_policy_command_forks_its_packs_and_they_end_with_it(tmp_path):
    """The command's output pipe reaches EOF when it exits: no forked pack kept it open."""
    done = subprocess.run([sys.executable, "-m", "shared.policy", "--program", str(REPO_ROOT / "tests" / "programs"
                                                                                    / "log-groups")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stderr
    assert "logs-retention-set" in done.stdout
