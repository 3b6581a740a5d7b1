"""The rehearsal's tables: routes, the access (refusal) matrix, dead-lettering, consumer timeouts, what the
node runs differently from the deployed broker, and the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shared.rehearse.checks import AccessResult, RehearsalReport

PASS = "[green]✓[/green]"
FAIL = "[bold red]✗[/bold red]"


def routes_table(report: RehearsalReport) -> Table:
    table = Table(title=f"Routes in vhost {report.vhost} (published with each service's own credentials)")
    for column in ("publisher", "exchange", "routing key", "catalog says", "delivered to", ""):
        table.add_column(column)
    for route in report.routes:
        table.add_row(route.publisher, route.exchange, route.routing_key, ", ".join(route.expected) or "-",
                      ", ".join(route.delivered) or "-", PASS if route.ok else f"{FAIL} {route.problem}")
    return table


def _cell(result: AccessResult | None) -> str:
    if result is None:
        return "[dim]·[/dim]"
    observed = "?" if result.allowed is None else ("allowed" if result.allowed else "refused")
    if result.ok:
        colour = "green" if result.allowed else "cyan"
        return f"[{colour}]{observed}[/{colour}] {PASS}"
    expected = "allowed" if result.expected_allowed else "refused"
    return f"[bold red]{observed.upper()}[/bold red] {FAIL} (expected {expected})"


def access_matrix(report: RehearsalReport) -> Table:
    services = list(dict.fromkeys(result.service for result in report.access))
    rows = list(dict.fromkeys(result.row for result in report.access))
    by_cell = {(result.row, result.service): result for result in report.access}
    table = Table(title="Access matrix (each service with its own credentials; · = not applicable)")
    table.add_column("operation")
    for service in services:
        table.add_column(service)
    for row in rows:
        table.add_row(row, *(_cell(by_cell.get((row, service))) for service in services))
    return table


def dead_letter_table(report: RehearsalReport) -> Table:
    table = Table(title="Dead-lettering (the consumer rejects with requeue=False)")
    for column in ("service", "work queue", "dead-letter queue", ""):
        table.add_column(column)
    for result in report.dead_letters:
        table.add_row(result.service, result.queue, result.dead_letter_queue,
                      PASS if result.ok else f"{FAIL} {result.problem}")
    return table


def policy_change_table(report: RehearsalReport) -> Table:
    table = Table(title="Queue settings changed in place (policy + operator policy through the management API)")
    for column in ("queue", "change", "messages kept", ""):
        table.add_column(column)
    for result in report.policy_changes:
        table.add_row(result.queue, result.change, str(result.kept),
                      f"{PASS} applied to the existing queue, no redeclare" if result.ok
                      else f"{FAIL} {result.problem}")
    return table


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def consumer_timeout_table(report: RehearsalReport) -> Table:
    table = Table(title="Consumer timeouts (each work queue's policy: its consumer's max_job_seconds)")
    for column in ("service", "work queue", "catalog", "policy", "node applies", ""):
        table.add_column(column)
    for result in report.consumer_timeouts:
        applied = _ms(result.applied) if result.applied is not None else "[yellow]not on this node[/yellow]"
        table.add_row(result.service, result.queue, _ms(result.expected), _ms(result.declared),
                      applied if result.expected is not None else "-",
                      PASS if result.ok else f"{FAIL} {result.problem}")
    return table


def print_report(report: RehearsalReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(routes_table(report))
    console.print(access_matrix(report))
    console.print(dead_letter_table(report))
    console.print(policy_change_table(report))
    console.print(consumer_timeout_table(report))
    if report.divergences:
        console.print("[yellow]This node runs differently from the deployed broker (not proven here):[/yellow]")
        for line in report.divergences:
            console.print(f"  - {line}", markup=False, highlight=False)
    if report.restarted:
        console.print("maintenance restart rehearsed: the node restarted, its queued messages and definitions kept, "
                      "each service back in with the credentials it started with", markup=False, highlight=False)
    if report.rotation is not None:
        console.print(f"credentials rotation rehearsed ({report.rotation}): running connections and reconnects with "
                      "the credentials they started with, and the new ones", markup=False, highlight=False)
    failures = report.failures()
    counts = (f"{len(report.routes)} routes, {len(report.access)} access probes, "
              f"{len(report.dead_letters)} dead-letter checks, {len(report.policy_changes)} in-place policy changes, "
              f"{len(report.consumer_timeouts)} consumer timeouts, {len(report.divergences)} divergences from the "
              "deployed broker")
    if not failures:
        console.print(f"[bold green]rehearsal of {report.env} passed[/bold green]: {counts}")
        return
    console.print(f"[bold red]rehearsal of {report.env} failed[/bold red] ({counts}; {len(failures)} broke):")
    for failure in failures:
        console.print(f"  - {failure}", markup=False, highlight=False)
