"""Released images against AWS (boto3 on moto): registry presence, what ECS runs, whose credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.envs import EnvConfig, load_env
from shared.images import (
    AwsAccessError,
    RunningImage,
    SessionClients,
    missing_images,
    profile_var,
    rollout_mismatches,
    running_images,
    verify_account,
)
from shared.orchestrate.images import AwsImageChecks
from tests.aws_helpers import (
    REPLICATION_STATUSES,
    MotoAccounts,
    archive_images,
    count_profile_assumptions,
    create_repositories,
    push_image,
    run_service,
)

NEW = "sha256:" + "ab" * 32
OLD = "sha256:" + "cd" * 32


# -- whose credentials ---------------------------------------------------------------------------------


def test_credentials_of_the_env_account_pass(moto_aws: None) -> None:
    verify_account(load_env("staging"), MotoAccounts())


def test_credentials_of_another_account_are_refused_with_exit_2(moto_aws: None) -> None:
    staging = load_env("staging")
    with pytest.raises(AwsAccessError) as error:
        verify_account(staging, MotoAccounts(caller=load_env("dev").account_id))
    assert error.value.exit_code == 2
    message = str(error.value)
    assert "111111111111" in message and "account_id 222222222222" in message
    assert profile_var("staging") == "PLATFORM_AWS_PROFILE_STAGING" and "PLATFORM_AWS_PROFILE_STAGING" in message


def test_the_real_factory_uses_the_env_region_and_its_profile_variable(moto_aws: None,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    staging = load_env("staging")
    assert SessionClients()(staging, "ecr").meta.region_name == staging.region
    monkeypatch.setenv(profile_var("staging"), "no-such-profile-anywhere")
    with pytest.raises(Exception, match="no-such-profile-anywhere"):
        SessionClients()(staging, "ecr")


def test_the_image_checks_of_one_run_assume_the_env_profile_role_once(moto_aws: None,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    # compute's image gate asks STS (whose account), ECR (the released images) and ECS (what runs) in one run
    assumed = count_profile_assumptions(monkeypatch, tmp_path, "dev")
    checks = AwsImageChecks()
    dev = load_env("dev")
    checks.verify(dev)
    assert [m.service for m in checks.missing(dev, {"gateway": NEW})] == ["gateway"]
    (running,) = checks.running(dev, ["gateway"])
    assert running.problem == "no ECS cluster dev-ml-platform: compute of dev is not deployed"
    assert len(assumed) == 1, assumed


# -- images in the registry ------------------------------------------------------------------------------


def test_a_missing_repository_and_a_missing_digest_are_both_named(moto_aws: None) -> None:
    staging = load_env("staging")
    create_repositories(staging, ["gateway"])
    push_image(staging, "inference", NEW)
    missing = missing_images(staging, {"gateway": NEW, "inference": NEW, "training": OLD}, MotoAccounts())
    assert [(m.service, m.reference) for m in missing] == [("gateway", NEW), ("training", OLD)]
    gateway, training = missing
    assert gateway.reason == "no such image"
    assert training.reason == "the repository does not exist yet"
    # a service new to staging: replication cannot create its repository, a copy into it fails: staging's up first
    assert training.how.startswith("staging's compute has not created ml-platform/training yet (the service is new "
                                   "to staging): deploy staging with this code first (`nox -s up -- staging`")
    assert "crane copy" in training.how and "crane copy" in gateway.how
    assert not gateway.how.startswith("staging's compute has not created")
    assert gateway.repository_uri == "222222222222.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway"
    # staging receives images from dev: the remedy names dev's repository and keeps the digest
    assert "replication from dev" in gateway.how
    # replication to staging exists only once dev's compute ran with staging's file naming dev
    assert "by dev's compute `up` since environments/staging.yaml named it as image_source" in gateway.how
    assert (f"crane copy 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway@{NEW} "
            f"222222222222.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway:release_staging_"
            f"{NEW.removeprefix('sha256:')}`"
            ) in gateway.how  # the release tag at once: the lifecycle policy keeps the copy from then on


@pytest.mark.parametrize(("statuses", "said"), [
    ([], "dev reports no replication of it to staging: it was pushed before dev's replication reached staging"),
    ([{"region": "eu-west-1", "registryId": "222222222222", "status": "IN_PROGRESS"}],
     "dev's replication of it to staging is still IN_PROGRESS: retry in a few minutes"),
    ([{"region": "eu-west-1", "registryId": "222222222222", "status": "FAILED", "failureCode": "AccessDenied"}],
     "dev's replication of it to staging FAILED (AccessDenied;"),
    # replicated to prod, never to staging
    ([{"region": "eu-west-1", "registryId": "333333333333", "status": "COMPLETE"}], "dev reports no replication"),
    ([{"region": "eu-west-1", "registryId": "222222222222", "status": "COMPLETE"}],
     "dev's replication of it to staging is COMPLETE, so it was removed from staging since"),
])
def test_what_the_source_says_of_its_replication_explains_a_missing_image(
        moto_aws: None, monkeypatch: pytest.MonkeyPatch, statuses: list[dict[str, str]], said: str) -> None:
    # ECR DescribeImageReplicationStatus in dev's registry, with dev's credentials (promotion dev -> staging)
    monkeypatch.setitem(REPLICATION_STATUSES, ("111111111111", "eu-west-1", "ml-platform/gateway", NEW), statuses)
    create_repositories(load_env("staging"), ["gateway"])  # staging's compute made it: the image alone is missing
    (gateway,) = missing_images(load_env("staging"), {"gateway": NEW}, MotoAccounts())
    assert gateway.how.startswith(said), gateway.how
    assert "crane copy" in gateway.how  # the remedy is still there


def test_without_credentials_for_the_source_nothing_is_said_of_its_replication(moto_aws: None) -> None:
    # staging's own `up`: only staging's credentials, so dev's registry answers AccessDenied, which is no error
    create_repositories(load_env("staging"), ["gateway"])
    (gateway,) = missing_images(load_env("staging"), {"gateway": NEW}, MotoAccounts(caller="222222222222"))
    assert gateway.how.startswith("staging receives images by ECR replication from dev"), gateway.how


@pytest.mark.parametrize(("status", "said"), [
    ("ARCHIVED", "restore it: `aws ecr update-image-storage-class --region eu-west-1 --repository-name "
                 f"ml-platform/gateway --image-id imageDigest={NEW} --target-storage-class STANDARD`"),
    ("ACTIVATING", "it is being restored from the archive: run `nox -s up -- staging` again once"),
])
def test_an_archived_image_is_restored_in_place_not_pushed_or_replicated_again(
        moto_aws: None, status: str, said: str) -> None:
    # The image is in staging's registry, in the archive storage class (moto knows none: DescribeImages' answer
    # gets the status ECR would report). A push or a replication of the same digest is not the remedy.
    staging = load_env("staging")
    push_image(staging, "gateway", NEW)
    accounts = MotoAccounts()

    def archived(parsed: dict[str, Any], **_: Any) -> None:
        for detail in parsed.get("imageDetails", []):
            detail["imageStatus"] = status

    def clients(env: EnvConfig, service: str) -> Any:
        client = accounts(env, service)
        client.meta.events.register("after-call.ecr.DescribeImages", archived)
        return client

    (gateway,) = missing_images(staging, {"gateway": NEW}, clients)
    assert gateway.reason == f"the image is {status}"
    assert gateway.how.startswith(said), gateway.how
    assert "crane copy" not in gateway.how and "replication" not in gateway.how


@pytest.mark.parametrize("status", ["ARCHIVED", "ACTIVATING"])
@pytest.mark.parametrize("by_tag", [False, True], ids=["digest", "tag"])
def test_an_archived_image_describe_images_does_not_answer_is_found_by_its_status(
        moto_aws: None, status: str, by_tag: bool) -> None:
    """DescribeImages answers ACTIVE images only unless its filter names another status (botocore ecr
    DescribeImagesFilter): where it applies that to a lookup by imageIds, the image is still found, by ListImages
    with that status, and restored in place rather than pushed again."""
    staging = load_env("staging")
    push_image(staging, "gateway", NEW, tag="v7")
    accounts = MotoAccounts()
    (digest,) = {image["imageDigest"] for image in accounts(staging, "ecr").list_images(
        repositoryName="ml-platform/gateway")["imageIds"]}

    def clients(env: EnvConfig, service: str) -> Any:
        client = accounts(env, service)
        return archive_images(client, {digest: status}) if service == "ecr" else client

    reference = "v7" if by_tag else digest
    (gateway,) = missing_images(staging, {"gateway": reference}, clients)
    assert gateway.reason == f"the image is {status}"
    assert "crane copy" not in gateway.how and "replication" not in gateway.how
    if status == "ARCHIVED":
        assert f"--image-id imageDigest={digest} --target-storage-class STANDARD" in gateway.how, gateway.how


def test_in_dev_the_remedy_is_a_push(moto_aws: None) -> None:
    dev = load_env("dev")
    (missing,) = missing_images(dev, {"gateway": NEW}, MotoAccounts())
    assert "docker push 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ml-platform/gateway:<tag>" in missing.how


def test_an_image_in_another_account_does_not_count(moto_aws: None) -> None:
    dev, staging = load_env("dev"), load_env("staging")
    push_image(dev, "gateway", NEW)  # pushed to dev, never replicated
    assert missing_images(dev, {"gateway": NEW}, MotoAccounts()) == []
    assert [m.service for m in missing_images(staging, {"gateway": NEW}, MotoAccounts())] == ["gateway"]


def test_a_tag_release_is_looked_up_by_tag(moto_aws: None) -> None:
    dev = load_env("dev")
    push_image(dev, "gateway", NEW, tag="v1.2.3")
    assert missing_images(dev, {"gateway": "v1.2.3"}, MotoAccounts()) == []
    assert [m.reference for m in missing_images(dev, {"gateway": "v9"}, MotoAccounts())] == ["v9"]


# -- what ECS runs -----------------------------------------------------------------------------------------


def test_ecs_reports_the_digest_of_the_primary_deployment(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    run_service(dev, "gateway", NEW, monkeypatch=monkeypatch)
    (entry,) = running_images(dev, ["gateway"], MotoAccounts())
    assert (entry.service, entry.ecs_service, entry.digest, entry.problem) == ("gateway", "gateway", NEW, None)
    assert rollout_mismatches(dev, {"gateway": NEW}, [entry]) == []
    assert rollout_mismatches(dev, {"gateway": OLD}, [entry]) == [f"gateway runs {NEW}, not the release's {OLD}"]


def test_a_rollout_still_in_progress_is_not_a_deployment(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    run_service(dev, "gateway", NEW, settled=False, monkeypatch=monkeypatch)
    (entry,) = running_images(dev, ["gateway"], MotoAccounts())
    assert entry.digest == NEW and entry.problem is not None and "IN_PROGRESS" in entry.problem
    assert rollout_mismatches(dev, {"gateway": NEW}, [entry])


def test_no_cluster_or_no_service_is_named(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_env("dev")
    (entry,) = running_images(dev, ["gateway"], MotoAccounts())
    assert entry.problem == "no ECS cluster dev-ml-platform: compute of dev is not deployed"
    run_service(dev, "gateway", NEW, monkeypatch=monkeypatch)
    _, training = running_images(dev, ["gateway", "training"], MotoAccounts())
    assert training.problem == "no active ECS service training in dev-ml-platform"


def test_canary_versions_are_each_read(moto_aws: None, edit_env, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_env("dev", lambda data: data["mesh"].update(
        provider="appmesh", appmesh_end_of_support_acknowledged=True,
        canaries={"inference": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}))
    dev = load_env("dev")
    run_service(dev, "inference", NEW, ecs_name="inference-v1", monkeypatch=monkeypatch)
    run_service(dev, "inference", OLD, ecs_name="inference-v2", monkeypatch=monkeypatch)
    entries = running_images(dev, ["inference"], MotoAccounts())
    assert [(e.ecs_service, e.digest) for e in entries] == [("inference-v1", NEW), ("inference-v2", OLD)]
    assert rollout_mismatches(dev, {"inference": NEW}, entries) == [
        f"inference (inference-v2) runs {OLD}, not the release's {NEW}"]


def test_an_image_pinned_by_tag_is_reported_as_such() -> None:
    entry = RunningImage("gateway", "gateway", None)
    assert rollout_mismatches(load_env("dev"), {"gateway": NEW}, [entry]) == [
        f"gateway runs an image not pinned by digest, not the release's {NEW}"]


def test_an_image_config_is_downloaded_only_over_https() -> None:
    from shared.images import read_blob

    class Ecr:
        def get_download_url_for_layer(self, **request: Any) -> dict[str, str]:
            assert request == {"repositoryName": "ml-platform/inference", "layerDigest": NEW}
            return {"downloadUrl": "http://prod-eu-west-1-starport-layer-bucket.s3.amazonaws.com/x"}

    with pytest.raises(ValueError, match="not https"):
        read_blob(Ecr(), "ml-platform/inference", NEW)


@pytest.mark.parametrize("code", ["KmsError", "ImageInaccessible", "UpstreamUnavailable"])
def test_a_manifest_ecr_cannot_hand_out_is_a_platform_that_cannot_be_told(code: str) -> None:
    """BatchGetImage answers a per-image problem in ``failures``, not as an error (botocore ecr model,
    ImageFailureCode): the platform check must not take an unreadable manifest for an image to let through."""
    from shared.images import wrong_platforms

    class Ecr:
        def batch_get_image(self, **request: Any) -> dict[str, Any]:
            assert request["imageIds"] == [{"imageDigest": NEW}]
            return {"images": [], "failures": [{"imageId": {"imageDigest": NEW}, "failureCode": code,
                                                "failureReason": "the key is disabled"}]}

    dev = load_env("dev")
    with pytest.raises(AwsAccessError) as raised:
        wrong_platforms(dev, {"inference": NEW}, lambda env, service: Ecr())
    assert str(raised.value) == (f"dev: cannot tell the platform of ml-platform/inference@{NEW} (ECR BatchGetImage "
                                 f"answered {code}: the key is disabled)")


def test_an_image_ecr_does_not_find_is_left_to_the_missing_images_check(moto_aws: None) -> None:
    from shared.images import wrong_platforms

    dev = load_env("dev")
    create_repositories(dev, ["inference"])  # moto answers ImageNotFound in failures, as ECR does
    assert wrong_platforms(dev, {"inference": NEW}, MotoAccounts()) == []


@pytest.mark.parametrize(("os", "architecture", "runs"), [
    ("linux", "x86_64", True), ("Linux", "AMD64", True), ("linux", "x86-64", True), ("linux", "aarch64", False)])
def test_a_platform_is_compared_as_containerd_normalizes_it(os: str, architecture: str, runs: bool) -> None:
    """containerd lower-cases and normalizes the platform of an image config or index entry before it matches it
    (containerd/platforms normalizeArch: x86_64 and x86-64 are amd64, aarch64 arm64): so does the check, or it
    would stop an image Fargate runs."""
    import json

    from shared.images import wrong_platforms

    config = "sha256:" + "c0" * 32

    class Ecr:
        def batch_get_image(self, **request: Any) -> dict[str, Any]:
            manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                   "size": 2}, "layers": []}
            return {"images": [{"imageManifest": json.dumps(manifest)}], "failures": []}

    def read(ecr: Any, repository: str, digest: str) -> bytes:
        assert digest == config
        return json.dumps({"os": os, "architecture": architecture}).encode()

    wrong = wrong_platforms(load_env("dev"), {"inference": NEW}, lambda env, service: Ecr(), read)
    assert [w.found for w in wrong] == ([] if runs else [f"{os}/{architecture}"])


def _tls_blob_server(tmp_path: Path, body: bytes, host: str = "127.0.0.1") -> tuple[str, Path, Callable[[], None]]:
    """An HTTPS server on loopback answering ``body``, its certificate (for ``host``) signed by a CA of its own: (url,
    the CA's PEM, stop)."""
    import contextlib
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.loopback import canned_answer, http_server

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test proxy CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    serving = contextlib.ExitStack()
    server = serving.enter_context(http_server(canned_answer(200, {"Content-Length": str(len(body))}, body),
                                               tls=context))
    return f"https://127.0.0.1:{server.server_address[1]}/blob", ca_pem, serving.close


def test_an_image_config_is_downloaded_with_the_trust_the_ecr_call_had(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blob comes from a pre-signed S3 URL, read with urllib: it must verify with the CAs botocore verified ECR
    with (AWS_CA_BUNDLE, else its default bundle, certifi's), not the interpreter's own store. python.org's macOS
    Python has an empty one until its "Install Certificates" command has run (CPython Mac/BuildScript/resources/
    ReadMe.rtf), and a laptop behind a TLS-inspecting proxy gives boto3 the proxy's CA through AWS_CA_BUNDLE only:
    with either, compute's `up` stopped at the image check (exit 2, CERTIFICATE_VERIFY_FAILED) after ECR answered.
    The CA variables and the profile's ca_bundle: the next test, with a real client."""
    import botocore.httpsession

    from shared.images import read_blob

    url, ca_pem, stop = _tls_blob_server(tmp_path, b'{"os": "linux", "architecture": "amd64"}')
    empty = tmp_path / "empty-store"
    empty.mkdir()
    (empty / "cert.pem").write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty / "cert.pem"))  # the interpreter's store holds no CA at all
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    monkeypatch.setattr(botocore.httpsession, "where", lambda: str(ca_pem))  # botocore's default bundle

    class Ecr:
        def get_download_url_for_layer(self, **request: Any) -> dict[str, str]:
            return {"downloadUrl": url}

    try:
        assert json.loads(read_blob(Ecr(), "ml-platform/inference", NEW)) == {"os": "linux", "architecture": "amd64"}
    finally:
        stop()


@pytest.mark.parametrize("variable", ["PLATFORM_AWS_PROFILE_DEV", "AWS_PROFILE"])
@pytest.mark.parametrize("error, details", [
    # never logged in on this machine (botocore's SSOTokenProvider finds no cached token)
    ("SSOTokenLoadError", {"error_msg": "Token for my-sso does not exist"}),
    # the session ran out and its refresh failed (an sso-session profile)
    ("TokenRetrievalError", {"provider": "sso", "error_msg": "Token has expired and refresh failed"}),
    # the legacy SSO profile's token expired
    ("UnauthorizedSSOTokenError", {}),
])
def test_an_sso_profile_without_a_live_session_is_told_to_log_in(
        monkeypatch: pytest.MonkeyPatch, variable: str, error: str, details: dict[str, str]) -> None:
    """A laptop's IAM Identity Center profile before `aws sso login` (or after its session ended): the account check,
    the first AWS call of `up`, said to set PLATFORM_AWS_PROFILE_<ENV> or AWS_PROFILE, which the user had set."""
    import botocore.exceptions

    monkeypatch.delenv("PLATFORM_AWS_PROFILE_DEV", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv(variable, "ml-dev-admin")
    raised = getattr(botocore.exceptions, error)(**details)

    class Sts:
        def get_caller_identity(self) -> dict[str, str]:
            raise raised

    with pytest.raises(AwsAccessError) as refused:
        verify_account(load_env("dev"), lambda env, service: Sts())
    assert "aws sso login --profile ml-dev-admin" in str(refused.value), refused.value


@pytest.mark.parametrize("trusted_by", ["the profile's ca_bundle", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"])
def test_an_image_config_is_downloaded_with_the_ca_the_ecr_client_resolved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted_by: str) -> None:
    """A real ECR client of the real factory: botocore verifies ECR with the client's ``verify``, which is the
    profile's ``ca_bundle`` or AWS_CA_BUNDLE (botocore session.create_client: get_config_variable('ca_bundle')),
    else REQUESTS_CA_BUNDLE (botocore endpoint.py, _get_verify_value). A laptop behind a TLS-inspecting proxy whose
    CA is the profile's ``ca_bundle`` in ~/.aws/config (`aws configure set ca_bundle`, what the AWS CLI needs too)
    passed every ECR call and then failed the blob's download with CERTIFICATE_VERIFY_FAILED (exit 2)."""
    from botocore.stub import Stubber

    from shared.images import read_blob

    url, ca_pem, stop = _tls_blob_server(tmp_path, b'{"os": "linux", "architecture": "arm64"}')
    empty = tmp_path / "empty-store"
    empty.mkdir()
    (empty / "cert.pem").write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty / "cert.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    for var in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("[profile laptop]\nregion = eu-west-1\naws_access_key_id = testing\n"
                      "aws_secret_access_key = testing\n"
                      + (f"ca_bundle = {ca_pem}\n" if trusted_by == "the profile's ca_bundle" else ""))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv(profile_var("dev"), "laptop")
    if trusted_by != "the profile's ca_bundle":
        monkeypatch.setenv(trusted_by, str(ca_pem))
    ecr = SessionClients()(load_env("dev"), "ecr")
    with Stubber(ecr) as stub:
        stub.add_response("get_download_url_for_layer", {"downloadUrl": url, "layerDigest": NEW},
                          {"repositoryName": "ml-platform/inference", "layerDigest": NEW})
        try:
            assert json.loads(read_blob(ecr, "ml-platform/inference", NEW)) == {"os": "linux",
                                                                                 "architecture": "arm64"}
        finally:
            stop()


def test_an_image_config_download_still_checks_the_host_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA is the client's, the verification TLS's own: a certificate of the trusted CA for another host is
    refused (check_hostname), as botocore refuses it for ECR."""
    from botocore.stub import Stubber

    from shared.images import read_blob

    url, ca_pem, stop = _tls_blob_server(tmp_path, b"{}", host="127.0.0.2")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_pem))
    ecr = SessionClients()(load_env("dev"), "ecr")
    with Stubber(ecr) as stub:
        stub.add_response("get_download_url_for_layer", {"downloadUrl": url, "layerDigest": NEW})
        try:
            with pytest.raises(OSError, match="mismatch"):
                read_blob(ecr, "ml-platform/inference", NEW)
        finally:
            stop()


ATTESTATION = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": "sha256:" + "a7" * 32,
               "platform": {"os": "unknown", "architecture": "unknown"},
               "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}


def _judged(manifest: dict[str, Any], configs: dict[str, dict[str, str]]) -> list[str]:
    """What wrong_platforms finds of inference's one released image with ``manifest``: each finding's platforms."""
    return [w.found for w in wrong_of(manifest, configs)]


def wrong_of(manifest: dict[str, Any], configs: dict[str, dict[str, str]], service: str = "inference",
             children: dict[str, str] | None = None) -> list[Any]:
    """What wrong_platforms finds of ``service``'s one released image ``manifest``, NEW: an index's child manifests are
    served for the digests of ``children`` (child digest -> its config's digest; CHILDREN by default), and configs
    from ``configs`` (digest -> config)."""
    from shared.images import wrong_platforms

    config_of = CHILDREN if children is None else children

    class Ecr:
        def batch_get_image(self, **request: Any) -> dict[str, Any]:
            (image_id,) = request["imageIds"]
            digest = image_id["imageDigest"]
            served = manifest if digest == NEW else {
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [],
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_of[digest],
                           "size": 2}}
            return {"images": [{"imageManifest": json.dumps(served)}], "failures": []}

    def read(ecr: Any, repository: str, digest: str) -> bytes:
        return json.dumps(configs[digest]).encode()

    return wrong_platforms(load_env("dev"), {service: NEW}, lambda env, name: Ecr(), read)


CONFIG = "sha256:" + "c1" * 32
CHILD = "sha256:" + "d1" * 32
CHILDREN = {CHILD: CONFIG}


def _entry(platform: dict[str, str] | None, digest: str = CHILD) -> dict[str, Any]:
    entry: dict[str, Any] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": digest}
    return {**entry, "platform": platform} if platform is not None else entry


def _index(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list(entries)}


def _single() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [],
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": 2}}


@pytest.mark.parametrize(("manifest", "config", "found"), [
    # containerd/platforms normalizeOS: an empty os is the host's (runtime.GOOS: linux on Fargate)
    (_index(_entry({"architecture": "amd64"})), {}, []),
    (_single(), {"architecture": "amd64"}, []),
    # normalizeArch: amd64's v1 is no variant; any other variant is not the plain amd64 an X86_64 host matches
    # (cpuVariant is set on ARM only, and NewMatcher compares os, architecture and variant)
    (_index(_entry({"os": "linux", "architecture": "amd64", "variant": "v1"})), {}, []),
    (_index(_entry({"os": "linux", "architecture": "amd64", "variant": "v3"}), ATTESTATION), {}, ["linux/amd64/v3"]),
    # an entry without a platform: its config's platform, variant included (core/images ConfigPlatform)
    (_index(_entry(None)), {"os": "linux", "architecture": "amd64", "variant": "v2"}, ["linux/amd64/v2"]),
    # the released manifest itself is not matched by containerd (core/images Manifest: only an index's entries are);
    # its config still tells os and architecture of its binaries, but a variant does not stop it
    (_single(), {"os": "linux", "architecture": "amd64", "variant": "v3"}, []),
    # buildx's provenance attestation (unknown/unknown) is no platform the image is (core/images Platforms skips it)
    (_index(_entry({"os": "linux", "architecture": "arm64"}), ATTESTATION), {}, ["linux/arm64"]),
])
def test_a_platform_is_matched_as_containerd_matches_it_on_an_x86_64_host(
        manifest: dict[str, Any], config: dict[str, str], found: list[str]) -> None:
    assert _judged(manifest, {CONFIG: config}) == found


def test_an_index_whose_linux_amd64_manifest_the_registry_lost_is_no_runnable_image() -> None:
    """A replica's per-platform manifests arrive untagged, and the untagged-image lifecycle rule may expire one while
    the tagged index stays: DescribeImages finds the index, its entry says linux/amd64, yet no task can pull it. The
    gate that refuses an image of another platform refuses it too, before a promotion or an update; an index that
    still holds it, or an arm64 child gone beside a held amd64 one, passes."""
    from shared.images import wrong_platforms

    other = "sha256:" + "e1" * 32

    def judged(held: set[str]) -> list[Any]:
        class Ecr:
            def batch_get_image(self, **request: Any) -> dict[str, Any]:
                (image_id,) = request["imageIds"]
                digest = image_id["imageDigest"]
                if digest == NEW:
                    served = _index(_entry({"os": "linux", "architecture": "amd64"}),
                                    _entry({"os": "linux", "architecture": "arm64"}, other), ATTESTATION)
                elif digest in held:
                    served = _single()
                else:
                    return {"images": [], "failures": [{"failureCode": "ImageNotFound", "imageId": image_id}]}
                return {"images": [{"imageManifest": json.dumps(served)}], "failures": []}

        return wrong_platforms(load_env("dev"), {"inference": NEW}, lambda env, service: Ecr(),
                               lambda ecr, repository, digest: b"{}")

    (lost,) = judged({other})
    assert lost.absent == CHILD
    assert f"whose linux/amd64 manifest {CHILD} is not in the registry" in lost.reason()
    assert "CannotPullContainerError" in lost.reason() and "the whole index again" in lost.reason()
    assert judged({CHILD}) == [] and judged({CHILD, other}) == []


# -- the size an image takes on the task's storage ---------------------------------------------------------------

GIB = 1024 ** 3
AMD64_CHILD = "sha256:" + "a6" * 32
ARM64_CHILD = "sha256:" + "a8" * 32


def _image(*layers_gib: float) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                       "digest": "sha256:" + "c" * 64},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": int(gib * GIB),
                        "digest": "sha256:" + f"{n + 20:02d}" * 32} for n, gib in enumerate(layers_gib)]}


class SizedEcr:
    """BatchGetImage of ``manifests`` (digest -> manifest)."""

    def __init__(self, manifests: dict[str, dict[str, Any]]) -> None:
        self.manifests = manifests

    def batch_get_image(self, **request: Any) -> dict[str, Any]:
        (image_id,) = request["imageIds"]
        found = self.manifests.get(image_id["imageDigest"])
        if found is None:
            return {"images": [], "failures": [{"imageId": image_id, "failureCode": "ImageNotFound"}]}
        return {"images": [{"imageManifest": json.dumps(found)}], "failures": []}


def _no_blob(ecr: Any, repository: str, digest: str) -> bytes:
    raise AssertionError("every index entry here names its platform")


@pytest.mark.parametrize(("layers_gib", "storage", "refused"), [
    ((11,), None, True),  # 11 GiB pulled + at least ~11 GiB unpacked > Fargate's default 20 GiB
    ((9.9,), None, False),  # 19.8 GiB: fits
    ((11,), 30, False),  # the catalog's ephemeral_storage_gib makes room
    ((6, 6), 21, True),  # the layers add up
])
def test_an_image_is_measured_by_its_compressed_layers_twice_against_its_tasks_storage(
        layers_gib: tuple[float, ...], storage: int | None, refused: bool) -> None:
    """Fargate stores "the pulled, compressed, and the uncompressed container image" on the task's ephemeral storage
    (ECS developer guide, "Fargate task ephemeral storage for Amazon ECS"); a layer never unpacks to less than its
    compressed blob (bar the compressor's framing)."""
    from shared.images import oversized_images

    ecr = SizedEcr({NEW: _image(*layers_gib)})
    found = oversized_images(load_env("dev"), {"inference": NEW}, {"inference": storage}, lambda env, service: ecr,
                             _no_blob)
    assert [(o.service, o.storage_gib, o.configured) for o in found] == (
        [("inference", storage or 20, storage is not None)] if refused else [])


@pytest.mark.parametrize(("amd64_gib", "arm64_gib", "refused"), [(2, 15, False), (15, 2, True)])
def test_an_index_is_measured_by_its_linux_amd64_manifest(amd64_gib: float, arm64_gib: float, refused: bool) -> None:
    """ECR's imageSizeInBytes of an index is the largest manifest of any platform (botocore ecr model, ImageDetail):
    a task pulls the linux/amd64 one only, so that one is measured."""
    from shared.images import oversized_images

    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": ARM64_CHILD,
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": AMD64_CHILD,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": "sha256:" + "ee" * 32,
         "platform": {"os": "unknown", "architecture": "unknown"}}]}
    ecr = SizedEcr({NEW: index, AMD64_CHILD: _image(amd64_gib), ARM64_CHILD: _image(arm64_gib)})
    found = oversized_images(load_env("dev"), {"inference": NEW}, {}, lambda env, service: ecr, _no_blob)
    assert [o.compressed_bytes for o in found] == ([int(amd64_gib * GIB)] if refused else [])


def test_an_image_larger_than_fargate_s_largest_storage_is_told_to_shrink() -> None:
    from shared.images import OversizedImage

    reason = OversizedImage("inference", NEW, "uri", 101 * GIB, 200, True).reason("shared/catalog.yaml")
    assert "more than the task's 200 GiB (shared/catalog.yaml: services.inference.ephemeral_storage_gib)" in reason
    assert "make the image smaller (a Fargate task has at most 200 GiB" in reason and "to at least" not in reason


SOCI_INDEX = "sha256:" + "5c" * 32


def _soci_v2(image_gib: float, *, on_manifest: bool = True, on_descriptor: bool = True,
             index_entry: bool = True) -> dict[str, dict[str, Any]]:
    """What ``soci convert`` (SOCI index manifest v2) pushes: an image index holding the image manifest, annotated
    with its SOCI index's digest, and the SOCI index manifest itself (soci-snapshotter soci/soci_index.go)."""
    image = _image(image_gib)
    if on_manifest:
        image["annotations"] = {"com.amazon.soci.index-digest": SOCI_INDEX}
    entry: dict[str, Any] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2,
                             "digest": AMD64_CHILD, "platform": {"os": "linux", "architecture": "amd64"}}
    if on_descriptor:
        entry["annotations"] = {"com.amazon.soci.index-digest": SOCI_INDEX}
    soci = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": SOCI_INDEX,
            "artifactType": "application/vnd.amazon.soci.index.v2+json",
            "platform": {"os": "linux", "architecture": "amd64"},
            "annotations": {"com.amazon.soci.image-manifest-digest": AMD64_CHILD}}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [entry, *([soci] if index_entry else [])]}
    return {NEW: index, AMD64_CHILD: image}


@pytest.mark.parametrize(("on_manifest", "on_descriptor", "index_entry", "lazy"), [
    (True, True, True, True),  # soci convert's output
    (True, False, True, True),  # the annotation on the image manifest only
    (False, True, True, True),  # on its descriptor in the image index only
    (True, True, False, False),  # the SOCI index named is not in the image index: Fargate pulls the image whole
])
def test_an_image_with_a_soci_index_is_lazy_loaded_not_refused(
        on_manifest: bool, on_descriptor: bool, index_entry: bool, lazy: bool) -> None:
    """Fargate (Linux platform 1.4.0, x86_64, ECR) starts an image whose image index holds a SOCI index without
    pulling it whole first (AWS blog "Under the hood: Lazy Loading Container Images with Seekable OCI and AWS
    Fargate"; "Improving Amazon ECS deployment consistency with SOCI Index Manifest v2"): the compressed-plus-unpacked
    bound of a full pull is not what its tasks need, so the image is noted, not refused."""
    from shared.images import oversized_images

    ecr = SizedEcr(_soci_v2(15, on_manifest=on_manifest, on_descriptor=on_descriptor, index_entry=index_entry))
    (found,) = oversized_images(load_env("dev"), {"inference": NEW}, {}, lambda env, service: ecr, _no_blob)
    assert found.compressed_bytes == 15 * GIB  # the image's layers, not the SOCI index's zTOCs
    assert (found.soci_index, found.refused) == ((SOCI_INDEX, False) if lazy else ("", True))
    if lazy:
        reason = found.reason("shared/catalog.yaml")
        assert f"has a SOCI index ({SOCI_INDEX}): Fargate lazy-loads it" in reason


@pytest.mark.parametrize(("unnamed_config", "refused"), [("arm64", False), ("amd64", True)])
def test_an_index_entry_without_a_platform_is_measured_only_when_its_config_is_linux_amd64(
        unnamed_config: str, refused: bool) -> None:
    """An entry that names no platform is matched by its manifest's config, as containerd does (and the platform
    check): a 15 GiB arm64 build listed first is not what a linux/amd64 task pulls, the 2 GiB amd64 entry is."""
    from shared.images import oversized_images

    unnamed = _image(15)
    unnamed["config"]["digest"] = "sha256:" + "c7" * 32
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": ARM64_CHILD},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": AMD64_CHILD,
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    ecr = SizedEcr({NEW: index, ARM64_CHILD: unnamed, AMD64_CHILD: _image(2)})

    def config(ecr: Any, repository: str, digest: str) -> bytes:
        assert digest == "sha256:" + "c7" * 32
        return json.dumps({"os": "linux", "architecture": unnamed_config}).encode()

    found = oversized_images(load_env("dev"), {"inference": NEW}, {}, lambda env, service: ecr, config)
    assert [o.compressed_bytes for o in found] == ([15 * GIB] if refused else [])


@pytest.mark.parametrize(("compressed_gib", "storage", "configured", "told"), [
    (11, 20, False, "to at least 22 (21 to 200"),  # 21.99 GiB needed: 22 GiB holds it
    (99.8, 150, True, "to at least 200 (21 to 200"),  # 199.5 GiB needed: Fargate's largest storage holds it
    (100.2, 200, True, "make the image smaller (a Fargate task has at most 200 GiB"),  # 200.2 GiB: nothing holds it
])
def test_an_oversized_image_is_told_the_least_storage_that_holds_it(
        compressed_gib: float, storage: int, configured: bool, told: str) -> None:
    """The gate lets through what fits (needed <= storage), so the least storage to name is the needed GiB rounded
    up; 200 GiB, Fargate's largest, still holds an image that needs 199.5 GiB."""
    from shared.images import OversizedImage

    image = OversizedImage("inference", NEW, "uri", int(compressed_gib * GIB), storage, configured)
    assert f"services.inference.ephemeral_storage_gib {told}" in image.reason("shared/catalog.yaml") \
        if told.startswith("to") else told in image.reason("shared/catalog.yaml")
    if told.startswith("to at least"):  # what it names, the gate lets through
        least = int(told.split()[3])
        assert OversizedImage("inference", NEW, "uri", image.compressed_bytes, least, True).needed_bytes <= least * GIB


def test_a_layer_listed_twice_is_downloaded_once_and_unpacked_twice() -> None:
    """containerd's content store holds a blob once by its digest, while the snapshotter unpacks each position of
    the chain (its snapshot is keyed by the chain ID): a 6 GiB layer listed twice takes 6 GiB pulled and at least
    12 GiB unpacked, 18 GiB, within Fargate's 20 GiB (not 24 GiB, as if it were downloaded twice)."""
    from shared.images import oversized_images

    image = _image(6, 6)
    image["layers"][1]["digest"] = image["layers"][0]["digest"]
    ecr = SizedEcr({NEW: image})
    assert oversized_images(load_env("dev"), {"inference": NEW}, {}, lambda env, service: ecr, _no_blob) == []
    image["layers"].append(_image(1.5)["layers"][0] | {"digest": "sha256:" + "7e" * 32})  # 7.5 + 13.5: 21 GiB
    (found,) = oversized_images(load_env("dev"), {"inference": NEW}, {}, lambda env, service: ecr, _no_blob)
    assert (found.compressed_bytes, found.layer_bytes) == (int(7.5 * GIB), int(13.5 * GIB))
    assert "has 7.5 GiB of compressed layers (13.5 GiB as listed: some more than once)" in found.reason("c.yaml")
