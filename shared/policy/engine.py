"""The offline policy engine: synth JSON in, the packs' own findings out, over the Analyzer protocol.

What the ``pulumi`` CLI does with ``--policy-pack policies/<pack>``, without the CLI:

* each pack is started the way the CLI's ``pulumi-analyzer-policy-python`` shim starts it --
  ``python -u -m pulumi.policy <engine-address> .`` with the pack directory as working directory --
  and prints the port of its gRPC server on stdout (``fork=True``, the one-shot command: forked from
  this process after the imports it shares with the packs, then the same ``__main__``:
  :mod:`shared.policy.packfork`);
* the engine calls ``Handshake`` (tolerating UNIMPLEMENTED, as the CLI does), ``GetAnalyzerInfo``,
  ``Configure`` (every rule's enforcement level for the env, plus the secretness of inputs for
  ``no-plaintext-secrets``), ``ConfigureStack``, then ``Analyze`` for every resource (type, name,
  URN, inputs as properties, options, provider) and ``AnalyzeStack`` once per stack (all resources
  with parent and dependencies) -- inputs to both, unless a stage of a real run is asked for
  (:mod:`shared.policy.stages`: ``AnalyzeStack`` gets outputs, a first preview unknowns). The packs of
  ``policies/`` also serve ``AnalyzeBatch``
  (:mod:`shared.policy.fast_analyzer`): the same ``Analyze`` run over many resources per call, which
  the engine prefers; a pack without it gets one ``Analyze`` call per resource;
* the diagnostics the real ``pulumi_policy`` code returns become :class:`Finding` objects, the env's
  suppressions are applied, and the processes stop at the end.

One process per pack for a whole run, whatever the number of envs and stacks (the ``Configure`` call
is repeated per stack); requests for a stack are serialized once and sent to all packs concurrently,
so the three packs evaluate in parallel.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, plugin_pb2

from shared import REPO_ROOT
from shared.errors import ConfigError, PlatformError
from shared.jsonwalk import any_string
from shared.patch_guard import OFFLINE_ENGINE_ENV
from shared.policy.enforcement import Enforcement, enforcement_for
from shared.policy.fast_analyzer import BATCH_FAILED, BATCH_METHOD, decode_responses, encode_requests
from shared.policy.findings import STACK_TYPE, Finding, NotApplicable, PolicyResult
from shared.policy.packfork import ForkedPack, can_fork, note_grpc_use
from shared.policy.packs import pack_name
from shared.policy.stages import stage_properties
from shared.policy_catalog import PACKS, load_rules
from shared.policy_support import CREDENTIAL_INPUTS, PLATFORM_LAYER_TAG

POLICIES_DIR = REPO_ROOT / "policies"
# Placeholder for the engine address the CLI passes; ``pulumi.policy`` parses but never dials it.
ENGINE_ADDRESS = "127.0.0.1:0"
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 300.0
PACK_NICENESS = 19  # the pack processes' scheduling priority (lowest): see PackProcess.spawn
IN_FLIGHT = 32  # Analyze requests in flight per pack (the pack serves 4 at a time)
BATCH_SIZE = 64  # resources per AnalyzeBatch call
BATCHES_IN_FLIGHT = 2  # per pack: one being evaluated, one queued behind it
SECRETS_RULE = "no-plaintext-secrets"
# What shared.synth puts in place of a `secure:` stack config value (ciphertext cannot be decrypted
# offline); such a value came from `pulumi config set --secret`, never from the program text.
SECURE_CONFIG_PLACEHOLDER = "synth-placeholder-secret"

# Property-value signatures of the Pulumi wire format (pulumi_policy.deserialize).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_CANT_RUN_PREFIX = "can't run policy '"

_LEVEL_TO_PROTO = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
}
_PROTO_TO_LEVEL = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "mandatory",  # what pulumi_policy downgrades a failed remediation to
    analyzer_pb2.DISABLED: "disabled",
}
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 400 * 1024 * 1024),
    ("grpc.max_send_message_length", 400 * 1024 * 1024),
]


class PolicyEngineError(PlatformError):
    """A pack failed to start or a rule raised: a bug in a rule or a broken install, not a finding."""

    exit_code = 1


# -- synth JSON -> Analyzer protocol -----------------------------------------------------------------


def _document_label(document: dict[str, Any]) -> str:
    return f"<synth {document.get('project')}/{document.get('stack')}>"


def validate_document(document: Any, label: str | None = None) -> None:
    """ConfigError unless ``document`` has the synth-JSON shape (README, File formats)."""
    label = label or (_document_label(document) if isinstance(document, dict) else "<synth document>")
    if not isinstance(document, dict):
        raise ConfigError(label, "(top level)", "a synth document must be a JSON object")
    resources = document.get("resources")
    if not isinstance(resources, list):
        raise ConfigError(label, "resources", "must be a list of resources")
    seen: dict[str, int] = {}
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            raise ConfigError(label, f"resources.{index}", "must be an object")
        for key in ("urn", "type", "name"):
            if not isinstance(resource.get(key), str) or not resource[key]:
                raise ConfigError(label, f"resources.{index}.{key}", "is required (a non-empty string)")
        if resource["urn"] in seen:  # the engine refuses a second registration of a URN ("Duplicate resource URN")
            first = seen[resource["urn"]]
            raise ConfigError(label, f"resources.{index}.urn",
                              f"{resource['urn']} is also resources.{first}'s: a URN names one resource")
        seen[resource["urn"]] = index
        for key in ("inputs",):
            if resource.get(key) is not None and not isinstance(resource[key], dict):
                raise ConfigError(label, f"resources.{index}.{key}", "must be an object")
        for key in ("dependencies", "secret_inputs"):
            if resource.get(key) is not None and not isinstance(resource[key], list):
                raise ConfigError(label, f"resources.{index}.{key}", "must be a list")


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _properties(resource: dict[str, Any], values: dict[str, Any] | None = None,
                outputs: bool = False) -> struct_pb2.Struct:
    """Inputs (or the ``values`` a stage gives) as the CLI sends them: secrets wrapped in the secret signature
    (``KeepSecrets``); a secret input stays secret in the outputs, and so do the resource's additional secret
    outputs."""
    inputs = (resource.get("inputs") or {}) if values is None else values
    secret = set(resource.get("secret_inputs") or ())
    if outputs:
        secret |= set(resource.get("additional_secret_outputs") or ())
    if secret:
        inputs = {key: ({_SIG_KEY: _SECRET_SIG, "value": value} if key in secret else value)
                  for key, value in inputs.items()}
    return _struct(inputs)


def _lookup(by_urn: dict[str, dict[str, Any]], reference: str | None) -> dict[str, Any] | None:
    """A resource by URN; provider references may be ``<urn>::<id>``."""
    if not reference:
        return None
    found = by_urn.get(reference)
    if found is None and "::" in reference:
        found = by_urn.get(reference.rsplit("::", 1)[0])
    return found


def _provider(by_urn: dict[str, dict[str, Any]],
              resource: dict[str, Any]) -> analyzer_pb2.AnalyzerProviderResource | None:
    provider = _lookup(by_urn, resource.get("provider"))
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider["type"], urn=provider["urn"], name=provider["name"], properties=_properties(provider))


def _options(resource: dict[str, Any]) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(resource.get("protect")),
        parent=resource.get("parent") or "",
        ignoreChanges=resource.get("ignore_changes") or (),
        aliases=resource.get("aliases") or (),
        additionalSecretOutputs=resource.get("additional_secret_outputs") or (),
    )


def stack_urn(document: dict[str, Any]) -> str:
    for resource in document.get("resources") or ():
        if resource.get("type") == STACK_TYPE:
            return resource["urn"]
    project, stack = document.get("project"), document.get("stack")
    return f"urn:pulumi:{stack}::{project}::{STACK_TYPE}::{project}-{stack}"


def secret_inputs(documents: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """``{urn: [input names that were Pulumi secrets]}`` -- the ``secretInputs`` config of no-plaintext-secrets."""
    result: dict[str, list[str]] = {}
    for document in documents:
        for resource in document.get("resources") or ():
            names = resource.get("secret_inputs") or []
            result[resource["urn"]] = sorted(str(name) for name in names)
    return result


def literal_inputs(documents: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """``{urn: [credential inputs written in clear]}`` -- the ``literalInputs`` config of no-plaintext-secrets.

    A credential input (``CREDENTIAL_INPUTS``) is "in clear" when its value is neither a ``secure:``
    stack config value (the synth's placeholder) nor derived from another resource's output (a
    RandomPassword, a SecretVersion...). Derivation is read from ``property_dependencies`` when the
    synth records it, else from the resource's ``dependencies`` (any dependency: assumed derived, so
    this never reports a derived value as written in clear).
    """
    result: dict[str, list[str]] = {}
    for document in documents:
        for resource in document.get("resources") or ():
            names = CREDENTIAL_INPUTS.get(resource.get("type", ""))
            if not names:
                continue
            inputs = resource.get("inputs") or {}
            property_dependencies = resource.get("property_dependencies")
            literal = []
            for name in names:
                if name not in inputs or any_string(inputs[name], lambda text: SECURE_CONFIG_PLACEHOLDER in text):
                    continue
                if name in (resource.get("lookup_inputs") or ()):  # read from a data source (--program runs)
                    continue
                if isinstance(property_dependencies, dict):
                    derived = bool(property_dependencies.get(name))
                else:
                    derived = bool(resource.get("dependencies"))
                if not derived:
                    literal.append(name)
            if literal:
                result[resource["urn"]] = literal
    return result


def pack_config(enforcement: Enforcement, pack: str, documents: Sequence[dict[str, Any]] = (), *,
                suppressions: bool = False) -> dict[str, Any]:
    """The policy config of ``pack`` for these settings, in ``--policy-pack-config`` JSON form.

    ``{rule: {"enforcementLevel": level, ...properties}}`` -- the same thing the offline engine sends
    with ``Configure``, so a real ``pulumi preview --policy-pack policies/<pack>
    --policy-pack-config <file>`` runs every rule at the env's level. ``documents`` (synth JSON of
    the stack) provide ``secretInputs`` for no-plaintext-secrets. ``suppressions`` (the CLI's files): each rule
    the env suppresses also gets the patterns (``shared.policy.packs.SUPPRESSED_KEY``), which the packs honour
    under the CLI; the offline engine applies them to its findings instead, so that they stay listed.
    """
    from shared.policy.packs import SUPPRESSED_KEY

    config: dict[str, Any] = {}
    for rule_id, rule in load_rules().items():
        if rule.pack != pack:
            continue
        entry: dict[str, Any] = {"enforcementLevel": enforcement.levels[rule_id]}
        entry.update(rule.parameters_for(enforcement.baseline))
        if rule_id == SECRETS_RULE and documents:
            entry["secretInputs"] = secret_inputs(documents)
            entry["literalInputs"] = literal_inputs(documents)
        patterns = [s.resource for s in enforcement.suppressions if s.rule == rule_id] if suppressions else []
        if patterns:
            entry[SUPPRESSED_KEY] = patterns
        config[rule_id] = entry
    return config


def _configure_request(config: dict[str, Any]) -> bytes:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for rule_id, entry in config.items():
        properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        policy_config = request.policyConfig[rule_id]
        policy_config.enforcementLevel = _LEVEL_TO_PROTO[entry["enforcementLevel"]]
        if properties:
            policy_config.properties.update(properties)
    return request.SerializeToString(deterministic=True)


@dataclass
class _PreparedStack:
    """One synth document turned into serialized requests, shared by every pack."""

    document: dict[str, Any]
    enforcement: Enforcement
    analyze: list[tuple[str, str, bytes]]  # (urn, type, AnalyzeRequest bytes)
    analyze_stack: bytes
    stack_configure: bytes
    types: dict[str, str]
    stack_urn: str
    locations: dict[str, tuple[str, int]]


def _prepare(document: dict[str, Any], enforcement: Enforcement, stage: str = "offline") -> _PreparedStack:
    validate_document(document)
    resources: list[dict[str, Any]] = document["resources"]
    by_urn = {resource["urn"]: resource for resource in resources}
    analyze: list[tuple[str, str, bytes]] = []
    stack_resources: list[analyzer_pb2.AnalyzerResource] = []
    # offline (nox -s policy, the hot path): the inputs, converted once for both calls
    staged = stage_properties(document, stage) if stage != "offline" else None
    for resource in resources:
        urn = resource["urn"]
        options = _options(resource)
        provider = _provider(by_urn, resource)
        if staged is None:
            analyzed = stacked = _properties(resource)
        else:
            analyzed = _properties(resource, staged[0][urn])
            stacked = _properties(resource, staged[1][urn], outputs=True)
        request = analyzer_pb2.AnalyzeRequest(
            type=resource["type"], urn=urn, name=resource["name"], properties=analyzed, options=options,
            provider=provider)
        analyze.append((urn, resource["type"], request.SerializeToString()))
        stack_resources.append(analyzer_pb2.AnalyzerResource(
            type=resource["type"], urn=urn, name=resource["name"], properties=stacked, options=options,
            provider=provider,
            parent=resource.get("parent") or "",
            dependencies=[d for d in resource.get("dependencies") or () if isinstance(d, str)],
            propertyDependencies={
                key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                for key, urns in (resource.get("property_dependencies") or {}).items() if urns
            },
        ))
    # A platform layer says so in a stack tag: rules may then name the platform's own settings in
    # their fix hints (policy_support.platform_hint); for any other program they speak of its code.
    # ``stack_tags``: a document may carry the tags a real stack sends (the CLI's pulumi:project...)
    tags = {str(key): str(value) for key, value in (document.get("stack_tags") or {}).items()}
    if document.get("layer"):
        tags[PLATFORM_LAYER_TAG] = str(document["layer"])
    stack_configure = analyzer_pb2.AnalyzerStackConfigureRequest(
        stack=str(document.get("stack") or ""), project=str(document.get("project") or ""),
        organization=str(document.get("organization") or "organization"), dry_run=True, tags=tags,
    ).SerializeToString()
    return _PreparedStack(
        document=document, enforcement=enforcement, analyze=analyze,
        analyze_stack=analyzer_pb2.AnalyzeStackRequest(resources=stack_resources).SerializeToString(),
        stack_configure=stack_configure,
        types={resource["urn"]: resource["type"] for resource in resources},
        stack_urn=stack_urn(document),
        locations={resource["urn"]: (str(resource["location"]["path"]), int(resource["location"]["line"]))
                   for resource in resources if isinstance(resource.get("location"), dict)},
    )


# -- one pack process -------------------------------------------------------------------------------


class PackProcess:
    """``policies/<pack>`` running as its own process, reached over gRPC."""

    def __init__(self, pack: str, policies_dir: Path = POLICIES_DIR, fork: bool = False) -> None:
        self.pack = pack
        self.directory = policies_dir / pack
        self.fork = fork  # start by forking this process (shared.policy.packfork) when it is safe
        self.process: subprocess.Popen[bytes] | ForkedPack | None = None
        self.channel: grpc.Channel | None = None
        self.info: analyzer_pb2.AnalyzerInfo | None = None
        self._stderr = tempfile.TemporaryFile()
        self._stdout_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._last_config: bytes | None = None
        self.batches = True  # until the pack answers AnalyzeBatch with UNIMPLEMENTED

    # lifecycle
    def spawn(self) -> None:
        """Start the process without waiting for it (packs boot in parallel)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", "PULUMI_PROJECT", "PULUMI_STACK",
                            "PULUMI_DRY_RUN", "PULUMI_ORGANIZATION")}
        env[OFFLINE_ENGINE_ENV] = "1"  # the pack may install the analyzer speed-up (never under the CLI)
        if self.fork and can_fork():
            self.process = ForkedPack([ENGINE_ADDRESS, "."], self.directory, env, self._stderr, PACK_NICENESS)
            return
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."],
            cwd=self.directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        )
        # The packs mostly wait for the synth, which is the critical path of a run: when both want
        # the CPU (pack boot overlaps the synth's imports), the synth should win.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, self.process.pid, PACK_NICENESS)

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip()
        return text[-4000:]

    def _fail(self, what: str) -> PolicyEngineError:
        details = self._stderr_text() or "\n".join(self._stdout_tail)
        return PolicyEngineError(f"policy pack {self.pack!r} ({self.directory}): {what}"
                                 + (f"\n{details}" if details else ""))

    def connect(self) -> None:
        """Wait for the port line, connect, handshake, read the pack's analyzer info."""
        if self.channel is not None:
            return
        if self.process is None:
            self.spawn()
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"did not print its port within {START_TIMEOUT_S:.0f}s")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.process.stdout.fileno(), 1)
            if not chunk:
                self.process.wait(timeout=5)
                raise self._fail(f"exited with code {self.process.returncode} before printing its port")
            line += chunk
        try:
            port = int(line.strip())
        except ValueError:
            raise self._fail(f"printed {line!r} instead of its port") from None
        # Drain anything the pack prints later, so a chatty rule can never block on a full pipe.
        threading.Thread(target=self._drain, daemon=True, name=f"policy-{self.pack}-stdout").start()
        note_grpc_use()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT_S)
        self._analyze = self.channel.unary_unary(
            "/pulumirpc.Analyzer/Analyze", request_serializer=None,
            response_deserializer=analyzer_pb2.AnalyzeResponse.FromString)
        self._analyze_stack = self.channel.unary_unary(
            "/pulumirpc.Analyzer/AnalyzeStack", request_serializer=None,
            response_deserializer=analyzer_pb2.AnalyzeResponse.FromString)
        self._analyze_batch = self.channel.unary_unary(BATCH_METHOD, request_serializer=None,
                                                       response_deserializer=None)
        self._configure = self.channel.unary_unary(
            "/pulumirpc.Analyzer/Configure", request_serializer=None,
            response_deserializer=empty_pb2.Empty.FromString)
        self._configure_stack = self.channel.unary_unary(
            "/pulumirpc.Analyzer/ConfigureStack", request_serializer=None,
            response_deserializer=analyzer_pb2.AnalyzerStackConfigureResponse.FromString)
        handshake = self.channel.unary_unary(
            "/pulumirpc.Analyzer/Handshake",
            request_serializer=analyzer_pb2.AnalyzerHandshakeRequest.SerializeToString,
            response_deserializer=analyzer_pb2.AnalyzerHandshakeResponse.FromString)
        get_info = self.channel.unary_unary(
            "/pulumirpc.Analyzer/GetAnalyzerInfo", request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=analyzer_pb2.AnalyzerInfo.FromString)
        get_plugin_info = self.channel.unary_unary(
            "/pulumirpc.Analyzer/GetPluginInfo", request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=plugin_pb2.PluginInfo.FromString)
        directory = str(self.directory)
        try:
            handshake(analyzer_pb2.AnalyzerHandshakeRequest(
                engine_address=ENGINE_ADDRESS, root_directory=directory, program_directory=directory),
                timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                raise self._fail(f"Handshake failed: {error}") from None
        try:
            get_plugin_info(empty_pb2.Empty(), timeout=CALL_TIMEOUT_S)
            self.info = get_info(empty_pb2.Empty(), timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            raise self._fail(f"GetAnalyzerInfo failed: {error}") from None
        expected = pack_name(self.pack)
        if self.info.name != expected:
            raise self._fail(f"reports the name {self.info.name!r}, expected {expected!r}")

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            self._stdout_tail.append(raw.decode("utf-8", "replace").rstrip())

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
        self._stderr.close()

    @property
    def policy_names(self) -> list[str]:
        return [policy.name for policy in self.info.policies] if self.info else []

    # calls
    def configure(self, config: bytes) -> Future[Any] | None:
        if config == self._last_config:
            return None
        self._last_config = config
        return self._configure.future(config, timeout=CALL_TIMEOUT_S)

    def configure_stack(self, request: bytes) -> Future[Any]:
        return self._configure_stack.future(request, timeout=CALL_TIMEOUT_S)

    def analyze(self, request: bytes) -> Future[Any]:
        return self._analyze.future(request, timeout=CALL_TIMEOUT_S)

    def analyze_stack(self, request: bytes) -> Future[Any]:
        return self._analyze_stack.future(request, timeout=CALL_TIMEOUT_S)

    def analyze_batch(self, requests: list[bytes]) -> Future[Any]:
        return self._analyze_batch.future(encode_requests(requests), timeout=CALL_TIMEOUT_S)

    def crashing_rules(self, method: str, request: bytes) -> list[str]:
        """Which rules raise on ``request``: re-sent with one rule enabled at a time (error path only).

        pulumi_policy runs every rule of the pack in one call and reports a raising rule only as a
        failed call, so this is how the engine can name the rule to fix.
        """
        call = self._analyze if method == "Analyze" else self._analyze_stack
        culprits = []
        for name in self.policy_names:
            single = analyzer_pb2.ConfigureAnalyzerRequest()
            for other in self.policy_names:
                single.policyConfig[other].enforcementLevel = (
                    analyzer_pb2.ADVISORY if other == name else analyzer_pb2.DISABLED)
            try:
                self._configure.future(single.SerializeToString(), timeout=CALL_TIMEOUT_S).result()
                call.future(request, timeout=CALL_TIMEOUT_S).result()
            except grpc.RpcError:
                culprits.append(name)
        self._last_config = None  # the pack's configuration is no longer the env's
        return culprits

    def error(self, method: str, urn: str, error: grpc.RpcError, culprits: Sequence[str] = ()) -> PolicyEngineError:
        details = error.details() if hasattr(error, "details") else str(error)  # type: ignore[attr-defined]
        rules = f" (raised by rule {', '.join(culprits)}: a bug in the rule)" if culprits else ""
        return self._fail(f"{method} failed for {urn}{rules}: {details}")


# -- the engine ---------------------------------------------------------------------------------------


class PolicyEngine:
    """The three packs as processes, reused for every stack of a run. Use as a context manager."""

    def __init__(self, packs: Sequence[str] = PACKS, policies_dir: Path = POLICIES_DIR,
                 carry_secretness: bool = True, fork: bool = False) -> None:
        # fork: the packs are forked from this process (the one-shot policy command, before its
        # synth: shared.policy.packfork) instead of started as fresh interpreters.
        self.packs = {pack: PackProcess(pack, policies_dir, fork=fork) for pack in packs}
        # False reproduces the pulumi CLI without --policy-pack-config: rules get levels only.
        self.carry_secretness = carry_secretness
        self._started = False

    def start(self) -> PolicyEngine:
        """Spawn every pack (returns at once; the first evaluation waits for them to listen)."""
        if not self._started:
            for process in self.packs.values():
                process.spawn()
            self._started = True
        return self

    def _connect(self) -> None:
        self.start()
        for process in self.packs.values():
            process.connect()

    def close(self) -> None:
        for process in self.packs.values():
            process.stop()

    def __enter__(self) -> PolicyEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def analyzer_info(self) -> dict[str, analyzer_pb2.AnalyzerInfo]:
        self._connect()
        return {pack: process.info for pack, process in self.packs.items() if process.info is not None}

    def evaluate(self, jobs: Iterable[tuple[dict[str, Any], Enforcement]], stage: str = "offline") -> PolicyResult:
        """Evaluate every ``(synth document, settings)`` pair; one ``Configure`` per stack and pack. ``stage``: what
        the packs are sent (:mod:`shared.policy.stages`): the programs' inputs, or what a real ``up`` or first
        preview sends."""
        self._connect()
        result = PolicyResult()
        for document, enforcement in jobs:
            prepared = _prepare(document, enforcement, stage)
            self._evaluate_stack(prepared, result)
            result.documents += 1
            result.resources += len(prepared.analyze)
        result.findings.sort(key=Finding.sort_key)
        return result

    def _evaluate_stack(self, stack: _PreparedStack, result: PolicyResult) -> None:
        document = stack.document
        # Configure (levels + secretness) must be in place before this stack's requests, and is
        # global to a pack process: wait for it, then fan the stack out to all packs at once.
        pending: list[Future[Any]] = []
        for pack, process in self.packs.items():
            documents = [document] if self.carry_secretness else []
            config = _configure_request(pack_config(stack.enforcement, pack, documents))
            future = process.configure(config)
            if future is not None:
                pending.append(future)
            pending.append(process.configure_stack(stack.stack_configure))
        for future in pending:
            try:
                future.result()
            except grpc.RpcError as error:
                raise PolicyEngineError(f"Configure failed: {error}") from None
        batched = [process for process in self.packs.values() if process.batches]
        if batched:
            self._analyze_batched(batched, stack, result)
        # Packs without AnalyzeBatch get one Analyze per resource; AnalyzeStack is one call for all.
        singles: list[tuple[str, str | None, bytes]] = [("Analyze", urn, body) for urn, _type, body in stack.analyze]
        stack_request: list[tuple[str, str | None, bytes]] = [("AnalyzeStack", None, stack.analyze_stack)]
        self._analyze_singly([p for p in self.packs.values() if p not in batched], singles + stack_request,
                             stack, result)
        self._analyze_singly(batched, stack_request, stack, result)

    def _analyze_batched(self, processes: list[PackProcess], stack: _PreparedStack, result: PolicyResult) -> None:
        """``AnalyzeBatch`` calls over the stack's resources, every pack at once, a bounded number in flight."""
        pending: collections.deque[tuple[PackProcess, list[tuple[str, str, bytes]], Future[Any]]] = collections.deque()
        for start in range(0, len(stack.analyze), BATCH_SIZE):
            chunk = stack.analyze[start:start + BATCH_SIZE]
            bodies = [body for _urn, _type, body in chunk]
            for process in processes:
                pending.append((process, chunk, process.analyze_batch(bodies)))
            while len(pending) > BATCHES_IN_FLIGHT * len(processes):
                self._finish_batch(pending.popleft(), stack, result)
        while pending:
            self._finish_batch(pending.popleft(), stack, result)

    def _finish_batch(self, item: tuple[PackProcess, list[tuple[str, str, bytes]], Future[Any]],
                      stack: _PreparedStack, result: PolicyResult) -> None:
        process, chunk, future = item
        try:
            answers = decode_responses(future.result())
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                process.batches = False  # not one of our packs: one call per resource from now on
                self._analyze_singly([process], [("Analyze", urn, body) for urn, _type, body in chunk], stack, result)
                return
            raise process.error("AnalyzeBatch", stack.stack_urn, error) from None
        if len(answers) != len(chunk):
            raise process._fail(f"AnalyzeBatch answered {len(answers)} of {len(chunk)} requests for "
                                f"{stack.stack_urn}")
        env, layer = stack.document.get("env"), stack.document.get("layer")
        for (urn, _type, body), (status, payload) in zip(chunk, answers, strict=True):
            if status == BATCH_FAILED:
                # Re-send it alone: the failing call names the error and the rules that raise.
                self._analyze_singly([process], [("Analyze", urn, body)], stack, result)
                continue
            self._collect(process.pack, analyzer_pb2.AnalyzeResponse.FromString(payload), urn, stack, env, layer,
                          result)

    def _analyze_singly(self, processes: list[PackProcess], requests: list[tuple[str, str | None, bytes]],
                        stack: _PreparedStack, result: PolicyResult) -> None:
        """One ``Analyze``/``AnalyzeStack`` call per request, a bounded window in flight per pack."""
        env, layer = stack.document.get("env"), stack.document.get("layer")
        for start in range(0, len(requests), IN_FLIGHT):
            calls: list[tuple[PackProcess, str, str | None, bytes, Future[Any]]] = []
            for process in processes:
                for method, target, body in requests[start:start + IN_FLIGHT]:
                    call = process.analyze if method == "Analyze" else process.analyze_stack
                    calls.append((process, method, target, body, call(body)))
            for process, method, target, body, future in calls:
                try:
                    response: analyzer_pb2.AnalyzeResponse = future.result()
                except grpc.RpcError as error:
                    culprits = process.crashing_rules(method, body)
                    raise process.error(method, target or stack.stack_urn, error, culprits) from None
                self._collect(process.pack, response, target, stack, env, layer, result)

    def _collect(self, pack: str, response: analyzer_pb2.AnalyzeResponse, urn: str | None,
                 stack: _PreparedStack, env: str | None, layer: str | None, result: PolicyResult) -> None:
        if response.not_applicable:
            result.add_not_applicable((pack, env, layer, urn, response.not_applicable))
        for diagnostic in response.diagnostics:
            target = diagnostic.urn or urn or stack.stack_urn
            if diagnostic.message.startswith(_CANT_RUN_PREFIX):
                # pulumi_policy's answer to a rule touching an unknown value: the rule could not
                # decide, which is not-applicable (never a pass, never a failure).
                result.add_not_applicable(NotApplicable(diagnostic.policyName, pack, env, layer, target,
                                                        diagnostic.message))
                continue
            message = diagnostic.message
            prefix = diagnostic.description + "\n"
            if diagnostic.description and message.startswith(prefix):
                message = message[len(prefix):]
            finding = Finding(
                rule=diagnostic.policyName, pack=pack,
                enforcement=_PROTO_TO_LEVEL.get(diagnostic.enforcementLevel, "advisory"),
                env=env, layer=layer, urn=target,
                resource_type=stack.types.get(target, STACK_TYPE if target == stack.stack_urn else None),
                message=message.strip(), location=stack.locations.get(target),
            )
            result.findings.append(stack.enforcement.apply_suppressions(finding))


# -- public API ---------------------------------------------------------------------------------------


def evaluate_documents(documents: list[dict[str, Any]], env_name: str | None = "dev",
                       enforcement: dict[str, str] | None = None,
                       engine: PolicyEngine | None = None) -> list[Finding]:
    """Findings of every pack for these synth documents, with ``env_name``'s levels and suppressions.

    ``env_name`` None is a ``--program`` run: the dev baseline, no suppressions. ``enforcement``
    ({rule: level}) overrides the levels. Pass a started ``engine`` to reuse its pack processes.
    """
    return evaluate_documents_result(documents, env_name, enforcement, engine).findings


def evaluate_documents_result(documents: list[dict[str, Any]], env_name: str | None = "dev",
                              enforcement: dict[str, str] | None = None,
                              engine: PolicyEngine | None = None, stage: str = "offline") -> PolicyResult:
    """:func:`evaluate_documents` with the not-applicable records and counts; ``stage``: see
    :meth:`PolicyEngine.evaluate`."""
    settings = enforcement_for(env_name, enforcement)
    for document in documents:
        validate_document(document)
    jobs = [(document, settings) for document in documents]
    if engine is not None:
        return engine.evaluate(jobs, stage)
    with PolicyEngine() as own:
        return own.evaluate(jobs, stage)


def evaluate_envs(env_names: list[str], engine: PolicyEngine | None = None, stage: str = "offline") -> PolicyResult:
    """Synth every layer of each env and evaluate all packs (one process per pack for the run); ``stage``: see
    :meth:`PolicyEngine.evaluate`.

    The packs evaluate a stack while the synth of the next ones goes on: each synthesized document is
    handed to a worker thread at once (the pack calls wait on gRPC, so the synth keeps the CPU).
    """
    from concurrent.futures import ThreadPoolExecutor

    from shared.synth.engine import synth_env

    def run(active: PolicyEngine) -> PolicyResult:
        for env_name in env_names:  # every env file is valid before any work starts
            enforcement_for(env_name)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-evaluate") as worker:
            partial: list[Future[PolicyResult]] = []
            for env_name in env_names:
                settings = enforcement_for(env_name)

                def submit(document: dict[str, Any], settings: Enforcement = settings) -> None:
                    partial.append(worker.submit(active.evaluate, [(document, settings)], stage))

                synth_env(env_name, on_document=submit)
            result = PolicyResult(envs=list(env_names))
            for future in partial:
                result.absorb(future.result())
        result.findings.sort(key=Finding.sort_key)
        return result

    if engine is not None:
        return run(engine)
    # The packs boot while the synth runs.
    with PolicyEngine() as own:
        return run(own)
