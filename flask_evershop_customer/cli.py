"""``flask customers ...`` commands."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .schemas import canonical_email
from .state import get_state


def add_commands(group: click.Group) -> None:
    """Attach the extension's commands to the blueprint's ``customers`` group."""
    group.add_command(admin_cookie)
    group.add_command(purge_sessions)
    group.add_command(unlock)


@click.command("admin-cookie")
@with_appcontext
@click.argument("admin_id")
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
def purge_sessions(batch_size: int) -> None:
    """Delete expired and revoked sessions (customers' and admins'), used and expired
    password reset tokens, in batches, and throttling records older than the window."""
    state = get_state()
    sessions = state.sessions.purge(batch_size)
    admin_sessions = state.admin_sessions.purge(batch_size)
    reset_tokens = state.resets.purge(batch_size)
    attempts = state.throttle.purge()
    click.echo(
        f"Deleted {sessions} expired or revoked sessions, {admin_sessions} admin sessions,"
        f" {reset_tokens} reset tokens and {attempts} old throttling records."
    )


@click.command("unlock")
@with_appcontext
@click.argument("email")
def unlock(email: str) -> None:
    """Clear the failed-login lockout of EMAIL."""
    canonical = canonical_email(email)
    if canonical is None:
        raise click.BadParameter("not a valid email address", param_hint="EMAIL")
    cleared = get_state().sessions.clear_login_failures(canonical)
    click.echo(f"Cleared {cleared} failed logins for {email}.")
