"""The EverShop import: customers and their addresses read straight from an EverShop
database (PostgreSQL for 1.x/2.x and rc.3, MySQL/MariaDB for rc.2) and written into the
extension's tables, bcrypt password hashes included. No request objects.

One transaction per batch of customers, so an interrupted run keeps the batches it
committed, and running again skips the customers already here (their uuid is kept) or,
with ``update``, refreshes them. Emails that are one by their canonical form (EverShop's
are case-sensitive) are never merged: every customer of such a group is skipped and
reported, and so is any row that cannot be imported as it is (a second row of one uuid,
which rc.2's text column could hold dashed and as 32 hex characters, among them).
"""

from __future__ import annotations

import contextlib
import re
import uuid as uuid_module
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, NoSuchTableError

from .address_schemas import FIELDS, AddressFields, parse_address
from .config import Settings
from .errors import Conflict, EverShopCustomerError, ValidationError
from .evershop_hashes import BCRYPT_COSTS, bcrypt_cost, is_bcrypt_hash
from .models import CustomerStatus, Models
from .schemas import canonical_email, parse_customer_changes
from .unit_of_work import Unit, UnitOfWork

#: A uuid as EverShop stores it: dashed (PostgreSQL's UUID) or 32 hex characters (rc.2).
_SOURCE_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
CUSTOMER_COLUMNS = ("customer_id", "uuid", "status", "email", "password", "full_name")


class SourceUnreadable(EverShopCustomerError):
    """The source cannot be read as an EverShop database (the message says why)."""


@dataclass(frozen=True)
class Skipped:
    """A source row that was not imported, and why."""

    table: str
    source_id: int
    uuid: str | None
    email: str | None
    reason: str


@dataclass
class ImportSummary:
    """What an import did (or, dry, would do)."""

    customers: int = 0
    imported: int = 0
    updated: int = 0
    already_here: int = 0
    addresses_imported: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def skipped_customers(self) -> int:
        return sum(1 for row in self.skipped if row.table == "customer")

    @property
    def skipped_addresses(self) -> int:
        return sum(1 for row in self.skipped if row.table == "customer_address")


class _DryRun(Exception):
    """What a dry run's batch would have done; raised to roll its unit back."""

    def __init__(self, counts: ImportSummary) -> None:
        super().__init__("dry run")
        self.counts = counts


@dataclass(frozen=True)
class _Customer:
    """A source customer, mapped to the extension's columns."""

    source_id: int
    values: dict[str, Any]


class EverShopImport:
    """Copies an EverShop shop's customers into one app's tables."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        models: Models,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._models = models
        self._settings = settings
        self._clock = clock

    def run(
        self,
        source_url: str,
        *,
        dry_run: bool = False,
        update: bool = False,
        batch_size: int = 1000,
        progress: Callable[[int], None] = lambda _done: None,
    ) -> ImportSummary:
        """Import every customer of the EverShop database at ``source_url``, and their
        addresses. ``progress(n)`` is called after each batch of ``n`` customers.
        :class:`SourceUnreadable` when the source cannot be read."""
        with _reading(source_url) as source:
            return self._run(source, dry_run, update, batch_size, progress)

    def count(self, source_url: str) -> int:
        """How many customers the source has (for a progress bar)."""
        with _reading(source_url) as source:
            customers = _reflect(source, "customer")
            return int(source.scalar(sa.select(sa.func.count()).select_from(customers)) or 0)

    # -- the run ----------------------------------------------------------------------

    def _run(
        self,
        source: sa.Connection,
        dry_run: bool,
        update: bool,
        batch_size: int,
        progress: Callable[[int], None],
    ) -> ImportSummary:
        customers = _reflect(source, "customer")
        missing = [name for name in CUSTOMER_COLUMNS if name not in customers.c]
        if missing:
            raise SourceUnreadable(f"the customer table has no column {', '.join(missing)}")
        addresses = _reflect(source, "customer_address", required=False)
        summary = ImportSummary()
        canonical, refused = _screen(source, customers)
        for batch in _batches(source, customers, batch_size):
            summary.customers += len(batch)
            mapped: list[_Customer] = []
            for row in batch:
                if row["customer_id"] in refused:
                    summary.skipped.append(_skip(row, refused[row["customer_id"]]))
                    continue
                customer = self._map(row, canonical.get(row["customer_id"]), summary)
                if customer is not None:
                    mapped.append(customer)
            rows = _addresses_of(source, addresses, [c.source_id for c in mapped])
            self._write_batch(mapped, rows, summary, dry_run=dry_run, update=update)
            progress(len(batch))
        return summary

    def _map(
        self, row: Mapping[str, Any], canonical: str | None, summary: ImportSummary
    ) -> _Customer | None:
        """The extension's columns for a source customer whose email has the canonical
        form ``canonical`` (None: not an address), or None (reported) when it cannot be
        imported as it is."""
        uuid = _uuid(row["uuid"])
        if uuid is None:
            summary.skipped.append(_skip(row, f"uuid {row['uuid']!r} is not a UUID"))
            return None
        email = row["email"]
        if canonical is None:
            summary.skipped.append(_skip(row, "email is not a valid address"))
            return None
        status = row["status"]
        if status not in (CustomerStatus.DISABLED, CustomerStatus.ACTIVE):
            summary.skipped.append(_skip(row, f"status {status!r} is neither 0 nor 1"))
            return None
        try:
            # The API's rules for a name (a PATCH naming only it): 1 to 255 characters, no
            # control characters; EverShop's null name is an empty one.
            full_name = parse_customer_changes({"full_name": row["full_name"] or ""}).full_name
        except ValidationError as error:
            summary.skipped.append(_skip(row, error.message))
            return None
        password = row["password"]
        cost = bcrypt_cost(password) if isinstance(password, str) else None
        if cost is None:
            summary.skipped.append(
                _skip(row, "password is not a bcrypt hash: the customer could never log in")
            )
            return None
        if cost not in BCRYPT_COSTS:
            reason = (
                f"password is a bcrypt hash of cost {cost}, outside EverShop's"
                f" {BCRYPT_COSTS.start} to {BCRYPT_COSTS.stop - 1}: it is never checked here"
            )
            summary.skipped.append(_skip(row, reason))
            return None
        now = self._clock()
        created = _utc(row.get("created_at")) or now
        values = {
            "uuid": uuid,
            "status": int(status),
            "group_id": int(row.get("group_id") or 1),
            "email": email,
            "email_canonical": canonical,
            "full_name": full_name,
            "password_hash": password,
            "created_at": created,
            "updated_at": _utc(row.get("updated_at")) or created,
        }
        return _Customer(int(row["customer_id"]), values)

    # -- writing ----------------------------------------------------------------------

    def _write_batch(
        self,
        batch: list[_Customer],
        addresses: dict[int, list[Mapping[str, Any]]],
        summary: ImportSummary,
        *,
        dry_run: bool,
        update: bool,
    ) -> None:
        """One transaction: the batch's new customers, refreshed ones (``update``), and
        their addresses. A dry run decides the same and writes nothing."""

        def work(_attempt: int) -> Unit[ImportSummary]:
            counts = ImportSummary()
            here = self._customers_here(batch, lock=update)
            new: list[_Customer] = []
            refreshed: list[tuple[_Customer, Mapping[str, Any]]] = []
            for customer in batch:
                values = customer.values
                holder = here["email"].get(values["email_canonical"])
                stored = here["uuid"].get(values["uuid"])
                if holder is not None and holder["uuid"] != values["uuid"]:
                    reason = f"email is already used here by customer {holder['uuid']}"
                    counts.skipped.append(_skip_mapped(customer, reason))
                elif stored is None:
                    new.append(customer)
                elif not stored["imported"]:
                    reason = "uuid is already used here by a customer who was not imported"
                    counts.skipped.append(_skip_mapped(customer, reason))
                elif update:
                    refreshed.append((customer, stored))
                else:
                    counts.already_here += 1
            counts.imported, counts.updated = len(new), len(refreshed)
            present = self._addresses_here([stored["customer_id"] for _, stored in refreshed])
            owners: list[tuple[_Customer, int | None]] = [
                *((c, stored["customer_id"]) for c, stored in refreshed),
                *((c, None) for c in new),
            ]
            if dry_run:
                rows = self._address_rows(owners, present, addresses, counts)
                counts.addresses_imported = len(rows)
                raise _DryRun(counts)  # rolls the unit back, with nothing written
            ids = self._insert(new)
            for customer, stored in refreshed:
                self._refresh(customer, stored)
            owners = [(c, ids.get(c.values["uuid"], owner)) for c, owner in owners]
            rows = self._address_rows(owners, present, addresses, counts)
            if rows:
                self._uow.session.execute(sa.insert(self._models.Address.__table__), rows)
            counts.addresses_imported = len(rows)
            return Unit(counts)

        try:
            try:
                result = self._uow.run(work)
            except Conflict:
                # A customer of the batch took an email (or was written) here meanwhile:
                # run the batch again, which now sees it and reports that row.
                result = self._uow.run(work)
        except _DryRun as dry:
            result = dry.counts
        summary.imported += result.imported
        summary.updated += result.updated
        summary.already_here += result.already_here
        summary.addresses_imported += result.addresses_imported
        summary.skipped.extend(result.skipped)

    def _customers_here(self, batch: list[_Customer], *, lock: bool) -> dict[str, dict[str, Any]]:
        """The extension's customers that share a uuid or a canonical email with the
        batch (and whether the import wrote them), by uuid and by canonical email; with
        ``lock``, locked until the batch
        commits, so that a password reset or a change made here meanwhile is not
        written over."""
        table = self._models.Customer.__table__
        uuids = [c.values["uuid"] for c in batch]
        emails = [c.values["email_canonical"] for c in batch]
        found: dict[str, dict[str, Any]] = {"uuid": {}, "email": {}}
        if not batch:
            return found
        query = sa.select(
            table.c.customer_id,
            table.c.uuid,
            table.c.email_canonical,
            table.c.password_hash,
            table.c.status,
            table.c.version,
            table.c.imported,
        ).where(sa.or_(table.c.uuid.in_(uuids), table.c.email_canonical.in_(emails)))
        rows = self._uow.session.execute(query.with_for_update() if lock else query).mappings()
        for row in rows:
            found["uuid"][row["uuid"]] = dict(row)
            found["email"][row["email_canonical"]] = dict(row)
        return found

    def _insert(self, new: list[_Customer]) -> dict[str, int]:
        """Insert the new customers; their ids by uuid."""
        if not new:
            return {}
        table = self._models.Customer.__table__
        self._uow.session.execute(
            sa.insert(table), [{**c.values, "version": 1, "imported": True} for c in new]
        )
        uuids = [c.values["uuid"] for c in new]
        return dict(
            self._uow.session.execute(
                sa.select(table.c.uuid, table.c.customer_id).where(table.c.uuid.in_(uuids))
            ).all()
        )

    def _refresh(self, customer: _Customer, stored: Mapping[str, Any]) -> None:
        """``update``: the customer's fields as EverShop has them now (the row is locked).
        A password hash set or upgraded here is kept, and a customer disabled here stays
        disabled; a new EverShop password, or a disable, ends the customer's sessions
        here, as such a change made here would."""
        table, sessions = self._models.Customer.__table__, self._models.LoginSession.__table__
        values = dict(customer.values)
        del values["uuid"]
        # A customer disabled here stays disabled: an import never lets one back in.
        values["status"] = min(values["status"], stored["status"])
        new_password = values["password_hash"] != stored["password_hash"]
        if not is_bcrypt_hash(stored["password_hash"]):
            del values["password_hash"]
            new_password = False
        values["version"] = stored["version"] + 1
        self._uow.session.execute(
            sa.update(table).where(table.c.customer_id == stored["customer_id"]).values(**values)
        )
        if new_password or values["status"] != CustomerStatus.ACTIVE:
            self._uow.session.execute(
                sa.update(sessions)
                .where(
                    sessions.c.customer_id == stored["customer_id"],
                    sessions.c.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock())
            )

    def _addresses_here(self, customer_ids: list[int]) -> dict[int, list[tuple[str, bool]]]:
        """The addresses these customers already have here: (uuid, is default)."""
        found: dict[int, list[tuple[str, bool]]] = defaultdict(list)
        if customer_ids:
            table = self._models.Address.__table__
            for customer_id, uuid, is_default in self._uow.session.execute(
                sa.select(table.c.customer_id, table.c.uuid, table.c.is_default).where(
                    table.c.customer_id.in_(customer_ids)
                )
            ):
                found[customer_id].append((uuid, bool(is_default)))
        return found

    def _address_rows(
        self,
        owners: list[tuple[_Customer, int | None]],
        present: Mapping[int, list[tuple[str, bool]]],
        addresses: Mapping[int, list[Mapping[str, Any]]],
        counts: ImportSummary,
    ) -> list[dict[str, Any]]:
        """The address rows to insert for these customers (with their ids here, None
        for one not written yet): those not here yet, within the limit per customer, one
        default at most. Addresses left out are reported in ``counts``."""
        rows: list[dict[str, Any]] = []
        limit = self._settings.max_addresses
        for customer, customer_id in owners:
            mapped = self._mapped_addresses(addresses.get(customer.source_id, []), counts)
            here = present.get(customer_id, []) if customer_id is not None else []
            known = {uuid for uuid, _ in here}
            has_default = any(default for _, default in here)
            room = limit - len(here)
            for values in mapped:
                source_id = values.pop("source_id")
                if values["uuid"] in known:
                    continue
                if room <= 0:
                    reason = f"the customer already has {limit} addresses"
                    counts.skipped.append(
                        Skipped("customer_address", source_id, values["uuid"], None, reason)
                    )
                    continue
                room -= 1
                if values["is_default"] and has_default:
                    values["is_default"] = None
                has_default = has_default or bool(values["is_default"])
                rows.append({**values, "customer_id": customer_id})
        return rows

    def _mapped_addresses(
        self, rows: list[Mapping[str, Any]], counts: ImportSummary
    ) -> list[dict[str, Any]]:
        """The customer's source addresses that pass the extension's checks, mapped to
        its columns; one default at most (the newest of several)."""
        mapped: list[dict[str, Any]] = []
        for row in rows:
            values: dict[str, Any] = {"source_id": int(row["customer_address_id"])}
            uuid = _uuid(row.get("uuid"))
            if uuid is None:
                counts.skipped.append(_skip_address(values, "uuid is not a UUID"))
                continue
            values["uuid"] = uuid
            body = {name: row.get(name) for name in FIELDS}
            if body["telephone"] is not None:
                body["telephone"] = str(body["telephone"])
            try:
                fields: AddressFields = parse_address(body).fields
            except ValidationError as error:
                counts.skipped.append(_skip_address(values, error.message))
                continue
            created = _utc(row.get("created_at")) or self._clock()
            values.update(
                fields.values(),
                created_at=created,
                updated_at=_utc(row.get("updated_at")) or created,
                is_default=True if row.get("is_default") else None,
            )
            mapped.append(values)
        defaults = [values for values in mapped if values["is_default"]]
        for values in defaults[:-1]:
            values["is_default"] = None
        return mapped


# -- the source -------------------------------------------------------------------------


@contextlib.contextmanager
def _reading(source_url: str) -> Iterator[sa.Connection]:
    """A connection to the source; :class:`SourceUnreadable`, without the URL's password,
    when it cannot be read."""
    engine = _source_engine(source_url)
    try:
        with engine.connect() as source:
            yield source
    except (DBAPIError, NoSuchTableError) as exc:
        raise SourceUnreadable(
            f"cannot read the EverShop database at {_safe(source_url)}: {_first_line(exc)}"
        ) from None
    finally:
        engine.dispose()


def _source_engine(source_url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(source_url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise SourceUnreadable(
            f"not a database URL SQLAlchemy can use: {_safe(source_url)} ({exc})"
        ) from None
    if engine.dialect.name in ("mysql", "mariadb"):
        # TIMESTAMP columns are read in the session's time zone: make it UTC.
        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET time_zone = '+00:00'")
            cursor.close()

    return engine


def _reflect(source: sa.Connection, name: str, *, required: bool = True) -> sa.Table:
    try:
        return sa.Table(name, sa.MetaData(), autoload_with=source)
    except NoSuchTableError:
        if required:
            raise SourceUnreadable(
                f"the source has no {name} table: is it EverShop's database?"
            ) from None
        return sa.Table(name, sa.MetaData())


def _screen(source: sa.Connection, customers: sa.Table) -> tuple[dict[int, str], dict[int, str]]:
    """Every source customer's canonical email (read once, before the batches), and the
    customers refused before their batch, each with the reason it is skipped: those whose
    emails are one by that form (EverShop compares emails case-sensitively), and every
    row but the first of a uuid that rc.2's text column held in two forms (dashed and
    32 hex characters are one uuid here)."""
    canonical: dict[int, str] = {}
    groups: dict[str, list[int]] = defaultdict(list)
    holders: dict[str, int] = {}
    refused: dict[int, str] = {}
    query = sa.select(customers.c.customer_id, customers.c.uuid, customers.c.email).order_by(
        customers.c.customer_id
    )
    for customer_id, source_uuid, email in source.execute(query):
        uuid = _uuid(source_uuid)
        if uuid is not None:
            holder = holders.setdefault(uuid, customer_id)
            if holder != customer_id:
                refused[customer_id] = (
                    f"uuid is the same as customer {holder}'s once written as 32 hex"
                    " characters: the first row keeps it"
                )
        form = canonical_email(email) if isinstance(email, str) else None
        if form is not None:
            canonical[customer_id] = form
            groups[form].append(customer_id)
    for members in groups.values():
        if len(members) > 1:
            for customer_id in members:
                others = ", ".join(str(other) for other in members if other != customer_id)
                refused[customer_id] = (
                    f"email is the same as customer {others}'s once letter case and"
                    " Unicode forms are ignored: merge them in EverShop, then import again"
                )
    return canonical, refused


def _batches(
    source: sa.Connection, customers: sa.Table, size: int
) -> Iterator[list[dict[str, Any]]]:
    """The source customers in ``customer_id`` order, ``size`` at a time (keyset pages:
    each costs the same however far the run has got)."""
    last = None
    while True:
        query = sa.select(customers).order_by(customers.c.customer_id).limit(size)
        if last is not None:
            query = query.where(customers.c.customer_id > last)
        rows = [dict(row) for row in source.execute(query).mappings()]
        if not rows:
            return
        yield rows
        last = rows[-1]["customer_id"]


def _addresses_of(
    source: sa.Connection, addresses: sa.Table, customer_ids: list[int]
) -> dict[int, list[Mapping[str, Any]]]:
    found: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    if not customer_ids or "customer_id" not in addresses.c:
        return found
    query = (
        sa.select(addresses)
        .where(addresses.c.customer_id.in_(customer_ids))
        .order_by(addresses.c.customer_id, addresses.c.customer_address_id)
    )
    for row in source.execute(query).mappings():
        found[int(row["customer_id"])].append(dict(row))
    return found


def _uuid(value: object) -> str | None:
    """A source uuid as the extension stores it (32 lowercase hex characters)."""
    if isinstance(value, uuid_module.UUID):
        return value.hex
    if isinstance(value, str) and _SOURCE_UUID.fullmatch(value.strip()):
        return value.strip().replace("-", "").lower()
    return None


def _utc(value: object) -> datetime | None:
    """A source timestamp in naive UTC (TIMESTAMPTZ comes aware; MySQL's TIMESTAMP is
    read in a UTC session)."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _skip(row: Mapping[str, Any], reason: str) -> Skipped:
    email = row.get("email")
    return Skipped(
        "customer",
        int(row["customer_id"]),
        _uuid(row.get("uuid")) or (str(row.get("uuid")) if row.get("uuid") is not None else None),
        email if isinstance(email, str) else None,
        reason,
    )


def _skip_mapped(customer: _Customer, reason: str) -> Skipped:
    values = customer.values
    return Skipped("customer", customer.source_id, values["uuid"], values["email"], reason)


def _skip_address(values: Mapping[str, Any], reason: str) -> Skipped:
    return Skipped("customer_address", int(values["source_id"]), values.get("uuid"), None, reason)


def _safe(url: str) -> str:
    """The URL without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable URL)"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).partition(chr(10))[0]}"
