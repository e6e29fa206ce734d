"""Customers, their sessions, and failed logins.

Revision ID: evershop_customer_0001
Revises:
Create Date: 2026-11-26
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "evershop_customer_0001"
down_revision = None
branch_labels = ("evershop_customer",)
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "evershop_customer",
        sa.Column("customer_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column(
            "email_canonical",
            sa.String(254).with_variant(
                mysql.VARCHAR(254, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_evershop_customer"),
        sa.UniqueConstraint("uuid", name="uq_evershop_customer_uuid"),
        sa.UniqueConstraint("email_canonical", name="uq_evershop_customer_email_canonical"),
        **MYSQL,
    )
    op.create_table(
        "evershop_customer_session",
        sa.Column("sid", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("sid", name="pk_evershop_customer_session"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["evershop_customer.customer_id"],
            name="fk_evershop_customer_session_customer_id",
            ondelete="CASCADE",
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_evershop_customer_session_customer_id", "evershop_customer_session", ["customer_id"]
    )
    op.create_index(
        "ix_evershop_customer_session_expires_at", "evershop_customer_session", ["expires_at"]
    )
    op.create_table(
        "evershop_customer_login_failure",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evershop_customer_login_failure"),
        **MYSQL,
    )
    op.create_index(
        "ix_evershop_customer_login_failure_subject",
        "evershop_customer_login_failure",
        ["subject", "failed_at"],
    )
    op.create_index(
        "ix_evershop_customer_login_failure_failed_at",
        "evershop_customer_login_failure",
        ["failed_at"],
    )


def downgrade() -> None:
    op.drop_table("evershop_customer_login_failure")
    op.drop_table("evershop_customer_session")
    op.drop_table("evershop_customer")
