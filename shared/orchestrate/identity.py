"""Before any layer runs: is the env file still the env its stacks were deployed as? (``region``, ``account_id``)

``region`` and ``account_id`` are an env's identity ("identity: a new env" in the README's table of env keys):
every layer's explicit AWS provider (:class:`shared.layer.Layer`) is built from them. Edited on a deployed env,
the provider's ``region`` changes, and the Pulumi AWS provider replaces every resource created through it
(``region`` is a provider input whose change replaces the provider, and with it each of its resources): copies
are created in the new region -- where names that are global or account-wide (IAM roles, S3 buckets, ...)
collide with the originals halfway through -- and only then are the originals deleted. A changed
``account_id`` makes the provider's ``allowedAccountIds`` name an account the state's resources are not in.

So the runner reads, for every layer of the run whose stack exists, what the stack was deployed with: the
inputs of the layer's own AWS provider resource (``aws-<env>``) in the stack's state (``pulumi stack export``,
without ``--show-secrets``: neither value is a secret, so no secret of the state is decrypted). The state, not the
stack outputs, because:

- it is exactly what Pulumi diffs the program's provider against (so what decides a replacement);
- it is written before the first resource that uses the provider is created, so it is there after a failed
  first ``up`` too, whose stack has resources but no outputs;
- every stack this platform ever deployed has it, while no layer contract exports the region or account
  (adding them would leave every stack deployed before without them).

A stack that does not exist yet (a first ``up``), or holds no such provider (created, never deployed, or
destroyed), has nothing to compare. A state that cannot be read stops the run too (exit 2): the check
cannot vouch for it. Every action is refused, ``destroy`` included: ``pulumi destroy`` and ``refresh`` act
through the provider recorded in the state (they do not run the program), but an env file that disagrees
with its stacks is a mistake to fix before anything, and a destroy cannot be undone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

from shared.envs import EnvConfig, env_path
from shared.errors import PlatformError, display_path

PROVIDER_TYPE = "pulumi:providers:aws"


def provider_name(env_name: str) -> str:
    """The name of every layer's explicit AWS provider (:class:`shared.layer.Layer`), the resource whose
    inputs record the region and account a stack was deployed with."""
    return f"aws-{env_name}"


class IdentityError(PlatformError):
    """The env file's region or account is not the one its stacks were deployed with, or a stack's state cannot
    be read to tell (exit 2: nothing was run)."""

    exit_code = 2


@dataclass(frozen=True)
class Deployed:
    """What one layer's stack was deployed with (its AWS provider's inputs in the state)."""

    layer: str
    stack: str
    region: str | None
    account_ids: tuple[str, ...] | None


#: Reads a layer's :class:`Deployed` for an env; None when its stack does not exist or holds no AWS provider.
IdentityReader = Callable[[str, EnvConfig], "Deployed | None"]

# The marker of a secret value in Pulumi's state format: the state as stored holds its ``ciphertext`` (what the
# runner reads: shared.orchestrate.automation.export_as_stored), ``pulumi stack export --show-secrets`` its
# ``plaintext``, JSON-encoded. Neither input read here is a secret; one that were would be unknown (not compared).
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping) and _SECRET_SIG in value:
        plaintext = value.get("plaintext")
        return json.loads(plaintext) if isinstance(plaintext, str) else plaintext
    return value


class UnreadableState(ValueError):
    """A state whose provider entry does not have the shape Pulumi writes."""


def state_resources(deployment: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The resources of an exported ``deployment`` (the ``deployment`` of ``pulumi stack export``): none without
    one; :class:`UnreadableState` when they are not a list."""
    resources = (deployment or {}).get("resources") or []
    if not isinstance(resources, list):
        raise UnreadableState(f"its resources are a {type(resources).__name__}, not a list")
    return [resource for resource in resources if isinstance(resource, Mapping)]


def is_live_entry(resource: Mapping[str, Any]) -> bool:
    """Whether a state entry is the live copy of its resource. Not one marked ``delete`` (an old copy an interrupted
    create-before-delete replacement left, which the next ``up`` deletes), nor one marked ``pendingReplacement``,
    which a delete-before-replace deleted before its create of the new one failed or was killed (Pulumi keeps the
    entry, old id and all, "throughout the replace operation, even at the point where the delete has occurred but the
    create has not": pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply; a refresh leaves it as it is, and the
    next ``up`` creates the replacement)."""
    return not resource.get("delete") and not resource.get("pendingReplacement")


def state_resources_of(deployment: Mapping[str, Any] | None, *types: str,
                       live: bool = False) -> list[Mapping[str, Any]]:
    """The resources of an exported ``deployment`` whose type is one of ``types``; with ``live``, only the live
    copies (:func:`is_live_entry`)."""
    return [resource for resource in state_resources(deployment)
            if resource.get("type") in types and (not live or is_live_entry(resource))]


def deployed_from_state(deployment: Mapping[str, Any] | None, layer: str, env: EnvConfig,
                        stack: str) -> Deployed | None:
    """The :class:`Deployed` of ``layer`` from its exported ``deployment`` (the ``deployment`` of ``pulumi stack
    export``), or None when the state holds no live ``aws-<env>`` provider (nothing deployed through it).

    A provider marked ``delete`` is an old copy left pending deletion by an interrupted replacement; the live one
    is what the next run diffs against. pulumi-aws's Python SDK sends ``allowedAccountIds`` JSON-encoded
    (``pulumi_aws/provider.py``: ``.apply(pulumi.runtime.to_json)``), so the state holds a string; a list is
    accepted too."""
    if deployment is None:
        return None
    name = provider_name(env.name)
    live = [resource for resource in state_resources_of(deployment, PROVIDER_TYPE, live=True)
            if str(resource.get("urn", "")).rsplit("::", 1)[-1] == name]
    if not live:
        return None
    inputs = live[0].get("inputs") or {}
    if not isinstance(inputs, Mapping):
        raise UnreadableState(f"the inputs of its provider {name} are not a mapping")
    region = _plain(inputs.get("region"))
    if region is not None and not isinstance(region, str):
        raise UnreadableState(f"its provider {name} has the region {region!r}, not a string")
    accounts = _plain(inputs.get("allowedAccountIds"))
    if isinstance(accounts, str):
        try:
            accounts = json.loads(accounts)
        except json.JSONDecodeError as error:
            raise UnreadableState(f"its provider {name} has allowedAccountIds {accounts!r}, not JSON") from error
    if accounts is not None and not (isinstance(accounts, list) and all(isinstance(a, str) for a in accounts)):
        raise UnreadableState(f"its provider {name} has allowedAccountIds {accounts!r}, not a list of ids")
    return Deployed(layer, stack, region, tuple(accounts) if accounts is not None else None)


class Mismatch(NamedTuple):
    """One identity key of the env file that differs from what ``stacks`` were deployed with."""

    key: str
    deployed: str
    wanted: str
    stacks: tuple[str, ...]


def mismatches(env: EnvConfig, deployed: Iterable[Deployed]) -> list[Mismatch]:
    """Each identity key whose deployed value differs from the env file's, with the stacks that say so."""
    found: dict[tuple[str, str], list[str]] = {}
    for item in deployed:
        if item.region is not None and item.region != env.region:
            found.setdefault(("region", item.region), []).append(item.stack)
        if item.account_ids is not None and env.account_id not in item.account_ids:
            found.setdefault(("account_id", ", ".join(item.account_ids) or "(none)"), []).append(item.stack)
    wanted = {"region": env.region, "account_id": env.account_id}
    return [Mismatch(key, value, wanted[key], tuple(stacks)) for (key, value), stacks in found.items()]


def refusal(env: EnvConfig, found: Sequence[Mismatch], action: str) -> str:
    file = display_path(str(env_path(env.name)))
    lines = [f"{file}: the env file is not the env its stacks were deployed as; {action} {env.name} refused, "
             "nothing was run:"]
    for item in found:
        lines.append(f"  {item.key}: is {item.wanted!r} in {file}, but {', '.join(item.stacks)} "
                     f"{'was' if len(item.stacks) == 1 else 'were'} deployed with {item.deployed!r} "
                     "(the AWS provider in the state)")
    lines.append(
        "region and account_id (like pulumi_org) never change on a deployed env: with a new region the AWS provider "
        "replaces every resource, creating copies whose global names (IAM roles, S3 buckets) collide with the "
        "deployed ones halfway, then deleting the originals; with a new account the state's resources are in an "
        "account the provider no longer accepts. Put the deployed value back in the file. To move the env, add a "
        "new env file with the new region or account (README, \"Add an environment\"), deploy it, move the traffic, "
        f"then destroy this one with its file as deployed (`nox -s destroy -- {env.name}`).")
    return "\n".join(lines)


def check_identity(env: EnvConfig, layers: Sequence[str], read: IdentityReader, action: str) -> None:
    """IdentityError (exit 2) when a layer's stack was deployed with another region or account than ``env``
    names, or when a stack's state cannot be read (the first such layer, in ``layers`` order); nothing when every
    existing stack agrees. The stacks are read at the same time, one ``pulumi stack export`` each."""
    with ThreadPoolExecutor(max_workers=max(1, len(layers))) as pool:
        read_all = list(pool.map(lambda layer: read(layer, env), layers))
    deployed = [item for item in read_all if item is not None]
    found = mismatches(env, deployed)
    if found:
        raise IdentityError(refusal(env, found, action))


def deployed_secrets_provider(deployment: Mapping[str, Any] | None) -> str | None:
    """The secrets provider an exported ``deployment`` records (``secrets_providers``, apitype.SecretsProvidersV1:
    ``type`` and ``state``), in the words ``pulumi stack init --secrets-provider`` takes: ``passphrase``, ``service``
    (Pulumi Cloud's own, what ``default`` gives there) or, for the ``cloud`` type, the KMS-style URL its state keeps
    as given (pkg/secrets/cloud/manager.go: cloudSecretsManagerState ``url``). None when the state records none
    (a stack created but never deployed). Read from the state as stored: neither field is encrypted."""
    providers = (deployment or {}).get("secrets_providers")
    if providers is None:
        return None
    if not isinstance(providers, Mapping) or not isinstance(providers.get("type"), str):
        raise UnreadableState(f"its secrets_providers entry {providers!r} has no type")
    if providers["type"] != "cloud":
        return str(providers["type"])
    state = providers.get("state")
    url = state.get("url") if isinstance(state, Mapping) else None
    if not isinstance(url, str) or not url:
        raise UnreadableState("its cloud secrets provider names no url")
    return url


def wanted_secrets_provider(env: EnvConfig, cloud_backend: bool) -> str:
    """The secrets provider a stack of ``env`` is created with, in :func:`deployed_secrets_provider`'s words:
    ``state.secrets_provider``, where unset or ``default`` the backend's default (``pulumi stack init``: Pulumi
    Cloud's own on Pulumi Cloud, a passphrase on a self-managed backend)."""
    provider = env.state.secrets_provider
    if provider in (None, "default"):
        return "service" if cloud_backend else "passphrase"
    return provider


def secrets_provider_refusal(env: EnvConfig, wanted: str, deployed: Mapping[str, str], variables: Mapping[str, str],
                             action: str, refused: bool) -> str:
    """Why a run whose stacks keep their secrets with another provider than ``state.secrets_provider`` names is
    refused (``up``) or noted (every other action): ``deployed`` maps each such stack to its provider.

    An existing stack keeps the provider it was created with (``--secrets-provider`` is read by ``pulumi stack init``
    only), so the key's new value would silently never apply to them, while a stack created from now on (a new layer)
    would take it: an env meant to leave a leaked passphrase behind would go on using it, unsaid. ``variables`` are
    what the orchestrator's own ``pulumi`` runs get otherwise than the shell (``PULUMI_BACKEND_URL``; the env's
    ``AWS_PROFILE`` with the shell's keys emptied, ``AWS_REGION``, file paths made absolute), so the printed commands
    reach the same backend and key with the same credentials."""
    file = display_path(str(env_path(env.name)))
    said = env.state.secrets_provider
    value = f"{said!r}" if said is not None else f"unset (the backend's default: {wanted})"
    by_provider: dict[str, list[str]] = {}
    for stack, provider in deployed.items():
        by_provider.setdefault(provider, []).append(stack)
    kept = "; ".join(f"{', '.join(sorted(stacks))} with {provider!r}" for provider, stacks in by_provider.items())
    target = "default" if wanted == "service" else wanted
    commands = " ".join(
        f"`cd stacks/{stack.split('/')[1]} && pulumi stack change-secrets-provider --stack {stack} '{target}'`;"
        for stack in sorted(deployed))
    outcome = f"{action} {env.name} refused, nothing was run" if refused else f"{action} goes on with them as they are"
    back = " or ".join(repr(provider) for provider in by_provider)
    return (f"{file}: state.secrets_provider is {value}, but the stacks keep their secrets with another provider (the "
            f"one in their state): {kept}. An existing stack keeps the provider it was created with, so this value "
            f"would never apply to them, while a stack created now would take it; {outcome}. Either put back "
            f"state.secrets_provider: {back}, or move each stack to the new provider first (it decrypts with the old "
            f"one, so its passphrase or key access is needed, and re-encrypts every secret of the stack), with "
            f"{shared_variables(variables)} set: {commands} commit "
            f"a stacks/<layer>/Pulumi.{env.name}.yaml it rewrites where one is committed (messaging's, holding an "
            f"external broker's admin credentials), then run again.")


def shared_variables(variables: Mapping[str, str]) -> str:
    """``NAME=value`` for each of ``variables``, joined for a sentence; shell-quoted where needed."""
    import shlex

    names = [f"{name}={shlex.quote(value)}" for name, value in sorted(variables.items())]
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def settings_secrets_provider(settings: Mapping[str, Any]) -> str | None:
    """The secrets provider the CLI builds from a stack's settings file ``Pulumi.<stack>.yaml`` ahead of the one its
    state records, in :func:`deployed_secrets_provider`'s words: its ``secretsprovider`` when that is a KMS-style URL,
    else ``passphrase`` when it holds an ``encryptionsalt``, else None (the CLI then falls back to the state's with
    PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER). The order of pkg/cmd/pulumi/stack SecretsManagerLoader
    .GetSecretsManager."""
    provider = settings.get("secretsprovider")
    if isinstance(provider, str) and provider not in ("", "passphrase", "default"):
        return provider
    salt = settings.get("encryptionsalt")
    return "passphrase" if isinstance(salt, str) and salt else None


def stale_settings_refusal(stale: Mapping[str, tuple[str, str, str]], action: str, env_name: str,
                           refused: bool) -> str:
    """Why a run is refused (state-writing actions) or noted (preview) when a stack's settings file on this machine
    names another secrets provider than the stack's state: ``stale`` maps each file to (stack, the file's provider,
    the state's). The CLI builds the file's, and an update writes the state back encrypted with it
    (backend.NewSnapshotManager takes the operation's secrets manager): a provider the stacks were moved off (``pulumi
    stack change-secrets-provider`` on another machine) would silently come back."""
    outcome = f"{action} {env_name} refused, nothing was run" if refused else f"{action} goes on"
    lines = [f"a stack settings file on this machine names another secrets provider than the stack's state; "
             f"{outcome}:"]
    for file, (stack, local, deployed) in stale.items():
        lines.append(f"  {display_path(file)}: {local!r}, but {stack} keeps its secrets with {deployed!r}")
    lines.append(
        "Pulumi builds the file's provider ahead of the state's, and an up, refresh or destroy writes the state back "
        "encrypted with it, undoing the stack's move to its provider. The file is left from before that move (or "
        "from another backend): remove its secretsprovider, encryptedkey and encryptionsalt lines (the whole file "
        "when it holds nothing else); every run sets PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true, so the state's "
        "provider is used and the file written again from it. A file that is committed (messaging's, holding an "
        "external broker's admin credentials) is taken from the branch the move was committed on instead.")
    return "\n".join(lines)


def stackless_refusal(env: EnvConfig, stack: str, vpcs: Sequence[str]) -> str:
    """Why ``up`` stops when the env's network stack ``stack`` does not exist, yet the account already holds the
    VPC a network stack of this env deployed (found by the provider's default tags): the stacks that deployed it
    are elsewhere -- another ``pulumi_org`` or state backend -- or their state was lost. A first ``up`` there would
    create a second VPC, NAT gateways and addresses beside the first, and stop at the first name that must be unique
    (the broker, the secrets, the log groups), halfway. ``pulumi stack rename`` cannot be the way to another org: Pulumi
    Cloud refuses a new owner ("You cannot transfer stack ownership via a rename", pkg/backend/httpstate/backend.go
    RenameStack); ``pulumi stack migrate`` (CLI 3.254) moves a stack to the backend logged in to, secrets
    re-encrypted."""
    file = display_path(str(env_path(env.name)))
    # stack migrate re-encrypts with its --secrets-provider, "default" unless given (stack_migrate.go): a passphrase
    # on a self-managed backend, where the env's stacks keep their secrets on its KMS key
    provider = env.state.secrets_provider
    keep = f" --secrets-provider '{provider}'" if provider not in (None, "default") else ""
    return (f"{file}: the env's network is already deployed in account {env.account_id} ({env.region}): VPC "
            f"{', '.join(vpcs)} carries its tags (env: {env.name}, layer: network, managed-by: pulumi), but the stack "
            f"{stack} does not exist on this state backend. pulumi_org, state.backend_url or PULUMI_BACKEND_URL "
            "then name other stacks than the ones that deployed it (or their state was lost), and this up would "
            "create a second network beside it and stop halfway at the first name that must be unique. Put back "
            "the org and backend the env was deployed with. To move the env, first move each layer's stack: to "
            "another Pulumi Cloud org with the stack's Settings > Transfer stack in the Pulumi Console (`pulumi stack "
            "rename` refuses a new owner), to another backend with `pulumi stack migrate <old backend URL> "
            f"<org>/<layer>/<env> --target <new org>/<layer>/<env>{keep}` (or `pulumi stack export` / `pulumi stack "
            "import`). "
            "If that VPC "
            "is a leftover whose stacks are gone for good (removed with `pulumi stack rm --force`, the resources "
            "kept), delete it and what it still holds in the account first: nothing tracks it any more.")
