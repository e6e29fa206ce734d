"""Reset tokens name their customer's uuid, which is never reused (a customer_id can be).

Pending tokens are removed: they cannot be bound to an owner after the fact, and they
live an hour at most (a customer asks for a new link).

Revision ID: evershop_customer_0007
Revises: evershop_customer_0006
Create Date: 2026-12-07
"""

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision = "evershop_customer_0007"
down_revision = "evershop_customer_0006"
branch_labels = None
depends_on = None

TABLE = "evershop_customer_reset_token"


def _recreate() -> Literal["always", "auto"]:
    # SQLite cannot ADD a NOT NULL column without a default: it copies the table.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    op.execute(sa.text(f"DELETE FROM {TABLE}"))
    with op.batch_alter_table(TABLE, recreate=_recreate()) as batch:
        batch.add_column(sa.Column("customer_uuid", sa.String(32), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table(TABLE, recreate=_recreate()) as batch:
        batch.drop_column("customer_uuid")
