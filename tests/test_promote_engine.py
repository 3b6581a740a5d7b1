"""The promotion policy gate with the real offline policy engine (synth + the CrossGuard packs' own code)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared import REPO_ROOT
from shared.envs import load_env
from shared.promote import main

NEW = "sha256:" + "ab" * 32


def set_image(env_dir: Path, env: str, service: str, ref: str) -> None:
    path = env_dir / f"{env}.yaml"
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(f"    {service}: "))
    lines[index] = f"    {service}: {ref}\n"
    path.write_text("".join(lines))


def promote(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, out=out, deployed_digests=lambda source: None), out.getvalue()


def test_a_clean_release_passes_the_real_policy_gate_and_is_written(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    code, output = promote(["dev", "staging"])
    assert code == 0, output
    assert "gate policy: ok" in output
    assert load_env("staging").release.images["gateway"] == NEW


def test_a_target_that_fails_its_own_enforcement_refuses_the_promotion(env_dir: Path, edit_env,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # Staging tightened mq-broker-multi-az to mandatory but still runs a single-instance broker: the
    # engine finds that in the messaging layer, and no release may land in an env in that state.
    edit_env("staging", lambda data: data["policy"].update(enforcement={"mq-broker-multi-az": "mandatory"}))
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, _ = promote(["dev", "staging"])
    assert code == 1
    err = capsys.readouterr().err
    assert "'policy' gate" in err and "mq-broker-multi-az" in err
    assert staging.read_bytes() == before


@pytest.mark.skipif(not (REPO_ROOT / "stacks" / "compute" / "Pulumi.yaml").is_file(),
                    reason="needs the compute layer, where images become task definitions")
def test_a_tag_left_in_the_target_release_fails_ecs_task_image_pinned(env_dir: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Promoting only gateway keeps staging's tagged training image; ecs-task-image-pinned is mandatory
    # in staging, so the candidate staging is refused even though the promoted image is a digest.
    set_image(env_dir, "dev", "gateway", NEW)
    set_image(env_dir, "staging", "training", "latest")
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, _ = promote(["dev", "staging", "--services", "gateway"])
    assert code == 1
    err = capsys.readouterr().err
    assert "'policy' gate" in err and "ecs-task-image-pinned" in err
    assert staging.read_bytes() == before
