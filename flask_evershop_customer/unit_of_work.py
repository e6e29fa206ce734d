"""The transaction loop every write of the extension goes through.

A unit of work writes, flushes, sends its signals (receivers see the new state inside the
transaction), and only then commits. Any failure rolls the whole unit back, so a 2xx
always means committed and anything else means nothing changed. Transient conflicts
(deadlocks, serialization failures, lock time-outs, a busy SQLite file, MariaDB's
"record has changed since last read") run the whole unit again, from a fresh transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from blinker import Signal
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session as OrmSession

from .errors import (
    Conflict,
    DatabaseError,
    PreconditionFailed,
    SchemaMissing,
    ServiceUnavailable,
    is_missing_schema,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)
#: How often a unit of work is tried when the database reports a transient conflict.
ATTEMPTS = 3
#: SQLSTATEs of PostgreSQL's serialization failure, deadlock and lock time-out.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
#: MySQL/MariaDB: 1020 record changed since last read (MariaDB's snapshot isolation),
#: 1205 lock wait time-out, 1213 deadlock.
TRANSIENT_MYSQL_ERRORS = frozenset({1020, 1205, 1213})


class StaleVersion(Exception):
    """A write found its row at another version than the one it was decided on."""


@dataclass
class Unit(Generic[T]):
    """What a unit of work produced: its result and the signals to send before commit."""

    result: T
    events: Sequence[tuple[Signal, Mapping[str, Any]]] = ()


class UnitOfWork:
    """Runs units of work on the host's SQLAlchemy session, sending signals as ``sender``."""

    def __init__(self, db: SQLAlchemy, sender: object) -> None:
        self._db = db
        self._sender = sender

    @property
    def session(self) -> OrmSession:
        """The host's scoped session (the request's)."""
        return self._db.session  # type: ignore[return-value]

    def notify(self, signal: Signal, payload: Mapping[str, Any]) -> bool:
        """Send ``signal`` after a commit, when a receiver must not change the answer: one
        that raises is logged (with its traceback) and ``False`` is returned."""
        try:
            signal.send(self._sender, **payload)
        except Exception:
            logger.exception(
                "A receiver of %s raised; the request went on", getattr(signal, "name", signal)
            )
            return False
        return True

    def end_read(self) -> None:
        """End the current transaction, if any, before slow work such as hashing: no
        snapshot, lock or connection is held meanwhile. Loaded objects are expired."""
        self.session.rollback()

    def read_what_is_committed(self) -> None:
        """Before a unit that starts by locking: make sure its reads will see what was
        committed before its lock. Under REPEATABLE READ (MySQL's default) a transaction
        reads from the snapshot of its first read, which the request may have taken long
        before: that transaction is ended here. Under READ COMMITTED (PostgreSQL's
        default) every statement reads the latest commits, and on SQLite a locking unit
        starts a transaction of its own: nothing to do, and no round trip."""
        connection = self.session.connection()
        if connection.dialect.name == "sqlite":
            return
        options = connection.get_execution_options()
        level = options.get("isolation_level") or connection.default_isolation_level
        if level not in ("READ COMMITTED", "READ UNCOMMITTED", "AUTOCOMMIT"):
            self.session.rollback()

    def run(
        self,
        work: Callable[[int], Unit[T]],
        *,
        retry_stale: bool = False,
        locking: bool = False,
    ) -> T:
        """Run ``work(attempt)``, send its signals, commit; roll back on any failure.

        ``attempt`` counts from 1: a unit may decide to lock rows on a retry. With
        ``locking``, each attempt's transaction holds SQLite's write lock from its first
        statement, so that ``SELECT ... FOR UPDATE`` (which SQLite ignores) still reads
        the latest row and keeps it until commit; PostgreSQL and MySQL lock the rows read.

        A transient conflict runs the whole unit again, signals included: receivers
        work inside the transaction, so their own work was rolled back with the rest.
        A version-counter mismatch is a 412 unless ``retry_stale``. Other database
        errors are re-raised as :class:`DatabaseError` without the statement's
        parameters (a password hash may be among them).
        """
        session = self.session
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if locking or attempt > 1:
                    self.lock_sqlite()
                unit = work(attempt)
                for signal, payload in unit.events:
                    signal.send(self._sender, **payload)
                session.commit()
                return unit.result
            except IntegrityError as exc:
                session.rollback()
                if "email_canonical" in str(exc.orig):
                    raise Conflict() from None
                raise Conflict("The request conflicts with a concurrent change") from None
            except StaleVersion:
                session.rollback()
                if retry_stale and attempt < ATTEMPTS:
                    continue
                raise PreconditionFailed() from None
            except DBAPIError as exc:
                session.rollback()
                if is_missing_schema(exc):
                    raise SchemaMissing(str(DatabaseError.from_driver(exc))) from None
                if isinstance(exc, OperationalError):
                    if is_transient(exc) and attempt < ATTEMPTS:
                        continue
                    raise ServiceUnavailable() from None
                raise DatabaseError.from_driver(exc) from None
            except BaseException:
                session.rollback()
                raise
        raise ServiceUnavailable()  # pragma: no cover - the loop always returns or raises

    def delete_in_batches(
        self, key: sa.Column[Any], condition: sa.ColumnElement[bool], batch_size: int
    ) -> int:
        """Delete the rows of ``key``'s table that match ``condition``, ``batch_size``
        per transaction (no long lock on a big table). Returns how many."""
        table = key.table
        total = 0
        while True:

            def work(_attempt: int) -> Unit[int]:
                batch = self.session.scalars(sa.select(key).where(condition).limit(batch_size))
                keys = batch.all()
                if keys:
                    self.session.execute(sa.delete(table).where(key.in_(keys)))
                return Unit(len(keys))

            deleted = self.run(work)
            total += deleted
            if deleted < batch_size:
                return total

    def lock_sqlite(self) -> None:
        """On SQLite, start the transaction with ``BEGIN IMMEDIATE`` (the write lock),
        unless one is already open. Python's sqlite3 module runs a ``SELECT`` outside any
        transaction, so without this another writer could commit between a read and the
        write that depends on it. Other databases lock the rows they read for update."""
        connection = self.session.connection()
        if connection.dialect.name != "sqlite":
            return
        driver = connection.connection.driver_connection
        if driver is not None and not getattr(driver, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_transient(exc: OperationalError) -> bool:
    """Deadlocks, serialization failures, lock time-outs and lost snapshot races, on
    each supported database."""
    orig: Any = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in TRANSIENT_MYSQL_ERRORS:
        return True
    return "database is locked" in str(orig)
