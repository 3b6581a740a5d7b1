"""The ``awskms://`` secrets provider URL of ``state.secrets_provider``, read the way the Pulumi CLI reads it.

The CLI opens the key with gocloud.dev's ``secrets/awskms`` (pkg/secrets/cloud/manager.go ``OpenKeeper``): the key id
is the URL's host and path (``awskms://alias/name``, ``awskms://<key id>``, ``awskms:///arn:...``), ``region`` picks
the KMS endpoint (else the SDK's default region: ``AWS_REGION``, then the profile's), ``role`` makes every KMS call as
another role, ``profile`` with another profile's credentials, and ``context_<k>=<v>`` sets an encryption context
(gocloud aws/aws.go ``V2ConfigFromURLParams``, secrets/awskms/kms.go ``OpenKeeperURL``; an unknown parameter is an
error there). The env loader refuses a URL the deploy and read roles' grants (:mod:`shared.deploy_role`) could not
match, so a key that would fail each run with AccessDenied fails at load instead, naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SCHEME = "awskms://"

#: a KMS ARN (KMS developer guide, "Key identifiers"): a key's or an alias's
KMS_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
                     r"(?P<kind>key|alias)/(?P<name>\S+)$")

#: URL parameters that move the KMS calls off the credentials the roles grant the key to
CREDENTIAL_PARAMETERS = {
    "role": "makes every KMS call as that role (gocloud assumes it), which the deploy and read roles' grants do not "
            "cover; grant the key to those roles instead (nox -s roles names it)",
    "profile": "takes that AWS profile's credentials, which a CI runner does not have; name the env's profile in "
               "PLATFORM_AWS_PROFILE_<ENV> instead (the orchestrator passes it to pulumi)",
    "anonymous": "makes unsigned KMS calls, which KMS refuses",
}

#: the other parameters gocloud takes (aws/aws.go V2ConfigFromURLParams, and ``context_<k>`` of secrets/awskms); any
#: other one, a misspelt ``regoin`` too, fails every ``pulumi`` command with "unknown query parameter"
KNOWN_PARAMETERS = frozenset({"region", "endpoint", "hostname_immutable", "dualstack", "fips", "rate_limiter_capacity",
                              "awssdk", "request_checksum_calculation", "response_checksum_validation"})


@dataclass(frozen=True)
class KmsKey:
    """The key an ``awskms://`` URL names: ``key`` as given (``alias/<name>``, a key id, a key or alias ARN) and the
    URL's ``region`` parameter, if any."""

    key: str
    region: str | None

    @property
    def arn(self) -> re.Match[str] | None:
        return KMS_ARN.match(self.key)

    @property
    def alias(self) -> str | None:
        """``alias/<name>`` when the URL names the key by an alias (its name or its ARN), else None."""
        arn = self.arn
        if arn:
            return f"alias/{arn['name']}" if arn["kind"] == "alias" else None
        return self.key if self.key.startswith("alias/") else None

    def key_region(self, env_region: str) -> str:
        """The region whose KMS the CLI asks: the URL's ``region``, else an ARN's own, else the env's (the orchestrator
        sets ``AWS_REGION`` to it for its ``pulumi`` runs, :func:`cli_region`)."""
        arn = self.arn
        return self.region or (arn["region"] if arn else env_region)

    def region_problem(self, env_region: str) -> str | None:
        """Why the URL must say ``region=``: an ARN of another region than the env's without it would be asked of the
        env's KMS (the region the CLI's clients take, :func:`cli_region`), which finds no such key."""
        arn = self.arn
        if self.region is None and arn is not None and arn["region"] != env_region:
            return (f"the key ARN is in {arn['region']}, not the env's region {env_region}: add "
                    f"?region={arn['region']} (gocloud then asks that region's KMS for the key, and only for it)")
        return None

    def cli_region(self, env_region: str) -> str | None:
        """``AWS_REGION`` for a ``pulumi`` subprocess: without a ``region`` parameter the CLI's KMS client takes the
        SDK's default region (a laptop profile's may be another one, where the alias names no key or another key), so
        the env's, where the roles grant the key (:func:`region_problem` refuses an ARN elsewhere: ``AWS_REGION`` also
        steers the CLI's S3 backend client, whose bucket is the env's); None when the URL says its region."""
        return None if self.region else env_region


def kms_key(secrets_provider: str | None) -> KmsKey | None:
    """The key of ``state.secrets_provider`` when it is an ``awskms://`` URL (:func:`parse_kms_url`), else None."""
    return parse_kms_url(secrets_provider) if secrets_provider and secrets_provider.startswith(SCHEME) else None


def parse_kms_url(url: str) -> KmsKey:
    """The key of an ``awskms://`` URL; ValueError naming what is wrong with it."""
    parts = urlsplit(url)
    key = unquote(parts.netloc + parts.path).lstrip("/")  # awskms://alias/x, awskms://<id>, awskms:///arn:...
    if not key:
        raise ValueError(f"{url!r} names no KMS key (awskms://alias/<name>?region=<region>, a key id or a key ARN)")
    if ":" in parts.netloc:
        # Go's url.Parse refuses the ARN's colons in the host ("invalid port"); gocloud's docs ask for three slashes
        raise ValueError(f"{url!r}: a key ARN goes after three slashes (awskms:///arn:...), where the CLI can parse it")
    query = parse_qs(parts.query, keep_blank_values=True)
    for name, why in CREDENTIAL_PARAMETERS.items():
        if name in query:
            raise ValueError(f"{url!r}: its {name}= parameter {why}")
    unknown = sorted(name for name in query if name not in KNOWN_PARAMETERS and not name.startswith("context_"))
    if unknown:
        raise ValueError(f"{url!r}: gocloud takes no parameter {', '.join(unknown)} (every pulumi command would stop "
                         f"on it); it takes {', '.join(sorted(KNOWN_PARAMETERS))} and context_<key>")
    regions = query.get("region", [])
    if len(regions) > 1 or (regions and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", regions[0])):
        raise ValueError(f"{url!r}: region= must be one AWS region name, found {regions!r}")
    region = regions[0] if regions else None
    if key.startswith("arn:"):
        arn = KMS_ARN.match(key)
        if arn is None:
            raise ValueError(f"{url!r}: {key!r} is no KMS key or alias ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        if region and region != arn["region"]:
            # a KMS key is used only from its own region's endpoint (KMS developer guide, "Key identifiers")
            raise ValueError(f"{url!r}: region={region} is not the region of the key ARN ({arn['region']}); KMS "
                             f"finds a key only through its own region's endpoint")
    return KmsKey(key, region)
