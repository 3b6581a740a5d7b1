"""The ECR lifecycle policy never expires an image an env's release pins, and still prunes the rest.

The policy JSON is checked against ECR's documented grammar and evaluated with ECR's documented
evaluation rules (ECR user guide, "Lifecycle policy properties" and "Lifecycle policy evaluation
rules"): rules apply lowest priority first; an image that matches the tag selection of a higher-priority
rule cannot be expired by a lower-priority rule; count rules keep the newest images.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from shared.components.ecr import (
    LEGACY_RELEASE_TAG_PREFIX,
    RELEASE_IMAGES_KEPT,
    SOURCE_RELEASE_IMAGES_KEPT,
    UNTAGGED_EXPIRY_DAYS,
    lifecycle_policy,
    release_tag,
    release_tag_prefix,
)
from shared.envs import load_env
from tests.layers.compute_helpers import ENVS, LIFECYCLE, platform
from tests.synth_helpers import of_type


@dataclass(frozen=True)
class Image:
    digest: str
    tags: tuple[str, ...]
    age_days: float


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def grammar_problems(policy: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    rules = policy["rules"]
    priorities = [rule["rulePriority"] for rule in rules]
    if len(set(priorities)) != len(priorities):
        problems.append("rulePriority values must be unique")
    for rule in rules:
        selection, priority = rule["selection"], rule["rulePriority"]
        if not isinstance(priority, int) or priority < 1:
            problems.append(f"rule {priority}: rulePriority is a positive integer")
        status = selection["tagStatus"]
        lists = [key for key in ("tagPrefixList", "tagPatternList") if key in selection]
        if status == "tagged" and len(lists) != 1:
            problems.append(f"rule {priority}: tagged needs exactly one of tagPrefixList / tagPatternList")
        if status in ("untagged", "any") and lists:
            problems.append(f"rule {priority}: {status} takes no tag list")
        if any(pattern.count("*") > 4 for pattern in selection.get("tagPatternList", [])):
            problems.append(f"rule {priority}: at most four wildcards per pattern")
        if status == "any" and priority != max(priorities):
            problems.append(f"rule {priority}: the tagStatus any rule must have the highest rulePriority")
        if selection["countType"] == "imageCountMoreThan" and "countUnit" in selection:
            problems.append(f"rule {priority}: imageCountMoreThan takes no countUnit")
        if selection["countType"] == "sinceImagePushed" and selection.get("countUnit") != "days":
            problems.append(f"rule {priority}: sinceImagePushed counts days")
        if not isinstance(selection["countNumber"], int) or selection["countNumber"] < 1:
            problems.append(f"rule {priority}: countNumber is a positive integer")
        if rule["action"] != {"type": "expire"}:
            problems.append(f"rule {priority}: action must be expire")
    if sum(rule["selection"]["tagStatus"] == "untagged" for rule in rules) > 1:
        problems.append("only one rule may select untagged images")
    return problems


def _selects(selection: dict[str, Any], image: Image) -> bool:
    status = selection["tagStatus"]
    if status == "any":
        return True
    if status == "untagged":
        return not image.tags
    if not image.tags:
        return False
    if "tagPrefixList" in selection:
        return all(any(tag.startswith(prefix) for tag in image.tags) for prefix in selection["tagPrefixList"])
    return all(any(fnmatch.fnmatchcase(tag, pattern) for tag in image.tags) for pattern in selection["tagPatternList"])


def expired(policy: dict[str, Any], images: list[Image]) -> set[str]:
    """The digests ECR's documented evaluation expires."""
    claimed: set[str] = set()
    gone: set[str] = set()
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        selection = rule["selection"]
        matches = [image for image in images if _selects(selection, image)]
        if selection["countType"] == "imageCountMoreThan":
            candidates = sorted(matches, key=lambda image: image.age_days)[selection["countNumber"]:]
        else:
            candidates = [image for image in matches if image.age_days > selection["countNumber"]]
        gone.update(image.digest for image in candidates if image.digest not in claimed)
        claimed.update(image.digest for image in matches)
    return gone


@pytest.mark.parametrize("keep", [1, 10, 20, 1000])
@pytest.mark.parametrize("source", [None, "dev"])
def test_the_policy_follows_ecrs_grammar(keep: int, source: str | None) -> None:
    assert grammar_problems(lifecycle_policy(keep, "prod", source)) == []


def test_the_grammar_check_catches_what_ecr_refuses() -> None:
    broken = lifecycle_policy(10, "prod")
    broken["rules"][0]["selection"].pop("tagPrefixList")
    broken["rules"][0]["rulePriority"] = 9
    problems = grammar_problems(broken)
    assert any("exactly one of tagPrefixList" in p for p in problems)
    assert any("must have the highest rulePriority" in p for p in problems)


def history(released: list[Image], *, builds: int = 50, untagged: int = 5) -> list[Image]:
    newer_builds = [Image(digest(1000 + n), (f"build-{n}",), age_days=n * 0.5) for n in range(builds)]
    leftovers = [Image(digest(2000 + n), (), age_days=10 + n) for n in range(untagged)]
    return released + newer_builds + leftovers


def test_a_released_image_older_than_the_last_n_and_copied_by_digest_is_never_expired() -> None:
    keep = 10
    # Promotion copied it by digest (no tag of its own); the release tag is its only tag.
    pinned = Image(digest(1), (release_tag(digest(1), "prod"),), age_days=200)
    # An older release, still pinned by a later env, pushed with a build tag and release-tagged.
    older = Image(digest(2), ("build-old", release_tag(digest(2), "prod")), age_days=400)
    images = history([pinned, older])
    gone = expired(lifecycle_policy(keep, "prod"), images)
    assert pinned.digest not in gone and older.digest not in gone
    # The rest is still pruned: every untagged leftover, and the tagged builds beyond the newest `keep`.
    assert {digest(2000 + n) for n in range(5)} <= gone
    builds = {image.digest for image in images if image.tags and image not in (pinned, older)}
    kept_builds = builds - gone
    assert len(kept_builds) <= keep and digest(1000) in kept_builds


def test_an_untagged_copy_is_expired_until_it_carries_its_release_tag() -> None:
    # Why the tag must be added within UNTAGGED_EXPIRY_DAYS of the copy.
    copy = Image(digest(1), (), age_days=UNTAGGED_EXPIRY_DAYS + 1)
    assert copy.digest in expired(lifecycle_policy(10, "prod"), [copy])
    tagged = Image(copy.digest, (release_tag(copy.digest, "prod"),), copy.age_days)
    assert tagged.digest not in expired(lifecycle_policy(10, "prod"), [tagged])


def test_release_tags_are_one_per_digest_and_env_and_fit_an_ecr_tag() -> None:
    tag = release_tag(digest(7), "prod")
    assert tag == "release_prod_" + f"{7:064x}" and len(tag) <= 128
    assert release_tag(digest(8), "prod") != tag and release_tag(digest(7), "staging") != tag
    with pytest.raises(ValueError, match="not an image digest"):
        release_tag("v1.2.3", "prod")


@pytest.mark.parametrize(("env", "other"), [("ml", "ml-x"), ("a", "a-release"), ("release", "dev")])
def test_no_envs_release_tag_prefix_selects_anothers_tags(env: str, other: str) -> None:
    """An env name has no underscore, so no env's prefix starts another's tags (tags replicate between envs);
    neither does the legacy prefix select a new tag."""
    for one, two in ((env, other), (other, env)):
        assert not release_tag(digest(1), two).startswith(release_tag_prefix(one))
        assert not release_tag(digest(1), two).startswith(LEGACY_RELEASE_TAG_PREFIX)


def test_devs_replicated_release_tags_do_not_count_against_prods_releases() -> None:
    """Dev's retag of what it releases replicates into prod's repository (a tag-only push replicates): before the env
    was in the tag, prod's rule 1 protected and counted every dev release, and past 9,999 of them expired prod's own
    oldest rollback images. Now dev's tags are ordinary tags in prod, pruned by the last rule, and prod's releases
    are counted alone."""
    keep = 10
    rollback = Image(digest(1), (release_tag(digest(1), "prod"),), age_days=900)
    dev_releases = [Image(digest(10_000 + n), (f"ci-{n}", release_tag(digest(10_000 + n), "dev")), age_days=n / 100)
                    for n in range(RELEASE_IMAGES_KEPT + 1)]
    gone = expired(lifecycle_policy(keep, "prod"), [rollback, *dev_releases])
    assert rollback.digest not in gone
    assert len([image for image in dev_releases if image.digest not in gone]) == keep
    # with the policy of before (one rule for every release- tag), prod's oldest rollback image went first
    rules = lifecycle_policy(keep, "prod")["rules"]
    before = {"rules": [dict(rules[1], rulePriority=1), *rules[2:]]}
    old_rollback = Image(digest(2), ("release-" + f"{2:064x}",), age_days=900)
    old_dev = [Image(image.digest, (image.tags[0], "release-" + image.digest[7:]), image.age_days)
               for image in dev_releases]
    assert old_rollback.digest in expired(before, [old_rollback, *old_dev])


def test_images_released_before_the_env_was_in_the_tag_are_still_kept() -> None:
    """The upgrade: an image prod released (and may roll back to) carries the old tag only until an up re-tags it."""
    legacy = Image(digest(3), ("release-" + f"{3:064x}",), age_days=800)
    newer = [Image(digest(3000 + n), (f"build-{n}",), age_days=n) for n in range(30)]
    assert legacy.digest not in expired(lifecycle_policy(10, "prod"), [legacy, *newer])


@pytest.mark.parametrize("env", ENVS)
def test_every_repository_gets_the_release_keeping_policy(env: str) -> None:
    keep = load_env(env).compute.ecr_keep_last_images
    policies = of_type(platform(env)["compute"], LIFECYCLE)
    assert policies
    for resource in policies:
        policy = json.loads(resource["inputs"]["policy"])
        assert policy == lifecycle_policy(keep, env, load_env(env).compute.image_source)
        assert grammar_problems(policy) == []
        first = min(policy["rules"], key=lambda rule: rule["rulePriority"])
        assert first["selection"]["tagPrefixList"] == [release_tag_prefix(env)]


@pytest.mark.parametrize("env", ENVS)
def test_a_new_lifecycle_policy_is_left_in_force_when_the_old_one_is_replaced(env: str, moto_aws: None) -> None:
    """A changed policy (``compute.ecr_keep_last_images``) replaces the resource: the provider has no update, and its
    create is PutLifecyclePolicy on the repository, its delete DeleteLifecyclePolicy of the repository's policy,
    whichever that is (terraform-provider-aws ecr/lifecycle_policy.go). Pulumi's default order, the new one created
    before the old one is deleted, so deleted the new policy: the repository was left with none while the state
    said it had one. Replayed on moto in the order each synthesized policy asks for."""
    import boto3

    from shared.components.ecr import repository_name

    ecr = boto3.client("ecr", region_name="eu-west-1")
    keep = load_env(env).compute.ecr_keep_last_images
    resources = of_type(platform(env)["compute"], LIFECYCLE)
    assert resources
    for number, resource in enumerate(resources):
        name = f"{repository_name('svc')}-{number}"
        ecr.create_repository(repositoryName=name)
        old = json.dumps(lifecycle_policy(keep + 1, env), sort_keys=True)
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=old)
        new = resource["inputs"]["policy"]
        steps = ["delete", "create"] if resource.get("delete_before_replace") else ["create", "delete"]
        for step in steps:
            if step == "create":
                ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=new)
            else:  # the old resource's delete
                ecr.delete_lifecycle_policy(repositoryName=name)
        in_force = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
        assert json.loads(in_force) == json.loads(new), resource["urn"]


def test_a_source_release_awaiting_promotion_outlives_the_sources_later_pushes() -> None:
    """dev's `up` tags what it releases; the tag replicates into staging's repository, where the image waits for its
    promotion and staging's own `up`: kept there meanwhile however many builds dev pushes, the newest
    SOURCE_RELEASE_IMAGES_KEPT of dev's releases at most (the rest stay in dev's registry, for a copy)."""
    keep = 20
    candidate = Image(digest(1), ("ci-1", release_tag(digest(1), "dev")), age_days=30)
    later_pushes = [Image(digest(100 + n), (f"ci-{100 + n}",), age_days=n / 10) for n in range(3 * keep)]
    policy = lifecycle_policy(keep, "staging", "dev")
    assert candidate.digest not in expired(policy, [candidate, *later_pushes])
    # without the source rule (a dev release an ordinary tag in staging) it went after `keep` newer pushes
    assert candidate.digest in expired(lifecycle_policy(keep, "staging"), [candidate, *later_pushes])
    many = [Image(digest(5000 + n), (release_tag(digest(5000 + n), "dev"),), age_days=n / 100)
            for n in range(SOURCE_RELEASE_IMAGES_KEPT + 5)]
    own = Image(digest(2), (release_tag(digest(2), "staging"),), age_days=999)
    gone = expired(policy, [own, *many])
    assert own.digest not in gone and len(gone) == 5  # the five oldest of dev's, never staging's own


def test_an_image_with_two_envs_release_tags_or_a_legacy_one_is_kept() -> None:
    keep = 5
    filler = [Image(digest(200 + n), (f"b-{n}",), age_days=n / 10) for n in range(30)]
    both = Image(digest(3), (release_tag(digest(3), "dev"), release_tag(digest(3), "prod")), age_days=500)
    legacy_and_dev = Image(digest(4), ("release-" + f"{4:064x}", release_tag(digest(4), "dev")), age_days=500)
    gone = expired(lifecycle_policy(keep, "prod", "dev"), [both, legacy_and_dev, *filler])
    assert both.digest not in gone and legacy_and_dev.digest not in gone


def test_the_longest_env_names_release_tag_fits_docker_and_ecr() -> None:
    from shared.broker_names import longest_env_name
    from shared.envs import ENV_NAME_PATTERN

    longest = "e" * longest_env_name()  # the env loader refuses a longer name
    assert re.match(ENV_NAME_PATTERN, longest)
    tag = release_tag(digest(9), longest)
    assert len(tag) <= 128 and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag)  # docker's tag grammar
