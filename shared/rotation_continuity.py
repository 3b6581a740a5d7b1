"""Whether an env's ``messaging.credentials_rotation`` keeps the users the deployed services hold.

The messaging stack makes one RabbitMQ user per service and rotation epoch (``ml-<env>-<svc>.<epoch>``) and keeps
the users of two generations: the current epoch's, which the secrets name, and ``previous_epoch``'s (the unsuffixed
users when it is unset), which tasks started before the rotation still hold (:class:`shared.components.messaging.
Generation`). Any other user is deleted, and RabbitMQ closes its connections (CONNECTION_FORCED); the tasks cannot
reconnect until compute's rollout replaces them.

The env file alone cannot say which epoch is deployed: the messaging stack exports it (output
:data:`DEPLOYED_EPOCH_OUTPUT`) and :func:`rotation_refusal` compares the env with it. Both the layer program (a
``pulumi up``/``preview`` in ``stacks/messaging``, through a reference to its own stack) and the orchestrator (before
any layer runs) call it, so the refusal comes before any resource changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from shared import REPO_ROOT
from shared.envs import CredentialsRotation, env_path
from shared.errors import ConfigError, ContractError

#: the messaging stack's output naming the epoch its secrets name (ISO date; absent: the unsuffixed users)
DEPLOYED_EPOCH_OUTPUT = "credentials_epoch"
#: an output every deployed messaging stack has (its contract requires it): present, the stack is deployed
_DEPLOYED_MARKER = "vhost"

ROTATION_KEY = "messaging.credentials_rotation"
EPOCH_KEY = f"{ROTATION_KEY}.epoch"
PREVIOUS_KEY = f"{ROTATION_KEY}.previous_epoch"


class Undeployed:
    """The messaging stack has no deployment (first ``up``): no service holds any user yet."""


UNDEPLOYED = Undeployed()


def deployed_epoch(outputs: Mapping[str, Any] | None) -> date | Undeployed | None:
    """The epoch whose users the deployed secrets name: a date, None (the unsuffixed users: a stack deployed without
    rotation, or before it exported :data:`DEPLOYED_EPOCH_OUTPUT`), or :data:`UNDEPLOYED`."""
    if not outputs or outputs.get(_DEPLOYED_MARKER) is None:
        return UNDEPLOYED
    value = outputs.get(DEPLOYED_EPOCH_OUTPUT)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ContractError.hand_edited("messaging", DEPLOYED_EPOCH_OUTPUT, value, "a date (YYYY-MM-DD)") from None


def exported_epoch(rotation: CredentialsRotation | None) -> str | None:
    """What the messaging stack exports as :data:`DEPLOYED_EPOCH_OUTPUT` for ``rotation``."""
    return rotation.epoch.isoformat() if rotation else None


def user_name(env_name: str, service: str, epoch: date | None = None) -> str:
    """``ml-<env>-<service>``, and ``.<epoch>`` for the user of one rotation epoch (a '.' no service or env name
    holds, so no other service's user can be named the same). Here, free of Pulumi imports, for the orchestrator's
    check; the messaging layer names its users with it."""
    # User names are broker-wide (not per vhost): the env prefix keeps envs apart on a shared broker.
    return f"ml-{env_name}-{service}" + (f".{epoch.isoformat()}" if epoch else "")


def _users(env_name: str, epoch: date | None) -> str:
    return user_name(env_name, "<service>", epoch)


def _env_file(env_name: str) -> str:
    """The env file, repo-relative whichever folder the program runs from (a `pulumi up` runs in stacks/messaging)."""
    path = env_path(env_name)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def rotation_refusal(env_name: str, rotation: CredentialsRotation | None,
                     outputs: Mapping[str, Any] | None) -> ConfigError | None:
    """Why applying ``rotation`` to messaging's deployed ``outputs`` would delete the users running tasks hold
    (a ConfigError naming the env file, the key and the value to set), or None when it keeps them.

    Deployed epoch D, env epoch E, env previous epoch P: E == D changes no current user (passes); E != D needs D's
    users kept, i.e. P == D (P unset when D is the unsuffixed users). No deployment passes."""
    deployed = deployed_epoch(outputs)
    if isinstance(deployed, Undeployed):
        return None
    file = _env_file(env_name)
    current = rotation.epoch if rotation else None
    if current == deployed:
        return None
    held = (f"the deployed secrets name the users {_users(env_name, deployed)}, which the running tasks hold "
            "(they read their secrets when they started)")
    consequence = ("this up would delete them: RabbitMQ closes their connections (CONNECTION_FORCED) and the tasks "
                   "cannot reconnect until compute's rollout replaces them")
    if rotation is None:
        return ConfigError(file, ROTATION_KEY, (
            f"removed, but {held}; without rotation only the unsuffixed users {_users(env_name, None)} are kept, so "
            f"{consequence}. Keep `{ROTATION_KEY}` (epoch: {deployed}); a later epoch, with "
            f"`previous_epoch: {deployed}`, is how the credentials change"))
    if deployed is None:
        if rotation.previous_epoch is None:
            return None
        return ConfigError(file, PREVIOUS_KEY, (
            f"is {rotation.previous_epoch}, but messaging's stack names no epoch ({DEPLOYED_EPOCH_OUTPUT} absent): "
            f"{held}; the users kept beside epoch {rotation.epoch}'s would be "
            f"{_users(env_name, rotation.previous_epoch)}, so {consequence}. Remove `{PREVIOUS_KEY}` (unset, the "
            f"unsuffixed users stay for this rotation). Only if the broker's users are already per epoch "
            f"({_users(env_name, rotation.previous_epoch)}: a stack deployed before it exported "
            f"{DEPLOYED_EPOCH_OUTPUT}), run up once with the epoch deployed and previous_epoch as deployed instead, "
            "which records the epoch, then rotate"))
    if rotation.epoch < deployed:
        return ConfigError(file, EPOCH_KEY, (
            f"is {rotation.epoch}, before the deployed epoch {deployed}: {held}, and no previous_epoch can keep them "
            f"(it must be before the epoch), so {consequence}. Set `{EPOCH_KEY}` to a date after {deployed} and "
            f"`{PREVIOUS_KEY}: {deployed}`"))
    if rotation.previous_epoch == deployed:
        return None
    now = f"is {rotation.previous_epoch}" if rotation.previous_epoch else "is not set"
    return ConfigError(file, PREVIOUS_KEY, (
        f"{now}, but the epoch moves from the deployed {deployed} to {rotation.epoch}: {held}, and {consequence}. "
        f"Set `{PREVIOUS_KEY}: {deployed}` (the epoch deployed so far)"))


def check_rotation(env_name: str, rotation: CredentialsRotation | None, outputs: Mapping[str, Any] | None) -> None:
    """Raise :func:`rotation_refusal`'s error, if any."""
    refusal = rotation_refusal(env_name, rotation, outputs)
    if refusal is not None:
        raise refusal


#: the messaging stack's output naming the epochs whose users it keeps ("" the unsuffixed users): the current epoch's
#: and ``previous_epoch``'s (:func:`kept_epochs`). Absent: a stack deployed before it
KEPT_EPOCHS_OUTPUT = "credentials_kept_epochs"
#: the field of each entry of compute's ``services`` output naming the version of the service's messaging secret its
#: running tasks were given (ECS reads a secret only when a task starts): "" none pinned (no credentials, or a messaging
#: stack from before ``service_secret_versions``), :data:`UNKNOWN_VERSION` one compute could not record, absent a
#: compute stack from before the field
HELD_VERSION_FIELD = "amqp_secret_version"
#: what compute records of a service ECS rolled back before compute had recorded the version its tasks hold
UNKNOWN_VERSION = "unknown"


def _kept(rotation: CredentialsRotation | None) -> list[date | None]:
    """The epochs whose users messaging keeps under ``rotation`` (None the unsuffixed users): the current one and the
    previous one (shared.components.messaging.credential_generations), only the unsuffixed without rotation."""
    return [rotation.epoch, rotation.previous_epoch] if rotation else [None]


def kept_epochs(rotation: CredentialsRotation | None) -> list[str]:
    """:func:`_kept` as messaging exports it (:data:`KEPT_EPOCHS_OUTPUT`: "" the unsuffixed users)."""
    return [epoch.isoformat() if epoch else "" for epoch in _kept(rotation)]


def recorded_secret_versions(compute_outputs: Mapping[str, Any] | None) -> dict[str, str]:
    """Service -> what compute's last ``up`` recorded of the version of its messaging secret its tasks hold ("" none),
    from compute's stack outputs; services without a record (a stack from before :data:`HELD_VERSION_FIELD`) are left
    out. A record of another form (a state changed by hand) is a ContractError naming it."""
    services = (compute_outputs or {}).get("services")
    recorded: dict[str, str] = {}
    for service, entry in (services.items() if isinstance(services, Mapping) else ()):
        version = entry.get(HELD_VERSION_FIELD) if isinstance(entry, Mapping) else None
        if version is None:
            continue
        if not isinstance(version, str):
            raise ContractError.hand_edited("compute", f"services.{service}.{HELD_VERSION_FIELD}", version,
                                            "a secret version (a string)")
        recorded[str(service)] = version
    return recorded


def held_secret_versions(compute_outputs: Mapping[str, Any] | None) -> dict[str, str]:
    """Service -> the version of its messaging secret compute's last ``up`` left its tasks on; services that hold none
    or have no record (:func:`recorded_secret_versions`) are left out."""
    return {service: version for service, version in recorded_secret_versions(compute_outputs).items() if version}


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def deployed_kept_epochs(outputs: Mapping[str, Any] | None) -> list[date | None] | None:
    """The epochs whose users messaging's deployed stack keeps (None in the list: the unsuffixed users), in its order
    (current, previous); None for a stack from before :data:`KEPT_EPOCHS_OUTPUT`. A value of another form (a state
    changed by hand) is a ContractError naming the output."""
    value = (outputs or {}).get(KEPT_EPOCHS_OUTPUT)
    if value is None:
        return None
    problem = ContractError.hand_edited("messaging", KEPT_EPOCHS_OUTPUT, value,
                                        'a list of dates (YYYY-MM-DD) or "" (the unsuffixed users)')
    if not isinstance(value, list):
        raise problem
    kept: list[date | None] = []
    for epoch in value:
        if epoch == "":
            kept.append(None)
            continue
        if not isinstance(epoch, str) or not _ISO_DATE.fullmatch(epoch):
            raise problem
        try:
            kept.append(date.fromisoformat(epoch))
        except ValueError:
            raise problem from None
    return kept


def _users_deleted(env_name: str, rotation: CredentialsRotation | None,
                   messaging_outputs: Mapping[str, Any] | None) -> list[str]:
    """The users this up deletes of those messaging's deployed stack keeps (``ml-<env>-<service>[.<epoch>]``); a stack
    from before :data:`KEPT_EPOCHS_OUTPUT` is judged by its epoch alone (a new one deletes its previous users)."""
    deployed = deployed_epoch(messaging_outputs)
    if isinstance(deployed, Undeployed):
        return []
    kept = deployed_kept_epochs(messaging_outputs)
    if kept is not None:
        gone = set(kept) - set(_kept(rotation))
        return [_users(env_name, epoch) for epoch in sorted(gone, key=lambda day: day or date.min)]
    current = rotation.epoch if rotation else None
    return [f"of the generation before {deployed}"] if deployed is not None and current != deployed else []


def rollout_refusal(env_name: str, rotation: CredentialsRotation | None, messaging_outputs: Mapping[str, Any] | None,
                    compute_outputs: Callable[[], Mapping[str, Any] | None]) -> ConfigError | None:
    """Why an up :func:`rotation_refusal` lets through would still delete users running tasks hold, or None.

    An up that changes the epoch or ``previous_epoch`` deletes the users of the generation messaging no longer keeps
    (the one before the deployed epoch D, or a previous one replaced). That is safe only once compute rolled every
    service onto D's secret: a compute step that did not finish after the rotation to D (refused, interrupted, left
    out with ``--layers``, or rolled back by ECS's circuit breaker) leaves tasks on an older secret, whose users this
    up deletes. Compute records which version each service's tasks hold (:data:`HELD_VERSION_FIELD`); messaging
    exports the version each secret is at (``service_secret_versions``). ``compute_outputs`` reads compute's stack
    outputs, only when this up deletes users."""
    deleted = _users_deleted(env_name, rotation, messaging_outputs)
    versions = (messaging_outputs or {}).get("service_secret_versions")
    if not deleted or not isinstance(versions, Mapping):
        return None  # no user deleted, or a messaging stack from before the versions: nothing to compare with
    behind = {service: (version, str(versions[service])) for service, version in held_secret_versions(
        compute_outputs()).items() if service in versions and str(versions[service]) != version}
    if not behind:
        return None
    where = "; ".join((f"{service}'s tasks hold a version of its secret compute has no record of (ECS rolled it back)"
                       if held == UNKNOWN_VERSION else
                       f"{service}'s tasks hold version {held} of its secret, not the deployed {now}")
                      for service, (held, now) in sorted(behind.items()))
    deployed = deployed_epoch(messaging_outputs)
    kept = deployed_kept_epochs(messaging_outputs)
    previous = f"`{PREVIOUS_KEY}: {kept[1]}`" if kept is not None and len(kept) > 1 and kept[1] else (
        f"`{PREVIOUS_KEY}` unset" if kept is not None else f"`{PREVIOUS_KEY}` as deployed")
    back = f"`{EPOCH_KEY}: {deployed}`, {previous}" if deployed else f"`{ROTATION_KEY}` removed"
    changed = EPOCH_KEY if (rotation.epoch if rotation else None) != deployed else PREVIOUS_KEY
    return ConfigError(_env_file(env_name), changed, (
        f"this up would delete the users {', '.join(deleted)}, but compute's last up did not leave every task on "
        f"the deployed secrets: {where} (a compute step that did not finish after the last change of the secrets, "
        "a rotation or a new broker endpoint: refused, interrupted, left out, or rolled back by ECS). RabbitMQ would "
        "close those tasks' connections (CONNECTION_FORCED) and they could not reconnect until compute's rollout "
        f"replaces them. Set the rotation back as deployed ({back}) and run "
        f"`nox -s up -- {env_name}` until compute's rollout succeeds (it rolls the tasks onto the deployed secrets), "
        "then rotate"))
