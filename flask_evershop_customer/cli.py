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
    """Print a signed admin cookie value for ADMIN_ID (for curl: -b "asid=...")."""
    click.echo(get_state().admin_cookies.sign(admin_id))


@click.command("purge-sessions")
@with_appcontext
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def purge_sessions(batch_size: int) -> None:
    """Delete expired and revoked sessions and old failed-login records, in batches."""
    deleted = get_state().service.purge_sessions(batch_size)
    click.echo(f"Deleted {deleted} expired or revoked sessions.")


@click.command("unlock")
@with_appcontext
@click.argument("email")
def unlock(email: str) -> None:
    """Clear the failed-login lockout of EMAIL."""
    canonical = canonical_email(email)
    if canonical is None:
        raise click.BadParameter("not a valid email address", param_hint="EMAIL")
    cleared = get_state().service.clear_login_failures(canonical)
    click.echo(f"Cleared {cleared} failed logins for {email}.")
