"""Addresses: a customer's own, or any customer's for an admin; list, add, change,
delete. No request objects.

Every write locks the customer's row first (``SELECT ... FOR UPDATE``; SQLite's write
lock), in a transaction that starts with that lock, so the writes to one customer's
addresses run one after the other and each reads what the one before it committed: the
limit on their number and the single default hold under concurrency. A unique constraint on
(``customer_id``, ``is_default``), where ``is_default`` is TRUE or NULL, keeps the single
default in the database itself. A customer's own write also checks, in the writing
transaction, that their session is still live.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid as uuid_module
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from blinker import Signal
from sqlalchemy.engine import CursorResult

from . import signals
from .actors import Actor
from .address_schemas import AddressRecord, parse_address
from .config import Settings
from .customers import Customers, CustomerTables
from .errors import Conflict, NotFound
from .models import Models
from .schemas import CustomerRecord, is_uuid
from .unit_of_work import Unit, UnitOfWork

INVALID_ADDRESS = "Invalid address"
#: The address columns an :class:`AddressRecord` is made of.
RECORD_COLUMNS = tuple(field.name for field in dataclasses.fields(AddressRecord))


class Addresses(CustomerTables):
    """The address rules of one app, over the host's SQLAlchemy session."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        customers: Customers,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(models)
        self._uow = uow
        self._settings = settings
        self._accounts = customers
        self._clock = clock

    @property
    def _table(self) -> sa.Table:
        return self._models.Address.__table__

    @functools.cached_property
    def _columns(self) -> list[sa.ColumnElement[Any]]:
        return [self._table.c[name] for name in RECORD_COLUMNS]

    @functools.cached_property
    def _count(self) -> sa.Select[Any]:
        """How many addresses the bound ``customer_id`` has, built once."""
        table = self._table
        return (
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.customer_id == sa.bindparam("customer_id"))
        )

    def of(self, actor: Actor, customer_uuid: str) -> list[AddressRecord]:
        """The customer's addresses, oldest first, for an admin or that customer
        (:class:`NotFound`, then :class:`Forbidden`, as for a customer's record)."""
        customer = self._accounts.get(actor, customer_uuid)
        table = self._table
        rows = self._uow.session.execute(
            sa.select(*self._columns)
            .where(table.c.customer_id == customer.customer_id)
            .order_by(table.c.created_at, table.c.customer_address_id)
        ).all()
        return [_record(row) for row in rows]

    def create(self, actor: Actor, customer_uuid: str, body: object) -> AddressRecord:
        """Add an address (a decoded JSON body, validated here). :class:`Conflict` past
        ``EVERSHOP_CUSTOMER_MAX_ADDRESSES``. With ``is_default`` it becomes the default,
        and the customer's other addresses stop being it."""
        customer = self._accounts.get(actor, customer_uuid)
        request = parse_address(body)
        table, limit = self._table, self._settings.max_addresses

        def work(_attempt: int) -> Unit[AddressRecord]:
            self._accounts.locked_for(actor, customer.customer_id)
            count = self._uow.session.scalar(self._count, {"customer_id": customer.customer_id})
            if (count or 0) >= limit:
                raise Conflict(f"A customer can have at most {limit} addresses")
            if request.is_default:
                self._unset_default(customer.customer_id)
            now = self._clock()
            values = {
                "uuid": uuid_module.uuid4().hex,
                "customer_id": customer.customer_id,
                **request.fields.values(),
                "created_at": now,
                "updated_at": now,
                "is_default": True if request.is_default else None,
            }
            result = cast(
                CursorResult[Any], self._uow.session.execute(sa.insert(table).values(**values))
            )
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row always has it
            values["is_default"] = bool(request.is_default)
            record = AddressRecord(customer_address_id=int(key[0]), **values)
            return Unit(record, [_event(signals.address_created, customer, record)])

        return self._write(work)

    def update(
        self, actor: Actor, customer_uuid: str, address_uuid: str, body: object
    ) -> AddressRecord:
        """Change an address: the fields the body names, checked together with the
        stored ones. ``is_default: true`` makes it the default (the others stop being
        it); ``false`` leaves the customer without one. :class:`NotFound` ``Invalid
        address`` for an unknown address or one of another customer."""
        customer = self._accounts.get(actor, customer_uuid)
        table = self._table

        def work(_attempt: int) -> Unit[AddressRecord]:
            self._accounts.locked_for(actor, customer.customer_id)
            current = self._address(customer.customer_id, address_uuid)
            request = parse_address(body, current.fields)
            values = {
                name: value
                for name, value in request.fields.values().items()
                if value != getattr(current, name)
            }
            changed = sorted(values)
            if request.is_default is not None and request.is_default != current.is_default:
                if request.is_default:
                    self._unset_default(customer.customer_id)
                values["is_default"] = True if request.is_default else None
                changed.append("is_default")
            if not values:
                return Unit(current)
            values["updated_at"] = self._clock()
            self._uow.session.execute(
                sa.update(table)
                .where(table.c.customer_address_id == current.customer_address_id)
                .values(**values)
            )
            values["is_default"] = bool(values.get("is_default", current.is_default))
            record = dataclasses.replace(current, **values)
            event = _event(signals.address_updated, customer, record, changed=sorted(changed))
            return Unit(record, [event])

        return self._write(work)

    def delete(self, actor: Actor, customer_uuid: str, address_uuid: str) -> AddressRecord:
        """Delete an address; returns it as it was. Deleting the default makes no other
        address the default."""
        customer = self._accounts.get(actor, customer_uuid)
        table = self._table

        def work(_attempt: int) -> Unit[AddressRecord]:
            self._accounts.locked_for(actor, customer.customer_id)
            current = self._address(customer.customer_id, address_uuid)
            self._uow.session.execute(
                sa.delete(table).where(table.c.customer_address_id == current.customer_address_id)
            )
            return Unit(current, [_event(signals.address_deleted, customer, current)])

        return self._write(work)

    def _write(self, work: Callable[[int], Unit[AddressRecord]]) -> AddressRecord:
        """Run a write to a customer's addresses, whose first statement takes the
        customer's lock: every read after it sees what the writes before it committed
        (MySQL's REPEATABLE READ would otherwise answer them from a snapshot taken by the
        request's earlier reads)."""
        self._uow.read_what_is_committed()
        return self._uow.run(work, locking=True)

    def _address(self, customer_id: int, address_uuid: str) -> AddressRecord:
        """The customer's address with this uuid, as committed now (the customer's row is
        locked, so no other write to their addresses runs meanwhile)."""
        row = None
        if is_uuid(address_uuid):
            table = self._table
            row = self._uow.session.execute(
                sa.select(*self._columns).where(
                    table.c.uuid == address_uuid, table.c.customer_id == customer_id
                )
            ).one_or_none()
        if row is None:
            raise NotFound(INVALID_ADDRESS)
        return _record(row)

    def _unset_default(self, customer_id: int) -> None:
        table = self._table
        self._uow.session.execute(
            sa.update(table)
            .where(table.c.customer_id == customer_id, table.c.is_default.is_not(None))
            .values(is_default=None)
        )


def _record(row: sa.Row[Any]) -> AddressRecord:
    values = dict(zip(RECORD_COLUMNS, row, strict=True))
    values["is_default"] = bool(values["is_default"])
    return AddressRecord(**values)


def _event(
    signal: Signal, customer: CustomerRecord, address: AddressRecord, **extra: Any
) -> tuple[Signal, dict[str, Any]]:
    return signal, {"customer": customer.public(), "address": address.public(), **extra}
