"""Refresh tokens of headless clients (their SHA-256 digests), bound to a session.

Revision ID: evershop_customer_0005
Revises: evershop_customer_0004
Create Date: 2026-11-29
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "evershop_customer_0005"
down_revision = "evershop_customer_0004"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "evershop_customer_refresh_token",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("sid", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("spent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_evershop_customer_refresh_token"),
        sa.ForeignKeyConstraint(
            ["sid"],
            ["evershop_customer_session.sid"],
            name="fk_evershop_customer_refresh_token_sid",
            ondelete="CASCADE",
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_evershop_customer_refresh_token_sid", "evershop_customer_refresh_token", ["sid"]
    )
    op.create_index(
        "ix_evershop_customer_refresh_token_expires_at",
        "evershop_customer_refresh_token",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_table("evershop_customer_refresh_token")
