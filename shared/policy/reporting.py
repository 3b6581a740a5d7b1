"""Findings for people (a table grouped by env/layer/rule) and for machines (JSON, SARIF 2.1.0)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shared import REPO_ROOT
from shared.policy.findings import Finding, PolicyResult
from shared.policy_catalog import load_rules

if TYPE_CHECKING:
    from shared.synth.engine import SynthError

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "ml-platform-policy"
TOOL_VERSION = "1.0.0"
_SARIF_LEVEL = {"mandatory": "error", "advisory": "warning", "disabled": "none"}


# -- JSON -----------------------------------------------------------------------------------------


def findings_json(findings: Sequence[Finding], error: SynthError | None = None,
                  program_dir: Path | None = None) -> str:
    """The findings JSON (README, File formats): an array of finding objects, stable order and bytes;
    for a program that failed, one error record instead."""
    records = [finding.to_json() for finding in findings]
    if error is not None:
        records.append(error_record(error, program_dir))
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def write_json(path: Path, findings: Sequence[Finding], error: SynthError | None = None,
               program_dir: Path | None = None) -> None:
    from shared.cli import write_output

    write_output(path, findings_json(findings, error, program_dir), "--json")


_FRAME = re.compile(r"^(?P<path>.+):(?P<line>\d+) in ")


def _innermost_location(error: SynthError) -> tuple[str, int] | None:
    """``(path, line)`` of the program's innermost frame (the last one), if the error has frames."""
    if not error.frames:
        return None
    match = _FRAME.match(error.frames[-1].split("\n", 1)[0])
    return (match["path"], int(match["line"])) if match else None


def _failure_message(error: SynthError) -> str:
    return f"the program failed under the mock runtime: {error.error}"


def error_record(error: SynthError, program_dir: Path | None = None) -> dict[str, Any]:
    """The findings-JSON record of a program that failed under the mock runtime: the keys of a finding
    (``rule`` null, ``enforcement`` "error") plus ``error`` (the exception, the program's frames
    innermost last, the warnings noticed before) and ``location`` (the innermost frame)."""
    innermost = _innermost_location(error)
    record: dict[str, Any] = {
        "rule": None, "pack": None, "enforcement": "error", "env": None, "layer": None, "urn": None,
        "resource_type": None, "message": _failure_message(error),
        "suppressed": False, "reason": None, "severity": "",
        "error": {"exception": error.error, "frames": error.frames, "warnings": error.warnings},
    }
    if innermost is not None:
        path, line = innermost
        if program_dir is not None and Path(path).is_relative_to(program_dir.resolve()):
            path = Path(path).relative_to(program_dir.resolve()).as_posix()
        record["location"] = {"path": path, "line": line}
    return record


# -- SARIF ----------------------------------------------------------------------------------------


@cache
def rule_help(rule_id: str) -> str:
    """The rule module's docstring (what, why, cdk-nag/checkov id), read without importing it."""
    rule = load_rules()[rule_id]
    try:
        tree = ast.parse(rule.path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return rule.summary
    return (ast.get_docstring(tree) or rule.summary).strip()


def explain(rule_id: str) -> str:
    """A rule's documentation for people (``nox -s policy -- --explain RULE``): summary, severity,
    levels, equivalents, remediation, link, then the rule module's docstring."""
    rule = load_rules()[rule_id]
    meta = rule.meta
    lines = [
        f"{rule_id} ({rule.pack} pack): {rule.summary}",
        f"severity:     {meta.severity}",
        f"levels:       dev {rule.levels.dev}, staging {rule.levels.staging}, prod {rule.levels.prod}",
        f"equivalents:  {', '.join(meta.equivalents.labelled()) or 'none in the anchor rule sets'}",
        f"remediation:  {meta.remediation}",
        f"docs:         {meta.docs}",
        f"source:       {rule.path.relative_to(REPO_ROOT).as_posix()}",
        "",
        rule_help(rule_id),
    ]
    return "\n".join(lines) + "\n"


def _rule_descriptor(rule_id: str) -> dict[str, Any]:
    rule = load_rules()[rule_id]
    meta = rule.meta
    help_text = rule_help(rule_id)
    equivalents = meta.equivalents.labelled()
    markdown = (f"{help_text}\n\n**Remediation:** {meta.remediation}\n\n**Severity:** {meta.severity}"
                + (f"\n\n**Equivalents:** {', '.join(equivalents)}" if equivalents else "")
                + f"\n\n[Documentation]({meta.docs})")
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": help_text.split("\n\n", 1)[0].replace("\n", " ")},
        "helpUri": meta.docs,
        "help": {"text": f"{help_text}\n\nRemediation: {meta.remediation}", "markdown": markdown},
        # The level a rule has where every rule applies at its strictest (prod); each result
        # carries the level that applied in its env.
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.levels.prod]},
        "properties": {
            "pack": rule.pack,
            "levels": {"dev": rule.levels.dev, "staging": rule.levels.staging, "prod": rule.levels.prod},
            # GitHub code scanning shows a rule's security-severity only for rules tagged "security".
            "tags": ["security", "policy", rule.pack, *equivalents],
            "security-severity": meta.security_severity,
            "severity": meta.severity,
        },
    }


def _uri(path: Path) -> str:
    """A path relative to the repo when inside it (code scanning's checkout), else a file URI; either
    percent-encoded (SARIF's artifactLocation.uri is a "uri-reference": no spaces, no ``<>``)."""
    path = path.resolve()
    try:
        return quote(path.relative_to(REPO_ROOT).as_posix(), safe="/")
    except ValueError:
        return path.as_uri()


def _artifact(finding: Finding, program_dir: Path | None) -> str:
    if program_dir is not None:
        relative = finding.location[0] if finding.location else "__main__.py"
        return _uri(program_dir / relative)
    if finding.layer:
        return f"stacks/{finding.layer}/__main__.py"
    return "Pulumi.yaml"


def _physical(finding: Finding, program_dir: Path | None) -> dict[str, Any]:
    """The artifact and, for --program runs, the line that created the resource (line 1 of the main
    file for what no program line created: the stack itself, default providers)."""
    location: dict[str, Any] = {"artifactLocation": {"uri": _artifact(finding, program_dir)}}
    if program_dir is not None:
        location["region"] = {"startLine": finding.location[1] if finding.location else 1}
    return location


def _invocation(error: SynthError | None, warnings: Sequence[str], program_dir: Path | None) -> dict[str, Any]:
    """SARIF ``invocations[0]`` of a --program run: whether it ran, and what it could not judge."""
    notifications: list[dict[str, Any]] = [{"level": "warning", "message": {"text": text}} for text in warnings]
    if error is not None:
        notifications.extend({"level": "warning", "message": {"text": text}} for text in error.warnings)
        failure: dict[str, Any] = {
            "level": "error",
            "message": {"text": _failure_message(error)
                                + "".join(f"\n  {frame}" for frame in error.frames)},
        }
        innermost = _innermost_location(error)
        if innermost is not None:
            failure["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": _uri(Path(innermost[0]))},
                                                          "region": {"startLine": innermost[1]}}}]
        notifications.append(failure)
    return {"executionSuccessful": error is None, "toolExecutionNotifications": notifications}


def sarif(findings: Sequence[Finding], program_dir: Path | None = None, error: SynthError | None = None,
          warnings: Sequence[str] = ()) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, every catalog rule as a descriptor, one result per finding; a
    --program run also says in ``invocations`` whether the program ran (and why not) and what it
    could not judge offline."""
    rule_ids = list(load_rules())
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    results: list[dict[str, Any]] = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": _SARIF_LEVEL.get(finding.enforcement, "warning"),
            "message": {"text": finding.message},
            "locations": [{
                "physicalLocation": _physical(finding, program_dir),
                "logicalLocations": [{
                    "name": finding.resource_name or "",
                    "fullyQualifiedName": finding.urn or "",
                    "kind": "resource",
                }],
            }],
            "partialFingerprints": {
                "policyFinding/v1": hashlib.sha256(
                    f"{finding.rule}|{finding.env}|{finding.layer}|{finding.urn}".encode()).hexdigest(),
            },
            "properties": {
                "pack": finding.pack,
                "enforcement": finding.enforcement,
                "env": finding.env,
                "layer": finding.layer,
                "urn": finding.urn,
                "resourceType": finding.resource_type,
            },
        }
        if finding.suppressed:
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": finding.reason or ""}]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": TOOL_NAME,
            "version": TOOL_VERSION,
            "informationUri": "https://www.pulumi.com/docs/iac/packages-and-automation/crossguard/",
            "rules": [_rule_descriptor(rule_id) for rule_id in rule_ids],
        }},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if program_dir is not None or error is not None or warnings:
        run["invocations"] = [_invocation(error, warnings, program_dir)]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def write_sarif(path: Path, findings: Sequence[Finding], program_dir: Path | None = None,
                error: SynthError | None = None, warnings: Sequence[str] = ()) -> None:
    from shared.cli import write_output

    write_output(path, json.dumps(sarif(findings, program_dir, error, warnings), indent=2, ensure_ascii=False) + "\n",
                 "--sarif")


# -- table ----------------------------------------------------------------------------------------


def _status(finding: Finding) -> str:
    if finding.suppressed:
        return f"[dim]suppressed: {escape(finding.reason or '')}[/dim]"
    if finding.enforcement == "mandatory":
        return "[bold red]mandatory[/bold red]"
    return "[yellow]advisory[/yellow]"


#: An advisory rule's findings of one layer from this many on are one row of the table (every resource named, the
#: first one's message): staging's prod-protect-stateful alone was 55 rows of the same words. The JSON and SARIF
#: reports keep every finding; a mandatory or suppressed one always has a row of its own.
FOLDED_ADVISORIES = 4


def _resource_cell(finding: Finding) -> str:
    resource = f"{finding.resource_name} ({finding.resource_type})" if finding.resource_type else \
        (finding.resource_name or "")
    if finding.location:
        resource += f" at {finding.location[0]}:{finding.location[1]}"
    return resource


def _rows(findings: Sequence[Finding]) -> list[tuple[Finding, str, str]]:
    """(finding, resource cell, message) per row: an advisory rule's :data:`FOLDED_ADVISORIES` or more unsuppressed
    findings of the layer folded into the row of its first."""
    advisory: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.enforcement != "mandatory" and not finding.suppressed:
            advisory.setdefault(finding.rule, []).append(finding)
    folded = {rule: group for rule, group in advisory.items() if len(group) >= FOLDED_ADVISORIES}
    in_fold = {id(finding) for group in folded.values() for finding in group}
    rows: list[tuple[Finding, str, str]] = []
    for finding in findings:
        group = folded.get(finding.rule)
        if group is None or id(finding) not in in_fold:
            rows.append((finding, _resource_cell(finding), finding.message))
        elif finding is group[0]:
            names = "; ".join(_resource_cell(each) for each in group)
            rows.append((finding, f"{len(group)} resources: {names}",
                         f"{finding.message} (the same for the other {len(group) - 1})"))
    return rows


def render_table(result: PolicyResult, console: Console | None = None) -> None:
    """One table per env/layer, rows grouped by rule (an advisory rule's many findings in one row); then a one-line
    summary."""
    console = console or Console()
    groups: dict[tuple[str | None, str | None], list[Finding]] = {}
    for finding in result.findings:
        groups.setdefault((finding.env, finding.layer), []).append(finding)
    for (env, layer), findings in groups.items():
        title = f"env {env or '-'} / layer {layer or '-'}" if (env or layer) else "program"
        table = Table(title=title, title_justify="left", show_lines=False, expand=False)
        table.add_column("rule", style="cyan", no_wrap=True)
        table.add_column("level", no_wrap=True)
        table.add_column("resource", overflow="fold")
        table.add_column("message", overflow="fold")
        previous = None
        for finding, resource, message in _rows(findings):
            rule_cell = finding.rule if finding.rule != previous else ""
            previous = finding.rule
            # Messages quote code (``settings=[...]``): plain Text, never parsed as rich markup.
            table.add_row(rule_cell, _status(finding), Text(resource), Text(message))
        console.print(table)
    for line in result.warnings:
        console.print(Text(f"warning: {line}", style="yellow"))
    _render_summary(result, console)


def unused_suppressions(result: PolicyResult) -> list[tuple[str, str, str]]:
    """(env, rule, resource pattern) of each env suppression that matched no finding of this run:
    a stale suppression would silently hide the next real finding of that rule."""
    from shared.policy.enforcement import enforcement_for

    unused: list[tuple[str, str, str]] = []
    for env in result.envs:
        for suppression in enforcement_for(env).suppressions:
            if not any(finding.env == env and suppression.matches(finding) for finding in result.findings):
                unused.append((env, suppression.rule, suppression.resource))
    return unused


def _render_summary(result: PolicyResult, console: Console) -> None:
    """Every env with its counts (also those with no finding), then the blocking findings, then the
    verdict naming them: the last lines of a CI log say what failed and where."""
    if result.envs:
        table = Table(title="summary per env", title_justify="left")
        for column in ("env", "mandatory (unsuppressed)", "advisory", "suppressed"):
            table.add_column(column)
        for env in result.envs:
            mine = [finding for finding in result.findings if finding.env == env]
            table.add_row(env, str(sum(1 for f in mine if f.blocking)),
                          str(sum(1 for f in mine if not f.suppressed and f.enforcement == "advisory")),
                          str(sum(1 for f in mine if f.suppressed)))
        console.print(table)
    for env, rule, resource in unused_suppressions(result):
        console.print(Text(f"warning: env {env}: suppression of {rule} for {resource!r} matched no finding; "
                           "remove it from policy.suppressions", style="yellow"))
    blocking = result.blocking
    if blocking:
        console.print("[bold red]blocking findings:[/bold red]")
        for finding in blocking:
            where = f"{finding.env}/{finding.layer}" if finding.env else "program"
            console.print(Text(f"  {finding.rule} [{where}] {finding.resource_name}: {finding.message}"))
    suppressed = sum(1 for finding in result.findings if finding.suppressed)
    advisory = sum(1 for finding in result.findings if not finding.suppressed and finding.enforcement == "advisory")
    verdict = "[bold red]FAIL[/bold red]" if blocking else "[bold green]PASS[/bold green]"
    rules = sorted({finding.rule for finding in blocking})
    named = f" ({', '.join(rules)})" if rules else ""
    console.print(f"{verdict}: {len(result.findings)} finding(s) -- {len(blocking)} unsuppressed mandatory{named}, "
                  f"{advisory} advisory, {suppressed} suppressed -- over {result.resources} resources in "
                  f"{result.documents} stack(s)")
