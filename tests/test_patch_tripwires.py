"""Tripwires for the upgrade of pulumi / pulumi_policy / protobuf, and the fence around our patches.

The synth's fast paths and the packs' analyzer speed-up replace or copy the functions below. Each
entry is the SHA-256 (first 16 hex digits) of the upstream function's source at the pinned version:
after an upgrade a changed function fails here, by name, instead of the copy drifting silently. To
re-derive: read the upstream change, carry it into the replacement, then update the hash (README,
"Upgrading Pulumi"). The fence: packs started like the CLI starts them run plain pulumi_policy, and a
version other than the pin turns every patch off with one warning.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from shared import REPO_ROOT, patch_guard
from shared.policy.engine import PackProcess
from shared.policy.fast_analyzer import BATCH_METHOD

UPSTREAM_SOURCES = {
    ("pulumi.output", "Output.from_input"): "890885e07a39174c",
    ("pulumi.output", "Output._from_data"): "cd70e3b38ee181f6",
    ("pulumi.output", "_OutputData"): "71b7d20a16cca366",
    ("pulumi.runtime.rpc", "contains_unknowns"): "1f1f335b6f48b960",
    ("pulumi.runtime.rpc", "transfer_properties"): "0e7c02ffa04ff20b",
    ("pulumi.runtime.rpc", "_add_dependency"): "4566782211f464dc",
    ("pulumi.runtime.resource", "_get_stack_trace"): "3943b22730169251",
    ("pulumi.log", "debug"): "381cd6115cca6ca1",
    ("pulumi._types", "unwrap_type"): "6ccd35036cb0b3d4",
    ("pulumi.runtime.resource_cycle_breaker", "declare_dependency"): "8acf8b90a08af64a",
    ("pulumi.runtime.resource_cycle_breaker", "_reachable"): "b3a7a15d8dbf4db2",
    ("pulumi.runtime.resource_cycle_breaker", "_with_transitive_deps"): "b88d68c4472c6ab8",
    ("pulumi.runtime.resource_cycle_breaker", "_add_dep"): "afc6ea4cb7e131e5",
    ("pulumi.runtime.resource_cycle_breaker", "_deps"): "aa29d49a00faf36e",
    ("pulumi.runtime.stack", "wait_for_rpcs"): "c0f9027f85ad0925",
    ("pulumi.runtime.sync_await", "_ensure_event_loop"): "1775dd0c58ea5d48",
    ("pulumi.runtime.settings", "_get_rpc_manager"): "08e4320a3932bb21",
    ("pulumi.runtime.mocks", "_ensure_event_loop"): "1775dd0c58ea5d48",
    ("pulumi_policy.policy", "_PolicyAnalyzerServicer.Analyze"): "75db9cf8fc9d1585",
    ("pulumi_policy.policy", "_PolicyAnalyzerServicer.AnalyzeStack"): "3917a008482c2387",
    ("pulumi_policy.policy", "_PolicyAnalyzerServicer._get_resource_options"): "986051047b696f0f",
    ("pulumi_policy.policy", "_PolicyAnalyzerServicer._get_provider_resource"): "5db736069fc8d3d6",
    ("pulumi_policy.policy", "deserialize_properties"): "2ef45163513f6cc9",
    ("pulumi_policy.policy", "unknown_checking_proxy"): "760d27c0d09666ff",
    ("pulumi_policy.policy", "_NotApplicableError"): "1b0c8e2a38deeaff",
    ("pulumi_policy.proxy", "_DictProxy"): "9c45424925aaa8d0",
    ("pulumi_policy.proxy", "_ListProxy"): "7d39cdb7a0a010d7",
    ("pulumi_policy.proxy", "_append_prop"): "3d3beed123b8620f",
    ("pulumi_policy.proxy", "_is_unknown"): "fb776c4c2ecdd8dc",
    ("pulumi.runtime.proto.analyzer_pb2_grpc", "add_AnalyzerServicer_to_server"): "81c81c05d0e61d7f",
    ("google.protobuf.json_format", "MessageToDict"): "a0eac6c225057afd",
}


def _source_hash(module: str, attribute: str) -> str:
    owner: Any = importlib.import_module(module)
    for part in attribute.split("."):
        owner = getattr(owner, part)
    function = inspect.unwrap(getattr(owner, "__func__", owner))
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


@pytest.mark.parametrize(("module", "attribute"), sorted(UPSTREAM_SOURCES))
def test_the_upstream_source_a_patch_replaces_or_copies_is_the_one_it_was_written_for(
        module: str, attribute: str) -> None:
    assert _source_hash(module, attribute) == UPSTREAM_SOURCES[(module, attribute)], (
        f"{module}.{attribute} changed upstream: re-derive the patch that replaces or copies it "
        "(shared/synth/speedups.py, shared/synth/engine.py, shared/policy/fast_analyzer.py), then update the hash")


def test_the_installed_versions_are_the_pinned_ones() -> None:
    assert patch_guard.version_mismatches(patch_guard.ANALYZER_PATCHED + patch_guard.SYNTH_PATCHED) == []


def test_the_packs_requirements_pin_what_pyproject_pins() -> None:
    """pyproject.toml is the one place versions are chosen; a pack's requirements.txt (what the
    pulumi CLI installs for it) must repeat the same pins."""
    pins = patch_guard.pinned_versions()
    for requirements in sorted((REPO_ROOT / "policies").glob("*/requirements.txt")):
        for line in requirements.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, version = line.partition("==")
                assert pins.get(patch_guard._normalize(name)) == version, f"{requirements}: {line}"


def _batch_answer(process: PackProcess) -> grpc.StatusCode | None:
    process.connect()
    assert process.channel is not None
    call = process.channel.unary_unary(BATCH_METHOD, request_serializer=None, response_deserializer=None)
    try:
        call(b"", timeout=30)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return,attr-defined]
    return None


def test_a_pack_started_the_way_the_cli_starts_it_is_plain_pulumi_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the offline engine's marker the pack never installs the speed-up: AnalyzeBatch, which
    # only the speed-up serves, is unknown to it.
    original_popen = subprocess.Popen

    def popen_as_the_cli(*args: Any, **kwargs: Any) -> Any:
        env = dict(kwargs.get("env") or os.environ)
        env.pop(patch_guard.OFFLINE_ENGINE_ENV, None)
        return original_popen(*args, **{**kwargs, "env": env})

    monkeypatch.setattr(subprocess, "Popen", popen_as_the_cli)
    plain = PackProcess("rabbitmq")
    try:
        assert _batch_answer(plain) == grpc.StatusCode.UNIMPLEMENTED
    finally:
        plain.stop()


def test_the_offline_engine_marks_its_packs_and_they_batch() -> None:
    offline = PackProcess("rabbitmq")
    try:
        assert _batch_answer(offline) != grpc.StatusCode.UNIMPLEMENTED
    finally:
        offline.stop()


def test_another_version_runs_unpatched_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    real = patch_guard.pinned_versions()
    monkeypatch.setattr(patch_guard, "pinned_versions", lambda: {**real, "pulumi": "0.0.1"})
    monkeypatch.setattr(patch_guard, "_warned", set())
    assert not patch_guard.patches_allowed("the synth's SDK fast paths", ("pulumi",))
    assert not patch_guard.patches_allowed("the synth's SDK fast paths", ("pulumi",))
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and "pulumi 3.272.0 (tested: 0.0.1)" in warnings[0]


def test_a_synth_at_another_version_is_unpatched_and_gives_the_same_json(tmp_path: Path) -> None:
    script = (
        "import sys, pulumi\n"
        "from shared import patch_guard\n"
        "real = patch_guard.pinned_versions()\n"
        "patch_guard.pinned_versions = lambda: {**real, 'pulumi': '0.0.1'}\n"
        "from shared.synth import engine\n"
        "def refuse():\n"
        "    raise AssertionError('the SDK was patched at an untested version')\n"
        "engine.sdk_fast_paths = refuse\n"
        "original_wait = engine.pulumi_stack.wait_for_rpcs\n"
        "docs = engine.synth_env('dev', ['network'])\n"
        "assert engine.pulumi_stack.wait_for_rpcs is original_wait\n"
        "dumps = engine.dumps\n"
        "sys.stdout.write(dumps(docs['network']))\n")
    unpatched = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                               env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=True)
    assert unpatched.stderr.count("disabled") == 1
    from shared.synth.engine import dumps, synth_env

    assert unpatched.stdout == dumps(synth_env("dev", ["network"])["network"])
