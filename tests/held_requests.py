"""Requests in threads of their own, held at chosen statements by events (never by
sleeping): what the race tests are made of."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from .conftest import Database, db

#: Seconds a thread may wait for another; a hang fails instead.
TIMEOUT = 30
#: A statement to stop at: one starting with this text, or one this predicate accepts.
Match = str | Callable[[str], bool]


class Request(threading.Thread):
    """One request in a thread of its own (its own app context, session, connection)."""

    def __init__(self, name: str, call: Callable[[], TestResponse]) -> None:
        super().__init__(name=name, daemon=True)
        self._call = call
        self.response: TestResponse | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.response = self._call()
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> TestResponse:
        self.join(TIMEOUT)
        assert not self.is_alive(), f"request {self.name} hangs"
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


class Gates:
    """Signals when a named thread reaches a statement, and holds it there if asked."""

    def __init__(self) -> None:
        self.reached: dict[tuple[str, str, Match], threading.Event] = {}
        self.release: dict[tuple[str, str, Match], threading.Event] = {}

    def at(self, thread: str, when: str, match: Match, *, hold: bool) -> threading.Event:
        """The event set when ``thread`` is ``before`` or ``after`` running a statement
        that ``match`` names; with ``hold`` it waits there until :meth:`open`."""
        key = (thread, when, match)
        self.reached[key] = threading.Event()
        if hold:
            self.release[key] = threading.Event()
        return self.reached[key]

    def open(self, thread: str, when: str, match: Match) -> None:
        self.release[(thread, when, match)].set()

    def listener(self, when: str) -> Callable[..., None]:
        def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            name = threading.current_thread().name
            for (thread, moment, match), event in list(self.reached.items()):
                matches = match(statement) if callable(match) else statement.startswith(match)
                if thread == name and moment == when and matches:
                    if event.is_set():
                        continue  # once only: a retried unit runs its statements again
                    event.set()
                    release = self.release.get((thread, moment, match))
                    if release is not None:
                        assert release.wait(TIMEOUT), f"{thread} was never released"

        return listen


@contextlib.contextmanager
def gates(app: Flask) -> Iterator[Gates]:
    """Gates on ``app``'s engine for the test; every held thread is let go at the end."""
    found = Gates()
    with app.app_context():
        engine = db.engine
    before, after = found.listener("before"), found.listener("after")
    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        for event in found.release.values():
            event.set()
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)


@contextlib.contextmanager
def mariadb_snapshot_isolation(app: Flask, database: Database) -> Iterator[list[object]]:
    """``app``'s connections with MariaDB's ``innodb_snapshot_isolation`` on (the default
    from 11.6.2; the suite's server may be older) for the block, which gets the MySQL
    error numbers its statements met. Skips on another database, or a server without it."""
    if database.backend != "mysql":
        pytest.skip("a MariaDB setting")
    with app.app_context():
        engine = db.engine
    with engine.connect() as connection:
        found = connection.exec_driver_sql("SHOW VARIABLES LIKE 'innodb_snapshot_isolation'")
        if not found.all():
            pytest.skip("this server has no innodb_snapshot_isolation")
    errors: list[object] = []

    def turn_on(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION innodb_snapshot_isolation = ON")
        cursor.close()

    def error(context: Any) -> None:
        errors.append(getattr(context.original_exception, "args", (None,))[0])

    engine.dispose()
    sa.event.listen(engine, "connect", turn_on)
    sa.event.listen(engine, "handle_error", error)
    try:
        yield errors
    finally:
        sa.event.remove(engine, "connect", turn_on)
        sa.event.remove(engine, "handle_error", error)
        engine.dispose()
