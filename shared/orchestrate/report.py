"""Words and tables for a run: change summaries, failure details, the final summary table."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.orchestrate.model import Action, LayerResult, Operation, Status

# The order Pulumi's own summaries use; anything else (import, discard, ...) follows alphabetically.
_OP_ORDER = ("create", "update", "replace", "delete", "read", "refresh", "same")
_STATUS_STYLE = {Status.SUCCEEDED: "green", Status.FAILED: "bold red", Status.SKIPPED: "yellow",
                 Status.NOT_RUN: "dim", Status.INTERRUPTED: "bold magenta"}


def _sorted_ops(changes: Mapping[str, int]) -> list[tuple[str, int]]:
    def key(item: tuple[str, int]) -> tuple[int, str]:
        op = item[0]
        return (_OP_ORDER.index(op) if op in _OP_ORDER else len(_OP_ORDER), op)

    return sorted(((op, count) for op, count in changes.items() if count), key=key)


def describe_changes(changes: Mapping[str, int], operation: Operation) -> str:
    """``create 3, update 1, same 12`` -- or, for a refresh preview, the drift in those words."""
    ops = _sorted_ops(changes)
    if operation.action is Action.REFRESH and operation.preview_only:
        # A refresh preview's "update" is a resource whose real state differs from the state file,
        # its "delete" one that no longer exists: that is exactly drift. "refresh"/"read" only say a
        # resource was looked at.
        changed = [(op, count) for op, count in ops if op not in ("same", "refresh", "read")]
        if not changed:
            return "no drift"
        return "drift: " + ", ".join(f"{op} {count}" for op, count in changed)
    if not ops:
        return "no changes"
    return ", ".join(f"{op} {count}" for op, count in ops)


DETAIL_LIMIT = 300
"""The most characters a failure detail keeps (the summary table's row, the progress line)."""

# `pulumi` prints the engine's diagnostics (a resource's provider error, a program's exception, a mandatory
# policy violation) in the "Diagnostics:" section of its stdout and then exits non-zero having written
# little or nothing to stderr, so the Automation API's CommandError ("code: N / stdout: ... / stderr: ...")
# often has an empty stderr: the useful line is then the last "error:" line of stdout.
_COMMAND_RESULT = re.compile(r"\A\s*code: (?P<code>-?\d+)\n stdout: (?P<stdout>.*)\n stderr: (?P<stderr>.*)\Z",
                             re.DOTALL)
_ERROR_LINE = re.compile(r"^error:\s*\S", re.IGNORECASE)
# The CLI's closing words after the diagnostics; a line naming the cause says more.
_GENERIC_ERRORS = re.compile(r"^error:\s*(?:(?:update|preview|refresh|destroy|import) failed|an error occurred)\.?$",
                             re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_SECRET_NAME = re.compile(r"PASSPHRASE|PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY", re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>[\w.:-]*(?:passphrase|password|passwd|secret|token|credential|api_?key|private_?key)[\w.-]*"
    r"[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE)
# An AWS error code holding such a word, then its message ("api error InvalidClientTokenId: The security token
# included in the request is invalid", S3's "InvalidToken: The provided token is malformed ..."; the API references'
# "Common Errors"): a CamelCase name of two words or more, then a sentence, which is no assignment.
_AWS_ERROR_CODE = re.compile(r"(?:[A-Z][a-z0-9]*){2,}:\s+")
_SENTENCE_START = re.compile(r"[A-Z][a-z]*\s+\w")
# A URL's userinfo, "user:password@" and a token alone as the user ("https://<token>@github.com", as git accepts)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_CIPHERTEXT = re.compile(r"\bv1:[A-Za-z0-9+/=]{8,}:[A-Za-z0-9+/=]{8,}")  # a `secure:` config value, encrypted
REDACTED = "[redacted]"
# AWS's words for a session past its end: ExpiredToken (S3, STS; the CLI's S3 backend writing a checkpoint,
# pulumi/pulumi#19452), ExpiredTokenException (the JSON APIs: "The security token included in the request is expired").
_EXPIRED_CREDENTIALS = re.compile(r"\bExpiredToken(?:Exception)?\b|security token included in the request is expired")
EXPIRED_CREDENTIALS = (
    "AWS credentials expired (ExpiredToken): renew them (CI: role-duration-seconds, the deploy role's "
    "MaxSessionDuration; a laptop: a profile, not exported keys) and run again")
#: What a layer's own run cut by them may have left (:func:`failure_detail` with ``midway``); a read before anything
#: ran (a stack's outputs or state, "nothing was run") left nothing.
EXPIRED_MIDWAY = (
    "; cut midway, the layer may be half made, state unsaved (the next run names a lock or pending create left)")

# AWS's words for a request an AWS Organizations policy refused (IAM user guide, "Troubleshoot access denied error
# messages": "... is not authorized to perform: <action> on resource: <resource> with an explicit deny in a service
# control policy", or "because no service control policy allows the <action> action" under an allow-list SCP; a
# resource control policy alike). The policy type comes last in a long line, cut by the summary's limit.
_ORGANIZATION_DENIAL = re.compile(
    r"not authorized to perform:? (?P<action>[\w-]+:[\w*]+)(?: on resource: \"?(?P<resource>[^\s\"]+)\"?)? "
    r"(?:with an explicit deny in an?|because no) (?P<kind>service control|resource control) polic")
#: Whom every message of an organization's denial sends the user to; :func:`failure_detail` keeps a text naming it as is
#: (a read's failure the account check wrapped in its own words already).
ORGANIZATIONS_ADMINISTRATOR = "AWS Organizations administrator"
ORGANIZATION_DENIAL = ("{action}{on}: denied by a {kind} policy (IAM cannot allow it): ask the "
                       f"{ORGANIZATIONS_ADMINISTRATOR} (README, Organizations policies and Control Tower)")
#: What a layer's own run stopped by such a denial left (:func:`failure_detail` with ``midway``).
ORGANIZATION_DENIAL_MIDWAY = "; the layer is half done: run again once allowed"


def organization_denial(text: str, environ: Mapping[str, str] | None = None, *, midway: bool = False) -> str | None:
    """What to say of a request an SCP or RCP of the account's organization denied, named in ``text``; else None. The
    action is an IAM action name (``secretsmanager:CreateSecret`` is no secret assignment); the resource is redacted."""
    match = _ORGANIZATION_DENIAL.search(_ANSI.sub("", text))
    if match is None:
        return None
    resource = redact(match["resource"] or "", environ)
    after = ORGANIZATION_DENIAL_MIDWAY if midway else ""
    said = ORGANIZATION_DENIAL.format(action=match["action"], on=f" on {resource}", kind=match["kind"]) + after
    if not resource or len(said) > DETAIL_LIMIT - 20:  # the summary keeps it whole, the error's type name before it
        said = ORGANIZATION_DENIAL.format(action=match["action"], on="", kind=match["kind"]) + after
    return said


# A read of a checkpoint of the broker's or messaging's stack refused by an explicit deny of an identity policy (the
# CLI's S3 backend: gocloud's `blob (key ".pulumi/stacks/<project>/<stack>.json") (code=PermissionDenied)` and S3's
# AccessDenied, whose message names the policy type: "with an explicit deny in an identity-based policy"): the
# read-only role's deny (shared.deploy_role.secret_state_denials), met by a preview of those layers or of one reading
# them. Any other refusal (a deploy role without the grant: "because no identity-based policy allows") keeps its text.
_SECRET_STATE_DENIAL = re.compile(
    r"\.pulumi/(?:stacks|history|backups|journal)/(?P<layer>[\w-]+)/[^\n]*?"
    r"explicit deny in an identity-based policy")
SECRET_STATE_DENIAL = (
    "reading the {layer} state was denied: the read-only role (pull requests' previews) may not read the "
    "broker's or messaging's state, which holds the broker admin password, so a preview of {layers} needs the deploy "
    "role (README, CI/CD step 3)")


def secret_state_denial(text: str) -> str | None:
    """What to say of a refused read of a :data:`shared.dag.SECRET_STATE_LAYERS` layer's state (``text``), or None."""
    from shared.dag import SECRET_STATE_LAYERS, downstream_closure

    match = _SECRET_STATE_DENIAL.search(_ANSI.sub("", text))
    if match is None or match["layer"] not in SECRET_STATE_LAYERS:
        return None
    return SECRET_STATE_DENIAL.format(layer=match["layer"],
                                      layers=", ".join(downstream_closure(SECRET_STATE_LAYERS)))


_SWITCH_VALUES = frozenset({"true", "false"})  # PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true: a switch, no secret


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of ``environ``'s secret-looking variables to mask, longest first (a token containing a shorter
    secret is masked whole, not around it), with each line (8+ characters) of a multi-line one (a PEM key), since
    the live output is met a line at a time; a boolean switch named like a secret is no secret."""
    values: set[str] = set()
    for name, value in environ.items():
        if not _SECRET_NAME.search(name) or len(value) < 4 or value.strip().lower() in _SWITCH_VALUES:
            continue
        values.add(value)
        if "\n" in value:
            values.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)
    return sorted(values, key=lambda value: (-len(value), value))


def redact_stream(text: str, environ: Mapping[str, str] | None = None) -> str:
    """A line of ``pulumi``'s live output without what is certainly a secret: the values of this process's
    secret-looking environment variables (the passphrase, an access token, AWS keys) and credentials in a URL (a
    provider or program error naming ``amqps://user:password@host``). Pulumi masks a secret output as ``[secret]``
    in its display, not inside an error's text, and the live stream is what a CI log keeps. The word-based rules of
    :func:`redact` stay off here: they would mask resource types such as ``aws:secretsmanager/secret:Secret``."""
    for value in _secret_values(os.environ if environ is None else environ):
        text = text.replace(value, REDACTED)
    return mask_url_credentials(text)


def mask_url_credentials(text: str) -> str:
    """``text`` with the userinfo of every URL in it (``user:password@``, a token as the user) shown as
    ``[redacted]@``."""
    return _URL_USERINFO.sub(lambda match: match["scheme"] + REDACTED + "@", text)


def _redact_assignment(match: re.Match[str]) -> str:
    if _AWS_ERROR_CODE.fullmatch(match["name"]) and _SENTENCE_START.match(match.string, match.start("value")):
        return match[0]
    return match["name"] + REDACTED


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` without anything that may be a secret or a config value: the values of secret-looking
    environment variables (a passphrase, a token), ``password=...``-style assignments, credentials in a
    URL and encrypted ``secure:`` config values. Pulumi itself masks a secret output as ``[secret]``."""
    for value in _secret_values(os.environ if environ is None else environ):
        text = text.replace(value, REDACTED)
    text = _SECRET_ASSIGNMENT.sub(_redact_assignment, text)
    text = mask_url_credentials(text)
    return _CIPHERTEXT.sub(REDACTED, text)


def _clean_lines(text: str) -> list[str]:
    text = _ANSI.sub("", text)
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _telling_lines(lines: list[str]) -> list[str]:
    """The last two distinct ``error:`` lines, the CLI's generic closing ones only when nothing else says more."""
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    specific = [line for line in errors if not _GENERIC_ERRORS.match(line)]
    chosen = list(dict.fromkeys(specific or errors))
    return chosen[-2:]


# The holder lines a self-managed backend adds under its lock error (pkg/backend/diy/lock.go checkForLock).
_LOCK_HOLDER = re.compile(r"^\s*\S+: created by (?P<holder>.+)$", re.MULTILINE)


def locked_detail(error: BaseException, stack: str | None = None, backend_url: str | None = None) -> str | None:
    """What a layer met by another run's stack lock says instead of the CLI's "delete the lock file with `pulumi
    cancel`": cancel removes every lock of the stack, the live run's too (on Pulumi Cloud it ends the live update).
    None for any other error. The Automation API raises ConcurrentUpdateError for both backends' words
    (pulumi.automation.errors: a self-managed backend's "the stack is currently locked by", Pulumi Cloud's "[409]
    Conflict: Another update is currently in progress."). Given the ``stack`` (``<org>/<layer>/<env>``) and the
    ``backend_url`` it is on, the cancel is spelt out (:func:`shared.orchestrate.locks.cancel_command`)."""
    from pulumi.automation import ConcurrentUpdateError

    from shared.orchestrate.locks import cancel_command, cancel_effect

    if not isinstance(error, ConcurrentUpdateError):
        return None
    holders = [match["holder"].strip() for match in _LOCK_HOLDER.finditer(str(error))]
    held = f"held by {', '.join(holders)}" if holders else "an update in progress"
    said = f"locked by another run ({held}): this layer changed nothing. Wait for that run to end, then run again; "
    if stack is None:
        return said + "`pulumi cancel` only if it is dead (it releases every lock of the stack)"
    return f"{said}{cancel_command(stack, backend_url)} only if it is dead ({cancel_effect(backend_url)})"


def failure_detail(error: BaseException, environ: Mapping[str, str] | None = None, *, midway: bool = False) -> str:
    """At most :data:`DETAIL_LIMIT` characters saying why a layer failed (the full output was streamed live).

    For a ``pulumi`` CommandError: the last ``error:`` lines of its stderr, else of its stdout (where the CLI
    prints the diagnostics), else the last line of either, else the exit code; secrets redacted. A stack locked by
    another run: :func:`locked_detail`. Expired AWS credentials: :data:`EXPIRED_CREDENTIALS`, and with ``midway`` (the
    error ended the layer's own run, not a read before it) :data:`EXPIRED_MIDWAY`; an error whose text says so
    already (a read's failure wrapped in its own words) keeps those words. A request an organization's SCP or RCP
    denied: :func:`organization_denial`. A refused read of broker's or messaging's state: :func:`secret_state_denial`.
    """
    text = str(error).strip("\n")
    match = _COMMAND_RESULT.match(text)
    locked = locked_detail(error)
    denied = None if ORGANIZATIONS_ADMINISTRATOR in text else organization_denial(text, environ, midway=midway)
    if locked is not None:
        said = locked
    elif _EXPIRED_CREDENTIALS.search(text) and EXPIRED_CREDENTIALS not in text:
        said = EXPIRED_CREDENTIALS + (EXPIRED_MIDWAY if midway else "")  # its cause comes last in a long line, cut
    elif denied is not None:
        said = denied  # the action and the policy type come last in a long line, cut; redacted already
    elif (secret_state := secret_state_denial(text)) is not None:
        said = secret_state
    elif match is None:
        lines = _clean_lines(text)
        said = lines[-1] if lines else ""
    else:
        stderr, stdout = _clean_lines(match["stderr"]), _clean_lines(match["stdout"])
        telling = _telling_lines(stderr)
        if not telling or all(_GENERIC_ERRORS.match(line) for line in telling):
            telling = _telling_lines(stdout) or telling
        if not telling:
            last = (stderr or stdout)[-1:]
            telling = last
        said = " | ".join(telling) if telling else f"pulumi exited with code {match['code']} and printed nothing"
    if said != denied:
        said = redact(said, environ)
    detail = f"{type(error).__name__}: {said}" if said else type(error).__name__
    return detail if len(detail) <= DETAIL_LIMIT else detail[:DETAIL_LIMIT - 1] + "\u2026"


def print_summary(results: Sequence[LayerResult], operation: Operation, env_name: str, stream: TextIO) -> None:
    console = Console(file=stream, width=120, highlight=False, soft_wrap=False)
    table = Table(title=f"{operation.label} {env_name}", title_justify="left")
    table.add_column("layer")
    table.add_column("result")
    table.add_column("changes")
    table.add_column("duration", justify="right")
    for result in results:
        ran = result.status in (Status.SUCCEEDED, Status.FAILED, Status.INTERRUPTED)
        if result.status is Status.SUCCEEDED:
            changes = describe_changes(result.changes, operation)
            changes = f"{changes}; {escape(result.detail)}" if result.detail else changes
        else:
            changes = escape(result.detail)  # rich markup would swallow "[secret]", "[redacted]", "[mandatory]"
        table.add_row(result.layer, f"[{_STATUS_STYLE[result.status]}]{result.status.value}[/]", changes,
                      f"{result.duration_s:.1f}s" if ran else "-")
    console.print(table)
    counts = [f"{sum(r.status is status for r in results)} {status.value}" for status in Status
              if any(r.status is status for r in results)]
    console.print(f"{operation.label} {env_name}: {', '.join(counts)}")
