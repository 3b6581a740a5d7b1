"""A long run judges the env file once: every layer program of it compares the file it reads with the one judged.

In one clone, a `nox -s promote` (which rewrites the target's env file), an edit or a checkout while `nox -s up` runs
would have the later layers deploy what the run's checks (the image gate, the release tags, the replacement and
rotation checks) never judged. The orchestrator hands every program the file's SHA-256; a program that reads another
file stops before it declares a resource.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.envs import env_path
from shared.errors import ConfigError
from shared.layer import check_env_unchanged
from shared.orchestrate.model import ENV_DIGEST_VARIABLE, env_file_digest
from tests.test_orchestrate_automation import FakeCli, fake_cli, management_api, run

__all__ = ["fake_cli", "management_api"]  # fixtures


def test_a_program_run_by_the_orchestrator_stops_on_a_changed_env_file(
        edit_env: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DIGEST_VARIABLE, env_file_digest(env_path("dev")))
    check_env_unchanged("dev")  # the judged file: nothing to say
    edit_env("dev", lambda data: data["release"]["images"].update({"gateway": "sha256:" + "e" * 64}))
    with pytest.raises(ConfigError) as error:
        check_env_unchanged("dev")
    assert error.value.key == "(file)" and "changed after this run's checks judged it" in error.value.reason


def test_a_program_run_by_hand_or_by_the_synth_is_not_compared(
        edit_env: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DIGEST_VARIABLE, raising=False)
    edit_env("dev", lambda data: data["tags"].update({"team": "other"}))
    check_env_unchanged("dev")


def test_the_runner_hands_every_program_the_digest_of_the_file_it_judged(fake_cli: FakeCli, tmp_path: Path) -> None:
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 0, output
    digest = env_file_digest(env_path("dev"))
    programs = [c for c in fake_cli.calls() if c["event"] == "call" and c["args"][:1] in (["preview"], ["up"])]
    assert programs and {c["env_sha256"] for c in programs} == {digest}


def test_a_file_changed_between_the_checks_and_the_first_layer_stops_the_run(
        fake_cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit_env: Callable[..., Path]) -> None:
    """The digest handed to the programs is of the file the run's checks read, not of a later read."""
    from shared.orchestrate.automation import AutomationRunner

    real = AutomationRunner.prepare_read

    def edited_meanwhile(self: AutomationRunner, *args: Any, **kwargs: Any) -> Any:
        edit_env("dev", lambda data: data["tags"].update({"team": "meanwhile"}))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AutomationRunner, "prepare_read", edited_meanwhile)
    code, output = run(["up", "dev", "--yes", "--local-state"], tmp_path)
    assert code == 2, output
    assert not [c for c in fake_cli.calls() if c["event"] == "call" and c["args"][:1] in (["preview"], ["up"])]
