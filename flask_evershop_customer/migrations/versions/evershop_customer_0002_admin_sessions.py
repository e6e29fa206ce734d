"""Admin sessions (the row each admin cookie names, so that it can be revoked), and
canonical emails recomputed with NFKC and case folding.

Revision ID: evershop_customer_0002
Revises: evershop_customer_0001
Create Date: 2026-11-29
"""

import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

revision = "evershop_customer_0002"
down_revision = "evershop_customer_0001"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "evershop_customer_admin_session",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("admin_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_evershop_customer_admin_session"),
        **MYSQL,
    )
    op.create_index(
        "ix_evershop_customer_admin_session_admin_id",
        "evershop_customer_admin_session",
        ["admin_id"],
    )
    op.create_index(
        "ix_evershop_customer_admin_session_expires_at",
        "evershop_customer_admin_session",
        ["expires_at"],
    )
    _recompute_canonical_emails()


def _canonical(email: str) -> str | None:
    """The canonical form of this revision (frozen here: later code may change)."""
    try:
        valid = validate_email(unicodedata.normalize("NFKC", email), check_deliverability=False)
    except EmailNotValidError:
        return None
    canonical = unicodedata.normalize("NFKC", valid.normalized.casefold())
    return canonical if len(canonical) <= 254 else None


def _recompute_canonical_emails() -> None:
    """Every row is recomputed (an ASCII punycode domain changes too: it is decoded,
    then folded). One whose new form would collide with another customer's keeps its
    old form (and is reported), so no account is merged or lost."""
    customers = sa.table(
        "evershop_customer",
        sa.column("customer_id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("email_canonical", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(customers.c.customer_id, customers.c.email, customers.c.email_canonical)
    ).all()
    taken = {row.email_canonical for row in rows}
    for row in rows:
        canonical = _canonical(row.email)
        if canonical is None or canonical == row.email_canonical:
            continue
        if canonical in taken:
            print(
                f"evershop_customer_0002: customer {row.customer_id} keeps its old canonical"
                " email: the new form is another customer's"
            )
            continue
        bind.execute(
            sa.update(customers)
            .where(customers.c.customer_id == row.customer_id)
            .values(email_canonical=canonical)
        )
        taken.discard(row.email_canonical)
        taken.add(canonical)


def downgrade() -> None:
    op.drop_table("evershop_customer_admin_session")
