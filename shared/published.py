"""Published contracts: what a pull request's preview of compute reads of the broker and messaging layers.

The read-only role, which a ``pull_request`` job of any branch assumes, may not read the broker's and messaging's
states (they hold the broker admin password: :data:`shared.dag.SECRET_STATE_LAYERS`), and a StackReference reads the
referenced stack's whole state. So each of those layers also writes, on every ``up``, the part of its contract that
compute reads (:data:`PUBLISHED_FIELDS`: no secret output, nothing derived from one) to an SSM parameter of the env's
account and region (:func:`parameter_name`), which works whatever the state backend (DIY S3 or Pulumi Cloud). A
preview run with :data:`PUBLISHED_VARIABLE` set (the pull-request workflow sets it; never guessed) builds those
upstreams from the parameters (:class:`PublishedUpstream`), parsed into the same contract types, and the other
upstreams from their StackReferences as always.

The parameters are ``String`` (no KMS key: the data is no secret) of the Standard tier: free, values up to 4 KB
(botocore ssm ``PutParameterRequest.Value``/``Tier``: "Standard parameters have a value limit of 4 KB"; an Advanced
one holds 8 KB, costs per parameter-month, and cannot go back to Standard without being deleted). A contract larger
than one value (messaging's grows by about 300 bytes per service, and an env may hold 200 services) is split into
parts (:func:`encode_parts`), one parameter each, as many as the catalog's size asks for (:func:`part_count`: known
when the program runs, as a resource count must be); each part names its index, the count and the whole document's
digest, so a reader never joins the parts of two different ``up`` runs. Values are written through
``insecure_value`` (pulumi_aws ``ssm.Parameter``: never marked sensitive), so the preview shows them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pydantic import TypeAdapter, ValidationError

from shared.contracts import CONTRACTS, MessagingContract, StackContractError, Upstream, check_reads
from shared.dag import PUBLISHED_LAYERS

#: layer -> the contract fields it publishes: those compute reads (broker: its tasks' AMQPS egress rule and the
#: alarm topic; messaging: its contract, which compute validates as one model, less the subnets its function uses
#: and the grants and users it keeps, which only the orchestrator reads, from the state). None is secret (a test
#: walks the synthesized value against every secret of the layer's state).
#: layer -> optional fields of the contract a whole read (``resolved``) of its published contract reads as None, as
#: an older stack's absent output: what no other layer uses
UNPUBLISHED_OPTIONAL: dict[str, tuple[str, ...]] = {
    "messaging": ("subnet_ids", "publish_grants", "credentials_kept_epochs")}
PUBLISHED_FIELDS: dict[str, tuple[str, ...]] = {
    "broker": ("broker_security_group_id", "alarm_topic_arn"),
    "messaging": tuple(name for name in MessagingContract.model_fields
                       if name not in UNPUBLISHED_OPTIONAL["messaging"]),
}

assert set(PUBLISHED_FIELDS) == PUBLISHED_LAYERS, "shared.dag.PUBLISHED_LAYERS names the layers that publish"

#: Set to ``1`` by the pull-request workflow's preview step: upstreams of :data:`PUBLISHED_FIELDS` are read from their
#: published parameters, not their states. Empty or unset: StackReferences, as every other run.
PUBLISHED_VARIABLE = "PLATFORM_PUBLISHED_UPSTREAMS"

#: botocore ssm PutParameterRequest.Value: "Standard parameters have a value limit of 4 KB"
STANDARD_VALUE_LIMIT = 4096

ParameterReader = Callable[[str, str], "str | None"]
"""(parameter name, region) -> its value, None when the parameter does not exist."""


#: catalog services per part of messaging's published contract: at about 300 bytes each at most (a 32-character
#: service's queue, secret ARN and version id), ten and the common fields stay well within one Standard value
SERVICES_PER_PART = 10


def parameter_name(env_name: str, layer: str, part: int = 0) -> str:
    """``/platform/<env>/contracts/<layer>/part-<n>``: the deploy role writes, the read-only role reads, only these."""
    return f"{parameter_prefix(env_name, layer)}{part}"


def parameter_prefix(env_name: str, layer: str) -> str:
    return f"/platform/{env_name}/contracts/{layer}/part-"


def parameter_arn(partition: str, region: str, account: str, env_name: str, layer: str) -> str:
    """The ARN pattern of every part of ``layer``'s published contract in ``env_name``."""
    # a name that starts with "/" loses it in the ARN (SSM user guide, "Working with parameter hierarchies")
    return f"arn:{partition}:ssm:{region}:{account}:parameter{parameter_prefix(env_name, layer)}*"


def part_count(layer: str, services: int) -> int:
    """How many parameters ``layer``'s published contract takes in a catalog of ``services`` services."""
    return 1 if layer == "broker" else max(1, -(-services // SERVICES_PER_PART))


def published_mode(environ: Mapping[str, str], *, preview: bool) -> bool:
    """Whether :data:`PUBLISHED_VARIABLE` asks for published upstreams; any value but ``1`` or empty is refused, and
    ``1`` outside a preview (``preview``: the run is Pulumi's dry run): an ``up`` deploys from the upstreams' states,
    never from parameters an interrupted ``up`` of broker or messaging may have rewritten or a hand may have changed."""
    from shared.errors import ConfigError

    value = environ.get(PUBLISHED_VARIABLE, "").strip()
    if value not in ("", "1"):
        raise ConfigError(PUBLISHED_VARIABLE, "(environment variable)",
                          f"is {value!r}: set it to 1 (a pull request's preview) or leave it unset")
    if value == "1" and not preview:
        raise ConfigError(PUBLISHED_VARIABLE, "(environment variable)",
                          "is 1 in an up (or destroy, refresh): published contracts are for only a preview (a pull "
                          "request's, under the read-only role); unset it, an up reads its upstreams' states")
    return value == "1"


def published_value(layer: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields ``layer`` publishes of its contract ``values`` (outputs, resolved into the document)."""
    return {name: values[name] for name in PUBLISHED_FIELDS[layer]}


def _digest(text: str) -> str:
    """What each part names of the whole document: the first 16 hex digits of its text's SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_parts(document: Mapping[str, Any], count: int) -> list[str]:
    """Compact, key-sorted JSON in ``count`` parts, each ``<index>/<count>/<digest>:<text>`` (:func:`_digest`);
    refused where a part is above the Standard tier's limit (it would fail the ``up`` in AWS)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))  # ASCII: json escapes the rest
    digest = _digest(text)
    size = max(1, -(-len(text) // count))
    parts = [f"{index}/{count}/{digest}:{text[index * size:(index + 1) * size]}" for index in range(count)]
    # botocore ssm PutParameterRequest.Value: a value may not include "{{}}" (compact JSON holds "{{" only in a string)
    braced = [index for index, part in enumerate(parts) if "{{" in part]
    if braced:
        raise StackContractError(f"part {braced[0]} of the published contract holds '{{{{', which SSM refuses in a "
                                 "value (botocore ssm PutParameterRequest.Value)")
    largest = max(len(part.encode()) for part in parts)
    if largest > STANDARD_VALUE_LIMIT:
        raise StackContractError(f"a part of the published contract is {largest} bytes, above the SSM Standard "
                                 f"tier's {STANDARD_VALUE_LIMIT} (botocore ssm PutParameterRequest.Value): "
                                 f"{len(text)} bytes in {count} parts")
    return parts


def decode_parts(values: list[str | None], where: str) -> str:
    """The document text of the parts ``values`` (in index order; None: a part that does not exist), checked whole."""
    headers: list[tuple[int, int, str]] = []
    texts: list[str] = []
    for index, value in enumerate(values):
        header, sep, text = (value or "").partition(":")
        fields = header.split("/")
        if value is None or not sep or len(fields) != 3 or not all(fields) or not fields[0].isdigit() \
                or not fields[1].isdigit():
            # missing: part 0 of a grown catalog's up names a part the same up has not created yet
            raise StackContractError(f"{where}: part {index} is {'missing' if value is None else 'malformed'}: an up "
                                     "of the layer may be under way, or was interrupted; re-run it")
        headers.append((int(fields[0]), int(fields[1]), fields[2]))
        texts.append(text)
    count, digest = headers[0][1], headers[0][2]
    if headers != [(index, count, digest) for index in range(count)] or len(values) != count:
        raise StackContractError(f"{where}: its parts are not one publication ({headers}): an up of the layer may be "
                                 "under way, or was interrupted; re-run it")
    text = "".join(texts)
    if _digest(text) != digest:
        raise StackContractError(f"{where}: its parts do not add up to the document they name ({digest})")
    return text


def publish(layer: str, env_name: str, values: Mapping[str, Any], opts: pulumi.ResourceOptions,
            services: int) -> list[Any]:
    """The SSM parameters holding ``layer``'s published contract (none for a layer that publishes nothing), as many
    as :func:`part_count` asks for a catalog of ``services`` services."""
    import pulumi_aws as aws

    if layer not in PUBLISHED_FIELDS:
        return []
    count = part_count(layer, services)

    def encoded(document: dict[str, Any]) -> list[str]:
        return encode_parts(document, count)

    def part(index: int) -> pulumi.Output[str]:
        return parts.apply(lambda texts: texts[index])

    parts: pulumi.Output[list[str]] = pulumi.Output.all(**published_value(layer, values)).apply(encoded)
    return [aws.ssm.Parameter(
        f"{layer}-published-contract-part-{index}",
        name=parameter_name(env_name, layer, index),
        type="String",
        tier="Standard",
        insecure_value=part(index),
        description=f"Part {index + 1} of {count} of the non-secret part of the {layer} layer's contract, for pull "
                    "requests' previews of compute",
        opts=opts,
    ) for index in range(count)]


def read_published(layer: str, env_name: str, region: str, read: ParameterReader) -> str | None:
    """The document text of ``layer``'s published contract: None when its first part does not exist."""
    first = read(parameter_name(env_name, layer), region)
    if first is None:
        return None
    header = first.partition(":")[0].split("/")
    count = int(header[1]) if len(header) == 3 and header[1].isdigit() and int(header[1]) > 0 else 1
    values = [first, *(read(parameter_name(env_name, layer, index), region) for index in range(1, count))]
    return decode_parts(values, f"the published contract {parameter_prefix(env_name, layer)}<n>")


def read_parameter(name: str, region: str) -> str | None:
    """The real :data:`ParameterReader`: GetParameter with the run's credentials (the default chain)."""
    import boto3

    client = boto3.session.Session(region_name=region).client("ssm")
    try:
        return str(client.get_parameter(Name=name)["Parameter"]["Value"])
    except client.exceptions.ParameterNotFound:
        return None


class PublishedUpstream(Upstream):
    """An upstream read from its published contract (:func:`parameter_name`), not its stack: the fields it does not
    publish are refused when read, at synth time; the others are the published values, parsed by the same contract
    types (``field``, ``resolved``) as a StackReference's."""

    def __init__(self, consumer: str, layer: str, env_name: str, region: str, read: ParameterReader) -> None:
        check_reads(consumer, layer)
        if layer not in PUBLISHED_FIELDS:
            raise StackContractError(f"layer {consumer!r} reads {layer!r} from a published contract, but {layer} "
                                     f"publishes none (published: {', '.join(PUBLISHED_FIELDS)})")
        self.consumer, self.layer, self.env = consumer, layer, env_name
        self.model = CONTRACTS[layer]
        self.parameter = parameter_name(env_name, layer)
        self.stack = f"SSM parameter {self.parameter}"
        text = read_published(layer, env_name, region, read)
        if text is None:
            # the parameter and the command first: the orchestrator's table keeps the first 300 characters
            raise StackContractError(
                f"SSM parameter {self.parameter} ({region}) does not exist: run `nox -s up -- {env_name} --layers "
                f"{layer}` once (the {layer} layer publishes it on every up), or preview {consumer} with the deploy "
                f"role (`nox -s preview -- {env_name}`). A pull request's preview of {consumer} reads {layer}'s "
                "published contract, since the read-only role may not read its state")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise StackContractError(f"SSM parameter {self.parameter} is not JSON ({error}): re-run the {layer} "
                                     "layer") from None
        published = PUBLISHED_FIELDS[layer]
        if not isinstance(document, dict) or sorted(document) != sorted(published):
            keys = sorted(document) if isinstance(document, dict) else type(document).__name__
            raise StackContractError(f"SSM parameter {self.parameter} holds {keys}, not {layer}'s published fields "
                                     f"{sorted(published)}: run `nox -s up -- {env_name} --layers {layer}`")
        for name in published:
            adapter: TypeAdapter[Any] = TypeAdapter(self.model.model_fields[name].annotation)
            try:
                adapter.validate_python(document[name])
            except ValidationError as error:
                raise StackContractError(f"SSM parameter {self.parameter}: {name} breaks {self.model.__name__}: "
                                         f"{error.errors()[0]['msg']} (re-run the {layer} layer)") from None
        self.values: dict[str, Any] = document

    def __getitem__(self, name: str) -> pulumi.Output[Any]:
        self.check_declared(name)
        if name in UNPUBLISHED_OPTIONAL.get(self.layer, ()):
            return pulumi.Output.from_input(None)
        if name not in self.values:
            raise StackContractError(
                f"layer {self.consumer!r} reads {self.layer}.{name}, which the {self.layer} layer does not publish "
                f"(shared.published.PUBLISHED_FIELDS: {', '.join(PUBLISHED_FIELDS[self.layer])}); a pull request's "
                f"preview reads only those")
        return pulumi.Output.from_input(self.values[name])


def read_upstreams_published(consumer: str, org: str, env_name: str, region: str,
                             read: ParameterReader = read_parameter) -> dict[str, Upstream]:
    """Every upstream ``consumer`` reads (the DAG's), each layer that publishes its contract from its parameter and
    never through a StackReference (which would read its state), the others through their StackReferences."""
    from shared.dag import LAYER_UPSTREAMS

    return {layer: PublishedUpstream(consumer, layer, env_name, region, read) if layer in PUBLISHED_FIELDS
            else Upstream(consumer, layer, org, env_name) for layer in LAYER_UPSTREAMS[consumer]}
