"""The admin list of customers: a page, filtered by an email prefix and a status, sorted,
with the exact total. No request objects.

A page is read through an index whatever the table's size (an email prefix through its
own index, each sort through one that ends with ``customer_id``, which breaks ties);
counting the total reads every match, so it grows with the number of matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .actors import Actor
from .customers import CustomerTables
from .errors import Forbidden
from .models import Models
from .schemas import CustomerQuery, CustomerRecord
from .unit_of_work import UnitOfWork

#: The escape character of LIKE patterns (not a backslash: MySQL treats those in
#: literals too).
LIKE_ESCAPE = "!"


@dataclass(frozen=True)
class CustomerPage:
    """One page of the admin list."""

    items: list[CustomerRecord]
    total: int
    page: int
    limit: int


class CustomerListing(CustomerTables):
    """Admin reads of the customer table, over the host's SQLAlchemy session."""

    def __init__(self, *, uow: UnitOfWork, models: Models) -> None:
        super().__init__(models)
        self._uow = uow

    def page(self, actor: Actor, query: CustomerQuery) -> CustomerPage:
        """The page ``query`` asks for; :class:`Forbidden` unless ``actor`` is an admin."""
        if not actor.is_admin:
            raise Forbidden("Admin credentials are required")
        customers = self._customers
        conditions: list[sa.ColumnElement[bool]] = []
        if query.status is not None:
            conditions.append(customers.c.status == query.status)
        if query.email_prefix:
            conditions.append(self._starts_with(query.email_prefix))
        column = {
            "created_at": customers.c.created_at,
            "email": customers.c.email_canonical,
            "full_name": customers.c.full_name,
            "customer_id": customers.c.customer_id,
        }[query.sort]
        # Unique columns have no ties to break (and their own index gives the order).
        unique = query.sort in ("customer_id", "email")
        keys = [column] if unique else [column, customers.c.customer_id]
        order = [key.desc() if query.descending else key.asc() for key in keys]
        session = self._uow.session
        rows = session.execute(
            sa.select(*self._record_columns)
            .where(*conditions)
            .order_by(*order)
            .limit(query.limit)
            .offset((query.page - 1) * query.limit)
        ).all()
        total = session.scalar(sa.select(sa.func.count()).select_from(customers).where(*conditions))
        return CustomerPage(
            [CustomerRecord(*row) for row in rows], total or 0, query.page, query.limit
        )

    def _starts_with(self, prefix: str) -> sa.ColumnElement[bool]:
        """``email_canonical`` starts with ``prefix``, as each database can answer from an
        index: SQLite's LIKE is case-insensitive and skips the index, its GLOB does not."""
        column: Any = self._customers.c.email_canonical
        if self._uow.session.get_bind().dialect.name == "sqlite":
            literal = "".join(f"[{c}]" if c in "*?[" else c for c in prefix)
            return column.op("GLOB")(literal + "*")  # type: ignore[no-any-return]
        escaped = "".join(LIKE_ESCAPE + c if c in f"%_{LIKE_ESCAPE}" else c for c in prefix)
        return column.like(escaped + "%", escape=LIKE_ESCAPE)  # type: ignore[no-any-return]
