"""Promotion as a specification: the gates, what a promotion writes, and what it never touches.

Every test works on a scratch copy of environments/ (PLATFORM_ENV_DIR, the `env_dir` fixture). The
policy gate's engine and the deployed-digests reader are injected here; test_promote_engine.py runs
the real policy engine.
"""

from __future__ import annotations

import difflib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.envs import load_env
from shared.promote import PROMOTION_ORDER, main, render_candidate, stack_deployed_digests
from tests.test_orchestrate_automation import install_fake_cli

NEW = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
GATEWAY_STAGING = "sha256:1f3c9a5e7b2d4f6081a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7"
CLOCK = datetime(2025, 6, 1, 12, 30, 5, tzinfo=UTC)


def clean_policy(target: str, folder: Path) -> list[str]:
    return []


def no_cli(source: str) -> None:
    return None


def set_image(env_dir: Path, env: str, service: str, ref: str, comment: str = "") -> None:
    """Edit one image line of an env file as a person would (the rest of the file untouched)."""
    path = env_dir / f"{env}.yaml"
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(f"    {service}: "))
    lines[index] = f"    {service}: {ref}{'  # ' + comment if comment else ''}\n"
    path.write_text("".join(lines))


def promote(argv: list[str], **injected: object) -> tuple[int, str]:
    out = io.StringIO()
    options = {"policy_check": clean_policy, "deployed_digests": no_cli, "now": lambda: CLOCK, **injected}
    return main(argv, out=out, **options), out.getvalue()


# -- a clean promotion ------------------------------------------------------------------------------


def test_a_clean_release_updates_only_the_release_of_the_target_and_records_its_origin(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_text()
    code, output = promote(["dev", "staging"])
    assert code == 0, output
    after = staging.read_text()
    changes = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changes == [
        f"-     gateway: {GATEWAY_STAGING}",
        f"+     gateway: {NEW}",
        "+   promoted_from: dev",
        '+   promoted_at: "2025-06-01T12:30:05Z"',
    ]
    env = load_env("staging")
    assert env.release.images["gateway"] == NEW
    assert env.release.promoted_from == "dev" and env.release.promoted_at == "2025-06-01T12:30:05Z"
    # the diff is printed, in unified form
    assert f"-    gateway: {GATEWAY_STAGING}" in output and f"+    gateway: {NEW}" in output
    assert "--- " in output and "+++ " in output


def test_comments_key_order_and_flow_style_survive_a_promotion(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    set_image(env_dir, "dev", "training", OTHER)
    set_image(env_dir, "staging", "gateway", GATEWAY_STAGING, comment="approved by on-call, ticket ML-42")
    staging = env_dir / "staging.yaml"
    staging.write_text(staging.read_text().replace("release:\n", "release:\n  # images move here only by promotion\n"))
    before = staging.read_text()
    assert promote(["dev", "staging"])[0] == 0
    after = staging.read_text()
    assert f"    gateway: {NEW}  # approved by on-call, ticket ML-42\n" in after
    assert "  # images move here only by promotion\n" in after
    assert after.startswith("# staging: production's shape at a smaller size; the last gate before prod.\n")
    assert "  gateway: {desired_count: 2, min_count: 2, max_count: 4}\n" in after
    assert "  endpoints: [s3, ecr.api, ecr.dkr, logs, secretsmanager]\n" in after
    assert 'account_id: "222222222222"\n' in after
    # everything before the release section is byte-identical
    head = before.split("release:\n")[0]
    assert after.startswith(head)


def test_promoting_some_services_leaves_the_others_alone(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    set_image(env_dir, "dev", "training", OTHER)
    code, output = promote(["dev", "staging", "--services", "training"])
    assert code == 0, output
    images = load_env("staging").release.images
    assert images["training"] == OTHER and images["gateway"] == GATEWAY_STAGING


def test_a_target_already_on_the_release_is_left_untouched(env_dir: Path) -> None:
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, output = promote(["dev", "staging"])
    assert code == 0
    assert "nothing to promote" in output
    assert staging.read_bytes() == before


# -- the gates ---------------------------------------------------------------------------------------


def test_an_image_pinned_by_tag_is_refused_by_the_digest_gate(env_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "inference", "latest")
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, _ = promote(["dev", "staging"])
    assert code == 1
    err = capsys.readouterr().err
    assert "'digest' gate" in err and "inference='latest'" in err
    assert staging.read_bytes() == before


def test_a_policy_finding_in_the_target_refuses_and_writes_nothing(env_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()

    def failing(target: str, folder: Path) -> list[str]:
        return ["ecs-task-image-pinned on gateway (compute): image is not pinned by digest"]

    assert promote(["dev", "staging"], policy_check=failing)[0] == 1
    err = capsys.readouterr().err
    assert "'policy' gate" in err and "ecs-task-image-pinned on gateway" in err
    assert staging.read_bytes() == before


def test_the_policy_gate_evaluates_the_candidate_not_the_current_file(env_dir: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # staging still runs a tagged training image; promoting only gateway keeps it, and the target's
    # own enforcement (ecs-task-image-pinned is mandatory in staging) must see that.
    set_image(env_dir, "dev", "gateway", NEW)
    set_image(env_dir, "staging", "training", "latest")
    seen: dict[str, object] = {}

    def pinned_images_rule(target: str, folder: Path) -> list[str]:
        candidate = load_env(target)  # PLATFORM_ENV_DIR points at the scratch folder with the candidate
        seen["folder"], seen["images"] = folder, dict(candidate.release.images)
        return [f"ecs-task-image-pinned on {service}" for service, ref in candidate.release.images.items()
                if not ref.startswith("sha256:")]

    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    assert promote(["dev", "staging", "--services", "gateway"], policy_check=pinned_images_rule)[0] == 1
    assert "ecs-task-image-pinned on training" in capsys.readouterr().err
    assert seen["images"]["gateway"] == NEW  # type: ignore[index]
    assert seen["folder"] != env_dir
    assert staging.read_bytes() == before


def test_promotion_follows_the_declared_order(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert PROMOTION_ORDER == ("dev", "staging", "prod")
    set_image(env_dir, "staging", "gateway", NEW)
    dev = env_dir / "dev.yaml"
    before = dev.read_bytes()
    assert promote(["staging", "dev"])[0] == 1
    assert "'order' gate" in capsys.readouterr().err
    assert dev.read_bytes() == before


def test_a_backwards_request_is_refused_even_when_the_images_match(env_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(["prod", "dev"])[0] == 1
    assert "'order' gate" in capsys.readouterr().err
    assert promote(["prod", "dev", "--check"])[0] == 1


def test_skipping_an_env_needs_allow_skip_and_is_recorded(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    prod = env_dir / "prod.yaml"
    before = prod.read_bytes()
    assert promote(["dev", "prod"])[0] == 1
    err = capsys.readouterr().err
    assert "'order' gate" in err and "skips staging" in err and "--allow-skip" in err
    assert prod.read_bytes() == before

    code, output = promote(["dev", "prod", "--allow-skip"])
    assert code == 0, output
    assert load_env("prod").release.skipped == ("staging",)
    assert "  skipped: [staging]\n" in prod.read_text()

    # the next regular promotion describes itself: no skip any more
    set_image(env_dir, "staging", "preprocess", OTHER)
    assert promote(["staging", "prod"])[0] == 0
    assert load_env("prod").release.skipped == ()
    assert load_env("prod").release.promoted_from == "staging"


def test_the_deployed_gate_refuses_digests_the_source_does_not_run(env_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    running = {service: ref for service, ref in load_env("dev").release.images.items()}
    stale = {**running, "gateway": OTHER}
    assert promote(["dev", "staging"], deployed_digests=lambda source: stale)[0] == 1
    err = capsys.readouterr().err
    assert "'deployed' gate" in err and f"gateway runs {OTHER}" in err
    assert promote(["dev", "staging"], deployed_digests=lambda source: {})[0] == 1
    assert "no deployed compute stack" in capsys.readouterr().err
    assert staging.read_bytes() == before

    code, output = promote(["dev", "staging"], deployed_digests=lambda source: running)
    assert code == 0 and "gate deployed: ok" in output


def test_without_a_cli_the_deployed_gate_is_skipped_with_a_note(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    code, output = promote(["dev", "staging"])
    assert code == 0
    assert "gate deployed: skipped (no `pulumi` CLI on PATH" in output


def test_deployed_digests_are_read_from_the_compute_stack_outputs(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cli = install_fake_cli(tmp_path, monkeypatch)
    assert stack_deployed_digests("dev") == {}  # no compute stack for dev yet
    cli.create_stacks("dev", ("compute",))
    outputs = {"cluster_name": "ml-dev", "services": {
        "gateway": {"image": f"repo/gateway@{NEW}", "image_digest": NEW},
        "training": {"image": "repo/training:latest", "image_digest": None}}}
    (cli.state / "compute.dev.outputs.json").write_text(json.dumps(outputs))
    assert stack_deployed_digests("dev") == {"gateway": NEW, "training": None}


def test_without_a_cli_deployed_digests_are_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert stack_deployed_digests("dev") is None


# -- --check -----------------------------------------------------------------------------------------


def test_check_exits_1_when_a_promotion_is_pending_and_writes_nothing(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, output = promote(["dev", "staging", "--check"])
    assert code == 1
    assert f"gateway: staging {GATEWAY_STAGING} -> {NEW}" in output
    assert staging.read_bytes() == before


def test_check_exits_0_when_the_target_has_the_release(env_dir: Path) -> None:
    assert promote(["dev", "staging", "--check"])[0] == 0
    set_image(env_dir, "dev", "gateway", NEW)
    assert promote(["dev", "staging", "--services", "training", "--check"])[0] == 0


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["dev", "qa"], "unknown environment 'qa'"),
    (["dev", "staging", "--services", "gateway,billing"], "unknown service(s) billing"),
    (["dev", "dev"], "FROM and TO are both 'dev'"),
    (["dev"], "TO"),
])
def test_bad_input_exits_2_and_writes_nothing(argv: list[str], message: str, env_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = {path.name: path.read_bytes() for path in env_dir.iterdir()}
    assert promote(argv)[0] == 2
    assert message in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in env_dir.iterdir()} == snapshot


def test_a_service_missing_from_the_source_release_is_named(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = env_dir / "dev.yaml"
    dev.write_text("".join(line for line in dev.read_text().splitlines(keepends=True)
                           if not line.startswith("    training: ")))
    assert promote(["dev", "staging", "--services", "training"])[0] == 2
    err = capsys.readouterr().err
    assert "dev.yaml" in err and "release.images.training" in err


# -- the file rewrite on its own ---------------------------------------------------------------------


def test_render_adds_a_release_section_to_a_file_without_one() -> None:
    text = "# prod\nregion: eu-west-1  # Ireland\n"
    rendered = render_candidate(text, {"gateway": NEW}, "staging", "2025-06-01T00:00:00Z", ())
    assert rendered.startswith("# prod\nregion: eu-west-1  # Ireland\n")
    assert f"release:\n  images:\n    gateway: {NEW}\n  promoted_from: staging\n" in rendered
