"""Promotion as a specification: the gates, what a promotion writes, and what it never touches.

Every test works on a scratch copy of environments/ (PLATFORM_ENV_DIR, the `env_dir` fixture). The
policy gate's engine and the AWS readers (what ECS runs in FROM, what TO's registry holds) are
injected in most tests; the tests at the end run the real readers with boto3 on moto, and
test_promote_engine.py runs the real policy engine.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared import promote as promote_module
from shared.envs import EnvConfig, load_env
from shared.images import MissingImage, RunningImage
from shared.promote import PROMOTION_ORDER, main, render_candidate
from tests.aws_helpers import MANIFEST, MotoAccounts, push_image, run_service

NEW = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
GATEWAY_STAGING = "sha256:1f3c9a5e7b2d4f6081a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7"
CLOCK = datetime(2025, 6, 1, 12, 30, 5, tzinfo=UTC)


def clean_policy(target: str, folder: Path) -> list[str]:
    return []


def runs_the_release(source: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
    """ECS in FROM runs exactly FROM's release (every rollout completed)."""
    return [RunningImage(service, service, source.release.images[service]) for service in services]


def all_in_registry(target: EnvConfig, images: Mapping[str, str]) -> list[MissingImage]:
    return []


def set_image(env_dir: Path, env: str, service: str, ref: str, comment: str = "") -> None:
    """Edit one image line of an env file as a person would (the rest of the file untouched)."""
    path = env_dir / f"{env}.yaml"
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(f"    {service}: "))
    lines[index] = f"    {service}: {ref}{'  # ' + comment if comment else ''}\n"
    path.write_text("".join(lines))


def deployed_with(service: str, *, resting: bool = False,
                  awaiting_spot: bool = False) -> Callable[[EnvConfig, Sequence[str]], list[RunningImage]]:
    """A ``deployed_images`` for promote: every service of FROM runs its release's digest; ``service``'s entry rests
    at 0 tasks or waits for Fargate Spot capacity, as told."""

    def deployed(source: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        return [RunningImage(name, name, source.release.images[name], resting=resting and name == service,
                             awaiting_spot=awaiting_spot and name == service) for name in services]

    return deployed


def promote(argv: list[str], **injected: object) -> tuple[int, str]:
    out = io.StringIO()
    options = {"policy_check": clean_policy, "deployed_images": runs_the_release,
               "registry_images": all_in_registry, "now": lambda: CLOCK, **injected}
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


def test_the_file_outside_the_release_keeps_its_own_layout(env_dir: Path) -> None:
    """A block sequence written without indentation under its key, and one indented more, elsewhere in TO's file:
    the promotion changes the release's lines and nothing else (a round trip of the whole file would re-indent both
    to one style, and the promotion's commit would show edits nobody made)."""
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    staging.write_text(staging.read_text()
                       .replace("  endpoints: [s3, ecr.api, ecr.dkr, logs, secretsmanager]\n",
                                "  endpoints:\n  - s3\n  - ecr.api\n  - ecr.dkr\n  - logs\n  - secretsmanager\n")
                       .replace("  suppressions: []\n", "  suppressions:   []\n")
                       .replace("tags:\n", "tags:\n    # indented deeper than the rest\n"))
    before = staging.read_text()
    code, output = promote(["dev", "staging"])
    assert code == 0, output
    changes = [line for line in difflib.ndiff(before.splitlines(), staging.read_text().splitlines())
               if line[:1] in "+-"]
    assert changes == [
        f"-     gateway: {GATEWAY_STAGING}",
        f"+     gateway: {NEW}",
        "+   promoted_from: dev",
        '+   promoted_at: "2025-06-01T12:30:05Z"',
    ]


def test_a_crlf_file_keeps_its_line_endings(env_dir: Path) -> None:
    """TO's file written with CRLF line endings (a Windows editor, no .gitattributes): the promotion changes the
    release's lines and keeps CRLF on every line, so the commit shows the release's edit only, not every line of the
    file turned to LF; the loader reads the result."""
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    staging.write_bytes(staging.read_bytes().replace(b"\n", b"\r\n"))
    before = staging.read_bytes()
    code, output = promote(["dev", "staging"])
    assert code == 0, output
    after = staging.read_bytes()
    assert after.count(b"\n") == after.count(b"\r\n"), "an LF line in a CRLF file"
    changes = [line for line in difflib.ndiff(before.decode().split("\r\n"), after.decode().split("\r\n"))
               if line[:1] in "+-"]
    assert changes == [f"-     gateway: {GATEWAY_STAGING}", f"+     gateway: {NEW}", "+   promoted_from: dev",
                       '+   promoted_at: "2025-06-01T12:30:05Z"']
    assert load_env("staging").release.images["gateway"] == NEW


def test_comments_introducing_the_key_after_the_release_stay_before_that_key(env_dir: Path) -> None:
    """A release: entry above other keys, the next key introduced by a blank line and a column-0 comment: the
    promotion's new lines (promoted_from, promoted_at) go inside the release, above that comment, and the comment stays
    with the key it introduces (ruamel adds a new entry after the comments that follow the last one)."""
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    head, _, release = staging.read_text().partition("release:\n")
    staging.write_text(f"release:\n{release}\n{head}")  # head starts with the file's comment on the env
    before = staging.read_text()
    code, output = promote(["dev", "staging"])
    assert code == 0, output
    after = staging.read_text()
    changes = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changes == [f"-     gateway: {GATEWAY_STAGING}", f"+     gateway: {NEW}", "+   promoted_from: dev",
                       '+   promoted_at: "2025-06-01T12:30:05Z"'], changes
    assert '  promoted_at: "2025-06-01T12:30:05Z"\n\n# staging: ' in after
    assert load_env("staging").release.promoted_from == "dev"


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


def add_qa_between_dev_and_staging(env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fourth env, qa (staging's shape, staging baseline), in the order between dev and staging."""
    text = (env_dir / "staging.yaml").read_text().replace("10.20.0.0/16", "10.40.0.0/16").replace(
        '"222222222222"', '"444444444444"')  # an env has its own account (and so its own registry)
    (env_dir / "qa.yaml").write_text(text.replace("policy:\n", "policy:\n  baseline: staging\n", 1))
    monkeypatch.setattr(promote_module, "PROMOTION_ORDER", ("dev", "qa", "staging", "prod"))


def test_skipping_an_env_needs_allow_skip_and_is_recorded(env_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    add_qa_between_dev_and_staging(env_dir, monkeypatch)
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    assert promote(["dev", "staging"])[0] == 1
    err = capsys.readouterr().err
    assert "'order' gate" in err and "skips qa" in err and "--allow-skip" in err
    assert staging.read_bytes() == before

    code, output = promote(["dev", "staging", "--allow-skip"])
    assert code == 0, output
    assert load_env("staging").release.skipped == ("qa",)
    assert "  skipped: [qa]\n" in staging.read_text()

    # the next regular promotion describes itself: no skip any more
    set_image(env_dir, "qa", "preprocess", OTHER)
    assert promote(["qa", "staging"])[0] == 0
    assert load_env("staging").release.skipped == ()
    assert load_env("staging").release.promoted_from == "qa"


@pytest.mark.parametrize("extra", [[], ["--check"], ["--services", "gateway"]])
def test_allow_skip_is_refused_for_a_prod_target_with_exit_2(extra: list[str], env_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    prod = env_dir / "prod.yaml"
    before = prod.read_bytes()
    assert promote(["dev", "prod", "--allow-skip", *extra])[0] == 2
    err = capsys.readouterr().err
    assert "--allow-skip" in err and "prod baseline" in err
    assert prod.read_bytes() == before
    # the same holds for an env that follows the prod baseline under another name
    (env_dir / "prod-eu.yaml").write_text(prod.read_text().replace("10.30.0.0/16", "10.50.0.0/16").replace(
        "policy:\n", "policy:\n  baseline: prod\n", 1).replace('"333333333333"', '"555555555555"').replace(
        "day_of_week: SUNDAY", "day_of_week: SATURDAY"))  # a window of its own (the loader refuses prod's twice)
    assert promote(["dev", "prod-eu", "--allow-skip"])[0] == 2


def test_a_skip_to_prod_is_refused_naming_the_next_step_not_allow_skip(env_dir: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--allow-skip is refused for a prod target (above), so the order gate must not offer it there."""
    set_image(env_dir, "dev", "gateway", NEW)
    assert promote(["dev", "prod", "--check"])[0] == 1
    err = capsys.readouterr().err
    assert "dev -> prod skips staging" in err and "promote dev -> staging first" in err
    assert "--allow-skip" not in err


def test_the_gates_are_told_in_the_order_they_are_checked(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    _, output = promote(["dev", "staging", "--check"])
    assert output.index("gate order: ok") < output.index("gate digest: ok"), output


def test_the_deployed_gate_refuses_digests_the_source_does_not_run(env_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()

    def rolled_back(source: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        return [RunningImage(s, s, OTHER if s == "gateway" else source.release.images[s]) for s in services]

    assert promote(["dev", "staging"], deployed_images=rolled_back)[0] == 1
    err = capsys.readouterr().err
    assert "'deployed' gate" in err and f"gateway runs {OTHER}, not the release's {NEW}" in err

    def still_rolling(source: EnvConfig, services: Sequence[str]) -> list[RunningImage]:
        return [RunningImage(s, s, source.release.images[s], "its deployment is IN_PROGRESS") for s in services]

    assert promote(["dev", "staging"], deployed_images=still_rolling)[0] == 1
    assert "gateway: its deployment is IN_PROGRESS" in capsys.readouterr().err
    assert promote(["dev", "staging"], deployed_images=lambda source, services: [])[0] == 1
    assert "gateway: ECS reported nothing" in capsys.readouterr().err
    assert staging.read_bytes() == before

    code, output = promote(["dev", "staging"])
    assert code == 0 and "gate deployed: ok" in output


def test_the_deployed_gate_refuses_a_promoted_digest_its_source_service_runs_in_no_task(
        env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """FROM's training rests at 0 tasks (min_count 0, no backlog): compute's up released NEW, ECS's deployment of it
    completed at a desired count of 0 without starting a task, so no task of FROM ever ran NEW. Promoting it would
    first start it in TO. A resting service whose digest TO already runs does not stop another's promotion."""
    set_image(env_dir, "dev", "training", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()

    training_rests = deployed_with("training", resting=True)
    assert promote(["dev", "staging"], deployed_images=training_rests)[0] == 1
    err = capsys.readouterr().err
    assert "'deployed' gate" in err
    assert (f"dev's training rests at 0 tasks (desired count 0): no task runs {NEW} there, so nothing shows it starts. "
            "Wake it: publish to its queue, or raise its desired count (`aws ecs update-service --cluster "
            "dev-ml-platform --service training --desired-count 1`); wait until its task runs the digest, then "
            "promote again") in err
    assert promote(["dev", "staging", "--check"], deployed_images=training_rests)[0] == 1
    assert staging.read_bytes() == before

    # once its task runs NEW, the gate passes
    code, output = promote(["dev", "staging"])
    assert code == 0 and "gate deployed: ok" in output

    # training rests at the digest staging now runs: gateway's promotion is not its concern
    set_image(env_dir, "dev", "gateway", OTHER)
    code, output = promote(["dev", "staging"], deployed_images=training_rests)
    assert code == 0 and "gate deployed: ok" in output, output
    assert load_env("staging").release.images["gateway"] == OTHER


def test_the_images_gate_refuses_a_digest_the_target_registry_lacks(env_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    seen: list[tuple[str, dict[str, str]]] = []

    def lacks_gateway(target: EnvConfig, images: Mapping[str, str]) -> list[MissingImage]:
        seen.append((target.name, dict(images)))
        return [MissingImage("gateway", NEW, "repo-uri", "no such image", "copy it")]

    assert promote(["dev", "staging"], registry_images=lacks_gateway)[0] == 1
    err = capsys.readouterr().err
    assert "'images' gate" in err and f"gateway: {NEW} is not in repo-uri (no such image); copy it" in err
    assert seen == [("staging", load_env("dev").release.images | {"gateway": NEW})]  # TO, every promoted image
    assert staging.read_bytes() == before


# -- --check -----------------------------------------------------------------------------------------


def test_check_runs_every_gate_prints_the_diff_and_writes_nothing(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, output = promote(["dev", "staging", "--check"])
    assert code == 0
    for gate in ("digest", "order", "deployed", "images", "policy"):
        assert f"gate {gate}: ok" in output, gate
    assert f"+    gateway: {NEW}" in output and "nothing written" in output
    assert staging.read_bytes() == before


def test_check_is_refused_by_a_gate_like_a_promotion(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"
    before = staging.read_bytes()
    code, _ = promote(["dev", "staging", "--check"], policy_check=lambda target, folder: ["a blocking finding"])
    assert code == 1 and staging.read_bytes() == before


# -- concurrent promotions and edits ----------------------------------------------------------------


def test_an_edit_to_the_target_while_the_gates_run_stops_the_promotion(env_dir: Path) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    staging = env_dir / "staging.yaml"

    def someone_edits_meanwhile(target: str, folder: Path) -> list[str]:
        staging.write_text(staging.read_text() + "# a reviewer's note\n")
        return []

    code, output = promote(["dev", "staging"], policy_check=someone_edits_meanwhile)
    assert code == 1
    assert staging.read_text().endswith("# a reviewer's note\n") and NEW not in staging.read_text()
    assert "promoted gateway" not in output


def test_a_second_promotion_waits_for_the_first_and_gives_up_with_exit_1(env_dir: Path) -> None:
    import threading

    from shared.promote import target_lock

    set_image(env_dir, "dev", "gateway", NEW)
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with target_lock(env_dir, "staging"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert held.wait(10)
        code, _ = promote(["dev", "staging"], lock_wait_s=0.3)
        assert code == 1
        assert NEW not in (env_dir / "staging.yaml").read_text()
    finally:
        release.set()
        thread.join()
    assert promote(["dev", "staging"])[0] == 0, "once the first is done, the next one runs"


def test_two_concurrent_promotions_of_different_services_both_land(env_dir: Path) -> None:
    """Serialized by the lock, each reads the file the other wrote: no change is lost."""
    import subprocess
    import sys

    set_image(env_dir, "dev", "gateway", NEW)
    set_image(env_dir, "dev", "training", OTHER)
    script = (
        "import sys\n"
        "from shared.promote import main\n"
        "from tests.test_promote import all_in_registry, clean_policy, runs_the_release\n"
        "sys.exit(main([sys.argv[1], sys.argv[2], '--services', sys.argv[3]], policy_check=clean_policy,\n"
        "              deployed_images=runs_the_release, registry_images=all_in_registry))\n")
    import os

    from shared import REPO_ROOT

    environment = {**os.environ, "PLATFORM_ENV_DIR": str(env_dir), "PYTHONPATH": str(REPO_ROOT)}
    runs = [subprocess.Popen([sys.executable, "-c", script, "dev", "staging", service], cwd=REPO_ROOT,
                             env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for service in ("gateway", "training")]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    text = (env_dir / "staging.yaml").read_text()
    assert f"gateway: {NEW}" in text and f"training: {OTHER}" in text


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


def test_an_env_outside_the_promotion_order_is_bad_input_exit_2(env_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """An env file that exists but is not in PROMOTION_ORDER: no promotion can ever run, so it is bad input (exit 2,
    like an unknown env), not a gate's refusal (exit 1), whichever side it is on and with --check too."""
    add_qa_between_dev_and_staging(env_dir, monkeypatch)
    monkeypatch.setattr(promote_module, "PROMOTION_ORDER", ("dev", "staging", "prod"))  # qa exists, outside the order
    set_image(env_dir, "dev", "gateway", NEW)
    snapshot = {path.name: path.read_bytes() for path in env_dir.iterdir()}
    for argv in (["dev", "qa"], ["qa", "staging"], ["dev", "qa", "--check"]):
        assert promote(argv)[0] == 2, argv
        assert "qa is not in the promotion order dev -> staging -> prod" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in env_dir.iterdir()} == snapshot


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=test", "-c", "user.email=test@example.com",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)


@pytest.mark.parametrize("dirt", ["unstaged", "staged", "untracked", "ignored"])
def test_a_dirty_env_file_is_refused_with_exit_2_and_nothing_written(dirt: str, env_dir: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The env folder in a git work tree: FROM's or TO's file differing from HEAD stops the promotion before any
    gate (exit 2), naming the file; a clean tree promotes."""
    git(env_dir, "init", "-q")
    set_image(env_dir, "dev", "gateway", NEW)
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "envs")
    staging = env_dir / "staging.yaml"
    if dirt in ("untracked", "ignored"):  # a TO file never committed (and, ignored, one git status does not list)
        git(env_dir, "rm", "-q", "--cached", "staging.yaml")
        if dirt == "ignored":
            (env_dir / ".gitignore").write_text("staging.yaml\n")
            git(env_dir, "add", ".gitignore")
        git(env_dir, "commit", "-q", "-m", "staging not tracked")
    else:
        staging.write_text(staging.read_text().replace("release:\n", "release:\n  # a reviewer's note\n"))
        if dirt == "staged":
            git(env_dir, "add", "staging.yaml")
    before = staging.read_bytes()
    for argv in (["dev", "staging"], ["dev", "staging", "--check"]):
        assert promote(argv)[0] == 2, argv
        err = capsys.readouterr().err
        assert "uncommitted changes in the env files of this promotion: staging.yaml" in err, err
        assert {"untracked": "(untracked)", "ignored": "(ignored by git"}.get(dirt, "(uncommitted") in err
    assert staging.read_bytes() == before

    # FROM's uncommitted release is refused the same way
    git(env_dir, "add", "--force", "staging.yaml")
    git(env_dir, "commit", "-q", "-m", "staging")
    set_image(env_dir, "dev", "training", OTHER)
    assert promote(["dev", "staging"])[0] == 2
    assert "dev.yaml (uncommitted: M)" in capsys.readouterr().err
    assert staging.read_bytes() == before

    git(env_dir, "commit", "-q", "-am", "dev's release")
    code, output = promote(["dev", "staging"])
    assert code == 0, output
    assert load_env("staging").release.images["training"] == OTHER


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


def test_render_keeps_the_full_rewrite_when_the_release_key_is_spelled_otherwise() -> None:
    """A quoted `"release":` key is not found line by line: the round trip's whole file is kept (same data), rather
    than a second release entry appended."""
    text = f'# prod\n"release":\n  images:\n    gateway: {GATEWAY_STAGING}\nregion: eu-west-1\n'
    rendered = render_candidate(text, {"gateway": NEW}, "staging", "2025-06-01T00:00:00Z", ())
    assert rendered.count("release") == 1 and f"gateway: {NEW}" in rendered
    assert rendered.endswith("region: eu-west-1\n")


# -- the AWS gates with the real readers: boto3 on moto, each env in its own account --------------------


def real_aws(**injected: object) -> dict[str, object]:
    return {"clients": MotoAccounts(), "deployed_images": None, "registry_images": None, **injected}


def deploy_dev_release(monkeypatch: pytest.MonkeyPatch, *, except_running: Mapping[str, str] | None = None) -> None:
    """dev's images pushed to dev's registry and running (rollout completed) in dev's ECS cluster."""
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
        run_service(dev, service, (except_running or {}).get(service, digest), monkeypatch=monkeypatch)


def test_promote_refuses_a_digest_absent_from_the_target_registry_then_passes_once_it_is_there(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    deploy_dev_release(monkeypatch)
    staging = load_env("staging")
    for service, digest in load_env("dev").release.images.items():
        if service != "gateway":
            push_image(staging, service, digest)  # replicated earlier
    path = env_dir / "staging.yaml"
    before = path.read_bytes()

    code, output = promote(["dev", "staging"], **real_aws())
    assert code == 1
    assert "gate deployed: ok" in output
    err = capsys.readouterr().err
    assert "'images' gate" in err
    assert f"gateway: {NEW} is not in 222222222222.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway" in err
    assert f"crane copy 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway@{NEW}" in err
    # a push to dev again needs a tag the image does not carry yet: dev's tags are immutable
    assert f"crane tag 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway@{NEW} repush-<date>" in err
    assert "tags are IMMUTABLE" in err
    assert path.read_bytes() == before

    push_image(staging, "gateway", NEW)  # what replication does when dev pushes it
    code, output = promote(["dev", "staging"], **real_aws())
    assert code == 0, output
    assert "gate images: ok" in output and load_env("staging").release.images["gateway"] == NEW


def test_an_index_the_target_holds_without_its_linux_amd64_manifest_is_refused_by_the_images_gate(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A replica's per-platform manifests are untagged, and the untagged-image lifecycle rule may expire the one a task
    pulls while the index stays: DescribeImages finds the index, prod's up would roll ECS to an image no task can
    pull. The images gate asks for the manifest itself (BatchGetImage) and refuses before the pull request."""
    set_image(env_dir, "dev", "gateway", NEW)
    deploy_dev_release(monkeypatch)
    staging = load_env("staging")
    amd64 = "sha256:" + "a6" * 32
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": amd64,
         "platform": {"os": "linux", "architecture": "amd64"}}]})
    for service, digest in load_env("dev").release.images.items():
        push_image(staging, service, digest, manifest=index if service == "gateway" else MANIFEST)
    path = env_dir / "staging.yaml"
    before = path.read_bytes()
    assert promote(["dev", "staging"], **real_aws())[0] == 1
    err = capsys.readouterr().err
    assert "'images' gate" in err and f"gateway: {NEW} is not in" in err
    assert f"only its index is: its linux/amd64 manifest {amd64} is not in the registry" in err
    assert path.read_bytes() == before

    push_image(staging, "gateway", amd64, tag="amd64")  # the whole index copied again
    code, output = promote(["dev", "staging"], **real_aws())
    assert code == 0, output


def test_the_deployed_gate_reads_the_digest_ecs_runs_not_the_release(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    deploy_dev_release(monkeypatch, except_running={"gateway": OTHER})  # e.g. a rollback to the old image
    path = env_dir / "staging.yaml"
    before = path.read_bytes()
    assert promote(["dev", "staging"], **real_aws())[0] == 1
    err = capsys.readouterr().err
    assert "'deployed' gate" in err and f"gateway runs {OTHER}, not the release's {NEW}" in err
    assert path.read_bytes() == before


def test_the_deployed_gate_reads_a_service_ecs_runs_at_0_tasks(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """ECS as it reports a service at min_count 0 after an up released a new digest: the PRIMARY deployment of it,
    COMPLETED, desired and running count 0."""
    set_image(env_dir, "dev", "training", NEW)
    dev = load_env("dev")
    for service, digest in dev.release.images.items():
        push_image(dev, service, digest)
        run_service(dev, service, digest, monkeypatch=monkeypatch, desired=0 if service == "training" else 1)
    path = env_dir / "staging.yaml"
    before = path.read_bytes()
    assert promote(["dev", "staging"], **real_aws())[0] == 1
    err = capsys.readouterr().err
    assert f"'deployed' gate: dev's training rests at 0 tasks (desired count 0): no task runs {NEW} there" in err
    assert path.read_bytes() == before


def test_credentials_of_the_wrong_account_exit_2_before_anything_is_written(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    set_image(env_dir, "dev", "gateway", NEW)
    deploy_dev_release(monkeypatch)
    path = env_dir / "staging.yaml"
    before = path.read_bytes()
    # dev's credentials are fine for dev's deployed gate, not for staging's registry
    code, output = promote(["dev", "staging"], **real_aws(clients=MotoAccounts(caller=load_env("dev").account_id)))
    assert code == 2
    assert "gate deployed: ok" in output
    assert "staging: the AWS credentials belong to account 111111111111" in capsys.readouterr().err
    assert path.read_bytes() == before


# -- rollback: TO@REV TO, the release TO's own file pinned at an earlier commit ------------------------------


def promoted_history(env_dir: Path) -> str:
    """env_dir as a git work tree: the shipped envs committed (the commit returned), then a promotion of NEW into prod's
    gateway committed on top, as the promotion pull request's merge leaves it."""
    git(env_dir, "init", "-q")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "envs")
    first = subprocess.run(["git", "-C", str(env_dir), "rev-parse", "HEAD"], check=True, capture_output=True,
                           text=True).stdout.strip()
    set_image(env_dir, "prod", "gateway", NEW, comment="promoted with care")
    git(env_dir, "commit", "-q", "-am", "Promote staging -> prod")
    return first


def test_rollback_returns_the_target_to_its_release_at_an_earlier_commit(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prod@HEAD~1 prod`: the images prod's file pinned one commit ago, back into prod's file (comments kept), through
    the digest, images and policy gates; ECS is not asked (it runs the release being replaced: moto here has no
    cluster at all, which the deployed gate would refuse); the record names the commit."""
    first = promoted_history(env_dir)
    original = load_env("dev").release.images  # the shipped envs pin the same release everywhere
    prod = load_env("prod")
    for service, digest in original.items():
        push_image(prod, service, digest)  # its release tags kept them (README, Image retention)
    push_image(prod, "gateway", NEW)
    code, output = promote(["prod@HEAD~1", "prod"], **real_aws())
    assert code == 0, output
    assert "gate images: ok" in output and f"rollback of prod to its release at HEAD~1 ({first[:12]}" in output
    after = load_env("prod")
    assert after.release.images == original
    assert after.release.promoted_from == f"prod@{first[:12]}"
    assert f"    gateway: {original['gateway']}  # promoted with care\n" in (env_dir / "prod.yaml").read_text()


def roll_prod_back_to_previous(original: dict[str, str]) -> tuple[int, str]:
    """`prod@previous prod`, with prod's registry holding each image of ``original`` and the current release's gateway
    (``NEW``)."""
    prod = load_env("prod")
    for service, digest in original.items():
        push_image(prod, service, digest)
    push_image(prod, "gateway", NEW)
    return promote(["prod@previous", "prod"], **real_aws())


def test_rollback_to_previous_finds_the_release_before_the_current_one_whatever_came_since(
        env_dir: Path, moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`prod@HEAD~1` is the release before only while the promotion is main's newest commit: after any other commit it
    names the current release again (nothing to promote) at 3 a.m. `prod@previous` walks prod's file's history to the
    newest commit whose release differs from HEAD's."""
    first = promoted_history(env_dir)
    original = load_env("dev").release.images  # the shipped envs pin the same release everywhere
    set_image(env_dir, "dev", "gateway", NEW)
    git(env_dir, "commit", "-q", "-am", "an unrelated change of dev")
    code, output = roll_prod_back_to_previous(original)
    assert code == 0, output + capsys.readouterr().err
    assert load_env("prod").release.images == original
    assert load_env("prod").release.promoted_from == f"prod@{first[:12]}"


def test_rollback_to_previous_follows_main_s_first_parent_line(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A release pinned on a branch merged later (a promotion pull request's intermediate commit) never ran on prod:
    `prod@previous` takes the release main had before the merge, not the branch's (a walk of every parent, newest
    first, meets the branch's commits before main's older one)."""
    when = iter(range(1_700_000_000, 1_700_000_100, 10))

    def commit(*args: str) -> None:
        stamp = f"{next(when)} +0000"
        monkeypatch.setenv("GIT_AUTHOR_DATE", stamp)
        monkeypatch.setenv("GIT_COMMITTER_DATE", stamp)
        git(env_dir, *args)

    git(env_dir, "init", "-q", "-b", "main")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    commit("commit", "-q", "-m", "envs")
    first = subprocess.run(["git", "-C", str(env_dir), "rev-parse", "HEAD"], check=True, capture_output=True,
                           text=True).stdout.strip()
    original = load_env("dev").release.images
    git(env_dir, "checkout", "-q", "-b", "side")
    set_image(env_dir, "prod", "inference", "sha256:" + "cd" * 32)
    commit("commit", "-q", "-am", "a release pinned on the branch only")
    set_image(env_dir, "prod", "inference", original["inference"])
    set_image(env_dir, "prod", "gateway", NEW)
    commit("commit", "-q", "-am", "the release the branch ends with")
    git(env_dir, "checkout", "-q", "main")
    commit("merge", "-q", "--no-ff", "-m", "merge side", "side")
    code, output = roll_prod_back_to_previous(original)
    assert code == 0, output
    assert load_env("prod").release.promoted_from == f"prod@{first[:12]}"
    assert load_env("prod").release.images == original


def test_rollback_to_previous_passes_over_a_commit_without_a_release(
        env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A commit whose prod.yaml had no release.images (the env added before its first release) is no release to go
    back to: with none other, it says so."""
    import yaml as pyyaml

    shipped = (env_dir / "prod.yaml").read_text()
    bare = pyyaml.safe_load(shipped)
    del bare["release"]
    (env_dir / "prod.yaml").write_text(pyyaml.safe_dump(bare))
    git(env_dir, "init", "-q")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "prod before its first release")
    (env_dir / "prod.yaml").write_text(shipped)
    git(env_dir, "commit", "-q", "-am", "prod's first release")
    assert promote(["prod@previous", "prod"])[0] == 2
    assert "prod has had no other release on this branch than its current one" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["calls", "publishes", "artifacts", "protects_jobs"])
def test_each_key_an_image_depends_on_is_compared_since_a_release_and_list_order_is_not(
        env_dir: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    import shutil

    import yaml as pyyaml

    from shared import REPO_ROOT
    from shared.promote import IMAGE_FACING_KEYS, catalog_changes_since

    assert key in IMAGE_FACING_KEYS
    catalog = env_dir / "catalog.yaml"
    shutil.copy(REPO_ROOT / "shared" / "catalog.yaml", catalog)
    monkeypatch.setenv("PLATFORM_CATALOG", str(catalog))
    git(env_dir, "init", "-q")
    git(env_dir, "add", "catalog.yaml")
    git(env_dir, "commit", "-q", "-m", "catalog")
    head = subprocess.run(["git", "-C", str(env_dir), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    data = pyyaml.safe_load(catalog.read_text())
    gateway = data["services"]["gateway"]
    # the order of a list is no change (calls [a, b] is [b, a])
    gateway["calls"] = list(reversed(gateway["calls"]))
    catalog.write_text(pyyaml.safe_dump(data))
    assert catalog_changes_since(head, ["gateway", "inference"]) == {}
    gateway[key] = {"changed": ["since"]}
    catalog.write_text(pyyaml.safe_dump(data))
    assert catalog_changes_since(head, ["gateway", "inference"]) == {"gateway": [key]}
    assert catalog_changes_since(head, ["inference"]) == {}  # only the services asked about


def test_rollback_to_previous_without_an_earlier_release_exits_2(env_dir: Path, capsys: pytest.CaptureFixture[str]
                                                                 ) -> None:
    git(env_dir, "init", "-q")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "envs")
    before = (env_dir / "prod.yaml").read_bytes()
    assert promote(["prod@previous", "prod"])[0] == 2
    assert "prod has had no other release on this branch than its current one" in capsys.readouterr().err
    assert (env_dir / "prod.yaml").read_bytes() == before


def test_rollback_to_an_image_the_target_registry_no_longer_holds_is_refused(
        env_dir: Path, moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    promoted_history(env_dir)
    original = load_env("dev").release.images
    prod = load_env("prod")
    for service, digest in original.items():
        if service != "gateway":
            push_image(prod, service, digest)
    path = env_dir / "prod.yaml"
    before = path.read_bytes()
    assert promote(["prod@HEAD~1", "prod"], **real_aws())[0] == 1
    err = capsys.readouterr().err
    assert "'images' gate" in err
    registry = "333333333333.dkr.ecr.eu-west-1.amazonaws.com"
    assert f"gateway: {original['gateway']} is not in {registry}/ml-platform/gateway" in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["staging@HEAD~1", "prod"], "rolled back into its own env only"),
    (["prod@no-such-rev", "prod"], "'no-such-rev' names no commit"),
    (["prod@", "prod"], "name a git revision after '@'"),
    (["prod@--output=x", "prod"], "name a git revision after '@'"),
    (["prod@HEAD~1", "prod", "--allow-skip"], "a rollback takes no step along the promotion order"),
    (["prod@side", "prod"], "is not in the history of HEAD"),
    (["prod@before-prod", "prod"], "prod.yaml at before-prod"),
    (["qa@HEAD", "qa"], "unknown environment 'qa'"),
])
def test_rollback_bad_input_exits_2_and_writes_nothing(argv: list[str], message: str, env_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    promoted_history(env_dir)
    git(env_dir, "branch", "side", "HEAD~1")
    git(env_dir, "checkout", "-q", "side")
    set_image(env_dir, "prod", "training", OTHER)
    git(env_dir, "commit", "-q", "-am", "never merged")
    git(env_dir, "checkout", "-q", "-")
    git(env_dir, "checkout", "-q", "--orphan", "early")  # a commit whose tree has no prod.yaml
    git(env_dir, "rm", "-q", "--cached", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "before prod")
    git(env_dir, "tag", "before-prod")
    git(env_dir, "checkout", "-q", "-f", "master" if "master" in _branches(env_dir) else "main")
    if argv[0] == "prod@before-prod":  # in the history of HEAD, but without the file
        git(env_dir, "merge", "-q", "--allow-unrelated-histories", "-s", "ours", "-m", "join", "before-prod")
    snapshot = {path.name: path.read_bytes() for path in env_dir.iterdir() if path.is_file()}
    assert promote(argv)[0] == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert {path.name: path.read_bytes() for path in env_dir.iterdir() if path.is_file()} == snapshot


def _branches(folder: Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "branch", "--list"], check=True, capture_output=True,
                          text=True).stdout


def test_rollback_outside_a_git_work_tree_exits_2(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(["prod@HEAD~1", "prod"])[0] == 2
    assert "is not in a git work tree" in capsys.readouterr().err


def test_a_rollback_past_a_service_the_catalog_lost_names_it_and_the_command_for_the_rest(
        env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rollback to a release naming a service the catalog has since lost cannot come back whole (TO's file would name
    an unknown service): exit 2 naming the service, the old file and the command that rolls back the others, nothing
    written; that command then rolls them back."""
    prod = env_dir / "prod.yaml"
    prod.write_text(prod.read_text().replace("release:\n  images:\n",
                                             f"release:\n  images:\n    billing: {OTHER}\n"))
    git(env_dir, "init", "-q")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "prod ran billing")
    prod.write_text(prod.read_text().replace(f"    billing: {OTHER}\n", "").replace(GATEWAY_STAGING, NEW))
    git(env_dir, "commit", "-q", "-am", "billing left the catalog; a new gateway")
    before = prod.read_bytes()
    assert promote(["prod@HEAD~1", "prod"])[0] == 2
    err = capsys.readouterr().err
    assert f"{prod} at HEAD~1" in err and "release.images.billing: the catalog no longer has billing" in err, err
    rest = ",".join(load_env("prod").release.images)  # the shipped four and any service a user added since
    assert f"`nox -s promote -- prod@HEAD~1 prod --services {rest}`" in err, err
    assert "promote-" not in err
    assert prod.read_bytes() == before
    code, output = promote(["prod@HEAD~1", "prod", "--services", rest])
    assert code == 0, output
    assert load_env("prod").release.images["gateway"] == GATEWAY_STAGING


def test_a_candidate_the_env_schema_refuses_is_named_as_the_real_file(env_dir: Path) -> None:
    """The policy gate loads the candidate TO file from a scratch copy of the env folder; a candidate the env schema
    refuses is reported against TO's real file and key, 'with the promoted release', not the scratch copy that is gone
    when the message is read."""
    prod = env_dir / "prod.yaml"
    candidate = prod.read_text().replace("release:\n  images:\n", f"release:\n  images:\n    billing: {OTHER}\n")
    with pytest.raises(promote_module.ConfigError) as refused:
        promote_module.check_policy("prod", candidate, clean_policy, io.StringIO())
    message = str(refused.value)
    assert message.startswith(f"{prod}: release.images.billing: with the promoted release: unknown service"), message
    assert "promote-" not in message


def test_an_env_folder_that_does_not_exist_is_bad_input_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLATFORM_ENV_DIR", str(tmp_path / "nowhere"))
    assert promote(["dev", "staging"])[0] == 2
    err = capsys.readouterr().err
    assert f"PLATFORM_ENV_DIR={tmp_path / 'nowhere'}: cannot open" in err and "No such file or directory" in err


def test_check_leaves_the_git_index_untouched(env_dir: Path) -> None:
    """--check writes nothing, git's index included: an env file whose timestamp changed (its content did not) is
    what `git status` refreshes in .git/index unless told not to, and that write takes index.lock from under a
    `git commit` someone runs at the same time."""
    set_image(env_dir, "dev", "gateway", NEW)
    git(env_dir, "init", "-q")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml")
    git(env_dir, "commit", "-q", "-m", "envs")
    index = env_dir / ".git" / "index"
    staging = env_dir / "staging.yaml"
    later = staging.stat().st_mtime + 60
    os.utime(staging, (later, later))  # e.g. an editor saved it unchanged
    before = index.read_bytes()
    code, output = promote(["dev", "staging", "--check"])
    assert code == 0, output
    assert "nothing written" in output
    assert index.read_bytes() == before


def test_rollback_in_a_shallow_clone_says_the_history_is_missing(env_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A clone of depth 1 (CI's default checkout) holds no HEAD~1: the error says so and how to fetch it, instead of
    claiming the revision names no commit of the repository."""
    promoted_history(env_dir)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{env_dir}", str(clone)], check=True,
                   capture_output=True)
    monkeypatch.setenv("PLATFORM_ENV_DIR", str(clone))
    before = (clone / "prod.yaml").read_bytes()
    assert promote(["prod@HEAD~1", "prod"])[0] == 2
    err = capsys.readouterr().err
    assert "'HEAD~1' names no commit" in err and "this clone is shallow" in err and "fetch-depth: 0" in err, err
    assert (clone / "prod.yaml").read_bytes() == before


def test_a_rollback_notes_each_service_whose_catalog_entry_changed_since_that_release(
        env_dir: Path, moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog change contracted after a release (expand, then contract: a call or routing key dropped once the
    image no longer used it) is not undone by rolling the image back: the image coming back may still use it. The
    rollback says which services' entries changed since, so the on-call can pick a release after the change."""
    import shutil

    from shared import REPO_ROOT

    catalog = env_dir / "catalog.yaml"
    shutil.copy(REPO_ROOT / "shared" / "catalog.yaml", catalog)
    monkeypatch.setenv("PLATFORM_CATALOG", str(catalog))
    git(env_dir, "init", "-q")
    git(env_dir, "add", "dev.yaml", "staging.yaml", "prod.yaml", "catalog.yaml")
    git(env_dir, "commit", "-q", "-m", "envs")
    set_image(env_dir, "prod", "gateway", NEW)
    git(env_dir, "commit", "-q", "-am", "Promote staging -> prod")
    text = catalog.read_text()
    assert text.count("    calls: [preprocess, inference]\n") == 1
    # inference's entry changes too, but its image is the same in both releases: no note for it
    assert text.count("    artifacts: read\n") == 1
    catalog.write_text(text.replace("    calls: [preprocess, inference]\n", "    calls: [preprocess]\n")
                       .replace("    artifacts: read\n", ""))
    git(env_dir, "commit", "-q", "-am", "gateway no longer calls inference; inference reads no artifacts")
    original = load_env("dev").release.images
    code, output = roll_prod_back_to_previous(original)
    assert code == 0, output
    assert "note: gateway: its catalog entry's calls changed since" in output, output
    assert "note: inference" not in output and "note: preprocess" not in output


def test_a_file_at_a_commit_is_read_from_its_own_folder_of_the_repository(tmp_path: Path) -> None:
    """The env files sit in `environments/` and the catalog in `shared/`, not at the repository's root: a rollback
    reads them at a commit relative to their folder (`<commit>:./<file>`), or it finds no file and every
    `prod@previous` says the env holds no release."""
    from shared.promote import _text_at

    folder = tmp_path / "environments"
    folder.mkdir()
    (folder / "prod.yaml").write_text("release: {images: {}}\n", encoding="utf-8")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "environments/prod.yaml")
    git(tmp_path, "commit", "-q", "-m", "first")
    (folder / "prod.yaml").write_text("changed: true\n", encoding="utf-8")
    assert _text_at(folder / "prod.yaml", "HEAD") == "release: {images: {}}\n"
    assert _text_at(folder / "staging.yaml", "HEAD") is None


@pytest.mark.parametrize("text", ["release: {images: [\n", "- a list\n- not a mapping\n"])
def test_an_env_file_broken_at_a_past_commit_reads_as_none_not_a_traceback(tmp_path: Path, text: str) -> None:
    """What only informs (the previous release, the catalog's changes) passes over a commit whose file is not a
    YAML mapping instead of stopping the rollback with a traceback."""
    from shared.promote import _mapping_at

    (tmp_path / "prod.yaml").write_text(text, encoding="utf-8")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "prod.yaml")
    git(tmp_path, "commit", "-q", "-m", "broken")
    assert _mapping_at(tmp_path / "prod.yaml", "HEAD") is None
