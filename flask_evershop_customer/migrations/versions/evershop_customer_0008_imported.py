"""Customers the EverShop import wrote are marked (``imported``: TRUE, else NULL), so that
``import-evershop --update`` refreshes those only. Customers imported before are those
whose password hash is still EverShop's bcrypt one (nothing else writes bcrypt); one that
has logged in here since cannot be told from a customer registered here, and is left
unmarked.

Revision ID: evershop_customer_0008
Revises: evershop_customer_0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "evershop_customer_0008"
down_revision = "evershop_customer_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evershop_customer", sa.Column("imported", sa.Boolean(), nullable=True))
    customers = sa.table("evershop_customer", sa.column("imported"), sa.column("password_hash"))
    op.execute(
        customers.update().where(customers.c.password_hash.like("$2_$%")).values(imported=sa.true())
    )


def downgrade() -> None:
    op.drop_column("evershop_customer", "imported")
