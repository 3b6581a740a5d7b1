"""The ``awskms://`` secrets provider URL, read as the Pulumi CLI (gocloud.dev secrets/awskms) reads it: which key,
which region's KMS, and which URLs the env loader refuses because the roles' key grants could not match them."""

from __future__ import annotations

import pytest

from shared.kms_url import parse_kms_url

ALIAS_ARN = "arn:aws:kms:eu-central-1:444444444444:alias/pulumi-state"
KEY_ARN = "arn:aws:kms:eu-central-1:444444444444:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(("url", "key", "alias", "key_region", "cli_region"), [
    ("awskms://alias/pulumi-state?region=eu-west-1", "alias/pulumi-state", "alias/pulumi-state", "eu-west-1", None),
    # no region=: the CLI would ask the SDK's default region's KMS; the orchestrator sets the env's, which the roles
    # are granted in
    ("awskms://alias/pulumi-state", "alias/pulumi-state", "alias/pulumi-state", "us-west-2", "us-west-2"),
    ("awskms://1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1",
     "1234abcd-12ab-34cd-56ef-1234567890ab", None, "eu-west-1", None),
    # the env's region all the same: AWS_REGION steers the CLI's S3 backend client too (the ARN of another region
    # needs region=, below)
    (f"awskms:///{KEY_ARN}", KEY_ARN, None, "eu-central-1", "us-west-2"),
    # an alias ARN names the alias: the grant matches the key by kms:ResourceAliases, in the ARN's region
    (f"awskms:///{ALIAS_ARN}?region=eu-central-1", ALIAS_ARN, "alias/pulumi-state", "eu-central-1", None),
    # context_<k>=<v> is an encryption context gocloud sends; it changes no grant
    ("awskms://alias/pulumi-state?region=eu-west-1&context_layer=network", "alias/pulumi-state",
     "alias/pulumi-state", "eu-west-1", None),
])
def test_the_key_and_the_region_whose_kms_the_cli_asks(url: str, key: str, alias: str | None, key_region: str,
                                                       cli_region: str | None) -> None:
    parsed = parse_kms_url(url)
    assert (parsed.key, parsed.alias) == (key, alias)
    assert parsed.key_region("us-west-2") == key_region
    assert parsed.cli_region("us-west-2") == cli_region


@pytest.mark.parametrize(("url", "reason"), [
    ("awskms://?region=eu-west-1", "names no KMS key"),
    ("awskms://alias/x?region=eu-west-1&role=arn:aws:iam::111111111111:role/kms", "role= parameter"),
    ("awskms://alias/x?profile=laptop", "profile= parameter"),
    ("awskms://alias/x?region=eu-west-1&region=us-east-1", "one AWS region name"),
    ("awskms://alias/x?region=Ireland", "one AWS region name"),
    (f"awskms:///{KEY_ARN}?region=eu-west-1", "is not the region of the key ARN (eu-central-1)"),
    ("awskms:///arn:aws:iam::444444444444:role/x", "is no KMS key or alias ARN"),
    ("awskms://alias/x?regoin=eu-west-1", "gocloud takes no parameter regoin"),
    ("awskms://alias/x?anonymous=true", "unsigned KMS calls"),
    # Go's url.Parse refuses the colons of an ARN in the host part
    (f"awskms://{KEY_ARN}", "after three slashes"),
])
def test_a_url_the_roles_grants_could_not_match_is_refused_naming_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_kms_url(url)
    assert reason in str(error.value) and url in str(error.value)


def test_a_key_arn_of_another_region_must_say_its_region() -> None:
    """Without region= the CLI asks the region its clients take (the env's, which the orchestrator gives it), where
    another region's key is not found."""
    assert "add ?region=eu-central-1" in (parse_kms_url(f"awskms:///{KEY_ARN}").region_problem("eu-west-1") or "")
    assert parse_kms_url(f"awskms:///{KEY_ARN}?region=eu-central-1").region_problem("eu-west-1") is None
    assert parse_kms_url(f"awskms:///{KEY_ARN}").region_problem("eu-central-1") is None
    assert parse_kms_url("awskms://alias/pulumi-state").region_problem("eu-west-1") is None
