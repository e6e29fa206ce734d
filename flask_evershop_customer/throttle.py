"""Throttling: attempts counted per subject in the database, shared by every worker.

A subject is a keyed digest of what is limited (an email, a client address, a customer),
never the value itself. An attempt is recorded and committed *before* the work it
guards, then the attempts up to and including it are counted: concurrent attempts cannot
all slip under a limit. Over a limit, the attempt is forgotten again and
:class:`TooManyRequests` says when the oldest counted attempt leaves the window. A
successful attempt may be forgotten too (a good login clears its email's failures).

Login, registration, email changes and hosts' own logins (through
:meth:`Throttle.attempt`) all use it, each under subjects of their own kind.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from .errors import TooManyRequests
from .logs import fingerprint, security_event
from .models import LoginFailureColumns
from .unit_of_work import Unit, UnitOfWork

#: Length of a subject: a hex HMAC-SHA256 digest, as the column holds.
SUBJECT_LENGTH = 64


@dataclass
class Attempt:
    """A recorded attempt. :meth:`succeeded` forgets it (and, for a login, the earlier
    failures of its email); otherwise it counts as a failure for the whole window."""

    throttle: Throttle
    ids: list[int]
    _done: bool = field(default=False, repr=False)

    def succeeded(self) -> None:
        """Forget this attempt (in a transaction of its own)."""
        if self._done:
            return
        self._done = True

        def work(_attempt: int) -> Unit[None]:
            self.throttle.forget(self)
            return Unit(None)

        self.throttle.uow.run(work)


class Throttle:
    """Limits over one window, stored in the login-failure table."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        model: type[LoginFailureColumns],
        key: bytes,
        window: int,
        email_limit: int,
        address_limit: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.uow = uow
        self._model = model
        self._key = key
        self.window = window
        self.email_limit = email_limit
        self.address_limit = address_limit
        self._clock = clock

    def subject(self, kind: str, value: str) -> str:
        """The key of ``value`` under ``kind`` (``email``, ``ip``, ...): a keyed digest."""
        return fingerprint(f"{kind}:{value}", SUBJECT_LENGTH, self._key)

    def client_subject(self, kind: str, address: str) -> str:
        """The key of a client address under ``kind``: an IPv6 address counts as its
        /64 network (one subscriber's prefix: its 2^64 addresses are one client), an
        IPv4 address, or anything else, as itself."""
        return self.subject(kind, client_network(address))

    def attempt(self, scope: str, *, key: str | None = None, client: str | None = None) -> Attempt:
        """Record one attempt of a host's own guarded action (an admin login, say),
        limited like customer logins: per ``key`` (an email, a user name) and per client
        address. Raises :class:`TooManyRequests` over either limit; call
        :meth:`Attempt.succeeded` when the attempt succeeds.

        ``scope`` keeps the counters of different actions apart (``"admin-login"``).
        """
        limits = {}
        if key:
            limits[self.subject(f"{scope}:key", key)] = ("key", self.email_limit)
        if client:
            limits[self.client_subject(f"{scope}:ip", client)] = ("ip", self.address_limit)
        return self.reserve(limits, event=f"{scope}_throttled", client=client)

    def reserve(
        self, limits: Mapping[str, tuple[str, int]], *, event: str, **log: str | int | None
    ) -> Attempt:
        """Record an attempt under each subject (mapped to its scope's name and its
        limit) whose limit is above 0, and commit it; then count the attempts up to it.
        Over a limit, forget it, log ``event`` with the scope and ``log``, and raise
        :class:`TooManyRequests`."""
        limits = {subject: value for subject, value in limits.items() if value[1] > 0}
        if not limits:
            return Attempt(self, [])
        now = self._clock()
        ids = self.uow.run(lambda _attempt: Unit(self._insert(list(limits), now)))
        attempt = Attempt(self, list(ids.values()))
        table = self._model.__table__
        # Every attempt committed in the window, this one's concurrent neighbours too:
        # attempts arriving together may all be refused, never all let through.
        counted = self.uow.session.execute(
            sa.select(table.c.subject, sa.func.count(), sa.func.min(table.c.failed_at))
            .where(
                table.c.subject.in_(list(ids)),
                table.c.failed_at > now - timedelta(seconds=self.window),
            )
            .group_by(table.c.subject)
        ).all()
        over = [
            (limits[subject][0], oldest)
            for subject, count, oldest in counted
            if count > limits[subject][1]
        ]
        if over:
            attempt.succeeded()  # an attempt refused is not counted
            security_event(event, scope=over[0][0], **log)
            # The oldest attempt leaves the window then, freeing one; with two limits
            # over, the later of the two.
            wait = max(oldest for _, oldest in over) + timedelta(seconds=self.window) - now
            raise TooManyRequests(math.ceil(wait.total_seconds()), _MESSAGES.get(event))
        return attempt

    def forget(self, attempt: Attempt, *clear: str) -> None:
        """Inside a unit of work: delete ``attempt``'s rows and every row of the
        ``clear`` subjects (a good login clears its email's failures)."""
        table = self._model.__table__
        conditions = []
        if attempt.ids:
            conditions.append(table.c.id.in_(attempt.ids))
        if clear:
            conditions.append(table.c.subject.in_(clear))
        if conditions:
            self.uow.session.execute(sa.delete(table).where(sa.or_(*conditions)))
        attempt._done = True

    def record(self, subject: str) -> None:
        """Record one failure of ``subject`` after the fact, in its own transaction."""
        self.uow.run(lambda _attempt: Unit(self._insert([subject], self._clock())))

    def clear(self, subject: str) -> int:
        """Forget every attempt of ``subject``. Returns how many were forgotten."""
        table = self._model.__table__

        def work(_attempt: int) -> Unit[int]:
            result = self.uow.session.execute(sa.delete(table).where(table.c.subject == subject))
            return Unit(int(getattr(result, "rowcount", 0) or 0))

        return self.uow.run(work)

    def purge(self) -> int:
        """Delete the attempts older than the window. Returns how many."""
        table = self._model.__table__
        cutoff = self._clock() - timedelta(seconds=self.window)

        def work(_attempt: int) -> Unit[int]:
            result = self.uow.session.execute(sa.delete(table).where(table.c.failed_at <= cutoff))
            return Unit(int(getattr(result, "rowcount", 0) or 0))

        return self.uow.run(work)

    def _insert(self, subjects: list[str], now: datetime) -> dict[str, int]:
        """One row per subject; their ids."""
        table = self._model.__table__
        insert = sa.insert(table)
        rows: list[dict[str, Any]] = [{"subject": s, "failed_at": now} for s in subjects]
        session = self.uow.session
        # From the connection: the dialect learns what the server supports when it first
        # connects (and remembers the answer of the first question).
        if session.connection().dialect.insert_executemany_returning:
            # One statement for every row, with their ids.
            returned = session.execute(insert.returning(table.c.subject, table.c.id), rows)
            return {subject: row_id for subject, row_id in returned}
        ids = {}
        for row in rows:  # MySQL has no RETURNING: one INSERT a row, with its lastrowid
            result = cast(CursorResult[Any], session.execute(insert, row))
            ids[row["subject"]] = int(result.inserted_primary_key[0])  # type: ignore[index]
        return ids


#: The prefix length an IPv6 client is counted by: a subscriber gets a /64 at least.
IPV6_CLIENT_PREFIX = 64


def client_network(address: str) -> str:
    """What a client address is counted as: an IPv6 address its /64 network (an
    IPv4-mapped one its IPv4 address), anything else as it is."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


_MESSAGES = {
    "registration_throttled": "Too many registrations from this address, try again later",
    "email_change_throttled": "Too many attempts to change the email, try again later",
    "reset_throttled": "Too many password reset requests, try again later",
}
