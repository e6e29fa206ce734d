"""Alembic environment for running the shipped revisions through Flask-Migrate.

Hosts with migrations of their own use their own env.py and only add our ``versions``
folder (see ``add_version_location``); this file serves apps that use ours directly.
"""

from alembic import context
from flask import current_app

migrate = current_app.extensions["migrate"]
target_metadata = migrate.db.metadata


def run_offline() -> None:
    context.configure(
        url=migrate.db.engine.url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    with migrate.db.engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, **migrate.configure_args
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
