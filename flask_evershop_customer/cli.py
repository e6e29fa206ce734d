"""``flask customers ...`` commands."""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from .errors import UPGRADE_HINT, SchemaMissing, is_missing_schema
from .importer import ImportSummary, SourceUnreadable
from .schemas import canonical_email
from .state import get_state

F = TypeVar("F", bound=Callable[..., Any])


def add_commands(group: click.Group) -> None:
    """Attach the extension's commands to the blueprint's ``customers`` group."""
    group.add_command(admin_cookie)
    group.add_command(purge_sessions)
    group.add_command(unlock)
    group.add_command(check_schema)
    group.add_command(import_evershop)


def _needs_schema(command: F) -> F:
    """One line instead of a traceback when the extension's tables are missing."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SchemaMissing, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and not is_missing_schema(exc):
                raise
            raise click.ClickException(
                f"the database lacks flask-evershop-customer's tables or columns: {UPGRADE_HINT}"
            ) from None

    return run  # type: ignore[return-value]


@click.command("check-schema")
@with_appcontext
def check_schema() -> None:
    """Report whether the database has every table, column and index of the extension
    (exit status 1 when something is missing)."""
    tables: list[sa.Table] = [model.__table__ for model in get_state().models]
    missing: list[str] = []
    with current_app.extensions["sqlalchemy"].engine.connect() as connection:
        inspector = sa.inspect(connection)
        present = set(inspector.get_table_names())
        for table in tables:
            if table.name not in present:
                missing.append(f"table {table.name}")
                continue
            columns = {column["name"] for column in inspector.get_columns(table.name)}
            missing += [f"column {table.name}.{c.name}" for c in table.c if c.name not in columns]
            indexes = {index["name"] for index in inspector.get_indexes(table.name)}
            missing += [f"index {i.name}" for i in table.indexes if i.name not in indexes]
    if missing:
        raise click.ClickException(f"missing: {', '.join(missing)}; {UPGRADE_HINT}")
    click.echo("The flask-evershop-customer schema is current.")


@click.command("admin-cookie")
@with_appcontext
@click.argument("admin_id")
@_needs_schema
def admin_cookie(admin_id: str) -> None:
    """Open an admin session for ADMIN_ID and print its cookie value (for curl:
    -b "asid=..."). Refused when the admin loader rejects ADMIN_ID."""
    state = get_state()
    if not state.accepts_admin(admin_id):
        raise click.BadParameter("the admin loader does not accept this id", param_hint="ADMIN_ID")
    click.echo(state.admin_sessions.open(admin_id))


@click.command("purge-sessions")
@with_appcontext
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@_needs_schema
def purge_sessions(batch_size: int) -> None:
    """Delete expired and revoked sessions (customers' and admins'), the refresh tokens
    of ended sessions and expired ones (spent ones of live sessions stay: they detect a
    replay), used and expired password reset tokens, in batches, and throttling records
    older than the window."""
    state = get_state()
    refresh_tokens = state.refresh_tokens.purge(batch_size)
    sessions = state.sessions.purge(batch_size)
    admin_sessions = state.admin_sessions.purge(batch_size)
    reset_tokens = state.resets.purge(batch_size)
    attempts = state.throttle.purge()
    click.echo(
        f"Deleted {sessions} expired or revoked sessions, {refresh_tokens} refresh tokens,"
        f" {admin_sessions} admin sessions, {reset_tokens} reset tokens and {attempts} old"
        " throttling records."
    )


@click.command("unlock")
@with_appcontext
@click.argument("email")
@_needs_schema
def unlock(email: str) -> None:
    """Clear the failed-login lockout of EMAIL."""
    canonical = canonical_email(email)
    if canonical is None:
        raise click.BadParameter("not a valid email address", param_hint="EMAIL")
    cleared = get_state().sessions.clear_login_failures(canonical)
    click.echo(f"Cleared {cleared} failed logins for {email}.")


@click.command("import-evershop")
@with_appcontext
@click.argument("source_url")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@click.option(
    "--update",
    is_flag=True,
    help="Refresh customers imported before (else they are skipped).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("evershop-import-report.csv"),
    show_default=True,
    help="CSV file listing every row that was not imported, and why.",
)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@_needs_schema
def import_evershop(
    source_url: str, dry_run: bool, update: bool, report_path: Path, batch_size: int
) -> None:
    """Copy the customers of the EverShop database at SOURCE_URL (and their addresses),
    keeping their uuids and bcrypt password hashes: they log in with the passwords they
    have. One transaction per batch; running again skips (or, with --update, refreshes)
    the customers already imported."""
    importer = get_state().importer
    try:
        total = importer.count(source_url)
        with click.progressbar(length=total, label="Importing customers") as bar:
            summary = importer.run(
                source_url,
                dry_run=dry_run,
                update=update,
                batch_size=batch_size,
                progress=bar.update,
            )
    except SourceUnreadable as exc:
        raise click.ClickException(str(exc)) from None
    _write_report(report_path, summary)
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{'Dry run, nothing written. ' if dry_run else ''}{verb} {summary.imported} customers"
        f" and {summary.addresses_imported} addresses; {summary.updated} updated,"
        f" {summary.already_here} already here; skipped {summary.skipped_customers} customers"
        f" and {summary.skipped_addresses} addresses (listed in {report_path})."
    )


#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _write_report(path: Path, summary: ImportSummary) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["table", "source_id", "uuid", "email", "reason"])
        for row in summary.skipped:
            cells = [row.table, row.source_id, row.uuid or "", row.email or "", row.reason]
            writer.writerow([_inert(str(cell)) for cell in cells])


def _inert(cell: str) -> str:
    """``cell`` as a spreadsheet shows it, never a formula: one that a source row could
    start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a ``'`` before
    it (OWASP's advice on CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
