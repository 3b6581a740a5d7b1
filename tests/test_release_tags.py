"""``python -m shared.release_tags ENV`` gives every image an env's release pins its ``release_<env>_<digest>`` tag
in the env's own ECR repositories (moto's ECR), idempotently, and refuses the wrong account."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from shared.components.ecr import release_tag, repository_name
from shared.release_tags import main, tag_release

#: the env the images are released in (its name is in the tag)
ENV = "dev"

REGION = "eu-west-1"
MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
MOTO_ACCOUNT = "123456789012"


def manifest(seed: str) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE, "layers": [], "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
        "digest": "sha256:" + hashlib.sha256(seed.encode()).hexdigest()}})


def push(ecr: Any, service: str, seed: str, tag: str | None = None) -> str:
    """An image pushed (or copied) into ``ml-platform/<service>``, by digest only unless ``tag``."""
    body = manifest(seed)
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    request: dict[str, Any] = {"repositoryName": repository_name(service), "imageManifest": body,
                               "imageManifestMediaType": MEDIA_TYPE}
    request.update({"imageTag": tag} if tag else {"imageDigest": digest})
    # The digest the registry reports (moto derives it differently for some tagged pushes).
    return str(ecr.put_image(**request)["image"]["imageId"]["imageDigest"])


def tags(ecr: Any, service: str, digest: str) -> list[str]:
    (detail,) = ecr.describe_images(repositoryName=repository_name(service),
                                    imageIds=[{"imageDigest": digest}])["imageDetails"]
    return sorted(detail.get("imageTags") or [])


@pytest.fixture
def ecr() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ecr", region_name=REGION)
        for service in ("gateway", "inference"):
            client.create_repository(repositoryName=repository_name(service), imageTagMutability="IMMUTABLE")
        yield client


def test_a_digest_copied_without_a_tag_gets_its_release_tag_once(ecr: Any) -> None:
    copied = push(ecr, "gateway", "g1")
    assert tags(ecr, "gateway", copied) == []
    (result,) = tag_release(ecr, {"gateway": copied}, ENV)
    assert (result.action, result.tag) == ("tagged", release_tag(copied, ENV))
    assert tags(ecr, "gateway", copied) == [release_tag(copied, ENV)]
    # Idempotent: a second run finds the tag and writes nothing (the tag is immutable anyway).
    (again,) = tag_release(ecr, {"gateway": copied}, ENV)
    assert again.action == "already-tagged" and tags(ecr, "gateway", copied) == [release_tag(copied, ENV)]


def test_a_release_tag_resolves_to_its_digest_and_keeps_the_build_tag(ecr: Any) -> None:
    built = push(ecr, "inference", "i1", tag="v1.4.2")
    (result,) = tag_release(ecr, {"inference": "v1.4.2"}, ENV)
    assert result.digest == built and result.action == "tagged"
    assert tags(ecr, "inference", built) == sorted(["v1.4.2", release_tag(built, ENV)])


def test_check_changes_nothing_and_a_missing_image_is_named(ecr: Any) -> None:
    copied = push(ecr, "gateway", "g2")
    absent = "sha256:" + "f" * 64
    results = {r.service: r for r in tag_release(ecr, {"gateway": copied, "inference": absent}, ENV, check=True)}
    assert results["gateway"].action == "untagged" and not results["gateway"].ok
    assert tags(ecr, "gateway", copied) == []
    assert results["inference"].action == "missing"
    assert results["inference"].describe() == f"inference: ml-platform/inference has no image {absent}"


INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def push_index(ecr: Any, service: str, children: list[str], tag: str | None = None) -> str:
    """A multi-platform index over ``children`` (digests already in the repository)."""
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [
        {"mediaType": MEDIA_TYPE, "size": 1, "digest": child,
         "platform": {"os": "linux", "architecture": architecture}}
        for child, architecture in zip(children, ("amd64", "arm64"), strict=True)]})
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    request: dict[str, Any] = {"repositoryName": repository_name(service), "imageManifest": body,
                               "imageManifestMediaType": INDEX_TYPE}
    request.update({"imageTag": tag} if tag else {"imageDigest": digest})
    return str(ecr.put_image(**request)["image"]["imageId"]["imageDigest"])


def test_an_index_and_every_manifest_it_references_get_their_release_tags(ecr: Any) -> None:
    amd64, arm64 = push(ecr, "inference", "amd64"), push(ecr, "inference", "arm64")
    index = push_index(ecr, "inference", [amd64, arm64], tag="v2.0.0")
    # untagged, the platform manifests would be what the untagged rule selects; each gets its own release tag
    assert tags(ecr, "inference", amd64) == [] and tags(ecr, "inference", arm64) == []
    checked = tag_release(ecr, {"inference": index}, ENV, check=True)
    # the index's images first: ECR refuses an index naming an image the repository lacks
    assert [(r.reference, r.action) for r in checked] == [(amd64, "untagged"), (arm64, "untagged"),
                                                           (index, "untagged")]
    results = tag_release(ecr, {"inference": index}, ENV)
    assert [(r.digest, r.action) for r in results] == [(amd64, "tagged"), (arm64, "tagged"), (index, "tagged")]
    assert tags(ecr, "inference", index) == sorted(["v2.0.0", release_tag(index, ENV)])
    assert tags(ecr, "inference", amd64) == [release_tag(amd64, ENV)]
    assert tags(ecr, "inference", arm64) == [release_tag(arm64, ENV)]
    again = tag_release(ecr, {"inference": index}, ENV)
    assert [(r.digest, r.action) for r in again] == [(amd64, "already-tagged"), (arm64, "already-tagged"),
                                                     (index, "already-tagged")]


def test_a_manifest_an_index_references_but_the_repository_lacks_is_named(ecr: Any) -> None:
    amd64 = push(ecr, "gateway", "amd64")
    absent = "sha256:" + "e" * 64
    index = push_index(ecr, "gateway", [amd64, absent], tag="v3")
    results = tag_release(ecr, {"gateway": index}, ENV)
    assert [(r.reference, r.action) for r in results][:2] == [(amd64, "tagged"), (absent, "missing")]
    assert not all(r.ok for r in results)


def test_an_index_ecr_refuses_for_a_missing_image_is_named_after_its_images_are_tagged(ecr: Any) -> None:
    """Real ECR refuses PutImage of an index naming an image the repository lacks (ReferencedImagesNotFoundException,
    botocore ecr PutImage; moto accepts it): the images that are there (the one a task pulls) are tagged first, and the
    index's refusal is a result naming what to do, not an AWS error ending compute's `up` after the other layers."""
    from botocore.exceptions import ClientError

    amd64 = push(ecr, "gateway", "amd64")
    absent = "sha256:" + "e" * 64
    index = push_index(ecr, "gateway", [amd64, absent], tag="v3")

    def refuse_the_index(params: dict[str, Any], **_: Any) -> None:
        if params.get("imageDigest") == index:
            raise ClientError({"Error": {"Code": "ReferencedImagesNotFoundException",
                                         "Message": "The manifest list is referencing an image that does not exist."}},
                              "PutImage")

    ecr.meta.events.register("before-parameter-build.ecr.PutImage", refuse_the_index)
    results = tag_release(ecr, {"gateway": index}, ENV)
    assert [(r.reference, r.action) for r in results] == [(amd64, "tagged"), (absent, "missing"),
                                                          (index, "incomplete")]
    assert tags(ecr, "gateway", amd64) == [release_tag(amd64, ENV)]
    assert "copy the whole index into the repository again" in results[-1].describe()
    assert not results[-1].ok


def test_once_stop_answers_true_no_further_image_is_tagged(ecr: Any) -> None:
    """An interrupted `up` (shared.orchestrate.images) writes no tag after the interrupt, and learns which it wrote."""
    gateway, inference = push(ecr, "gateway", "g"), push(ecr, "inference", "i")
    amd64, arm64 = push(ecr, "inference", "amd64"), push(ecr, "inference", "arm64")
    index = push_index(ecr, "inference", [amd64, arm64])
    puts: list[str] = []  # one entry per ECR PutImage
    ecr.meta.events.register("before-call.ecr.PutImage", lambda **kwargs: puts.append("PutImage"))
    results = tag_release(ecr, {"gateway": gateway, "inference": inference}, ENV, stop=lambda: len(puts) >= 1)
    assert [(r.service, r.action) for r in results] == [("gateway", "tagged")]
    assert tags(ecr, "inference", inference) == []
    # an index is tagged whole: a platform manifest left untagged would be the untagged lifecycle rule's to expire
    results = tag_release(ecr, {"inference": index}, ENV, stop=lambda: len(puts) >= 2)
    assert [(r.digest, r.action) for r in results] == [(amd64, "tagged"), (arm64, "tagged"), (index, "tagged")]


def test_a_tag_an_immutable_repository_already_holds_on_the_same_digest_is_the_wanted_state(ecr: Any) -> None:
    """Two runs tagging at once: on compute's immutable repositories ECR may answer ImageTagAlreadyExistsException to
    the second (aws/containers-roadmap #2179); the tag names the digest, so it is this image's."""
    from botocore.exceptions import ClientError

    gateway = push(ecr, "gateway", "g")

    def already(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ImageTagAlreadyExistsException", "Message": "tag exists"}}, "PutImage")

    ecr.meta.events.register("before-call.ecr.PutImage", already)
    # reported as found, not as written by this run (an interrupted up names the tags it wrote)
    results = tag_release(ecr, {"gateway": gateway}, ENV)
    assert [(r.service, r.action) for r in results] == [("gateway", "already-tagged")]


def test_an_interrupt_during_an_image_s_reads_writes_no_tag_of_it(ecr: Any) -> None:
    gateway = push(ecr, "gateway", "g")
    reads: list[str] = []
    ecr.meta.events.register("before-call.ecr.BatchGetImage", lambda **kwargs: reads.append("BatchGetImage"))
    results = tag_release(ecr, {"gateway": gateway}, ENV, stop=lambda: bool(reads))  # Ctrl-C while ECR answered
    assert results == [] and tags(ecr, "gateway", gateway) == []


def write_env(env_dir: Any, name: str, account: str, images: dict[str, str]) -> None:
    path = env_dir / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    data["account_id"] = account
    data["release"]["images"] = images
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_the_cli_tags_the_envs_release_and_exits_1_while_one_is_missing(
    ecr: Any, env_dir: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = push(ecr, "gateway", "g3")
    absent = "sha256:" + "e" * 64
    write_env(env_dir, "dev", MOTO_ACCOUNT, {"gateway": gateway, "inference": absent})
    session = boto3.Session(region_name=REGION)
    assert main(["dev"], session=session) == 1
    assert "inference: ml-platform/inference has no image" in capsys.readouterr().err
    assert tags(ecr, "gateway", gateway) == [release_tag(gateway, ENV)]
    inference = push(ecr, "inference", "i3")
    write_env(env_dir, "dev", MOTO_ACCOUNT, {"gateway": gateway, "inference": inference})
    assert main(["dev", "--check"], session=session) == 1
    assert main(["dev"], session=session) == 0
    assert main(["dev", "--check"], session=session) == 0


def test_credentials_of_another_account_are_refused_before_anything_is_tagged(
    ecr: Any, env_dir: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = push(ecr, "gateway", "g4")
    write_env(env_dir, "dev", "111111111111", {"gateway": gateway})
    assert main(["dev"], session=boto3.Session(region_name=REGION)) == 2
    assert "account_id" in capsys.readouterr().err and tags(ecr, "gateway", gateway) == []


def test_a_repository_compute_has_not_created_yet_holds_no_image(
    ecr: Any, env_dir: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    absent = "sha256:" + "e" * 64
    write_env(env_dir, "dev", MOTO_ACCOUNT, {"training": absent})  # the fixture creates no ml-platform/training
    assert main(["dev", "--check"], session=boto3.Session(region_name=REGION)) == 1
    assert f"training: ml-platform/training has no image {absent}" in capsys.readouterr().err


def test_an_ecr_call_the_credentials_may_not_make_is_a_message_not_a_traceback(
    ecr: Any, env_dir: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = push(ecr, "gateway", "g5")
    write_env(env_dir, "dev", MOTO_ACCOUNT, {"gateway": gateway})
    session = boto3.Session(region_name=REGION)

    def denied(**_: Any) -> tuple[Any, dict[str, Any]]:
        return type("Denied", (), {"status_code": 400})(), {
            "Error": {"Code": "AccessDeniedException", "Message": "not allowed ecr:BatchGetImage"}}

    session.events.register("before-call.ecr.BatchGetImage", denied)
    assert main(["dev"], session=session) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: dev: An error occurred (AccessDeniedException)"), error
    assert "ecr:BatchGetImage" in error
    assert tags(ecr, "gateway", gateway) == []


def test_a_manifest_ecr_cannot_serve_is_named_with_ecrs_failure_not_a_traceback(
    ecr: Any, env_dir: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    """BatchGetImage answers an image it cannot serve with a ``failures`` entry, not an error (botocore ecr model,
    BatchGetImageResponse.failures; ImageFailureCode KmsError: the repository's key disabled or scheduled for deletion,
    ImageInaccessible): the command says which image and what ECR said (exit 1), and tags nothing."""
    gateway = push(ecr, "gateway", "g6")
    write_env(env_dir, "dev", MOTO_ACCOUNT, {"gateway": gateway})
    session = boto3.Session(region_name=REGION)

    def unserved(**_: Any) -> tuple[Any, dict[str, Any]]:
        return type("Answer", (), {"status_code": 200})(), {"images": [], "failures": [
            {"imageId": {"imageDigest": gateway}, "failureCode": "KmsError",
             "failureReason": "The KMS key is pending deletion"}]}

    session.events.register("before-call.ecr.BatchGetImage", unserved)
    assert main(["dev"], session=session) == 1
    error = capsys.readouterr().err
    assert f"ml-platform/gateway@{gateway}" in error and "KmsError: The KMS key is pending deletion" in error, error
    assert tags(ecr, "gateway", gateway) == []


def test_the_cli_uses_the_envs_own_profile(ecr: Any, env_dir: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """PLATFORM_AWS_PROFILE_<ENV> names the env's credentials for this command as for every other (README, AWS
    credentials per env): a profile the AWS config lacks is an error naming it (exit 2), not the default chain."""
    gateway = push(ecr, "gateway", "g6")
    write_env(env_dir, "dev", MOTO_ACCOUNT, {"gateway": gateway})
    config = tmp_path / "aws-config"
    config.write_text("[profile dev-admin]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("PLATFORM_AWS_PROFILE_DEV", "dev-missing")
    assert main(["dev"]) == 2
    assert "dev-missing" in capsys.readouterr().err and tags(ecr, "gateway", gateway) == []
    monkeypatch.setenv("PLATFORM_AWS_PROFILE_DEV", "dev-admin")
    assert main(["dev"]) == 0
    assert tags(ecr, "gateway", gateway) == [release_tag(gateway, ENV)]
