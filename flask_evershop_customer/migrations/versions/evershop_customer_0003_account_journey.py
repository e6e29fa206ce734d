"""The customer's own account: the ``User-Agent`` a session logged in with (for the list
of one's sessions), and password reset tokens (their SHA-256 digests).

Revision ID: evershop_customer_0003
Revises: evershop_customer_0002
Create Date: 2026-11-29
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "evershop_customer_0003"
down_revision = "evershop_customer_0002"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.add_column(
        "evershop_customer_session", sa.Column("user_agent", sa.String(255), nullable=True)
    )
    op.create_table(
        "evershop_customer_reset_token",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_evershop_customer_reset_token"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["evershop_customer.customer_id"],
            name="fk_evershop_customer_reset_token_customer_id",
            ondelete="CASCADE",
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_evershop_customer_reset_token_customer_id",
        "evershop_customer_reset_token",
        ["customer_id"],
    )
    op.create_index(
        "ix_evershop_customer_reset_token_expires_at",
        "evershop_customer_reset_token",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_table("evershop_customer_reset_token")
    op.drop_column("evershop_customer_session", "user_agent")
