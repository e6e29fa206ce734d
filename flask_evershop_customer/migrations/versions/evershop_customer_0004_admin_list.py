"""Indexes for the admin list of customers: an email prefix and each sort.

Revision ID: evershop_customer_0004
Revises: evershop_customer_0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "evershop_customer_0004"
down_revision = "evershop_customer_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL uses a btree for LIKE 'prefix%' only with the pattern operator class
    # (or the C collation); elsewhere the option is ignored.
    op.create_index(
        "ix_evershop_customer_email_prefix",
        "evershop_customer",
        ["email_canonical"],
        postgresql_ops={"email_canonical": "varchar_pattern_ops"},
    )
    op.create_index(
        "ix_evershop_customer_created_at", "evershop_customer", ["created_at", "customer_id"]
    )
    op.create_index(
        "ix_evershop_customer_full_name", "evershop_customer", ["full_name", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_evershop_customer_full_name", "evershop_customer")
    op.drop_index("ix_evershop_customer_created_at", "evershop_customer")
    op.drop_index("ix_evershop_customer_email_prefix", "evershop_customer")
