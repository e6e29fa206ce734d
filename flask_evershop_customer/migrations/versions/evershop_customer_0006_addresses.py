"""Customers' addresses: deleted with their customer; at most one default each.

Revision ID: evershop_customer_0006
Revises: evershop_customer_0005
Create Date: 2026-11-29
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "evershop_customer_0006"
down_revision = "evershop_customer_0005"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "evershop_customer_address",
        sa.Column("customer_address_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("telephone", sa.String(16), nullable=True),
        sa.Column("address_1", sa.String(255), nullable=False),
        sa.Column("address_2", sa.String(255), nullable=True),
        sa.Column("postcode", sa.String(32), nullable=False),
        sa.Column("city", sa.String(255), nullable=True),
        sa.Column("province", sa.String(8), nullable=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        # TRUE or NULL, never FALSE: the unique constraint below allows one default.
        sa.Column("is_default", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("customer_address_id", name="pk_evershop_customer_address"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["evershop_customer.customer_id"],
            name="fk_evershop_customer_address_customer_id",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("uuid", name="uq_evershop_customer_address_uuid"),
        sa.UniqueConstraint(
            "customer_id", "is_default", name="uq_evershop_customer_address_default"
        ),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("evershop_customer_address")
